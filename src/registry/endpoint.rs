//! Registry endpoints: which scheme a registry is reached over (HTTPS; plain HTTP only for
//! loopback and `--insecure-registry`), its HTTP client with the CAs given for it, and the
//! per-registry cache of both.

use super::auth::{self, Challenge};
use super::session::{Client, err_chain, lock};
use super::{RegistryError, Result};
use reqwest::blocking::Client as Http;
use reqwest::{StatusCode, Url};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One registry's endpoint: base URL, HTTP client (with its CAs) and last auth challenge.
pub(super) struct Endpoint {
    pub(super) registry: String,
    pub(super) base: Url,
    pub(super) http: Http,
    pub(super) challenge: Mutex<Option<Challenge>>,
}

/// Host without port: `h:5000` → `h`, `[::1]:5000` → `::1`.
fn bare_host(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(registry)
}

impl Client {
    fn explicitly_insecure(&self, registry: &str) -> bool {
        let host = bare_host(registry);
        self.opts
            .insecure
            .iter()
            .any(|i| i == registry || i == host)
    }

    pub(super) fn plain_http_allowed(&self, registry: &str) -> bool {
        self.is_loopback(registry) || self.explicitly_insecure(registry)
    }

    fn is_loopback(&self, registry: &str) -> bool {
        let host = bare_host(registry);
        host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// The HTTP client for `registry`. `system_roots: false` skips loading the system's CA
    /// store (tens of milliseconds, most of a warm build's time) for plain-HTTP registries,
    /// which only ever need the CAs given for them.
    fn http_client(&self, registry: &str, system_roots: bool) -> Result<Http> {
        let mut certs = Vec::new();
        let mut add = |path: &Path| -> Result<()> {
            let pem = std::fs::read(path).map_err(|e| RegistryError::Tls {
                path: path.into(),
                reason: e.to_string(),
            })?;
            let list =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| RegistryError::Tls {
                    path: path.into(),
                    reason: err_chain(&e),
                })?;
            certs.extend(list);
            Ok(())
        };
        if let Some(f) = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()) {
            add(Path::new(&f))?;
        }
        if !registry.contains('/') && registry != ".." {
            let dir = self.certs_dir.join(registry);
            if let Ok(rd) = std::fs::read_dir(&dir) {
                let mut files: Vec<PathBuf> = rd
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "crt"))
                    .collect();
                files.sort();
                for f in files {
                    add(&f)?;
                }
            }
        }
        // The idle limit, per wait (see `request_timeout`). reqwest's `read_timeout` is for
        // its async client only: its blocking client polls response bodies outside the
        // runtime, where that timer panics.
        let connect = Duration::from_secs(20);
        let mut b = Http::builder()
            .timeout(self.idle.0)
            .connect_timeout(self.idle.0.map_or(connect, |i| i.min(connect)))
            .tcp_user_timeout(self.idle.0)
            .user_agent(concat!("hoist/", env!("CARGO_PKG_VERSION")));
        if !system_roots {
            b = b.tls_certs_only(certs);
        } else if !certs.is_empty() {
            b = b.tls_certs_merge(certs);
        }
        if self.explicitly_insecure(registry) {
            // Docker's meaning of --insecure-registry: HTTPS without verification, else HTTP.
            b = b.tls_danger_accept_invalid_certs(true);
        }
        b.build().map_err(|e| RegistryError::Connection {
            url: registry.into(),
            reason: err_chain(&e),
        })
    }

    pub(super) fn endpoint(&self, registry: &str) -> Result<Arc<Endpoint>> {
        if let Some(ep) = lock(&self.endpoints).get(registry) {
            return Ok(ep.clone());
        }
        let dl = self.deadline();
        dl.check()?;
        let probe_timeout = dl.cap(Duration::from_secs(10));
        let mut http = self.http_client(registry, !self.plain_http_allowed(registry))?;
        let host = if auth::is_docker_hub(registry) {
            "registry-1.docker.io"
        } else {
            registry
        };
        let parse = |scheme: &str| {
            Url::parse(&format!("{scheme}://{host}/")).map_err(|e| RegistryError::Connection {
                url: host.to_string(),
                reason: e.to_string(),
            })
        };
        let mut base = parse("https")?;
        // On loopback, plain HTTP is asked first: a local registry answers /v2/ with 200 or 401
        // at once, where a TLS hello to it costs tens of milliseconds (nothing on loopback can
        // be intercepted, so the order does not matter for security there). A TLS server
        // answers the plain request with 400 and goes through the usual probe below.
        let loopback_http = self.is_loopback(registry) && {
            let http_base = parse("http")?;
            http.get(http_base.join("v2/").unwrap_or(http_base))
                .timeout(probe_timeout)
                .send()
                .is_ok_and(|r| matches!(r.status(), StatusCode::OK | StatusCode::UNAUTHORIZED))
        };
        if loopback_http {
            base = parse("http")?;
        } else if self.plain_http_allowed(registry) {
            // Docker's order for insecure registries: HTTPS first, then plain HTTP.
            let probe = http
                .get(base.join("v2/").unwrap_or_else(|_| base.clone()))
                .timeout(probe_timeout)
                .send();
            // A TLS server with a certificate we do not trust stays HTTPS, so the error is
            // the certificate one (fix: its CA in certs.d), not a confusing plain-HTTP 400.
            // The probe client trusts no system CA, so a TLS server answers with a certificate
            // error; that registry then gets the full client.
            match probe {
                Err(e) if !err_chain(&e).to_ascii_lowercase().contains("certificate") => {
                    base = parse("http")?;
                }
                Err(_) if !self.explicitly_insecure(registry) => {
                    http = self.http_client(registry, true)?;
                }
                _ => {}
            }
        }
        let ep = Arc::new(Endpoint {
            registry: registry.to_string(),
            base,
            http,
            challenge: Mutex::new(None),
        });
        lock(&self.endpoints).insert(registry.to_string(), ep.clone());
        Ok(ep)
    }

    pub(super) fn url(&self, ep: &Endpoint, path: &str) -> Result<Url> {
        ep.base.join(path).map_err(|e| RegistryError::Connection {
            url: format!("{}{path}", ep.base),
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RegistryOptions;

    #[test]
    fn plain_http_rules() {
        let c = Client::new(RegistryOptions {
            insecure: vec!["reg.lan:5000".into(), "other.lan".into()],
            docker_config_dir: None,
        })
        .unwrap();
        for ok in [
            "localhost:5000",
            "localhost",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "reg.lan:5000",
            "other.lan:443",
        ] {
            assert!(c.plain_http_allowed(ok), "{ok}");
        }
        for no in ["reg.lan:5001", "example.com", "10.0.0.1:5000", "docker.io"] {
            assert!(!c.plain_http_allowed(no), "{no}");
        }
    }
}

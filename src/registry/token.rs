//! Authorization of requests: the credential for a registry (from the Docker config), the
//! `Authorization` header a `WWW-Authenticate` challenge asks for (basic, or a bearer token
//! fetched from the realm with the credential when the realm is trusted), and the token cache.

use super::auth::{Challenge, Credential, DockerConfig, redact};
use super::endpoint::Endpoint;
use super::session::{Client, error_body, lock, read_limited, scope_repo};
use super::{RegistryError, Result, auth};
use reqwest::header;
use reqwest::{StatusCode, Url};
use std::time::{Duration, Instant};

impl Client {
    pub(super) fn credential(&self, registry: &str) -> Result<Option<Credential>> {
        if let Some(c) = lock(&self.creds).get(registry) {
            return Ok(c.clone());
        }
        let dir = auth::config_dir(self.opts.docker_config_dir.as_deref());
        let c = DockerConfig::load(&dir)?.credential(registry)?;
        lock(&self.creds).insert(registry.to_string(), c.clone());
        Ok(c)
    }

    fn realm_trusted(&self, ep: &Endpoint, realm: &Url) -> bool {
        let same = realm.host_str() == ep.base.host_str()
            && realm.port_or_known_default() == ep.base.port_or_known_default();
        let hub = auth::is_docker_hub(&ep.registry) && realm.host_str() == Some("auth.docker.io");
        let listed = realm.host_str().is_some_and(|h| {
            let hp = match realm.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            };
            self.trusted_realms.iter().any(|t| t == &hp || t == h)
        });
        (same || hub || listed) && (realm.scheme() == "https" || ep.base.scheme() == "http")
    }

    fn token(
        &self,
        ep: &Endpoint,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<String> {
        let key = (ep.registry.clone(), scopes.join(" "));
        if let Some((t, exp)) = lock(&self.tokens).get(&key)
            && *exp > Instant::now() + Duration::from_secs(5)
        {
            return Ok(t.clone());
        }
        let auth_err = |reason: String| RegistryError::Auth {
            registry: ep.registry.clone(),
            realm: redact(realm),
            reason,
        };
        let realm_url =
            Url::parse(realm).map_err(|e| auth_err(format!("invalid realm URL: {e}")))?;
        let cred = if self.realm_trusted(ep, &realm_url) {
            self.credential(&ep.registry)?
        } else {
            None
        };
        let resp = match &cred {
            Some(Credential::IdentityToken { token, .. }) => {
                let mut form: Vec<(&str, String)> = vec![
                    ("grant_type", "refresh_token".into()),
                    ("refresh_token", token.clone()),
                    ("client_id", "hoist".into()),
                    ("access_type", "offline".into()),
                ];
                if let Some(s) = service {
                    form.push(("service", s.to_string()));
                }
                if !scopes.is_empty() {
                    form.push(("scope", scopes.join(" ")));
                }
                let body = form
                    .iter()
                    .map(|(k, v)| format!("{k}={}", url_encode(v)))
                    .collect::<Vec<_>>()
                    .join("&");
                self.send_simple(
                    || {
                        ep.http
                            .post(realm_url.clone())
                            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                            .body(body.clone())
                    },
                    realm,
                )?
            }
            other => {
                let mut u = realm_url.clone();
                {
                    let mut q = u.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    for s in scopes {
                        q.append_pair("scope", s);
                    }
                }
                self.send_simple(
                    || match other {
                        Some(Credential::Basic { username, password }) => {
                            ep.http.get(u.clone()).basic_auth(username, Some(password))
                        }
                        _ => ep.http.get(u.clone()),
                    },
                    realm,
                )?
            }
        };
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(RegistryError::Unauthorized {
                registry: ep.registry.clone(),
                repository: scope_repo(scopes),
                scope: scopes.join(" "),
                status: status.as_u16(),
                body: error_body(resp),
            });
        }
        if !status.is_success() {
            return Err(auth_err(format!(
                "HTTP {}: {}",
                status.as_u16(),
                error_body(resp)
            )));
        }
        let bytes = read_limited(resp, 1 << 20, "token response", realm)?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| auth_err(format!("invalid JSON: {e}")))?;
        let tok = v
            .get("token")
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .or_else(|| v.get("access_token").and_then(|t| t.as_str()))
            .ok_or_else(|| auth_err("response has no token".into()))?
            .to_string();
        let secs = v
            .get("expires_in")
            .and_then(|e| e.as_u64())
            .unwrap_or(60)
            .max(10);
        lock(&self.tokens).insert(
            key,
            (tok.clone(), Instant::now() + Duration::from_secs(secs)),
        );
        Ok(tok)
    }

    pub(super) fn auth_header(&self, ep: &Endpoint, scopes: &[String]) -> Result<Option<String>> {
        let ch = lock(&ep.challenge).clone();
        match ch {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self
                .credential(&ep.registry)?
                .and_then(|c| c.basic_header())),
            Some(Challenge::Bearer { realm, service, .. }) => Ok(Some(format!(
                "Bearer {}",
                self.token(ep, &realm, service.as_deref(), scopes)?
            ))),
        }
    }
}

fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encode_escapes() {
        assert_eq!(url_encode("a b/c"), "a%20b%2Fc");
    }
}

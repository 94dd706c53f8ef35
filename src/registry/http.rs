//! HTTP plumbing: scheme and host per registry, custom CAs, retries with backoff, the
//! `WWW-Authenticate` dance (bearer tokens cached per scope, basic auth), and redirects
//! followed by hand so `Authorization` never leaves the registry's host.

use super::auth::{self, Challenge, Credential};
use super::{RegistryError, RegistryOptions, Result};
use base64::Engine as _;
use reqwest::blocking::{Body, Client as RClient, RequestBuilder, Response};
use reqwest::header::{AUTHORIZATION, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode, Url};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Retries after the first attempt on connection errors, 5xx and 429.
const MAX_RETRIES: u32 = 4;
/// Longest wait between retries (also caps `Retry-After`).
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Longest error body quoted in messages.
const MAX_ERROR_BODY: usize = 400;

/// What a request is for: the repository and the actions its token must allow.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    pub registry: String,
    pub repository: String,
    /// `pull` or `pull,push`.
    pub actions: &'static str,
    /// More scopes (e.g. `repository:OTHER:pull` for a cross-repository mount).
    pub extra: Vec<String>,
}

impl Scope {
    pub fn new(registry: &str, repository: &str, actions: &'static str) -> Scope {
        Scope {
            registry: registry.to_string(),
            repository: repository.to_string(),
            actions,
            extra: Vec::new(),
        }
    }

    fn scopes(&self) -> Vec<String> {
        let mut v = vec![format!("repository:{}:{}", self.repository, self.actions)];
        v.extend(self.extra.iter().cloned());
        v
    }

    fn key(&self) -> String {
        format!("{}|{}", self.registry, self.scopes().join(" "))
    }
}

type BodyFn<'a> = &'a (dyn Fn() -> Result<Body> + Sync);

/// Shared HTTP state: clients per host, cached tokens and challenges, credentials.
pub(crate) struct Http {
    opts: RegistryOptions,
    config_dir: PathBuf,
    clients: Mutex<HashMap<String, RClient>>,
    tokens: Mutex<HashMap<String, (String, Option<Instant>)>>,
    challenges: Mutex<HashMap<String, Challenge>>,
    creds: Mutex<HashMap<String, Option<Credential>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `host[:port]` → host without brackets or port.
fn bare_host(hostport: &str) -> &str {
    if let Some(rest) = hostport.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    hostport
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(hostport)
}

fn url_hostport(u: &Url) -> String {
    match (u.host_str(), u.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => String::new(),
    }
}

fn jitter_ms(max: u64) -> u64 {
    if max == 0 {
        return 0;
    }
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(max);
    h.finish() % max
}

fn backoff(attempt: u32, retry_after: Option<u64>) -> Duration {
    if let Some(s) = retry_after {
        return Duration::from_secs(s).min(MAX_BACKOFF);
    }
    let base = 250u64.saturating_mul(1 << attempt.min(10));
    Duration::from_millis(base + jitter_ms(base / 2)).min(MAX_BACKOFF)
}

/// The error text of a reqwest error with its causes (no headers, so no secrets).
fn describe(e: &reqwest::Error) -> String {
    // The URL is named by the caller's error already.
    let mut s = match e.url() {
        Some(u) => e.to_string().replace(&format!(" for url ({u})"), ""),
        None => e.to_string(),
    };
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// The first bytes of an error body, on one line.
pub(crate) fn error_body(resp: Response) -> String {
    let text = resp.text().unwrap_or_default();
    let mut t: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if t.len() > MAX_ERROR_BODY {
        let mut cut = MAX_ERROR_BODY;
        while !t.is_char_boundary(cut) {
            cut -= 1;
        }
        t.truncate(cut);
        t.push('…');
    }
    if t.is_empty() {
        "(empty body)".into()
    } else {
        t
    }
}

impl Http {
    pub fn new(opts: RegistryOptions) -> Result<Http> {
        let config_dir = auth::docker_config_dir(opts.docker_config_dir.as_deref());
        Ok(Http {
            opts,
            config_dir,
            clients: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            challenges: Mutex::new(HashMap::new()),
            creds: Mutex::new(HashMap::new()),
        })
    }

    /// The config.json directory in use.
    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    /// True when `registry` is reached over plain HTTP.
    pub fn is_plain_http(&self, registry: &str) -> bool {
        let host = bare_host(registry);
        if host == "localhost" || host == "::1" {
            return true;
        }
        if let Ok(ip) = host.parse::<std::net::Ipv4Addr>()
            && ip.octets()[0] == 127
        {
            return true;
        }
        self.opts
            .insecure
            .iter()
            .any(|i| i == registry || i == host)
    }

    /// `https://registry-1.docker.io`, `http://localhost:5000`, …
    pub fn base_url(&self, registry: &str) -> String {
        let host = if registry == super::reference::DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            registry
        };
        let scheme = if self.is_plain_http(registry) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{host}")
    }

    /// A client for `hostport`, trusting `/etc/docker/certs.d/HOSTPORT/*.crt` and
    /// `$SSL_CERT_FILE` on top of the system roots. Redirects are never followed by reqwest.
    fn client_for(&self, hostport: &str) -> Result<RClient> {
        if let Some(c) = lock(&self.clients).get(hostport) {
            return Ok(c.clone());
        }
        let mut certs = Vec::new();
        let mut files: Vec<PathBuf> = Vec::new();
        if let Some(f) = std::env::var_os("SSL_CERT_FILE") {
            files.push(PathBuf::from(f));
        }
        let dirs = [
            format!("/etc/docker/certs.d/{hostport}"),
            format!("/etc/docker/certs.d/{}", bare_host(hostport)),
        ];
        for d in dirs.iter() {
            if let Ok(rd) = std::fs::read_dir(d) {
                files.extend(
                    rd.flatten()
                        .map(|e| e.path())
                        .filter(|p| p.extension().is_some_and(|x| x == "crt")),
                );
            }
        }
        for f in files {
            let pem = std::fs::read(&f).map_err(|source| RegistryError::Io {
                path: f.clone(),
                source,
            })?;
            let mut c =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| RegistryError::Config {
                    path: f.clone(),
                    message: format!("not a PEM certificate bundle: {}", describe(&e)),
                })?;
            certs.append(&mut c);
        }
        let client = RClient::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(30))
            .timeout(None)
            .user_agent(concat!("hoist/", env!("CARGO_PKG_VERSION")))
            .tls_certs_merge(certs)
            .build()
            .map_err(|e| RegistryError::ClientSetup(describe(&e)))?;
        lock(&self.clients).insert(hostport.to_string(), client.clone());
        Ok(client)
    }

    fn credentials(&self, registry: &str) -> Result<Option<Credential>> {
        if let Some(c) = lock(&self.creds).get(registry) {
            return Ok(c.clone());
        }
        let c = auth::lookup(&self.config_dir, registry)?;
        lock(&self.creds).insert(registry.to_string(), c.clone());
        Ok(c)
    }

    /// Sends a request (the registry's own host gets `Authorization`), following GET/HEAD
    /// redirects by hand and dropping credentials when a redirect leaves that host.
    fn execute(
        &self,
        method: &Method,
        url: &str,
        headers: &[(&str, String)],
        auth: Option<&str>,
        auth_host: &str,
        body: Option<Body>,
    ) -> std::result::Result<reqwest::Result<Response>, RegistryError> {
        let mut target = match Url::parse(url) {
            Ok(u) => u,
            Err(e) => {
                return Err(RegistryError::Connect {
                    url: url.to_string(),
                    message: format!("invalid URL: {e}"),
                });
            }
        };
        let mut body = body;
        for _hop in 0..10 {
            let hostport = url_hostport(&target);
            let client = self.client_for(&hostport)?;
            let mut rb: RequestBuilder = client.request(method.clone(), target.clone());
            for (k, v) in headers {
                rb = rb.header(*k, v.as_str());
            }
            if let Some(a) = auth
                && hostport == auth_host
            {
                rb = rb.header(AUTHORIZATION, a);
            }
            if let Some(b) = body.take() {
                rb = rb.body(b);
            }
            let resp = match rb.send() {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            let follow = resp.status().is_redirection()
                && (*method == Method::GET || *method == Method::HEAD);
            if !follow {
                return Ok(Ok(resp));
            }
            let next = resp
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| target.join(l).ok());
            match next {
                Some(n) => target = n,
                None => return Ok(Ok(resp)),
            }
        }
        Err(RegistryError::Connect {
            url: url.to_string(),
            message: "more than 10 redirects".into(),
        })
    }

    /// Calls `attempt` until it yields a final answer: connection errors, 5xx and 429 are
    /// retried up to `MAX_RETRIES` times with backoff and jitter (honouring `Retry-After`).
    fn retrying(
        &self,
        url: &str,
        mut attempt: impl FnMut() -> Result<reqwest::Result<Response>>,
    ) -> Result<Response> {
        let mut n = 0;
        loop {
            match attempt()? {
                Err(e) => {
                    // A certificate the client does not trust will not change by retrying.
                    let tls = describe(&e).to_ascii_lowercase().contains("certificate");
                    if n < MAX_RETRIES && !e.is_builder() && !tls {
                        std::thread::sleep(backoff(n, None));
                        n += 1;
                        continue;
                    }
                    return Err(RegistryError::Connect {
                        url: url.to_string(),
                        message: describe(&e),
                    });
                }
                Ok(r) => {
                    let st = r.status();
                    if (st.is_server_error() || st == StatusCode::TOO_MANY_REQUESTS)
                        && n < MAX_RETRIES
                    {
                        let ra = r
                            .headers()
                            .get(RETRY_AFTER)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<u64>().ok());
                        std::thread::sleep(backoff(n, ra));
                        n += 1;
                        continue;
                    }
                    return Ok(r);
                }
            }
        }
    }

    /// The `Authorization` value for `scope` when one is cached or can be had without a 401
    /// round trip (the registry's challenge is already known).
    fn auth_for(&self, scope: &Scope) -> Result<Option<String>> {
        if let Some((h, exp)) = lock(&self.tokens).get(&scope.key())
            && exp.is_none_or(|e| Instant::now() < e)
        {
            return Ok(Some(h.clone()));
        }
        let ch = lock(&self.challenges).get(&scope.registry).cloned();
        match ch {
            Some(ch) => self.authorize(scope, &ch).map(Some),
            None => Ok(None),
        }
    }

    fn unauthorized(&self, scope: &Scope, status: u16, body: String) -> RegistryError {
        RegistryError::Unauthorized {
            status,
            registry: scope.registry.clone(),
            repository: scope.repository.clone(),
            scope: scope.scopes().join(" "),
            body,
        }
    }

    /// Answers a challenge for `scope`; caches and returns the `Authorization` value.
    fn authorize(&self, scope: &Scope, ch: &Challenge) -> Result<String> {
        let creds = self.credentials(&scope.registry)?;
        let (value, expiry) = match ch {
            Challenge::Basic => match creds {
                Some(Credential::Basic { username, password }) => {
                    let b = base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{password}"));
                    (format!("Basic {b}"), None)
                }
                _ => {
                    return Err(self.unauthorized(
                        scope,
                        401,
                        "the registry wants basic auth and no user name and password are known for it".into(),
                    ));
                }
            },
            Challenge::Bearer { realm, service } => {
                let (tok, secs) =
                    self.fetch_token(scope, realm, service.as_deref(), creds.as_ref())?;
                let ttl = Duration::from_secs(secs.max(60).saturating_sub(10));
                (format!("Bearer {tok}"), Some(Instant::now() + ttl))
            }
        };
        lock(&self.tokens).insert(scope.key(), (value.clone(), expiry));
        Ok(value)
    }

    /// Gets a bearer token from `realm` (GET with basic credentials, or the OAuth2 POST form
    /// with an identity token). Returns the token and its lifetime in seconds.
    fn fetch_token(
        &self,
        scope: &Scope,
        realm: &str,
        service: Option<&str>,
        creds: Option<&Credential>,
    ) -> Result<(String, u64)> {
        let realm_url = Url::parse(realm).map_err(|e| RegistryError::Challenge {
            registry: scope.registry.clone(),
            challenge: format!("realm {realm:?}: {e}"),
        })?;
        // Credentials never travel in clear text to a realm of a TLS registry.
        let creds = if realm_url.scheme() == "http" && !self.is_plain_http(&scope.registry) {
            None
        } else {
            creds
        };
        let scopes = scope.scopes();
        let realm_host = url_hostport(&realm_url);
        let resp = self.retrying(realm, || {
            let client = self.client_for(&realm_host)?;
            let rb = match creds {
                Some(Credential::IdentityToken(t)) => {
                    let mut form: Vec<(&str, &str)> = vec![
                        ("grant_type", "refresh_token"),
                        ("refresh_token", t),
                        ("client_id", "hoist"),
                    ];
                    if let Some(s) = service {
                        form.push(("service", s));
                    }
                    let joined = scopes.join(" ");
                    let body = serde_urlencode(&form, &joined);
                    client
                        .post(realm_url.clone())
                        .header("Content-Type", "application/x-www-form-urlencoded")
                        .body(body)
                }
                other => {
                    let mut u = realm_url.clone();
                    {
                        let mut q = u.query_pairs_mut();
                        if let Some(s) = service {
                            q.append_pair("service", s);
                        }
                        for s in &scopes {
                            q.append_pair("scope", s);
                        }
                    }
                    let mut rb = client.get(u);
                    if let Some(Credential::Basic { username, password }) = other {
                        rb = rb.basic_auth(username, Some(password));
                    }
                    rb
                }
            };
            Ok(rb.send())
        })?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(self.unauthorized(scope, status.as_u16(), error_body(resp)));
        }
        if !status.is_success() {
            return Err(RegistryError::Token {
                realm: realm.to_string(),
                registry: scope.registry.clone(),
                status: status.as_u16(),
                body: error_body(resp),
            });
        }
        let v: serde_json::Value = resp.json().map_err(|e| RegistryError::Token {
            realm: realm.to_string(),
            registry: scope.registry.clone(),
            status: status.as_u16(),
            body: format!("invalid token response: {}", describe(&e)),
        })?;
        let tok = v
            .get("token")
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .or_else(|| v.get("access_token").and_then(|t| t.as_str()))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| RegistryError::Token {
                realm: realm.to_string(),
                registry: scope.registry.clone(),
                status: status.as_u16(),
                body: "the answer has no token".into(),
            })?;
        let secs = v.get("expires_in").and_then(|e| e.as_u64()).unwrap_or(60);
        Ok((tok.to_string(), secs))
    }

    /// Sends `method url` for `scope` with auth, retries and redirects. A 401 is answered
    /// once (challenge → token); a second 401 or a 403 becomes `Unauthorized`.
    pub fn send(
        &self,
        scope: &Scope,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Option<BodyFn<'_>>,
    ) -> Result<Response> {
        let api_host = Url::parse(&self.base_url(&scope.registry))
            .map(|u| url_hostport(&u))
            .unwrap_or_default();
        let mut reauthed = false;
        loop {
            let auth = self.auth_for(scope)?;
            let resp = self.retrying(url, || {
                let b = match body {
                    Some(f) => Some(f()?),
                    None => None,
                };
                self.execute(&method, url, headers, auth.as_deref(), &api_host, b)
            })?;
            let st = resp.status();
            if st == StatusCode::UNAUTHORIZED && !reauthed {
                let hdr = resp
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("");
                let Some(ch) = auth::parse_challenge(hdr) else {
                    if hdr.is_empty() {
                        return Err(self.unauthorized(scope, 401, error_body(resp)));
                    }
                    return Err(RegistryError::Challenge {
                        registry: scope.registry.clone(),
                        challenge: hdr.into(),
                    });
                };
                lock(&self.challenges).insert(scope.registry.clone(), ch.clone());
                lock(&self.tokens).remove(&scope.key());
                self.authorize(scope, &ch)?;
                reauthed = true;
                continue;
            }
            if st == StatusCode::UNAUTHORIZED || st == StatusCode::FORBIDDEN {
                return Err(self.unauthorized(scope, st.as_u16(), error_body(resp)));
            }
            return Ok(resp);
        }
    }

    /// Checks credentials against `registry` (for `hoist login`): GET /v2/ and, when
    /// challenged, a token or basic auth with exactly these credentials.
    pub fn check_login(&self, registry: &str, cred: Credential) -> Result<()> {
        lock(&self.creds).insert(registry.to_string(), Some(cred));
        let url = format!("{}/v2/", self.base_url(registry));
        let scope = Scope {
            registry: registry.to_string(),
            repository: String::new(),
            actions: "",
            extra: vec![],
        };
        let api_host = Url::parse(&url)
            .map(|u| url_hostport(&u))
            .unwrap_or_default();
        let resp = self.retrying(&url, || {
            self.execute(&Method::GET, &url, &[], None, &api_host, None)
        })?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(());
        }
        let hdr = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .to_string();
        let ch = auth::parse_challenge(&hdr).ok_or_else(|| RegistryError::Challenge {
            registry: registry.to_string(),
            challenge: hdr.clone(),
        })?;
        let value = match &ch {
            Challenge::Bearer { realm, service } => {
                // A login check asks for no repository scope.
                let creds = self.credentials(registry)?;
                let s = Scope {
                    extra: vec![],
                    ..scope.clone()
                };
                let (tok, _) =
                    self.fetch_token_unscoped(&s, realm, service.as_deref(), creds.as_ref())?;
                format!("Bearer {tok}")
            }
            Challenge::Basic => self.authorize(&scope, &ch)?,
        };
        let resp = self.retrying(&url, || {
            self.execute(&Method::GET, &url, &[], Some(&value), &api_host, None)
        })?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(self.unauthorized(&scope, resp.status().as_u16(), error_body(resp)))
        }
    }

    fn fetch_token_unscoped(
        &self,
        scope: &Scope,
        realm: &str,
        service: Option<&str>,
        creds: Option<&Credential>,
    ) -> Result<(String, u64)> {
        // Scope with an empty repository would be malformed; ask with the service only.
        let realm_url = Url::parse(realm).map_err(|e| RegistryError::Challenge {
            registry: scope.registry.clone(),
            challenge: format!("realm {realm:?}: {e}"),
        })?;
        let mut u = realm_url.clone();
        if let Some(s) = service {
            u.query_pairs_mut().append_pair("service", s);
        }
        let host = url_hostport(&realm_url);
        let resp = self.retrying(realm, || {
            let mut rb = self.client_for(&host)?.get(u.clone());
            if let Some(Credential::Basic { username, password }) = creds {
                rb = rb.basic_auth(username, Some(password));
            }
            Ok(rb.send())
        })?;
        let st = resp.status();
        if !st.is_success() {
            return Err(self.unauthorized(scope, st.as_u16(), error_body(resp)));
        }
        let v: serde_json::Value = resp.json().map_err(|e| RegistryError::Token {
            realm: realm.to_string(),
            registry: scope.registry.clone(),
            status: st.as_u16(),
            body: describe(&e),
        })?;
        let tok = v
            .get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .unwrap_or("");
        Ok((tok.to_string(), 60))
    }
}

/// `application/x-www-form-urlencoded` body of `pairs` plus `scope`.
fn serde_urlencode(pairs: &[(&str, &str)], scope: &str) -> String {
    fn enc(s: &str) -> String {
        let mut o = String::new();
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    o.push(b as char)
                }
                b' ' => o.push('+'),
                _ => o.push_str(&format!("%{b:02X}")),
            }
        }
        o
    }
    let mut parts: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    if !scope.is_empty() {
        parts.push(format!("scope={}", enc(scope)));
    }
    parts.join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_and_hosts() {
        let h = Http::new(RegistryOptions {
            insecure: vec!["myreg:5000".into()],
            docker_config_dir: None,
        })
        .unwrap();
        assert_eq!(h.base_url("docker.io"), "https://registry-1.docker.io");
        assert_eq!(h.base_url("localhost:5000"), "http://localhost:5000");
        assert_eq!(h.base_url("127.0.0.5:80"), "http://127.0.0.5:80");
        assert_eq!(h.base_url("[::1]:5000"), "http://[::1]:5000");
        assert_eq!(h.base_url("myreg:5000"), "http://myreg:5000");
        assert_eq!(h.base_url("myreg:5001"), "https://myreg:5001");
        assert_eq!(h.base_url("ghcr.io"), "https://ghcr.io");
    }

    #[test]
    fn backoff_is_bounded() {
        assert!(backoff(0, None) < Duration::from_millis(400));
        assert!(backoff(10, None) <= MAX_BACKOFF);
        assert_eq!(backoff(0, Some(3)), Duration::from_secs(3));
        assert_eq!(backoff(0, Some(3600)), MAX_BACKOFF);
    }
}

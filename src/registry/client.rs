//! The blocking Distribution API v2 client: endpoint discovery (HTTPS, plain HTTP only for
//! loopback and `--insecure-registry`), auth from `WWW-Authenticate` challenges with a token
//! cache, retries, and verified pull/push of manifests and blobs.

use super::auth::{self, Challenge, Credential, DockerConfig, redact};
use super::retry::RetryPolicy;
use super::timeout::{self, Deadline, TimeLimit, format_duration};
use super::{ImageRef, PulledImage, RegistryError, RegistryOptions, Result};
use crate::oci::{Descriptor, Digest, Index, Manifest, Platform, media};
use crate::store::{MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, Store, StoreError};
use reqwest::blocking::{Body, Client as Http, RequestBuilder, Response};
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, StatusCode, Url};
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What a transfer is doing, for progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressKind {
    /// The blob is already present (locally for pulls, remotely for pushes).
    Exists,
    /// Bytes moving: `current` of `total`.
    Downloading,
    /// Downloaded and verified.
    Downloaded,
    /// Bytes being uploaded.
    Pushing,
    /// Uploaded and accepted by the registry.
    Pushed,
    /// Mounted from another repository of the same registry (`from`).
    Mounted { from: String },
    /// A failure that will be retried.
    Retrying { reason: String },
}

/// A progress event; `id` is the short digest of the blob (or the URL for retries).
#[derive(Debug, Clone)]
pub struct Progress {
    /// Short digest of the blob, or the URL being retried.
    pub id: String,
    /// What is happening.
    pub kind: ProgressKind,
    /// Bytes done so far.
    pub current: u64,
    /// Bytes in all (the descriptor's size).
    pub total: u64,
}

type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// One registry's endpoint: base URL, HTTP client (with its CAs) and last auth challenge.
struct Endpoint {
    registry: String,
    base: Url,
    http: Http,
    challenge: Mutex<Option<Challenge>>,
}

/// A registry client. Cheap to share across threads (`&Client` is `Sync`).
pub struct Client {
    opts: RegistryOptions,
    certs_dir: PathBuf,
    policy: RetryPolicy,
    operation_limit: TimeLimit,
    idle: TimeLimit,
    chunk_size: u64,
    monolithic_max: u64,
    parallel: usize,
    trusted_realms: Vec<String>,
    progress: Option<ProgressFn>,
    endpoints: Mutex<HashMap<String, Arc<Endpoint>>>,
    tokens: Mutex<HashMap<(String, String), (String, Instant)>>,
    creds: Mutex<HashMap<String, Option<Credential>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

fn push_scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

fn scope_repo(scopes: &[String]) -> String {
    scopes
        .first()
        .and_then(|s| s.split(':').nth(1))
        .unwrap_or("")
        .to_string()
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

fn read_limited(resp: Response, limit: u64, what: &str, url: &str) -> Result<Vec<u8>> {
    if resp.content_length().is_some_and(|l| l > limit) {
        return Err(RegistryError::TooLarge {
            what: what.into(),
            url: redact(url),
            limit,
        });
    }
    let mut buf = Vec::new();
    resp.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| RegistryError::Connection {
            url: redact(url),
            reason: format!("reading {what}: {e}"),
        })?;
    if buf.len() as u64 > limit {
        return Err(RegistryError::TooLarge {
            what: what.into(),
            url: redact(url),
            limit,
        });
    }
    Ok(buf)
}

fn error_body(resp: Response) -> String {
    let mut s = String::new();
    let _ = resp.take(2048).read_to_string(&mut s);
    let s = s.trim();
    if s.is_empty() {
        "(empty body)".to_string()
    } else {
        redact(s)
    }
}

fn err_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    redact(&s)
}

/// Reads a response body on a helper thread, so that the caller can stop waiting at the
/// operation's deadline: a read of reqwest's blocking client cannot be interrupted and may
/// wait up to the idle limit. An abandoned thread ends after that read (its receiver gone),
/// dropping the response and its connection.
struct BodyReader {
    rx: Receiver<std::io::Result<Vec<u8>>>,
}

impl BodyReader {
    fn start(mut resp: Response) -> BodyReader {
        let (tx, rx) = mpsc::sync_channel(2);
        std::thread::spawn(move || {
            loop {
                let mut buf = vec![0u8; 256 << 10];
                let read = resp.read(&mut buf).map(|n| {
                    buf.truncate(n);
                    buf
                });
                let more = matches!(&read, Ok(b) if !b.is_empty());
                if tx.send(read).is_err() || !more {
                    return;
                }
            }
        });
        BodyReader { rx }
    }

    /// The next piece of the body (empty at its end), or the timeout once `dl` has passed.
    fn next(&self, dl: &Deadline) -> Result<std::io::Result<Vec<u8>>> {
        loop {
            dl.check()?;
            let got = match dl.remaining() {
                Some(left) => self.rx.recv_timeout(left),
                None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match got {
                Ok(read) => return Ok(read),
                // The deadline: `check` above turns it into the error.
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    return Ok(Err(std::io::Error::other("the body reader thread ended")));
                }
            }
        }
    }
}

/// Adds headers and a body to a request (once per attempt).
type Build<'a> = &'a dyn Fn(RequestBuilder) -> Result<RequestBuilder>;

fn no_body(rb: RequestBuilder) -> Result<RequestBuilder> {
    Ok(rb)
}

/// One request to a registry, as [`Client::send`] makes it.
struct Req<'a> {
    method: Method,
    url: &'a Url,
    /// Retries connection errors, 5xx and 429 (off where a retry is not safe).
    retry: bool,
    /// Streams a blob to the registry: no idle bound before the response head (see
    /// [`Client::request_timeout`]).
    upload: bool,
    build: Build<'a>,
}

impl<'a> Req<'a> {
    fn new(method: Method, url: &'a Url) -> Req<'a> {
        Req {
            method,
            url,
            retry: true,
            upload: false,
            build: &no_body,
        }
    }

    fn with(self, build: Build<'a>) -> Req<'a> {
        Req { build, ..self }
    }

    fn no_retry(self) -> Req<'a> {
        Req {
            retry: false,
            ..self
        }
    }

    fn upload(self) -> Req<'a> {
        Req {
            upload: true,
            ..self
        }
    }
}

/// The statuses a request expects (anything else is an error, see [`Client::send_expect`]).
#[derive(Clone, Copy)]
enum Expect {
    /// Any 2xx.
    Success,
    /// One of these.
    Status(&'static [StatusCode]),
}

impl Expect {
    fn allows(self, st: StatusCode) -> bool {
        match self {
            Expect::Success => st.is_success(),
            Expect::Status(list) => list.contains(&st),
        }
    }
}

/// A reader that reports upload progress.
struct ProgressReader<R> {
    inner: R,
    cb: Option<ProgressFn>,
    id: String,
    done: u64,
    total: u64,
    last: u64,
}

impl<R: Read> Read for ProgressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if let Some(cb) = &self.cb
            && (self.done - self.last >= 1 << 20 || n == 0)
        {
            self.last = self.done;
            cb(&Progress {
                id: self.id.clone(),
                kind: ProgressKind::Pushing,
                current: self.done,
                total: self.total,
            });
        }
        Ok(n)
    }
}

impl Client {
    /// A client; nothing is contacted until the first request.
    pub fn new(opts: RegistryOptions) -> Result<Client> {
        Ok(Client {
            opts,
            certs_dir: PathBuf::from("/etc/docker/certs.d"),
            policy: RetryPolicy::default(),
            operation_limit: TimeLimit::DEFAULT_OPERATION,
            idle: TimeLimit::DEFAULT_IDLE,
            chunk_size: 32 << 20,
            monolithic_max: 16 << 20,
            parallel: 3,
            trusted_realms: Vec::new(),
            progress: None,
            endpoints: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            creds: Mutex::new(HashMap::new()),
        })
    }

    /// Where per-registry CAs live (default `/etc/docker/certs.d`; `HOST[:PORT]/*.crt`).
    pub fn set_certs_dir(&mut self, dir: &Path) {
        self.certs_dir = dir.to_path_buf();
    }

    /// Retry attempts, first backoff and cap (also the cap on `Retry-After`).
    pub fn set_retry(&mut self, attempts: u32, base: Duration, max: Duration) {
        self.policy = RetryPolicy {
            attempts: attempts.max(1),
            base,
            max,
        };
    }

    /// Time limits: `operation` bounds one whole operation (see [`Client::operation`]; default
    /// 30 minutes), `idle` one request that receives nothing (default 60 seconds; a request
    /// that keeps receiving is never cut, and an idle one fails as a retryable connection
    /// error). Set before the first request: the idle limit is built into each registry's
    /// HTTP client.
    pub fn set_timeouts(&mut self, operation: TimeLimit, idle: TimeLimit) {
        self.operation_limit = operation;
        self.idle = idle;
    }

    /// Runs `f` as one registry operation described by `what` (`pulling r/a:1`): every
    /// request, retry and backoff inside it, on this thread or the ones the client starts
    /// for it, shares one deadline, the operation limit from now. The time left is checked
    /// before each attempt, caps each backoff sleep and each request's timeout when shorter
    /// than the idle limit, and bounds the wait for each piece of a blob download (abandoned
    /// then, its temporary file removed). Once it has passed, the error is
    /// [`RegistryError::Timeout`] naming `what`. (A small response body, a manifest or an
    /// error message, stalling at that moment may hold the error back by up to the idle
    /// limit.) Inside another operation, `f` simply runs under the outer deadline. Pulls,
    /// pushes and the other public methods open their own operation; callers group several
    /// calls into one (a cache import) with this.
    pub fn operation<T, E>(
        &self,
        what: impl Into<String>,
        f: impl FnOnce() -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        if timeout::current().is_some() {
            return f();
        }
        let _scope = timeout::enter(Some(Deadline::start(what.into(), self.operation_limit)));
        f()
    }

    /// The deadline of the operation under way on this thread.
    fn deadline(&self) -> Deadline {
        timeout::current().unwrap_or_else(Deadline::unlimited)
    }

    /// The timeout to set on one request, if any. The HTTP client's own timeout is the idle
    /// limit, which reqwest's blocking client applies to the wait for the response head
    /// (sending the body included) and to each read of the body: a download that keeps
    /// receiving is never cut. A request's own timeout replaces it and also bounds the whole
    /// request, so it is set only
    /// - when the operation has less time left than the idle limit: the time left;
    /// - on a blob upload: the time left, or no limit. Its body may take minutes on a slow
    ///   link; the sockets' TCP_USER_TIMEOUT (the idle limit) cuts a peer that stops
    ///   acknowledging the bytes sent, the deadline one that takes them and never answers.
    fn request_timeout(&self, dl: &Deadline, upload: bool) -> Option<Duration> {
        /// "No limit" for reqwest, which has no way to unset the client's timeout for one
        /// request.
        const NO_LIMIT: Duration = Duration::from_secs(365 * 24 * 3600);
        let left = dl.remaining();
        if upload {
            return Some(left.unwrap_or(NO_LIMIT));
        }
        left.filter(|l| self.idle.0.is_none_or(|idle| *l < idle))
    }

    /// A request error as text; an idle timeout says so.
    fn request_error(&self, e: &reqwest::Error) -> String {
        match self.idle.0 {
            Some(i) if e.is_timeout() => format!(
                "nothing received for {} (idle timeout): {}",
                format_duration(i),
                err_chain(e)
            ),
            _ => err_chain(e),
        }
    }

    /// A read error of a response body as text; an idle timeout says so.
    fn read_error(&self, e: &std::io::Error) -> String {
        let timed_out = e.kind() == std::io::ErrorKind::TimedOut
            || e.get_ref()
                .and_then(|x| x.downcast_ref::<reqwest::Error>())
                .is_some_and(reqwest::Error::is_timeout);
        match self.idle.0 {
            Some(i) if timed_out => format!(
                "nothing received for {} (idle timeout): {}",
                format_duration(i),
                err_chain(e)
            ),
            _ => err_chain(e),
        }
    }

    /// Upload chunk size, and the largest blob uploaded in one `PUT`.
    pub fn set_upload_sizes(&mut self, chunk: u64, monolithic_max: u64) {
        self.chunk_size = chunk.max(1);
        self.monolithic_max = monolithic_max;
    }

    /// Allows credentials to be sent to a token realm on `host[:port]` (other than the
    /// registry's own origin, which is always trusted).
    pub fn trust_token_realm(&mut self, host_port: &str) {
        self.trusted_realms.push(host_port.to_string());
    }

    /// Receives progress events (from several threads).
    pub fn set_progress(&mut self, f: impl Fn(&Progress) + Send + Sync + 'static) {
        self.progress = Some(Arc::new(f));
    }

    fn emit(&self, id: &str, kind: ProgressKind, current: u64, total: u64) {
        if let Some(cb) = &self.progress {
            cb(&Progress {
                id: id.to_string(),
                kind,
                current,
                total,
            });
        }
    }

    fn explicitly_insecure(&self, registry: &str) -> bool {
        let host = bare_host(registry);
        self.opts
            .insecure
            .iter()
            .any(|i| i == registry || i == host)
    }

    fn plain_http_allowed(&self, registry: &str) -> bool {
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

    fn endpoint(&self, registry: &str) -> Result<Arc<Endpoint>> {
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

    fn credential(&self, registry: &str) -> Result<Option<Credential>> {
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

    fn send_simple(&self, rb: impl Fn() -> RequestBuilder, url: &str) -> Result<Response> {
        let dl = self.deadline();
        let mut attempt = 0;
        loop {
            dl.check()?;
            let mut req = rb();
            if let Some(t) = self.request_timeout(&dl, false) {
                req = req.timeout(t);
            }
            let sent = req.send();
            dl.check()?;
            match sent {
                Ok(r)
                    if (r.status().is_server_error()
                        || r.status() == StatusCode::TOO_MANY_REQUESTS)
                        && attempt + 1 < self.policy.attempts =>
                {
                    let wait = self.wait_for(r.headers(), attempt);
                    self.emit(
                        url,
                        ProgressKind::Retrying {
                            reason: format!("HTTP {}", r.status().as_u16()),
                        },
                        0,
                        0,
                    );
                    std::thread::sleep(dl.cap(wait));
                }
                Ok(r) => return Ok(r),
                Err(e) if attempt + 1 < self.policy.attempts => {
                    self.emit(
                        url,
                        ProgressKind::Retrying {
                            reason: self.request_error(&e),
                        },
                        0,
                        0,
                    );
                    std::thread::sleep(dl.cap(self.policy.backoff(attempt)));
                }
                Err(e) => {
                    return Err(RegistryError::Connection {
                        url: redact(url),
                        reason: self.request_error(&e),
                    });
                }
            }
            attempt += 1;
        }
    }

    fn wait_for(&self, headers: &HeaderMap, attempt: u32) -> Duration {
        headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| self.policy.retry_after(v))
            .unwrap_or_else(|| self.policy.backoff(attempt))
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

    fn auth_header(&self, ep: &Endpoint, scopes: &[String]) -> Result<Option<String>> {
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

    /// Sends a request to the registry with auth, re-authenticating once on 401 and retrying
    /// connection errors (idle timeouts included), 5xx and 429 when `req.retry`; `req.build`
    /// adds headers and body and is called per attempt. Each attempt and each backoff is
    /// bounded by the operation's deadline; once it has passed the error is the timeout.
    fn send(&self, ep: &Endpoint, scopes: &[String], req: &Req<'_>) -> Result<Response> {
        let dl = self.deadline();
        let url = req.url;
        let method = &req.method;
        let same_origin = url.origin() == ep.base.origin();
        let mut attempt = 0;
        let mut reauthed = false;
        loop {
            dl.check()?;
            let mut rb = ep.http.request(method.clone(), url.clone());
            if same_origin && let Some(h) = self.auth_header(ep, scopes)? {
                rb = rb.header(header::AUTHORIZATION, h);
            }
            rb = (req.build)(rb)?;
            if let Some(t) = self.request_timeout(&dl, req.upload) {
                rb = rb.timeout(t);
            }
            let sent = rb.send();
            // A request cut by the deadline (or one that ended just after it) is the timeout.
            dl.check()?;
            match sent {
                Err(e) => {
                    if req.retry && attempt + 1 < self.policy.attempts {
                        self.emit(
                            url.as_str(),
                            ProgressKind::Retrying {
                                reason: self.request_error(&e),
                            },
                            0,
                            0,
                        );
                        std::thread::sleep(dl.cap(self.policy.backoff(attempt)));
                        attempt += 1;
                        continue;
                    }
                    return Err(RegistryError::Connection {
                        url: redact(url.as_str()),
                        reason: format!("{method}: {}", self.request_error(&e)),
                    });
                }
                Ok(resp) => {
                    let st = resp.status();
                    if st == StatusCode::UNAUTHORIZED && !reauthed && same_origin {
                        let ch = resp
                            .headers()
                            .get(header::WWW_AUTHENTICATE)
                            .and_then(|v| v.to_str().ok())
                            .and_then(auth::parse_challenge);
                        if let Some(ch) = ch {
                            *lock(&ep.challenge) = Some(ch);
                            lock(&self.tokens).remove(&(ep.registry.clone(), scopes.join(" ")));
                            reauthed = true;
                            continue;
                        }
                    }
                    if req.retry
                        && (st.is_server_error() || st == StatusCode::TOO_MANY_REQUESTS)
                        && attempt + 1 < self.policy.attempts
                    {
                        let wait = self.wait_for(resp.headers(), attempt);
                        self.emit(
                            url.as_str(),
                            ProgressKind::Retrying {
                                reason: format!("HTTP {}", st.as_u16()),
                            },
                            0,
                            0,
                        );
                        std::thread::sleep(dl.cap(wait));
                        attempt += 1;
                        continue;
                    }
                    return Ok(resp);
                }
            }
        }
    }

    /// [`Client::send`], then the status check every call makes: a response whose status
    /// `expect` allows is returned, any other becomes [`Client::status_error`]'s error
    /// (denied with the scope, not found naming `what`, or the status with the registry's
    /// message).
    fn send_expect(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        req: &Req<'_>,
        expect: Expect,
        what: &str,
    ) -> Result<Response> {
        let resp = self.send(ep, scopes, req)?;
        if expect.allows(resp.status()) {
            return Ok(resp);
        }
        Err(self.status_error(ep, scopes, &req.method, req.url, what, resp))
    }

    fn status_error(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        method: &Method,
        url: &Url,
        what: &str,
        resp: Response,
    ) -> RegistryError {
        let status = resp.status();
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => RegistryError::Unauthorized {
                registry: ep.registry.clone(),
                repository: scope_repo(scopes),
                scope: scopes.join(" "),
                status: status.as_u16(),
                body: error_body(resp),
            },
            StatusCode::NOT_FOUND => RegistryError::NotFound {
                registry: ep.registry.clone(),
                what: what.to_string(),
                url: redact(url.as_str()),
            },
            _ => RegistryError::Status {
                method: method.to_string(),
                url: redact(url.as_str()),
                status: status.as_u16(),
                body: error_body(resp),
            },
        }
    }

    fn url(&self, ep: &Endpoint, path: &str) -> Result<Url> {
        ep.base.join(path).map_err(|e| RegistryError::Connection {
            url: format!("{}{path}", ep.base),
            reason: e.to_string(),
        })
    }

    /// Checks credentials against a registry (as `docker login` does) and remembers them for
    /// this client.
    pub fn login(&self, registry: &str, username: &str, password: &str) -> Result<()> {
        self.operation(format!("logging in to {registry}"), || {
            self.login_op(registry, username, password)
        })
    }

    fn login_op(&self, registry: &str, username: &str, password: &str) -> Result<()> {
        let ep = self.endpoint(registry)?;
        lock(&self.creds).insert(
            registry.to_string(),
            Some(Credential::Basic {
                username: username.to_string(),
                password: password.to_string(),
            }),
        );
        let url = self.url(&ep, "v2/")?;
        // A registry that never challenged did not check anything; still fine for Docker.
        self.send_expect(
            &ep,
            &[],
            &Req::new(Method::GET, &url),
            Expect::Success,
            "registry API /v2/",
        )?;
        Ok(())
    }

    fn fetch_manifest(
        &self,
        r: &ImageRef,
        reference: &str,
        scopes: &[String],
    ) -> Result<(Vec<u8>, String, Digest)> {
        let ep = self.endpoint(&r.registry)?;
        let url = self.url(&ep, &format!("v2/{}/manifests/{reference}", r.repository))?;
        let sep = if reference.starts_with("sha256:") {
            "@"
        } else {
            ":"
        };
        let resp = self.send_expect(
            &ep,
            scopes,
            &Req::new(Method::GET, &url)
                .with(&|rb| Ok(rb.header(header::ACCEPT, media::ACCEPT_MANIFESTS))),
            Expect::Success,
            &format!("manifest {}{sep}{reference}", r.name()),
        )?;
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        let bytes = read_limited(resp, MAX_MANIFEST_SIZE, "manifest", url.as_str())?;
        let digest = Digest::of(&bytes);
        if let Ok(want) = reference.parse::<Digest>()
            && want != digest
        {
            return Err(RegistryError::DigestMismatch {
                what: format!("manifest of {r}"),
                expected: want,
                actual: digest,
            });
        }
        let bad = |reason: String| RegistryError::BadManifest {
            url: redact(url.as_str()),
            reason,
        };
        let mt = classify_manifest(&bytes, &content_type).map_err(bad)?;
        Ok((bytes, mt, digest))
    }

    /// Fetches a manifest or index as the registry serves it: bytes, media type, digest.
    pub fn get_manifest(&self, r: &ImageRef) -> Result<(Vec<u8>, String, Digest)> {
        self.operation(format!("fetching the manifest of {r}"), || {
            self.get_manifest_op(r)
        })
    }

    fn get_manifest_op(&self, r: &ImageRef) -> Result<(Vec<u8>, String, Digest)> {
        self.fetch_manifest(r, &r.reference(), &[pull_scope(&r.repository)])
    }

    fn platform_manifest(
        &self,
        r: &ImageRef,
        platform: &Platform,
        scopes: &[String],
    ) -> Result<(Vec<u8>, String, Digest)> {
        let (bytes, mt, digest) = self.fetch_manifest(r, &r.reference(), scopes)?;
        if !media::is_index(&mt) {
            return Ok((bytes, mt, digest));
        }
        let idx: Index =
            serde_json::from_slice(&bytes).map_err(|e| RegistryError::BadManifest {
                url: r.to_string(),
                reason: format!("invalid index: {e}"),
            })?;
        let desc = idx
            .select(platform)
            .ok_or_else(|| RegistryError::NoPlatform {
                image: r.to_string(),
                platform: platform.to_string_short(),
                available: idx
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref().map(Platform::to_string_short))
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        if desc.size > MAX_MANIFEST_SIZE {
            return Err(RegistryError::TooLarge {
                what: format!("manifest {}", desc.digest),
                url: r.to_string(),
                limit: MAX_MANIFEST_SIZE,
            });
        }
        let (b, mt2, d2) = self.fetch_manifest(r, &desc.digest.to_string(), scopes)?;
        if b.len() as u64 != desc.size {
            return Err(RegistryError::SizeMismatch {
                what: format!("manifest {d2} of {r}"),
                expected: desc.size,
                actual: b.len() as u64,
            });
        }
        if !media::is_manifest(&mt2) {
            return Err(RegistryError::BadManifest {
                url: r.to_string(),
                reason: format!("index entry {d2} is {mt2:?}, not an image manifest"),
            });
        }
        Ok((b, mt2, d2))
    }

    /// The digest of the manifest for `platform` (resolving an index).
    pub fn resolve(&self, r: &ImageRef, platform: &Platform) -> Result<Digest> {
        self.operation(format!("resolving {r}"), || self.resolve_op(r, platform))
    }

    fn resolve_op(&self, r: &ImageRef, platform: &Platform) -> Result<Digest> {
        Ok(self
            .platform_manifest(r, platform, &[pull_scope(&r.repository)])?
            .2)
    }

    /// Pulls an image: manifest (platform-selected), config and layers into the store, all
    /// verified; names it `r.to_string()` in the store.
    pub fn pull(&self, r: &ImageRef, platform: &Platform, store: &Store) -> Result<PulledImage> {
        self.operation(format!("pulling {r}"), || self.pull_op(r, platform, store))
    }

    fn pull_op(&self, r: &ImageRef, platform: &Platform, store: &Store) -> Result<PulledImage> {
        let scopes = vec![pull_scope(&r.repository)];
        // A concurrent `prune` must not collect blobs between their download and set_image.
        let _gc = store.gc_shared_lock()?;
        let (bytes, _mt, digest) = self.platform_manifest(r, platform, &scopes)?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| RegistryError::BadManifest {
                url: r.to_string(),
                reason: format!("invalid image manifest: {e}"),
            })?;
        if manifest.config.size > MAX_CONFIG_SIZE {
            return Err(RegistryError::TooLarge {
                what: format!("config {}", manifest.config.digest),
                url: r.to_string(),
                limit: MAX_CONFIG_SIZE,
            });
        }
        self.fetch_blob_scoped(r, &manifest.config, store, &scopes)?;
        self.parallel_each(&manifest.layers, |d| {
            self.fetch_blob_scoped(r, d, store, &scopes)
        })?;
        store.put_blob(&bytes)?;
        let (manifest, config) = store.load_image(&digest)?;
        store.set_image(&r.to_string(), &digest)?;
        let mut all: Vec<Digest> = manifest.layers.iter().map(|l| l.digest.clone()).collect();
        all.push(manifest.config.digest.clone());
        store.record_blob_sources(&r.registry, &r.repository, &all)?;
        Ok(PulledImage {
            manifest_digest: digest,
            manifest,
            config,
        })
    }

    fn parallel_each<T: Sync>(
        &self,
        items: &[T],
        f: impl Fn(&T) -> Result<()> + Sync,
    ) -> Result<()> {
        let next = Mutex::new(0usize);
        let first_err: Mutex<Option<RegistryError>> = Mutex::new(None);
        // The workers run under the caller's operation deadline.
        let deadline = timeout::current();
        std::thread::scope(|s| {
            for _ in 0..self.parallel.min(items.len()).max(1) {
                s.spawn(|| {
                    let _scope = timeout::enter(deadline.clone());
                    loop {
                        if lock(&first_err).is_some() {
                            return;
                        }
                        let i = {
                            let mut n = lock(&next);
                            let i = *n;
                            *n += 1;
                            i
                        };
                        let Some(item) = items.get(i) else { return };
                        if let Err(e) = f(item) {
                            lock(&first_err).get_or_insert(e);
                            return;
                        }
                    }
                });
            }
        });
        match first_err.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Downloads one blob into the store (verified against the descriptor's digest and size).
    pub fn fetch_blob(&self, r: &ImageRef, desc: &Descriptor, store: &Store) -> Result<()> {
        self.operation(format!("fetching blob {} of {r}", desc.digest), || {
            self.fetch_blob_op(r, desc, store)
        })
    }

    fn fetch_blob_op(&self, r: &ImageRef, desc: &Descriptor, store: &Store) -> Result<()> {
        self.fetch_blob_scoped(r, desc, store, &[pull_scope(&r.repository)])
    }

    fn fetch_blob_scoped(
        &self,
        r: &ImageRef,
        desc: &Descriptor,
        store: &Store,
        scopes: &[String],
    ) -> Result<()> {
        let id = desc.digest.short().to_string();
        if store.has_blob(&desc.digest) {
            self.emit(&id, ProgressKind::Exists, desc.size, desc.size);
            return Ok(());
        }
        // One download per blob across processes (flock, released if the holder dies); 256
        // buckets keep the lock files few.
        let _ingest = store.lock(&format!("ingest-{}", &desc.digest.hex()[..2]), true)?;
        if store.has_blob(&desc.digest) {
            self.emit(&id, ProgressKind::Exists, desc.size, desc.size);
            return Ok(());
        }
        let ep = self.endpoint(&r.registry)?;
        // Foreign `urls` are ignored: blobs come from the registry only.
        let url = self.url(&ep, &format!("v2/{}/blobs/{}", r.repository, desc.digest))?;
        let what = format!("blob {} of {r}", desc.digest);
        let mut w = store.blob_writer()?;
        let mut resumes = 0u32;
        let mut last_emit = 0u64;
        let dl = self.deadline();
        // On any error `w` is dropped, which removes its temporary file.
        'outer: loop {
            let offset = w.len();
            let expect: &'static [StatusCode] = if offset > 0 {
                &[StatusCode::OK, StatusCode::PARTIAL_CONTENT]
            } else {
                &[StatusCode::OK]
            };
            let resp = self.send_expect(
                &ep,
                scopes,
                &Req::new(Method::GET, &url).with(&|rb| {
                    Ok(if offset > 0 {
                        rb.header(header::RANGE, format!("bytes={offset}-"))
                    } else {
                        rb
                    })
                }),
                Expect::Status(expect),
                &what,
            )?;
            if resp.status() == StatusCode::PARTIAL_CONTENT {
                let start = resp
                    .headers()
                    .get(header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.parse::<u64>().ok());
                if start != Some(offset) {
                    w = store.blob_writer()?;
                    continue;
                }
            } else if offset > 0 {
                // 200: the registry sends the whole blob again.
                w = store.blob_writer()?;
            }
            let body = BodyReader::start(resp);
            loop {
                // A read fails after the idle limit; the wait for it ends at the deadline.
                let read = body.next(&dl)?;
                match read {
                    Ok(buf) if buf.is_empty() => {
                        if w.len() < desc.size && resumes < 10 {
                            resumes += 1;
                            continue 'outer;
                        }
                        break 'outer;
                    }
                    Ok(buf) => {
                        let n = buf.len();
                        if w.len() + n as u64 > desc.size {
                            return Err(RegistryError::SizeMismatch {
                                what,
                                expected: desc.size,
                                actual: w.len() + n as u64,
                            });
                        }
                        w.write_all(&buf).map_err(|e| StoreError::Io {
                            path: store.root().join("tmp"),
                            source: e,
                        })?;
                        if w.len() - last_emit >= 1 << 20 {
                            last_emit = w.len();
                            self.emit(&id, ProgressKind::Downloading, w.len(), desc.size);
                        }
                    }
                    Err(e) => {
                        dl.check()?;
                        let reason = self.read_error(&e);
                        if resumes >= 10 {
                            return Err(RegistryError::Connection {
                                url: redact(url.as_str()),
                                reason: format!("reading {what}: {reason}"),
                            });
                        }
                        self.emit(&id, ProgressKind::Retrying { reason }, w.len(), desc.size);
                        std::thread::sleep(dl.cap(self.policy.backoff(resumes.min(4))));
                        resumes += 1;
                        continue 'outer;
                    }
                }
            }
        }
        match w.commit_sized(&desc.digest, desc.size) {
            Ok(_) => {}
            Err(StoreError::DigestMismatch { expected, actual }) => {
                return Err(RegistryError::DigestMismatch {
                    what,
                    expected,
                    actual,
                });
            }
            Err(StoreError::SizeMismatch {
                expected, actual, ..
            }) => {
                return Err(RegistryError::SizeMismatch {
                    what,
                    expected,
                    actual,
                });
            }
            Err(e) => return Err(e.into()),
        }
        self.emit(&id, ProgressKind::Downloaded, desc.size, desc.size);
        Ok(())
    }

    /// Pushes an image from the store: blobs (HEAD-skip, cross-repo mount, upload), then the
    /// manifest under `dest`'s tag (or digest). Returns the manifest digest.
    pub fn push(&self, store: &Store, manifest: &Digest, dest: &ImageRef) -> Result<Digest> {
        self.operation(format!("pushing {dest}"), || {
            self.push_op(store, manifest, dest)
        })
    }

    fn push_op(&self, store: &Store, manifest: &Digest, dest: &ImageRef) -> Result<Digest> {
        let _gc = store.gc_shared_lock()?;
        let bytes = store.read_blob_limited(manifest, "manifest", MAX_MANIFEST_SIZE)?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| RegistryError::BadManifest {
                url: store.blob_path(manifest).display().to_string(),
                reason: e.to_string(),
            })?;
        let mt = v
            .get("mediaType")
            .and_then(|m| m.as_str())
            .map(str::to_string);
        if v.get("manifests").is_some() {
            let idx: Index = serde_json::from_value(v).map_err(|e| RegistryError::BadManifest {
                url: store.blob_path(manifest).display().to_string(),
                reason: e.to_string(),
            })?;
            for m in &idx.manifests {
                if store.has_blob(&m.digest) {
                    self.push(store, &m.digest, &dest.with_digest(&m.digest))?;
                }
            }
            return self.put_manifest(dest, &bytes, mt.as_deref().unwrap_or(media::OCI_INDEX));
        }
        let m: Manifest = serde_json::from_value(v).map_err(|e| RegistryError::BadManifest {
            url: store.blob_path(manifest).display().to_string(),
            reason: e.to_string(),
        })?;
        let mut blobs: Vec<Digest> = vec![m.config.digest.clone()];
        blobs.extend(m.layers.iter().map(|l| l.digest.clone()));
        self.parallel_each(&blobs, |d| self.push_blob(store, dest, d))?;
        let d = self.put_manifest(dest, &bytes, mt.as_deref().unwrap_or(media::OCI_MANIFEST))?;
        store.record_blob_sources(&dest.registry, &dest.repository, &blobs)?;
        Ok(d)
    }

    /// Uploads one blob unless the registry has it; mounts it from another repository of the
    /// same registry when the store knows one.
    pub fn push_blob(&self, store: &Store, dest: &ImageRef, d: &Digest) -> Result<()> {
        self.operation(format!("pushing blob {d} to {}", dest.name()), || {
            self.push_blob_op(store, dest, d)
        })
    }

    fn push_blob_op(&self, store: &Store, dest: &ImageRef, d: &Digest) -> Result<()> {
        let size = store.blob_size(d)?;
        let id = d.short().to_string();
        let ep = self.endpoint(&dest.registry)?;
        let source = store
            .blob_sources(&dest.registry, d)?
            .into_iter()
            .rev()
            .find(|s| s != &dest.repository);
        let mut scopes = vec![push_scope(&dest.repository)];
        if let Some(src) = &source {
            scopes.push(pull_scope(src));
        }
        let what = format!("blob {d} to {}", dest.name());
        let head = self.url(&ep, &format!("v2/{}/blobs/{d}", dest.repository))?;
        let resp = self.send(&ep, &scopes, &Req::new(Method::HEAD, &head))?;
        if resp.status().is_success() {
            self.emit(&id, ProgressKind::Exists, size, size);
            return Ok(());
        }
        if resp.status() == StatusCode::UNAUTHORIZED || resp.status() == StatusCode::FORBIDDEN {
            return Err(self.status_error(&ep, &scopes, &Method::HEAD, &head, &what, resp));
        }
        let mut mounted_session = None;
        if let Some(src) = &source {
            let mut u = self.url(&ep, &format!("v2/{}/blobs/uploads/", dest.repository))?;
            u.query_pairs_mut()
                .append_pair("mount", &d.to_string())
                .append_pair("from", src);
            let resp = self.send(
                &ep,
                &scopes,
                &Req::new(Method::POST, &u).with(&|rb| Ok(rb.header(header::CONTENT_LENGTH, "0"))),
            )?;
            match resp.status() {
                StatusCode::CREATED => {
                    self.emit(&id, ProgressKind::Mounted { from: src.clone() }, size, size);
                    return Ok(());
                }
                StatusCode::ACCEPTED => mounted_session = self.location(&ep, &resp),
                _ => {}
            }
        }
        let dl = self.deadline();
        let mut attempt = 0;
        loop {
            dl.check()?;
            let session = match mounted_session.take() {
                Some(s) => s,
                None => self.start_upload(&ep, &scopes, dest)?,
            };
            match self.upload(&ep, &scopes, store, d, size, session, &id) {
                Ok(()) => break,
                Err(e) if attempt + 1 < self.policy.attempts && retryable(&e) => {
                    self.emit(
                        &id,
                        ProgressKind::Retrying {
                            reason: e.to_string(),
                        },
                        0,
                        size,
                    );
                    std::thread::sleep(dl.cap(self.policy.backoff(attempt)));
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
        self.emit(&id, ProgressKind::Pushed, size, size);
        Ok(())
    }

    fn location(&self, ep: &Endpoint, resp: &Response) -> Option<Url> {
        let loc = resp.headers().get(header::LOCATION)?.to_str().ok()?;
        ep.base.join(loc).ok()
    }

    fn start_upload(&self, ep: &Endpoint, scopes: &[String], dest: &ImageRef) -> Result<Url> {
        let u = self.url(ep, &format!("v2/{}/blobs/uploads/", dest.repository))?;
        let resp = self.send_expect(
            ep,
            scopes,
            &Req::new(Method::POST, &u).with(&|rb| Ok(rb.header(header::CONTENT_LENGTH, "0"))),
            Expect::Status(&[StatusCode::ACCEPTED]),
            &format!("upload to {}", dest.name()),
        )?;
        self.location(ep, &resp)
            .ok_or_else(|| RegistryError::Status {
                method: "POST".into(),
                url: redact(u.as_str()),
                status: 202,
                body: "no valid Location header in the upload response".into(),
            })
    }

    #[allow(clippy::too_many_arguments)]
    fn upload(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        store: &Store,
        d: &Digest,
        size: u64,
        mut loc: Url,
        id: &str,
    ) -> Result<()> {
        let path = store.blob_path(d);
        let open = |offset: u64| -> Result<std::fs::File> {
            let mut f = store.open_blob(d)?;
            f.seek(SeekFrom::Start(offset))
                .map_err(|e| StoreError::Io {
                    path: path.clone(),
                    source: e,
                })?;
            Ok(f)
        };
        let reader = |offset: u64, len: u64| -> Result<Body> {
            let f = open(offset)?;
            let pr = ProgressReader {
                inner: f.take(len),
                cb: self.progress.clone(),
                id: id.to_string(),
                done: offset,
                total: size,
                last: offset,
            };
            Ok(Body::sized(pr, len))
        };
        let with_digest = |mut u: Url| {
            u.query_pairs_mut().append_pair("digest", &d.to_string());
            u
        };
        let created = Expect::Status(&[StatusCode::CREATED]);
        if size <= self.monolithic_max {
            let u = with_digest(loc);
            self.send_expect(
                ep,
                scopes,
                &Req::new(Method::PUT, &u).upload().with(&|rb| {
                    Ok(rb
                        .header(header::CONTENT_TYPE, "application/octet-stream")
                        .body(reader(0, size)?))
                }),
                created,
                &format!("upload of blob {d}"),
            )?;
            return Ok(());
        }
        let mut offset = 0;
        while offset < size {
            let n = self.chunk_size.min(size - offset);
            let u = loc.clone();
            let resp = self.send_expect(
                ep,
                scopes,
                &Req::new(Method::PATCH, &u).no_retry().upload().with(&|rb| {
                    Ok(rb
                        .header(header::CONTENT_TYPE, "application/octet-stream")
                        .header(
                            header::CONTENT_RANGE,
                            format!("{offset}-{}", offset + n - 1),
                        )
                        .body(reader(offset, n)?))
                }),
                Expect::Status(&[StatusCode::ACCEPTED]),
                &format!("chunk upload of blob {d}"),
            )?;
            loc = self.location(ep, &resp).unwrap_or(loc);
            offset += n;
        }
        let u = with_digest(loc);
        self.send_expect(
            ep,
            scopes,
            &Req::new(Method::PUT, &u)
                .no_retry()
                .with(&|rb| Ok(rb.header(header::CONTENT_LENGTH, "0"))),
            created,
            &format!("upload of blob {d}"),
        )?;
        Ok(())
    }

    /// Puts a manifest (or index) under `r`'s tag, or its digest when it has none.
    pub fn put_manifest(&self, r: &ImageRef, bytes: &[u8], media_type: &str) -> Result<Digest> {
        self.operation(format!("pushing the manifest of {r}"), || {
            self.put_manifest_op(r, bytes, media_type)
        })
    }

    fn put_manifest_op(&self, r: &ImageRef, bytes: &[u8], media_type: &str) -> Result<Digest> {
        let digest = Digest::of(bytes);
        let ep = self.endpoint(&r.registry)?;
        let scopes = vec![push_scope(&r.repository)];
        let reference = r.tag.clone().unwrap_or_else(|| digest.to_string());
        let url = self.url(&ep, &format!("v2/{}/manifests/{reference}", r.repository))?;
        let body = bytes.to_vec();
        let resp = self.send_expect(
            &ep,
            &scopes,
            &Req::new(Method::PUT, &url).with(&|rb| {
                Ok(rb
                    .header(header::CONTENT_TYPE, media_type)
                    .body(body.clone()))
            }),
            Expect::Status(&[StatusCode::CREATED, StatusCode::OK]),
            &format!("manifest {r}"),
        )?;
        if let Some(got) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok())
            && got != digest
        {
            return Err(RegistryError::DigestMismatch {
                what: format!("manifest pushed to {r}"),
                expected: digest,
                actual: got,
            });
        }
        Ok(digest)
    }
}

/// A blob upload session opened with [`Client::begin_upload`]: the blob is sent in chunks as
/// it is produced (its digest is known only at the end), then committed with
/// [`Upload::finish`]. The bytes go in one streamed PATCH ([`Upload::write_stream`]), which is
/// not retried: a failed stream fails the session. A session that is dropped unfinished is
/// abandoned (the registry collects it);
/// [`Upload::abort`] cancels it explicitly.
pub struct Upload<'a> {
    client: &'a Client,
    ep: Arc<Endpoint>,
    scopes: Vec<String>,
    dest: ImageRef,
    loc: Url,
    offset: u64,
}

impl Client {
    /// Opens a blob upload session in `dest`'s repository (a POST to `/blobs/uploads/`).
    pub fn begin_upload(&self, dest: &ImageRef) -> Result<Upload<'_>> {
        self.operation(format!("uploading a blob to {}", dest.name()), || {
            self.begin_upload_op(dest)
        })
    }

    fn begin_upload_op(&self, dest: &ImageRef) -> Result<Upload<'_>> {
        let ep = self.endpoint(&dest.registry)?;
        let scopes = vec![push_scope(&dest.repository)];
        let loc = self.start_upload(&ep, &scopes, dest)?;
        Ok(Upload {
            client: self,
            ep,
            scopes,
            dest: dest.clone(),
            loc,
            offset: 0,
        })
    }
}

impl Upload<'_> {
    /// Bytes accepted by the registry so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Appends everything `body` yields, until it ends, in ONE PATCH with a chunked body
    /// (Docker's "stream upload"): the registry ingests while the bytes are produced, with no
    /// request per chunk. Not retried (the body is gone once read); an error fails the
    /// session (abort it then).
    pub fn write_stream(&mut self, body: impl Read + Send + 'static) -> Result<()> {
        let c = self.client;
        let body = Mutex::new(Some(reqwest::blocking::Body::new(body)));
        let what = format!("streamed upload to {}", self.dest.name());
        let loc = self.loc.clone();
        let build = |rb: RequestBuilder| {
            let b = lock(&body)
                .take()
                .ok_or_else(|| RegistryError::Connection {
                    url: loc.to_string(),
                    reason: "a streamed upload cannot be sent twice".into(),
                })?;
            Ok(rb
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .body(b))
        };
        let req = Req::new(Method::PATCH, &self.loc)
            .upload()
            .no_retry()
            .with(&build);
        let resp = c.operation(self.what(), || {
            c.send_expect(
                &self.ep,
                &self.scopes,
                &req,
                Expect::Status(&[StatusCode::ACCEPTED]),
                &what,
            )
        })?;
        // `Range: 0-<last>` says how much the registry holds.
        let end = resp
            .headers()
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|r| r.rsplit('-').next())
            .and_then(|n| n.trim().parse::<u64>().ok());
        self.loc = c.location(&self.ep, &resp).unwrap_or(self.loc.clone());
        if let Some(last) = end {
            self.offset = last + 1;
        }
        Ok(())
    }

    /// Commits the blob under `digest` (a PUT with `?digest=`): the registry checks that the
    /// bytes sent hash to it and refuses the upload otherwise.
    pub fn finish(self, digest: &Digest) -> Result<()> {
        let c = self.client;
        let mut u = self.loc.clone();
        u.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        c.operation(self.what(), || {
            c.send_expect(
                &self.ep,
                &self.scopes,
                &Req::new(Method::PUT, &u).with(&|rb| Ok(rb.header(header::CONTENT_LENGTH, "0"))),
                Expect::Status(&[StatusCode::CREATED]),
                &format!(
                    "streamed upload of blob {digest} ({} bytes) to {}",
                    self.offset,
                    self.dest.name()
                ),
            )
        })?;
        Ok(())
    }

    /// Cancels the session (a DELETE), best effort: a registry that refuses it collects the
    /// session later anyway.
    pub fn abort(self) {
        let c = self.client;
        let _ = c.operation(self.what(), || {
            c.send(
                &self.ep,
                &self.scopes,
                &Req::new(Method::DELETE, &self.loc).no_retry(),
            )
        });
    }

    /// What a timeout of this session's requests names.
    fn what(&self) -> String {
        format!("uploading a blob to {}", self.dest.name())
    }
}

/// Decides what a manifest body fetched from a registry is, before anything trusts it: the
/// media type it is handled as (an index/manifest list or a single-image manifest), or why it
/// is refused. Refused: not JSON; both `manifests` and `layers`; a body `mediaType` that
/// contradicts a known `Content-Type`; an unknown type (schema 1 included); a type that does
/// not match the document's shape. `content_type` is the header value without parameters.
pub fn classify_manifest(bytes: &[u8], content_type: &str) -> std::result::Result<String, String> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    if v.get("manifests").is_some() && v.get("layers").is_some() {
        return Err("document has both `manifests` and `layers`".into());
    }
    let body_type = v
        .get("mediaType")
        .and_then(|m| m.as_str())
        .map(str::to_string);
    let known = |t: &str| media::is_index(t) || media::is_manifest(t);
    if let Some(bt) = &body_type
        && known(content_type)
        && bt != content_type
    {
        return Err(format!(
            "mediaType {bt:?} does not match Content-Type {content_type:?}"
        ));
    }
    let mt = match body_type {
        Some(t) => t,
        None if known(content_type) => content_type.to_string(),
        None if v.get("manifests").is_some() => media::OCI_INDEX.to_string(),
        None if v.get("layers").is_some() => media::OCI_MANIFEST.to_string(),
        None => {
            return Err(format!(
                "unsupported manifest (Content-Type {content_type:?}); schema 1 is not supported"
            ));
        }
    };
    if !known(&mt) {
        return Err(format!("unsupported media type {mt:?}"));
    }
    if media::is_index(&mt) == v.get("layers").is_some()
        || media::is_manifest(&mt) == v.get("manifests").is_some()
    {
        return Err(format!(
            "media type {mt:?} does not match the document's shape"
        ));
    }
    Ok(mt)
}

fn retryable(e: &RegistryError) -> bool {
    match e {
        RegistryError::Connection { .. } => true,
        RegistryError::Status { status, .. } => {
            *status >= 500 || *status == 404 || *status == 416 || *status == 429
        }
        RegistryError::NotFound { .. } => true,
        _ => false,
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
        assert_eq!(url_encode("a b/c"), "a%20b%2Fc");
    }
}

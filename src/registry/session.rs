//! The registry client and how it sends requests: its settings, one deadline per operation,
//! auth on every request (re-authenticating once on 401), retries with backoff, and the
//! status check every call makes (`send_expect`). Pulls, pushes and uploads build on it.

use super::auth::{self, Credential, redact};
use super::endpoint::Endpoint;
use super::progress::{ProgressFn, ProgressKind};
use super::retry::RetryPolicy;
use super::timeout::{self, Deadline, TimeLimit, format_duration};
use super::{RegistryError, RegistryOptions, Result};
use reqwest::blocking::{RequestBuilder, Response};
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, StatusCode, Url};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A registry client. Cheap to share across threads (`&Client` is `Sync`).
pub struct Client {
    pub(super) opts: RegistryOptions,
    pub(super) certs_dir: PathBuf,
    pub(super) policy: RetryPolicy,
    pub(super) operation_limit: TimeLimit,
    pub(super) idle: TimeLimit,
    pub(super) chunk_size: u64,
    pub(super) monolithic_max: u64,
    pub(super) parallel: usize,
    pub(super) trusted_realms: Vec<String>,
    pub(super) progress: Option<ProgressFn>,
    pub(super) endpoints: Mutex<HashMap<String, Arc<Endpoint>>>,
    pub(super) tokens: Mutex<HashMap<(String, String), (String, Instant)>>,
    pub(super) creds: Mutex<HashMap<String, Option<Credential>>>,
}

/// Locks `m`, ignoring poisoning: every guarded map stays consistent between statements.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The token scope to pull from `repo`.
pub(super) fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

/// The token scope to push to `repo` (pull included: blob checks and mounts need it).
pub(super) fn push_scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

/// The repository of the first scope, for error messages.
pub(super) fn scope_repo(scopes: &[String]) -> String {
    scopes
        .first()
        .and_then(|s| s.split(':').nth(1))
        .unwrap_or("")
        .to_string()
}

/// Reads a response body of at most `limit` bytes; a longer one is refused, not truncated.
pub(super) fn read_limited(resp: Response, limit: u64, what: &str, url: &str) -> Result<Vec<u8>> {
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

/// The start of an error response's body (redacted), for the error message.
pub(super) fn error_body(resp: Response) -> String {
    let mut s = String::new();
    let _ = resp.take(2048).read_to_string(&mut s);
    let s = s.trim();
    if s.is_empty() {
        "(empty body)".to_string()
    } else {
        redact(s)
    }
}

/// An error and its sources as one redacted line.
pub(super) fn err_chain(e: &dyn std::error::Error) -> String {
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

/// Adds headers and a body to a request (once per attempt).
pub(super) type Build<'a> = &'a dyn Fn(RequestBuilder) -> Result<RequestBuilder>;

fn no_body(rb: RequestBuilder) -> Result<RequestBuilder> {
    Ok(rb)
}

/// One request to a registry, as [`Client::send`] makes it.
pub(super) struct Req<'a> {
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
    pub(super) fn new(method: Method, url: &'a Url) -> Req<'a> {
        Req {
            method,
            url,
            retry: true,
            upload: false,
            build: &no_body,
        }
    }

    pub(super) fn with(self, build: Build<'a>) -> Req<'a> {
        Req { build, ..self }
    }

    pub(super) fn no_retry(self) -> Req<'a> {
        Req {
            retry: false,
            ..self
        }
    }

    pub(super) fn upload(self) -> Req<'a> {
        Req {
            upload: true,
            ..self
        }
    }
}

/// The statuses a request expects (anything else is an error, see [`Client::send_expect`]).
#[derive(Clone, Copy)]
pub(super) enum Expect {
    /// Any 2xx.
    Success,
    /// One of these.
    Status(&'static [StatusCode]),
}

impl Expect {
    pub(super) fn allows(self, st: StatusCode) -> bool {
        match self {
            Expect::Success => st.is_success(),
            Expect::Status(list) => list.contains(&st),
        }
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
    pub(super) fn deadline(&self) -> Deadline {
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
    pub(super) fn request_error(&self, e: &reqwest::Error) -> String {
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
    pub(super) fn read_error(&self, e: &std::io::Error) -> String {
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

    pub(super) fn send_simple(
        &self,
        rb: impl Fn() -> RequestBuilder,
        url: &str,
    ) -> Result<Response> {
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

    /// Sends a request to the registry with auth, re-authenticating once on 401 and retrying
    /// connection errors (idle timeouts included), 5xx and 429 when `req.retry`; `req.build`
    /// adds headers and body and is called per attempt. Each attempt and each backoff is
    /// bounded by the operation's deadline; once it has passed the error is the timeout.
    pub(super) fn send(&self, ep: &Endpoint, scopes: &[String], req: &Req<'_>) -> Result<Response> {
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
    pub(super) fn send_expect(
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

    pub(super) fn status_error(
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

    pub(super) fn parallel_each<T: Sync>(
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
}

/// Whether a failed blob upload is worth starting again with a new session.
pub(super) fn retryable(e: &RegistryError) -> bool {
    match e {
        RegistryError::Connection { .. } => true,
        RegistryError::Status { status, .. } => {
            *status >= 500 || *status == 404 || *status == 416 || *status == 429
        }
        RegistryError::NotFound { .. } => true,
        _ => false,
    }
}

//! A tiny HTTP/1.1 test server: a fault-injecting reverse proxy in front of a registry and/or
//! a token issuer (`/token`) signing RS256 JWTs with `openssl`. One request per connection.

use super::{ISSUER, SERVICE, TokenKeys};
use base64::Engine as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a rule does to a matching request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status (and `Retry-After` when given) without forwarding.
    Status(u16, Option<String>),
    /// Forward, but close the connection after this many body bytes.
    DropAfter(usize),
    /// Forward, but flip one byte in the middle of the body.
    Corrupt,
    /// Answer 200 with this Content-Type and body without forwarding.
    Serve(String, Vec<u8>),
    /// Answer 307 to this URL without forwarding.
    Redirect(String),
    /// Forward, send the head and this many body bytes, then send nothing more and keep the
    /// connection open (a registry stalled mid-blob) until the client hangs up.
    StallAfter(usize),
    /// Forward, but send the body in pieces of this many bytes, pausing between them (a slow
    /// link that keeps making progress).
    Trickle(usize, Duration),
    /// Read the request, never answer, keep the connection open until the client hangs up.
    Hang,
    /// Read the request body in pieces of this many bytes, pausing between them (a slow
    /// uplink), then forward.
    SlowRequest(usize, Duration),
}

/// Applies `fault` to the next `times` requests whose method and path match.
#[derive(Clone, Debug)]
pub struct Rule {
    pub method: &'static str,
    pub path_contains: String,
    pub fault: Fault,
    pub times: usize,
}

/// One request the server saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub range: Option<String>,
    pub fault: Option<String>,
}

/// Token issuer settings.
#[derive(Clone)]
pub struct Issuer {
    pub keys: TokenKeys,
    /// Basic credentials that grant everything asked for.
    pub user: String,
    pub password: String,
    /// A refresh token (OAuth2 POST `grant_type=refresh_token`) that does the same.
    pub refresh_token: String,
    /// Anonymous callers get `pull` only.
    pub anonymous_pull: bool,
}

struct State {
    upstream: Mutex<Option<String>>,
    rules: Mutex<Vec<Rule>>,
    seen: Mutex<Vec<Seen>>,
    issuer: Option<Issuer>,
}

/// A running test server.
pub struct Server {
    pub port: u16,
    pub host: String,
    state: Arc<State>,
}

impl Server {
    pub fn start(upstream: Option<String>, issuer: Option<Issuer>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(State {
            upstream: Mutex::new(upstream),
            rules: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
            issuer,
        });
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let st = st.clone();
                std::thread::spawn(move || {
                    let _ = handle(&st, conn);
                });
            }
        });
        Server {
            port,
            host: format!("127.0.0.1:{port}"),
            state,
        }
    }

    pub fn add_rule(&self, method: &'static str, path_contains: &str, fault: Fault, times: usize) {
        self.state.rules.lock().expect("lock").push(Rule {
            method,
            path_contains: path_contains.into(),
            fault,
            times,
        });
    }

    /// Points the proxy at its upstream (when it had to start first).
    pub fn set_upstream(&self, up: &str) {
        *self.state.upstream.lock().expect("lock") = Some(up.to_string());
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("lock").clone()
    }

    pub fn faults_hit(&self) -> Vec<String> {
        self.seen().into_iter().filter_map(|s| s.fault).collect()
    }
}

fn read_head(r: &mut BufReader<TcpStream>) -> std::io::Result<(String, Vec<(String, String)>)> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let request_line = line.trim_end().to_string();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            break;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok((request_line, headers))
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn read_body(r: &mut BufReader<TcpStream>, h: &[(String, String)]) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if header(h, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut line = String::new();
            r.read_line(&mut line)?;
            let n = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            if n == 0 {
                let mut end = String::new();
                r.read_line(&mut end)?;
                break;
            }
            let mut chunk = vec![0u8; n];
            r.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk);
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf)?;
        }
    } else if let Some(n) = header(h, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    }
    Ok(body)
}

/// Reads a `Content-Length` body `piece` bytes at a time, pausing after each piece.
fn read_body_slowly(
    r: &mut BufReader<TcpStream>,
    h: &[(String, String)],
    piece: usize,
    pause: Duration,
) -> std::io::Result<Vec<u8>> {
    let Some(n) = header(h, "content-length").and_then(|v| v.parse::<usize>().ok()) else {
        return read_body(r, h);
    };
    let mut body = vec![0u8; n];
    for part in body.chunks_mut(piece.max(1)) {
        r.read_exact(part)?;
        std::thread::sleep(pause);
    }
    Ok(body)
}

/// Keeps a connection open, sending nothing, until the client hangs up (or two minutes pass,
/// so a test that forgot it does not leak the thread for ever).
fn hold(conn: &mut TcpStream) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut buf = [0u8; 4096];
    while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
    Ok(())
}

fn respond(
    w: &mut TcpStream,
    status: u16,
    extra: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    w.flush()
}

fn handle(st: &State, conn: TcpStream) -> std::io::Result<()> {
    let mut w = conn.try_clone()?;
    // A TLS ClientHello (an HTTPS probe) on this plain server: hang up at once.
    let mut first = [0u8; 1];
    if conn.peek(&mut first)? == 1 && first[0] == 0x16 {
        return Ok(());
    }
    let mut r = BufReader::new(conn);
    let (request_line, headers) = read_head(&mut r)?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let authorization = header(&headers, "authorization").map(str::to_string);
    let fault = {
        let mut rules = st.rules.lock().expect("lock");
        rules
            .iter_mut()
            .find(|rule| {
                rule.times > 0 && rule.method == method && path.contains(&rule.path_contains)
            })
            .map(|rule| {
                rule.times -= 1;
                rule.fault.clone()
            })
    };
    st.seen.lock().expect("lock").push(Seen {
        method: method.clone(),
        path: path.clone(),
        authorization: authorization.clone(),
        range: header(&headers, "range").map(str::to_string),
        fault: fault.as_ref().map(|f| format!("{f:?} {method} {path}")),
    });
    let body = match &fault {
        Some(Fault::SlowRequest(piece, pause)) => {
            read_body_slowly(&mut r, &headers, *piece, *pause)?
        }
        _ => read_body(&mut r, &headers)?,
    };
    if let Some(Fault::Hang) = &fault {
        return hold(r.get_mut());
    }
    if path.starts_with("/token")
        && let Some(iss) = &st.issuer
    {
        return issue(iss, &mut w, &method, &path, authorization.as_deref(), &body);
    }
    if let Some(Fault::Status(code, retry_after)) = &fault {
        let extra: Vec<(&str, String)> = retry_after
            .iter()
            .map(|v| ("Retry-After", v.clone()))
            .collect();
        return respond(&mut w, *code, &extra, b"");
    }
    if let Some(Fault::Redirect(to)) = &fault {
        return respond(&mut w, 307, &[("Location", to.clone())], b"");
    }
    if let Some(Fault::Serve(ct, body)) = &fault {
        return respond(&mut w, 200, &[("Content-Type", ct.clone())], body);
    }
    let upstream = st.upstream.lock().expect("lock").clone();
    let Some(up) = &upstream else {
        return respond(&mut w, 404, &[], b"no upstream");
    };
    let mut u = TcpStream::connect(up)?;
    let mut req = format!("{request_line}\r\n");
    for (k, v) in &headers {
        if ["connection", "content-length", "transfer-encoding"]
            .iter()
            .any(|x| k.eq_ignore_ascii_case(x))
        {
            continue;
        }
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    u.write_all(req.as_bytes())?;
    u.write_all(&body)?;
    let mut resp = Vec::new();
    u.read_to_end(&mut resp)?;
    let split = resp
        .windows(4)
        .position(|x| x == b"\r\n\r\n")
        .map(|i| i + 4)
        .unwrap_or(resp.len());
    match fault {
        Some(Fault::DropAfter(n)) => {
            let end = (split + n).min(resp.len());
            w.write_all(&resp[..end])?;
            let _ = w.shutdown(std::net::Shutdown::Both);
            Ok(())
        }
        Some(Fault::StallAfter(n)) => {
            let end = (split + n).min(resp.len());
            w.write_all(&resp[..end])?;
            w.flush()?;
            hold(r.get_mut())
        }
        Some(Fault::Trickle(piece, pause)) => {
            w.write_all(&resp[..split])?;
            for part in resp[split..].chunks(piece.max(1)) {
                w.write_all(part)?;
                w.flush()?;
                std::thread::sleep(pause);
            }
            Ok(())
        }
        Some(Fault::Corrupt) if resp.len() > split => {
            let mid = split + (resp.len() - split) / 2;
            resp[mid] ^= 0xff;
            w.write_all(&resp)
        }
        _ => w.write_all(&resp),
    }
}

fn query_params(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match h {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn issue(
    iss: &Issuer,
    w: &mut TcpStream,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &[u8],
) -> std::io::Result<()> {
    let query = path.split_once('?').map(|(_, q)| q).unwrap_or("");
    let mut params = query_params(query);
    if method == "POST" {
        params.extend(query_params(&String::from_utf8_lossy(body)));
    }
    let get = |k: &str| {
        params
            .iter()
            .find(|(kk, _)| kk == k)
            .map(|(_, v)| v.clone())
    };
    let mut scopes: Vec<String> = Vec::new();
    for (k, v) in &params {
        if k == "scope" {
            scopes.extend(v.split(' ').filter(|s| !s.is_empty()).map(str::to_string));
        }
    }
    let mut authenticated = false;
    let mut presented = false;
    if let Some(a) = auth.and_then(|a| a.strip_prefix("Basic ")) {
        presented = true;
        let want = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", iss.user, iss.password));
        authenticated = a == want;
    }
    match get("grant_type").as_deref() {
        Some("refresh_token") => {
            presented = true;
            authenticated = get("refresh_token").as_deref() == Some(iss.refresh_token.as_str());
        }
        Some("password") => {
            presented = true;
            authenticated = get("username").as_deref() == Some(iss.user.as_str())
                && get("password").as_deref() == Some(iss.password.as_str());
        }
        _ => {}
    }
    if presented && !authenticated {
        return respond(w, 401, &[], br#"{"details":"invalid credentials"}"#);
    }
    let mut access = Vec::new();
    for s in &scopes {
        let mut it = s.splitn(3, ':');
        let (Some(ty), Some(name), Some(actions)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let granted: Vec<&str> = actions
            .split(',')
            .filter(|a| authenticated || (iss.anonymous_pull && *a == "pull"))
            .collect();
        access.push(serde_json::json!({"type": ty, "name": name, "actions": granted}));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [iss.keys.cert_der_b64]});
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": if authenticated { iss.user.as_str() } else { "" }, "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", scopes.len()), "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(&iss.keys.key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .map(|mut s| s.write_all(signing_input.as_bytes()))
        .transpose()?;
    let out = child.wait_with_output()?;
    let token = format!("{signing_input}.{}", b64url(&out.stdout));
    let resp = serde_json::json!({"token": token, "access_token": token, "expires_in": 300});
    respond(
        w,
        200,
        &[("Content-Type", "application/json".into())],
        resp.to_string().as_bytes(),
    )
}

//! Credentials and challenges: Docker's `config.json` (`auths`, `identitytoken`, `credsStore`,
//! `credHelpers`), `docker-credential-*` helpers, and `WWW-Authenticate` parsing.
//!
//! Secrets never appear in `Debug` output or errors: [`Credential`] redacts itself.

use super::{RegistryError, Result};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// User name and password (or access token used as a password).
    Basic { username: String, password: String },
    /// An OAuth2 refresh token (`identitytoken` in config.json, `<token>` user in helpers).
    IdentityToken { username: String, token: String },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credential::IdentityToken { username, .. } => {
                write!(f, "IdentityToken({username}, <redacted>)")
            }
        }
    }
}

impl Credential {
    /// `Authorization: Basic …` value, when these are basic credentials.
    pub fn basic_header(&self) -> Option<String> {
        match self {
            Credential::Basic { username, password } => Some(format!(
                "Basic {}",
                B64.encode(format!("{username}:{password}"))
            )),
            Credential::IdentityToken { .. } => None,
        }
    }
}

/// The key Docker uses for a registry in config.json.
pub fn config_key(registry: &str) -> String {
    if is_docker_hub(registry) {
        "https://index.docker.io/v1/".to_string()
    } else {
        registry.to_string()
    }
}

/// True for Docker Hub's names.
pub fn is_docker_hub(registry: &str) -> bool {
    matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "https://index.docker.io/v1/"
    )
}

/// Strips a scheme and path from a config.json key: `https://host:5000/v1/` → `host:5000`.
fn key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

fn keys_match(key: &str, registry: &str) -> bool {
    let h = key_host(key);
    if is_docker_hub(registry) {
        is_docker_hub(h)
    } else {
        h == registry
    }
}

/// Docker's config directory: the option, else `$DOCKER_CONFIG`, else `~/.docker`.
pub fn config_dir(opt: Option<&Path>) -> PathBuf {
    if let Some(p) = opt {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".docker")
}

/// Docker's `config.json`, kept as JSON so unknown fields survive a rewrite.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// `<dir>/config.json`.
    pub path: PathBuf,
    /// The whole document.
    pub doc: Map<String, Value>,
}

impl DockerConfig {
    /// Reads `<dir>/config.json`; a missing file is an empty config.
    pub fn load(dir: &Path) -> Result<DockerConfig> {
        let path = dir.join("config.json");
        let doc = match std::fs::read(&path) {
            Ok(b) => match serde_json::from_slice::<Value>(&b) {
                Ok(Value::Object(m)) => m,
                Ok(_) => {
                    return Err(RegistryError::Config {
                        path,
                        reason: "not a JSON object".into(),
                    });
                }
                Err(e) => {
                    return Err(RegistryError::Config {
                        path,
                        reason: e.to_string(),
                    });
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => {
                return Err(RegistryError::Config {
                    path,
                    reason: e.to_string(),
                });
            }
        };
        Ok(DockerConfig { path, doc })
    }

    fn helper_for(&self, registry: &str) -> Option<String> {
        if let Some(Value::Object(h)) = self.doc.get("credHelpers") {
            for (k, v) in h {
                if keys_match(k, registry)
                    && let Some(s) = v.as_str()
                {
                    return Some(s.to_string());
                }
            }
        }
        self.doc
            .get("credsStore")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// The credentials for `registry` (`docker.io` also matches `index.docker.io` keys).
    pub fn credential(&self, registry: &str) -> Result<Option<Credential>> {
        if let Some(helper) = self.helper_for(registry)
            && let Some(c) = helper_get(&helper, &config_key(registry))?
        {
            return Ok(Some(c));
        }
        let Some(Value::Object(auths)) = self.doc.get("auths") else {
            return Ok(None);
        };
        for (k, v) in auths {
            if !keys_match(k, registry) {
                continue;
            }
            let s = |f: &str| v.get(f).and_then(Value::as_str).unwrap_or("").to_string();
            let (mut username, mut password) = (s("username"), s("password"));
            let auth = s("auth");
            if !auth.is_empty() {
                let bad = || RegistryError::Config {
                    path: self.path.clone(),
                    reason: format!("auths.{k:?}.auth is not base64 of user:password"),
                };
                let raw = B64.decode(auth.trim()).map_err(|_| bad())?;
                let text = String::from_utf8(raw).map_err(|_| bad())?;
                let (u, p) = text.split_once(':').ok_or_else(bad)?;
                username = u.to_string();
                password = p.to_string();
            }
            let token = s("identitytoken");
            if !token.is_empty() {
                return Ok(Some(Credential::IdentityToken { username, token }));
            }
            if !username.is_empty() || !password.is_empty() {
                return Ok(Some(Credential::Basic { username, password }));
            }
        }
        Ok(None)
    }

    /// Stores credentials the way `docker login` does (helper when configured, else `auths`).
    pub fn store(&mut self, registry: &str, username: &str, password: &str) -> Result<()> {
        let key = config_key(registry);
        if let Some(helper) = self.helper_for(registry) {
            let input =
                serde_json::json!({"ServerURL": key, "Username": username, "Secret": password})
                    .to_string();
            run_helper(&helper, "store", &input)?;
            self.auths_mut().insert(key, Value::Object(Map::new()));
        } else {
            let mut entry = Map::new();
            entry.insert(
                "auth".into(),
                Value::String(B64.encode(format!("{username}:{password}"))),
            );
            self.auths_mut().insert(key, Value::Object(entry));
        }
        self.save()
    }

    /// Removes credentials; true if there were any.
    pub fn erase(&mut self, registry: &str) -> Result<bool> {
        let key = config_key(registry);
        if let Some(helper) = self.helper_for(registry) {
            let _ = run_helper(&helper, "erase", &key);
        }
        let auths = self.auths_mut();
        let keys: Vec<String> = auths
            .keys()
            .filter(|k| keys_match(k, registry))
            .cloned()
            .collect();
        for k in &keys {
            auths.remove(k);
        }
        self.save()?;
        Ok(!keys.is_empty())
    }

    fn auths_mut(&mut self) -> &mut Map<String, Value> {
        let v = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !v.is_object() {
            *v = Value::Object(Map::new());
        }
        match v {
            Value::Object(m) => m,
            _ => unreachable!("just made an object"),
        }
    }

    /// Writes the file atomically with mode 0600.
    pub fn save(&self) -> Result<()> {
        let err = |reason: String| RegistryError::Config {
            path: self.path.clone(),
            reason,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        let bytes = serde_json::to_vec_pretty(&Value::Object(self.doc.clone()))
            .map_err(|e| err(e.to_string()))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".config-")
            .tempfile_in(dir)
            .map_err(|e| err(e.to_string()))?;
        tmp.write_all(&bytes).map_err(|e| err(e.to_string()))?;
        tmp.as_file().sync_all().map_err(|e| err(e.to_string()))?;
        tmp.persist(&self.path)
            .map_err(|e| err(e.error.to_string()))?;
        Ok(())
    }
}

fn run_helper(helper: &str, verb: &str, input: &str) -> Result<String> {
    let bin = format!("docker-credential-{helper}");
    let fail = |reason: String| RegistryError::CredentialHelper {
        helper: bin.clone(),
        reason,
    };
    if !helper
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(fail("invalid helper name".into()));
    }
    let mut child = Command::new(&bin)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            fail(format!(
                "cannot run it ({e}); install it or remove it from config.json"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        // Helpers print "credentials not found in native keychain" on a miss; never echo
        // stdout otherwise, it may hold secrets.
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let shown = if stdout.contains("not found") {
            stdout.trim().to_string()
        } else {
            msg
        };
        return Err(fail(format!("`{verb}` failed: {shown}")));
    }
    Ok(stdout)
}

fn helper_get(helper: &str, server: &str) -> Result<Option<Credential>> {
    let out = match run_helper(helper, "get", server) {
        Ok(o) => o,
        Err(RegistryError::CredentialHelper { reason, .. }) if reason.contains("not found") => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let v: Value = serde_json::from_str(&out).map_err(|_| RegistryError::CredentialHelper {
        helper: format!("docker-credential-{helper}"),
        reason: "`get` did not print JSON".into(),
    })?;
    let username = v
        .get("Username")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let secret = v
        .get("Secret")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if secret.is_empty() {
        return Ok(None);
    }
    if username == "<token>" {
        Ok(Some(Credential::IdentityToken {
            username,
            token: secret,
        }))
    } else {
        Ok(Some(Credential::Basic {
            username,
            password: secret,
        }))
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = std::collections::HashMap::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let (k, after) = s.split_once('=')?;
        let k = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            let mut val = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            val.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => val.push(c),
                }
            }
            (val, &q[end.min(q.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.insert(k, v);
        s = next.trim_start_matches([',', ' ']).trim();
    }
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.remove("realm")?,
            service: params.remove("service"),
            scope: params.remove("scope"),
        }),
        _ => None,
    }
}

/// Hides `user:pass@` and token-like query parameters in a URL or message.
/// Redacts `user:password@` written before a registry host anywhere in `text` (an error
/// message, a Dockerfile excerpt quoting `FROM user:pw@host/img`), with or without a scheme.
/// `name:tag@sha256:…` is left alone: a credential is followed by a host and a `/`.
pub fn redact_credentials(text: &str) -> String {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"([A-Za-z0-9._~%+-]+):([^\s/@]+)@([A-Za-z0-9.-]+(:[0-9]+)?/)")
            .unwrap_or_else(|_| unreachable!("the pattern is a literal"))
    });
    re.replace_all(text, "<redacted>@$3").into_owned()
}

pub fn redact(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let after = scheme_end + 3;
        let host_end = out[after..]
            .find(['/', '?'])
            .map(|i| after + i)
            .unwrap_or(out.len());
        if let Some(at) = out[after..host_end].rfind('@') {
            out.replace_range(after..after + at, "<redacted>");
        }
    }
    if let Some(q) = out.find('?') {
        let (base, query) = out.split_at(q + 1);
        let parts: Vec<String> = query
            .split('&')
            .map(|kv| {
                let key = kv.split('=').next().unwrap_or("");
                let lk = key.to_ascii_lowercase();
                let secret = [
                    "token",
                    "password",
                    "secret",
                    "signature",
                    "sig",
                    "credential",
                    "key",
                    "auth",
                    "code",
                ]
                .iter()
                .any(|w| lk.contains(w));
                if secret && kv.contains('=') {
                    format!("{key}=<redacted>")
                } else {
                    kv.to_string()
                }
            })
            .collect();
        out = format!("{base}{}", parts.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            })
        );
        assert_eq!(
            parse_challenge(
                r#"Basic realm="https://x.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com""#
            ),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn credentials_in_text_are_redacted() {
        assert_eq!(
            redact_credentials("FROM bob:s3cr3t@registry.example.com/team/app:1.0 AS x"),
            "FROM <redacted>@registry.example.com/team/app:1.0 AS x"
        );
        assert_eq!(
            redact_credentials("https://bob:pw@h:5000/v2/"),
            "https://<redacted>@h:5000/v2/"
        );
        for keep in [
            "FROM busybox:1.36@sha256:0123abcd",
            "FROM localhost:5000/busybox:latest@sha256:0123abcd",
            "COPY --chown=app:staff a /b",
        ] {
            assert_eq!(redact_credentials(keep), keep);
        }
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact("https://u:p@h/x?a=1&access_token=s3cr3t"),
            "https://<redacted>@h/x?a=1&access_token=<redacted>"
        );
        assert_eq!(redact("http://h:5000/v2/"), "http://h:5000/v2/");
        assert!(!redact("https://s3/x?X-Amz-Signature=abc&X-Amz-Credential=def").contains("abc"));
    }

    #[test]
    fn config_json_lookup_and_write() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            t.path().join("config.json"),
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"},"reg.example:5000":{"identitytoken":"rt"},"https://other.example/v1/":{"username":"a","password":"b"}},"HttpHeaders":{"X":"y"}}"#,
        )
        .unwrap();
        let c = DockerConfig::load(t.path()).unwrap();
        assert_eq!(
            c.credential("docker.io").unwrap(),
            Some(Credential::Basic {
                username: "u".into(),
                password: "p".into()
            })
        );
        assert_eq!(
            c.credential("reg.example:5000").unwrap(),
            Some(Credential::IdentityToken {
                username: "".into(),
                token: "rt".into()
            })
        );
        assert_eq!(
            c.credential("other.example").unwrap(),
            Some(Credential::Basic {
                username: "a".into(),
                password: "b".into()
            })
        );
        assert_eq!(c.credential("nope.example").unwrap(), None);
        let mut c = c;
        c.store("localhost:5000", "me", "pw").unwrap();
        assert!(c.erase("reg.example:5000").unwrap());
        let c2 = DockerConfig::load(t.path()).unwrap();
        assert_eq!(
            c2.credential("localhost:5000").unwrap(),
            Some(Credential::Basic {
                username: "me".into(),
                password: "pw".into()
            })
        );
        assert_eq!(c2.credential("reg.example:5000").unwrap(), None);
        assert_eq!(c2.doc["HttpHeaders"]["X"], "y", "unknown fields survive");
        let raw = std::fs::read_to_string(t.path().join("config.json")).unwrap();
        assert!(raw.contains(&B64.encode("me:pw")));
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = Credential::Basic {
            username: "user".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}

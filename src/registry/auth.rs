//! Credentials from Docker's `config.json` (`auths`, `identitytoken`, `credsStore`,
//! `credHelpers`), `WWW-Authenticate` challenge parsing, and `hoist login`/`logout` writes to
//! the same file so Docker and hoist share logins.

use super::{RegistryError, Result};
use base64::Engine as _;
use serde_json::{Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Credentials for one registry. `Debug` never shows secrets.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// User name and password (or access token used as a password).
    Basic { username: String, password: String },
    /// An OAuth2 refresh token (`identitytoken`), exchanged at the token realm.
    IdentityToken(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credential::IdentityToken(_) => write!(f, "IdentityToken(<redacted>)"),
        }
    }
}

/// The directory holding config.json: `explicit`, else `$DOCKER_CONFIG`, else `~/.docker`.
pub fn docker_config_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".docker")
}

/// The config.json keys Docker uses for `registry` (Docker Hub has several spellings).
fn config_keys(registry: &str) -> Vec<String> {
    if registry == super::reference::DOCKER_HUB {
        vec![
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            "docker.io".into(),
            "registry-1.docker.io".into(),
        ]
    } else {
        vec![registry.to_string()]
    }
}

/// `https://host:port/v1/` → `host:port`.
fn normalize_key(k: &str) -> &str {
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    k.split('/').next().unwrap_or(k)
}

fn read_config(dir: &Path) -> Result<Option<Map<String, Value>>> {
    let path = dir.join("config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(RegistryError::Io { path, source }),
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(Some(m)),
        Ok(_) => Err(RegistryError::Config {
            path,
            message: "not a JSON object".into(),
        }),
        Err(e) => Err(RegistryError::Config {
            path,
            message: format!("invalid JSON: {e}"),
        }),
    }
}

/// The credentials config.json in `dir` holds for `registry` (a helper is asked when one is
/// configured), or `None` for anonymous access.
pub fn lookup(dir: &Path, registry: &str) -> Result<Option<Credential>> {
    let Some(cfg) = read_config(dir)? else {
        return Ok(None);
    };
    let keys = config_keys(registry);
    let helper = cfg
        .get("credHelpers")
        .and_then(Value::as_object)
        .and_then(|h| {
            h.iter()
                .find(|(k, _)| keys.iter().any(|x| normalize_key(k) == normalize_key(x)))
        })
        .and_then(|(_, v)| v.as_str())
        .or_else(|| cfg.get("credsStore").and_then(Value::as_str))
        .filter(|h| !h.is_empty());
    if let Some(helper) = helper {
        let server = if registry == super::reference::DOCKER_HUB {
            "https://index.docker.io/v1/"
        } else {
            registry
        };
        if let Some(c) = run_helper(helper, registry, server)? {
            return Ok(Some(c));
        }
    }
    let Some(auths) = cfg.get("auths").and_then(Value::as_object) else {
        return Ok(None);
    };
    for want in &keys {
        for (k, v) in auths {
            if normalize_key(k) != normalize_key(want) {
                continue;
            }
            if let Some(t) = v
                .get("identitytoken")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
            {
                return Ok(Some(Credential::IdentityToken(t.to_string())));
            }
            if let Some(a) = v
                .get("auth")
                .and_then(Value::as_str)
                .filter(|a| !a.is_empty())
            {
                let path = dir.join("config.json");
                let bad = || RegistryError::Config {
                    path: path.clone(),
                    message: format!(
                        "auths[{k:?}].auth is not base64 of user:password; run `hoist login {registry}` again"
                    ),
                };
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(a.trim())
                    .map_err(|_| bad())?;
                let s = String::from_utf8(raw).map_err(|_| bad())?;
                let (u, p) = s.split_once(':').ok_or_else(bad)?;
                return Ok(Some(Credential::Basic {
                    username: u.to_string(),
                    password: p.to_string(),
                }));
            }
            if let (Some(u), Some(p)) = (
                v.get("username").and_then(Value::as_str),
                v.get("password").and_then(Value::as_str),
            ) {
                return Ok(Some(Credential::Basic {
                    username: u.to_string(),
                    password: p.to_string(),
                }));
            }
        }
    }
    Ok(None)
}

/// Runs `docker-credential-HELPER get` with the server on stdin.
fn run_helper(helper: &str, registry: &str, server: &str) -> Result<Option<Credential>> {
    let err = |message: String| RegistryError::CredentialHelper {
        helper: helper.to_string(),
        registry: registry.to_string(),
        message,
    };
    if !helper
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(err("invalid helper name".into()));
    }
    let mut child = match Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return Err(err(format!(
                "cannot run it: {e} (is it installed and on PATH?)"
            )));
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stdout).trim().to_string();
        // "credentials not found in native keychain": anonymous, like Docker.
        if msg.contains("not found") {
            return Ok(None);
        }
        return Err(err(format!("exited with {}", out.status)));
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| err(format!("invalid JSON output: {e}")))?;
    let user = v.get("Username").and_then(Value::as_str).unwrap_or("");
    let secret = v.get("Secret").and_then(Value::as_str).unwrap_or("");
    if secret.is_empty() {
        return Ok(None);
    }
    if user == "<token>" {
        return Ok(Some(Credential::IdentityToken(secret.to_string())));
    }
    Ok(Some(Credential::Basic {
        username: user.to_string(),
        password: secret.to_string(),
    }))
}

/// The key `hoist login HOST` writes (Docker's spelling for Docker Hub).
pub fn login_key(registry: &str) -> String {
    let r = normalize_key(registry);
    if matches!(r, "docker.io" | "index.docker.io" | "registry-1.docker.io") {
        "https://index.docker.io/v1/".into()
    } else {
        r.to_string()
    }
}

fn write_config(dir: &Path, cfg: &Map<String, Value>) -> Result<()> {
    let path = dir.join("config.json");
    let io = |source| RegistryError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|source| RegistryError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    let text = serde_json::to_string_pretty(&Value::Object(cfg.clone())).map_err(|e| {
        RegistryError::Config {
            path: path.clone(),
            message: e.to_string(),
        }
    })?;
    tmp.write_all(text.as_bytes()).map_err(io)?;
    tmp.write_all(b"\n").map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(&path).map_err(|e| RegistryError::Io {
        path: path.clone(),
        source: e.error,
    })?;
    Ok(())
}

/// Records `username:password` for `registry` in config.json (`auths[KEY].auth`), as
/// `docker login` does without a credential store. The file stays mode 0600.
pub fn store_login(dir: &Path, registry: &str, username: &str, password: &str) -> Result<()> {
    let mut cfg = read_config(dir)?.unwrap_or_default();
    let auths = cfg
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    if let Value::Object(a) = auths {
        let mut entry = Map::new();
        entry.insert("auth".into(), Value::String(encoded));
        a.insert(login_key(registry), Value::Object(entry));
    }
    write_config(dir, &cfg)
}

/// Removes `registry` from config.json; true when it was there.
pub fn remove_login(dir: &Path, registry: &str) -> Result<bool> {
    let Some(mut cfg) = read_config(dir)? else {
        return Ok(false);
    };
    let key = login_key(registry);
    let removed = cfg
        .get_mut("auths")
        .and_then(Value::as_object_mut)
        .map(|a| {
            let keys: Vec<String> = a.keys().filter(|k| login_key(k) == key).cloned().collect();
            keys.iter()
                .filter(|k| a.remove(k.as_str()).is_some())
                .count()
                > 0
        })
        .unwrap_or(false);
    if removed {
        write_config(dir, &cfg)?;
    }
    Ok(removed)
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Bearer {
        realm: String,
        service: Option<String>,
    },
    Basic,
}

/// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
pub(crate) fn parse_challenge(h: &str) -> Option<Challenge> {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    let mut s = rest.trim();
    while !s.is_empty() {
        let (k, after) = s.split_once('=')?;
        let k = k.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (v, tail) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], &q[end + 1..])
        } else {
            match after.find(',') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            }
        };
        match k.as_str() {
            "realm" => realm = Some(v.to_string()),
            "service" => service = Some(v.to_string()),
            _ => {}
        }
        s = tail.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge::Bearer {
        realm: realm?,
        service,
    })
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
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
    }

    #[test]
    fn config_json_round_trip_and_docker_hub_keys() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(lookup(dir.path(), "docker.io").unwrap(), None);
        store_login(dir.path(), "docker.io", "me", "s3:cret").unwrap();
        store_login(dir.path(), "localhost:5000", "u", "p").unwrap();
        let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
        assert!(text.contains("https://index.docker.io/v1/"), "{text}");
        assert_eq!(
            lookup(dir.path(), "docker.io").unwrap(),
            Some(Credential::Basic {
                username: "me".into(),
                password: "s3:cret".into()
            })
        );
        assert!(lookup(dir.path(), "localhost:5000").unwrap().is_some());
        assert_eq!(lookup(dir.path(), "other:5000").unwrap(), None);
        assert!(remove_login(dir.path(), "docker.io").unwrap());
        assert_eq!(lookup(dir.path(), "docker.io").unwrap(), None);
        assert!(!remove_login(dir.path(), "docker.io").unwrap());
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"ghcr.io":{"identitytoken":"tok"}, "https://quay.io/v1/":{"auth":"YTpi"}}}"#,
        )
        .unwrap();
        assert_eq!(
            lookup(dir.path(), "ghcr.io").unwrap(),
            Some(Credential::IdentityToken("tok".into()))
        );
        assert_eq!(
            lookup(dir.path(), "quay.io").unwrap(),
            Some(Credential::Basic {
                username: "a".into(),
                password: "b".into()
            })
        );
        // Debug never shows the secret.
        let c = lookup(dir.path(), "quay.io").unwrap().unwrap();
        assert_eq!(format!("{c:?}"), "Basic(a, <redacted>)");
    }
}

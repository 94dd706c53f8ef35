//! A git context (`URL#REF:SUBDIR`) fetched with the `git` CLI, as BuildKit's git source
//! does: a shallow fetch of REF (a full one when the server refuses a commit by id), a
//! checkout, `.git` removed unless kept, and SUBDIR resolved inside the checkout so a
//! symlinked SUBDIR cannot point the context out of it.
//!
//! Credentials: git's own credential helpers run as usual; `--secret id=GIT_AUTH_TOKEN`
//! becomes an `Authorization` header for the remote's https host, handed to git through
//! `GIT_CONFIG_*` variables (never on a command line a `ps` shows, never in a message).
//! Transports are limited to http(s), git and ssh (`GIT_ALLOW_PROTOCOL`), so a redirect or a
//! crafted URL cannot reach `ext::` or `file://`.

use super::{ContextError, RemoteOptions, Result};
use rustix::fs::OFlags;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// True for git sources as BuildKit recognises them: `git@…`, `git://…`, `ssh://…`, or an
/// http(s) URL whose path (before `#`) ends in `.git`.
pub(super) fn is_git_url(s: &str) -> bool {
    if s.starts_with("git@") || s.starts_with("git://") || s.starts_with("ssh://") {
        return true;
    }
    if s.starts_with("http://") || s.starts_with("https://") {
        let base = s.split('#').next().unwrap_or(s);
        let base = base.split('?').next().unwrap_or(base);
        return base.ends_with(".git");
    }
    false
}

/// A git context reference: `URL#REF:SUBDIR`, or BuildKit's query form
/// `URL?ref=REF&subdir=DIR&keep-git-dir=true&checksum=COMMIT` (`tag=`/`branch=` for a ref
/// of that kind).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct GitRef {
    pub remote: String,
    pub reference: String,
    pub subdir: String,
    /// `keep-git-dir` in the query (else the build's `BUILDKIT_CONTEXT_KEEP_GIT_DIR`).
    pub keep_git_dir: Option<bool>,
    /// `checksum=`/`commit=`: the commit (or a prefix) REF must resolve to.
    pub checksum: Option<String>,
}

/// Parses a git context reference (see [`GitRef`]); a query key BuildKit does not know, or
/// a fragment and a query that disagree, is an error naming it.
pub(super) fn parse(s: &str) -> std::result::Result<GitRef, String> {
    let (base, frag) = s.split_once('#').unwrap_or((s, ""));
    let (reference, subdir) = frag.split_once(':').unwrap_or((frag, ""));
    let (remote, query) = base.split_once('?').unwrap_or((base, ""));
    let mut g = GitRef {
        remote: remote.to_string(),
        reference: reference.to_string(),
        subdir: subdir.to_string(),
        ..Default::default()
    };
    let bool_of = |k: &str, v: &str| match v {
        "" | "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("invalid {k} value: {v:?}")),
    };
    let set = |slot: &mut String, k: &str, v: String| {
        if !slot.is_empty() && *slot != v {
            return Err(format!("{k} conflicts: {slot:?} vs {v:?}"));
        }
        *slot = v;
        Ok(())
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match k {
            "ref" => set(&mut g.reference, "ref", v)?,
            "tag" => set(&mut g.reference, "ref", format!("refs/tags/{v}"))?,
            "branch" => set(&mut g.reference, "ref", format!("refs/heads/{v}"))?,
            "subdir" => set(&mut g.subdir, "subdir", v)?,
            "checksum" | "commit" => g.checksum = Some(v),
            "keep-git-dir" => g.keep_git_dir = Some(bool_of(k, &v)?),
            // Accepted as BuildKit does; hoist never fetches submodules and keeps the
            // checkout's times.
            "submodules" | "mtime" | "fetch-by-commit" => {}
            _ => return Err(format!("unknown git query {k:?}")),
        }
    }
    Ok(g)
}

/// `%XX` escapes of a query value decoded (others kept as written).
fn percent_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(h) = v
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(h);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The URL as it may be shown: any `user:password@` removed.
fn shown(url: &str) -> String {
    crate::registry::auth::redact_credentials(url)
}

/// A git command with the environment every call shares.
struct Git<'a> {
    dir: &'a Path,
    url: &'a str,
    env: Vec<(String, String)>,
}

impl Git<'_> {
    fn run(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(self.dir)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ALLOW_PROTOCOL", "http:https:git:ssh")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| ContextError::Git {
                url: shown(self.url),
                reason: format!("cannot run git ({e}); install git"),
            })?;
        if !out.status.success() {
            return Err(ContextError::Git {
                url: shown(self.url),
                reason: format!(
                    "git {} failed: {}",
                    args.first().unwrap_or(&""),
                    shown(String::from_utf8_lossy(&out.stderr).trim())
                ),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

/// The `GIT_CONFIG_*` variables that carry the auth header for `remote`, chosen as
/// BuildKit's git source does: `GIT_AUTH_HEADER.HOST`, `GIT_AUTH_TOKEN.HOST`,
/// `GIT_AUTH_HEADER`, `GIT_AUTH_TOKEN`, the first given (a token is sent as
/// `basic base64(x-access-token:TOKEN)`), scoped to the remote URL (to all of github.com for
/// a github.com remote); and the ssh agent for `git@`/`ssh://` remotes.
fn auth_env(remote: &str, opts: &RemoteOptions) -> Vec<(String, String)> {
    let mut env = Vec::new();
    if let Some(sock) = &opts.ssh_auth_sock {
        env.push(("SSH_AUTH_SOCK".into(), sock.to_string_lossy().into_owned()));
    }
    let host = remote
        .split_once("://")
        .map(|(_, r)| r.split('/').next().unwrap_or(""))
        .map(|h| h.rsplit('@').next().unwrap_or(h))
        .unwrap_or("");
    let candidates = [
        (format!("GIT_AUTH_HEADER.{host}"), false),
        (format!("GIT_AUTH_TOKEN.{host}"), true),
        ("GIT_AUTH_HEADER".to_string(), false),
        ("GIT_AUTH_TOKEN".to_string(), true),
    ];
    let header = candidates.iter().find_map(|(id, token)| {
        let v = opts.git_secrets.get(id)?;
        Some(if *token {
            use base64::Engine;
            let mut cred = b"x-access-token:".to_vec();
            cred.extend_from_slice(v);
            format!(
                "basic {}",
                base64::engine::general_purpose::STANDARD.encode(cred)
            )
        } else {
            String::from_utf8_lossy(v).into_owned()
        })
    });
    if let Some(h) = header {
        let scope = ["https://github.com/", "https://www.github.com/"]
            .into_iter()
            .find(|p| remote.starts_with(p))
            .unwrap_or(remote);
        env.push(("GIT_CONFIG_COUNT".into(), "1".into()));
        env.push((
            "GIT_CONFIG_KEY_0".into(),
            format!("http.{scope}.extraheader"),
        ));
        env.push(("GIT_CONFIG_VALUE_0".into(), format!("Authorization: {h}")));
    }
    env
}

/// Fetches `url` into `tmp` and returns the context directory (the checkout's SUBDIR).
pub(super) fn fetch(url: &str, tmp: &Path, opts: &RemoteOptions) -> Result<PathBuf> {
    fetch_with_time(url, tmp, opts).map(|(dir, _)| dir)
}

/// [`fetch`], and the checked-out commit's committer time (seconds since the epoch), which
/// `--reproducible` takes as `SOURCE_DATE_EPOCH`.
pub(super) fn fetch_with_time(
    url: &str,
    tmp: &Path,
    opts: &RemoteOptions,
) -> Result<(PathBuf, super::Commit)> {
    let GitRef {
        remote,
        reference,
        subdir,
        keep_git_dir,
        checksum,
    } = parse(url).map_err(|reason| ContextError::Git {
        url: shown(url),
        reason,
    })?;
    let checkout = tmp.join("git");
    std::fs::create_dir(&checkout).map_err(super::io_err(&checkout))?;
    let git = Git {
        dir: &checkout,
        url,
        env: auth_env(&remote, opts),
    };
    git.run(&["init", "-q"])?;
    git.run(&["remote", "add", "origin", &remote])?;
    let r = if reference.is_empty() {
        "HEAD"
    } else {
        reference.as_str()
    };
    // Shallow where the server allows it; a commit id some servers only serve from a full
    // fetch (no uploadpack.allowReachableSHA1InWant).
    let shallow = git.run(&["fetch", "-q", "--depth", "1", "--no-tags", "origin", r]);
    let target = match shallow {
        Ok(_) => "FETCH_HEAD".to_string(),
        Err(e) if is_commit_id(r) => {
            git.run(&["fetch", "-q", "--no-tags", "origin"])
                .map_err(|_| e)?;
            r.to_string()
        }
        Err(e) => return Err(e),
    };
    git.run(&["-c", "advice.detachedHead=false", "checkout", "-q", &target])?;
    if let Some(want) = &checksum {
        let got = git.run(&["rev-parse", "HEAD"])?;
        if !got.starts_with(want.as_str()) {
            return Err(ContextError::Git {
                url: shown(url),
                reason: format!("expected checksum to match {want}, got {got}"),
            });
        }
    }
    // Read before `.git` may go; a commit always has one, so a failure here is git's.
    let line = git.run(&["log", "-1", "--format=%H %ct"])?;
    let (id, time) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
    let commit = super::Commit {
        id: id.to_string(),
        time: time.parse::<i64>().ok(),
    };
    if !keep_git_dir.unwrap_or(opts.keep_git_dir) {
        let g = checkout.join(".git");
        std::fs::remove_dir_all(&g).map_err(super::io_err(&g))?;
    }
    let limit = opts.limits().max_bytes;
    if tree_size(&checkout, limit)? > limit {
        return Err(ContextError::TooLarge {
            what: format!("git checkout of {}", shown(url)),
            limit,
        });
    }
    Ok((in_root_dir(&checkout, &subdir, url)?, commit))
}

fn is_commit_id(r: &str) -> bool {
    (7..=64).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `sub` inside `root`, resolved in-root (`..` and symlinks clamped at `root`); it must be a
/// directory.
pub(super) fn in_root_dir(root: &Path, sub: &str, url: &str) -> Result<PathBuf> {
    if sub.is_empty() {
        return Ok(root.to_path_buf());
    }
    let fail = |reason: String| ContextError::Git {
        url: shown(url),
        reason,
    };
    let rootfd = crate::fsroot::open_root(root).map_err(super::io_err(root))?;
    let fd = crate::fsroot::open(&rootfd, sub, OFlags::PATH | OFlags::DIRECTORY)
        .map_err(|e| fail(format!("subdirectory {sub:?}: {e}")))?;
    let real = crate::fsroot::fd_path(&fd).map_err(super::io_err(root))?;
    let canon_root = std::fs::canonicalize(root).map_err(super::io_err(root))?;
    if !real.starts_with(&canon_root) {
        return Err(fail(format!(
            "subdirectory {sub:?} is outside the checkout"
        )));
    }
    Ok(real)
}

/// Bytes of regular files under `dir` (symlinks not followed), stopping early past `limit`.
fn tree_size(dir: &Path, limit: u64) -> Result<u64> {
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(super::io_err(&d))? {
            let e = e.map_err(super::io_err(&d))?;
            let m = e.metadata().map_err(super::io_err(e.path()))?;
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() {
                total = total.saturating_add(m.len());
                if total > limit {
                    return Ok(total);
                }
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_urls_and_fragments() {
        assert!(is_git_url("https://h/r.git#main:sub"));
        assert!(is_git_url("git@github.com:a/b.git"));
        assert!(is_git_url("ssh://git@h/r"));
        assert!(is_git_url("git://127.0.0.1:9/r.git"));
        assert!(!is_git_url("https://h/ctx.tar.gz"));
        let g = parse("https://h/r.git#v1:sub/dir").unwrap();
        assert_eq!(
            (g.remote.as_str(), g.reference.as_str(), g.subdir.as_str()),
            ("https://h/r.git", "v1", "sub/dir")
        );
        assert_eq!(parse("git@h:r.git").unwrap().remote, "git@h:r.git");
        let q = parse("https://h/r.git?tag=v1&subdir=a%2Fb&keep-git-dir&checksum=abc").unwrap();
        assert_eq!(
            q,
            GitRef {
                remote: "https://h/r.git".into(),
                reference: "refs/tags/v1".into(),
                subdir: "a/b".into(),
                keep_git_dir: Some(true),
                checksum: Some("abc".into()),
            }
        );
        assert!(is_git_url("https://h/r.git?ref=main"));
        assert!(parse("https://h/r.git?nope=1").is_err());
        assert!(parse("https://h/r.git?ref=a#b").is_err());
    }

    #[test]
    fn auth_secrets_are_chosen_and_scoped_as_buildkit_does() {
        let secrets = |ids: &[(&str, &str)]| RemoteOptions {
            git_secrets: ids
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
            ssh_auth_sock: Some("/run/agent.sock".into()),
            ..Default::default()
        };
        let value = |env: &[(String, String)]| {
            env.iter()
                .find(|(k, _)| k == "GIT_CONFIG_VALUE_0")
                .map(|(_, v)| v.clone())
        };
        let o = secrets(&[("GIT_AUTH_TOKEN", "tok")]);
        let env = auth_env("https://u@git.example/r.git", &o);
        assert!(env.contains(&(
            "GIT_CONFIG_KEY_0".into(),
            "http.https://u@git.example/r.git.extraheader".into()
        )));
        // base64("x-access-token:tok")
        assert_eq!(
            value(&env).as_deref(),
            Some("Authorization: basic eC1hY2Nlc3MtdG9rZW46dG9r")
        );
        assert!(env.contains(&("SSH_AUTH_SOCK".into(), "/run/agent.sock".into())));
        // A host's own secret wins; a header is sent as given.
        let o = secrets(&[
            ("GIT_AUTH_TOKEN", "tok"),
            ("GIT_AUTH_HEADER.git.example", "bearer x"),
        ]);
        assert_eq!(
            value(&auth_env("https://git.example/r.git", &o)).as_deref(),
            Some("Authorization: bearer x")
        );
        assert_eq!(
            value(&auth_env("https://other.example/r.git", &o)).as_deref(),
            Some("Authorization: basic eC1hY2Nlc3MtdG9rZW46dG9r")
        );
        // github.com: every repository of the host.
        let env = auth_env(
            "https://github.com/a/b.git",
            &secrets(&[("GIT_AUTH_TOKEN", "t")]),
        );
        assert!(env.contains(&(
            "GIT_CONFIG_KEY_0".into(),
            "http.https://github.com/.extraheader".into()
        )));
    }

    #[test]
    fn a_symlinked_subdir_stays_in_the_checkout() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("co");
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("out")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("up")).unwrap();
        let r = in_root_dir(&root, "real", "u").unwrap();
        assert!(r.ends_with("co/real"));
        // `/etc` resolves to `<root>/etc`, which does not exist.
        assert!(in_root_dir(&root, "out", "u").is_err());
        // `../../..` clamps at the root.
        let up = in_root_dir(&root, "up", "u").unwrap();
        assert_eq!(up, std::fs::canonicalize(&root).unwrap());
    }
}

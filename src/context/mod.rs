//! Build contexts beyond a local directory: named contexts (`--build-context NAME=VALUE`)
//! and remote main contexts (`hoist build URL`).
//!
//! Everything here happens before the build starts, once for all platforms: a git
//! repository is fetched (`git.rs`, the `git` CLI, as BuildKit does), an http(s) tarball or
//! plain Dockerfile downloaded and unpacked in-root under size limits (`http.rs`), an OCI
//! layout's image copied into the store as verified blobs (`layout.rs`). What comes out is
//! plain data: a directory (with its own `.dockerignore`), an image reference, a stage name
//! or a stored image digest. The graph resolves names against it ([`graph::named`]) and the
//! engine reads the content (`engine/stage/named.rs`); a named directory's files feed the
//! cache keys exactly as the main context's do.
//!
//! Remote contexts are hostile input: checkouts and archives are read through the in-root
//! resolver like local contexts, tar entries are clamped in-root, and downloads, unpacked
//! archives and checkouts are capped at [`Limits::max_bytes`] (`HOIST_REMOTE_CONTEXT_MAX`).
//! Credentials (git credential helpers, `--secret id=GIT_AUTH_TOKEN`) reach only git's
//! environment, never an argument, a log line or the image.
//!
//! [`graph::named`]: crate::graph::named

mod git;
mod http;
pub mod layout;
mod spec;

pub use spec::{Spec, parse_build_context};

use crate::graph::named::{NamedContexts as GraphRefs, NamedRef};
use crate::oci::Digest;
use crate::parser::dockerignore::Matcher;
use crate::store::Store;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Errors preparing a context; each names the context or URL at fault.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("--build-context {spec}: {reason}")]
    BadSpec { spec: String, reason: String },
    #[error("{url}: git: {reason}")]
    Git { url: String, reason: String },
    #[error("{url}: {reason}")]
    Http { url: String, reason: String },
    #[error(
        "{what} is larger than {limit} bytes: refusing it (raise HOIST_REMOTE_CONTEXT_MAX to allow more)"
    )]
    TooLarge { what: String, limit: u64 },
    #[error("oci-layout {dir}: {reason}")]
    Layout { dir: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Copy(#[from] crate::copy::CopyError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, ContextError>;

fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ContextError {
    let path = path.into();
    move |source| ContextError::Io { path, source }
}

/// Default cap on a remote context (download, unpacked archive, checkout): 8 GiB.
const DEFAULT_MAX_BYTES: u64 = 8 << 30;

/// Size limits on remote contexts.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest download, unpacked archive or git checkout, in bytes.
    pub max_bytes: u64,
}

impl Limits {
    /// `HOIST_REMOTE_CONTEXT_MAX` (bytes) when set and valid, else 8 GiB.
    pub fn from_env() -> Limits {
        let max_bytes = std::env::var("HOIST_REMOTE_CONTEXT_MAX")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(DEFAULT_MAX_BYTES);
        Limits { max_bytes }
    }
}

/// What fetching a remote context may use, taken from the build's flags.
#[derive(Clone, Default)]
pub struct RemoteOptions {
    /// `--build-arg BUILDKIT_CONTEXT_KEEP_GIT_DIR=1`: keep `.git` in a git context.
    pub keep_git_dir: bool,
    /// `--secret`s named `GIT_AUTH_TOKEN`, `GIT_AUTH_HEADER`, or either with `.HOST`:
    /// sent to the git remote as BuildKit does (see `git.rs`).
    pub git_secrets: BTreeMap<String, Vec<u8>>,
    /// `--ssh default[=PATH]`: the agent git's ssh uses for `git@`/`ssh://` remotes.
    pub ssh_auth_sock: Option<PathBuf>,
    pub limits: Option<Limits>,
}

impl std::fmt::Debug for RemoteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteOptions")
            .field("keep_git_dir", &self.keep_git_dir)
            .field("git_secrets", &self.git_secrets.keys().collect::<Vec<_>>())
            .field("ssh_auth_sock", &self.ssh_auth_sock)
            .finish()
    }
}

impl RemoteOptions {
    fn limits(&self) -> Limits {
        self.limits.unwrap_or_else(Limits::from_env)
    }
}

/// What `hoist build CONTEXT` names when it is not a local directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// A git repository: `URL#REF:SUBDIR`.
    Git(String),
    /// An http(s) URL: a tarball (the context) or plain text (the Dockerfile alone).
    Http(String),
}

impl Remote {
    /// Classifies a context argument as BuildKit does: git transports and URLs ending in
    /// `.git` are git; other http(s) URLs are downloads; anything else is a path.
    pub fn detect(arg: &str) -> Option<Remote> {
        if git::is_git_url(arg) {
            Some(Remote::Git(arg.to_string()))
        } else if arg.starts_with("http://") || arg.starts_with("https://") {
            Some(Remote::Http(arg.to_string()))
        } else {
            None
        }
    }

    /// Fetches the main context into a new directory under `tmp` and returns it: a git
    /// checkout's SUBDIR, an unpacked tarball, or a directory holding only `Dockerfile` for
    /// plain text; and for git the commit (see [`Prepared::commit`]).
    pub fn fetch(&self, tmp: &Path, opts: &RemoteOptions) -> Result<(PathBuf, Option<Commit>)> {
        match self {
            Remote::Git(url) => {
                git::fetch_with_time(url, tmp, opts).map(|(dir, commit)| (dir, Some(commit)))
            }
            Remote::Http(url) => Ok((http::fetch(url, tmp, &opts.limits())?, None)),
        }
    }

    /// Fetches a named context: a git checkout's SUBDIR, or for http(s) a directory holding
    /// the download as one file named `context` (BuildKit does not unpack named downloads).
    pub fn fetch_named(&self, tmp: &Path, opts: &RemoteOptions) -> Result<PathBuf> {
        match self {
            Remote::Git(url) => git::fetch(url, tmp, opts),
            Remote::Http(url) => http::fetch_file(url, tmp, &opts.limits()),
        }
    }
}

/// A named context's content, as the engine reads it.
#[derive(Debug)]
pub enum Content {
    /// A directory (local, or a fetched git/http context) and its `.dockerignore`.
    Dir { root: PathBuf, ignore: Matcher },
    /// An image copied from an OCI layout into the store: its manifest or index digest.
    Layout { digest: Digest, label: String },
}

/// The named contexts of one build, ready: what the graph resolves names against and what
/// the engine reads. Holds fetched contexts' temp dirs (and their store session) until the
/// build is over.
#[derive(Debug, Default)]
pub struct NamedContexts {
    refs: GraphRefs,
    content: BTreeMap<String, Content>,
    _hold: Vec<tempfile::TempDir>,
    _store: Option<Store>,
}

impl NamedContexts {
    /// The names as the graph sees them (for [`crate::graph::GraphOptions::contexts`]).
    pub fn refs(&self) -> &GraphRefs {
        &self.refs
    }

    /// The content of the context with key `key` (a [`crate::graph::Source::Context`]).
    pub fn get(&self, key: &str) -> Option<&Content> {
        self.content.get(key)
    }

    /// Prepares every `--build-context` of a build: local directories checked, remote ones
    /// fetched into the store's scratch space, OCI layouts imported into the store.
    fn prepare(&mut self, specs: &[String], store: &Store, opts: &RemoteOptions) -> Result<()> {
        let out = self;
        for raw in specs {
            let (key, spec) = parse_build_context(raw)?;
            let bad = |reason: String| ContextError::BadSpec {
                spec: raw.clone(),
                reason,
            };
            let r = match spec {
                Spec::Image(i) => NamedRef::Image(i),
                Spec::Target(t) => NamedRef::Stage(t),
                Spec::Dir(d) => {
                    let root = std::path::absolute(&d).map_err(io_err(&d))?;
                    if !root.is_dir() {
                        return Err(bad(format!("{} is not a directory", d.display())));
                    }
                    out.insert_dir(&key, root)?;
                    NamedRef::Content
                }
                Spec::Remote(remote) => {
                    let tmp = store.tmp_dir()?;
                    // BUILDKIT_CONTEXT_KEEP_GIT_DIR is the main context's; BuildKit never
                    // keeps `.git` in a named one.
                    let named_opts = RemoteOptions {
                        keep_git_dir: false,
                        ..opts.clone()
                    };
                    let root = remote.fetch_named(tmp.path(), &named_opts)?;
                    out._hold.push(tmp);
                    out.insert_dir(&key, root)?;
                    NamedRef::Content
                }
                Spec::Layout { dir, selector } => {
                    let digest = layout::import(store, &dir, &selector)?;
                    out.content.insert(
                        key.clone(),
                        Content::Layout {
                            digest,
                            label: format!("oci-layout://{}", dir.display()),
                        },
                    );
                    NamedRef::Content
                }
            };
            if out.refs.insert(key.clone(), r).is_some() {
                return Err(bad(format!("context {key:?} is given twice")));
            }
        }
        Ok(())
    }

    fn insert_dir(&mut self, key: &str, root: PathBuf) -> Result<()> {
        // A named context's own `.dockerignore` applies to it (no Dockerfile-specific one).
        let ignore = crate::copy::context::load_ignore(&root, Path::new(""))?;
        self.content
            .insert(key.to_string(), Content::Dir { root, ignore });
        Ok(())
    }
}

/// The flags of `hoist build` this module reads.
pub struct Flags<'a> {
    /// The `CONTEXT` argument.
    pub context: &'a str,
    /// `-f`: with a remote context, a path inside it.
    pub file: Option<&'a str>,
    /// `--build-context NAME=VALUE`, in order.
    pub build_contexts: &'a [String],
    /// `--build-arg` as given (for `BUILDKIT_CONTEXT_KEEP_GIT_DIR`).
    pub build_args: &'a [String],
    /// `--ssh` as given (`default[=PATH]` is git's agent).
    pub ssh: &'a [String],
    /// The `--secret`s that could be read, as (id, bytes) (for `GIT_AUTH_TOKEN`).
    pub secrets: &'a dyn Fn() -> Vec<(String, Vec<u8>)>,
    pub store_root: &'a Path,
}

/// What [`prepare`] made of the flags.
pub struct Prepared {
    /// The main context when `CONTEXT` is a URL: the fetched directory.
    pub main: Option<PathBuf>,
    /// With a remote context, its Dockerfile (`-f`, else `Dockerfile`) resolved inside it,
    /// so a symlinked Dockerfile cannot make hoist read a file of the host.
    pub dockerfile: Option<PathBuf>,
    /// The named contexts (and the temp dirs of everything fetched, held until dropped).
    pub named: std::sync::Arc<NamedContexts>,
    /// With a git main context, the fetched commit (its time for `--reproducible`, its id
    /// for provenance).
    pub commit: Option<Commit>,
}

/// The commit a git context was fetched at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// The full commit id.
    pub id: String,
    /// Its committer time (seconds since the epoch).
    pub time: Option<i64>,
}

/// Fetches a remote main context and prepares every named context, before the build.
pub fn prepare(flags: &Flags) -> Result<Prepared> {
    let remote = Remote::detect(flags.context);
    if remote.is_none() && flags.build_contexts.is_empty() {
        return Ok(Prepared {
            main: None,
            dockerfile: None,
            named: Default::default(),
            commit: None,
        });
    }
    let keep_git_dir = flags.build_args.iter().any(|a| {
        a.split_once('=').is_some_and(|(k, v)| {
            k == "BUILDKIT_CONTEXT_KEEP_GIT_DIR" && matches!(v, "1" | "true" | "True" | "TRUE")
        })
    });
    let ssh_auth_sock = flags.ssh.iter().find_map(|s| match s.split_once('=') {
        Some(("default", p)) => Some(PathBuf::from(p)),
        None if s == "default" => std::env::var_os("SSH_AUTH_SOCK").map(PathBuf::from),
        _ => None,
    });
    let opts = RemoteOptions {
        keep_git_dir,
        git_secrets: (flags.secrets)()
            .into_iter()
            .filter(|(id, _)| {
                ["GIT_AUTH_TOKEN", "GIT_AUTH_HEADER"].iter().any(|k| {
                    id == k || id.strip_prefix(k).is_some_and(|rest| rest.starts_with('.'))
                })
            })
            .collect(),
        ssh_auth_sock,
        limits: None,
    };
    let store = Store::open(flags.store_root)?;
    let mut named = NamedContexts::default();
    let (main, commit) = match remote {
        Some(r) => {
            let tmp = store.tmp_dir()?;
            let (dir, time) = r.fetch(tmp.path(), &opts)?;
            named._hold.push(tmp);
            (Some(dir), time)
        }
        None => (None, None),
    };
    let dockerfile = match &main {
        Some(dir) if flags.file != Some("-") => Some(in_root_file(
            dir,
            flags.file.unwrap_or("Dockerfile"),
            flags.context,
        )?),
        _ => None,
    };
    named.prepare(flags.build_contexts, &store, &opts)?;
    named._store = Some(store);
    Ok(Prepared {
        main,
        dockerfile,
        named: std::sync::Arc::new(named),
        commit,
    })
}

/// The real path of file `rel` inside `dir`, resolved in-root.
fn in_root_file(dir: &Path, rel: &str, url: &str) -> Result<PathBuf> {
    let root = crate::fsroot::open_root(dir).map_err(io_err(dir))?;
    let fd = crate::fsroot::open(&root, rel, rustix::fs::OFlags::PATH).map_err(|e| {
        ContextError::Http {
            url: crate::registry::auth::redact_credentials(url),
            reason: format!("{rel}: {e} (looked up inside the fetched context)"),
        }
    })?;
    crate::fsroot::fd_path(&fd).map_err(io_err(dir))
}

//! COPY and ADD file work: select the sources a step reads (inside the context or a
//! stage/image rootfs, `.dockerignore`, `--exclude`, wildcards, `--parents`), and write them
//! into an empty layer directory with BuildKit's destination, ownership, mode and time rules;
//! ADD's archives, URLs and git repositories; and the content key of exactly what is read.
//!
//! Nothing outside a source root is ever read and nothing outside `out` is ever written:
//! every path goes through the in-root resolver's walk ([`crate::fsroot`]: component by
//! component from a root directory fd; absolute links and extra `..` are clamped at the root).
//!
//! How the engine uses it, per COPY/ADD step:
//!
//! ```text
//! let ignore = copy::context::load_ignore(&context_dir, &dockerfile_path)?;   // once per build
//! let cache  = copy::HashCache::open(&store_root.join("cache/content"))?;      // once per build
//! let src = CopySource::Context { root: &context_dir, ignore: &ignore };       // or Rootfs(view)
//! let key = copy::content_key(&src, &req, &cache)?;   // part of the step's cache key
//! // on a miss: `out` is an empty dir (store tmp), `image_view` the parent's merged rootfs
//! copy::apply(&src, &req, image_view.path(), &out)?;  // then layers::write_layer(&out, ..)
//! cache.save()?;                                       // at the end of the build
//! ```
//!
//! Names for `--chown` are resolved by the engine (`executor::user::resolve_chown`) before the
//! request is made; `req.dest` is absolute (WORKDIR already joined, trailing `/` kept).
//! `hoist build -` extracts its stdin tar with [`context::tar_stdin_context`] first.

mod add;
pub mod chmod;
pub mod context;
mod fsops;
mod hash_cache;
mod key;
mod select;
mod sent;
mod write;

use crate::parser::dockerignore::{IgnoreError, Matcher};
use std::path::{Path, PathBuf};

/// HTTP `Last-Modified` dates, for the other downloads (remote contexts).
pub(crate) use add::parse_http_date;
pub use hash_cache::HashCache;
pub use key::{content_key, content_key_lines, split_line};
pub use sent::SentPaths;

/// The host path of `rel` inside `root`, every symlink resolved in-root (`..` and absolute
/// links clamped at the root) by the same fd walk COPY uses; `None` when it does not exist.
/// For RUN bind mounts, which hand the sandbox a path.
pub fn resolve_in_root(root: &Path, rel: &str) -> std::io::Result<Option<PathBuf>> {
    let r = crate::fsroot::Root::open(root)?;
    let found = match r.resolve(rel, true) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(found.meta.map(|_| {
        found
            .comps
            .iter()
            .fold(root.to_path_buf(), |p, c| p.join(c))
    }))
}

/// Where a COPY reads from.
#[derive(Debug, Clone, Copy)]
pub enum CopySource<'a> {
    /// The build context: files land owned by 0:0 (or `--chown`), ignored files do not exist.
    Context { root: &'a Path, ignore: &'a Matcher },
    /// A stage's or image's root filesystem (`COPY --from`): ownership is kept.
    Rootfs(&'a Path),
}

/// One COPY or ADD, after expansion.
#[derive(Debug, Clone, Default)]
pub struct CopyRequest {
    /// Source paths as written (relative to the source root; `..` is clamped at it), URLs
    /// and git URLs for ADD, or heredoc names.
    pub sources: Vec<String>,
    /// Absolute destination, after the WORKDIR join; a trailing `/` is kept.
    pub dest: String,
    /// `--chown`, already resolved to numbers.
    pub chown: Option<(u32, u32)>,
    /// `--chmod` as written (octal or symbolic).
    pub chmod: Option<String>,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude` patterns.
    pub exclude: Vec<String>,
    /// ADD rather than COPY.
    pub add: bool,
    /// `--unpack` (ADD); None means the default (local archives unpacked, URLs not).
    pub unpack: Option<bool>,
    /// `--checksum` (ADD of a URL or git repository).
    pub checksum: Option<String>,
    /// `--keep-git-dir` (ADD of a git repository).
    pub keep_git_dir: bool,
    /// Heredoc sources: (name as in `sources`, content).
    pub heredocs: Vec<(String, String)>,
    /// `SOURCE_DATE_EPOCH`: file times are clamped to it.
    pub source_date_epoch: Option<i64>,
    /// `--parents` from the very filesystem the COPY writes to (`FROM img` and
    /// `--from=img`, or `--from` the stage this one is built on, no file step since): a named
    /// source that does not exist copies nothing. BuildKit checks `--parents` sources only
    /// while hashing the source's content, which it skips for the input it writes to.
    pub unchecked_parents: bool,
    /// The context paths BuildKit would have been sent (None: all of them); decides whether
    /// a wildcard that matches nothing may copy nothing.
    pub sent: Option<std::sync::Arc<SentPaths>>,
}

/// Errors from COPY/ADD.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A named source does not exist (or is excluded by .dockerignore).
    #[error(
        "failed to compute cache key: \"/{name}\": not found (in {root}); check the path, and that .dockerignore does not exclude it"
    )]
    NotFound { name: String, root: PathBuf },
    /// A wildcard matched nothing.
    #[error(
        "failed to compute cache key: no source files were specified: pattern \"{pattern}\" matches no files in {root}"
    )]
    NoMatch { pattern: String, root: PathBuf },
    /// A directory source lands where an earlier source of the same COPY wrote a file.
    #[error(
        "cannot copy a directory to {path}: an earlier source of this COPY wrote a file there (give the destination a trailing / to copy into a directory)"
    )]
    DirOntoEarlierFile { path: String },
    /// A destination component exists and is not a directory.
    #[error("cannot copy to {dest}: {path} exists in the image and is not a directory")]
    NotADirectory { dest: String, path: String },
    /// A directory would replace a file or the reverse in a way BuildKit refuses.
    #[error("cannot replace directory {path} with a file")]
    ReplaceDir { path: String },
    /// Bad `--chmod`.
    #[error("invalid --chmod={spec}: expected an octal mode (0755) or symbolic (u=rwX,go=rX)")]
    BadChmod { spec: String },
    /// Bad `--exclude` or `.dockerignore` pattern.
    #[error(transparent)]
    Pattern(#[from] IgnoreError),
    /// A `.dockerignore` file with a bad pattern.
    #[error("{path}: {source}")]
    Ignore { path: PathBuf, source: IgnoreError },
    /// No sources at all.
    #[error("COPY/ADD needs at least one source")]
    NoSources,
    /// I/O on a path.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A `--checksum` that does not match.
    #[error("checksum mismatch for {url}: expected {expected}, got {got}")]
    Checksum {
        url: String,
        expected: String,
        got: String,
    },
    /// A bad `--checksum` value.
    #[error("invalid --checksum={value}: expected sha256:<64 hex digits>")]
    BadChecksum { value: String },
    /// Downloading an ADD URL failed.
    #[error("failed to download {url}: {reason}")]
    Download { url: String, reason: String },
    /// Fetching an ADD git repository failed.
    #[error("failed to fetch git repository {url}: {reason}")]
    Git { url: String, reason: String },
    /// An archive that could not be read.
    #[error("failed to unpack {path}: {reason}")]
    Archive { path: String, reason: String },
    /// The hash cache file is unusable.
    #[error("hash cache {path}: {reason}")]
    HashCache { path: PathBuf, reason: String },
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, CopyError>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> CopyError {
    let path = path.into();
    move |source| CopyError::Io { path, source }
}

/// Runs one COPY/ADD: reads the sources from `src`, resolves the destination through the
/// parent image's merged rootfs `image_view` (its symlinks, e.g. `/var/run -> /run`, and the
/// metadata of directories that already exist), and writes the new files, plus every parent
/// directory they need, into the empty layer directory `out`.
pub fn apply(src: &CopySource, req: &CopyRequest, image_view: &Path, out: &Path) -> Result<()> {
    let mut w = write::Writer::new(src, req, image_view, out)?;
    select::run(src, req, &mut w)?;
    w.finish()
}

/// [`apply`], except that plain regular files of the build context (one link, no xattrs) are
/// not copied into `out`: they are returned, to be archived straight from the context with
/// [`crate::layers::write_layer_with`] (same layer bytes, no copy written and read again).
/// `out` alone is then NOT the layer's content and must not be used as its snapshot.
pub fn apply_deferred(
    src: &CopySource,
    req: &CopyRequest,
    image_view: &Path,
    out: &Path,
) -> Result<crate::layers::ExtraFiles> {
    let mut w = write::Writer::new(src, req, image_view, out)?;
    if matches!(src, CopySource::Context { .. }) {
        w.defer_files();
    }
    select::run(src, req, &mut w)?;
    let deferred = w.take_deferred();
    w.finish()?;
    Ok(deferred)
}

//! The local content-addressed store under the hoist root: blobs by digest (verified,
//! atomic writes), the image index (name:tag → manifest digest), unpacked layer snapshots,
//! scratch space, and locks so several hoist processes can share one root.
//!
//! Layout:
//! ```text
//! <root>/blobs/sha256/<hex>        read-only, content-verified blobs
//! <root>/meta/images.json          image name → manifest digest (replaced atomically)
//! <root>/meta/sources/<hex>         repositories a blob is known to exist in (for mounts)
//! <root>/snapshots/<diff-id hex>   unpacked layers (overlay lower dirs)
//! <root>/cache-mounts/<sha256(id)> RUN --mount=type=cache directories
//! <root>/tmp/<session>/            scratch; one dir per process, removed when stale
//! <root>/locks/*.lock              flock(2) files
//! ```

pub mod archive;
mod index;
pub mod maintenance;
mod sources;

use crate::oci::{Digest, Digester, ImageConfig, Manifest};
use rustix::fs::FlockOperation;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Name of the sandbox pool under `<root>/tmp` (bundles, overlay mount points, runtime state).
/// It belongs to the executor, which cleans what dead processes left there
/// (`executor::cleanup_stale`): the store's scratch cleaner must never walk into it, since a
/// live build of another process may have an overlay mounted inside.
pub const SANDBOX_POOL: &str = "sandbox";

/// Largest manifest or index hoist reads (bytes).
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;
/// Largest image config hoist reads (bytes).
pub const MAX_CONFIG_SIZE: u64 = 8 << 20;

/// Errors from the store; each names the path or digest at fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A blob written without hashing was committed without the digest its producer computed.
    #[error("{0}: internal error: a blob written unhashed was committed without its digest")]
    UnnamedBlob(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("blob {0} is not in the store (pull the image again, or run `hoist fsck --repair`)")]
    MissingBlob(Digest),
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("image {0} is not in the store (see `hoist images`)")]
    UnknownImage(String),
    #[error(
        "blob {digest} ({path}) is corrupt: its content hashes to {actual}; run `hoist fsck --repair`"
    )]
    CorruptBlob {
        digest: Digest,
        path: PathBuf,
        actual: Digest,
    },
    #[error("{path}: invalid JSON in {what}: {source}")]
    Json {
        path: PathBuf,
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("blob {digest}: {what} is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        digest: Digest,
        what: &'static str,
        size: u64,
        limit: u64,
    },
    #[error("{path}: cannot lock: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Result alias for the store.
pub type Result<T> = std::result::Result<T, StoreError>;

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An exclusive or shared `flock` held until dropped.
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
}

/// Takes a `flock` on `path` (created if missing), blocking until it is granted.
pub fn lock_file(path: &Path, exclusive: bool) -> Result<LockGuard> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| StoreError::Lock {
            path: path.to_path_buf(),
            source,
        })?;
    let op = if exclusive {
        FlockOperation::LockExclusive
    } else {
        FlockOperation::LockShared
    };
    rustix::fs::flock(&file, op).map_err(|e| StoreError::Lock {
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    Ok(LockGuard { _file: file })
}

/// This process's scratch session under `<root>/tmp`, locked while the store is open.
#[derive(Debug)]
struct Session {
    dir: PathBuf,
    lock_path: PathBuf,
    _lock: File,
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
        let _ = fs::remove_file(&self.lock_path);
    }
}

/// A store rooted at a directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    session: Arc<Session>,
}

/// Writes a file atomically: temp file beside it, fsync, rename, fsync the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    tmp.write_all(bytes).map_err(io_err(tmp.path()))?;
    tmp.as_file().sync_all().map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| StoreError::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

fn random_name() -> String {
    let mut buf = [0u8; 8];
    if getrandom(&mut buf).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        buf = (t as u64 ^ u64::from(std::process::id())).to_le_bytes();
    }
    hex::encode(buf)
}

fn getrandom(buf: &mut [u8]) -> io::Result<()> {
    File::open("/dev/urandom")?.read_exact(buf)
}

impl Store {
    /// Opens (creating if needed) the store at `root`, and removes scratch entries left by
    /// processes that are gone.
    pub fn open(root: &Path) -> Result<Store> {
        for sub in [
            "blobs/sha256",
            "meta",
            "snapshots",
            "cache-mounts",
            "tmp",
            "locks",
        ] {
            let p = root.join(sub);
            fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        let tmp = root.join("tmp");
        Self::clean_stale_tmp(&tmp)?;
        let session = loop {
            let name = random_name();
            let lock_path = tmp.join(format!("{name}.lock"));
            let lock = OpenOptions::new()
                .create_new(true)
                .write(true)
                .mode(0o600)
                .open(&lock_path)
                .map_err(io_err(&lock_path))?;
            rustix::fs::flock(&lock, FlockOperation::LockExclusive).map_err(|e| {
                StoreError::Lock {
                    path: lock_path.clone(),
                    source: e.into(),
                }
            })?;
            // A concurrent cleaner may have removed the file between create and flock.
            let same = match (fs::metadata(&lock_path), lock.metadata()) {
                (Ok(a), Ok(b)) => {
                    std::os::unix::fs::MetadataExt::ino(&a)
                        == std::os::unix::fs::MetadataExt::ino(&b)
                }
                _ => false,
            };
            if !same {
                continue;
            }
            let dir = tmp.join(&name);
            fs::create_dir(&dir).map_err(io_err(&dir))?;
            break Session {
                dir,
                lock_path,
                _lock: lock,
            };
        };
        let store = Store {
            root: root.to_path_buf(),
            session: Arc::new(session),
        };
        store.drop_snapshots_from_other_boot()?;
        Ok(store)
    }

    fn clean_stale_tmp(tmp: &Path) -> Result<()> {
        let entries = fs::read_dir(tmp).map_err(io_err(tmp))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == SANDBOX_POOL {
                continue;
            }
            if let Some(stem) = name.strip_suffix(".lock") {
                let Ok(f) = OpenOptions::new().write(true).open(&path) else {
                    continue;
                };
                if rustix::fs::flock(&f, FlockOperation::NonBlockingLockExclusive).is_ok() {
                    let _ = fs::remove_dir_all(tmp.join(stem));
                    let _ = fs::remove_file(&path);
                }
            } else if !tmp.join(format!("{name}.lock")).exists() {
                // A session dir whose lock file is gone, or debris: nobody owns it.
                let _ = if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
            }
        }
        Ok(())
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The sandbox pool dir (`<root>/tmp/sandbox`), see [`SANDBOX_POOL`].
    pub fn sandbox_pool(&self) -> PathBuf {
        self.root.join("tmp").join(SANDBOX_POOL)
    }

    /// Where a blob lives (`blobs/sha256/<hex>`).
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs").join("sha256").join(d.hex())
    }

    /// True when the blob is present (not re-verified).
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Size of a stored blob.
    pub fn blob_size(&self, d: &Digest) -> Result<u64> {
        let p = self.blob_path(d);
        match fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::MissingBlob(d.clone()))
            }
            Err(e) => Err(StoreError::Io { path: p, source: e }),
        }
    }

    /// A writer for a new blob; nothing is visible until [`BlobWriter::commit`].
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        self.new_blob_writer(|file| Sink::Hashing(Digester::wrap(file)))
    }

    /// A [`Store::blob_writer`] for a producer that hashes exactly the bytes it writes (layer
    /// compression computes the blob digest as it emits): the commit takes the producer's
    /// digest, which must be given, instead of hashing every byte a second time (0.5 s of CPU
    /// per 500 MiB). The byte count is still checked when given.
    pub fn blob_writer_hashed_by_producer(&self) -> Result<BlobWriter> {
        self.new_blob_writer(|file| Sink::Counting(file, 0))
    }

    fn new_blob_writer(
        &self,
        sink: impl FnOnce(tempfile::NamedTempFile) -> Sink,
    ) -> Result<BlobWriter> {
        let file = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(&self.session.dir)
            .map_err(io_err(&self.session.dir))?;
        Ok(BlobWriter {
            sink: sink(file),
            store: self.clone(),
            flushed: 0,
        })
    }

    /// Stores bytes as a blob and returns their digest.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest> {
        let d = Digest::of(bytes);
        if self.has_blob(&d) {
            return Ok(d);
        }
        let mut w = self.blob_writer()?;
        w.write_all(bytes).map_err(io_err(&self.session.dir))?;
        Ok(w.commit(Some(&d))?.0)
    }

    /// Reads a whole blob and verifies it against its digest.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(d);
        let mut f = self.open_blob(d)?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).map_err(io_err(&p))?;
        let actual = Digest::of(&bytes);
        if &actual != d {
            return Err(StoreError::CorruptBlob {
                digest: d.clone(),
                path: p,
                actual,
            });
        }
        Ok(bytes)
    }

    /// Reads a blob of at most `limit` bytes (manifests, configs), verified.
    pub fn read_blob_limited(&self, d: &Digest, what: &'static str, limit: u64) -> Result<Vec<u8>> {
        let size = self.blob_size(d)?;
        if size > limit {
            return Err(StoreError::TooLarge {
                digest: d.clone(),
                what,
                size,
                limit,
            });
        }
        self.read_blob(d)
    }

    /// Opens a blob for streaming (not verified; callers that need it hash while reading).
    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        let p = self.blob_path(d);
        File::open(&p).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StoreError::MissingBlob(d.clone())
            } else {
                StoreError::Io { path: p, source: e }
            }
        })
    }

    /// A fresh scratch directory under `<root>/tmp` (same filesystem as snapshots).
    pub fn tmp_dir(&self) -> Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix("t-")
            .tempdir_in(&self.session.dir)
            .map_err(io_err(&self.session.dir))
    }

    /// Path of a lock file named `name` (letters, digits, `-`, `_`, `.` only; others hashed).
    pub fn lock_path(&self, name: &str) -> PathBuf {
        let safe = !name.is_empty()
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        let file = if safe {
            format!("{name}.lock")
        } else {
            format!("{}.lock", Digest::of(name.as_bytes()).hex())
        };
        self.root.join("locks").join(file)
    }

    /// Takes the named lock, exclusive or shared.
    pub fn lock(&self, name: &str, exclusive: bool) -> Result<LockGuard> {
        lock_file(&self.lock_path(name), exclusive)
    }

    /// Takes the named lock without waiting: `None` when another holder has it.
    pub fn try_lock(&self, name: &str, exclusive: bool) -> Result<Option<LockGuard>> {
        let path = self.lock_path(name);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| StoreError::Lock {
                path: path.clone(),
                source,
            })?;
        let op = if exclusive {
            FlockOperation::NonBlockingLockExclusive
        } else {
            FlockOperation::NonBlockingLockShared
        };
        match rustix::fs::flock(&file, op) {
            Ok(()) => Ok(Some(LockGuard { _file: file })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(StoreError::Lock {
                path,
                source: e.into(),
            }),
        }
    }

    /// Shared "in use" lock that a build holds while it relies on blobs and snapshots; `prune`
    /// takes it exclusively, so it never removes what a running build uses.
    pub fn gc_shared_lock(&self) -> Result<LockGuard> {
        self.lock("gc", false)
    }

    fn images_path(&self) -> PathBuf {
        self.root.join("meta").join("images.json")
    }

    fn read_json_map<V: serde::de::DeserializeOwned>(
        path: &Path,
        what: &'static str,
    ) -> Result<BTreeMap<String, V>> {
        match fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| StoreError::Json {
                path: path.to_path_buf(),
                what,
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(StoreError::Io {
                path: path.to_path_buf(),
                source: e,
            }),
        }
    }

    fn write_json<T: serde::Serialize>(path: &Path, what: &'static str, v: &T) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(v).map_err(|source| StoreError::Json {
            path: path.to_path_buf(),
            what,
            source,
        })?;
        write_atomic(path, &bytes)
    }

    /// Updates the image index under its lock.
    pub fn update_images<R>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, Digest>) -> R,
    ) -> Result<R> {
        let _g = self.lock("images", true)?;
        let path = self.images_path();
        let mut map = Self::read_json_map(&path, "image index")?;
        let before = map.clone();
        let r = f(&mut map);
        if map != before {
            Self::write_json(&path, "image index", &map)?;
        }
        Ok(r)
    }

    /// Names an image (`name` = `ImageRef::to_string()`).
    pub fn set_image(&self, name: &str, manifest: &Digest) -> Result<()> {
        self.update_images(|m| {
            m.insert(name.to_string(), manifest.clone());
        })
    }

    /// The manifest digest an image name points to.
    pub fn get_image(&self, name: &str) -> Result<Option<Digest>> {
        let _g = self.lock("images", false)?;
        Ok(
            Self::read_json_map::<Digest>(&self.images_path(), "image index")?
                .get(name)
                .cloned(),
        )
    }

    /// Every named image, sorted by name.
    pub fn list_images(&self) -> Result<Vec<(String, Digest)>> {
        let _g = self.lock("images", false)?;
        Ok(
            Self::read_json_map::<Digest>(&self.images_path(), "image index")?
                .into_iter()
                .collect(),
        )
    }

    /// Removes a name; true if it existed. Blobs stay until `prune`.
    pub fn remove_image(&self, name: &str) -> Result<bool> {
        self.update_images(|m| m.remove(name).is_some())
    }

    /// Reads and parses an image manifest and its config (both verified, size-limited).
    pub fn load_image(&self, manifest: &Digest) -> Result<(Manifest, ImageConfig)> {
        let bytes = self.read_blob_limited(manifest, "manifest", MAX_MANIFEST_SIZE)?;
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
            path: self.blob_path(manifest),
            what: "image manifest",
            source,
        })?;
        let cfg_bytes = self.read_blob_limited(&m.config.digest, "config", MAX_CONFIG_SIZE)?;
        if cfg_bytes.len() as u64 != m.config.size {
            return Err(StoreError::SizeMismatch {
                digest: m.config.digest.clone(),
                expected: m.config.size,
                actual: cfg_bytes.len() as u64,
            });
        }
        let c: ImageConfig =
            serde_json::from_slice(&cfg_bytes).map_err(|source| StoreError::Json {
                path: self.blob_path(&m.config.digest),
                what: "image config",
                source,
            })?;
        Ok((m, c))
    }

    /// Where the unpacked layer with this diff id lives.
    pub fn snapshot_path(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("snapshots").join(diff_id.hex())
    }

    /// True when the layer has been unpacked.
    pub fn has_snapshot(&self, diff_id: &Digest) -> bool {
        self.snapshot_path(diff_id).is_dir()
    }

    /// Moves a filled directory (under [`Store::tmp_dir`]) to `snapshots/<hex>` atomically; if
    /// the snapshot already exists the filled dir is discarded.
    pub fn commit_snapshot(&self, diff_id: &Digest, filled_dir: &Path) -> Result<PathBuf> {
        let dest = self.snapshot_path(diff_id);
        if dest.is_dir() {
            let _ = fs::remove_dir_all(filled_dir);
            return Ok(dest);
        }
        match fs::rename(filled_dir, &dest) {
            Ok(()) => {
                sync_dir(&self.root.join("snapshots"))?;
                Ok(dest)
            }
            Err(_) if dest.is_dir() => {
                let _ = fs::remove_dir_all(filled_dir);
                Ok(dest)
            }
            Err(e) => Err(StoreError::Io {
                path: dest,
                source: e,
            }),
        }
    }

    /// The directory for `RUN --mount=type=cache,id=ID`; the id is hashed, never used as a path.
    pub fn cache_mount_dir(&self, id: &str) -> Result<PathBuf> {
        let p = self
            .root
            .join("cache-mounts")
            .join(Digest::of(id.as_bytes()).hex());
        fs::create_dir_all(&p).map_err(io_err(&p))?;
        Ok(p)
    }
}

/// A blob being written; [`BlobWriter::commit`] verifies and publishes it.
pub struct BlobWriter {
    sink: Sink,
    store: Store,
    /// Bytes already handed to the kernel's writeback.
    flushed: u64,
}

/// How often a blob being written has its new bytes sent to disk (see [`start_writeback`]).
const WRITEBACK_STEP: u64 = 8 << 20;

/// Starts writing `[from, to)` of `file` to disk without waiting (`sync_file_range` with
/// `SYNC_FILE_RANGE_WRITE`), so that the fsync in [`BlobWriter::commit`] finds little left:
/// a 500 MiB layer otherwise waits ~2 s at commit for all its bytes at once, after the CPU
/// work is done, instead of overlapping with it. Advisory: errors surface at the fsync.
#[allow(unsafe_code)]
fn start_writeback(file: &File, from: u64, to: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(off), Ok(n)) = (i64::try_from(from), i64::try_from(to - from)) else {
        return;
    };
    // SAFETY: plain syscall on a valid, open fd owned by `file`; no memory is passed.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), off, n, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Where a [`BlobWriter`]'s bytes go.
enum Sink {
    /// Hashed on the way to the file, checked at commit.
    Hashing(Digester<tempfile::NamedTempFile>),
    /// Only counted: the producer hashes what it writes (see
    /// [`Store::blob_writer_hashed_by_producer`]).
    Counting(tempfile::NamedTempFile, u64),
}

impl Sink {
    fn file(&mut self) -> &mut tempfile::NamedTempFile {
        match self {
            Sink::Hashing(d) => d.get_mut(),
            Sink::Counting(f, _) => f,
        }
    }

    fn len(&self) -> u64 {
        match self {
            Sink::Hashing(d) => d.len(),
            Sink::Counting(_, n) => *n,
        }
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.sink {
            Sink::Hashing(d) => d.write(buf)?,
            Sink::Counting(f, len) => {
                let n = f.write(buf)?;
                *len += n as u64;
                n
            }
        };
        let len = self.sink.len();
        if len - self.flushed >= WRITEBACK_STEP {
            start_writeback(self.sink.file().as_file(), self.flushed, len);
            self.flushed = len;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.sink.file().flush()
    }
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.sink.len()
    }

    /// True when nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.sink.len() == 0
    }

    /// A second, read-only handle on the file being written, for a reader that follows the
    /// writer (a streamed upload). It stays valid when [`BlobWriter::commit`] renames the file
    /// or drops it as a duplicate.
    pub fn reopen(&mut self) -> Result<File> {
        let p = self.sink.file().path().to_path_buf();
        File::open(&p).map_err(io_err(&p))
    }

    /// Checks the hash against `expected`, fsyncs, makes the file read-only and renames it into
    /// `blobs/sha256/<hex>`. On a mismatch nothing is stored.
    pub fn commit(self, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        self.commit_inner(expected, None)
    }

    /// [`BlobWriter::commit`] that also checks the byte count.
    pub fn commit_sized(self, expected: &Digest, size: u64) -> Result<(Digest, u64)> {
        self.commit_inner(Some(expected), Some(size))
    }

    fn commit_inner(self, expected: Option<&Digest>, size: Option<u64>) -> Result<(Digest, u64)> {
        let (digest, len, mut tmp) = match self.sink {
            Sink::Hashing(d) => d.finish(),
            Sink::Counting(f, len) => match expected {
                Some(d) => (d.clone(), len, f),
                None => return Err(StoreError::UnnamedBlob(f.path().to_path_buf())),
            },
        };
        if let Some(want) = size
            && want != len
        {
            return Err(StoreError::SizeMismatch {
                digest: expected.cloned().unwrap_or(digest),
                expected: want,
                actual: len,
            });
        }
        if let Some(exp) = expected
            && exp != &digest
        {
            return Err(StoreError::DigestMismatch {
                expected: exp.clone(),
                actual: digest,
            });
        }
        let dest = self.store.blob_path(&digest);
        if dest.is_file() {
            return Ok((digest, len));
        }
        tmp.flush().map_err(io_err(tmp.path()))?;
        tmp.as_file().sync_all().map_err(io_err(tmp.path()))?;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o444))
            .map_err(io_err(tmp.path()))?;
        tmp.persist(&dest).map_err(|e| StoreError::Io {
            path: dest.clone(),
            source: e.error,
        })?;
        sync_dir(dest.parent().unwrap_or(Path::new(".")))?;
        Ok((digest, len))
    }
}

#[cfg(test)]
mod tests;

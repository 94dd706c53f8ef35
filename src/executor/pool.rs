//! The pool dir every backend works in (`/run/hoist` as root): where it is, the unique
//! `hoist-<pid>-<n>-<t>` names of its entries (a run's bundle, a view's mount point), which
//! [`cleanup_stale`](super::cleanup_stale) reads the owner's pid from, and private dirs in it.

use super::{Result, io_err};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The default pool dir for sandboxes and views: `$HOIST_RUN_DIR`, else `/run/hoist` as root,
/// else `$XDG_RUNTIME_DIR/hoist`, else `<tmp>/hoist-<uid>`.
pub fn default_pool_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("HOIST_RUN_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(d);
    }
    if crate::userns::host_root() {
        return PathBuf::from("/run/hoist");
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(d).join("hoist");
    }
    // Inside hoist's user namespace the euid reads 0: name the dir after the real user.
    std::env::temp_dir().join(format!("hoist-{}", crate::userns::host_uid()))
}

/// A new unique name in the pool: `hoist-<pid>-<n>`.
pub(crate) fn unique_name() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() % 100_000)
        .unwrap_or(0);
    format!("hoist-{}-{n}-{t}", std::process::id())
}

/// Creates `dir` (and parents) with mode 0700.
pub(crate) fn mkdir_private(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(dir))
}

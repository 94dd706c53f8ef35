//! Choosing the isolation backend, once at start-up: `HOIST_ISOLATION=oci|chroot` when set;
//! otherwise the OCI runtime when a probe child of hoist can mount (root on a host, or root of
//! hoist's own user namespace, [`crate::userns`]), else [`Chroot`] (a pod with Docker's
//! default privileges, where neither mount(2) nor unshare(2) is allowed). The probe runs in a
//! re-executed child, never in the builder itself.

use super::chroot::{Chroot, can_mount, mounts_tmpfs};
use super::pool::{mkdir_private, unique_name};
use super::{ExecutorError, Isolation, OciRuntime, Result};
use std::path::PathBuf;

/// Which backend runs the build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationKind {
    /// An OCI runtime (crun/runc) over overlay mounts, in namespaces.
    Oci,
    /// chroot into copied trees, diffs by comparing trees: no mount, no namespace.
    Chroot,
}

/// The environment variable that forces a backend.
pub const ISOLATION_ENV: &str = "HOIST_ISOLATION";

/// The chosen backend, what it is, and the one-line note to show the user (chroot only: what
/// it does not protect).
pub struct Selected {
    pub isolation: Box<dyn Isolation>,
    pub kind: IsolationKind,
    pub note: Option<String>,
}

/// What the chroot isolation tells the user once at start.
pub const CHROOT_NOTE: &str = "note: isolation: chroot (hoist can neither mount nor create \
     namespaces here): RUN steps share the process, network and IPC namespaces of this \
     container and are not confined beyond a chroot; run hoist in a container of its own \
     (the CI pod is the security boundary). See docs/isolation.md.";

/// Picks the backend for a build working in `pool`.
pub fn select(pool: PathBuf) -> Result<Selected> {
    let kind = match std::env::var(ISOLATION_ENV).ok().as_deref() {
        Some("oci") => IsolationKind::Oci,
        Some("chroot") => IsolationKind::Chroot,
        Some("") | None => detect(&pool),
        Some(other) => {
            return Err(ExecutorError::InvalidSpec(format!(
                "{ISOLATION_ENV}={other:?}: expected `oci` or `chroot` (or unset to detect)"
            )));
        }
    };
    Ok(match kind {
        IsolationKind::Oci => Selected {
            isolation: Box::new(OciRuntime::detect()?.with_pool(pool)),
            kind,
            note: None,
        },
        IsolationKind::Chroot => Selected {
            isolation: Box::new(Chroot::new(pool)?),
            kind,
            note: Some(CHROOT_NOTE.into()),
        },
    })
}

/// OCI when a probe child can mount a tmpfs on a fresh pool dir, else chroot. In hoist's own
/// user namespace ([`crate::userns`]) the probe runs in this process: the namespace's mount
/// namespace is private, so nothing can leak to the host, and the seccomp filter that let
/// hoist unshare is not one that kills on mount(2). That saves a re-exec (~3 ms) on every
/// rootless start, where start-up is most of a cached build's time.
fn detect(pool: &std::path::Path) -> IsolationKind {
    let scratch = pool.join(format!("{}-probe", unique_name()));
    let probe = |dir: &std::path::Path| {
        if crate::userns::current().is_some() {
            mounts_tmpfs(dir)
        } else {
            can_mount(dir)
        }
    };
    let ok = mkdir_private(&scratch).is_ok() && probe(&scratch);
    let _ = std::fs::remove_dir(&scratch);
    if ok {
        IsolationKind::Oci
    } else {
        IsolationKind::Chroot
    }
}

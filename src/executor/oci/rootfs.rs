//! The writable rootfs of one OCI run: an overlay of the spec's lowers with the run's upper
//! dir, mounted on the bundle's `rootfs/` and readied by [`prepare`] (symlink swap, stubs);
//! after the run, [`WritableRoot::finish`] undoes that, unmounts, and tidies the upper dir
//! ([`fixup`]) so it holds exactly the changes BuildKit would record.

use super::run_state::RunState;
use crate::executor::overlay::mount_overlay;
use crate::executor::pool::mkdir_private;
use crate::executor::prepare::{self, Prepared};
use crate::executor::view::distinct_lowers;
use crate::executor::{Result, RunSpec, fixup, io_err};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// A mounted, readied rootfs; [`finish`](WritableRoot::finish) after the run.
pub(super) struct WritableRoot {
    /// The lowers mounted, bottom first.
    lowers: Vec<PathBuf>,
    /// The upper's dirs before the run.
    before: BTreeSet<PathBuf>,
    prepared: Prepared,
}

/// Mounts the overlay on `st.rootfs` and readies it for `spec`.
pub(super) fn mount(st: &mut RunState, spec: &RunSpec) -> Result<WritableRoot> {
    // The upper's root must look like the image root (0755), not like a private temp dir.
    std::fs::set_permissions(
        &st.upper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .map_err(io_err(&st.upper))?;
    let before = fixup::upper_dirs(&st.upper);

    let lowers = if spec.lowers.is_empty() {
        // An empty rootfs (FROM scratch): one empty lower.
        let empty = st.dir.join("empty");
        mkdir_private(&empty)?;
        vec![empty]
    } else {
        distinct_lowers(&spec.lowers)
    };
    mount_overlay(&lowers, Some((&st.upper, st.work())), &st.rootfs)?;
    st.mounted = true;
    let prepared = prepare::prepare(&st.rootfs, spec)?;
    Ok(WritableRoot {
        lowers,
        before,
        prepared,
    })
}

impl WritableRoot {
    /// After the run (the container deleted): removes the stubs and puts swapped links back
    /// through the merged view, unmounts, then drops from the upper what only that left.
    pub(super) fn finish(self, st: &mut RunState) -> Result<()> {
        let undone = self.prepared.undo()?;
        st.unmount()?;
        fixup::tidy(&st.upper, &self.lowers, &self.before, &undone);
        Ok(())
    }
}

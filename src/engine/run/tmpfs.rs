//! `RUN --mount=type=tmpfs`: an empty memory-backed directory for the run.

use super::{MountPart, abs_target};
use crate::engine::stage::State;
use crate::executor::{Mount, MountKind};

/// Prepares a tmpfs mount at `target`, of at most `size` bytes when given.
pub(super) fn mount(st: &State, target: String, size: Option<u64>) -> MountPart {
    MountPart {
        key: format!("tmpfs {target}\n"),
        mount: Some(Mount {
            target: abs_target(st, &target),
            kind: MountKind::Tmpfs { size },
        }),
        ..MountPart::default()
    }
}

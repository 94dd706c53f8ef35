//! A read-only view of a stage's layers, for steps that read an image (COPY sources, --chown
//! names, RUN mount sources).

use crate::engine::{Ctx, Result};
use std::path::{Path, PathBuf};

/// A read-only merged view of a stage's layers (an empty dir for scratch).
pub(crate) enum RootView {
    Mounted(crate::executor::View),
    Empty(tempfile::TempDir),
}

impl RootView {
    /// A view of `lowers` through the isolation backend; an empty temp dir for none.
    pub fn open(ctx: &Ctx, lowers: &[PathBuf]) -> Result<RootView> {
        if lowers.is_empty() {
            return Ok(RootView::Empty(ctx.store.tmp_dir()?));
        }
        Ok(RootView::Mounted(ctx.isolation.view(lowers)?))
    }
    /// Where the view is.
    pub fn path(&self) -> &Path {
        match self {
            RootView::Mounted(v) => v.path(),
            RootView::Empty(t) => t.path(),
        }
    }
}

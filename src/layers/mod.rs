//! Filesystem trees ⇄ OCI layers: diff an overlay upper dir into a layer tar (whiteouts,
//! opaque dirs, hardlinks, xattrs, fixed order, clamped times), compress (gzip/zstd on all
//! cores) while computing diffID and digest in one pass, and extract untrusted layers
//! safely into snapshot directories (OCI whiteouts → overlay whiteouts).

/// Errors from this module.
#[derive(Debug, thiserror::Error)]
pub enum LayersError {
    #[error("{path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, LayersError>;

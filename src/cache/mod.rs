//! Build cache: pure, versioned step keys, the local cache index, and cache import/export.

/// Errors from this module.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, CacheError>;

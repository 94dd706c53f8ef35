//! Walks the build graph, runs independent stages concurrently, threads the image config
//! through the steps, and emits progress events.

/// Errors from this module.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, EngineError>;

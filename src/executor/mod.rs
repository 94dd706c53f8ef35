//! Runs one process in an isolated sandbox over an overlay rootfs (through an OCI runtime,
//! crun or runc), with RUN's extra mounts, and cleans up every mount and process after.

/// Errors from this module.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, ExecutorError>;

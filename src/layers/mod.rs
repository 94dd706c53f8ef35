//! Filesystem trees ⇄ OCI layers: diff an overlay upper dir into a layer tar (whiteouts,
//! opaque dirs, hardlinks, xattrs, fixed order, clamped times), compress (gzip/zstd on all
//! cores) while computing diffID and digest in one pass, and extract untrusted layers
//! safely into snapshot directories (OCI whiteouts → overlay whiteouts).
//!
//! Pieces:
//! - [`compress`]: [`Compression`] specs, the streaming tar → sha256 → compress → sha256 →
//!   out pipeline, and [`decompress`] by magic bytes (gzip, zstd, bzip2, xz, plain).
//! - [`tarfmt`]: a small hand-written tar header writer and a strict, bounded tar reader.
//!   Hand-written because the `tar` crate's reader silently merges PAX/GNU extensions without
//!   the limits and PAX/ustar size checks we need for hostile layers, and its writer hides
//!   the exact header layout that decides the diffID.
//! - [`mod@write`]: [`write_layer`], the deterministic walk of an upper dir.
//! - [`squash`]: `--squash`'s merge of several layer snapshots into one.
//! - [`mod@extract`]: [`extract()`]/[`unpack`], the in-root extractor (`openat2` with
//!   `RESOLVE_IN_ROOT`, never following a link for metadata).

pub mod compress;
pub mod extract;
mod fsops;
pub mod squash;
pub mod tarfmt;
pub mod write;

use std::path::PathBuf;

pub use compress::{Compression, DecompressHint, decompress};
pub use extract::{
    ExtractLimits, ExtractMode, ExtractStats, extract, extract_with_limits, unpack,
    unpack_with_limits,
};
pub use write::{ExtraFile, ExtraFiles, LayerBlob, LayerOptions, write_layer, write_layer_with};

/// Errors from this module.
#[derive(Debug, thiserror::Error)]
pub enum LayersError {
    /// A filesystem or stream operation failed on `path`.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The output writer (store blob, registry upload) failed.
    #[error("writing the layer blob failed: {0}")]
    Output(#[source] std::io::Error),
    /// A `--compression` value that does not parse.
    #[error(
        "invalid compression {spec:?}: {reason} (expected gzip[,level=0-9], zstd[,level=1-22] or uncompressed)"
    )]
    BadCompression { spec: String, reason: String },
    /// The compressor failed.
    #[error("{algorithm} compression failed: {reason}")]
    Compress {
        algorithm: &'static str,
        reason: String,
    },
    /// The compressed stream is not what its media type says, or is corrupt.
    #[error("cannot decompress layer (media type {media_type:?}): {reason}")]
    Decompress { media_type: String, reason: String },
    /// A file changed size while it was being archived.
    #[error(
        "{path}: file changed while writing the layer (expected {expected} bytes); nothing may write to an upper dir while it is diffed"
    )]
    FileChanged { path: PathBuf, expected: u64 },
    /// The upper dir uses an overlayfs feature a plain upper-dir diff cannot represent.
    #[error(
        "{path}: has overlay xattr {xattr}; mount overlayfs with redirect_dir=off,metacopy=off so upper dirs can be diffed"
    )]
    OverlayFeature { path: PathBuf, xattr: String },
    /// The tar stream is malformed.
    #[error("invalid layer tar at byte {offset} (entry {name:?}): {reason}")]
    InvalidTar {
        offset: u64,
        name: String,
        reason: String,
    },
    /// The tar stream exceeds a hard limit (see [`ExtractLimits`]).
    #[error(
        "layer tar exceeds the {what} limit of {limit} (at byte {offset}); the layer is rejected as hostile or corrupt"
    )]
    Limit {
        what: &'static str,
        limit: u64,
        offset: u64,
    },
    /// An entry that would break the extraction rules (whiteout abuse, root type change,
    /// hardlink to something not extracted by this layer, reserved xattrs).
    #[error("layer entry {name:?} rejected: {reason}")]
    Rejected { name: String, reason: String },
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, LayersError>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LayersError {
    let path = path.into();
    move |source| LayersError::Io { path, source }
}

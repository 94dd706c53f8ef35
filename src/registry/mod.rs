//! Distribution API v2 client: image references, auth (config.json, helpers, bearer/basic),
//! pull and push of manifests and blobs with verification and retries.

pub mod client;
pub mod reference;

pub use client::{Client, PulledImage, RegistryOptions};
pub use reference::ImageRef;

/// Errors from the registry client; each names the registry, repository and what to do.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Reference(#[from] reference::ReferenceError),
}

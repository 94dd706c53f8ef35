//! Distribution API v2 client: image references, auth (config.json, helpers, bearer/basic),
//! pull and push of manifests and blobs with verification and retries; the artifacts beside an
//! image (small blobs in memory, the OCI 1.1 referrers API) for signatures.

pub mod auth;
mod endpoint;
mod progress;
mod pull;
mod push;
pub mod reference;
mod referrers;
mod retry;
mod session;
mod timeout;
mod token;
mod upload;

/// Manifest type sniffing lives with the OCI types; re-exported here where the client uses it.
pub use crate::oci::classify_manifest;
pub use progress::{Progress, ProgressKind};
pub use reference::ImageRef;
pub use referrers::Referrer;
pub use session::Client;
pub use timeout::{TimeLimit, format_duration, parse_duration};
pub use upload::Upload;

use crate::oci::{Digest, ImageConfig, Manifest};
use std::path::PathBuf;

/// Errors from the registry client; each names the registry, repository and what to do.
/// URLs in messages are redacted (no `user:pass@`, no token query parameters).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Reference(#[from] reference::ReferenceError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{url}: {reason}")]
    Connection { url: String, reason: String },
    #[error("{method} {url}: HTTP {status}: {body}")]
    Status {
        method: String,
        url: String,
        status: u16,
        body: String,
    },
    #[error(
        "{registry}: access to repository {repository:?} denied (HTTP {status}, scope {scope:?}): {body}; if it needs credentials, run `hoist login {registry}`"
    )]
    Unauthorized {
        registry: String,
        repository: String,
        scope: String,
        status: u16,
        body: String,
    },
    #[error("{what} not found on {registry} ({url}); check the name and tag")]
    NotFound {
        registry: String,
        what: String,
        url: String,
    },
    #[error(
        "{what}: digest mismatch, expected {expected}, the registry served {actual}; refusing it"
    )]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what}: expected {expected} bytes, the registry served {actual}; refusing it")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("{what} from {url} is larger than the {limit}-byte limit; refusing it")]
    TooLarge {
        what: String,
        url: String,
        limit: u64,
    },
    #[error("{url}: invalid manifest: {reason}")]
    BadManifest { url: String, reason: String },
    #[error("{image}: no manifest for platform {platform} (available: {available})")]
    NoPlatform {
        image: String,
        platform: String,
        available: String,
    },
    #[error("{registry}: authentication failed at {realm}: {reason}")]
    Auth {
        registry: String,
        realm: String,
        reason: String,
    },
    #[error("{path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("credential helper {helper}: {reason}")]
    CredentialHelper { helper: String, reason: String },
    #[error("{path}: invalid CA certificate: {reason}")]
    Tls { path: PathBuf, reason: String },
    /// A registry operation outlasted its limit (`--registry-timeout`).
    #[error(
        "{what}: gave up after {limit} (the registry timeout; raise it with --registry-timeout or HOIST_REGISTRY_TIMEOUT, 0 for no limit)"
    )]
    Timeout { what: String, limit: String },
    #[error(
        "invalid duration {value:?}: {reason}; expected e.g. 90s, 10m or 1h30m (0 for no limit)"
    )]
    InvalidDuration { value: String, reason: &'static str },
}

/// Result alias for the registry client.
pub type Result<T> = std::result::Result<T, RegistryError>;

/// Options for [`Client::new`].
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Registries (`HOST[:PORT]`) that may be reached over plain HTTP.
    pub insecure: Vec<String>,
    /// Docker config dir holding `config.json` (default: `$DOCKER_CONFIG`, else `~/.docker`).
    pub docker_config_dir: Option<PathBuf>,
}

/// What [`Client::pull`] fetched.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// Digest of the platform manifest (what the store's image name points to).
    pub manifest_digest: Digest,
    /// The platform manifest.
    pub manifest: Manifest,
    /// The image configuration.
    pub config: ImageConfig,
}

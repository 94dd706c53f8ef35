//! Distribution API v2 client: image references, auth (config.json, helpers, bearer/basic),
//! pull and push of manifests and blobs with verification and retries.
//!
//! Blocking (reqwest) with std threads for parallel layer transfers. Every manifest and blob is
//! checked against its digest before it becomes visible in the store; credentials are only sent
//! to the registry and to the token realm its challenge names, never across redirects.

pub mod archive;
pub mod auth;
mod http;
mod pull;
mod push;
pub mod reference;

pub use reference::ImageRef;

use crate::oci::{Digest, ImageConfig, Manifest};
use std::path::PathBuf;

/// Largest manifest or index accepted (4 MiB, as the distribution registry).
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;
/// Largest image config accepted.
pub const MAX_CONFIG_SIZE: u64 = 8 << 20;
/// Blobs up to this size are uploaded in one PUT; bigger ones in PATCH chunks.
pub const MONOLITHIC_UPLOAD_MAX: u64 = 64 << 20;
/// Chunk size for chunked uploads.
pub const UPLOAD_CHUNK: u64 = 32 << 20;
/// Layers transferred at once.
pub const PARALLEL_LAYERS: usize = 3;

/// Errors from the registry client; each names the registry, repository and what to do.
/// Never carries credentials or tokens.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Reference(#[from] reference::ReferenceError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(
        "cannot reach {url}: {message} (is the registry up and the address right? for a plain-HTTP registry use --insecure-registry HOST:PORT; for a private CA put it in /etc/docker/certs.d/HOST:PORT/ca.crt or SSL_CERT_FILE)"
    )]
    Connect { url: String, message: String },
    #[error(
        "{status} from registry {registry} for repository {repository} (scope {scope}): {body}; run `hoist login {registry}` with an account that has this access"
    )]
    Unauthorized {
        status: u16,
        registry: String,
        repository: String,
        scope: String,
        body: String,
    },
    #[error(
        "getting a token from {realm} for registry {registry} failed: {status} {body}; check the credentials (`hoist login {registry}`)"
    )]
    Token {
        realm: String,
        registry: String,
        status: u16,
        body: String,
    },
    #[error(
        "registry {registry} asked for authentication with an unsupported challenge {challenge:?}"
    )]
    Challenge { registry: String, challenge: String },
    #[error("manifest unknown: {image} not found")]
    ManifestNotFound { image: String },
    #[error("blob unknown: {digest} not found in {registry}/{repository}")]
    BlobNotFound {
        registry: String,
        repository: String,
        digest: Digest,
    },
    #[error(
        "{what} from {url}: digest mismatch: expected {expected}, got {actual}; refused, nothing was stored"
    )]
    DigestMismatch {
        what: String,
        url: String,
        expected: Digest,
        actual: Digest,
    },
    #[error(
        "{what} from {url} is {actual} bytes, but {expected} were declared; refused, nothing was stored"
    )]
    SizeMismatch {
        what: String,
        url: String,
        expected: u64,
        actual: u64,
    },
    #[error("{what} from {url} is larger than the {limit}-byte limit; refused")]
    TooLarge {
        what: String,
        url: String,
        limit: u64,
    },
    #[error("{what} from {url} is not valid JSON: {source}")]
    InvalidJson {
        what: String,
        url: String,
        source: serde_json::Error,
    },
    #[error("{url}: unsupported manifest media type {media_type:?}")]
    UnsupportedMediaType { url: String, media_type: String },
    #[error(
        "{image} has no manifest for platform {platform} (available: {available}); pick one with --platform"
    )]
    NoPlatform {
        image: String,
        platform: String,
        available: String,
    },
    #[error("{method} {url}: unexpected {status}: {body}")]
    Status {
        method: String,
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url}: missing or invalid {header} header in the registry's answer")]
    MissingHeader { url: String, header: String },
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("credential helper docker-credential-{helper} failed for {registry}: {message}")]
    CredentialHelper {
        helper: String,
        registry: String,
        message: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot set up the HTTP client: {0}")]
    ClientSetup(String),
}

/// Result alias for the registry client.
pub type Result<T> = std::result::Result<T, RegistryError>;

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Registries (HOST[:PORT]) reached over plain HTTP.
    pub insecure: Vec<String>,
    /// Where Docker's config.json lives (default `$DOCKER_CONFIG`, else `~/.docker`).
    pub docker_config_dir: Option<PathBuf>,
}

/// An image fetched into the store.
#[derive(Debug, Clone)]
pub struct PulledImage {
    pub manifest_digest: Digest,
    pub manifest: Manifest,
    pub config: ImageConfig,
}

/// Transfer progress of one blob, reported to the callback given to `Client::with_progress`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A download or upload of `size` bytes starts.
    Started {
        digest: Digest,
        size: u64,
        push: bool,
    },
    /// `done` of `total` bytes downloaded so far (about every MiB).
    Bytes {
        digest: Digest,
        done: u64,
        total: u64,
    },
    /// Nothing to transfer: the store (pull) or the registry (push) has it already.
    Exists { digest: Digest, push: bool },
    /// Pushed by cross-repository mount from `from`.
    Mounted { digest: Digest, from: String },
    /// Transfer finished and verified.
    Done {
        digest: Digest,
        size: u64,
        push: bool,
    },
}

type ProgressFn = std::sync::Arc<dyn Fn(&Progress) + Send + Sync>;

/// A registry client; cheap to share between threads (`&Client` is `Sync`).
pub struct Client {
    pub(crate) http: http::Http,
    progress: Option<ProgressFn>,
}

impl Client {
    /// A client with `opts`; no network traffic until a call.
    pub fn new(opts: RegistryOptions) -> Result<Client> {
        Ok(Client {
            http: http::Http::new(opts)?,
            progress: None,
        })
    }

    /// Reports blob transfers to `f` (called from worker threads).
    pub fn with_progress(mut self, f: impl Fn(&Progress) + Send + Sync + 'static) -> Client {
        self.progress = Some(std::sync::Arc::new(f));
        self
    }

    pub(crate) fn report(&self, p: Progress) {
        if let Some(f) = &self.progress {
            f(&p);
        }
    }
}

impl Client {
    /// Checks `username`/`password` against `registry` (what `hoist login` does before saving).
    pub fn login(&self, registry: &str, username: &str, password: &str) -> Result<()> {
        let cred = auth::Credential::Basic {
            username: username.to_string(),
            password: password.to_string(),
        };
        self.http.check_login(registry, cred)
    }

    /// The directory whose config.json holds credentials.
    pub fn docker_config_dir(&self) -> &std::path::Path {
        self.http.config_dir()
    }
}

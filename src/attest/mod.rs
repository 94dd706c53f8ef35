//! Build attestations as BuildKit attaches them (`docs/attestations/` of BuildKit): SLSA
//! provenance and SPDX SBOMs as in-toto statements about an image manifest, stored per
//! platform in an attestation manifest beside the image in its index.
//!
//! `flags.rs` reads buildx's flags into a [`Request`]; `statement.rs` is the in-toto
//! statement and its subjects; `provenance.rs` the SLSA v1 predicate from what a pass did
//! (`engine::trace`); `layout.rs` writes and reads the attestation manifests. The SBOM
//! documents themselves come from `crate::sbom`.

pub mod flags;
pub mod layout;
pub mod provenance;
pub mod statement;

/// How much a provenance tells (BuildKit's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvenanceMode {
    /// Timestamps, frontend, materials: nothing from the build's inputs that might be private.
    Min,
    /// Also build args, secret and ssh ids, the Dockerfile, every step and its layers.
    Max,
}

/// `--sbom` / `--attest type=sbom` options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SbomRequest {
    /// Also describe the build context (`scan-context=true`).
    pub scan_context: bool,
    /// Also describe every stage built besides the target (`scan-stage=true`).
    pub scan_stage: bool,
}

/// Provenance options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenanceRequest {
    pub mode: ProvenanceMode,
    /// `builder-id=`: `runDetails.builder.id`.
    pub builder_id: Option<String>,
    /// `reproducible=true`: `buildkit_reproducible`.
    pub reproducible: bool,
}

/// The attestations a build asked for; empty = none (the default, as with `docker build`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub provenance: Option<ProvenanceRequest>,
    pub sbom: Option<SbomRequest>,
}

impl Request {
    /// Nothing asked.
    pub fn is_empty(&self) -> bool {
        self.provenance.is_none() && self.sbom.is_none()
    }
}

/// Errors of attestation flags, making and reading.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    #[error("{flag} {value:?}: {reason}")]
    Flag {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("attestation manifest {digest}: {reason}")]
    BadManifest { digest: String, reason: String },
    #[error("SBOM: {0}")]
    Sbom(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, AttestError>;

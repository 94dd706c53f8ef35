//! Image references with Docker's normalization (`busybox` → `docker.io/library/busybox:latest`).

use crate::oci::Digest;

/// Errors from parsing a reference.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference format {reference:?}: {reason}")]
    Invalid { reference: String, reason: String },
}

/// A parsed, normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// `docker.io`, `localhost:5000`, …
    pub registry: String,
    /// `library/busybox`, `team/app`, …
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl ImageRef {
    /// Parses a reference. (Stub until the registry work lands.)
    pub fn parse(_s: &str) -> Result<ImageRef, ReferenceError> {
        todo!()
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

//! Registry client. (Stub until the registry work lands.)
use super::{ImageRef, RegistryError};
use crate::oci::{Digest, ImageConfig, Manifest, Platform};
use crate::store::Store;
use std::path::PathBuf;

/// Client options.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    pub insecure: Vec<String>,
    pub docker_config_dir: Option<PathBuf>,
}

/// A pulled image.
#[derive(Debug, Clone)]
pub struct PulledImage {
    pub manifest_digest: Digest,
    pub manifest: Manifest,
    pub config: ImageConfig,
}

/// The client.
pub struct Client {}

impl Client {
    /// New client.
    pub fn new(_o: RegistryOptions) -> Result<Client, RegistryError> {
        Ok(Client {})
    }
    /// Pull.
    pub fn pull(
        &self,
        _r: &ImageRef,
        _p: &Platform,
        _s: &Store,
    ) -> Result<PulledImage, RegistryError> {
        todo!()
    }
    /// Resolve.
    pub fn resolve(&self, _r: &ImageRef, _p: &Platform) -> Result<Digest, RegistryError> {
        todo!()
    }
    /// Push.
    pub fn push(&self, _s: &Store, _m: &Digest, _d: &ImageRef) -> Result<Digest, RegistryError> {
        todo!()
    }
}

//! Thin adapters from the engine's and cache's narrow traits to the real modules.

use crate::cache::transfer::{CacheRemote, RemoteResult};
use crate::oci::{Descriptor, Digest};
use crate::registry::{Client, ImageRef, RegistryError};
use crate::store::Store;

/// The registry client as the cache's export/import remote.
pub struct RegistryCache<'a>(pub &'a Client);

impl CacheRemote for RegistryCache<'_> {
    fn push_blob(&self, store: &Store, dest: &ImageRef, digest: &Digest) -> RemoteResult<()> {
        Ok(self.0.push_blob(store, dest, digest)?)
    }
    fn put_manifest(
        &self,
        dest: &ImageRef,
        bytes: &[u8],
        media_type: &str,
    ) -> RemoteResult<Digest> {
        Ok(self.0.put_manifest(dest, bytes, media_type)?)
    }
    fn get_manifest(&self, r: &ImageRef) -> RemoteResult<Option<(Vec<u8>, String, Digest)>> {
        match self.0.get_manifest(r) {
            Ok(m) => Ok(Some(m)),
            Err(RegistryError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
    fn fetch_blob(&self, r: &ImageRef, desc: &Descriptor, store: &Store) -> RemoteResult<()> {
        Ok(self.0.fetch_blob(r, desc, store)?)
    }
}

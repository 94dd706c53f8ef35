//! Thin adapters from the engine's and cache's narrow traits to the real modules.

use crate::cache::transfer::{CacheRemote, RemoteResult};
use crate::oci::{Descriptor, Digest};
use crate::registry::{Client, ImageRef};
use crate::store::Store;

/// The registry client as the cache's export/import remote.
pub struct RegistryCache<'a>(pub &'a Client);

// stand-in until the registry client's generic calls (push_blob, put_manifest, get_manifest,
// fetch_blob) land on main.
fn not_yet(what: &str) -> Box<dyn std::error::Error + Send + Sync> {
    format!("{what}: the registry client cannot do this in this build yet").into()
}

impl CacheRemote for RegistryCache<'_> {
    fn push_blob(&self, _store: &Store, dest: &ImageRef, _digest: &Digest) -> RemoteResult<()> {
        Err(not_yet(&format!("push blob to {dest}")))
    }
    fn put_manifest(
        &self,
        dest: &ImageRef,
        _bytes: &[u8],
        _media_type: &str,
    ) -> RemoteResult<Digest> {
        Err(not_yet(&format!("put manifest {dest}")))
    }
    fn get_manifest(&self, r: &ImageRef) -> RemoteResult<Option<(Vec<u8>, String, Digest)>> {
        Err(not_yet(&format!("get manifest {r}")))
    }
    fn fetch_blob(&self, r: &ImageRef, _desc: &Descriptor, _store: &Store) -> RemoteResult<()> {
        Err(not_yet(&format!("fetch blob from {r}")))
    }
}

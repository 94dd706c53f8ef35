//! `--cache-from` / `--cache-to` around a build: each location is one registry operation,
//! reported as a [`Notice`](super::Notice).

use super::{Notice, Observer};
use crate::cache::CacheIndex;
use crate::cache::transfer::{self, CacheLocation, CachePlace, UsedMounts};
use crate::oci::Digest;
use crate::registry::Client;
use crate::store::Store;

/// What cache import and export work with.
pub struct CacheTransfer<'a> {
    pub index: &'a CacheIndex,
    pub store: &'a Store,
    pub registry: &'a Client,
}

impl CacheTransfer<'_> {
    /// Imports every `--cache-from` location into the local cache index.
    pub fn import(&self, from: &[CacheLocation], observer: &dyn Observer) -> crate::Result<()> {
        let remote = crate::engine::adapters::RegistryCache(self.registry);
        for from in from {
            let stats = self.registry.operation(
                format!("importing build cache from {}", describe(from)),
                || transfer::import(self.index, self.store, from, Some(&remote)),
            )?;
            observer.notice(Notice::CacheImported {
                from: from.clone(),
                stats,
            });
        }
        Ok(())
    }

    /// Exports the entries of `keys` (the steps the build used) to every `--cache-to`, and
    /// where it says `cache-mounts=true` the cache mounts in `mounts`.
    pub fn export(
        &self,
        to: &[CacheLocation],
        keys: &[Digest],
        mounts: &UsedMounts,
        observer: &dyn Observer,
    ) -> crate::Result<()> {
        let remote = crate::engine::adapters::RegistryCache(self.registry);
        for to in to {
            let stats = self
                .registry
                .operation(format!("exporting build cache to {}", describe(to)), || {
                    transfer::export(self.index, self.store, keys, mounts, to, Some(&remote))
                })?;
            observer.notice(Notice::CacheExported {
                to: to.clone(),
                stats,
            });
        }
        Ok(())
    }
}

/// A cache location as messages name it: the reference or the directory.
pub fn describe(l: &CacheLocation) -> String {
    match &l.place {
        CachePlace::Registry(r) => r.to_string(),
        CachePlace::Local(d) => d.display().to_string(),
    }
}

//! Store upkeep commands: `prune` (with the build cache's own trimming) and `fsck`.

use super::GlobalArgs;
use super::images::{human_size, open_store};
use crate::Error;
use crate::store::Store;
use crate::store::maintenance::ExtraRoots;
use clap::Args;
use std::process::ExitCode;

/// `hoist prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Keep this much build cache (e.g. 10GB); least recently used goes first
    #[arg(long = "keep-storage")]
    pub keep_storage: Option<String>,
    /// Remove all build cache
    #[arg(short = 'a', long)]
    pub all: bool,
}

/// `hoist fsck`.
#[derive(Debug, Args)]
pub struct FsckArgs {
    /// Repair what can be repaired (drop bad entries)
    #[arg(long)]
    pub repair: bool,
}

/// Hook for the build cache: trims it per `--keep-storage`/`--all` and returns the blobs and
/// snapshots it still references, so `prune` keeps them. The engine/cache helper fills this in.
pub fn trim_build_cache_and_collect_roots(
    store: &Store,
    keep_storage: Option<u64>,
    all: bool,
) -> crate::Result<ExtraRoots> {
    let index = crate::cache::CacheIndex::open(&store.root().join("cache"))?;
    if all {
        index.trim(0)?;
    } else if let Some(keep) = keep_storage {
        index.trim(keep)?;
    }
    index.prune_inputs()?;
    let mut roots = ExtraRoots::default();
    for e in index.entries()? {
        roots.blobs.insert(e.layer.digest);
        roots.snapshots.insert(e.layer.diff_id);
    }
    Ok(roots)
}

/// `hoist prune`.
pub fn prune(g: &GlobalArgs, a: PruneArgs) -> crate::Result<ExitCode> {
    let store = open_store(g)?;
    let keep = match &a.keep_storage {
        Some(s) => Some(crate::cache::parse_size(s).ok_or_else(|| {
            Error::Usage(format!("--keep-storage {s:?}: expected a size like 10GB"))
        })?),
        None => None,
    };
    if keep.is_none() && !a.all {
        let config = g.gc_config()?;
        if config.enabled {
            // Without flags: the configured policies (`builder.gc`), then unreferenced data.
            let o = crate::gc::collect_garbage(
                &store,
                &config,
                &crate::gc::Protect::default(),
                crate::gc::When::Always,
            )?
            .unwrap_or_default();
            outln!(
                "Deleted {} blobs and {} snapshots ({} build cache entries, {} cache mounts, {} images); total reclaimed space: {}",
                o.blobs,
                o.snapshots,
                o.cache_entries,
                o.cache_mounts,
                o.images,
                human_size(o.freed())
            );
            return Ok(ExitCode::SUCCESS);
        }
    }
    let extra = trim_build_cache_and_collect_roots(&store, keep, a.all)?;
    let r = store.prune(&extra)?;
    outln!(
        "Deleted {} blobs and {} snapshots; total reclaimed space: {}",
        r.blobs_removed,
        r.snapshots_removed,
        human_size(r.bytes_freed)
    );
    Ok(ExitCode::SUCCESS)
}

/// `hoist fsck`.
pub fn fsck(g: &GlobalArgs, a: FsckArgs) -> crate::Result<ExitCode> {
    let store = open_store(g)?;
    let mut r = store.fsck(a.repair)?;
    for i in &r.issues {
        outln!("{i}");
    }
    // The content-hash cache's records: a bad one is only a miss, but fsck names it.
    let bad = crate::copy::HashCache::fsck(&store.root().join("cache").join("content"), a.repair);
    for p in &bad {
        outln!(
            "{}: not a valid content-hash record (a cache miss; --repair removes it)",
            p.display()
        );
    }
    if a.repair {
        r.repaired += bad.len();
    }
    let problems = r.issues.len() + bad.len();
    outln!(
        "checked {} blobs and {} images: {} problems{}",
        r.blobs_checked,
        r.images_checked,
        problems,
        if a.repair {
            format!(", {} repaired", r.repaired)
        } else {
            String::new()
        }
    );
    if problems > 0 && !a.repair {
        outln!("run `hoist fsck --repair` to drop the bad entries");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

//! Automatic garbage collection of the store, configured like Docker's builder
//! (`builder.gc` in hoist's config file, [`config`]), and the disk-usage summary of
//! `hoist system df` ([`disk_usage`]).
//!
//! A pass: measure the store cheaply ([`inventory::quick_usage`]: a few `stat`s when nothing
//! changed); when it is over the smallest policy limit, take the GC lock exclusively (after a
//! build only if no other build holds it: a pass never waits for, nor removes what, a running
//! build uses), list everything as records over sized parts ([`inventory::collect`]), let the
//! pure planner ([`policy::plan`]) pick what goes, remove those records (cache index entries,
//! cache mounts, tags with `all`), then let the store's prune remove the blobs and snapshots
//! nothing kept still references. What the just-finished build used or produced is protected.

pub mod config;
pub mod inventory;
pub mod policy;

pub use config::GcConfig;
pub use inventory::Protect;

use crate::cache::CacheIndex;
use crate::store::Store;
use crate::store::maintenance::{ExtraRoots, remove_tree};
use inventory::{Item, Part};
use policy::Kind;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Errors of a GC pass or of its settings.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// A `builder.gc` setting that does not parse: names the file and key.
    #[error("{origin}: {key}: {reason}")]
    Config {
        origin: String,
        key: String,
        reason: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, GcError>;

/// When a pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// After a build: only when enabled and over the limit, and skipped when another build
    /// holds the GC lock.
    AfterBuild,
    /// `hoist prune`: always, waiting for running builds.
    Always,
}

/// What a pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub cache_entries: usize,
    pub cache_mounts: usize,
    pub images: usize,
    pub blobs: usize,
    pub snapshots: usize,
    /// Store bytes before and after.
    pub before: u64,
    pub after: u64,
    /// The smallest policy limit.
    pub limit: u64,
}

impl Outcome {
    /// Bytes freed.
    pub fn freed(&self) -> u64 {
        self.before.saturating_sub(self.after)
    }
}

/// Runs a pass (see the module doc); `None` when there was nothing to do or it was skipped.
pub fn collect_garbage(
    store: &Store,
    config: &GcConfig,
    protect: &Protect,
    when: When,
) -> Result<Option<Outcome>> {
    if when == When::AfterBuild && !config.enabled {
        return Ok(None);
    }
    let default_keep = config.default_keep(store.root());
    let limit = config.threshold(default_keep);
    let before = inventory::quick_usage(store)?;
    if when == When::AfterBuild && before <= limit {
        return Ok(None);
    }
    let _lock = match when {
        When::AfterBuild => match store.try_lock("gc", true)? {
            Some(g) => g,
            None => return Ok(None),
        },
        When::Always => store.lock("gc", true)?,
    };
    let index = CacheIndex::open(&store.root().join("cache"))?;
    let c = inventory::collect(store, &index, protect)?;
    let plan = policy::plan(
        &c.inv,
        &config.policies(default_keep),
        std::time::SystemTime::now(),
    );
    let mut out = Outcome {
        limit,
        ..Outcome::default()
    };
    for &i in &plan.remove {
        match &c.items[i] {
            Item::Cache(k) => {
                index.remove(k)?;
                out.cache_entries += 1;
            }
            Item::Mount(p) => {
                remove_tree(p).map_err(|source| GcError::Io {
                    path: p.clone(),
                    source,
                })?;
                out.cache_mounts += 1;
            }
            Item::Tag(name) => {
                store.remove_image(name)?;
                out.images += 1;
            }
            Item::Built(_) => {}
        }
    }
    // The store's prune keeps tagged images itself; it must also keep what every record that
    // stays (cache entries, the just-built image) uses.
    let removed: BTreeSet<usize> = plan.remove.iter().copied().collect();
    let mut roots = ExtraRoots::default();
    for (i, r) in c.inv.records.iter().enumerate() {
        if removed.contains(&i) {
            continue;
        }
        for &p in &r.parts {
            match &c.parts[p] {
                Part::Blob(d) => {
                    roots.blobs.insert(d.clone());
                }
                Part::Snapshot(d) => {
                    roots.snapshots.insert(d.clone());
                }
                Part::Mount(_) => {}
            }
        }
    }
    index.prune_inputs()?;
    let report = store.prune_locked(&roots)?;
    out.blobs = report.blobs_removed;
    out.snapshots = report.snapshots_removed;
    out.before = c.inv.total();
    out.after = inventory::quick_usage(store)?;
    Ok(Some(out))
}

/// One line of `hoist system df`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DfRow {
    pub kind: &'static str,
    /// How many there are, and how many are in use (tagged, or used by a tag/cache entry).
    pub total: usize,
    pub active: usize,
    /// Bytes they use (shared parts counted once).
    pub size: u64,
    /// Bytes removing all of them would free (parts nothing else uses).
    pub reclaimable: u64,
}

/// The store's disk usage by kind: images (tags), build cache, cache mounts, snapshots, and
/// blobs nothing references.
pub fn disk_usage(store: &Store) -> Result<Vec<DfRow>> {
    let index = CacheIndex::open(&store.root().join("cache"))?;
    let _shared = store.gc_shared_lock()?;
    let c = inventory::collect(store, &index, &Protect::default())?;
    let users = |part: usize| -> Vec<Kind> {
        c.inv
            .records
            .iter()
            .filter(|r| r.parts.contains(&part))
            .map(|r| r.kind)
            .collect()
    };
    let per_part: Vec<Vec<Kind>> = (0..c.parts.len()).map(users).collect();
    let row = |kind: &'static str, k: Kind| {
        let recs: Vec<_> = c.inv.records.iter().filter(|r| r.kind == k).collect();
        let parts: BTreeSet<usize> = recs.iter().flat_map(|r| r.parts.iter().copied()).collect();
        let size = parts.iter().map(|&p| c.inv.parts[p]).sum();
        let reclaimable = parts
            .iter()
            .filter(|&&p| per_part[p].iter().all(|&u| u == k))
            .map(|&p| c.inv.parts[p])
            .sum();
        let active = match k {
            Kind::Image => recs.len(),
            _ => 0,
        };
        DfRow {
            kind,
            total: recs.len(),
            active,
            size,
            reclaimable,
        }
    };
    let mut rows = vec![
        row("Images", Kind::Image),
        row("Build Cache", Kind::CacheEntry),
        row("Cache Mounts", Kind::CacheMount),
    ];
    let snaps: Vec<usize> = (0..c.parts.len())
        .filter(|&p| matches!(c.parts[p], Part::Snapshot(_)))
        .collect();
    let used_by_image = |p: usize| per_part[p].contains(&Kind::Image);
    rows.push(DfRow {
        kind: "Snapshots",
        total: snaps.len(),
        active: snaps.iter().filter(|&&p| !per_part[p].is_empty()).count(),
        size: snaps.iter().map(|&p| c.inv.parts[p]).sum(),
        reclaimable: snaps
            .iter()
            .filter(|&&p| !used_by_image(p))
            .map(|&p| c.inv.parts[p])
            .sum(),
    });
    let unused: Vec<usize> = (0..c.parts.len())
        .filter(|&p| per_part[p].is_empty())
        .collect();
    let unused_bytes = unused.iter().map(|&p| c.inv.parts[p]).sum();
    rows.push(DfRow {
        kind: "Unreferenced",
        total: unused.len(),
        active: 0,
        size: unused_bytes,
        reclaimable: unused_bytes,
    });
    Ok(rows)
}

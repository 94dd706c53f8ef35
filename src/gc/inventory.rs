//! What the store holds, measured: the quick usage figure that decides whether a GC pass has
//! anything to do, and the full inventory (records over sized parts) a pass plans with.
//!
//! The quick figure costs two `stat`s when nothing was added or removed: the store's total is
//! kept in `meta/gc-usage.json` with the mtimes of `blobs/sha256` and `snapshots` it was
//! measured at, and each snapshot's size (snapshots never change once committed, so each is
//! walked once, when it is new). When a directory changed, the blobs are re-listed (one
//! `stat` each) and only new snapshots are walked. Cache mounts change in place; their total
//! is the one measured by the last full inventory (a pass or `hoist system df`).

use super::policy::{Inventory, Kind, Record};
use super::{GcError, Result};
use crate::cache::CacheIndex;
use crate::oci::Digest;
use crate::store::Store;
use crate::store::maintenance::tree_size;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

const STATE_FILE: &str = "gc-usage.json";

/// The recorded measure (see the module doc).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct UsageState {
    blobs_mtime_ns: u128,
    snapshots_mtime_ns: u128,
    blobs_bytes: u64,
    /// Snapshot diff-id hex → bytes.
    snapshots: BTreeMap<String, u64>,
    mounts_bytes: u64,
}

impl UsageState {
    fn total(&self) -> u64 {
        self.blobs_bytes + self.snapshots.values().sum::<u64>() + self.mounts_bytes
    }
}

fn mtime_ns(p: &Path) -> u128 {
    fs::metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

fn state_path(store: &Store) -> PathBuf {
    store.root().join("meta").join(STATE_FILE)
}

fn load_state(store: &Store) -> UsageState {
    fs::read(state_path(store))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn save_state(store: &Store, s: &UsageState) {
    // Best effort: a lost or torn state only means measuring again next time.
    if let Ok(bytes) = serde_json::to_vec(s) {
        let path = state_path(store);
        let _ = tempfile::Builder::new()
            .prefix(".gc-usage-")
            .tempfile_in(store.root().join("meta"))
            .and_then(|mut t| {
                std::io::Write::write_all(&mut t, &bytes)?;
                t.persist(&path).map_err(|e| e.error)?;
                Ok(())
            });
    }
}

/// Blob sizes by digest (one `stat` each).
fn blob_sizes(store: &Store) -> Result<BTreeMap<Digest, u64>> {
    let dir = store.root().join("blobs/sha256");
    let rd = fs::read_dir(&dir).map_err(|source| GcError::Io {
        path: dir.clone(),
        source,
    })?;
    Ok(rd
        .flatten()
        .filter_map(|e| {
            let d = Digest::from_hex(&e.file_name().to_string_lossy()).ok()?;
            Some((d, e.metadata().ok()?.len()))
        })
        .collect())
}

/// Re-measures what changed since the recorded state; returns it updated (and saved).
fn refresh(store: &Store, mut s: UsageState) -> Result<UsageState> {
    let blobs_dir = store.root().join("blobs/sha256");
    let snaps_dir = store.root().join("snapshots");
    let (bm, sm) = (mtime_ns(&blobs_dir), mtime_ns(&snaps_dir));
    if bm != 0 && sm != 0 && bm == s.blobs_mtime_ns && sm == s.snapshots_mtime_ns {
        return Ok(s);
    }
    s.blobs_bytes = blob_sizes(store)?.values().sum();
    let rd = fs::read_dir(&snaps_dir).map_err(|source| GcError::Io {
        path: snaps_dir.clone(),
        source,
    })?;
    let mut sizes = BTreeMap::new();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let size = match s.snapshots.get(&name) {
            Some(&n) => n,
            None => tree_size(&e.path()),
        };
        sizes.insert(name, size);
    }
    s.snapshots = sizes;
    (s.blobs_mtime_ns, s.snapshots_mtime_ns) = (bm, sm);
    save_state(store, &s);
    Ok(s)
}

/// The store's bytes (blobs, snapshots, cache mounts as last measured), cheaply (see the
/// module doc).
pub fn quick_usage(store: &Store) -> Result<u64> {
    Ok(refresh(store, load_state(store))?.total())
}

/// One removable thing of an [`Collected`] inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A build cache entry by key.
    Cache(Digest),
    /// A cache mount directory.
    Mount(PathBuf),
    /// A tag (image name).
    Tag(String),
    /// What the just-finished build produced (never removed).
    Built(Digest),
}

/// One sized part.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    Blob(Digest),
    Snapshot(Digest),
    Mount(PathBuf),
}

/// What a GC pass or `system df` works from.
#[derive(Debug, Clone, Default)]
pub struct Collected {
    pub inv: Inventory,
    /// What each of `inv.records` is.
    pub items: Vec<Item>,
    /// What each of `inv.parts` is.
    pub parts: Vec<Part>,
}

/// What must survive a pass: the just-finished build's cache keys and image.
#[derive(Debug, Clone, Default)]
pub struct Protect {
    pub keys: BTreeSet<Digest>,
    pub images: Vec<Digest>,
}

struct Builder {
    out: Collected,
    index: HashMap<Part, usize>,
}

impl Builder {
    /// The index of a part known to exist (sizes were filled in beforehand).
    fn part(&self, p: &Part) -> Option<usize> {
        self.index.get(p).copied()
    }

    fn add_part(&mut self, p: Part, size: u64) {
        self.index.insert(p.clone(), self.out.parts.len());
        self.out.parts.push(p);
        self.out.inv.parts.push(size);
    }

    fn record(
        &mut self,
        item: Item,
        kind: Kind,
        last_used: SystemTime,
        protected: bool,
        parts: Vec<usize>,
    ) {
        self.out.items.push(item);
        self.out.inv.records.push(Record {
            kind,
            last_used,
            protected,
            parts,
        });
    }

    fn image_parts(&self, store: &Store, d: &Digest) -> Vec<usize> {
        let (blobs, snaps) = store.image_closure(d);
        let mut v: Vec<usize> = blobs
            .into_iter()
            .filter_map(|b| self.part(&Part::Blob(b)))
            .chain(
                snaps
                    .into_iter()
                    .filter_map(|s| self.part(&Part::Snapshot(s))),
            )
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// The newest mtime under `p` and the bytes of its files (one walk).
fn walk_mount(p: &Path) -> (SystemTime, u64) {
    let mut newest = SystemTime::UNIX_EPOCH;
    let mut bytes = 0;
    for e in walkdir::WalkDir::new(p).into_iter().flatten() {
        if let Ok(m) = e.metadata() {
            if let Ok(t) = m.modified() {
                newest = newest.max(t);
            }
            if m.is_file() {
                bytes += m.len();
            }
        }
    }
    (newest, bytes)
}

/// Lists everything the store holds as records over parts (a full walk: only when a pass has
/// work to do, or for `hoist system df`). Records the measured cache-mount total.
pub fn collect(store: &Store, index: &CacheIndex, protect: &Protect) -> Result<Collected> {
    let mut b = Builder {
        out: Collected::default(),
        index: HashMap::new(),
    };
    let state = refresh(store, load_state(store))?;
    for (d, size) in blob_sizes(store)? {
        b.add_part(Part::Blob(d), size);
    }
    for (hex, size) in &state.snapshots {
        if let Ok(d) = Digest::from_hex(hex) {
            b.add_part(Part::Snapshot(d), *size);
        }
    }
    let mounts_dir = store.root().join("cache-mounts");
    let mut mounts_bytes = 0;
    for e in fs::read_dir(&mounts_dir).into_iter().flatten().flatten() {
        let (used, bytes) = walk_mount(&e.path());
        mounts_bytes += bytes;
        b.add_part(Part::Mount(e.path()), bytes);
        let parts = b.part(&Part::Mount(e.path())).into_iter().collect();
        b.record(Item::Mount(e.path()), Kind::CacheMount, used, false, parts);
    }
    if mounts_bytes != state.mounts_bytes {
        save_state(
            store,
            &UsageState {
                mounts_bytes,
                ..state
            },
        );
    }
    for (key, entry, used) in index.entries_with_use()? {
        let parts = [
            Part::Blob(entry.layer.digest),
            Part::Snapshot(entry.layer.diff_id),
        ]
        .iter()
        .filter_map(|p| b.part(p))
        .collect();
        let protected = protect.keys.contains(&key);
        b.record(Item::Cache(key), Kind::CacheEntry, used, protected, parts);
    }
    for (name, d) in store.list_images()? {
        let parts = b.image_parts(store, &d);
        // A tag was last used when its manifest was written (pulled, built, loaded).
        let used = fs::metadata(store.blob_path(&d))
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let protected = protect.images.contains(&d);
        b.record(Item::Tag(name), Kind::Image, used, protected, parts);
    }
    for d in &protect.images {
        let parts = b.image_parts(store, d);
        b.record(
            Item::Built(d.clone()),
            Kind::Image,
            SystemTime::now(),
            true,
            parts,
        );
    }
    Ok(b.out)
}

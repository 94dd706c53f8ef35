//! Store maintenance: garbage collection of unreferenced blobs and snapshots (`hoist prune`)
//! and consistency checks with optional repair (`hoist fsck`).

use super::{MAX_MANIFEST_SIZE, Result, Store, StoreError, io_err};
use crate::oci::{Digest, Digester, ImageConfig, Index, Manifest, media};
use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::PathBuf;

/// Blobs and snapshots that something besides the image index still needs (the build cache).
#[derive(Debug, Default, Clone)]
pub struct ExtraRoots {
    /// Blob digests to keep.
    pub blobs: BTreeSet<Digest>,
    /// Snapshot diff ids to keep.
    pub snapshots: BTreeSet<Digest>,
}

/// What `prune` removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PruneReport {
    /// Blob files removed.
    pub blobs_removed: usize,
    /// Snapshot directories removed.
    pub snapshots_removed: usize,
    /// Bytes of blobs removed.
    pub bytes_freed: u64,
    /// Bytes of snapshots removed (file sizes).
    pub snapshot_bytes_freed: u64,
}

/// One problem `fsck` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsckIssue {
    /// A file under blobs/sha256 whose name is not a digest.
    StrayFile(PathBuf),
    /// A blob whose content does not hash to its name.
    CorruptBlob { digest: Digest, actual: Digest },
    /// An image whose manifest, config or a layer is missing or unreadable.
    BrokenImage { name: String, reason: String },
    /// A snapshot directory whose name is not a digest.
    StraySnapshot(PathBuf),
}

impl std::fmt::Display for FsckIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FsckIssue::StrayFile(p) => write!(
                f,
                "{}: not a blob (name is not a sha256 digest)",
                p.display()
            ),
            FsckIssue::CorruptBlob { digest, actual } => {
                write!(f, "blob {digest}: content hashes to {actual}")
            }
            FsckIssue::BrokenImage { name, reason } => write!(f, "image {name}: {reason}"),
            FsckIssue::StraySnapshot(p) => {
                write!(f, "{}: not a snapshot (name is not a digest)", p.display())
            }
        }
    }
}

/// What `fsck` found and (with repair) fixed.
#[derive(Debug, Default, Clone)]
pub struct FsckReport {
    /// Blobs hashed.
    pub blobs_checked: usize,
    /// Image names checked.
    pub images_checked: usize,
    /// Problems found.
    pub issues: Vec<FsckIssue>,
    /// Problems fixed (with `repair`).
    pub repaired: usize,
}

/// Collects the manifest, config and layers of a manifest or index blob, recursively.
fn collect(
    store: &Store,
    d: &Digest,
    blobs: &mut BTreeSet<Digest>,
    snaps: &mut BTreeSet<Digest>,
    depth: u32,
) -> Result<()> {
    blobs.insert(d.clone());
    if depth > 4 {
        return Ok(());
    }
    let bytes = store.read_blob_limited(d, "manifest", MAX_MANIFEST_SIZE)?;
    let json_err = |source| StoreError::Json {
        path: store.blob_path(d),
        what: "manifest",
        source,
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(json_err)?;
    if v.get("manifests").is_some() {
        let idx: Index = serde_json::from_value(v).map_err(json_err)?;
        for m in &idx.manifests {
            if store.has_blob(&m.digest) {
                collect(store, &m.digest, blobs, snaps, depth + 1)?;
            }
        }
        return Ok(());
    }
    let m: Manifest = serde_json::from_value(v).map_err(json_err)?;
    blobs.insert(m.config.digest.clone());
    for l in &m.layers {
        blobs.insert(l.digest.clone());
    }
    if media::is_manifest(m.media_type.as_deref().unwrap_or(media::OCI_MANIFEST))
        && let Ok(cfg) = store.read_blob_limited(&m.config.digest, "config", super::MAX_CONFIG_SIZE)
        && let Ok(c) = serde_json::from_slice::<ImageConfig>(&cfg)
    {
        snaps.extend(c.rootfs.diff_ids);
    }
    Ok(())
}

impl Store {
    /// Blobs and snapshots reachable from the image index.
    pub fn referenced(&self) -> Result<(BTreeSet<Digest>, BTreeSet<Digest>)> {
        let mut blobs = BTreeSet::new();
        let mut snaps = BTreeSet::new();
        for (_, d) in self.list_images()? {
            // A broken image keeps what it still has; fsck reports it.
            let _ = collect(self, &d, &mut blobs, &mut snaps, 0);
        }
        Ok((blobs, snaps))
    }

    /// The blobs and snapshots one image (or index) uses; a broken image gives what it has.
    pub fn image_closure(&self, d: &Digest) -> (BTreeSet<Digest>, BTreeSet<Digest>) {
        let mut blobs = BTreeSet::new();
        let mut snaps = BTreeSet::new();
        let _ = collect(self, d, &mut blobs, &mut snaps, 0);
        (blobs, snaps)
    }

    /// Removes one snapshot dir, renamed into this session's scratch first so a half-removed
    /// snapshot is never mistaken for a whole one.
    fn remove_snapshot_dir(&self, path: &std::path::Path, name: &str) -> io::Result<()> {
        let doomed = self.session.dir.join(format!("doomed-{name}"));
        if fs::rename(path, &doomed).is_ok() {
            remove_tree(&doomed)
        } else {
            remove_tree(path)
        }
    }

    /// Drops every snapshot when the machine booted since this store was last opened.
    ///
    /// Snapshot contents are never fsynced (RUN's overlay upper dir is mounted `volatile`, and
    /// unpacked files are plain writes): after a power loss a snapshot dir could hold torn
    /// files that nothing would notice. Snapshots are only a cache of blobs, which are
    /// fsynced, so the first open after a boot removes them and later steps unpack them again
    /// from their blobs. Costs two small reads per open when the boot is the same.
    pub(crate) fn drop_snapshots_from_other_boot(&self) -> Result<()> {
        let Ok(boot) = fs::read_to_string("/proc/sys/kernel/random/boot_id") else {
            return Ok(());
        };
        let boot = boot.trim();
        let path = self.root.join("meta").join("boot-id");
        let recorded = || fs::read_to_string(&path).unwrap_or_default();
        if recorded().trim() == boot {
            return Ok(());
        }
        let _g = self.lock("gc", true)?;
        if recorded().trim() == boot {
            return Ok(());
        }
        let sdir = self.root.join("snapshots");
        for e in fs::read_dir(&sdir).map_err(io_err(&sdir))?.flatten() {
            let (path, name) = (e.path(), e.file_name());
            self.remove_snapshot_dir(&path, &name.to_string_lossy())
                .map_err(io_err(&path))?;
        }
        // Best effort, and under its own temp name so a failed write is recognisable: on a
        // full disk the store must still open (fsck, prune); the next open then drops
        // snapshots again, which costs only unpacking.
        let meta = self.root.join("meta");
        let _ = tempfile::Builder::new()
            .prefix(".boot-id-")
            .tempfile_in(&meta)
            .and_then(|mut t| {
                io::Write::write_all(&mut t, format!("{boot}\n").as_bytes())?;
                t.persist(&path).map_err(|e| e.error)?;
                Ok(())
            });
        Ok(())
    }

    /// Removes blobs and snapshots that no image (and nothing in `extra`) references. Holds the
    /// GC lock exclusively so it never races a build holding [`Store::gc_shared_lock`].
    pub fn prune(&self, extra: &ExtraRoots) -> Result<PruneReport> {
        let _g = self.lock("gc", true)?;
        self.prune_locked(extra)
    }

    /// [`Store::prune`] for a caller that already holds the GC lock exclusively (taking it
    /// again on another descriptor would wait for itself).
    pub fn prune_locked(&self, extra: &ExtraRoots) -> Result<PruneReport> {
        let (mut blobs, mut snaps) = self.referenced()?;
        blobs.extend(extra.blobs.iter().cloned());
        snaps.extend(extra.snapshots.iter().cloned());
        let mut report = PruneReport::default();
        let dir = self.root.join("blobs/sha256");
        for e in fs::read_dir(&dir).map_err(io_err(&dir))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let keep = Digest::from_hex(&name)
                .map(|d| blobs.contains(&d))
                .unwrap_or(false);
            if !keep {
                let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                if fs::remove_file(e.path()).is_ok() {
                    report.blobs_removed += 1;
                    report.bytes_freed += size;
                    if let Ok(d) = Digest::from_hex(&name) {
                        self.forget_blob_sources(&d);
                    }
                }
            }
        }
        // The store-wide sources map of earlier versions (now one record per blob).
        let _ = fs::remove_file(self.root.join("meta").join("sources.json"));
        let sdir = self.root.join("snapshots");
        for e in fs::read_dir(&sdir).map_err(io_err(&sdir))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let keep = Digest::from_hex(&name)
                .map(|d| snaps.contains(&d))
                .unwrap_or(false);
            if !keep {
                let size = tree_size(&e.path());
                if self.remove_snapshot_dir(&e.path(), &name).is_ok() {
                    report.snapshots_removed += 1;
                    report.snapshot_bytes_freed += size;
                }
            }
        }
        Ok(report)
    }

    /// Verifies every blob against its name and every image's references; with `repair`,
    /// removes corrupt blobs and stray files and drops images that cannot be loaded.
    pub fn fsck(&self, repair: bool) -> Result<FsckReport> {
        let _g = self.lock("gc", true)?;
        let mut report = FsckReport::default();
        let dir = self.root.join("blobs/sha256");
        for e in fs::read_dir(&dir).map_err(io_err(&dir))?.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(d) = Digest::from_hex(&name) else {
                report.issues.push(FsckIssue::StrayFile(path.clone()));
                if repair && remove_tree(&path).is_ok() {
                    report.repaired += 1;
                }
                continue;
            };
            report.blobs_checked += 1;
            let actual = match fs::File::open(&path) {
                Ok(mut f) => {
                    let mut h = Digester::new();
                    io::copy(&mut f, &mut h).map_err(io_err(&path))?;
                    h.finish().0
                }
                Err(e) => return Err(StoreError::Io { path, source: e }),
            };
            if actual != d {
                report
                    .issues
                    .push(FsckIssue::CorruptBlob { digest: d, actual });
                if repair && fs::remove_file(&path).is_ok() {
                    report.repaired += 1;
                }
            }
        }
        let sdir = self.root.join("snapshots");
        for e in fs::read_dir(&sdir).map_err(io_err(&sdir))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if Digest::from_hex(&name).is_err() {
                report.issues.push(FsckIssue::StraySnapshot(e.path()));
                if repair && remove_tree(&e.path()).is_ok() {
                    report.repaired += 1;
                }
            }
        }
        for (name, d) in self.list_images()? {
            report.images_checked += 1;
            if let Err(reason) = self.check_image(&d) {
                report.issues.push(FsckIssue::BrokenImage {
                    name: name.clone(),
                    reason,
                });
                if repair && self.remove_image(&name)? {
                    report.repaired += 1;
                }
            }
        }
        Ok(report)
    }

    fn check_image(&self, d: &Digest) -> std::result::Result<(), String> {
        let mut blobs = BTreeSet::new();
        let mut snaps = BTreeSet::new();
        collect(self, d, &mut blobs, &mut snaps, 0).map_err(|e| e.to_string())?;
        // An index (a multi-platform build) is whole when each of its images is.
        if let Ok(Some(idx)) = self.load_index(d) {
            for m in &idx.manifests {
                self.check_image(&m.digest)
                    .map_err(|e| format!("image {} of index {d}: {e}", m.digest))?;
            }
            return Ok(());
        }
        if let Ok((m, _)) = self.load_image(d) {
            for l in &m.layers {
                match self.blob_size(&l.digest) {
                    Ok(s) if s == l.size => {}
                    Ok(s) => {
                        return Err(format!(
                            "layer {} is {s} bytes, manifest says {}",
                            l.digest, l.size
                        ));
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
        } else {
            self.load_image(d).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Bytes of the regular files under `p` (links not followed; what `du --apparent-size` says).
pub fn tree_size(p: &std::path::Path) -> u64 {
    walkdir::WalkDir::new(p)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Removes a file or a whole tree, making read-only dirs writable first.
pub fn remove_tree(p: &std::path::Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            // Snapshots can hold read-only dirs; make them writable before removal.
            for e in walkdir::WalkDir::new(p)
                .contents_first(false)
                .into_iter()
                .flatten()
            {
                if e.file_type().is_dir() {
                    use std::os::unix::fs::PermissionsExt;
                    let _ = fs::set_permissions(e.path(), fs::Permissions::from_mode(0o700));
                }
            }
            fs::remove_dir_all(p)
        }
        Ok(_) => fs::remove_file(p),
        Err(e) => Err(e),
    }
}

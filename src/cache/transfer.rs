//! Cache export and import (`--cache-to` / `--cache-from`): the entries a build used, and the
//! layer blobs they name, as one OCI artifact.
//!
//! The artifact is an OCI image manifest whose config (media type [`CACHE_CONFIG_MEDIA_TYPE`])
//! is a JSON list of `{key, entry}` pairs and whose layers are the entries' layer blobs, so any
//! OCI registry stores it and pushing skips blobs the registry already has. `type=local` writes
//! the same artifact as an OCI image layout directory (`oci-layout`, `index.json`,
//! `blobs/sha256/…`). Import merges the entries into the local index and fetches the blobs the
//! store lacks, each verified against its digest; entries already known locally are kept.

use super::mounts::{self, MountOptions};
use super::{CacheEntry, CacheError, CacheIndex, Result};
use crate::oci::{Descriptor, Digest, Manifest, media};
use crate::registry::ImageRef;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Media type of the artifact's config: the list of cache entries.
pub const CACHE_CONFIG_MEDIA_TYPE: &str = "application/vnd.hoist.build-cache.config.v1+json";

/// Bumped when the exported document changes shape.
const EXPORT_SCHEMA: &str = "hoist-cache-export-v1";

/// Where `--cache-to` writes or `--cache-from` reads, and whether cache mounts travel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheLocation {
    pub place: CachePlace,
    /// `cache-mounts=`, `cache-mounts-max=` (see [`super::mounts`]).
    pub mounts: MountOptions,
}

/// The registry or directory of a [`CacheLocation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CachePlace {
    /// `type=registry,ref=IMAGE`
    Registry(ImageRef),
    /// `type=local,dest=DIR` (export) or `type=local,src=DIR` (import).
    Local(PathBuf),
}

impl CacheLocation {
    /// A registry location with default mount options for export (`export = true`) or import.
    pub fn registry(r: ImageRef, export: bool) -> CacheLocation {
        CacheLocation {
            place: CachePlace::Registry(r),
            mounts: MountOptions {
                enabled: !export,
                ..MountOptions::default()
            },
        }
    }

    /// A directory location with default mount options, as [`CacheLocation::registry`].
    pub fn local(dir: PathBuf, export: bool) -> CacheLocation {
        CacheLocation {
            place: CachePlace::Local(dir),
            mounts: MountOptions {
                enabled: !export,
                ..MountOptions::default()
            },
        }
    }

    /// Parses a `--cache-to` (`export = true`) or `--cache-from` value. A bare reference
    /// (`--cache-from IMAGE`) means `type=registry,ref=IMAGE`, as with buildx.
    pub fn parse(spec: &str, export: bool) -> std::result::Result<CacheLocation, String> {
        let flag = if export { "--cache-to" } else { "--cache-from" };
        if !spec.contains('=') {
            return ImageRef::parse(spec)
                .map(|r| CacheLocation::registry(r, export))
                .map_err(|e| format!("{flag} {spec}: {e}"));
        }
        let kv: BTreeMap<&str, &str> = spec
            .split(',')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let mounts = MountOptions::parse(&kv, export).map_err(|e| format!("{flag} {spec}: {e}"))?;
        let place = match kv.get("type").copied() {
            Some("registry") => {
                let r = kv
                    .get("ref")
                    .ok_or_else(|| format!("{flag} {spec}: type=registry needs ref=IMAGE"))?;
                ImageRef::parse(r)
                    .map(CachePlace::Registry)
                    .map_err(|e| format!("{flag} {spec}: {e}"))?
            }
            Some("local") => {
                let key = if export { "dest" } else { "src" };
                kv.get(key)
                    .filter(|v| !v.is_empty())
                    .map(|d| CachePlace::Local(PathBuf::from(d)))
                    .ok_or_else(|| format!("{flag} {spec}: type=local needs {key}=DIR"))?
            }
            Some(other) => {
                return Err(format!(
                    "{flag} {spec}: unsupported cache type {other:?} (use type=registry or type=local)"
                ));
            }
            None => {
                return Err(format!(
                    "{flag} {spec}: missing type=registry or type=local"
                ));
            }
        };
        Ok(CacheLocation { place, mounts })
    }
}

/// One exported entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedEntry {
    pub key: Digest,
    pub entry: CacheEntry,
}

/// The artifact's config document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheDocument {
    pub schema: String,
    pub entries: Vec<ExportedEntry>,
}

/// The registry calls export and import need (implemented by the registry client; tests use a
/// fake). Errors are boxed so any client's error type passes through with its message.
pub trait CacheRemote {
    /// Uploads a blob from the store to `dest`'s repository (skipped when already there).
    fn push_blob(&self, store: &Store, dest: &ImageRef, digest: &Digest) -> RemoteResult<()>;
    /// Puts a manifest under `dest`'s tag; returns its digest.
    fn put_manifest(&self, dest: &ImageRef, bytes: &[u8], media_type: &str)
    -> RemoteResult<Digest>;
    /// The manifest `r` names: bytes, media type, digest. `Ok(None)` when it does not exist.
    fn get_manifest(&self, r: &ImageRef) -> RemoteResult<Option<(Vec<u8>, String, Digest)>>;
    /// Downloads a blob into the store, verified against `desc.digest`.
    fn fetch_blob(&self, r: &ImageRef, desc: &Descriptor, store: &Store) -> RemoteResult<()>;
}

/// Result of a [`CacheRemote`] call.
pub type RemoteResult<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// What an export or import moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferStats {
    pub entries: usize,
    pub blobs: usize,
    /// Cache mounts exported or restored.
    pub mounts: usize,
    /// Cache mounts skipped, one line each (too large, holding a secret, unreadable).
    pub notes: Vec<String>,
}

impl std::fmt::Display for TransferStats {
    /// `N entries, M blobs`, then `, K cache mounts` when any, then each note on its own line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} entries, {} blobs", self.entries, self.blobs)?;
        if self.mounts > 0 {
            write!(f, ", {} cache mounts", self.mounts)?;
        }
        for n in &self.notes {
            write!(f, "\n  {n}")?;
        }
        Ok(())
    }
}

/// The cache mounts a build used (store ids) and the `--secret` values (by id) none of
/// them may carry, for an export with `cache-mounts=true`.
#[derive(Debug, Default)]
pub struct UsedMounts<'a> {
    pub ids: &'a [String],
    pub secrets: Vec<(&'a str, &'a [u8])>,
}

fn json_err(path: &Path, e: serde_json::Error) -> CacheError {
    CacheError::Io {
        path: path.to_path_buf(),
        source: e.into(),
    }
}

/// Builds the artifact for `keys` (those the index still has, whose blob the store has) and
/// stores its config and manifest as blobs; `mount_layers` (cache mounts) follow the entries'
/// layers. Returns the manifest bytes, the manifest and what it holds.
fn build_artifact(
    index: &CacheIndex,
    store: &Store,
    keys: &[Digest],
    mount_layers: Vec<Descriptor>,
) -> Result<(Vec<u8>, Manifest, TransferStats)> {
    let mut entries = Vec::new();
    let mut layers: BTreeMap<Digest, Descriptor> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for k in keys {
        if !seen.insert(k.clone()) {
            continue;
        }
        let Some(e) = index.get(k) else { continue };
        if !store.has_blob(&e.layer.digest) {
            continue;
        }
        layers.entry(e.layer.digest.clone()).or_insert_with(|| {
            Descriptor::new(&e.layer.media_type, e.layer.digest.clone(), e.layer.size)
        });
        entries.push(ExportedEntry {
            key: k.clone(),
            entry: e,
        });
    }
    let doc = CacheDocument {
        schema: EXPORT_SCHEMA.into(),
        entries,
    };
    let config = serde_json::to_vec(&doc).map_err(|e| json_err(Path::new("cache config"), e))?;
    let config_digest = store.put_blob(&config)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        config: Descriptor::new(CACHE_CONFIG_MEDIA_TYPE, config_digest, config.len() as u64),
        layers: layers.into_values().chain(mount_layers).collect(),
        annotations: None,
    };
    let bytes =
        serde_json::to_vec(&manifest).map_err(|e| json_err(Path::new("cache manifest"), e))?;
    store.put_blob(&bytes)?;
    let mounts = manifest
        .layers
        .iter()
        .filter_map(mounts::mount_id)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let stats = TransferStats {
        entries: doc.entries.len(),
        blobs: manifest.layers.len(),
        mounts,
        notes: Vec::new(),
    };
    Ok((bytes, manifest, stats))
}

/// Exports the entries for `keys` (the steps a build used) to `to`, and with
/// `cache-mounts=true` the cache mounts in `used`.
pub fn export(
    index: &CacheIndex,
    store: &Store,
    keys: &[Digest],
    used: &UsedMounts,
    to: &CacheLocation,
    remote: Option<&dyn CacheRemote>,
) -> Result<TransferStats> {
    let exported = if to.mounts.enabled {
        mounts::export(store, used.ids, &to.mounts, &used.secrets)?
    } else {
        mounts::Exported::default()
    };
    let (bytes, manifest, mut stats) = build_artifact(index, store, keys, exported.layers)?;
    stats.notes = exported.notes;
    match &to.place {
        CachePlace::Registry(r) => {
            let remote = remote.ok_or_else(|| CacheError::NoRegistry {
                reference: r.to_string(),
            })?;
            let err = |source| CacheError::Remote {
                reference: r.to_string(),
                source,
            };
            for d in manifest
                .layers
                .iter()
                .map(|l| &l.digest)
                .chain([&manifest.config.digest])
            {
                remote.push_blob(store, r, d).map_err(err)?;
            }
            remote
                .put_manifest(r, &bytes, media::OCI_MANIFEST)
                .map_err(err)?;
        }
        CachePlace::Local(dir) => write_layout(store, dir, &bytes, &manifest)?,
    }
    Ok(stats)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes an OCI image layout holding the artifact (blobs copied, existing ones kept).
fn write_layout(store: &Store, dir: &Path, manifest_bytes: &[u8], m: &Manifest) -> Result<()> {
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).map_err(io(&blobs))?;
    for d in m.layers.iter().map(|l| &l.digest).chain([&m.config.digest]) {
        let dest = blobs.join(d.hex());
        if dest.is_file() {
            continue;
        }
        let tmp = blobs.join(format!(".{}.tmp", d.hex()));
        std::fs::copy(store.blob_path(d), &tmp).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &dest).map_err(io(&dest))?;
    }
    let md = Digest::of(manifest_bytes);
    write_atomic(&blobs.join(md.hex()), manifest_bytes)?;
    write_atomic(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let mut desc = Descriptor::new(media::OCI_MANIFEST, md, manifest_bytes.len() as u64);
    desc.annotations = Some(BTreeMap::from([(
        "org.opencontainers.image.ref.name".to_string(),
        "latest".to_string(),
    )]));
    let index = crate::oci::Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.into()),
        manifests: vec![desc],
        annotations: None,
    };
    let p = dir.join("index.json");
    let bytes = serde_json::to_vec(&index).map_err(|e| json_err(&p, e))?;
    write_atomic(&p, &bytes)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io(dir))?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(io(path))?;
    tmp.persist(path).map_err(|e| CacheError::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// Imports the cache at `from` into the local index, fetching missing layer blobs. A missing
/// artifact (first build of a pipeline) imports nothing and is not an error.
pub fn import(
    index: &CacheIndex,
    store: &Store,
    from: &CacheLocation,
    remote: Option<&dyn CacheRemote>,
) -> Result<TransferStats> {
    let (manifest_bytes, origin) = match &from.place {
        CachePlace::Registry(r) => {
            let remote = remote.ok_or_else(|| CacheError::NoRegistry {
                reference: r.to_string(),
            })?;
            match remote
                .get_manifest(r)
                .map_err(|source| CacheError::Remote {
                    reference: r.to_string(),
                    source,
                })? {
                Some((bytes, _, _)) => (bytes, r.to_string()),
                None => return Ok(TransferStats::default()),
            }
        }
        CachePlace::Local(dir) => {
            let p = dir.join("index.json");
            let idx: crate::oci::Index = match std::fs::read(&p) {
                Ok(b) => serde_json::from_slice(&b).map_err(|e| json_err(&p, e))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(TransferStats::default());
                }
                Err(e) => return Err(io(&p)(e)),
            };
            let Some(d) = idx.manifests.first() else {
                return Ok(TransferStats::default());
            };
            (read_local_blob(dir, &d.digest)?, dir.display().to_string())
        }
    };
    let manifest: Manifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| json_err(Path::new(&origin), e))?;
    if manifest.config.media_type != CACHE_CONFIG_MEDIA_TYPE {
        return Err(CacheError::NotACache {
            origin,
            media_type: manifest.config.media_type,
        });
    }
    let config = fetch(store, from, remote, &manifest.config)?;
    let doc: CacheDocument =
        serde_json::from_slice(&config).map_err(|e| json_err(Path::new(&origin), e))?;
    if doc.schema != EXPORT_SCHEMA {
        return Ok(TransferStats::default());
    }
    let mut stats = TransferStats::default();
    for l in &manifest.layers {
        if store.has_blob(&l.digest) {
            continue;
        }
        match mounts::mount_id(l) {
            None => fetch_into_store(store, from, remote, l)?,
            // A mount part is fetched only for a mount it can restore (absent or empty
            // locally); one that fails to come is skipped by the restore, with its note.
            Some(id) => {
                if !from.mounts.enabled || !mounts::wanted(store, id)? {
                    continue;
                }
                if fetch_into_store(store, from, remote, l).is_err() {
                    continue;
                }
            }
        }
        stats.blobs += 1;
    }
    for e in doc.entries {
        if index.get(&e.key).is_none() && store.has_blob(&e.entry.layer.digest) {
            index.put(&e.key, &e.entry)?;
            stats.entries += 1;
        }
    }
    if from.mounts.enabled {
        (stats.mounts, stats.notes) = mounts::restore(store, &manifest.layers, &from.mounts)?;
    }
    Ok(stats)
}

fn read_local_blob(dir: &Path, d: &Digest) -> Result<Vec<u8>> {
    let p = dir.join("blobs").join("sha256").join(d.hex());
    let bytes = std::fs::read(&p).map_err(io(&p))?;
    if &Digest::of(&bytes) != d {
        return Err(CacheError::CorruptBlob { path: p });
    }
    Ok(bytes)
}

/// A small blob (the config), fetched into the store and read back verified.
fn fetch(
    store: &Store,
    from: &CacheLocation,
    remote: Option<&dyn CacheRemote>,
    desc: &Descriptor,
) -> Result<Vec<u8>> {
    if !store.has_blob(&desc.digest) {
        fetch_into_store(store, from, remote, desc)?;
    }
    Ok(store.read_blob(&desc.digest)?)
}

fn fetch_into_store(
    store: &Store,
    from: &CacheLocation,
    remote: Option<&dyn CacheRemote>,
    desc: &Descriptor,
) -> Result<()> {
    match &from.place {
        CachePlace::Registry(r) => {
            let remote = remote.ok_or_else(|| CacheError::NoRegistry {
                reference: r.to_string(),
            })?;
            remote
                .fetch_blob(r, desc, store)
                .map_err(|source| CacheError::Remote {
                    reference: r.to_string(),
                    source,
                })
        }
        CachePlace::Local(dir) => {
            let p = dir.join("blobs").join("sha256").join(desc.digest.hex());
            let mut f = std::fs::File::open(&p).map_err(io(&p))?;
            let mut w = store.blob_writer()?;
            std::io::copy(&mut f, &mut w).map_err(io(&p))?;
            w.commit(Some(&desc.digest))?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::CachedLayer;
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// A registry in memory: blobs by digest, manifests by reference; counts uploads.
    #[derive(Default)]
    struct FakeRemote {
        blobs: RefCell<HashMap<Digest, Vec<u8>>>,
        manifests: RefCell<HashMap<String, Vec<u8>>>,
        uploads: RefCell<usize>,
    }

    impl CacheRemote for FakeRemote {
        fn push_blob(&self, store: &Store, _dest: &ImageRef, digest: &Digest) -> RemoteResult<()> {
            if !self.blobs.borrow().contains_key(digest) {
                *self.uploads.borrow_mut() += 1;
                self.blobs
                    .borrow_mut()
                    .insert(digest.clone(), store.read_blob(digest)?);
            }
            Ok(())
        }
        fn put_manifest(&self, dest: &ImageRef, bytes: &[u8], _m: &str) -> RemoteResult<Digest> {
            self.manifests
                .borrow_mut()
                .insert(dest.to_string(), bytes.to_vec());
            Ok(Digest::of(bytes))
        }
        fn get_manifest(&self, r: &ImageRef) -> RemoteResult<Option<(Vec<u8>, String, Digest)>> {
            Ok(self
                .manifests
                .borrow()
                .get(&r.to_string())
                .map(|b| (b.clone(), media::OCI_MANIFEST.to_string(), Digest::of(b))))
        }
        fn fetch_blob(&self, _r: &ImageRef, desc: &Descriptor, store: &Store) -> RemoteResult<()> {
            let b = self
                .blobs
                .borrow()
                .get(&desc.digest)
                .cloned()
                .ok_or("blob unknown")?;
            let mut w = store.blob_writer()?;
            std::io::Write::write_all(&mut w, &b)?;
            w.commit(Some(&desc.digest))?;
            Ok(())
        }
    }

    struct Side {
        _dir: tempfile::TempDir,
        store: Store,
        index: CacheIndex,
    }

    fn side() -> Side {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let index = CacheIndex::open(&dir.path().join("cache")).unwrap();
        Side {
            _dir: dir,
            store,
            index,
        }
    }

    /// Puts a fake layer blob and its entry; returns the key.
    fn entry(s: &Side, name: &str) -> Digest {
        let blob = format!("layer bytes of {name}");
        let digest = s.store.put_blob(blob.as_bytes()).unwrap();
        let key = crate::cache::key(&Digest::of(b""), &[name]);
        let e = CacheEntry {
            layer: CachedLayer {
                digest,
                diff_id: Digest::of(name.as_bytes()),
                size: blob.len() as u64,
                media_type: media::OCI_LAYER_GZIP.into(),
            },
            created: Some("2024-01-01T00:00:00Z".into()),
        };
        s.index.put(&key, &e).unwrap();
        key
    }

    #[test]
    fn parses_locations() {
        let r = CacheLocation::parse("type=registry,ref=localhost:5000/app:cache", true).unwrap();
        assert_eq!(
            r,
            CacheLocation::registry(ImageRef::parse("localhost:5000/app:cache").unwrap(), true)
        );
        assert_eq!(
            CacheLocation::parse("type=local,dest=/tmp/c", true).unwrap(),
            CacheLocation::local("/tmp/c".into(), true)
        );
        assert_eq!(
            CacheLocation::parse("type=local,src=/tmp/c", false).unwrap(),
            CacheLocation::local("/tmp/c".into(), false)
        );
        let e = CacheLocation::parse("type=local,src=/tmp/c", true).unwrap_err();
        assert!(e.contains("--cache-to") && e.contains("dest=DIR"), "{e}");
        let e = CacheLocation::parse("type=gha", false).unwrap_err();
        assert!(e.contains("unsupported cache type \"gha\""), "{e}");
        assert!(matches!(
            CacheLocation::parse("busybox", false),
            Ok(CacheLocation {
                place: CachePlace::Registry(_),
                ..
            })
        ));
    }

    #[test]
    fn registry_round_trip_between_two_stores() {
        let a = side();
        let k1 = entry(&a, "one");
        let k2 = entry(&a, "two");
        let unused = entry(&a, "unused");
        let remote = FakeRemote::default();
        let to = CacheLocation::registry(ImageRef::parse("localhost:5000/c:cache").unwrap(), true);
        let st = export(
            &a.index,
            &a.store,
            &[k1.clone(), k2.clone(), k1.clone()],
            &UsedMounts::default(),
            &to,
            Some(&remote),
        )
        .unwrap();
        assert_eq!(
            st,
            TransferStats {
                entries: 2,
                blobs: 2,
                ..TransferStats::default()
            }
        );
        // Layers + config went up once each; re-export sends nothing new.
        assert_eq!(*remote.uploads.borrow(), 3);
        export(
            &a.index,
            &a.store,
            &[k1.clone(), k2.clone()],
            &UsedMounts::default(),
            &to,
            Some(&remote),
        )
        .unwrap();
        assert_eq!(*remote.uploads.borrow(), 3);

        let b = side();
        let st = import(&b.index, &b.store, &to, Some(&remote)).unwrap();
        assert_eq!(
            st,
            TransferStats {
                entries: 2,
                blobs: 2,
                ..TransferStats::default()
            }
        );
        assert_eq!(b.index.get(&k1), a.index.get(&k1));
        assert_eq!(b.index.get(&k2), a.index.get(&k2));
        assert!(
            b.index.get(&unused).is_none(),
            "only the build's keys travel"
        );
        let e = b.index.get(&k1).unwrap();
        assert!(b.store.has_blob(&e.layer.digest));
    }

    #[test]
    fn only_changed_cache_mounts_are_sent_again() {
        let a = side();
        let put = |id: &str, content: &[u8]| {
            let data = a.store.cache_mount_dir(id).unwrap().join("data");
            std::fs::create_dir_all(&data).unwrap();
            std::fs::write(data.join("f"), content).unwrap();
        };
        put("m1", b"one");
        put("m2", b"two");
        let ids = vec!["m1".to_string(), "m2".to_string()];
        let used = UsedMounts {
            ids: &ids,
            secrets: vec![],
        };
        let remote = FakeRemote::default();
        let mut to = CacheLocation::registry(ImageRef::parse("localhost:5000/c:m").unwrap(), true);
        // Off by default: no mount goes.
        let st = export(&a.index, &a.store, &[], &used, &to, Some(&remote)).unwrap();
        assert_eq!((st.mounts, *remote.uploads.borrow()), (0, 1));
        to.mounts.enabled = true;
        let st = export(&a.index, &a.store, &[], &used, &to, Some(&remote)).unwrap();
        assert_eq!((st.mounts, *remote.uploads.borrow()), (2, 3));
        export(&a.index, &a.store, &[], &used, &to, Some(&remote)).unwrap();
        assert_eq!(*remote.uploads.borrow(), 3, "nothing changed, nothing sent");
        put("m1", b"one, changed");
        export(&a.index, &a.store, &[], &used, &to, Some(&remote)).unwrap();
        assert_eq!(
            *remote.uploads.borrow(),
            4,
            "only the changed mount is sent"
        );

        let b = side();
        let from = CacheLocation::registry(ImageRef::parse("localhost:5000/c:m").unwrap(), false);
        let st = import(&b.index, &b.store, &from, Some(&remote)).unwrap();
        assert_eq!(st.mounts, 2);
        let got =
            |id: &str| std::fs::read(b.store.cache_mount_dir(id).unwrap().join("data/f")).unwrap();
        assert_eq!(got("m1"), b"one, changed");
        assert_eq!(got("m2"), b"two");

        // A store with m1 warm fetches and restores only m2, and keeps its own m1.
        let c = side();
        let warm = c.store.cache_mount_dir("m1").unwrap().join("data");
        std::fs::create_dir_all(&warm).unwrap();
        std::fs::write(warm.join("f"), b"local").unwrap();
        let st = import(&c.index, &c.store, &from, Some(&remote)).unwrap();
        assert_eq!((st.blobs, st.mounts), (1, 1));
        assert_eq!(std::fs::read(warm.join("f")).unwrap(), b"local");
    }

    #[test]
    fn missing_remote_cache_imports_nothing() {
        let b = side();
        let remote = FakeRemote::default();
        let from =
            CacheLocation::registry(ImageRef::parse("localhost:5000/none:cache").unwrap(), false);
        assert_eq!(
            import(&b.index, &b.store, &from, Some(&remote)).unwrap(),
            TransferStats::default()
        );
        let dir = tempfile::tempdir().unwrap();
        let from = CacheLocation::local(dir.path().join("absent"), false);
        assert_eq!(
            import(&b.index, &b.store, &from, None).unwrap(),
            TransferStats::default()
        );
    }

    #[test]
    fn local_layout_round_trip_and_corruption_is_caught() {
        let a = side();
        let k = entry(&a, "one");
        let dir = tempfile::tempdir().unwrap();
        let loc = CacheLocation::local(dir.path().join("cache"), true);
        export(
            &a.index,
            &a.store,
            std::slice::from_ref(&k),
            &UsedMounts::default(),
            &loc,
            None,
        )
        .unwrap();
        let layout = dir.path().join("cache");
        assert!(layout.join("oci-layout").is_file());
        let idx: crate::oci::Index =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        assert_eq!(idx.manifests.len(), 1);

        let b = side();
        assert_eq!(import(&b.index, &b.store, &loc, None).unwrap().entries, 1);
        assert_eq!(b.index.get(&k), a.index.get(&k));

        // A tampered layer blob is refused, never trusted.
        let c = side();
        let e = a.index.get(&k).unwrap();
        let p = layout.join("blobs/sha256").join(e.layer.digest.hex());
        std::fs::write(&p, b"tampered").unwrap();
        assert!(import(&c.index, &c.store, &loc, None).is_err());
        assert!(c.index.get(&k).is_none());
    }

    #[test]
    fn not_a_cache_artifact_is_refused() {
        let b = side();
        let remote = FakeRemote::default();
        let r = ImageRef::parse("localhost:5000/img:1").unwrap();
        let m = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.into()),
            config: Descriptor::new(media::OCI_CONFIG, Digest::of(b"{}"), 2),
            layers: vec![],
            annotations: None,
        };
        remote
            .put_manifest(&r, &serde_json::to_vec(&m).unwrap(), media::OCI_MANIFEST)
            .unwrap();
        let err = import(
            &b.index,
            &b.store,
            &CacheLocation::registry(r, false),
            Some(&remote),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("is not a hoist build cache"), "{err}");
    }
}

//! Cache mounts that travel: `--cache-to …,cache-mounts=true` carries the contents of the
//! `RUN --mount=type=cache` dirs a build used inside the cache artifact, and `--cache-from`
//! restores them, so a step that must rerun on another machine still starts warm.
//!
//! Each mount goes as one or more gzip tar blobs, its parts (see [`super::mount_parts`]: cut
//! where path names say, so a small change to a large mount re-sends one part), added to the
//! artifact's layers with annotations naming its store id (the id the mount sees, plus its
//! seed when it has `from=`), its root's mode and owner, and the part's place. Equal contents
//! give the same blob digests, so an unchanged part is not sent again (the push skips blobs
//! the registry has; `type=local` skips files it has).
//!
//! Export skips, each with a note: an empty mount (nothing to carry), one larger than
//! `cache-mounts-max` (default [`DEFAULT_MAX`]), and one holding the value of any `--secret`
//! of the build in any file (a secret mounted *inside* a cache dir is a bind mount over an
//! empty stub, so only a command that copied it there could put it in; such a mount is never
//! exported). Restore treats the blob as hostile: it is unpacked by the safe extractor
//! (in-root, no links out, `.wh.` names are plain files) with the uncompressed size bounded
//! by the cap, into a temp dir, under the mount's lock, and only where the local mount is
//! absent or empty: a local warm cache is never replaced. See [`place`] for how each
//! `sharing=` mode stays safe while the restored tree goes in.

use super::mount_parts::{DEFAULT_SPLIT, Split, write_parts};
use super::{CacheError, Result};
use crate::layers::{DecompressHint, ExtractLimits, ExtractMode, unpack_with_limits};
use crate::oci::{Descriptor, media};
use crate::store::Store;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Annotation on a cache-mount layer: the mount's store id.
pub const ID_ANNOTATION: &str = "dev.hoist.cache-mount.id";
/// Annotation on a cache-mount layer: the mount root's `MODE:UID:GID` (mode in octal).
pub const ROOT_ANNOTATION: &str = "dev.hoist.cache-mount.root";
/// Annotation on a cache-mount layer: which part of the mount it is, `I/N` (see
/// [`super::mount_parts`]).
pub const PART_ANNOTATION: &str = "dev.hoist.cache-mount.part";
/// Default `cache-mounts-max`: the largest mount exported (bytes of file data).
pub const DEFAULT_MAX: u64 = 1 << 30;

/// The cache-mount options of a `--cache-to`/`--cache-from` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Export (`--cache-to`, default off as in BuildKit, which never exports them) or
    /// restore (`--cache-from`, default on: what the artifact carries is used).
    pub enabled: bool,
    /// `cache-mounts-max=SIZE`: larger mounts are not exported (nor restored).
    pub max: u64,
}

impl MountOptions {
    /// Reads `cache-mounts=` and `cache-mounts-max=` from a parsed `--cache-to`
    /// (`export = true`) or `--cache-from` value.
    pub fn parse(kv: &BTreeMap<&str, &str>, export: bool) -> std::result::Result<Self, String> {
        let enabled = match kv.get("cache-mounts").copied() {
            None => !export,
            Some("true" | "1") => true,
            Some("false" | "0") => false,
            Some(v) => return Err(format!("cache-mounts={v}: use true or false")),
        };
        let max = match kv.get("cache-mounts-max").copied() {
            None => DEFAULT_MAX,
            Some(v) => docker_size(v).ok_or_else(|| {
                format!("cache-mounts-max={v}: not a size (use e.g. 500m, 1g, 2GiB)")
            })?,
        };
        Ok(MountOptions { enabled, max })
    }
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            enabled: false,
            max: DEFAULT_MAX,
        }
    }
}

/// A size as Docker writes memory sizes: `512`, `64k`, `500m`, `1g` (binary units, `b`
/// optional); `KiB`/`MB`-style units as `hoist prune --keep-storage` takes them.
fn docker_size(v: &str) -> Option<u64> {
    let t = v.trim().to_ascii_lowercase();
    let binary = |n: &str, shift: u32| n.parse::<u64>().ok()?.checked_mul(1u64 << shift);
    for (suffix, shift) in [("kb", 10), ("mb", 20), ("gb", 30), ("tb", 40)] {
        if let Some(n) = t.strip_suffix(suffix) {
            // Docker's RAMInBytes: `1gb` is 1 GiB.
            if let Some(b) = binary(n, shift) {
                return Some(b);
            }
        }
    }
    for (suffix, shift) in [("k", 10), ("m", 20), ("g", 30), ("t", 40), ("b", 0)] {
        if let Some(n) = t.strip_suffix(suffix)
            && let Some(b) = binary(n, shift)
        {
            return Some(b);
        }
    }
    super::parse_size(&t)
}

/// What a cache-mount export produced: layers to add to the artifact, and what was skipped.
#[derive(Debug, Default)]
pub struct Exported {
    pub layers: Vec<Descriptor>,
    pub notes: Vec<String>,
}

/// Writes each cache mount in `used` (store ids) as a layer blob in the store. `secrets` are
/// the build's `--secret` values by id: a mount holding any of them is skipped.
pub fn export(
    store: &Store,
    used: &[String],
    opts: &MountOptions,
    secrets: &[(&str, &[u8])],
) -> Result<Exported> {
    export_split(store, used, opts, secrets, &DEFAULT_SPLIT)
}

/// [`export`] with the parts cut by `split`.
fn export_split(
    store: &Store,
    used: &[String],
    opts: &MountOptions,
    secrets: &[(&str, &[u8])],
    split: &Split,
) -> Result<Exported> {
    let mut out = Exported::default();
    let ids: BTreeSet<&String> = used.iter().collect();
    for id in ids {
        let dir = store.cache_mount_dir(id)?;
        let data = dir.join("data");
        if !data.is_dir() {
            continue;
        }
        // Steps of a concurrent build using a `sharing=locked` mount finish first: the tar
        // is of one consistent state.
        let _lock = store.lock(&format!("cache-mount:{id}"), true)?;
        let (bytes, entries) = measure(&data)?;
        if entries == 0 {
            continue;
        }
        if bytes > opts.max {
            out.notes.push(format!(
                "cache mount {id:?} not exported: {bytes} bytes is over cache-mounts-max={} \
                 (raise it to carry this mount)",
                opts.max
            ));
            continue;
        }
        if let Some((file, secret)) = find_secret(&data, secrets)? {
            out.notes.push(format!(
                "cache mount {id:?} not exported: {} holds the value of secret {secret:?}",
                file.strip_prefix(&data).unwrap_or(&file).display()
            ));
            continue;
        }
        let m = std::fs::metadata(&data).map_err(io(&data))?;
        let root = format!("{:o}:{}:{}", m.mode() & 0o7777, m.uid(), m.gid());
        let parts = write_parts(store, &data, split)?;
        let n = parts.len();
        for (i, (digest, size)) in parts.into_iter().enumerate() {
            let mut desc = Descriptor::new(media::OCI_LAYER_GZIP, digest, size);
            desc.annotations = Some(BTreeMap::from([
                (ID_ANNOTATION.to_string(), id.clone()),
                (ROOT_ANNOTATION.to_string(), root.clone()),
                (PART_ANNOTATION.to_string(), format!("{}/{n}", i + 1)),
            ]));
            out.layers.push(desc);
        }
    }
    Ok(out)
}

/// The store id a cache-mount layer is for, `None` for an ordinary cache layer.
pub fn mount_id(desc: &Descriptor) -> Option<&str> {
    desc.annotations
        .as_ref()?
        .get(ID_ANNOTATION)
        .map(|s| s.as_str())
}

/// Restores the cache-mount layers among `layers` (their blobs already in the store) into
/// the store's cache mount dirs that are absent or empty. Returns how many were restored and
/// notes on those skipped.
pub fn restore(
    store: &Store,
    layers: &[Descriptor],
    opts: &MountOptions,
) -> Result<(usize, Vec<String>)> {
    let mut restored = 0;
    let mut notes = Vec::new();
    // Each mount's parts, in the artifact's order.
    let mut by_id: BTreeMap<&str, Vec<&Descriptor>> = BTreeMap::new();
    for l in layers {
        if let Some(id) = mount_id(l) {
            by_id.entry(id).or_default().push(l);
        }
    }
    for (id, parts) in by_id {
        let dir = store.cache_mount_dir(id)?;
        let data = dir.join("data");
        let _lock = store.lock(&format!("cache-mount:{id}"), true)?;
        if !is_absent_or_empty(&data)? {
            continue;
        }
        match unpack_into(store, &parts, &dir, opts) {
            Ok(tmp) => {
                if place(&tmp, &data) {
                    restored += 1;
                }
                let _ = std::fs::remove_dir_all(&tmp);
            }
            Err(e) => notes.push(format!("cache mount {id:?} not restored: {e}")),
        }
    }
    Ok((restored, notes))
}

/// True when the cache mount `id` is absent or empty in `store`: what a restore fills.
pub fn wanted(store: &Store, id: &str) -> Result<bool> {
    is_absent_or_empty(&store.cache_mount_dir(id)?.join("data"))
}

/// Puts the restored tree `tmp` at `data`, never replacing anything there. The restore holds
/// the mount's lock, which every `sharing=locked|private` user of it holds while its step
/// runs; a `sharing=shared` user takes no lock and may have an existing empty `data`
/// mounted right now, so that dir is kept (its inode stays the one mounted) and the
/// restored entries are moved into it one by one. An absent `data` appears whole, by one
/// rename. True when anything was placed.
fn place(tmp: &Path, data: &Path) -> bool {
    let rename = |from: &Path, to: &Path| {
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            from,
            rustix::fs::CWD,
            to,
            rustix::fs::RenameFlags::NOREPLACE,
        )
        .is_ok()
    };
    if !data.exists() {
        return rename(tmp, data);
    }
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return false;
    };
    let mut placed = false;
    for e in entries.flatten() {
        // A name a user of the mount created meanwhile is theirs: the restored one yields.
        placed |= rename(&e.path(), &data.join(e.file_name()));
    }
    placed
}

fn is_absent_or_empty(data: &Path) -> Result<bool> {
    match std::fs::read_dir(data) {
        Ok(mut d) => Ok(d.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(io(data)(e)),
    }
}

/// Unpacks one mount's parts, in order, into a new temp dir in `dir`; returns it (removed on
/// failure). Their uncompressed tars together stay within twice the cap (headers and padding
/// of many small files) plus 64 MiB.
fn unpack_into(
    store: &Store,
    parts: &[&Descriptor],
    dir: &Path,
    opts: &MountOptions,
) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".restore-{}-{n}", std::process::id()));
    let result = (|| {
        std::fs::create_dir(&tmp).map_err(io(&tmp))?;
        let mut left = opts.max.saturating_mul(2).saturating_add(64 << 20);
        for l in parts {
            let blob = store.blob_path(&l.digest);
            let f = std::fs::File::open(&blob).map_err(io(&blob))?;
            let limits = ExtractLimits {
                max_total_bytes: left,
                ..ExtractLimits::default()
            };
            let st = unpack_with_limits(
                f,
                DecompressHint::MediaType(&l.media_type),
                &tmp,
                ExtractMode::Archive,
                &limits,
            )?;
            left = left.saturating_sub(st.tar_bytes);
        }
        if let Some((mode, uid, gid)) = parts
            .first()
            .and_then(|l| l.annotations.as_ref())
            .and_then(|a| a.get(ROOT_ANNOTATION))
            .and_then(|r| parse_root(r))
        {
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
                .map_err(io(&tmp))?;
            crate::userns::io_chown_result(std::os::unix::fs::chown(&tmp, Some(uid), Some(gid)))
                .map_err(io(&tmp))?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// `MODE:UID:GID` (octal mode, permission bits only).
fn parse_root(r: &str) -> Option<(u32, u32, u32)> {
    let mut it = r.split(':');
    let mode = u32::from_str_radix(it.next()?, 8).ok()? & 0o7777;
    let uid = it.next()?.parse().ok()?;
    let gid = it.next()?.parse().ok()?;
    it.next().is_none().then_some((mode, uid, gid))
}

/// Bytes of regular-file data and number of entries under `dir` (links never followed).
fn measure(dir: &Path) -> Result<(u64, u64)> {
    let mut bytes = 0u64;
    let mut entries = 0u64;
    for e in walkdir::WalkDir::new(dir).min_depth(1) {
        let e = e.map_err(|e| walk_err(dir, e))?;
        entries += 1;
        if e.file_type().is_file() {
            bytes += e.metadata().map_err(|e| walk_err(dir, e))?.len();
        }
    }
    Ok((bytes, entries))
}

/// The first regular file under `dir` whose content contains a secret's value, with the
/// secret's id. Files are read in chunks with an overlap, so a value across two reads is
/// found.
fn find_secret<'a>(dir: &Path, secrets: &[(&'a str, &[u8])]) -> Result<Option<(PathBuf, &'a str)>> {
    let secrets: Vec<(&str, &[u8])> = secrets
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .copied()
        .collect();
    let Some(longest) = secrets.iter().map(|(_, v)| v.len()).max() else {
        return Ok(None);
    };
    let finders: Vec<(&str, memchr::memmem::Finder)> = secrets
        .iter()
        .map(|(id, v)| (*id, memchr::memmem::Finder::new(v)))
        .collect();
    for e in walkdir::WalkDir::new(dir).min_depth(1) {
        let e = e.map_err(|e| walk_err(dir, e))?;
        if !e.file_type().is_file() {
            continue;
        }
        let path = e.path();
        let mut f = std::fs::File::open(path).map_err(io(path))?;
        let mut buf = Vec::with_capacity((1 << 20) + longest);
        let mut chunk = vec![0u8; 1 << 20];
        loop {
            let k = f.read(&mut chunk).map_err(io(path))?;
            if k == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..k]);
            if let Some((id, _)) = finders.iter().find(|(_, f)| f.find(&buf).is_some()) {
                return Ok(Some((path.to_path_buf(), id)));
            }
            // Keep the tail that could start a value continued by the next read.
            let keep = longest.saturating_sub(1).min(buf.len());
            buf.drain(..buf.len() - keep);
        }
    }
    Ok(None)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn walk_err(dir: &Path, e: walkdir::Error) -> CacheError {
    let path = e.path().unwrap_or(dir).to_path_buf();
    CacheError::Io {
        path,
        source: e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options() {
        let kv = |s: &'static str| -> BTreeMap<&str, &str> {
            s.split(',').filter_map(|p| p.split_once('=')).collect()
        };
        let o = MountOptions::parse(&kv("type=local"), true).unwrap();
        assert_eq!(o, MountOptions::default());
        assert!(
            MountOptions::parse(&kv("type=local"), false)
                .unwrap()
                .enabled
        );
        let o = MountOptions::parse(&kv("cache-mounts=true,cache-mounts-max=1g"), true).unwrap();
        assert_eq!(
            o,
            MountOptions {
                enabled: true,
                max: 1 << 30
            }
        );
        for (v, n) in [
            ("512", 512),
            ("64k", 64 << 10),
            ("500m", 500 << 20),
            ("2gb", 2 << 30),
            ("1GiB", 1 << 30),
            ("10MB", 10 << 20),
        ] {
            assert_eq!(docker_size(v), Some(n), "{v}");
        }
        let e = MountOptions::parse(&kv("cache-mounts-max=lots"), true).unwrap_err();
        assert!(e.contains("not a size"), "{e}");
        let e = MountOptions::parse(&kv("cache-mounts=yes"), true).unwrap_err();
        assert!(e.contains("true or false"), "{e}");
    }

    fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        (d, s)
    }

    fn fill(s: &Store, id: &str, files: &[(&str, &[u8])]) -> PathBuf {
        let data = s.cache_mount_dir(id).unwrap().join("data");
        std::fs::create_dir_all(&data).unwrap();
        for (name, content) in files {
            let p = data.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        data
    }

    fn on() -> MountOptions {
        MountOptions {
            enabled: true,
            max: DEFAULT_MAX,
        }
    }

    #[test]
    fn round_trip_keeps_contents_modes_and_owners_and_never_clobbers() {
        use std::os::unix::fs::PermissionsExt;
        let (_a, a) = store();
        let data = fill(&a, "/root/.cache/pip", &[("wheels/x.whl", b"wheel bytes")]);
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o750)).unwrap();
        std::os::unix::fs::chown(data.join("wheels/x.whl"), Some(1234), Some(99)).unwrap();
        let ids = vec!["/root/.cache/pip".to_string(), "unused".to_string()];
        let ex = export(&a, &ids, &on(), &[]).unwrap();
        assert_eq!(ex.layers.len(), 1, "the empty/absent mount is not exported");
        // Unchanged content: the same blob.
        let again = export(&a, &ids, &on(), &[]).unwrap();
        assert_eq!(again.layers[0].digest, ex.layers[0].digest);

        let (_b, b) = store();
        let mut w = b.blob_writer().unwrap();
        std::io::copy(
            &mut std::fs::File::open(a.blob_path(&ex.layers[0].digest)).unwrap(),
            &mut w,
        )
        .unwrap();
        w.commit(Some(&ex.layers[0].digest)).unwrap();
        assert_eq!(restore(&b, &ex.layers, &on()).unwrap().0, 1);
        let got = b.cache_mount_dir("/root/.cache/pip").unwrap().join("data");
        assert_eq!(
            std::fs::read(got.join("wheels/x.whl")).unwrap(),
            b"wheel bytes"
        );
        let m = std::fs::metadata(got.join("wheels/x.whl")).unwrap();
        assert_eq!((m.uid(), m.gid()), (1234, 99));
        assert_eq!(std::fs::metadata(&got).unwrap().mode() & 0o7777, 0o750);

        // A local empty mount dir (maybe mounted by a sharing=shared step right now) is
        // filled in place: the same inode.
        let (_c, c) = store();
        let empty = fill(&c, "/root/.cache/pip", &[]);
        let ino = std::fs::metadata(&empty).unwrap().ino();
        for l in &ex.layers {
            let mut w = c.blob_writer().unwrap();
            std::io::copy(
                &mut std::fs::File::open(a.blob_path(&l.digest)).unwrap(),
                &mut w,
            )
            .unwrap();
            w.commit(Some(&l.digest)).unwrap();
        }
        assert_eq!(restore(&c, &ex.layers, &on()).unwrap().0, 1);
        assert_eq!(std::fs::metadata(&empty).unwrap().ino(), ino);
        assert_eq!(
            std::fs::read(empty.join("wheels/x.whl")).unwrap(),
            b"wheel bytes"
        );
        let left: Vec<_> = std::fs::read_dir(empty.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["data"], "no temp dir is left");

        // A local warm cache is kept as it is.
        std::fs::write(got.join("wheels/x.whl"), b"local").unwrap();
        assert_eq!(restore(&b, &ex.layers, &on()).unwrap().0, 0);
        assert_eq!(std::fs::read(got.join("wheels/x.whl")).unwrap(), b"local");
    }

    #[test]
    fn a_small_change_to_a_large_mount_changes_one_part() {
        let (_a, a) = store();
        let files: Vec<(String, Vec<u8>)> = (0..200u32)
            .map(|i| {
                let body: Vec<u8> = (0..16 * 1024u32)
                    .map(|j| (j.wrapping_mul(2654435761).wrapping_add(i * 97) >> 13) as u8)
                    .collect();
                (format!("d{}/f{i:03}", i % 7), body)
            })
            .collect();
        let refs: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        let data = fill(&a, "big", &refs);
        let split = Split {
            min: 256 << 10,
            max: 1 << 20,
            mask: 3,
        };
        let ids = ["big".to_string()];
        let before = export_split(&a, &ids, &on(), &[], &split).unwrap().layers;
        assert!(before.len() > 4, "{} parts", before.len());
        std::fs::write(data.join("d3/f101"), b"changed").unwrap();
        let after = export_split(&a, &ids, &on(), &[], &split).unwrap().layers;
        let old: BTreeSet<_> = before.iter().map(|l| &l.digest).collect();
        let new: Vec<_> = after.iter().filter(|l| !old.contains(&l.digest)).collect();
        let total: u64 = after.iter().map(|l| l.size).sum();
        assert_eq!(new.len(), 1, "one part re-sent of {}", after.len());
        assert!(new[0].size * 3 < total, "{} of {total} bytes", new[0].size);

        // The parts restore to the whole tree.
        let (_b, b) = store();
        for l in &after {
            let mut w = b.blob_writer().unwrap();
            std::io::copy(
                &mut std::fs::File::open(a.blob_path(&l.digest)).unwrap(),
                &mut w,
            )
            .unwrap();
            w.commit(Some(&l.digest)).unwrap();
        }
        assert_eq!(restore(&b, &after, &on()).unwrap().0, 1);
        let got = b.cache_mount_dir("big").unwrap().join("data");
        assert_eq!(std::fs::read(got.join("d3/f101")).unwrap(), b"changed");
        assert_eq!(
            std::fs::read(got.join("d5/f005")).unwrap(),
            std::fs::read(data.join("d5/f005")).unwrap()
        );
        assert_eq!(
            std::fs::read_dir(got.join("d0")).unwrap().count(),
            std::fs::read_dir(data.join("d0")).unwrap().count()
        );
    }

    #[test]
    fn a_hostile_mount_blob_stays_inside_its_mount() {
        let (_b, b) = store();
        let outside = tempfile::tempdir().unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        tar.append_link(&mut h, "esc", outside.path()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        tar.append_data(&mut h, "esc/pwned", &b"owned"[..]).unwrap();
        let raw = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        let blob = gz.finish().unwrap();
        let digest = b.put_blob(&blob).unwrap();
        let mut desc =
            Descriptor::new(crate::oci::media::OCI_LAYER_GZIP, digest, blob.len() as u64);
        desc.annotations = Some(BTreeMap::from([(ID_ANNOTATION.into(), "evil".into())]));
        restore(&b, &[desc], &on()).unwrap();
        assert!(!outside.path().join("pwned").exists(), "escaped the mount");
        let data = b.cache_mount_dir("evil").unwrap().join("data");
        assert!(
            std::fs::symlink_metadata(data.join("esc")).is_ok(),
            "the tree was restored in-root"
        );
    }

    #[test]
    fn oversized_and_secret_holding_mounts_are_not_exported() {
        let (_a, a) = store();
        fill(&a, "big", &[("f", &[7u8; 4096])]);
        let mut secret = vec![b'x'; (1 << 20) - 3];
        secret.extend_from_slice(b"s3cr3t-value");
        // The secret's value straddles two 1 MiB reads.
        fill(&a, "leaky", &[("a/copy", &secret)]);
        let opts = MountOptions {
            enabled: true,
            max: 4095,
        };
        let ex = export(&a, &["big".into()], &opts, &[]).unwrap();
        assert!(ex.layers.is_empty());
        assert!(
            ex.notes[0].contains("over cache-mounts-max=4095"),
            "{:?}",
            ex.notes
        );
        let ex = export(
            &a,
            &["leaky".into()],
            &on(),
            &[("token", b"s3cr3t-value".as_slice())],
        )
        .unwrap();
        assert!(ex.layers.is_empty());
        assert!(
            ex.notes[0].contains("a/copy holds the value of secret \"token\""),
            "{:?}",
            ex.notes
        );
    }
}

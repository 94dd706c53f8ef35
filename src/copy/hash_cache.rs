//! [`HashCache`]: content hashes of build-context files keyed by path and stat
//! (size, mtime, ctime, inode, device), so a warm build reads no unchanged file.
//!
//! Why this structure: a build touches a few directories of one context, while the store
//! remembers every directory of every context it ever hashed. The cache is therefore sharded
//! **per source directory**: one small JSON record per directory,
//! `<dir>/v2/<xx>/<sha256(directory path)>.json`, holding that directory's file names, stamps
//! and hashes. A record is read the first time the build looks up a file of that directory,
//! and written back (temp file + rename, as before) only when the build changed it, so a build
//! that changes nothing writes nothing and the cost of a build is O(the directories it reads),
//! never O(the store's history). An embedded database (`redb`) would give the same bounds,
//! but at the price of a new dependency, a file lock shared by every build and a
//! non-inspectable format; plain files keep "old or new, never torn" with one `rename`.
//!
//! Crash safety: a killed build leaves each record either old or new. A record that does not
//! parse (torn by a power loss, edited by hand) or names another directory is a miss, never an
//! error; `hoist fsck` reports such records and `--repair` removes them ([`HashCache::fsck`]).
//! The one-file format of earlier versions (`content-hashes-v1.json`) is removed on open.

use super::fsops::Meta;
use super::{CopyError, Result, io_err};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The whole-store file of format v1, replaced by per-directory records.
const LEGACY_FILE: &str = "content-hashes-v1.json";
/// Subdirectory of the per-directory records (bump when the record format changes).
const RECORDS: &str = "v2";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    mtime: i64,
    mtime_nsec: u32,
    ctime: i64,
    ctime_nsec: u32,
    ino: u64,
    dev: u64,
}

impl Stamp {
    fn of(m: &Meta) -> Stamp {
        Stamp {
            size: m.size,
            mtime: m.mtime,
            mtime_nsec: m.mtime_nsec,
            ctime: m.ctime,
            ctime_nsec: m.ctime_nsec,
            ino: m.ino,
            dev: m.dev,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Cached {
    stamp: Stamp,
    sha256: String,
}

/// One directory's record as stored.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    /// The directory it describes (checked on load: a hash collision or a misplaced file is a
    /// miss).
    dir: String,
    files: HashMap<String, Cached>,
}

/// A record loaded by this build, and whether the build changed it.
#[derive(Debug, Default)]
struct Shard {
    files: HashMap<String, Cached>,
    dirty: bool,
}

/// Content hashes of files keyed by path and stat, persisted as one record per source
/// directory (see the module doc). Thread-safe; call [`HashCache::save`] after a build.
#[derive(Debug, Default)]
pub struct HashCache {
    /// Where the records live; `None` for an in-memory cache.
    dir: Option<PathBuf>,
    shards: Mutex<HashMap<String, Shard>>,
    reads: AtomicU64,
    writes: AtomicU64,
}

/// Splits a file path into (its directory, its name).
fn split(key: &str) -> (&str, &str) {
    match key.rfind('/') {
        Some(i) => (&key[..i], &key[i + 1..]),
        None => ("", key),
    }
}

impl HashCache {
    /// A cache that is never persisted.
    pub fn in_memory() -> HashCache {
        HashCache::default()
    }

    /// Opens the cache kept in `dir`: reads nothing yet (records load on first use).
    pub fn open(dir: &Path) -> Result<HashCache> {
        let records = dir.join(RECORDS);
        std::fs::create_dir_all(&records).map_err(io_err(&records))?;
        // The v1 file held every file ever hashed; it is only a cache, so it just goes.
        let _ = std::fs::remove_file(dir.join(LEGACY_FILE));
        Ok(HashCache {
            dir: Some(records),
            ..HashCache::default()
        })
    }

    fn record_path(records: &Path, dir: &str) -> PathBuf {
        let h = hex::encode(Sha256::digest(dir.as_bytes()));
        records.join(&h[..2]).join(format!("{h}.json"))
    }

    /// The stored record of `dir`; missing, unreadable, torn or misplaced records are empty.
    fn load(records: &Path, dir: &str) -> HashMap<String, Cached> {
        std::fs::read(Self::record_path(records, dir))
            .ok()
            .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
            .filter(|r| r.dir == dir)
            .map(|r| r.files)
            .unwrap_or_default()
    }

    /// Writes back the records this build changed (temp file + rename each); a no-op for an
    /// in-memory cache and for a build that changed nothing.
    pub fn save(&self) -> Result<()> {
        let Some(records) = &self.dir else {
            return Ok(());
        };
        let mut shards = self.shards.lock().map_err(|_| CopyError::HashCache {
            path: records.clone(),
            reason: "lock poisoned".into(),
        })?;
        for (dir, shard) in shards.iter_mut().filter(|(_, s)| s.dirty) {
            let path = Self::record_path(records, dir);
            let record = Record {
                dir: dir.clone(),
                files: std::mem::take(&mut shard.files),
            };
            let bytes = serde_json::to_vec(&record);
            shard.files = record.files;
            let bytes = bytes.map_err(|e| CopyError::HashCache {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let parent = path.parent().unwrap_or(records);
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
            let mut tmp = tempfile::Builder::new()
                .prefix(".tmp-")
                .tempfile_in(parent)
                .map_err(io_err(parent))?;
            tmp.write_all(&bytes)
                .map_err(io_err(tmp.path().to_path_buf()))?;
            tmp.persist(&path)
                .map_err(|e| io_err(path.clone())(e.error))?;
            shard.dirty = false;
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// How many files had to be read (cache misses) since this cache was opened.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// How many records [`HashCache::save`] wrote since this cache was opened.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    pub(super) fn count_read(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }

    /// Runs `f` on the shard of `dir`, loading its record on first use.
    fn with_shard<R>(&self, dir: &str, f: impl FnOnce(&mut Shard) -> R) -> Option<R> {
        let mut shards = self.shards.lock().ok()?;
        if !shards.contains_key(dir) {
            let files = self
                .dir
                .as_deref()
                .map(|r| Self::load(r, dir))
                .unwrap_or_default();
            shards.insert(
                dir.to_string(),
                Shard {
                    files,
                    dirty: false,
                },
            );
        }
        shards.get_mut(dir).map(f)
    }

    pub(super) fn lookup(&self, key: &str, m: &Meta) -> Option<String> {
        let (dir, name) = split(key);
        let stamp = Stamp::of(m);
        self.with_shard(dir, |s| {
            s.files
                .get(name)
                .filter(|c| c.stamp == stamp)
                .map(|c| c.sha256.clone())
        })
        .flatten()
    }

    pub(super) fn remember(&self, key: String, m: &Meta, sha256: String) {
        let (dir, name) = split(&key);
        let cached = Cached {
            stamp: Stamp::of(m),
            sha256,
        };
        self.with_shard(dir, |s| {
            if s.files.get(name) != Some(&cached) {
                s.files.insert(name.to_string(), cached);
                s.dirty = true;
            }
        });
    }

    /// Checks every record under `dir` (the directory given to [`HashCache::open`]): returns
    /// those that do not parse or sit under the wrong name, removing them with `repair`.
    /// Temp files (`.tmp-*`, a running save's or a killed one's) are not records.
    pub fn fsck(dir: &Path, repair: bool) -> Vec<PathBuf> {
        let records = dir.join(RECORDS);
        let mut bad = Vec::new();
        for shard in walk_records(&records) {
            let good = std::fs::read(&shard)
                .ok()
                .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
                .is_some_and(|r| Self::record_path(&records, &r.dir) == shard);
            if !good {
                if repair {
                    let _ = std::fs::remove_file(&shard);
                }
                bad.push(shard);
            }
        }
        bad
    }
}

/// Every file two levels under `records`.
fn walk_records(records: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in std::fs::read_dir(records).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(sub.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if !f.file_name().to_string_lossy().starts_with(".tmp-") {
                out.push(f.path());
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(size: u64, mtime: i64) -> Meta {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        let d = std::fs::File::open(dir.path()).unwrap();
        let mut m = super::super::fsops::lstat_at(std::os::fd::AsFd::as_fd(&d), "f").unwrap();
        m.size = size;
        m.mtime = mtime;
        m
    }

    fn mtimes(dir: &Path) -> Vec<(PathBuf, std::time::SystemTime)> {
        walk_records(&dir.join(RECORDS))
            .into_iter()
            .map(|p| {
                let t = std::fs::metadata(&p).unwrap().modified().unwrap();
                (p, t)
            })
            .collect()
    }

    #[test]
    fn a_build_that_changes_nothing_writes_nothing() {
        let t = tempfile::tempdir().unwrap();
        let m = meta(1, 100);
        let c = HashCache::open(t.path()).unwrap();
        c.remember("/ctx/a/f1".into(), &m, "h1".into());
        c.remember("/ctx/b/f2".into(), &m, "h2".into());
        c.save().unwrap();
        assert_eq!(c.writes(), 2, "one record per directory");
        let before = mtimes(t.path());
        assert_eq!(before.len(), 2);

        // A warm build: same lookups, same remembers, nothing new.
        let c = HashCache::open(t.path()).unwrap();
        assert_eq!(c.lookup("/ctx/a/f1", &m).as_deref(), Some("h1"));
        c.remember("/ctx/a/f1".into(), &m, "h1".into());
        c.save().unwrap();
        assert_eq!(c.writes(), 0);
        assert_eq!(mtimes(t.path()), before);

        // A changed file rewrites its own directory's record only.
        let c = HashCache::open(t.path()).unwrap();
        let m2 = meta(2, 200);
        assert_eq!(
            c.lookup("/ctx/b/f2", &m2),
            None,
            "a changed stamp is a miss"
        );
        c.remember("/ctx/b/f2".into(), &m2, "h3".into());
        c.save().unwrap();
        assert_eq!(c.writes(), 1);
        let after = mtimes(t.path());
        let a_rec = HashCache::record_path(&t.path().join(RECORDS), "/ctx/a");
        let find = |v: &Vec<(PathBuf, _)>| v.iter().find(|(p, _)| *p == a_rec).unwrap().1;
        assert_eq!(find(&after), find(&before));
        let c = HashCache::open(t.path()).unwrap();
        assert_eq!(c.lookup("/ctx/b/f2", &m2).as_deref(), Some("h3"));
    }

    #[test]
    fn a_torn_record_is_a_miss_and_fsck_drops_it() {
        let t = tempfile::tempdir().unwrap();
        let m = meta(1, 100);
        let c = HashCache::open(t.path()).unwrap();
        c.remember("/ctx/a/f1".into(), &m, "h1".into());
        c.remember("/ctx/b/f2".into(), &m, "h2".into());
        c.save().unwrap();
        let rec = HashCache::record_path(&t.path().join(RECORDS), "/ctx/a");
        let full = std::fs::read(&rec).unwrap();
        std::fs::write(&rec, &full[..full.len() / 2]).unwrap();

        let c = HashCache::open(t.path()).unwrap();
        assert_eq!(c.lookup("/ctx/a/f1", &m), None);
        assert_eq!(c.lookup("/ctx/b/f2", &m).as_deref(), Some("h2"));

        assert_eq!(HashCache::fsck(t.path(), false), vec![rec.clone()]);
        assert!(rec.exists(), "fsck without repair changes nothing");
        assert_eq!(HashCache::fsck(t.path(), true), vec![rec.clone()]);
        assert!(!rec.exists());
        assert!(HashCache::fsck(t.path(), false).is_empty());
        // A killed save's temp file is not a record.
        std::fs::write(rec.with_file_name(".tmp-x"), b"{").unwrap();
        assert!(HashCache::fsck(t.path(), false).is_empty());
    }

    #[test]
    fn the_v1_file_is_dropped_on_open() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join(LEGACY_FILE), b"{}").unwrap();
        HashCache::open(t.path()).unwrap();
        assert!(!t.path().join(LEGACY_FILE).exists());
    }
}

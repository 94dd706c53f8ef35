//! `content_key`: a digest of exactly what a COPY/ADD reads and what reaches its layer
//! (destination path, type, mode and owner as they will land, symlink target, content hash),
//! after `.dockerignore`/`--exclude`, so a change to an ignored or unrelated file never
//! changes it. File hashes come from [`HashCache`] (`hash_cache.rs`) when a file's stat is
//! unchanged, so a warm build reads no unchanged file.

use super::chmod::Chmod;
use super::fsops::{self, Kind, Meta};
use super::hash_cache::HashCache;
use super::select::{self, DirRole, Sink, SrcEntry};
use super::{CopyError, CopyRequest, CopySource, Result, io_err};
use crate::fsroot;
use crate::oci::Digest;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const KEY_VERSION: &str = "hoist-copy-key-v1";
fn sha256_reader(r: &mut dyn Read) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// One line of the key; a file's content hash may still be under way on a worker.
enum Line {
    Ready(String),
    Hash {
        before: String,
        after: String,
        slot: usize,
    },
}

/// A file to hash off the walking thread.
struct Job {
    slot: usize,
    file: std::fs::File,
    path: PathBuf,
    /// Where to remember the result (stable sources only).
    remember: Option<(String, Meta)>,
}

type Results = Mutex<HashMap<usize, Result<String>>>;

/// Hashes file contents on a few threads while the walk goes on: a cold COPY of a big
/// context is bound by SHA-256 (600 MiB is ~0.7 s on one core). Started on the first file
/// that is not in the [`HashCache`], so a warm build starts no thread.
struct Pool<'scope, 'env> {
    scope: &'scope std::thread::Scope<'scope, 'env>,
    tx: Option<std::sync::mpsc::SyncSender<Job>>,
    results: &'env Results,
    cache: &'env HashCache,
    next: usize,
}

impl<'scope, 'env> Pool<'scope, 'env> {
    fn submit(&mut self, job: impl FnOnce(usize) -> Job) -> usize {
        let slot = self.next;
        self.next += 1;
        let job = job(slot);
        if self.tx.is_none() {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(64);
            let rx = std::sync::Arc::new(Mutex::new(rx));
            let n = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
            for _ in 0..n {
                let rx = rx.clone();
                let (results, cache) = (self.results, self.cache);
                self.scope.spawn(move || {
                    loop {
                        let job = match rx.lock().map(|r| r.recv()) {
                            Ok(Ok(j)) => j,
                            _ => return,
                        };
                        let Job {
                            slot,
                            mut file,
                            path,
                            remember,
                        } = job;
                        cache.count_read();
                        let h = sha256_reader(&mut file).map_err(io_err(&path));
                        if let (Ok(h), Some((key, meta))) = (&h, remember) {
                            cache.remember(key, &meta, h.clone());
                        }
                        if let Ok(mut r) = results.lock() {
                            r.insert(slot, h);
                        }
                    }
                });
            }
            self.tx = Some(tx);
        }
        if let Some(tx) = &self.tx {
            // Workers end only when the channel closes; a job that cannot be sent leaves its
            // slot empty, which `content_key` reports as a lost hash.
            let _ = tx.send(job);
        }
        slot
    }
}

struct Hasher<'a, 'scope, 'env> {
    lines: Vec<Line>,
    pool: Pool<'scope, 'env>,
    cache: &'a HashCache,
    root: Option<PathBuf>,
    stable: bool,
    keep_owner: bool,
    chown: Option<(u32, u32)>,
    chmod: Option<Chmod>,
}

impl Hasher<'_, '_, '_> {
    fn line(&mut self, s: String) {
        self.lines.push(Line::Ready(s));
    }

    /// A line `before HASH after`, the file's hash filled in later.
    fn file_line(&mut self, before: String, e: &SrcEntry, after: String) -> Result<()> {
        let line = match self.file_hash(e)? {
            Ok(h) => Line::Ready(format!("{before}{h}{after}")),
            Err(slot) => Line::Hash {
                before,
                after,
                slot,
            },
        };
        self.lines.push(line);
        Ok(())
    }

    fn owner(&self, m: &Meta) -> (u32, u32) {
        self.chown.unwrap_or(if self.keep_owner {
            (m.uid, m.gid)
        } else {
            (0, 0)
        })
    }

    fn mode(&self, m: &Meta) -> u32 {
        self.chmod
            .as_ref()
            .map(|c| c.apply(m.perm, m.kind == Kind::Dir))
            .unwrap_or(m.perm)
    }

    /// The file's content hash when the cache knows it, else the slot of the job hashing
    /// it. The file is opened here, while the walk holds its directory.
    fn file_hash(&mut self, e: &SrcEntry) -> Result<std::result::Result<String, usize>> {
        let path = self
            .root
            .as_ref()
            .map(|r| r.join(e.rel))
            .unwrap_or_else(|| PathBuf::from(e.rel));
        let key = path.to_string_lossy().into_owned();
        if self.stable
            && let Some(h) = self.cache.lookup(&key, &e.meta)
        {
            return Ok(Ok(h));
        }
        let fd = fsops::open_read_at(e.dir, e.name).map_err(io_err(&path))?;
        let file = std::fs::File::from(fd);
        let remember = self.stable.then_some((key, e.meta));
        Ok(Err(self.pool.submit(|slot| Job {
            slot,
            file,
            path,
            remember,
        })))
    }
}

impl Sink for Hasher<'_, '_, '_> {
    fn set_keep_owner(&mut self, keep: bool) {
        self.keep_owner = keep;
    }
    fn set_root(&mut self, root: &Path, stable: bool) {
        self.root = Some(root.to_path_buf());
        self.stable = stable;
    }
    fn canon(&mut self, dest: &str) -> Result<Vec<String>> {
        let c = crate::parser::dockerignore::go_clean(&format!("/{dest}"));
        Ok(fsroot::split(&c))
    }
    fn is_dir(&mut self, _dest: &[String]) -> Result<bool> {
        Ok(false)
    }
    fn mkdir_all(&mut self, _dest: &[String]) -> Result<()> {
        Ok(())
    }
    fn dir_begin(&mut self, m: &Meta, _rel: &str, dest: &[String], role: DirRole) -> Result<bool> {
        let top = role == DirRole::Top;
        let (u, g) = self.owner(m);
        self.line(format!(
            "d /{} {:o} {u}:{g} {top}",
            dest.join("/"),
            self.mode(m)
        ));
        Ok(false)
    }
    fn dir_end(&mut self, _m: &Meta, _rel: &str, _dest: &[String], _apply: bool) -> Result<()> {
        Ok(())
    }
    fn leaf(&mut self, e: &SrcEntry, dest: &[String]) -> Result<()> {
        let m = &e.meta;
        let (u, g) = self.owner(m);
        let d = dest.join("/");
        let mode = self.mode(m);
        let line = match m.kind {
            Kind::File => {
                return self.file_line(format!("f /{d} {mode:o} {u}:{g} "), e, String::new());
            }
            Kind::Symlink => {
                let t = fsops::readlink_at(e.dir, e.name).map_err(io_err(e.rel))?;
                format!("l /{d} {u}:{g} {t}")
            }
            k => format!("{} /{d} {mode:o} {u}:{g} {}", k.letter(), m.rdev),
        };
        self.line(line);
        Ok(())
    }
    fn archive(&mut self, e: &SrcEntry, dest: &[String]) -> Result<()> {
        let o = self
            .chown
            .map(|(u, g)| format!("{u}:{g}"))
            .unwrap_or_default();
        self.file_line(format!("a /{} ", dest.join("/")), e, format!(" {o}"))
    }
    fn heredoc(&mut self, _name: &str, content: &str, dest: &[String]) -> Result<()> {
        let h = hex::encode(Sha256::digest(content.as_bytes()));
        let m = self
            .chmod
            .as_ref()
            .map(|c| c.apply(0o644, false))
            .unwrap_or(0o644);
        let (u, g) = self.chown.unwrap_or((0, 0));
        self.line(format!("h /{} {m:o} {u}:{g} {h}", dest.join("/")));
        Ok(())
    }
    fn url(&mut self, url: &str, dest: &[String]) -> Result<bool> {
        if super::add::is_http_url(url) {
            return Ok(false); // download and hash what the step will write
        }
        let commit = super::add::git_ls_remote(url)?;
        self.line(format!("g /{} {url} {commit}", dest.join("/")));
        Ok(true)
    }
    fn downloaded(&mut self, url: &str, sha256: &str, dest: &[String]) -> Result<()> {
        self.line(format!("u /{} {url} sha256:{sha256}", dest.join("/")));
        Ok(())
    }
}

/// The content key of a COPY/ADD: changes exactly when what the step would write changes
/// (file contents, the paths, modes and owners they land with, symlink targets), and never
/// for ignored, excluded or unrelated files. mtimes are not part of it (as in BuildKit).
pub fn content_key(src: &CopySource, req: &CopyRequest, cache: &HashCache) -> Result<Digest> {
    content_key_lines(src, req, cache).map(|(d, _)| d)
}

/// [`content_key`] with the lines it hashed, one per file after a header line; a cache miss
/// names the changed files from them (see [`split_line`]). Returning them costs nothing: the
/// key is made of them anyway.
pub fn content_key_lines(
    src: &CopySource,
    req: &CopyRequest,
    cache: &HashCache,
) -> Result<(Digest, Vec<String>)> {
    let chmod = match &req.chmod {
        Some(s) => Some(Chmod::parse(s).ok_or_else(|| CopyError::BadChmod { spec: s.clone() })?),
        None => None,
    };
    let results: Results = Mutex::new(HashMap::new());
    let lines = std::thread::scope(|scope| -> Result<Vec<Line>> {
        let mut h = Hasher {
            lines: Vec::new(),
            pool: Pool {
                scope,
                tx: None,
                results: &results,
                cache,
                next: 0,
            },
            cache,
            root: None,
            stable: false,
            keep_owner: false,
            chown: req.chown,
            chmod,
        };
        h.line(format!(
            "{KEY_VERSION} add={} parents={} unpack={:?} keepgit={} dest={}",
            req.add, req.parents, req.unpack, req.keep_git_dir, req.dest
        ));
        let walked = select::run(src, req, &mut h);
        // Closing the channel ends the workers; the scope joins them before returning.
        h.pool.tx = None;
        walked.map(|()| h.lines)
    })?;
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut key = Sha256::new();
    let mut texts = Vec::with_capacity(lines.len());
    for line in lines {
        let text = match line {
            Line::Ready(t) => t,
            Line::Hash {
                before,
                after,
                slot,
            } => {
                let h = results.remove(&slot).ok_or_else(|| CopyError::HashCache {
                    path: PathBuf::new(),
                    reason: "a content hash was lost".into(),
                })??;
                format!("{before}{h}{after}")
            }
        };
        key.update(text.as_bytes());
        key.update(b"\n");
        texts.push(text);
    }
    let hex = hex::encode(key.finalize());
    let digest = Digest::from_hex(&hex).map_err(|e| CopyError::HashCache {
        path: PathBuf::new(),
        reason: e.to_string(),
    })?;
    Ok((digest, texts))
}

/// One file line of [`content_key_lines`] as `(destination path, mode, the rest)`; the header
/// line gives None. Symlink and git lines have no mode (empty). Paths may hold spaces, so the
/// fixed fields are taken from the right (a symlink's target from the first ` uid:gid `).
pub fn split_line(line: &str) -> Option<(&str, &str, &str)> {
    let (kind, body) = line.split_once(' ')?;
    if kind.len() != 1 || !body.starts_with('/') {
        return None;
    }
    match kind {
        // `l /path u:g target`
        "l" => {
            let at = body
                .char_indices()
                .filter(|(_, c)| *c == ' ')
                .find(|(i, _)| {
                    let word = body[i + 1..].split(' ').next().unwrap_or("");
                    word.split_once(':').is_some_and(|(u, g)| {
                        !u.is_empty()
                            && !g.is_empty()
                            && u.bytes().all(|b| b.is_ascii_digit())
                            && g.bytes().all(|b| b.is_ascii_digit())
                    })
                });
            let (i, _) = at?;
            Some((&body[..i], "", &body[i + 1..]))
        }
        // `a /path HASH owner`, `g /path URL COMMIT` and `u /path URL sha256:HEX`
        "a" | "g" | "u" => {
            let mut it = body.rsplitn(3, ' ');
            it.next()?;
            it.next()?;
            let path = it.next()?;
            Some((path, "", &body[path.len() + 1..]))
        }
        // `f /path MODE u:g HASH`, `d /path MODE u:g TOP`, `h …`, devices `c /path MODE u:g RDEV`
        _ => {
            let mut it = body.rsplitn(4, ' ');
            it.next()?;
            it.next()?;
            let mode = it.next()?;
            let path = it.next()?;
            let rest_start = path.len() + 1 + mode.len() + 1;
            Some((path, mode, &body[rest_start..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_line;

    #[test]
    fn split_line_takes_fixed_fields_from_the_right() {
        assert_eq!(
            split_line("f /app/my file.txt 644 0:0 abc"),
            Some(("/app/my file.txt", "644", "0:0 abc"))
        );
        assert_eq!(
            split_line("d /app 755 0:0 true"),
            Some(("/app", "755", "0:0 true"))
        );
        assert_eq!(
            split_line("l /app/link 0:0 ../target dir"),
            Some(("/app/link", "", "0:0 ../target dir"))
        );
        assert_eq!(
            split_line("a /app/x.tar sha256:1 1:2"),
            Some(("/app/x.tar", "", "sha256:1 1:2"))
        );
        assert_eq!(split_line("v1 add=false parents=false"), None);
    }
}

//! Source selection: which files a COPY/ADD reads and where each lands, as BuildKit decides
//! it (named sources followed in-root, Go wildcards per path, a directory's contents,
//! `--parents` with `/./` pivots and `**`, `.dockerignore`, `--exclude`), reported to a
//! [`Sink`] that writes them ([`super::write::Writer`]) or hashes them ([`super::key`]).

use super::fsops::{self, Kind, Meta};
use super::sent::SentPaths;
use super::{CopyError, CopyRequest, CopySource, Result, add, io_err};
use crate::fsroot::Root;
use crate::parser::dockerignore::{Matcher, go_clean, go_match};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A source entry handed to a sink.
pub(crate) struct SrcEntry<'a> {
    /// The directory holding it.
    pub dir: BorrowedFd<'a>,
    /// Its name in `dir`.
    pub name: &'a str,
    pub meta: Meta,
    /// Its path relative to the source root.
    pub rel: &'a str,
}

/// How a directory reaches the destination; it decides the directory's metadata, as in
/// BuildKit's copier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DirRole {
    /// The source directory itself, whose contents land in the destination: a destination
    /// the COPY creates is made like its other created directories (0755 or an octal
    /// `--chmod`, the `--chown` owner), never with the source directory's mode.
    Top,
    /// A directory inside the source that the filters select: the source's metadata.
    Child,
    /// A directory made only because something below it is copied (`--parents`, a path an
    /// include pattern reaches): a new one takes the source's metadata; one that exists
    /// already (an earlier source of the same COPY, the image) only gets the source's mode
    /// bits, without `--chmod`, as BuildKit's per-source copies leave it.
    Parent,
}

/// What selection reports to.
pub(crate) trait Sink {
    /// Whether entries keep their owner (rootfs sources) or land as 0:0.
    fn set_keep_owner(&mut self, keep: bool);
    /// The root the next entries come from; `stable` when it outlives the step (so content
    /// hashes may be cached by path).
    fn set_root(&mut self, _root: &Path, _stable: bool) {}
    /// Canonical components of an absolute destination (symlinks of the image followed).
    fn canon(&mut self, dest: &str) -> Result<Vec<String>>;
    /// True when `dest` exists as a directory.
    fn is_dir(&mut self, dest: &[String]) -> Result<bool>;
    /// Creates missing parent directories (BuildKit's MkdirAll: 0755, `--chown` owner).
    fn mkdir_all(&mut self, dest: &[String]) -> Result<()>;
    /// A source directory starts at `dest`; returns whether its metadata is to be applied
    /// at [`Sink::dir_end`].
    fn dir_begin(&mut self, meta: &Meta, rel: &str, dest: &[String], role: DirRole)
    -> Result<bool>;
    /// Where a directory that is copied below `dest` really lands: an image symlink to a
    /// directory at that path (merged-usr `lib -> usr/lib`) is followed in-root.
    fn redirect(&mut self, dest: Vec<String>) -> Result<Vec<String>> {
        Ok(dest)
    }
    /// A source directory ends.
    fn dir_end(&mut self, meta: &Meta, rel: &str, dest: &[String], apply: bool) -> Result<()>;
    /// A file, symlink or special file.
    fn leaf(&mut self, e: &SrcEntry, dest: &[String]) -> Result<()>;
    /// A local archive ADD unpacks into directory `dest` (the sink creates it).
    fn archive(&mut self, e: &SrcEntry, dest: &[String]) -> Result<()>;
    /// A heredoc source.
    fn heredoc(&mut self, name: &str, content: &str, dest: &[String]) -> Result<()>;
    /// A URL source (for keys: the sink may hash the URL rather than download it).
    /// Returns false when the sink wants the downloaded file walked like a local one.
    fn url(&mut self, _url: &str, _dest: &[String]) -> Result<bool> {
        Ok(false)
    }
    /// A URL source was downloaded: its content's sha256 (hex), for keys and provenance.
    fn downloaded(&mut self, _url: &str, _sha256: &str, _dest: &[String]) -> Result<()> {
        Ok(())
    }
}

struct Pending {
    meta: Meta,
    rel: String,
    dest: Vec<String>,
    role: DirRole,
    begun: Option<bool>,
}

/// Paths of one entry as the three filters see them.
#[derive(Clone, Default)]
struct Rels {
    /// relative to the source root, canonical (.dockerignore)
    ign: String,
    /// relative to the source root, as written (--parents include pattern)
    inc: String,
    /// relative to the copied source (--exclude)
    ex: String,
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}/{b}")
    }
}

impl Rels {
    fn child(&self, name: &str) -> Rels {
        Rels {
            ign: join(&self.ign, name),
            inc: join(&self.inc, name),
            ex: join(&self.ex, name),
        }
    }
}

struct Walker<'a> {
    root: Root,
    root_path: PathBuf,
    ignore: Option<&'a Matcher>,
    exclude: Option<&'a Matcher>,
    include: Option<Matcher>,
    /// Components of the include pattern when it has no `**` (deeper dirs cannot match).
    include_depth: Option<usize>,
    /// The context paths BuildKit would have (None: the whole root is there).
    sent: Option<&'a SentPaths>,
}

impl Walker<'_> {
    /// True when BuildKit's context transfer would have sent directory `rel` (open as
    /// `dir`): a source names it, or something not ignored below it.
    fn sent_below(&self, dir: &OwnedFd, rel: &str) -> Result<bool> {
        let Some(sent) = self.sent else {
            return Ok(true);
        };
        // The context root always reaches the daemon.
        if rel.is_empty() || sent.is_everything() || sent.names(rel) {
            return Ok(true);
        }
        let here = self.root_path.join(rel);
        for name in fsops::list_dir(dir).map_err(io_err(&here))? {
            let meta = fsops::lstat_at(dir.as_fd(), &name).map_err(io_err(here.join(&name)))?;
            let r = join(rel, &name);
            if self.ignored(&r, meta.kind) {
                continue;
            }
            if sent.names(&r) {
                return Ok(true);
            }
            if meta.kind == Kind::Dir {
                let sub =
                    fsops::open_read_at(dir.as_fd(), &name).map_err(io_err(here.join(&name)))?;
                if self.sent_below(&sub, &r)? {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    fn ignored(&self, rel: &str, kind: Kind) -> bool {
        match self.ignore {
            Some(m) if m.is_excluded(rel) => kind != Kind::Dir || m.can_prune_dir(rel),
            _ => false,
        }
    }

    fn flush<S: Sink>(sink: &mut S, pending: &mut [Pending]) -> Result<()> {
        for p in pending.iter_mut().filter(|p| p.begun.is_none()) {
            p.begun = Some(sink.dir_begin(&p.meta, &p.rel, &p.dest, p.role)?);
        }
        Ok(())
    }

    /// Walks directory `dir` (opened for reading) into `dest`; returns the leaves written.
    fn tree<S: Sink>(
        &self,
        sink: &mut S,
        dir: &OwnedFd,
        rels: &Rels,
        dest: &[String],
        pending: &mut Vec<Pending>,
    ) -> Result<usize> {
        let here = self.root_path.join(&rels.ign);
        let names = fsops::list_dir(dir).map_err(io_err(&here))?;
        let mut n = 0;
        for name in names {
            let meta = fsops::lstat_at(dir.as_fd(), &name).map_err(io_err(here.join(&name)))?;
            let r = rels.child(&name);
            let ignored = self.ignore.is_some_and(|m| m.is_excluded(&r.ign));
            let excluded = self.exclude.is_some_and(|m| m.is_excluded(&r.ex));
            let not_included = self
                .include
                .as_ref()
                .is_some_and(|m| !m.is_excluded(&r.inc));
            let mut child_dest = dest.to_vec();
            child_dest.push(name.clone());
            if meta.kind == Kind::Dir {
                let prune_ign = ignored && self.ignore.is_some_and(|m| m.can_prune_dir(&r.ign));
                let prune_ex = excluded && self.exclude.is_some_and(|m| m.can_prune_dir(&r.ex));
                if prune_ign || prune_ex {
                    continue;
                }
                if not_included
                    && self
                        .include_depth
                        .is_some_and(|d| r.inc.split('/').count() >= d)
                {
                    continue; // no deeper path can match an include pattern without `**`
                }
                let redirected = sink.redirect(child_dest.clone())?;
                let child_dest = if redirected != child_dest {
                    sink.mkdir_all(&redirected[..redirected.len().saturating_sub(1)])?;
                    redirected
                } else {
                    child_dest
                };
                let sub =
                    fsops::open_read_at(dir.as_fd(), &name).map_err(io_err(here.join(&name)))?;
                let selected = !(ignored || excluded || not_included);
                pending.push(Pending {
                    meta,
                    rel: r.ign.clone(),
                    dest: child_dest.clone(),
                    role: if selected {
                        DirRole::Child
                    } else {
                        DirRole::Parent
                    },
                    begun: None,
                });
                if selected {
                    Self::flush(sink, pending)?;
                }
                n += self.tree(sink, &sub, &r, &child_dest, pending)?;
                if let Some(p) = pending.pop()
                    && let Some(apply) = p.begun
                {
                    sink.dir_end(&p.meta, &p.rel, &p.dest, apply)?;
                }
            } else {
                if ignored || excluded || not_included {
                    continue;
                }
                Self::flush(sink, pending)?;
                let e = SrcEntry {
                    dir: dir.as_fd(),
                    name: &name,
                    meta,
                    rel: &r.ign,
                };
                sink.leaf(&e, &child_dest)?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// Go's containsWildcards on one component (`\` escapes the next byte).
fn has_wildcard(comp: &str) -> bool {
    let b = comp.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

fn not_found(src: &str, root: &Path) -> CopyError {
    CopyError::NotFound {
        name: src.trim_start_matches('/').to_string(),
        root: root.to_path_buf(),
    }
}

/// Runs selection for `req` over `src`, reporting to `sink`.
pub(crate) fn run<S: Sink>(src: &CopySource, req: &CopyRequest, sink: &mut S) -> Result<()> {
    let (root_path, ignore, keep_owner) = match src {
        CopySource::Context { root, ignore } => (*root, Some(*ignore), false),
        CopySource::Rootfs(root) => (*root, None, true),
    };
    let sources: Vec<String> = if req.sources.is_empty() {
        req.heredocs.iter().map(|(n, _)| n.clone()).collect()
    } else {
        req.sources.clone()
    };
    if sources.is_empty() {
        return Err(CopyError::NoSources);
    }
    // Several sources and a destination without a trailing `/`: the reference asks for a
    // directory, but BuildKit copies each source to the destination in turn (the last file
    // wins), so hoist does the same.
    let dest_dir = req.dest.ends_with('/');
    let exclude = if req.exclude.is_empty() {
        None
    } else {
        Some(Matcher::from_patterns(&req.exclude)?)
    };
    let dest_path = if req.dest.starts_with('/') {
        req.dest.clone()
    } else {
        format!("/{}", req.dest)
    };
    let dest = sink.canon(&dest_path)?;
    for s in &sources {
        if let Some((name, content)) = req.heredocs.iter().find(|(n, _)| n == s) {
            sink.set_keep_owner(false);
            let mut d = dest.clone();
            if dest_dir || sink.is_dir(&dest)? {
                d.push(name.clone());
            }
            sink.mkdir_all(&d[..d.len().saturating_sub(1)])?;
            sink.heredoc(name, content, &d)?;
            continue;
        }
        if req.add && add::is_git_url(s) {
            sink.set_keep_owner(false);
            let (tmp, sub) = add::git_fetch(s, req.keep_git_dir, req.checksum.as_deref())?;
            sink.set_root(tmp.path(), false);
            let w = Walker {
                root: Root::open(tmp.path()).map_err(io_err(tmp.path()))?,
                root_path: tmp.path().to_path_buf(),
                ignore: None,
                exclude: exclude.as_ref(),
                include: None,
                include_depth: None,
                sent: None,
            };
            copy_top(&w, sink, req, &sub, &dest, dest_dir, None)?;
            continue;
        }
        if req.add && add::is_http_url(s) {
            sink.set_keep_owner(false);
            let name = add::url_file_name(s);
            let mut d = dest.clone();
            if dest_dir || sink.is_dir(&dest)? {
                d.push(name.clone());
            }
            if sink.url(s, &d)? {
                continue;
            }
            let (tmp, sha256) = add::download(s, &name, req.checksum.as_deref())?;
            sink.downloaded(s, &sha256, &d)?;
            sink.set_root(tmp.path(), false);
            let w = Walker {
                root: Root::open(tmp.path()).map_err(io_err(tmp.path()))?,
                root_path: tmp.path().to_path_buf(),
                ignore: None,
                exclude: None,
                include: None,
                include_depth: None,
                sent: None,
            };
            let unpack = req.unpack == Some(true);
            let f = w
                .root
                .resolve(&name, false)
                .map_err(io_err(tmp.path().join(&name)))?;
            let meta = f.meta.ok_or_else(|| not_found(&name, tmp.path()))?;
            let e = SrcEntry {
                dir: f.dir.as_fd(),
                name: &name,
                meta,
                rel: &name,
            };
            if unpack && add::is_archive(&f).map_err(io_err(tmp.path().join(&name)))? {
                sink.mkdir_all(&dest)?;
                sink.archive(&e, &dest)?;
            } else {
                sink.mkdir_all(&d[..d.len().saturating_sub(1)])?;
                sink.leaf(&e, &d)?;
            }
            continue;
        }
        sink.set_keep_owner(keep_owner);
        // Only context files are cached by stat: a rootfs view's inode numbers and device
        // may repeat across mounts.
        sink.set_root(root_path, !keep_owner);
        let w = Walker {
            root: Root::open(root_path).map_err(io_err(root_path))?,
            root_path: root_path.to_path_buf(),
            ignore,
            exclude: exclude.as_ref(),
            include: None,
            include_depth: None,
            sent: if keep_owner {
                None
            } else {
                req.sent.as_deref()
            },
        };
        local(w, sink, req, s, &dest, dest_dir)?;
    }
    Ok(())
}

/// Splits a `--parents` source at its `/./` pivot: (pivot comps, full cleaned rel path).
fn split_pivot(s: &str) -> (usize, String) {
    let s = s.strip_prefix("./").unwrap_or(s);
    if let Some(i) = s.find("/./") {
        let pivot = go_clean(&format!("/{}", &s[..i]));
        let pivot = pivot.trim_start_matches('/').to_string();
        let full = go_clean(&format!("/{}/{}", pivot, &s[i + 3..]));
        let n = if pivot.is_empty() {
            0
        } else {
            pivot.split('/').count()
        };
        (n, full.trim_start_matches('/').to_string())
    } else {
        (
            0,
            go_clean(&format!("/{s}"))
                .trim_start_matches('/')
                .to_string(),
        )
    }
}

fn local<S: Sink>(
    mut w: Walker,
    sink: &mut S,
    req: &CopyRequest,
    s: &str,
    dest: &[String],
    dest_dir: bool,
) -> Result<()> {
    let (pivot, full) = if req.parents {
        split_pivot(s)
    } else {
        (
            0,
            go_clean(&format!("/{s}"))
                .trim_start_matches('/')
                .to_string(),
        )
    };
    let comps: Vec<&str> = if full.is_empty() {
        Vec::new()
    } else {
        full.split('/').collect()
    };
    let first_wild = comps.iter().position(|c| has_wildcard(c));
    let Some(fw) = first_wild else {
        return copy_top(
            &w,
            sink,
            req,
            &full,
            dest,
            dest_dir,
            req.parents.then_some(pivot),
        );
    };
    let base = comps[..fw].join("/");
    let pattern = comps[fw..].join("/");
    let no_match = || CopyError::NoMatch {
        pattern: s.to_string(),
        root: w.root_path.clone(),
    };
    let base_found = match w.root.resolve(&base, true) {
        Ok(f) if f.meta.is_some_and(|m| m.kind == Kind::Dir) => Some(f),
        _ => None,
    };
    if req.parents {
        // BuildKit copies from the pivot with the source as an include pattern: a wildcard
        // that reaches nothing copies nothing, and the destination is still made.
        let Some(base_found) = base_found else {
            let pivot_rel = comps[..pivot.min(comps.len())].join("/");
            return match w.root.resolve(&pivot_rel, true) {
                Ok(f) if f.meta.is_some_and(|m| m.kind == Kind::Dir) => sink.mkdir_all(dest),
                _ => Err(no_match()),
            };
        };
        // Walk from the literal base with the whole source as an include pattern.
        w.include = Some(Matcher::from_patterns([full.as_str()])?);
        w.include_depth = (!full.contains("**")).then_some(comps.len());
        sink.mkdir_all(dest)?;
        let mut pending = Vec::new();
        for i in pivot..fw {
            let p = comps[..=i].join("/");
            let f = w
                .root
                .resolve(&p, true)
                .map_err(io_err(w.root_path.join(&p)))?;
            let meta = f.meta.ok_or_else(|| not_found(&p, &w.root_path))?;
            let mut d = dest.to_vec();
            d.extend(comps[pivot..=i].iter().map(|c| c.to_string()));
            pending.push(Pending {
                meta,
                rel: f.comps.join("/"),
                dest: d,
                role: DirRole::Parent,
                begun: None,
            });
        }
        let mut base_dest = dest.to_vec();
        base_dest.extend(comps[pivot.min(fw)..fw].iter().map(|c| c.to_string()));
        let rd = base_found
            .open_read()
            .map_err(io_err(w.root_path.join(&base)))?;
        // With --parents, BuildKit copies from the pivot: --exclude patterns match paths
        // relative to it (`dir/g0.sh`, not `g0.sh`).
        let rels = Rels {
            ign: base_found.comps.join("/"),
            inc: base.clone(),
            ex: comps[pivot.min(fw)..fw].join("/"),
        };
        w.tree(sink, &rd, &rels, &base_dest, &mut pending)?;
        while let Some(p) = pending.pop() {
            if let Some(apply) = p.begun {
                sink.dir_end(&p.meta, &p.rel, &p.dest, apply)?;
            }
        }
        return Ok(());
    }
    let Some(base_found) = base_found else {
        return Err(no_match());
    };
    let mut matches = Vec::new();
    let rd = base_found
        .open_read()
        .map_err(io_err(w.root_path.join(&base)))?;
    let depth = pattern.split('/').count();
    wildcard_walk(
        &w,
        &rd,
        &base_found.comps.join("/"),
        &base,
        "",
        &pattern,
        depth,
        &mut matches,
    )?;
    if matches.is_empty() {
        // BuildKit allows a wildcard to match nothing, as long as its directory reached the
        // daemon with the context (see `super::sent`).
        let base_canon = base_found.comps.join("/");
        let dir = base_found
            .open_read()
            .map_err(io_err(w.root_path.join(&base)))?;
        if w.sent_below(&dir, &base_canon)? {
            return Ok(());
        }
        return Err(no_match());
    }
    for m in matches {
        copy_top(&w, sink, req, &m, dest, dest_dir, None)?;
    }
    Ok(())
}

/// BuildKit's resolveWildcards: a lexical walk below the base matching `pattern` against the
/// path relative to it; a matched directory is not descended.
#[allow(clippy::too_many_arguments)]
fn wildcard_walk(
    w: &Walker,
    dir: &OwnedFd,
    ign_rel: &str,
    lit_rel: &str,
    rel: &str,
    pattern: &str,
    depth: usize,
    out: &mut Vec<String>,
) -> Result<()> {
    let here = w.root_path.join(ign_rel);
    for name in fsops::list_dir(dir).map_err(io_err(&here))? {
        let meta = fsops::lstat_at(dir.as_fd(), &name).map_err(io_err(here.join(&name)))?;
        let ign = join(ign_rel, &name);
        if w.ignored(&ign, meta.kind) {
            continue;
        }
        let r = join(rel, &name);
        if go_match(pattern, &r).unwrap_or(false) {
            // --exclude is not applied to what the wildcard matched: BuildKit matches it
            // below each match (`--exclude=*.md dir/*.md` still copies `dir/a.md`).
            out.push(join(lit_rel, &r));
            continue;
        }
        if meta.kind == Kind::Dir && r.split('/').count() < depth {
            let sub = fsops::open_read_at(dir.as_fd(), &name).map_err(io_err(here.join(&name)))?;
            wildcard_walk(w, &sub, &ign, lit_rel, &r, pattern, depth, out)?;
        }
    }
    Ok(())
}

/// Copies one named (or wildcard-matched) source `rel`, following it in-root.
/// `parents`: Some(pivot comps) for `--parents`.
fn copy_top<S: Sink>(
    w: &Walker,
    sink: &mut S,
    req: &CopyRequest,
    rel: &str,
    dest: &[String],
    dest_dir: bool,
    parents: Option<usize>,
) -> Result<()> {
    // See `CopyRequest::unchecked_parents`: the pivot is copied with nothing matched.
    let missing = |sink: &mut S| match parents {
        Some(_) if req.unchecked_parents => sink.mkdir_all(dest),
        _ => Err(not_found(rel, &w.root_path)),
    };
    let found = match w.root.resolve(rel, true) {
        Ok(f) => f,
        Err(e)
            if e.raw_os_error() == Some(libc::ENOENT)
                || e.raw_os_error() == Some(libc::ENOTDIR)
                || e.raw_os_error() == Some(libc::ELOOP) =>
        {
            return missing(sink);
        }
        Err(e) => return Err(io_err(w.root_path.join(rel))(e)),
    };
    let Some(meta) = found.meta else {
        return missing(sink);
    };
    let canon_rel = found.comps.join("/");
    if w.ignored(rel, meta.kind) || w.ignored(&canon_rel, meta.kind) {
        return Err(not_found(rel, &w.root_path));
    }
    let comps: Vec<&str> = if rel.is_empty() {
        Vec::new()
    } else {
        rel.split('/').collect()
    };
    let base_name = comps.last().map(|s| s.to_string()).unwrap_or_default();
    let mut target = dest.to_vec();
    let mut pending = Vec::new();
    if let Some(pivot) = parents {
        sink.mkdir_all(dest)?;
        for i in pivot..comps.len().saturating_sub(1) {
            let p = comps[..=i].join("/");
            let f = w
                .root
                .resolve(&p, true)
                .map_err(io_err(w.root_path.join(&p)))?;
            let m = f.meta.ok_or_else(|| not_found(&p, &w.root_path))?;
            let mut d = dest.to_vec();
            d.extend(comps[pivot..=i].iter().map(|c| c.to_string()));
            pending.push(Pending {
                meta: m,
                rel: f.comps.join("/"),
                dest: d,
                role: DirRole::Parent,
                begun: None,
            });
        }
        target.extend(
            comps[pivot.min(comps.len())..]
                .iter()
                .map(|c| c.to_string()),
        );
    } else if meta.kind != Kind::Dir && !base_name.is_empty() && (dest_dir || sink.is_dir(dest)?) {
        target.push(base_name.clone());
    }
    // An archive ADD unpacks into `dest`, which the sink makes itself (ignoring `--chmod`).
    let unpack = req.add
        && req.unpack != Some(false)
        && meta.kind == Kind::File
        && add::is_archive(&found).map_err(io_err(w.root_path.join(rel)))?;
    // The parents --parents reproduces first, so they are made as source directories, not
    // as plain destination parents.
    Walker::flush(sink, &mut pending)?;
    if !target.is_empty() && !unpack {
        sink.mkdir_all(&target[..target.len() - 1])?;
    }
    let name = found.name.clone().unwrap_or_else(|| ".".into());
    if meta.kind == Kind::Dir {
        let role = if parents.is_none() {
            DirRole::Top
        } else {
            DirRole::Child
        };
        let begun = sink.dir_begin(&meta, &canon_rel, &target, role)?;
        let rd = found.open_read().map_err(io_err(w.root_path.join(rel)))?;
        // --exclude matches below the copied source, or below the pivot with --parents.
        let rels = Rels {
            ign: canon_rel.clone(),
            inc: rel.to_string(),
            ex: parents.map_or_else(String::new, |p| comps[p.min(comps.len())..].join("/")),
        };
        w.tree(sink, &rd, &rels, &target, &mut Vec::new())?;
        sink.dir_end(&meta, &canon_rel, &target, begun)?;
    } else {
        let e = SrcEntry {
            dir: found.dir.as_fd(),
            name: &name,
            meta,
            rel: &canon_rel,
        };
        if unpack {
            sink.archive(&e, dest)?;
        } else {
            sink.leaf(&e, &target)?;
        }
    }
    while let Some(p) = pending.pop() {
        if let Some(apply) = p.begun {
            sink.dir_end(&p.meta, &p.rel, &p.dest, apply)?;
        }
    }
    Ok(())
}

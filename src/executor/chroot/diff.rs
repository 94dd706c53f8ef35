//! A run's changes by comparing trees: the merged tree before the run against the run's rootfs
//! after it, written as an overlay upper dir (the format `layers::write_layer` reads), so the
//! layer code is the same for every backend.
//!
//! - an entry only after, or of another type: copied into the upper (a whole new subtree);
//! - an entry only before: a whiteout (character device 0/0; `mknod` needs `CAP_MKNOD`, which
//!   Docker's default set has; where the filesystem refuses it, an empty `.wh.NAME` file);
//! - a non-dir in both: recorded when its type, mode, owner, size, modification time, link
//!   target, device number or xattrs differ, or, for a regular file whose inode changed
//!   (ctime) since the copy was made, when its bytes differ: a rewrite that keeps size and
//!   mtime (`dpkg`, `touch -r`) is still seen;
//! - a dir in both: recorded when its mode, owner or xattrs differ, and as the parent of any
//!   recorded entry (overlayfs copies parents up the same way). Its mtime alone does not count:
//!   adding and removing the mount stubs changes it, and a real change inside shows anyway.
//!
//! Where overlayfs would make a re-created dir opaque, this writes whiteouts for the old
//! entries instead: the extracted result is the same.

use super::tree::{Links, apply_meta, make_entry, set_times, xattrs};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::Metadata;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// A time as (seconds, nanoseconds), ordered.
pub(super) type Stamp = (i64, i64);

/// The ctime of `p`: the run's start mark for [`diff`].
pub(super) fn ctime_of(p: &Path) -> io::Result<Stamp> {
    let m = std::fs::symlink_metadata(p)?;
    Ok((m.ctime(), m.ctime_nsec()))
}

/// Writes into the empty dir `upper` what differs between `before` and `after`. `since`: a
/// ctime taken once `after` was fully copied (files changed later have a ctime not before it).
pub(super) fn diff(before: &Path, after: &Path, upper: &Path, since: Stamp) -> io::Result<()> {
    let mut d = Differ {
        before,
        after,
        upper,
        since,
        links: Links::new(),
        dirs: Vec::new(),
    };
    d.dir(Path::new(""))?;
    for (p, m) in d.dirs.iter().rev() {
        set_times(p, m)?;
    }
    Ok(())
}

struct Differ<'a> {
    before: &'a Path,
    after: &'a Path,
    upper: &'a Path,
    since: Stamp,
    links: Links,
    /// Dirs made in the upper with their metadata, for their times at the end.
    dirs: Vec<(PathBuf, Metadata)>,
}

fn names(p: &Path) -> io::Result<BTreeSet<OsString>> {
    match std::fs::read_dir(p) {
        Ok(rd) => rd.map(|e| e.map(|e| e.file_name())).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(e) => Err(e),
    }
}

impl Differ<'_> {
    fn dir(&mut self, rel: &Path) -> io::Result<()> {
        let after = names(&self.after.join(rel))?;
        let before = names(&self.before.join(rel))?;
        for gone in before.difference(&after) {
            self.ensure_dir(rel)?;
            whiteout(&self.upper.join(rel).join(gone))?;
        }
        for n in &after {
            let r = rel.join(n);
            let ma = std::fs::symlink_metadata(self.after.join(&r))?;
            match std::fs::symlink_metadata(self.before.join(&r)) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => self.add(&r, &ma)?,
                Err(e) => return Err(e),
                Ok(mb) if ma.is_dir() && mb.is_dir() => {
                    if owner_mode_differ(&ma, &mb)
                        || xattrs(&self.after.join(&r))? != xattrs(&self.before.join(&r))?
                    {
                        self.ensure_dir(&r)?;
                    }
                    self.dir(&r)?;
                }
                Ok(mb) => {
                    if self.changed(&r, &ma, &mb)? {
                        self.add(&r, &ma)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Makes `rel` and its missing ancestors in the upper, with the after tree's metadata.
    fn ensure_dir(&mut self, rel: &Path) -> io::Result<()> {
        let mut cur = PathBuf::new();
        for c in rel.components() {
            cur.push(c);
            let u = self.upper.join(&cur);
            if std::fs::symlink_metadata(&u).is_ok() {
                continue;
            }
            let src = self.after.join(&cur);
            let m = std::fs::symlink_metadata(&src)?;
            std::fs::create_dir(&u)?;
            apply_meta(&u, &m, &src)?;
            self.dirs.push((u, m));
        }
        Ok(())
    }

    /// Copies `rel` (a whole subtree for a dir) from the after tree into the upper.
    fn add(&mut self, rel: &Path, m: &Metadata) -> io::Result<()> {
        if let Some(p) = rel.parent() {
            self.ensure_dir(p)?;
        }
        if m.is_dir() {
            self.ensure_dir(rel)?;
            for n in names(&self.after.join(rel))? {
                let r = rel.join(n);
                let cm = std::fs::symlink_metadata(self.after.join(&r))?;
                self.add(&r, &cm)?;
            }
            Ok(())
        } else {
            make_entry(
                &self.after.join(rel),
                &self.upper.join(rel),
                m,
                &mut self.links,
                false,
            )
        }
    }

    /// Whether the non-dir (in one of the trees) `rel` changed.
    fn changed(&self, rel: &Path, a: &Metadata, b: &Metadata) -> io::Result<bool> {
        let (pa, pb) = (self.after.join(rel), self.before.join(rel));
        if a.file_type() != b.file_type() || owner_mode_differ(a, b) {
            return Ok(true);
        }
        let ft = a.file_type();
        if ft.is_symlink() {
            // Only what a layer records of a link: its target (and owner, above). The swapped
            // /dev, /proc, /sys links come back as new inodes with the same target.
            return Ok(std::fs::read_link(&pa)? != std::fs::read_link(&pb)?);
        }
        if (ft.is_char_device() || ft.is_block_device()) && a.rdev() != b.rdev() {
            return Ok(true);
        }
        if a.size() != b.size()
            || (a.mtime(), a.mtime_nsec()) != (b.mtime(), b.mtime_nsec())
            || xattrs(&pa)? != xattrs(&pb)?
        {
            return Ok(true);
        }
        if ft.is_file() && (a.ctime(), a.ctime_nsec()) >= self.since {
            return Ok(!same_bytes(&pa, &pb)?);
        }
        Ok(false)
    }
}

fn owner_mode_differ(a: &Metadata, b: &Metadata) -> bool {
    a.mode() != b.mode() || a.uid() != b.uid() || a.gid() != b.gid()
}

fn same_bytes(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (std::fs::File::open(a)?, std::fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// An overlay whiteout at `p`: a character device 0/0, or, where the kernel refuses one
/// (overlayfs, the usual rootfs of a container, refuses to make whiteouts through mknod; so
/// does a device cgroup without Docker's `c *:* m`), an empty file `.wh.NAME` of mode 0 owned
/// by root, which the layer writer puts in the tar as the same OCI whiteout entry.
fn whiteout(p: &Path) -> io::Result<()> {
    let r = rustix::fs::mknodat(
        rustix::fs::CWD,
        p,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::empty(),
        0,
    );
    match r {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::PERM | rustix::io::Errno::INVAL | rustix::io::Errno::NOTSUP) => {
            let mut name = std::ffi::OsString::from(".wh.");
            name.push(p.file_name().unwrap_or_default());
            let marker = p.with_file_name(name);
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o000)
                .open(&marker)
                .and_then(|_| std::os::unix::fs::lchown(&marker, Some(0), Some(0)))
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "making the whiteout {} of a deleted file: {e}",
                            marker.display()
                        ),
                    )
                })
        }
        Err(e) => Err(io::Error::new(
            io::Error::from(e).kind(),
            format!("making a whiteout (character device 0/0) for a deleted file: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_new_changed_and_deleted_entries_only() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let (b, a, u) = (t.path().join("b"), t.path().join("a"), t.path().join("u"));
        std::fs::create_dir_all(b.join("etc/deep")).unwrap();
        std::fs::write(b.join("etc/deep/same"), "s").unwrap();
        std::fs::write(b.join("etc/old"), "o").unwrap();
        std::fs::write(b.join("etc/rewritten"), "aaaa").unwrap();
        std::fs::write(b.join("keep"), "k").unwrap();
        std::fs::create_dir(&u).unwrap();
        let mut links = Links::new();
        super::super::tree::copy_tree(&b, &a, &mut links).unwrap();
        let since = ctime_of(&a).unwrap();
        std::fs::remove_file(a.join("etc/old")).unwrap();
        std::fs::write(a.join("etc/deep/new"), "n").unwrap();
        // Same size and mtime, other bytes.
        let m = std::fs::metadata(a.join("etc/rewritten")).unwrap();
        std::fs::write(a.join("etc/rewritten"), "bbbb").unwrap();
        set_times(&a.join("etc/rewritten"), &m).unwrap();
        diff(&b, &a, &u, since).unwrap();
        let wo = std::fs::symlink_metadata(u.join("etc/old")).unwrap();
        assert!(wo.file_type().is_char_device() && wo.rdev() == 0);
        assert_eq!(
            std::fs::read_to_string(u.join("etc/deep/new")).unwrap(),
            "n"
        );
        assert_eq!(
            std::fs::read_to_string(u.join("etc/rewritten")).unwrap(),
            "bbbb"
        );
        assert!(!u.join("etc/deep/same").exists() && !u.join("keep").exists());
    }
}

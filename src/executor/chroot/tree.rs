//! Trees without mount(2): a merged read-only tree of layer snapshots (overlay semantics
//! applied by hand: whiteouts remove, opaque dirs hide what lies below), and full copies that
//! keep owners, modes, xattrs, times, device nodes and hard-link groups.
//!
//! The merged tree hard-links the snapshots' files (cheap, and exact: same inode, same
//! metadata) and only makes its directories; a run's writable rootfs is a real copy of it
//! (`std::fs::copy`, which the kernel turns into a reflink where the filesystem can), so
//! nothing a RUN writes reaches a snapshot.

use std::collections::HashMap;
use std::fs::Metadata;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Hard-link groups met while copying: source (dev, ino) → first copy.
pub(super) type Links = HashMap<(u64, u64), PathBuf>;

/// An overlay whiteout: a character device 0/0.
pub(super) fn is_whiteout(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

/// Overlay's own xattrs (opaque markers and the like) never travel into a tree.
fn is_overlay_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

/// Whether a snapshot dir is marked opaque (either marker).
pub(super) fn is_opaque(p: &Path) -> bool {
    let mut buf = [0u8; 8];
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|n| matches!(rustix::fs::lgetxattr(p, *n, &mut buf), Ok(1) if buf[0] == b'y'))
}

/// The xattrs of `p` (not following a symlink), overlay's own left out, sorted by name.
pub(super) fn xattrs(p: &Path) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    // Most files have none or a few: a small buffer first, the kernel's 64 KiB bound if not.
    let mut small = [0u8; 1024];
    let mut big = Vec::new();
    let list: &[u8] = match rustix::fs::llistxattr(p, &mut small[..]) {
        Ok(0) | Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
        Ok(n) => &small[..n],
        Err(rustix::io::Errno::RANGE) => {
            big.resize(65536, 0);
            let n = rustix::fs::llistxattr(p, &mut big[..])?;
            &big[..n]
        }
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    let mut value = vec![0u8; 65536];
    for name in list.split(|b| *b == 0).filter(|s| !s.is_empty()) {
        if is_overlay_xattr(name) {
            continue;
        }
        let cname = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name);
        match rustix::fs::lgetxattr(p, cname, &mut value[..]) {
            Ok(len) => out.push((name.to_vec(), value[..len].to_vec())),
            Err(rustix::io::Errno::NODATA) => {}
            Err(e) => return Err(e.into()),
        }
    }
    out.sort();
    Ok(out)
}

/// Gives `dst` the owner, mode and xattrs of `src` (`m` its metadata); times separately
/// ([`set_times`]), once nothing more is created in a dir.
pub(super) fn apply_meta(dst: &Path, m: &Metadata, src: &Path) -> io::Result<()> {
    // Owner first: chown clears setuid/setgid bits and file capabilities.
    std::os::unix::fs::lchown(dst, Some(m.uid()), Some(m.gid()))?;
    if !m.file_type().is_symlink() {
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
    }
    for (k, v) in xattrs(src)? {
        let name = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&k);
        rustix::fs::lsetxattr(dst, name, &v, rustix::fs::XattrFlags::empty())?;
    }
    Ok(())
}

/// Sets `dst`'s access and modification times to `m`'s (not following a symlink).
pub(super) fn set_times(dst: &Path, m: &Metadata) -> io::Result<()> {
    let ts = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: m.atime(),
            tv_nsec: m.atime_nsec() as _,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: m.mtime(),
            tv_nsec: m.mtime_nsec() as _,
        },
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        dst,
        &ts,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

/// Removes whatever `p` is (a dir with its contents); missing is fine.
pub(super) fn remove_any(p: &Path) -> io::Result<()> {
    let r = match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) => Err(e),
    };
    match r {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes every entry of the dir `p`, keeping `p`.
pub(super) fn clear_dir(p: &Path) -> io::Result<()> {
    for e in std::fs::read_dir(p)? {
        remove_any(&e?.path())?;
    }
    Ok(())
}

/// Makes the non-directory `dst` like `src` (`m` its metadata). `link_source`: hard-link the
/// source itself when the filesystem allows (the merged tree); otherwise copy, keeping the
/// hard-link groups of the source in `links`.
pub(super) fn make_entry(
    src: &Path,
    dst: &Path,
    m: &Metadata,
    links: &mut Links,
    link_source: bool,
) -> io::Result<()> {
    if link_source && std::fs::hard_link(src, dst).is_ok() {
        return Ok(());
    }
    if m.nlink() > 1 {
        let key = (m.dev(), m.ino());
        if let Some(first) = links.get(&key) {
            return std::fs::hard_link(first, dst);
        }
        links.insert(key, dst.to_path_buf());
    }
    let ft = m.file_type();
    if ft.is_file() {
        std::fs::copy(src, dst)?;
    } else if ft.is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(src)?, dst)?;
    } else {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dst,
            rustix::fs::FileType::from_raw_mode(m.mode()),
            rustix::fs::Mode::from_raw_mode(m.mode() & 0o7777),
            m.rdev(),
        )?;
    }
    apply_meta(dst, m, src)?;
    set_times(dst, m)
}

/// Copies the tree `src` to `dst` (which must not exist), keeping everything a layer records.
pub(super) fn copy_tree(src: &Path, dst: &Path, links: &mut Links) -> io::Result<()> {
    // `src/.`: a source given as a link to a dir (a pinned object's `/proc/self/fd/N`) is
    // that dir, never a symlink to copy; nothing below it is followed.
    let src = &src.join(".");
    let mut dirs = Vec::new();
    for e in walkdir::WalkDir::new(src).follow_links(false) {
        let e = e.map_err(io::Error::from)?;
        let rel = e.path().strip_prefix(src).map_err(io::Error::other)?;
        let d = if rel.as_os_str().is_empty() {
            dst.to_path_buf()
        } else {
            dst.join(rel)
        };
        let m = std::fs::symlink_metadata(e.path())?;
        if m.is_dir() {
            std::fs::create_dir(&d)?;
            apply_meta(&d, &m, e.path())?;
            dirs.push((d, m));
        } else {
            make_entry(e.path(), &d, &m, links, false)?;
        }
    }
    for (d, m) in dirs.iter().rev() {
        set_times(d, m)?;
    }
    Ok(())
}

/// Builds at `dst` (which must not exist) the merged tree of the snapshots `lowers`, bottom
/// first, as overlayfs would show it: a whiteout removes what lies below, an opaque dir hides
/// the lower dir's entries, an upper entry replaces a lower one.
pub(super) fn merge(lowers: &[PathBuf], dst: &Path) -> io::Result<()> {
    std::fs::create_dir(dst)?;
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(0o755))?;
    let mut links = Links::new();
    // The topmost metadata of each dir, for its times once every layer is in.
    let mut dirs: HashMap<PathBuf, Metadata> = HashMap::new();
    for lower in lowers {
        for e in walkdir::WalkDir::new(lower).follow_links(false) {
            let e = e.map_err(io::Error::from)?;
            let rel = e
                .path()
                .strip_prefix(lower)
                .map_err(io::Error::other)?
                .to_path_buf();
            let m = std::fs::symlink_metadata(e.path())?;
            // Intermediate components of `d` are always dirs this walk made (pre-order: a
            // lower's dir replaces a non-dir before its children arrive).
            let d = dst.join(&rel);
            if is_whiteout(&m) {
                remove_any(&d)?;
                continue;
            }
            let existing = std::fs::symlink_metadata(&d).ok();
            if m.is_dir() {
                match existing {
                    Some(x) if x.is_dir() => {
                        if !rel.as_os_str().is_empty() && is_opaque(e.path()) {
                            clear_dir(&d)?;
                        }
                    }
                    Some(_) => {
                        remove_any(&d)?;
                        std::fs::create_dir(&d)?;
                    }
                    None => std::fs::create_dir(&d)?,
                }
                apply_meta(&d, &m, e.path())?;
                dirs.insert(rel, m);
            } else {
                if existing.is_some() {
                    remove_any(&d)?;
                }
                make_entry(e.path(), &d, &m, &mut links, true)?;
            }
        }
    }
    for (rel, m) in &dirs {
        let d = dst.join(rel);
        if std::fs::symlink_metadata(&d).is_ok_and(|x| x.is_dir()) {
            set_times(&d, m)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whiteout(p: &Path) {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            p,
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            0,
        )
        .unwrap();
    }

    #[test]
    fn merge_applies_whiteouts_opaque_dirs_and_replacements() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let (l1, l2, out) = (t.path().join("l1"), t.path().join("l2"), t.path().join("m"));
        std::fs::create_dir_all(l1.join("a/sub")).unwrap();
        std::fs::create_dir_all(l1.join("o")).unwrap();
        std::fs::write(l1.join("a/keep"), "k").unwrap();
        std::fs::write(l1.join("a/gone"), "g").unwrap();
        std::fs::write(l1.join("a/sub/x"), "x").unwrap();
        std::fs::write(l1.join("o/hidden"), "h").unwrap();
        std::fs::write(l1.join("f"), "old").unwrap();
        std::fs::create_dir_all(l2.join("a")).unwrap();
        std::fs::create_dir_all(l2.join("o")).unwrap();
        whiteout(&l2.join("a/gone"));
        whiteout(&l2.join("a/sub"));
        rustix::fs::setxattr(
            l2.join("o"),
            "trusted.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        std::fs::write(l2.join("o/new"), "n").unwrap();
        std::fs::write(l2.join("f"), "new").unwrap();
        merge(&[l1, l2], &out).unwrap();
        assert_eq!(std::fs::read_to_string(out.join("a/keep")).unwrap(), "k");
        assert!(!out.join("a/gone").exists() && !out.join("a/sub").exists());
        assert!(!out.join("o/hidden").exists() && out.join("o/new").exists());
        assert!(!is_opaque(&out.join("o")), "no overlay xattr in the tree");
        assert_eq!(std::fs::read_to_string(out.join("f")).unwrap(), "new");
    }
}

//! `--squash`: several layer snapshots (overlay upper-dir format: whiteouts as 0/0 devices or
//! marker files, opaque dirs by xattr) merged into one snapshot dir that, written by
//! [`write_layer`](super::write_layer) on top of the same base, gives the same filesystem as
//! the layers one after the other.
//!
//! Files are hard-linked from the snapshots (no data is copied; a snapshot is never written
//! to: only new directories in the merge dir get metadata set). The rules, layer by layer:
//! - an entry replaces whatever the merge holds at its path (a dir replacing a non-dir, or a
//!   path an earlier layer whited out, becomes opaque: the base's dir must stay hidden);
//! - a whiteout removes the merge's subtree at its path, and is kept only when the base holds
//!   that path (a whiteout with nothing below it would show in overlayfs as a device node in
//!   a dir no lower layer shares, and is noise in the tar);
//! - an opaque dir empties the merge's dir at its path and stays opaque;
//! - a dir's metadata (mode, owner, xattrs, mtime) is the last layer's that had it.

use super::write::{is_opaque, is_whiteout_marker, xattrs};
use super::{LayersError, Result};
use std::collections::BTreeMap;
use std::fs::{self, Metadata};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Merges the snapshot dirs `layers` (lowest first) into the empty dir `dst`, to go on top of
/// the snapshots `base` (lowest first).
pub fn squash(dst: &Path, layers: &[PathBuf], base: &[PathBuf]) -> Result<()> {
    // The last source of each merged dir, for its mtime once nothing writes into it any more.
    let mut dir_times: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
    for layer in layers {
        merge_dir(layer, dst, Path::new(""), base, &mut dir_times)?;
    }
    for (rel, src) in dir_times.iter().rev() {
        let m = meta(src)?;
        set_mtime(&dst.join(rel), &m)?;
    }
    Ok(())
}

fn merge_dir(
    src_root: &Path,
    dst_root: &Path,
    rel: &Path,
    base: &[PathBuf],
    dir_times: &mut BTreeMap<PathBuf, PathBuf>,
) -> Result<()> {
    let src_dir = src_root.join(rel);
    let mut names: Vec<_> = fs::read_dir(&src_dir)
        .map_err(io(&src_dir))?
        .map(|e| e.map(|e| e.file_name()).map_err(io(&src_dir)))
        .collect::<Result<_>>()?;
    names.sort();
    for name in names {
        let here = rel.join(&name);
        let (s, d) = (src_root.join(&here), dst_root.join(&here));
        let m = meta(&s)?;
        if is_whiteout(&s, &m) {
            // A marker `.wh.X` or a 0/0 device `X`: either way it deletes X.
            let target = marker_target(&name).unwrap_or(&name);
            clear(dst_root, rel, target, dir_times)?;
            if in_base(base, &rel.join(target)) {
                link(&s, &d)?;
            }
            continue;
        }
        // What the merge holds at this name: an entry, a whiteout (of either form), or nothing.
        let existing = fs::symlink_metadata(&d).ok();
        let was_whited_out = existing.as_ref().is_some_and(|e| is_whiteout(&d, e))
            || fs::symlink_metadata(marker_path(&dst_root.join(rel), &name)).is_ok();
        if m.is_dir() {
            let opaque = is_opaque(&s)?;
            let merge_into = existing.as_ref().is_some_and(|e| e.is_dir()) && !opaque;
            if !merge_into {
                clear(dst_root, rel, &name, dir_times)?;
                make_dir(&d)?;
                // Replaced, not merged: the base's dir at this path, if any, stays hidden.
                if opaque || existing.is_some() || was_whited_out {
                    set_opaque(&d)?;
                }
            }
            copy_dir_meta(&s, &d, &m)?;
            dir_times.insert(here.clone(), s.clone());
            merge_dir(src_root, dst_root, &here, base, dir_times)?;
        } else {
            clear(dst_root, rel, &name, dir_times)?;
            link(&s, &d)?;
        }
    }
    Ok(())
}

/// True when `rel` exists in the filesystem the snapshots `base` (lowest first) make: the
/// topmost layer that says anything about it (an entry, a whiteout of it or of a parent, a
/// non-dir parent, an opaque parent) decides.
fn in_base(base: &[PathBuf], rel: &Path) -> bool {
    let parts: Vec<_> = rel.components().collect();
    for layer in base.iter().rev() {
        let mut here = layer.clone();
        let mut stop_below = false;
        for (i, c) in parts.iter().enumerate() {
            let name = c.as_os_str();
            if fs::symlink_metadata(marker_path(&here, name)).is_ok() {
                return false;
            }
            here.push(name);
            let Ok(m) = fs::symlink_metadata(&here) else {
                break;
            };
            if is_whiteout(&here, &m) {
                return false;
            }
            if i + 1 == parts.len() {
                return true;
            }
            if !m.is_dir() {
                return false;
            }
            if is_opaque(&here).unwrap_or(false) {
                stop_below = true;
            }
        }
        if stop_below {
            return false;
        }
    }
    false
}

/// `X` for a marker name `.wh.X` (not the opaque marker).
fn marker_target(name: &std::ffi::OsStr) -> Option<&std::ffi::OsStr> {
    use std::os::unix::ffi::OsStrExt;
    let b = name.as_bytes();
    (b.starts_with(b".wh.") && b != b".wh..wh..opq" && b.len() > 4)
        .then(|| std::ffi::OsStr::from_bytes(&b[4..]))
}

fn marker_path(dir: &Path, name: &std::ffi::OsStr) -> PathBuf {
    let mut m = std::ffi::OsString::from(".wh.");
    m.push(name);
    dir.join(m)
}

/// Removes `name` from the merge dir `root/rel`: the entry (a subtree, a file, a 0/0
/// whiteout) and a whiteout marker for it, and forgets the mtimes of dirs that went with it.
fn clear(
    root: &Path,
    rel: &Path,
    name: &std::ffi::OsStr,
    dir_times: &mut BTreeMap<PathBuf, PathBuf>,
) -> Result<()> {
    let dir = root.join(rel);
    let gone = rel.join(name);
    if fs::symlink_metadata(dir.join(name)).is_ok_and(|m| m.is_dir()) {
        dir_times.retain(|k, _| !k.starts_with(&gone));
    }
    for p in [dir.join(name), marker_path(&dir, name)] {
        if fs::symlink_metadata(&p).is_ok() {
            remove(&p)?;
        }
    }
    Ok(())
}

fn is_whiteout(path: &Path, m: &Metadata) -> bool {
    (m.file_type().is_char_device() && m.rdev() == 0) || is_whiteout_marker(path)
}

fn meta(p: &Path) -> Result<Metadata> {
    fs::symlink_metadata(p).map_err(io(p))
}

fn io(p: &Path) -> impl Fn(std::io::Error) -> LayersError + '_ {
    move |source| LayersError::Io {
        path: p.to_path_buf(),
        source,
    }
}

fn remove(p: &Path) -> Result<()> {
    let r = if fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()) {
        fs::remove_dir_all(p)
    } else {
        fs::remove_file(p)
    };
    r.map_err(io(p))
}

/// A hard link to the snapshot's node itself (`linkat` without following a symlink).
fn link(src: &Path, dst: &Path) -> Result<()> {
    fs::hard_link(src, dst).map_err(io(dst))
}

fn make_dir(d: &Path) -> Result<()> {
    fs::create_dir(d).map_err(io(d))
}

fn set_opaque(d: &Path) -> Result<()> {
    rustix::fs::lsetxattr(
        d,
        crate::userns::opaque_xattr(),
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .map_err(|e| io(d)(e.into()))
}

fn copy_dir_meta(src: &Path, d: &Path, m: &Metadata) -> Result<()> {
    crate::userns::chown_result(rustix::fs::chownat(
        rustix::fs::CWD,
        d,
        Some(rustix::fs::Uid::from_raw(m.uid())),
        Some(rustix::fs::Gid::from_raw(m.gid())),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    ))
    .map_err(|e| io(d)(e.into()))?;
    fs::set_permissions(d, fs::Permissions::from_mode(m.mode() & 0o7777)).map_err(io(d))?;
    for (name, value) in xattrs(src)? {
        let name = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&name);
        rustix::fs::lsetxattr(d, name, &value, rustix::fs::XattrFlags::empty())
            .map_err(|e| io(d)(e.into()))?;
    }
    Ok(())
}

fn set_mtime(d: &Path, m: &Metadata) -> Result<()> {
    let t = rustix::fs::Timestamps {
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
        d,
        &t,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| io(d)(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(p: &Path, text: &str) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    /// A whiteout as a marker file (what works without CAP_MKNOD, and what the writer reads).
    fn whiteout(dir: &Path, name: &str) {
        let p = dir.join(format!(".wh.{name}"));
        fs::create_dir_all(dir).unwrap();
        fs::write(&p, "").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o0)).unwrap();
    }

    fn listing(root: &Path) -> Vec<String> {
        let mut out: Vec<String> = walkdir::WalkDir::new(root)
            .min_depth(1)
            .into_iter()
            .map(|e| {
                let e = e.unwrap();
                let rel = e.path().strip_prefix(root).unwrap().display().to_string();
                let kind = if e.file_type().is_dir() {
                    let o = if is_opaque(e.path()).unwrap() {
                        " opaque"
                    } else {
                        ""
                    };
                    format!("dir{o}")
                } else {
                    format!("{:?}", fs::read_to_string(e.path()).unwrap_or_default())
                };
                format!("{rel} {kind}")
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn later_layers_win_whiteouts_remove_and_stay_and_replaced_dirs_turn_opaque() {
        if !rustix::process::geteuid().is_root() {
            return; // whiteout markers must be root's, and opaque needs trusted.* xattrs
        }
        let t = tempfile::tempdir().unwrap();
        let (l1, l2, l3, dst) = (
            t.path().join("l1"),
            t.path().join("l2"),
            t.path().join("l3"),
            t.path().join("dst"),
        );
        file(&l1.join("app/a"), "a1");
        file(&l1.join("app/tmp/big"), "big");
        file(&l1.join("keep"), "k");
        file(&l1.join("gone/x"), "x");
        file(&l2.join("app/a"), "a2");
        whiteout(&l2.join("app"), "tmp");
        whiteout(&l2.join(""), "gone");
        whiteout(&l2.join(""), "basefile");
        file(&l3.join("gone/y"), "y");
        fs::create_dir_all(&dst).unwrap();
        let base = t.path().join("base");
        file(&base.join("basefile"), "b");
        file(&base.join("gone/old"), "o");
        squash(&dst, &[l1, l2, l3], &[base]).unwrap();
        assert_eq!(
            listing(&dst),
            [
                ".wh.basefile \"\"",
                "app dir",
                "app/a \"a2\"",
                "gone dir opaque",
                "gone/y \"y\"",
                "keep \"k\"",
            ]
        );
    }

    #[test]
    fn an_opaque_dir_empties_what_earlier_layers_put_there() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let (l1, l2, dst) = (t.path().join("l1"), t.path().join("l2"), t.path().join("d"));
        file(&l1.join("etc/old"), "o");
        file(&l2.join("etc/new"), "n");
        rustix::fs::lsetxattr(
            l2.join("etc"),
            "trusted.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        fs::create_dir_all(&dst).unwrap();
        squash(&dst, &[l1, l2], &[]).unwrap();
        assert_eq!(listing(&dst), ["etc dir opaque", "etc/new \"n\""]);
    }
}

//! Making the upper dir hold exactly what BuildKit would record after a run. Mount stubs are
//! created by hoist itself (so it knows their inodes) and removed through the merged view
//! after the run when they are still the same, empty entries; a directory that overlayfs only
//! copied up because a stub was created in it is then dropped from the upper again, as long as
//! it is empty, not opaque, did not exist in the upper before, and matches the lower's mode and
//! owner. `/dev`, `/proc`, `/sys` and the working dir stay, as BuildKit leaves them. Any
//! backend whose diff is an upper dir over the lowers calls [`tidy`] after a run.

use super::fsutil::{Created, SwappedLink};
use super::prepare::Undone;
use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Relative paths of every directory in `upper` (small for a fresh upper: it is empty).
pub(crate) fn upper_dirs(upper: &Path) -> BTreeSet<PathBuf> {
    walkdir::WalkDir::new(upper)
        .follow_links(false)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_dir())
        .filter_map(|e| e.path().strip_prefix(upper).ok().map(Path::to_path_buf))
        .filter(|p| !p.as_os_str().is_empty())
        .collect()
}

/// After a run whose rootfs [`Prepared::undo`](super::prepare::Prepared::undo) restored: drops
/// from `upper` what only the stubs and swapped links put there. `before` is [`upper_dirs`] of
/// the upper taken before the run.
pub(crate) fn tidy(upper: &Path, lowers: &[PathBuf], before: &BTreeSet<PathBuf>, undone: &Undone) {
    drop_copied_up_parents(upper, lowers, before, &undone.removed);
    drop_restored_links(upper, lowers, &undone.restored);
}

/// Drops from `upper` the dirs that were copied up only because of the removed `stubs`.
pub(crate) fn drop_copied_up_parents(
    upper: &Path,
    lowers: &[PathBuf],
    before: &BTreeSet<PathBuf>,
    stubs: &[Created],
) {
    let mut cands: BTreeSet<PathBuf> = BTreeSet::new();
    for s in stubs {
        let mut p = Path::new(s.path.trim_start_matches('/')).parent();
        while let Some(a) = p.filter(|a| !a.as_os_str().is_empty()) {
            cands.insert(a.to_path_buf());
            p = a.parent();
        }
    }
    // Deepest first.
    let mut cands: Vec<PathBuf> = cands.into_iter().collect();
    cands.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for rel in cands {
        if before.contains(&rel) {
            continue;
        }
        let up = upper.join(&rel);
        let Ok(um) = std::fs::symlink_metadata(&up) else {
            continue;
        };
        if !um.is_dir()
            || std::fs::read_dir(&up)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true)
        {
            continue;
        }
        if is_opaque(&up) {
            continue;
        }
        let lower = lowers
            .iter()
            .rev()
            .find_map(|l| std::fs::symlink_metadata(l.join(&rel)).ok());
        match lower {
            Some(lm)
                if lm.is_dir()
                    && lm.mode() == um.mode()
                    && lm.uid() == um.uid()
                    && lm.gid() == um.gid() =>
            {
                let _ = std::fs::remove_dir(&up);
            }
            _ => {}
        }
    }
}

/// Drops from `upper` the links [`super::fsutil::restore_symlink`] put back, when the lower
/// layers hold the same link: the layer then records no change for them.
pub(crate) fn drop_restored_links(upper: &Path, lowers: &[PathBuf], links: &[SwappedLink]) {
    for l in links {
        let up = upper.join(&l.name);
        let same = |p: &Path| {
            std::fs::symlink_metadata(p)
                .is_ok_and(|m| m.file_type().is_symlink() && m.uid() == l.uid && m.gid() == l.gid)
                && std::fs::read_link(p).is_ok_and(|t| t.as_os_str() == l.target)
        };
        let lower = lowers
            .iter()
            .rev()
            .map(|d| d.join(&l.name))
            .find(|p| std::fs::symlink_metadata(p).is_ok());
        if same(&up) && lower.is_some_and(|p| same(&p)) {
            let _ = std::fs::remove_file(&up);
        }
    }
}

fn is_opaque(p: &Path) -> bool {
    let mut buf = [0u8; 8];
    matches!(rustix::fs::lgetxattr(p, crate::userns::opaque_xattr(), &mut buf), Ok(n) if n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_only_untouched_copied_up_dirs() {
        let t = tempfile::tempdir().unwrap();
        let lower = t.path().join("lower");
        let upper = t.path().join("upper");
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::create_dir_all(lower.join("var/lib")).unwrap();
        std::fs::create_dir_all(upper.join("var/lib")).unwrap();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("var/lib/keep"), "x").unwrap();
        let before = upper_dirs(&upper);
        std::fs::create_dir_all(upper.join("opt")).unwrap();
        let stub = |p: &str| Created {
            path: p.into(),
            dev: 0,
            ino: 0,
            is_dir: false,
        };
        // /etc existed in the upper before: kept. /var/lib is not empty: kept.
        drop_copied_up_parents(
            &upper,
            std::slice::from_ref(&lower),
            &before,
            &[stub("/etc/hosts"), stub("/var/lib/x")],
        );
        assert!(upper.join("etc").is_dir() && upper.join("var/lib/keep").exists());
        // Now a fresh copy-up of /etc only for the stub: dropped.
        std::fs::remove_dir(upper.join("etc")).unwrap();
        let before = upper_dirs(&upper);
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        drop_copied_up_parents(
            &upper,
            &[lower],
            &before,
            &[stub("/etc/hosts"), stub("/opt/x")],
        );
        assert!(!upper.join("etc").exists());
        // /opt does not exist in the lower: the run created it, kept.
        assert!(upper.join("opt").is_dir());
    }
}

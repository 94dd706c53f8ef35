//! Entering the namespace, in this very process ([`enter`](super::enter)): fork the map
//! helper (when the user has ranges), unshare, have the maps written, and read back which
//! [`Mapping`] they give. The `unsafe` calls of rootless start-up live here and in
//! [`mapper`](super::mapper).

use super::mapper::{Mapper, map_single};
use super::{CURRENT, Mapping, single_id_note, subid};
use std::path::Path;

/// Unshares the user and mount namespaces, has the id maps written and records the mapping.
/// When the kernel refuses, says why and runs without a namespace.
pub(super) fn become_root() -> Option<String> {
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    let name = subid::user_name(uid);
    let ranges = (
        subid::lookup(Path::new("/etc/subuid"), name.as_deref(), uid),
        subid::lookup(Path::new("/etc/subgid"), name.as_deref(), uid),
    );
    let has_range = matches!(ranges, (Some(_), Some(_)));
    let mapper = match ranges {
        (Some(u), Some(g)) => Mapper::fork(uid, gid, u, g),
        _ => None,
    };
    let flags = rustix::thread::UnshareFlags::NEWUSER | rustix::thread::UnshareFlags::NEWNS;
    // SAFETY: called first thing in `main`, single-threaded, without CLONE_FILES: no other
    // thread can observe the fd table or namespaces changing under it.
    #[allow(unsafe_code)]
    let r = unsafe { rustix::thread::unshare_unsafe(flags) };
    let mapped_by_helpers = mapper.is_some_and(|m| m.finish(r.is_ok()));
    if let Err(e) = r {
        return Some(format!(
            "warning: the kernel refused a user namespace ({e}): hoist runs as your user, \
                 and building needs root or user namespaces (sysctl \
                 kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0; a \
                 container needs seccomp and AppArmor profiles that allow unshare)"
        ));
    }
    if !mapped_by_helpers {
        // Without ranges, or when the helpers failed: the user alone, as 0.
        let _ = map_single(uid, gid);
    }
    let uids = mapped("/proc/self/uid_map");
    let gids = mapped("/proc/self/gid_map");
    if uids == 0 || gids == 0 {
        return Some(
            "warning: hoist could not map your ids into its user namespace; it runs without \
             root and building will fail (see the note above)"
                .into(),
        );
    }
    // Mounts made here (overlays, the runtime's) never propagate back to the host.
    let _ = rustix::mount::mount_change(
        "/",
        rustix::mount::MountPropagationFlags::PRIVATE | rustix::mount::MountPropagationFlags::REC,
    );
    let mapping = if uids > 1 && gids > 1 {
        // The host's supplementary groups are unmapped here (they would show as nogroup).
        let _ = rustix::thread::set_thread_groups(&[]);
        Mapping::Ranges { uids, gids }
    } else {
        Mapping::SingleId
    };
    let _ = CURRENT.set(mapping);
    (mapping == Mapping::SingleId).then(|| {
        let reason = if has_range {
            "newuidmap/newgidmap could not map your ranges"
        } else {
            "no range for your user in /etc/subuid and /etc/subgid"
        };
        single_id_note(reason)
    })
}

/// How many ids a `/proc/self/{uid,gid}_map` maps (0 when unreadable or empty).
fn mapped(path: &str) -> u32 {
    std::fs::read_to_string(path)
        .map(|t| count_mapped(&t))
        .unwrap_or(0)
}

/// The number of ids an id-map text maps (the sum of its third column).
fn count_mapped(text: &str) -> u32 {
    text.lines()
        .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u32>().ok())
        .fold(0u32, u32::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::count_mapped;

    #[test]
    fn counts_mapped_ids() {
        assert_eq!(count_mapped(""), 0);
        assert_eq!(count_mapped("         0       1001          1\n"), 1);
        assert_eq!(
            count_mapped("0 1001 1\n1 100000 65536\n"),
            65537,
            "the user plus its range"
        );
        assert_eq!(count_mapped("0 0 4294967295\n"), u32::MAX);
    }
}

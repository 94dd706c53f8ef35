//! The re-executed child's side of [`enter`](super::enter): unshare, wait to be mapped, and
//! read back which [`Mapping`] the parent could write. The one `unsafe` call of rootless
//! start-up lives here.

use super::{CURRENT, Mapping, Start, single_id_note};
use rustix::process::Signal;

/// Unshares the user and mount namespaces, stops until the parent has written the id maps,
/// and records the mapping. When the kernel refuses, says why and runs without a namespace.
pub(super) fn become_root() -> Start {
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::TERM));
    let flags = rustix::thread::UnshareFlags::NEWUSER | rustix::thread::UnshareFlags::NEWNS;
    // SAFETY: called first thing in `main`, single-threaded, without CLONE_FILES: no other
    // thread can observe the fd table or namespaces changing under it.
    #[allow(unsafe_code)]
    let r = unsafe { rustix::thread::unshare_unsafe(flags) };
    if let Err(e) = r {
        return Start::Continue {
            note: Some(format!(
                "warning: the kernel refused a user namespace ({e}): hoist runs as your user, \
                 and building needs root or user namespaces (sysctl \
                 kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0; a \
                 container needs seccomp and AppArmor profiles that allow unshare)"
            )),
        };
    }
    // The parent writes the maps while this process is stopped.
    let _ = rustix::process::kill_process(rustix::process::getpid(), Signal::STOP);
    let uids = mapped("/proc/self/uid_map");
    let gids = mapped("/proc/self/gid_map");
    if uids == 0 || gids == 0 {
        return Start::Continue {
            note: Some(
                "warning: hoist could not map your ids into its user namespace; it runs \
                 without root and building will fail (see the note above)"
                    .into(),
            ),
        };
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
    let note = (mapping == Mapping::SingleId).then(|| {
        let reason = if has_range() {
            "newuidmap/newgidmap could not map your ranges"
        } else {
            "no range for your user in /etc/subuid and /etc/subgid"
        };
        single_id_note(reason)
    });
    Start::Continue { note }
}

/// Whether the parent found ranges (it says so in the child's environment).
fn has_range() -> bool {
    std::env::var_os(super::parent::RANGES_ENV).is_some()
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

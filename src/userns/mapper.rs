//! Writing the id maps of the namespace hoist has just entered. Ranges need the setuid
//! helpers `newuidmap`/`newgidmap`, and those must run outside the namespace, so a helper
//! process forked *before* `unshare` runs them once told to ([`Mapper`]). The single-id map
//! (the user as 0) needs no helper: a process may write it for itself.

use super::{UsernsError, subid};
use std::io::{Read, Write};
use std::process::Command;

/// A forked helper waiting, outside the namespace, to map this process's ids.
pub(super) struct Mapper {
    pid: rustix::process::Pid,
    go: std::os::fd::OwnedFd,
}

impl Mapper {
    /// Forks the helper. Must be called while the process is single-threaded: the child runs
    /// only [`helper`] and `_exit`s (it never returns into hoist's `main`).
    pub(super) fn fork(uid: u32, gid: u32, u: subid::Range, g: subid::Range) -> Option<Mapper> {
        let target = rustix::process::getpid();
        let (rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).ok()?;
        // SAFETY: the caller is single-threaded (first thing in `main`), so the child is a
        // complete copy with no lock held by a vanished thread; the child only reads a pipe,
        // spawns the two helpers and `_exit`s, without unwinding or running destructors.
        #[allow(unsafe_code)]
        let pid = unsafe { libc::fork() };
        match pid {
            0 => {
                drop(wr);
                let code = helper(rd, target, uid, gid, u, g);
                // SAFETY: `_exit` ends the forked copy without running the parent's atexit
                // handlers or flushing its stdio buffers twice.
                #[allow(unsafe_code)]
                unsafe {
                    libc::_exit(code)
                }
            }
            p if p > 0 => Some(Mapper {
                pid: rustix::process::Pid::from_raw(p)?,
                go: wr,
            }),
            _ => None,
        }
    }

    /// Tells the helper to map (`unshared`) or to leave (`!unshared`), and waits for it: true
    /// when both maps were written.
    pub(super) fn finish(self, unshared: bool) -> bool {
        let mut go = std::fs::File::from(self.go);
        if unshared {
            let _ = go.write_all(b"m");
        }
        drop(go);
        matches!(
            rustix::process::waitpid(Some(self.pid), rustix::process::WaitOptions::empty()),
            Ok(Some((_, st))) if st.exit_status() == Some(0)
        )
    }
}

/// The forked helper: wait for the word, then map `target`'s ids; the exit code says whether
/// it worked (a failure is printed here, where its cause is known).
fn helper(
    rd: std::os::fd::OwnedFd,
    target: rustix::process::Pid,
    uid: u32,
    gid: u32,
    u: subid::Range,
    g: subid::Range,
) -> i32 {
    let mut word = [0u8; 1];
    if std::fs::File::from(rd).read_exact(&mut word).is_err() {
        return 2;
    }
    match map_with_helpers(target, uid, gid, u, g) {
        Ok(()) => 0,
        Err(e) => {
            // The single-id note that follows says what this means.
            crate::cli::write_stderr(format_args!("warning: {e}\n"));
            1
        }
    }
}

/// `newuidmap PID 0 UID 1 1 START COUNT` and the same for groups, both at once: each is a
/// setuid exec of a millisecond or two, on every rootless start's path.
fn map_with_helpers(
    pid: rustix::process::Pid,
    uid: u32,
    gid: u32,
    u: subid::Range,
    g: subid::Range,
) -> Result<(), UsernsError> {
    let mut running = Vec::with_capacity(2);
    for (tool, me, r) in [("newuidmap", uid, u), ("newgidmap", gid, g)] {
        let child = Command::new(tool)
            .arg(pid.as_raw_nonzero().to_string())
            .args(["0", &me.to_string(), "1", "1"])
            .args([r.start.to_string(), r.count.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|source| UsernsError::Spawn {
                what: format!("{tool} (Debian's uidmap package)"),
                source,
            });
        running.push((tool, child));
    }
    // Wait for both before reporting, so that no helper outlives this call.
    let mut first_error = None;
    for (tool, child) in running {
        let result = child.and_then(|c| {
            let out = c.wait_with_output().map_err(|source| UsernsError::Spawn {
                what: tool.into(),
                source,
            })?;
            if out.status.success() {
                Ok(())
            } else {
                Err(UsernsError::Spawn {
                    what: tool.into(),
                    source: std::io::Error::other(
                        String::from_utf8_lossy(&out.stderr).trim().to_string(),
                    ),
                })
            }
        });
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Maps only the user to 0, from inside (what an unprivileged process may write for itself).
/// A map a helper managed to write before failing is left as it is (the kernel allows one
/// write per map); the mapping read back then decides the mode.
pub(super) fn map_single(uid: u32, gid: u32) -> Result<(), UsernsError> {
    let write = |name: &str, text: String| {
        let path = format!("/proc/self/{name}");
        std::fs::write(&path, text).map_err(|source| UsernsError::Map { path, source })
    };
    let empty = |name: &str| {
        std::fs::read_to_string(format!("/proc/self/{name}")).is_ok_and(|t| t.trim().is_empty())
    };
    if empty("uid_map") {
        write("uid_map", format!("0 {uid} 1\n"))?;
    }
    if empty("gid_map") {
        write("setgroups", "deny".into())?;
        write("gid_map", format!("0 {gid} 1\n"))?;
    }
    Ok(())
}

//! The launcher's side of [`enter`](super::enter): spawn the child, map its ids once it has
//! unshared, let it go, forward signals, and pass on its exit status.

use super::{CHILD_ENV, Start, UsernsError, subid};
use rustix::process::{Pid, Signal, WaitOptions};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// Set in the child's environment when the user has subordinate ranges (so that a
/// single-id fallback can say the helpers failed rather than that ranges are missing).
pub(super) const RANGES_ENV: &str = "HOIST_USERNS_RANGES";

/// Runs this command again inside a new user namespace and waits for it.
pub(super) fn launch() -> Start {
    match launch_inner() {
        Ok(code) => Start::Exit(code),
        Err(e) => Start::Continue {
            note: Some(format!(
                "warning: could not start hoist in a user namespace ({e}); running as your user"
            )),
        },
    }
}

fn launch_inner() -> Result<u8, UsernsError> {
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    let name = subid::user_name(uid);
    let ranges = (
        subid::lookup(Path::new("/etc/subuid"), name.as_deref(), uid),
        subid::lookup(Path::new("/etc/subgid"), name.as_deref(), uid),
    );
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| "hoist".into());
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0(arg0)
        .args(args)
        .env(CHILD_ENV, std::process::id().to_string());
    if ranges.0.is_some() && ranges.1.is_some() {
        cmd.env(RANGES_ENV, "1");
    }
    let mut child = cmd.spawn().map_err(|source| UsernsError::Spawn {
        what: "/proc/self/exe".into(),
        source,
    })?;
    let pid = Pid::from_raw(child.id() as i32).ok_or_else(|| UsernsError::Spawn {
        what: "/proc/self/exe".into(),
        source: std::io::Error::other("no pid"),
    })?;
    forward_signals(pid);
    // The child stops itself once unshared; it exits instead when the kernel refused.
    match rustix::process::waitpid(Some(pid), WaitOptions::UNTRACED) {
        Ok(Some((_, st))) if st.stopped() => {
            let mapped = match ranges {
                (Some(u), Some(g)) => match map_with_helpers(pid, uid, gid, u, g) {
                    Ok(()) => true,
                    Err(e) => {
                        // The child's single-id note follows; this says why.
                        crate::cli::write_stderr(format_args!("warning: {e}\n"));
                        false
                    }
                },
                _ => false,
            };
            if !mapped {
                // The single-id map needs no helper. (A failed newuidmap may have written
                // uid_map already; the child then sees one group id and takes that mode.)
                let _ = map_single(pid, uid, gid);
            }
            let _ = rustix::process::kill_process(pid, Signal::CONT);
        }
        Ok(Some((_, st))) => return Ok(status_code(st.exit_status(), st.terminating_signal())),
        _ => {}
    }
    let st = child.wait().map_err(|source| UsernsError::Spawn {
        what: "waiting for hoist in its user namespace".into(),
        source,
    })?;
    use std::os::unix::process::ExitStatusExt;
    Ok(status_code(st.code(), st.signal()))
}

/// A child's status as this process's exit code (128+signal when it was killed).
fn status_code(code: Option<i32>, signal: Option<i32>) -> u8 {
    match (code, signal) {
        (Some(c), _) => u8::try_from(c & 0xff).unwrap_or(1),
        (None, Some(s)) => u8::try_from((128 + s) & 0xff).unwrap_or(1),
        _ => 1,
    }
}

/// `newuidmap PID 0 UID 1 1 START COUNT` and the same for groups.
fn map_with_helpers(
    pid: Pid,
    uid: u32,
    gid: u32,
    u: subid::Range,
    g: subid::Range,
) -> Result<(), UsernsError> {
    for (tool, me, r) in [("newuidmap", uid, u), ("newgidmap", gid, g)] {
        let out = Command::new(tool)
            .arg(pid.as_raw_nonzero().to_string())
            .args(["0", &me.to_string(), "1", "1"])
            .args([r.start.to_string(), r.count.to_string()])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|source| UsernsError::Spawn {
                what: format!("{tool} (Debian's uidmap package)"),
                source,
            })?;
        if !out.status.success() {
            return Err(UsernsError::Spawn {
                what: tool.into(),
                source: std::io::Error::other(
                    String::from_utf8_lossy(&out.stderr).trim().to_string(),
                ),
            });
        }
    }
    Ok(())
}

/// Maps only the user to 0 (what an unprivileged process may write itself).
fn map_single(pid: Pid, uid: u32, gid: u32) -> Result<(), UsernsError> {
    let base = format!("/proc/{}", pid.as_raw_nonzero());
    let write = |name: &str, text: String| {
        let path = format!("{base}/{name}");
        std::fs::write(&path, text).map_err(|source| UsernsError::Map { path, source })
    };
    let uid_map = std::fs::read_to_string(format!("{base}/uid_map")).unwrap_or_default();
    if uid_map.trim().is_empty() {
        write("uid_map", format!("0 {uid} 1\n"))?;
    }
    write("setgroups", "deny".into())?;
    write("gid_map", format!("0 {gid} 1\n"))
}

/// Passes SIGINT, SIGTERM, SIGHUP and SIGQUIT on to the child (a terminal's Ctrl-C reaches
/// both; hoist's own handler acts on the first signal only).
fn forward_signals(pid: Pid) {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT])
    else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("hoist-userns-signals".into())
        .spawn(move || {
            for s in signals.forever() {
                if let Some(sig) = Signal::from_named_raw(s) {
                    let _ = rustix::process::kill_process(pid, sig);
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::status_code;

    #[test]
    fn exit_status_passes_through() {
        assert_eq!(status_code(Some(0), None), 0);
        assert_eq!(status_code(Some(3), None), 3);
        assert_eq!(status_code(None, Some(15)), 143);
        assert_eq!(status_code(None, Some(9)), 137);
        assert_eq!(status_code(None, None), 1);
    }
}

//! The processes the chroot isolation starts: hoist re-executes itself (`/proc/self/exe`) as a
//! tiny single-threaded helper, so nothing ever runs between `fork` and `exec` in the
//! multi-threaded builder. Two helpers, recognised by a reserved first argument before any
//! argument parsing ([`entry`], called first in `main`):
//! - the run helper chroots into the rootfs, enters the working dir, takes the user's groups,
//!   gid and uid, asks to be killed with its parent, and execs the command;
//! - the probe helper tries to mount a tmpfs (and unmounts it): whether this hoist can mount
//!   at all, asked once at start-up by [`super::super::select`] without touching the main
//!   process.

use crate::executor::user::ResolvedUser;
use crate::executor::{Result, io_err};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// First argument of the run helper.
const RUN_ARG: &str = "__hoist-chroot-run";
/// First argument of the mount probe.
const PROBE_ARG: &str = "__hoist-mount-probe";

/// If this process is one of the helpers, does its job and returns its exit code (the run
/// helper returns only when exec failed). Called first in `main`, single-threaded.
pub fn entry() -> Option<u8> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match args.first().and_then(|a| a.to_str()) {
        Some(RUN_ARG) => Some(run_helper(&args[1..])),
        Some(PROBE_ARG) => Some(probe_helper(&args[1..])),
        _ => None,
    }
}

/// Whether a child of this process can mount (a tmpfs on the fresh dir `scratch`).
pub(crate) fn can_mount(scratch: &Path) -> bool {
    Command::new("/proc/self/exe")
        .arg(PROBE_ARG)
        .arg(scratch)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn probe_helper(args: &[std::ffi::OsString]) -> u8 {
    let Some(dir) = args.first() else { return 2 };
    if mounts_tmpfs(Path::new(dir)) { 0 } else { 1 }
}

/// The probe itself: mount a tmpfs on `dir` and take it off again.
pub(crate) fn mounts_tmpfs(dir: &Path) -> bool {
    let ok = rustix::mount::mount(
        "tmpfs",
        dir,
        "tmpfs",
        rustix::mount::MountFlags::empty(),
        c"",
    )
    .is_ok();
    if ok {
        let _ = rustix::mount::unmount(dir, rustix::mount::UnmountFlags::DETACH);
    }
    ok
}

/// Runs `argv` chrooted into `rootfs` in `cwd` as `who`, with exactly `env`; streams stdout
/// and stderr (one pipe, interleaved) to `out`; returns the exit code (128+signal if killed).
pub(super) fn run(
    rootfs: &Path,
    cwd: &str,
    who: &ResolvedUser,
    env: &[String],
    argv: &[String],
    out: &mut dyn FnMut(&[u8]),
) -> Result<i32> {
    let (mut reader, writer) = std::io::pipe().map_err(io_err("pipe"))?;
    let writer2 = writer.try_clone().map_err(io_err("pipe"))?;
    let groups: Vec<String> = who.additional_gids.iter().map(u32::to_string).collect();
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg(RUN_ARG)
        .arg(rootfs)
        .arg(cwd)
        .arg(who.uid.to_string())
        .arg(who.gid.to_string())
        .arg(groups.join(","))
        .arg("--")
        .args(argv)
        .env_clear()
        .envs(env.iter().map(|kv| kv.split_once('=').unwrap_or((kv, ""))))
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer2)
        // Own process group: a terminal's Ctrl-C reaches hoist, which ends the run.
        .process_group(0);
    let child = cmd
        .spawn()
        .map_err(io_err("/proc/self/exe (the chroot helper)"))?;
    drop(cmd);
    super::super::drain_and_wait(&mut reader, child, out, "the chroot helper")
}

/// `RUN_ARG rootfs cwd uid gid groups -- argv…`, environment already the command's.
fn run_helper(args: &[std::ffi::OsString]) -> u8 {
    match chroot_and_exec(args) {
        Ok(never) => match never {},
        Err((code, msg)) => {
            let _ = writeln!(std::io::stderr(), "hoist: {msg}");
            code
        }
    }
}

fn chroot_and_exec(
    args: &[std::ffi::OsString],
) -> std::result::Result<std::convert::Infallible, (u8, String)> {
    let fail = |what: &str, e: &dyn std::fmt::Display| (126u8, format!("{what}: {e}"));
    let [root, cwd, uid, gid, groups, sep, argv @ ..] = args else {
        return Err((126, "chroot helper: bad arguments".into()));
    };
    if sep != "--" || argv.is_empty() {
        return Err((126, "chroot helper: bad arguments".into()));
    }
    let num = |s: &std::ffi::OsString| s.to_str().and_then(|s| s.parse::<u32>().ok());
    let (Some(uid), Some(gid)) = (num(uid), num(gid)) else {
        return Err((126, "chroot helper: bad uid/gid".into()));
    };
    let groups: Vec<rustix::process::Gid> = groups
        .to_str()
        .unwrap_or("")
        .split(',')
        .filter_map(|g| g.parse::<u32>().ok())
        .map(rustix::process::Gid::from_raw)
        .collect();
    rustix::process::chroot(root.as_os_str()).map_err(|e| fail("chroot", &e))?;
    std::env::set_current_dir("/").map_err(|e| fail("chdir /", &e))?;
    std::env::set_current_dir(cwd).map_err(|e| fail(&format!("chdir {cwd:?}"), &e))?;
    rustix::thread::set_thread_groups(&groups).map_err(|e| fail("setgroups", &e))?;
    let g = rustix::process::Gid::from_raw(gid);
    rustix::thread::set_thread_res_gid(g, g, g).map_err(|e| fail("setgid", &e))?;
    let u = rustix::process::Uid::from_raw(uid);
    rustix::thread::set_thread_res_uid(u, u, u).map_err(|e| fail("setuid", &e))?;
    // After the id change, which clears it: the command dies with the hoist thread running it.
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    let e = Command::new(&argv[0]).args(&argv[1..]).exec();
    let code = if e.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    };
    Err((code, format!("exec {:?}: {e}", argv[0].to_string_lossy())))
}

//! hoist-init: PID 1 of a hoist sandbox run with `--init`, in the spirit of `docker run --init`
//! (tini). Without it the command is PID 1, as in BuildKit.
//!
//! Not a module of the hoist crate: the top-level `build.rs` compiles this one file on its
//! own into `$OUT_DIR/hoist-init`, which `src/executor/init.rs` embeds.
//!
//! Hand-written because no crate offers an init that can be embedded into another binary and
//! exec'd from a memfd in any rootfs (busybox, scratch + one static binary, debian): it must be
//! one static executable with no runtime dependencies, hence plain `rustc` without Cargo
//! (glibc static, `panic=abort`, stripped). hoist execs the bytes from a sealed memfd passed to the OCI
//! runtime as fd 3 (see `src/executor/init.rs`), so nothing of it is ever written into the
//! container's rootfs.
//!
//! What it does, and nothing more:
//! - closes every fd >= 3 it inherited (the memfd itself included), so the user process only
//!   gets 0, 1 and 2;
//! - forks and execs `argv[1..]` (PATH search like the OCI runtime's, no `/bin/sh` fallback
//!   for scripts without a shebang) with the unchanged environment, cwd, uid/gid and an
//!   emptied signal mask;
//! - reaps every child (orphans re-parented to PID 1 included) on SIGCHLD;
//! - forwards SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2 and SIGTERM to that child;
//! - exits with the child's exit code, or 128+signal if a signal killed it.
//!
//! It is built without Cargo, so it uses only `std` and declares the few libc functions it
//! needs itself (Linux x86_64/aarch64 signal numbers and `sigset_t` size).

#![no_main]
#![allow(unsafe_code)]

use std::ffi::{CStr, OsStr, c_char, c_int, c_long};
use std::os::unix::ffi::OsStrExt;

/// glibc's `sigset_t` (1024 bits).
#[repr(C)]
struct SigSet([u64; 16]);

const SIGHUP: c_int = 1;
const SIGINT: c_int = 2;
const SIGQUIT: c_int = 3;
const SIGUSR1: c_int = 10;
const SIGUSR2: c_int = 12;
const SIGTERM: c_int = 15;
const SIGCHLD: c_int = 17;
const SIG_BLOCK: c_int = 0;
const SIG_SETMASK: c_int = 2;
const WNOHANG: c_int = 1;
const SYS_CLOSE_RANGE: c_long = 436;
const PR_SET_NAME: c_int = 15;
const ENOENT: i32 = 2;
const EACCES: i32 = 13;
const ENOEXEC: i32 = 8;

unsafe extern "C" {
    static environ: *const *const c_char;
    fn fork() -> c_int;
    fn execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char)
    -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn sigemptyset(set: *mut SigSet) -> c_int;
    fn sigaddset(set: *mut SigSet, sig: c_int) -> c_int;
    fn sigprocmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
    fn sigwait(set: *const SigSet, sig: *mut c_int) -> c_int;
    fn close(fd: c_int) -> c_int;
    fn prctl(option: c_int, ...) -> c_int;
    fn syscall(n: c_long, ...) -> c_long;
    fn _exit(code: c_int) -> !;
}

/// Writes `hoist-init: <msg>` to stderr (unbuffered, one write).
fn complain(msg: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("hoist-init: {msg}\n").as_bytes());
}

/// Closes every fd >= 3: `close_range`, else the list in /proc/self/fd, else a fixed range.
fn close_extra_fds() {
    // SAFETY: close_range(2) takes plain integers and touches no memory.
    if unsafe { syscall(SYS_CLOSE_RANGE, 3u32, u32::MAX, 0u32) } == 0 {
        return;
    }
    let fds: Vec<c_int> = match std::fs::read_dir("/proc/self/fd") {
        Ok(d) => d
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|&fd| fd >= 3)
            .collect(),
        Err(_) => (3..4096).collect(),
    };
    for fd in fds {
        // SAFETY: closing an fd number; this process owns no Rust object holding one.
        unsafe { close(fd) };
    }
}

/// The executable for `name`, as the OCI runtime looks it up: a name with a `/` as is, else
/// the first regular file with an execute bit in `$PATH`.
fn look_path(name: &[u8]) -> Option<Vec<u8>> {
    use std::os::unix::fs::PermissionsExt;
    if name.contains(&b'/') {
        return Some(name.to_vec());
    }
    let path = std::env::var_os("PATH")?;
    for dir in path.as_bytes().split(|&b| b == b':') {
        let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
        let mut cand = dir.to_vec();
        cand.push(b'/');
        cand.extend_from_slice(name);
        if let Ok(m) = std::fs::metadata(OsStr::from_bytes(&cand))
            && !m.is_dir()
            && m.permissions().mode() & 0o111 != 0
        {
            return Some(cand);
        }
    }
    None
}

/// In the forked child: restore the signal mask and exec `argv[1..]`; never returns.
fn exec_child(argv: *const *const c_char, old_mask: &SigSet) -> ! {
    // SAFETY: argv comes from the kernel via main and is NULL-terminated; argv[1] exists.
    let args = unsafe { argv.add(1) };
    // SAFETY: as above, args[0] is a valid C string.
    let name = unsafe { CStr::from_ptr(*args) }.to_bytes();
    // SAFETY: restoring the mask saved before blocking.
    unsafe { sigprocmask(SIG_SETMASK, old_mask, std::ptr::null_mut()) };
    let shown = String::from_utf8_lossy(name);
    let Some(path) = look_path(name) else {
        complain(&format!(
            "exec: \"{shown}\": executable file not found in $PATH"
        ));
        // SAFETY: ends the child without running anything of the parent's.
        unsafe { _exit(127) }
    };
    let mut cpath = path;
    cpath.push(0);
    // SAFETY: cpath is NUL-terminated; args and environ are NULL-terminated arrays.
    unsafe { execve(cpath.as_ptr().cast(), args, environ) };
    let err = std::io::Error::last_os_error();
    complain(&format!("exec: \"{shown}\": {err}"));
    let code = match err.raw_os_error() {
        Some(ENOENT) => 127,
        Some(EACCES) | Some(ENOEXEC) => 126,
        _ => 127,
    };
    // SAFETY: as above.
    unsafe { _exit(code) }
}

/// Exit code for a `waitpid` status: the code, or 128+signal.
fn exit_code(status: c_int) -> c_int {
    let sig = status & 0x7f;
    if sig == 0 {
        (status >> 8) & 0xff
    } else {
        128 + sig
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    close_extra_fds();
    // Exec'd as /proc/self/fd/3, the kernel named it "3"; `ps` should say what it is.
    // SAFETY: the name is a NUL-terminated string of at most 16 bytes.
    unsafe { prctl(PR_SET_NAME, c"hoist-init".as_ptr()) };
    if argc < 2 {
        complain("usage: hoist-init COMMAND [ARG...]");
        return 2;
    }
    let mut set = SigSet([0; 16]);
    let mut old = SigSet([0; 16]);
    // SAFETY: set/old are valid sigset_t-sized buffers.
    unsafe {
        sigemptyset(&mut set);
        for s in [SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGTERM] {
            sigaddset(&mut set, s);
        }
        sigprocmask(SIG_BLOCK, &set, &mut old);
    }
    // SAFETY: this process is single-threaded, so the child may run any code after fork.
    let child = unsafe { fork() };
    if child < 0 {
        complain(&format!("fork: {}", std::io::Error::last_os_error()));
        return 126;
    }
    if child == 0 {
        exec_child(argv, &old);
    }
    loop {
        let mut sig: c_int = 0;
        // SAFETY: set is initialised; sig is a valid out pointer.
        if unsafe { sigwait(&set, &mut sig) } != 0 {
            continue;
        }
        if sig != SIGCHLD {
            // SAFETY: plain syscall on the child's pid.
            unsafe { kill(child, sig) };
            continue;
        }
        let mut child_status = None;
        loop {
            let mut status: c_int = 0;
            // SAFETY: status is a valid out pointer.
            let pid = unsafe { waitpid(-1, &mut status, WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == child {
                child_status = Some(status);
            }
        }
        if let Some(status) = child_status {
            // SAFETY: exits without running destructors or flushing anything.
            unsafe { _exit(exit_code(status)) }
        }
    }
}

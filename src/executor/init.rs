//! `hoist run --init`'s PID 1 (`RunSpec::security.init`; by default the command itself is PID
//! 1, as in BuildKit): `hoist-init`, embedded in hoist and exec'd from a sealed memfd that
//! the OCI runtime passes to the container as fd 3 (`--preserve-fds 1`, process args
//! `["/proc/self/fd/3", argv…]`). The init reaps orphans, forwards signals, closes fd 3 (and
//! anything else >= 3) before exec'ing the user's command, and exits with its code. Nothing of it is ever in the rootfs: `/proc/1/exe` of a sandbox
//! reads `/memfd:hoist-init (deleted)`.
//!
//! The init's source is `init/main.rs`, which is not a module of this crate: the top-level
//! `build.rs` compiles that one file on its own with `rustc` (static, no crates) into
//! `$OUT_DIR/hoist-init`, and [`INIT`] here includes the bytes. Editing it rebuilds hoist.
//!
//! The only unsafe code of the executor lives here: the `pre_exec` hook that puts the memfd on
//! fd 3 of the runtime's process (std has no safe way to map an fd to a given number).

#![allow(unsafe_code)]

use super::{ExecutorError, Result};
use rustix::fs::{MemfdFlags, SealFlags};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::OnceLock;

/// The static init executable.
static INIT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hoist-init"));

/// The fd number the init has in the container.
pub(crate) const INIT_FD: i32 = 3;

/// What the container's process args start with.
pub(crate) const INIT_PATH: &str = "/proc/self/fd/3";

/// The memfd, created once per hoist process (CLOEXEC in hoist itself).
static MEMFD: OnceLock<std::result::Result<OwnedFd, String>> = OnceLock::new();

/// The container's process args: the init, then `argv`.
pub(crate) fn wrap_argv(argv: &[String]) -> Vec<String> {
    let mut v = Vec::with_capacity(argv.len() + 1);
    v.push(INIT_PATH.to_string());
    v.extend(argv.iter().cloned());
    v
}

fn create_memfd() -> std::result::Result<OwnedFd, String> {
    let base = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
    // MFD_EXEC (Linux 6.3+) keeps the memfd executable where vm.memfd_noexec=1 would not;
    // older kernels reject the flag, and there memfds are always executable.
    let fd = rustix::fs::memfd_create("hoist-init", base | MemfdFlags::EXEC)
        .or_else(|_| rustix::fs::memfd_create("hoist-init", base))
        .map_err(|e| format!("memfd_create: {e}"))?;
    let mut file = std::fs::File::from(fd);
    std::io::Write::write_all(&mut file, INIT).map_err(|e| format!("writing the init: {e}"))?;
    let fd = OwnedFd::from(file);
    // Sealed: nothing (not even a process that gets hold of it) can change the bytes.
    rustix::fs::fcntl_add_seals(
        &fd,
        SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE | SealFlags::SEAL,
    )
    .map_err(|e| format!("sealing the memfd: {e}"))?;
    Ok(fd)
}

/// Makes `cmd` (the runtime's `run`) start with the init's memfd on fd 3, not close-on-exec.
/// The caller adds `--preserve-fds 1`.
pub(crate) fn pass_init_fd(cmd: &mut Command) -> Result<()> {
    let fd = match MEMFD.get_or_init(create_memfd) {
        Ok(fd) => fd.as_raw_fd(),
        Err(e) => {
            return Err(ExecutorError::Runtime {
                runtime: "hoist".into(),
                action: "preparing the sandbox init".into(),
                detail: e.clone(),
            });
        }
    };
    // SAFETY: the hook runs in the forked child before exec and calls only dup2 and fcntl,
    // which are async-signal-safe; `fd` is a plain integer of an fd that hoist never closes
    // (the OnceLock keeps it for the life of the process).
    unsafe {
        cmd.pre_exec(move || {
            if fd == INIT_FD {
                // Already on 3 (dup2 would be a no-op): just clear close-on-exec.
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, INIT_FD) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_init_is_a_static_elf() {
        assert_eq!(&INIT[..4], b"\x7fELF");
        assert_eq!(INIT[4], 2, "64-bit ELF");
        // No PT_INTERP program header: it needs no dynamic loader, so it runs in any rootfs.
        let u16_at = |o: usize| u16::from_le_bytes([INIT[o], INIT[o + 1]]) as usize;
        let phoff = u64::from_le_bytes(INIT[0x20..0x28].try_into().unwrap()) as usize;
        let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
        assert!(phnum > 0);
        for i in 0..phnum {
            let o = phoff + i * phentsize;
            let p_type = u32::from_le_bytes(INIT[o..o + 4].try_into().unwrap());
            assert_ne!(p_type, 3, "init has a PT_INTERP: it is dynamically linked");
        }
    }

    #[test]
    fn argv_is_prefixed_with_the_init() {
        let v = wrap_argv(&["sh".into(), "-c".into(), "true".into()]);
        assert_eq!(v, ["/proc/self/fd/3", "sh", "-c", "true"]);
    }

    #[test]
    fn memfd_is_sealed_and_holds_the_init() {
        let Ok(fd) = MEMFD.get_or_init(create_memfd) else {
            panic!("memfd")
        };
        let seals = rustix::fs::fcntl_get_seals(fd).unwrap();
        assert!(seals.contains(SealFlags::WRITE | SealFlags::SEAL));
        let st = rustix::fs::fstat(fd).unwrap();
        assert_eq!(st.st_size as usize, INIT.len());
    }
}

//! Running the container: `<runtime> --root <state> run --bundle <dir> <id>` in the
//! foreground, in its own process group (with `--init`, also `--preserve-fds 1` and the init's
//! memfd on fd 3); its stdout and stderr (one pipe, interleaved) streamed to the caller until
//! it exits. With a terminal (`process.terminal`, `hoist run -t`) the runtime gets hoist's own
//! stdin/stdout/stderr: in the foreground without `--console-socket`, crun and runc allocate
//! the pty themselves and relay it to those (the terminal in raw mode meanwhile), and
//! nothing reaches the caller's `out`. With `-i`, stdin is hoist's.

use super::OciRuntime;
use super::run_state::RunState;
use crate::executor::{ExecutorError, Result, Stdio as SandboxStdio, cleanup, init, io_err};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Runs the bundle of `st` and streams its output to `out`; returns the exit code
/// (128+signal when killed). `with_init`: the bundle's process starts with hoist's init, whose
/// memfd goes on fd 3.
pub(super) fn run(
    rt: &OciRuntime,
    st: &mut RunState,
    with_init: bool,
    stdio: SandboxStdio,
    out: &mut dyn FnMut(&[u8]),
) -> Result<i32> {
    let (mut reader, writer) = std::io::pipe().map_err(io_err("pipe"))?;
    let writer2 = writer.try_clone().map_err(io_err("pipe"))?;
    let (stdout, stderr) = if stdio.tty {
        // The runtime relays the pty to hoist's own terminal; the pipe stays empty.
        drop((writer, writer2));
        (Stdio::inherit(), Stdio::inherit())
    } else {
        (Stdio::from(writer), Stdio::from(writer2))
    };
    // `-t` alone: a pty but no input, as `docker run -t` (the runtime sizes the pty from
    // hoist's terminal on stdout).
    let stdin = if stdio.stdin {
        Stdio::inherit()
    } else {
        Stdio::null()
    };
    let mut cmd = Command::new(&rt.binary);
    cmd.arg("--root").arg(&st.state).arg("run");
    if with_init {
        cmd.args(["--preserve-fds", "1"]);
        init::pass_init_fd(&mut cmd)?;
    }
    cmd.arg("--bundle")
        .arg(&st.dir)
        .arg(&st.id)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(stderr);
    if !stdio.tty {
        // Own process group: a terminal's Ctrl-C reaches hoist, which kills the sandbox. With
        // a pty the runtime must stay in the terminal's foreground group to read it; Ctrl-C
        // then reaches the process through the pty (raw mode), as with `docker run -t`.
        cmd.process_group(0);
    }
    st.started = true;
    let child = cmd.spawn().map_err(|e| ExecutorError::Runtime {
        runtime: rt.name(),
        action: "run".into(),
        detail: format!("cannot start {}: {e}", rt.binary.display()),
    })?;
    // The parent's copies of the write ends must close, or the read never ends.
    drop(cmd);
    if cleanup::shutdown_requested() {
        cleanup::kill_container(&rt.binary, &st.state, &st.id);
    }
    super::super::drain_and_wait(&mut reader, child, out, &rt.binary)
}

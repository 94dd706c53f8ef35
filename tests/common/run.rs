//! The one runner of the `hoist` binary under test.
//!
//! Environment rule: a run never inherits the caller's settings that change what hoist does
//! with a store. [`AMBIENT`] (`SOURCE_DATE_EPOCH`, `HOIST_ROOT`, the registry time limits and
//! `DOCKER_DEFAULT_PLATFORM`, `HOIST_CONFIG`)
//! is removed from every child's environment, so an exported `SOURCE_DATE_EPOCH` in the
//! shell cannot change a test's digests or timestamps. A test that relies on one sets it
//! itself: [`Hoist::epoch`] for reproducible builds (the hardening suites), [`Hoist::env`]
//! for the rest. Without `epoch`, builds stamp the real clock.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_hoist");

/// Variables removed from every run's environment (see the module doc).
pub const AMBIENT: &[&str] = &[
    "SOURCE_DATE_EPOCH",
    "HOIST_ROOT",
    "HOIST_REGISTRY_TIMEOUT",
    "HOIST_REGISTRY_IDLE_TIMEOUT",
    "DOCKER_DEFAULT_PLATFORM",
    "HOIST_ISOLATION",
    // hoist's config file (`builder.gc` limits, insecure registries): a test sets its own.
    "HOIST_CONFIG",
    // The size limit on remote contexts: a test that needs one sets it.
    "HOIST_REMOTE_CONTEXT_MAX",
];

/// A `hoist --root ROOT …` run being set up; stdin is `/dev/null` unless the command is
/// changed after [`Hoist::command`].
pub struct Hoist {
    cmd: Command,
}

impl Hoist {
    /// `hoist --root ROOT` (a relative `root` is taken from the child's working directory).
    pub fn new(root: &Path) -> Hoist {
        Hoist::wrap(Command::new(BIN), root)
    }

    /// `WRAPPER… hoist --root ROOT`: hoist run by another program (`strace -f … --`), which
    /// passes the environment on.
    pub fn under(wrapper: Command, root: &Path) -> Hoist {
        Hoist::under_bin(wrapper, Path::new(BIN), root)
    }

    /// [`Hoist::under`] with another copy of the binary (one other users can reach).
    pub fn under_bin(mut wrapper: Command, bin: &Path, root: &Path) -> Hoist {
        wrapper.arg(bin);
        Hoist::wrap(wrapper, root)
    }

    fn wrap(mut cmd: Command, root: &Path) -> Hoist {
        cmd.arg("--root").arg(root).stdin(Stdio::null());
        for var in AMBIENT {
            cmd.env_remove(var);
        }
        Hoist { cmd }
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Hoist
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Hoist {
        self.cmd.arg(arg);
        self
    }

    /// Fixes `SOURCE_DATE_EPOCH` (seconds) so the same inputs give the same digests.
    pub fn epoch(self, secs: &str) -> Hoist {
        self.env("SOURCE_DATE_EPOCH", secs)
    }

    /// Sets one environment variable of the run.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Hoist {
        self.cmd.env(key, value);
        self
    }

    /// Sets several environment variables of the run.
    pub fn envs(mut self, vars: &[(&str, &str)]) -> Hoist {
        for (k, v) in vars {
            self.cmd.env(k, v);
        }
        self
    }

    /// The command, to spawn it or change its stdio or working directory.
    pub fn command(self) -> Command {
        self.cmd
    }

    /// Runs to the end, capturing stdout and stderr.
    pub fn output(mut self) -> Output {
        self.cmd.output().expect("run hoist")
    }
}

/// Runs `hoist --root ROOT ARGS…` (see the module doc for its environment).
pub fn hoist(root: &Path, args: &[&str]) -> Output {
    Hoist::new(root).args(args).output()
}

/// A run's stdout followed by its stderr, as text.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

//! One run's resources in the pool, registered for cleanup before any of them exists:
//! `<pool>/hoist-<pid>-<n>-<t>/{config.json, rootfs/, hosts, resolv.conf, hostname[, upper/,
//! work/]}`, the container in the runtime's state dir, and the overlay mounted on `rootfs/`.
//! `Drop` tears down whatever is still up (container, mounts, dirs), so every error path and
//! panic leaves nothing behind; the normal path tears down step by step to report errors.

use super::{OciRuntime, STATE_DIR};
use crate::executor::cleanup::{self, Live};
use crate::executor::overlay::{remove_dir_safely, unmount_all_under};
use crate::executor::pool::{mkdir_private, unique_name};
use crate::executor::{ExecutorError, Result, RunSpec};
use std::path::PathBuf;

/// One run's resources; `Drop` tears down whatever is still up.
pub(super) struct RunState<'a> {
    rt: &'a OciRuntime,
    key: u64,
    /// The container id (also the bundle dir's name).
    pub id: String,
    /// The bundle dir.
    pub dir: PathBuf,
    /// The runtime's `--root`.
    pub state: PathBuf,
    /// The overlay's mount point.
    pub rootfs: PathBuf,
    /// Where the changes go: the spec's upper, else one in the bundle (discarded).
    pub upper: PathBuf,
    work: PathBuf,
    /// The overlay is mounted on `rootfs`.
    pub mounted: bool,
    /// The runtime was (or is being) started: the container may exist.
    pub started: bool,
    done: bool,
}

impl<'a> RunState<'a> {
    /// Creates the bundle dir and the (empty) upper, work and rootfs dirs for `spec`,
    /// registering them and the container for cleanup first.
    pub fn new(rt: &'a OciRuntime, spec: &RunSpec) -> Result<RunState<'a>> {
        let id = unique_name();
        let dir = rt.pool.join(&id);
        let state = rt.pool.join(STATE_DIR);
        mkdir_private(&rt.pool)?;
        mkdir_private(&state)?;
        mkdir_private(&dir)?;
        let (upper, work) = match &spec.upper {
            Some(u) => {
                let parent = u.parent().ok_or_else(|| {
                    ExecutorError::InvalidSpec(format!("upper dir {} has no parent", u.display()))
                })?;
                (u.clone(), parent.join(format!(".{id}.work")))
            }
            None => (dir.join("upper"), dir.join("work")),
        };
        let rootfs = dir.join("rootfs");
        let key = cleanup::register(Live {
            container: Some((rt.binary.clone(), state.clone(), id.clone())),
            mounts: vec![rootfs.clone()],
            dirs: vec![work.clone(), dir.clone()],
        });
        let st = RunState {
            rt,
            key,
            id,
            dir,
            state,
            rootfs,
            upper,
            work,
            mounted: false,
            started: false,
            done: false,
        };
        for d in [&st.upper, &st.work, &st.rootfs] {
            mkdir_private(d)?;
        }
        Ok(st)
    }

    /// The overlay's work dir.
    pub fn work(&self) -> &std::path::Path {
        &self.work
    }

    /// Deletes the container if it may still exist.
    pub fn delete_container(&mut self) -> Result<()> {
        if !self.started {
            return Ok(());
        }
        self.started = false;
        // A foreground `run` that ended normally has already destroyed its container (state
        // dir and cgroup; the PID namespace died with its init): no second runtime start,
        // which costs ~20 ms on every RUN.
        if !self.state.join(&self.id).exists() {
            return Ok(());
        }
        let out =
            cleanup::delete_container(&self.rt.binary, &self.state, &self.id).map_err(|e| {
                ExecutorError::Runtime {
                    runtime: self.rt.name(),
                    action: format!("delete {}", self.id),
                    detail: e.to_string(),
                }
            })?;
        if !out.status.success() && self.state.join(&self.id).exists() {
            return Err(ExecutorError::Runtime {
                runtime: self.rt.name(),
                action: format!("delete {}", self.id),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(())
    }

    /// Unmounts everything under the rootfs.
    pub fn unmount(&mut self) -> Result<()> {
        if self.mounted {
            unmount_all_under(&self.rootfs)?;
            self.mounted = false;
        }
        Ok(())
    }

    /// Removes the work and bundle dirs and deregisters the run: the last step.
    pub fn remove_dirs(&mut self) -> Result<()> {
        remove_dir_safely(&self.work)?;
        remove_dir_safely(&self.dir)?;
        self.done = true;
        cleanup::deregister(self.key);
        Ok(())
    }
}

impl Drop for RunState<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.delete_container();
            let _ = self.unmount();
            let _ = self.remove_dirs();
        }
    }
}

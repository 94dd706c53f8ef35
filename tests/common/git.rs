//! A `git daemon` on loopback for the remote-context tests (`tests/build_contexts.rs`,
//! `tests/reproducible.rs`, `tests/copy_rules.rs`): each test makes its own bare repository
//! ([`git`] runs the commands), this serves it at
//! `git://127.0.0.1:PORT/repo.git` until dropped.

use std::path::Path;
use std::process::Command;

/// Runs `git ARGS` in `cwd` with a fixed identity and `main` as the default branch; panics
/// with git's stderr when it fails.
pub fn git(args: &[&str], cwd: &Path) {
    let st = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&st.stderr)
    );
}

/// A running `git-daemon` serving `<dir>/repo.git`; killed (and `dir` removed) on drop.
pub struct GitServer {
    child: std::process::Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for GitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serves the bare repository `dir/repo.git` on a free loopback port.
pub fn serve(dir: tempfile::TempDir) -> GitServer {
    super::require("git", "git");
    let port = super::free_port();
    // git-daemon itself: the `git daemon` wrapper would be left orphaned on kill.
    let exec_path = Command::new("git").arg("--exec-path").output().unwrap();
    let exec_path = String::from_utf8(exec_path.stdout).unwrap();
    let mut child = Command::new(Path::new(exec_path.trim()).join("git-daemon"))
        .args(["--export-all", "--reuseaddr", "--listen=127.0.0.1"])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", dir.path().display()))
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    super::wait_port(port, &mut child, "git daemon");
    GitServer {
        child,
        url: format!("git://127.0.0.1:{port}/repo.git"),
        _dir: dir,
    }
}

/// Serves a repository whose work tree `fill` writes, committed on `main` and tagged `v1`.
pub fn serve_repo(fill: impl FnOnce(&Path)) -> GitServer {
    super::require("git", "git");
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    fill(&work);
    git(&["init", "-q"], &work);
    git(&["add", "-A"], &work);
    git(&["commit", "-q", "-m", "one"], &work);
    git(&["tag", "v1"], &work);
    git(&["clone", "-q", "--bare", "work", "repo.git"], dir.path());
    serve(dir)
}

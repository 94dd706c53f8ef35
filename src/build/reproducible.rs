//! `hoist build --reproducible`: the `SOURCE_DATE_EPOCH` a build clamps every timestamp to.
//!
//! The epoch is `$SOURCE_DATE_EPOCH` when set; else the committer time of the context's git
//! HEAD (a local context inside a git work tree, or the commit a git URL context fetched);
//! else 0. With it the engine does what BuildKit's `rewrite-timestamp=true` does: file times
//! in the layers the build makes are clamped to it (the base image's layers are left as
//! they are), history entries after the base image's and the config's `created` too, and
//! cache keys carry it so a layer made under another epoch is not reused. Two builds of one
//! commit then give one digest, whenever and wherever they run.

use std::path::Path;
use std::process::{Command, Stdio};

/// The epoch for a `--reproducible` build: `env` (a parsed `$SOURCE_DATE_EPOCH`) wins, then
/// `fetched` (the commit time of a git URL context), then the HEAD commit time of the git
/// work tree holding `context`, then 0.
pub fn epoch(context: &Path, fetched: Option<i64>, env: Option<i64>) -> i64 {
    env.or(fetched)
        .or_else(|| head_commit_time(context))
        .unwrap_or(0)
}

/// The committer time of HEAD of the git work tree `dir` is in; `None` when it is in none,
/// has no commit yet, or git is not installed (a build must not need git).
pub fn head_commit_time(dir: &Path) -> Option<i64> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["log", "-1", "--format=%ct"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_COMMITTER_DATE", "@1600000000 +0000")
            .env("GIT_AUTHOR_DATE", "@1500000000 +0000")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .status()
            .expect("git runs")
            .success();
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn env_wins_then_fetched_then_head_then_zero() {
        let t = tempfile::tempdir().expect("tempdir");
        let plain = t.path().join("plain");
        std::fs::create_dir(&plain).expect("mkdir");
        assert_eq!(epoch(&plain, None, None), 0);
        assert_eq!(epoch(&plain, Some(7), None), 7);
        assert_eq!(epoch(&plain, Some(7), Some(9)), 9);

        let repo = t.path().join("repo");
        std::fs::create_dir_all(repo.join("sub")).expect("mkdir");
        git(&repo, &["init", "-q"]);
        assert_eq!(head_commit_time(&repo), None, "no commit yet");
        std::fs::write(repo.join("sub/f"), "x").expect("write");
        git(&repo, &["add", "."]);
        git(&repo, &["commit", "-q", "-m", "m"]);
        // The committer time, not the author time; from a subdirectory too.
        assert_eq!(epoch(&repo, None, None), 1_600_000_000);
        assert_eq!(epoch(&repo.join("sub"), None, None), 1_600_000_000);
        assert_eq!(epoch(&repo, None, Some(5)), 5);
    }
}

//! Disk full (issue 7): the store on a 64 MiB tmpfs. A build whose RUN writes ~200 MiB, and a
//! pull into a store filled to the brim, must fail (exit ≠ 0) with an error that says the
//! disk is full and names the path; afterwards `hoist fsck` passes (only complete, verified
//! blobs), no mount is left under the store and no temp file under `<root>/tmp`. Once space
//! is freed, a small build succeeds. The tmpfs is unmounted by a drop guard.

#[path = "hardening_util/mod.rs"]
mod util;

use std::path::{Path, PathBuf};
use std::process::Command;
use util::*;

/// Unmounts the tmpfs even when an assertion fails.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount");
        assert!(st.success(), "mount -t tmpfs {}", dir.display());
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        for store in ["store", "store2"] {
            let _ = hoist::executor::cleanup_stale(&self.0.join(store).join("tmp/sandbox"));
        }
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn assert_disk_full_error(out: &str, what: &str, root: &Path) {
    let err = out
        .lines()
        .filter(|l| l.contains("error"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        err.contains("No space left on device") || err.contains("disk full"),
        "{what}: the error must say the disk is full:\n{out}"
    );
    assert!(
        err.contains(&*root.to_string_lossy()),
        "{what}: the error must name a path in the store ({}):\n{out}",
        root.display()
    );
}

fn assert_clean(root: &Path, when: &str) {
    assert_fsck_clean(root, when);
    assert!(
        mounts_under(root).is_empty(),
        "{when}: {:?}",
        mounts_under(root)
    );
    let scratch = scratch_files(root);
    assert!(scratch.is_empty(), "{when}: temp files left: {scratch:#?}");
}

#[test]
fn a_full_store_fails_clearly_and_recovers() {
    if !can_run() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let mnt = work.path().join("mnt");
    let _guard = Tmpfs::mount(&mnt, "64m");
    let root = mnt.join("store");
    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();

    // 1. A RUN that writes ~200 MiB into a 64 MiB store.
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {BASE}\nRUN dd if=/dev/zero of=/fill bs=1M count=200\n"),
    )
    .unwrap();
    let o = hoist(&root, &["build", "--progress=plain", ctx.to_str().unwrap()]);
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!o.status.success(), "the build must fail:\n{out}");
    assert_disk_full_error(&out, "RUN into a full store", &root);
    assert_clean(&root, "after the failed RUN");

    // 2. A pull into a store with (almost) no space left.
    let ballast = mnt.join("ballast");
    let _ = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", ballast.display()))
        .args(["bs=1M", "count=100"])
        .stderr(std::process::Stdio::null())
        .status();
    // A second, empty store on the same full disk.
    let root2 = mnt.join("store2");
    let o = hoist(&root2, &["pull", BASE]);
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!o.status.success(), "the pull must fail:\n{out}");
    assert_disk_full_error(&out, "pull into a full store", &root2);
    assert_clean(&root2, "after the failed pull");

    // 3. Space freed: a small build works.
    std::fs::remove_file(&ballast).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {BASE}\nRUN echo small > /small\n"),
    )
    .unwrap();
    ok(
        &hoist(&root, &["build", "--progress=plain", ctx.to_str().unwrap()]),
        "small build after freeing space",
    );
    assert_clean(&root, "after the small build");
}

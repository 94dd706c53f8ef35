//! Sandbox tests on the real kernel (need root, crun or runc, and /bin/busybox).

use hoist::executor::{Limits, Mount, MountKind, Network, OciRuntime, RunSpec, Sandbox};
use std::path::{Path, PathBuf};

fn can_run() -> bool {
    let ok = rustix::process::geteuid().is_root()
        && Path::new("/bin/busybox").exists()
        && OciRuntime::detect().is_ok();
    if !ok {
        eprintln!("skipped: needs root, /bin/busybox and crun or runc");
    }
    ok
}

/// A tiny rootfs from /bin/busybox, with /etc/passwd and /etc/group.
fn busybox_rootfs(dir: &Path) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    for a in [
        "sh", "echo", "cat", "id", "hostname", "ls", "mount", "ps", "touch", "mkdir", "ip",
        "sleep", "head", "dd", "wc", "grep", "true", "false", "kill", "env", "pwd", "rm", "mknod",
        "ifconfig", "tail", "awk",
    ] {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(a)).unwrap();
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("etc/group"),
        "root:x:0:\nwheel:x:10:app\napp:x:1000:\nextra:x:2000:app\n",
    )
    .unwrap();
}

struct Fixture {
    _t: tempfile::TempDir,
    lower: PathBuf,
    upper: PathBuf,
    pool: PathBuf,
}

fn fixture() -> Fixture {
    let t = tempfile::Builder::new()
        .prefix("hoist-exec-test")
        .tempdir_in("/var/tmp")
        .unwrap();
    let lower = t.path().join("lower");
    busybox_rootfs(&lower);
    let upper = t.path().join("layers/upper");
    std::fs::create_dir_all(&upper).unwrap();
    let pool = t.path().join("pool");
    Fixture {
        lower,
        upper,
        pool,
        _t: t,
    }
}

fn spec(f: &Fixture, script: &str) -> RunSpec {
    RunSpec {
        lowers: vec![f.lower.clone()],
        upper: Some(f.upper.clone()),
        argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: vec![],
        cwd: "/".into(),
        user: String::new(),
        hostname: "sandbox".into(),
        network: Network::Host,
        mounts: vec![],
        limits: Limits::default(),
    }
}

fn run(f: &Fixture, s: &RunSpec) -> (i32, String) {
    let rt = OciRuntime::detect().unwrap().with_pool(f.pool.clone());
    let mut out = Vec::new();
    let code = rt.run(s, &mut |b| out.extend_from_slice(b)).unwrap();
    (code, String::from_utf8_lossy(&out).into_owned())
}

/// Every entry in `dir` as "path mode uid:gid type".
fn tree(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut v: Vec<String> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            let t = if m.is_dir() {
                "d"
            } else if m.is_file() {
                "f"
            } else {
                "o"
            };
            format!(
                "/{} {:o} {}:{} {t}",
                e.path().strip_prefix(dir).unwrap().display(),
                m.mode() & 0o7777,
                m.uid(),
                m.gid()
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn upper_holds_exactly_the_change() {
    if !can_run() {
        return;
    }
    let f = fixture();
    let (code, out) = run(&f, &spec(&f, "echo x > /f"));
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        tree(&f.upper),
        [
            "/dev 755 0:0 d",
            "/f 644 0:0 f",
            "/proc 755 0:0 d",
            "/sys 755 0:0 d"
        ],
        "output: {out}"
    );
    assert_eq!(std::fs::read_to_string(f.upper.join("f")).unwrap(), "x\n");
}

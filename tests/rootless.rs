//! Rootless mode 1 (issue 15): hoist run by an ordinary user enters its own user namespace
//! (`src/userns/`). These tests run as root (as CI does) and make the unprivileged side
//! themselves with `common::rootless` (a user with or without subordinate ranges, a home it
//! owns, the real binary run as that user through `setpriv`).

mod common;

use common::rootless::{as_user, home, ready, user};
use common::{Hoist, lab::LAB_BASE, text};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The fixed epoch both the root and the rootless builds use, so their digests can match.
const EPOCH: &str = "1700000000";

fn ok(o: &Output, what: &str) {
    assert!(o.status.success(), "{what} failed:\n{}", text(o));
}

/// `hoist inspect IMAGE` as JSON.
fn inspect(h: Hoist, image: &str) -> serde_json::Value {
    let o = h.args(["inspect", image]).output();
    ok(&o, "inspect");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    match v {
        serde_json::Value::Array(mut a) if !a.is_empty() => a.swap_remove(0),
        v => v,
    }
}

/// `uid/gid mode name` of every entry of a gzip layer blob.
fn headers(blob: &Path) -> Vec<String> {
    let o = Command::new("tar")
        .args(["-tvzf"])
        .arg(blob)
        .args(["--numeric-owner"])
        .output()
        .unwrap();
    assert!(o.status.success(), "tar -tvzf {}", blob.display());
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!("{} {} {}", f[1], f[0], f[f.len() - 1])
        })
        .collect()
}

fn layer_blobs(store: &Path, inspect: &serde_json::Value) -> Vec<PathBuf> {
    let layers = inspect
        .pointer("/Manifest/layers")
        .and_then(|l| l.as_array())
        .cloned()
        .unwrap_or_default();
    layers
        .iter()
        .map(|l| {
            let d = l["digest"].as_str().unwrap();
            store
                .join("blobs/sha256")
                .join(d.trim_start_matches("sha256:"))
        })
        .collect()
}

const APP: &str = "FROM localhost:5000/busybox:latest
RUN mkdir -p /data /home/app && echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd \
 && echo 'app:x:1000:' >> /etc/group && chown 1000:1000 /home/app && chmod 4750 /data
COPY --chown=1000:1000 f.txt /data/f.txt
USER app
RUN id > /home/app/id.txt && touch /home/app/made-by-app
";

#[test]
fn rootless_build_equals_root_build_and_pushes() {
    if !ready() {
        return;
    }
    let u = user("hoist-rl", Some((400000, 65536)));
    let h = home(&u, &[("Dockerfile", APP), ("f.txt", "hello\n")]);
    let tag = format!("localhost:5000/rootless/app:{}", std::process::id());

    let o = as_user(&u, h.path())
        .epoch(EPOCH)
        .args(["build", "--progress", "plain", "-t", &tag, "--push", "."])
        .output();
    ok(&o, "rootless build");
    assert!(!text(&o).contains("single id"), "{}", text(&o));

    let root_store = tempfile::tempdir().unwrap();
    let o = Hoist::new(root_store.path())
        .epoch(EPOCH)
        .args(["--insecure-registry", "localhost:5000"])
        .args(["build", "--progress", "plain", "-t", "rootref:1"])
        .arg(h.path().join("ctx"))
        .output();
    ok(&o, "root build");

    let rl = inspect(as_user(&u, h.path()), &tag);
    let root = inspect(Hoist::new(root_store.path()), "rootref:1");
    let rl_blobs = layer_blobs(&h.path().join("store"), &rl);
    let root_blobs = layer_blobs(root_store.path(), &root);
    assert_eq!(rl_blobs.len(), 4, "{rl}");
    for (a, b) in rl_blobs.iter().zip(&root_blobs) {
        assert_eq!(headers(a), headers(b), "{} vs {}", a.display(), b.display());
    }
    let copy = headers(&rl_blobs[2]);
    assert!(
        copy.contains(&"1000/1000 -rw-r--r-- data/f.txt".to_string()),
        "{copy:?}"
    );
    let run = headers(&rl_blobs[1]);
    assert!(run.contains(&"0/0 drwsr-x--- data/".to_string()), "{run:?}");
    assert!(
        headers(&rl_blobs[3]).contains(&"1000/1000 -rw-r--r-- home/app/made-by-app".to_string())
    );
    // Same bytes, same config: the digests are a root build's.
    assert!(rl["Id"].is_string(), "{rl}");
    assert_eq!(rl["Id"], root["Id"], "config digest");
    assert_eq!(rl["Digest"], root["Digest"], "manifest digest");

    // The pushed image is in the registry: a fresh root store pulls it.
    let pulled = tempfile::tempdir().unwrap();
    let o = Hoist::new(pulled.path())
        .args(["--insecure-registry", "localhost:5000", "pull", &tag])
        .output();
    ok(&o, "pull of the pushed image");

    // The store holds the real owners: id 1000 of the image is host id 400000 + 999.
    let o = Command::new("find")
        .arg(h.path().join("store"))
        .args(["-name", "f.txt", "-printf", "%U\n"])
        .output()
        .unwrap();
    let owners = String::from_utf8_lossy(&o.stdout);
    assert!(
        owners.lines().any(|l| l == (400000 + 999).to_string()),
        "{owners}"
    );
}

#[test]
fn user_without_ranges_gets_single_id_images_and_the_note() {
    if !ready() {
        return;
    }
    let u = user("hoist-rl1", None);
    let df = "FROM localhost:5000/busybox:latest
RUN echo hi > /hi && id -u > /who
COPY --chown=1000:1000 f.txt /f.txt
RUN stat -c 'owner on disk: %u' /f.txt
";
    let h = home(
        &u,
        &[
            ("Dockerfile", df),
            ("f.txt", "x\n"),
            (
                "Dockerfile.user",
                "FROM localhost:5000/busybox:latest\nUSER 1000\nRUN true\n",
            ),
            // Steps that chown to the USER without running as it: they build, root-owned.
            (
                "Dockerfile.workdir",
                "FROM localhost:5000/busybox:latest\nUSER 1000:1000\nWORKDIR /home/app/w\n\
                 COPY --chown=1000 f.txt ./\n",
            ),
        ],
    );
    let o = as_user(&u, h.path())
        .args(["build", "--progress", "plain", "-t", "single:1", "."])
        .output();
    ok(&o, "single-id build");
    let t = text(&o);
    assert_eq!(t.matches("rootless with a single id").count(), 1, "{t}");
    assert!(t.contains("/etc/subuid"), "{t}");
    // RUN ran as root; the COPY layer records the owner asked for (its tar headers come
    // from the request), but extracted for the next step the file stays root's.
    assert!(t.contains("owner on disk: 0"), "{t}");
    let i = inspect(as_user(&u, h.path()), "single:1");
    let blobs = layer_blobs(&h.path().join("store"), &i);
    assert!(
        headers(&blobs[2]).contains(&"1000/1000 -rw-r--r-- f.txt".to_string()),
        "{:?}",
        headers(&blobs[2])
    );

    let o = as_user(&u, h.path())
        .args(["build", "-f", "Dockerfile.workdir", "-t", "single:wd", "."])
        .output();
    ok(&o, "single-id WORKDIR for a non-root USER");

    let o = as_user(&u, h.path())
        .args(["build", "-f", "Dockerfile.user", "."])
        .output();
    assert!(!o.status.success());
    assert!(
        text(&o)
            .contains("cannot run as uid 1000 (gid 1000): rootless hoist maps only your own id"),
        "{}",
        text(&o)
    );
}

#[test]
fn rootless_run_with_host_and_no_network() {
    if !ready() {
        return;
    }
    let u = user("hoist-rl", Some((400000, 65536)));
    let h = home(&u, &[]);
    let o = as_user(&u, h.path())
        .args(["run", LAB_BASE, "sh", "-c"])
        .arg("id -u; cat /proc/self/uid_map; ls /sys/class/net | grep -c .")
        .output();
    ok(&o, "rootless run");
    let out = String::from_utf8_lossy(&o.stdout);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("0"), "{out}");
    let maps: Vec<Vec<String>> = lines
        .by_ref()
        .take(2)
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect();
    assert_eq!(maps[0], ["0", &u.uid.to_string(), "1"], "{out}");
    assert_eq!(maps[1], ["1", "400000", "65536"], "{out}");

    let o = as_user(&u, h.path())
        .args(["run", "--network", "none", LAB_BASE, "ls", "/sys/class/net"])
        .output();
    ok(&o, "rootless run --network none");
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "lo");

    let o = as_user(&u, h.path())
        .args(["run", "--memory", "64m", LAB_BASE, "sh", "-c", "exit 3"])
        .output();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("limits are not applied"), "{}", text(&o));
}

#[test]
fn base_layer_device_nodes_are_left_out_rootless() {
    if !ready() {
        return;
    }
    // A base image with a device node in a layer (as debian's /dev/console), made as root.
    let base = format!("localhost:5000/rootless/devbase:{}", std::process::id());
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM localhost:5000/busybox:latest\nRUN mknod /devnode c 1 3 && mkfifo /fifo\n",
    )
    .unwrap();
    let root_store = tempfile::tempdir().unwrap();
    let o = Hoist::new(root_store.path())
        .args(["build", "-t", &base, "--push"])
        .arg(ctx.path())
        .output();
    ok(&o, "root build of the base");

    let u = user("hoist-rl", Some((400000, 65536)));
    let df = format!("FROM {base}\nRUN ls -l /fifo && test ! -e /devnode && echo extracted\n");
    let h = home(&u, &[("Dockerfile", &df)]);
    let o = as_user(&u, h.path())
        .args(["build", "--progress", "plain", "."])
        .output();
    ok(&o, "rootless build on a base with a device node");
    assert!(text(&o).contains("extracted"), "{}", text(&o));
}

/// Rootless hoist is one process (it enters its namespace in place): a SIGTERM sent to the
/// pid the caller started reaches hoist directly, which stops the command (PID 1 of its
/// namespace ignores SIGTERM, so after the grace period it is killed) and exits non-zero,
/// leaving nothing running.
#[test]
fn rootless_sigterm_stops_the_run_and_leaves_no_process() {
    if !ready() {
        return;
    }
    use std::io::BufRead;
    let u = user("hoist-rl", Some((400000, 65536)));
    let h = home(&u, &[]);
    let marker = format!("sleep {}", 300 + std::process::id() % 600);
    let mut child = as_user(&u, h.path())
        .args(["run", LAB_BASE, "sh", "-c"])
        .arg(format!("echo started; exec {marker}"))
        .command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn hoist");
    let mut first = String::new();
    let stdout = child.stdout.take().expect("stdout");
    std::io::BufReader::new(stdout)
        .read_line(&mut first)
        .expect("read");
    assert_eq!(first.trim(), "started");
    let running = |what: &str| {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
            .any(|c| String::from_utf8_lossy(&c).replace('\0', " ").trim() == what)
    };
    // `echo` runs before the `exec`: give the shell a moment to become the sleep.
    let up = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !running(&marker) {
        assert!(
            std::time::Instant::now() < up,
            "the RUN's process should be up"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "hoist ignored SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(!status.success(), "{status:?}");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(!running(&marker), "the RUN's process outlived hoist");
}

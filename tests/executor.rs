//! Sandbox tests on the real kernel (need root, crun or runc, and /bin/busybox).

#![allow(clippy::print_stderr)]

mod common;

use common::lab::{Need, ready};
use hoist::executor::{Isolation, Limits, Mount, MountKind, Network, OciRuntime, RunSpec};
use std::path::{Path, PathBuf};

/// Tests run one at a time: some compare the host's mount table before and after.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Root, /bin/busybox and crun or runc; skips or fails as `common::lab` says.
fn can_run() -> bool {
    ready(&[Need::Root, Need::Busybox, Need::OciRuntime])
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
        security: Default::default(),
        sandbox: Default::default(),
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
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
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

fn discard(f: &Fixture, script: &str) -> RunSpec {
    let mut s = spec(f, script);
    s.upper = None;
    s
}

#[test]
fn isolation_pid_hostname_mounts() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run() {
        return;
    }
    let f = fixture();
    let (code, out) = run(
        &f,
        &discard(
            &f,
            "echo pid=$$ ppid=$PPID; hostname; cat /etc/hostname; cat /proc/mounts",
        ),
    );
    assert_eq!(code, 0, "{out}");
    // The command is PID 1, as in a BuildKit RUN.
    assert_eq!(out.lines().next(), Some("pid=1 ppid=0"), "{out}");
    assert!(out.contains("\nsandbox\nsandbox\n"), "{out}");
    // Only the sandbox's own mounts are visible, none of the host's.
    let expected = [
        "/",
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/etc/resolv.conf",
        "/etc/hosts",
        "/etc/hostname",
    ];
    for l in out.lines().skip(3) {
        let point = l.split(' ').nth(1).unwrap_or("");
        assert!(
            expected.contains(&point) || point.starts_with("/proc/") || point.starts_with("/sys/"),
            "unexpected mount {l}\n{out}"
        );
        // Read-only as BuildKit mounts them: the /etc files and the cgroup filesystem(s)
        // (cgroup v1's tmpfs holding the hierarchies is the runtime's, and stays writable).
        let opts = l.split(' ').nth(3).unwrap_or("");
        if point.starts_with("/etc/")
            || (point.starts_with("/sys/fs/cgroup") && !l.starts_with("tmpfs "))
        {
            assert!(opts.split(',').any(|o| o == "ro"), "{l} is writable\n{out}");
        }
    }
    assert!(out.contains(" /sys/fs/cgroup"), "no cgroup mount\n{out}");
}

#[test]
fn cannot_mount_or_write_outside_root() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run() {
        return;
    }
    let f = fixture();
    let canary = f._t.path().join("canary");
    std::fs::write(&canary, "host").unwrap();
    let script = format!(
        "mount -t tmpfs none /tmp && echo MOUNTED; echo pwned > {c} ; cat {c} 2>&1; \
         mknod /tmp/sda b 8 0 2>/dev/null && cat /tmp/sda > /dev/null 2>&1 && echo READ_DISK; \
         cat /proc/kcore > /dev/null 2>&1 && echo KCORE; echo done",
        c = canary.display()
    );
    let (code, out) = run(&f, &discard(&f, &script));
    assert_eq!(code, 0, "{out}");
    assert!(
        !out.contains("MOUNTED") && !out.contains("READ_DISK") && !out.contains("KCORE"),
        "{out}"
    );
    assert_eq!(std::fs::read_to_string(&canary).unwrap(), "host");
    // runc copies stdout and stderr through separate pipes: no order between the two.
    assert!(out.lines().any(|l| l == "done"), "{out}");
}

#[test]
fn users_and_groups() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run() {
        return;
    }
    let f = fixture();
    let mut s = discard(&f, "id; grep Groups: /proc/self/status; echo HOME=$HOME");
    s.user = "app".into();
    let (code, out) = run(&f, &s);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("uid=1000(app) gid=1000(app) groups=10(wheel),1000(app),2000(extra)"),
        "{out}"
    );
    // The process's groups (the kernel sorts them): the primary gid is one, as in BuildKit.
    assert!(out.contains("Groups:\t10 1000 2000 \n"), "{out}");
    assert!(out.contains("HOME=/home/app"), "{out}");
    s.user = "1234:wheel".into();
    let (_, out) = run(&f, &s);
    // BuildKit/runc always give the primary gid as a group.
    assert!(
        out.contains("uid=1234 gid=10(wheel) groups=10(wheel)\n"),
        "{out}"
    );
    assert!(out.contains("Groups:\t10 \n"), "{out}");
    assert!(out.contains("HOME=/\n"), "{out}");
    s.user = "ghost".into();
    let rt = OciRuntime::detect().unwrap().with_pool(f.pool.clone());
    let e = rt.run(&s, &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("unable to find user ghost"), "{e}");
}

#[test]
fn network_modes() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run() {
        return;
    }
    let f = fixture();
    let mut s = discard(
        &f,
        "ls /sys/class/net; ip addr show lo | grep -c 'state UP\\|LOOPBACK,UP'",
    );
    s.network = Network::None;
    let (code, out) = run(&f, &s);
    assert_eq!(code, 0, "{out}");
    let ifs: Vec<&str> = out
        .lines()
        .take_while(|l| !l.chars().all(|c| c.is_ascii_digit()))
        .collect();
    assert_eq!(
        ifs.join(" ").split_whitespace().collect::<Vec<_>>(),
        ["lo"],
        "{out}"
    );
    s.network = Network::Host;
    let (_, out) = run(&f, &s);
    let host: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(host.len() > 1, "host has only {host:?}");
    for h in host {
        assert!(out.contains(&h), "host interface {h} not visible: {out}");
    }
}

#[test]
fn exit_codes_and_signals() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run() {
        return;
    }
    let f = fixture();
    assert_eq!(run(&f, &discard(&f, "exit 3")).0, 3);
    assert_eq!(run(&f, &discard(&f, "true")).0, 0);
    assert_eq!(run(&f, &discard(&f, "sh -c 'kill -9 $$'; exit $?")).0, 137);
}

#[test]
fn memory_limit_kills() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run() {
        return;
    }
    let f = fixture();
    // PID 1 itself grows without bound: the OOM killer ends it, 128+SIGKILL.
    let mut s = discard(&f, "");
    s.argv = vec![
        "/bin/awk".into(),
        "BEGIN{s=\"xxxxxxxx\"; while(1) s = s s}".into(),
    ];
    s.limits.memory = Some(32 << 20);
    assert_eq!(run(&f, &s).0, 137);
    // Within the limits all is fine.
    let mut s = discard(
        &f,
        "dd if=/dev/zero of=/tmp/x bs=1M count=4 2>/dev/null; echo ok",
    );
    s.limits = Limits {
        memory: Some(256 << 20),
        cpus: Some(0.5),
        pids: Some(50),
    };
    let (code, out) = run(&f, &s);
    assert_eq!((code, out.as_str()), (0, "ok\n"));
}

#[test]
fn pids_limit() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run() {
        return;
    }
    let f = fixture();
    let script = "for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait; echo end";
    let (code, out) = run(&f, &discard(&f, script));
    assert_eq!((code, out.as_str()), (0, "end\n"));
    let mut s = discard(&f, script);
    s.limits.pids = Some(5);
    let (code, out) = run(&f, &s);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("can't fork"), "{out}");
}

fn mountinfo() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(|l| l.split(' ').skip(4).take(1).collect())
        .collect();
    v.sort();
    v
}

#[test]
fn cleanup_leaves_no_mount_process_or_dir() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run() {
        return;
    }
    let f = fixture();
    let before = mountinfo();
    let mut s = spec(&f, "sleep 100 & echo started");
    s.mounts = vec![
        Mount {
            target: "/cache".into(),
            kind: MountKind::Tmpfs {
                size: Some(1 << 20),
            },
        },
        Mount {
            target: "/etc/ro/src".into(),
            kind: MountKind::Bind {
                source: f.lower.join("etc"),
                readonly: true,
            },
        },
    ];
    let (code, out) = run(&f, &s);
    assert_eq!((code, out.as_str()), (0, "started\n"));
    // The sleep was killed with the sandbox: no process is left in our sandboxes' cgroups.
    let tag = format!("/hoist/hoist-{}-", std::process::id());
    let procs: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("cgroup")).is_ok_and(|c| c.contains(&tag))
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(procs.is_empty(), "{procs:?}");
    let after = mountinfo();
    assert_eq!(before, after);
    // Only the runtime's state dir remains in the pool, with no container in it.
    let left: Vec<_> = std::fs::read_dir(&f.pool)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, ["runtime-state"]);
    assert_eq!(
        std::fs::read_dir(f.pool.join("runtime-state"))
            .unwrap()
            .count(),
        0
    );
    // No work dir beside the upper; mount stubs (/cache, /etc/ro, /etc) removed.
    assert_eq!(
        std::fs::read_dir(f.upper.parent().unwrap())
            .unwrap()
            .count(),
        1
    );
    assert_eq!(
        tree(&f.upper),
        ["/dev 755 0:0 d", "/proc 755 0:0 d", "/sys 755 0:0 d"]
    );
}

#[test]
fn workdir_in_proc_rejected() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run() {
        return;
    }
    let f = fixture();
    let mut s = spec(&f, "pwd");
    s.cwd = "/proc/self/fd/7".into();
    let rt = OciRuntime::detect().unwrap().with_pool(f.pool.clone());
    let e = rt.run(&s, &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("inside /proc"), "{e}");
    assert_eq!(std::fs::read_dir(&f.upper).unwrap().count(), 0);
}

#[test]
fn workdir_and_env() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run() {
        return;
    }
    let f = fixture();
    let mut s = spec(&f, "pwd; echo $A; echo $PATH");
    s.cwd = "/srv/app".into();
    s.env = vec!["A=b c".into()];
    let (code, out) = run(&f, &s);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        "/srv/app\nb c\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );
    assert!(f.upper.join("srv/app").is_dir());
}

#[test]
fn many_layers() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run() {
        return;
    }
    let f = fixture();
    let mut lowers = vec![f.lower.clone()];
    for i in 0..150 {
        let d =
            f._t.path()
                .join(format!("layers/a-rather-long-layer-directory-name-{i:03}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("f{i}")), format!("{i}")).unwrap();
        // Upper layers win.
        std::fs::write(d.join("top"), format!("{i}")).unwrap();
        lowers.push(d);
    }
    let mut s = discard(&f, "ls / | grep -c '^f'; cat /top; echo; cat /f0; echo");
    s.lowers = lowers.clone();
    let (code, out) = run(&f, &s);
    assert_eq!((code, out.as_str()), (0, "150\n149\n0\n"));
    let v = OciRuntime::detect()
        .unwrap()
        .with_pool(f.pool.clone())
        .view(&lowers)
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(v.path().join("top")).unwrap(),
        "149"
    );
    assert!(
        std::fs::write(v.path().join("new"), "x").is_err(),
        "view is writable"
    );
    let p = v.path().to_path_buf();
    drop(v);
    assert!(!p.exists());
    let one = OciRuntime::detect()
        .unwrap()
        .with_pool(f.pool.clone())
        .view(&lowers[1..2])
        .unwrap();
    assert_eq!(std::fs::read_to_string(one.path().join("f0")).unwrap(), "0");
    assert!(
        std::fs::write(one.path().join("new"), "x").is_err(),
        "single-layer view is writable"
    );
    drop(one);
    assert!(!lowers[1].join("new").exists());
    assert!(
        !mountinfo()
            .iter()
            .any(|m| m.starts_with(f.pool.to_str().unwrap()))
    );
}

#[test]
fn upper_clean_whatever_etc_holds() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run() {
        return;
    }
    // /etc with the files present, /etc without them (covered above), no /etc at all, and
    // /dev /proc /sys already in the image.
    for variant in ["files", "no-etc", "has-dev"] {
        let f = fixture();
        match variant {
            "files" => {
                for n in ["hosts", "resolv.conf", "hostname"] {
                    std::fs::write(f.lower.join("etc").join(n), "image\n").unwrap();
                }
            }
            "no-etc" => std::fs::remove_dir_all(f.lower.join("etc")).unwrap(),
            _ => {
                for d in ["dev", "proc", "sys"] {
                    std::fs::create_dir(f.lower.join(d)).unwrap();
                }
            }
        }
        let mut s = spec(&f, "cat /etc/hosts > /dev/null && echo x > /f");
        s.mounts = vec![Mount {
            target: "/mnt/cache".into(),
            kind: MountKind::Tmpfs { size: None },
        }];
        let (code, out) = run(&f, &s);
        assert_eq!(code, 0, "{variant}: {out}");
        let expected: &[&str] = if variant == "has-dev" {
            &["/f 644 0:0 f"]
        } else {
            &[
                "/dev 755 0:0 d",
                "/f 644 0:0 f",
                "/proc 755 0:0 d",
                "/sys 755 0:0 d",
            ]
        };
        assert_eq!(tree(&f.upper), expected, "{variant}");
        if variant == "files" {
            assert_eq!(
                std::fs::read_to_string(f.lower.join("etc/hosts")).unwrap(),
                "image\n"
            );
        }
    }
}

/// A run of `argv` (no shell added), changes discarded.
fn argv_spec(f: &Fixture, argv: &[&str]) -> RunSpec {
    let mut s = discard(f, "");
    s.argv = argv.iter().map(|a| a.to_string()).collect();
    s
}

/// `s` with hoist's init as PID 1 (`hoist run --init`).
fn with_init(mut s: RunSpec) -> RunSpec {
    s.security.init = true;
    s
}

/// States of every process in the sandbox, from `cat /proc/[0-9]*/stat` output lines.
fn proc_states(out: &str) -> Vec<(String, char)> {
    out.lines()
        .filter_map(|l| {
            let (head, rest) = l.rsplit_once(") ")?;
            let comm = head.split_once(" (")?.1.to_string();
            Some((comm, rest.chars().next()?))
        })
        .collect()
}

#[test]
fn init_reaps_orphans() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run() {
        return;
    }
    let f = fixture();
    // The subshell leaves `sleep 0.1` orphaned; the user's first process then execs into a
    // `sleep` that never waits. The orphan is re-parented to PID 1: without a reaping init it
    // would stay a zombie until the sandbox ends.
    let script = "(sleep 0.1 &); (sleep 0.6; cat /proc/[0-9]*/stat) & exec sleep 1";
    let (code, out) = run(&f, &with_init(argv_spec(&f, &["/bin/sh", "-c", script])));
    assert_eq!(code, 0, "{out}");
    let states = proc_states(&out);
    assert!(
        states.iter().any(|(c, _)| c == "hoist-init"),
        "PID 1 not seen: {out}"
    );
    assert!(states.len() >= 3, "{out}");
    let zombies: Vec<_> = states.iter().filter(|(_, s)| *s == 'Z').collect();
    assert!(zombies.is_empty(), "zombies: {zombies:?}\n{out}");
}

#[test]
fn init_propagates_exit_codes() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run() {
        return;
    }
    let f = fixture();
    let code = |argv: &[&str]| run(&f, &with_init(argv_spec(&f, argv)));
    assert_eq!(code(&["/bin/true"]).0, 0);
    assert_eq!(code(&["false"]).0, 1, "PATH lookup");
    assert_eq!(code(&["/bin/sh", "-c", "exit 3"]).0, 3);
    // The user's process itself killed by a signal: 128+signal, as a shell reports it.
    assert_eq!(code(&["/bin/sh", "-c", "kill -9 $$"]).0, 137);
    assert_eq!(code(&["/bin/sh", "-c", "kill -TERM $$"]).0, 143);
    let (c, out) = code(&["no-such-command", "x"]);
    assert_eq!(c, 127, "{out}");
    assert!(
        out.contains("\"no-such-command\": executable file not found in $PATH"),
        "{out}"
    );
    let (c, out) = code(&["/etc/passwd"]);
    assert_eq!(c, 126, "{out}");
}

#[test]
fn command_as_pid_1_exit_codes() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run() {
        return;
    }
    let f = fixture();
    let code = |argv: &[&str]| run(&f, &argv_spec(&f, argv));
    assert_eq!(code(&["/bin/true"]).0, 0);
    assert_eq!(code(&["false"]).0, 1, "PATH lookup");
    assert_eq!(code(&["/bin/sh", "-c", "exit 3"]).0, 3);
    // PID 1 of a namespace ignores its own signals that it has no handler for, as in a
    // BuildKit RUN: the shell goes on.
    assert_eq!(code(&["/bin/sh", "-c", "kill -TERM $$; exit 4"]).0, 4);
    // A command that cannot start fails the run with the runtime's message.
    let (c, out) = code(&["no-such-command", "x"]);
    assert_ne!(c, 0, "{out}");
    assert!(out.contains("no-such-command"), "{out}");
}

#[test]
fn init_forwards_signals_to_the_command() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run() {
        return;
    }
    let f = fixture();
    for sig in ["TERM", "INT", "HUP", "QUIT", "USR1", "USR2"] {
        let script = format!("trap 'echo got {sig}; exit 7' {sig}; kill -{sig} 1; sleep 5 & wait");
        let (code, out) = run(&f, &with_init(argv_spec(&f, &["/bin/sh", "-c", &script])));
        assert_eq!((code, out.as_str()), (7, format!("got {sig}\n").as_str()));
    }
}

#[test]
fn only_stdio_fds_reach_the_command() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run() {
        return;
    }
    let f = fixture();
    // ls itself opens the directory, as the lowest free fd: 3.
    let (code, out) = run(&f, &argv_spec(&f, &["/bin/ls", "/proc/self/fd"]));
    assert_eq!(code, 0, "{out}");
    let fds: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "{out}");
    // With `--init`, the init keeps nothing open beyond stdio either (nor its memfd on 3).
    let (code, out) = run(&f, &with_init(argv_spec(&f, &["/bin/ls", "/proc/1/fd"])));
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["0", "1", "2"]);
}

#[test]
fn init_is_no_file_on_disk_and_leaves_no_trace() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run() {
        return;
    }
    let f = fixture();
    let (code, out) = run(
        &f,
        &with_init(spec(
            &f,
            "readlink /proc/1/exe; cat /proc/1/comm; echo $PPID; echo x > /f",
        )),
    );
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("/memfd:hoist-init"), "{out}");
    assert!(!Path::new(lines[0]).exists(), "{out}");
    assert_eq!(lines[1..], ["hoist-init", "1"]);
    // The layer holds the command's change and nothing of the init.
    assert_eq!(
        tree(&f.upper),
        [
            "/dev 755 0:0 d",
            "/f 644 0:0 f",
            "/proc 755 0:0 d",
            "/sys 755 0:0 d"
        ]
    );
}

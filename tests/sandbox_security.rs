//! The RUN sandbox as BuildKit sets it up, and `hoist run` as `docker run` does (issue 12,
//! section 2), with the real binary as root against the lab registry:
//! - the command is PID 1 (`echo $$` prints 1); `hoist run --init` puts hoist's init first;
//! - Docker's default seccomp profile applies (`Seccomp: 2`, `unshare -U` refused), unless
//!   `--security-opt seccomp=unconfined`; `seccomp=PROFILE.json` applies the user's profile;
//! - `no_new_privs` is off, so a setuid-root program run as `USER app` runs with euid 0;
//!   `--security-opt no-new-privileges` turns it on;
//! - a runtime without seccomp: the build says so once and goes on; a named profile fails.

#![allow(clippy::print_stderr)]

mod common;

use common::lab::{LAB_BASE as BASE, Need, ready};
use common::{hoist, text};
use std::path::Path;

fn can_run() -> bool {
    ready(&[Need::Root, Need::LabRegistry, Need::OciRuntime])
}

/// A build context holding only `dockerfile`.
fn context(dockerfile: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("Dockerfile"), dockerfile).unwrap();
    d
}

/// `hoist build --progress plain CONTEXT`; panics with the output when it fails.
fn build(root: &Path, dockerfile: &str) -> String {
    let c = context(dockerfile);
    let o = hoist(
        root,
        &[
            "build",
            "--progress",
            "plain",
            "--no-cache",
            &c.path().to_string_lossy(),
        ],
    );
    let t = text(&o);
    assert!(o.status.success(), "build failed:\n{t}");
    t
}

/// `hoist run [flags] BASE sh -c SCRIPT`: (exit code, stdout + stderr).
fn run(root: &Path, flags: &[&str], script: &str) -> (i32, String) {
    let mut args = vec!["run"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[BASE, "sh", "-c", script]);
    let o = hoist(root, &args);
    (o.status.code().unwrap_or(-1), text(&o))
}

/// What every check script prints: PID, the status lines, and whether `unshare -U` worked.
const PROBE: &str = "echo pid=$$; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; \
                     if unshare -U true 2>/dev/null; then echo UNSHARE_OK; \
                     else echo UNSHARE_REFUSED; fi";

#[test]
fn run_steps_get_buildkits_sandbox() {
    if !can_run() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let t = build(root.path(), &format!("FROM {BASE}\nRUN {PROBE}\n"));
    assert!(t.contains(" pid=1\n"), "the RUN's shell is PID 1:\n{t}");
    assert!(t.contains(" Seccomp:\t2\n"), "seccomp filter applied:\n{t}");
    assert!(t.contains(" NoNewPrivs:\t0\n"), "no_new_privs off:\n{t}");
    assert!(t.contains(" UNSHARE_REFUSED\n"), "unshare allowed:\n{t}");
}

#[test]
fn setuid_programs_work_in_run() {
    if !can_run() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    // A setuid-root copy of busybox; busybox drops setuid rights for its applets unless its
    // config says to keep them (as `sudo` would keep them, by design).
    let t = build(
        root.path(),
        &format!(
            "FROM {BASE}\n\
             RUN echo 'app:x:1000:1000::/tmp:/bin/sh' >> /etc/passwd && mkdir -p /opt/s && cp /bin/busybox /opt/s/busybox \
             && chmod 4755 /opt/s/busybox \
             && printf '[SUID]\\nid = ssx root.root\\n' > /etc/busybox.conf \
             && chmod 600 /etc/busybox.conf\n\
             USER app\n\
             RUN echo \"ruid=$(id -u) euid=$(/opt/s/busybox id -u)\"\n"
        ),
    );
    assert!(t.contains(" ruid=1000 euid=0\n"), "{t}");
}

#[test]
fn hoist_run_is_docker_run() {
    if !can_run() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let (code, out) = run(root.path(), &[], PROBE);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out, "pid=1\nNoNewPrivs:\t0\nSeccomp:\t2\nUNSHARE_REFUSED\n",
        "{out}"
    );
    // `--init`: hoist's init is PID 1, the command its child.
    let (code, out) = run(
        root.path(),
        &["--init"],
        "cat /proc/1/comm; test $$ != 1 && echo child",
    );
    assert_eq!((code, out.as_str()), (0, "hoist-init\nchild\n"));
}

#[test]
fn security_opts_change_the_sandbox() {
    if !can_run() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let (code, out) = run(
        root.path(),
        &["--security-opt", "seccomp=unconfined"],
        PROBE,
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Seccomp:\t0\n") && out.contains("UNSHARE_OK\n"),
        "{out}"
    );

    let (code, out) = run(root.path(), &["--security-opt", "no-new-privileges"], PROBE);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("NoNewPrivs:\t1\n") && out.contains("Seccomp:\t2\n"),
        "{out}"
    );

    // A user's profile in Docker's format: everything allowed but mkdir.
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let (code, out) = run(
        root.path(),
        &["--security-opt", &opt],
        "grep Seccomp: /proc/self/status; mkdir /x || echo REFUSED; \
         unshare -U true && echo UNSHARE_OK",
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Seccomp:\t2\n"), "{out}");
    assert!(
        out.contains("REFUSED\n") && out.contains("UNSHARE_OK\n"),
        "{out}"
    );

    // Mistakes are named before anything runs.
    std::fs::write(&profile, "{").unwrap();
    let (code, out) = run(root.path(), &["--security-opt", &opt], "echo RAN");
    assert_ne!(code, 0);
    assert!(
        out.contains("not a seccomp profile in Docker's format") && !out.contains("RAN"),
        "{out}"
    );
    let (code, out) = run(root.path(), &["--security-opt", "apparmor=x"], "echo RAN");
    assert_ne!(code, 0);
    assert!(
        out.contains("--security-opt \"apparmor=x\"") && !out.contains("RAN"),
        "{out}"
    );
}

#[test]
fn a_runtime_without_seccomp_is_named_once_and_the_build_goes_on() {
    if !can_run() {
        return;
    }
    // The real runtime behind a wrapper whose `--version` says it was built without
    // libseccomp, as runc says it then.
    let real = hoist::executor::OciRuntime::detect().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wrapper = dir.path().join("runc");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'runc version 1.1.5'; \
             echo 'spec: 1.0.2-dev'; exit 0; fi\nexec {} \"$@\"\n",
            real.binary().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();

    let root = tempfile::tempdir().unwrap();
    let c = context(&format!(
        "FROM {BASE}\nRUN grep Seccomp: /proc/self/status\nRUN echo second\n"
    ));
    let o = common::Hoist::new(root.path())
        .env("HOIST_RUNTIME", &wrapper)
        .args(["build", "--progress", "plain", "--no-cache"])
        .arg(c.path())
        .output();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let warning = "was built without seccomp support: running without Docker's default seccomp \
                   profile";
    assert_eq!(t.matches(warning).count(), 1, "{t}");
    assert!(
        t.contains(" Seccomp:\t0\n") && t.contains(" second\n"),
        "{t}"
    );

    // A profile asked for by name is not silently dropped.
    let profile = dir.path().join("p.json");
    std::fs::write(&profile, r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#).unwrap();
    let o = common::Hoist::new(root.path())
        .env("HOIST_RUNTIME", &wrapper)
        .args(["run", "--security-opt"])
        .arg(format!("seccomp={}", profile.display()))
        .args([BASE, "echo", "RAN"])
        .output();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains(&format!(
            "cannot apply the seccomp profile {}: the OCI runtime {} was built without \
             seccomp support",
            profile.display(),
            wrapper.display()
        )) && !t.contains("RAN"),
        "{t}"
    );
}

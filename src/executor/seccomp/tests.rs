//! Rendering profiles: Docker's default for the sandbox's capabilities on amd64/arm64 hosts,
//! conditions, and the errors a bad `PROFILE.json` gets.

use super::*;
use serde_json::{Value, json};

fn amd64(kernel: (u64, u64)) -> Host {
    Host {
        arch: "amd64",
        seccomp_arch: Some(Arch::ScmpArchX86_64),
        kernel,
    }
}

fn arm64() -> Host {
    Host {
        arch: "arm64",
        seccomp_arch: Some(Arch::ScmpArchAarch64),
        kernel: (6, 1),
    }
}

/// Docker's default capabilities, as the sandbox has them.
fn docker_caps() -> Vec<String> {
    [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ]
    .map(String::from)
    .to_vec()
}

fn rendered(p: &Profile, caps: &[String], host: &Host) -> Value {
    serde_json::to_value(render(p, caps, host).unwrap().unwrap()).unwrap()
}

/// Every rule whose names include `name`, as JSON.
fn rules_for(v: &Value, name: &str) -> Vec<Value> {
    v["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["names"].as_array().unwrap().iter().any(|n| n == name))
        .cloned()
        .collect()
}

#[test]
fn default_profile_parses() {
    let p = Profile::docker_default();
    assert_eq!(p.default_action, Some(LinuxSeccompAction::ScmpActErrno));
    assert_eq!(p.default_errno_ret, Some(1), "EPERM");
    assert!(p.syscalls.as_ref().unwrap().len() > 30);
}

#[test]
fn default_for_docker_caps_on_amd64() {
    let v = rendered(Profile::docker_default(), &docker_caps(), &amd64((6, 1)));
    assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(v["defaultErrnoRet"], 1);
    assert_eq!(
        v["architectures"],
        json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
    );
    // Plain syscalls are allowed.
    assert_eq!(rules_for(&v, "read")[0]["action"], "SCMP_ACT_ALLOW");
    // CAP_SYS_ADMIN's group (unshare, mount, keyctl is never listed) is left out: unshare
    // and mount fall to the default EPERM.
    assert!(rules_for(&v, "unshare").is_empty());
    assert!(rules_for(&v, "mount").is_empty());
    assert!(rules_for(&v, "keyctl").is_empty());
    // clone: only without namespace flags (the excludes-CAP_SYS_ADMIN rule for non-s390).
    let clone = rules_for(&v, "clone");
    assert_eq!(clone.len(), 1, "{clone:?}");
    assert_eq!(clone[0]["args"][0]["index"], 0);
    assert_eq!(clone[0]["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
    // clone3 answers ENOSYS, so libc falls back to the filtered clone.
    let clone3 = rules_for(&v, "clone3");
    assert_eq!(clone3.len(), 1);
    assert_eq!(
        (&clone3[0]["action"], &clone3[0]["errnoRet"]),
        (&json!("SCMP_ACT_ERRNO"), &json!(38))
    );
    // Arch-conditional: amd64's arch_prctl in, arm's set_tls out.
    assert_eq!(rules_for(&v, "arch_prctl").len(), 1);
    assert!(rules_for(&v, "set_tls").is_empty());
    // Kernel-conditional: ptrace from 4.8 on (and not by CAP_SYS_PTRACE, which it lacks).
    assert_eq!(rules_for(&v, "ptrace").len(), 1);
    let old = rendered(Profile::docker_default(), &docker_caps(), &amd64((4, 4)));
    assert!(rules_for(&old, "ptrace").is_empty());
    // chroot is allowed because CAP_SYS_CHROOT is one of Docker's defaults.
    assert_eq!(rules_for(&v, "chroot").len(), 1);
}

#[test]
fn capabilities_decide_the_conditional_groups() {
    let mut caps = docker_caps();
    caps.push("CAP_SYS_ADMIN".into());
    let v = rendered(Profile::docker_default(), &caps, &amd64((6, 1)));
    assert_eq!(rules_for(&v, "unshare").len(), 1);
    // With CAP_SYS_ADMIN, clone is allowed unfiltered and clone3 is no longer ENOSYS.
    let clone = rules_for(&v, "clone");
    assert_eq!(clone.len(), 1);
    assert!(clone[0].get("args").is_none());
    assert!(
        rules_for(&v, "clone3")
            .iter()
            .all(|r| r["action"] == "SCMP_ACT_ALLOW")
    );
    let none = rendered(Profile::docker_default(), &[], &amd64((6, 1)));
    assert!(rules_for(&none, "chroot").is_empty());
}

#[test]
fn arm64_gets_its_own_arches_and_rules() {
    let v = rendered(Profile::docker_default(), &docker_caps(), &arm64());
    assert_eq!(
        v["architectures"],
        json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"])
    );
    assert_eq!(rules_for(&v, "set_tls").len(), 1);
    assert!(rules_for(&v, "arch_prctl").is_empty());
}

#[test]
fn unconfined_and_empty_profiles_mean_no_filter() {
    assert_eq!(filter(&Seccomp::Unconfined, &docker_caps()).unwrap(), None);
    let empty = Profile::parse("{}", Path::new("e.json")).unwrap();
    assert_eq!(render(&empty, &[], &amd64((6, 1))).unwrap(), None);
    assert!(filter(&Seccomp::Default, &docker_caps()).unwrap().is_some());
}

#[test]
fn user_profiles_old_and_new_forms() {
    let p = Profile::parse(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"name": "mkdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                         {"names": ["chmod"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 1, "value": 511, "op": "SCMP_CMP_EQ"}]}]}"#,
        Path::new("p.json"),
    )
    .unwrap();
    let v = rendered(&p, &[], &amd64((6, 1)));
    assert_eq!(v["defaultAction"], "SCMP_ACT_ALLOW");
    assert_eq!(v["architectures"], json!(["SCMP_ARCH_X86_64"]));
    assert_eq!(
        v["syscalls"],
        json!([
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 1, "value": 511, "op": "SCMP_CMP_EQ"}]}
        ])
    );
}

#[test]
fn bad_profiles_say_what_is_wrong() {
    let err = |text: &str| {
        let p = match Profile::parse(text, Path::new("/x/p.json")) {
            Ok(p) => p,
            Err(e) => return e.to_string(),
        };
        render(&p, &[], &amd64((6, 1))).unwrap_err().to_string()
    };
    assert!(err("{").starts_with("/x/p.json: not a seccomp profile in Docker's format"));
    assert!(
        err(r#"{"defaultAction": "SCMP_ACT_NOPE"}"#)
            .starts_with("/x/p.json: not a seccomp profile")
    );
    assert_eq!(
        err(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#
        ),
        "/x/p.json: invalid seccomp profile: both 'architectures' and 'archMap' are given; use \
         one of them"
    );
    assert_eq!(
        err(r#"{"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#),
        "/x/p.json: invalid seccomp profile: it lists syscalls but has no defaultAction"
    );
    assert_eq!(
        err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}"#),
        "/x/p.json: invalid seccomp profile: a rule names no syscall"
    );
    assert_eq!(
        err(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
                "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "x"}}]}"#
        ),
        "/x/p.json: invalid seccomp profile: minKernel \"x\": expected \"<kernel>.<major>\""
    );
    let missing = Seccomp::from_file(Path::new("/nonexistent/p.json")).unwrap_err();
    assert!(
        missing
            .to_string()
            .starts_with("reading the seccomp profile /nonexistent/p.json: "),
        "{missing}"
    );
}

#[test]
fn kernel_releases() {
    assert_eq!(parse_kernel("6.1.0-13-amd64"), Some((6, 1)));
    assert_eq!(parse_kernel("3.12-rc5"), Some((3, 12)));
    assert_eq!(parse_kernel("4.8"), Some((4, 8)));
    assert_eq!(parse_kernel("x"), None);
}

#[test]
fn runtime_version_lines() {
    assert!(!runtime_lacks_seccomp(
        "crun version 1.8.1\nspec: 1.0.0\n+SYSTEMD +SELINUX +CAP +SECCOMP +EBPF"
    ));
    assert!(runtime_lacks_seccomp(
        "crun version 1.8.1\n+SYSTEMD -SECCOMP +EBPF"
    ));
    assert!(!runtime_lacks_seccomp(
        "runc version 1.1.5\ngo: go1.19.8\nlibseccomp: 2.5.4\n"
    ));
    assert!(runtime_lacks_seccomp("runc version 1.1.5\ngo: go1.19.8\n"));
    assert!(!runtime_lacks_seccomp("youki version 0.3.0"));
}

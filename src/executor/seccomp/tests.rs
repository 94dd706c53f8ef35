//! Rendering profiles: Docker's default (hoist's table) for the sandbox's capabilities on
//! several hosts, its concrete facts and a pinned digest, user profiles' conditions, and the
//! errors a bad `PROFILE.json` gets.

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

/// The built-in default filter for `caps` on `host`, as JSON.
fn default_for(caps: &[String], host: &Host) -> Value {
    serde_json::to_value(table::render(caps, host)).unwrap()
}

#[test]
fn default_for_docker_caps_on_amd64() {
    let v = default_for(&docker_caps(), &amd64((6, 1)));
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
    // (flags & every CLONE_NEW* flag) == 0.
    assert_eq!(
        clone[0]["args"],
        json!([{"index": 0, "value": 0x7E02_0000_u64, "op": "SCMP_CMP_MASKED_EQ"}])
    );
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
    let old = default_for(&docker_caps(), &amd64((4, 4)));
    assert!(rules_for(&old, "ptrace").is_empty());
    // chroot is allowed because CAP_SYS_CHROOT is one of Docker's defaults.
    assert_eq!(rules_for(&v, "chroot").len(), 1);
}

#[test]
fn capabilities_decide_the_conditional_groups() {
    let mut caps = docker_caps();
    caps.push("CAP_SYS_ADMIN".into());
    let v = default_for(&caps, &amd64((6, 1)));
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
    let none = default_for(&[], &amd64((6, 1)));
    assert!(rules_for(&none, "chroot").is_empty());
}

#[test]
fn arm64_gets_its_own_arches_and_rules() {
    let v = default_for(&docker_caps(), &arm64());
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

/// The whole rendered default filter, pinned: the SHA-256 of its JSON for Docker's
/// capabilities (and with `CAP_SYS_ADMIN` added) on amd64 and arm64. These were checked equal
/// to the rendering of Docker's published profile (the release named in `table.rs`), for
/// every architecture and several capability sets and kernels, when the table replaced it
/// (the commit that added `table.rs`); a change to the table must change them knowingly.
#[test]
fn rendered_default_is_pinned() {
    use sha2::{Digest, Sha256};
    let mut admin = docker_caps();
    admin.push("CAP_SYS_ADMIN".into());
    let cases = [
        (
            "amd64 docker",
            &docker_caps(),
            amd64((6, 1)),
            "2fc77d0e281428ed4d49d60c558400d1d5d0b71c68c6ce56851efa4d68aa83b8",
        ),
        (
            "amd64 +SYS_ADMIN",
            &admin,
            amd64((6, 1)),
            "e8a7a76b5437ba3b87a7eba199f283f220694a0ede724e02d198e91fcda9433a",
        ),
        (
            "arm64 docker",
            &docker_caps(),
            arm64(),
            "d876bbd868ec1d87df92401b0ecaa26e30e850fdddb8ef52cee7c2142d241232",
        ),
    ];
    for (what, caps, host, want) in cases {
        let json = serde_json::to_string(&table::render(caps, &host)).unwrap();
        assert_eq!(hex::encode(Sha256::digest(json.as_bytes())), want, "{what}");
    }
}

/// Every argument test the filter has for `name`, one list per rule.
fn arg_tests(v: &Value, name: &str) -> Vec<Value> {
    rules_for(v, name)
        .into_iter()
        .map(|r| r["args"].clone())
        .collect()
}

#[test]
fn personality_and_socket_are_allowed_for_listed_values_only() {
    let v = default_for(&docker_caps(), &amd64((6, 1)));
    let eq = |value: u64| json!([{"index": 0, "value": value, "op": "SCMP_CMP_EQ"}]);
    // Linux, 32-bit Linux, UNAME26 with each, and the query (0xffffffff).
    assert_eq!(
        arg_tests(&v, "personality"),
        vec![eq(0), eq(8), eq(0x2_0000), eq(0x2_0008), eq(0xffff_ffff)]
    );
    // Every family but AF_ALG (38) and AF_VSOCK (40).
    let op = |value: u64, op: &str| json!([{"index": 0, "value": value, "op": op}]);
    assert_eq!(
        arg_tests(&v, "socket"),
        vec![
            op(38, "SCMP_CMP_LT"),
            op(39, "SCMP_CMP_EQ"),
            op(40, "SCMP_CMP_GT")
        ]
    );
}

#[test]
fn clone_flags_are_the_second_argument_on_s390x() {
    let s390x = Host {
        arch: "s390x",
        seccomp_arch: Some(Arch::ScmpArchS390x),
        kernel: (6, 1),
    };
    let v = default_for(&docker_caps(), &s390x);
    assert_eq!(
        v["architectures"],
        json!(["SCMP_ARCH_S390X", "SCMP_ARCH_S390"])
    );
    assert_eq!(
        arg_tests(&v, "clone"),
        vec![json!([{"index": 1, "value": 0x7E02_0000_u64, "op": "SCMP_CMP_MASKED_EQ"}])]
    );
    assert_eq!(rules_for(&v, "s390_runtime_instr").len(), 1);
}

#[test]
fn ptrace_class_follows_caps_and_kernel() {
    let ptrace_cap = vec!["CAP_SYS_PTRACE".to_string()];
    let only_ptrace_cap = ["kcmp", "pidfd_getfd", "process_madvise"];
    // Docker's caps on a current kernel: ptrace and process_vm_* by the kernel rule only.
    let v = default_for(&docker_caps(), &amd64((6, 1)));
    for name in ["ptrace", "process_vm_readv", "process_vm_writev"] {
        assert_eq!(rules_for(&v, name).len(), 1, "{name}");
    }
    for name in only_ptrace_cap {
        assert!(rules_for(&v, name).is_empty(), "{name}");
    }
    // Before 4.8 only CAP_SYS_PTRACE allows them; with it, the whole class.
    let old = default_for(&docker_caps(), &amd64((4, 7)));
    assert!(rules_for(&old, "ptrace").is_empty());
    let old_cap = default_for(&ptrace_cap, &amd64((4, 7)));
    for name in ["ptrace", "process_vm_readv"]
        .into_iter()
        .chain(only_ptrace_cap)
    {
        assert_eq!(rules_for(&old_cap, name).len(), 1, "{name}");
    }
}

#[test]
fn some_calls_no_capability_allows() {
    // Listed nowhere: the default EPERM, whatever the sandbox may do.
    let all: Vec<String> = table::CONDITIONAL
        .iter()
        .flat_map(|g| g.iter())
        .filter_map(|r| match r.when {
            table::When::Cap(c) => Some(c.to_string()),
            _ => None,
        })
        .collect();
    let v = default_for(&all, &amd64((6, 1)));
    for name in [
        "keyctl",
        "add_key",
        "request_key",
        "kexec_load",
        "userfaultfd",
        "pivot_root",
    ] {
        assert!(rules_for(&v, name).is_empty(), "{name}");
    }
    assert_eq!(rules_for(&v, "mount").len(), 1);
}

#[test]
fn table_is_sorted_and_each_name_has_one_place() {
    let always = table::ALWAYS_ALLOWED;
    assert!(
        always.windows(2).all(|w| w[0] < w[1]),
        "sorted, no duplicates"
    );
    assert_eq!(always.len(), 361);
    for rule in table::CONDITIONAL.iter().flat_map(|g| g.iter()) {
        assert!(!rule.names.is_empty());
        assert!(
            rule.names.windows(2).all(|w| w[0] < w[1]),
            "{:?}",
            rule.names
        );
        for name in rule.names {
            // A conditional rule for an always-allowed call would be dead.
            assert!(always.binary_search(name).is_err(), "{name}");
        }
    }
    assert_eq!(table::CLONE_NAMESPACE_FLAGS, 2_114_060_288);
}

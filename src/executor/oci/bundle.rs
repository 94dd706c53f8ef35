//! The OCI runtime `config.json` of one run, as youki's typed [`Spec`] (`oci-spec`): Docker's
//! default hardening (capabilities, the seccomp filter, masked and read-only /proc paths,
//! device rules; `noNewPrivileges` only when asked, as BuildKit), the namespaces, BuildKit's
//! standard mounts (`/sys/fs/cgroup` read-only) plus the read-only `/etc` files and the run's
//! extra mounts, and cgroup limits. [`config`] is pure (tested without root) and returns the
//! typed value, so a rootless backend can transform it (user namespace, id mappings) before
//! [`write`] puts it in the bundle.
//!
//! Everything the builders would default is set or cleared explicitly (`oci-spec`'s defaults
//! add an `RLIMIT_NOFILE` of 1024, inheritable and ambient capabilities, `TERM=xterm` and an
//! empty annotations map): the config says exactly what hoist asks for, nothing more.

use crate::executor::{
    ExecutorError, Limits, Mount, MountKind, Network, ResolvedUser, Result, Ulimit,
};
use oci_spec::OciSpecError;
use oci_spec::runtime::{
    Capabilities, Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder,
    LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder,
    LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder,
    LinuxResourcesBuilder, LinuxSeccomp, MountBuilder, ProcessBuilder, RootBuilder, Spec,
    SpecBuilder, UserBuilder,
};
use std::path::{Path, PathBuf};

/// Docker's default capability set.
pub const DEFAULT_CAPS: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Docker's masked paths.
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// CFS period used for `--cpus`.
pub const CPU_PERIOD: u64 = 100_000;

/// The runtime-spec version written.
const OCI_VERSION: &str = "1.0.2";

/// Everything [`config`] needs.
#[derive(Debug, Clone)]
pub struct SpecInputs<'a> {
    /// The merged rootfs (absolute).
    pub rootfs: PathBuf,
    pub argv: &'a [String],
    /// Final environment (HOME already added).
    pub env: Vec<String>,
    pub cwd: &'a str,
    pub user: &'a ResolvedUser,
    pub hostname: &'a str,
    pub network: Network,
    /// Host files bind-mounted on /etc/hosts, /etc/resolv.conf, /etc/hostname.
    pub etc_files: Vec<(String, PathBuf)>,
    pub mounts: &'a [Mount],
    pub limits: Limits,
    /// e.g. `/hoist/<id>`.
    pub cgroups_path: String,
    /// Sets `no_new_privs` (off by default, as in BuildKit and `docker run`).
    pub no_new_privileges: bool,
    /// The rendered seccomp filter ([`crate::executor::seccomp::filter`]); `None`: none.
    pub seccomp: Option<LinuxSeccomp>,
    /// `process.rlimits` (`--ulimit`); none leaves the runtime's.
    pub ulimits: &'a [Ulimit],
    /// The `/dev/shm` tmpfs size in bytes (`--shm-size`); `None`: 64 MiB.
    pub shm_size: Option<u64>,
    /// BuildKit's insecure mode ([`insecure`]).
    pub insecure: bool,
    /// `process.terminal`: the runtime allocates a pty and relays it (`hoist run -t`).
    pub terminal: bool,
}

/// [`DEFAULT_CAPS`] by their names (`CAP_CHOWN`, …), as seccomp profiles' conditions name them.
pub fn default_cap_names() -> Vec<String> {
    DEFAULT_CAPS
        .iter()
        .filter_map(|c| serde_json::to_value(c).ok()?.as_str().map(String::from))
        .collect()
}

/// Builds the runtime config.
pub fn config(i: &SpecInputs) -> std::result::Result<Spec, OciSpecError> {
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces(i.network)?)
        .cgroups_path(&i.cgroups_path)
        .resources(resources(i.limits)?)
        .masked_paths(MASKED_PATHS.map(String::from).to_vec())
        .readonly_paths(READONLY_PATHS.map(String::from).to_vec())
        .rootfs_propagation("rprivate")
        .build()?;
    linux.set_seccomp(i.seccomp.clone());
    let mut spec = SpecBuilder::default()
        .version(OCI_VERSION)
        .process(process(i)?)
        .root(
            RootBuilder::default()
                .path(&i.rootfs)
                .readonly(false)
                .build()?,
        )
        .hostname(i.hostname)
        .mounts(mounts(i)?)
        .linux(linux)
        .build()?;
    spec.set_annotations(None);
    if i.insecure {
        super::insecure::apply(&mut spec)?;
    }
    Ok(spec)
}

/// Writes `spec` as `<bundle>/config.json`.
pub fn write(bundle: &Path, spec: &Spec) -> Result<()> {
    let path = bundle.join("config.json");
    // Serializing fails only on a path that is not UTF-8.
    let bytes = serde_json::to_vec(spec).map_err(|e| ExecutorError::Io {
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    std::fs::write(&path, bytes).map_err(|source| ExecutorError::Io { path, source })
}

fn process(i: &SpecInputs) -> std::result::Result<oci_spec::runtime::Process, OciSpecError> {
    let mut user = UserBuilder::default().uid(i.user.uid).gid(i.user.gid);
    if !i.user.additional_gids.is_empty() {
        user = user.additional_gids(i.user.additional_gids.clone());
    }
    let caps: Capabilities = DEFAULT_CAPS.into_iter().collect();
    let mut capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .build()?;
    capabilities.set_inheritable(None);
    capabilities.set_ambient(None);
    let mut p = ProcessBuilder::default()
        .terminal(i.terminal)
        .user(user.build()?)
        .args(i.argv.to_vec())
        .env(i.env.clone())
        .cwd(i.cwd)
        .capabilities(capabilities)
        .no_new_privileges(i.no_new_privileges)
        .build()?;
    p.set_rlimits(rlimits(i.ulimits)?);
    Ok(p)
}

fn mounts(i: &SpecInputs) -> std::result::Result<Vec<oci_spec::runtime::Mount>, OciSpecError> {
    let m = |dest: &str, typ: &str, source: &Path, options: &[&str]| {
        MountBuilder::default()
            .destination(dest)
            .typ(typ)
            .source(source)
            .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
            .build()
    };
    let mut out = vec![
        m(
            "/proc",
            "proc",
            Path::new("proc"),
            &["nosuid", "noexec", "nodev"],
        )?,
        m(
            "/dev",
            "tmpfs",
            Path::new("tmpfs"),
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        m(
            "/dev/pts",
            "devpts",
            Path::new("devpts"),
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        match i.shm_size {
            None => m(
                "/dev/shm",
                "tmpfs",
                Path::new("shm"),
                &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            )?,
            // `--shm-size`: BuildKit mounts a plain tmpfs of that size there instead.
            Some(b) => m(
                "/dev/shm",
                "tmpfs",
                Path::new("tmpfs"),
                &["nosuid", &format!("size={b}")],
            )?,
        },
        m(
            "/dev/mqueue",
            "mqueue",
            Path::new("mqueue"),
            &["nosuid", "noexec", "nodev"],
        )?,
        m(
            "/sys",
            "sysfs",
            Path::new("sysfs"),
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
        // Read-only, as BuildKit mounts it: a step cannot move itself out of its cgroup.
        m(
            "/sys/fs/cgroup",
            "cgroup",
            Path::new("cgroup"),
            &["ro", "nosuid", "noexec", "nodev"],
        )?,
    ];
    // Read-only like BuildKit's: `RUN echo … >> /etc/hosts` fails there too.
    for (dest, src) in &i.etc_files {
        out.push(m(
            dest,
            "bind",
            src,
            &["nosuid", "noexec", "nodev", "rbind", "ro"],
        )?);
    }
    for mount in i.mounts {
        out.push(match &mount.kind {
            MountKind::Bind { source, readonly } => {
                let mut o = vec!["rbind", "rprivate", "nosuid", "nodev"];
                if *readonly {
                    o.push("ro");
                }
                m(&mount.target, "bind", source, &o)?
            }
            MountKind::Tmpfs { size } => {
                let mut o = vec![
                    "nosuid".to_string(),
                    "nodev".to_string(),
                    "mode=1777".to_string(),
                ];
                if let Some(s) = size {
                    o.push(format!("size={s}"));
                }
                MountBuilder::default()
                    .destination(&mount.target)
                    .typ("tmpfs")
                    .source("tmpfs")
                    .options(o)
                    .build()?
            }
        });
    }
    Ok(out)
}

/// `--ulimit` entries as OCI rlimits; `None` when there are none.
fn rlimits(
    ulimits: &[Ulimit],
) -> std::result::Result<Option<Vec<oci_spec::runtime::PosixRlimit>>, OciSpecError> {
    if ulimits.is_empty() {
        return Ok(None);
    }
    ulimits
        .iter()
        .map(|u| {
            // The type names are fixed strings: `parse_ulimit` admits only known ones.
            let typ = serde_json::from_value::<oci_spec::runtime::PosixRlimitType>(
                serde_json::Value::String(u.oci_type()),
            )
            .map_err(|e| OciSpecError::Other(format!("--ulimit {}: {e}", u.name)))?;
            oci_spec::runtime::PosixRlimitBuilder::default()
                .typ(typ)
                .soft(u.soft)
                .hard(u.hard)
                .build()
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map(Some)
}

fn namespaces(network: Network) -> std::result::Result<Vec<LinuxNamespace>, OciSpecError> {
    let mut types = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ];
    if network == Network::None {
        types.push(LinuxNamespaceType::Network);
    }
    types
        .into_iter()
        .map(|t| LinuxNamespaceBuilder::default().typ(t).build())
        .collect()
}

fn resources(
    limits: Limits,
) -> std::result::Result<oci_spec::runtime::LinuxResources, OciSpecError> {
    let mut r = LinuxResourcesBuilder::default().devices(device_rules()?);
    if let Some(m) = limits.memory {
        // Swap limited to the same total: no swap beyond the limit, as `docker run -m`.
        let m = i64::try_from(m).unwrap_or(i64::MAX);
        r = r.memory(LinuxMemoryBuilder::default().limit(m).swap(m).build()?);
    }
    if let Some(c) = limits.cpus {
        let quota = (c * CPU_PERIOD as f64).round() as i64;
        r = r.cpu(
            LinuxCpuBuilder::default()
                .quota(quota.max(1000))
                .period(CPU_PERIOD)
                .build()?,
        );
    }
    if let Some(p) = limits.pids {
        r = r.pids(LinuxPidsBuilder::default().limit(p).build()?);
    }
    r.build()
}

/// Docker's default device cgroup rules: deny all, allow the standard character devices.
fn device_rules() -> std::result::Result<Vec<LinuxDeviceCgroup>, OciSpecError> {
    let mut rules = vec![
        LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()?,
    ];
    let char_dev = |major: i64, minor: Option<i64>| {
        let b = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(major)
            .access("rwm");
        match minor {
            Some(minor) => b.minor(minor).build(),
            None => b.build(),
        }
    };
    for (major, minor) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
    ] {
        rules.push(char_dev(major, Some(minor))?);
    }
    rules.push(char_dev(136, None)?);
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn inputs<'a>(
        argv: &'a [String],
        user: &'a ResolvedUser,
        mounts: &'a [Mount],
    ) -> SpecInputs<'a> {
        SpecInputs {
            rootfs: "/run/hoist/x/rootfs".into(),
            argv,
            env: vec!["A=1".into()],
            cwd: "/w",
            user,
            hostname: "h",
            network: Network::None,
            etc_files: vec![("/etc/hosts".into(), "/run/hoist/x/hosts".into())],
            mounts,
            limits: Limits {
                memory: Some(1 << 20),
                cpus: Some(1.5),
                pids: Some(64),
            },
            cgroups_path: "/hoist/x".into(),
            no_new_privileges: false,
            seccomp: None,
            ulimits: &[],
            shm_size: None,
            insecure: false,
            terminal: false,
        }
    }

    fn json_of(i: &SpecInputs) -> Value {
        serde_json::to_value(config(i).unwrap()).unwrap()
    }

    /// Capability sets are hash sets in `oci-spec`: compare them in a fixed order.
    fn sort_caps(mut v: Value) -> Value {
        if let Some(caps) = v["process"]["capabilities"].as_object_mut() {
            for set in caps.values_mut() {
                if let Some(a) = set.as_array_mut() {
                    a.sort_by_key(|c| c.as_str().unwrap_or_default().to_string());
                }
            }
        }
        v
    }

    /// The config as hoist wrote it by hand with `serde_json` before it used `oci-spec`: the
    /// typed spec must say exactly the same.
    fn handwritten(i: &SpecInputs) -> Value {
        let mut mounts = vec![
            json!({"destination": "/proc", "type": "proc", "source": "proc",
                   "options": ["nosuid", "noexec", "nodev"]}),
            json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
            json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                   "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
            json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                   "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
            json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                   "options": ["nosuid", "noexec", "nodev"]}),
            json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                   "options": ["nosuid", "noexec", "nodev", "ro"]}),
            json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                   "options": ["ro", "nosuid", "noexec", "nodev"]}),
        ];
        for (dest, src) in &i.etc_files {
            mounts.push(json!({"destination": dest, "type": "bind", "source": src,
                               "options": ["nosuid", "noexec", "nodev", "rbind", "ro"]}));
        }
        for m in i.mounts {
            mounts.push(match &m.kind {
                MountKind::Bind { source, readonly } => {
                    let mut o = vec!["rbind", "rprivate", "nosuid", "nodev"];
                    if *readonly {
                        o.push("ro");
                    }
                    json!({"destination": m.target, "type": "bind", "source": source, "options": o})
                }
                MountKind::Tmpfs { size } => {
                    let mut o = vec!["nosuid".to_string(), "nodev".into(), "mode=1777".into()];
                    if let Some(s) = size {
                        o.push(format!("size={s}"));
                    }
                    json!({"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": o})
                }
            });
        }
        let mut namespaces = vec![
            json!({"type": "pid"}),
            json!({"type": "ipc"}),
            json!({"type": "uts"}),
            json!({"type": "mount"}),
        ];
        if i.network == Network::None {
            namespaces.push(json!({"type": "network"}));
        }
        let mut devices = vec![json!({"allow": false, "access": "rwm"})];
        for (major, minor) in [
            (1, 3),
            (1, 5),
            (1, 7),
            (1, 8),
            (1, 9),
            (5, 0),
            (5, 1),
            (5, 2),
        ] {
            devices.push(
                json!({"allow": true, "type": "c", "major": major, "minor": minor, "access": "rwm"}),
            );
        }
        devices.push(json!({"allow": true, "type": "c", "major": 136, "access": "rwm"}));
        let mut resources = serde_json::Map::new();
        resources.insert("devices".into(), Value::Array(devices));
        if let Some(m) = i.limits.memory {
            resources.insert("memory".into(), json!({"limit": m, "swap": m}));
        }
        if let Some(c) = i.limits.cpus {
            let quota = (c * CPU_PERIOD as f64).round() as i64;
            resources.insert(
                "cpu".into(),
                json!({"quota": quota.max(1000), "period": CPU_PERIOD}),
            );
        }
        if let Some(p) = i.limits.pids {
            resources.insert("pids".into(), json!({"limit": p}));
        }
        let caps = [
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
        ];
        let mut user = json!({"uid": i.user.uid, "gid": i.user.gid});
        if !i.user.additional_gids.is_empty() {
            user["additionalGids"] = json!(i.user.additional_gids);
        }
        json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": user,
                "args": i.argv,
                "env": i.env,
                "cwd": i.cwd,
                "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
                "noNewPrivileges": i.no_new_privileges
            },
            "root": {"path": i.rootfs, "readonly": false},
            "hostname": i.hostname,
            "mounts": mounts,
            "linux": {
                "namespaces": namespaces,
                "cgroupsPath": i.cgroups_path,
                "resources": Value::Object(resources),
                "maskedPaths": MASKED_PATHS,
                "readonlyPaths": READONLY_PATHS,
                "rootfsPropagation": "rprivate"
            }
        })
    }

    #[test]
    fn typed_spec_matches_the_handwritten_config() {
        let argv: Vec<String> = ["/proc/self/fd/3", "sh", "-c", "make"]
            .map(String::from)
            .into();
        let mounts = vec![
            Mount {
                target: "/root/.cache".into(),
                kind: MountKind::Bind {
                    source: "/var/lib/hoist/cache/x".into(),
                    readonly: false,
                },
            },
            Mount {
                target: "/src".into(),
                kind: MountKind::Bind {
                    source: "/run/hoist/p/src".into(),
                    readonly: true,
                },
            },
            Mount {
                target: "/tmp".into(),
                kind: MountKind::Tmpfs { size: None },
            },
        ];
        for (user, network, limits) in [
            (
                ResolvedUser {
                    uid: 1000,
                    gid: 1000,
                    additional_gids: vec![27, 100],
                    home: Some("/home/u".into()),
                },
                Network::Host,
                Limits::default(),
            ),
            (
                ResolvedUser {
                    uid: 0,
                    gid: 0,
                    additional_gids: vec![],
                    home: None,
                },
                Network::None,
                Limits {
                    memory: Some(512 << 20),
                    cpus: Some(0.004),
                    pids: Some(100),
                },
            ),
        ] {
            let mut i = inputs(&argv, &user, &mounts);
            i.network = network;
            i.limits = limits;
            i.env = vec!["PATH=/bin".into(), "HOME=/".into()];
            i.etc_files = ["resolv.conf", "hosts", "hostname"]
                .map(|f| (format!("/etc/{f}"), PathBuf::from("/run/hoist/x").join(f)))
                .into();
            assert_eq!(sort_caps(json_of(&i)), sort_caps(handwritten(&i)));
        }
    }

    #[test]
    fn config_has_hardening_limits_and_mounts() {
        let argv = vec!["sh".to_string()];
        let user = ResolvedUser {
            uid: 5,
            gid: 6,
            additional_gids: vec![7],
            home: None,
        };
        let mounts = vec![
            Mount {
                target: "/c".into(),
                kind: MountKind::Tmpfs { size: Some(4096) },
            },
            Mount {
                target: "/b".into(),
                kind: MountKind::Bind {
                    source: "/src".into(),
                    readonly: true,
                },
            },
        ];
        let c = json_of(&inputs(&argv, &user, &mounts));
        assert_eq!(
            c["process"]["user"],
            json!({"uid": 5, "gid": 6, "additionalGids": [7]})
        );
        // Off, as BuildKit and `docker run` leave it: setuid programs work.
        assert_eq!(c["process"]["noNewPrivileges"], json!(false));
        assert!(c["linux"].get("seccomp").is_none());
        assert_eq!(
            c["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len(),
            14
        );
        assert!(!c.to_string().contains("CAP_SYS_ADMIN"));
        assert!(c["process"].get("rlimits").is_none());
        assert!(c.get("annotations").is_none());
        let ns: Vec<&str> = c["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["pid", "ipc", "uts", "mount", "network"]);
        let r = &c["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], json!(1 << 20));
        assert_eq!(r["cpu"]["quota"], json!(150_000));
        assert_eq!(r["pids"]["limit"], json!(64));
        let m = c["mounts"].as_array().unwrap();
        let dests: Vec<&str> = m
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup",
                "/etc/hosts",
                "/c",
                "/b"
            ]
        );
        assert_eq!(m[8]["options"][3], json!("size=4096"));
        assert!(m[9]["options"].as_array().unwrap().contains(&json!("ro")));
        for (i, what) in [(5, "/sys"), (6, "/sys/fs/cgroup"), (7, "/etc/hosts")] {
            assert!(
                m[i]["options"].as_array().unwrap().contains(&json!("ro")),
                "{what} must be read-only"
            );
        }
    }

    #[test]
    fn security_options_reach_the_config() {
        let argv = vec!["sh".to_string()];
        let user = ResolvedUser {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            home: None,
        };
        let mut i = inputs(&argv, &user, &[]);
        i.no_new_privileges = true;
        i.seccomp = crate::executor::seccomp::filter(
            &crate::executor::Seccomp::Default,
            &default_cap_names(),
        )
        .unwrap();
        let c = json_of(&i);
        assert_eq!(c["process"]["noNewPrivileges"], json!(true));
        let s = &c["linux"]["seccomp"];
        assert_eq!(s["defaultAction"], json!("SCMP_ACT_ERRNO"));
        assert_eq!(s["defaultErrnoRet"], json!(1));
        // Rendered for Docker's caps: CAP_SYS_CHROOT's chroot is in, CAP_SYS_ADMIN's unshare out.
        let text = s.to_string();
        assert!(text.contains("\"chroot\"") && !text.contains("\"unshare\""));
        assert_eq!(default_cap_names().len(), 14);
        assert!(default_cap_names().contains(&"CAP_SYS_CHROOT".to_string()));
    }

    #[test]
    fn host_network_has_no_netns() {
        let argv = vec!["sh".to_string()];
        let user = ResolvedUser {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            home: None,
        };
        let mut i = inputs(&argv, &user, &[]);
        i.network = Network::Host;
        let c = json_of(&i);
        assert!(!c["linux"]["namespaces"].to_string().contains("network"));
        assert!(c["process"]["user"].get("additionalGids").is_none());
    }

    #[test]
    fn written_config_reads_back() {
        let argv = vec!["sh".to_string()];
        let user = ResolvedUser {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            home: None,
        };
        let spec = config(&inputs(&argv, &user, &[])).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), &spec).unwrap();
        assert_eq!(Spec::load(tmp.path().join("config.json")).unwrap(), spec);
    }
}

//! The OCI runtime `config.json` for one sandbox: Docker's default hardening (capabilities,
//! `noNewPrivileges`, masked and read-only /proc paths, device rules), the namespaces, the
//! standard mounts plus the run's extra mounts, and cgroup limits. Pure: tested without root.

use super::{Limits, Mount, MountKind, Network, ResolvedUser};
use serde_json::{Value, json};
use std::path::PathBuf;

/// Docker's default capability set.
pub const DEFAULT_CAPS: [&str; 14] = [
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
}

/// Builds the runtime config.
pub fn config(i: &SpecInputs) -> Value {
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
    ];
    for (dest, src) in &i.etc_files {
        mounts.push(json!({"destination": dest, "type": "bind", "source": src,
                           "options": ["rbind", "rprivate", "nosuid", "nodev", "noexec"]}));
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
                let mut o = vec![
                    "nosuid".to_string(),
                    "nodev".to_string(),
                    "mode=1777".to_string(),
                ];
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

    let mut resources = serde_json::Map::new();
    resources.insert("devices".into(), device_rules());
    if let Some(m) = i.limits.memory {
        // Swap limited to the same total: no swap beyond the limit, as `docker run -m`.
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

    let caps = DEFAULT_CAPS.to_vec();
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
            "noNewPrivileges": true
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

/// Docker's default device cgroup rules: deny all, allow the standard character devices.
fn device_rules() -> Value {
    let mut rules = vec![json!({"allow": false, "access": "rwm"})];
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
        rules.push(
            json!({"allow": true, "type": "c", "major": major, "minor": minor, "access": "rwm"}),
        );
    }
    rules.push(json!({"allow": true, "type": "c", "major": 136, "access": "rwm"}));
    Value::Array(rules)
}

/// The environment a run gets: the spec's, plus `PATH` (Docker's default) and `HOME` (from
/// passwd, else `/`) when unset.
pub fn final_env(env: &[String], home: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = env.to_vec();
    let has = |k: &str| {
        env.iter()
            .any(|kv| kv.split_once('=').map_or(kv.as_str(), |(a, _)| a) == k)
    };
    if !has("PATH") {
        out.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    if !has("HOME") {
        out.push(format!("HOME={}", home.unwrap_or("/")));
    }
    out
}

/// `/etc/hosts` for a sandbox named `hostname`.
pub fn hosts_file(hostname: &str) -> String {
    format!("127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n")
}

/// `/etc/resolv.conf` for a sandbox: the host's, or public resolvers when it has none usable.
pub fn resolv_conf(host: Option<&str>, network: Network) -> String {
    match host {
        Some(h)
            if h.lines().any(|l| l.trim_start().starts_with("nameserver"))
                || network == Network::None =>
        {
            h.to_string()
        }
        _ => "nameserver 8.8.8.8\nnameserver 8.8.4.4\n".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let c = config(&inputs(&argv, &user, &mounts));
        assert_eq!(
            c["process"]["user"],
            json!({"uid": 5, "gid": 6, "additionalGids": [7]})
        );
        assert_eq!(c["process"]["noNewPrivileges"], json!(true));
        assert_eq!(
            c["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len(),
            14
        );
        assert!(!c.to_string().contains("CAP_SYS_ADMIN"));
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
                "/etc/hosts",
                "/c",
                "/b"
            ]
        );
        assert_eq!(m[7]["options"][3], json!("size=4096"));
        assert!(m[8]["options"].as_array().unwrap().contains(&json!("ro")));
        assert!(
            m[5]["options"].as_array().unwrap().contains(&json!("ro")),
            "/sys must be read-only"
        );
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
        let c = config(&i);
        assert!(!c["linux"]["namespaces"].to_string().contains("network"));
        assert!(c["process"]["user"].get("additionalGids").is_none());
    }

    #[test]
    fn env_defaults() {
        let e = final_env(&["HOME=/x".into()], Some("/root"));
        assert_eq!(
            e,
            [
                "HOME=/x",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            ]
        );
        let e = final_env(&["PATH=/bin".into()], Some("/root"));
        assert_eq!(e, ["PATH=/bin", "HOME=/root"]);
        assert_eq!(final_env(&["PATH=/bin".into()], None)[1], "HOME=/");
    }

    #[test]
    fn resolv_fallback() {
        assert_eq!(
            resolv_conf(Some("nameserver 1.1.1.1\n"), Network::Host),
            "nameserver 1.1.1.1\n"
        );
        assert!(resolv_conf(None, Network::Host).contains("8.8.8.8"));
        assert!(resolv_conf(Some("# empty\n"), Network::Host).contains("8.8.8.8"));
    }
}

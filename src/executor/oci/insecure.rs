//! BuildKit's insecure mode for one run (`RUN --security=insecure` with `--allow
//! security.insecure`), applied to the typed spec after it is built: every capability the
//! kernel knows in all five sets, no masked or read-only `/proc` paths, every character and
//! block device allowed by the device cgroup, `/sys` and `/sys/fs/cgroup` writable, and (as
//! root of the host, not in hoist's user namespace) the device nodes BuildKit adds: `kmsg`,
//! `cuse`, `fuse`, `kvm`, `net/tun`, `loop-control` and loop devices. The seccomp filter is
//! left out by the caller. This is the sandbox BuildKit gives such a step
//! (its `WithInsecureSpec` plus writable sysfs and cgroupfs), so `mount`, `modprobe`-free
//! loop setups and similar privileged steps work as they do with `docker build`.

use oci_spec::OciSpecError;
use oci_spec::runtime::{
    Capabilities, Capability, LinuxCapabilitiesBuilder, LinuxDevice, LinuxDeviceBuilder,
    LinuxDeviceCgroupBuilder, LinuxDeviceType, Spec,
};

/// Every capability by number (`capability.h` order), so a capability mask reads as names.
const ALL_CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The capabilities hoist itself holds (its bounding set), as BuildKit grants "all" of the
/// daemon's current ones: a runtime cannot give the sandbox one hoist lacks (a container
/// that runs hoist may have dropped some), and fails the run if asked to.
pub(super) fn all_caps() -> Capabilities {
    let mask = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    caps_in(mask)
}

/// The capabilities whose bits are set in `mask`.
fn caps_in(mask: u64) -> Capabilities {
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1u64 << bit) != 0)
        .filter_map(|(_, n)| {
            serde_json::from_value::<Capability>(serde_json::Value::String((*n).into())).ok()
        })
        .collect()
}

/// Turns `spec` into the insecure-mode spec.
pub(super) fn apply(spec: &mut Spec) -> Result<(), OciSpecError> {
    let caps = all_caps();
    if let Some(p) = spec.process_mut() {
        p.set_capabilities(Some(
            LinuxCapabilitiesBuilder::default()
                .bounding(caps.clone())
                .effective(caps.clone())
                .permitted(caps.clone())
                .inheritable(caps.clone())
                .ambient(caps)
                .build()?,
        ));
    }
    let devices = if crate::userns::current().is_none() {
        device_nodes(host_loop_devices())?
    } else {
        Vec::new()
    };
    if let Some(l) = spec.linux_mut() {
        if !devices.is_empty() {
            let mut all = l.devices().clone().unwrap_or_default();
            all.extend(devices);
            l.set_devices(Some(all));
        }
        l.set_masked_paths(Some(vec![]));
        l.set_readonly_paths(Some(vec![]));
        l.set_seccomp(None);
        if let Some(r) = l.resources_mut() {
            let all = |t| {
                LinuxDeviceCgroupBuilder::default()
                    .allow(true)
                    .typ(t)
                    .access("rwm")
                    .build()
            };
            r.set_devices(Some(vec![
                all(LinuxDeviceType::C)?,
                all(LinuxDeviceType::B)?,
            ]));
        }
    }
    if let Some(mounts) = spec.mounts_mut() {
        for m in mounts.iter_mut() {
            let dest = m.destination().to_string_lossy();
            if (dest == "/sys" || dest == "/sys/fs/cgroup")
                && let Some(o) = m.options().clone()
            {
                let rw = o
                    .into_iter()
                    .map(|x| if x == "ro" { "rw".to_string() } else { x })
                    .collect();
                m.set_options(Some(rw));
            }
        }
    }
    Ok(())
}

/// The highest `/dev/loopN` the host has, if any.
fn host_loop_devices() -> Option<u32> {
    std::fs::read_dir("/dev")
        .ok()?
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_prefix("loop")?
                .parse::<u32>()
                .ok()
        })
        .max()
}

/// BuildKit's device nodes for insecure mode: the fixed ones, and loop devices up to a few
/// past the host's (BuildKit: the next free one plus 7).
fn device_nodes(highest_loop: Option<u32>) -> Result<Vec<LinuxDevice>, OciSpecError> {
    let dev = |path: String, typ, major, minor| {
        LinuxDeviceBuilder::default()
            .path(path)
            .typ(typ)
            .major(major)
            .minor(minor)
            .build()
    };
    let mut out = Vec::new();
    for (path, minor_major) in [
        ("/dev/kmsg", (1, 11)),
        ("/dev/cuse", (10, 203)),
        ("/dev/fuse", (10, 229)),
        ("/dev/kvm", (10, 232)),
        ("/dev/net/tun", (10, 200)),
        ("/dev/loop-control", (10, 237)),
    ] {
        out.push(dev(
            path.into(),
            LinuxDeviceType::C,
            minor_major.0,
            minor_major.1,
        )?);
    }
    let last = highest_loop.map_or(7, |h| i64::from(h) + 8);
    for i in 0..=last {
        out.push(dev(format!("/dev/loop{i}"), LinuxDeviceType::B, 7, i)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_bits_name_caps() {
        let c = caps_in(1 | 1 << 21);
        assert_eq!(c.len(), 2);
        assert!(c.contains(&Capability::Chown) && c.contains(&Capability::SysAdmin));
        assert_eq!(caps_in(u64::MAX).len(), ALL_CAPS.len());
    }

    #[test]
    fn insecure_spec_opens_the_sandbox() {
        let mut spec = Spec::default();
        apply(&mut spec).unwrap();
        let j = serde_json::to_value(&spec).unwrap();
        assert_eq!(j["linux"]["maskedPaths"], serde_json::json!([]));
        assert_eq!(j["linux"]["readonlyPaths"], serde_json::json!([]));
        assert!(j["linux"].get("seccomp").is_none());
        let sys = j["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/sys")
            .unwrap();
        assert!(
            !sys["options"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!("ro"))
        );
        assert!(j["process"]["capabilities"]["ambient"].is_array());
        let devices: Vec<&str> = j["linux"]["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["path"].as_str().unwrap())
            .collect();
        assert!(devices.contains(&"/dev/fuse") && devices.contains(&"/dev/loop-control"));
    }

    #[test]
    fn loop_devices_reach_past_the_hosts() {
        let n = |h| device_nodes(h).unwrap().len();
        assert_eq!(n(None), 6 + 8);
        assert_eq!(n(Some(3)), 6 + 12);
    }
}

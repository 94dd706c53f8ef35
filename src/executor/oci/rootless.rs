//! The rootless transform of the runtime spec: what changes when hoist runs as root of its
//! own user namespace ([`crate::userns`]) rather than as root of the host. The runtime (crun
//! or runc) then runs in that namespace; the spec asks for no user namespace of its own,
//! since the one hoist is in already maps the image's ids.
//!
//! Changes, each because the kernel refuses the root form in a user namespace:
//! - no cgroup path and no resources unless cgroups are writable (no delegation is detected
//!   yet): limits are dropped and [`limits_note`] says so once;
//! - `/sys`: a sysfs mount needs a network namespace owned by the user namespace, so with the
//!   host's network it is a read-only recursive bind of the host's `/sys` (as rootless
//!   Podman and BuildKit do); with `--network none` the fresh namespace allows sysfs;
//! - single-id mapping: `devpts`' `gid=5` and the image's supplementary groups do not exist
//!   (and `setgroups` is denied), so they are left out; a user other than root cannot be
//!   switched to at all ([`ExecutorError::UnmappedUser`]).

use crate::executor::{ExecutorError, Limits, Result};
use crate::userns::Mapping;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// Applies the rootless changes for `mapping` to `spec`.
pub(super) fn transform(spec: &mut Spec, mapping: Mapping, cgroups_writable: bool) -> Result<()> {
    let single = mapping == Mapping::SingleId;
    if let Some(p) = spec.process_mut() {
        let u = p.user();
        if single && (u.uid() != 0 || u.gid() != 0) {
            return Err(ExecutorError::UnmappedUser {
                uid: u.uid(),
                gid: u.gid(),
            });
        }
        if single {
            let mut u = u.clone();
            u.set_additional_gids(None);
            p.set_user(u);
        }
    }
    let own_netns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network));
    if let Some(l) = spec.linux_mut()
        && !cgroups_writable
    {
        l.set_cgroups_path(None);
        l.set_resources(None);
    }
    if let Some(mounts) = spec.mounts_mut() {
        for m in mounts.iter_mut() {
            let dest = m.destination().to_string_lossy().into_owned();
            if dest == "/sys" && !own_netns {
                m.set_typ(Some("none".into()));
                m.set_source(Some("/sys".into()));
                m.set_options(Some(
                    ["rbind", "nosuid", "noexec", "nodev", "ro"]
                        .map(String::from)
                        .to_vec(),
                ));
            }
            if dest == "/dev/pts"
                && single
                && let Some(o) = m.options().clone()
            {
                m.set_options(Some(
                    o.into_iter().filter(|x| !x.starts_with("gid=")).collect(),
                ));
            }
        }
    }
    Ok(())
}

/// A line saying that `limits` cannot be applied, when there are any and cgroups are not
/// writable in hoist's user namespace.
pub fn limits_note(limits: &Limits) -> Option<String> {
    let any = limits.memory.is_some() || limits.cpus.is_some() || limits.pids.is_some();
    (any && crate::userns::current().is_some() && !crate::userns::cgroups_writable()).then(|| {
        "note: rootless: cgroups are not writable by your user (no delegation), so --memory, \
         --cpus and pids limits are not applied"
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(network_ns: bool, uid: u32) -> Spec {
        let mut ns = vec![json!({"type": "pid"}), json!({"type": "mount"})];
        if network_ns {
            ns.push(json!({"type": "network"}));
        }
        serde_json::from_value(json!({
            "ociVersion": "1.0.2",
            "process": {"user": {"uid": uid, "gid": uid, "additionalGids": [1, 2]},
                        "args": ["sh"], "cwd": "/"},
            "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "gid=5", "mode=0620"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                 "options": ["nosuid", "ro"]}
            ],
            "linux": {"namespaces": ns, "cgroupsPath": "/hoist/x",
                      "resources": {"pids": {"limit": 10}}}
        }))
        .unwrap()
    }

    #[test]
    fn host_network_binds_sys_and_drops_cgroups() {
        let mut s = spec(false, 1000);
        transform(
            &mut s,
            Mapping::Ranges {
                uids: 65537,
                gids: 65537,
            },
            false,
        )
        .unwrap();
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["mounts"][1]["type"], "none");
        assert_eq!(v["mounts"][1]["source"], "/sys");
        assert_eq!(v["mounts"][0]["options"][1], "gid=5");
        assert!(v["linux"].get("cgroupsPath").is_none());
        assert!(v["linux"].get("resources").is_none());
        assert_eq!(v["process"]["user"]["additionalGids"], json!([1, 2]));
    }

    #[test]
    fn own_network_keeps_sysfs_and_single_id_drops_groups() {
        let mut s = spec(true, 0);
        transform(&mut s, Mapping::SingleId, false).unwrap();
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["mounts"][1]["type"], "sysfs");
        assert_eq!(v["mounts"][0]["options"], json!(["nosuid", "mode=0620"]));
        assert!(v["process"]["user"].get("additionalGids").is_none());
        let mut s = spec(true, 1000);
        assert!(matches!(
            transform(&mut s, Mapping::SingleId, false),
            Err(ExecutorError::UnmappedUser { uid: 1000, .. })
        ));
    }
}

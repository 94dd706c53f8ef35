//! The `/etc/resolv.conf`, `/etc/hosts` and `/etc/hostname` a sandbox sees, for every
//! backend: their text, and the host files (in a run's private dir) that get bind-mounted
//! over the stubs [`prepare`](super::prepare) created, so the image's own files stay as they
//! were in the layer.

use super::{ExtraHost, Network, Result, RunSpec, io_err};
use std::path::{Path, PathBuf};

/// The hostname a run gets when its spec names none.
const DEFAULT_HOSTNAME: &str = "hoist";

/// `/etc/hosts` for a sandbox named `hostname`: BuildKit's two default lines, then each
/// `--add-host` entry as `IP<tab>HOST`, in the order given.
pub fn hosts_file(hostname: &str, extra: &[ExtraHost]) -> String {
    let mut s =
        format!("127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for h in extra {
        s.push_str(&format!("{}\t{}\n", h.ip, h.host));
    }
    s
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

/// The run's hostname: the spec's, else `hoist`.
pub(crate) fn hostname(spec: &RunSpec) -> &str {
    if spec.hostname.is_empty() {
        DEFAULT_HOSTNAME
    } else {
        spec.hostname.as_str()
    }
}

/// Writes the three files (mode 0644) into `dir` for `spec`; returns `(path in the sandbox,
/// host file)` pairs, in the order they are mounted.
pub(crate) fn write(dir: &Path, spec: &RunSpec) -> Result<Vec<(String, PathBuf)>> {
    let hostname = hostname(spec);
    let files = [
        (
            "/etc/resolv.conf",
            dir.join("resolv.conf"),
            resolv_conf(
                std::fs::read_to_string("/etc/resolv.conf").ok().as_deref(),
                spec.network,
            ),
        ),
        (
            "/etc/hosts",
            dir.join("hosts"),
            hosts_file(hostname, &spec.sandbox.extra_hosts),
        ),
        (
            "/etc/hostname",
            dir.join("hostname"),
            format!("{hostname}\n"),
        ),
    ];
    let mut out = Vec::with_capacity(files.len());
    for (dest, path, text) in files {
        std::fs::write(&path, text).map_err(io_err(&path))?;
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .map_err(io_err(&path))?;
        out.push((dest.to_string(), path));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_fallback() {
        assert_eq!(
            resolv_conf(Some("nameserver 1.1.1.1\n"), Network::Host),
            "nameserver 1.1.1.1\n"
        );
        assert!(resolv_conf(None, Network::Host).contains("8.8.8.8"));
        assert!(resolv_conf(Some("# empty\n"), Network::Host).contains("8.8.8.8"));
    }

    #[test]
    fn writes_the_three_files_in_mount_order() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = RunSpec {
            lowers: vec![],
            upper: None,
            argv: vec!["true".into()],
            env: vec![],
            cwd: "/".into(),
            user: String::new(),
            hostname: String::new(),
            network: Network::None,
            mounts: vec![],
            limits: Default::default(),
            security: Default::default(),
            sandbox: crate::executor::SandboxOptions {
                extra_hosts: vec![crate::executor::sandbox::parse_add_host("db:10.1.2.3").unwrap()],
                ..Default::default()
            },
        };
        let files = write(tmp.path(), &spec).unwrap();
        let dests: Vec<&str> = files.iter().map(|(d, _)| d.as_str()).collect();
        assert_eq!(dests, super::super::prepare::ETC_FILES);
        assert_eq!(std::fs::read_to_string(&files[2].1).unwrap(), "hoist\n");
        assert!(
            std::fs::read_to_string(&files[1].1)
                .unwrap()
                .contains("localhost hoist")
        );
        assert!(
            std::fs::read_to_string(&files[1].1)
                .unwrap()
                .ends_with("ip6-loopback\n10.1.2.3\tdb\n")
        );
    }
}

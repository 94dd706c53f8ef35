//! What a caller may ask of a sandbox beyond its command, rootfs and mounts, as `docker
//! build`/`docker run` flags ask it: extra `/etc/hosts` entries (`--add-host`), process
//! rlimits (`--ulimit`), the size of `/dev/shm` (`--shm-size`) and a terminal (`hoist run
//! -t`/`-i`). The flags' docker syntax is parsed here, so `build` and `run` read them alike.
//!
//! BuildKit applies the same three build settings to every RUN (`frontend/dockerui` options
//! `add-hosts`, `ulimit`, `shm-size`): the hosts entries after the default two lines, the
//! rlimits in the OCI spec's `process.rlimits`, `/dev/shm` as a tmpfs of that size.

use std::net::IpAddr;

/// An `/etc/hosts` entry added after the default ones (`--add-host HOST:IP`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraHost {
    pub host: String,
    pub ip: IpAddr,
}

/// A process rlimit (`--ulimit TYPE=SOFT[:HARD]`); `u64::MAX` is unlimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    /// docker's name: `nofile`, `nproc`, `core`, … (see [`ULIMIT_NAMES`]).
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

impl Ulimit {
    /// The OCI spec's type name, e.g. `RLIMIT_NOFILE`.
    pub fn oci_type(&self) -> String {
        format!("RLIMIT_{}", self.name.to_ascii_uppercase())
    }
}

/// How the sandboxed process meets the caller's terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stdio {
    /// Keep stdin open (`-i`): the process reads hoist's stdin.
    pub stdin: bool,
    /// A pseudo-terminal (`-t`): the runtime gives the process a pty and relays it to hoist's
    /// own stdin/stdout; the process's output then goes to the terminal, not to the caller.
    pub tty: bool,
}

/// Sandbox settings beyond the defaults; the default changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SandboxOptions {
    /// Lines appended to `/etc/hosts`, in order.
    pub extra_hosts: Vec<ExtraHost>,
    /// Process rlimits; none keeps the runtime's (the host's) limits.
    pub ulimits: Vec<Ulimit>,
    /// Size of the `/dev/shm` tmpfs in bytes; `None` keeps the default 64 MiB.
    pub shm_size: Option<u64>,
    /// stdin and terminal (only `hoist run` asks for them).
    pub stdio: Stdio,
}

impl SandboxOptions {
    /// The settings that change what a RUN computes, one line each, for its cache key (as
    /// BuildKit's ExecOp carries them); empty for the default.
    pub fn key_text(&self) -> String {
        let mut s = String::new();
        for h in &self.extra_hosts {
            s.push_str(&format!("host {}={}\n", h.host, h.ip));
        }
        for u in &self.ulimits {
            s.push_str(&format!("ulimit {}={}:{}\n", u.name, u.soft, u.hard));
        }
        if let Some(b) = self.shm_size {
            s.push_str(&format!("shm {b}\n"));
        }
        s
    }
}

/// The rlimit names docker's `--ulimit` takes.
pub const ULIMIT_NAMES: [&str; 15] = [
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// A flag value docker would refuse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionError {
    #[error("--add-host {0:?}: expected HOST:IP (or HOST=IP) with an IPv4 or IPv6 address")]
    AddHost(String),
    #[error("--add-host {0:?}: host-gateway needs a Docker daemon's gateway address; give the IP")]
    HostGateway(String),
    #[error("--ulimit {0:?}: expected TYPE=SOFT[:HARD], e.g. nofile=1024:2048")]
    Ulimit(String),
    #[error("--ulimit {value:?}: unknown type {name:?} (one of: {})", ULIMIT_NAMES.join(", "))]
    UlimitType { value: String, name: String },
    #[error("--ulimit {0:?}: the soft limit is above the hard limit")]
    UlimitOrder(String),
    #[error("{flag} {value:?}: expected a size such as 64m, 1g or a number of bytes")]
    Size { flag: &'static str, value: String },
}

/// `--add-host HOST:IP` (docker also takes `HOST=IP`); the IP may be IPv6 (`h:::1`, `h=::1`,
/// `h:[::1]`). The host is lowercased, as BuildKit's frontend does.
pub fn parse_add_host(v: &str) -> Result<ExtraHost, OptionError> {
    // `=` first: an IPv6 address has colons of its own.
    let (host, ip) = v
        .split_once('=')
        .or_else(|| v.split_once(':'))
        .ok_or_else(|| OptionError::AddHost(v.into()))?;
    if ip == "host-gateway" {
        return Err(OptionError::HostGateway(v.into()));
    }
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = ip.parse().map_err(|_| OptionError::AddHost(v.into()))?;
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == ',') {
        return Err(OptionError::AddHost(v.into()));
    }
    Ok(ExtraHost {
        host: host.to_ascii_lowercase(),
        ip,
    })
}

/// `--ulimit TYPE=SOFT[:HARD]` as docker's `units.ParseUlimit`: a known type, numbers
/// (`-1` = unlimited), the hard limit defaulting to the soft one, soft ≤ hard.
pub fn parse_ulimit(v: &str) -> Result<Ulimit, OptionError> {
    let bad = || OptionError::Ulimit(v.into());
    let (name, limits) = v.split_once('=').ok_or_else(bad)?;
    if !ULIMIT_NAMES.contains(&name) {
        return Err(OptionError::UlimitType {
            value: v.into(),
            name: name.into(),
        });
    }
    let num = |s: &str| -> Result<u64, OptionError> {
        match s.parse::<i64>() {
            Ok(-1) => Ok(u64::MAX),
            Ok(n) if n >= 0 => Ok(n as u64),
            _ => Err(bad()),
        }
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((s, h)) => (num(s)?, num(h)?),
        None => {
            let s = num(limits)?;
            (s, s)
        }
    };
    if soft > hard {
        return Err(OptionError::UlimitOrder(v.into()));
    }
    Ok(Ulimit {
        name: name.into(),
        soft,
        hard,
    })
}

/// A size as docker's `units.RAMInBytes`: a number with an optional `b`, `k`, `m`, `g`, `t`
/// (binary units, an optional trailing `b`/`ib`), e.g. `64m`, `1g`, `1048576`.
pub fn parse_size(flag: &'static str, v: &str) -> Result<u64, OptionError> {
    let bad = || OptionError::Size {
        flag,
        value: v.into(),
    };
    let t = v.trim().to_ascii_lowercase();
    let t = t
        .strip_suffix("ib")
        .or_else(|| t.strip_suffix('b'))
        .unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.trim().parse().map_err(|_| bad())?;
    if !n.is_finite() || n <= 0.0 {
        return Err(bad());
    }
    Ok((n * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_host_forms() {
        let h = parse_add_host("Db.Local:10.0.0.5").unwrap();
        assert_eq!(
            (h.host.as_str(), h.ip.to_string()),
            ("db.local", "10.0.0.5".into())
        );
        assert_eq!(parse_add_host("v6:::1").unwrap().ip.to_string(), "::1");
        assert_eq!(
            parse_add_host("v6=fe80::1").unwrap().ip.to_string(),
            "fe80::1"
        );
        assert_eq!(parse_add_host("v6:[::2]").unwrap().ip.to_string(), "::2");
        for bad in ["nohost", "h:notanip", ":1.2.3.4", "h:"] {
            assert_eq!(
                parse_add_host(bad),
                Err(OptionError::AddHost(bad.into())),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_add_host("h:host-gateway"),
            Err(OptionError::HostGateway(_))
        ));
    }

    #[test]
    fn ulimit_forms() {
        let u = parse_ulimit("nofile=1024:2048").unwrap();
        assert_eq!(
            (u.soft, u.hard, u.oci_type().as_str()),
            (1024, 2048, "RLIMIT_NOFILE")
        );
        let u = parse_ulimit("nproc=100").unwrap();
        assert_eq!((u.soft, u.hard), (100, 100));
        assert_eq!(parse_ulimit("core=-1").unwrap().hard, u64::MAX);
        assert!(matches!(
            parse_ulimit("files=1"),
            Err(OptionError::UlimitType { .. })
        ));
        assert!(matches!(
            parse_ulimit("nofile=10:5"),
            Err(OptionError::UlimitOrder(_))
        ));
        for bad in ["nofile", "nofile=x", "nofile=1:y", "nofile=-2"] {
            assert_eq!(
                parse_ulimit(bad),
                Err(OptionError::Ulimit(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("--shm-size", "128m").unwrap(), 128 << 20);
        assert_eq!(parse_size("--shm-size", "1GB").unwrap(), 1 << 30);
        assert_eq!(parse_size("--shm-size", "2MiB").unwrap(), 2 << 20);
        assert_eq!(parse_size("--shm-size", "4096").unwrap(), 4096);
        for bad in ["", "m", "-1m", "1x", "0"] {
            assert!(parse_size("--shm-size", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn key_text_is_empty_by_default() {
        assert_eq!(SandboxOptions::default().key_text(), "");
        let o = SandboxOptions {
            shm_size: Some(1),
            ..Default::default()
        };
        assert_eq!(o.key_text(), "shm 1\n");
    }
}

//! The sandbox's seccomp filter, as `docker run` and BuildKit set it: Docker's default profile
//! (an allow-list: every syscall not listed fails with `EPERM`), or `--security-opt
//! seccomp=unconfined|PROFILE.json`.
//!
//! A user's profile is in Docker's format, which extends the runtime spec's `linux.seccomp`
//! with conditions: `archMap` (the host's architecture and its sub-architectures) and rules that
//! apply only `includes`/`excludes` some capabilities, architectures or a minimum kernel.
//! [`render`] evaluates those conditions for the sandbox's capabilities and the host and
//! returns the plain `oci-spec` value the runtime config carries (pure, tested without root).
//!
//! The default profile is hoist's own typed table of the same facts ([`table`]: the calls
//! always allowed, and the rules gated on kernel, arguments, architecture and capabilities),
//! rendered by the same conditions. Docker's JSON format is only an input format here, for a
//! user's `PROFILE.json`.
//!
//! Where the kernel or the OCI runtime has no seccomp, [`unsupported`] says why; the backend
//! then runs without the default filter (and says so once), but refuses a profile the user
//! asked for by name.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag, LinuxSyscall,
};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

mod table;

/// Errors from this module.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// A profile file could not be read.
    #[error("reading the seccomp profile {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A profile is not valid JSON of Docker's seccomp profile format.
    #[error(
        "{path}: not a seccomp profile in Docker's format: {source} (see Docker's \
         profiles/seccomp/default.json for the format)"
    )]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// A profile parses but says something contradictory.
    #[error("{path}: invalid seccomp profile: {reason}")]
    Invalid { path: PathBuf, reason: String },
    /// A profile was asked for, but the kernel or the runtime cannot apply one.
    #[error(
        "cannot apply the seccomp profile {path}: {reason}; use --security-opt \
         seccomp=unconfined to run without one"
    )]
    Unsupported { path: PathBuf, reason: String },
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, SeccompError>;

/// Which seccomp filter a sandbox gets.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Seccomp {
    /// Docker's default profile (what BuildKit gives every RUN).
    #[default]
    Default,
    /// No filter (`--security-opt seccomp=unconfined`).
    Unconfined,
    /// A profile read from a file (`--security-opt seccomp=PROFILE.json`).
    Profile(Arc<Profile>),
}

impl Seccomp {
    /// Reads and checks the profile at `path` (`--security-opt seccomp=PATH`).
    pub fn from_file(path: &Path) -> Result<Seccomp> {
        let text = std::fs::read_to_string(path).map_err(|source| SeccompError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let profile = Profile::parse(&text, path)?;
        // Conditions are evaluated per run; checking them here reports a bad file at once.
        render(&profile, &[], &Host::current())?;
        Ok(Seccomp::Profile(Arc::new(profile)))
    }
}

/// A seccomp profile in Docker's format.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    #[serde(skip)]
    source: PathBuf,
    #[serde(default)]
    default_action: Option<LinuxSeccompAction>,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<Arch>>,
    #[serde(default)]
    arch_map: Option<Vec<ArchGroup>>,
    #[serde(default)]
    flags: Option<Vec<LinuxSeccompFilterFlag>>,
    #[serde(default)]
    syscalls: Option<Vec<Rule>>,
}

/// An architecture and the ones it also runs (x86_64: x86 and x32).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchGroup {
    architecture: Arch,
    #[serde(default)]
    sub_architectures: Option<Vec<Arch>>,
}

/// One rule: syscalls, the action for them, argument filters and the rule's conditions.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    names: Option<Vec<String>>,
    /// The old single-name form.
    #[serde(default)]
    name: Option<String>,
    action: LinuxSeccompAction,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<LinuxSeccompArg>>,
    #[serde(default)]
    includes: Option<Condition>,
    #[serde(default)]
    excludes: Option<Condition>,
}

/// When a rule applies (`includes`: all of these hold) or not (`excludes`: any holds).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Condition {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    /// `"<kernel>.<major>"`, e.g. `"4.8"`.
    #[serde(default)]
    min_kernel: Option<String>,
}

impl Profile {
    /// Parses a profile; `source` names it in errors.
    pub fn parse(text: &str, source: &Path) -> Result<Profile> {
        let mut p: Profile = serde_json::from_str(text).map_err(|e| SeccompError::Parse {
            path: source.to_path_buf(),
            source: e,
        })?;
        p.source = source.to_path_buf();
        Ok(p)
    }

    /// The file the profile was read from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    fn invalid(&self, reason: impl Into<String>) -> SeccompError {
        SeccompError::Invalid {
            path: self.source.clone(),
            reason: reason.into(),
        }
    }
}

/// What a profile's conditions are evaluated against: the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The architecture as Docker's profiles name it in `arches` (`amd64`, `arm64`, …).
    pub arch: &'static str,
    /// The same as a seccomp architecture, when there is one.
    pub seccomp_arch: Option<Arch>,
    /// The kernel's version and major revision (`6.1.0-13-amd64` → `(6, 1)`).
    pub kernel: (u64, u64),
}

impl Host {
    /// This machine.
    pub fn current() -> Host {
        let (arch, seccomp_arch) = native_arch();
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let kernel = parse_kernel(release.trim()).unwrap_or((0, 0));
        Host {
            arch,
            seccomp_arch,
            kernel,
        }
    }
}

/// The host architecture in Docker's (libseccomp's) naming, and as a seccomp architecture.
fn native_arch() -> (&'static str, Option<Arch>) {
    match std::env::consts::ARCH {
        "x86_64" => ("amd64", Some(Arch::ScmpArchX86_64)),
        "x86" => ("x86", Some(Arch::ScmpArchX86)),
        "aarch64" => ("arm64", Some(Arch::ScmpArchAarch64)),
        "arm" => ("arm", Some(Arch::ScmpArchArm)),
        "riscv64" => ("riscv64", Some(Arch::ScmpArchRiscv64)),
        "s390x" => ("s390x", Some(Arch::ScmpArchS390x)),
        "loongarch64" => ("loongarch64", Some(Arch::ScmpArchLoongarch64)),
        "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", Some(Arch::ScmpArchPpc64le)),
        "powerpc64" => ("ppc64", Some(Arch::ScmpArchPpc64)),
        "mips64" if cfg!(target_endian = "little") => ("mipsel64", Some(Arch::ScmpArchMipsel64)),
        "mips64" => ("mips64", Some(Arch::ScmpArchMips64)),
        other => (other, None),
    }
}

/// `"6.1.0-13-amd64"` or `"4.8"` → `(6, 1)` / `(4, 8)`: minor revisions and suffixes ignored.
fn parse_kernel(s: &str) -> Option<(u64, u64)> {
    let mut parts = s.splitn(3, '.');
    let kernel = parts.next()?.parse().ok()?;
    let major: String = parts
        .next()?
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    Some((kernel, major.parse().ok()?))
}

/// The filter a sandbox with `caps` (bounding set, e.g. `CAP_CHOWN`) gets for `mode` on this
/// host; `None` means no filter.
pub fn filter(mode: &Seccomp, caps: &[String]) -> Result<Option<LinuxSeccomp>> {
    let host = Host::current();
    match mode {
        Seccomp::Unconfined => Ok(None),
        Seccomp::Default => Ok(Some(table::render(caps, &host))),
        Seccomp::Profile(p) => render(p, caps, &host),
    }
}

/// Evaluates `profile`'s conditions for a sandbox with capabilities `caps` on `host`, as
/// Docker does: the architectures of the host's `archMap` entry, and each rule kept when
/// every `includes` condition holds and no `excludes` condition does. A profile with neither
/// a default action nor rules means no filter (`None`).
pub fn render(profile: &Profile, caps: &[String], host: &Host) -> Result<Option<LinuxSeccomp>> {
    let rules = profile.syscalls.as_deref().unwrap_or_default();
    let Some(default_action) = profile.default_action else {
        if rules.is_empty() {
            return Ok(None);
        }
        return Err(profile.invalid("it lists syscalls but has no defaultAction"));
    };
    let has_arches = profile
        .architectures
        .as_ref()
        .is_some_and(|a| !a.is_empty());
    let has_map = profile.arch_map.as_ref().is_some_and(|a| !a.is_empty());
    if has_arches && has_map {
        return Err(
            profile.invalid("both 'architectures' and 'archMap' are given; use one of them")
        );
    }
    let mut arches = profile.architectures.clone().unwrap_or_default();
    if let (Some(map), Some(native)) = (&profile.arch_map, host.seccomp_arch)
        && let Some(g) = map.iter().find(|g| g.architecture == native)
    {
        arches.push(g.architecture);
        arches.extend(g.sub_architectures.iter().flatten().copied());
    }
    let mut syscalls = Vec::new();
    for rule in rules {
        let names = match (&rule.name, &rule.names) {
            (Some(_), Some(n)) if !n.is_empty() => {
                return Err(profile.invalid(format!(
                    "a rule gives both 'name' and 'names' ({n:?}); use 'names'"
                )));
            }
            (Some(n), _) => vec![n.clone()],
            (None, Some(n)) if !n.is_empty() => n.clone(),
            _ => return Err(profile.invalid("a rule names no syscall")),
        };
        if let Some(ex) = &rule.excludes
            && condition_any(profile, ex, caps, host)?
        {
            continue;
        }
        if let Some(inc) = &rule.includes
            && !condition_all(profile, inc, caps, host)?
        {
            continue;
        }
        let mut s = LinuxSyscall::default();
        s.set_names(names);
        s.set_action(rule.action);
        s.set_errno_ret(rule.errno_ret);
        s.set_args(rule.args.clone().filter(|a| !a.is_empty()));
        syscalls.push(s);
    }
    let mut out = LinuxSeccomp::default();
    out.set_default_action(default_action);
    out.set_default_errno_ret(profile.default_errno_ret);
    out.set_architectures((!arches.is_empty()).then_some(arches));
    out.set_flags(profile.flags.clone().filter(|f| !f.is_empty()));
    out.set_syscalls((!syscalls.is_empty()).then_some(syscalls));
    Ok(Some(out))
}

fn min_kernel_met(profile: &Profile, v: &str, host: &Host) -> Result<bool> {
    let want = parse_kernel(v).filter(|k| *k != (0, 0)).ok_or_else(|| {
        profile.invalid(format!("minKernel {v:?}: expected \"<kernel>.<major>\""))
    })?;
    Ok(host.kernel >= want)
}

/// `excludes`: true when any of its conditions holds.
fn condition_any(profile: &Profile, c: &Condition, caps: &[String], host: &Host) -> Result<bool> {
    let arch = c.arches.iter().flatten().any(|a| a == host.arch);
    let cap = c.caps.iter().flatten().any(|x| caps.contains(x));
    let kernel = match &c.min_kernel {
        Some(v) => min_kernel_met(profile, v, host)?,
        None => false,
    };
    Ok(arch || cap || kernel)
}

/// `includes`: true when all of its conditions hold.
fn condition_all(profile: &Profile, c: &Condition, caps: &[String], host: &Host) -> Result<bool> {
    let arch = c
        .arches
        .as_ref()
        .is_none_or(|a| a.is_empty() || a.iter().any(|a| a == host.arch));
    let cap = c.caps.iter().flatten().all(|x| caps.contains(x));
    let kernel = match &c.min_kernel {
        Some(v) => min_kernel_met(profile, v, host)?,
        None => true,
    };
    Ok(arch && cap && kernel)
}

/// The filter for one run of a backend whose OCI runtime is `runtime`: [`filter`], unless
/// the kernel or the runtime cannot apply one ([`unsupported`]). Then the default profile is
/// skipped with a warning written to `out` (the run's output) once per process, and a profile
/// the user named is an error.
pub(crate) fn for_run(
    mode: &Seccomp,
    caps: &[String],
    runtime: &Path,
    out: &mut dyn FnMut(&[u8]),
) -> Result<Option<LinuxSeccomp>> {
    static WARNED: AtomicBool = AtomicBool::new(false);
    let Some(f) = filter(mode, caps)? else {
        return Ok(None);
    };
    let Some(why) = unsupported(runtime) else {
        return Ok(Some(f));
    };
    match mode {
        Seccomp::Profile(p) => Err(SeccompError::Unsupported {
            path: p.source().to_path_buf(),
            reason: why,
        }),
        Seccomp::Default | Seccomp::Unconfined => {
            if !WARNED.swap(true, Ordering::SeqCst) {
                out(
                    format!("WARNING: {why}: running without Docker's default seccomp profile\n")
                        .as_bytes(),
                );
            }
            Ok(None)
        }
    }
}

/// Why seccomp filters cannot be applied here (the kernel was built without them, or the
/// runtime `runtime` without libseccomp), or `None` when they can. Checked once per process.
pub fn unsupported(runtime: &Path) -> Option<String> {
    static WHY: OnceLock<Option<String>> = OnceLock::new();
    WHY.get_or_init(|| {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        if !status.lines().any(|l| l.starts_with("Seccomp:")) {
            return Some("the kernel has no seccomp support (CONFIG_SECCOMP)".into());
        }
        let version = std::process::Command::new(runtime)
            .arg("--version")
            .stdin(std::process::Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        runtime_lacks_seccomp(&version).then(|| {
            format!(
                "the OCI runtime {} was built without seccomp support",
                runtime.display()
            )
        })
    })
    .clone()
}

/// Whether a runtime's `--version` output says it lacks seccomp: crun lists `+SECCOMP` or
/// `-SECCOMP` among its features; runc prints a `libseccomp:` line when linked with it.
fn runtime_lacks_seccomp(version: &str) -> bool {
    if version.starts_with("crun") {
        return !version.contains("+SECCOMP");
    }
    if version.starts_with("runc") {
        return !version.lines().any(|l| l.starts_with("libseccomp:"));
    }
    false
}

#[cfg(test)]
mod tests;

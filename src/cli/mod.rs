//! Command-line interface: docker-compatible commands and flags (clap), dispatch to the
//! handlers (one file per command group), and progress rendering. No business logic here.

#![allow(clippy::print_stdout, clippy::print_stderr)]

// Output that never panics: `println!` panics when stdout is a full disk or a closed pipe
// (`hoist images | head -1`, `hoist inspect x > /full/disk`). Failed stdout writes are kept
// and turned into the command's error (a closed pipe is not an error); stderr is best effort.
macro_rules! outln {
    () => { $crate::cli::write_stdout(format_args!("\n")) };
    ($($t:tt)*) => { $crate::cli::write_stdout(format_args!("{}\n", format_args!($($t)*))) };
}
macro_rules! out {
    ($($t:tt)*) => { $crate::cli::write_stdout(format_args!($($t)*)) };
}
macro_rules! errln {
    () => { $crate::cli::write_stderr(format_args!("\n")) };
    ($($t:tt)*) => { $crate::cli::write_stderr(format_args!("{}\n", format_args!($($t)*))) };
}
macro_rules! err {
    ($($t:tt)*) => { $crate::cli::write_stderr(format_args!($($t)*)) };
}

pub mod archive;
pub mod attest_flags;
pub mod build;
pub mod build_flags;
pub mod check;
pub mod diff;
pub mod images;
pub mod inspect;
pub mod login;
pub mod maintenance;
pub mod progress;
pub mod pull_push;
pub mod run_env;
pub mod run_mounts;
pub mod sandbox_run;
pub mod sbom;
pub mod sign;
pub mod system;
pub mod unsupported;

use crate::registry::{Client, TimeLimit};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// hoist: build OCI images from Dockerfiles, no daemon needed.
#[derive(Debug, Parser)]
#[command(name = "hoist", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Store root (default: $HOIST_ROOT, else /var/lib/hoist as root, else ~/.local/share/hoist)
    #[arg(long, global = true, env = "HOIST_ROOT")]
    pub root: Option<PathBuf>,
    /// Registry reachable over plain HTTP (HOST[:PORT]); repeatable
    #[arg(long = "insecure-registry", global = true)]
    pub insecure_registries: Vec<String>,
    /// Print debug logs
    #[arg(long, global = true)]
    pub debug: bool,
}

impl GlobalArgs {
    /// Registries reachable over plain HTTP: `--insecure-registry` flags plus the
    /// `insecure-registries` list of hoist's config file (`$HOIST_CONFIG`, else
    /// `$XDG_CONFIG_HOME/hoist/config.json` or `~/.config/hoist/config.json`, else
    /// `/etc/hoist/config.json`), the same key Docker's daemon.json uses.
    pub fn insecure_registries(&self) -> Vec<String> {
        let mut out = self.insecure_registries.clone();
        for host in config_insecure_registries(&config_paths()) {
            if !out.contains(&host) {
                out.push(host);
            }
        }
        out
    }

    /// The `builder.gc` settings of hoist's config file (the first that exists, as for
    /// `insecure-registries`); defaults when there is none.
    pub fn gc_config(&self) -> crate::Result<crate::gc::GcConfig> {
        for p in config_paths() {
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            let origin = p.display().to_string();
            let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                crate::Error::Usage(format!("{origin}: not valid JSON ({e}); fix or remove it"))
            })?;
            return Ok(crate::gc::GcConfig::from_config(&v, &origin)?);
        }
        Ok(crate::gc::GcConfig::default())
    }

    /// The store root after defaults.
    pub fn store_root(&self) -> PathBuf {
        if let Some(r) = &self.root {
            // Absolute: overlay lowerdirs and runtime mount sources are resolved elsewhere
            // than hoist's working directory.
            return std::path::absolute(r).unwrap_or_else(|_| r.clone());
        }
        // Root of hoist's own user namespace (rootless) keeps the user's default.
        if crate::userns::host_root() {
            return PathBuf::from("/var/lib/hoist");
        }
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(x).join("hoist");
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        let r = home.join(".local/share/hoist");
        std::path::absolute(&r).unwrap_or(r)
    }
}

/// Time limits of registry work, on the commands that talk to registries.
#[derive(Debug, Args, Clone)]
pub struct RegistryTimeoutArgs {
    /// Give up a registry operation (the pull or push of one image, a cache import or
    /// export), retries included, after this long: e.g. 90s, 10m, 1h30m; 0 = no limit
    #[arg(
        long = "registry-timeout",
        value_name = "DURATION",
        env = "HOIST_REGISTRY_TIMEOUT",
        default_value_t = TimeLimit::DEFAULT_OPERATION
    )]
    pub registry_timeout: TimeLimit,
    /// Retry a registry request that receives nothing for this long (for tests)
    #[arg(
        long = "registry-idle-timeout",
        value_name = "DURATION",
        env = "HOIST_REGISTRY_IDLE_TIMEOUT",
        default_value_t = TimeLimit::DEFAULT_IDLE,
        hide = true
    )]
    pub registry_idle_timeout: TimeLimit,
}

impl RegistryTimeoutArgs {
    /// Sets these limits on a registry client.
    pub fn apply(&self, c: &mut Client) {
        c.set_timeouts(self.registry_timeout, self.registry_idle_timeout);
    }
}

/// Subcommands.
// Parsed once per process: the size of the `build` variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build an image from a Dockerfile
    Build(build::BuildArgs),
    /// Run a command in a throwaway container of an image
    // `-h` is docker run's `--hostname`: help is `--help` only there.
    #[command(disable_help_flag = true)]
    Run(sandbox_run::RunArgs),
    /// Pull an image from a registry
    Pull(pull_push::PullArgs),
    /// Push an image to a registry
    Push(pull_push::PushArgs),
    /// List images in the store
    Images(images::ImagesArgs),
    /// Give an image another name
    Tag(images::TagArgs),
    /// Remove images
    Rmi(images::RmiArgs),
    /// Show an image's config and manifest as JSON
    Inspect(inspect::InspectArgs),
    /// Explain why two images differ: config fields, then per layer the files that differ
    Diff(diff::DiffArgs),
    /// Make a software bill of materials (SPDX 2.3 JSON, or a table) of an image's packages
    Sbom(sbom::SbomArgs),
    /// Save images to a tar archive (docker-archive or OCI layout)
    Save(archive::SaveArgs),
    /// Load images from a tar archive
    Load(archive::LoadArgs),
    /// Remove unreferenced blobs, snapshots and build cache
    Prune(maintenance::PruneArgs),
    /// Check the store and repair what can be repaired
    Fsck(maintenance::FsckArgs),
    /// Store-wide information (`system df`: disk usage)
    System(system::SystemArgs),
    /// Log in to a registry (shares Docker's config.json)
    Login(login::LoginArgs),
    /// Log out of a registry
    Logout(login::LogoutArgs),
    /// Sign an image in a registry, in cosign's format (`sha256-<hex>.sig`)
    Sign(sign::SignArgs),
    /// Verify an image's cosign signatures (or attestations) with a public key
    Verify(sign::VerifyArgs),
}

/// The first failed write to stdout (other than a closed pipe).
static STDOUT_ERROR: std::sync::Mutex<Option<std::io::Error>> = std::sync::Mutex::new(None);

/// Writes to stdout; a failure is remembered and reported when the command ends.
#[doc(hidden)]
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_fmt(args).and_then(|()| o.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        let mut slot = STDOUT_ERROR.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(e);
    }
}

/// Writes to stderr, best effort (there is nowhere left to report a failure).
#[doc(hidden)]
pub fn write_stderr(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// `e` and its causes as one line, `outer: inner: …`, leaving out a cause whose text the
/// message already holds (`{path}: {source}` errors would otherwise repeat it).
pub fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !msg.contains(&t) {
            msg.push_str(": ");
            msg.push_str(&t);
        }
        cur = c.source();
    }
    // A Dockerfile's `FROM user:pw@host/img` reaches errors as written.
    crate::registry::auth::redact_credentials(&msg)
}

/// Parses arguments and runs the command.
pub fn run(cli: Cli) -> crate::Result<ExitCode> {
    let root = cli.global.store_root();
    let r = dispatch(cli);
    if let Err(e) = &r
        && let Some(note) = disk_full_note(e, &root)
    {
        errln!("{note}");
    }
    let failed = STDOUT_ERROR
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    match (r, failed) {
        (Ok(_), Some(source)) => Err(crate::Error::Io {
            path: "<stdout>".into(),
            source,
        }),
        (r, _) => r,
    }
}

/// True when `e` (or what caused it, or the output of the RUN that failed) is ENOSPC.
fn out_of_space(e: &crate::Error) -> bool {
    const ENOSPC_TEXT: &str = "No space left on device";
    fn engine(e: &crate::engine::EngineError) -> bool {
        use crate::engine::EngineError;
        match e {
            EngineError::Step { error, .. } => engine(error),
            EngineError::RunFailed { tail, .. } => tail.contains(ENOSPC_TEXT),
            _ => false,
        }
    }
    if let crate::Error::Engine(en) = e
        && engine(en)
    {
        return true;
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error()))
            || c.to_string().contains(ENOSPC_TEXT)
        {
            return true;
        }
        cur = c.source();
    }
    false
}

/// A line that says the store's disk is full, naming it, when `e` came from ENOSPC: inside a
/// RUN that reads as a step failure, and an I/O error names one file, not what to do.
fn disk_full_note(e: &crate::Error, root: &std::path::Path) -> Option<String> {
    if !out_of_space(e) {
        return None;
    }
    let free = rustix::fs::statvfs(root)
        .ok()
        .map(|st| format!(" ({} MiB free now)", (st.f_bavail * st.f_frsize) >> 20))
        .unwrap_or_default();
    Some(format!(
        "error: no space left on device: the disk holding the hoist store {} is full{free}; \
         free space (`hoist prune`, `hoist rmi`) or use --root on a larger disk",
        root.display()
    ))
}

fn dispatch(cli: Cli) -> crate::Result<ExitCode> {
    let g = &cli.global;
    match cli.command {
        Command::Build(a) => build::run(g, a),
        Command::Run(a) => sandbox_run::run(g, a),
        Command::Pull(a) => pull_push::pull(g, a),
        Command::Push(a) => pull_push::push(g, a),
        Command::Images(a) => images::images(g, a),
        Command::Tag(a) => images::tag(g, a),
        Command::Rmi(a) => images::rmi(g, a),
        Command::Inspect(a) => inspect::inspect(g, a),
        Command::Diff(a) => diff::run(g, a),
        Command::Sbom(a) => sbom::run(g, a),
        Command::Save(a) => archive::save(g, a),
        Command::Load(a) => archive::load(g, a),
        Command::Prune(a) => maintenance::prune(g, a),
        Command::Fsck(a) => maintenance::fsck(g, a),
        Command::System(a) => system::run(g, a),
        Command::Login(a) => login::login(g, a),
        Command::Logout(a) => login::logout(g, a),
        Command::Sign(a) => sign::sign(g, a),
        Command::Verify(a) => sign::verify(g, a),
    }
}

/// Where hoist's config file may be, most specific first.
fn config_paths() -> Vec<PathBuf> {
    if let Some(p) = std::env::var_os("HOIST_CONFIG") {
        return vec![PathBuf::from(p)];
    }
    let mut v = Vec::new();
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
        v.push(PathBuf::from(x).join("hoist/config.json"));
    } else if let Some(h) = std::env::var_os("HOME") {
        v.push(PathBuf::from(h).join(".config/hoist/config.json"));
    }
    v.push(PathBuf::from("/etc/hoist/config.json"));
    v
}

/// `insecure-registries` from the first config file that exists; a file that does not parse
/// is reported and ignored rather than silently trusted.
fn config_insecure_registries(paths: &[PathBuf]) -> Vec<String> {
    for p in paths {
        let Ok(bytes) = std::fs::read(p) else {
            continue;
        };
        match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(v) => {
                return v
                    .get("insecure-registries")
                    .and_then(|l| l.as_array())
                    .map(|l| {
                        l.iter()
                            .filter_map(|h| h.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
            }
            Err(e) => {
                errln!(
                    "WARNING: {}: not valid JSON ({e}); ignoring it",
                    p.display()
                );
                return Vec::new();
            }
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_does_not_repeat_causes() {
        let e = crate::Error::Io {
            path: "/s/tmp/blob-1".into(),
            source: std::io::Error::from_raw_os_error(28),
        };
        let t = error_text(&e);
        assert_eq!(t.matches("os error 28").count(), 1, "{t}");
        assert!(t.starts_with("/s/tmp/blob-1: "), "{t}");
        let wrapped = crate::Error::Registry(crate::registry::RegistryError::Store(
            crate::store::StoreError::Io {
                path: "/s/blobs".into(),
                source: std::io::Error::from_raw_os_error(5),
            },
        ));
        let t = error_text(&wrapped);
        assert_eq!(t.matches("os error 5").count(), 1, "{t}");
    }

    #[test]
    fn insecure_registries_from_the_first_config_file() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a.json");
        let b = d.path().join("b.json");
        std::fs::write(&b, r#"{"insecure-registries": ["other:5000"]}"#).unwrap();
        assert_eq!(
            config_insecure_registries(&[a.clone(), b.clone()]),
            vec!["other:5000"]
        );
        std::fs::write(
            &a,
            r#"{"insecure-registries": ["reg.internal:5000", "10.0.0.5"]}"#,
        )
        .unwrap();
        assert_eq!(
            config_insecure_registries(&[a.clone(), b.clone()]),
            vec!["reg.internal:5000", "10.0.0.5"]
        );
        std::fs::write(&a, "{broken").unwrap();
        assert!(config_insecure_registries(&[a, b]).is_empty());
    }
}

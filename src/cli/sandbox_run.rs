//! `hoist run`: run a command in a throwaway sandbox of an image, like `docker run --rm`: the
//! command is PID 1 (`--init` puts hoist's reaping init in front), with Docker's default
//! seccomp profile and no `no_new_privs` unless `--security-opt` says otherwise. Volumes and
//! mounts are read in `run_mounts`, `--env-file` in `run_env`; `-t` gives the command a pty
//! (the OCI runtime allocates and relays it), `-i` hoist's stdin.

use super::GlobalArgs;
use crate::executor::{self, Limits, Network, RunSpec, SandboxOptions, Seccomp, Security, Stdio};
use crate::oci::RunConfig;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// `hoist run` flags.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Network: host (default) or none
    #[arg(long, default_value = "host")]
    pub network: String,
    /// User (name|uid[:group|gid])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Environment variable KEY=VALUE (repeatable)
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Working directory
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Memory limit (e.g. 512m)
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// CPU limit (e.g. 1.5)
    #[arg(long)]
    pub cpus: Option<String>,
    /// Maximum number of processes
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    /// Override the image's entrypoint
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Read environment variables from a file of KEY=VALUE lines (repeatable)
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Bind mount or volume: [HOST-DIR|NAME:]CONTAINER-DIR[:ro|rw] (repeatable)
    #[arg(short = 'v', long = "volume", value_name = "[SRC:]DST[:OPTS]")]
    pub volumes: Vec<String>,
    /// Mount: type=bind|volume|tmpfs,source=…,target=…[,readonly][,tmpfs-size=…] (repeatable)
    #[arg(long = "mount", value_name = "type=…,target=…")]
    pub mounts: Vec<String>,
    /// Keep stdin open: the command reads hoist's stdin
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY for the command
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Remove the container when it exits (always the case: hoist keeps no containers)
    #[arg(long)]
    pub rm: bool,
    /// Container host name (default hoist)
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Name of the container (shown in hoist's messages about it)
    #[arg(long)]
    pub name: Option<String>,
    /// Add a host-to-IP mapping to /etc/hosts: HOST:IP (repeatable)
    #[arg(long = "add-host", value_name = "HOST:IP")]
    pub add_host: Vec<String>,
    /// Ulimit: TYPE=SOFT[:HARD], e.g. nofile=1024:2048 (repeatable)
    #[arg(long = "ulimit", value_name = "TYPE=SOFT[:HARD]")]
    pub ulimit: Vec<String>,
    /// Size of /dev/shm, e.g. 128m (default 64m)
    #[arg(long = "shm-size", value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// Run an init inside the sandbox that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Security options: no-new-privileges[=true|false], seccomp=unconfined|PROFILE.json
    /// (repeatable)
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Platform of the image to run, os/arch[/variant] (default: the host's); a foreign one
    /// runs through binfmt_misc (qemu-user-static)
    #[arg(long)]
    pub platform: Option<String>,
    #[command(flatten)]
    pub timeouts: super::RegistryTimeoutArgs,
    /// Image to run
    pub image: String,
    /// Command and arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Runs `hoist run`: the image's entrypoint/cmd (or the given command) in a throwaway sandbox,
/// output to the terminal, the process's exit code as hoist's.
pub fn run(g: &GlobalArgs, a: RunArgs) -> crate::Result<ExitCode> {
    let name = a.name.as_deref().unwrap_or("hoist run");
    run_named(g, &a).map_err(|e| match e {
        // Name the container in what went wrong inside it, as docker's messages do.
        crate::Error::Executor(e) if a.name.is_some() => {
            crate::Error::Usage(format!("container {name}: {e}"))
        }
        e => e,
    })
}

fn run_named(g: &GlobalArgs, a: &RunArgs) -> crate::Result<ExitCode> {
    if let Some(n) = &a.name
        && !valid_name(n)
    {
        return Err(crate::Error::Usage(format!(
            "--name {n:?}: invalid container name, only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    // As docker: `-it` needs a terminal to read from.
    if a.tty && a.interactive && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Err(crate::Error::Usage(
            "the input device is not a TTY; drop -t (or -i), or run hoist from a terminal".into(),
        ));
    }
    if let Some(h) = &a.hostname
        && (h.is_empty()
            || h.len() > 253
            || !h
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'))
    {
        return Err(crate::Error::Usage(format!(
            "--hostname {h:?}: expected a host name (letters, digits, '-' and '.')"
        )));
    }
    let network = parse_network(&a.network)?;
    let memory = a.memory.as_deref().map(parse_memory).transpose()?;
    let cpus = a.cpus.as_deref().map(parse_cpus).transpose()?;
    let mut security = parse_security_opts(&a.security_opt)?;
    security.init = a.init;
    if let Some(w) = &a.workdir
        && !w.starts_with('/')
    {
        return Err(crate::Error::Usage(format!(
            "--workdir {w:?}: the working directory must be an absolute path"
        )));
    }
    // The same isolation a build would pick (`HOIST_ISOLATION`, else a mount probe).
    let pool = executor::default_pool_dir();
    let selected = executor::select(pool.clone())?;
    if let Some(note) = &selected.note {
        errln!("{note}");
    }
    let runtime = selected.isolation;
    if let Some(n) = &a.name {
        NAME.get_or_init(|| n.clone());
    }
    executor::install_signal_handlers(Duration::from_secs(10), on_signal)?;
    // Whatever a killed hoist left behind in the pool goes first.
    executor::cleanup_stale(&pool)?;

    let platform = match &a.platform {
        Some(p) => {
            let p = crate::oci::Platform::parse(p).ok_or_else(|| {
                crate::Error::Usage(format!("--platform {p:?}: expected os/arch[/variant]"))
            })?;
            crate::platform::check_runnable(std::slice::from_ref(&p))?;
            p
        }
        None => crate::oci::Platform::host(),
    };
    let (config, lowers) = image_rootfs(g, &a.timeouts, &a.image, &platform)?;
    let rc = &config.config;
    let argv = command_line(rc, a.entrypoint.as_deref(), &a.command);
    if argv.is_empty() {
        return Err(crate::Error::Usage(format!(
            "{}: no command specified: the image has no Entrypoint or Cmd; give one after the image name",
            a.image
        )));
    }
    // `--env-file` entries first, so `-e` overrides them (as docker).
    let mut env_flags = Vec::new();
    for f in &a.env_file {
        env_flags.extend(super::run_env::read_env_file(f)?);
    }
    env_flags.extend(a.env.iter().cloned());
    let env = merge_env(rc.env.as_deref().unwrap_or(&[]), &env_flags, |k| {
        std::env::var(k).ok()
    });
    let cwd = a
        .workdir
        .clone()
        .or_else(|| rc.working_dir.clone().filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".into());
    let user = a
        .user
        .clone()
        .or_else(|| rc.user.clone())
        .unwrap_or_default();

    // Changes go to a temp upper on the store's filesystem and are discarded.
    let tmp_root = g.store_root().join("tmp");
    std::fs::create_dir_all(&tmp_root).map_err(|e| crate::Error::Io {
        path: tmp_root.clone(),
        source: e,
    })?;
    let scratch = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(&tmp_root)
        .map_err(|e| crate::Error::Io {
            path: tmp_root.clone(),
            source: e,
        })?;
    let upper = scratch.path().join("upper");
    std::fs::create_dir(&upper).map_err(|e| crate::Error::Io {
        path: upper.clone(),
        source: e,
    })?;

    let volume_dirs = super::run_mounts::VolumeDirs {
        named: &g.store_root().join("volumes"),
        anonymous: &scratch.path().join("volumes"),
    };
    let mut mounts = Vec::new();
    for v in &a.volumes {
        mounts.push(super::run_mounts::parse_volume(v, &volume_dirs)?);
    }
    for m in &a.mounts {
        mounts.push(super::run_mounts::parse_mount(m, &volume_dirs)?);
    }
    // Empty volumes get the image's files at their target first, as docker's.
    let volumes = super::run_mounts::volumes(&mounts, &volume_dirs);
    if !volumes.is_empty() {
        let view = runtime.view(&lowers)?;
        for (target, dir) in volumes {
            super::run_mounts::populate(view.path(), target, dir)?;
        }
    }
    let spec = RunSpec {
        // An image may repeat a layer; overlay refuses a dir given twice (ELOOP).
        lowers,
        upper: Some(upper),
        argv,
        env,
        cwd,
        user,
        hostname: a.hostname.clone().unwrap_or_else(|| "hoist".into()),
        network,
        mounts,
        limits: Limits {
            memory,
            cpus,
            pids: a.pids_limit,
        },
        security,
        sandbox: SandboxOptions {
            stdio: Stdio {
                stdin: a.interactive,
                tty: a.tty,
            },
            ..sandbox_options(a)?
        },
    };
    if let Some(note) = executor::limits_note(&spec.limits) {
        errln!("{note}");
    }
    let mut stdout = std::io::stdout();
    let code = runtime.run(&spec, &mut |b| {
        let _ = stdout.write_all(b);
        let _ = stdout.flush();
    })?;
    drop(scratch);
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// `--add-host`, `--ulimit` and `--shm-size`, read as `hoist build` reads them.
fn sandbox_options(a: &RunArgs) -> crate::Result<SandboxOptions> {
    super::build_flags::BuildSandboxArgs {
        add_host: a.add_host.clone(),
        ulimit: a.ulimit.clone(),
        shm_size: a.shm_size.clone(),
        ..Default::default()
    }
    .sandbox()
}

/// `--name`, for the signal handler's message.
static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn on_signal(sig: i32) {
    match NAME.get() {
        Some(n) => errln!("hoist: signal {sig} received, stopping container {n}"),
        None => errln!("hoist: signal {sig} received, stopping the sandbox"),
    }
}

/// docker's rule for a container name.
fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphanumeric())
        && c.all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch))
}

/// The image's config and unpacked layers, pulling it first when the store lacks it (a local
/// copy is used as is, like `docker run`).
fn image_rootfs(
    g: &GlobalArgs,
    timeouts: &super::RegistryTimeoutArgs,
    image: &str,
    platform: &crate::oci::Platform,
) -> crate::Result<(crate::oci::ImageConfig, Vec<PathBuf>)> {
    let store = crate::store::Store::open(&g.store_root())?;
    let mut registry = crate::registry::Client::new(crate::registry::RegistryOptions {
        insecure: g.insecure_registries(),
        docker_config_dir: None,
    })?;
    timeouts.apply(&mut registry);
    let warn = |m: String| errln!("WARNING: {m}");
    let b = crate::engine::base::load(
        &store,
        Some(&registry),
        image,
        platform,
        crate::engine::base::Policy::PreferLocal,
        &warn,
    )?;
    Ok((b.config, b.layers.into_iter().map(|l| l.snapshot).collect()))
}

/// `--network`: `host` or `none` (`default`/`bridge` mean host here: hoist has no bridge).
pub fn parse_network(s: &str) -> crate::Result<Network> {
    match s {
        "host" | "default" => Ok(Network::Host),
        "none" => Ok(Network::None),
        _ => Err(crate::Error::Usage(format!(
            "--network {s:?}: expected host or none"
        ))),
    }
}

/// `--security-opt` values, as `docker run` takes them: `no-new-privileges` (alone, or with
/// `=`/`:` and `true`/`false`), `seccomp=unconfined` or `seccomp=PROFILE.json` (a profile in
/// Docker's format, read now). Later options override earlier ones.
pub fn parse_security_opts(opts: &[String]) -> crate::Result<Security> {
    let mut s = Security::default();
    for o in opts {
        let (key, value) = match o.split_once(['=', ':']) {
            Some((k, v)) => (k, Some(v)),
            None => (o.as_str(), None),
        };
        match (key, value) {
            ("no-new-privileges", None | Some("true")) => s.no_new_privileges = true,
            ("no-new-privileges", Some("false")) => s.no_new_privileges = false,
            ("seccomp", Some("unconfined")) => s.seccomp = Seccomp::Unconfined,
            ("seccomp", Some(path)) if !path.is_empty() => {
                s.seccomp = Seccomp::from_file(std::path::Path::new(path))
                    .map_err(executor::ExecutorError::from)?
            }
            _ => {
                return Err(crate::Error::Usage(format!(
                    "--security-opt {o:?}: expected no-new-privileges[=true|false], \
                     seccomp=unconfined or seccomp=PROFILE.json"
                )));
            }
        }
    }
    Ok(s)
}

/// `--memory`: bytes with an optional `b`, `k`, `m`, `g` or `t` suffix (binary units, as
/// Docker): `512m`, `1g`, `1048576`.
pub fn parse_memory(s: &str) -> crate::Result<u64> {
    let bad = || {
        crate::Error::Usage(format!(
            "--memory {s:?}: expected a size such as 512m or 1g"
        ))
    };
    let t = s.trim().to_ascii_lowercase();
    let t = t
        .strip_suffix('b')
        .filter(|r| r.ends_with(|c: char| c.is_ascii_alphabetic()))
        .unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        Some('b') => (&t[..t.len() - 1], 1),
        _ => (t, 1),
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    if !v.is_finite() || v <= 0.0 {
        return Err(bad());
    }
    let bytes = (v * mult as f64) as u64;
    if bytes < 6 << 20 {
        return Err(crate::Error::Usage(format!(
            "--memory {s:?}: the minimum is 6m"
        )));
    }
    Ok(bytes)
}

/// `--cpus`: a positive number of CPUs, e.g. `1.5`.
pub fn parse_cpus(s: &str) -> crate::Result<f64> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(crate::Error::Usage(format!(
            "--cpus {s:?}: expected a positive number such as 1.5"
        ))),
    }
}

/// The process's argv like `docker run`: `--entrypoint` replaces the image's Entrypoint and
/// drops its Cmd; a command given after the image replaces Cmd.
pub fn command_line(rc: &RunConfig, entrypoint: Option<&str>, command: &[String]) -> Vec<String> {
    let mut argv: Vec<String> = match entrypoint {
        Some("") => Vec::new(),
        Some(e) => vec![e.to_string()],
        None => rc.entrypoint.clone().unwrap_or_default(),
    };
    if !command.is_empty() {
        argv.extend(command.iter().cloned());
    } else if entrypoint.is_none() {
        argv.extend(rc.cmd.clone().unwrap_or_default());
    }
    argv
}

/// The image's Env with `-e` entries applied: `K=V` sets, a bare `K` takes hoist's own value
/// (and is dropped when unset), as `docker run -e`.
pub fn merge_env(
    image: &[String],
    flags: &[String],
    host: impl Fn(&str) -> Option<String>,
) -> Vec<String> {
    let mut env: Vec<String> = image.to_vec();
    for f in flags {
        let entry = match f.split_once('=') {
            Some(_) => f.clone(),
            None => match host(f) {
                Some(v) => format!("{f}={v}"),
                None => continue,
            },
        };
        let key = entry
            .split_once('=')
            .map_or(entry.as_str(), |(k, _)| k)
            .to_string();
        match env
            .iter_mut()
            .find(|kv| kv.split_once('=').map_or(kv.as_str(), |(k, _)| k) == key)
        {
            Some(slot) => *slot = entry,
            None => env.push(entry),
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("512m").unwrap(), 512 << 20);
        assert_eq!(parse_memory("1g").unwrap(), 1 << 30);
        assert_eq!(parse_memory("1GB").unwrap(), 1 << 30);
        assert_eq!(parse_memory("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_memory("10485760").unwrap(), 10 << 20);
        for bad in ["", "m", "-1g", "1x", "1k", "nan"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpus_and_network() {
        assert_eq!(parse_cpus("1.5").unwrap(), 1.5);
        assert!(parse_cpus("0").is_err() && parse_cpus("x").is_err() && parse_cpus("inf").is_err());
        assert_eq!(parse_network("none").unwrap(), Network::None);
        assert_eq!(parse_network("host").unwrap(), Network::Host);
        assert!(parse_network("bridge").is_err());
    }

    #[test]
    fn security_opts() {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let d = parse_security_opts(&[]).unwrap();
        assert_eq!(d, Security::default());
        assert!(!d.no_new_privileges && !d.init && d.seccomp == Seccomp::Default);
        for on in [
            "no-new-privileges",
            "no-new-privileges=true",
            "no-new-privileges:true",
        ] {
            assert!(
                parse_security_opts(&v(&[on])).unwrap().no_new_privileges,
                "{on}"
            );
        }
        let off = parse_security_opts(&v(&["no-new-privileges", "no-new-privileges=false"]));
        assert!(!off.unwrap().no_new_privileges);
        let u = parse_security_opts(&v(&["seccomp=unconfined"])).unwrap();
        assert_eq!(u.seccomp, Seccomp::Unconfined);
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("p.json");
        std::fs::write(&f, r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#).unwrap();
        let p = parse_security_opts(&[format!("seccomp={}", f.display())]).unwrap();
        assert!(matches!(p.seccomp, Seccomp::Profile(_)));
        for bad in [
            "apparmor=x",
            "seccomp",
            "seccomp=",
            "no-new-privileges=maybe",
        ] {
            let e = parse_security_opts(&v(&[bad])).unwrap_err().to_string();
            assert!(e.contains(&format!("--security-opt {bad:?}")), "{e}");
        }
        std::fs::write(&f, "{").unwrap();
        let e = parse_security_opts(&[format!("seccomp={}", f.display())]).unwrap_err();
        assert!(e.to_string().contains("not a seccomp profile"), "{e}");
    }

    #[test]
    fn docker_run_command_semantics() {
        let rc = RunConfig {
            entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
            cmd: Some(vec!["cat greeting".into()]),
            ..Default::default()
        };
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            command_line(&rc, None, &[]),
            v(&["/bin/sh", "-c", "cat greeting"])
        );
        assert_eq!(
            command_line(&rc, None, &v(&["echo hi"])),
            v(&["/bin/sh", "-c", "echo hi"])
        );
        assert_eq!(command_line(&rc, Some("/bin/echo"), &[]), v(&["/bin/echo"]));
        assert_eq!(
            command_line(&rc, Some("/bin/echo"), &v(&["a"])),
            v(&["/bin/echo", "a"])
        );
        assert_eq!(command_line(&rc, Some(""), &v(&["ls"])), v(&["ls"]));
        let only_cmd = RunConfig {
            cmd: Some(v(&["sh"])),
            ..Default::default()
        };
        assert_eq!(
            command_line(&only_cmd, None, &v(&["echo", "hi"])),
            v(&["echo", "hi"])
        );
        assert_eq!(
            command_line(&RunConfig::default(), None, &[]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn env_flags() {
        let image = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        let flags = vec![
            "A=2".to_string(),
            "B=x=y".to_string(),
            "FROMHOST".to_string(),
            "UNSET".to_string(),
        ];
        let host = |k: &str| (k == "FROMHOST").then(|| "h".to_string());
        assert_eq!(
            merge_env(&image, &flags, host),
            ["PATH=/bin", "A=2", "B=x=y", "FROMHOST=h"]
        );
    }
}

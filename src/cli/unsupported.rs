//! Flags `docker build`/`docker run` have and hoist does not (yet): clap's "unexpected
//! argument" for one of them becomes "hoist build: --foo is not supported yet", so a CI script
//! written for docker fails at once, naming the flag, rather than with a generic parse error
//! (and never by the flag being ignored).

use super::Cli;
use clap::Parser;
use clap::error::{ContextKind, ContextValue, ErrorKind};

/// `docker build` (buildx) flags hoist lacks.
pub const BUILD: &[&str] = &[
    "--builder",
    "--cgroup-parent",
    "--load",
    "--print",
    "--detach",
    "--compress",
    "--cpu-period",
    "--cpu-quota",
    "--cpu-shares",
    "-c",
    "--cpuset-cpus",
    "--cpuset-mems",
    "--disable-content-trust",
    "--isolation",
    "--memory",
    "-m",
    "--memory-swap",
    "--security-opt",
    "--stream",
];

/// `docker run` flags hoist lacks.
pub const RUN: &[&str] = &[
    "--annotation",
    "--attach",
    "-a",
    "--blkio-weight",
    "--blkio-weight-device",
    "--cap-add",
    "--cap-drop",
    "--cgroup-parent",
    "--cgroupns",
    "--cidfile",
    "--cpu-period",
    "--cpu-quota",
    "--cpu-rt-period",
    "--cpu-rt-runtime",
    "--cpu-shares",
    "-c",
    "--cpuset-cpus",
    "--cpuset-mems",
    "--detach",
    "-d",
    "--detach-keys",
    "--device",
    "--device-cgroup-rule",
    "--device-read-bps",
    "--device-read-iops",
    "--device-write-bps",
    "--device-write-iops",
    "--disable-content-trust",
    "--dns",
    "--dns-option",
    "--dns-search",
    "--domainname",
    "--expose",
    "--gpus",
    "--group-add",
    "--health-cmd",
    "--health-interval",
    "--health-retries",
    "--health-start-interval",
    "--health-start-period",
    "--health-timeout",
    "--ip",
    "--ip6",
    "--ipc",
    "--isolation",
    "--kernel-memory",
    "--label",
    "-l",
    "--label-file",
    "--link",
    "--link-local-ip",
    "--log-driver",
    "--log-opt",
    "--mac-address",
    "--memory-reservation",
    "--memory-swap",
    "--memory-swappiness",
    "--network-alias",
    "--no-healthcheck",
    "--oom-kill-disable",
    "--oom-score-adj",
    "--pid",
    "--privileged",
    "--publish",
    "-p",
    "--publish-all",
    "-P",
    "--pull",
    "--quiet",
    "-q",
    "--read-only",
    "--restart",
    "--runtime",
    "--sig-proxy",
    "--stop-signal",
    "--stop-timeout",
    "--storage-opt",
    "--sysctl",
    "--tmpfs",
    "--userns",
    "--uts",
    "--volume-driver",
    "--volumes-from",
];

/// The message for `arg` (as clap reports it: `--foo`, `--foo=x`, `-m`) given to `command`,
/// when docker has that flag and hoist does not.
pub fn message(command: &str, arg: &str) -> Option<String> {
    let flag = arg.split_once('=').map_or(arg, |(f, _)| f);
    let list = match command {
        "build" => BUILD,
        "run" => RUN,
        _ => return None,
    };
    list.contains(&flag).then(|| {
        format!(
            "hoist {command}: {flag} is not supported yet (docker {command} has it; see \
             `hoist {command} --help` for what hoist takes)"
        )
    })
}

/// The subcommand in `args` (the first word that names one).
fn subcommand(args: &[String]) -> Option<&str> {
    args.iter()
        .skip(1)
        .map(String::as_str)
        .find(|a| matches!(*a, "build" | "run"))
}

/// Parses the command line like `Cli::parse`, with the docker-flag message above.
pub fn parse_args() -> Cli {
    match Cli::try_parse_from(super::attest_flags::normalize(std::env::args())) {
        Ok(c) => c,
        Err(e) => {
            if e.kind() == ErrorKind::UnknownArgument
                && let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg)
            {
                let args: Vec<String> = std::env::args().collect();
                if let Some(m) = subcommand(&args).and_then(|c| message(c, arg)) {
                    super::write_stderr(format_args!("error: {m}\n"));
                    std::process::exit(2);
                }
            }
            e.exit()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_flag() {
        assert_eq!(
            message("build", "--stream").as_deref(),
            Some(
                "hoist build: --stream is not supported yet (docker build has it; see `hoist \
                 build --help` for what hoist takes)"
            )
        );
        assert!(
            message("run", "--privileged=true")
                .unwrap()
                .contains("--privileged ")
        );
        assert!(message("build", "--no-such-docker-flag").is_none());
        assert!(message("images", "--stream").is_none());
    }

    /// No listed flag is one hoist has: the list would hide it (clap accepts it first, but a
    /// stale entry misleads whoever reads the list).
    #[test]
    fn lists_hold_no_hoist_flag() {
        use clap::CommandFactory;
        let cli = Cli::command();
        for (name, list) in [("build", BUILD), ("run", RUN)] {
            let sub = cli.find_subcommand(name).unwrap();
            for a in sub.get_arguments() {
                let long = a.get_long().map(|l| format!("--{l}"));
                let short = a.get_short().map(|s| format!("-{s}"));
                for f in [long, short].into_iter().flatten() {
                    assert!(
                        !list.contains(&f.as_str()),
                        "{name} {f} is listed but exists"
                    );
                }
            }
        }
    }
}

//! `hoist run`: run a command in a throwaway sandbox of an image, like `docker run --rm`.

use super::GlobalArgs;
use clap::Args;
use std::process::ExitCode;

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
    #[arg(long)]
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
    /// Image to run
    pub image: String,
    /// Command and arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Runs `hoist run`.
pub fn run(_g: &GlobalArgs, _a: RunArgs) -> crate::Result<ExitCode> {
    todo!("executor helper")
}

//! `hoist build`: flags (docker build compatible) and the handler.

use super::GlobalArgs;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// `hoist build` flags.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Name and tag (repeatable)
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Dockerfile path (default CONTEXT/Dockerfile; `-` reads stdin)
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Build-time variable KEY=VALUE, or KEY to take it from the environment
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Target platform os/arch[/variant]
    #[arg(long)]
    pub platform: Option<String>,
    /// Do not use the build cache
    #[arg(long)]
    pub no_cache: bool,
    /// Do not use the cache for these stages
    #[arg(long = "no-cache-filter")]
    pub no_cache_filter: Vec<String>,
    /// Always pull base images
    #[arg(long)]
    pub pull: bool,
    /// Push the image after building
    #[arg(long)]
    pub push: bool,
    /// Set metadata on the image KEY=VALUE
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Network for RUN: host (default) or none
    #[arg(long)]
    pub network: Option<String>,
    /// Secret to expose to RUN: id=ID,src=PATH or id=ID,env=VAR
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
    /// SSH agent socket or keys to expose: default|ID[=PATH]
    #[arg(long = "ssh")]
    pub ssh: Vec<String>,
    /// Write the image ID to this file
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// Write build metadata (JSON) to this file
    #[arg(long = "metadata-file")]
    pub metadata_file: Option<PathBuf>,
    /// Output: type=image|registry|oci|docker|local|tar[,dest=PATH]
    #[arg(short = 'o', long = "output")]
    pub outputs: Vec<String>,
    /// Layer compression: gzip (default) or zstd[,level=N]
    #[arg(long)]
    pub compression: Option<String>,
    /// Print only the image ID
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Progress output: auto, tty, plain, json
    #[arg(long, default_value = "auto")]
    pub progress: String,
    /// Import build cache: type=registry,ref=IMAGE or type=local,src=DIR
    #[arg(long = "cache-from")]
    pub cache_from: Vec<String>,
    /// Export build cache: type=registry,ref=IMAGE or type=local,dest=DIR
    #[arg(long = "cache-to")]
    pub cache_to: Vec<String>,
    /// Parse and plan only; print the plan
    #[arg(long)]
    pub dry_run: bool,
    /// Build context: a directory, or `-` for a tar on stdin
    pub context: String,
}

/// Runs `hoist build`.
pub fn run(_g: &GlobalArgs, _a: BuildArgs) -> crate::Result<ExitCode> {
    todo!("engine helper")
}

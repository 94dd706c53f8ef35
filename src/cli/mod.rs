//! Command-line interface: docker-compatible commands and flags (clap), dispatch to the
//! handlers in `build`, `images` and `run`, and progress rendering. No business logic here.

#![allow(clippy::print_stdout, clippy::print_stderr)]

pub mod build;
pub mod images;
pub mod progress;
pub mod run;

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
    /// The store root after defaults.
    pub fn store_root(&self) -> PathBuf {
        if let Some(r) = &self.root {
            return r.clone();
        }
        if rustix::process::geteuid().is_root() {
            return PathBuf::from("/var/lib/hoist");
        }
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(x).join("hoist");
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        home.join(".local/share/hoist")
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
    Run(run::RunArgs),
    /// Pull an image from a registry
    Pull(images::PullArgs),
    /// Push an image to a registry
    Push(images::PushArgs),
    /// List images in the store
    Images(images::ImagesArgs),
    /// Give an image another name
    Tag(images::TagArgs),
    /// Remove images
    Rmi(images::RmiArgs),
    /// Show an image's config and manifest as JSON
    Inspect(images::InspectArgs),
    /// Save images to a tar archive (docker-archive or OCI layout)
    Save(images::SaveArgs),
    /// Load images from a tar archive
    Load(images::LoadArgs),
    /// Remove unreferenced blobs, snapshots and build cache
    Prune(images::PruneArgs),
    /// Check the store and repair what can be repaired
    Fsck(images::FsckArgs),
    /// Log in to a registry (shares Docker's config.json)
    Login(images::LoginArgs),
    /// Log out of a registry
    Logout(images::LogoutArgs),
}

/// Parses arguments and runs the command.
pub fn run(cli: Cli) -> crate::Result<ExitCode> {
    let g = &cli.global;
    match cli.command {
        Command::Build(a) => build::run(g, a),
        Command::Run(a) => run::run(g, a),
        Command::Pull(a) => images::pull(g, a),
        Command::Push(a) => images::push(g, a),
        Command::Images(a) => images::images(g, a),
        Command::Tag(a) => images::tag(g, a),
        Command::Rmi(a) => images::rmi(g, a),
        Command::Inspect(a) => images::inspect(g, a),
        Command::Save(a) => images::save(g, a),
        Command::Load(a) => images::load(g, a),
        Command::Prune(a) => images::prune(g, a),
        Command::Fsck(a) => images::fsck(g, a),
        Command::Login(a) => images::login(g, a),
        Command::Logout(a) => images::logout(g, a),
    }
}

//! Store and registry commands: pull, push, images, tag, rmi, inspect, save, load, prune,
//! fsck, login, logout.

use super::GlobalArgs;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// `hoist pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Platform os/arch[/variant] (default: the host's)
    #[arg(long)]
    pub platform: Option<String>,
    /// Print only the image digest
    #[arg(short = 'q', long)]
    pub quiet: bool,
    pub image: String,
}

/// `hoist push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Print only the pushed digest
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Image in the store
    pub image: String,
    /// Destination (default: the same name)
    pub dest: Option<String>,
}

/// `hoist images`.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Show full digests
    #[arg(long)]
    pub no_trunc: bool,
}

/// `hoist tag`.
#[derive(Debug, Args)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

/// `hoist rmi`.
#[derive(Debug, Args)]
pub struct RmiArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `hoist inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    pub image: String,
}

/// `hoist save`.
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Output file
    #[arg(short = 'o', long)]
    pub output: PathBuf,
    /// docker (docker-archive, default) or oci
    #[arg(long, default_value = "docker")]
    pub format: String,
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `hoist load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Input file
    #[arg(short = 'i', long)]
    pub input: PathBuf,
}

/// `hoist prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Keep this much build cache (e.g. 10GB); least recently used goes first
    #[arg(long = "keep-storage")]
    pub keep_storage: Option<String>,
    /// Remove all build cache
    #[arg(short = 'a', long)]
    pub all: bool,
}

/// `hoist fsck`.
#[derive(Debug, Args)]
pub struct FsckArgs {
    /// Repair what can be repaired (drop bad entries)
    #[arg(long)]
    pub repair: bool,
}

/// `hoist login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// Read the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    pub server: String,
}

/// `hoist logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    pub server: String,
}

macro_rules! todo_handlers {
    ($($name:ident: $ty:ty),*) => {$(
        /// Command handler.
        pub fn $name(_g: &GlobalArgs, _a: $ty) -> crate::Result<ExitCode> {
            todo!("store/registry helper")
        }
    )*};
}

todo_handlers!(pull: PullArgs, push: PushArgs, images: ImagesArgs, tag: TagArgs, rmi: RmiArgs,
    inspect: InspectArgs, save: SaveArgs, load: LoadArgs, prune: PruneArgs, fsck: FsckArgs,
    login: LoginArgs, logout: LogoutArgs);

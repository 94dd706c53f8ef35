//! `hoist system df`: the store's disk usage by kind, as `docker system df` /
//! `docker buildx du` show it (images, build cache, cache mounts, snapshots, and blobs nothing
//! references), with what removing each would free.

use super::GlobalArgs;
use super::images::{human_size, open_store};
use clap::{Args, Subcommand};
use std::process::ExitCode;

/// `hoist system`.
#[derive(Debug, Args)]
pub struct SystemArgs {
    #[command(subcommand)]
    pub command: SystemCommand,
}

/// `hoist system` subcommands.
#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show the store's disk usage
    Df,
}

/// Runs `hoist system …`.
pub fn run(g: &GlobalArgs, a: SystemArgs) -> crate::Result<ExitCode> {
    match a.command {
        SystemCommand::Df => df(g),
    }
}

fn df(g: &GlobalArgs) -> crate::Result<ExitCode> {
    let store = open_store(g)?;
    let rows = crate::gc::disk_usage(&store)?;
    outln!(
        "{:<14}{:>8}{:>8}{:>12}{:>20}",
        "TYPE",
        "TOTAL",
        "ACTIVE",
        "SIZE",
        "RECLAIMABLE"
    );
    for r in &rows {
        let pct = (r.reclaimable as f64 * 100.0 / r.size.max(1) as f64).round();
        outln!(
            "{:<14}{:>8}{:>8}{:>12}{:>20}",
            r.kind,
            r.total,
            r.active,
            human_size(r.size),
            format!("{} ({pct}%)", human_size(r.reclaimable))
        );
    }
    Ok(ExitCode::SUCCESS)
}

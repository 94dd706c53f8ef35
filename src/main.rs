//! The `hoist` binary: enter a user namespace when run as an ordinary user, parse arguments,
//! run, map errors to exit codes.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // The chroot isolation's helpers are hoist re-executed: they do their one job and exit.
    if let Some(code) = hoist::executor::helper_entry() {
        return ExitCode::from(code);
    }
    // First, while single-threaded: an ordinary user's hoist becomes root of its own user
    // namespace (`hoist::userns`).
    if let Some(n) = hoist::userns::enter() {
        hoist::cli::write_stderr(format_args!("{n}\n"));
    }
    let cli = hoist::cli::Cli::parse();
    match hoist::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            hoist::cli::write_stderr(format_args!("error: {}\n", hoist::cli::error_text(&e)));
            ExitCode::from(1)
        }
    }
}

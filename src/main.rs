//! The `hoist` binary: parse arguments, run, map errors to exit codes.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = hoist::cli::Cli::parse();
    match hoist::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            hoist::cli::write_stderr(format_args!("error: {}\n", hoist::cli::error_text(&e)));
            ExitCode::from(1)
        }
    }
}

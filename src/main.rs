//! The `hoist` binary: parse arguments, run, map errors to exit codes.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = hoist::cli::Cli::parse();
    match hoist::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            let e = anyhow::Error::from(e);
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {e:#}");
            }
            ExitCode::from(1)
        }
    }
}

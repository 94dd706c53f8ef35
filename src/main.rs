//! The `hoist` binary: enter a user namespace when run as an ordinary user, parse arguments,
//! run, map errors to exit codes.

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
    // clap, with docker's flags that hoist lacks named as such.
    let cli = hoist::cli::unsupported::parse_args();
    match hoist::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            hoist::cli::write_stderr(format_args!("error: {}\n", hoist::cli::error_text(&e)));
            ExitCode::from(1)
        }
    }
}

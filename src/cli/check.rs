//! `hoist build --check` / `--call=check` (docker build's check call) and the build checks'
//! warnings around an ordinary build: printing only; the checks run in `build::checks`.

use super::progress::{self, Mode};
use crate::build::BuildPlan;
use crate::build::checks::{self, Scope};
use crate::engine::{BuildEvent, Reporter};
use crate::lint::{Report, render};
use std::process::ExitCode;

/// What `--call`/`--check` ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Build,
    Check,
}

/// `--check` is `--call=check`; `--call` takes `build` or `check` (buildx's other calls,
/// `outline` and `targets`, are not supported).
pub fn parse_call(check: bool, call: Option<&str>) -> crate::Result<Call> {
    let named = match call.map(|c| c.split(',').next().unwrap_or("").trim()) {
        // outline and targets are answered before this (`build_flags`), without building.
        None | Some("build" | "outline" | "targets") => {
            return Ok(if check { Call::Check } else { Call::Build });
        }
        Some("check") => Call::Check,
        Some(other) => {
            return Err(crate::Error::Usage(format!(
                "--call {other}: expected build, check, outline or targets"
            )));
        }
    };
    if let Some(c) = call
        && c.split(',').skip(1).any(|o| o.trim() != "format=text")
    {
        return Err(crate::Error::Usage(format!(
            "--call {c}: only format=text is supported"
        )));
    }
    Ok(if check { Call::Check } else { named })
}

fn print(report: &Report, plan: &BuildPlan, to_stdout: bool) {
    for f in &report.findings {
        // The excerpt is the user's own file, but URL credentials in it stay out of logs,
        // as in error excerpts.
        let block = crate::registry::auth::redact_credentials(&render::warning(
            f,
            &plan.dockerfile_name,
            &plan.dockerfile_text,
        ));
        if to_stdout {
            out!("{block}");
        } else {
            err!("{block}");
        }
    }
}

/// `--check`: evaluates the checks without building (base images' configs only, no layer,
/// no RUN) and prints them as `docker build --check` does. Exits 1 when a rule fires.
pub fn run(plan: &BuildPlan) -> crate::Result<ExitCode> {
    let checks::Checked { report, error } = checks::run(plan, Scope::Check)?;
    let n = report.findings.len();
    if n > 0 {
        outln!("{}", render::summary(n));
    }
    print(&report, plan, true);
    if let Some(e) = error {
        // A base image that cannot be resolved ends the check, as it ends BuildKit's.
        if n > 0 {
            outln!();
        }
        return Err(e);
    }
    if let Some(e) = &report.error {
        if n > 0 {
            outln!();
        }
        errln!("ERROR: {e}");
    } else if n == 0 {
        outln!("{}", render::summary(0));
    }
    Ok(if n > 0 || report.error.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `--check` on a Dockerfile whose stages do not resolve (an empty base name or platform):
/// the parse-time and FROM findings, printed before the error, as BuildKit reports them.
pub fn before_resolve_error(
    df: &crate::parser::Dockerfile,
    text: &str,
    file: &str,
    options: &crate::graph::GraphOptions,
    platform: &crate::oci::Platform,
) {
    let host = crate::oci::Platform::host();
    let bases = std::collections::BTreeMap::new();
    let Ok(report) = crate::lint::check(&crate::lint::Request {
        dockerfile: df,
        text,
        build_args: &options.build_args,
        target_platform: platform,
        build_platform: &host,
        target: options.target.as_deref(),
        stages: None,
        bases: &bases,
        ignore: None,
        bases_failed: true,
    }) else {
        return;
    };
    if report.findings.is_empty() {
        return;
    }
    outln!("{}", render::summary(report.findings.len()));
    for f in &report.findings {
        out!(
            "{}",
            crate::registry::auth::redact_credentials(&render::warning(f, file, text))
        );
    }
    outln!();
}

/// Before a build: check settings that do not parse fail it, and with `error=true` a finding
/// stops it before anything runs (as BuildKit fails while converting the Dockerfile).
pub fn before_build(plan: &BuildPlan) -> crate::Result<()> {
    if !checks::settings(plan)?.error {
        return Ok(());
    }
    let checks::Checked { report, error } = checks::run(plan, Scope::BeforeBuild)?;
    if let Some(e) = error {
        return Err(e);
    }
    if let Some(e) = report.error.clone() {
        print(&report, plan, false);
        return Err(crate::Error::Dockerfile {
            location: plan.dockerfile_name.clone(),
            message: e,
        });
    }
    Ok(())
}

/// After a build: the findings for the stages it ran, in the same format on stderr (with
/// `--progress=json`, one `warning` event each, in BuildKit's short form). A failure to
/// evaluate them is a note, not a failed build.
pub fn after_build(plan: &BuildPlan, mode: Mode) {
    let report = match checks::run(plan, Scope::AfterBuild) {
        Ok(c) => c.report,
        Err(e) => {
            errln!("WARNING: build checks were not evaluated: {e}");
            return;
        }
    };
    match mode {
        Mode::Quiet => {}
        Mode::Json => {
            let printer = progress::Printer::new(Mode::Json);
            for f in &report.findings {
                printer.event(BuildEvent::Warning {
                    message: render::short(f),
                });
            }
        }
        Mode::Plain | Mode::Tty => print(&report, plan, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_values() {
        assert_eq!(parse_call(false, None).unwrap(), Call::Build);
        assert_eq!(parse_call(true, None).unwrap(), Call::Check);
        assert_eq!(parse_call(false, Some("check")).unwrap(), Call::Check);
        assert_eq!(
            parse_call(false, Some("check,format=text")).unwrap(),
            Call::Check
        );
        assert_eq!(parse_call(false, Some("build")).unwrap(), Call::Build);
        // outline and targets are `build_flags`' to answer; here they are no check.
        assert_eq!(parse_call(false, Some("outline")).unwrap(), Call::Build);
        assert!(parse_call(false, Some("lint")).is_err());
        assert!(parse_call(false, Some("check,format=json")).is_err());
    }
}

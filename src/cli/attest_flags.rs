//! `hoist build`'s supply-chain flags: `--provenance`, `--sbom`, `--attest` (buildx's) and
//! `--sign key=KEY` (sign what `--push` pushed, in cosign's format).

use crate::attest::{self, Request};
use clap::Args;

/// The flags, as given.
#[derive(Debug, Args, Default, Clone)]
pub struct AttestArgs {
    /// Attach SLSA provenance: true, false, mode=min|max[,builder-id=ID]
    /// (bare `--provenance` is mode=min)
    #[arg(
        long,
        value_name = "true|false|mode=min|mode=max",
        require_equals = true
    )]
    pub provenance: Vec<String>,
    /// Attach an SPDX SBOM made from the image's files: true, false
    #[arg(long, value_name = "true|false", require_equals = true)]
    pub sbom: Vec<String>,
    /// Attestation: type=provenance[,mode=min|max] or type=sbom[,scan-context=true][,scan-stage=true]
    #[arg(long, value_name = "type=…")]
    pub attest: Vec<String>,
    /// Sign the pushed image with a cosign-format key: key=PATH (needs --push)
    #[arg(long, value_name = "key=PATH")]
    pub sign: Option<String>,
}

impl AttestArgs {
    /// The attestations asked for.
    pub fn request(&self) -> crate::Result<Request> {
        Ok(attest::flags::parse(
            &self.provenance,
            &self.sbom,
            &self.attest,
        )?)
    }
}

/// Whether `v` is a value for `--provenance`/`--sbom` rather than the next argument.
fn is_value(v: &str) -> bool {
    matches!(v, "true" | "false" | "1" | "0")
        || [
            "mode=",
            "builder-id=",
            "reproducible=",
            "disabled=",
            "version=",
            "scan-context=",
            "scan-stage=",
            "generator=",
            "inline-only=",
            "filename=",
        ]
        .iter()
        .any(|k| v.starts_with(k))
}

/// buildx takes `--provenance`, `--provenance=mode=max` and `--provenance mode=max`; clap
/// cannot tell the last from `--provenance CONTEXT`, so arguments are joined here first:
/// a following value is taken only when it reads as one.
pub fn normalize(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    let mut it = args.into_iter().peekable();
    let mut build = false;
    while let Some(a) = it.next() {
        if a == "--" {
            out.push(a);
            out.extend(it);
            break;
        }
        build |= a == "build";
        if build && (a == "--provenance" || a == "--sbom") {
            match it.peek() {
                Some(v) if is_value(v) => {
                    let v = it.next().unwrap_or_default();
                    out.push(format!("{a}={v}"));
                }
                _ => out.push(format!("{a}=true")),
            }
            continue;
        }
        out.push(a);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(a: &[&str]) -> Vec<String> {
        normalize(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flag_forms() {
        assert_eq!(
            n(&["hoist", "build", "--provenance", "mode=max", "--sbom", "."]),
            [
                "hoist",
                "build",
                "--provenance=mode=max",
                "--sbom=true",
                "."
            ]
        );
        assert_eq!(
            n(&["build", "--sbom", "false", "--provenance"]),
            ["build", "--sbom=false", "--provenance=true"]
        );
        assert_eq!(
            n(&["build", "--provenance=min"]),
            ["build", "--provenance=min"]
        );
        assert_eq!(
            n(&["run", "x", "--", "--sbom"]),
            ["run", "x", "--", "--sbom"]
        );
        assert_eq!(n(&["run", "x", "--sbom"]), ["run", "x", "--sbom"]);
    }
}

//! buildx's attestation flags: `--provenance[=true|false|mode=min|mode=max|…]`,
//! `--sbom[=true|false|…]` and `--attest type=provenance|sbom,…`, repeatable, later flags
//! overriding earlier ones of the same type. A bare `--provenance` or `=true` is `mode=min`,
//! buildx's default.

use super::{AttestError, ProvenanceMode, ProvenanceRequest, Request, Result, SbomRequest};

fn err(flag: &'static str, value: &str, reason: impl Into<String>) -> AttestError {
    AttestError::Flag {
        flag,
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn parse_bool(flag: &'static str, whole: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(err(flag, whole, format!("{v:?} is not true or false"))),
    }
}

/// Reads all three flags, in the order given, into one request.
pub fn parse(provenance: &[String], sbom: &[String], attest: &[String]) -> Result<Request> {
    let mut r = Request::default();
    for v in provenance {
        apply(&mut r, "--provenance", "provenance", v)?;
    }
    for v in sbom {
        apply(&mut r, "--sbom", "sbom", v)?;
    }
    for v in attest {
        let ty = v
            .split(',')
            .find_map(|kv| kv.trim().strip_prefix("type="))
            .ok_or_else(|| err("--attest", v, "needs type=provenance or type=sbom"))?;
        let rest: Vec<&str> = v
            .split(',')
            .filter(|kv| !kv.trim().starts_with("type="))
            .collect();
        match ty {
            "provenance" | "sbom" => apply(&mut r, "--attest", ty, &rest.join(","))?,
            other => {
                return Err(err(
                    "--attest",
                    v,
                    format!("unknown type {other:?}: hoist makes type=provenance and type=sbom"),
                ));
            }
        }
    }
    Ok(r)
}

/// One flag's value (`true`, `false`, or `key=value,…`) for attestation type `ty`.
fn apply(r: &mut Request, flag: &'static str, ty: &str, v: &str) -> Result<()> {
    let v = v.trim();
    let mut on = true;
    let mut mode = ProvenanceMode::Min;
    let mut builder_id = None;
    let mut reproducible = false;
    let mut sbom = SbomRequest::default();
    for kv in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (k, val) = kv.split_once('=').unwrap_or((kv, ""));
        match (ty, k) {
            (_, "true" | "1") if val.is_empty() => on = true,
            (_, "false" | "0") if val.is_empty() => on = false,
            (_, "disabled") => on = !parse_bool(flag, v, val)?,
            ("provenance", "mode") => {
                mode = match val {
                    "min" => ProvenanceMode::Min,
                    "max" | "full" => ProvenanceMode::Max,
                    _ => return Err(err(flag, v, format!("mode {val:?}: expected min or max"))),
                }
            }
            ("provenance", "builder-id") => builder_id = Some(val.to_string()),
            ("provenance", "reproducible") => reproducible = parse_bool(flag, v, val)?,
            ("provenance", "version") if val == "v1" => {}
            ("provenance", "version") => {
                return Err(err(
                    flag,
                    v,
                    "hoist writes SLSA provenance v1 only (version=v1)",
                ));
            }
            // Where BuildKit puts these (local/tar outputs, image-only) hoist has one answer.
            ("provenance", "inline-only" | "filename") => {}
            ("sbom", "scan-context") => sbom.scan_context = parse_bool(flag, v, val)?,
            ("sbom", "scan-stage") => sbom.scan_stage = parse_bool(flag, v, val)?,
            ("sbom", "generator") => {
                return Err(err(
                    flag,
                    v,
                    "hoist makes SBOMs itself; a scanner image (generator=) is not run",
                ));
            }
            _ => return Err(err(flag, v, format!("unknown {ty} option {k:?}"))),
        }
    }
    match ty {
        "provenance" => {
            r.provenance = on.then_some(ProvenanceRequest {
                mode,
                builder_id,
                reproducible,
            })
        }
        _ => r.sbom = on.then_some(sbom),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(prov: &[&str], sbom: &[&str], attest: &[&str]) -> Result<Request> {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        parse(&s(prov), &s(sbom), &s(attest))
    }

    #[test]
    fn buildx_forms() {
        assert!(p(&[], &[], &[]).unwrap().is_empty());
        let r = p(&["true"], &["true"], &[]).unwrap();
        assert_eq!(r.provenance.unwrap().mode, ProvenanceMode::Min);
        assert_eq!(r.sbom, Some(SbomRequest::default()));
        let r = p(&["mode=max"], &["false"], &[]).unwrap();
        assert_eq!(r.provenance.unwrap().mode, ProvenanceMode::Max);
        assert_eq!(r.sbom, None);
        let r = p(
            &[],
            &[],
            &[
                "type=provenance,mode=max,builder-id=https://ci.example/run/1",
                "type=sbom,scan-context=true,scan-stage=true",
            ],
        )
        .unwrap();
        let pr = r.provenance.unwrap();
        assert_eq!(pr.mode, ProvenanceMode::Max);
        assert_eq!(pr.builder_id.as_deref(), Some("https://ci.example/run/1"));
        assert_eq!(
            r.sbom,
            Some(SbomRequest {
                scan_context: true,
                scan_stage: true
            })
        );
        // A later flag of the same type wins; disabled=true turns it off.
        let r = p(&["mode=max"], &[], &["type=provenance,disabled=true"]).unwrap();
        assert!(r.provenance.is_none());
    }

    #[test]
    fn refusals_name_the_flag_and_value() {
        for (prov, attest, want) in [
            (vec!["mode=huge"], vec![], "--provenance \"mode=huge\""),
            (vec![], vec!["type=vex"], "unknown type \"vex\""),
            (vec![], vec!["mode=max"], "needs type="),
            (
                vec![],
                vec!["type=sbom,generator=img"],
                "makes SBOMs itself",
            ),
            (vec!["version=v0.2"], vec![], "v1 only"),
        ] {
            let e = p(&prov, &[], &attest).unwrap_err().to_string();
            assert!(e.contains(want), "{e} lacks {want}");
        }
    }
}

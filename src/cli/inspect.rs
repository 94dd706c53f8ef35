//! `hoist inspect IMAGE [--format …]`: an image's manifest and config as JSON (an index with
//! each platform's), or with `--format` one part in buildx `imagetools inspect`'s shapes:
//! `{{json .Provenance}}` (`{"SLSA": predicate}`), `{{json .SBOM}}` (`{"SPDX": document}`),
//! `{{json .Attestations}}` (each statement's subject, predicate type and digest). With
//! several platforms those are keyed by platform, as buildx does.

use super::GlobalArgs;
use super::images::{find_image, open_store};
use crate::Error;
use crate::attest::layout::{self, Attached};
use crate::attest::statement::{PREDICATE_SLSA1, PREDICATE_SPDX};
use crate::oci::{Digest, Index};
use crate::store::Store;
use clap::Args;
use serde_json::{Map, Value, json};
use std::process::ExitCode;

/// `hoist inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Show one part: {{json .Provenance}}, {{json .SBOM}}, {{json .Attestations}},
    /// {{json .Manifest}}, {{json .Config}} (the braces and `json` may be left out)
    #[arg(long, short = 'f')]
    pub format: Option<String>,
    pub image: String,
}

/// What `--format` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Provenance,
    Sbom,
    Attestations,
    Manifest,
    Config,
}

fn parse_format(f: &str) -> crate::Result<Part> {
    let t = f.trim();
    let t = t
        .strip_prefix("{{")
        .and_then(|x| x.strip_suffix("}}"))
        .unwrap_or(t)
        .trim();
    let t = t.strip_prefix("json ").unwrap_or(t).trim();
    Ok(match t.trim_start_matches('.') {
        "Provenance" => Part::Provenance,
        "SBOM" => Part::Sbom,
        "Attestations" => Part::Attestations,
        "Manifest" => Part::Manifest,
        "Config" => Part::Config,
        _ => {
            return Err(Error::Usage(format!(
                "--format {f:?}: expected {{{{json .Provenance}}}}, {{{{json .SBOM}}}}, \
                 {{{{json .Attestations}}}}, {{{{json .Manifest}}}} or {{{{json .Config}}}}"
            )));
        }
    })
}

fn print(v: &Value) -> crate::Result<ExitCode> {
    let text = serde_json::to_string_pretty(v)
        .map_err(|e| Error::Usage(format!("cannot render JSON: {e}")))?;
    outln!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// `hoist inspect`.
pub fn inspect(g: &GlobalArgs, a: InspectArgs) -> crate::Result<ExitCode> {
    let store = open_store(g)?;
    let (name, d) = find_image(&store, &a.image)?;
    if let Some(f) = &a.format {
        let part = parse_format(f)?;
        return print(&format_part(&store, &d, part)?);
    }
    if let Some(idx) = store.load_index(&d)? {
        // A multi-platform image: the index, then each platform's manifest and config.
        let mut images = Vec::new();
        for e in idx.manifests.iter().filter(|e| !layout::is_attestation(e)) {
            let (m, c) = store.load_image(&e.digest)?;
            images.push(json!({
                "Platform": e.platform.as_ref().map(|p| p.to_string_short()),
                "Id": m.config.digest,
                "Digest": e.digest,
                "Manifest": m,
                "Config": c,
            }));
        }
        return print(&json!([{
            "Name": name,
            "Id": d,
            "Digest": d,
            "Index": idx,
            "Platforms": images,
            "Attestations": attestation_list(&store, &idx)?,
        }]));
    }
    let (m, c) = store.load_image(&d)?;
    print(&json!([{
        "Name": name,
        "Id": m.config.digest,
        "Digest": d,
        "Manifest": m,
        "Config": c,
    }]))
}

/// An image's manifests by platform (`None` for a plain manifest).
type Platforms = Vec<(Option<String>, Digest)>;

/// The image manifests of `d` by platform (one entry, platform `None`, for a plain manifest),
/// and its index (empty for a plain manifest).
fn platforms(store: &Store, d: &Digest) -> crate::Result<(Platforms, Index)> {
    Ok(match store.load_index(d)? {
        Some(idx) => (
            idx.manifests
                .iter()
                .filter(|e| !layout::is_attestation(e))
                .map(|e| {
                    (
                        e.platform.as_ref().map(|p| p.to_string_short()),
                        e.digest.clone(),
                    )
                })
                .collect(),
            idx,
        ),
        None => (
            vec![(None, d.clone())],
            Index {
                schema_version: 2,
                media_type: None,
                manifests: vec![],
                annotations: None,
            },
        ),
    })
}

/// Every statement of every attestation manifest: subject, predicate type, digest.
fn attestation_list(store: &Store, idx: &Index) -> crate::Result<Vec<Value>> {
    let mut out = vec![];
    for a in layout::attached(store, idx)? {
        for s in &a.statements {
            out.push(json!({
                "subject": a.subject,
                "predicateType": s.predicate_type,
                "digest": s.layer.digest,
                "size": s.layer.size,
            }));
        }
    }
    Ok(out)
}

/// The predicates of type `pt` about `subject` (SBOMs may be several: scan-stage).
fn predicates(
    store: &Store,
    att: &[Attached],
    subject: &Digest,
    pt: &str,
) -> crate::Result<Vec<Value>> {
    let mut out = vec![];
    for a in att.iter().filter(|a| &a.subject == subject) {
        for s in a.statements.iter().filter(|s| s.predicate_type == pt) {
            let st = layout::read_statement(store, &s.layer)?;
            out.push(st.get("predicate").cloned().unwrap_or(Value::Null));
        }
    }
    Ok(out)
}

fn format_part(store: &Store, d: &Digest, part: Part) -> crate::Result<Value> {
    let (plats, idx) = platforms(store, d)?;
    if part == Part::Attestations {
        return Ok(Value::Array(attestation_list(store, &idx)?));
    }
    let att = layout::attached(store, &idx)?;
    let mut per = Map::new();
    for (p, m) in &plats {
        let v = match part {
            Part::Provenance => match predicates(store, &att, m, PREDICATE_SLSA1)?
                .into_iter()
                .next()
            {
                Some(p) => json!({ "SLSA": p }),
                None => Value::Null,
            },
            Part::Sbom => {
                let mut docs = predicates(store, &att, m, PREDICATE_SPDX)?;
                match docs.len() {
                    0 => Value::Null,
                    1 => json!({ "SPDX": docs.remove(0) }),
                    _ => {
                        let first = docs.remove(0);
                        json!({ "SPDX": first, "AdditionalSPDXs": docs })
                    }
                }
            }
            Part::Manifest => serde_json::to_value(store.load_image(m)?.0).unwrap_or_default(),
            Part::Config => serde_json::to_value(store.load_image(m)?.1).unwrap_or_default(),
            Part::Attestations => Value::Null,
        };
        per.insert(p.clone().unwrap_or_default(), v);
    }
    if per.len() == 1 {
        return Ok(per
            .into_iter()
            .next()
            .map(|(_, v)| v)
            .unwrap_or(Value::Null));
    }
    Ok(Value::Object(per))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(
            parse_format("{{json .Provenance}}").unwrap(),
            Part::Provenance
        );
        assert_eq!(parse_format(".SBOM").unwrap(), Part::Sbom);
        assert_eq!(
            parse_format("{{ json .Attestations }}").unwrap(),
            Part::Attestations
        );
        assert!(parse_format("{{.Name}}").is_err());
    }
}

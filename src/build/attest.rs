//! `--provenance`, `--sbom`, `--attest`: the statements about each platform's image, stored
//! as attestation manifests (`crate::attest::layout`) that the index then lists after the
//! images, as BuildKit's image exporter does.

use super::{BuildPlan, Notice, Observer};
use crate::attest::provenance::{self, ContextSource, Input};
use crate::attest::statement::{self, PREDICATE_SLSA1, PREDICATE_SPDX};
use crate::attest::{SbomRequest, layout};
use crate::engine::BuildOutcome;
use crate::oci::{Descriptor, Platform, media};
use crate::sbom::{self, DocInfo};
use crate::store::Store;
use serde_json::Value;

/// When the build started and its id: the provenance's `startedOn` and `invocationId`.
pub(super) struct Invocation {
    pub id: String,
    pub started: String,
    /// `started` in seconds: an SBOM's creation time without `SOURCE_DATE_EPOCH`.
    pub started_secs: i64,
}

impl Invocation {
    /// Now, with a fresh id (25 lower-case letters and digits, as BuildKit's).
    pub fn start() -> Invocation {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let seed = format!("{}:{}:{:?}", now.as_nanos(), std::process::id(), now);
        let h = crate::oci::Digest::of(seed.as_bytes());
        let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let id = h
            .hex()
            .as_bytes()
            .chunks(2)
            .take(25)
            .map(|c| {
                let v = u8::from_str_radix(std::str::from_utf8(c).unwrap_or("0"), 16).unwrap_or(0);
                alphabet[v as usize % alphabet.len()] as char
            })
            .collect();
        Invocation {
            id,
            started: rfc3339_nanos(now),
            started_secs: now.as_secs() as i64,
        }
    }
}

/// RFC 3339 UTC with nanoseconds, as Go's `time.Time` marshals.
fn rfc3339_nanos(t: std::time::Duration) -> String {
    let secs = t.as_secs() as i64;
    let base = crate::engine::rfc3339(secs);
    // `…T12:00:00Z` → `…T12:00:00.123456789Z`
    match base.strip_suffix('Z') {
        Some(b) => format!("{b}.{:09}Z", t.subsec_nanos()),
        None => base,
    }
}

/// Makes and stores the attestations `plan` asks for, one manifest per platform, and
/// returns their index entries (empty when none were asked).
pub(super) fn attach(
    store: &Store,
    plan: &BuildPlan,
    outcomes: &[(Platform, BuildOutcome)],
    invocation: &Invocation,
    observer: &dyn Observer,
) -> crate::Result<Vec<Descriptor>> {
    if plan.attest.is_empty() {
        return Ok(vec![]);
    }
    let finished = rfc3339_nanos(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default(),
    );
    let mut out = vec![];
    for (i, (platform, o)) in outcomes.iter().enumerate() {
        let subject_desc = Descriptor::new(
            o.manifest
                .media_type
                .as_deref()
                .unwrap_or(media::OCI_MANIFEST),
            o.manifest_digest.clone(),
            o.manifest_size,
        );
        let subjects = statement::subjects(&plan.tags, platform, &o.manifest_digest);
        let mut statements: Vec<Value> = vec![];
        if let Some(req) = &plan.attest.provenance {
            let opts = plan.platforms.get(i).map(|p| &p.graph_options);
            let empty = Default::default();
            let input = Input {
                request: req,
                dockerfile_name: &plan.dockerfile_name,
                dockerfile_text: &plan.dockerfile_text,
                context: plan.context_source.clone(),
                build_args: opts.map(|g| &g.build_args).unwrap_or(&empty),
                labels: &plan.labels,
                target: opts.and_then(|g| g.target.as_deref()),
                platform,
                no_cache: plan.no_cache,
                secret_ids: plan.secrets.keys().cloned().collect(),
                ssh_ids: plan.ssh.keys().cloned().collect(),
                trace: &o.trace,
                builder_platform: Platform::host(),
                invocation_id: &invocation.id,
                started: &invocation.started,
                finished: &finished,
            };
            statements.push(statement::statement(
                subjects.clone(),
                PREDICATE_SLSA1,
                provenance::predicate(&input),
            ));
        }
        if let Some(req) = &plan.attest.sbom {
            let target = plan.platforms.get(i).map(|p| p.graph.target);
            statements.extend(sbom_statements(
                store,
                plan,
                (o, target),
                &subjects,
                req,
                invocation,
                observer,
            )?);
        }
        out.push(layout::store_attestations(
            store,
            &subject_desc,
            &statements,
        )?);
    }
    Ok(out)
}

/// The SPDX statements of one platform's image: its final filesystem, and with
/// `scan-context`/`scan-stage` the context and every other stage built.
fn sbom_statements(
    store: &Store,
    plan: &BuildPlan,
    (o, target): (&BuildOutcome, Option<usize>),
    subjects: &[Value],
    req: &SbomRequest,
    invocation: &Invocation,
    observer: &dyn Observer,
) -> crate::Result<Vec<Value>> {
    let secs = plan.source_date_epoch.unwrap_or(invocation.started_secs);
    let name = plan
        .tags
        .first()
        .map(|t| t.familiar())
        .unwrap_or_else(|| "image".to_string());
    let mut docs = vec![];
    let image = sbom::scan_layers(store, &o.manifest.layers)?;
    docs.push((image, DocInfo::for_subject(&name, &o.manifest_digest, secs)));
    if req.scan_context {
        let inv = sbom::scan_dir(&plan.context)?;
        docs.push((
            inv,
            DocInfo::for_subject(&format!("{name} context"), &o.manifest_digest, secs),
        ));
    }
    if req.scan_stage {
        let mut stages: Vec<_> = o.trace.stages.iter().collect();
        stages.sort_by_key(|s| s.index);
        for s in stages.into_iter().filter(|s| Some(s.index) != target) {
            let inv = sbom::scan_layers(store, &s.layers)?;
            let stage = s.name.clone().unwrap_or_else(|| s.index.to_string());
            docs.push((
                inv,
                DocInfo::for_subject(&format!("{name} stage {stage}"), &o.manifest_digest, secs),
            ));
        }
    }
    let mut out = vec![];
    for (inv, info) in docs {
        for w in &inv.warnings {
            observer.notice(Notice::Warning {
                message: format!("sbom of {}: {w}", info.name),
            });
        }
        out.push(statement::statement(
            subjects.to_vec(),
            PREDICATE_SPDX,
            sbom::spdx::document(&inv, &info),
        ));
    }
    Ok(out)
}

/// Where `plan`'s context came from, for the provenance's `configSource`.
pub fn context_source(context_arg: &str, commit: Option<&crate::context::Commit>) -> ContextSource {
    match (crate::context::Remote::detect(context_arg), commit) {
        (Some(crate::context::Remote::Git(url)), Some(c)) => ContextSource::Git {
            url: crate::registry::auth::redact_credentials(&url),
            commit: c.id.clone(),
        },
        _ => ContextSource::Local,
    }
}

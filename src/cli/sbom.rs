//! `hoist sbom IMAGE [--format spdx-json|table] [--platform P]`: resolves the image in the
//! store (pulling a registry reference that is not there yet) and prints the SBOM that
//! [`crate::sbom`] makes from its layers: the SPDX 2.3 JSON document, or a
//! `NAME VERSION TYPE` table. Warnings (files skipped or not understood) go to stderr.

use super::images::{open_store, platform_arg, resolve_image};
use super::{GlobalArgs, RegistryTimeoutArgs};
use crate::Error;
use crate::oci::{Digest, Manifest};
use crate::sbom::{self, DocInfo, Inventory};
use crate::store::Store;
use clap::Args;
use std::process::ExitCode;

/// `hoist sbom`.
#[derive(Debug, Args)]
pub struct SbomArgs {
    /// Output format: spdx-json (an SPDX 2.3 document) or table (NAME VERSION TYPE)
    #[arg(long, default_value = "spdx-json")]
    pub format: String,
    /// Platform os/arch[/variant] of a multi-platform image, and to pull (default: the host's)
    #[arg(long)]
    pub platform: Option<String>,
    #[command(flatten)]
    pub timeouts: RegistryTimeoutArgs,
    /// Make the SBOM from the image's layers even when the image carries one
    #[arg(long)]
    pub scan: bool,
    /// The image (name or digest in the store, or a registry reference)
    pub image: String,
}

/// `hoist sbom`.
pub fn run(g: &GlobalArgs, a: SbomArgs) -> crate::Result<ExitCode> {
    let json = match a.format.as_str() {
        "spdx-json" => true,
        "table" => false,
        f => {
            return Err(Error::Usage(format!(
                "--format {f}: expected spdx-json or table"
            )));
        }
    };
    let platform = platform_arg(a.platform.as_deref())?;
    let store = open_store(g)?;
    // Looked up before `resolve_image`, which stores a pulled image's manifest under the name.
    let local = super::images::find_image(&store, &a.image)
        .ok()
        .map(|(_, d)| d);
    let (digest, manifest, _) = resolve_image(g, &a.timeouts, &store, &a.image, &platform)?;
    if json {
        let attached = match a.scan {
            true => None,
            false => attached(g, &a, &store, local.as_ref(), &digest)?,
        };
        let doc = match attached {
            Some(doc) => doc,
            None => generate(&store, &manifest, &doc_info(&a.image, &digest)?)?,
        };
        let text = serde_json::to_string_pretty(&doc)
            .map_err(|e| Error::Usage(format!("cannot render JSON: {e}")))?;
        outln!("{text}");
    } else {
        out!("{}", sbom::spdx::table(&inventory(&store, &manifest)?));
    }
    Ok(ExitCode::SUCCESS)
}

/// The document's name, a namespace unique to the image's manifest digest, and the creation
/// time: `SOURCE_DATE_EPOCH` when set (reproducible output), else now.
pub fn doc_info(name: &str, manifest: &Digest) -> crate::Result<DocInfo> {
    let secs = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse::<i64>().map_err(|_| {
            Error::Usage(format!(
                "SOURCE_DATE_EPOCH={v:?} is not a number of seconds"
            ))
        })?,
        _ => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    };
    Ok(DocInfo::for_subject(name, manifest, secs))
}

/// The package inventory of an image's layers; warnings are printed to stderr.
pub fn inventory(store: &Store, manifest: &Manifest) -> crate::Result<Inventory> {
    let inv = sbom::scan_layers(store, &manifest.layers)?;
    for w in &inv.warnings {
        errln!("WARNING: sbom: {w}");
    }
    Ok(inv)
}

/// The SPDX document for an image's manifest: made from its layers. (The one place to
/// prefer an SBOM attestation the image already carries.)
pub fn generate(
    store: &Store,
    manifest: &Manifest,
    info: &DocInfo,
) -> crate::Result<serde_json::Value> {
    Ok(sbom::spdx::document(&inventory(store, manifest)?, info))
}

/// The SPDX document an SBOM attestation of the image carries about `manifest`: from the
/// image's index in the store (`local`: what the name pointed at before any pull), else from
/// its index in the registry. `None` when it has none.
fn attached(
    g: &GlobalArgs,
    a: &SbomArgs,
    store: &Store,
    local: Option<&Digest>,
    manifest: &Digest,
) -> crate::Result<Option<serde_json::Value>> {
    use crate::attest::layout;
    use crate::attest::statement::PREDICATE_SPDX;
    let pick = |v: serde_json::Value| v.get("predicate").cloned();
    // In the store: only its index can carry attestations (a plain manifest has none).
    if let Some(d) = local {
        let Some(idx) = store.load_index(d)? else {
            return Ok(None);
        };
        for at in layout::attached(store, &idx)? {
            if &at.subject != manifest {
                continue;
            }
            if let Some(s) = at
                .statements
                .iter()
                .find(|s| s.predicate_type == PREDICATE_SPDX)
            {
                return Ok(pick(layout::read_statement(store, &s.layer)?));
            }
        }
        return Ok(None);
    }
    // Pulled from a registry (only its platform's manifest is stored): its index, if it has
    // one, may list an attestation manifest.
    let Ok(r) = crate::registry::ImageRef::parse(&a.image) else {
        return Ok(None);
    };
    let c = super::pull_push::client(g, &a.timeouts, true)?;
    let Some((bytes, _, _)) = c.get_manifest_if_exists(&r)? else {
        return Ok(None);
    };
    let Ok(idx) = serde_json::from_slice::<crate::oci::Index>(&bytes) else {
        return Ok(None);
    };
    let entry = idx.manifests.iter().find(|d| {
        layout::is_attestation(d)
            && d.annotations
                .as_ref()
                .and_then(|x| x.get(layout::REFERENCE_DIGEST))
                .is_some_and(|s| s == &manifest.to_string())
    });
    let Some(entry) = entry else {
        return Ok(None);
    };
    let (mbytes, _, got) = c.get_manifest(&r.with_digest(&entry.digest))?;
    if got != entry.digest {
        return Err(Error::Usage(format!(
            "{}: the registry served attestation manifest {got} for {}",
            a.image, entry.digest
        )));
    }
    let m: Manifest = serde_json::from_slice(&mbytes).map_err(|e| {
        Error::Usage(format!(
            "{}: attestation manifest {}: {e}",
            a.image, entry.digest
        ))
    })?;
    let Some(layer) = m.layers.iter().find(|l| {
        l.annotations
            .as_ref()
            .and_then(|x| x.get(layout::PREDICATE_TYPE))
            .is_some_and(|t| t == PREDICATE_SPDX)
    }) else {
        return Ok(None);
    };
    let blob = c.fetch_blob_bytes(&r, layer, layout::MAX_STATEMENT)?;
    let v: serde_json::Value = serde_json::from_slice(&blob)
        .map_err(|e| Error::Usage(format!("{}: SBOM statement {}: {e}", a.image, layer.digest)))?;
    Ok(pick(v))
}

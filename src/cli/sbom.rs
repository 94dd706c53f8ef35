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
    let (digest, manifest, _) = resolve_image(g, &a.timeouts, &store, &a.image, &platform)?;
    if json {
        let info = doc_info(&a.image, &digest)?;
        let doc = generate(&store, &manifest, &info)?;
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

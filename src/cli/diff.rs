//! `hoist diff IMAGE1 IMAGE2 [--format json]`: resolves two images in the store (pulling a
//! registry reference that is not there yet), reads the layers whose diffIDs differ and
//! prints [`crate::diff`]'s report. Exit status as `diff(1)`: 0 identical, 1 different,
//! 2 on error.

use super::images::{open_store, platform_arg, resolve_image};
use super::{GlobalArgs, RegistryTimeoutArgs};
use crate::Error;
use crate::diff::{self, LayerSide, layer::read_layer};
use crate::oci::{ImageConfig, Manifest};
use crate::store::Store;
use clap::Args;
use std::process::ExitCode;

/// `hoist diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Output format: text or json
    #[arg(long, default_value = "text")]
    pub format: String,
    /// Platform os/arch[/variant] to compare in multi-platform images, and to pull
    /// (default: the host's)
    #[arg(long)]
    pub platform: Option<String>,
    #[command(flatten)]
    pub timeouts: RegistryTimeoutArgs,
    /// The first image (name or digest in the store, or a registry reference)
    pub image1: String,
    /// The second image
    pub image2: String,
}

/// `hoist diff`: exit 0 when the images are identical, 1 when they differ, 2 on error.
pub fn run(g: &GlobalArgs, a: DiffArgs) -> crate::Result<ExitCode> {
    match compare(g, &a) {
        Ok(true) => Ok(ExitCode::SUCCESS),
        Ok(false) => Ok(ExitCode::from(1)),
        Err(e) => {
            errln!("error: {}", super::error_text(&e));
            Ok(ExitCode::from(2))
        }
    }
}

fn compare(g: &GlobalArgs, a: &DiffArgs) -> crate::Result<bool> {
    let json = match a.format.as_str() {
        "text" => false,
        "json" => true,
        f => return Err(Error::Usage(format!("--format {f}: expected text or json"))),
    };
    let platform = platform_arg(a.platform.as_deref())?;
    let store = open_store(g)?;
    let (_, m1, c1) = resolve_image(g, &a.timeouts, &store, &a.image1, &platform)?;
    let (_, m2, c2) = resolve_image(g, &a.timeouts, &store, &a.image2, &platform)?;
    let (l1, l2) = sides(&store, &m1, &c1, &m2, &c2)?;
    let value = |c: &ImageConfig, image: &str| {
        serde_json::to_value(c).map_err(|e| diff::DiffError::Config {
            image: image.to_string(),
            reason: e.to_string(),
        })
    };
    let report = diff::diff_images(
        &a.image1,
        &a.image2,
        &value(&c1, &a.image1)?,
        &value(&c2, &a.image2)?,
        &l1,
        &l2,
    );
    if json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::Usage(format!("cannot render JSON: {e}")))?;
        outln!("{text}");
    } else {
        out!("{}", diff::render_text(&report));
    }
    Ok(report.identical)
}

/// Both images' layers; files are read only for the indexes whose diffIDs differ.
fn sides(
    store: &Store,
    m1: &Manifest,
    c1: &ImageConfig,
    m2: &Manifest,
    c2: &ImageConfig,
) -> crate::Result<(Vec<LayerSide>, Vec<LayerSide>)> {
    let ids = |c: &ImageConfig| -> Vec<String> {
        c.rootfs.diff_ids.iter().map(|d| d.to_string()).collect()
    };
    let (i1, i2) = (ids(c1), ids(c2));
    let side = |m: &Manifest, ids: &[String], other: &[String]| -> crate::Result<Vec<LayerSide>> {
        let mut out = Vec::new();
        for (i, desc) in m.layers.iter().enumerate() {
            let diff_id = ids
                .get(i)
                .cloned()
                .unwrap_or_else(|| desc.digest.to_string());
            let files = match other.get(i) {
                Some(o) if *o == diff_id => None,
                _ => Some(read_layer(store, desc)?),
            };
            out.push(LayerSide { diff_id, files });
        }
        Ok(out)
    };
    Ok((side(m1, &i1, &i2)?, side(m2, &i2, &i1)?))
}

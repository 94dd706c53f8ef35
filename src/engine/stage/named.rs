//! What a named build context (`graph::Source::Context`) gives the steps that name it: a
//! directory read like the main context (its own `.dockerignore`, content keys), or an
//! image from an OCI layout, loaded from the store for the platform asked for.

use crate::context::Content;
use crate::engine::base::{BaseImage, ensure_snapshot};
use crate::engine::{BuildEvent, Ctx, EngineError, Layer, Result};
use crate::oci::Platform;
use crate::parser::dockerignore::Matcher;
use std::path::Path;

/// A named context, ready to read.
pub(crate) enum Named<'a> {
    Dir { root: &'a Path, ignore: &'a Matcher },
    Image(Box<BaseImage>),
}

/// The named context with key `key`, for `platform`.
pub(crate) fn named<'a>(ctx: &Ctx<'a>, key: &str, platform: &Platform) -> Result<Named<'a>> {
    let req: &'a crate::engine::BuildRequest = ctx.req;
    match req.contexts.get(key) {
        Some(Content::Dir { root, ignore }) => Ok(Named::Dir { root, ignore }),
        Some(Content::Layout { digest, label }) => {
            let id = ctx.new_id();
            ctx.reporter.event(BuildEvent::Started {
                id,
                name: format!("[context {key}] load {label}"),
            });
            let r =
                load_stored(ctx, digest, label, platform).map_err(|error| EngineError::BaseImage {
                    reference: label.clone(),
                    error: Box::new(error),
                });
            ctx.reporter.event(match &r {
                Ok(_) => BuildEvent::Done { id, secs: 0.0 },
                Err(e) => BuildEvent::Failed {
                    id,
                    message: e.to_string(),
                },
            });
            r.map(|b| Named::Image(Box::new(b)))
        }
        None => Err(EngineError::BadValue {
            what: "build context",
            value: key.to_string(),
            reason: "no --build-context of that name was prepared".into(),
        }),
    }
}

/// A stored manifest (or the entry of a stored index for `platform`) with its layers
/// unpacked.
fn load_stored(
    ctx: &Ctx,
    digest: &crate::oci::Digest,
    label: &str,
    platform: &Platform,
) -> crate::Result<BaseImage> {
    let manifest_digest = match ctx.store.load_index(digest)? {
        Some(idx) => idx
            .select(platform)
            .map(|d| d.digest.clone())
            .ok_or_else(|| EngineError::BadValue {
                what: "OCI layout",
                value: label.to_string(),
                reason: format!("its index has no image for {}", platform.to_string_short()),
            })?,
        None => digest.clone(),
    };
    let (manifest, config) = ctx.store.load_image(&manifest_digest)?;
    if manifest.layers.len() != config.rootfs.diff_ids.len() {
        return Err(EngineError::BadValue {
            what: "image",
            value: label.to_string(),
            reason: "manifest and config disagree on the number of layers".into(),
        }
        .into());
    }
    let mut layers = Vec::with_capacity(manifest.layers.len());
    for (desc, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
        let snapshot = ensure_snapshot(ctx.store, label, desc, diff_id)?;
        layers.push(Layer {
            desc: desc.clone(),
            diff_id: diff_id.clone(),
            snapshot,
        });
    }
    Ok(BaseImage {
        reference: label.to_string(),
        manifest_digest,
        config,
        layers,
    })
}

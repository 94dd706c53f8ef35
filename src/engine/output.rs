//! The final image: config (labels from `--label`, rootfs diffIDs, history, created) and an
//! OCI manifest, both stored as blobs.

use super::{Ctx, Result, StageResult};
use crate::oci::{Descriptor, Digest, ImageConfig, Manifest, media};

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    pub manifest_digest: Digest,
    pub manifest: Manifest,
    pub manifest_size: u64,
    pub config_digest: Digest,
    pub config: ImageConfig,
    /// Cache keys of the layer steps the build used, for `--cache-to`.
    pub cache_keys: Vec<Digest>,
    /// Store ids of the cache mounts the build's RUN steps named.
    pub cache_mounts: Vec<String>,
    /// What the pass did, for provenance.
    pub trace: super::trace::Trace,
}

/// BuildKit's `rewrite-timestamp` rule for history: the base image's entries keep their
/// times; every later entry created after `sde` (or with no time) is set to `sde`. Steps
/// with no layer copy the base's `created`, which may be later than the epoch.
fn clamp_history(config: &mut ImageConfig, base_history: usize, sde: i64) {
    for h in config.history.iter_mut().skip(base_history) {
        let late = h
            .created
            .as_deref()
            .and_then(super::stage::parse_rfc3339)
            .is_none_or(|t| t > sde);
        if late {
            h.created = Some(super::stage::rfc3339(sde));
        }
    }
}

pub(crate) fn write_image(ctx: &Ctx, target: &StageResult) -> Result<BuildOutcome> {
    let squashed;
    let target = if ctx.req.squash {
        squashed = super::squash::squash(ctx, target)?;
        &squashed
    } else {
        target
    };
    let mut config = target.config.clone();
    if !ctx.req.labels.is_empty() {
        let l = config.config.labels.get_or_insert_with(Default::default);
        for (k, v) in &ctx.req.labels {
            l.insert(k.clone(), v.clone());
        }
    }
    config.rootfs.kind = "layers".into();
    config.rootfs.diff_ids = target.layers.iter().map(|l| l.diff_id.clone()).collect();
    if let Some(sde) = ctx.req.source_date_epoch {
        clamp_history(&mut config, target.base_history, sde);
        config.created = Some(super::stage::rfc3339(sde));
    } else if config.created.is_none() {
        config.created = config.history.iter().rev().find_map(|h| h.created.clone());
    }
    let config_bytes = serde_json::to_vec(&config).map_err(|e| super::EngineError::Io {
        path: "image config".into(),
        source: e.into(),
    })?;
    let config_digest = ctx.store.put_blob(&config_bytes)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        config: Descriptor::new(
            media::OCI_CONFIG,
            config_digest.clone(),
            config_bytes.len() as u64,
        ),
        layers: target.layers.iter().map(|l| l.desc.clone()).collect(),
        annotations: None,
    };
    let manifest_bytes = serde_json::to_vec(&manifest).map_err(|e| super::EngineError::Io {
        path: "image manifest".into(),
        source: e.into(),
    })?;
    let manifest_digest = ctx.store.put_blob(&manifest_bytes)?;
    Ok(BuildOutcome {
        manifest_digest,
        manifest,
        manifest_size: manifest_bytes.len() as u64,
        config_digest,
        config,
        cache_keys: ctx.used_keys.lock().map(|k| k.clone()).unwrap_or_default(),
        cache_mounts: ctx
            .used_mounts
            .lock()
            .map(|k| k.clone())
            .unwrap_or_default(),
        trace: ctx.trace.finish(images(ctx)),
    })
}

/// The images the pass resolved, from its base-image slots.
fn images(ctx: &Ctx) -> Vec<super::trace::ImageRecord> {
    let bases = ctx.bases.lock().unwrap_or_else(|e| e.into_inner());
    bases
        .iter()
        .filter_map(|((_, platform), slot)| {
            let b = slot.lock().unwrap_or_else(|e| e.into_inner());
            b.as_ref().map(|b| super::trace::ImageRecord {
                reference: b.reference.clone(),
                platform: platform.clone(),
                digest: b.manifest_digest.clone(),
            })
        })
        .collect()
}

//! Base images: a reference → its manifest, config and unpacked layer snapshots. Pulled on
//! first use; a tag is re-resolved against its registry on each build (one request) and the
//! local copy is used, with a warning, when the registry cannot be reached; `--pull` always
//! fetches. Shared by FROM, `COPY --from=<image>`, `RUN --mount from=<image>` and `hoist run`.

use super::{EngineError, Layer};
use crate::oci::{Descriptor, Digest, ImageConfig, Platform};
use crate::registry::{Client, ImageRef};
use crate::store::Store;
use std::path::PathBuf;

/// A base image ready to build on.
#[derive(Debug, Clone)]
pub struct BaseImage {
    pub reference: String,
    pub manifest_digest: Digest,
    pub config: ImageConfig,
    pub layers: Vec<Layer>,
}

/// When to ask the registry about an image the store already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Re-resolve a tag once (`docker build`): pull when it moved, warn when unreachable.
    Check,
    /// Use the local copy when present (`docker run`).
    PreferLocal,
    /// Always pull (`--pull`).
    Always,
}

/// Resolves, pulls when needed, and unpacks `reference`.
pub fn load(
    store: &Store,
    registry: Option<&Client>,
    reference: &str,
    platform: &Platform,
    policy: Policy,
    warn: &dyn Fn(String),
) -> crate::Result<BaseImage> {
    let always_pull = policy == Policy::Always;
    let r = ImageRef::parse(reference).map_err(crate::registry::RegistryError::from)?;
    let name = r.to_string();
    // Serialise concurrent stages on the same base so it is pulled and unpacked once.
    let _lock = store.lock(&format!("base:{name}"), true)?;
    // A name holds one platform's manifest (the last pulled): the local copy serves only
    // when it is for `platform`, else a multi-platform build would reuse another's.
    // A name may also hold an index (a multi-platform build): its entry for `platform`.
    let local = store
        .get_image(&name)?
        .filter(|d| store.has_blob(d))
        .and_then(|d| match store.load_index(&d) {
            Ok(Some(idx)) => idx
                .select(platform)
                .map(|e| e.digest.clone())
                .filter(|e| store.has_blob(e)),
            _ => Some(d),
        })
        .filter(|d| {
            store.load_image(d).is_ok_and(|(_, c)| {
                let have = Platform {
                    os: c.os,
                    architecture: c.architecture,
                    variant: c.variant,
                    ..Default::default()
                };
                platform.rank(&have).is_some()
            })
        });
    let manifest_digest = match (registry, local) {
        (_, Some(d)) if (r.digest.is_some() || policy == Policy::PreferLocal) && !always_pull => d,
        (Some(c), Some(d)) if !always_pull => match c.resolve(&r, platform) {
            Ok(remote) if remote == d => d,
            Ok(_) => c.pull(&r, platform, store)?.manifest_digest,
            Err(e) => {
                warn(format!(
                    "could not check {name} against its registry ({e}); using the local copy"
                ));
                d
            }
        },
        (Some(c), _) => c.pull(&r, platform, store)?.manifest_digest,
        (None, Some(d)) => d,
        (None, None) => return Err(crate::store::StoreError::UnknownImage(name).into()),
    };
    let (manifest, config) = store.load_image(&manifest_digest)?;
    if manifest.layers.len() != config.rootfs.diff_ids.len() {
        return Err(EngineError::BadValue {
            what: "image",
            value: name,
            reason: format!(
                "manifest lists {} layers but config has {} diff_ids",
                manifest.layers.len(),
                config.rootfs.diff_ids.len()
            ),
        }
        .into());
    }
    let mut layers = Vec::with_capacity(manifest.layers.len());
    for (desc, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
        let snapshot = ensure_snapshot(store, &name, desc, diff_id)?;
        layers.push(Layer {
            desc: desc.clone(),
            diff_id: diff_id.clone(),
            snapshot,
        });
    }
    Ok(BaseImage {
        reference: name,
        manifest_digest,
        config,
        layers,
    })
}

/// Unpacks a stored layer blob into its snapshot dir once (checking its diffID).
pub fn ensure_snapshot(
    store: &Store,
    reference: &str,
    desc: &Descriptor,
    diff_id: &Digest,
) -> crate::Result<PathBuf> {
    if store.has_snapshot(diff_id) {
        return Ok(store.snapshot_path(diff_id));
    }
    let _lock = store.lock(&format!("snapshot:{diff_id}"), true)?;
    if store.has_snapshot(diff_id) {
        return Ok(store.snapshot_path(diff_id));
    }
    let tmp = store.tmp_dir()?;
    let dest = tmp.path().join("fs");
    std::fs::create_dir(&dest).map_err(|source| EngineError::Io {
        path: dest.clone(),
        source,
    })?;
    let blob = store.open_blob(&desc.digest)?;
    let stats = crate::layers::unpack(
        std::io::BufReader::with_capacity(1 << 20, blob),
        &desc.media_type,
        &dest,
    )?;
    if &stats.diff_id != diff_id {
        return Err(EngineError::DiffIdMismatch {
            reference: reference.to_string(),
            digest: desc.digest.clone(),
            expected: diff_id.clone(),
            actual: stats.diff_id,
        }
        .into());
    }
    Ok(store.commit_snapshot(diff_id, &dest)?)
}

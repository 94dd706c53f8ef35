//! The cached layer step: key → cache hit (reuse the layer) or miss (fill an empty dir, commit
//! it as a layer blob and snapshot, record the cache entry and, for the next miss's
//! explanation, the step's inputs); and unpacking layers on demand.

use super::State;
use super::clock::now_rfc3339;
use super::explain;
use crate::cache::{CacheEntry, CachedLayer, StepKey};
use crate::engine::shared::Produced;
use crate::engine::{BuildEvent, Ctx, EngineError, Layer, Result, base, stream};
use crate::layers::{self, LayerOptions};
use crate::oci::{Descriptor, Digest};
use std::path::Path;
use std::time::Instant;

/// Runs a layer-producing step through the cache: on a hit the cached layer is reused, on a
/// miss `work` fills an empty dir that becomes the layer. `key` holds the step's parts; its
/// digest chains on the stage's current key. `work` returning false means
/// "nothing to do": no layer, a config-only history entry.
pub(crate) fn layer_step(
    ctx: &Ctx,
    st: &mut State,
    name: &str,
    no_cache: bool,
    key: StepKey,
    created_by: String,
    work: impl FnOnce(&State, &Path, usize) -> Result<bool>,
) -> Result<()> {
    layer_step_with(ctx, st, name, no_cache, key, created_by, |st, out, id| {
        Ok(if work(st, out, id)? {
            Some(layers::ExtraFiles::new())
        } else {
            None
        })
    })
}

/// [`layer_step`] whose work may leave files outside `out` to archive with it (COPY from the
/// context, see [`crate::copy::apply_deferred`]): `None` means nothing to do.
pub(crate) fn layer_step_with(
    ctx: &Ctx,
    st: &mut State,
    name: &str,
    no_cache: bool,
    key: StepKey,
    created_by: String,
    work: impl FnOnce(&State, &Path, usize) -> Result<Option<layers::ExtraFiles>>,
) -> Result<()> {
    // Files and `created` depend on the epoch: a layer made under another (or none) is not
    // this step's. Keys without one stay as they were, so existing cache entries match.
    let parts = match ctx.req.source_date_epoch {
        Some(sde) => key.part("epoch", sde.to_string()),
        None => key,
    };
    let key = parts.digest(&st.key);
    let id = ctx.new_id();
    let t = Instant::now();
    ctx.reporter.event(BuildEvent::Started {
        id,
        name: name.to_string(),
    });
    // Held until this step's result is known: another platform's pass reaching the same key
    // waits here and reuses it (see `engine::shared`).
    let slot = ctx.req.shared.slot(&key);
    let mut memo = slot.lock().unwrap_or_else(|e| e.into_inner());
    if memo.is_none() && ctx.req.shared.is_cancelled() {
        // The pass that held the slot failed and stopped the build: do not start it again.
        ctx.reporter.event(BuildEvent::Failed {
            id,
            message: EngineError::Cancelled.to_string(),
        });
        return Err(EngineError::Cancelled);
    }
    if let Some(done) = memo.clone() {
        ctx.reporter.event(BuildEvent::Cached { id });
        st.key = key;
        match done {
            Produced::Layer(layer, created) => {
                ctx.use_key(&st.key);
                st.layers.push(*layer);
                st.last_created = created.clone();
                st.push_history(created_by, false, created);
            }
            Produced::Nothing => st.push_history(created_by, true, None),
        }
        return Ok(());
    }
    if !no_cache && let Some(hit) = cached_layer(ctx, &key) {
        *memo = Some(Produced::Layer(Box::new(hit.0.clone()), hit.1.clone()));
        ctx.reporter.event(BuildEvent::Cached { id });
        ctx.use_key(&key);
        let created = hit.1.clone();
        st.layers.push(hit.0);
        st.key = key;
        st.last_created = created.clone();
        st.push_history(created_by, false, created);
        return Ok(());
    }
    // A miss: say why (this is the only place records are read or written).
    let pending = explain::report_miss(ctx, st, &parts, &st.key, &key, no_cache, id);
    if ctx.req.explain_only {
        // `--explain-cache`: later steps chain on the key this one would have.
        st.key = key;
        st.push_history(created_by, false, None);
        return Ok(());
    }
    let tmp = ctx.store.tmp_dir()?;
    let out = tmp.path().join("layer");
    std::fs::create_dir(&out).map_err(|source| EngineError::Io {
        path: out.clone(),
        source,
    })?;
    let produced = match materialize(ctx, &st.layers).and_then(|()| work(st, &out, id)) {
        Ok(p) => p,
        Err(e) => {
            ctx.reporter.event(BuildEvent::Failed {
                id,
                message: e.to_string(),
            });
            return Err(e);
        }
    };
    st.key = key.clone();
    let Some(extra) = produced else {
        *memo = Some(Produced::Nothing);
        explain::record(ctx, pending);
        st.push_history(created_by, true, None);
        ctx.reporter.event(BuildEvent::Done {
            id,
            secs: t.elapsed().as_secs_f64(),
        });
        return Ok(());
    };
    let layer = commit_layer_with(ctx, &out, &extra, st.stream)?;
    let created = now_rfc3339(ctx.req.source_date_epoch);
    ctx.cache.put(
        &key,
        &CacheEntry {
            layer: CachedLayer {
                digest: layer.desc.digest.clone(),
                diff_id: layer.diff_id.clone(),
                size: layer.desc.size,
                media_type: layer.desc.media_type.clone(),
            },
            created: Some(created.clone()),
        },
    )?;
    explain::record(ctx, pending);
    ctx.use_key(&key);
    *memo = Some(Produced::Layer(
        Box::new(layer.clone()),
        Some(created.clone()),
    ));
    st.layers.push(layer);
    st.last_created = Some(created.clone());
    st.push_history(created_by, false, Some(created));
    ctx.reporter.event(BuildEvent::Done {
        id,
        secs: t.elapsed().as_secs_f64(),
    });
    Ok(())
}

fn cached_layer(ctx: &Ctx, key: &Digest) -> Option<(Layer, Option<String>)> {
    let e = ctx.cache.get(key)?;
    // A missing or truncated blob makes the entry a miss (full re-hashing would cost a warm
    // build a read of every layer; snapshots are checked against their diffID on unpack).
    let len = std::fs::metadata(ctx.store.blob_path(&e.layer.digest))
        .ok()?
        .len();
    if len != e.layer.size {
        return None;
    }
    let desc = Descriptor::new(&e.layer.media_type, e.layer.digest.clone(), e.layer.size);
    // Unpacked only when a later step needs it (see [`materialize`]).
    let snapshot = ctx.store.snapshot_path(&e.layer.diff_id);
    Some((
        Layer {
            desc,
            diff_id: e.layer.diff_id,
            snapshot,
        },
        e.created,
    ))
}

/// Turns a filled dir into a stored layer blob and moves it into place as its snapshot.
/// With `extra` files the dir is not the layer's content: no snapshot is made now;
/// [`materialize`] unpacks the blob if a step needs it. With `stream` (a layer of the target
/// stage) and `--push`, the blob is uploaded while it is written (see [`stream`]).
pub(crate) fn commit_layer_with(
    ctx: &Ctx,
    dir: &Path,
    extra: &layers::ExtraFiles,
    stream: bool,
) -> Result<Layer> {
    let opts = LayerOptions {
        compression: ctx.req.compression,
        source_date_epoch: ctx.req.source_date_epoch,
    };
    // The layer writer hashes what it emits (the blob digest): no second hash in the store.
    let mut w = ctx.store.blob_writer_hashed_by_producer()?;
    let dest = if stream {
        stream::destination(ctx)
    } else {
        None
    };
    let b = match dest {
        None => {
            let b = layers::write_layer_with(dir, extra, &opts, &mut w)?;
            w.commit_sized(&b.digest, b.size)?;
            b
        }
        Some((client, dest)) => std::thread::scope(|s| -> Result<layers::LayerBlob> {
            let progress = std::sync::Arc::new(stream::Progress::default());
            let follow = stream::Follow::new(w.reopen()?, progress.clone());
            let uploader = s.spawn(move || stream::upload(client, dest, follow));
            let written = layers::write_layer_with(
                dir,
                extra,
                &opts,
                &mut stream::Tracked::new(&mut w, progress.clone()),
            );
            // The upload's tail goes out while the blob is fsynced and committed.
            match &written {
                Ok(b) => progress.complete(b.digest.clone()),
                Err(_) => progress.fail(),
            }
            let committed = written.map_err(EngineError::from).and_then(|b| {
                w.commit_sized(&b.digest, b.size)?;
                Ok(b)
            });
            if committed.is_err() {
                progress.fail();
            }
            match uploader.join() {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => stream::failed(ctx, dest, &e.to_string()),
                Err(_) => stream::failed(ctx, dest, "the upload thread panicked"),
            }
            committed
        })?,
    };
    let snapshot = if extra.is_empty() {
        ctx.store.commit_snapshot(&b.diff_id, dir)?
    } else {
        ctx.store.snapshot_path(&b.diff_id)
    };
    Ok(Layer {
        desc: Descriptor::new(&b.media_type, b.digest, b.size),
        diff_id: b.diff_id,
        snapshot,
    })
}

/// Unpacks the snapshots of `layers` that are not there yet (layers reused from the cache, or
/// written from deferred COPY files, get theirs only when a step mounts them).
pub(crate) fn materialize(ctx: &Ctx, layers: &[Layer]) -> Result<()> {
    for l in layers {
        if !l.snapshot.is_dir() {
            base::ensure_snapshot(ctx.store, "build cache", &l.desc, &l.diff_id).map_err(|e| {
                EngineError::BaseImage {
                    reference: format!(
                        "layer {} (unpacking it from the store failed; rebuild with --no-cache)",
                        l.desc.digest
                    ),
                    error: Box::new(e),
                }
            })?;
        }
    }
    Ok(())
}

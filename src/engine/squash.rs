//! `--squash` (docker's legacy flag, which BuildKit did not carry): the target stage's own
//! layers become one layer on top of its base. The filesystem and the config are the same;
//! the history keeps every step, the squashed ones marked as empty layers, and adds one entry
//! for the merged layer, as docker's squash did (`merge <layer> to <base layer>`).

use super::stage::{commit_layer_with, materialize};
use super::{Ctx, EngineError, Result, StageResult};
use crate::oci::History;

/// The stage with its own layers merged ([`crate::layers::squash`]). With fewer than two
/// layers of its own there is nothing to merge and the stage is returned as it is.
pub(crate) fn squash(ctx: &Ctx, target: &StageResult) -> Result<StageResult> {
    let own = target.layers.get(target.base_layers..).unwrap_or_default();
    if own.len() < 2 {
        return Ok(target.clone());
    }
    materialize(ctx, &target.layers)?;
    let tmp = ctx.store.tmp_dir()?;
    let dir = tmp.path().join("squashed");
    std::fs::create_dir(&dir).map_err(|source| EngineError::Io {
        path: dir.clone(),
        source,
    })?;
    let snapshots: Vec<_> = own.iter().map(|l| l.snapshot.clone()).collect();
    let base: Vec<_> = target.layers[..target.base_layers]
        .iter()
        .map(|l| l.snapshot.clone())
        .collect();
    crate::layers::squash::squash(&dir, &snapshots, &base)?;
    let layer = commit_layer_with(ctx, &dir, &crate::layers::ExtraFiles::new(), false)?;

    let mut out = target.clone();
    let base_top = target.layers[..target.base_layers]
        .last()
        .map_or_else(|| "scratch".to_string(), |l| l.diff_id.to_string());
    let comment = format!("merge {} to {base_top}", layer.diff_id);
    out.layers.truncate(target.base_layers);
    out.layers.push(layer);
    for h in out.config.history.iter_mut().skip(target.base_history) {
        h.empty_layer = true;
    }
    out.config.history.push(History {
        created: target.config.created.clone(),
        comment: Some(comment),
        ..History::default()
    });
    Ok(out)
}

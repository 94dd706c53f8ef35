//! One step of a stage: config-only instructions go to [`config_step`], layer steps (WORKDIR,
//! RUN, COPY/ADD) to their own modules, each through the cached [`layer_step`].

use super::config_step::config_step;
use super::copy_step::copy_step;
use super::workdir::make_workdir;
use super::{State, layer_step, materialize};
use crate::cache::StepKey;
use crate::engine::{Ctx, Result, StageResult, config, run};
use crate::graph::{Source, Step};
use crate::parser::Instruction;
use crate::parser::expand;
use std::collections::HashMap;
use std::sync::Arc;

/// Runs `step` on the stage state `st`; `name` is its progress line.
pub(super) fn run_step(
    ctx: &Ctx,
    st: &mut State,
    step: &Step,
    deps: &HashMap<usize, Arc<StageResult>>,
    name: &str,
    no_cache: bool,
) -> Result<()> {
    let node = &step.node;
    match &node.instruction {
        Instruction::Workdir(w) => {
            let w = expand::expand_word(w, &st.lookup(), ctx.req.graph.escape)?;
            let dir = config::workdir(&mut st.config.config, &w);
            layer_step(
                ctx,
                st,
                name,
                no_cache,
                StepKey::new("WORKDIR")
                    .part("dir", dir.as_str())
                    .part("user", st.config.config.user.clone().unwrap_or_default()),
                format!("WORKDIR {dir}"),
                |st, out, _| make_workdir(ctx, st, &dir, out),
            )
        }
        Instruction::Run { .. } => {
            // RUN --mount=from=<stage> mounts that stage's snapshots.
            for (_, from) in &step.mount_from {
                if let Source::Stage(i) = from
                    && let Some(r) = deps.get(i)
                {
                    materialize(ctx, &r.layers)?;
                }
            }
            run::run_step(ctx, st, step, deps, name, no_cache)
        }
        Instruction::Copy(a) | Instruction::Add(a) => {
            let add = matches!(node.instruction, Instruction::Add(_));
            copy_step(ctx, st, step, a, add, deps, name, no_cache)
        }
        other => config_step(ctx, st, other),
    }
}

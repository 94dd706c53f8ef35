//! `hoist build --explain-cache`: every platform's pass in explain mode (see
//! [`crate::engine::explain`]): each step of the stages the target needs says `CACHED` or why
//! it would run, and nothing runs, is stored, tagged, pushed or exported. Only the local cache
//! is consulted (`--cache-from` is not imported: that would download layers).

use super::BuildPlan;
use super::passes::{Ids, PassReporter};
use crate::engine::{self, SharedSteps};
use crate::registry::Client;
use crate::store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Explains every step of `plan` through `observer`'s progress, one platform after another.
pub fn explain(plan: &BuildPlan, observer: &dyn super::Observer) -> crate::Result<()> {
    super::precheck(plan)?;
    let ignore = crate::copy::context::load_ignore(&plan.context, &plan.dockerfile_path)?;
    let store = Store::open(&plan.root)?;
    let mut registry = Client::new(plan.registry.options.clone())?;
    registry.set_timeouts(plan.registry.operation_timeout, plan.registry.idle_timeout);
    // Nothing runs, but the engine's context holds an isolation backend (views of layers).
    let selected = crate::executor::select(store.sandbox_pool())?;
    let reporter = observer.engine_reporter();
    let ids: Ids = Mutex::new((0usize, HashMap::new()));
    let several = plan.platforms.len() > 1;
    for (i, p) in plan.platforms.iter().enumerate() {
        let mut req = super::request(plan, p, ignore.clone(), Arc::new(SharedSteps::default()));
        req.explain_only = true;
        let r = PassReporter {
            inner: reporter.as_ref(),
            label: several.then(|| p.platform.to_string_short()),
            pass: i,
            ids: &ids,
        };
        engine::explain(&req, &store, Some(&registry), &*selected.isolation, &r)?;
    }
    Ok(())
}

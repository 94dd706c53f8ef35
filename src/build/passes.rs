//! Running the per-platform engine passes: in parallel (as many at once as the machine has
//! cores, the passes' own stages running concurrently inside each), sharing one per-build
//! memo of steps (`engine::shared`: a `FROM --platform=$BUILDPLATFORM` stage is computed by
//! the first pass and reused by the others), and one progress sink whose step ids stay
//! distinct across passes and whose step names say the platform, as BuildKit's
//! `[linux/arm64 build 2/3] RUN …`.

use super::{BuildPlan, PlatformPlan};
use crate::engine::{self, BuildEvent, BuildOutcome, Reporter, SharedSteps};
use crate::executor::Isolation;
use crate::oci::Platform;
use crate::parser::dockerignore::Matcher;
use crate::registry::Client;
use crate::store::Store;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The shared id sequence: the last id given, and each (pass, engine id)'s global id.
pub(super) type Ids = Mutex<(usize, HashMap<(usize, usize), usize>)>;

/// One pass's view of the shared progress sink: renumbers its step ids into one sequence
/// and prefixes step names with the platform (only when there are several passes).
pub(super) struct PassReporter<'a> {
    pub inner: &'a dyn Reporter,
    /// `os/arch[/variant]` to put in step names; None for a single pass.
    pub label: Option<String>,
    pub pass: usize,
    pub ids: &'a Ids,
}

impl PassReporter<'_> {
    fn id(&self, id: usize) -> usize {
        // A single pass keeps the engine's ids as they are.
        if self.label.is_none() {
            return id;
        }
        let mut g = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = g.1.get(&(self.pass, id)) {
            return *i;
        }
        g.0 += 1;
        let n = g.0;
        g.1.insert((self.pass, id), n);
        n
    }
}

/// `[build 2/3] RUN x` → `[linux/arm64 build 2/3] RUN x`; `[internal] …` likewise.
fn label_name(label: &str, name: &str) -> String {
    match name.strip_prefix('[') {
        Some(rest) => format!("[{label} {rest}"),
        None => format!("[{label}] {name}"),
    }
}

impl Reporter for PassReporter<'_> {
    fn event(&self, e: BuildEvent) {
        let e = match e {
            BuildEvent::Started { id, name } => BuildEvent::Started {
                id: self.id(id),
                name: match &self.label {
                    Some(l) => label_name(l, &name),
                    None => name,
                },
            },
            BuildEvent::Cached { id } => BuildEvent::Cached { id: self.id(id) },
            BuildEvent::CacheMiss { id, reason } => BuildEvent::CacheMiss {
                id: self.id(id),
                reason,
            },
            BuildEvent::Output { id, data } => BuildEvent::Output {
                id: self.id(id),
                data,
            },
            BuildEvent::Done { id, secs } => BuildEvent::Done {
                id: self.id(id),
                secs,
            },
            BuildEvent::Failed { id, message } => BuildEvent::Failed {
                id: self.id(id),
                message,
            },
            w @ BuildEvent::Warning { .. } => w,
        };
        self.inner.event(e);
    }
}

/// A failed step's error names the platform whose pass failed, as BuildKit's
/// `[linux/arm64 2/3] RUN …`: `Dockerfile:2: [linux/arm64] RUN …: …`.
fn name_platform(e: crate::Error, platform: &Platform) -> crate::Error {
    match e {
        crate::Error::Engine(crate::engine::EngineError::Step {
            location,
            instruction,
            error,
        }) => crate::Error::Engine(crate::engine::EngineError::Step {
            location,
            instruction: format!("[{}] {instruction}", platform.to_string_short()),
            error,
        }),
        other => other,
    }
}

/// Everything a pass needs besides its platform.
pub(super) struct Passes<'a> {
    pub plan: &'a BuildPlan,
    pub store: &'a Store,
    pub registry: &'a Client,
    pub isolation: &'a dyn Isolation,
    pub ignore: &'a Matcher,
}

impl Passes<'_> {
    /// Runs every platform's pass, at most `available_parallelism` at once, reporting to
    /// `reporter`. Results in `plan.platforms` order. A failed pass stops the others at their
    /// next step; its error (the first in that order) is returned.
    pub fn run(&self, reporter: &dyn Reporter) -> crate::Result<Vec<(Platform, BuildOutcome)>> {
        let plans = &self.plan.platforms;
        let shared = Arc::new(SharedSteps::default());
        let ids: Ids = Mutex::new((0usize, HashMap::new()));
        let several = plans.len() > 1;
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, plans.len().max(1));
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<crate::Result<BuildOutcome>>>> =
            Mutex::new((0..plans.len()).map(|_| None).collect());
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(p) = plans.get(i) else { break };
                        let r = PassReporter {
                            inner: reporter,
                            label: several.then(|| p.platform.to_string_short()),
                            pass: i,
                            ids: &ids,
                        };
                        let out = self.one(p, shared.clone(), &r).map_err(|e| {
                            if several {
                                name_platform(e, &p.platform)
                            } else {
                                e
                            }
                        });
                        if out.is_err() {
                            // The build fails anyway: the other passes stop between steps.
                            shared.cancel();
                        }
                        results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(out);
                    }
                });
            }
        });
        let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::with_capacity(plans.len());
        let mut cancelled = None;
        for (p, r) in plans.iter().zip(results) {
            match r {
                Some(Ok(o)) => out.push((p.platform.clone(), o)),
                // A pass stopped because another failed: report the failure, not the stop.
                Some(Err(crate::Error::Engine(crate::engine::EngineError::Cancelled))) | None => {
                    cancelled = Some(crate::engine::EngineError::Cancelled.into())
                }
                Some(Err(e)) => return Err(e),
            }
        }
        match cancelled {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    fn one(
        &self,
        p: &PlatformPlan,
        shared: Arc<SharedSteps>,
        reporter: &dyn Reporter,
    ) -> crate::Result<BuildOutcome> {
        let req = super::request(self.plan, p, self.ignore.clone(), shared);
        Ok(engine::build(
            &req,
            self.store,
            Some(self.registry),
            self.isolation,
            reporter,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_get_the_platform() {
        assert_eq!(
            label_name("linux/arm64", "[build 2/3] RUN make"),
            "[linux/arm64 build 2/3] RUN make"
        );
        assert_eq!(
            label_name("linux/amd64", "[internal] load metadata for x"),
            "[linux/amd64 internal] load metadata for x"
        );
        assert_eq!(label_name("linux/amd64", "load"), "[linux/amd64] load");
    }
}

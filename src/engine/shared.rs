//! Steps shared by the engine passes of one build (one pass per target platform).
//!
//! A step's cache key chains everything its result depends on: the base image's manifest
//! (so the platform it was resolved for), the stage's platform, the expanded instruction, the
//! ARG values it sees (`TARGETARCH` only when the stage declares it) and its sources. Two
//! passes that reach the same key would compute the same layer, as BuildKit merges identical
//! vertices: a `FROM --platform=$BUILDPLATFORM` stage that never reads a `TARGET*` ARG has the
//! same keys in every pass. So the first pass to reach a key computes it while holding the
//! key's slot; the others wait on the slot and reuse the result (reported as cached), even
//! under `--no-cache`, where the cache index is not consulted. The memo lives only for one
//! build.

use super::Layer;
use crate::oci::Digest;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What a step produced: a layer (with its `created` time), or nothing (a config-only
/// history entry).
#[derive(Debug, Clone)]
pub(crate) enum Produced {
    Layer(Box<Layer>, Option<String>),
    Nothing,
}

/// One key's result, filled by the pass that computed it.
pub(crate) type Slot = Arc<Mutex<Option<Produced>>>;

/// The per-build memo of layer steps by cache key, shared by every platform's pass.
#[derive(Debug, Default)]
pub struct SharedSteps {
    slots: Mutex<HashMap<Digest, Slot>>,
    /// Another pass failed: this one stops between steps, as stages of one pass do.
    cancelled: AtomicBool,
}

impl SharedSteps {
    /// The slot of `key` (created empty on first use).
    pub(crate) fn slot(&self, key: &Digest) -> Slot {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_default()
            .clone()
    }

    /// Stops every pass sharing this memo at its next step boundary.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    /// True once [`SharedSteps::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }
}

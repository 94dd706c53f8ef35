//! What a pass did, kept for provenance: each step it ran or reused (its stage, instruction,
//! Dockerfile lines and the layer it gave), each stage's final layers, and the base images it
//! resolved. The engine only records; `attest` decides what a provenance says.

use crate::oci::{Descriptor, Digest};
use std::sync::Mutex;

/// One instruction as the pass ran it (cache hits included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    /// The stage's index in the Dockerfile.
    pub stage: usize,
    /// The instruction as written.
    pub text: String,
    /// Its first and last Dockerfile line (1-based).
    pub lines: (usize, usize),
    /// The layer it added, if any.
    pub layer: Option<Descriptor>,
    /// Stages it reads besides its own (`COPY --from`, `RUN --mount from=`).
    pub from_stages: Vec<usize>,
}

/// One built stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageRecord {
    pub index: usize,
    pub name: Option<String>,
    /// Its FROM line (1-based).
    pub line: usize,
    /// What it starts from: an image reference, `scratch` or `stage N`.
    pub base: String,
    /// Its filesystem, base layers included.
    pub layers: Vec<Descriptor>,
}

/// An image the pass resolved (FROM, `COPY --from`, `RUN --mount from=`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ImageRecord {
    /// The normalized reference (`docker.io/library/busybox:latest`).
    pub reference: String,
    /// `os/arch[/variant]` it was resolved for.
    pub platform: String,
    /// The manifest it resolved to.
    pub digest: Digest,
}

/// A remote source the pass fetched (ADD of a git repository or an http(s) URL).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SourceRecord {
    /// The URL, credentials removed.
    pub uri: String,
    /// Algorithm (`sha256`, `sha1` for a git commit) and hex value.
    pub digest: (String, String),
}

/// Everything one pass recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    /// In the order they finished.
    pub stages: Vec<StageRecord>,
    /// Per stage in run order; stages run concurrently, so group by `stage`.
    pub steps: Vec<StepRecord>,
    /// Sorted, one per (reference, platform).
    pub images: Vec<ImageRecord>,
    /// Sorted, deduplicated.
    pub sources: Vec<SourceRecord>,
}

/// The recorder a pass writes into.
#[derive(Debug, Default)]
pub(crate) struct Recorder(Mutex<Trace>);

impl Recorder {
    pub fn step(&self, r: StepRecord) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .steps
            .push(r);
    }

    pub fn source(&self, r: SourceRecord) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !t.sources.contains(&r) {
            t.sources.push(r);
        }
    }

    pub fn stage(&self, r: StageRecord) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stages
            .push(r);
    }

    /// The trace so far, with `images` as given (sorted).
    pub fn finish(&self, mut images: Vec<ImageRecord>) -> Trace {
        images.sort();
        images.dedup();
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        t.images = images;
        t.sources.sort();
        t
    }
}

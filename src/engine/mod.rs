//! Walks the build graph, runs independent stages concurrently, threads the image config
//! through the steps, and emits progress events.
//!
//! Side effects go through the real modules behind narrow seams: RUN through the
//! `executor::Isolation` backend (views of layers, pinned mount sources, the run), files through `copy` and `layers`, images through `store` and
//! `registry`. Config changes are pure functions in `config`.

pub mod adapters;
pub mod base;
pub mod config;
pub mod history;
mod output;
mod run;
pub mod shared;
mod squash;
mod stage;
mod stream;

pub use output::BuildOutcome;
pub use run::{Entitlements, check_graph as check_entitlements};
pub use shared::SharedSteps;
pub use stage::rfc3339;

use crate::cache::CacheIndex;
use crate::copy::HashCache;
use crate::executor::{Isolation, Network};
use crate::graph::{BuildGraph, GraphOptions};
use crate::layers::Compression;
use crate::oci::{Descriptor, Digest, ImageConfig, Platform};
use crate::parser::dockerignore::Matcher;
use crate::registry::{Client, ImageRef};
use crate::store::Store;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex};

/// Errors from a build; step errors carry the Dockerfile location.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A step failed: where, which instruction, why.
    #[error("{location}: {instruction}: {error}")]
    Step {
        location: String,
        instruction: String,
        error: Box<EngineError>,
    },
    #[error("process \"{command}\" did not complete successfully: exit code: {code}")]
    RunFailed {
        command: String,
        code: i32,
        tail: String,
    },
    /// A RUN asks for what only an entitlement allows.
    #[error(
        "{what} is not allowed: it needs the {entitlement} entitlement; add `--allow \
         {entitlement}` to hoist build (BuildKit refuses it the same way)"
    )]
    NotEntitled {
        what: &'static str,
        entitlement: &'static str,
    },
    #[error("invalid {what} value {value:?}: {reason}")]
    BadValue {
        what: &'static str,
        value: String,
        reason: String,
    },
    #[error("{0}")]
    Expand(#[from] crate::parser::expand::ExpandError),
    #[error("failed to resolve base image {reference}: {error}")]
    BaseImage {
        reference: String,
        error: Box<crate::Error>,
    },
    #[error(
        "layer {digest} of {reference} unpacked to diffID {actual}, but its config says {expected}"
    )]
    DiffIdMismatch {
        reference: String,
        digest: Digest,
        expected: Digest,
        actual: Digest,
    },
    /// A name in `--chown` or USER that a file operation cannot look up: the step has no
    /// filesystem below it (`--link`, or FROM scratch before anything was added). BuildKit
    /// fails these too ("invalid user index: -1").
    #[error(
        "{what} {spec:?} names a user or group, but {why}, so there is no /etc/passwd or /etc/group to look it up in; use numeric ids (uid:gid)"
    )]
    NameWithoutFilesystem {
        what: &'static str,
        spec: String,
        why: &'static str,
    },
    /// WORKDIR's path (or one of its parents) exists and is not a directory.
    #[error(
        "mkdir {path}: not a directory (WORKDIR cannot make a directory where the image has a file)"
    )]
    WorkdirNotDir { path: String },
    #[error("secret {id:?} is required but was not given (use --secret id={id},src=FILE)")]
    MissingSecret { id: String },
    #[error("invalid --mount: {0}")]
    BadMount(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Layers(#[from] crate::layers::LayersError),
    #[error(transparent)]
    Executor(#[from] crate::executor::ExecutorError),
    #[error(transparent)]
    Copy(#[from] crate::copy::CopyError),
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error("build cancelled because another stage failed")]
    Cancelled,
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, EngineError>;

/// What `--secret` gives a build: the bytes, kept in memory only.
#[derive(Clone)]
pub struct Secret(pub Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Everything a build needs, after the CLI validated it.
pub struct BuildRequest {
    /// How errors name the Dockerfile (`Dockerfile`, `-`, a path).
    pub dockerfile_name: String,
    pub dockerfile_text: String,
    pub graph: BuildGraph,
    pub graph_options: GraphOptions,
    pub context: PathBuf,
    pub ignore: Matcher,
    /// `--build-context` contents (`graph::Source::Context` keys), shared by the passes.
    pub contexts: Arc<crate::context::NamedContexts>,
    pub labels: BTreeMap<String, String>,
    pub no_cache: bool,
    pub no_cache_filter: Vec<String>,
    /// `--squash`: the target stage's own layers become one ([`squash`]).
    pub squash: bool,
    pub pull: bool,
    pub network: Network,
    /// `--allow`: what RUN may ask for beyond the default sandbox.
    pub entitlements: Entitlements,
    /// `--add-host`, `--ulimit`, `--shm-size`: applied to every RUN.
    pub sandbox: crate::executor::SandboxOptions,
    pub secrets: BTreeMap<String, Secret>,
    /// `--ssh` agent sockets by id.
    pub ssh: BTreeMap<String, PathBuf>,
    pub compression: Compression,
    pub source_date_epoch: Option<i64>,
    pub platform: Platform,
    /// Where the image will be pushed when the build is done (`--push`: the first `-t`).
    /// Layers of the target stage are then uploaded there while they are compressed; the push
    /// at the end finds them present (and uploads whatever streaming did not manage).
    pub stream_push: Option<ImageRef>,
    /// Steps already computed by another platform's pass of the same build (see
    /// [`shared`]); a fresh default for a single pass.
    pub shared: Arc<SharedSteps>,
    /// `--explain-cache` (see [`explain`]): compute every step's key and say hit or why it
    /// would miss, running nothing.
    pub explain_only: bool,
}

/// A progress event; `id` numbers steps in the order they start, like BuildKit's vertices.
#[derive(Debug, Clone)]
pub enum BuildEvent {
    /// A step (or base-image load) started. `name` is e.g. `[build 2/4] RUN make`.
    Started { id: usize, name: String },
    /// It was satisfied from the cache.
    Cached { id: usize },
    /// It missed the cache and runs; `reason` says why (an instruction, build arg, file, base
    /// image or parent change, `--no-cache`, or no entry). Secret-looking values never appear.
    CacheMiss { id: usize, reason: String },
    /// Output from a RUN.
    Output { id: usize, data: Vec<u8> },
    /// It finished.
    Done { id: usize, secs: f64 },
    /// It failed.
    Failed { id: usize, message: String },
    /// Something the user should know (e.g. using a local base image offline).
    Warning { message: String },
}

/// Receives build events (the CLI renders them; tests record them).
pub trait Reporter: Send + Sync {
    fn event(&self, e: BuildEvent);
}

/// The engine's shared state for one build.
pub(crate) struct Ctx<'a> {
    pub req: &'a BuildRequest,
    pub store: &'a Store,
    pub registry: Option<&'a Client>,
    /// The isolation backend: every rootfs view, pinned mount source and RUN goes through it.
    pub isolation: &'a dyn Isolation,
    pub reporter: &'a dyn Reporter,
    pub cache: CacheIndex,
    pub hashes: HashCache,
    next_id: Mutex<usize>,
    /// Cache keys of the layer steps this build used (hit or produced), for `--cache-to`.
    pub used_keys: Mutex<Vec<Digest>>,
    /// Store ids of the cache mounts this build's RUN steps named, for `--cache-to
    /// …,cache-mounts=true`.
    pub used_mounts: Mutex<Vec<String>>,
    /// Base images loaded by this build, by (reference, `os/arch[/variant]`): each is resolved
    /// (one registry request) and unpacked once per build and platform however many stages
    /// or `--from`s name it.
    pub bases: Mutex<HashMap<(String, String), BaseSlot>>,
    /// Streaming layers to `req.stream_push` failed once: not tried again in this build.
    pub stream_off: AtomicBool,
}

impl Ctx<'_> {
    /// Records a layer step's key as used by this build.
    pub fn use_key(&self, key: &Digest) {
        self.used_keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(key.clone());
    }

    /// Records a cache mount (by store id) as used by this build.
    pub fn use_mount(&self, id: &str) {
        let mut m = self.used_mounts.lock().unwrap_or_else(|e| e.into_inner());
        if !m.iter().any(|x| x == id) {
            m.push(id.to_string());
        }
    }

    pub fn new_id(&self) -> usize {
        let mut n = self.next_id.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        *n
    }
}

/// One base image's load: filled by the first stage that needs it, waited on by the others.
pub(crate) type BaseSlot = Arc<Mutex<Option<base::BaseImage>>>;

/// A layer of an image being built: its blob and its unpacked snapshot.
#[derive(Debug, Clone)]
pub struct Layer {
    pub desc: Descriptor,
    pub diff_id: Digest,
    pub snapshot: PathBuf,
}

/// A finished stage: its config, layers and the cache key of its last step.
#[derive(Debug, Clone)]
pub struct StageResult {
    pub config: ImageConfig,
    pub layers: Vec<Layer>,
    pub key: Digest,
    /// Its ARGs in order: a stage built `FROM` this one starts with them.
    pub args: Vec<(String, Option<String>)>,
    /// The ARG values that shadow its env (see `State::arg_env`), inherited the same way.
    pub arg_env: Vec<(String, String)>,
    /// How many of `layers` and of the config's history entries its FROM gave it.
    pub base_layers: usize,
    pub base_history: usize,
}

/// Runs a whole build: every stage the target needs, independent ones concurrently.
pub fn build(
    req: &BuildRequest,
    store: &Store,
    registry: Option<&Client>,
    isolation: &dyn Isolation,
    reporter: &dyn Reporter,
) -> Result<BuildOutcome> {
    run_stages(req, store, registry, isolation, reporter, |ctx, target| {
        output::write_image(ctx, target)
    })
}

/// `hoist build --explain-cache`: every step of the stages the target needs reports a hit
/// (`Cached`) or the reason it would run (`CacheMiss`), and nothing runs or is written (base
/// images are still pulled: their digests are part of the keys). `req.explain_only` must be
/// set. A step after a miss is keyed on the key the missed step would have, so every key is
/// known; only a `RUN --mount=from=<stage>` of a stage with a missed step cannot be explained
/// (the files it binds are not there) and fails the explanation at that step.
pub fn explain(
    req: &BuildRequest,
    store: &Store,
    registry: Option<&Client>,
    isolation: &dyn Isolation,
    reporter: &dyn Reporter,
) -> Result<()> {
    run_stages(req, store, registry, isolation, reporter, |_, _| Ok(()))
}

/// Runs the stages the target needs, then `finish` on the target's result.
fn run_stages<T>(
    req: &BuildRequest,
    store: &Store,
    registry: Option<&Client>,
    isolation: &dyn Isolation,
    reporter: &dyn Reporter,
    finish: impl FnOnce(&Ctx, &StageResult) -> Result<T>,
) -> Result<T> {
    let ctx = Ctx {
        req,
        store,
        registry,
        isolation,
        reporter,
        cache: CacheIndex::open(&store.root().join("cache"))?,
        hashes: HashCache::open(&store.root().join("cache").join("content"))?,
        next_id: Mutex::new(0),
        used_keys: Mutex::new(Vec::new()),
        used_mounts: Mutex::new(Vec::new()),
        bases: Mutex::new(HashMap::new()),
        stream_off: AtomicBool::new(false),
    };
    // prune takes this lock exclusively: it never removes what a running build relies on.
    let _gc = store.gc_shared_lock()?;
    precheck_context_sources(&ctx)?;
    let results: Mutex<HashMap<usize, Arc<StageResult>>> = Mutex::new(HashMap::new());
    let failed: Mutex<Option<EngineError>> = Mutex::new(None);
    let cv = Condvar::new();
    let g = &req.graph;

    std::thread::scope(|s| {
        for &idx in &g.order {
            let (ctx, results, failed, cv) = (&ctx, &results, &failed, &cv);
            s.spawn(move || {
                let stage = &g.stages[idx];
                // Wait for the stages this one needs.
                let deps: HashMap<usize, Arc<StageResult>> = {
                    let mut r = results.lock().unwrap_or_else(|e| e.into_inner());
                    loop {
                        if failed.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
                            return;
                        }
                        if stage.deps.iter().all(|d| r.contains_key(d)) {
                            break stage
                                .deps
                                .iter()
                                .filter_map(|d| r.get(d).map(|v| (*d, v.clone())))
                                .collect();
                        }
                        r = cv.wait(r).unwrap_or_else(|e| e.into_inner());
                    }
                };
                match stage::run_stage(ctx, stage, &deps, &|| {
                    req.shared.is_cancelled() || failed.lock().map(|f| f.is_some()).unwrap_or(true)
                }) {
                    Ok(res) => {
                        results
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(idx, Arc::new(res));
                    }
                    Err(e) => {
                        let mut f = failed.lock().unwrap_or_else(|e| e.into_inner());
                        if f.is_none() && !matches!(e, EngineError::Cancelled) {
                            *f = Some(e);
                        }
                    }
                }
                // Wake waiters under the lock so none misses the change.
                let _guard = results.lock().unwrap_or_else(|e| e.into_inner());
                cv.notify_all();
            });
        }
    });

    if let Some(e) = failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    let _ = ctx.hashes.save();
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    let target = results.get(&g.target).ok_or(EngineError::Cancelled)?;
    finish(&ctx, target)
}

/// Fails fast, before any image is pulled or step run, when a COPY/ADD names a context file
/// that does not exist (or is excluded by .dockerignore), as BuildKit does when it loads the
/// context. Only sources that need no variable are checked here; the rest are checked when
/// their step runs. This also warms the content-hash cache.
fn precheck_context_sources(ctx: &Ctx) -> Result<()> {
    use crate::parser::Instruction;
    let g = &ctx.req.graph;
    let literal = |s: &str| {
        !s.contains('$') && !s.starts_with("<<") && !s.contains("://") && !s.starts_with("git@")
    };
    for &idx in &g.order {
        for step in &g.stages[idx].steps {
            let (Instruction::Copy(a) | Instruction::Add(a)) = &step.node.instruction else {
                continue;
            };
            if a.from.is_some() || a.exclude.iter().any(|e| e.contains('$')) {
                continue;
            }
            let sources: Vec<String> = a
                .sources
                .iter()
                .filter(|s| literal(s))
                .filter_map(|s| {
                    crate::parser::expand::expand_word(s, &|_: &str| None, g.escape).ok()
                })
                .collect();
            if sources.is_empty() {
                continue;
            }
            let req = crate::copy::CopyRequest {
                sources,
                dest: "/precheck/".into(),
                parents: a.parents,
                exclude: a.exclude.clone(),
                add: matches!(step.node.instruction, Instruction::Add(_)),
                ..Default::default()
            };
            let src = crate::copy::CopySource::Context {
                root: &ctx.req.context,
                ignore: &ctx.req.ignore,
            };
            if let Err(e) = crate::copy::content_key(&src, &req, &ctx.hashes) {
                return Err(EngineError::Step {
                    location: format!("{}:{}", ctx.req.dockerfile_name, step.node.span.start),
                    instruction: step.node.original.clone(),
                    error: Box::new(e.into()),
                });
            }
        }
    }
    Ok(())
}

//! Build orchestration: a validated [`BuildPlan`] → the graph and one engine pass per
//! platform → one assembled result → tags, cache export, push and `--output`s.
//!
//! The passes run in parallel and share a memo of steps (`passes`); one platform gives a
//! plain manifest, several an OCI image index (`index`), which tags, pushes and outputs then
//! carry. The CLI turns flags into a `BuildPlan` and renders what [`execute`] reports through
//! an [`Observer`]; nothing here prints. Below this module nothing branches on "several
//! platforms": each platform is one ordinary engine pass, as with BuildKit's per-platform
//! build functions joined at export.

pub mod annotations;
mod attest;
mod cache_io;
pub mod checks;
mod explain;
pub mod index;
pub mod outputs;
mod passes;
mod publish;
pub mod reproducible;

pub use annotations::Annotations;
pub use attest::context_source;
pub use cache_io::describe;
pub use outputs::{Output, OutputKind};

use cache_io::CacheTransfer;
pub use explain::explain;

use crate::cache::CacheIndex;
use crate::cache::transfer::CacheLocation;
use crate::engine::{BuildOutcome, BuildRequest, Reporter, Secret, SharedSteps};
use crate::executor::Network;
use crate::graph::{BuildGraph, GraphError, GraphOptions};
use crate::layers::Compression;
use crate::oci::{Digest, Platform};
use crate::parser::Dockerfile;
use crate::parser::dockerignore::Matcher;
use crate::registry::{Client, ImageRef, RegistryOptions, TimeLimit};
use crate::store::Store;
use index::IndexImage;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Errors of the orchestration itself (the modules it calls keep their own).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A layer of the built image could not be unpacked for a `local`/`tar` output.
    #[error("failed to resolve base image {reference}: {error}")]
    Snapshot {
        reference: String,
        error: Box<crate::Error>,
    },
    /// A Docker archive holds one image per name: several platforms cannot go there.
    #[error(
        "--output type=docker cannot hold a multi-platform image ({platforms}): docker load \
         takes one image per name; use type=oci, or build one --platform"
    )]
    DockerMultiPlatform { platforms: String },
    /// A stage whose RUN steps need a platform this machine cannot run.
    #[error("{stage}: {error}")]
    CannotRun {
        stage: String,
        error: crate::platform::PlatformError,
    },
    #[error(transparent)]
    Annotation(#[from] annotations::AnnotationError),
    #[error(transparent)]
    Attest(#[from] crate::attest::AttestError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Layers(#[from] crate::layers::LayersError),
    #[error(transparent)]
    Executor(#[from] crate::executor::ExecutorError),
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, BuildError>;

/// One platform's share of a build: the graph resolved for it.
#[derive(Debug, Clone)]
pub struct PlatformPlan {
    pub platform: Platform,
    pub graph: BuildGraph,
    pub graph_options: GraphOptions,
}

impl PlatformPlan {
    /// Resolves the Dockerfile's graph for `platform` (`TARGETPLATFORM` and friends).
    pub fn resolve(
        dockerfile: &Dockerfile,
        options: &GraphOptions,
        platform: Platform,
    ) -> std::result::Result<PlatformPlan, GraphError> {
        let graph_options = GraphOptions {
            platform: Some(platform.to_string_short()),
            ..options.clone()
        };
        let graph = crate::graph::build(dockerfile, &graph_options)?;
        Ok(PlatformPlan {
            platform,
            graph,
            graph_options,
        })
    }

    /// The platform each built stage with RUN steps runs them for (its `FROM --platform`,
    /// else this plan's), with the stage's name for errors.
    pub fn run_platforms(&self) -> Vec<(String, Platform)> {
        let g = &self.graph;
        g.order
            .iter()
            .filter_map(|&i| g.stages.get(i))
            .filter(|s| {
                s.steps
                    .iter()
                    .any(|st| matches!(st.node.instruction, crate::parser::Instruction::Run { .. }))
            })
            .map(|s| {
                let p = s
                    .platform
                    .as_deref()
                    .and_then(Platform::parse)
                    .unwrap_or_else(|| self.platform.clone());
                let name = s
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("stage {}", s.index));
                (format!("{name} (FROM line {})", s.from_node.span.start), p)
            })
            .collect()
    }
}

/// How to reach registries.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    pub options: RegistryOptions,
    /// Limit of one registry operation (a pull, a push, a cache import or export).
    pub operation_timeout: TimeLimit,
    /// Limit of a request that receives nothing.
    pub idle_timeout: TimeLimit,
}

/// A build, validated: everything [`execute`] needs, no flags left to parse.
pub struct BuildPlan {
    /// The store root.
    pub root: PathBuf,
    /// How errors name the Dockerfile (`Dockerfile`, a file name).
    pub dockerfile_name: String,
    /// Where the Dockerfile is (for its `.dockerignore`).
    pub dockerfile_path: PathBuf,
    pub dockerfile_text: String,
    /// The build context directory (absolute).
    pub context: PathBuf,
    /// `--build-context` names, prepared (see [`crate::context`]).
    pub contexts: Arc<crate::context::NamedContexts>,
    /// One entry per target platform; each is built by its own engine pass.
    pub platforms: Vec<PlatformPlan>,
    pub labels: BTreeMap<String, String>,
    pub no_cache: bool,
    pub no_cache_filter: Vec<String>,
    /// `--squash`: the final stage's own layers as one.
    pub squash: bool,
    pub pull: bool,
    pub network: Network,
    /// `--allow` entitlements.
    pub entitlements: crate::engine::Entitlements,
    /// `--add-host`, `--ulimit`, `--shm-size` for every RUN.
    pub sandbox: crate::executor::SandboxOptions,
    /// `--annotation`s, added to the manifest, index and descriptors when the result is made.
    pub annotations: annotations::Annotations,
    pub secrets: BTreeMap<String, Secret>,
    /// `--ssh` agent sockets by id.
    pub ssh: BTreeMap<String, PathBuf>,
    pub compression: Compression,
    pub source_date_epoch: Option<i64>,
    /// Names the image gets (`-t`, `--output name=`).
    pub tags: Vec<ImageRef>,
    /// Push every tag when the build is done.
    pub push: bool,
    /// `--output` destinations beyond the store.
    pub outputs: Vec<Output>,
    pub cache_from: Vec<CacheLocation>,
    pub cache_to: Vec<CacheLocation>,
    /// `--iidfile`: gets the image ID.
    pub iidfile: Option<PathBuf>,
    /// `--metadata-file`: gets BuildKit's metadata JSON.
    pub metadata_file: Option<PathBuf>,
    pub registry: RegistrySettings,
    /// Automatic garbage collection after the build (`builder.gc`); `None` = off.
    pub gc: Option<crate::gc::GcConfig>,
    /// `--explain-cache`: the CLI calls [`explain`] instead of [`execute`].
    pub explain_cache: bool,
    /// `--provenance`, `--sbom`, `--attest`: statements attached per platform.
    pub attest: crate::attest::Request,
    /// Where the context came from (provenance's `configSource`).
    pub context_source: crate::attest::provenance::ContextSource,
    /// `--sign key=PATH`: the key (loaded before the build) that signs what `--push` pushed,
    /// and its attestations.
    pub sign: Option<crate::sign::SigningKey>,
}

/// Something done besides the build steps, for the CLI to tell the user.
#[derive(Debug, Clone)]
pub enum Notice {
    /// The after-build garbage collection removed something.
    GarbageCollected(crate::gc::Outcome),
    /// The after-build garbage collection failed (the build itself succeeded).
    GarbageCollectionFailed(String),
    /// `--cache-from` imported.
    CacheImported {
        from: CacheLocation,
        stats: crate::cache::transfer::TransferStats,
    },
    /// `--cache-to` exported.
    CacheExported {
        to: CacheLocation,
        stats: crate::cache::transfer::TransferStats,
    },
    /// A pushed tag was signed (`--sign`): the signature (or attestations) pushed.
    Signed {
        reference: ImageRef,
        /// What the signature is about.
        subject: Digest,
        /// `REPO:sha256-<hex>.sig` / `.att`.
        tag: ImageRef,
        /// Statements signed; 0 for the image signature itself.
        statements: usize,
    },
    /// A tag was pushed: how many blobs went up and how many the registry already had.
    Pushed {
        reference: ImageRef,
        digest: Digest,
        uploaded: usize,
        existing: usize,
    },
    /// Something the user should know that did not stop the build (an SBOM's skipped file).
    Warning { message: String },
    /// The isolation chosen at start-up is weaker than the default: what it does not protect.
    Isolation { note: String },
}

/// Receives what a build reports (the CLI renders it; tests record it).
pub trait Observer {
    /// The step-progress sink of one platform's engine pass; dropped when the pass ends, so a
    /// live view is finished before later notices.
    fn engine_reporter(&self) -> Box<dyn Reporter + '_>;
    /// Something done outside the engine.
    fn notice(&self, notice: Notice);
}

/// The image a build produced, assembled over its platforms.
#[derive(Debug, Clone)]
pub enum Assembled {
    /// One platform: a plain image manifest.
    Manifest(Box<BuildOutcome>),
    /// Several platforms: an image index over their manifests (in `BuildResult::platforms`).
    Index(IndexImage),
}

impl Assembled {
    /// The digest names and pushes refer to (the manifest's, or the index's).
    pub fn digest(&self) -> &Digest {
        match self {
            Assembled::Manifest(o) => &o.manifest_digest,
            Assembled::Index(i) => &i.digest,
        }
    }
}

/// What [`execute`] returns.
#[derive(Debug, Clone)]
pub struct BuildResult {
    /// Each platform's engine result, in `plan.platforms` order.
    pub platforms: Vec<(Platform, BuildOutcome)>,
    /// The result they assemble into.
    pub image: Assembled,
}

/// Joins the per-platform results into one image: one platform is a plain manifest, several
/// an index stored in `store`.
/// With attestations the result is an index even for one platform (as BuildKit's).
fn assemble(
    store: &Store,
    outcomes: &[(Platform, BuildOutcome)],
    annotations: &Annotations,
    attestations: &[crate::oci::Descriptor],
) -> Result<Assembled> {
    match outcomes {
        [(_, one)] if attestations.is_empty() => Ok(Assembled::Manifest(Box::new(one.clone()))),
        several => Ok(Assembled::Index(index::store_index(
            store,
            several,
            annotations,
            attestations,
        )?)),
    }
}

/// Refuses, before any work, what cannot succeed: a Docker archive of several platforms, and
/// RUN steps for a platform this machine cannot run (naming the package that would).
fn precheck(plan: &BuildPlan) -> Result<()> {
    let platforms: Vec<Platform> = plan.platforms.iter().map(|p| p.platform.clone()).collect();
    plan.annotations.check(&platforms)?;
    if plan.platforms.len() > 1 && plan.outputs.iter().any(|o| o.kind == OutputKind::Docker) {
        return Err(BuildError::DockerMultiPlatform {
            platforms: plan
                .platforms
                .iter()
                .map(|p| p.platform.to_string_short())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    for p in &plan.platforms {
        for (stage, platform) in p.run_platforms() {
            crate::platform::check_runnable(std::slice::from_ref(&platform))
                .map_err(|error| BuildError::CannotRun { stage, error })?;
        }
    }
    Ok(())
}

/// Runs `plan`: imports cache, builds every platform, assembles the image, names it, exports
/// cache, pushes and writes the outputs. Progress and notices go to `observer`.
pub fn execute(plan: &BuildPlan, observer: &dyn Observer) -> crate::Result<BuildResult> {
    let invocation = attest::Invocation::start();
    precheck(plan)?;
    let ignore = crate::copy::context::load_ignore(&plan.context, &plan.dockerfile_path)?;
    let store = Store::open(&plan.root)?;
    let pool = store.sandbox_pool();
    let _ = crate::executor::cleanup_stale(&pool);
    let _ = crate::executor::install_signal_handlers(std::time::Duration::from_secs(2), |_| {});
    let mut registry = Client::new(plan.registry.options.clone())?;
    registry.set_timeouts(plan.registry.operation_timeout, plan.registry.idle_timeout);
    let counter = publish::PushCounter::install(&mut registry);
    let selected = crate::executor::select(pool)?;
    if let Some(note) = selected.note {
        observer.notice(Notice::Isolation { note });
    }
    let sandbox = selected.isolation;
    let cache_index = CacheIndex::open(&store.root().join("cache"))?;
    let caches = CacheTransfer {
        index: &cache_index,
        store: &store,
        registry: &registry,
    };
    if !plan.no_cache {
        caches.import(&plan.cache_from, observer)?;
    }
    // Held until the image is named, pushed and exported: the engine's own hold ends when it
    // returns, and a `prune` in that gap removed the new (still unnamed) image's blobs.
    let _gc = store.gc_shared_lock()?;
    let passes = passes::Passes {
        plan,
        store: &store,
        registry: &registry,
        isolation: &*sandbox,
        ignore: &ignore,
    };
    let mut outcomes = {
        // Dropped when the passes end, so a live view is finished before later notices.
        let reporter = observer.engine_reporter();
        passes.run(reporter.as_ref())?
    };
    plan.annotations.apply_to_manifests(&store, &mut outcomes)?;
    let attestations = attest::attach(&store, plan, &outcomes, &invocation, observer)?;
    let image = assemble(&store, &outcomes, &plan.annotations, &attestations)?;
    for t in &plan.tags {
        store.set_image(&t.to_string(), image.digest())?;
    }
    let keys: Vec<Digest> = outcomes
        .iter()
        .flat_map(|(_, o)| o.cache_keys.iter().cloned())
        .collect();
    let mount_ids: Vec<String> = outcomes
        .iter()
        .flat_map(|(_, o)| o.cache_mounts.iter().cloned())
        .collect();
    let used = crate::cache::transfer::UsedMounts {
        ids: &mount_ids,
        secrets: plan
            .secrets
            .iter()
            .map(|(id, s)| (id.as_str(), s.0.as_slice()))
            .collect(),
    };
    caches.export(&plan.cache_to, &keys, &used, observer)?;
    if plan.push {
        publish::push_tags(
            &registry,
            &store,
            &counter,
            image.digest(),
            &plan.tags,
            observer,
        )?;
        if let Some(key) = &plan.sign {
            publish::sign_tags(&registry, key, image.digest(), &plan.tags, observer)?;
        }
    }
    outputs::write_all(&store, &*sandbox, plan, &image, &outcomes)?;
    drop(_gc);
    if let Some(config) = &plan.gc {
        let protect = crate::gc::Protect {
            keys: keys.iter().cloned().collect(),
            images: vec![image.digest().clone()],
        };
        // The image is built and named: a failed collection is reported, never fatal.
        match crate::gc::collect_garbage(&store, config, &protect, crate::gc::When::AfterBuild) {
            Ok(Some(o)) => observer.notice(Notice::GarbageCollected(o)),
            Ok(None) => {}
            Err(e) => observer.notice(Notice::GarbageCollectionFailed(e.to_string())),
        }
    }
    Ok(BuildResult {
        platforms: outcomes,
        image,
    })
}

/// The engine's request for one platform of `plan`.
fn request(
    plan: &BuildPlan,
    p: &PlatformPlan,
    ignore: Matcher,
    shared: Arc<SharedSteps>,
) -> BuildRequest {
    BuildRequest {
        dockerfile_name: plan.dockerfile_name.clone(),
        dockerfile_text: plan.dockerfile_text.clone(),
        graph: p.graph.clone(),
        graph_options: p.graph_options.clone(),
        context: plan.context.clone(),
        ignore,
        contexts: plan.contexts.clone(),
        labels: plan.labels.clone(),
        no_cache: plan.no_cache,
        no_cache_filter: plan.no_cache_filter.clone(),
        squash: plan.squash,
        pull: plan.pull,
        network: plan.network,
        entitlements: plan.entitlements,
        sandbox: plan.sandbox.clone(),
        secrets: plan.secrets.clone(),
        ssh: plan.ssh.clone(),
        compression: plan.compression,
        source_date_epoch: plan.source_date_epoch,
        platform: p.platform.clone(),
        // A squashed image's layers are not the steps': nothing to stream while building.
        stream_push: if plan.push && !plan.squash {
            plan.tags.first().cloned()
        } else {
            None
        },
        shared,
        // Only `explain` asks for explain mode: `execute` always builds.
        explain_only: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{Descriptor, ImageConfig, Manifest, media};

    fn outcome(n: u8) -> BuildOutcome {
        BuildOutcome {
            manifest_digest: Digest::of(&[n]),
            manifest: Manifest {
                schema_version: 2,
                media_type: Some(media::OCI_MANIFEST.into()),
                config: Descriptor::new(media::OCI_CONFIG, Digest::of(&[n, 1]), 2),
                layers: vec![],
                annotations: None,
            },
            manifest_size: 1,
            config_digest: Digest::of(&[n, 1]),
            config: ImageConfig::default(),
            cache_keys: vec![],
            cache_mounts: vec![],
            trace: Default::default(),
        }
    }

    #[test]
    fn each_platform_gets_its_target_args_and_build_platform_stages_keep_theirs() {
        let df = crate::parser::parse(
            "FROM --platform=$BUILDPLATFORM busybox AS tools\nRUN make\n\
             FROM busybox:$TARGETARCH\nCOPY --from=tools /x /x\nRUN test\n",
        )
        .unwrap();
        let arm = Platform::parse("linux/arm/v7").unwrap();
        let p = PlatformPlan::resolve(&df, &GraphOptions::default(), arm.clone()).unwrap();
        let args = &p.graph.build_args;
        assert_eq!(args["TARGETPLATFORM"], "linux/arm/v7");
        assert_eq!(args["TARGETARCH"], "arm");
        assert_eq!(args["TARGETVARIANT"], "v7");
        let host = Platform::host();
        assert_eq!(args["BUILDPLATFORM"], host.to_string_short());
        assert_eq!(args["BUILDARCH"], host.architecture);
        // In FROM lines they need no ARG: the base names the target arch, the tools stage
        // the build platform.
        assert_eq!(
            p.graph.stages[1].base,
            crate::graph::Source::Image("busybox:arm".into())
        );
        let runs = p.run_platforms();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].1, host);
        assert_eq!(runs[1].1, arm);
    }

    #[test]
    fn one_platform_is_a_manifest_several_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let one = vec![(Platform::host(), outcome(1))];
        let a = assemble(&store, &one, &Annotations::default(), &[]).unwrap();
        assert!(matches!(a, Assembled::Manifest(_)));
        assert_eq!(a.digest(), &Digest::of(&[1]));
        let two = vec![
            (Platform::parse("linux/amd64").unwrap(), outcome(1)),
            (Platform::parse("linux/arm64").unwrap(), outcome(2)),
        ];
        let a = assemble(&store, &two, &Annotations::default(), &[]).unwrap();
        let Assembled::Index(i) = &a else {
            panic!("not an index: {a:?}")
        };
        let stored: crate::oci::Index =
            serde_json::from_slice(&store.read_blob(a.digest()).unwrap()).unwrap();
        assert_eq!(stored, i.index);
        assert_eq!(stored.manifests.len(), 2);
    }
}

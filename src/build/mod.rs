//! Build orchestration: a validated [`BuildPlan`] → the graph and one engine pass per
//! platform → one assembled result → tags, cache export, push and `--output`s.
//!
//! The CLI turns flags into a `BuildPlan` and renders what [`execute`] reports through an
//! [`Observer`]; nothing here prints. Below this module nothing branches on "several
//! platforms": each platform is one ordinary engine pass, as with BuildKit's per-platform
//! build functions joined at export.

mod cache_io;
mod emulation;
pub mod outputs;
mod publish;

pub use cache_io::describe;
pub use emulation::can_run;
pub use outputs::{Output, OutputKind};

use cache_io::CacheTransfer;

use crate::cache::CacheIndex;
use crate::cache::transfer::CacheLocation;
use crate::engine::{self, BuildOutcome, BuildRequest, Reporter, Secret};
use crate::executor::Network;
use crate::graph::{BuildGraph, GraphError, GraphOptions};
use crate::layers::Compression;
use crate::oci::{Digest, Platform};
use crate::parser::Dockerfile;
use crate::parser::dockerignore::Matcher;
use crate::registry::{Client, ImageRef, RegistryOptions, TimeLimit};
use crate::store::Store;
use std::collections::BTreeMap;
use std::path::PathBuf;

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
    /// Several platforms need an image index, which is not assembled yet.
    #[error("building for {count} platforms at once is not supported yet; give one --platform")]
    MultiPlatform { count: usize },
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
    /// One entry per target platform; each is built by its own engine pass.
    pub platforms: Vec<PlatformPlan>,
    pub labels: BTreeMap<String, String>,
    pub no_cache: bool,
    pub no_cache_filter: Vec<String>,
    pub pull: bool,
    pub network: Network,
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
}

/// Something done besides the build steps, for the CLI to tell the user.
#[derive(Debug, Clone)]
pub enum Notice {
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
    /// A tag was pushed: how many blobs went up and how many the registry already had.
    Pushed {
        reference: ImageRef,
        digest: Digest,
        uploaded: usize,
        existing: usize,
    },
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
    Manifest(BuildOutcome),
    // Several platforms: an image index over the per-platform manifests belongs here.
}

impl Assembled {
    /// The one image (manifest) of a single-platform build.
    pub fn image(&self) -> &BuildOutcome {
        match self {
            Assembled::Manifest(o) => o,
        }
    }

    /// The digest names and pushes refer to.
    pub fn digest(&self) -> &Digest {
        &self.image().manifest_digest
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

/// Joins the per-platform results into one image. One platform is a plain manifest; several
/// need an index, which is the next step (an error until then).
fn assemble(outcomes: &[(Platform, BuildOutcome)]) -> Result<Assembled> {
    match outcomes {
        [(_, one)] => Ok(Assembled::Manifest(one.clone())),
        several => Err(BuildError::MultiPlatform {
            count: several.len(),
        }),
    }
}

/// Runs `plan`: imports cache, builds every platform, assembles the image, names it, exports
/// cache, pushes and writes the outputs. Progress and notices go to `observer`.
pub fn execute(plan: &BuildPlan, observer: &dyn Observer) -> crate::Result<BuildResult> {
    // Fail before any work when the results could not be assembled (see `assemble`).
    if plan.platforms.len() != 1 {
        return Err(BuildError::MultiPlatform {
            count: plan.platforms.len(),
        }
        .into());
    }
    let ignore = crate::copy::context::load_ignore(&plan.context, &plan.dockerfile_path)?;
    let store = Store::open(&plan.root)?;
    let pool = store.sandbox_pool();
    let _ = crate::executor::cleanup_stale(&pool);
    let _ = crate::executor::install_signal_handlers(std::time::Duration::from_secs(2), |_| {});
    let mut registry = Client::new(plan.registry.options.clone())?;
    registry.set_timeouts(plan.registry.operation_timeout, plan.registry.idle_timeout);
    let counter = publish::PushCounter::install(&mut registry);
    let sandbox = crate::executor::OciRuntime::detect()?.with_pool(pool);
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
    let mut outcomes = Vec::with_capacity(plan.platforms.len());
    for p in &plan.platforms {
        let req = request(plan, p, ignore.clone());
        let reporter = observer.engine_reporter();
        let outcome = engine::build(&req, &store, Some(&registry), &sandbox, reporter.as_ref())?;
        drop(reporter);
        outcomes.push((p.platform.clone(), outcome));
    }
    let image = assemble(&outcomes)?;
    for t in &plan.tags {
        store.set_image(&t.to_string(), image.digest())?;
    }
    let keys: Vec<Digest> = outcomes
        .iter()
        .flat_map(|(_, o)| o.cache_keys.iter().cloned())
        .collect();
    caches.export(&plan.cache_to, &keys, observer)?;
    if plan.push {
        publish::push_tags(
            &registry,
            &store,
            &counter,
            image.digest(),
            &plan.tags,
            observer,
        )?;
    }
    outputs::write_all(&store, &sandbox, plan, image.image())?;
    Ok(BuildResult {
        platforms: outcomes,
        image,
    })
}

/// The engine's request for one platform of `plan`.
fn request(plan: &BuildPlan, p: &PlatformPlan, ignore: Matcher) -> BuildRequest {
    BuildRequest {
        dockerfile_name: plan.dockerfile_name.clone(),
        dockerfile_text: plan.dockerfile_text.clone(),
        graph: p.graph.clone(),
        graph_options: p.graph_options.clone(),
        context: plan.context.clone(),
        ignore,
        labels: plan.labels.clone(),
        no_cache: plan.no_cache,
        no_cache_filter: plan.no_cache_filter.clone(),
        pull: plan.pull,
        network: plan.network,
        secrets: plan.secrets.clone(),
        ssh: plan.ssh.clone(),
        compression: plan.compression,
        source_date_epoch: plan.source_date_epoch,
        platform: p.platform.clone(),
        stream_push: if plan.push {
            plan.tags.first().cloned()
        } else {
            None
        },
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
        }
    }

    #[test]
    fn one_platform_is_a_manifest_several_are_not_assembled_yet() {
        let one = vec![(Platform::host(), outcome(1))];
        let a = assemble(&one).unwrap();
        assert_eq!(a.digest(), &Digest::of(&[1]));
        let two = vec![
            (Platform::parse("linux/amd64").unwrap(), outcome(1)),
            (Platform::parse("linux/arm64").unwrap(), outcome(2)),
        ];
        let e = assemble(&two).unwrap_err();
        assert!(matches!(e, BuildError::MultiPlatform { count: 2 }), "{e}");
    }
}

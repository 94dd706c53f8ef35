//! Build checks for a plan (`hoist build --check`, and the warnings at the end of a build):
//! gathers what the pure `lint` module needs — the base images' env and shell, the
//! `.dockerignore` — and runs it. A base image's config comes from the store when it is
//! there, else (when allowed) from its registry: the manifest and the config blob only,
//! never a layer, as BuildKit's lint resolves image metadata only.

use super::BuildPlan;
use crate::graph::Source;
use crate::lint::{self, BaseConfig, CheckConfig, Ignore, Report};
use crate::oci::Platform;
use crate::registry::{Client, ImageRef};
use crate::store::Store;
use std::collections::{BTreeMap, BTreeSet};

/// Which stages to check and where base configs may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `--check`: every stage (only the target's when `--target` is given), configs fetched
    /// from registries when the store lacks them.
    Check,
    /// Before a build whose checks fail it (`error=true`): the stages it runs, fetching.
    BeforeBuild,
    /// After a build: the stages it ran, configs from the store only (they were just pulled).
    AfterBuild,
}

/// The check settings of `plan`: `BUILDKIT_DOCKERFILE_CHECK`, else the `# check=` directive.
/// One that does not parse fails the build, as in BuildKit.
pub fn settings(plan: &BuildPlan) -> crate::Result<CheckConfig> {
    let args = &plan.platforms[0].graph_options.build_args;
    let text = match args.get(lint::CHECK_BUILD_ARG) {
        Some(v) => Some(v.clone()),
        None => crate::parser::parse(&plan.dockerfile_text)
            .ok()
            .and_then(|d| d.directives.check),
    };
    CheckConfig::parse(text.as_deref().unwrap_or("")).map_err(|e| crate::Error::Dockerfile {
        location: plan.dockerfile_name.clone(),
        message: e.to_string(),
    })
}

/// What the checks found, and the base image that could not be resolved, if one could
/// not (BuildKit reports the findings before that point, then the error).
pub struct Checked {
    pub report: Report,
    pub error: Option<crate::Error>,
}

/// Runs the checks for `plan` (its first platform).
pub fn run(plan: &BuildPlan, scope: Scope) -> crate::Result<Checked> {
    let df = crate::parser::parse(&plan.dockerfile_text)?;
    let pp = &plan.platforms[0];
    let target = pp.graph_options.target.as_deref();
    let stages: Option<BTreeSet<usize>> = match (scope, target) {
        (Scope::Check, None) => None,
        _ => Some(pp.graph.order.iter().copied().collect()),
    };
    let store = Store::open(&plan.root)?;
    let registry = match scope {
        Scope::AfterBuild => None,
        _ => {
            let mut c = Client::new(plan.registry.options.clone())?;
            c.set_timeouts(plan.registry.operation_timeout, plan.registry.idle_timeout);
            Some(c)
        }
    };
    let mut bases = BTreeMap::new();
    let mut failed = None;
    for st in &pp.graph.stages {
        if stages.as_ref().is_some_and(|s| !s.contains(&st.index)) {
            continue;
        }
        let Source::Image(reference) = &st.base else {
            continue;
        };
        let platform = st
            .platform
            .as_deref()
            .and_then(Platform::parse)
            .unwrap_or_else(|| pp.platform.clone());
        let key = lint::base_key(reference, &platform);
        if bases.contains_key(&key) {
            continue;
        }
        match base_config(&store, registry.as_ref(), reference, &platform) {
            Ok(Some(c)) => {
                bases.insert(key, c);
            }
            Ok(None) => {}
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    let ignore = crate::copy::context::ignore_file(&plan.context, &plan.dockerfile_path)
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|text| {
            Some(Ignore {
                matcher: crate::parser::dockerignore::Matcher::parse(&text).ok()?,
                patterns: crate::parser::dockerignore::read_ignore_lines(&text),
            })
        });
    let host = Platform::host();
    let req = lint::Request {
        dockerfile: &df,
        text: &plan.dockerfile_text,
        build_args: &pp.graph_options.build_args,
        target_platform: &pp.platform,
        build_platform: &host,
        target,
        stages: stages.as_ref(),
        bases: &bases,
        ignore: ignore.as_ref(),
        bases_failed: failed.is_some(),
    };
    let report = lint::check(&req).map_err(|e| crate::Error::Dockerfile {
        location: plan.dockerfile_name.clone(),
        message: e.to_string(),
    })?;
    Ok(Checked {
        report,
        error: failed,
    })
}

/// A base image's env and shell: the store's copy for `platform`, else its registry's
/// config (when `registry` is given). `None` when neither has it.
fn base_config(
    store: &Store,
    registry: Option<&Client>,
    reference: &str,
    platform: &Platform,
) -> crate::Result<Option<BaseConfig>> {
    let r = ImageRef::parse(reference).map_err(crate::registry::RegistryError::from)?;
    let local = store
        .get_image(&r.to_string())?
        .filter(|d| store.has_blob(d))
        .and_then(|d| match store.load_index(&d) {
            Ok(Some(idx)) => idx.select(platform).map(|e| e.digest.clone()),
            _ => Some(d),
        })
        .and_then(|d| store.load_image(&d).ok())
        .map(|(_, c)| c)
        .filter(|c| {
            let have = Platform {
                os: c.os.clone(),
                architecture: c.architecture.clone(),
                variant: c.variant.clone(),
                ..Default::default()
            };
            platform.rank(&have).is_some()
        });
    let config = match (local, registry) {
        (Some(c), _) => c,
        (None, Some(client)) => client.pull_config(&r, platform, store)?,
        (None, None) => return Ok(None),
    };
    let platform = (!config.os.is_empty() && !config.architecture.is_empty()).then(|| Platform {
        os: config.os.clone(),
        architecture: config.architecture.clone(),
        variant: config.variant.clone(),
        ..Default::default()
    });
    Ok(Some(BaseConfig {
        env: config.config.env.unwrap_or_default(),
        shell: config.config.shell.unwrap_or_default(),
        platform,
    }))
}

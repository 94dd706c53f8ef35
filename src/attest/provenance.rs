//! The SLSA provenance v1 predicate with BuildKit's field layout
//! (`docs/attestations/slsa-definitions.md` of BuildKit), made from what hoist knew and did:
//! the request (frontend, build args, target, the context as a git URL and commit when it is
//! one), the images and remote sources it resolved, times and ids, and with `mode=max` every
//! step with its Dockerfile lines and layers.
//!
//! BuildKit's `buildConfig.llbDefinition` lists LLB operations; hoist has none, so each step
//! is the Dockerfile instruction it ran (`op.instruction`), a stage's start its source
//! (`op.source.identifier`, as BuildKit names images), chained by `inputs` as LLB steps are.
//! Secret and ssh values never enter: only ids, and only with `mode=max`, as in BuildKit.

use super::statement::docker_purl;
use super::{ProvenanceMode, ProvenanceRequest};
use crate::engine::trace::Trace;
use crate::oci::{Descriptor, Platform};
use crate::registry::ImageRef;
use base64::Engine as _;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// BuildKit's build type for SLSA v1.
pub const BUILD_TYPE: &str =
    "https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md";

/// Where the build context came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextSource {
    /// A local directory (BuildKit's `locals`: `context`, `dockerfile`).
    Local,
    /// A git repository at a commit.
    Git { url: String, commit: String },
    /// A downloaded file or archive with its sha256 digest.
    Http { url: String, sha256: String },
}

/// Everything a provenance says, gathered by the caller.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    pub request: &'a ProvenanceRequest,
    /// How the Dockerfile is named (`configSource.path`).
    pub dockerfile_name: &'a str,
    pub dockerfile_text: &'a str,
    pub context: ContextSource,
    /// `--build-arg`s as given.
    pub build_args: &'a BTreeMap<String, String>,
    /// `--label`s as given.
    pub labels: &'a BTreeMap<String, String>,
    pub target: Option<&'a str>,
    /// The platform this image was built for (`platform`; BuildKit counts it host-specific
    /// and leaves it out, but it is what the image is).
    pub platform: &'a Platform,
    /// `--no-cache`: BuildKit's `no-cache` arg (empty value = every step).
    pub no_cache: bool,
    /// Ids of `--secret` and `--ssh` (never their values).
    pub secret_ids: Vec<String>,
    pub ssh_ids: Vec<String>,
    pub trace: &'a Trace,
    pub builder_platform: Platform,
    pub invocation_id: &'a str,
    /// RFC 3339 times.
    pub started: &'a str,
    pub finished: &'a str,
}

/// The predicate (`https://slsa.dev/provenance/v1`).
pub fn predicate(i: &Input) -> Value {
    let max = i.request.mode == ProvenanceMode::Max;
    let mut config_source = Map::new();
    match &i.context {
        ContextSource::Local => {}
        ContextSource::Git { url, commit } => {
            config_source.insert("uri".into(), json!(url));
            config_source.insert("digest".into(), json!({"sha1": commit}));
        }
        ContextSource::Http { url, sha256 } => {
            config_source.insert("uri".into(), json!(url));
            config_source.insert("digest".into(), json!({"sha256": sha256}));
        }
    }
    config_source.insert("path".into(), json!(i.dockerfile_name));

    // The frontend's arguments BuildKit keeps (host-specific ones such as the platform and
    // cache imports are left out). `mode=min` drops build args and labels, as BuildKit does,
    // and then says the request is incomplete.
    let mut args = BTreeMap::new();
    let mut scrubbed = false;
    for (k, v) in i.build_args {
        if max {
            args.insert(format!("build-arg:{k}"), v.clone());
        } else {
            scrubbed = true;
        }
    }
    for (k, v) in i.labels {
        if max {
            args.insert(format!("label:{k}"), v.clone());
        } else {
            scrubbed = true;
        }
    }
    if let Some(t) = i.target {
        args.insert("target".into(), t.to_string());
    }
    args.insert("platform".into(), i.platform.normalized().to_string_short());
    if i.no_cache {
        args.insert("no-cache".into(), String::new());
    }
    let mut request = Map::new();
    request.insert("frontend".into(), json!("dockerfile.v0"));
    if !args.is_empty() {
        request.insert("args".into(), json!(args));
    }
    if max && !i.secret_ids.is_empty() {
        let s: Vec<Value> = i.secret_ids.iter().map(|id| json!({"id": id})).collect();
        request.insert("secrets".into(), json!(s));
    }
    if max && !i.ssh_ids.is_empty() {
        let s: Vec<Value> = i.ssh_ids.iter().map(|id| json!({"id": id})).collect();
        request.insert("ssh".into(), json!(s));
    }
    let local = i.context == ContextSource::Local;
    if local {
        request.insert(
            "locals".into(),
            json!([{"name": "context"}, {"name": "dockerfile"}]),
        );
    }

    let mut internal = Map::new();
    let steps = Steps::of(i.trace);
    if max {
        internal.insert(
            "buildConfig".into(),
            json!({"llbDefinition": steps.definition()}),
        );
    }
    internal.insert(
        "builderPlatform".into(),
        json!(i.builder_platform.normalized().to_string_short()),
    );

    let mut deps: Vec<Value> = i
        .trace
        .images
        .iter()
        .map(|im| {
            let platform = Platform::parse(&im.platform);
            let uri = ImageRef::parse(&im.reference)
                .map(|r| docker_purl(&r, platform.as_ref()))
                .unwrap_or_else(|_| format!("pkg:docker/{}", im.reference));
            json!({"uri": uri, "digest": {im.digest.algorithm(): im.digest.hex()}})
        })
        .collect();
    // The git context, then ADD's git and http sources.
    let context = match &i.context {
        ContextSource::Git { url, commit } => Some((url.clone(), ("sha1", commit.clone()))),
        _ => None,
    };
    deps.extend(
        context
            .iter()
            .map(|(u, (a, h))| json!({"uri": u, "digest": {*a: h}})),
    );
    deps.extend(
        i.trace
            .sources
            .iter()
            .map(|m| json!({"uri": m.uri, "digest": {m.digest.0.clone(): m.digest.1}})),
    );
    let mut definition = Map::new();
    definition.insert("buildType".into(), json!(BUILD_TYPE));
    definition.insert(
        "externalParameters".into(),
        json!({"configSource": config_source, "request": request}),
    );
    definition.insert("internalParameters".into(), Value::Object(internal));
    if !deps.is_empty() {
        definition.insert("resolvedDependencies".into(), json!(deps));
    }

    let mut bk = Map::new();
    if max {
        let data = base64::engine::general_purpose::STANDARD.encode(i.dockerfile_text);
        bk.insert(
            "source".into(),
            json!({
                "locations": steps.locations(),
                "infos": [{
                    "filename": i.dockerfile_name,
                    "language": "Dockerfile",
                    "data": data,
                }],
            }),
        );
        let layers = steps.layers();
        if !layers.is_empty() {
            bk.insert("layers".into(), Value::Object(layers));
        }
    }
    let mut metadata = Map::new();
    metadata.insert("invocationId".into(), json!(i.invocation_id));
    metadata.insert("startedOn".into(), json!(i.started));
    metadata.insert("finishedOn".into(), json!(i.finished));
    metadata.insert("buildkit_metadata".into(), Value::Object(bk));
    metadata.insert(
        "buildkit_completeness".into(),
        json!({
            "request": !scrubbed,
            // A local context is not a resolvable dependency: BuildKit says incomplete.
            "resolvedDependencies": !local,
        }),
    );
    if i.request.reproducible {
        metadata.insert("buildkit_reproducible".into(), json!(true));
    }
    json!({
        "buildDefinition": definition,
        "runDetails": {
            "builder": {
                "id": i.request.builder_id.clone().unwrap_or_default(),
                "version": {"hoist": env!("CARGO_PKG_VERSION")},
            },
            "metadata": metadata,
        },
    })
}

/// The trace as numbered steps: per stage (in Dockerfile order) its start, then its
/// instructions.
struct Steps<'a> {
    trace: &'a Trace,
    /// (stage index, None = the stage's start | Some(step record index)).
    order: Vec<(usize, Option<usize>)>,
}

impl<'a> Steps<'a> {
    fn of(trace: &'a Trace) -> Steps<'a> {
        let mut stages: Vec<usize> = trace.stages.iter().map(|s| s.index).collect();
        stages.sort();
        stages.dedup();
        let mut order = vec![];
        for s in stages {
            order.push((s, None));
            for (n, r) in trace.steps.iter().enumerate() {
                if r.stage == s {
                    order.push((s, Some(n)));
                }
            }
        }
        Steps { trace, order }
    }

    fn id(n: usize) -> String {
        format!("step{n}")
    }

    /// The last step of stage `s` (its output).
    fn last_of(&self, s: usize) -> Option<usize> {
        self.order.iter().rposition(|(st, _)| *st == s)
    }

    fn definition(&self) -> Vec<Value> {
        let mut out = vec![];
        for (n, (s, rec)) in self.order.iter().enumerate() {
            let mut step = Map::new();
            step.insert("id".into(), json!(Self::id(n)));
            match rec {
                None => {
                    let base = self
                        .trace
                        .stages
                        .iter()
                        .find(|r| r.index == *s)
                        .map(|r| r.base.clone())
                        .unwrap_or_default();
                    let source = match base.strip_prefix("stage ") {
                        Some(_) => None,
                        None if base == "scratch" => None,
                        None => Some(self.image_identifier(&base)),
                    };
                    let mut op = Map::new();
                    op.insert("stage".into(), json!(s));
                    if let Some(id) = source {
                        op.insert("source".into(), json!({"identifier": id}));
                    }
                    step.insert("op".into(), Value::Object(op));
                    if let Some(parent) = base
                        .strip_prefix("stage ")
                        .and_then(|p| p.parse::<usize>().ok())
                        .and_then(|p| self.last_of(p))
                    {
                        step.insert("inputs".into(), json!([format!("step{parent}:0")]));
                    }
                }
                Some(r) => {
                    let rec = &self.trace.steps[*r];
                    step.insert("op".into(), json!({"stage": s, "instruction": rec.text}));
                    let mut inputs = vec![format!("step{}:0", n - 1)];
                    inputs.extend(
                        rec.from_stages
                            .iter()
                            .filter_map(|st| self.last_of(*st))
                            .map(|i| format!("step{i}:0")),
                    );
                    step.insert("inputs".into(), json!(inputs));
                }
            }
            out.push(Value::Object(step));
        }
        out
    }

    /// `docker-image://REF@DIGEST` for a stage's base image, as BuildKit's source ops.
    fn image_identifier(&self, base: &str) -> String {
        let normalized = ImageRef::parse(base)
            .map(|r| r.to_string())
            .unwrap_or_else(|_| base.to_string());
        match self.trace.images.iter().find(|i| i.reference == normalized) {
            Some(i) if !normalized.contains('@') => {
                format!("docker-image://{normalized}@{}", i.digest)
            }
            _ => format!("docker-image://{normalized}"),
        }
    }

    fn locations(&self) -> Value {
        let mut m = Map::new();
        for (n, (s, rec)) in self.order.iter().enumerate() {
            let (start, end) = match rec {
                Some(r) => self.trace.steps[*r].lines,
                None => match self.trace.stages.iter().find(|r| r.index == *s) {
                    Some(st) => (st.line, st.line),
                    None => continue,
                },
            };
            m.insert(
                Self::id(n),
                json!({"locations": [{"ranges": [{"start": {"line": start}, "end": {"line": end}}]}]}),
            );
        }
        Value::Object(m)
    }

    /// Each step that added a layer: the stage's layer chain up to it.
    fn layers(&self) -> Map<String, Value> {
        let mut m = Map::new();
        for (n, (s, rec)) in self.order.iter().enumerate() {
            let Some(layer) = rec.and_then(|r| self.trace.steps[r].layer.as_ref()) else {
                continue;
            };
            let Some(stage) = self.trace.stages.iter().find(|r| r.index == *s) else {
                continue;
            };
            let Some(pos) = stage.layers.iter().position(|l| l.digest == layer.digest) else {
                continue;
            };
            let chain: Vec<Value> = stage.layers[..=pos].iter().map(descriptor).collect();
            m.insert(format!("{}:0", Self::id(n)), json!([chain]));
        }
        m
    }
}

fn descriptor(d: &Descriptor) -> Value {
    json!({"mediaType": d.media_type, "digest": d.digest.to_string(), "size": d.size})
}

#[cfg(test)]
mod tests;

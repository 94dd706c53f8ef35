//! `hoist build`: flags (docker build compatible), their validation into a
//! [`BuildPlan`](crate::build::BuildPlan), and the progress and summary lines around
//! [`build::execute`](crate::build::execute).

use super::{GlobalArgs, progress};
use crate::build::{
    BuildPlan, Notice, Output, OutputKind, PlatformPlan, RegistrySettings, describe,
};
use crate::cache::transfer::CacheLocation;
use crate::engine::{EngineError, Secret};
use crate::executor::Network;
use crate::graph::GraphOptions;
use crate::layers::Compression;
use crate::oci::Platform;
use crate::registry::{ImageRef, RegistryOptions};
use crate::store::Store;
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// `hoist build` flags.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Name and tag (repeatable)
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Dockerfile path (default CONTEXT/Dockerfile; `-` reads stdin)
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Build-time variable KEY=VALUE, or KEY to take it from the environment
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Target platforms os/arch[/variant], comma-separated (default
    /// `$DOCKER_DEFAULT_PLATFORM`, else the host's); several give one image index
    #[arg(long)]
    pub platform: Option<String>,
    /// Do not use the build cache
    #[arg(long)]
    pub no_cache: bool,
    /// Do not use the cache for these stages
    #[arg(long = "no-cache-filter")]
    pub no_cache_filter: Vec<String>,
    /// Squash the final stage's own layers into one layer on top of its base (docker's
    /// legacy flag): same filesystem and config; history marks the squashed steps empty
    #[arg(long)]
    pub squash: bool,
    /// Reproducible output: SOURCE_DATE_EPOCH (else the context's git HEAD commit time, else
    /// 0) clamps every timestamp in the layers the build makes, the history and the config
    #[arg(long)]
    pub reproducible: bool,
    /// Always pull base images
    #[arg(long)]
    pub pull: bool,
    /// Push the image after building
    #[arg(long)]
    pub push: bool,
    /// Set metadata on the image KEY=VALUE
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Network for RUN: host (default) or none
    #[arg(long)]
    pub network: Option<String>,
    /// Secret to expose to RUN: id=ID,src=PATH or id=ID,env=VAR
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
    /// SSH agent socket or keys to expose: default|ID[=PATH]
    #[arg(long = "ssh")]
    pub ssh: Vec<String>,
    /// Write the image ID to this file
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// Write build metadata (JSON) to this file
    #[arg(long = "metadata-file")]
    pub metadata_file: Option<PathBuf>,
    /// Output: type=image|registry|oci|docker|local|tar[,dest=PATH]
    #[arg(short = 'o', long = "output")]
    pub outputs: Vec<String>,
    /// Layer compression: gzip (default) or zstd[,level=N]
    #[arg(long)]
    pub compression: Option<String>,
    /// Print only the image ID
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Progress output: auto, tty, plain, json
    #[arg(long, default_value = "auto")]
    pub progress: String,
    /// Import build cache: type=registry,ref=IMAGE or type=local,src=DIR
    #[arg(long = "cache-from")]
    pub cache_from: Vec<String>,
    /// Export build cache: type=registry,ref=IMAGE or type=local,dest=DIR
    #[arg(long = "cache-to")]
    pub cache_to: Vec<String>,
    /// Parse and plan only; print the plan
    #[arg(long)]
    pub dry_run: bool,
    /// Say for every step whether it would be CACHED or why it would miss; build nothing
    #[arg(long)]
    pub explain_cache: bool,
    /// Named context NAME=VALUE (repeatable): a directory, docker-image://REF,
    /// oci-layout://DIR[:TAG|@DIGEST], target:STAGE, a git URL or an http(s) tarball
    #[arg(long = "build-context")]
    pub build_contexts: Vec<String>,
    /// Evaluate the build checks and exit (non-zero when one fires); builds nothing
    #[arg(long)]
    pub check: bool,
    #[command(flatten)]
    pub sandbox: super::build_flags::BuildSandboxArgs,
    #[command(flatten)]
    pub attest: super::attest_flags::AttestArgs,
    #[command(flatten)]
    pub timeouts: super::RegistryTimeoutArgs,
    /// Build context: a directory, a git URL (`URL#REF:SUBDIR`), an http(s) tarball or
    /// Dockerfile, or `-` for a context tar (or a lone Dockerfile) on stdin
    pub context: String,
}

/// Runs `hoist build`.
pub fn run(g: &GlobalArgs, a: BuildArgs) -> crate::Result<ExitCode> {
    let usage = |m: String| crate::Error::Usage(m);
    let mode = progress::Mode::parse(&a.progress, a.quiet).ok_or_else(|| {
        usage(format!(
            "--progress {:?}: expected auto, tty, plain or json",
            a.progress
        ))
    })?;
    // A context read from stdin lives in this temp dir until the build is done.
    let mut stdin_ctx: Option<(Store, tempfile::TempDir)> = None;
    let plan = match validate(g, &a, &mut stdin_ctx)? {
        Validated::DryRun(text) => {
            out!("{text}");
            return Ok(ExitCode::SUCCESS);
        }
        Validated::Build(plan) => plan,
    };
    if super::check::parse_call(a.check, a.sandbox.call.as_deref())? == super::check::Call::Check {
        return super::check::run(&plan);
    }
    if plan.explain_cache {
        crate::build::explain(&plan, &Console { mode })?;
        return Ok(ExitCode::SUCCESS);
    }
    super::check::before_build(&plan)?;
    let result = match crate::build::execute(&plan, &Console { mode }) {
        Ok(r) => r,
        Err(e) => {
            if let crate::Error::Engine(e) = &e {
                report_failure(&plan, e);
            }
            return Err(e);
        }
    };
    match &result.image {
        crate::build::Assembled::Manifest(image) if a.quiet => {
            outln!("{}", image.config_digest)
        }
        crate::build::Assembled::Manifest(image) => errln!(
            "built {} (manifest {})",
            image.config_digest,
            image.manifest_digest
        ),
        crate::build::Assembled::Index(index) if a.quiet => outln!("{}", index.digest),
        crate::build::Assembled::Index(index) => {
            let each: Vec<String> = result
                .platforms
                .iter()
                .map(|(p, o)| format!("{} {}", p.to_string_short(), o.manifest_digest))
                .collect();
            errln!("built index {} ({})", index.digest, each.join(", "));
        }
    }
    super::check::after_build(&plan, mode);
    Ok(ExitCode::SUCCESS)
}

/// What the flags ask for once checked.
// Built once per command: the plan's size does not matter.
#[allow(clippy::large_enum_variant)]
enum Validated {
    /// `--dry-run`: the rendered plan, to print.
    DryRun(String),
    Build(BuildPlan),
}

/// Checks every flag and reads the Dockerfile: the second step of parsing (clap's raw flags
/// → a [`BuildPlan`]). Dockerfile errors are printed with their excerpt here.
fn validate(
    g: &GlobalArgs,
    a: &BuildArgs,
    stdin_ctx: &mut Option<(Store, tempfile::TempDir)>,
) -> crate::Result<Validated> {
    let usage = |m: String| crate::Error::Usage(m);
    let root = g.store_root();

    // Remote and named contexts (`crate::context`): fetched before anything else reads them.
    let contexts = crate::context::prepare(&crate::context::Flags {
        context: &a.context,
        file: a.file.as_deref(),
        build_contexts: &a.build_contexts,
        build_args: &a.build_args,
        ssh: &a.ssh,
        secrets: &|| {
            a.secrets
                .iter()
                .filter_map(|s| parse_secret(s).ok())
                .map(|(id, s)| (id, s.0))
                .collect()
        },
        store_root: &root,
    })?;

    // Context: a directory, a URL fetched above, or a tar (or a Dockerfile) on stdin.
    let context: PathBuf = if let Some(dir) = &contexts.main {
        dir.clone()
    } else if a.context == "-" {
        if a.file.as_deref() == Some("-") {
            return Err(usage(
                "cannot read both the context and the Dockerfile from stdin".into(),
            ));
        }
        // The store stays open with the dir: its session (the dir's parent) lives as long.
        let store = Store::open(&root)?;
        let tmp = store.tmp_dir()?;
        let dir = crate::copy::context::stdin_context(std::io::stdin(), tmp.path())?;
        *stdin_ctx = Some((store, tmp));
        dir
    } else {
        let p = PathBuf::from(&a.context);
        if !p.is_dir() {
            return Err(usage(format!(
                "unable to prepare context: path {:?} not found or not a directory",
                a.context
            )));
        }
        // Absolute, so bind-mount sources resolved in it stay valid from the sandbox's
        // working directory (a relative `.` would point into the runtime bundle).
        std::path::absolute(&p).map_err(|e| {
            usage(format!(
                "unable to prepare context: path {:?}: {e}",
                a.context
            ))
        })?
    };

    // The Dockerfile.
    let (df_name, df_path, text) = match a.file.as_deref() {
        Some("-") => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|source| {
                crate::Error::Io {
                    path: "<stdin>".into(),
                    source,
                }
            })?;
            ("Dockerfile".to_string(), context.join("Dockerfile"), s)
        }
        f => {
            let p = match f {
                // With a stdin context, `-f` names a file inside it (as `docker build -`).
                _ if contexts.dockerfile.is_some() => {
                    contexts.dockerfile.clone().unwrap_or_default()
                }
                Some(f) if a.context == "-" => context.join(f.trim_start_matches('/')),
                Some(f) => PathBuf::from(f),
                None => context.join("Dockerfile"),
            };
            let text = std::fs::read_to_string(&p).map_err(|source| crate::Error::Io {
                path: p.clone(),
                source,
            })?;
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "Dockerfile".into());
            (name, p, text)
        }
    };

    let df = match crate::parser::parse(&text) {
        Ok(df) => df,
        Err(e) => {
            let crate::parser::ParseError::Syntax { line, message } = &e;
            let span = crate::parser::Span {
                start: *line,
                end: *line,
            };
            errln!("{}", redacted_render(&df_name, &text, span, message));
            return Err(crate::Error::Dockerfile {
                location: format!("{df_name}:{line}"),
                message: message.clone(),
            });
        }
    };

    let mut build_args = BTreeMap::new();
    for kv in &a.build_args {
        match kv.split_once('=') {
            Some((k, v)) => {
                build_args.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(kv) {
                    build_args.insert(kv.clone(), v);
                }
            }
        }
    }
    // `--call outline|targets` answers from the Dockerfile instead of building.
    if let Some(out) = a
        .sandbox
        .call_output(&df, &text, a.target.as_deref(), &build_args)?
    {
        return Ok(Validated::DryRun(out));
    }
    // `--platform`, else `$DOCKER_DEFAULT_PLATFORM` (as docker build), else the host's.
    let platforms = match (&a.platform, std::env::var("DOCKER_DEFAULT_PLATFORM")) {
        (Some(p), _) => Platform::parse_list(p, "--platform")?,
        (None, Ok(p)) if !p.trim().is_empty() => {
            Platform::parse_list(&p, "DOCKER_DEFAULT_PLATFORM")?
        }
        _ => vec![Platform::host()],
    };
    let graph_options = GraphOptions {
        build_args,
        target: a.target.clone(),
        platform: None,
        contexts: contexts.named.refs().clone(),
    };
    // One graph per target platform (TARGETPLATFORM and friends differ); the build module
    // runs one engine pass for each and joins them into an index.
    let mut platform_plans = Vec::with_capacity(platforms.len());
    for platform in platforms {
        match PlatformPlan::resolve(&df, &graph_options, platform.clone()) {
            Ok(p) => platform_plans.push(p),
            Err(e) => {
                if super::check::parse_call(a.check, a.sandbox.call.as_deref())?
                    == super::check::Call::Check
                {
                    super::check::before_resolve_error(
                        &df,
                        &text,
                        &df_name,
                        &graph_options,
                        &platform,
                    );
                }
                let crate::graph::GraphError::Invalid { line, message } = &e;
                let span = crate::parser::Span {
                    start: *line,
                    end: *line,
                };
                if *line > 0 {
                    errln!("{}", redacted_render(&df_name, &text, span, message));
                    return Err(crate::Error::Dockerfile {
                        location: format!("{df_name}:{line}"),
                        message: message.clone(),
                    });
                }
                return Err(e.into());
            }
        }
    }
    // RUN steps that need an entitlement are refused before anything runs, as BuildKit's.
    let entitlements = a.sandbox.entitlements(a.network.as_deref())?;
    for p in &platform_plans {
        if let Err((line, e)) = crate::engine::check_entitlements(entitlements, &p.graph) {
            return Err(dockerfile_error(&df_name, &text, line, &e.to_string()));
        }
    }
    if a.dry_run {
        // Each platform's plan, headed by its platform when there are several.
        let several = platform_plans.len() > 1;
        let text: Vec<String> = platform_plans
            .iter()
            .map(|p| {
                let plan = crate::graph::plan::render_with_escape(&p.graph, df.directives.escape);
                if several {
                    format!("# platform {}\n{plan}", p.platform.to_string_short())
                } else {
                    plan
                }
            })
            .collect();
        return Ok(Validated::DryRun(text.join("\n")));
    }

    let tags: Vec<ImageRef> = a
        .tags
        .iter()
        .map(|t| ImageRef::parse(t).map_err(|e| usage(format!("-t {t}: {e}"))))
        .collect::<crate::Result<_>>()?;
    let mut labels = BTreeMap::new();
    for l in &a.labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let mut secrets = BTreeMap::new();
    for s in &a.secrets {
        let (id, secret) = parse_secret(s).map_err(usage)?;
        secrets.insert(id, secret);
    }
    let mut ssh = BTreeMap::new();
    for s in &a.ssh {
        let (id, path) = match s.split_once('=') {
            Some((id, p)) => (id.to_string(), PathBuf::from(p)),
            None => match std::env::var_os("SSH_AUTH_SOCK") {
                Some(p) => (s.clone(), PathBuf::from(p)),
                None => {
                    return Err(usage(format!(
                        "--ssh {s}: SSH_AUTH_SOCK is not set; give a socket path as --ssh {s}=PATH"
                    )));
                }
            },
        };
        ssh.insert(id, path);
    }
    let compression = match &a.compression {
        Some(c) => Compression::parse(c).map_err(|e| usage(format!("--compression {c}: {e}")))?,
        None => Compression::default(),
    };
    let network = match a.network.as_deref() {
        None | Some("default") | Some("host") => Network::Host,
        Some("none") => Network::None,
        Some(n) => {
            return Err(usage(format!(
                "--network {n}: expected host, none or default"
            )));
        }
    };
    let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => Some(v.parse::<i64>().map_err(|_| {
            usage(format!(
                "SOURCE_DATE_EPOCH={v:?} is not a number of seconds"
            ))
        })?),
        _ => None,
    };
    let source_date_epoch = match a.reproducible {
        true => Some(crate::build::reproducible::epoch(
            &context,
            contexts.commit.as_ref().and_then(|c| c.time),
            source_date_epoch,
        )),
        false => source_date_epoch,
    };
    let mut push = a.push;
    let mut tags = tags;
    let mut outputs: Vec<Output> = Vec::new();
    for o in &a.outputs {
        // `-o DIR` is `type=local,dest=DIR`, as with buildx.
        let kv = if o.contains('=') {
            parse_kv(o)
        } else {
            BTreeMap::from([
                ("type".to_string(), "local".to_string()),
                ("dest".to_string(), o.clone()),
            ])
        };
        for n in kv.get("name").map(|n| n.split(';')).into_iter().flatten() {
            tags.push(ImageRef::parse(n).map_err(|e| usage(format!("--output name={n}: {e}")))?);
        }
        match kv.get("type").map(String::as_str) {
            Some("image") => push |= kv.get("push").is_some_and(|v| v == "true"),
            Some("registry") => push = true,
            Some(t) => {
                let kind = OutputKind::parse(t).ok_or_else(|| {
                    usage(format!(
                        "--output {o}: unknown type {t:?} (use image, registry, local, tar, oci or docker)"
                    ))
                })?;
                let dest = kv
                    .get("dest")
                    .filter(|d| !d.is_empty())
                    .ok_or_else(|| usage(format!("--output {o}: type={t} needs dest=PATH")))?;
                if kind == OutputKind::Local && dest == "-" {
                    return Err(usage(format!(
                        "--output {o}: type=local writes a directory; use type=tar,dest=- for stdout"
                    )));
                }
                outputs.push(Output {
                    kind,
                    dest: PathBuf::from(dest),
                });
            }
            None => return Err(usage(format!("--output {o}: missing type="))),
        }
    }
    let cache_from: Vec<CacheLocation> = a
        .cache_from
        .iter()
        .map(|c| CacheLocation::parse(c, false).map_err(usage))
        .collect::<crate::Result<_>>()?;
    let cache_to: Vec<CacheLocation> = a
        .cache_to
        .iter()
        .map(|c| CacheLocation::parse(c, true).map_err(usage))
        .collect::<crate::Result<_>>()?;
    // Loaded now, so a bad key or password fails before any work.
    let sign = match &a.attest.sign {
        Some(_) if !push => {
            return Err(usage(
                "--sign signs what --push pushes: add --push (and -t NAME)".into(),
            ));
        }
        Some(v) => Some(crate::sign::signing_key_from_flag(v)?),
        None => None,
    };
    if push && tags.is_empty() {
        return Err(usage("--push needs a name: add -t NAME".into()));
    }

    let plan = BuildPlan {
        root,
        dockerfile_name: df_name,
        dockerfile_path: df_path,
        dockerfile_text: text,
        context,
        contexts: contexts.named,
        platforms: platform_plans,
        labels,
        no_cache: a.no_cache,
        no_cache_filter: a.no_cache_filter.clone(),
        squash: a.squash,
        pull: a.pull,
        network,
        entitlements,
        sandbox: a.sandbox.sandbox()?,
        annotations: a.sandbox.annotations()?,
        secrets,
        ssh,
        compression,
        source_date_epoch,
        tags,
        push,
        outputs,
        cache_from,
        cache_to,
        iidfile: a.iidfile.clone(),
        metadata_file: a.metadata_file.clone(),
        explain_cache: a.explain_cache,
        attest: a.attest.request()?,
        sign,
        context_source: crate::build::context_source(&a.context, contexts.commit.as_ref()),
        gc: match g.gc_config() {
            Ok(c) => Some(c),
            Err(e) => {
                errln!("WARNING: {e}; automatic garbage collection is off for this build");
                None
            }
        },
        registry: RegistrySettings {
            options: RegistryOptions {
                insecure: g.insecure_registries(),
                docker_config_dir: None,
            },
            operation_timeout: a.timeouts.registry_timeout,
            idle_timeout: a.timeouts.registry_idle_timeout,
        },
    };
    Ok(Validated::Build(plan))
}

/// Renders a build's progress (`--progress`) and prints its notices.
struct Console {
    mode: progress::Mode,
}

impl crate::build::Observer for Console {
    fn engine_reporter(&self) -> Box<dyn crate::engine::Reporter + '_> {
        Box::new(progress::Printer::new(self.mode))
    }

    fn notice(&self, notice: Notice) {
        let summaries = self.mode != progress::Mode::Quiet && self.mode != progress::Mode::Json;
        match notice {
            Notice::CacheImported { from, stats } if summaries => {
                errln!("imported build cache from {}: {stats}", describe(&from))
            }
            Notice::CacheExported { to, stats } if summaries => {
                errln!("exported build cache to {}: {stats}", describe(&to))
            }
            Notice::Pushed {
                reference,
                digest,
                uploaded,
                existing,
            } if self.mode != progress::Mode::Quiet => errln!(
                "pushed {reference}@{digest} ({uploaded} blobs uploaded, {existing} already in the registry)"
            ),
            Notice::Signed {
                reference,
                subject,
                tag,
                statements,
            } if self.mode != progress::Mode::Quiet => match statements {
                0 => errln!("signed {reference}@{subject}: {tag}"),
                n => errln!("signed {n} attestation(s) of {reference}@{subject}: {tag}"),
            },
            Notice::Warning { message } => errln!("WARNING: {message}"),
            // What the isolation does not protect is said even with --quiet.
            Notice::Isolation { note } => errln!("{note}"),
            Notice::GarbageCollected(o) if summaries => errln!(
                "garbage collection: removed {} build cache entries, {} cache mounts, {} images \
                 ({} blobs, {} snapshots); freed {} (store {} -> {}, limit {})",
                o.cache_entries,
                o.cache_mounts,
                o.images,
                o.blobs,
                o.snapshots,
                super::images::human_size(o.freed()),
                super::images::human_size(o.before),
                super::images::human_size(o.after),
                super::images::human_size(o.limit)
            ),
            Notice::GarbageCollectionFailed(e) => {
                errln!("WARNING: garbage collection after the build failed: {e}")
            }
            _ => {}
        }
    }
}

fn parse_kv(s: &str) -> BTreeMap<String, String> {
    s.split(',')
        .filter_map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// `--secret id=X,src=FILE` | `id=X,env=VAR` (also `source=`, `type=file|env`).
fn parse_secret(s: &str) -> Result<(String, Secret), String> {
    let kv = parse_kv(s);
    let id = kv
        .get("id")
        .cloned()
        .ok_or_else(|| format!("--secret {s}: missing id="))?;
    let src = kv.get("src").or_else(|| kv.get("source")).cloned();
    let env = kv.get("env").cloned();
    let ty = kv.get("type").map(String::as_str);
    if let Some(path) = src.filter(|_| ty != Some("env")) {
        let data = std::fs::read(&path)
            .map_err(|e| format!("--secret id={id}: cannot read {path}: {e}"))?;
        return Ok((id, Secret(data)));
    }
    let var = env.unwrap_or_else(|| id.clone());
    match std::env::var_os(&var) {
        Some(v) => Ok((id, Secret(v.into_encoded_bytes()))),
        None => Err(format!(
            "--secret id={id}: environment variable {var} is not set"
        )),
    }
}

/// Prints the Dockerfile lines around a failed step and the end of a failed RUN's output.
fn report_failure(plan: &BuildPlan, e: &EngineError) {
    let (df_name, text) = (&plan.dockerfile_name, &plan.dockerfile_text);
    let EngineError::Step {
        location,
        error: source,
        ..
    } = e
    else {
        return;
    };
    let line: usize = location
        .rsplit(':')
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    if let EngineError::RunFailed { tail, .. } = source.as_ref()
        && !tail.is_empty()
    {
        errln!("------\n{tail}\n------");
    }
    // Find the node's span for multi-line instructions.
    let end = plan
        .platforms
        .iter()
        .flat_map(|p| p.graph.stages.iter())
        .flat_map(|s| s.steps.iter())
        .find(|st| st.node.span.start == line)
        .map(|st| st.node.span.end)
        .unwrap_or(line);
    if line > 0 {
        errln!(
            "{}",
            redacted_render(
                df_name,
                text,
                crate::parser::Span { start: line, end },
                &source.to_string()
            )
        );
    }
}

/// Prints the Dockerfile excerpt at `line` with `message` and returns the error naming it.
fn dockerfile_error(df_name: &str, text: &str, line: usize, message: &str) -> crate::Error {
    let span = crate::parser::Span {
        start: line,
        end: line,
    };
    errln!("{}", redacted_render(df_name, text, span, message));
    crate::Error::Dockerfile {
        location: format!("{df_name}:{line}"),
        message: message.to_string(),
    }
}

/// The Dockerfile excerpt of an error, with any `user:pw@` credentials redacted.
fn redacted_render(file: &str, source: &str, span: crate::parser::Span, message: &str) -> String {
    crate::registry::auth::redact_credentials(&crate::parser::diagnostic::render(
        file, source, span, message,
    ))
}

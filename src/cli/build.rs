//! `hoist build`: flags (docker build compatible) and the handler.

use super::{GlobalArgs, progress};
use crate::cache::transfer::{self, CacheLocation};
use crate::engine::export::OutputKind;
use crate::engine::{self, BuildRequest, EngineError, Secret};
use crate::executor::Network;
use crate::graph::GraphOptions;
use crate::layers::Compression;
use crate::oci::Platform;
use crate::registry::{Client, ImageRef, RegistryOptions};
use crate::store::Store;
use clap::Args;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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
    /// Target platform os/arch[/variant]
    #[arg(long)]
    pub platform: Option<String>,
    /// Do not use the build cache
    #[arg(long)]
    pub no_cache: bool,
    /// Do not use the cache for these stages
    #[arg(long = "no-cache-filter")]
    pub no_cache_filter: Vec<String>,
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
    #[command(flatten)]
    pub timeouts: super::RegistryTimeoutArgs,
    /// Build context: a directory, or `-` for a tar on stdin
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
    let root = g.store_root();

    // Context: a directory, or a tar on stdin.
    let mut _stdin_ctx: Option<tempfile::TempDir> = None;
    let context: PathBuf = if a.context == "-" {
        if a.file.as_deref() == Some("-") {
            return Err(usage(
                "cannot read both the context and the Dockerfile from stdin".into(),
            ));
        }
        let store = Store::open(&root)?;
        let tmp = store.tmp_dir()?;
        let dir = crate::copy::context::tar_stdin_context(std::io::stdin(), tmp.path())?;
        _stdin_ctx = Some(tmp);
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
            errln!(
                "{}",
                crate::cli::build::redacted_render(&df_name, &text, span, message)
            );
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
    let platform = match &a.platform {
        Some(p) => {
            let want = Platform::parse(p)
                .ok_or_else(|| usage(format!("--platform {p:?}: expected os/arch[/variant]")))?;
            let host = Platform::host();
            if want.os != host.os || want.architecture != host.architecture {
                let binfmt = format!(
                    "/proc/sys/fs/binfmt_misc/qemu-{}",
                    qemu_arch(&want.architecture)
                );
                if !Path::new(&binfmt).exists() {
                    return Err(usage(format!(
                        "--platform {p}: this machine is {}; building for another platform needs binfmt_misc with qemu-user-static (apt-get install qemu-user-static binfmt-support)",
                        host.to_string_short()
                    )));
                }
            }
            want
        }
        None => Platform::host(),
    };
    let graph_options = GraphOptions {
        build_args,
        target: a.target.clone(),
        platform: Some(platform.to_string_short()),
    };
    let graph = match crate::graph::build(&df, &graph_options) {
        Ok(g) => g,
        Err(e) => {
            let crate::graph::GraphError::Invalid { line, message } = &e;
            let span = crate::parser::Span {
                start: *line,
                end: *line,
            };
            if *line > 0 {
                errln!(
                    "{}",
                    crate::cli::build::redacted_render(&df_name, &text, span, message)
                );
                return Err(crate::Error::Dockerfile {
                    location: format!("{df_name}:{line}"),
                    message: message.clone(),
                });
            }
            return Err(e.into());
        }
    };
    if a.dry_run {
        out!(
            "{}",
            crate::graph::plan::render_with_escape(&graph, df.directives.escape)
        );
        return Ok(ExitCode::SUCCESS);
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
    let mut push = a.push;
    let mut tags = tags;
    let mut exports: Vec<(OutputKind, PathBuf)> = Vec::new();
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
                exports.push((kind, PathBuf::from(dest)));
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
    if push && tags.is_empty() {
        return Err(usage("--push needs a name: add -t NAME".into()));
    }

    let ignore = crate::copy::context::load_ignore(&context, &df_path)?;
    let store = Store::open(&root)?;
    let pool = store.sandbox_pool();
    let _ = crate::executor::cleanup_stale(&pool);
    let _ = crate::executor::install_signal_handlers(std::time::Duration::from_secs(2), |_| {});
    // Counts what pushes really send (uploads vs blobs the registry already had).
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let skipped = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut registry = Client::new(RegistryOptions {
        insecure: g.insecure_registries(),
        docker_config_dir: None,
    })?;
    a.timeouts.apply(&mut registry);
    {
        let (sent, skipped) = (sent.clone(), skipped.clone());
        registry.set_progress(move |p| {
            use crate::registry::ProgressKind;
            use std::sync::atomic::Ordering::Relaxed;
            match p.kind {
                ProgressKind::Pushed => {
                    sent.fetch_add(1, Relaxed);
                }
                // Measured around the push only, so `Exists` here means "the registry had it".
                ProgressKind::Exists | ProgressKind::Mounted { .. } => {
                    skipped.fetch_add(1, Relaxed);
                }
                _ => {}
            }
        });
    }
    let sandbox = crate::executor::OciRuntime::detect()?.with_pool(pool);
    let req = BuildRequest {
        dockerfile_name: df_name.clone(),
        dockerfile_text: text.clone(),
        graph,
        graph_options,
        context: context.clone(),
        ignore,
        labels,
        no_cache: a.no_cache,
        no_cache_filter: a.no_cache_filter.clone(),
        pull: a.pull,
        network,
        secrets,
        ssh,
        compression,
        source_date_epoch,
        platform,
        stream_push: if push { tags.first().cloned() } else { None },
    };
    let cache_index = crate::cache::CacheIndex::open(&store.root().join("cache"))?;
    let remote = crate::engine::adapters::RegistryCache(&registry);
    if !a.no_cache {
        for from in &cache_from {
            let stats = registry.operation(
                format!("importing build cache from {}", describe(from)),
                || transfer::import(&cache_index, &store, from, Some(&remote)),
            )?;
            if mode != progress::Mode::Quiet && mode != progress::Mode::Json {
                errln!(
                    "imported build cache from {}: {} entries, {} blobs",
                    describe(from),
                    stats.entries,
                    stats.blobs
                );
            }
        }
    }
    // Held until the image is named, pushed and exported: the engine's own hold ends when it
    // returns, and a `prune` in that gap removed the new (still unnamed) image's blobs.
    let _gc = store.gc_shared_lock()?;
    let printer = progress::Printer::new(mode);
    let outcome = match engine::build(&req, &store, Some(&registry), &sandbox, &printer) {
        Ok(o) => o,
        Err(e) => {
            drop(printer);
            report_failure(&df_name, &text, &req, &e);
            return Err(e.into());
        }
    };
    drop(printer);
    for t in &tags {
        store.set_image(&t.to_string(), &outcome.manifest_digest)?;
    }
    for to in &cache_to {
        let stats = registry
            .operation(format!("exporting build cache to {}", describe(to)), || {
                transfer::export(&cache_index, &store, &outcome.cache_keys, to, Some(&remote))
            })?;
        if mode != progress::Mode::Quiet && mode != progress::Mode::Json {
            errln!(
                "exported build cache to {}: {} entries, {} blobs",
                describe(to),
                stats.entries,
                stats.blobs
            );
        }
    }
    if push {
        for t in &tags {
            use std::sync::atomic::Ordering::Relaxed;
            let (s0, k0) = (sent.load(Relaxed), skipped.load(Relaxed));
            registry.push(&store, &outcome.manifest_digest, t)?;
            if mode != progress::Mode::Quiet {
                errln!(
                    "pushed {t}@{} ({} blobs uploaded, {} already in the registry)",
                    outcome.manifest_digest,
                    sent.load(Relaxed) - s0,
                    skipped.load(Relaxed) - k0
                );
            }
        }
    }
    let names: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
    for (kind, dest) in &exports {
        crate::engine::export::write_output(
            &store,
            &sandbox,
            &outcome,
            *kind,
            dest,
            &names,
            source_date_epoch,
        )?;
    }
    if let Some(f) = &a.iidfile {
        std::fs::write(f, outcome.config_digest.to_string()).map_err(|source| {
            crate::Error::Io {
                path: f.clone(),
                source,
            }
        })?;
    }
    if let Some(f) = &a.metadata_file {
        let names: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        let meta = serde_json::json!({
            "containerimage.digest": outcome.manifest_digest.to_string(),
            "containerimage.config.digest": outcome.config_digest.to_string(),
            "containerimage.descriptor": {
                "mediaType": crate::oci::media::OCI_MANIFEST,
                "digest": outcome.manifest_digest.to_string(),
                "size": outcome.manifest_size,
            },
            "image.name": names.join(","),
        });
        std::fs::write(f, serde_json::to_vec_pretty(&meta).unwrap_or_default()).map_err(
            |source| crate::Error::Io {
                path: f.clone(),
                source,
            },
        )?;
    }
    if a.quiet {
        outln!("{}", outcome.config_digest);
    } else {
        errln!(
            "built {} (manifest {})",
            outcome.config_digest,
            outcome.manifest_digest
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(l: &CacheLocation) -> String {
    match l {
        CacheLocation::Registry(r) => r.to_string(),
        CacheLocation::Local(d) => d.display().to_string(),
    }
}

fn qemu_arch(arch: &str) -> &str {
    match arch {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "arm" => "arm",
        "ppc64le" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "386" => "i386",
        other => other,
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
fn report_failure(df_name: &str, text: &str, req: &BuildRequest, e: &EngineError) {
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
    let end = req
        .graph
        .stages
        .iter()
        .flat_map(|s| s.steps.iter())
        .find(|st| st.node.span.start == line)
        .map(|st| st.node.span.end)
        .unwrap_or(line);
    if line > 0 {
        errln!(
            "{}",
            crate::cli::build::redacted_render(
                df_name,
                text,
                crate::parser::Span { start: line, end },
                &source.to_string()
            )
        );
    }
}

/// The Dockerfile excerpt of an error, with any `user:pw@` credentials redacted.
fn redacted_render(file: &str, source: &str, span: crate::parser::Span, message: &str) -> String {
    crate::registry::auth::redact_credentials(&crate::parser::diagnostic::render(
        file, source, span, message,
    ))
}

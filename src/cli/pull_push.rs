//! Registry transfer commands: `pull` and `push`, with their per-blob progress (bars on a
//! terminal, one line per blob otherwise).

use super::images::{find_image, open_store, parse_ref};
use super::{GlobalArgs, RegistryTimeoutArgs};
use crate::Error;
use crate::oci::Platform;
use crate::registry::{Client, Progress, ProgressKind, RegistryOptions};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Mutex;

/// `hoist pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Platform os/arch[/variant] (default: the host's)
    #[arg(long)]
    pub platform: Option<String>,
    /// Print only the image digest
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[command(flatten)]
    pub timeouts: RegistryTimeoutArgs,
    pub image: String,
}

/// `hoist push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Print only the pushed digest
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[command(flatten)]
    pub timeouts: RegistryTimeoutArgs,
    /// Image in the store
    pub image: String,
    /// Destination (default: the same name)
    pub dest: Option<String>,
}

/// A registry client for these flags, showing transfer progress unless `quiet`.
pub(super) fn client(
    g: &GlobalArgs,
    t: &RegistryTimeoutArgs,
    quiet: bool,
) -> crate::Result<Client> {
    let mut c = Client::new(RegistryOptions {
        insecure: g.insecure_registries(),
        docker_config_dir: None,
    })?;
    t.apply(&mut c);
    if quiet {
        return Ok(c);
    }
    if std::io::stderr().is_terminal() {
        let mp = MultiProgress::new();
        let bars: Mutex<HashMap<String, ProgressBar>> = Mutex::new(HashMap::new());
        let style = ProgressStyle::with_template(
            "{prefix}: {msg:<12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        c.set_progress(move |p: &Progress| {
            if let ProgressKind::Retrying { reason } = &p.kind {
                let _ = mp.println(format!("retrying {}: {reason}", p.id));
                return;
            }
            let mut bars = bars.lock().unwrap_or_else(|e| e.into_inner());
            let bar = bars.entry(p.id.clone()).or_insert_with(|| {
                let b = mp.add(ProgressBar::new(p.total));
                b.set_style(style.clone());
                b.set_prefix(p.id.clone());
                b
            });
            bar.set_length(p.total);
            bar.set_position(p.current);
            match &p.kind {
                ProgressKind::Downloading => bar.set_message("Downloading"),
                ProgressKind::Pushing => bar.set_message("Pushing"),
                k => bar.finish_with_message(kind_text(k)),
            }
        });
    } else {
        c.set_progress(|p: &Progress| match &p.kind {
            ProgressKind::Downloading | ProgressKind::Pushing => {}
            ProgressKind::Retrying { reason } => errln!("{}: retrying: {reason}", p.id),
            k => errln!("{}: {}", p.id, kind_text(k)),
        });
    }
    Ok(c)
}

fn kind_text(k: &ProgressKind) -> String {
    match k {
        ProgressKind::Exists => "Already exists".into(),
        ProgressKind::Downloading => "Downloading".into(),
        ProgressKind::Downloaded => "Pull complete".into(),
        ProgressKind::Pushing => "Pushing".into(),
        ProgressKind::Pushed => "Pushed".into(),
        ProgressKind::Mounted { from } => format!("Mounted from {from}"),
        ProgressKind::Retrying { reason } => format!("Retrying: {reason}"),
    }
}

/// `hoist pull`.
pub fn pull(g: &GlobalArgs, a: PullArgs) -> crate::Result<ExitCode> {
    let r = parse_ref(&a.image)?;
    let platform = match &a.platform {
        Some(p) => Platform::parse(p)
            .ok_or_else(|| Error::Usage(format!("--platform {p:?}: expected os/arch[/variant]")))?,
        None => Platform::host(),
    };
    let store = open_store(g)?;
    let c = client(g, &a.timeouts, a.quiet)?;
    if !a.quiet {
        errln!("{}: Pulling from {}", r.reference(), r.name());
    }
    let pulled = c.pull(&r, &platform, &store)?;
    if a.quiet {
        outln!("{}", pulled.manifest_digest);
    } else {
        outln!("Digest: {}", pulled.manifest_digest);
        outln!("{r}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `hoist push`.
pub fn push(g: &GlobalArgs, a: PushArgs) -> crate::Result<ExitCode> {
    let store = open_store(g)?;
    let (name, digest) = find_image(&store, &a.image)?;
    let dest = parse_ref(a.dest.as_deref().unwrap_or(&name))?;
    let c = client(g, &a.timeouts, a.quiet)?;
    let pushed = c.push(&store, &digest, &dest)?;
    if a.quiet {
        outln!("{pushed}");
    } else {
        let size = store.blob_size(&pushed)?;
        outln!(
            "{}: digest: {pushed} size: {size}",
            dest.tag.as_deref().unwrap_or("latest")
        );
    }
    Ok(ExitCode::SUCCESS)
}

//! Store and registry commands: pull, push, images, tag, rmi, inspect, save, load, prune,
//! fsck, login, logout.

use super::GlobalArgs;
use crate::Error;
use crate::oci::{Digest, Index, Manifest, Platform};
use crate::registry::{Client, ImageRef, Progress, RegistryError, RegistryOptions, auth};
use crate::store::{Store, StoreError};
use clap::Args;
use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

/// `hoist pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Platform os/arch[/variant] (default: the host's)
    #[arg(long)]
    pub platform: Option<String>,
    /// Print only the image digest
    #[arg(short = 'q', long)]
    pub quiet: bool,
    pub image: String,
}

/// `hoist push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Print only the pushed digest
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Image in the store
    pub image: String,
    /// Destination (default: the same name)
    pub dest: Option<String>,
}

/// `hoist images`.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Show full digests
    #[arg(long)]
    pub no_trunc: bool,
}

/// `hoist tag`.
#[derive(Debug, Args)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

/// `hoist rmi`.
#[derive(Debug, Args)]
pub struct RmiArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `hoist inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    pub image: String,
}

/// `hoist save`.
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Output file
    #[arg(short = 'o', long)]
    pub output: PathBuf,
    /// docker (docker-archive, default) or oci
    #[arg(long, default_value = "docker")]
    pub format: String,
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `hoist load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Input file
    #[arg(short = 'i', long)]
    pub input: PathBuf,
}

/// `hoist prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Keep this much build cache (e.g. 10GB); least recently used goes first
    #[arg(long = "keep-storage")]
    pub keep_storage: Option<String>,
    /// Remove all build cache
    #[arg(short = 'a', long)]
    pub all: bool,
}

/// `hoist fsck`.
#[derive(Debug, Args)]
pub struct FsckArgs {
    /// Repair what can be repaired (drop bad entries)
    #[arg(long)]
    pub repair: bool,
}

/// `hoist login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// Read the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    pub server: String,
}

/// `hoist logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    pub server: String,
}

/// `println!` that ends quietly when stdout is closed (`hoist inspect … | head`).
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// Registry options from the global flags (for `build --push` and base-image pulls too).
pub fn registry_options(g: &GlobalArgs) -> RegistryOptions {
    RegistryOptions {
        insecure: g.insecure_registries.clone(),
        docker_config_dir: None,
    }
}

/// Opens the store at the global root.
pub fn open_store(g: &GlobalArgs) -> crate::Result<Store> {
    Ok(Store::open(&g.store_root())?)
}

/// A client that prints one plain line per blob event on stderr (unless `quiet`).
fn client_with_progress(g: &GlobalArgs, quiet: bool) -> crate::Result<Client> {
    let c = Client::new(registry_options(g))?;
    if quiet {
        return Ok(c);
    }
    Ok(c.with_progress(|p| match p {
        Progress::Started { digest, size, push } => {
            let verb = if *push { "Pushing" } else { "Downloading" };
            eprintln!("{}: {verb} {}", digest.short(), human_size(*size));
        }
        Progress::Bytes { .. } => {}
        Progress::Exists { digest, .. } => eprintln!("{}: Already exists", digest.short()),
        Progress::Mounted { digest, from } => eprintln!("{}: Mounted from {from}", digest.short()),
        Progress::Done { digest, push, .. } => {
            let what = if *push { "Pushed" } else { "Pull complete" };
            eprintln!("{}: {what}", digest.short());
        }
    }))
}

fn parse_ref(s: &str) -> crate::Result<ImageRef> {
    Ok(ImageRef::parse(s).map_err(RegistryError::from)?)
}

/// The manifest digest a user's image name points at in the store.
fn lookup(store: &Store, name: &str) -> crate::Result<(ImageRef, Digest)> {
    let r = parse_ref(name)?;
    if let Some(d) = &r.digest
        && store.has_blob(d)
    {
        return Ok((r.clone(), d.clone()));
    }
    match store.get_image(&r.to_string())? {
        Some(d) => Ok((r, d)),
        None => Err(StoreError::UnknownImage(format!(
            "{r} (see `hoist images`; `hoist pull {name}` fetches it)"
        ))
        .into()),
    }
}

fn platform_arg(p: Option<&str>) -> crate::Result<Platform> {
    match p {
        None => Ok(Platform::host()),
        Some(s) => Platform::parse(s).ok_or_else(|| {
            Error::Usage(format!(
                "--platform {s:?}: expected os/arch[/variant], e.g. linux/amd64"
            ))
        }),
    }
}

/// `hoist pull IMAGE`.
pub fn pull(g: &GlobalArgs, a: PullArgs) -> crate::Result<ExitCode> {
    let r = parse_ref(&a.image)?;
    let platform = platform_arg(a.platform.as_deref())?;
    let store = open_store(g)?;
    let client = client_with_progress(g, a.quiet)?;
    if !a.quiet {
        eprintln!("Pulling {r} ({})", platform.to_string_short());
    }
    let p = client.pull(&r, &platform, &store)?;
    if a.quiet {
        out!("{}", p.manifest_digest);
    } else {
        out!("Digest: {}", p.manifest_digest);
        out!("Pulled {r}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `hoist push IMAGE [DEST]`.
pub fn push(g: &GlobalArgs, a: PushArgs) -> crate::Result<ExitCode> {
    let store = open_store(g)?;
    let (src, digest) = lookup(&store, &a.image)?;
    let dest = match &a.dest {
        Some(d) => parse_ref(d)?,
        None => src,
    };
    let client = client_with_progress(g, a.quiet)?;
    if !a.quiet {
        eprintln!("Pushing {dest}");
    }
    let pushed = client.push(&store, &digest, &dest)?;
    if a.quiet {
        out!("{pushed}");
    } else {
        out!("{}: digest: {pushed}", dest);
    }
    Ok(ExitCode::SUCCESS)
}

/// `hoist images`.
pub fn images(g: &GlobalArgs, a: ImagesArgs) -> crate::Result<ExitCode> {
    let store = open_store(g)?;
    let list = store.list_images()?;
    if !a.quiet {
        out!(
            "{:<50} {:<20} {:<14} {:<22} {:>10}",
            "REPOSITORY",
            "TAG",
            "IMAGE ID",
            "CREATED",
            "SIZE"
        );
    }
    for (name, digest) in list {
        let (m, c) = match store.load_image(&digest) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("warning: {name}: {e}");
                continue;
            }
        };
        let id = if a.no_trunc {
            m.config.digest.to_string()
        } else {
            m.config.digest.hex()[..12].to_string()
        };
        if a.quiet {
            out!("{id}");
            continue;
        }
        let (repo, tag) = match ImageRef::parse(&name) {
            Ok(r) => (r.name(), r.tag.unwrap_or_else(|| "<none>".into())),
            Err(_) => (name.clone(), "<none>".into()),
        };
        let size: u64 = m.layers.iter().map(|l| l.size).sum::<u64>() + m.config.size;
        let created = c
            .created
            .as_deref()
            .map(|s| s.chars().take(19).collect::<String>())
            .unwrap_or_default();
        out!(
            "{repo:<50} {tag:<20} {id:<14} {created:<22} {:>10}",
            human_size(size)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{v:.3}{}", units[i])
    }
}

/// `hoist tag SRC DEST`.
pub fn tag(g: &GlobalArgs, a: TagArgs) -> crate::Result<ExitCode> {
    let store = open_store(g)?;
    let (_, digest) = lookup(&store, &a.source)?;
    let target = parse_ref(&a.target)?;
    store.set_image(&target.to_string(), &digest)?;
    Ok(ExitCode::SUCCESS)
}

/// `hoist rmi IMAGE…`: removes names (blobs go with `hoist prune`).
pub fn rmi(g: &GlobalArgs, a: RmiArgs) -> crate::Result<ExitCode> {
    let store = open_store(g)?;
    let mut code = ExitCode::SUCCESS;
    for name in &a.images {
        let r = parse_ref(name)?;
        if store.remove_image(&r.to_string())? {
            out!("Untagged: {r}");
        } else {
            eprintln!("error: no such image: {r}");
            code = ExitCode::from(1);
        }
    }
    Ok(code)
}

/// `hoist inspect IMAGE`: manifest and config as JSON.
pub fn inspect(g: &GlobalArgs, a: InspectArgs) -> crate::Result<ExitCode> {
    let store = open_store(g)?;
    let (r, digest) = lookup(&store, &a.image)?;
    let (m, c) = store.load_image(&digest)?;
    let v = serde_json::json!([{
        "Name": r.to_string(),
        "Id": m.config.digest,
        "Digest": digest,
        "Manifest": m,
        "Config": c,
    }]);
    let text = serde_json::to_string_pretty(&v).map_err(|source| StoreError::Json {
        path: format!("image {r}"),
        source,
    })?;
    out!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// `hoist save -o FILE IMAGE…`: docker-archive (OCI layout + manifest.json) or `--format oci`.
pub fn save(g: &GlobalArgs, a: SaveArgs) -> crate::Result<ExitCode> {
    let docker = match a.format.as_str() {
        "docker" | "docker-archive" => true,
        "oci" | "oci-archive" => false,
        other => {
            return Err(Error::Usage(format!(
                "--format {other:?}: expected docker or oci"
            )));
        }
    };
    let store = open_store(g)?;
    let mut images = Vec::new();
    for name in &a.images {
        images.push(lookup(&store, name)?);
    }
    crate::registry::archive::save(&store, &images, &a.output, docker)?;
    Ok(ExitCode::SUCCESS)
}

/// `hoist load -i FILE`.
pub fn load(g: &GlobalArgs, a: LoadArgs) -> crate::Result<ExitCode> {
    let store = open_store(g)?;
    for (name, d) in crate::registry::archive::load(&store, &a.input)? {
        out!("Loaded image: {name} ({d})");
    }
    Ok(ExitCode::SUCCESS)
}

/// Blobs and snapshots reachable from the named images.
fn reachable(store: &Store) -> crate::Result<(HashSet<Digest>, HashSet<Digest>)> {
    let mut blobs = HashSet::new();
    let mut diff_ids = HashSet::new();
    let mut todo: Vec<Digest> = store.list_images()?.into_iter().map(|(_, d)| d).collect();
    while let Some(d) = todo.pop() {
        if !blobs.insert(d.clone()) {
            continue;
        }
        let Ok(bytes) = store.read_blob(&d) else {
            continue;
        };
        if let Ok(idx) = serde_json::from_slice::<Index>(&bytes)
            && !idx.manifests.is_empty()
        {
            todo.extend(idx.manifests.into_iter().map(|m| m.digest));
            continue;
        }
        if let Ok(m) = serde_json::from_slice::<Manifest>(&bytes) {
            blobs.insert(m.config.digest.clone());
            blobs.extend(m.layers.iter().map(|l| l.digest.clone()));
            if let Ok((_, c)) = store.load_image(&d) {
                diff_ids.extend(c.rootfs.diff_ids);
            }
        }
    }
    Ok((blobs, diff_ids))
}

fn dir_entries(dir: &std::path::Path) -> crate::Result<Vec<(Digest, PathBuf)>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(source) => {
            return Err(Error::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    Ok(rd
        .flatten()
        .filter_map(|e| {
            Digest::from_hex(&e.file_name().to_string_lossy())
                .ok()
                .map(|d| (d, e.path()))
        })
        .collect())
}

/// `hoist prune`: removes blobs and snapshots no named image reaches.
pub fn prune(g: &GlobalArgs, a: PruneArgs) -> crate::Result<ExitCode> {
    let store = open_store(g)?;
    let _lock = store.lock("prune")?;
    let (blobs, diff_ids) = reachable(&store)?;
    let mut freed = 0u64;
    let mut count = 0usize;
    for (d, path) in dir_entries(&store.root().join("blobs/sha256"))? {
        if blobs.contains(&d) {
            continue;
        }
        freed += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        std::fs::remove_file(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let _ = std::fs::remove_file(store.root().join("registry-sources").join(d.hex()));
        count += 1;
    }
    let mut snaps = 0usize;
    for (d, path) in dir_entries(&store.root().join("snapshots"))? {
        if diff_ids.contains(&d) {
            continue;
        }
        std::fs::remove_dir_all(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        snaps += 1;
    }
    if a.all || a.keep_storage.is_some() {
        eprintln!(
            "note: build-cache pruning (--all/--keep-storage) is not implemented yet; only unreferenced blobs and snapshots were removed"
        );
    }
    out!("Deleted {count} blobs and {snaps} snapshots");
    out!("Total reclaimed space: {}", human_size(freed));
    Ok(ExitCode::SUCCESS)
}

/// `hoist fsck`: re-hashes every blob; `--repair` deletes corrupt ones and names whose
/// manifest is gone.
pub fn fsck(g: &GlobalArgs, a: FsckArgs) -> crate::Result<ExitCode> {
    let store = open_store(g)?;
    let mut bad = 0usize;
    for (d, path) in dir_entries(&store.root().join("blobs/sha256"))? {
        let mut f = std::fs::File::open(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let mut h = crate::oci::Digester::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            if n == 0 {
                break;
            }
            std::io::Write::write_all(&mut h, &buf[..n]).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        }
        let (actual, _, _) = h.finish();
        if actual != d {
            bad += 1;
            out!(
                "corrupt blob {d} at {} (hashes to {actual})",
                path.display()
            );
            if a.repair {
                std::fs::remove_file(&path).map_err(|source| Error::Io {
                    path: path.clone(),
                    source,
                })?;
                out!("  removed");
            }
        }
    }
    for (name, d) in store.list_images()? {
        if let Err(e) = store.load_image(&d) {
            bad += 1;
            out!("image {name}: {e}");
            if a.repair {
                store.remove_image(&name)?;
                out!("  removed the name; pull or build it again");
            }
        }
    }
    if bad == 0 {
        out!("store OK");
        Ok(ExitCode::SUCCESS)
    } else if a.repair {
        out!("{bad} problems repaired");
        Ok(ExitCode::SUCCESS)
    } else {
        out!("{bad} problems found; run `hoist fsck --repair`");
        Ok(ExitCode::from(1))
    }
}

/// `hoist login [-u USER] [--password-stdin] HOST`: checks the credentials against the
/// registry, then saves them in Docker's config.json.
pub fn login(g: &GlobalArgs, a: LoginArgs) -> crate::Result<ExitCode> {
    let host = auth::login_key(&a.server);
    let registry = if host == "https://index.docker.io/v1/" {
        "docker.io".to_string()
    } else {
        host.clone()
    };
    let stdin = std::io::stdin();
    let read_line = |prompt: &str| -> crate::Result<String> {
        if stdin.is_terminal() {
            eprint!("{prompt}");
        }
        let mut s = String::new();
        stdin.lock().read_line(&mut s).map_err(|source| Error::Io {
            path: PathBuf::from("<stdin>"),
            source,
        })?;
        Ok(s.trim_end_matches(['\r', '\n']).to_string())
    };
    let username = match a.username {
        Some(u) => u,
        None if a.password_stdin => {
            return Err(Error::Usage("--password-stdin needs --username".into()));
        }
        None => read_line("Username: ")?,
    };
    let password = match (a.password, a.password_stdin) {
        (Some(_), true) => {
            return Err(Error::Usage(
                "--password and --password-stdin are mutually exclusive".into(),
            ));
        }
        (Some(p), false) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            p
        }
        (None, _) => read_line("Password: ")?,
    };
    if username.is_empty() || password.is_empty() {
        return Err(Error::Usage(
            "login needs a non-empty user name and password".into(),
        ));
    }
    let client = Client::new(registry_options(g))?;
    client.login(&registry, &username, &password)?;
    auth::store_login(client.docker_config_dir(), &registry, &username, &password)?;
    out!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

/// `hoist logout HOST`.
pub fn logout(g: &GlobalArgs, a: LogoutArgs) -> crate::Result<ExitCode> {
    let opts = registry_options(g);
    let dir = auth::docker_config_dir(opts.docker_config_dir.as_deref());
    if auth::remove_login(&dir, &a.server)? {
        out!(
            "Removing login credentials for {}",
            auth::login_key(&a.server)
        );
    } else {
        out!("Not logged in to {}", a.server);
    }
    Ok(ExitCode::SUCCESS)
}

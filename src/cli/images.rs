//! Store and registry commands: pull, push, images, tag, rmi, inspect, save, load, prune,
//! fsck, login, logout.

use super::{GlobalArgs, RegistryTimeoutArgs};
use clap::Args;
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
    #[command(flatten)]
    pub timeouts: RegistryTimeoutArgs,
    pub server: String,
}

/// `hoist logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    pub server: String,
}

// ---------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------

use crate::Error;
use crate::oci::{Descriptor, Digest, ImageConfig, Index, Manifest, Platform, media};
use crate::registry::{
    Client, ImageRef, Progress, ProgressKind, RegistryError, RegistryOptions, auth,
};
use crate::store::maintenance::ExtraRoots;
use crate::store::{Store, StoreError};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Read, Write};
use std::sync::Mutex;

/// Opens the store and, as every start does, removes what killed hoist processes left in its
/// sandbox pool (containers, overlay mounts, cgroups), so `fsck`/`prune` see a clean store.
fn open_store(g: &GlobalArgs) -> crate::Result<Store> {
    let store = Store::open(&g.store_root())?;
    if rustix::process::geteuid().is_root() {
        let _ = crate::executor::cleanup_stale(&store.sandbox_pool());
    }
    Ok(store)
}

fn client(g: &GlobalArgs, t: &RegistryTimeoutArgs, quiet: bool) -> crate::Result<Client> {
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

fn parse_ref(s: &str) -> crate::Result<ImageRef> {
    Ok(ImageRef::parse(s).map_err(RegistryError::from)?)
}

/// Finds a local image by name, or by (a prefix of) its manifest digest.
fn find_image(store: &Store, name: &str) -> crate::Result<(String, Digest)> {
    if let Ok(r) = ImageRef::parse(name)
        && let Some(d) = store.get_image(&r.to_string())?
    {
        return Ok((r.to_string(), d));
    }
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    if hex.len() >= 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        let hits: Vec<(String, Digest)> = store
            .list_images()?
            .into_iter()
            .filter(|(_, d)| d.hex().starts_with(&hex.to_ascii_lowercase()))
            .collect();
        if let Some(first) = hits.first() {
            return Ok(first.clone());
        }
    }
    Err(StoreError::UnknownImage(name.to_string()).into())
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
        format!("{v:.3}{}", units[i]).replace(".000", "")
    }
}

/// `hoist images`.
pub fn images(g: &GlobalArgs, a: ImagesArgs) -> crate::Result<ExitCode> {
    let store = open_store(g)?;
    let mut rows = Vec::new();
    for (name, d) in store.list_images()? {
        let (repo, tag) = match ImageRef::parse(&name) {
            Ok(r) => {
                let fam = ImageRef {
                    tag: None,
                    digest: None,
                    ..r.clone()
                }
                .familiar();
                (fam, r.tag.clone().unwrap_or_else(|| "<none>".into()))
            }
            Err(_) => (name.clone(), "<none>".into()),
        };
        let (id, size, created) = match store.load_image(&d) {
            Ok((m, c)) => {
                let size: u64 = m.layers.iter().map(|l| l.size).sum::<u64>() + m.config.size;
                (
                    m.config.digest.clone(),
                    human_size(size),
                    c.created.unwrap_or_default(),
                )
            }
            Err(_) => (d.clone(), "?".into(), "(broken: run hoist fsck)".into()),
        };
        rows.push((repo, tag, id, created, size));
    }
    if a.quiet {
        for (_, _, id, _, _) in rows {
            outln!(
                "{}",
                if a.no_trunc {
                    id.to_string()
                } else {
                    id.short().to_string()
                }
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{:<40} {:<16} {:<14} {:<22} SIZE",
        "REPOSITORY",
        "TAG",
        "IMAGE ID",
        "CREATED"
    );
    for (repo, tag, id, created, size) in rows {
        let id = if a.no_trunc {
            id.to_string()
        } else {
            id.short().to_string()
        };
        outln!(
            "{repo:<40} {tag:<16} {id:<14} {:<22} {size}",
            created.get(..19).unwrap_or(&created)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `hoist tag`.
pub fn tag(g: &GlobalArgs, a: TagArgs) -> crate::Result<ExitCode> {
    let store = open_store(g)?;
    let (_, d) = find_image(&store, &a.source)?;
    let target = parse_ref(&a.target)?;
    store.set_image(&target.to_string(), &d)?;
    Ok(ExitCode::SUCCESS)
}

/// `hoist rmi`.
pub fn rmi(g: &GlobalArgs, a: RmiArgs) -> crate::Result<ExitCode> {
    let store = open_store(g)?;
    let mut code = ExitCode::SUCCESS;
    for img in &a.images {
        match find_image(&store, img) {
            Ok((name, _)) => {
                store.remove_image(&name)?;
                outln!("Untagged: {name}");
            }
            Err(e) => {
                errln!("error: {e}");
                code = ExitCode::from(1);
            }
        }
    }
    Ok(code)
}

/// `hoist inspect`.
pub fn inspect(g: &GlobalArgs, a: InspectArgs) -> crate::Result<ExitCode> {
    let store = open_store(g)?;
    let (name, d) = find_image(&store, &a.image)?;
    let (m, c) = store.load_image(&d)?;
    let v = serde_json::json!([{
        "Name": name,
        "Id": m.config.digest,
        "Digest": d,
        "Manifest": m,
        "Config": c,
    }]);
    let text = serde_json::to_string_pretty(&v)
        .map_err(|e| Error::Usage(format!("cannot render JSON: {e}")))?;
    outln!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn server_name(s: &str) -> String {
    let s = s
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or(s);
    if auth::is_docker_hub(host) {
        "docker.io".into()
    } else {
        host.to_string()
    }
}

/// `hoist login`.
pub fn login(g: &GlobalArgs, a: LoginArgs) -> crate::Result<ExitCode> {
    let server = server_name(&a.server);
    let username = match &a.username {
        Some(u) => u.clone(),
        None => {
            err!("Username: ");
            let mut u = String::new();
            std::io::stdin().read_line(&mut u).map_err(|e| Error::Io {
                path: "stdin".into(),
                source: e,
            })?;
            u.trim().to_string()
        }
    };
    let password = if a.password_stdin {
        let mut p = String::new();
        std::io::stdin()
            .read_to_string(&mut p)
            .map_err(|e| Error::Io {
                path: "stdin".into(),
                source: e,
            })?;
        p.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = &a.password {
        errln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p.clone()
    } else {
        err!("Password: ");
        let mut p = String::new();
        std::io::stdin().read_line(&mut p).map_err(|e| Error::Io {
            path: "stdin".into(),
            source: e,
        })?;
        p.trim_end_matches(['\n', '\r']).to_string()
    };
    if username.is_empty() || password.is_empty() {
        return Err(Error::Usage(
            "login needs a username and a password (use -u and --password-stdin)".into(),
        ));
    }
    let c = client(g, &a.timeouts, true)?;
    c.login(&server, &username, &password)?;
    let mut cfg = auth::DockerConfig::load(&auth::config_dir(None))?;
    cfg.store(&server, &username, &password)?;
    outln!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

/// `hoist logout`.
pub fn logout(_g: &GlobalArgs, a: LogoutArgs) -> crate::Result<ExitCode> {
    let server = server_name(&a.server);
    let mut cfg = auth::DockerConfig::load(&auth::config_dir(None))?;
    if cfg.erase(&server)? {
        outln!("Removing login credentials for {server}");
    } else {
        outln!("Not logged in to {server}");
    }
    Ok(ExitCode::SUCCESS)
}

fn tar_add(t: &mut tar::Builder<impl Write>, path: &str, data: &[u8]) -> crate::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    t.append_data(&mut h, path, data).map_err(|e| Error::Io {
        path: path.into(),
        source: e,
    })
}

fn tar_add_blob(
    t: &mut tar::Builder<impl Write>,
    store: &Store,
    d: &Digest,
    done: &mut std::collections::BTreeSet<Digest>,
) -> crate::Result<()> {
    if !done.insert(d.clone()) {
        return Ok(());
    }
    let path = format!("blobs/sha256/{}", d.hex());
    let f = store.open_blob(d)?;
    let len = store.blob_size(d)?;
    let mut h = tar::Header::new_ustar();
    h.set_size(len);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    t.append_data(&mut h, &path, f).map_err(|e| Error::Io {
        path: store.blob_path(d),
        source: e,
    })
}

/// `hoist save`: docker-archive (Docker ≥ 25 layout: OCI blobs + manifest.json) or OCI layout.
pub fn save(g: &GlobalArgs, a: SaveArgs) -> crate::Result<ExitCode> {
    let oci = match a.format.as_str() {
        "docker" | "docker-archive" => false,
        "oci" | "oci-archive" => true,
        f => {
            return Err(Error::Usage(format!(
                "--format {f:?}: expected docker or oci"
            )));
        }
    };
    let store = open_store(g)?;
    let out_path = &a.output;
    let dir = out_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".hoist-save-")
        .tempfile_in(dir)
        .map_err(|e| Error::Io {
            path: dir.to_path_buf(),
            source: e,
        })?;
    let mut t = tar::Builder::new(std::io::BufWriter::new(tmp.as_file()));
    let mut done = std::collections::BTreeSet::new();
    let mut docker_manifest = Vec::new();
    let mut index = Vec::new();
    for img in &a.images {
        let (name, d) = find_image(&store, img)?;
        let (m, _) = store.load_image(&d)?;
        tar_add_blob(&mut t, &store, &d, &mut done)?;
        tar_add_blob(&mut t, &store, &m.config.digest, &mut done)?;
        for l in &m.layers {
            tar_add_blob(&mut t, &store, &l.digest, &mut done)?;
        }
        let r = ImageRef::parse(&name).ok();
        let tag_name = r.as_ref().map(|r| r.familiar()).unwrap_or(name.clone());
        docker_manifest.push(serde_json::json!({
            "Config": format!("blobs/sha256/{}", m.config.digest.hex()),
            "RepoTags": if r.as_ref().is_some_and(|r| r.tag.is_some()) { vec![tag_name.clone()] } else { vec![] },
            "Layers": m.layers.iter().map(|l| format!("blobs/sha256/{}", l.digest.hex())).collect::<Vec<_>>(),
        }));
        let mt = m
            .media_type
            .clone()
            .unwrap_or_else(|| media::OCI_MANIFEST.into());
        let mut desc = Descriptor::new(&mt, d.clone(), store.blob_size(&d)?);
        let mut ann = BTreeMap::new();
        ann.insert("io.containerd.image.name".to_string(), name.clone());
        if let Some(tag) = r.as_ref().and_then(|r| r.tag.clone()) {
            ann.insert(
                "org.opencontainers.image.ref.name".to_string(),
                if oci { tag } else { tag_name.clone() },
            );
        }
        desc.annotations = Some(ann);
        index.push(desc);
    }
    let idx = Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.into()),
        manifests: index,
        annotations: None,
    };
    tar_add(&mut t, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    tar_add(&mut t, "index.json", &to_json(&idx))?;
    if !oci {
        tar_add(&mut t, "manifest.json", &to_json(&docker_manifest))?;
    }
    let w = t.into_inner().map_err(|e| Error::Io {
        path: out_path.clone(),
        source: e,
    })?;
    drop(w);
    tmp.as_file().sync_all().map_err(|e| Error::Io {
        path: out_path.clone(),
        source: e,
    })?;
    tmp.persist(out_path).map_err(|e| Error::Io {
        path: out_path.clone(),
        source: e.error,
    })?;
    Ok(ExitCode::SUCCESS)
}

/// JSON bytes of plain data (serializing these types cannot fail).
fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// `hoist load`: docker-archive (old and new layouts) or OCI layout tar. Nothing from the
/// archive touches the filesystem except as verified blobs.
pub fn load(g: &GlobalArgs, a: LoadArgs) -> crate::Result<ExitCode> {
    let store = open_store(g)?;
    let bad = |reason: String| Error::Usage(format!("{}: {reason}", a.input.display()));
    let f = std::fs::File::open(&a.input).map_err(|e| Error::Io {
        path: a.input.clone(),
        source: e,
    })?;
    let mut ar = tar::Archive::new(std::io::BufReader::new(f));
    // Every regular file becomes a blob; remember its path.
    let mut files: HashMap<String, (Digest, u64)> = HashMap::new();
    let entries = ar.entries().map_err(|e| Error::Io {
        path: a.input.clone(),
        source: e,
    })?;
    for e in entries {
        let mut e = e.map_err(|e| Error::Io {
            path: a.input.clone(),
            source: e,
        })?;
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = e.path().map_err(|e| Error::Io {
            path: a.input.clone(),
            source: e,
        })?;
        let key = path.to_string_lossy().trim_start_matches("./").to_string();
        let mut w = store.blob_writer()?;
        std::io::copy(&mut e, &mut w).map_err(|e| Error::Io {
            path: a.input.clone(),
            source: e,
        })?;
        let (d, n) = w.commit(None)?;
        if let Some(hex) = key.strip_prefix("blobs/sha256/")
            && hex != d.hex()
        {
            return Err(bad(format!("{key} does not match its content digest {d}")));
        }
        files.insert(key, (d, n));
    }
    let read = |k: &str, limit: u64| -> crate::Result<Vec<u8>> {
        let (d, n) = files.get(k).ok_or_else(|| bad(format!("missing {k}")))?;
        if *n > limit {
            return Err(bad(format!(
                "{k} is {n} bytes, over the {limit}-byte limit"
            )));
        }
        Ok(store.read_blob(d)?)
    };
    let mut loaded = Vec::new();
    if files.contains_key("manifest.json") {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Entry {
            config: String,
            #[serde(default)]
            repo_tags: Option<Vec<String>>,
            layers: Vec<String>,
        }
        let entries: Vec<Entry> = serde_json::from_slice(&read("manifest.json", 4 << 20)?)
            .map_err(|e| bad(format!("manifest.json: {e}")))?;
        for en in entries {
            let (cfg_d, cfg_n) = files
                .get(&en.config)
                .cloned()
                .ok_or_else(|| bad(format!("missing {}", en.config)))?;
            let cfg: ImageConfig = serde_json::from_slice(&read(&en.config, 8 << 20)?)
                .map_err(|e| bad(format!("{}: {e}", en.config)))?;
            let _ = cfg;
            let mut layers = Vec::new();
            for l in &en.layers {
                let (d, n) = files
                    .get(l)
                    .cloned()
                    .ok_or_else(|| bad(format!("missing layer {l}")))?;
                let mut head = [0u8; 4];
                let got = store.open_blob(&d)?.read(&mut head).unwrap_or(0);
                let mt = if got >= 2 && head[..2] == [0x1f, 0x8b] {
                    media::DOCKER_LAYER_GZIP
                } else if got == 4 && head == [0x28, 0xb5, 0x2f, 0xfd] {
                    media::OCI_LAYER_ZSTD
                } else {
                    "application/vnd.docker.image.rootfs.diff.tar"
                };
                layers.push(Descriptor::new(mt, d, n));
            }
            let m = Manifest {
                schema_version: 2,
                media_type: Some(media::DOCKER_MANIFEST.into()),
                config: Descriptor::new(media::DOCKER_CONFIG, cfg_d, cfg_n),
                layers,
                annotations: None,
            };
            let bytes = serde_json::to_vec(&m).map_err(|e| bad(e.to_string()))?;
            let md = store.put_blob(&bytes)?;
            for t in en.repo_tags.unwrap_or_default() {
                let r = parse_ref(&t)?;
                store.set_image(&r.to_string(), &md)?;
                loaded.push(r.familiar());
            }
        }
    } else if files.contains_key("index.json") {
        let idx: Index = serde_json::from_slice(&read("index.json", 4 << 20)?)
            .map_err(|e| bad(format!("index.json: {e}")))?;
        for desc in &idx.manifests {
            let mut d = desc.digest.clone();
            if media::is_index(&desc.media_type) {
                let inner: Index =
                    serde_json::from_slice(&store.read_blob_limited(&d, "index", 4 << 20)?)
                        .map_err(|e| bad(format!("index {d}: {e}")))?;
                d = inner
                    .select(&Platform::host())
                    .map(|x| x.digest.clone())
                    .ok_or_else(|| bad(format!("index {d} has no manifest for this platform")))?;
            }
            store.load_image(&d)?;
            let ann = desc.annotations.clone().unwrap_or_default();
            let name = ann
                .get("io.containerd.image.name")
                .or_else(|| ann.get("org.opencontainers.image.ref.name"))
                .cloned();
            match name.and_then(|n| ImageRef::parse(&n).ok()) {
                Some(r) => {
                    store.set_image(&r.to_string(), &d)?;
                    loaded.push(r.familiar());
                }
                None => loaded.push(format!("{d} (untagged: name it with hoist tag {d} NAME)")),
            }
        }
    } else {
        return Err(bad(
            "neither manifest.json nor index.json found: not a docker-archive or OCI layout tar"
                .into(),
        ));
    }
    for l in loaded {
        outln!("Loaded image: {l}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Hook for the build cache: trims it per `--keep-storage`/`--all` and returns the blobs and
/// snapshots it still references, so `prune` keeps them. The engine/cache helper fills this in.
pub fn trim_build_cache_and_collect_roots(
    store: &Store,
    keep_storage: Option<u64>,
    all: bool,
) -> crate::Result<ExtraRoots> {
    let index = crate::cache::CacheIndex::open(&store.root().join("cache"))?;
    if all {
        index.trim(0)?;
    } else if let Some(keep) = keep_storage {
        index.trim(keep)?;
    }
    let mut roots = ExtraRoots::default();
    for e in index.entries()? {
        roots.blobs.insert(e.layer.digest);
        roots.snapshots.insert(e.layer.diff_id);
    }
    Ok(roots)
}

/// `hoist prune`.
pub fn prune(g: &GlobalArgs, a: PruneArgs) -> crate::Result<ExitCode> {
    let store = open_store(g)?;
    let keep = match &a.keep_storage {
        Some(s) => Some(crate::cache::parse_size(s).ok_or_else(|| {
            Error::Usage(format!("--keep-storage {s:?}: expected a size like 10GB"))
        })?),
        None => None,
    };
    let extra = trim_build_cache_and_collect_roots(&store, keep, a.all)?;
    let r = store.prune(&extra)?;
    outln!(
        "Deleted {} blobs and {} snapshots; total reclaimed space: {}",
        r.blobs_removed,
        r.snapshots_removed,
        human_size(r.bytes_freed)
    );
    Ok(ExitCode::SUCCESS)
}

/// `hoist fsck`.
pub fn fsck(g: &GlobalArgs, a: FsckArgs) -> crate::Result<ExitCode> {
    let store = open_store(g)?;
    let r = store.fsck(a.repair)?;
    for i in &r.issues {
        outln!("{i}");
    }
    outln!(
        "checked {} blobs and {} images: {} problems{}",
        r.blobs_checked,
        r.images_checked,
        r.issues.len(),
        if a.repair {
            format!(", {} repaired", r.repaired)
        } else {
            String::new()
        }
    );
    if !r.issues.is_empty() && !a.repair {
        outln!("run `hoist fsck --repair` to drop the bad entries");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_300_000), "4.300MB");
        assert_eq!(server_name("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(server_name("localhost:5000"), "localhost:5000");
    }
}

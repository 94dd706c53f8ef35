//! Local image commands (`images`, `tag`, `rmi`, `inspect`) and what every store command
//! shares: opening the store, finding an image by name or digest, parsing a reference, and
//! resolving a name to one platform's manifest (pulling it when the store lacks it).

use super::{GlobalArgs, RegistryTimeoutArgs};
use crate::Error;
use crate::oci::{Digest, ImageConfig, Manifest, Platform};
use crate::registry::{ImageRef, RegistryError};
use crate::store::{Store, StoreError};
use clap::Args;
use std::process::ExitCode;

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

/// Opens the store and, as every start does, removes what killed hoist processes left in its
/// sandbox pool (containers, overlay mounts, cgroups), so `fsck`/`prune` see a clean store.
pub(super) fn open_store(g: &GlobalArgs) -> crate::Result<Store> {
    let store = Store::open(&g.store_root())?;
    if rustix::process::geteuid().is_root() {
        let _ = crate::executor::cleanup_stale(&store.sandbox_pool());
    }
    Ok(store)
}

pub(super) fn parse_ref(s: &str) -> crate::Result<ImageRef> {
    Ok(ImageRef::parse(s).map_err(RegistryError::from)?)
}

/// Finds a local image by name, or by (a prefix of) its manifest digest.
pub(super) fn find_image(store: &Store, name: &str) -> crate::Result<(String, Digest)> {
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

/// The manifest digest, manifest and config of `name` for `platform`: from the store, else
/// pulled from its registry (`hoist diff`, `hoist sbom`).
pub(super) fn resolve_image(
    g: &GlobalArgs,
    timeouts: &RegistryTimeoutArgs,
    store: &Store,
    name: &str,
    platform: &Platform,
) -> crate::Result<(Digest, Manifest, ImageConfig)> {
    let digest = match find_image(store, name) {
        Ok((_, d)) => d,
        Err(Error::Store(StoreError::UnknownImage(_))) => {
            let r = parse_ref(name)?;
            let c = super::pull_push::client(g, timeouts, true)?;
            errln!("{name}: not in the store, pulling {r}");
            c.pull(&r, platform, store)?.manifest_digest
        }
        Err(e) => return Err(e),
    };
    let manifest = platform_manifest(store, name, &digest, platform)?;
    let (m, c) = store.load_image(&manifest)?;
    Ok((manifest, m, c))
}

/// `digest` itself, or for a multi-platform index its manifest for `platform`.
fn platform_manifest(
    store: &Store,
    name: &str,
    digest: &Digest,
    platform: &Platform,
) -> crate::Result<Digest> {
    let Some(idx) = store.load_index(digest)? else {
        return Ok(digest.clone());
    };
    let want = platform.to_string_short();
    idx.manifests
        .iter()
        .find(|e| e.platform.as_ref().map(Platform::to_string_short) == Some(want.clone()))
        .map(|e| e.digest.clone())
        .ok_or_else(|| {
            Error::Usage(format!(
                "{name} is a multi-platform image without {want}: choose one with --platform"
            ))
        })
}

/// `--platform` as given, else the host's.
pub(super) fn platform_arg(p: Option<&str>) -> crate::Result<Platform> {
    match p {
        Some(p) => Platform::parse(p)
            .ok_or_else(|| Error::Usage(format!("--platform {p:?}: expected os/arch[/variant]"))),
        None => Ok(Platform::host()),
    }
}

pub(super) fn human_size(n: u64) -> String {
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
    // Platforms of index rows: (row, platform, config digest, created, size).
    let mut platforms: Vec<(usize, String, Digest, String, String)> = Vec::new();
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
        // An index (a multi-platform build): its digest as ID, its images' total size, and
        // one indented line per platform below it.
        if let Ok(Some(idx)) = store.load_index(&d) {
            let mut subs = Vec::new();
            for m in &idx.manifests {
                let platform = m
                    .platform
                    .as_ref()
                    .map(|p| p.to_string_short())
                    .unwrap_or_else(|| "unknown".into());
                match store.load_image(&m.digest) {
                    Ok((mm, c)) => {
                        let size: u64 =
                            mm.layers.iter().map(|l| l.size).sum::<u64>() + mm.config.size;
                        subs.push((
                            platform,
                            mm.config.digest,
                            c.created.unwrap_or_default(),
                            size,
                        ));
                    }
                    Err(_) => subs.push((platform, m.digest.clone(), "(missing)".into(), 0)),
                }
            }
            let total: u64 = subs.iter().map(|s| s.3).sum();
            let created = subs.iter().map(|s| s.2.clone()).max().unwrap_or_default();
            rows.push((repo, tag, d.clone(), created, human_size(total)));
            for (platform, id, created, size) in subs {
                platforms.push((rows.len() - 1, platform, id, created, human_size(size)));
            }
            continue;
        }
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
    let show = |id: &Digest| {
        if a.no_trunc {
            id.to_string()
        } else {
            id.short().to_string()
        }
    };
    for (i, (repo, tag, id, created, size)) in rows.into_iter().enumerate() {
        outln!(
            "{repo:<40} {tag:<16} {:<14} {:<22} {size}",
            show(&id),
            created.get(..19).unwrap_or(&created)
        );
        for (_, platform, id, created, size) in platforms.iter().filter(|p| p.0 == i) {
            outln!(
                "  {:<55} {:<14} {:<22} {size}",
                format!("└ {platform}"),
                show(id),
                created.get(..19).unwrap_or(created)
            );
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_300_000), "4.300MB");
    }
}

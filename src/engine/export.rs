//! `--output` exporters beyond the store: the image's filesystem as a directory (`local`) or a
//! tar (`tar`), and the image as an OCI layout tar (`oci`) or a Docker archive (`docker`, an
//! OCI layout plus `manifest.json`, loadable by `docker load`).

use super::{BuildOutcome, EngineError, Result};
use crate::oci::{Descriptor, Digest, Index, media};
use crate::store::Store;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What `--output type=…` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// The root filesystem, as files in `dest`.
    Local,
    /// The root filesystem as one tar.
    Tar,
    /// An OCI image layout, as a tar.
    Oci,
    /// A Docker archive (`docker load`), as a tar.
    Docker,
}

impl OutputKind {
    /// `local`, `tar`, `oci`, `docker`.
    pub fn parse(s: &str) -> Option<OutputKind> {
        Some(match s {
            "local" => OutputKind::Local,
            "tar" => OutputKind::Tar,
            "oci" => OutputKind::Oci,
            "docker" => OutputKind::Docker,
            _ => return None,
        })
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
    move |source| EngineError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where a tar goes: a file, or stdout for `dest=-`.
fn open_dest(dest: &Path) -> Result<Box<dyn Write>> {
    if dest == Path::new("-") {
        return Ok(Box::new(std::io::stdout().lock()));
    }
    let f = std::fs::File::create(dest).map_err(io(dest))?;
    Ok(Box::new(std::io::BufWriter::with_capacity(1 << 20, f)))
}

/// Writes `outcome` to `dest` as `kind`. `names` are the `-t` references (for the archive's
/// tags); `source_date_epoch` clamps the archive entries' times.
pub fn write_output(
    store: &Store,
    isolation: &dyn crate::executor::Isolation,
    outcome: &BuildOutcome,
    kind: OutputKind,
    dest: &Path,
    names: &[String],
    source_date_epoch: Option<i64>,
) -> Result<()> {
    match kind {
        OutputKind::Local | OutputKind::Tar => {
            // Layers a build wrote or took from the cache may have no unpacked snapshot yet.
            let mut lowers: Vec<PathBuf> = Vec::new();
            for (desc, diff_id) in outcome
                .manifest
                .layers
                .iter()
                .zip(&outcome.config.rootfs.diff_ids)
            {
                let snapshot = crate::engine::base::ensure_snapshot(store, "export", desc, diff_id)
                    .map_err(|e| crate::engine::EngineError::BaseImage {
                        reference: format!("layer {} of the built image", desc.digest),
                        error: Box::new(e),
                    })?;
                lowers.push(snapshot);
            }
            let empty;
            let view;
            let root: &Path = if lowers.is_empty() {
                empty = store.tmp_dir()?;
                empty.path()
            } else {
                view = isolation.view(&lowers)?;
                view.path()
            };
            if kind == OutputKind::Local {
                std::fs::create_dir_all(dest).map_err(io(dest))?;
                copy_contents(root, dest)
            } else {
                let mut out = open_dest(dest)?;
                let opts = crate::layers::LayerOptions {
                    compression: crate::layers::Compression::Uncompressed,
                    source_date_epoch,
                };
                crate::layers::write_layer(root, &opts, &mut out)?;
                out.flush().map_err(io(dest))
            }
        }
        OutputKind::Oci | OutputKind::Docker => {
            let mut out = open_dest(dest)?;
            write_archive(store, outcome, kind, names, source_date_epoch, &mut out)
                .map_err(io(dest))?;
            out.flush().map_err(io(dest))
        }
    }
}

fn copy_contents(from: &Path, to: &Path) -> Result<()> {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg("--")
        .arg(from.join("."))
        .arg(to)
        .status()
        .map_err(io(from))?;
    if !status.success() {
        return Err(EngineError::Io {
            path: to.to_path_buf(),
            source: std::io::Error::other("copying the image's files (cp -a) failed"),
        });
    }
    Ok(())
}

fn header(path: &str, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    let _ = h.set_path(path);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(mtime);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    h
}

fn dir_header(path: &str, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    let _ = h.set_path(path);
    h.set_size(0);
    h.set_mode(0o755);
    h.set_mtime(mtime);
    h.set_entry_type(tar::EntryType::Directory);
    h.set_cksum();
    h
}

/// OCI layout (and for Docker, `manifest.json` too) streamed into a tar.
fn write_archive(
    store: &Store,
    outcome: &BuildOutcome,
    kind: OutputKind,
    names: &[String],
    source_date_epoch: Option<i64>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let mtime = source_date_epoch.unwrap_or(0).max(0) as u64;
    let mut tb = tar::Builder::new(out);
    let bytes_entry = |tb: &mut tar::Builder<&mut dyn Write>, path: &str, data: &[u8]| {
        tb.append(&header(path, data.len() as u64, mtime), data)
    };
    tb.append(&dir_header("blobs/", mtime), std::io::empty())?;
    tb.append(&dir_header("blobs/sha256/", mtime), std::io::empty())?;
    let blobs: Vec<&Digest> = std::iter::once(&outcome.config_digest)
        .chain(outcome.manifest.layers.iter().map(|l| &l.digest))
        .chain(std::iter::once(&outcome.manifest_digest))
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for d in blobs {
        if !seen.insert(d.clone()) {
            continue;
        }
        let f = store.open_blob(d).map_err(std::io::Error::other)?;
        let size = f.metadata()?.len();
        let h = header(&format!("blobs/sha256/{}", d.hex()), size, mtime);
        tb.append(&h, std::io::BufReader::with_capacity(1 << 20, f))?;
    }
    bytes_entry(&mut tb, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let mut desc = Descriptor::new(
        media::OCI_MANIFEST,
        outcome.manifest_digest.clone(),
        outcome.manifest_size,
    );
    if let Some(first) = names.first() {
        let mut a = BTreeMap::new();
        a.insert("io.containerd.image.name".to_string(), first.clone());
        if let Some((_, tag)) = first.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
            a.insert(
                "org.opencontainers.image.ref.name".to_string(),
                tag.to_string(),
            );
        }
        desc.annotations = Some(a);
    }
    let index = Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.into()),
        manifests: vec![desc],
        annotations: None,
    };
    bytes_entry(&mut tb, "index.json", &serde_json::to_vec(&index)?)?;
    if kind == OutputKind::Docker {
        let manifest = serde_json::json!([{
            "Config": format!("blobs/sha256/{}", outcome.config_digest.hex()),
            "RepoTags": names.iter().map(|n| docker_tag(n)).collect::<Vec<_>>(),
            "Layers": outcome.manifest.layers.iter()
                .map(|l| format!("blobs/sha256/{}", l.digest.hex()))
                .collect::<Vec<_>>(),
        }]);
        bytes_entry(&mut tb, "manifest.json", &serde_json::to_vec(&manifest)?)?;
    }
    tb.finish()
}

/// `docker.io/library/app:1` → `app:1`, `docker.io/team/app:1` → `team/app:1` as Docker shows
/// names; other registries are kept.
fn docker_tag(name: &str) -> String {
    let n = name.strip_prefix("docker.io/").unwrap_or(name);
    let n = if name.starts_with("docker.io/") {
        n.strip_prefix("library/").unwrap_or(n)
    } else {
        n
    };
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_docker_names() {
        assert_eq!(OutputKind::parse("oci"), Some(OutputKind::Oci));
        assert_eq!(OutputKind::parse("local"), Some(OutputKind::Local));
        assert_eq!(OutputKind::parse("image"), None);
        assert_eq!(docker_tag("docker.io/library/app:1"), "app:1");
        assert_eq!(docker_tag("docker.io/team/app:1"), "team/app:1");
        assert_eq!(
            docker_tag("localhost:5000/x/app:1"),
            "localhost:5000/x/app:1"
        );
    }
}

//! What a build writes besides the store: `--output` exporters (the image's filesystem as a
//! directory (`local`) or a tar (`tar`), the image as an OCI layout tar (`oci`) or a Docker
//! archive (`docker`, loadable by `docker load`)), `--iidfile` and `--metadata-file`. A
//! multi-platform image goes out as BuildKit writes it: a directory per platform, or an OCI
//! layout holding the index.

use super::index::IndexImage;
use super::{Assembled, BuildError, BuildPlan, Result};
use crate::engine::BuildOutcome;
use crate::oci::layout::{ArchiveFormat, ArchiveImage, ArchiveName};
use crate::oci::{Descriptor, Platform, media};
use crate::registry::ImageRef;
use crate::store::Store;
use crate::store::archive::ArchiveError;
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

/// One `--output` beyond the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub kind: OutputKind,
    /// A file or directory; `-` is stdout for the tar kinds.
    pub dest: PathBuf,
}

/// An image's name as archives spell it.
pub fn archive_name(r: &ImageRef) -> ArchiveName {
    ArchiveName {
        full: r.to_string(),
        tag: r.tag.clone(),
        familiar: r.familiar(),
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
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

/// Writes every `--output` of `plan`, then `--iidfile` and `--metadata-file`. `image` is
/// the assembled result, `platforms` each platform's image.
pub(super) fn write_all(
    store: &Store,
    isolation: &dyn crate::executor::Isolation,
    plan: &BuildPlan,
    image: &Assembled,
    platforms: &[(Platform, BuildOutcome)],
) -> crate::Result<()> {
    for o in &plan.outputs {
        // One platform with attestations is an index too, but a directory, a tar and a
        // Docker archive hold the image alone (docker load takes no attestations).
        let index = match (image, platforms) {
            (Assembled::Index(_), [(_, one)]) if o.kind != OutputKind::Oci => Err(one),
            (Assembled::Index(index), _) => Ok(index),
            (Assembled::Manifest(one), _) => Err(&**one),
        };
        match index {
            Err(outcome) => {
                // `manifest-descriptor` annotations: on the layout's `index.json` entry.
                let own = plan.annotations.of(
                    super::annotations::Kind::ManifestDescriptor,
                    platforms.first().map(|(p, _)| p),
                );
                write_output(
                    store,
                    isolation,
                    outcome,
                    o,
                    &plan.tags,
                    plan.source_date_epoch,
                    &own,
                )?
            }
            Ok(index) => write_index_output(
                store,
                isolation,
                index,
                platforms,
                o,
                &plan.tags,
                plan.source_date_epoch,
            )?,
        }
    }
    // BuildKit's image ID of a multi-platform image is the index digest.
    let (id, descriptor) = match image {
        Assembled::Manifest(o) => (
            o.config_digest.clone(),
            Descriptor::new(
                media::OCI_MANIFEST,
                o.manifest_digest.clone(),
                o.manifest_size,
            ),
        ),
        Assembled::Index(i) => (
            i.digest.clone(),
            Descriptor::new(media::OCI_INDEX, i.digest.clone(), i.size),
        ),
    };
    if let Some(f) = &plan.iidfile {
        std::fs::write(f, id.to_string()).map_err(|source| crate::Error::Io {
            path: f.clone(),
            source,
        })?;
    }
    if let Some(f) = &plan.metadata_file {
        let names: Vec<String> = plan.tags.iter().map(|t| t.to_string()).collect();
        // Keys in BuildKit's (sorted) order; a multi-platform image has no one config.
        let mut meta = serde_json::Map::new();
        if let Assembled::Manifest(o) = image {
            meta.insert(
                "containerimage.config.digest".into(),
                o.config_digest.to_string().into(),
            );
        }
        meta.insert(
            "containerimage.descriptor".into(),
            serde_json::json!({
                "mediaType": descriptor.media_type,
                "digest": descriptor.digest.to_string(),
                "size": descriptor.size,
            }),
        );
        meta.insert(
            "containerimage.digest".into(),
            descriptor.digest.to_string().into(),
        );
        meta.insert("image.name".into(), names.join(",").into());
        std::fs::write(f, serde_json::to_vec_pretty(&meta).unwrap_or_default()).map_err(
            |source| crate::Error::Io {
                path: f.clone(),
                source,
            },
        )?;
    }
    Ok(())
}

/// Writes a multi-platform image to `output` as BuildKit does: `local` gets one
/// `os_arch[_variant]` directory per platform, `tar` the same as one tar, `oci` a layout whose
/// `index.json` names the image index. `docker` was refused before the build.
fn write_index_output(
    store: &Store,
    isolation: &dyn crate::executor::Isolation,
    index: &IndexImage,
    platforms: &[(Platform, BuildOutcome)],
    output: &Output,
    names: &[ImageRef],
    source_date_epoch: Option<i64>,
) -> Result<()> {
    let dest = output.dest.as_path();
    match output.kind {
        OutputKind::Local => {
            for (p, o) in platforms {
                let sub = Output {
                    kind: OutputKind::Local,
                    dest: dest.join(p.dir_name()),
                };
                write_output(
                    store,
                    isolation,
                    o,
                    &sub,
                    names,
                    source_date_epoch,
                    &BTreeMap::new(),
                )?;
            }
            Ok(())
        }
        OutputKind::Tar => {
            let tmp = store.tmp_dir()?;
            for (p, o) in platforms {
                let sub = Output {
                    kind: OutputKind::Local,
                    dest: tmp.path().join(p.dir_name()),
                };
                write_output(
                    store,
                    isolation,
                    o,
                    &sub,
                    names,
                    source_date_epoch,
                    &BTreeMap::new(),
                )?;
            }
            let mut out = open_dest(dest)?;
            let opts = crate::layers::LayerOptions {
                compression: crate::layers::Compression::Uncompressed,
                source_date_epoch,
            };
            crate::layers::write_layer(tmp.path(), &opts, &mut out)?;
            out.flush().map_err(io(dest))
        }
        OutputKind::Oci | OutputKind::Docker => {
            let mut desc = Descriptor::new(media::OCI_INDEX, index.digest.clone(), index.size);
            if !index.descriptor_annotations.is_empty() {
                desc.annotations = Some(index.descriptor_annotations.clone());
            }
            let names: Vec<ArchiveName> = names.iter().map(archive_name).collect();
            let mtime = source_date_epoch.unwrap_or(0).max(0) as u64;
            let mut out = open_dest(dest)?;
            crate::store::archive::write_index_archive(store, &desc, &names, mtime, &mut out)
                .map_err(archive_error(dest))?;
            out.flush().map_err(io(dest))
        }
    }
}

/// An archive writer's error as this module's, naming `dest`.
fn archive_error(dest: &Path) -> impl FnOnce(ArchiveError) -> BuildError + '_ {
    move |e| match e {
        ArchiveError::Store(e) => BuildError::Store(e),
        ArchiveError::Io(source) => BuildError::Io {
            path: dest.to_path_buf(),
            source,
        },
        other => BuildError::Io {
            path: dest.to_path_buf(),
            source: std::io::Error::other(other),
        },
    }
}

/// Writes `outcome` to `output.dest` as `output.kind`. `names` are the image's names (the
/// archives' tags); `source_date_epoch` clamps the archive entries' times.
pub fn write_output(
    store: &Store,
    isolation: &dyn crate::executor::Isolation,
    outcome: &BuildOutcome,
    output: &Output,
    names: &[ImageRef],
    source_date_epoch: Option<i64>,
    descriptor_annotations: &BTreeMap<String, String>,
) -> Result<()> {
    let (kind, dest) = (output.kind, output.dest.as_path());
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
                    .map_err(|e| BuildError::Snapshot {
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
            let format = if kind == OutputKind::Oci {
                ArchiveFormat::Oci
            } else {
                ArchiveFormat::Docker
            };
            let mut manifest = Descriptor::new(
                media::OCI_MANIFEST,
                outcome.manifest_digest.clone(),
                outcome.manifest_size,
            );
            if !descriptor_annotations.is_empty() {
                manifest.annotations = Some(descriptor_annotations.clone());
            }
            let image = ArchiveImage {
                manifest,
                config: outcome.config_digest.clone(),
                layers: outcome
                    .manifest
                    .layers
                    .iter()
                    .map(|l| l.digest.clone())
                    .collect(),
                names: names.iter().map(archive_name).collect(),
            };
            let mtime = source_date_epoch.unwrap_or(0).max(0) as u64;
            let mut out = open_dest(dest)?;
            crate::store::archive::write_archive(store, &[image], format, mtime, &mut out)
                .map_err(archive_error(dest))?;
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
        return Err(BuildError::Io {
            path: to.to_path_buf(),
            source: std::io::Error::other("copying the image's files (cp -a) failed"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_docker_names() {
        assert_eq!(OutputKind::parse("oci"), Some(OutputKind::Oci));
        assert_eq!(OutputKind::parse("local"), Some(OutputKind::Local));
        assert_eq!(OutputKind::parse("image"), None);
        let name = |s: &str| archive_name(&ImageRef::parse(s).unwrap()).familiar;
        assert_eq!(name("docker.io/library/app:1"), "app:1");
        assert_eq!(name("docker.io/team/app:1"), "team/app:1");
        assert_eq!(name("localhost:5000/x/app:1"), "localhost:5000/x/app:1");
    }
}

//! `save` and `load`: images to and from a docker-archive or OCI layout tar, through the
//! store's one archive writer and reader (`store::archive`).

use super::GlobalArgs;
use super::images::{find_image, open_store, parse_ref};
use crate::Error;
use crate::build::outputs::archive_name;
use crate::oci::layout::{ArchiveFormat, ArchiveImage, ArchiveName};
use crate::oci::{Descriptor, Platform, media};
use crate::registry::ImageRef;
use crate::store::archive::{self, ArchiveError, NamesFrom};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

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

/// `hoist save`: docker-archive (Docker ≥ 25 layout: OCI blobs + manifest.json) or OCI layout.
pub fn save(g: &GlobalArgs, a: SaveArgs) -> crate::Result<ExitCode> {
    let format = match a.format.as_str() {
        "docker" | "docker-archive" => ArchiveFormat::Docker,
        "oci" | "oci-archive" => ArchiveFormat::Oci,
        f => {
            return Err(Error::Usage(format!(
                "--format {f:?}: expected docker or oci"
            )));
        }
    };
    let store = open_store(g)?;
    let mut images = Vec::new();
    let mut index = None;
    for img in &a.images {
        let (name, d) = find_image(&store, img)?;
        if store.load_index(&d)?.is_some() {
            // A multi-platform image: an OCI layout holding its index, alone.
            if format != ArchiveFormat::Oci || a.images.len() != 1 {
                return Err(Error::Usage(format!(
                    "{img} is a multi-platform image (an index): save it alone with --format oci"
                )));
            }
            let desc = Descriptor::new(media::OCI_INDEX, d.clone(), store.blob_size(&d)?);
            let names = ImageRef::parse(&name).map(|r| vec![archive_name(&r)]);
            index = Some((desc, names.unwrap_or_default()));
            continue;
        }
        let (m, _) = store.load_image(&d)?;
        let media_type = m.media_type.as_deref().unwrap_or(media::OCI_MANIFEST);
        images.push(ArchiveImage {
            manifest: Descriptor::new(media_type, d.clone(), store.blob_size(&d)?),
            config: m.config.digest.clone(),
            layers: m.layers.iter().map(|l| l.digest.clone()).collect(),
            names: vec![match ImageRef::parse(&name) {
                Ok(r) => archive_name(&r),
                // A stored name that no longer parses is kept as written, untagged.
                Err(_) => ArchiveName {
                    full: name.clone(),
                    tag: None,
                    familiar: name,
                },
            }],
        });
    }
    let out_path = &a.output;
    let io = |source| Error::Io {
        path: out_path.clone(),
        source,
    };
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
    {
        let mut w = std::io::BufWriter::new(tmp.as_file());
        match &index {
            Some((desc, names)) => archive::write_index_archive(&store, desc, names, 0, &mut w),
            None => archive::write_archive(&store, &images, format, 0, &mut w),
        }
        .map_err(|e| match e {
            ArchiveError::Store(e) => Error::Store(e),
            ArchiveError::Io(e) => io(e),
            other => io(std::io::Error::other(other)),
        })?;
        std::io::Write::flush(&mut w).map_err(io)?;
    }
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(out_path).map_err(|e| io(e.error))?;
    Ok(ExitCode::SUCCESS)
}

/// `hoist load`: docker-archive (old and new layouts) or OCI layout tar. Nothing from the
/// archive touches the filesystem except as verified blobs.
pub fn load(g: &GlobalArgs, a: LoadArgs) -> crate::Result<ExitCode> {
    let store = open_store(g)?;
    let f = std::fs::File::open(&a.input).map_err(|e| Error::Io {
        path: a.input.clone(),
        source: e,
    })?;
    let images = archive::read_archive(&store, f, &Platform::host()).map_err(|e| match e {
        ArchiveError::Store(e) => Error::Store(e),
        ArchiveError::Io(source) => Error::Io {
            path: a.input.clone(),
            source,
        },
        source => Error::Archive {
            path: a.input.clone(),
            source,
        },
    })?;
    let mut loaded = Vec::new();
    for img in images {
        match img.names_from {
            // Docker's names must parse; an image without any is loaded silently.
            NamesFrom::DockerManifest => {
                for t in &img.names {
                    let r = parse_ref(t)?;
                    store.set_image(&r.to_string(), &img.manifest)?;
                    loaded.push(r.familiar());
                }
            }
            NamesFrom::OciIndex => {
                let d = &img.manifest;
                match img.names.first().and_then(|n| ImageRef::parse(n).ok()) {
                    Some(r) => {
                        store.set_image(&r.to_string(), d)?;
                        loaded.push(r.familiar());
                    }
                    None => loaded.push(format!("{d} (untagged: name it with hoist tag {d} NAME)")),
                }
            }
        }
    }
    for l in loaded {
        outln!("Loaded image: {l}");
    }
    Ok(ExitCode::SUCCESS)
}

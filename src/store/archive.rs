//! The one writer and the one reader of image archives (`oci::layout`): an OCI layout or a
//! docker-archive streamed as a tar from the store's blobs, and such a tar (also Docker's
//! older layout) read back into the store. Nothing from an archive touches the filesystem
//! except as blobs verified against their digests.

use super::{Store, StoreError};
use crate::oci::layout::{self, ArchiveFormat, ArchiveImage, DockerManifestEntry};
use crate::oci::{Descriptor, Digest, ImageConfig, Index, Manifest, Platform, media};
use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};

/// Errors writing or reading an archive; the caller names the file.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading or writing the tar itself.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{entry} does not match its content digest {digest}")]
    DigestMismatch { entry: String, digest: Digest },
    #[error("missing {entry}")]
    Missing { entry: String },
    #[error("missing layer {entry}")]
    MissingLayer { entry: String },
    #[error("{entry} is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        entry: String,
        size: u64,
        limit: u64,
    },
    #[error("{entry}: {error}")]
    Json {
        entry: String,
        error: serde_json::Error,
    },
    #[error("index {digest} has no manifest for this platform")]
    NoPlatform { digest: Digest },
    #[error("neither manifest.json nor index.json found: not a docker-archive or OCI layout tar")]
    NotAnArchive,
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, ArchiveError>;

fn file_header(size: u64, mode: u32, mtime: u64, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(mtime);
    h.set_entry_type(kind);
    h
}

/// Writes `images` as `format` into `out`: their blobs (each once), `oci-layout`,
/// `index.json` and, for a docker-archive, `manifest.json`. Every entry is dated `mtime`.
pub fn write_archive(
    store: &Store,
    images: &[ArchiveImage],
    format: ArchiveFormat,
    mtime: u64,
    out: &mut dyn Write,
) -> Result<()> {
    let docker = if format == ArchiveFormat::Docker {
        let entries: Vec<DockerManifestEntry> =
            images.iter().map(ArchiveImage::docker_entry).collect();
        Some(to_json(&entries)?)
    } else {
        None
    };
    let blobs: Vec<&Digest> = images.iter().flat_map(ArchiveImage::blobs).collect();
    write_tar(
        store,
        &blobs,
        &to_json(&layout::index(images))?,
        docker.as_deref(),
        mtime,
        out,
    )
}

/// Writes the image index `index` (a descriptor of a stored index) as an OCI layout into
/// `out`: every blob of every image it lists, the index itself, and an `index.json` whose one
/// entry is the index, annotated with the first of `names`.
pub fn write_index_archive(
    store: &Store,
    index: &Descriptor,
    names: &[layout::ArchiveName],
    mtime: u64,
    out: &mut dyn Write,
) -> Result<()> {
    let bytes = store.read_blob_limited(&index.digest, "index", super::MAX_MANIFEST_SIZE)?;
    let idx: Index = serde_json::from_slice(&bytes).map_err(|error| ArchiveError::Json {
        entry: format!("index {}", index.digest),
        error,
    })?;
    let mut blobs: Vec<Digest> = Vec::new();
    for m in &idx.manifests {
        let (manifest, _) = store.load_image(&m.digest)?;
        blobs.push(manifest.config.digest.clone());
        blobs.extend(manifest.layers.iter().map(|l| l.digest.clone()));
        blobs.push(m.digest.clone());
    }
    blobs.push(index.digest.clone());
    // Only its `index.json` entry is used (the blobs are listed above), so `config` and
    // `layers` are placeholders.
    let top = ArchiveImage {
        manifest: index.clone(),
        config: index.digest.clone(),
        layers: vec![],
        names: names.to_vec(),
    };
    let refs: Vec<&Digest> = blobs.iter().collect();
    write_tar(
        store,
        &refs,
        &to_json(&layout::index(std::slice::from_ref(&top)))?,
        None,
        mtime,
        out,
    )
}

/// The one tar writer of both: `blobs` (each once), `oci-layout`, `index.json`, and the
/// docker-archive's `manifest.json` when given.
fn write_tar(
    store: &Store,
    blobs: &[&Digest],
    index_json: &[u8],
    docker_manifest: Option<&[u8]>,
    mtime: u64,
    out: &mut dyn Write,
) -> Result<()> {
    let mut tb = tar::Builder::new(out);
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut h = file_header(0, 0o755, mtime, tar::EntryType::Directory);
        tb.append_data(&mut h, dir, std::io::empty())?;
    }
    let mut seen = BTreeSet::new();
    for d in blobs {
        if !seen.insert((*d).clone()) {
            continue;
        }
        let f = store.open_blob(d)?;
        let size = f.metadata()?.len();
        let mut h = file_header(size, 0o644, mtime, tar::EntryType::Regular);
        let reader = std::io::BufReader::with_capacity(1 << 20, f);
        tb.append_data(&mut h, layout::blob_path(d), reader)?;
    }
    let mut file = |path: &str, data: &[u8]| {
        let mut h = file_header(data.len() as u64, 0o644, mtime, tar::EntryType::Regular);
        tb.append_data(&mut h, path, data)
    };
    file(layout::LAYOUT_FILE, layout::LAYOUT_JSON)?;
    file(layout::INDEX_FILE, index_json)?;
    if let Some(m) = docker_manifest {
        file(layout::DOCKER_MANIFEST_FILE, m)?;
    }
    tb.finish()?;
    Ok(())
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|error| ArchiveError::Json {
        entry: "archive metadata".into(),
        error,
    })
}

/// Where a loaded image's names came from (they are spelt differently).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamesFrom {
    /// `manifest.json`'s `RepoTags` (familiar names, maybe none).
    DockerManifest,
    /// The `index.json` entry's annotation (at most one full name).
    OciIndex,
}

/// An image read from an archive into the store.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    /// Its manifest in the store.
    pub manifest: Digest,
    /// The names the archive gives it, as written there.
    pub names: Vec<String>,
    pub names_from: NamesFrom,
}

/// Reads a docker-archive (old and new layouts) or OCI layout tar into the store: every
/// regular file becomes a verified blob, then `manifest.json` (preferred) or `index.json`
/// says which images they make; of an index, the manifest for `platform` is taken.
pub fn read_archive(
    store: &Store,
    input: impl Read,
    platform: &Platform,
) -> Result<Vec<LoadedImage>> {
    let mut ar = tar::Archive::new(std::io::BufReader::new(input));
    // Every regular file becomes a blob; remember its path.
    let mut files: HashMap<String, (Digest, u64)> = HashMap::new();
    for e in ar.entries()? {
        let mut e = e?;
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let key = e
            .path()?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let mut w = store.blob_writer()?;
        std::io::copy(&mut e, &mut w)?;
        let (d, n) = w.commit(None)?;
        if let Some(hex) = key.strip_prefix("blobs/sha256/")
            && hex != d.hex()
        {
            return Err(ArchiveError::DigestMismatch {
                entry: key,
                digest: d,
            });
        }
        files.insert(key, (d, n));
    }
    let read = |k: &str, limit: u64| -> Result<Vec<u8>> {
        let (d, n) = files.get(k).ok_or_else(|| ArchiveError::Missing {
            entry: k.to_string(),
        })?;
        if *n > limit {
            return Err(ArchiveError::TooLarge {
                entry: k.to_string(),
                size: *n,
                limit,
            });
        }
        Ok(store.read_blob(d)?)
    };
    let json = |entry: &str| {
        let entry = entry.to_string();
        move |error| ArchiveError::Json { entry, error }
    };
    let mut loaded = Vec::new();
    if files.contains_key(layout::DOCKER_MANIFEST_FILE) {
        let entries: Vec<DockerManifestEntry> =
            serde_json::from_slice(&read(layout::DOCKER_MANIFEST_FILE, 4 << 20)?)
                .map_err(json(layout::DOCKER_MANIFEST_FILE))?;
        for en in entries {
            let (cfg_d, cfg_n) =
                files
                    .get(&en.config)
                    .cloned()
                    .ok_or_else(|| ArchiveError::Missing {
                        entry: en.config.clone(),
                    })?;
            // Checked only: a config that does not parse is no image.
            let _: ImageConfig =
                serde_json::from_slice(&read(&en.config, 8 << 20)?).map_err(json(&en.config))?;
            let mut layers = Vec::new();
            for l in &en.layers {
                let (d, n) = files
                    .get(l)
                    .cloned()
                    .ok_or_else(|| ArchiveError::MissingLayer { entry: l.clone() })?;
                layers.push(Descriptor::new(sniff_layer(store, &d)?, d, n));
            }
            let m = Manifest {
                schema_version: 2,
                media_type: Some(media::DOCKER_MANIFEST.into()),
                config: Descriptor::new(media::DOCKER_CONFIG, cfg_d, cfg_n),
                layers,
                annotations: None,
            };
            let bytes = serde_json::to_vec(&m).map_err(json("image manifest"))?;
            loaded.push(LoadedImage {
                manifest: store.put_blob(&bytes)?,
                names: en.repo_tags.unwrap_or_default(),
                names_from: NamesFrom::DockerManifest,
            });
        }
    } else if files.contains_key(layout::INDEX_FILE) {
        let idx: Index = serde_json::from_slice(&read(layout::INDEX_FILE, 4 << 20)?)
            .map_err(json(layout::INDEX_FILE))?;
        for desc in &idx.manifests {
            let mut d = desc.digest.clone();
            if media::is_index(&desc.media_type) {
                let inner: Index =
                    serde_json::from_slice(&store.read_blob_limited(&d, "index", 4 << 20)?)
                        .map_err(json(&format!("index {d}")))?;
                d = inner
                    .select(platform)
                    .map(|x| x.digest.clone())
                    .ok_or(ArchiveError::NoPlatform { digest: d })?;
            }
            store.load_image(&d)?;
            loaded.push(LoadedImage {
                manifest: d,
                names: layout::entry_name(desc)
                    .map(str::to_string)
                    .into_iter()
                    .collect(),
                names_from: NamesFrom::OciIndex,
            });
        }
    } else {
        return Err(ArchiveError::NotAnArchive);
    }
    Ok(loaded)
}

/// A docker-archive layer's media type, from its first bytes (the archive does not say).
fn sniff_layer(store: &Store, d: &Digest) -> Result<&'static str> {
    let mut head = [0u8; 4];
    let got = store.open_blob(d)?.read(&mut head).unwrap_or(0);
    Ok(if got >= 2 && head[..2] == [0x1f, 0x8b] {
        media::DOCKER_LAYER_GZIP
    } else if got == 4 && head == [0x28, 0xb5, 0x2f, 0xfd] {
        media::OCI_LAYER_ZSTD
    } else {
        "application/vnd.docker.image.rootfs.diff.tar"
    })
}

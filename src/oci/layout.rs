//! The OCI image layout and the docker-archive (an OCI layout plus Docker's `manifest.json`):
//! file names, `index.json` and `manifest.json` contents, and how an image's names are spelt
//! in each. Plain data; the tar is written and read by `store::archive`.
//!
//! Naming follows BuildKit's exporter and `docker save` (Docker ≥ 25), both through
//! containerd's archive code: `io.containerd.image.name` holds the full name,
//! `org.opencontainers.image.ref.name` only its tag (the OCI spec's "reference name" is a tag,
//! not a repository), and `manifest.json`'s `RepoTags` the familiar `name:tag` Docker shows.

use super::{Descriptor, Digest, Index, media};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The layout marker file.
pub const LAYOUT_FILE: &str = "oci-layout";
/// Its content.
pub const LAYOUT_JSON: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
/// The layout's top-level index.
pub const INDEX_FILE: &str = "index.json";
/// Docker's image list in a docker-archive.
pub const DOCKER_MANIFEST_FILE: &str = "manifest.json";
/// containerd's annotation with the full image name.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// The OCI annotation with the reference name (the tag).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The path of a blob inside a layout: `blobs/sha256/<hex>`.
pub fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// Which archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// An OCI image layout.
    Oci,
    /// An OCI image layout plus `manifest.json`, loadable by `docker load`.
    Docker,
}

/// An image's name in the three spellings the formats use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveName {
    /// `docker.io/library/app:1`.
    pub full: String,
    /// `1`; none for a digest-only name.
    pub tag: Option<String>,
    /// `app:1`, as Docker shows it.
    pub familiar: String,
}

/// One image to archive: its manifest, the blobs it needs and its names.
#[derive(Debug, Clone)]
pub struct ArchiveImage {
    /// The manifest's descriptor (media type, digest, size, and any annotations of its own,
    /// such as `--annotation manifest-descriptor:…`).
    pub manifest: Descriptor,
    pub config: Digest,
    pub layers: Vec<Digest>,
    pub names: Vec<ArchiveName>,
}

impl ArchiveImage {
    /// The blobs to store under `blobs/`: config, layers, manifest.
    pub fn blobs(&self) -> impl Iterator<Item = &Digest> {
        std::iter::once(&self.config)
            .chain(&self.layers)
            .chain(std::iter::once(&self.manifest.digest))
    }

    /// The image's entry in `index.json`: the manifest, annotated with the first name (added
    /// to the descriptor's own annotations).
    pub fn index_descriptor(&self) -> Descriptor {
        let mut desc = self.manifest.clone();
        if let Some(first) = self.names.first() {
            let a = desc.annotations.get_or_insert_with(BTreeMap::new);
            a.insert(ANNOTATION_IMAGE_NAME.to_string(), first.full.clone());
            if let Some(tag) = &first.tag {
                a.insert(ANNOTATION_REF_NAME.to_string(), tag.clone());
            }
        }
        desc
    }

    /// Its entry in `manifest.json`: names that have a tag, as Docker shows them.
    pub fn docker_entry(&self) -> DockerManifestEntry {
        DockerManifestEntry {
            config: blob_path(&self.config),
            repo_tags: Some(
                self.names
                    .iter()
                    .filter(|n| n.tag.is_some())
                    .map(|n| n.familiar.clone())
                    .collect(),
            ),
            layers: self.layers.iter().map(blob_path).collect(),
        }
    }
}

/// `index.json` over `images`.
pub fn index(images: &[ArchiveImage]) -> Index {
    Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.into()),
        manifests: images.iter().map(ArchiveImage::index_descriptor).collect(),
        annotations: None,
    }
}

/// One image in a docker-archive's `manifest.json` (paths inside the archive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DockerManifestEntry {
    pub config: String,
    /// `null` in some archives.
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    pub layers: Vec<String>,
}

/// The name a loaded index entry gives its image: containerd's full name, else the OCI
/// reference name (which tools other than BuildKit and Docker may fill with a whole name).
pub fn entry_name(desc: &Descriptor) -> Option<&str> {
    let a = desc.annotations.as_ref()?;
    a.get(ANNOTATION_IMAGE_NAME)
        .or_else(|| a.get(ANNOTATION_REF_NAME))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::of(&[n])
    }

    #[test]
    fn names_follow_buildkit_and_docker() {
        let img = ArchiveImage {
            manifest: Descriptor::new(media::OCI_MANIFEST, d(1), 10),
            config: d(2),
            layers: vec![d(3)],
            names: vec![
                ArchiveName {
                    full: "docker.io/library/app:1".into(),
                    tag: Some("1".into()),
                    familiar: "app:1".into(),
                },
                ArchiveName {
                    full: "localhost:5000/x/app:2".into(),
                    tag: Some("2".into()),
                    familiar: "localhost:5000/x/app:2".into(),
                },
            ],
        };
        let desc = img.index_descriptor();
        let a = desc.annotations.as_ref().unwrap();
        assert_eq!(a[ANNOTATION_IMAGE_NAME], "docker.io/library/app:1");
        assert_eq!(a[ANNOTATION_REF_NAME], "1");
        assert_eq!(entry_name(&desc), Some("docker.io/library/app:1"));
        let e = img.docker_entry();
        assert_eq!(
            e.repo_tags.unwrap(),
            vec!["app:1".to_string(), "localhost:5000/x/app:2".to_string()]
        );
        assert_eq!(e.layers, vec![blob_path(&d(3))]);
        assert_eq!(img.blobs().collect::<Vec<_>>(), vec![&d(2), &d(3), &d(1)]);
        let untagged = ArchiveImage {
            names: vec![],
            ..img
        };
        assert!(untagged.index_descriptor().annotations.is_none());
        assert_eq!(untagged.docker_entry().repo_tags, Some(vec![]));
    }
}

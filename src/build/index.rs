//! Joining the per-platform images of a build into one OCI image index
//! (`application/vnd.oci.image.index.v1+json`), as BuildKit's image exporter does: one entry
//! per platform, in `--platform` order, each carrying the platform (os, architecture,
//! variant) it was built for. The index is stored as a blob; tags then name it, pushes send it
//! with all its images, and the OCI-layout output writes it.

use super::Result;
use crate::engine::BuildOutcome;
use crate::oci::{Descriptor, Digest, Index, Platform, media};
use crate::store::Store;
use std::collections::BTreeMap;

/// A stored image index over a build's platforms.
#[derive(Debug, Clone)]
pub struct IndexImage {
    pub digest: Digest,
    pub size: u64,
    pub index: Index,
    /// `--annotation index-descriptor:…`: for the index's own descriptor (an OCI layout's
    /// `index.json` entry).
    pub descriptor_annotations: BTreeMap<String, String>,
}

/// The index over `images` (no I/O): each entry is the platform's manifest descriptor with
/// the normalised platform it was built for.
pub fn index_of(images: &[(Platform, BuildOutcome)]) -> Index {
    Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.into()),
        manifests: images
            .iter()
            .map(|(p, o)| {
                let mt = o
                    .manifest
                    .media_type
                    .as_deref()
                    .unwrap_or(media::OCI_MANIFEST);
                let mut d = Descriptor::new(mt, o.manifest_digest.clone(), o.manifest_size);
                let p = p.normalized();
                d.platform = Some(Platform {
                    os: p.os,
                    architecture: p.architecture,
                    variant: p.variant,
                    ..Default::default()
                });
                d
            })
            .collect(),
        annotations: None,
    }
}

/// Writes the index over `images` (then their `attestations`) into the store, with the
/// `index` and `manifest-descriptor` annotations of `annotations`.
pub fn store_index(
    store: &Store,
    images: &[(Platform, BuildOutcome)],
    annotations: &super::Annotations,
    attestations: &[Descriptor],
) -> Result<IndexImage> {
    let mut index = index_of(images);
    let platforms: Vec<Platform> = images.iter().map(|(p, _)| p.clone()).collect();
    annotations.apply_to_index(&mut index, &platforms);
    // After the images, as BuildKit lists them.
    index.manifests.extend(attestations.iter().cloned());
    // Serialising plain data cannot fail; an empty document would fail the digest check.
    let bytes = serde_json::to_vec(&index).unwrap_or_default();
    let digest = store.put_blob(&bytes)?;
    Ok(IndexImage {
        digest,
        size: bytes.len() as u64,
        index,
        descriptor_annotations: annotations.of(super::annotations::Kind::IndexDescriptor, None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{ImageConfig, Manifest};

    fn outcome(n: u8) -> BuildOutcome {
        BuildOutcome {
            manifest_digest: Digest::of(&[n]),
            manifest: Manifest {
                schema_version: 2,
                media_type: Some(media::OCI_MANIFEST.into()),
                config: Descriptor::new(media::OCI_CONFIG, Digest::of(&[n, 1]), 2),
                layers: vec![],
                annotations: None,
            },
            manifest_size: 100 + n as u64,
            config_digest: Digest::of(&[n, 1]),
            config: ImageConfig::default(),
            cache_keys: vec![],
            cache_mounts: vec![],
            trace: Default::default(),
        }
    }

    #[test]
    fn entries_carry_their_platform_in_order() {
        let images = vec![
            (Platform::parse("linux/amd64").unwrap(), outcome(1)),
            (Platform::parse("linux/arm64/v8").unwrap(), outcome(2)),
            (Platform::parse("linux/arm/v7").unwrap(), outcome(3)),
        ];
        let json = serde_json::to_value(index_of(&images)).unwrap();
        assert_eq!(json["schemaVersion"], 2);
        assert_eq!(json["mediaType"], media::OCI_INDEX);
        let m = json["manifests"].as_array().unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0]["digest"], Digest::of(&[1]).to_string());
        assert_eq!(m[0]["size"], 101);
        assert_eq!(m[0]["mediaType"], media::OCI_MANIFEST);
        assert_eq!(
            m[0]["platform"],
            serde_json::json!({"architecture": "amd64", "os": "linux"})
        );
        assert_eq!(
            m[1]["platform"],
            serde_json::json!({"architecture": "arm64", "os": "linux"})
        );
        assert_eq!(
            m[2]["platform"],
            serde_json::json!({"architecture": "arm", "os": "linux", "variant": "v7"})
        );
    }
}

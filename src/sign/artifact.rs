//! The signature and attestation images cosign keeps beside an image: their tags
//! (`sha256-<hex>.sig` / `.att`), layer media types and annotations, the config blob listing
//! the layers, and adding one layer to an existing manifest. Pure: no I/O.

use crate::oci::{Descriptor, Digest, media};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Layer annotation holding the base64 signature of a simple-signing layer.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Layer annotation naming an attestation's predicate type.
pub const PREDICATE_TYPE_ANNOTATION: &str = "predicateType";

/// A signature or an attestation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `.sig`: simple-signing payloads, signed in an annotation.
    Signature,
    /// `.att`: DSSE envelopes around in-toto statements.
    Attestation,
}

impl Kind {
    /// The tag suffix.
    pub fn suffix(self) -> &'static str {
        match self {
            Kind::Signature => "sig",
            Kind::Attestation => "att",
        }
    }

    /// The media type of this kind's layers.
    pub fn layer_media_type(self) -> &'static str {
        match self {
            Kind::Signature => "application/vnd.dev.cosign.simplesigning.v1+json",
            Kind::Attestation => "application/vnd.dsse.envelope.v1+json",
        }
    }

    /// The `artifactType` of this kind's manifests (found through the referrers API).
    pub fn artifact_type(self) -> &'static str {
        match self {
            Kind::Signature => "application/vnd.dev.cosign.artifact.sig.v1+json",
            Kind::Attestation => "application/vnd.dev.cosign.artifact.att.v1+json",
        }
    }

    /// `sha256-<hex>.sig` / `.att`: the tag cosign reads for `digest`.
    pub fn tag(self, digest: &Digest) -> String {
        format!("{}-{}.{}", digest.algorithm(), digest.hex(), self.suffix())
    }
}

/// A signature image's manifest: an OCI image manifest with OCI 1.1's `artifactType` and
/// `subject`. Unknown fields of a manifest written by another tool are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SigManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// The config blob cosign writes for a signature image: empty fields, zero times, and the
/// layers' digests as `diff_ids` (the layers are uncompressed).
pub fn config_blob(layers: &[Descriptor]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| l.digest.to_string()).collect();
    let v = serde_json::json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {}
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

/// A new layer for `blob` with `annotations`.
pub fn layer(kind: Kind, blob: &[u8], annotations: BTreeMap<String, String>) -> Descriptor {
    let mut d = Descriptor::new(kind.layer_media_type(), Digest::of(blob), blob.len() as u64);
    d.annotations = Some(annotations);
    d
}

/// What to push after adding a layer: the manifest bytes and the config blob.
#[derive(Debug, Clone)]
pub struct Updated {
    pub manifest: Vec<u8>,
    pub config: Vec<u8>,
}

/// `existing` (the manifest under the tag, if any) with `new` appended, its config rebuilt,
/// and `subject` and the artifact type set; `None` when an identical layer (same blob, same
/// annotations) is already there, as cosign skips a duplicate signature.
pub fn append(
    kind: Kind,
    existing: Option<SigManifest>,
    new: Descriptor,
    subject: Descriptor,
) -> Option<Updated> {
    let mut m = existing.unwrap_or_else(|| SigManifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_string()),
        artifact_type: None,
        config: Descriptor::new(media::OCI_CONFIG, Digest::of(b""), 0),
        layers: Vec::new(),
        subject: None,
        annotations: None,
        other: BTreeMap::new(),
    });
    if m.layers
        .iter()
        .any(|l| l.digest == new.digest && l.annotations == new.annotations)
    {
        return None;
    }
    m.layers.push(new);
    let config = config_blob(&m.layers);
    m.media_type = Some(media::OCI_MANIFEST.to_string());
    m.config = Descriptor::new(media::OCI_CONFIG, Digest::of(&config), config.len() as u64);
    m.artifact_type = Some(kind.artifact_type().to_string());
    m.subject = Some(subject);
    let manifest = serde_json::to_vec(&m).unwrap_or_default();
    Some(Updated { manifest, config })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig_layer(payload: &[u8], sig: &str) -> Descriptor {
        let mut a = BTreeMap::new();
        a.insert(SIGNATURE_ANNOTATION.to_string(), sig.to_string());
        layer(Kind::Signature, payload, a)
    }

    #[test]
    fn tags_are_cosigns() {
        let d = Digest::of(b"x");
        assert_eq!(Kind::Signature.tag(&d), format!("sha256-{}.sig", d.hex()));
        assert_eq!(Kind::Attestation.tag(&d), format!("sha256-{}.att", d.hex()));
    }

    #[test]
    fn append_builds_appends_and_skips_duplicates() {
        let subject = Descriptor::new(media::OCI_MANIFEST, Digest::of(b"img"), 3);
        let first = append(
            Kind::Signature,
            None,
            sig_layer(b"p", "AAA"),
            subject.clone(),
        )
        .unwrap();
        let m: SigManifest = serde_json::from_slice(&first.manifest).unwrap();
        assert_eq!(m.layers.len(), 1);
        assert_eq!(m.config.digest, Digest::of(&first.config));
        assert_eq!(m.subject.as_ref(), Some(&subject));
        assert_eq!(
            m.layers[0].media_type,
            "application/vnd.dev.cosign.simplesigning.v1+json"
        );
        let cfg: serde_json::Value = serde_json::from_slice(&first.config).unwrap();
        assert_eq!(
            cfg["rootfs"]["diff_ids"][0],
            Digest::of(b"p").to_string().as_str()
        );
        assert!(
            append(
                Kind::Signature,
                Some(m.clone()),
                sig_layer(b"p", "AAA"),
                subject.clone()
            )
            .is_none()
        );
        let second = append(Kind::Signature, Some(m), sig_layer(b"p", "BBB"), subject).unwrap();
        let m2: SigManifest = serde_json::from_slice(&second.manifest).unwrap();
        assert_eq!(m2.layers.len(), 2);
        let cfg: serde_json::Value = serde_json::from_slice(&second.config).unwrap();
        assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn unknown_fields_survive() {
        let raw = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": {"mediaType": media::OCI_CONFIG, "digest": Digest::of(b"c").to_string(), "size": 1},
            "layers": [],
            "x-vendor": {"a": 1}
        });
        let m: SigManifest = serde_json::from_value(raw).unwrap();
        let subject = Descriptor::new(media::OCI_MANIFEST, Digest::of(b"img"), 3);
        let u = append(Kind::Signature, Some(m), sig_layer(b"p", "A"), subject).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&u.manifest).unwrap();
        assert_eq!(v["x-vendor"]["a"], 1);
    }
}

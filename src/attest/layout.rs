//! Attestation manifests in an image index, as BuildKit stores them
//! (`docs/attestations/attestation-storage.md`): per platform one OCI manifest whose layers
//! are in-toto statements (`application/vnd.in-toto+json`, annotated with their predicate
//! type) and whose config is a placeholder image config for `unknown/unknown`; its index
//! entry has platform `unknown/unknown` (so no runtime picks it) and the annotations
//! `vnd.docker.reference.type=attestation-manifest` and `vnd.docker.reference.digest`
//! naming the image manifest it is about. BuildKit's default (legacy, non-`oci-artifact`)
//! form, which every registry accepts.

use super::statement::MEDIA_TYPE;
use super::{AttestError, Result};
use crate::oci::{Descriptor, Digest, Index, Platform, media};
use crate::store::Store;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Index annotation: what an entry is.
pub const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
/// Index annotation: the manifest an attestation manifest is about.
pub const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
/// [`REFERENCE_TYPE`]'s value for attestations.
pub const ATTESTATION_MANIFEST: &str = "attestation-manifest";
/// Layer annotation: the statement's predicate type.
pub const PREDICATE_TYPE: &str = "in-toto.io/predicate-type";
/// Statements larger than this are not read back (BuildKit caps them at 40 MiB too).
pub const MAX_STATEMENT: u64 = 40 << 20;

/// The platform of attestation manifests.
pub fn unknown_platform() -> Platform {
    Platform {
        architecture: "unknown".into(),
        os: "unknown".into(),
        ..Default::default()
    }
}

/// Stores `statements` about `subject` (an image manifest) as an attestation manifest and
/// returns its index entry.
pub fn store_attestations(
    store: &Store,
    subject: &Descriptor,
    statements: &[Value],
) -> Result<Descriptor> {
    let mut layers = vec![];
    for s in statements {
        let bytes = serde_json::to_vec(s).map_err(|e| AttestError::BadManifest {
            digest: subject.digest.to_string(),
            reason: format!("cannot serialise a statement: {e}"),
        })?;
        let digest = store.put_blob(&bytes)?;
        let mut d = Descriptor::new(MEDIA_TYPE, digest, bytes.len() as u64);
        let pt = s["predicateType"].as_str().unwrap_or_default().to_string();
        d.annotations = Some(BTreeMap::from([(PREDICATE_TYPE.to_string(), pt)]));
        layers.push(d);
    }
    // BuildKit's placeholder config: the statements are the "layers" (uncompressed).
    let config = json!({
        "architecture": "unknown",
        "os": "unknown",
        "config": {},
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.digest.to_string()).collect::<Vec<_>>(),
        },
    });
    let config_bytes = serde_json::to_vec(&config).unwrap_or_default();
    let config_digest = store.put_blob(&config_bytes)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {
            "mediaType": media::OCI_CONFIG,
            "digest": config_digest.to_string(),
            "size": config_bytes.len(),
        },
        "layers": layers,
    });
    let bytes = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    let digest = store.put_blob(&bytes)?;
    let mut d = Descriptor::new(media::OCI_MANIFEST, digest, bytes.len() as u64);
    d.annotations = Some(BTreeMap::from([
        (REFERENCE_DIGEST.to_string(), subject.digest.to_string()),
        (REFERENCE_TYPE.to_string(), ATTESTATION_MANIFEST.to_string()),
    ]));
    d.platform = Some(unknown_platform());
    Ok(d)
}

/// Whether an index entry is an attestation manifest.
pub fn is_attestation(d: &Descriptor) -> bool {
    d.annotations
        .as_ref()
        .and_then(|a| a.get(REFERENCE_TYPE))
        .is_some_and(|t| t == ATTESTATION_MANIFEST)
}

/// One statement of an attestation manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredStatement {
    pub predicate_type: String,
    pub layer: Descriptor,
}

/// An image's attestation manifest, as found in its index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// The image manifest it is about.
    pub subject: Digest,
    /// The attestation manifest itself.
    pub manifest: Descriptor,
    pub statements: Vec<StoredStatement>,
}

/// The attestation manifests of `index` whose blobs are in `store` (a pulled image may
/// lack them: only what was fetched is listed).
pub fn attached(store: &Store, index: &Index) -> Result<Vec<Attached>> {
    let mut out = vec![];
    for d in index.manifests.iter().filter(|d| is_attestation(d)) {
        let Some(subject) = d
            .annotations
            .as_ref()
            .and_then(|a| a.get(REFERENCE_DIGEST))
            .and_then(|s| s.parse::<Digest>().ok())
        else {
            continue;
        };
        if !store.has_blob(&d.digest) {
            continue;
        }
        let bytes = store.read_blob_limited(&d.digest, "manifest", 4 << 20)?;
        let m: crate::oci::Manifest =
            serde_json::from_slice(&bytes).map_err(|e| AttestError::BadManifest {
                digest: d.digest.to_string(),
                reason: e.to_string(),
            })?;
        let statements = m
            .layers
            .iter()
            .filter(|l| l.media_type == MEDIA_TYPE)
            .map(|l| StoredStatement {
                predicate_type: l
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(PREDICATE_TYPE))
                    .cloned()
                    .unwrap_or_default(),
                layer: l.clone(),
            })
            .collect();
        out.push(Attached {
            subject,
            manifest: d.clone(),
            statements,
        });
    }
    Ok(out)
}

/// Reads a stored statement, checking it is JSON and within the size cap.
pub fn read_statement(store: &Store, layer: &Descriptor) -> Result<Value> {
    let bytes = store.read_blob_limited(&layer.digest, "in-toto statement", MAX_STATEMENT)?;
    serde_json::from_slice(&bytes).map_err(|e| AttestError::BadManifest {
        digest: layer.digest.to_string(),
        reason: format!("statement is not JSON: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::statement::{PREDICATE_SLSA1, statement};

    #[test]
    fn stored_as_buildkit_lays_them_out_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let image = Descriptor::new(media::OCI_MANIFEST, Digest::of(b"image"), 42);
        let s = statement(vec![json!({"name": "_"})], PREDICATE_SLSA1, json!({"a": 1}));
        let d = store_attestations(&store, &image, std::slice::from_ref(&s)).unwrap();
        let entry = serde_json::to_value(&d).unwrap();
        assert_eq!(
            entry["platform"],
            json!({"architecture": "unknown", "os": "unknown"})
        );
        assert_eq!(
            entry["annotations"][REFERENCE_DIGEST],
            image.digest.to_string()
        );
        assert_eq!(entry["annotations"][REFERENCE_TYPE], ATTESTATION_MANIFEST);
        let m: Value = serde_json::from_slice(&store.read_blob(&d.digest).unwrap()).unwrap();
        assert_eq!(m["layers"][0]["mediaType"], MEDIA_TYPE);
        assert_eq!(
            m["layers"][0]["annotations"][PREDICATE_TYPE],
            PREDICATE_SLSA1
        );
        let config: Value = serde_json::from_slice(
            &store
                .read_blob(&m["config"]["digest"].as_str().unwrap().parse().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(config["rootfs"]["diff_ids"][0], m["layers"][0]["digest"]);

        let index = Index {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.into()),
            manifests: vec![image.clone(), d.clone()],
            annotations: None,
        };
        let found = attached(&store, &index).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].subject, image.digest);
        assert_eq!(found[0].statements[0].predicate_type, PREDICATE_SLSA1);
        assert_eq!(
            read_statement(&store, &found[0].statements[0].layer).unwrap(),
            s
        );
        // The image's own entry is not an attestation; an index without any has none.
        assert!(!is_attestation(&image));
    }

    #[test]
    fn hostile_attestations_are_refused_with_the_blob_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // Not JSON.
        let junk = store.put_blob(b"\x00not json").unwrap();
        let layer = Descriptor::new(MEDIA_TYPE, junk.clone(), 9);
        let e = read_statement(&store, &layer).unwrap_err().to_string();
        assert!(e.contains(&junk.to_string()), "{e}");
        // Over the cap: refused before it is read whole.
        let big = store
            .put_blob(&vec![b' '; (MAX_STATEMENT + 1) as usize])
            .unwrap();
        let layer = Descriptor::new(MEDIA_TYPE, big, MAX_STATEMENT + 1);
        assert!(read_statement(&store, &layer).is_err());
        // An entry claiming to be an attestation with a bad subject or a manifest that is not
        // one is skipped or refused, never trusted.
        let mut entry = Descriptor::new(media::OCI_MANIFEST, junk.clone(), 9);
        entry.annotations = Some(BTreeMap::from([
            (REFERENCE_TYPE.to_string(), ATTESTATION_MANIFEST.to_string()),
            (REFERENCE_DIGEST.to_string(), "not-a-digest".to_string()),
        ]));
        let index = Index {
            schema_version: 2,
            media_type: None,
            manifests: vec![entry.clone()],
            annotations: None,
        };
        assert!(attached(&store, &index).unwrap().is_empty());
        entry.annotations.as_mut().unwrap().insert(
            REFERENCE_DIGEST.to_string(),
            Digest::of(b"image").to_string(),
        );
        let index = Index {
            manifests: vec![entry],
            ..index
        };
        assert!(attached(&store, &index).is_err());
    }
}

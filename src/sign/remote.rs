//! Signing against a registry, without the store: resolve the image to the digest it is
//! signed as (an index's own digest, as cosign does), build the layer, read the existing
//! `.sig`/`.att` manifest, and push the payload, the config and the grown manifest.

use super::artifact::{self, Kind, PREDICATE_TYPE_ANNOTATION, SIGNATURE_ANNOTATION, SigManifest};
use super::keys::SigningKey;
use super::{Result, SignError, dsse, payload};
use crate::oci::{Descriptor, Digest, Index, Manifest, media};
use crate::registry::{Client, ImageRef};
use base64::Engine as _;
use std::collections::BTreeMap;

/// The index annotation marking an attestation manifest (BuildKit) and the one naming the
/// manifest it attests.
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
const ATTESTATION_MANIFEST: &str = "attestation-manifest";

/// The largest in-toto statement read from an attestation manifest (SBOMs can be large).
pub(super) const MAX_STATEMENT_SIZE: u64 = 64 << 20;

/// Settings of [`sign_image`].
#[derive(Debug, Clone, Default)]
pub struct SignOptions {
    /// Optional claims written into the payload (`-a key=value`).
    pub annotations: BTreeMap<String, String>,
}

/// What a signing pushed.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The digest that was signed (or attested).
    pub subject: Digest,
    /// Where the signatures are: `REPO:sha256-<hex>.sig` (or `.att`).
    pub tag: ImageRef,
    /// Digest of the signature manifest now under that tag.
    pub manifest: Digest,
    /// Layers added (0 when an identical signature was there already).
    pub added: usize,
}

/// An image resolved to what is signed: the reference pinned to its digest and the
/// descriptor of its manifest (or index), with the bytes.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub image: ImageRef,
    pub descriptor: Descriptor,
    pub bytes: Vec<u8>,
}

/// Fetches `image`'s manifest (by digest when it has one, verified; else by tag).
pub fn resolve(client: &Client, image: &ImageRef) -> Result<Resolved> {
    let (bytes, media_type, digest) = client.get_manifest(image)?;
    Ok(Resolved {
        image: image.with_digest(&digest),
        descriptor: Descriptor::new(&media_type, digest, bytes.len() as u64),
        bytes,
    })
}

/// Signs `image` (a tag is resolved to its digest; a digest is used as given) with `key`:
/// the simple-signing payload naming the manifest digest, as one more layer of the
/// `sha256-<hex>.sig` manifest in the image's repository (with `subject` set, for registries
/// with the referrers API). The call the build's `--sign key=…` makes after a push.
pub fn sign_image(
    client: &Client,
    image: &ImageRef,
    key: &SigningKey,
    opts: &SignOptions,
) -> Result<Signed> {
    client.operation(format!("signing {image}"), || {
        let subject = resolve(client, image)?;
        let digest = &subject.descriptor.digest;
        let body = payload::build(image, digest, &opts.annotations);
        let sig = base64::engine::general_purpose::STANDARD.encode(key.sign(&body));
        let mut ann = BTreeMap::new();
        ann.insert(SIGNATURE_ANNOTATION.to_string(), sig);
        let layer = artifact::layer(Kind::Signature, &body, ann);
        push_layers(
            client,
            image,
            Kind::Signature,
            &subject.descriptor,
            vec![(layer, body)],
        )
    })
}

/// Attests `image` with `statements` (in-toto statements, JSON bytes, as the build made
/// them): each sealed in a DSSE envelope signed with `key`, one layer each of the
/// `sha256-<hex>.att` manifest. Every statement must name the image's digest as a subject
/// (verification requires it); one that does not is refused before anything is pushed.
pub fn attest_image(
    client: &Client,
    image: &ImageRef,
    key: &SigningKey,
    statements: &[Vec<u8>],
) -> Result<Signed> {
    client.operation(format!("attesting {image}"), || {
        let subject = resolve(client, image)?;
        let digest = subject.descriptor.digest.to_string();
        let mut layers = Vec::new();
        for (i, st) in statements.iter().enumerate() {
            let bad = |reason: String| SignError::BadStatement {
                image: image.to_string(),
                reason: format!("statement {}: {reason}", i + 1),
            };
            let info = dsse::statement_info(st).map_err(bad)?;
            if !info.subjects.contains(&digest) {
                return Err(bad(format!(
                    "its subjects ({}) do not include {digest}",
                    info.subjects.join(", ")
                )));
            }
            let env = dsse::seal(key, st);
            let mut ann = BTreeMap::new();
            ann.insert(PREDICATE_TYPE_ANNOTATION.to_string(), info.predicate_type);
            // cosign writes the annotation empty on attestations: the signature is inside.
            ann.insert(SIGNATURE_ANNOTATION.to_string(), String::new());
            layers.push((artifact::layer(Kind::Attestation, &env, ann), env));
        }
        push_layers(
            client,
            image,
            Kind::Attestation,
            &subject.descriptor,
            layers,
        )
    })
}

/// Appends `layers` (descriptor, blob) to the `kind` manifest of `subject` and pushes it.
fn push_layers(
    client: &Client,
    image: &ImageRef,
    kind: Kind,
    subject: &Descriptor,
    layers: Vec<(Descriptor, Vec<u8>)>,
) -> Result<Signed> {
    let tag = image.with_tag(&kind.tag(&subject.digest));
    let existing = client.get_manifest_if_exists(&tag)?;
    let mut current_digest = existing.as_ref().map(|(_, _, d)| d.clone());
    let mut current: Option<SigManifest> =
        match &existing {
            Some((bytes, _, _)) => Some(serde_json::from_slice(bytes).map_err(|e| {
                SignError::BadArtifact {
                    image: image.to_string(),
                    what: format!("the manifest under {tag}"),
                    reason: format!(
                        "not an image manifest hoist can add to ({e}); delete the tag to start over"
                    ),
                }
            })?),
            None => None,
        };
    let mut added = 0;
    let mut pending = None;
    for (layer, blob) in layers {
        let Some(u) = artifact::append(kind, current.clone(), layer, subject.clone()) else {
            continue;
        };
        client.push_blob_bytes(&tag, &blob)?;
        current = serde_json::from_slice(&u.manifest).ok();
        pending = Some(u);
        added += 1;
    }
    if let Some(u) = pending {
        client.push_blob_bytes(&tag, &u.config)?;
        current_digest = Some(client.put_manifest(&tag, &u.manifest, media::OCI_MANIFEST)?);
    }
    let manifest = current_digest.ok_or_else(|| SignError::BadStatement {
        image: image.to_string(),
        reason: "nothing to attest: no statement given".into(),
    })?;
    Ok(Signed {
        subject: subject.digest.clone(),
        tag,
        manifest,
        added,
    })
}

/// The in-toto statements BuildKit-style attestation manifests of `image`'s index carry, by
/// the manifest they attest (empty for a single manifest): for `hoist sign --attestations`.
pub fn index_attestations(
    client: &Client,
    image: &ImageRef,
) -> Result<Vec<(Digest, Vec<Vec<u8>>)>> {
    let top = resolve(client, image)?;
    if !media::is_index(&top.descriptor.media_type) {
        return Ok(Vec::new());
    }
    let bad = |what: String, reason: String| SignError::BadArtifact {
        image: image.to_string(),
        what,
        reason,
    };
    let idx: Index =
        serde_json::from_slice(&top.bytes).map_err(|e| bad("its index".into(), e.to_string()))?;
    let mut out = Vec::new();
    for entry in &idx.manifests {
        let ann = entry.annotations.as_ref();
        if ann.and_then(|a| a.get(REFERENCE_TYPE)).map(String::as_str) != Some(ATTESTATION_MANIFEST)
        {
            continue;
        }
        let what = format!("attestation manifest {}", entry.digest);
        let subject: Digest = ann
            .and_then(|a| a.get(REFERENCE_DIGEST))
            .ok_or_else(|| bad(what.clone(), format!("no {REFERENCE_DIGEST} annotation")))?
            .parse()
            .map_err(|e| bad(what.clone(), format!("{REFERENCE_DIGEST}: {e}")))?;
        let (bytes, _, _) = client.get_manifest(&image.with_digest(&entry.digest))?;
        let m: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| bad(what.clone(), e.to_string()))?;
        let mut statements = Vec::new();
        for l in m
            .layers
            .iter()
            .filter(|l| l.media_type == dsse::IN_TOTO_PAYLOAD_TYPE)
        {
            statements.push(client.fetch_blob_bytes(image, l, MAX_STATEMENT_SIZE)?);
        }
        if !statements.is_empty() {
            out.push((subject, statements));
        }
    }
    Ok(out)
}

/// The digests `--attestations` looks at for `resolved`: its own, and for an index its
/// image manifests (attestation manifests left out), where BuildKit's statements point.
pub(super) fn attestation_targets(resolved: &Resolved) -> Vec<Digest> {
    let mut out = vec![resolved.descriptor.digest.clone()];
    if media::is_index(&resolved.descriptor.media_type)
        && let Ok(idx) = serde_json::from_slice::<Index>(&resolved.bytes)
    {
        for e in &idx.manifests {
            let is_att = e
                .annotations
                .as_ref()
                .and_then(|a| a.get(REFERENCE_TYPE))
                .is_some_and(|t| t == ATTESTATION_MANIFEST);
            if !is_att && !out.contains(&e.digest) {
                out.push(e.digest.clone());
            }
        }
    }
    out
}

/// Signs every attestation statement `image`'s index carries as DSSE envelopes on the
/// manifest each is about (`.att`); returns, per attested manifest, how many statements and
/// what was pushed. Empty for an image without attestation manifests.
pub fn attest_index(
    client: &Client,
    image: &ImageRef,
    key: &SigningKey,
) -> Result<Vec<(usize, Signed)>> {
    let mut out = Vec::new();
    for (subject, statements) in index_attestations(client, image)? {
        let at = attest_image(client, &image.with_digest(&subject), key, &statements)?;
        out.push((statements.len(), at));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attestation_targets_skip_attestation_manifests() {
        let img = Digest::of(b"img");
        let att = Digest::of(b"att");
        let mut a = BTreeMap::new();
        a.insert(REFERENCE_TYPE.to_string(), ATTESTATION_MANIFEST.to_string());
        a.insert(REFERENCE_DIGEST.to_string(), img.to_string());
        let mut att_desc = Descriptor::new(media::OCI_MANIFEST, att, 10);
        att_desc.annotations = Some(a);
        let idx = Index {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.into()),
            manifests: vec![
                Descriptor::new(media::OCI_MANIFEST, img.clone(), 10),
                att_desc,
            ],
            annotations: None,
        };
        let bytes = serde_json::to_vec(&idx).unwrap();
        let top = Digest::of(&bytes);
        let r = Resolved {
            image: ImageRef::parse(&format!("localhost:5000/a@{top}")).unwrap(),
            descriptor: Descriptor::new(media::OCI_INDEX, top.clone(), bytes.len() as u64),
            bytes,
        };
        assert_eq!(attestation_targets(&r), vec![top, img]);
    }
}

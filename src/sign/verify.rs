//! Verification against a registry, which is untrusted: every candidate signature comes
//! from the referrers API (where the registry has it) and the `.sig`/`.att` tag; each
//! layer's blob is fetched by digest and hashed, its signature checked with the public key,
//! and only then its claims read (the digest signed must be the one verified). At least one
//! signature must pass, as with cosign; when none does, the error names the image, where
//! hoist looked and why each candidate failed.

use super::artifact::{Kind, SIGNATURE_ANNOTATION, SigManifest};
use super::keys::PublicKey;
use super::remote::{Resolved, attestation_targets, resolve};
use super::{Result, SignError, dsse, payload};
use crate::oci::{Descriptor, Digest};
use crate::registry::{Client, ImageRef};
use base64::Engine as _;
use std::collections::BTreeMap;

/// The largest simple-signing payload read (cosign's are a few hundred bytes).
const MAX_PAYLOAD_SIZE: u64 = 1 << 20;

/// Settings of [`verify_signatures`].
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Claims the payload must carry (`-a key=value`).
    pub annotations: BTreeMap<String, String>,
}

/// A signature that verified.
#[derive(Debug, Clone)]
pub struct VerifiedSignature {
    /// The payload bytes, as signed.
    pub payload: Vec<u8>,
    /// Its parsed claims, and a `docker-reference` naming another repository, if so.
    pub checked: payload::Checked,
    /// Where it was found (`tag …` or `referrer …`).
    pub source: String,
}

/// An attestation that verified.
#[derive(Debug, Clone)]
pub struct VerifiedAttestation {
    /// The manifest digest the statement is about.
    pub subject: Digest,
    pub predicate_type: String,
    /// The DSSE envelope, as stored.
    pub envelope: Vec<u8>,
    pub source: String,
}

/// Checks one `.sig` layer whose blob (`blob`, already fetched by digest) is the payload:
/// the signature annotation against `key`, then the claims. The error is the reason.
pub fn check_signature_layer(
    desc: &Descriptor,
    blob: &[u8],
    key: &PublicKey,
    image: &ImageRef,
    digest: &Digest,
    opts: &VerifyOptions,
) -> std::result::Result<payload::Checked, String> {
    if desc.media_type != Kind::Signature.layer_media_type() {
        return Err(format!(
            "media type {:?} is not a signature",
            desc.media_type
        ));
    }
    let b64 = desc
        .annotations
        .as_ref()
        .and_then(|a| a.get(SIGNATURE_ANNOTATION))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("no {SIGNATURE_ANNOTATION} annotation"))?;
    let sig = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| format!("the signature annotation is not base64: {e}"))?;
    if !key.verify(blob, &sig) {
        return Err(
            "the signature does not verify with the key (another key, or a tampered signature or payload)"
                .into(),
        );
    }
    payload::check(blob, image, digest, &opts.annotations)
}

/// Checks one `.att` layer whose blob is a DSSE envelope: its signature over the PAE with
/// `key`, then that the statement names `digest`. Returns the predicate type.
pub fn check_attestation_layer(
    desc: &Descriptor,
    blob: &[u8],
    key: &PublicKey,
    digest: &Digest,
) -> std::result::Result<String, String> {
    if desc.media_type != Kind::Attestation.layer_media_type() {
        return Err(format!(
            "media type {:?} is not a DSSE envelope",
            desc.media_type
        ));
    }
    let statement = dsse::open(blob, key)?;
    let info = dsse::statement_info(&statement)?;
    if !info.subjects.contains(&digest.to_string()) {
        return Err(format!(
            "the statement ({}) is about {}, not {digest}",
            info.predicate_type,
            if info.subjects.is_empty() {
                "no subject".to_string()
            } else {
                info.subjects.join(", ")
            }
        ));
    }
    Ok(info.predicate_type)
}

/// A signature or attestation manifest found for a digest, and where.
struct Found {
    source: String,
    manifest: SigManifest,
}

/// The `kind` manifests of `digest` in `image`'s repository: the referrers API's first, then
/// the tag's (unless it is one of them). `looked` records where hoist looked, for errors;
/// `failures` the manifests that could not be read.
fn collect(
    client: &Client,
    image: &ImageRef,
    digest: &Digest,
    kind: Kind,
    looked: &mut Vec<String>,
    failures: &mut Vec<String>,
) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    let mut seen: Vec<Digest> = Vec::new();
    let mut read = |bytes: &[u8], source: String, out: &mut Vec<Found>| match serde_json::from_slice::<
        SigManifest,
    >(bytes)
    {
        Ok(manifest) => out.push(Found { source, manifest }),
        Err(e) => failures.push(format!("{source}: not an image manifest: {e}")),
    };
    match client.referrers(image, digest, Some(kind.artifact_type()))? {
        None => looked.push("the referrers API (not offered by the registry)".into()),
        Some(list) => {
            looked.push(format!("the referrers API ({} found)", list.len()));
            for r in list {
                let (bytes, _, d) = client.get_manifest(&image.with_digest(&r.digest))?;
                seen.push(d.clone());
                read(&bytes, format!("referrer {d}"), &mut out);
            }
        }
    }
    let tag = kind.tag(digest);
    match client.get_manifest_if_exists(&image.with_tag(&tag))? {
        None => looked.push(format!("tag {tag} (absent)")),
        Some((bytes, _, d)) => {
            looked.push(format!("tag {tag}"));
            if !seen.contains(&d) {
                read(&bytes, format!("tag {tag}"), &mut out);
            }
        }
    }
    Ok(out)
}

/// False for a layer (blob and annotations) already checked: an older signature manifest
/// listed by the referrers API repeats the layers its successor holds.
fn first_time<'a>(seen: &mut Vec<&'a Descriptor>, layer: &'a Descriptor) -> bool {
    if seen
        .iter()
        .any(|s| s.digest == layer.digest && s.annotations == layer.annotations)
    {
        return false;
    }
    seen.push(layer);
    true
}

/// The error when nothing verified.
fn not_verified(
    image: &ImageRef,
    digest: &Digest,
    kind: &'static str,
    key: &PublicKey,
    looked: &[String],
    failures: &[String],
) -> SignError {
    let details = if failures.is_empty() {
        format!("none found (looked at {})", looked.join(", "))
    } else {
        format!("looked at {}; {}", looked.join(", "), failures.join("; "))
    };
    SignError::NotVerified {
        image: image.to_string(),
        digest: digest.to_string(),
        kind,
        key: key.origin().to_string(),
        details,
    }
}

/// Verifies `image`'s cosign signatures with `key`: the verified ones, or
/// [`SignError::NotVerified`] when none passes.
pub fn verify_signatures(
    client: &Client,
    image: &ImageRef,
    key: &PublicKey,
    opts: &VerifyOptions,
) -> Result<Vec<VerifiedSignature>> {
    client.operation(format!("verifying {image}"), || {
        let resolved = resolve(client, image)?;
        let digest = &resolved.descriptor.digest;
        let mut looked = Vec::new();
        let mut failures = Vec::new();
        let found = collect(
            client,
            image,
            digest,
            Kind::Signature,
            &mut looked,
            &mut failures,
        )?;
        let mut ok = Vec::new();
        let mut seen = Vec::new();
        for f in &found {
            for (i, layer) in f.manifest.layers.iter().enumerate() {
                if !first_time(&mut seen, layer) {
                    continue;
                }
                let at = format!("{} layer {} ({})", f.source, i + 1, layer.digest.short());
                let blob = match client.fetch_blob_bytes(image, layer, MAX_PAYLOAD_SIZE) {
                    Ok(b) => b,
                    Err(e) => {
                        failures.push(format!("{at}: {e}"));
                        continue;
                    }
                };
                match check_signature_layer(layer, &blob, key, image, digest, opts) {
                    Ok(checked) => ok.push(VerifiedSignature {
                        payload: blob,
                        checked,
                        source: f.source.clone(),
                    }),
                    Err(reason) => failures.push(format!("{at}: {reason}")),
                }
            }
        }
        if ok.is_empty() {
            return Err(not_verified(
                image,
                digest,
                "signature",
                key,
                &looked,
                &failures,
            ));
        }
        Ok(ok)
    })
}

/// Verifies `image`'s attestations with `key`: for the digest the image resolves to and, for
/// an index, each of its image manifests (where BuildKit's statements point). The verified
/// ones, or [`SignError::NotVerified`] when none passes anywhere.
pub fn verify_attestations(
    client: &Client,
    image: &ImageRef,
    key: &PublicKey,
) -> Result<Vec<VerifiedAttestation>> {
    client.operation(format!("verifying the attestations of {image}"), || {
        let resolved: Resolved = resolve(client, image)?;
        let mut looked = Vec::new();
        let mut failures = Vec::new();
        let mut ok = Vec::new();
        for digest in attestation_targets(&resolved) {
            let found = collect(
                client,
                image,
                &digest,
                Kind::Attestation,
                &mut looked,
                &mut failures,
            )?;
            let mut seen = Vec::new();
            for f in &found {
                for (i, layer) in f.manifest.layers.iter().enumerate() {
                    if !first_time(&mut seen, layer) {
                        continue;
                    }
                    let at = format!("{} layer {} ({})", f.source, i + 1, layer.digest.short());
                    let blob = match client.fetch_blob_bytes(
                        image,
                        layer,
                        super::remote::MAX_STATEMENT_SIZE,
                    ) {
                        Ok(b) => b,
                        Err(e) => {
                            failures.push(format!("{at}: {e}"));
                            continue;
                        }
                    };
                    match check_attestation_layer(layer, &blob, key, &digest) {
                        Ok(predicate_type) => ok.push(VerifiedAttestation {
                            subject: digest.clone(),
                            predicate_type,
                            envelope: blob,
                            source: f.source.clone(),
                        }),
                        Err(reason) => failures.push(format!("{at}: {reason}")),
                    }
                }
            }
        }
        if ok.is_empty() {
            return Err(not_verified(
                image,
                &resolved.descriptor.digest,
                "attestation",
                key,
                &looked,
                &failures,
            ));
        }
        Ok(ok)
    })
}

#[cfg(test)]
mod tests {
    use super::super::artifact::{self, PREDICATE_TYPE_ANNOTATION};
    use super::super::keys::SigningKey;
    use super::*;

    fn img() -> ImageRef {
        ImageRef::parse("localhost:5000/app:1").unwrap()
    }

    fn signed_layer(key: &SigningKey, body: &[u8]) -> Descriptor {
        let mut a = BTreeMap::new();
        a.insert(
            SIGNATURE_ANNOTATION.to_string(),
            base64::engine::general_purpose::STANDARD.encode(key.sign(body)),
        );
        artifact::layer(Kind::Signature, body, a)
    }

    #[test]
    fn signature_round_trip_and_every_refusal() {
        let k = SigningKey::generate();
        let d = Digest::of(b"manifest");
        let body = payload::build(&img(), &d, &BTreeMap::new());
        let layer = signed_layer(&k, &body);
        let opts = VerifyOptions::default();
        let pk = k.public_key();
        assert!(check_signature_layer(&layer, &body, &pk, &img(), &d, &opts).is_ok());
        // Another key.
        let other = SigningKey::generate().public_key();
        let e = check_signature_layer(&layer, &body, &other, &img(), &d, &opts).unwrap_err();
        assert!(e.contains("does not verify"), "{e}");
        // A tampered payload under the same signature.
        let tampered = String::from_utf8(body.clone())
            .unwrap()
            .replace("localhost:5000/app", "localhost:5000/evil");
        let e =
            check_signature_layer(&layer, tampered.as_bytes(), &pk, &img(), &d, &opts).unwrap_err();
        assert!(e.contains("does not verify"), "{e}");
        // A tampered signature.
        let mut bad = layer.clone();
        let mut sig = k.sign(&body);
        let n = sig.len() - 2;
        sig[n] ^= 0x40;
        bad.annotations.as_mut().unwrap().insert(
            SIGNATURE_ANNOTATION.into(),
            base64::engine::general_purpose::STANDARD.encode(sig),
        );
        assert!(check_signature_layer(&bad, &body, &pk, &img(), &d, &opts).is_err());
        // A valid signature of a payload naming another digest.
        let elsewhere = payload::build(&img(), &Digest::of(b"other"), &BTreeMap::new());
        let layer2 = signed_layer(&k, &elsewhere);
        let e = check_signature_layer(&layer2, &elsewhere, &pk, &img(), &d, &opts).unwrap_err();
        assert!(e.contains("signs") && e.contains(&d.to_string()), "{e}");
        // No annotation at all.
        let mut bare = layer.clone();
        bare.annotations = None;
        assert!(
            check_signature_layer(&bare, &body, &pk, &img(), &d, &opts)
                .unwrap_err()
                .contains(SIGNATURE_ANNOTATION)
        );
    }

    #[test]
    fn attestation_layer_checks_subject_and_signature() {
        let k = SigningKey::generate();
        let d = Digest::of(b"manifest");
        let st = serde_json::to_vec(&serde_json::json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "app", "digest": {"sha256": d.hex()}}],
            "predicateType": "https://spdx.dev/Document",
            "predicate": {}
        }))
        .unwrap();
        let env = dsse::seal(&k, &st);
        let mut a = BTreeMap::new();
        a.insert(
            PREDICATE_TYPE_ANNOTATION.into(),
            "https://spdx.dev/Document".into(),
        );
        let layer = artifact::layer(Kind::Attestation, &env, a);
        assert_eq!(
            check_attestation_layer(&layer, &env, &k.public_key(), &d).unwrap(),
            "https://spdx.dev/Document"
        );
        let e =
            check_attestation_layer(&layer, &env, &k.public_key(), &Digest::of(b"x")).unwrap_err();
        assert!(e.contains("is about"), "{e}");
        assert!(
            check_attestation_layer(&layer, &env, &SigningKey::generate().public_key(), &d)
                .is_err()
        );
    }
}

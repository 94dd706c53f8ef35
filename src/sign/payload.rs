//! cosign's simple-signing payload: the JSON document a signature covers, naming the image's
//! repository and manifest digest, and the checks `verify` makes of one it was handed.

use crate::oci::Digest;
use crate::registry::ImageRef;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `critical.type` of every cosign image signature.
pub const COSIGN_TYPE: &str = "cosign container image signature";

/// The payload document, in cosign's field order (serde writes fields as declared).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub critical: Critical,
    /// Free-form claims (`-a key=value`); `null` when there are none, as cosign writes it.
    pub optional: Option<BTreeMap<String, serde_json::Value>>,
}

/// The claims a verifier must check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Critical {
    pub identity: Identity,
    pub image: ImageClaim,
    #[serde(rename = "type")]
    pub kind: String,
}

/// Where the image was when it was signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

/// What was signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageClaim {
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

/// The repository as cosign names it in `docker-reference` (go-containerregistry's
/// `Repository.Name()`: Docker Hub is `index.docker.io`, official images keep `library/`).
pub fn docker_reference(r: &ImageRef) -> String {
    let registry = if r.registry == crate::registry::reference::DOCKER_HUB {
        "index.docker.io"
    } else {
        r.registry.as_str()
    };
    format!("{registry}/{}", r.repository)
}

/// The payload bytes signing `digest` of `image`'s repository, with `annotations` as the
/// optional claims.
pub fn build(image: &ImageRef, digest: &Digest, annotations: &BTreeMap<String, String>) -> Vec<u8> {
    let p = Payload {
        critical: Critical {
            identity: Identity {
                docker_reference: docker_reference(image),
            },
            image: ImageClaim {
                docker_manifest_digest: digest.to_string(),
            },
            kind: COSIGN_TYPE.to_string(),
        },
        optional: (!annotations.is_empty()).then(|| {
            annotations
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect()
        }),
    };
    // A struct of strings and a map of strings always serialises.
    serde_json::to_vec(&p).unwrap_or_default()
}

/// A payload that passed [`check`], and whether its `docker-reference` names another
/// repository (allowed, as cosign allows it: a copied image keeps its signatures).
#[derive(Debug, Clone)]
pub struct Checked {
    pub payload: Payload,
    pub other_repository: Option<String>,
}

/// Checks payload bytes whose signature already verified: the type, the digest (must be
/// `digest`), every `annotations` claim; reports a `docker-reference` other than `image`'s.
/// The error is the reason, for the caller's message.
pub fn check(
    bytes: &[u8],
    image: &ImageRef,
    digest: &Digest,
    annotations: &BTreeMap<String, String>,
) -> Result<Checked, String> {
    let p: Payload = serde_json::from_slice(bytes)
        .map_err(|e| format!("the payload is not a cosign simple-signing document: {e}"))?;
    if p.critical.kind != COSIGN_TYPE {
        return Err(format!(
            "the payload's type is {:?}, not {COSIGN_TYPE:?}",
            p.critical.kind
        ));
    }
    if p.critical.image.docker_manifest_digest != digest.to_string() {
        return Err(format!(
            "the payload signs {}, not {digest}",
            p.critical.image.docker_manifest_digest
        ));
    }
    for (k, want) in annotations {
        let got = p.optional.as_ref().and_then(|o| o.get(k));
        if got.and_then(|v| v.as_str()) != Some(want.as_str()) {
            return Err(format!(
                "annotation {k}={want} is not in the payload (it has {})",
                got.map_or_else(|| "none".to_string(), |v| v.to_string())
            ));
        }
    }
    let here = docker_reference(image);
    let other = (p.critical.identity.docker_reference != here)
        .then(|| p.critical.identity.docker_reference.clone());
    Ok(Checked {
        payload: p,
        other_repository: other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img() -> ImageRef {
        ImageRef::parse("localhost:5000/team/app:1").unwrap()
    }

    fn dg(c: u8) -> Digest {
        Digest::of(&[c])
    }

    #[test]
    fn payload_bytes_are_cosigns() {
        let d = dg(1);
        let b = build(&img(), &d, &BTreeMap::new());
        assert_eq!(
            String::from_utf8(b).unwrap(),
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"localhost:5000/team/app"}},"image":{{"docker-manifest-digest":"{d}"}},"type":"cosign container image signature"}},"optional":null}}"#
            )
        );
        let mut a = BTreeMap::new();
        a.insert("b".to_string(), "2".to_string());
        a.insert("a".to_string(), "1".to_string());
        let b = String::from_utf8(build(&img(), &d, &a)).unwrap();
        assert!(b.ends_with(r#""optional":{"a":"1","b":"2"}}"#), "{b}");
    }

    #[test]
    fn docker_hub_is_named_as_cosign_names_it() {
        let r = ImageRef::parse("busybox").unwrap();
        assert_eq!(docker_reference(&r), "index.docker.io/library/busybox");
    }

    #[test]
    fn check_refuses_another_digest_type_and_missing_annotation() {
        let d = dg(1);
        let b = build(&img(), &d, &BTreeMap::new());
        assert!(check(&b, &img(), &d, &BTreeMap::new()).is_ok());
        let e = check(&b, &img(), &dg(2), &BTreeMap::new()).unwrap_err();
        assert!(
            e.contains(&d.to_string()) && e.contains(&dg(2).to_string()),
            "{e}"
        );
        let t = String::from_utf8(b.clone())
            .unwrap()
            .replace(COSIGN_TYPE, "something else");
        assert!(check(t.as_bytes(), &img(), &d, &BTreeMap::new()).is_err());
        let mut want = BTreeMap::new();
        want.insert("env".to_string(), "prod".to_string());
        assert!(
            check(&b, &img(), &d, &want)
                .unwrap_err()
                .contains("env=prod")
        );
        let with = build(&img(), &d, &want);
        assert!(check(&with, &img(), &d, &want).is_ok());
        assert!(check(b"{}", &img(), &d, &BTreeMap::new()).is_err());
    }

    #[test]
    fn another_repository_is_reported() {
        let d = dg(1);
        let b = build(&img(), &d, &BTreeMap::new());
        let elsewhere = ImageRef::parse("localhost:5000/copy:1").unwrap();
        let c = check(&b, &elsewhere, &d, &BTreeMap::new()).unwrap();
        assert_eq!(
            c.other_repository.as_deref(),
            Some("localhost:5000/team/app")
        );
        assert!(
            check(&b, &img(), &d, &BTreeMap::new())
                .unwrap()
                .other_repository
                .is_none()
        );
    }
}

//! in-toto v1 statements (`https://in-toto.io/Statement/v1`) and their subjects, named as
//! BuildKit names them: one `pkg:docker/…?platform=…` package URL per image name, or `_`
//! when the image has none, each with the image manifest's digest.

use crate::oci::{Digest, Platform};
use crate::registry::ImageRef;
use serde_json::{Value, json};

/// The statement type.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// Media type of a statement stored as a layer of an attestation manifest.
pub const MEDIA_TYPE: &str = "application/vnd.in-toto+json";
/// SLSA provenance v1.
pub const PREDICATE_SLSA1: &str = "https://slsa.dev/provenance/v1";
/// An SPDX document.
pub const PREDICATE_SPDX: &str = "https://spdx.dev/Document";

/// A statement with the fields in BuildKit's order.
pub fn statement(subjects: Vec<Value>, predicate_type: &str, predicate: Value) -> Value {
    json!({
        "_type": STATEMENT_V1,
        "predicateType": predicate_type,
        "subject": subjects,
        "predicate": predicate,
    })
}

/// The subjects of an attestation about manifest `digest` built for `platform` and named
/// `names`.
pub fn subjects(names: &[ImageRef], platform: &Platform, digest: &Digest) -> Vec<Value> {
    let d = json!({ digest.algorithm(): digest.hex() });
    if names.is_empty() {
        return vec![json!({"name": "_", "digest": d})];
    }
    names
        .iter()
        .map(|n| json!({"name": docker_purl(n, Some(platform)), "digest": d}))
        .collect()
}

/// Percent-encodes all but the characters a purl keeps as they are.
fn escape(s: &str, keep: &[u8]) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The package URL of an image (`pkg:docker/NAMESPACE/NAME@TAG?digest=…&platform=…`), with
/// Docker's familiar name as namespace/name (`busybox`, `localhost:5000/team/app`).
pub fn docker_purl(r: &ImageRef, platform: Option<&Platform>) -> String {
    let familiar = ImageRef {
        tag: None,
        digest: None,
        ..r.clone()
    }
    .familiar();
    let (ns, name) = match familiar.rsplit_once('/') {
        Some((ns, n)) => (Some(ns), n),
        None => (None, familiar.as_str()),
    };
    let mut out = String::from("pkg:docker/");
    if let Some(ns) = ns {
        let segs: Vec<String> = ns.split('/').map(|s| escape(s, b":")).collect();
        out.push_str(&segs.join("/"));
        out.push('/');
    }
    out.push_str(&escape(name, b""));
    let mut quals = vec![];
    match (&r.digest, &r.tag) {
        (Some(d), _) => quals.push(format!("digest={}", escape(&d.to_string(), b""))),
        (None, Some(t)) => out.push_str(&format!("@{}", escape(t, b""))),
        (None, None) => out.push_str("@latest"),
    }
    if let Some(p) = platform {
        quals.push(format!(
            "platform={}",
            escape(&p.normalized().to_string_short(), b"")
        ));
    }
    if !quals.is_empty() {
        out.push('?');
        out.push_str(&quals.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    #[test]
    fn purls_as_buildkit_writes_them() {
        let amd64 = Platform::parse("linux/amd64").unwrap();
        assert_eq!(
            docker_purl(&r("alpine"), Some(&amd64)),
            "pkg:docker/alpine@latest?platform=linux%2Famd64"
        );
        assert_eq!(
            docker_purl(&r("registry.example.com/team/app:1.0"), None),
            "pkg:docker/registry.example.com/team/app@1.0"
        );
        assert_eq!(
            docker_purl(&r("localhost:5000/busybox:latest"), None),
            "pkg:docker/localhost:5000/busybox@latest"
        );
        let d = Digest::of(b"x");
        let pinned = r(&format!("busybox@{d}"));
        assert_eq!(
            docker_purl(&pinned, Some(&Platform::parse("linux/arm/v7").unwrap())),
            format!(
                "pkg:docker/busybox?digest=sha256%3A{}&platform=linux%2Farm%2Fv7",
                d.hex()
            )
        );
    }

    #[test]
    fn unnamed_images_have_the_subject_underscore() {
        let d = Digest::of(b"m");
        let p = Platform::parse("linux/amd64").unwrap();
        let s = subjects(&[], &p, &d);
        assert_eq!(s, vec![json!({"name": "_", "digest": {"sha256": d.hex()}})]);
        let s = subjects(&[r("a:1"), r("b:2")], &p, &d);
        assert_eq!(s.len(), 2);
        assert_eq!(s[1]["name"], "pkg:docker/b@2?platform=linux%2Famd64");
    }
}

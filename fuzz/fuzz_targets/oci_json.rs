//! Fuzzes the OCI/Docker JSON documents hoist reads from registries and its store.
//!
//! Input: one byte choosing the `Content-Type` the registry claimed, then the body.
//!
//! Invariants:
//! - `Manifest`, `Index` and `ImageConfig` parsing never panics;
//! - every digest inside a parsed document is `sha256:` + 64 lowercase hex (path-safe);
//! - a parsed document serializes to JSON that parses back to an equal value, and that JSON
//!   is a fixed point (re-serializing gives the same bytes: digests of re-written
//!   manifests/configs are stable);
//! - `oci::classify_manifest` (the registry client's type sniffing) only accepts a
//!   known manifest or index type whose shape matches: an index has `manifests` and no
//!   `layers`, a manifest has `layers` and no `manifests`, never both; a body `mediaType`
//!   never contradicts a known Content-Type; and the document is then handled as the type
//!   it was classified as (`Index::select` on it does not panic).
#![no_main]

use hoist::oci::{Digest, ImageConfig, Index, Manifest, Platform, media};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

const CONTENT_TYPES: [&str; 8] = [
    "",
    media::OCI_MANIFEST,
    media::OCI_INDEX,
    media::DOCKER_MANIFEST,
    media::DOCKER_MANIFEST_LIST,
    "application/json",
    media::OCI_CONFIG,
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

fn path_safe(d: &Digest) -> bool {
    let s = d.to_string();
    s.len() == 71
        && s.starts_with("sha256:")
        && s[7..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parses as `T`; on success checks the serialize/parse round trip and its fixed point.
fn round_trip<T>(bytes: &[u8]) -> Option<T>
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let v: T = serde_json::from_slice(bytes).ok()?;
    let out = serde_json::to_vec(&v).expect("a parsed document serializes");
    let again: T = serde_json::from_slice(&out).expect("serialized JSON parses back");
    assert_eq!(again, v, "round trip changed the document");
    let out2 = serde_json::to_vec(&again).expect("serializes");
    assert_eq!(out, out2, "serialization is not a fixed point");
    Some(v)
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[sel as usize % CONTENT_TYPES.len()];

    if let Some(m) = round_trip::<Manifest>(body) {
        assert!(path_safe(&m.config.digest));
        assert!(m.layers.iter().all(|l| path_safe(&l.digest)));
    }
    if let Some(i) = round_trip::<Index>(body) {
        assert!(i.manifests.iter().all(|d| path_safe(&d.digest)));
        let _ = i.select(&Platform::host());
    }
    if let Some(c) = round_trip::<ImageConfig>(body) {
        assert!(c.rootfs.diff_ids.iter().all(path_safe));
        let _ = c.config.env_get("PATH");
    }

    match hoist::oci::classify_manifest(body, content_type) {
        Ok(mt) => {
            let v: serde_json::Value = serde_json::from_slice(body).expect("accepted => JSON");
            let has_manifests = v.get("manifests").is_some();
            let has_layers = v.get("layers").is_some();
            assert!(
                !(has_manifests && has_layers),
                "accepted a document that is both an index and a manifest"
            );
            assert!(
                media::is_index(&mt) != media::is_manifest(&mt),
                "accepted type {mt:?} is neither or both"
            );
            if media::is_index(&mt) {
                assert!(
                    has_manifests && !has_layers,
                    "index {mt:?} shaped like a manifest"
                );
                if let Ok(i) = serde_json::from_slice::<Index>(body) {
                    let _ = i.select(&Platform::host());
                }
            } else {
                assert!(
                    has_layers && !has_manifests,
                    "manifest {mt:?} shaped like an index"
                );
                let _ = serde_json::from_slice::<Manifest>(body);
            }
            if let Some(bt) = v.get("mediaType").and_then(|m| m.as_str()) {
                assert_eq!(bt, mt, "the body's own mediaType was overridden");
            }
            if media::is_index(content_type) || media::is_manifest(content_type) {
                assert_eq!(mt, content_type, "a known Content-Type was contradicted");
            }
        }
        Err(reason) => assert!(!reason.is_empty()),
    }
});

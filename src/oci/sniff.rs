//! Manifest type sniffing: what a manifest body fetched from a registry is (an index or a
//! single-image manifest), from its JSON shape and the served `Content-Type`, before anything
//! trusts it. Pure; the registry client calls it on every manifest it fetches.

use super::media;

/// Decides what a manifest body fetched from a registry is, before anything trusts it: the
/// media type it is handled as (an index/manifest list or a single-image manifest), or why it
/// is refused. Refused: not JSON; both `manifests` and `layers`; a body `mediaType` that
/// contradicts a known `Content-Type`; an unknown type (schema 1 included); a type that does
/// not match the document's shape. `content_type` is the header value without parameters.
pub fn classify_manifest(bytes: &[u8], content_type: &str) -> std::result::Result<String, String> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    if v.get("manifests").is_some() && v.get("layers").is_some() {
        return Err("document has both `manifests` and `layers`".into());
    }
    let body_type = v
        .get("mediaType")
        .and_then(|m| m.as_str())
        .map(str::to_string);
    let known = |t: &str| media::is_index(t) || media::is_manifest(t);
    if let Some(bt) = &body_type
        && known(content_type)
        && bt != content_type
    {
        return Err(format!(
            "mediaType {bt:?} does not match Content-Type {content_type:?}"
        ));
    }
    let mt = match body_type {
        Some(t) => t,
        None if known(content_type) => content_type.to_string(),
        None if v.get("manifests").is_some() => media::OCI_INDEX.to_string(),
        None if v.get("layers").is_some() => media::OCI_MANIFEST.to_string(),
        None => {
            return Err(format!(
                "unsupported manifest (Content-Type {content_type:?}); schema 1 is not supported"
            ));
        }
    };
    if !known(&mt) {
        return Err(format!("unsupported media type {mt:?}"));
    }
    if media::is_index(&mt) == v.get("layers").is_some()
        || media::is_manifest(&mt) == v.get("manifests").is_some()
    {
        return Err(format!(
            "media type {mt:?} does not match the document's shape"
        ));
    }
    Ok(mt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_by_body_header_and_shape() {
        let m = br#"{"schemaVersion":2,"config":{},"layers":[]}"#;
        let i = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(classify_manifest(m, "").unwrap(), media::OCI_MANIFEST);
        assert_eq!(classify_manifest(i, "").unwrap(), media::OCI_INDEX);
        assert_eq!(
            classify_manifest(m, media::DOCKER_MANIFEST).unwrap(),
            media::DOCKER_MANIFEST
        );
        assert!(classify_manifest(m, media::OCI_INDEX).is_err());
        assert!(classify_manifest(br#"{"manifests":[],"layers":[]}"#, "").is_err());
        assert!(classify_manifest(br#"{"schemaVersion":1}"#, "").is_err());
        assert!(classify_manifest(b"not json", "").is_err());
    }
}

//! Named build contexts as the graph sees them (`--build-context NAME=VALUE`): which names
//! stand for an image, a stage, or content the engine holds, and the one rule that matches a
//! Dockerfile word against those names.
//!
//! As in BuildKit's dockerui, a name is compared in its normalized familiar form: `alpine`,
//! `alpine:latest` and `docker.io/library/alpine` are one name; `alpine:3.20` another.

use crate::registry::ImageRef;
use std::collections::BTreeMap;

/// What a named context stands for, as far as resolving names goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedRef {
    /// `docker-image://REF`: the name is replaced by this image reference.
    Image(String),
    /// `target:STAGE`: the name is replaced by this stage of the Dockerfile.
    Stage(String),
    /// A directory, a fetched git or http context, or an OCI layout: the engine holds its
    /// content under the context's key (see [`name_key`]).
    Content,
}

/// Named contexts by [`name_key`].
pub type NamedContexts = BTreeMap<String, NamedRef>;

/// The key a name is looked up by: the reference's familiar form without a default
/// `:latest` tag (`docker.io/library/alpine:latest` → `alpine`); `None` when the word is
/// not a valid reference (such a word never names a context).
pub fn name_key(name: &str) -> Option<String> {
    let r = ImageRef::parse(name).ok()?;
    let f = r.familiar();
    Some(match (f.strip_suffix(":latest"), &r.digest) {
        (Some(short), None) => short.to_string(),
        _ => f,
    })
}

/// The key of a context given for one platform only (`--build-context NAME::PLATFORM=…`):
/// `NAME::os/arch[/variant]`, the platform normalized; `None` when it does not parse.
pub fn platform_key(key: &str, platform: &str) -> Option<String> {
    let p = crate::oci::Platform::parse(platform)?;
    Some(format!("{key}::{}", p.to_string_short()))
}

/// The named context `word` matches, with its key: one given for `platform` (the platform
/// the name is resolved for) first, as BuildKit looks up `NAME::PLATFORM` before `NAME`.
pub fn lookup<'a>(
    contexts: &'a NamedContexts,
    word: &str,
    platform: Option<&str>,
) -> Option<(String, &'a NamedRef)> {
    if contexts.is_empty() {
        return None;
    }
    let key = name_key(word)?;
    if let Some(k) = platform.and_then(|p| platform_key(&key, p))
        && let Some(r) = contexts.get(&k)
    {
        return Some((k, r));
    }
    contexts.get(&key).map(|r| (key, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_compared_in_familiar_form() {
        assert_eq!(name_key("alpine").as_deref(), Some("alpine"));
        assert_eq!(name_key("alpine:latest").as_deref(), Some("alpine"));
        assert_eq!(
            name_key("docker.io/library/alpine:3.20").as_deref(),
            Some("alpine:3.20")
        );
        assert_eq!(
            name_key("localhost:5000/busybox").as_deref(),
            Some("localhost:5000/busybox")
        );
        assert_eq!(name_key("Builder"), None);
        let mut m = NamedContexts::new();
        m.insert("alpine:3.20".into(), NamedRef::Content);
        assert!(lookup(&m, "docker.io/library/alpine:3.20", None).is_some());
        assert!(lookup(&m, "alpine", None).is_none());
        m.insert(
            "alpine:3.20::linux/arm64".into(),
            NamedRef::Stage("x".into()),
        );
        let arm = lookup(&m, "alpine:3.20", Some("linux/arm64/v8"));
        assert_eq!(
            arm.map(|(k, _)| k).as_deref(),
            Some("alpine:3.20::linux/arm64")
        );
        let amd = lookup(&m, "alpine:3.20", Some("linux/amd64"));
        assert_eq!(amd.map(|(k, _)| k).as_deref(), Some("alpine:3.20"));
    }
}

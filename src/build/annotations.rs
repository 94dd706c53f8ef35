//! `--annotation [TYPE[,TYPE…][\[PLATFORM\]]:]KEY=VALUE`: OCI annotations on the image's
//! manifests and index, as buildx passes them and BuildKit's image exporter writes them.
//!
//! - `manifest` (the default when no type is given): in each platform's image manifest, or
//!   only in the manifests of the platform named in brackets (`manifest[linux/arm64]:k=v`);
//! - `index`: in the image index; a single-platform build has none, and BuildKit refuses
//!   index annotations there ("index annotations not supported for single platform export");
//! - `manifest-descriptor`: in the index's entry for each (or the named) platform's manifest;
//!   without an index (one platform), in the `index.json` entry of an OCI layout output
//!   (`--output type=oci`), the only descriptor of it BuildKit writes either;
//! - `index-descriptor`: the `index.json` entry of the index in an OCI layout output; index
//!   kinds need several platforms, as `index`.
//!
//! Manifests are rewritten after the engine passes (a new manifest blob, a new digest), so the
//! index, the tags, the pushes and the outputs all see the annotated image.

use super::BuildOutcome;
use crate::oci::{Index, Platform};
use crate::store::Store;
use std::collections::BTreeMap;

/// Where an annotation goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Manifest,
    Index,
    ManifestDescriptor,
    IndexDescriptor,
}

/// One `--annotation`.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    pub kinds: Vec<Kind>,
    /// Only this platform's manifests (`TYPE[PLATFORM]:`).
    pub platform: Option<Platform>,
    pub key: String,
    pub value: String,
    /// The flag's value as given, for messages.
    pub raw: String,
}

/// All of a build's `--annotation`s, in order (a later one for the same key wins).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Annotations(pub Vec<Annotation>);

/// A bad `--annotation`, or one this image cannot carry.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AnnotationError {
    #[error(
        "--annotation {0:?}: expected [TYPE[,TYPE][\\[PLATFORM\\]]:]KEY=VALUE with TYPE one of \
         manifest, index, manifest-descriptor, index-descriptor"
    )]
    Syntax(String),
    #[error(
        "--annotation {value:?}: unknown type {kind:?} (manifest, index, manifest-descriptor or index-descriptor)"
    )]
    UnknownKind { value: String, kind: String },
    #[error("--annotation {value:?}: {platform:?} is not a platform (os/arch[/variant])")]
    BadPlatform { value: String, platform: String },
    #[error(
        "--annotation {0:?}: index annotations need a multi-platform build (BuildKit: index \
         annotations not supported for single platform export); use manifest: or build \
         several --platform values"
    )]
    SinglePlatformIndex(String),
    #[error("--annotation {value:?}: no platform {platform} in this build")]
    NoSuchPlatform { value: String, platform: String },
}

impl Annotation {
    /// Parses one `--annotation` value.
    pub fn parse(v: &str) -> Result<Annotation, AnnotationError> {
        let syntax = || AnnotationError::Syntax(v.into());
        // `TYPE…:` precedes the first `=`; a key may itself hold `:` only without a prefix.
        let eq = v.find('=').ok_or_else(syntax)?;
        let (prefix, kv) = match v[..eq].find(':') {
            Some(c) => (Some(&v[..c]), &v[c + 1..]),
            None => (None, v),
        };
        let (key, value) = kv.split_once('=').ok_or_else(syntax)?;
        if key.is_empty() {
            return Err(syntax());
        }
        let (kinds, platform) = match prefix {
            None => (vec![Kind::Manifest], None),
            Some(p) => {
                let (types, platform) = match p.split_once('[') {
                    Some((t, rest)) => {
                        let plat = rest.strip_suffix(']').ok_or_else(syntax)?;
                        let parsed =
                            Platform::parse(plat).ok_or_else(|| AnnotationError::BadPlatform {
                                value: v.into(),
                                platform: plat.into(),
                            })?;
                        (t, Some(parsed))
                    }
                    None => (p, None),
                };
                let kinds = types
                    .split(',')
                    .map(|t| match t.trim() {
                        "manifest" => Ok(Kind::Manifest),
                        "index" => Ok(Kind::Index),
                        "manifest-descriptor" => Ok(Kind::ManifestDescriptor),
                        "index-descriptor" => Ok(Kind::IndexDescriptor),
                        other => Err(AnnotationError::UnknownKind {
                            value: v.into(),
                            kind: other.into(),
                        }),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                (kinds, platform)
            }
        };
        Ok(Annotation {
            kinds,
            platform,
            key: key.into(),
            value: value.into(),
            raw: v.into(),
        })
    }

    fn text(&self) -> String {
        self.raw.clone()
    }

    fn applies_to(&self, p: &Platform) -> bool {
        self.platform
            .as_ref()
            .is_none_or(|want| want.normalized() == p.normalized())
    }
}

impl Annotations {
    /// True when no `--annotation` was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Refuses what the build's result cannot carry (before any work).
    pub fn check(&self, platforms: &[Platform]) -> Result<(), AnnotationError> {
        let several = platforms.len() > 1;
        for a in &self.0 {
            if let Some(p) = &a.platform
                && !platforms.iter().any(|q| q.normalized() == p.normalized())
            {
                return Err(AnnotationError::NoSuchPlatform {
                    value: a.text(),
                    platform: p.to_string_short(),
                });
            }
            for k in &a.kinds {
                match k {
                    Kind::Index if !several => {
                        return Err(AnnotationError::SinglePlatformIndex(a.text()));
                    }
                    Kind::IndexDescriptor if !several => {
                        return Err(AnnotationError::SinglePlatformIndex(a.text()));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// The annotations of `kind` for platform `p` (`None`: those without a platform).
    pub fn of(&self, kind: Kind, p: Option<&Platform>) -> BTreeMap<String, String> {
        self.0
            .iter()
            .filter(|a| a.kinds.contains(&kind))
            .filter(|a| p.map_or(a.platform.is_none(), |p| a.applies_to(p)))
            .map(|a| (a.key.clone(), a.value.clone()))
            .collect()
    }

    /// Rewrites each outcome's manifest with its `manifest` annotations (a new blob in
    /// `store`, a new digest).
    pub fn apply_to_manifests(
        &self,
        store: &Store,
        outcomes: &mut [(Platform, BuildOutcome)],
    ) -> super::Result<()> {
        for (p, o) in outcomes.iter_mut() {
            let add = self.of(Kind::Manifest, Some(p));
            if add.is_empty() {
                continue;
            }
            o.manifest
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .extend(add);
            // Serialising plain data cannot fail; an empty document would fail the digest.
            let bytes = serde_json::to_vec(&o.manifest).unwrap_or_default();
            o.manifest_digest = store.put_blob(&bytes)?;
            o.manifest_size = bytes.len() as u64;
        }
        Ok(())
    }

    /// Adds the `index` and `manifest-descriptor` annotations to `index`, whose entries are
    /// the manifests of `platforms`, in order.
    pub fn apply_to_index(&self, index: &mut Index, platforms: &[Platform]) {
        let top = self.of(Kind::Index, None);
        if !top.is_empty() {
            index
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .extend(top);
        }
        for (d, p) in index.manifests.iter_mut().zip(platforms) {
            let add = self.of(Kind::ManifestDescriptor, Some(p));
            if !add.is_empty() {
                d.annotations.get_or_insert_with(BTreeMap::new).extend(add);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn parses_buildx_forms() {
        let a = Annotation::parse("org.opencontainers.image.title=hi=there").unwrap();
        assert_eq!(a.kinds, [Kind::Manifest]);
        assert_eq!(
            (a.key.as_str(), a.value.as_str()),
            ("org.opencontainers.image.title", "hi=there")
        );
        let a = Annotation::parse("index,manifest-descriptor:k=v").unwrap();
        assert_eq!(a.kinds, [Kind::Index, Kind::ManifestDescriptor]);
        let a = Annotation::parse("manifest[linux/arm64]:k=v:w").unwrap();
        assert_eq!(a.platform, Some(p("linux/arm64")));
        assert_eq!(a.value, "v:w");
        for bad in ["novalue", "=v", "manifest[linux/arm64:k=v"] {
            assert!(
                matches!(Annotation::parse(bad), Err(AnnotationError::Syntax(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            Annotation::parse("layer:k=v"),
            Err(AnnotationError::UnknownKind { .. })
        ));
    }

    #[test]
    fn checks_against_the_result() {
        let one = [p("linux/amd64")];
        let two = [p("linux/amd64"), p("linux/arm64")];
        let a = |v: &str| Annotations(vec![Annotation::parse(v).unwrap()]);
        assert!(a("k=v").check(&one).is_ok());
        assert!(matches!(
            a("index:k=v").check(&one),
            Err(AnnotationError::SinglePlatformIndex(_))
        ));
        assert!(a("index:k=v").check(&two).is_ok());
        assert!(a("manifest-descriptor:k=v").check(&one).is_ok());
        assert!(a("index-descriptor:k=v").check(&two).is_ok());
        assert!(a("index-descriptor:k=v").check(&one).is_err());
        assert!(matches!(
            a("manifest[linux/s390x]:k=v").check(&two),
            Err(AnnotationError::NoSuchPlatform { .. })
        ));
    }

    #[test]
    fn platform_filter() {
        let all = Annotations(vec![
            Annotation::parse("a=1").unwrap(),
            Annotation::parse("manifest[linux/arm64]:b=2").unwrap(),
        ]);
        let amd = all.of(Kind::Manifest, Some(&p("linux/amd64")));
        assert_eq!(amd.len(), 1);
        let arm = all.of(Kind::Manifest, Some(&p("linux/arm64")));
        assert_eq!(arm.get("b").map(String::as_str), Some("2"));
    }
}

//! `--build-context NAME=VALUE` parsed, as buildx reads it: `docker-image://REF`,
//! `oci-layout://DIR[:TAG|@DIGEST]`, `target:STAGE`, a git or http(s) URL, else a local
//! directory.

use super::layout::Selector;
use super::{ContextError, Remote, Result};
use crate::graph::named::name_key;
use crate::oci::Digest;
use std::path::PathBuf;

/// What a named context's value is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// A local directory.
    Dir(PathBuf),
    /// `docker-image://REF`.
    Image(String),
    /// `target:STAGE`: a stage of this Dockerfile.
    Target(String),
    /// A git repository or an http(s) tarball.
    Remote(Remote),
    /// `oci-layout://DIR[:TAG|@DIGEST]`.
    Layout { dir: PathBuf, selector: Selector },
}

/// Parses `NAME=VALUE` into the name's lookup key and what it names.
pub fn parse_build_context(raw: &str) -> Result<(String, Spec)> {
    let bad = |reason: String| ContextError::BadSpec {
        spec: raw.to_string(),
        reason,
    };
    let (name, value) = raw
        .split_once('=')
        .ok_or_else(|| bad("expected NAME=VALUE".into()))?;
    // `NAME::PLATFORM`: the context serves that platform only.
    let (name, platform) = match name.split_once("::") {
        Some((n, p)) => (n, Some(p)),
        None => (name, None),
    };
    let key = name_key(name.trim()).ok_or_else(|| {
        bad(format!(
            "invalid context name {name:?}: use a stage or image name (lower case, no spaces)"
        ))
    })?;
    let key = match platform {
        Some(p) => crate::graph::named::platform_key(&key, p)
            .ok_or_else(|| bad(format!("invalid platform {p:?} after '::'")))?,
        None => key,
    };
    if value.is_empty() {
        return Err(bad("empty value".into()));
    }
    let spec = if let Some(r) = value.strip_prefix("docker-image://") {
        crate::registry::ImageRef::parse(r).map_err(|e| bad(format!("docker-image://{r}: {e}")))?;
        Spec::Image(r.to_string())
    } else if let Some(rest) = value.strip_prefix("oci-layout://") {
        let (dir, selector) = split_layout(rest).map_err(bad)?;
        Spec::Layout { dir, selector }
    } else if let Some(t) = value.strip_prefix("target:") {
        if t.is_empty() {
            return Err(bad("target: needs a stage name".into()));
        }
        Spec::Target(t.to_string())
    } else if let Some(r) = Remote::detect(value) {
        Spec::Remote(r)
    } else if value.contains("://") {
        return Err(bad(format!(
            "unsupported context source {value:?}: use a directory, docker-image://, \
             oci-layout://, target:, a git URL or an http(s) URL"
        )));
    } else {
        Spec::Dir(PathBuf::from(value))
    };
    Ok((key, spec))
}

/// `DIR[:TAG|@DIGEST]`: the separator is looked for after the last `/`, so a directory
/// path with `:` in an earlier component stays whole.
fn split_layout(rest: &str) -> std::result::Result<(PathBuf, Selector), String> {
    let last = rest.rfind('/').map_or(0, |i| i + 1);
    let (head, tail) = rest.split_at(last);
    if let Some((base, d)) = tail.split_once('@') {
        let digest = d
            .parse::<Digest>()
            .map_err(|e| format!("oci-layout digest {d:?}: {e}"))?;
        return Ok((
            PathBuf::from(format!("{head}{base}")),
            Selector::Digest(digest),
        ));
    }
    if let Some((base, tag)) = tail.split_once(':') {
        if tag.is_empty() {
            return Err("oci-layout: empty tag after ':'".into());
        }
        return Ok((
            PathBuf::from(format!("{head}{base}")),
            Selector::Tag(tag.to_string()),
        ));
    }
    Ok((PathBuf::from(rest), Selector::Default))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_classified_as_buildx_does() {
        let p = |s: &str| parse_build_context(s).unwrap();
        assert_eq!(
            p("alpine:3.20=docker-image://mirror.local/alpine:3.20"),
            (
                "alpine:3.20".into(),
                Spec::Image("mirror.local/alpine:3.20".into())
            )
        );
        assert_eq!(p("src=./dir"), ("src".into(), Spec::Dir("./dir".into())));
        assert_eq!(
            p("alpine::linux/arm64=docker-image://a/b").0,
            "alpine::linux/arm64"
        );
        assert_eq!(
            p("b=target:build"),
            ("b".into(), Spec::Target("build".into()))
        );
        assert_eq!(
            p("g=https://h/r.git#main:sub"),
            (
                "g".into(),
                Spec::Remote(Remote::Git("https://h/r.git#main:sub".into()))
            )
        );
        assert_eq!(
            p("t=https://h/ctx.tar.gz"),
            (
                "t".into(),
                Spec::Remote(Remote::Http("https://h/ctx.tar.gz".into()))
            )
        );
        assert_eq!(
            p("l=oci-layout:///srv/lay:v1"),
            (
                "l".into(),
                Spec::Layout {
                    dir: "/srv/lay".into(),
                    selector: Selector::Tag("v1".into())
                }
            )
        );
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            p(&format!("l=oci-layout://rel/lay@{d}")).1,
            Spec::Layout {
                dir: "rel/lay".into(),
                selector: Selector::Digest(d.parse().unwrap())
            }
        );
        for bad in ["noequals", "Upper=dir", "x=", "x=ftp://h/a", "x=target:"] {
            assert!(parse_build_context(bad).is_err(), "{bad}");
        }
    }
}

//! Image references with Docker's normalization (`busybox` → `docker.io/library/busybox:latest`).
//!
//! The grammar follows the distribution `reference` package: an optional registry host (the
//! first path component when it contains a `.` or a `:`, or is `localhost`), a repository of
//! lowercase path components, an optional tag and an optional `@sha256:` digest.

use crate::oci::Digest;
use regex::Regex;
use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

/// Errors from parsing a reference.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference format {reference:?}: {reason}")]
    Invalid { reference: String, reason: String },
}

/// A parsed, normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// `docker.io`, `localhost:5000`, …
    pub registry: String,
    /// `library/busybox`, `team/app`, …
    pub repository: String,
    /// `latest` when the reference names neither tag nor digest.
    pub tag: Option<String>,
    /// Pinned manifest digest (`@sha256:…`).
    pub digest: Option<Digest>,
}

/// Docker Hub's canonical name.
pub const DOCKER_HUB: &str = "docker.io";

static COMPONENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$").unwrap_or_else(|e| unreachable!("{e}"))
});
static TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$").unwrap_or_else(|e| unreachable!("{e}"))
});
static HOST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])(?:\.(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]))*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$",
    )
    .unwrap_or_else(|e| unreachable!("{e}"))
});

fn invalid(reference: &str, reason: impl Into<String>) -> ReferenceError {
    ReferenceError::Invalid {
        reference: reference.to_string(),
        reason: reason.into(),
    }
}

impl ImageRef {
    /// Parses and normalizes a reference: `busybox`, `team/app:1.0`, `localhost:5000/x@sha256:…`.
    /// A reference with neither tag nor digest gets the tag `latest`.
    pub fn parse(s: &str) -> Result<ImageRef, ReferenceError> {
        if s.is_empty() {
            return Err(invalid(s, "empty reference"));
        }
        if s.len() > 512 {
            return Err(invalid(s, "longer than 512 characters"));
        }
        // `user:pass@host/repo` (a digest never holds '/'): refused without echoing the secret.
        let after_scheme = s.split_once("://").map_or(s, |(_, r)| r);
        if let Some((_, host_part)) = after_scheme.split_once('@')
            && host_part.contains('/')
        {
            return Err(invalid(
                &format!("<redacted>@{host_part}"),
                "credentials in an image reference are not supported and were not used; run \
                 `hoist login HOST` (or use the Docker config.json) instead",
            ));
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return Err(invalid(
                s,
                format!("an image reference has no URL scheme: drop `{scheme}://`"),
            ));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let digest: Digest = d.parse().map_err(|e| invalid(s, format!("{e}")))?;
                (r, Some(digest))
            }
            None => (s, None),
        };
        // The tag is after the last ':' that follows the last '/'.
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let t = &rest[last_slash + i + 1..];
                if !TAG.is_match(t) {
                    return Err(invalid(s, format!("invalid tag {t:?}")));
                }
                (&rest[..last_slash + i], Some(t.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(invalid(s, "empty repository name"));
        }
        let (mut registry, mut repository) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.')
                    || first.contains(':')
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first.to_string(), remainder.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        if !HOST.is_match(&registry) {
            return Err(invalid(s, format!("invalid registry host {registry:?}")));
        }
        if registry == "index.docker.io" || registry == "registry-1.docker.io" {
            registry = DOCKER_HUB.to_string();
        }
        if registry == DOCKER_HUB && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        if repository.len() > 255 {
            return Err(invalid(s, "repository name longer than 255 characters"));
        }
        for comp in repository.split('/') {
            if !COMPONENT.is_match(comp) {
                let reason = if comp.chars().any(|c| c.is_ascii_uppercase()) {
                    "repository name must be lowercase".to_string()
                } else {
                    format!("invalid repository component {comp:?}")
                };
                return Err(invalid(s, reason));
            }
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What to put after `/manifests/`: the digest when there is one, else the tag.
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> ImageRef {
        ImageRef {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// The same repository pinned to a digest (tag dropped).
    pub fn with_digest(&self, d: &Digest) -> ImageRef {
        ImageRef {
            tag: None,
            digest: Some(d.clone()),
            ..self.clone()
        }
    }

    /// Docker's short form: `busybox:latest`, `team/app:1`, `localhost:5000/x:y`.
    ///
    /// Like distribution's `FamiliarName`, `library/` is dropped only for a one-component
    /// official image: `docker.io/library/a/b` stays `library/a/b` (dropping it would name
    /// `docker.io/a/b`, another image), and only the registry prefix itself is removed.
    pub fn familiar(&self) -> String {
        if self.registry != DOCKER_HUB {
            return self.to_string();
        }
        let repo = match self.repository.strip_prefix("library/") {
            Some(official) if !official.contains('/') => official,
            _ => self.repository.as_str(),
        };
        let mut out = repo.to_string();
        if let Some(t) = &self.tag {
            out.push(':');
            out.push_str(t);
        }
        if let Some(d) = &self.digest {
            out.push('@');
            out.push_str(&d.to_string());
        }
        out
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<ImageRef, ReferenceError> {
        ImageRef::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn norm(s: &str) -> String {
        ImageRef::parse(s).unwrap().to_string()
    }

    #[test]
    fn docker_normalization() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("team/app"), "docker.io/team/app:latest");
        assert_eq!(
            norm("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            norm("index.docker.io/library/busybox:x"),
            "docker.io/library/busybox:x"
        );
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
        assert_eq!(
            norm("localhost:5000/busybox:latest"),
            "localhost:5000/busybox:latest"
        );
        assert_eq!(norm("ghcr.io/o/r/deep/name:v1"), "ghcr.io/o/r/deep/name:v1");
        assert_eq!(
            norm("127.0.0.1:5000/a_b__c-d.e"),
            "127.0.0.1:5000/a_b__c-d.e:latest"
        );
        assert_eq!(norm("[::1]:5000/x"), "[::1]:5000/x:latest");
    }

    #[test]
    fn digests_and_tags() {
        let r = ImageRef::parse(&format!("busybox@{D}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{D}"));
        assert_eq!(r.reference(), D);
        let r = ImageRef::parse(&format!("localhost:5000/x:1@{D}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.reference(), D);
        assert_eq!(r.to_string(), format!("localhost:5000/x:1@{D}"));
        assert_eq!(
            ImageRef::parse("busybox").unwrap().familiar(),
            "busybox:latest"
        );
        assert_eq!(ImageRef::parse("a/b:c").unwrap().familiar(), "a/b:c");
        let round: ImageRef = norm("team/app:v2").parse().unwrap();
        assert_eq!(round, ImageRef::parse("team/app:v2").unwrap());
    }

    /// Found by the `reference` fuzz target: the familiar form must name the same image.
    #[test]
    fn familiar_names_the_same_image() {
        for (s, fam) in [
            ("library/o/d:2v1.", "library/o/d:2v1."),
            ("docker.io/library/a/b", "library/a/b:latest"),
            ("docker.io/library/a", "a:latest"),
            ("docker.io/docker.io/x", "docker.io/x:latest"),
            ("index.docker.io/team/app:1", "team/app:1"),
        ] {
            let r = ImageRef::parse(s).unwrap();
            assert_eq!(r.familiar(), fam, "{s}");
            if !fam.starts_with("docker.io/") {
                assert_eq!(ImageRef::parse(&r.familiar()).unwrap(), r, "{s}");
            }
        }
        let r = ImageRef::parse(&format!("library/a/b@{D}")).unwrap();
        assert_eq!(r.familiar(), format!("library/a/b@{D}"));
    }

    #[test]
    fn rejects_invalid() {
        for bad in [
            "",
            "Busybox",
            "team/App",
            "busybox:",
            "busybox:-x",
            "busybox@sha256:abc",
            "busybox@sha256:../../etc",
            "busybox@md5:abcd",
            "a//b",
            "a/",
            ":tag",
            "a..b",
            "-a",
            "host:notaport:x/y:z/../q",
            "x/y:tag with space",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        for creds in [
            "bob:s3cretpw@localhost:5000/busybox:latest",
            "https://bob:s3cretpw@registry.example.com/team/app",
            "s3cretpw@localhost:5000/x@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            let e = ImageRef::parse(creds).unwrap_err().to_string();
            assert!(!e.contains("s3cretpw"), "{e}");
            assert!(e.contains("hoist login"), "{e}");
        }
        let e = ImageRef::parse("https://localhost:5000/busybox").unwrap_err();
        assert!(e.to_string().contains("drop `https://`"), "{e}");
        let e = ImageRef::parse("team/App").unwrap_err();
        assert!(e.to_string().contains("lowercase"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn display_then_parse_roundtrips(
            host in proptest::option::of("[a-z][a-z0-9]{0,8}\\.[a-z]{2,4}(:[1-9][0-9]{0,3})?"),
            path in proptest::collection::vec("[a-z0-9]{1,6}([._-][a-z0-9]{1,4})?", 1..4),
            tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
            hex in proptest::option::of("[0-9a-f]{64}"),
        ) {
            let mut s = String::new();
            if let Some(h) = &host {
                s.push_str(h);
                s.push('/');
            }
            s.push_str(&path.join("/"));
            if let Some(t) = &tag {
                s.push(':');
                s.push_str(t);
            }
            if let Some(x) = &hex {
                s.push_str("@sha256:");
                s.push_str(x);
            }
            let r = ImageRef::parse(&s).unwrap();
            let again = ImageRef::parse(&r.to_string()).unwrap();
            proptest::prop_assert_eq!(&again, &r);
            proptest::prop_assert_eq!(again.to_string(), r.to_string());
            // Docker reads a first component with a dot as a registry host.
            if host.is_none() && (path.len() == 1 || !path[0].contains('.')) {
                proptest::prop_assert_eq!(r.registry.as_str(), DOCKER_HUB);
            }
        }

        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = ImageRef::parse(&s);
        }
    }
}

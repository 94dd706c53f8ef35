//! Image references with Docker's normalization (`busybox` → `docker.io/library/busybox:latest`).

use crate::oci::Digest;

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
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl ImageRef {
    /// Parses a reference with Docker's normalization: `busybox` →
    /// `docker.io/library/busybox:latest`; the first component is a registry when it has a
    /// `.` or `:` or is `localhost`.
    pub fn parse(s: &str) -> Result<ImageRef, ReferenceError> {
        let bad = |reason: &str| ReferenceError::Invalid {
            reference: s.to_string(),
            reason: reason.to_string(),
        };
        if s.is_empty() {
            return Err(bad("empty reference"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (
                r,
                Some(d.parse::<Digest>().map_err(|e| bad(&e.to_string()))?),
            ),
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_string()),
            ),
            None => (rest, None),
        };
        if let Some(t) = &tag
            && (t.is_empty()
                || t.len() > 128
                || !t
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
                || t.starts_with(['.', '-']))
        {
            return Err(bad("invalid tag"));
        }
        let (registry, repo) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => ("docker.io".to_string(), name.to_string()),
        };
        let repository = if registry == "docker.io" && !repo.contains('/') {
            format!("library/{repo}")
        } else {
            repo
        };
        if repository.is_empty() {
            return Err(bad("empty repository name"));
        }
        for comp in repository.split('/') {
            let ok = !comp.is_empty()
                && comp
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
                && comp.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && comp.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
            if !ok {
                return Err(bad(
                    "repository name must be lowercase letters, digits and separators (. _ -)",
                ));
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
}

impl std::str::FromStr for ImageRef {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<ImageRef, ReferenceError> {
        ImageRef::parse(s)
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_normalization() {
        let n = |s: &str| ImageRef::parse(s).unwrap().to_string();
        assert_eq!(n("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(n("team/app:1.0"), "docker.io/team/app:1.0");
        assert_eq!(n("localhost:5000/busybox"), "localhost:5000/busybox:latest");
        assert_eq!(n("localhost/x:y"), "localhost/x:y");
        assert_eq!(
            n("registry.example.com/team/app:1.0"),
            "registry.example.com/team/app:1.0"
        );
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            n(&format!("busybox@{d}")),
            format!("docker.io/library/busybox@{d}")
        );
        assert_eq!(
            n(&format!("busybox:1@{d}")),
            format!("docker.io/library/busybox:1@{d}")
        );
    }

    #[test]
    fn invalid_references() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "busybox@sha256:abc",
            "a//b",
            "busybox:bad tag",
            "-x",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }
}

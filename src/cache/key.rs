//! Step cache keys: a typed builder of a step's named parts, hashed in order after the schema
//! version and the parent step's key.

use super::SCHEMA;
use crate::executor::Network;
use crate::oci::Digest;

/// The key of a step: `parent` plus the parts that decide its result, in order.
///
/// The low-level form of [`StepKey::digest`]; each part is length-prefixed, so `("ab", "c")`
/// and `("a", "bc")` differ.
pub fn key(parent: &Digest, parts: &[&str]) -> Digest {
    let mut buf = Vec::new();
    buf.extend_from_slice(SCHEMA.as_bytes());
    buf.push(0);
    buf.extend_from_slice(parent.to_string().as_bytes());
    for p in parts {
        buf.push(0);
        buf.extend_from_slice(p.len().to_string().as_bytes());
        buf.push(b':');
        buf.extend_from_slice(p.as_bytes());
    }
    Digest::of(&buf)
}

/// The parts of one step's key, each named where it is built.
///
/// Names document the key and show in its `Debug` form; only the values are hashed, in the
/// order they were added (see [`key`]), so a key's digest is the same as when steps listed
/// their parts positionally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepKey {
    parts: Vec<(&'static str, String)>,
    /// Not hashed: the per-file lines behind a COPY/ADD `content` part, kept so a miss can
    /// name the files that changed (see [`super::explain`]).
    files: Option<Vec<String>>,
}

impl StepKey {
    /// A key whose first part is the step's kind: `RUN`, `COPY`, `ADD`, `WORKDIR`, or a chain
    /// root's `scratch`, `image`, `link`.
    pub fn new(kind: &str) -> StepKey {
        StepKey {
            parts: vec![("kind", kind.to_string())],
            files: None,
        }
    }

    /// Appends the part `name` with `value`.
    pub fn part(mut self, name: &'static str, value: impl Into<String>) -> StepKey {
        self.parts.push((name, value.into()));
        self
    }

    /// Attaches the file lines the `content` part was hashed from (not part of the digest).
    pub fn with_files(mut self, lines: Vec<String>) -> StepKey {
        self.files = Some(lines);
        self
    }

    /// The attached file lines, if any.
    pub fn files(&self) -> Option<&[String]> {
        self.files.as_deref()
    }

    /// The named parts, in order.
    pub fn parts(&self) -> &[(&'static str, String)] {
        &self.parts
    }

    /// The step's kind (the first part).
    pub fn kind(&self) -> &str {
        self.parts.first().map_or("", |(_, v)| v.as_str())
    }

    /// Appends the RUN network mode. The strings are those the first keys used, so existing
    /// cache entries keep matching; a new mode must choose its own here.
    pub fn network(self, net: Network) -> StepKey {
        let s = match net {
            Network::Host => "Host",
            Network::None => "None",
        };
        self.part("network", s)
    }

    /// The key of this step after the step whose key is `parent`.
    pub fn digest(&self, parent: &Digest) -> Digest {
        let values: Vec<&str> = self.parts.iter().map(|(_, v)| v.as_str()).collect();
        key(parent, &values)
    }

    /// The key of a chain's first step (an image, scratch, or a `--link` layer on its own):
    /// its parent is the digest of nothing.
    pub fn root(&self) -> Digest {
        self.digest(&Digest::of(b""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The formula every key used before [`StepKey`]: positional parts, hashed here.
    fn old_key(parent: &Digest, parts: &[&str]) -> Digest {
        let mut buf = Vec::new();
        buf.extend_from_slice(b"hoist-cache-v1");
        buf.push(0);
        buf.extend_from_slice(parent.to_string().as_bytes());
        for p in parts {
            buf.push(0);
            buf.extend_from_slice(p.len().to_string().as_bytes());
            buf.push(b':');
            buf.extend_from_slice(p.as_bytes());
        }
        Digest::of(&buf)
    }

    #[test]
    fn keys_depend_on_parent_and_every_part() {
        let p = Digest::of(b"parent");
        let k = key(&p, &["RUN echo", "A=1"]);
        assert_eq!(k, key(&p, &["RUN echo", "A=1"]));
        assert_ne!(k, key(&Digest::of(b"other"), &["RUN echo", "A=1"]));
        assert_ne!(k, key(&p, &["RUN echo", "A=2"]));
        assert_ne!(key(&p, &["ab", "c"]), key(&p, &["a", "bc"]));
    }

    #[test]
    fn typed_keys_are_byte_identical_to_positional_ones() {
        let parent = Digest::of(b"parent");
        // RUN, as run_step built it: argv JSON, heredocs, env, user, cwd, mounts, `{net:?}`.
        for net in [Network::Host, Network::None] {
            let argv = serde_json::to_string(&["/bin/sh", "-c", "echo hi"]).unwrap();
            let old = [
                "RUN".to_string(),
                argv.clone(),
                "EOF\nbody\n".to_string(),
                "PATH=/bin\nA=1".to_string(),
                "1000".to_string(),
                "/src".to_string(),
                "cache /root/.cache\n".to_string(),
                format!("{net:?}"),
            ];
            let old_refs: Vec<&str> = old.iter().map(|s| s.as_str()).collect();
            let new = StepKey::new("RUN")
                .part("argv", argv)
                .part("heredocs", "EOF\nbody\n")
                .part("env", "PATH=/bin\nA=1")
                .part("user", "1000")
                .part("cwd", "/src")
                .part("mounts", "cache /root/.cache\n")
                .network(net);
            assert_eq!(new.digest(&parent), old_key(&parent, &old_refs), "{net:?}");
        }
        // COPY/ADD: kind, sources, dest, flags, content.
        for kw in ["COPY", "ADD"] {
            let old = [kw, "a\u{0}b", "/app/", "chown=None link=false", "sha256:00"];
            let new = StepKey::new(kw)
                .part("sources", "a\u{0}b")
                .part("dest", "/app/")
                .part("flags", "chown=None link=false")
                .part("content", "sha256:00");
            assert_eq!(new.digest(&parent), old_key(&parent, &old));
        }
        // WORKDIR: kind, dir, user.
        let new = StepKey::new("WORKDIR").part("dir", "/app").part("user", "");
        assert_eq!(
            new.digest(&parent),
            old_key(&parent, &["WORKDIR", "/app", ""])
        );
        // Chain roots: scratch, an image, a --link layer and the chain after it.
        let empty = Digest::of(b"");
        assert_eq!(
            StepKey::new("scratch")
                .part("platform", "linux/amd64")
                .root(),
            old_key(&empty, &["scratch", "linux/amd64"])
        );
        assert_eq!(
            StepKey::new("image").part("manifest", "sha256:ab").root(),
            old_key(&empty, &["image", "sha256:ab"])
        );
        assert_eq!(StepKey::new("link").root(), old_key(&empty, &["link"]));
        let linked = StepKey::new("link").root();
        assert_eq!(
            StepKey::new("link")
                .part("layer", linked.to_string())
                .digest(&parent),
            old_key(&parent, &["link", &linked.to_string()])
        );
    }
}

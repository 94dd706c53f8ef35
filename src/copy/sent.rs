//! Which context paths BuildKit would have: its frontend sends the daemon only the paths the
//! Dockerfile names (every COPY/ADD source without `--from`, every RUN bind or tmpfs mount of
//! the context, in the stages the build runs), and a directory travels only when something
//! in it is sent. A wildcard that matches nothing is fine under BuildKit, but only when its
//! directory was sent: `COPY dir/*.md /x/` alone fails ("lstat /dir") even when `dir/`
//! exists, while the same line beside `COPY dir/a.txt /y/` copies nothing and succeeds.
//! [`SentPaths`] answers "was this directory sent?" for that one decision.

use crate::parser::dockerignore::{IgnoreError, Matcher, go_clean};

/// The paths a build asks of its context, as include patterns (a pattern also sends what is
/// below the path it matches).
#[derive(Debug, Clone)]
pub struct SentPaths {
    /// Some source is the context root (or could not be known before the build ran): the
    /// whole context is sent.
    everything: bool,
    matcher: Option<Matcher>,
}

impl SentPaths {
    /// The whole context: what a build without the Dockerfile's paths at hand assumes.
    pub fn everything() -> SentPaths {
        SentPaths {
            everything: true,
            matcher: None,
        }
    }

    /// From the source paths as written. A path still holding a `$` (expanded only when its
    /// stage runs) counts as the whole context, which can only make hoist more lenient than
    /// BuildKit, never stricter.
    pub fn new<I, S>(paths: I) -> Result<SentPaths, IgnoreError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut everything = false;
        let mut patterns = Vec::new();
        for p in paths {
            let p = p.as_ref();
            let clean = go_clean(&format!("/{p}"));
            let rel = clean.trim_start_matches('/');
            if p.contains('$') || rel.is_empty() {
                everything = true;
                continue;
            }
            patterns.push(rel.to_string());
        }
        Ok(SentPaths {
            everything,
            matcher: Some(Matcher::from_patterns(patterns)?),
        })
    }

    /// True when the whole context is sent.
    pub fn is_everything(&self) -> bool {
        self.everything
    }

    /// True when context path `rel` (or a directory above it) is named by a source.
    pub fn names(&self, rel: &str) -> bool {
        self.everything || self.matcher.as_ref().is_some_and(|m| m.is_excluded(rel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_name_themselves_and_what_is_below() {
        let s = SentPaths::new(["dir/g0.sh", "./other", "*.txt"]).unwrap();
        assert!(!s.is_everything());
        assert!(s.names("dir/g0.sh") && s.names("other/x/y") && s.names("f.txt"));
        assert!(!s.names("dir") && !s.names("dir/g1.sh") && !s.names("sub/f.txt"));
    }

    #[test]
    fn the_root_or_an_unexpanded_word_sends_everything() {
        assert!(SentPaths::new(["."]).unwrap().names("anything"));
        assert!(SentPaths::new(["/"]).unwrap().is_everything());
        assert!(SentPaths::new(["$SRC/x"]).unwrap().is_everything());
        assert!(SentPaths::everything().names("a/b"));
    }
}

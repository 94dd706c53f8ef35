//! `.dockerignore` patterns with Docker's exact semantics (Go `filepath.Match` plus `**`,
//! `!` exceptions, last match wins), and directory pruning for fast walks.

/// Errors from a bad pattern.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IgnoreError {
    #[error("invalid .dockerignore pattern {pattern:?}: {reason}")]
    BadPattern { pattern: String, reason: String },
}

/// A compiled pattern list.
#[derive(Debug, Clone, Default)]
pub struct Matcher {}

impl Matcher {
    /// Parses the text of a `.dockerignore` file.
    pub fn parse(_text: &str) -> Result<Matcher, IgnoreError> {
        todo!("context helper")
    }
    /// True when `rel` (slash-separated, relative to the context root) is excluded.
    pub fn is_excluded(&self, _rel: &str) -> bool {
        todo!("context helper")
    }
    /// True when nothing under directory `rel` can be re-included, so a walk may skip it.
    pub fn can_prune_dir(&self, _rel: &str) -> bool {
        todo!("context helper")
    }
}

//! Why a step missed the cache: the inputs record kept for each step identity, and the diff of
//! the previous record against the current one.
//!
//! When a layer step runs, its inputs (instruction text as written, the build args it can see,
//! the base image's manifest digest, its parent key, a digest of each named key part and, for
//! COPY/ADD, a bounded per-file list) are written to `<cache>/inputs/<identity>.json`, where the
//! identity names the step's place in the Dockerfile (context, Dockerfile, platform, stage,
//! position, kind) and so survives edits of the step itself. On the next miss at that place the
//! old record is diffed against the new one and the first difference names the reason. Only
//! misses read or write records: a hit costs nothing. Records keep digests, never file
//! contents, and a build arg's value only when its name does not look like a secret.

use crate::oci::Digest;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// How many file entries a record keeps; the rest are folded into one digest.
pub const MAX_FILES: usize = 5000;

/// How many changed files a reason names before `+N more`.
const SHOWN_FILES: usize = 3;

/// A build arg a step can see: its name, its value in clear only when the name does not look
/// like a secret, and a digest of the value (to compare secret ones).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArgInput {
    pub name: String,
    #[serde(default)]
    pub value: Option<String>,
    pub hash: String,
}

impl ArgInput {
    /// The record of arg `name` with `value` (None: declared without a value).
    pub fn new(name: &str, value: Option<&str>) -> ArgInput {
        let shown = !crate::lint::secrets::is_secret_key(name);
        let hash = match value {
            Some(v) => Digest::of(format!("hoist-arg\0{name}\0{v}").as_bytes()),
            None => Digest::of(format!("hoist-arg-unset\0{name}").as_bytes()),
        };
        ArgInput {
            name: name.to_string(),
            value: if shown {
                value.map(str::to_string)
            } else {
                None
            },
            hash: hash.hex().to_string(),
        }
    }
}

/// One file a COPY/ADD writes: its destination path, mode, and a digest of the rest of its
/// key line (content hash, owner, link target).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInput {
    pub path: String,
    pub mode: String,
    pub sum: String,
}

/// The files of a COPY/ADD: the first [`MAX_FILES`] entries and a digest of the others.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileList {
    pub entries: Vec<FileInput>,
    /// How many entries were left out, and the digest of their lines.
    pub more: usize,
    pub rest: String,
}

impl FileList {
    /// The list of `(path, mode, rest-of-line)` entries, bounded to [`MAX_FILES`].
    pub fn new<'a>(all: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>) -> FileList {
        let mut list = FileList::default();
        let mut rest = Vec::new();
        for (path, mode, other) in all {
            if list.entries.len() < MAX_FILES {
                list.entries.push(FileInput {
                    path: path.to_string(),
                    mode: mode.to_string(),
                    sum: short(other),
                });
            } else {
                list.more += 1;
                rest.extend_from_slice(format!("{path}\0{mode}\0{other}\n").as_bytes());
            }
        }
        if list.more > 0 {
            list.rest = Digest::of(&rest).hex().to_string();
        }
        list
    }
}

/// What decided one step's key, kept to explain its next miss.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepInputs {
    /// The step's key and its parent's.
    pub key: String,
    pub parent: String,
    /// The instruction as written in the Dockerfile (before expansion).
    pub text: String,
    /// The stage's base image manifest digest, when it is an image.
    #[serde(default)]
    pub base: Option<String>,
    pub args: Vec<ArgInput>,
    /// Each key part's name and a digest of its value.
    pub parts: Vec<(String, String)>,
    #[serde(default)]
    pub files: Option<FileList>,
}

/// A short digest of `s` (records compare these, never show them).
pub fn short(s: &str) -> String {
    Digest::of(s.as_bytes()).hex()[..16].to_string()
}

/// How one file differs between two builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileChange {
    Added(String),
    Removed(String),
    Content(String),
    Mode(String),
}

impl fmt::Display for FileChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileChange::Added(p) => write!(f, "{p} (added)"),
            FileChange::Removed(p) => write!(f, "{p} (removed)"),
            FileChange::Content(p) => write!(f, "{p} (content changed)"),
            FileChange::Mode(p) => write!(f, "{p} (mode changed)"),
        }
    }
}

/// Why a step ran instead of reusing the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MissReason {
    /// `--no-cache` (or `--no-cache-filter` naming the stage).
    NoCache,
    /// The instruction as written changed.
    Text,
    /// A build arg the step sees changed; the values only when the name does not look secret.
    Arg {
        name: String,
        old: Option<String>,
        new: Option<String>,
    },
    /// The files a COPY/ADD writes changed: the first few, and how many more.
    Files { shown: Vec<FileChange>, more: usize },
    /// The stage's base image changed.
    Base { old: String, new: String },
    /// The step before it missed (its key changed).
    Parent,
    /// Another key part (e.g. `env`, `user`, `cwd`, `mounts`) changed.
    Part(String),
    /// No entry for this step: it never ran here, or its entry or layer was pruned.
    NoEntry { first: bool },
}

impl fmt::Display for MissReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MissReason::NoCache => write!(f, "--no-cache asked for it"),
            MissReason::Text => write!(f, "the instruction text changed"),
            MissReason::Arg { name, old, new } => match (old, new) {
                (Some(o), Some(n)) => write!(f, "build arg {name} changed ({o:?} → {n:?})"),
                (None, Some(n)) => write!(f, "build arg {name} changed (now {n:?})"),
                (Some(o), None) => write!(f, "build arg {name} changed (was {o:?})"),
                (None, None) => write!(f, "build arg {name} changed"),
            },
            MissReason::Files { shown, more } => {
                let list: Vec<String> = shown.iter().map(|c| c.to_string()).collect();
                write!(f, "files changed: {}", list.join(", "))?;
                if *more > 0 {
                    write!(f, " +{more} more")?;
                }
                Ok(())
            }
            MissReason::Base { old, new } => write!(f, "the base image changed ({old} → {new})"),
            MissReason::Parent => write!(f, "the parent step missed"),
            MissReason::Part(p) => write!(f, "the step's {p} changed"),
            MissReason::NoEntry { first: true } => {
                write!(f, "no cache entry existed (first build of this step)")
            }
            MissReason::NoEntry { first: false } => {
                write!(f, "no cache entry existed (it or its layer was pruned)")
            }
        }
    }
}

/// Why `cur` missed, given the record `prev` of the last miss at the same place: the first
/// difference in the order instruction text, build arg, files, base image, parent step, other
/// key parts. `--no-cache` comes first: it alone decides that the step runs.
pub fn explain(prev: Option<&StepInputs>, cur: &StepInputs, no_cache: bool) -> MissReason {
    if no_cache {
        return MissReason::NoCache;
    }
    let Some(prev) = prev else {
        return MissReason::NoEntry { first: true };
    };
    if prev.key == cur.key {
        return MissReason::NoEntry { first: false };
    }
    if prev.text != cur.text {
        return MissReason::Text;
    }
    if let Some(r) = arg_change(&prev.args, &cur.args) {
        return r;
    }
    if let (Some(p), Some(c)) = (&prev.files, &cur.files)
        && let Some(r) = file_changes(p, c)
    {
        return r;
    }
    if let (Some(old), Some(new)) = (&prev.base, &cur.base)
        && old != new
    {
        return MissReason::Base {
            old: old.clone(),
            new: new.clone(),
        };
    }
    if prev.parent != cur.parent {
        return MissReason::Parent;
    }
    let old: HashMap<&str, &str> = prev
        .parts
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    for (name, v) in &cur.parts {
        if old.get(name.as_str()) != Some(&v.as_str()) {
            return MissReason::Part(name.clone());
        }
    }
    MissReason::NoEntry { first: false }
}

fn arg_change(prev: &[ArgInput], cur: &[ArgInput]) -> Option<MissReason> {
    for a in cur {
        match prev.iter().find(|p| p.name == a.name) {
            Some(p) if p.hash == a.hash => {}
            Some(p) => {
                return Some(MissReason::Arg {
                    name: a.name.clone(),
                    old: p.value.clone(),
                    new: a.value.clone(),
                });
            }
            None => {
                return Some(MissReason::Arg {
                    name: a.name.clone(),
                    old: None,
                    new: a.value.clone(),
                });
            }
        }
    }
    prev.iter()
        .find(|p| !cur.iter().any(|a| a.name == p.name))
        .map(|p| MissReason::Arg {
            name: p.name.clone(),
            old: p.value.clone(),
            new: None,
        })
}

fn file_changes(prev: &FileList, cur: &FileList) -> Option<MissReason> {
    let old: HashMap<&str, &FileInput> =
        prev.entries.iter().map(|e| (e.path.as_str(), e)).collect();
    let mut changes = Vec::new();
    for e in &cur.entries {
        match old.get(e.path.as_str()) {
            None => changes.push(FileChange::Added(e.path.clone())),
            Some(o) if o.sum != e.sum => changes.push(FileChange::Content(e.path.clone())),
            Some(o) if o.mode != e.mode => changes.push(FileChange::Mode(e.path.clone())),
            Some(_) => {}
        }
    }
    let new: std::collections::HashSet<&str> =
        cur.entries.iter().map(|e| e.path.as_str()).collect();
    for e in &prev.entries {
        if !new.contains(e.path.as_str()) {
            changes.push(FileChange::Removed(e.path.clone()));
        }
    }
    if changes.is_empty() {
        if prev.rest == cur.rest && prev.more == cur.more {
            return None;
        }
        // Only files past the listed ones differ.
        return Some(MissReason::Files {
            shown: vec![],
            more: cur.more.max(prev.more),
        });
    }
    let more = changes.len().saturating_sub(SHOWN_FILES);
    changes.truncate(SHOWN_FILES);
    Some(MissReason::Files {
        shown: changes,
        more,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> StepInputs {
        StepInputs {
            key: "k1".into(),
            parent: "p1".into(),
            text: "COPY . /app/".into(),
            base: Some("sha256:aa".into()),
            args: vec![ArgInput::new("VERSION", Some("1"))],
            parts: vec![("kind".into(), short("COPY")), ("env".into(), short("A=1"))],
            files: Some(FileList::new([
                ("/app/a", "644", "h1"),
                ("/app/b", "644", "h2"),
            ])),
        }
    }

    fn changed(f: impl FnOnce(&mut StepInputs)) -> StepInputs {
        let mut c = inputs();
        c.key = "k2".into();
        f(&mut c);
        c
    }

    #[test]
    fn no_record_or_same_key_is_no_entry() {
        let cur = inputs();
        assert_eq!(
            explain(None, &cur, false),
            MissReason::NoEntry { first: true }
        );
        assert_eq!(
            explain(Some(&cur), &cur, false),
            MissReason::NoEntry { first: false }
        );
        assert_eq!(explain(Some(&cur), &cur, true), MissReason::NoCache);
    }

    #[test]
    fn text_comes_before_args_and_files() {
        let prev = inputs();
        let cur = changed(|c| {
            c.text = "COPY . /srv/".into();
            c.args = vec![ArgInput::new("VERSION", Some("2"))];
        });
        assert_eq!(explain(Some(&prev), &cur, false), MissReason::Text);
    }

    #[test]
    fn arg_change_names_the_arg_and_hides_secret_values() {
        let prev = inputs();
        let cur = changed(|c| c.args = vec![ArgInput::new("VERSION", Some("2"))]);
        let r = explain(Some(&prev), &cur, false);
        assert_eq!(r.to_string(), "build arg VERSION changed (\"1\" → \"2\")");

        let mut prev = inputs();
        prev.args = vec![ArgInput::new("API_TOKEN", Some("hunter2"))];
        let cur = changed(|c| c.args = vec![ArgInput::new("API_TOKEN", Some("s3cr3t-value"))]);
        let text = explain(Some(&prev), &cur, false).to_string();
        assert_eq!(text, "build arg API_TOKEN changed");
        let record = serde_json::to_string(&cur).unwrap();
        assert!(!record.contains("s3cr3t-value"), "{record}");
        assert!(!record.contains("hunter2"), "{record}");
    }

    #[test]
    fn new_and_dropped_args_count_as_changes() {
        let prev = inputs();
        let cur = changed(|c| c.args.push(ArgInput::new("EXTRA", Some("x"))));
        assert_eq!(
            explain(Some(&prev), &cur, false).to_string(),
            "build arg EXTRA changed (now \"x\")"
        );
        let cur = changed(|c| c.args.clear());
        assert_eq!(
            explain(Some(&prev), &cur, false).to_string(),
            "build arg VERSION changed (was \"1\")"
        );
    }

    #[test]
    fn file_changes_list_three_then_count() {
        let prev = inputs();
        let cur = changed(|c| {
            c.files = Some(FileList::new([
                ("/app/a", "644", "h1-new"),
                ("/app/c", "644", "h3"),
            ]))
        });
        assert_eq!(
            explain(Some(&prev), &cur, false).to_string(),
            "files changed: /app/a (content changed), /app/c (added), /app/b (removed)"
        );
        let cur = changed(|c| {
            c.files = Some(FileList::new([
                ("/app/a", "755", "h1"),
                ("/app/b", "644", "h2"),
                ("/app/c", "644", "h3"),
                ("/app/d", "644", "h4"),
                ("/app/e", "644", "h5"),
            ]))
        });
        assert_eq!(
            explain(Some(&prev), &cur, false).to_string(),
            "files changed: /app/a (mode changed), /app/c (added), /app/d (added) +1 more"
        );
    }

    #[test]
    fn file_lists_are_bounded() {
        let names: Vec<String> = (0..MAX_FILES + 10).map(|i| format!("/f{i}")).collect();
        let l = FileList::new(names.iter().map(|n| (n.as_str(), "644", "h")));
        assert_eq!(l.entries.len(), MAX_FILES);
        assert_eq!(l.more, 10);
        let mut names2 = names.clone();
        names2[MAX_FILES + 5] = "/other".into();
        let l2 = FileList::new(names2.iter().map(|n| (n.as_str(), "644", "h")));
        let mut prev = inputs();
        prev.files = Some(l);
        let cur = changed(|c| c.files = Some(l2));
        assert_eq!(
            explain(Some(&prev), &cur, false),
            MissReason::Files {
                shown: vec![],
                more: 10
            }
        );
    }

    #[test]
    fn base_then_parent_then_other_parts() {
        let prev = inputs();
        let cur = changed(|c| {
            c.base = Some("sha256:bb".into());
            c.parent = "p2".into();
        });
        assert_eq!(
            explain(Some(&prev), &cur, false).to_string(),
            "the base image changed (sha256:aa → sha256:bb)"
        );
        let cur = changed(|c| c.parent = "p2".into());
        assert_eq!(explain(Some(&prev), &cur, false), MissReason::Parent);
        let cur = changed(|c| c.parts[1].1 = short("A=2"));
        assert_eq!(
            explain(Some(&prev), &cur, false).to_string(),
            "the step's env changed"
        );
    }
}

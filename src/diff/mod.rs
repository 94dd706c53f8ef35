//! `hoist diff IMAGE1 IMAGE2`: why two images differ.
//!
//! The core here is pure: it compares two images given as (config, layers), where each layer
//! is its diffID and, when the pair differs, the files it holds ([`FileMeta`] by path). Config
//! fields are compared one by one (top-level fields such as `architecture`, `os`, `created`;
//! each field of `config` such as `Env`, `Cmd`, `Labels`; history by count and entry), then
//! layers by index: equal diffIDs are identical and their files are not read; otherwise the
//! files added, removed, or changed and what changed (content by sha256, type, mode, owner,
//! link target, mtime, xattrs). [`layer`] reads a stored layer blob into such a file map;
//! `cli::diff` resolves the images and prints the [`Report`] as text or JSON.

pub mod layer;

use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// What reading an image or a layer for `hoist diff` can fail with.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// The layer blob does not decompress or is not a valid tar.
    #[error("layer {digest}: {source}")]
    Layer {
        digest: String,
        #[source]
        source: crate::layers::LayersError,
    },
    /// The layer blob is not in the store.
    #[error("layer {digest}: {source} (run `hoist fsck` or pull the image again)")]
    Store {
        digest: String,
        #[source]
        source: crate::store::StoreError,
    },
    /// An image config that does not serialize (cannot happen for a parsed one).
    #[error("cannot read the image config of {image}: {reason}")]
    Config { image: String, reason: String },
}

/// One file of a layer, as far as the diff is concerned.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct FileMeta {
    /// `file`, `dir`, `symlink`, `hardlink`, `char`, `block`, `fifo`.
    pub kind: &'static str,
    /// Permission bits (0o7777).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds since the epoch.
    pub mtime: i64,
    /// sha256 (hex) of a regular file's content; empty for other kinds.
    pub sha256: String,
    /// Symlink or hardlink target.
    pub link: String,
    /// Extended attributes as `name=hexvalue`, sorted.
    pub xattrs: Vec<String>,
}

/// Files of a layer by path (absolute, no trailing `/`).
pub type Files = BTreeMap<String, FileMeta>;

/// A layer of one side of the diff.
#[derive(Clone, Debug)]
pub struct LayerSide {
    /// The layer's diffID (digest of its uncompressed tar).
    pub diff_id: String,
    /// Its files; read only for pairs that differ (see [`diff_images`]).
    pub files: Option<Files>,
}

/// A config field that differs: `field` is `created`, `config.Env`, `history.length`,
/// `history[3]`…; a side is `None` when the field is absent there.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// How a layer index compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerStatus {
    /// Same diffID.
    Identical,
    /// Both images have a layer here, with different content.
    Changed,
    /// Only the second image has a layer at this index.
    Added,
    /// Only the first image has a layer at this index.
    Removed,
}

/// One aspect of a file that differs, old and new rendered as text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Aspect {
    /// `type`, `content`, `mode`, `owner`, `link`, `mtime` or `xattrs`.
    pub aspect: &'static str,
    pub old: String,
    pub new: String,
}

/// What happened to a path between the two layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    Added,
    Removed,
    Changed,
}

/// A path that differs between two layers at one index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileChange {
    pub path: String,
    pub status: FileStatus,
    /// For `changed`: what differs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Aspect>,
}

/// One layer index compared.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerDiff {
    pub index: usize,
    pub status: LayerStatus,
    pub old: Option<String>,
    pub new: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileChange>,
}

/// Why two images differ (nothing, when [`Report::identical`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub image1: String,
    pub image2: String,
    pub identical: bool,
    pub config: Vec<FieldChange>,
    pub layers: Vec<LayerDiff>,
}

/// Compares two image configs field by field (the rootfs diffIDs are the layers' business).
pub fn diff_configs(old: &Value, new: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let obj = |v: &Value, k: &str| v.get(k).cloned();
    let keys = |a: Option<&Value>, b: Option<&Value>| -> BTreeSet<String> {
        [a, b]
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
            .flat_map(|m| m.keys().cloned())
            .collect()
    };
    for k in keys(Some(old), Some(new)) {
        match k.as_str() {
            "rootfs" | "history" => {}
            "config" => {
                let (a, b) = (old.get("config"), new.get("config"));
                for f in keys(a, b) {
                    let x = a.and_then(|a| a.get(&f)).filter(|v| !v.is_null()).cloned();
                    let y = b.and_then(|b| b.get(&f)).filter(|v| !v.is_null()).cloned();
                    if x != y {
                        out.push(FieldChange {
                            field: format!("config.{f}"),
                            old: x,
                            new: y,
                        });
                    }
                }
            }
            _ => {
                let (x, y) = (obj(old, &k), obj(new, &k));
                if x != y {
                    out.push(FieldChange {
                        field: k,
                        old: x,
                        new: y,
                    });
                }
            }
        }
    }
    let hist = |v: &Value| -> Vec<Value> {
        v.get("history")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (ha, hb) = (hist(old), hist(new));
    if ha.len() != hb.len() {
        out.push(FieldChange {
            field: "history.length".into(),
            old: Some(ha.len().into()),
            new: Some(hb.len().into()),
        });
    }
    for (i, (a, b)) in ha.iter().zip(&hb).enumerate() {
        if a != b {
            out.push(FieldChange {
                field: format!("history[{i}]"),
                old: Some(a.clone()),
                new: Some(b.clone()),
            });
        }
    }
    out
}

/// Compares two layers' files: added, removed, and changed paths with what changed.
pub fn diff_files(old: &Files, new: &Files) -> Vec<FileChange> {
    let paths: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut out = Vec::new();
    for p in paths {
        let (status, changes) = match (old.get(p), new.get(p)) {
            (Some(_), None) => (FileStatus::Removed, Vec::new()),
            (None, Some(_)) => (FileStatus::Added, Vec::new()),
            (Some(a), Some(b)) if a != b => (FileStatus::Changed, aspects(a, b)),
            _ => continue,
        };
        out.push(FileChange {
            path: p.clone(),
            status,
            changes,
        });
    }
    out
}

fn aspects(a: &FileMeta, b: &FileMeta) -> Vec<Aspect> {
    let mut v = Vec::new();
    let mut add = |aspect, old: String, new: String| {
        if old != new {
            v.push(Aspect { aspect, old, new });
        }
    };
    add("type", a.kind.into(), b.kind.into());
    add("content", a.sha256.clone(), b.sha256.clone());
    add("mode", format!("{:04o}", a.mode), format!("{:04o}", b.mode));
    add(
        "owner",
        format!("{}:{}", a.uid, a.gid),
        format!("{}:{}", b.uid, b.gid),
    );
    add("link", a.link.clone(), b.link.clone());
    add("mtime", a.mtime.to_string(), b.mtime.to_string());
    add("xattrs", a.xattrs.join(","), b.xattrs.join(","));
    v
}

/// Compares two images: `config1`/`config2` as JSON, layers in order. A layer pair with
/// different diffIDs is compared file by file when both sides' files are given (a side
/// missing at that index counts as no files).
pub fn diff_images(
    image1: &str,
    image2: &str,
    config1: &Value,
    config2: &Value,
    layers1: &[LayerSide],
    layers2: &[LayerSide],
) -> Report {
    let config = diff_configs(config1, config2);
    let empty = Files::new();
    let mut layers = Vec::new();
    for i in 0..layers1.len().max(layers2.len()) {
        let (a, b) = (layers1.get(i), layers2.get(i));
        let status = match (a, b) {
            (Some(a), Some(b)) if a.diff_id == b.diff_id => LayerStatus::Identical,
            (Some(_), Some(_)) => LayerStatus::Changed,
            (None, _) => LayerStatus::Added,
            (_, None) => LayerStatus::Removed,
        };
        let files = match status {
            LayerStatus::Identical => Vec::new(),
            _ => diff_files(
                a.and_then(|l| l.files.as_ref()).unwrap_or(&empty),
                b.and_then(|l| l.files.as_ref()).unwrap_or(&empty),
            ),
        };
        layers.push(LayerDiff {
            index: i,
            status,
            old: a.map(|l| l.diff_id.clone()),
            new: b.map(|l| l.diff_id.clone()),
            files,
        });
    }
    let identical = config.is_empty() && layers.iter().all(|l| l.status == LayerStatus::Identical);
    Report {
        image1: image1.into(),
        image2: image2.into(),
        identical,
        config,
        layers,
    }
}

/// The report as text: config fields, then each layer (identical ones on one line) with its
/// files grouped as changed, added, removed.
pub fn render_text(r: &Report) -> String {
    let mut s = String::new();
    if r.identical {
        let _ = writeln!(s, "{} and {} are identical", r.image1, r.image2);
        return s;
    }
    let _ = writeln!(s, "--- {}\n+++ {}", r.image1, r.image2);
    let show = |v: &Option<Value>| v.as_ref().map_or("(absent)".to_string(), Value::to_string);
    if !r.config.is_empty() {
        let _ = writeln!(s, "config:");
        for c in &r.config {
            let _ = writeln!(
                s,
                "  {}:\n    - {}\n    + {}",
                c.field,
                show(&c.old),
                show(&c.new)
            );
        }
    }
    for l in &r.layers {
        let short = |d: &Option<String>| d.as_deref().map_or("(none)", short_digest).to_string();
        match l.status {
            LayerStatus::Identical => {
                let _ = writeln!(s, "layer {}: identical ({})", l.index, short(&l.old));
                continue;
            }
            LayerStatus::Changed => {
                let _ = writeln!(
                    s,
                    "layer {}: {} -> {}",
                    l.index,
                    short(&l.old),
                    short(&l.new)
                );
            }
            LayerStatus::Added => {
                let _ = writeln!(
                    s,
                    "layer {}: only in {} ({})",
                    l.index,
                    r.image2,
                    short(&l.new)
                );
            }
            LayerStatus::Removed => {
                let _ = writeln!(
                    s,
                    "layer {}: only in {} ({})",
                    l.index,
                    r.image1,
                    short(&l.old)
                );
            }
        }
        for (status, label) in [
            (FileStatus::Changed, "changed"),
            (FileStatus::Added, "added"),
            (FileStatus::Removed, "removed"),
        ] {
            for f in l.files.iter().filter(|f| f.status == status) {
                let what: Vec<String> = f
                    .changes
                    .iter()
                    .map(|a| match a.aspect {
                        "content" => format!(
                            "content {} -> {}",
                            short_digest(&a.old),
                            short_digest(&a.new)
                        ),
                        _ => format!("{} {} -> {}", a.aspect, a.old, a.new),
                    })
                    .collect();
                if what.is_empty() {
                    let _ = writeln!(s, "  {label:<8} {}", f.path);
                } else {
                    let _ = writeln!(s, "  {label:<8} {}: {}", f.path, what.join(", "));
                }
            }
        }
    }
    s
}

fn short_digest(d: &str) -> &str {
    let hex = d.strip_prefix("sha256:").unwrap_or(d);
    hex.get(..12).unwrap_or(hex)
}

#[cfg(test)]
mod tests;

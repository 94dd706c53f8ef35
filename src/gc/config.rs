//! The `builder.gc` settings of hoist's config file, with Docker's `daemon.json` keys and
//! units:
//!
//! ```json
//! {"builder": {"gc": {"enabled": true, "defaultKeepStorage": "20GB",
//!   "policy": [{"keepStorage": "10GB", "filter": ["unused-for=168h"]},
//!              {"keepStorage": "50GB", "all": true}]}}}
//! ```
//!
//! Also accepted, as in newer Docker releases: `reservedSpace` for `keepStorage` and
//! `keepDuration` (a duration or a list of one) for an `unused-for` filter; `until=` is read as
//! `unused-for=`. A policy without `keepStorage` uses `defaultKeepStorage`.
//!
//! Default limit (no `defaultKeepStorage`): 10% of the size of the filesystem holding the
//! store, as BuildKit derives its default `keepBytes`, with BuildKit's 2 GB when the size
//! cannot be read, and capped at 100 GB so a large disk does not mean an unbounded cache.
//! Default policies: `[{keep, unused-for=1440h}, {keep}]` (BuildKit's order, without the
//! `all` rule: tagged images are never removed unless a configured policy says `all`).

use super::policy::Policy;
use super::{GcError, Result};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// BuildKit's fallback when the disk size is unknown.
const FALLBACK_KEEP: u64 = 2_000_000_000;
/// Upper bound of the derived default.
const DEFAULT_CAP: u64 = 100_000_000_000;

/// Parsed `builder.gc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcConfig {
    pub enabled: bool,
    /// `defaultKeepStorage`; `None` derives it from the filesystem.
    pub default_keep_storage: Option<u64>,
    /// Policies as written; `keep_storage: None` means the default.
    pub policy: Vec<(Option<u64>, Policy)>,
}

impl Default for GcConfig {
    fn default() -> GcConfig {
        GcConfig {
            enabled: true,
            default_keep_storage: None,
            policy: Vec::new(),
        }
    }
}

impl GcConfig {
    /// Reads `builder.gc` from a whole config file (`origin` names it in errors); absent
    /// keys keep their defaults.
    pub fn from_config(v: &Value, origin: &str) -> Result<GcConfig> {
        let mut c = GcConfig::default();
        let Some(gc) = v.get("builder").and_then(|b| b.get("gc")) else {
            return Ok(c);
        };
        let bad = |key: &str, reason: String| GcError::Config {
            origin: origin.to_string(),
            key: key.to_string(),
            reason,
        };
        if let Some(e) = gc.get("enabled") {
            c.enabled = e
                .as_bool()
                .ok_or_else(|| bad("builder.gc.enabled", "expected true or false".into()))?;
        }
        if let Some(s) = gc.get("defaultKeepStorage") {
            c.default_keep_storage = Some(size(s).map_err(|r| bad("defaultKeepStorage", r))?);
        }
        let policies = match gc.get("policy") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(a)) => a.as_slice(),
            Some(_) => return Err(bad("builder.gc.policy", "expected a list".into())),
        };
        for (i, p) in policies.iter().enumerate() {
            let key = format!("builder.gc.policy[{i}]");
            let keep = match p.get("keepStorage").or_else(|| p.get("reservedSpace")) {
                Some(s) => Some(size(s).map_err(|r| bad(&key, r))?),
                None => None,
            };
            let mut unused_for = None;
            if let Some(d) = p.get("keepDuration") {
                let d = match d {
                    Value::Array(a) => a.first().cloned().unwrap_or(Value::Null),
                    d => d.clone(),
                };
                unused_for = Some(duration_value(&d).map_err(|r| bad(&key, r))?);
            }
            let filters = match p.get("filter") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(a)) => a.clone(),
                Some(_) => return Err(bad(&key, "filter: expected a list of strings".into())),
            };
            for f in &filters {
                let f = f
                    .as_str()
                    .ok_or_else(|| bad(&key, "filter: expected strings".into()))?;
                let (k, v) = f
                    .split_once("==")
                    .or_else(|| f.split_once('='))
                    .ok_or_else(|| bad(&key, format!("filter {f:?}: expected key=value")))?;
                match k.trim() {
                    "unused-for" | "until" => {
                        unused_for = Some(parse_duration(v.trim()).ok_or_else(|| {
                            bad(&key, format!("filter {f:?}: expected a duration like 168h"))
                        })?)
                    }
                    other => {
                        return Err(bad(
                            &key,
                            format!("filter {other:?} is not supported (use unused-for=DURATION)"),
                        ));
                    }
                }
            }
            let all = match p.get("all") {
                None => false,
                Some(a) => a
                    .as_bool()
                    .ok_or_else(|| bad(&key, "all: expected true or false".into()))?,
            };
            c.policy.push((
                keep,
                Policy {
                    keep_storage: 0,
                    unused_for,
                    all,
                },
            ));
        }
        Ok(c)
    }

    /// The default limit: `defaultKeepStorage`, else derived from the filesystem at `root`.
    pub fn default_keep(&self, root: &Path) -> u64 {
        self.default_keep_storage
            .unwrap_or_else(|| derived_keep(filesystem_size(root)))
    }

    /// The policies to run, with every limit resolved against `default_keep`.
    pub fn policies(&self, default_keep: u64) -> Vec<Policy> {
        if self.policy.is_empty() {
            return vec![
                Policy {
                    keep_storage: default_keep,
                    unused_for: Some(Duration::from_secs(1440 * 3600)),
                    all: false,
                },
                Policy {
                    keep_storage: default_keep,
                    unused_for: None,
                    all: false,
                },
            ];
        }
        self.policy
            .iter()
            .map(|(keep, p)| Policy {
                keep_storage: keep.unwrap_or(default_keep),
                ..p.clone()
            })
            .collect()
    }

    /// The smallest limit of `policies`: above it, a GC pass has something to do.
    pub fn threshold(&self, default_keep: u64) -> u64 {
        self.policies(default_keep)
            .iter()
            .map(|p| p.keep_storage)
            .min()
            .unwrap_or(default_keep)
    }
}

/// 10% of a filesystem of `size` bytes (BuildKit's rule), 2 GB when unknown, capped.
pub fn derived_keep(size: Option<u64>) -> u64 {
    match size {
        Some(s) if s > 0 => (s / 10).min(DEFAULT_CAP),
        _ => FALLBACK_KEEP,
    }
}

/// Total size of the filesystem holding `root`.
fn filesystem_size(root: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(root).ok()?;
    s.f_blocks.checked_mul(s.f_frsize)
}

/// A size as Docker writes it: a string (`"20GB"`, `"512MB"`) or a number of bytes.
fn size(v: &Value) -> std::result::Result<u64, String> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| format!("{n}: expected a byte count")),
        Value::String(s) => {
            crate::cache::parse_size(s).ok_or_else(|| format!("{s:?}: expected a size like 20GB"))
        }
        other => Err(format!("{other}: expected a size like \"20GB\"")),
    }
}

fn duration_value(v: &Value) -> std::result::Result<Duration, String> {
    match v {
        Value::String(s) => {
            parse_duration(s).ok_or_else(|| format!("{s:?}: expected a duration like 48h"))
        }
        Value::Number(n) => n
            .as_u64()
            .map(Duration::from_secs)
            .ok_or_else(|| format!("{n}: expected seconds")),
        other => Err(format!("{other}: expected a duration like \"48h\"")),
    }
}

/// A Go duration: `168h`, `1h30m`, `90s`, `500ms` (no sign).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..n_end].parse().ok()?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        rest = &rest[u_end..];
        total += n * mult;
    }
    (total.is_finite() && total >= 0.0).then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_example_parses() {
        let v: Value = serde_json::from_str(
            r#"{"insecure-registries": [], "builder": {"gc": {"enabled": true,
            "defaultKeepStorage": "20GB", "policy": [
              {"keepStorage": "10GB", "filter": ["unused-for=168h"]},
              {"keepStorage": "50GB", "all": true}, {"filter": ["until=1h30m"]}]}}}"#,
        )
        .unwrap();
        let c = GcConfig::from_config(&v, "config.json").unwrap();
        assert!(c.enabled);
        let p = c.policies(c.default_keep(Path::new("/")));
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].keep_storage, 10_000_000_000);
        assert_eq!(p[0].unused_for, Some(Duration::from_secs(168 * 3600)));
        assert!(p[1].all && p[1].keep_storage == 50_000_000_000);
        assert_eq!(p[2].keep_storage, 20_000_000_000);
        assert_eq!(p[2].unused_for, Some(Duration::from_secs(5400)));
        assert_eq!(c.threshold(20_000_000_000), 10_000_000_000);
    }

    #[test]
    fn defaults_and_errors() {
        let c = GcConfig::from_config(&serde_json::json!({}), "c").unwrap();
        assert_eq!(c, GcConfig::default());
        let p = c.policies(7);
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(|p| p.keep_storage == 7 && !p.all));
        let off = serde_json::json!({"builder": {"gc": {"enabled": false}}});
        assert!(!GcConfig::from_config(&off, "c").unwrap().enabled);
        let bad =
            serde_json::json!({"builder": {"gc": {"policy": [{"filter": ["type==regular"]}]}}});
        let e = GcConfig::from_config(&bad, "/etc/hoist/config.json").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/etc/hoist/config.json: builder.gc.policy[0]: filter \"type\""),
            "{e}"
        );
        assert_eq!(derived_keep(Some(50_000_000_000)), 5_000_000_000);
        assert_eq!(derived_keep(None), FALLBACK_KEEP);
        assert_eq!(derived_keep(Some(u64::MAX)), DEFAULT_CAP);
        assert_eq!(parse_duration("48h"), Some(Duration::from_secs(48 * 3600)));
        assert_eq!(parse_duration("h"), None);
    }
}

//! Rust crates: `Cargo.lock` (`[[package]]` tables; only registry and git sources are
//! packages, path crates are the project's own) and the dependency list `cargo auditable`
//! embeds in binaries (zlib-compressed JSON, found by `binary.rs`). Cargo writes its lock
//! file in a fixed, line-oriented subset of TOML, so it is read line by line here rather than
//! with a TOML parser.

use super::Found;
use serde::Deserialize;

/// The value of a `key = "value"` line.
fn string_value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = line
        .strip_prefix(key)?
        .trim_start()
        .strip_prefix('=')?
        .trim();
    rest.strip_prefix('"')?.strip_suffix('"')
}

/// The crates a Cargo.lock pins from registries and git.
pub fn parse_lock(text: &str) -> Vec<Found> {
    let mut out = Vec::new();
    let mut cur: Option<(Found, bool)> = None;
    let mut in_deps = false;
    let flush = |cur: &mut Option<(Found, bool)>, out: &mut Vec<Found>| {
        if let Some((f, sourced)) = cur.take()
            && sourced
            && !f.name.is_empty()
            && !f.version.is_empty()
        {
            out.push(f);
        }
    };
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') && !line.starts_with("[[package]]") && !in_deps {
            flush(&mut cur, &mut out);
            continue;
        }
        if line == "[[package]]" {
            flush(&mut cur, &mut out);
            cur = Some((Found::default(), false));
            in_deps = false;
            continue;
        }
        let Some((f, sourced)) = cur.as_mut() else {
            continue;
        };
        if in_deps {
            if line.starts_with(']') {
                in_deps = false;
                continue;
            }
            // `"name"`, `"name 1.0.0"` or `"name 1.0.0 (registry+…)"`.
            let d = line.trim_end_matches(',').trim_matches('"');
            let mut parts = d.split_whitespace();
            if let Some(n) = parts.next() {
                f.depends.push(match parts.next() {
                    Some(v) => format!("{n} {v}"),
                    None => n.to_string(),
                });
            }
            continue;
        }
        if let Some(v) = string_value(line, "name") {
            f.name = v.to_string();
        } else if let Some(v) = string_value(line, "version") {
            f.version = v.to_string();
        } else if let Some(v) = string_value(line, "source") {
            *sourced =
                v.starts_with("registry+") || v.starts_with("sparse+") || v.starts_with("git+");
        } else if let Some(rest) = line.strip_prefix("dependencies") {
            let rest = rest.trim_start().trim_start_matches('=').trim();
            if rest.starts_with('[') && !rest.ends_with(']') {
                in_deps = true;
            }
        }
    }
    flush(&mut cur, &mut out);
    out
}

#[derive(Deserialize)]
struct Audit {
    packages: Vec<AuditPackage>,
}

#[derive(Deserialize)]
struct AuditPackage {
    name: String,
    version: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    dependencies: Vec<usize>,
    #[serde(default)]
    root: bool,
    /// `runtime` (the default) or `build`: build dependencies are not in the binary.
    #[serde(default)]
    kind: String,
}

/// The crates in a `cargo auditable` JSON document (the binary's own root crate, path crates
/// and build-only dependencies left out; dependencies by `name version`).
pub fn parse_auditable(json: &[u8]) -> Result<Vec<Found>, String> {
    let a: Audit = serde_json::from_slice(json).map_err(|e| format!("not auditable JSON: {e}"))?;
    let label = |i: usize| -> Option<String> {
        a.packages
            .get(i)
            .map(|p| format!("{} {}", p.name, p.version))
    };
    Ok(a.packages
        .iter()
        .filter(|p| {
            !p.root
                && p.kind != "build"
                && matches!(p.source.as_str(), "crates.io" | "git" | "registry")
        })
        .map(|p| Found {
            name: p.name.clone(),
            version: p.version.clone(),
            depends: p.dependencies.iter().filter_map(|&i| label(i)).collect(),
            ..Found::default()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keeps_registry_and_git_crates() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/sbom/Cargo.lock"
        ))
        .unwrap();
        let p = parse_lock(&text);
        let got: Vec<String> = p
            .iter()
            .map(|f| format!("{} {}", f.name, f.version))
            .collect();
        assert_eq!(
            got,
            vec!["cfg-if 1.0.0", "log 0.4.20", "mygit 0.1.0", "serde 1.0.195"]
        );
        assert_eq!(p[1].depends, vec!["cfg-if"]);
        assert_eq!(p[3].depends, vec!["serde_derive 1.0.195"]);
    }

    #[test]
    fn auditable_json_gives_dependencies_by_index() {
        let json = br#"{"packages":[
            {"name":"app","version":"0.1.0","source":"local","kind":"runtime","dependencies":[1],"root":true},
            {"name":"log","version":"0.4.20","source":"crates.io","dependencies":[2]},
            {"name":"cfg-if","version":"1.0.0","source":"crates.io"},
            {"name":"cc","version":"1.0.83","source":"crates.io","kind":"build"}]}"#;
        let p = parse_auditable(json).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "log");
        assert_eq!(p[0].depends, vec!["cfg-if 1.0.0"]);
        assert!(parse_auditable(b"{}").is_err());
    }
}

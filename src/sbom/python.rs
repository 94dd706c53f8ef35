//! Python distributions: `*.dist-info/METADATA` and `*.egg-info/PKG-INFO` (core metadata,
//! email-header style). License from `License-Expression` (PEP 639), else a short `License`
//! field, else the `License ::` trove classifiers that name one license exactly.

use super::Found;
use super::license;

/// Whether `path` is a distribution's metadata file.
pub fn is_metadata(path: &str) -> bool {
    let mut it = path.rsplit('/');
    match (it.next(), it.next()) {
        (Some("METADATA"), Some(dir)) => dir.ends_with(".dist-info"),
        (Some("PKG-INFO"), Some(dir)) => dir.ends_with(".egg-info"),
        // setuptools may also write `NAME.egg-info` as a single file.
        (Some(file), _) => file.ends_with(".egg-info"),
        _ => false,
    }
}

/// The distribution a METADATA/PKG-INFO text describes (`None` without Name and Version).
pub fn parse_metadata(text: &str) -> Option<Found> {
    let mut name = None;
    let mut version = None;
    let mut expr = None;
    let mut lic: Option<String> = None;
    let mut classifiers = Vec::new();
    let mut requires = Vec::new();
    let mut author = None;
    let mut last_key = String::new();
    for line in text.lines() {
        // The headers end at the first blank line; the description follows.
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if last_key == "license"
                && let Some(l) = lic.as_mut()
            {
                l.push('\n');
                l.push_str(line.trim());
            }
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim().to_string();
        last_key = k.trim().to_ascii_lowercase();
        match last_key.as_str() {
            "name" => name = Some(v),
            "version" => version = Some(v),
            "license-expression" => expr = Some(v),
            "license" => lic = Some(v),
            "classifier" if v.starts_with("License ::") => classifiers.push(v),
            "requires-dist" => {
                // `name (>=1) ; extra == "x"`: only unconditional requirements.
                if !v.contains(';')
                    && let Some(n) = v
                        .split(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
                        .next()
                        .filter(|n| !n.is_empty())
                {
                    requires.push(normalise(n));
                }
            }
            "author" | "maintainer" if author.is_none() && !v.is_empty() => author = Some(v),
            _ => {}
        }
    }
    let short = |l: &String| {
        let l = l.trim();
        !l.is_empty() && !l.contains('\n') && l.len() <= 100 && !l.eq_ignore_ascii_case("UNKNOWN")
    };
    let from_classifiers = || {
        let ids: Vec<&str> = classifiers
            .iter()
            .filter_map(|c| license::classifier(c))
            .collect();
        (!ids.is_empty()).then(|| ids.join(" AND "))
    };
    let license = expr
        .filter(|e| !e.is_empty())
        .or_else(|| lic.filter(short))
        .or_else(from_classifiers);
    requires.sort();
    requires.dedup();
    Some(Found {
        name: normalise(&name?),
        version: version?,
        license,
        supplier: author,
        depends: requires,
        ..Found::default()
    })
}

/// PEP 503 normalised name: lower case, runs of `-_.` as one `-`.
pub fn normalise(n: &str) -> String {
    let mut out = String::with_capacity(n.len());
    for c in n.chars() {
        if "-_.".contains(c) {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_gives_name_version_and_license() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/sbom/METADATA"
        ))
        .unwrap();
        let f = parse_metadata(&text).unwrap();
        assert_eq!(f.name, "typing-extensions");
        assert_eq!(f.version, "4.9.0");
        // The License field holds the whole text: the classifier wins.
        assert_eq!(f.license.as_deref(), Some("PSF-2.0"));
        assert_eq!(f.depends, vec!["attrs"]);
    }

    #[test]
    fn license_expression_comes_first() {
        let f = parse_metadata(
            "Metadata-Version: 2.4\nName: x\nVersion: 1\nLicense-Expression: MIT OR Apache-2.0\nLicense: BSD\n",
        )
        .unwrap();
        assert_eq!(f.license.as_deref(), Some("MIT OR Apache-2.0"));
        let f = parse_metadata("Name: x\nVersion: 1\nLicense: BSD-3-Clause\n").unwrap();
        assert_eq!(f.license.as_deref(), Some("BSD-3-Clause"));
    }

    #[test]
    fn metadata_paths() {
        assert!(is_metadata(
            "/usr/lib/python3/dist-packages/a-1.dist-info/METADATA"
        ));
        assert!(is_metadata("/x/a.egg-info/PKG-INFO"));
        assert!(is_metadata("/x/a-1.0.egg-info"));
        assert!(!is_metadata("/x/METADATA"));
    }
}

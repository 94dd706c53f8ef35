//! Debian packages: dpkg's status database (`/var/lib/dpkg/status`, one stanza per package;
//! distroless images keep one stanza file per package under `status.d/`) and the licenses of
//! machine-readable (DEP-5) `/usr/share/doc/NAME/copyright` files.

use super::Found;

/// The stanzas of a deb822 text: `Field: value` lines, continuation lines starting with
/// whitespace, blank lines between stanzas. Field names keep their case.
pub fn stanzas(text: &str) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut cur: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = cur.last_mut() {
                v.push('\n');
                v.push_str(line.trim());
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            cur.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn field<'a>(s: &'a [(String, String)], name: &str) -> Option<&'a str> {
    s.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Package names in a `Depends`-style list: `a (>= 1), b | c, d:any` → a, b, c, d.
pub fn relation_names(list: &str) -> Vec<String> {
    list.split([',', '|'])
        .filter_map(|alt| {
            let name = alt.split_whitespace().next()?;
            let name = name.split(['(', '[', '<']).next()?.split(':').next()?;
            (!name.is_empty()).then(|| name.to_string())
        })
        .collect()
}

/// The installed packages of a dpkg status text (only `Status: install ok installed`; a
/// distroless `status.d` stanza has no `Status` and counts as installed).
pub fn parse_status(text: &str) -> Vec<Found> {
    let mut out = Vec::new();
    for s in stanzas(text) {
        if let Some(st) = field(&s, "Status")
            && st.split_whitespace().collect::<Vec<_>>() != ["install", "ok", "installed"]
        {
            continue;
        }
        let (Some(name), Some(version)) = (field(&s, "Package"), field(&s, "Version")) else {
            continue;
        };
        let mut depends = Vec::new();
        for f in ["Depends", "Pre-Depends"] {
            if let Some(v) = field(&s, f) {
                depends.extend(relation_names(v));
            }
        }
        depends.sort();
        depends.dedup();
        // `Source: glibc (2.36-9)`: the source package, when it has another name.
        let qualifiers = field(&s, "Source")
            .and_then(|v| v.split_whitespace().next())
            .filter(|src| *src != name)
            .map(|src| vec![("upstream".to_string(), src.to_string())])
            .unwrap_or_default();
        out.push(Found {
            qualifiers,
            name: name.to_string(),
            version: version.to_string(),
            arch: field(&s, "Architecture").map(str::to_string),
            supplier: field(&s, "Maintainer").map(str::to_string),
            provides: field(&s, "Provides")
                .map(relation_names)
                .unwrap_or_default(),
            depends,
            ..Found::default()
        });
    }
    out
}

/// The license names (first line of each `License:` field) of a DEP-5 copyright file, in
/// order of first appearance; `None` when the file is not machine-readable.
pub fn copyright_licenses(text: &str) -> Option<Vec<String>> {
    let first = text.lines().next()?;
    let (k, v) = first.split_once(':')?;
    if !k.eq_ignore_ascii_case("Format") || !v.contains("copyright-format") && !v.contains("dep5") {
        return None;
    }
    let mut out: Vec<String> = Vec::new();
    for s in stanzas(text) {
        // Stand-alone license paragraphs only give a name's text; `Files` paragraphs (and the
        // header's own License) say which licenses apply.
        let standalone = field(&s, "Files").is_none() && field(&s, "Format").is_none();
        if standalone {
            continue;
        }
        if let Some(l) = field(&s, "License") {
            let name = l.lines().next().unwrap_or("").trim().to_string();
            if !name.is_empty() && !out.contains(&name) {
                out.push(name);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::sbom::fixture;

    #[test]
    fn status_keeps_installed_packages_with_their_relations() {
        let pkgs = parse_status(&fixture("dpkg-status"));
        let names: Vec<&str> = pkgs.iter().map(|p| p.name.as_str()).collect();
        // `removed-pkg` is deinstall/config-files: not installed.
        assert_eq!(names, vec!["base-files", "libc6", "bash", "mawk"]);
        let bash = &pkgs[2];
        assert_eq!(bash.version, "5.2.15-2+b2");
        assert_eq!(bash.arch.as_deref(), Some("amd64"));
        assert_eq!(
            bash.depends,
            vec![
                "base-files",
                "debianutils",
                "libc6",
                "libtinfo5",
                "libtinfo6"
            ]
        );
        assert_eq!(pkgs[3].provides, vec!["awk"]);
        assert_eq!(
            pkgs[1].qualifiers,
            vec![("upstream".to_string(), "glibc".to_string())]
        );
    }

    #[test]
    fn relation_lists_give_every_alternative() {
        assert_eq!(
            relation_names("libc6 (>= 2.34), awk | mawk:any, perl [amd64]"),
            vec!["libc6", "awk", "mawk", "perl"]
        );
    }

    #[test]
    fn dep5_copyright_names_the_licenses_of_its_files() {
        let l = copyright_licenses(&fixture("copyright-dep5")).unwrap();
        assert_eq!(l, vec!["GPL-3+", "BSD-3-clause", "GPL-2+ or Artistic"]);
        assert!(copyright_licenses(&fixture("copyright-free-form")).is_none());
    }
}

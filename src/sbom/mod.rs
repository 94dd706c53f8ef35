//! Software bill of materials: what packages an image's final filesystem (or a directory)
//! holds, found by hoist itself, offline, with no scanner image — the inventory BuildKit gets
//! from syft. `source.rs` walks layers (whiteouts applied) or a directory and hands each path
//! of interest to one parser; each parser (`dpkg`, `apk`, `rpm`, `npm`, `python`, `cargo`,
//! `golang` with `binary`, `java`) is pure over bytes; [`assemble`] turns the findings that
//! survive into an [`Inventory`] (purls, licenses, dependencies); `spdx.rs` renders it as an
//! SPDX 2.3 JSON document.

pub mod apk;
pub mod binary;
pub mod cargo;
pub mod dpkg;
pub mod golang;
pub mod java;
pub mod license;
pub mod npm;
pub mod purl;
pub mod python;
pub mod rpm;
mod scan_cache;
pub mod source;
pub mod spdx;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use source::{scan_dir, scan_layers};
pub use spdx::DocInfo;

/// What went wrong making an SBOM: names the image layer or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    /// A layer blob could not be opened from the store.
    #[error("layer {digest}: cannot open its blob: {source}")]
    Store {
        digest: String,
        source: crate::store::StoreError,
    },
    /// The store's scratch directory (where an rpmdb is copied to be read) is unusable.
    #[error("cannot make a scratch directory in the store: {0}")]
    Scratch(crate::store::StoreError),
    /// A layer is not a readable (compressed) tar.
    #[error("layer {digest}: {source}")]
    Layer {
        digest: String,
        source: crate::layers::LayersError,
    },
    /// A directory to scan could not be read.
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, SbomError>;

/// The package ecosystems hoist recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Ecosystem {
    /// Debian/Ubuntu (`dpkg`).
    Deb,
    /// Alpine (`apk`).
    Apk,
    /// RPM distributions.
    Rpm,
    /// npm (Node.js).
    Npm,
    /// Python (PyPI).
    Python,
    /// Rust (crates.io and git sources).
    Cargo,
    /// Go modules.
    Go,
    /// Java (Maven coordinates).
    Maven,
}

impl Ecosystem {
    /// The short name used in SPDXIDs and the table output.
    pub fn name(self) -> &'static str {
        match self {
            Ecosystem::Deb => "deb",
            Ecosystem::Apk => "apk",
            Ecosystem::Rpm => "rpm",
            Ecosystem::Npm => "npm",
            Ecosystem::Python => "python",
            Ecosystem::Cargo => "cargo",
            Ecosystem::Go => "go",
            Ecosystem::Maven => "java",
        }
    }

    /// Whether dependencies resolve across the whole image (an OS package database) rather
    /// than within the one file that named them (a lock file, a binary).
    fn image_wide(self) -> bool {
        matches!(self, Ecosystem::Deb | Ecosystem::Apk | Ecosystem::Rpm)
    }
}

/// One package as a parser found it.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Found {
    /// Name as the ecosystem spells it (for Maven: the artifactId).
    pub name: String,
    /// Version as the ecosystem spells it (rpm: `VERSION-RELEASE`).
    pub version: String,
    /// purl namespace the file itself knows (Maven groupId, an npm scope is part of `name`).
    pub namespace: Option<String>,
    /// Architecture, where the database records one.
    pub arch: Option<String>,
    /// Declared license text as written (not yet SPDX).
    pub license: Option<String>,
    /// Who supplies it (`Organization: …` or `Person: …` text without the prefix).
    pub supplier: Option<String>,
    /// Names (or `name version`) of packages this one depends on.
    pub depends: Vec<String>,
    /// Other names this package answers to (dpkg `Provides`, apk `p:`).
    pub provides: Vec<String>,
    /// Extra purl qualifiers (rpm `epoch`, `upstream`).
    pub qualifiers: Vec<(String, String)>,
}

/// What one file in the image says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Finding {
    /// `/etc/os-release` or `/usr/lib/os-release`: the distribution.
    OsRelease(OsRelease),
    /// Packages of one ecosystem.
    Packages(Ecosystem, Vec<Found>),
    /// `/usr/share/doc/NAME/copyright` in DEP-5 form: the licenses it names.
    DebCopyright(Vec<String>),
}

/// The fields of os-release that purls use.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsRelease {
    /// `ID` (debian, ubuntu, alpine, fedora, …).
    pub id: String,
    /// `VERSION_ID` (12, 3.20.1, 40, …).
    pub version_id: String,
}

/// Parses an os-release file (shell-style `KEY=value`, values optionally quoted).
pub fn parse_os_release(text: &str) -> OsRelease {
    let mut o = OsRelease::default();
    for line in text.lines() {
        let Some((k, v)) = line.trim().split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
        match k {
            "ID" => o.id = v,
            "VERSION_ID" => o.version_id = v,
            _ => {}
        }
    }
    o
}

/// One package of the inventory, with everything the SPDX document needs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Package {
    /// Its ecosystem.
    pub ecosystem: Ecosystem,
    /// What the parser found.
    pub found: Found,
    /// Its package URL.
    pub purl: String,
    /// The path it was found in (`/var/lib/dpkg/status`, `/app/package-lock.json`, …).
    pub source: String,
}

/// What an image or directory holds: packages (sorted, without duplicates), the dependency
/// edges between them (indexes into `packages`), and what could not be read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inventory {
    /// The distribution, when os-release names one.
    pub os: Option<OsRelease>,
    /// The packages, sorted by ecosystem, name, version, source.
    pub packages: Vec<Package>,
    /// `(from, to)`: `packages[from]` depends on `packages[to]`; sorted.
    pub depends: Vec<(usize, usize)>,
    /// Files skipped or not understood (too large, malformed), one line each.
    pub warnings: Vec<String>,
}

/// Turns the surviving findings (path → finding) into an inventory.
pub fn assemble(findings: &BTreeMap<String, Finding>, warnings: Vec<String>) -> Inventory {
    let os = ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| match findings.get(*p) {
            Some(Finding::OsRelease(o)) => Some(o.clone()),
            _ => None,
        });
    let mut packages: Vec<Package> = Vec::new();
    for (path, f) in findings {
        let Finding::Packages(eco, list) = f else {
            continue;
        };
        for found in list {
            let mut found = found.clone();
            if *eco == Ecosystem::Deb && found.license.is_none() {
                let doc = format!("/usr/share/doc/{}/copyright", found.name);
                if let Some(Finding::DebCopyright(l)) = findings.get(&doc) {
                    found.license = license::debian_licenses(l);
                }
            }
            let purl = purl::purl(*eco, &found, os.as_ref());
            packages.push(Package {
                ecosystem: *eco,
                found,
                purl,
                source: path.clone(),
            });
        }
    }
    packages.sort();
    packages
        .dedup_by(|a, b| a.ecosystem == b.ecosystem && a.purl == b.purl && a.source == b.source);
    let depends = resolve_depends(&packages);
    Inventory {
        os,
        packages,
        depends,
        warnings,
    }
}

/// The dependency edges: each `depends` entry (`name` or `name version`) matched against the
/// names and provides of packages of the same ecosystem, image-wide for OS databases, else in
/// the same file.
fn resolve_depends(packages: &[Package]) -> Vec<(usize, usize)> {
    let mut by_name: BTreeMap<(Ecosystem, Option<&str>, &str), Vec<usize>> = BTreeMap::new();
    fn scope(p: &Package) -> Option<&str> {
        if p.ecosystem.image_wide() {
            None
        } else {
            Some(p.source.as_str())
        }
    }
    for (i, p) in packages.iter().enumerate() {
        by_name
            .entry((p.ecosystem, scope(p), p.found.name.as_str()))
            .or_default()
            .push(i);
        for alias in &p.found.provides {
            by_name
                .entry((p.ecosystem, scope(p), alias.as_str()))
                .or_default()
                .push(i);
        }
    }
    let mut edges = Vec::new();
    for (i, p) in packages.iter().enumerate() {
        for d in &p.found.depends {
            let (name, version) = match d.split_once(' ') {
                Some((n, v)) => (n, Some(v)),
                None => (d.as_str(), None),
            };
            let Some(targets) = by_name.get(&(p.ecosystem, scope(p), name)) else {
                continue;
            };
            let exact: Vec<usize> = targets
                .iter()
                .copied()
                .filter(|&t| version.is_none_or(|v| packages[t].found.version == v))
                .collect();
            let chosen = if exact.is_empty() { targets } else { &exact };
            for &t in chosen {
                if t != i {
                    edges.push((i, t));
                }
            }
        }
    }
    edges.sort();
    edges.dedup();
    edges
}

/// A text fixture of `tests/fixtures/sbom/` (the parsers' unit tests).
#[cfg(test)]
pub(crate) fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/sbom/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, version: &str, depends: &[&str]) -> Found {
        Found {
            name: name.into(),
            version: version.into(),
            depends: depends.iter().map(|s| s.to_string()).collect(),
            ..Found::default()
        }
    }

    #[test]
    fn os_release_values_are_unquoted() {
        let o = parse_os_release("NAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID=\"12\"\n");
        assert_eq!(o.id, "debian");
        assert_eq!(o.version_id, "12");
    }

    #[test]
    fn dependencies_resolve_image_wide_for_os_packages_and_per_file_for_locks() {
        let mut f = BTreeMap::new();
        f.insert(
            "/var/lib/dpkg/status.d/a".to_string(),
            Finding::Packages(Ecosystem::Deb, vec![pkg("a", "1", &["b"])]),
        );
        f.insert(
            "/var/lib/dpkg/status.d/b".to_string(),
            Finding::Packages(Ecosystem::Deb, vec![pkg("b", "2", &[])]),
        );
        f.insert(
            "/x/Cargo.lock".to_string(),
            Finding::Packages(Ecosystem::Cargo, vec![pkg("c", "1.0.0", &["d 2.0.0"])]),
        );
        f.insert(
            "/y/Cargo.lock".to_string(),
            Finding::Packages(
                Ecosystem::Cargo,
                vec![pkg("d", "2.0.0", &[]), pkg("d", "1.0.0", &[])],
            ),
        );
        let inv = assemble(&f, Vec::new());
        let names: Vec<(&str, &str)> = inv
            .depends
            .iter()
            .map(|&(a, b)| {
                (
                    inv.packages[a].found.name.as_str(),
                    inv.packages[b].found.name.as_str(),
                )
            })
            .collect();
        // c's d lives in another lock file: no edge.
        assert_eq!(names, vec![("a", "b")]);
    }
}

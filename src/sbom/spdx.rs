//! The inventory as an SPDX 2.3 JSON document: a root package for the image or directory
//! (`DOCUMENT DESCRIBES` it, it `CONTAINS` each package), each package with its purl, its
//! declared license as a valid SPDX expression (unknown names as `LicenseRef-…`, explained in
//! `hasExtractedLicensingInfos`), the file it was found in, and `DEPENDS_ON` edges where the
//! data knows them. Deterministic: packages sorted, SPDXIDs derived from content, the
//! creation time given by the caller, so one inventory gives byte-identical JSON.

use super::license::{Spdx, to_spdx};
use super::{Inventory, Package};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;

/// The SPDX license list version the identifiers in `license.rs` were checked against.
pub const LICENSE_LIST_VERSION: &str = "3.25";
/// SPDXID of the root package.
pub const ROOT_ID: &str = "SPDXRef-RootPackage";

/// What the caller says about the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocInfo {
    /// Document and root package name (the image name, or `sbom`).
    pub name: String,
    /// A unique URI for this document.
    pub namespace: String,
    /// Creation time, RFC 3339 UTC (`SOURCE_DATE_EPOCH` makes it reproducible).
    pub created: String,
}

impl DocInfo {
    /// A document about `name` (an image name, `context`, a stage) whose content is
    /// identified by `digest`: the namespace is unique to both, `created` is `secs`.
    pub fn for_subject(name: &str, digest: &crate::oci::Digest, secs: i64) -> DocInfo {
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-._".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        DocInfo {
            name: name.to_string(),
            namespace: format!("https://spdx.org/spdxdocs/hoist/{safe}-{}", digest.hex()),
            created: crate::engine::rfc3339(secs),
        }
    }
}

/// `[A-Za-z0-9.-]` only, as SPDXIDs require.
fn id_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A stable SPDXID: ecosystem, name and a hash of everything that identifies the package.
fn package_id(p: &Package) -> String {
    let mut h = Sha256::new();
    for part in [p.ecosystem.name(), &p.purl, &p.source] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let hex = hex::encode(h.finalize());
    format!(
        "SPDXRef-Package-{}-{}-{}",
        p.ecosystem.name(),
        id_part(&p.found.name),
        &hex[..16]
    )
}

/// `Organization: …` for database suppliers, `Person: …` for a name with an e-mail address.
fn supplier(s: &str) -> String {
    let s = s.replace('\n', " ");
    if s.contains('@') && !s.contains(',') {
        format!("Person: {s}")
    } else {
        format!("Organization: {s}")
    }
}

/// The SPDX 2.3 document of `inv`.
pub fn document(inv: &Inventory, info: &DocInfo) -> Value {
    // LicenseRef id → text; a second text with the same id gets a hashed suffix.
    let mut refs: BTreeMap<String, String> = BTreeMap::new();
    let mut declared = |text: Option<&str>| -> String {
        let Some(Spdx {
            mut expression,
            refs: used,
        }) = text.and_then(to_spdx)
        else {
            return "NOASSERTION".to_string();
        };
        for (id, original) in used {
            let unique = match refs.get(&id) {
                None => id.clone(),
                Some(t) if *t == original => id.clone(),
                Some(_) => {
                    let h = hex::encode(Sha256::digest(original.as_bytes()));
                    format!("{id}-{}", &h[..8])
                }
            };
            if unique != id {
                expression = replace_id(&expression, &id, &unique);
            }
            refs.entry(unique).or_insert(original);
        }
        expression
    };
    let mut ids: Vec<String> = inv.packages.iter().map(package_id).collect();
    // Two packages with one id (the same purl twice in one file): number them.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for id in ids.iter_mut() {
        let n = seen.entry(id.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            id.push_str(&format!("-{n}"));
        }
    }
    let root = json!({
        "SPDXID": ROOT_ID,
        "name": info.name,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
    });
    let mut packages = vec![root];
    for (p, id) in inv.packages.iter().zip(&ids) {
        let mut v = json!({
            "SPDXID": id,
            "name": p.found.name,
            "versionInfo": p.found.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": declared(p.found.license.as_deref()),
            "copyrightText": "NOASSERTION",
            "sourceInfo": format!("acquired package info from {}", p.source),
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": p.purl,
            }],
        });
        if let Some(s) = p.found.supplier.as_deref().filter(|s| !s.trim().is_empty()) {
            v["supplier"] = json!(supplier(s));
        }
        packages.push(v);
    }
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": ROOT_ID,
    })];
    for id in &ids {
        relationships.push(json!({
            "spdxElementId": ROOT_ID,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    for &(a, b) in &inv.depends {
        relationships.push(json!({
            "spdxElementId": ids[a],
            "relationshipType": "DEPENDS_ON",
            "relatedSpdxElement": ids[b],
        }));
    }
    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": info.name,
        "documentNamespace": info.namespace,
        "creationInfo": {
            "created": info.created,
            "creators": [format!("Tool: hoist-{}", env!("CARGO_PKG_VERSION"))],
            "licenseListVersion": LICENSE_LIST_VERSION,
        },
        "packages": packages,
        "relationships": relationships,
    });
    if !refs.is_empty() {
        doc["hasExtractedLicensingInfos"] = refs
            .into_iter()
            .map(|(id, text)| {
                json!({
                    "licenseId": id,
                    "extractedText": text,
                    "name": text,
                })
            })
            .collect();
    }
    doc
}

/// `expr` with the whole identifier `from` replaced by `to`.
fn replace_id(expr: &str, from: &str, to: &str) -> String {
    let spaced = expr.replace('(', "( ").replace(')', " )");
    spaced
        .split(' ')
        .map(|t| if t == from { to } else { t })
        .collect::<Vec<_>>()
        .join(" ")
        .replace("( ", "(")
        .replace(" )", ")")
}

/// The table form: `NAME VERSION TYPE` lines, aligned, with a header.
pub fn table(inv: &Inventory) -> String {
    let rows: Vec<[&str; 3]> = inv
        .packages
        .iter()
        .map(|p| {
            [
                p.found.name.as_str(),
                p.found.version.as_str(),
                p.ecosystem.name(),
            ]
        })
        .collect();
    let w0 = rows.iter().map(|r| r[0].len()).max().unwrap_or(0).max(4);
    let w1 = rows.iter().map(|r| r[1].len()).max().unwrap_or(0).max(7);
    let mut out = format!("{:w0$}  {:w1$}  TYPE\n", "NAME", "VERSION");
    for r in rows {
        out.push_str(&format!("{:w0$}  {:w1$}  {}\n", r[0], r[1], r[2]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::{Ecosystem, Finding, Found, assemble};

    fn inv() -> Inventory {
        let mut f = BTreeMap::new();
        f.insert(
            "/var/lib/dpkg/status".to_string(),
            Finding::Packages(
                Ecosystem::Deb,
                vec![
                    Found {
                        name: "bash".into(),
                        version: "5.2".into(),
                        license: Some("GPL-3+ and Artistic".into()),
                        depends: vec!["libc6".into()],
                        supplier: Some("Matthias Klose <doko@debian.org>".into()),
                        ..Found::default()
                    },
                    Found {
                        name: "libc6".into(),
                        version: "2.36".into(),
                        license: Some("Artistic!".into()),
                        ..Found::default()
                    },
                ],
            ),
        );
        assemble(&f, Vec::new())
    }

    fn info() -> DocInfo {
        DocInfo {
            name: "img".into(),
            namespace: "https://example.invalid/spdx/img-1".into(),
            created: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn document_is_deterministic_and_explains_references() {
        let a = serde_json::to_string(&document(&inv(), &info())).unwrap();
        let b = serde_json::to_string(&document(&inv(), &info())).unwrap();
        assert_eq!(a, b);
        let d = document(&inv(), &info());
        let pk = d["packages"].as_array().unwrap();
        assert_eq!(pk.len(), 3);
        assert_eq!(pk[1]["name"], "bash");
        assert_eq!(
            pk[1]["licenseDeclared"],
            "GPL-3.0-or-later AND LicenseRef-Artistic"
        );
        assert_eq!(
            pk[1]["supplier"],
            "Person: Matthias Klose <doko@debian.org>"
        );
        // Another text under the same sanitised id gets its own reference.
        let lic2 = pk[2]["licenseDeclared"].as_str().unwrap();
        assert!(
            lic2.starts_with("LicenseRef-Artistic-") && lic2.len() == 28,
            "{lic2}"
        );
        let refs: Vec<&str> = d["hasExtractedLicensingInfos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["licenseId"].as_str().unwrap())
            .collect();
        assert_eq!(refs, vec!["LicenseRef-Artistic", lic2]);
        let rel = d["relationships"].as_array().unwrap();
        assert_eq!(rel.len(), 4);
        assert_eq!(rel[3]["relationshipType"], "DEPENDS_ON");
        assert_eq!(rel[3]["spdxElementId"], pk[1]["SPDXID"]);
        assert_eq!(rel[3]["relatedSpdxElement"], pk[2]["SPDXID"]);
    }

    #[test]
    fn table_lists_name_version_type() {
        let t = table(&inv());
        assert_eq!(
            t,
            "NAME   VERSION  TYPE\nbash   5.2      deb\nlibc6  2.36     deb\n"
        );
    }
}

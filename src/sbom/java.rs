//! Java archives (`.jar`, `.war`, `.ear`): Maven coordinates from
//! `META-INF/maven/GROUP/ARTIFACT/pom.properties`, else the manifest's
//! `Implementation-*`/`Bundle-*` headers, else the file name; archives nested one level deep
//! (`WEB-INF/lib/*.jar`, `BOOT-INF/lib/*.jar`) are read too. A zip's directory is at its end,
//! so an archive is read whole into memory, within a size limit the caller enforces; the
//! `zip` crate (deflate only) reads it.

use super::Found;
use std::io::{Cursor, Read};

/// Most bytes read of one nested archive.
const NESTED_MAX: u64 = 64 << 20;
/// Most bytes read of one metadata file.
const META_MAX: u64 = 1 << 20;
/// Most inflated bytes read from one archive, nested archives included (a zip may claim
/// small sizes and inflate to far more: every read is bounded by what is left of this).
const TOTAL_MAX: u64 = 256 << 20;

/// Whether `path` names a Java archive.
pub fn is_archive(path: &str) -> bool {
    let l = path.to_ascii_lowercase();
    [".jar", ".war", ".ear"].iter().any(|e| l.ends_with(e))
}

fn properties(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| {
            let (k, v) = l.split_once(['=', ':'])?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// A manifest's main section, continuation lines joined.
fn manifest(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break;
        }
        if let Some(cont) = line.strip_prefix(' ') {
            if let Some((_, v)) = out.last_mut() {
                v.push_str(cont);
            }
        } else if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

fn get<'a>(kv: &'a [(String, String)], k: &str) -> Option<&'a str> {
    kv.iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(k))
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// `name-1.2.3.jar` → (`name`, `1.2.3`).
fn from_file_name(path: &str) -> Option<(String, String)> {
    let file = path.rsplit('/').next()?;
    let stem = file.rsplit_once('.')?.0;
    let i = stem
        .char_indices()
        .find(|&(i, c)| c == '-' && stem[i + 1..].starts_with(|d: char| d.is_ascii_digit()))?
        .0;
    Some((stem[..i].to_string(), stem[i + 1..].to_string()))
}

/// The packages in a Java archive's bytes (`path` names it); errors say why it is unreadable.
pub fn scan(bytes: &[u8], path: &str) -> Result<Vec<Found>, String> {
    let mut budget = TOTAL_MAX;
    scan_depth(bytes, path, 0, &mut budget)
}

fn scan_depth(
    bytes: &[u8],
    path: &str,
    depth: usize,
    budget: &mut u64,
) -> Result<Vec<Found>, String> {
    let mut z = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| format!("not a zip: {e}"))?;
    let mut poms: Vec<Found> = Vec::new();
    let mut mf: Option<Vec<(String, String)>> = None;
    let mut nested: Vec<Found> = Vec::new();
    for i in 0..z.len() {
        let Ok(mut e) = z.by_index(i) else { continue };
        let Ok(name) = e.name().map(|n| n.into_owned()) else {
            continue;
        };
        let want_pom = name.starts_with("META-INF/maven/") && name.ends_with("/pom.properties");
        let want_mf = name.eq_ignore_ascii_case("META-INF/MANIFEST.MF");
        let want_nested = depth == 0 && is_archive(&name) && !e.is_dir();
        let limit = if want_nested { NESTED_MAX } else { META_MAX };
        if !(want_pom || want_mf || want_nested) || e.size() > limit {
            continue;
        }
        let mut data = Vec::new();
        let cap = limit.min(*budget);
        if (&mut e).take(cap).read_to_end(&mut data).is_err() {
            continue;
        }
        *budget -= data.len() as u64;
        if *budget == 0 {
            return Err(format!(
                "too much inflated data in metadata and nested archives (limit {} MiB)",
                TOTAL_MAX >> 20
            ));
        }
        if want_nested {
            // Read at once and dropped: one nested archive in memory at a time.
            if let Ok(found) = scan_depth(&data, &name, depth + 1, budget) {
                nested.extend(found);
            }
            continue;
        }
        let text = String::from_utf8_lossy(&data);
        if want_mf {
            mf = Some(manifest(&text));
            continue;
        }
        let p = properties(&text);
        if let (Some(g), Some(a), Some(v)) = (
            get(&p, "groupId"),
            get(&p, "artifactId"),
            get(&p, "version"),
        ) {
            poms.push(Found {
                name: a.to_string(),
                version: v.to_string(),
                namespace: Some(g.to_string()),
                ..Found::default()
            });
        }
    }
    let license = mf
        .as_ref()
        .and_then(|m| get(m, "Bundle-License"))
        .map(str::to_string);
    let mut out = poms;
    if out.is_empty() {
        let m = mf.unwrap_or_default();
        let name = get(&m, "Implementation-Title")
            .or_else(|| get(&m, "Bundle-SymbolicName"))
            .map(|n| n.split(';').next().unwrap_or(n).trim().to_string());
        let version = get(&m, "Implementation-Version").or_else(|| get(&m, "Bundle-Version"));
        let pair = match (name, version) {
            (Some(n), Some(v)) => Some((n, v.to_string())),
            _ => from_file_name(path),
        };
        if let Some((name, version)) = pair {
            out.push(Found {
                name,
                version,
                namespace: get(&m, "Implementation-Vendor-Id").map(str::to_string),
                ..Found::default()
            });
        }
    }
    if let Some(l) = license
        && let Some(first) = out.first_mut()
    {
        first.license = Some(l);
    }
    out.extend(nested);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    fn jar(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in entries {
            w.start_file(*name, SimpleFileOptions::default()).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn pom_properties_then_manifest_then_file_name() {
        let inner = jar(&[(
            "META-INF/MANIFEST.MF",
            b"Manifest-Version: 1.0\r\nBundle-SymbolicName: org.example.util;singleton:=true\r\nBundle-Version: 2.0.1\r\nBundle-License: Apache-2.0\r\n",
        )]);
        let outer = jar(&[
            (
                "META-INF/maven/com.example/app/pom.properties",
                b"#Generated\ngroupId=com.example\nartifactId=app\nversion=1.4.0\n",
            ),
            ("WEB-INF/lib/util.jar", &inner),
            ("WEB-INF/lib/plain-3.2.jar", &jar(&[("a.txt", b"x")])),
        ]);
        let f = scan(&outer, "/srv/app.war").unwrap();
        let got: Vec<String> = f
            .iter()
            .map(|p| {
                format!(
                    "{}:{}@{} {}",
                    p.namespace.as_deref().unwrap_or("-"),
                    p.name,
                    p.version,
                    p.license.as_deref().unwrap_or("-")
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                "com.example:app@1.4.0 -",
                "-:org.example.util@2.0.1 Apache-2.0",
                "-:plain@3.2 -"
            ]
        );
        assert!(scan(b"not a zip", "/x.jar").is_err());
    }

    #[test]
    fn inflated_bytes_are_bounded_per_archive() {
        // Five "nested archives" that deflate 4 MiB of zeros each into a few KiB: past the
        // total (10 MiB here), the archive is refused rather than read on.
        let zeros = vec![0u8; 4 << 20];
        let names: Vec<String> = (0..5).map(|i| format!("lib/x{i}.jar")).collect();
        let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &zeros[..])).collect();
        let outer = jar(&entries);
        assert!(outer.len() < 1 << 20);
        let e = scan_depth(&outer, "/big.war", 0, &mut (10 << 20)).unwrap_err();
        assert!(e.starts_with("too much inflated data"), "{e}");
        // Within the total, the same entries are read (and are no archives).
        assert_eq!(
            scan_depth(&outer, "/big.war", 0, &mut (30 << 20)),
            Ok(Vec::new())
        );
    }
}

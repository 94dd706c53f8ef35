//! Java archives (`.jar`, `.war`, `.ear`): Maven coordinates from
//! `META-INF/maven/GROUP/ARTIFACT/pom.properties`, else the manifest's
//! `Implementation-*`/`Bundle-*` headers, else the file name; archives nested one level deep
//! (`WEB-INF/lib/*.jar`, `BOOT-INF/lib/*.jar`) are read too. A zip's directory is at its end,
//! so an archive is read whole into memory, within a size limit the caller enforces; the
//! `zip` crate (deflate only) reads it.

use super::Found;
use std::io::{Cursor, Read};

/// Most bytes read of one nested archive or metadata entry.
const ENTRY_MAX: u64 = 64 << 20;

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
    scan_depth(bytes, path, 0)
}

fn scan_depth(bytes: &[u8], path: &str, depth: usize) -> Result<Vec<Found>, String> {
    let mut z = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| format!("not a zip: {e}"))?;
    let mut poms: Vec<Found> = Vec::new();
    let mut mf: Option<Vec<(String, String)>> = None;
    let mut nested: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..z.len() {
        let Ok(mut e) = z.by_index(i) else { continue };
        let Ok(name) = e.name().map(|n| n.into_owned()) else {
            continue;
        };
        let want_pom = name.starts_with("META-INF/maven/") && name.ends_with("/pom.properties");
        let want_mf = name.eq_ignore_ascii_case("META-INF/MANIFEST.MF");
        let want_nested = depth == 0 && is_archive(&name) && !e.is_dir();
        if !(want_pom || want_mf || want_nested) || e.size() > ENTRY_MAX {
            continue;
        }
        let mut data = Vec::new();
        if (&mut e).take(ENTRY_MAX).read_to_end(&mut data).is_err() {
            continue;
        }
        if want_nested {
            nested.push((name, data));
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
    for (name, data) in nested {
        if let Ok(found) = scan_depth(&data, &name, depth + 1) {
            out.extend(found);
        }
    }
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
}

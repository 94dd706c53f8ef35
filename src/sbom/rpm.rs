//! RPM packages from the sqlite rpmdb (`rpmdb.sqlite`: table `Packages(hnum, blob)`, each
//! blob one rpm header). The header is parsed here by hand (it is small and fixed: an index
//! count and data size, 16-byte big-endian index entries, then the data store); sqlite is
//! read with `rusqlite` and its bundled SQLite, so no system library is needed (the db is
//! read from a temporary copy, never from the image in place). A `-wal` file beside the db is
//! not read: rpm checkpoints it when it closes the database, so an image holds it empty.

use super::Found;
use std::path::Path;

const NAME: u32 = 1000;
const VERSION: u32 = 1001;
const RELEASE: u32 = 1002;
const EPOCH: u32 = 1003;
const VENDOR: u32 = 1011;
const LICENSE: u32 = 1014;
const ARCH: u32 = 1022;
const SOURCERPM: u32 = 1044;
const PROVIDENAME: u32 = 1047;
const REQUIRENAME: u32 = 1049;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// Why a header blob is not a header.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an rpm header: {0}")]
pub struct BadHeader(&'static str);

/// One tag's value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Int(Vec<u32>),
    Strings(Vec<String>),
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// The tags of interest in a header blob (without the 8-byte header magic, as rpmdb stores it).
fn tags(blob: &[u8]) -> Result<Vec<(u32, Value)>, BadHeader> {
    let il = be32(blob, 0).ok_or(BadHeader("shorter than 8 bytes"))? as usize;
    let dl = be32(blob, 4).ok_or(BadHeader("shorter than 8 bytes"))? as usize;
    // Bounds that rpm itself enforces (a header is at most 256 MiB, 64 Ki tags).
    if il > 0xffff || dl > 256 << 20 {
        return Err(BadHeader("index count or data size out of range"));
    }
    let data_start = 8 + il * 16;
    let data = blob
        .get(data_start..data_start + dl)
        .ok_or(BadHeader("truncated"))?;
    let mut out = Vec::new();
    for i in 0..il {
        let e = 8 + i * 16;
        let (Some(tag), Some(ty), Some(off), Some(count)) = (
            be32(blob, e),
            be32(blob, e + 4),
            be32(blob, e + 8),
            be32(blob, e + 12),
        ) else {
            return Err(BadHeader("truncated index"));
        };
        if !matches!(
            tag,
            NAME | VERSION
                | RELEASE
                | EPOCH
                | VENDOR
                | LICENSE
                | ARCH
                | SOURCERPM
                | PROVIDENAME
                | REQUIRENAME
        ) {
            continue;
        }
        let off = off as usize;
        let count = (count as usize).min(data.len());
        let rest = data.get(off..).ok_or(BadHeader("offset past the data"))?;
        let v = match ty {
            TYPE_INT32 => Value::Int(
                (0..count)
                    .map(|k| be32(rest, k * 4).ok_or(BadHeader("truncated int32")))
                    .collect::<Result<_, _>>()?,
            ),
            TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING => {
                let n = if ty == TYPE_STRING { 1 } else { count };
                let mut strs = Vec::with_capacity(n);
                let mut r = rest;
                for _ in 0..n {
                    let end = r
                        .iter()
                        .position(|&b| b == 0)
                        .ok_or(BadHeader("unterminated string"))?;
                    strs.push(String::from_utf8_lossy(&r[..end]).into_owned());
                    r = &r[end + 1..];
                }
                Value::Strings(strs)
            }
            _ => continue,
        };
        out.push((tag, v));
    }
    Ok(out)
}

/// The package a header blob describes.
pub fn parse_header(blob: &[u8]) -> Result<Found, BadHeader> {
    let t = tags(blob)?;
    let s = |tag: u32| -> Option<String> {
        t.iter().find_map(|(k, v)| match v {
            Value::Strings(s) if *k == tag => s.first().cloned(),
            _ => None,
        })
    };
    let list = |tag: u32| -> Vec<String> {
        t.iter()
            .find_map(|(k, v)| match v {
                Value::Strings(s) if *k == tag => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default()
    };
    let name = s(NAME).ok_or(BadHeader("no NAME tag"))?;
    let version = s(VERSION).ok_or(BadHeader("no VERSION tag"))?;
    let version = match s(RELEASE) {
        Some(r) => format!("{version}-{r}"),
        None => version,
    };
    let mut qualifiers = Vec::new();
    if let Some(e) = t.iter().find_map(|(k, v)| match v {
        Value::Int(i) if *k == EPOCH => i.first().copied(),
        _ => None,
    }) {
        qualifiers.push(("epoch".to_string(), e.to_string()));
    }
    if let Some(src) = s(SOURCERPM) {
        qualifiers.push(("upstream".to_string(), src));
    }
    let mut depends: Vec<String> = list(REQUIRENAME)
        .into_iter()
        .filter(|r| !r.starts_with("rpmlib("))
        .collect();
    depends.sort();
    depends.dedup();
    Ok(Found {
        name,
        version,
        arch: s(ARCH),
        license: s(LICENSE),
        supplier: s(VENDOR),
        depends,
        provides: list(PROVIDENAME),
        qualifiers,
        ..Found::default()
    })
}

/// The packages of an rpmdb.sqlite file; headers that do not parse become warnings.
pub fn read_sqlite(db: &Path, shown: &str) -> (Vec<Found>, Vec<String>) {
    let mut warnings = Vec::new();
    let conn = match rusqlite::Connection::open(db) {
        Ok(c) => c,
        Err(e) => {
            return (
                Vec::new(),
                vec![format!("{shown}: not an SQLite database: {e}")],
            );
        }
    };
    // The file is hostile input: schema-defined SQL must not run functions, nothing is written.
    for (k, v) in [("trusted_schema", false), ("query_only", true)] {
        if let Err(e) = conn.pragma_update(None, k, v) {
            return (Vec::new(), vec![format!("{shown}: cannot set {k}: {e}")]);
        }
    }
    let mut out = Vec::new();
    let rows = conn
        .prepare("SELECT hnum, blob FROM Packages")
        .and_then(|mut st| {
            st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))?
                .collect::<Result<Vec<_>, _>>()
        });
    match rows {
        Ok(rows) => {
            for (hnum, blob) in rows {
                match parse_header(&blob) {
                    Ok(f) => out.push(f),
                    Err(e) => warnings.push(format!("{shown}: package {hnum}: {e}")),
                }
            }
        }
        Err(e) => warnings.push(format!("{shown}: cannot read the Packages table: {e}")),
    }
    (out, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header blob with these (tag, type, data) entries, laid out as rpm does.
    fn header(entries: &[(u32, u32, u32, Vec<u8>)]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, ty, count, bytes) in entries {
            if *ty == TYPE_INT32 {
                while !data.len().is_multiple_of(4) {
                    data.push(0);
                }
            }
            index.extend_from_slice(&tag.to_be_bytes());
            index.extend_from_slice(&ty.to_be_bytes());
            index.extend_from_slice(&(data.len() as u32).to_be_bytes());
            index.extend_from_slice(&count.to_be_bytes());
            data.extend_from_slice(bytes);
        }
        let mut b = Vec::new();
        b.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        b.extend_from_slice(&(data.len() as u32).to_be_bytes());
        b.extend(index);
        b.extend(data);
        b
    }

    fn s(v: &str) -> Vec<u8> {
        let mut b = v.as_bytes().to_vec();
        b.push(0);
        b
    }

    #[test]
    fn header_tags_give_the_package() {
        let blob = header(&[
            (NAME, TYPE_STRING, 1, s("bash")),
            (VERSION, TYPE_STRING, 1, s("5.2.26")),
            (RELEASE, TYPE_STRING, 1, s("3.fc40")),
            (EPOCH, TYPE_INT32, 1, 1u32.to_be_bytes().to_vec()),
            (LICENSE, TYPE_STRING, 1, s("GPL-3.0-or-later")),
            (ARCH, TYPE_STRING, 1, s("x86_64")),
            (
                REQUIRENAME,
                TYPE_STRING_ARRAY,
                3,
                [s("glibc"), s("rpmlib(X)"), s("glibc")].concat(),
            ),
        ]);
        let f = parse_header(&blob).unwrap();
        assert_eq!(f.name, "bash");
        assert_eq!(f.version, "5.2.26-3.fc40");
        assert_eq!(f.license.as_deref(), Some("GPL-3.0-or-later"));
        assert_eq!(f.arch.as_deref(), Some("x86_64"));
        assert_eq!(f.depends, vec!["glibc"]);
        assert_eq!(f.qualifiers, vec![("epoch".to_string(), "1".to_string())]);
    }

    #[test]
    fn hostile_headers_are_errors_not_panics() {
        assert!(parse_header(&[0, 0]).is_err());
        let mut blob = header(&[(NAME, TYPE_STRING, 1, s("x"))]);
        // Offset past the data.
        blob[8 + 8..8 + 12].copy_from_slice(&1000u32.to_be_bytes());
        assert!(parse_header(&blob).is_err());
        let huge = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        assert!(parse_header(&huge).is_err());
        let unterminated = header(&[(NAME, TYPE_STRING, 1, b"abc".to_vec())]);
        assert!(parse_header(&unterminated).is_err());
    }

    #[test]
    fn a_file_that_is_no_rpmdb_is_a_warning() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("rpmdb.sqlite");
        std::fs::write(&f, vec![b'x'; 4096]).unwrap();
        let (pkgs, warnings) = read_sqlite(&f, "/var/lib/rpm/rpmdb.sqlite");
        assert!(pkgs.is_empty());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("/var/lib/rpm/rpmdb.sqlite: "),
            "{warnings:?}"
        );
    }
}

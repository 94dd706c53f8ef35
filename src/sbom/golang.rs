//! Go modules from a binary's build information: the `.go.buildinfo` header (magic
//! `\xff Go buildinf:`, pointer size, flags; since Go 1.18 the Go version and the module info
//! follow inline as varint-length strings) and the module info text (`path`, `mod`, `dep`,
//! `=>` replacements, `build` settings). Binaries of Go before 1.18 keep pointers instead of
//! inline strings; reading those needs the whole file, so they are reported, not read.

use super::Found;

/// The magic at the start of `.go.buildinfo`.
pub const MAGIC: &[u8] = b"\xff Go buildinf:";
/// Header size before the inline strings.
const HEADER: usize = 32;
const FLAG_INLINE: u8 = 0x2;

/// What a build info header holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildInfo {
    /// `go1.22.1`.
    pub go_version: String,
    /// The module info text, sentinels removed.
    pub modinfo: String,
}

/// The outcome of reading a header from the bytes seen so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Parse {
    /// A complete header.
    Done(BuildInfo),
    /// Valid so far; more bytes are needed.
    More,
    /// Not a build info header (or an old pointer-based one).
    Invalid(&'static str),
}

fn varint(b: &[u8]) -> Option<Result<(usize, usize), ()>> {
    let mut v: u64 = 0;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(usize::try_from(v).map(|v| (v, i + 1)).map_err(|_| ()));
        }
    }
    if b.len() >= 10 { Some(Err(())) } else { None }
}

/// Reads the header at the start of `b` (which begins with [`MAGIC`]); `max` bounds the
/// strings' length.
pub fn parse_header(b: &[u8], max: usize) -> Parse {
    if b.len() < HEADER {
        return Parse::More;
    }
    if !b.starts_with(MAGIC) {
        return Parse::Invalid("no magic");
    }
    let (ptr, flags) = (b[14], b[15]);
    if !matches!(ptr, 4 | 8) {
        return Parse::Invalid("pointer size is neither 4 nor 8");
    }
    if flags & FLAG_INLINE == 0 {
        return Parse::Invalid("build info of Go before 1.18 (pointer-based) is not read");
    }
    let mut at = HEADER;
    let mut strs = Vec::new();
    for _ in 0..2 {
        let (len, n) = match varint(&b[at..]) {
            None => return Parse::More,
            Some(Err(())) => return Parse::Invalid("bad string length"),
            Some(Ok(x)) => x,
        };
        if len > max {
            return Parse::Invalid("string longer than the limit");
        }
        at += n;
        if b.len() < at + len {
            return Parse::More;
        }
        strs.push(&b[at..at + len]);
        at += len;
    }
    let Ok(version) = std::str::from_utf8(strs[0]) else {
        return Parse::Invalid("Go version is not UTF-8");
    };
    if !(version.starts_with("go") || version.starts_with("devel")) {
        return Parse::Invalid("no Go version");
    }
    let mut m = strs[1];
    if m.len() >= 33 && m[m.len() - 17] == b'\n' {
        m = &m[16..m.len() - 16];
    }
    Parse::Done(BuildInfo {
        go_version: version.to_string(),
        modinfo: String::from_utf8_lossy(m).into_owned(),
    })
}

/// The modules a build info lists: every `dep` (a `=>` replacement with a version names the
/// module actually built in; a local-directory replacement keeps the required version), the
/// main module when it has a real version, and the Go standard library as `stdlib`.
pub fn modules(info: &BuildInfo) -> Vec<Found> {
    let mut out: Vec<Found> = Vec::new();
    let mut main: Option<Found> = None;
    for line in info.modinfo.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["mod", path, version, ..] => {
                main = Some(Found {
                    name: path.to_string(),
                    version: version.to_string(),
                    ..Found::default()
                })
            }
            ["dep", path, version, ..] => out.push(Found {
                name: path.to_string(),
                version: version.to_string(),
                ..Found::default()
            }),
            ["=>", path, version, ..] => {
                if let Some(last) = out.last_mut()
                    && !version.is_empty()
                    && *version != "(devel)"
                {
                    last.name = path.to_string();
                    last.version = version.to_string();
                }
            }
            _ => {}
        }
    }
    let deps: Vec<String> = out.iter().map(|d| d.name.clone()).collect();
    if let Some(mut m) = main.filter(|m| !m.version.is_empty() && m.version != "(devel)") {
        m.depends = deps.clone();
        out.push(m);
    }
    out.push(Found {
        name: "stdlib".to_string(),
        version: info.go_version.clone(),
        license: Some("BSD-3-Clause".to_string()),
        ..Found::default()
    });
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A Go 1.18+ header around these strings, as the linker lays it out.
    pub(crate) fn header(version: &str, modinfo: &str) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.push(8);
        b.push(FLAG_INLINE);
        b.resize(HEADER, 0);
        let mut m = vec![0x30u8; 16];
        m.extend_from_slice(modinfo.as_bytes());
        m.extend_from_slice(&[0xf9u8; 16]);
        for s in [version.as_bytes(), &m[..]] {
            let mut n = s.len();
            loop {
                let byte = (n & 0x7f) as u8;
                n >>= 7;
                if n == 0 {
                    b.push(byte);
                    break;
                }
                b.push(byte | 0x80);
            }
            b.extend_from_slice(s);
        }
        b
    }

    const MODINFO: &str = "path\texample.com/app\nmod\texample.com/app\t(devel)\t\n\
        dep\tgolang.org/x/sys\tv0.15.0\th1:abc=\n\
        dep\texample.com/lib\tv1.2.3\t\n=>\t../lib\t(devel)\t\n\
        dep\texample.com/old\tv1.0.0\t\n=>\texample.com/new\tv1.1.0\th1:x=\n\
        build\t-compiler=gc\nbuild\tGOARCH=amd64\n";

    #[test]
    fn header_and_modinfo_give_modules_with_replacements() {
        let b = header("go1.22.1", MODINFO);
        let Parse::Done(info) = parse_header(&b, 1 << 20) else {
            panic!("not parsed");
        };
        assert_eq!(info.go_version, "go1.22.1");
        assert!(info.modinfo.starts_with("path\texample.com/app\n"));
        let m: Vec<String> = modules(&info)
            .iter()
            .map(|f| format!("{}@{}", f.name, f.version))
            .collect();
        assert_eq!(
            m,
            vec![
                "golang.org/x/sys@v0.15.0",
                "example.com/lib@v1.2.3",
                "example.com/new@v1.1.0",
                "stdlib@go1.22.1"
            ]
        );
    }

    #[test]
    fn partial_and_hostile_headers() {
        let b = header("go1.22.1", MODINFO);
        assert_eq!(parse_header(&b[..40], 1 << 20), Parse::More);
        assert!(matches!(parse_header(&b, 10), Parse::Invalid(_)));
        let mut old = b.clone();
        old[15] = 0;
        assert!(matches!(parse_header(&old, 1 << 20), Parse::Invalid(_)));
        let mut lie = b.clone();
        lie.truncate(HEADER);
        lie.extend_from_slice(&[0xff; 12]);
        assert!(matches!(parse_header(&lie, 1 << 20), Parse::Invalid(_)));
    }
}

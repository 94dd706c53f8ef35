//! Writing tar headers the way Go's `archive/tar` does (see the parent module).

use super::{BLOCK, Entry, Kind, MAX_OCTAL_8, MAX_OCTAL_12, checksum};
use std::io::{self, Write};

/// Go's formatOctal: zero-padded to width-1 digits, NUL-terminated; 0 when it does not fit
/// (a PAX record carries the real value then).
pub(super) fn put_octal(field: &mut [u8], v: u64) {
    let width = field.len() - 1;
    let s = format!("{v:0width$o}");
    if s.len() <= width {
        field[..width].copy_from_slice(s.as_bytes());
        field[width] = 0;
    } else {
        put_octal(field, 0);
    }
}

/// Go's formatString: copy, NUL-terminate when shorter; a truncated value whose last kept
/// byte is `/` gets that slash run replaced by NUL (so it is not mistaken for a directory).
pub(super) fn put_str(field: &mut [u8], s: &[u8]) {
    let n = s.len().min(field.len());
    field[..n].copy_from_slice(&s[..n]);
    if s.len() < field.len() {
        field[s.len()] = 0;
    }
    if s.len() > field.len() && field[field.len() - 1] == b'/' {
        let kept = &s[..field.len() - 1];
        let end = kept.iter().rposition(|b| *b != b'/').map_or(0, |i| i + 1);
        field[end] = 0;
    }
}

pub(super) fn is_ascii(s: &[u8]) -> bool {
    s.iter().all(|b| *b != 0 && *b < 0x80)
}

/// Go's toASCII: drops NUL and every non-ASCII byte.
pub(super) fn to_ascii(s: &[u8]) -> Vec<u8> {
    s.iter().copied().filter(|b| *b != 0 && *b < 0x80).collect()
}

pub(super) fn finish_block(block: &mut [u8; BLOCK]) {
    let sum = checksum(block);
    put_octal(&mut block[148..155], sum);
    block[155] = b' ';
}

/// Splits a long ASCII name into ustar prefix + name (Go's splitUSTARPath).
pub(super) fn split_ustar(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if name.len() <= 100 || !is_ascii(name) {
        return None;
    }
    let mut length = name.len();
    if length > 156 {
        length = 156;
    } else if name[length - 1] == b'/' {
        length -= 1;
    }
    let i = name[..length].iter().rposition(|b| *b == b'/')?;
    let (prefix, rest) = (&name[..i], &name[i + 1..]);
    if i == 0 || rest.is_empty() || rest.len() > 100 || prefix.len() > 155 {
        return None;
    }
    Some((prefix, rest))
}

pub(super) fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    // "LEN key=value\n" where LEN counts itself.
    let body = key.len() + value.len() + 3; // space, '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

pub(super) fn pad(w: &mut dyn Write, size: u64) -> io::Result<()> {
    let rem = (size % BLOCK as u64) as usize;
    if rem != 0 {
        w.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
    }
    Ok(())
}

/// Writes the header block(s) of `e` exactly as Go's `archive/tar` does with
/// `Format = FormatPAX` (containerd's differ): a plain ustar header (long ASCII names split
/// into prefix/name) when ustar can say everything; otherwise a PAX header with the records
/// ustar cannot hold (long or non-ASCII path/linkpath, big ids/size/mtime, xattrs), sorted,
/// followed by a ustar header whose string fields are ASCII-only and truncated. The caller
/// writes exactly `e.size` data bytes and then [`write_padding`].
pub fn write_header(w: &mut dyn Write, e: &Entry) -> io::Result<()> {
    let mut name = e.name.clone();
    if e.kind == Kind::Dir && !name.ends_with(b"/") {
        name.push(b'/');
    }
    let mut records: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let name_fits = name.len() <= 100 && is_ascii(&name);
    let split = split_ustar(&name);
    if !name_fits {
        records.push((b"path".to_vec(), name.clone()));
    }
    let mut ustar_ok = name_fits || split.is_some();
    if e.link.len() > 100 || !is_ascii(&e.link) {
        records.push((b"linkpath".to_vec(), e.link.clone()));
        ustar_ok = false;
    }
    let mut numeric = |key: &[u8], fits: bool, v: String| {
        if !fits {
            records.push((key.to_vec(), v.into_bytes()));
            ustar_ok = false;
        }
    };
    numeric(b"uid", e.uid <= MAX_OCTAL_8, e.uid.to_string());
    numeric(b"gid", e.gid <= MAX_OCTAL_8, e.gid.to_string());
    numeric(b"size", e.size <= MAX_OCTAL_12, e.size.to_string());
    numeric(
        b"mtime",
        e.mtime >= 0 && e.mtime as u64 <= MAX_OCTAL_12,
        e.mtime.to_string(),
    );
    for (k, v) in &e.xattrs {
        let mut key = b"SCHILY.xattr.".to_vec();
        key.extend_from_slice(k);
        records.push((key, v.clone()));
        ustar_ok = false;
    }
    let mut b = [0u8; BLOCK];
    if ustar_ok {
        match split {
            Some((prefix, rest)) if !name_fits => {
                put_str(&mut b[0..100], rest);
                put_str(&mut b[345..500], prefix);
            }
            _ => put_str(&mut b[0..100], &name),
        }
        put_str(&mut b[157..257], &e.link);
    } else {
        write_pax(w, &name, &mut records)?;
        put_str(&mut b[0..100], &to_ascii(&name));
        put_str(&mut b[157..257], &to_ascii(&e.link));
    }
    put_octal(&mut b[100..108], u64::from(e.mode & 0o7777777));
    put_octal(&mut b[108..116], e.uid);
    put_octal(&mut b[116..124], e.gid);
    put_octal(&mut b[124..136], e.size);
    put_octal(
        &mut b[136..148],
        if e.mtime < 0 { 0 } else { e.mtime as u64 },
    );
    b[156] = e.kind.flag();
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    put_octal(&mut b[329..337], u64::from(e.devmajor));
    put_octal(&mut b[337..345], u64::from(e.devminor));
    finish_block(&mut b);
    w.write_all(&b)
}

/// The PAX extended header of an entry named `name` (Go's writePAXHeader/writeRawFile:
/// named `DIR/PaxHeaders.0/FILE`, or `DIR/PaxHeaders.0` for a directory `DIR/`, ASCII-only,
/// at most 100 bytes, no trailing slash; mode, ids and mtime 0).
pub(super) fn write_pax(
    w: &mut dyn Write,
    name: &[u8],
    records: &mut [(Vec<u8>, Vec<u8>)],
) -> io::Result<()> {
    records.sort();
    let mut data = Vec::new();
    for (k, v) in records.iter() {
        pax_record(&mut data, k, v);
    }
    let (dir, file) = match name.iter().rposition(|b| *b == b'/') {
        Some(i) => (&name[..=i], &name[i + 1..]),
        None => (&b""[..], name),
    };
    let mut pname = dir.to_vec();
    pname.extend_from_slice(b"PaxHeaders.0");
    if !file.is_empty() {
        pname.push(b'/');
        pname.extend_from_slice(file);
    }
    let mut pname = to_ascii(&pname);
    pname.truncate(100);
    while pname.ends_with(b"/") {
        pname.pop();
    }
    let mut b = [0u8; BLOCK];
    put_str(&mut b[0..100], &pname);
    put_octal(&mut b[100..108], 0);
    put_octal(&mut b[108..116], 0);
    put_octal(&mut b[116..124], 0);
    put_octal(&mut b[124..136], data.len() as u64);
    put_octal(&mut b[136..148], 0);
    b[156] = b'x';
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    finish_block(&mut b);
    w.write_all(&b)?;
    w.write_all(&data)?;
    pad(w, data.len() as u64)
}

/// Pads the data of an entry of `size` bytes to a whole block.
pub fn write_padding(w: &mut dyn Write, size: u64) -> io::Result<()> {
    pad(w, size)
}

/// Writes the end-of-archive marker (two zero blocks, as Go does).
pub fn write_end(w: &mut dyn Write) -> io::Result<()> {
    w.write_all(&[0u8; BLOCK * 2])
}

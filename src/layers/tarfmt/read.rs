//! The strict, bounded tar reader (see the parent module).

use super::{BLOCK, Entry, Kind, MAX_OCTAL_12, checksum};
use crate::layers::{LayersError, Result};
use crate::oci::Digest;
use sha2::{Digest as _, Sha256};
use std::io::{self, Read, Write};

/// An `io::Error` payload for a limit hit below the tar reader (decompression ratio); the
/// reader turns it into [`LayersError::Limit`].
#[derive(Debug)]
pub(crate) struct LimitHit {
    pub what: &'static str,
    pub limit: u64,
}

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} limit of {}", self.what, self.limit)
    }
}

impl std::error::Error for LimitHit {}

/// Hard limits for reading a tar stream.
#[derive(Clone, Copy, Debug)]
pub struct ReadLimits {
    /// Largest PAX extended header (local or global) accepted.
    pub max_pax: u64,
    /// Longest entry name or link target.
    pub max_path: usize,
    /// Most entries in one archive.
    pub max_entries: u64,
    /// Most bytes in the whole uncompressed stream.
    pub max_total: u64,
}

/// Hashes and counts everything read through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A strict streaming tar reader.
pub struct Reader<R> {
    r: Hashing<R>,
    limits: ReadLimits,
    /// Data bytes of the current entry not yet consumed, then its padding.
    remaining: u64,
    padding: u64,
    entries: u64,
    ended: bool,
}

pub(super) fn octal_or_binary(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        // GNU base-256; negative numbers (0xff lead) are rejected.
        if field[0] == 0xff {
            return None;
        }
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(*b))?;
        }
        return Some(v);
    }
    let s: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|b| *b == b' ' || *b == 0)
        .take_while(|b| *b != b' ' && *b != 0)
        .collect();
    if s.is_empty() {
        return Some(0);
    }
    let mut v: u64 = 0;
    for b in s {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        v = v.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

pub(super) fn cstr(field: &[u8]) -> &[u8] {
    match field.iter().position(|b| *b == 0) {
        Some(i) => &field[..i],
        None => field,
    }
}

pub(super) fn parse_mtime(v: &[u8]) -> Option<(i64, u32)> {
    let s = std::str::from_utf8(v).ok()?;
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = int.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut nanos = 0u32;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nanos += u32::from(b - b'0') * 10u32.pow(8 - i as u32);
    }
    if secs < 0 && nanos > 0 {
        // -1.5 means 1.5 s before the epoch; keep it simple: round towards the past.
        return Some((secs.checked_sub(1)?, 1_000_000_000 - nanos));
    }
    Some((secs, nanos))
}

impl<R: Read> Reader<R> {
    /// A reader over an uncompressed tar stream.
    pub fn new(r: R, limits: ReadLimits) -> Reader<R> {
        Reader {
            r: Hashing {
                inner: r,
                hasher: Sha256::new(),
                count: 0,
            },
            limits,
            remaining: 0,
            padding: 0,
            entries: 0,
            ended: false,
        }
    }

    /// Bytes read so far.
    pub fn offset(&self) -> u64 {
        self.r.count
    }

    fn invalid(&self, name: &[u8], reason: impl Into<String>) -> LayersError {
        LayersError::InvalidTar {
            offset: self.r.count,
            name: String::from_utf8_lossy(name).into_owned(),
            reason: reason.into(),
        }
    }

    fn read_io(&self, e: io::Error) -> LayersError {
        if let Some(hit) = e.get_ref().and_then(|x| x.downcast_ref::<LimitHit>()) {
            return LayersError::Limit {
                what: hit.what,
                limit: hit.limit,
                offset: self.r.count,
            };
        }
        LayersError::InvalidTar {
            offset: self.r.count,
            name: String::new(),
            reason: format!("reading the stream failed: {e}"),
        }
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<()> {
        match self.r.read_exact(buf) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Err(self.invalid(b"", "the archive is truncated"))
            }
            Err(e) => Err(self.read_io(e)),
        }
    }

    fn skip(&mut self, mut n: u64) -> Result<()> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let k = n.min(buf.len() as u64) as usize;
            self.read_exact(&mut buf[..k])?;
            n -= k as u64;
        }
        Ok(())
    }

    fn check_total(&self, more: u64) -> Result<()> {
        let end = self.r.count.saturating_add(more);
        if end > self.limits.max_total {
            return Err(LayersError::Limit {
                what: "uncompressed layer size",
                limit: self.limits.max_total,
                offset: self.r.count,
            });
        }
        Ok(())
    }

    fn read_special(&mut self, size: u64, cap: u64, what: &'static str) -> Result<Vec<u8>> {
        if size > cap {
            return Err(LayersError::Limit {
                what,
                limit: cap,
                offset: self.r.count,
            });
        }
        self.check_total(size)?;
        let mut data = vec![0u8; size as usize];
        self.read_exact(&mut data)?;
        let rem = size % BLOCK as u64;
        if rem != 0 {
            self.skip(BLOCK as u64 - rem)?;
        }
        Ok(data)
    }

    /// The next entry, or `None` at the end of the archive. Unread data of the previous
    /// entry is skipped.
    pub fn next_entry(&mut self) -> Result<Option<Entry>> {
        if self.ended {
            return Ok(None);
        }
        let rest = self.remaining + self.padding;
        self.skip(rest)?;
        self.remaining = 0;
        self.padding = 0;
        let mut pax: Option<Vec<(Vec<u8>, Vec<u8>)>> = None;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        loop {
            let mut b = [0u8; BLOCK];
            self.check_total(BLOCK as u64)?;
            match self.r.read(&mut b[..1]) {
                Ok(0) => {
                    // EOF without zero blocks: tolerated only between entries (Go does too).
                    if pax.is_some() || long_name.is_some() || long_link.is_some() {
                        return Err(self
                            .invalid(b"", "the archive ends inside an entry's extended headers"));
                    }
                    self.ended = true;
                    return Ok(None);
                }
                Ok(_) => {}
                Err(e) => return Err(self.read_io(e)),
            }
            self.read_exact(&mut b[1..])?;
            if b.iter().all(|x| *x == 0) {
                if pax.is_some() || long_name.is_some() || long_link.is_some() {
                    return Err(self.invalid(b"", "end of archive right after an extended header"));
                }
                self.ended = true;
                return Ok(None);
            }
            let stored = octal_or_binary(&b[148..156]);
            let unsigned = checksum(&b);
            let signed: i64 = b
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    if (148..156).contains(&i) {
                        32
                    } else {
                        i64::from(*x as i8)
                    }
                })
                .sum();
            if stored != Some(unsigned) && stored.map(|s| s as i64) != Some(signed) {
                return Err(self.invalid(
                    cstr(&b[0..100]),
                    "bad header checksum (not a tar archive, or corrupt)",
                ));
            }
            let raw_name = cstr(&b[0..100]).to_vec();
            let ustar_size = octal_or_binary(&b[124..136])
                .ok_or_else(|| self.invalid(&raw_name, "bad size field"))?;
            let flag = b[156];
            match flag {
                b'x' | b'g' => {
                    let data =
                        self.read_special(ustar_size, self.limits.max_pax, "PAX header size")?;
                    if flag == b'g' {
                        // Global headers carry nothing extraction needs; they are checked and dropped.
                        self.parse_pax(&data, &raw_name)?;
                        continue;
                    }
                    if pax.is_some() {
                        return Err(self.invalid(&raw_name, "two PAX headers for one entry"));
                    }
                    pax = Some(self.parse_pax(&data, &raw_name)?);
                    continue;
                }
                b'L' | b'K' => {
                    let data = self.read_special(
                        ustar_size,
                        self.limits.max_path as u64 + 1,
                        "GNU long name length",
                    )?;
                    let v = cstr(&data).to_vec();
                    let slot = if flag == b'L' {
                        &mut long_name
                    } else {
                        &mut long_link
                    };
                    if slot.is_some() {
                        return Err(
                            self.invalid(&raw_name, "two GNU long-name headers for one entry")
                        );
                    }
                    *slot = Some(v);
                    continue;
                }
                _ => {}
            }
            self.entries += 1;
            if self.entries > self.limits.max_entries {
                return Err(LayersError::Limit {
                    what: "number of entries",
                    limit: self.limits.max_entries,
                    offset: self.r.count,
                });
            }
            let magic = &b[257..263];
            let posix = magic == b"ustar\0";
            let mut name = raw_name.clone();
            if posix {
                let prefix = cstr(&b[345..500]);
                if !prefix.is_empty() {
                    let mut n = prefix.to_vec();
                    n.push(b'/');
                    n.extend_from_slice(&name);
                    name = n;
                }
            }
            let mut e = Entry::new(name, Kind::Regular);
            e.link = cstr(&b[157..257]).to_vec();
            let num = |r: &Self, f: &[u8], what: &str| {
                octal_or_binary(f).ok_or_else(|| r.invalid(&raw_name, format!("bad {what} field")))
            };
            e.mode = (num(self, &b[100..108], "mode")? & 0o7777) as u32;
            e.uid = num(self, &b[108..116], "uid")?;
            e.gid = num(self, &b[116..124], "gid")?;
            e.mtime = i64::try_from(num(self, &b[136..148], "mtime")?)
                .map_err(|_| self.invalid(&raw_name, "mtime out of range"))?;
            e.size = ustar_size;
            e.kind = match flag {
                b'0' | b'7' => Kind::Regular,
                0 if e.name.ends_with(b"/") => Kind::Dir,
                0 => Kind::Regular,
                b'1' => Kind::Link,
                b'2' => Kind::Symlink,
                b'3' => Kind::Char,
                b'4' => Kind::Block,
                b'5' => Kind::Dir,
                b'6' => Kind::Fifo,
                b'S' => {
                    return Err(
                        self.invalid(&raw_name, "GNU sparse files are not supported in layers")
                    );
                }
                other => {
                    return Err(self.invalid(
                        &raw_name,
                        format!("unsupported entry type {:?}", other as char),
                    ));
                }
            };
            if matches!(e.kind, Kind::Char | Kind::Block) {
                e.devmajor = u32::try_from(num(self, &b[329..337], "devmajor")?)
                    .map_err(|_| self.invalid(&raw_name, "devmajor out of range"))?;
                e.devminor = u32::try_from(num(self, &b[337..345], "devminor")?)
                    .map_err(|_| self.invalid(&raw_name, "devminor out of range"))?;
            }
            if let Some(records) = pax.take() {
                if long_name.is_some() && records.iter().any(|(k, _)| k == b"path") {
                    return Err(
                        self.invalid(&raw_name, "both a PAX path and a GNU long name (ambiguous)")
                    );
                }
                for (k, v) in records {
                    match &k[..] {
                        b"path" => e.name = v,
                        b"linkpath" => e.link = v,
                        b"size" => {
                            let s: u64 = std::str::from_utf8(&v)
                                .ok()
                                .and_then(|s| s.parse().ok())
                                .ok_or_else(|| self.invalid(&raw_name, "bad PAX size"))?;
                            if s != ustar_size && !(ustar_size == 0 && s > MAX_OCTAL_12) {
                                return Err(self.invalid(
                                    &raw_name,
                                    format!(
                                        "PAX size {s} disagrees with the ustar size {ustar_size}"
                                    ),
                                ));
                            }
                            e.size = s;
                        }
                        b"uid" | b"gid" => {
                            let id: u64 = std::str::from_utf8(&v)
                                .ok()
                                .and_then(|s| s.parse().ok())
                                .ok_or_else(|| self.invalid(&raw_name, "bad PAX uid/gid"))?;
                            if k == b"uid" { e.uid = id } else { e.gid = id }
                        }
                        b"mtime" => {
                            let (s, ns) = parse_mtime(&v)
                                .ok_or_else(|| self.invalid(&raw_name, "bad PAX mtime"))?;
                            e.mtime = s;
                            e.mtime_nsec = ns;
                        }
                        _ if k.starts_with(b"SCHILY.xattr.") => {
                            e.xattrs.push((k[13..].to_vec(), v))
                        }
                        _ if k.starts_with(b"GNU.sparse.") => {
                            return Err(self.invalid(
                                &raw_name,
                                "GNU sparse files are not supported in layers",
                            ));
                        }
                        _ => {}
                    }
                }
            }
            if let Some(n) = long_name.take() {
                e.name = n;
            }
            if let Some(l) = long_link.take() {
                e.link = l;
            }
            if e.name.len() > self.limits.max_path || e.link.len() > self.limits.max_path {
                return Err(LayersError::Limit {
                    what: "path length",
                    limit: self.limits.max_path as u64,
                    offset: self.r.count,
                });
            }
            if e.name.contains(&0) || e.link.contains(&0) {
                return Err(self.invalid(&e.name, "NUL byte in a name"));
            }
            if e.kind != Kind::Regular && e.size != 0 {
                return Err(self.invalid(
                    &e.name,
                    "data on an entry type that has none (ambiguous archive)",
                ));
            }
            if e.uid > u64::from(u32::MAX) || e.gid > u64::from(u32::MAX) {
                return Err(self.invalid(&e.name, "uid/gid out of range"));
            }
            let padded = e.size.div_ceil(BLOCK as u64) * BLOCK as u64;
            self.check_total(padded)?;
            self.remaining = e.size;
            self.padding = padded - e.size;
            return Ok(Some(e));
        }
    }

    fn parse_pax(&self, data: &[u8], name: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            if rest.iter().all(|b| *b == 0) {
                break;
            }
            let sp = rest
                .iter()
                .position(|b| *b == b' ')
                .ok_or_else(|| self.invalid(name, "malformed PAX record"))?;
            let len: usize = std::str::from_utf8(&rest[..sp])
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| self.invalid(name, "malformed PAX record length"))?;
            if len <= sp + 1 || len > rest.len() || rest[len - 1] != b'\n' {
                return Err(self.invalid(name, "malformed PAX record"));
            }
            let rec = &rest[sp + 1..len - 1];
            let eq = rec
                .iter()
                .position(|b| *b == b'=')
                .ok_or_else(|| self.invalid(name, "PAX record without '='"))?;
            if eq == 0 {
                return Err(self.invalid(name, "PAX record with an empty key"));
            }
            out.push((rec[..eq].to_vec(), rec[eq + 1..].to_vec()));
            rest = &rest[len..];
        }
        Ok(out)
    }

    /// Reads data of the current entry (at most what remains of it).
    pub fn read_data(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let k = (buf.len() as u64).min(self.remaining) as usize;
        let n = self.r.read(&mut buf[..k]).map_err(|e| self.read_io(e))?;
        if n == 0 {
            return Err(self.invalid(b"", "the archive is truncated inside a file's data"));
        }
        self.remaining -= n as u64;
        Ok(n)
    }

    /// Copies the current entry's data to `w`.
    pub fn copy_data(&mut self, w: &mut dyn Write, path: &std::path::Path) -> Result<u64> {
        let mut buf = vec![0u8; 128 * 1024];
        let mut total = 0;
        loop {
            let n = self.read_data(&mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            w.write_all(&buf[..n])
                .map_err(crate::layers::io_err(path))?;
            total += n as u64;
        }
    }

    /// Reads to the end of the stream (trailing zero blocks and whatever follows are part of
    /// the layer blob) and returns the sha256 of everything read and the byte count.
    pub fn finish(mut self) -> Result<(Digest, u64)> {
        let rest = self.remaining + self.padding;
        self.skip(rest)?;
        let mut buf = [0u8; 8192];
        loop {
            let n = self.r.read(&mut buf).map_err(|e| self.read_io(e))?;
            if n == 0 {
                break;
            }
            self.check_total(0)?;
        }
        let hex = hex::encode(self.r.hasher.finalize());
        Ok((
            Digest::from_hex(&hex).map_err(|_| LayersError::InvalidTar {
                offset: self.r.count,
                name: String::new(),
                reason: "digest".into(),
            })?,
            self.r.count,
        ))
    }
}

//! Tar headers, written and read by hand.
//!
//! Writing follows Go's `archive/tar` in PAX mode as BuildKit/containerd drive it: ustar
//! headers, zero-padded octal fields, PAX records (sorted) only where ustar cannot say it
//! (long names, big ids/sizes, xattrs), the PAX header named `DIR/PaxHeaders.0/FILE`.
//!
//! Reading is strict and bounded, for hostile layers: header checksums checked, PAX and GNU
//! long-name blocks capped, ambiguous archives (PAX `size` ≠ ustar size, PAX path plus GNU long
//! name, data on header-only entries, sparse files) rejected, total bytes capped, and every
//! byte read (including the trailing zero blocks and padding) hashed for the diffID.

use super::{LayersError, Result};
use crate::oci::Digest;
use sha2::{Digest as _, Sha256};
use std::io::{self, Read, Write};

/// Size of a tar block.
pub const BLOCK: usize = 512;

/// Type of a tar entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file (`0`, also `\0` and `7` when read).
    Regular,
    /// A hardlink to an earlier entry (`1`).
    Link,
    /// A symbolic link (`2`).
    Symlink,
    /// A character device (`3`).
    Char,
    /// A block device (`4`).
    Block,
    /// A directory (`5`).
    Dir,
    /// A named pipe (`6`).
    Fifo,
}

impl Kind {
    fn flag(self) -> u8 {
        match self {
            Kind::Regular => b'0',
            Kind::Link => b'1',
            Kind::Symlink => b'2',
            Kind::Char => b'3',
            Kind::Block => b'4',
            Kind::Dir => b'5',
            Kind::Fifo => b'6',
        }
    }
}

/// One tar entry's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Relative path, no leading `/`; directories end with `/` when written.
    pub name: Vec<u8>,
    pub kind: Kind,
    /// Permission bits including setuid/setgid/sticky (0o7777). Written as is, so a writer may
    /// add the `S_IF*` file-type bits as Go's `archive/tar` does; read back masked to 0o7777.
    pub mode: u32,
    /// Owner user id.
    pub uid: u64,
    /// Owner group id.
    pub gid: u64,
    /// Seconds since the epoch.
    pub mtime: i64,
    /// Nanoseconds of `mtime` (read side only; written headers use whole seconds).
    pub mtime_nsec: u32,
    /// Data size (regular files only).
    pub size: u64,
    /// Hardlink or symlink target.
    pub link: Vec<u8>,
    /// Device major number (char/block devices).
    pub devmajor: u32,
    /// Device minor number (char/block devices).
    pub devminor: u32,
    /// Extended attributes, in the order to write them (sorted by the writer).
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Entry {
    /// An entry with zeroed metadata.
    pub fn new(name: impl Into<Vec<u8>>, kind: Kind) -> Entry {
        Entry {
            name: name.into(),
            kind,
            mode: 0,
            uid: 0,
            gid: 0,
            mtime: 0,
            mtime_nsec: 0,
            size: 0,
            link: Vec::new(),
            devmajor: 0,
            devminor: 0,
            xattrs: Vec::new(),
        }
    }
}

// ---------------------------------------------------------------- writing

const MAX_OCTAL_8: u64 = 0o7777777;
const MAX_OCTAL_12: u64 = 0o77777777777;

/// Go's formatOctal: zero-padded to width-1 digits, NUL-terminated; 0 when it does not fit
/// (a PAX record carries the real value then).
fn put_octal(field: &mut [u8], v: u64) {
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
fn put_str(field: &mut [u8], s: &[u8]) {
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

fn is_ascii(s: &[u8]) -> bool {
    s.iter().all(|b| *b != 0 && *b < 0x80)
}

/// Go's toASCII: drops NUL and every non-ASCII byte.
fn to_ascii(s: &[u8]) -> Vec<u8> {
    s.iter().copied().filter(|b| *b != 0 && *b < 0x80).collect()
}

fn checksum(block: &[u8; BLOCK]) -> u64 {
    block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                u64::from(b' ')
            } else {
                u64::from(*b)
            }
        })
        .sum()
}

fn finish_block(block: &mut [u8; BLOCK]) {
    let sum = checksum(block);
    put_octal(&mut block[148..155], sum);
    block[155] = b' ';
}

/// Splits a long ASCII name into ustar prefix + name (Go's splitUSTARPath).
fn split_ustar(name: &[u8]) -> Option<(&[u8], &[u8])> {
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

fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
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

fn pad(w: &mut dyn Write, size: u64) -> io::Result<()> {
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
fn write_pax(w: &mut dyn Write, name: &[u8], records: &mut [(Vec<u8>, Vec<u8>)]) -> io::Result<()> {
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

// ---------------------------------------------------------------- reading

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

fn octal_or_binary(field: &[u8]) -> Option<u64> {
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

fn cstr(field: &[u8]) -> &[u8] {
    match field.iter().position(|b| *b == 0) {
        Some(i) => &field[..i],
        None => field,
    }
}

fn parse_mtime(v: &[u8]) -> Option<(i64, u32)> {
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
            w.write_all(&buf[..n]).map_err(super::io_err(path))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ReadLimits {
        ReadLimits {
            max_pax: 1 << 20,
            max_path: 4096,
            max_entries: 1000,
            max_total: 1 << 30,
        }
    }

    fn archive(entries: &[(Entry, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (e, data) in entries {
            write_header(&mut out, e).unwrap();
            out.extend_from_slice(data);
            write_padding(&mut out, data.len() as u64).unwrap();
        }
        write_end(&mut out).unwrap();
        out
    }

    #[test]
    fn written_headers_read_back_and_match_the_tar_crate() {
        let mut f = Entry::new(b"a/file".to_vec(), Kind::Regular);
        f.mode = 0o4755;
        f.uid = 1000;
        f.gid = 3_000_000;
        f.mtime = 1_700_000_000;
        f.size = 5;
        f.xattrs = vec![(
            b"security.capability".to_vec(),
            vec![1, 0, 0, 2, 0x20, 0, 0, 0],
        )];
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(120));
        let mut l = Entry::new(long.clone().into_bytes(), Kind::Symlink);
        l.link = "t".repeat(150).into_bytes();
        let mut d = Entry::new(b"a".to_vec(), Kind::Dir);
        d.mode = 0o1777;
        let mut c = Entry::new(b"dev/null".to_vec(), Kind::Char);
        c.devmajor = 1;
        c.devminor = 3;
        let bytes = archive(&[
            (d.clone(), b""),
            (f.clone(), b"hello"),
            (l.clone(), b""),
            (c.clone(), b""),
        ]);

        let mut r = Reader::new(&bytes[..], limits());
        let mut got = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            let mut data = Vec::new();
            r.copy_data(&mut data, std::path::Path::new("x")).unwrap();
            got.push((e, data));
        }
        let (digest, n) = r.finish().unwrap();
        assert_eq!(n, bytes.len() as u64);
        assert_eq!(digest, Digest::of(&bytes));
        d.name = b"a/".to_vec();
        assert_eq!(
            got.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>(),
            vec![d, f, l, c]
        );
        assert_eq!(got[1].1, b"hello");

        // An independent reader agrees.
        let mut a = tar::Archive::new(&bytes[..]);
        let names: Vec<(String, u64)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let xattrs = e
                    .pax_extensions()
                    .unwrap()
                    .map(|p| {
                        p.map(|x| x.unwrap().key().unwrap().to_string())
                            .filter(|k| k.starts_with("SCHILY"))
                            .count() as u64
                    })
                    .unwrap_or(0);
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().uid().unwrap() + xattrs,
                )
            })
            .collect();
        assert_eq!(
            names,
            vec![
                ("a/".into(), 0),
                ("a/file".into(), 1001),
                (long, 0),
                ("dev/null".into(), 0)
            ]
        );
    }

    #[test]
    fn pax_size_disagreement_is_rejected() {
        let mut data = Vec::new();
        pax_record(&mut data, b"size", b"1000");
        let mut bytes = Vec::new();
        let mut h = [0u8; BLOCK];
        put_str(&mut h[0..100], b"PaxHeaders.0/f");
        put_octal(&mut h[124..136], data.len() as u64);
        h[156] = b'x';
        h[257..263].copy_from_slice(b"ustar\0");
        finish_block(&mut h);
        bytes.extend_from_slice(&h);
        bytes.extend_from_slice(&data);
        pad(&mut bytes, data.len() as u64).unwrap();
        let mut f = Entry::new(b"f".to_vec(), Kind::Regular);
        f.size = 3;
        write_header(&mut bytes, &f).unwrap();
        bytes.extend_from_slice(&[b'a'; 1536]);
        write_end(&mut bytes).unwrap();
        let e = Reader::new(&bytes[..], limits())
            .next_entry()
            .unwrap_err()
            .to_string();
        assert!(e.contains("disagrees"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096), header_like in proptest::prelude::any::<bool>()) {
            let mut bytes = data;
            if header_like && bytes.len() >= BLOCK {
                // Make the first block pass the checksum so parsing goes deeper.
                let mut b = [0u8; BLOCK];
                b.copy_from_slice(&bytes[..BLOCK]);
                b[257..263].copy_from_slice(b"ustar\0");
                finish_block(&mut b);
                bytes[..BLOCK].copy_from_slice(&b);
            }
            let mut r = Reader::new(&bytes[..], limits());
            let mut sink = Vec::new();
            while let Ok(Some(_)) = r.next_entry() {
                if r.copy_data(&mut sink, std::path::Path::new("x")).is_err() {
                    break;
                }
            }
        }
    }

    #[test]
    fn pax_mtimes_parse_without_overflow() {
        assert_eq!(
            parse_mtime(b"1700000000.25"),
            Some((1_700_000_000, 250_000_000))
        );
        assert_eq!(parse_mtime(b"-1.5"), Some((-2, 500_000_000)));
        assert_eq!(parse_mtime(b"-9223372036854775808.5"), None);
        assert_eq!(parse_mtime(b"12x"), None);
        assert_eq!(parse_mtime(b"1.2.3"), None);
    }

    #[test]
    fn pax_records_have_correct_lengths() {
        for n in [1, 5, 90, 95, 96, 97, 990, 995, 996] {
            let mut out = Vec::new();
            pax_record(&mut out, b"k", "v".repeat(n).as_bytes());
            let sp = out.iter().position(|b| *b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&out[..sp]).unwrap().parse().unwrap();
            assert_eq!(len, out.len(), "{n}");
        }
    }

    #[test]
    fn checksum_and_limits() {
        let mut f = Entry::new(b"f".to_vec(), Kind::Regular);
        f.size = 2000;
        let mut bytes = archive(&[(f, &[7u8; 2000])]);
        let l = ReadLimits {
            max_total: 1024,
            ..limits()
        };
        assert!(matches!(
            Reader::new(&bytes[..], l).next_entry(),
            Err(LayersError::Limit { .. })
        ));
        bytes[0] ^= 1;
        let e = Reader::new(&bytes[..], limits())
            .next_entry()
            .unwrap_err()
            .to_string();
        assert!(e.contains("checksum"), "{e}");
    }
}

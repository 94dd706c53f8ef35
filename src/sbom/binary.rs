//! Streaming scan of an ELF file for embedded dependency data: Go's build info and
//! `cargo auditable`'s `.dep-v0` (zlib-compressed JSON). ELF section headers sit at the end
//! of the file, after the sections they describe, so a one-pass reader cannot look a section
//! up by name; instead the bytes are matched by content as they stream past — the Go header
//! by its magic at a 16-byte-aligned offset (sections are aligned) and validated field by
//! field, the auditable data as a zlib stream whose first inflated bytes are
//! `{"packages":` — and only the matched region is kept (bounded). No ELF crate is needed.

use super::golang::{self, BuildInfo, MAGIC, Parse};
use flate2::{Decompress, FlushDecompress, Status};

/// Bytes kept from one chunk to the next, so a match may straddle chunks.
const LOOK: usize = 64;
/// Most bytes kept for a Go header candidate.
const GO_MAX: usize = 1 << 20;
/// Most inflated bytes of auditable JSON.
const AUDIT_MAX: usize = 16 << 20;
const AUDIT_PREFIX: &[u8] = b"{\"packages\":";

/// What a binary held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Embedded {
    /// Go build info.
    pub go: Option<BuildInfo>,
    /// `cargo auditable` JSON.
    pub auditable: Option<Vec<u8>>,
}

struct Inflate {
    z: Decompress,
    out: Vec<u8>,
}

/// Feeds a file's bytes in order; see the module doc.
pub struct Scanner {
    /// Absolute offset of `win[0]`.
    win_start: u64,
    win: Vec<u8>,
    /// First absolute offset not yet scanned.
    scan_from: u64,
    elf: Option<bool>,
    go_candidates: Vec<Vec<u8>>,
    inflating: Vec<Inflate>,
    found: Embedded,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner::new()
    }
}

impl Scanner {
    /// A scanner at offset 0.
    pub fn new() -> Scanner {
        Scanner {
            win_start: 0,
            win: Vec::new(),
            scan_from: 0,
            elf: None,
            go_candidates: Vec::new(),
            inflating: Vec::new(),
            found: Embedded::default(),
        }
    }

    /// Whether more bytes can still find something (false: not ELF, or found: a binary is
    /// built by Go or by cargo, not both).
    pub fn wants_more(&self) -> bool {
        self.elf != Some(false) && self.found.go.is_none() && self.found.auditable.is_none()
    }

    /// The next bytes of the file.
    pub fn feed(&mut self, chunk: &[u8]) {
        if !self.wants_more() {
            return;
        }
        self.win.extend_from_slice(chunk);
        if self.elf.is_none() {
            if self.win.len() < 4 {
                return;
            }
            self.elf = Some(self.win.starts_with(b"\x7fELF"));
            if self.elf == Some(false) {
                self.win = Vec::new();
                return;
            }
        }
        self.advance_candidates(chunk);
        let end = self.win.len().saturating_sub(LOOK);
        self.scan(end);
        // Keep the tail for matches that straddle the next chunk.
        let keep_from = self.win.len().saturating_sub(LOOK);
        self.win.drain(..keep_from);
        self.win_start += keep_from as u64;
    }

    /// Ends the file.
    pub fn finish(mut self) -> Embedded {
        if self.wants_more() && self.elf == Some(true) {
            let end = self.win.len();
            self.scan(end);
        }
        self.found
    }

    /// Scans window positions up to `end` (exclusive) that were not scanned before.
    fn scan(&mut self, end: usize) {
        let from = (self.scan_from.saturating_sub(self.win_start)) as usize;
        let mut p = from;
        while p < end {
            let Some(i) = memchr::memchr2(0xff, 0x78, &self.win[p..end]) else {
                break;
            };
            p += i;
            let abs = self.win_start + p as u64;
            if self.win[p] == 0xff {
                if self.found.go.is_none()
                    && abs.is_multiple_of(16)
                    && self.win[p..].starts_with(MAGIC)
                    && self.go_candidates.len() < 16
                {
                    let buf = self.win[p..].to_vec();
                    self.try_go(buf);
                }
            } else if self.found.auditable.is_none() && self.inflating.len() < 4 {
                self.try_zlib(p);
            }
            p += 1;
        }
        self.scan_from = self.win_start + end.max(from) as u64;
    }

    fn try_go(&mut self, buf: Vec<u8>) {
        match golang::parse_header(&buf, GO_MAX) {
            Parse::Done(info) => self.found.go = Some(info),
            Parse::More if buf.len() < GO_MAX => self.go_candidates.push(buf),
            _ => {}
        }
    }

    /// A zlib header (CMF 0x78, a valid check, no preset dictionary) whose first inflated
    /// bytes are the auditable prefix starts an inflation.
    fn try_zlib(&mut self, p: usize) {
        let Some(&flg) = self.win.get(p + 1) else {
            return;
        };
        if !(0x7800u16 | u16::from(flg)).is_multiple_of(31) || flg & 0x20 != 0 {
            return;
        }
        let mut z = Decompress::new(true);
        let mut head = [0u8; AUDIT_PREFIX.len()];
        let avail = &self.win[p..];
        if z.decompress(avail, &mut head, FlushDecompress::None)
            .is_err()
            || (z.total_out() as usize) < head.len()
            || head != AUDIT_PREFIX
        {
            return;
        }
        // Matched: inflate again from the start, keeping the output.
        let mut inf = Inflate {
            z: Decompress::new(true),
            out: Vec::new(),
        };
        let rest = self.win[p..].to_vec();
        if Self::inflate(&mut inf, &rest, &mut self.found) {
            self.inflating.push(inf);
        }
    }

    /// Feeds `data` to one inflation; false when it ended (found, or failed).
    fn inflate(inf: &mut Inflate, mut data: &[u8], found: &mut Embedded) -> bool {
        let mut buf = vec![0u8; 64 * 1024];
        while !data.is_empty() {
            let before = inf.z.total_in();
            let out_before = inf.z.total_out();
            let st = inf.z.decompress(data, &mut buf, FlushDecompress::None);
            let used = (inf.z.total_in() - before) as usize;
            let made = (inf.z.total_out() - out_before) as usize;
            inf.out.extend_from_slice(&buf[..made]);
            data = &data[used..];
            match st {
                Ok(Status::StreamEnd) => {
                    found.auditable = Some(std::mem::take(&mut inf.out));
                    return false;
                }
                Ok(_) if inf.out.len() <= AUDIT_MAX && (used > 0 || made > 0) => {}
                _ => return false,
            }
        }
        true
    }

    /// Gives the new chunk to the candidates started before it.
    fn advance_candidates(&mut self, chunk: &[u8]) {
        let mut go = std::mem::take(&mut self.go_candidates);
        for mut c in go.drain(..) {
            if self.found.go.is_some() {
                break;
            }
            c.extend_from_slice(chunk);
            self.try_go(c);
        }
        let mut inf = std::mem::take(&mut self.inflating);
        inf.retain_mut(|i| {
            self.found.auditable.is_none() && Self::inflate(i, chunk, &mut self.found)
        });
        self.inflating = inf;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Two ELF-looking files: the magic, filler (with decoys), then the Go header at an
    /// aligned offset in one, the auditable zlib stream in the other, then trailing filler.
    fn fake_elfs(json: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut f = b"\x7fELF\x02\x01\x01".to_vec();
        f.resize(1000, 0x78);
        // A decoy magic, unaligned and followed by nothing valid (as debug/buildinfo's own
        // string constant would be), and decoy zlib headers.
        f.extend_from_slice(MAGIC);
        f.extend_from_slice(b"ptr junk x\x9cjunkx\x01");
        while !f.len().is_multiple_of(16) {
            f.push(0);
        }
        let mut go = f.clone();
        go.extend(golang::tests::header(
            "go1.22.1",
            "path\tx\nmod\tx\t(devel)\t\ndep\tgolang.org/x/text\tv0.14.0\t\n",
        ));
        go.extend(std::iter::repeat_n(0xffu8, 5000));
        let mut audit = f;
        audit.extend(std::iter::repeat_n(0xffu8, 5000));
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(json).unwrap();
        audit.extend(z.finish().unwrap());
        audit.extend(std::iter::repeat_n(0u8, 3000));
        (go, audit)
    }

    fn scan(file: &[u8], chunk: usize) -> Embedded {
        let mut s = Scanner::new();
        for c in file.chunks(chunk) {
            s.feed(c);
        }
        s.finish()
    }

    #[test]
    fn finds_each_whatever_the_chunking() {
        let json = br#"{"packages":[{"name":"log","version":"0.4.20","source":"crates.io"}]}"#;
        let (go_file, audit_file) = fake_elfs(json);
        for chunk in [1, 7, 64, 100, 4096, go_file.len()] {
            let go = scan(&go_file, chunk).go;
            let go = go.unwrap_or_else(|| panic!("chunk {chunk}: no Go info"));
            assert_eq!(go.go_version, "go1.22.1");
            assert!(go.modinfo.contains("golang.org/x/text"));
            let e = scan(&audit_file, chunk);
            assert_eq!(e.auditable.as_deref(), Some(&json[..]), "chunk {chunk}");
            assert!(e.go.is_none());
        }
    }

    #[test]
    fn non_elf_files_are_not_scanned() {
        let (_, mut file) = fake_elfs(b"{\"packages\":[]}");
        file[0] = b'#';
        let mut s = Scanner::new();
        s.feed(&file);
        assert!(!s.wants_more());
        assert_eq!(s.finish(), Embedded::default());
    }
}

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

mod read;
mod write;

pub(crate) use read::LimitHit;
pub use read::{ReadLimits, Reader};
pub use write::{write_end, write_header, write_padding};

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

pub(super) const MAX_OCTAL_8: u64 = 0o7777777;
pub(super) const MAX_OCTAL_12: u64 = 0o77777777777;

pub(super) fn checksum(block: &[u8; BLOCK]) -> u64 {
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

#[cfg(test)]
mod tests {
    use super::read::parse_mtime;
    use super::write::{finish_block, pad, pax_record, put_octal, put_str};
    use super::*;
    use crate::layers::LayersError;
    use crate::oci::Digest;

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

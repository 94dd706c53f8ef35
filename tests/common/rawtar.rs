//! A raw tar writer for hostile-layer tests: headers written byte by byte, so a test can put
//! what no well-behaved archiver would (`..` names, absolute names, lying sizes, PAX and GNU
//! long-name records, links anywhere). Shared by `tests/layers_hostile.rs` (extraction as root)
//! and `tests/rootless_hostile.rs` (the same corpus pulled by a rootless hoist).
#![allow(dead_code)]

/// One tar header, every field settable (see [`h`] for the defaults).
#[derive(Clone)]
pub struct H {
    pub name: Vec<u8>,
    pub flag: u8,
    pub size: u64,
    /// Size written into the header when it must lie about the data.
    pub size_field: Option<Vec<u8>>,
    pub link: Vec<u8>,
    pub mode: u32,
    pub uid: u32,
    pub major: u32,
    pub minor: u32,
}

/// A header for `name` of type `flag` (`b'0'` file, `b'5'` dir, `b'2'` symlink, …): mode
/// 0644, owner 0, no data.
pub fn h(name: &str, flag: u8) -> H {
    H {
        name: name.as_bytes().to_vec(),
        flag,
        size: 0,
        size_field: None,
        link: Vec::new(),
        mode: 0o644,
        uid: 0,
        major: 0,
        minor: 0,
    }
}

fn octal(field: &mut [u8], v: u64) {
    let w = field.len() - 1;
    let s = format!("{v:0w$o}");
    field[..w].copy_from_slice(&s.as_bytes()[s.len() - w..]);
}

/// The 512-byte ustar block of `x`, checksum included.
pub fn block(x: &H) -> [u8; 512] {
    let mut b = [0u8; 512];
    let n = x.name.len().min(100);
    b[..n].copy_from_slice(&x.name[..n]);
    octal(&mut b[100..108], u64::from(x.mode));
    octal(&mut b[108..116], u64::from(x.uid));
    octal(&mut b[116..124], 0);
    match &x.size_field {
        Some(f) => b[124..124 + f.len()].copy_from_slice(f),
        None => octal(&mut b[124..136], x.size),
    }
    octal(&mut b[136..148], 1_600_000_000);
    b[156] = x.flag;
    let l = x.link.len().min(100);
    b[157..157 + l].copy_from_slice(&x.link[..l]);
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    octal(&mut b[329..337], u64::from(x.major));
    octal(&mut b[337..345], u64::from(x.minor));
    b[148..156].fill(b' ');
    let sum: u64 = b.iter().map(|v| u64::from(*v)).sum();
    octal(&mut b[148..155], sum);
    b
}

/// An archive being written entry by entry; [`Tar::end`] adds the two zero blocks.
#[derive(Default)]
pub struct Tar(pub Vec<u8>);

impl Tar {
    /// Appends `x` and `data`, padded to a block, whatever the header says.
    pub fn raw(&mut self, x: &H, data: &[u8]) -> &mut Self {
        self.0.extend_from_slice(&block(x));
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0u8, pad));
        self
    }
    /// A regular file.
    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        let mut x = h(name, b'0');
        x.size = data.len() as u64;
        self.raw(&x, data)
    }
    /// A directory, mode 0755.
    pub fn dir(&mut self, name: &str) -> &mut Self {
        let mut x = h(name, b'5');
        x.mode = 0o755;
        self.raw(&x, b"")
    }
    /// A symlink to `target`, kept verbatim.
    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        let mut x = h(name, b'2');
        x.link = target.as_bytes().to_vec();
        self.raw(&x, b"")
    }
    /// A hardlink to `target`, kept verbatim.
    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        let mut x = h(name, b'1');
        x.link = target.as_bytes().to_vec();
        self.raw(&x, b"")
    }
    /// A PAX extended header with `records` for the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (k, v) in records {
            let body = k.len() + v.len() + 3;
            let mut len = body + 1;
            while len != body + len.to_string().len() {
                len = body + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {k}=").as_bytes());
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        let mut x = h("PaxHeaders.0/x", b'x');
        x.size = data.len() as u64;
        self.raw(&x, &data)
    }
    /// A GNU long name (`b'L'`) or long link (`b'K'`) record for the next entry.
    pub fn gnu_long(&mut self, flag: u8, name: &[u8]) -> &mut Self {
        let mut data = name.to_vec();
        data.push(0);
        let mut x = h("././@LongLink", flag);
        x.size = data.len() as u64;
        self.raw(&x, &data)
    }
    /// The archive so far with its end-of-archive blocks; leaves `self` empty.
    pub fn end(&mut self) -> Vec<u8> {
        let mut v = std::mem::take(&mut self.0);
        v.extend_from_slice(&[0u8; 1024]);
        v
    }
}

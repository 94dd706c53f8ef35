//! `Digest`: a validated `sha256:<64 hex>` content address, and `Digester`, an `io::Write`
//! that computes one while data streams through.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

/// Errors from parsing a digest string.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("invalid digest {0:?}: expected sha256:<64 lowercase hex characters>")]
    Invalid(String),
    #[error("unsupported digest algorithm in {0:?}: only sha256 is supported")]
    Algorithm(String),
}

/// A sha256 content digest. Parsing checks the OCI grammar, so a `Digest` is always safe to
/// use as a path component or URL segment.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// Digest of a byte slice.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest { hex: hex::encode(Sha256::digest(bytes)) }
    }

    /// Builds a digest from 64 lowercase hex characters.
    pub fn from_hex(hex: &str) -> Result<Digest, DigestError> {
        if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            Ok(Digest { hex: hex.to_string() })
        } else {
            Err(DigestError::Invalid(hex.to_string()))
        }
    }

    /// The hex part, without `sha256:`.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The algorithm; always `sha256`.
    pub fn algorithm(&self) -> &'static str {
        "sha256"
    }

    /// First 12 hex characters, as `docker images` shows them.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Digest, DigestError> {
        match s.split_once(':') {
            Some(("sha256", hex)) => Digest::from_hex(hex).map_err(|_| DigestError::Invalid(s.to_string())),
            Some((alg, _)) if !alg.is_empty() => Err(DigestError::Algorithm(s.to_string())),
            _ => Err(DigestError::Invalid(s.to_string())),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An `io::Write` sink that hashes what passes through it and counts bytes; optionally
/// forwards to an inner writer (`Digester::wrap`).
pub struct Digester<W = io::Sink> {
    hasher: Sha256,
    inner: W,
    len: u64,
}

impl Digester<io::Sink> {
    /// A digester that only hashes.
    pub fn new() -> Self {
        Digester { hasher: Sha256::new(), inner: io::sink(), len: 0 }
    }
}

impl Default for Digester<io::Sink> {
    fn default() -> Self {
        Self::new()
    }
}

impl<W: Write> Digester<W> {
    /// Hashes everything written, then forwards it to `inner`.
    pub fn wrap(inner: W) -> Self {
        Digester { hasher: Sha256::new(), inner, len: 0 }
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The inner writer, mutably.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Ends hashing: the digest, the byte count and the inner writer.
    pub fn finish(self) -> (Digest, u64, W) {
        let hex = hex::encode(self.hasher.finalize());
        (Digest { hex }, self.len, self.inner)
    }
}

impl<W: Write> Write for Digester<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let d: Digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".parse().unwrap();
        assert_eq!(d, Digest::of(b""));
        assert_eq!(d.to_string(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(d.short(), "e3b0c44298fc");
    }

    #[test]
    fn rejects_bad_digests() {
        for bad in ["", "sha256:", "sha256:../../etc/passwd", "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", "e3b0", "sha256:abc"] {
            assert!(bad.parse::<Digest>().is_err(), "{bad}");
        }
        assert!(matches!("sha512:abcd".parse::<Digest>(), Err(DigestError::Algorithm(_))));
    }

    #[test]
    fn digester_matches_one_shot() {
        let mut d = Digester::wrap(Vec::new());
        d.write_all(b"hello ").unwrap();
        d.write_all(b"world").unwrap();
        let (digest, len, out) = d.finish();
        assert_eq!(digest, Digest::of(b"hello world"));
        assert_eq!(len, 11);
        assert_eq!(out, b"hello world");
    }
}

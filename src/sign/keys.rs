//! Signing keys as cosign keeps them: ECDSA P-256 private keys in PEM (unencrypted PKCS#8
//! `PRIVATE KEY`, SEC1 `EC PRIVATE KEY`, or cosign's `ENCRYPTED SIGSTORE PRIVATE KEY`: scrypt
//! + NaCl secretbox around the PKCS#8 DER), public keys as SPKI `PUBLIC KEY`.
//!
//! RustCrypto's `p256` does the curve, ECDSA and PKCS#8/SEC1/SPKI; `scrypt` and
//! `crypto_secretbox` undo cosign's encryption. The encrypted format is read here by hand
//! because no crate reads it: a JSON document (`kdf`, `cipher`, `ciphertext`, bytes in
//! standard base64) as the PEM block's body.

use super::{Result, SignError};
use base64::Engine as _;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::pkcs8::der::pem;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use serde::Deserialize;
use std::path::Path;

/// PEM label of cosign's encrypted private keys (older cosign wrote the second).
const ENCRYPTED_LABELS: [&str; 2] = [
    "ENCRYPTED SIGSTORE PRIVATE KEY",
    "ENCRYPTED COSIGN PRIVATE KEY",
];

/// The largest scrypt cost accepted from a key file: 2^20 × r 8 is 1 GiB of memory; cosign
/// writes 2^15. A bigger one is a hostile or broken file, not a key worth a minute of CPU.
const MAX_SCRYPT_LOG_N: u8 = 20;

/// Where the password of an encrypted key comes from.
#[derive(Debug, Clone)]
pub enum Password {
    /// `COSIGN_PASSWORD` when set (even empty, as cosign), else asked on the terminal.
    EnvOrTerminal,
    /// This password.
    Given(String),
}

impl Password {
    fn get(&self, origin: &str) -> Result<String> {
        match self {
            Password::Given(p) => Ok(p.clone()),
            Password::EnvOrTerminal => match std::env::var("COSIGN_PASSWORD") {
                Ok(p) => Ok(p),
                Err(_) => ask_on_terminal(origin),
            },
        }
    }
}

/// An ECDSA P-256 private key.
pub struct SigningKey {
    inner: p256::ecdsa::SigningKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret: the public half identifies the key well enough.
        f.debug_struct("SigningKey")
            .field("public", &self.public_key())
            .finish()
    }
}

impl SigningKey {
    /// A new random key (from the OS's generator).
    pub fn generate() -> SigningKey {
        use p256::elliptic_curve::Generate as _;
        SigningKey {
            inner: p256::ecdsa::SigningKey::generate(),
        }
    }

    /// Reads a private key file (see the module doc for the formats).
    pub fn load(path: &Path, password: &Password) -> Result<SigningKey> {
        let text = std::fs::read_to_string(path).map_err(|source| SignError::KeyRead {
            path: path.to_path_buf(),
            source,
        })?;
        SigningKey::from_pem(&text, &path.display().to_string(), password)
    }

    /// Parses a private key from PEM text; `origin` names it in errors.
    pub fn from_pem(text: &str, origin: &str, password: &Password) -> Result<SigningKey> {
        let bad = |reason: String| SignError::KeyFormat {
            origin: origin.to_string(),
            reason,
        };
        let blocks = pem_blocks(text);
        if blocks.is_empty() {
            return Err(bad("no PEM block (-----BEGIN …-----) found".into()));
        }
        for (label, der) in &blocks {
            let der = der.as_slice();
            match label.as_str() {
                "PRIVATE KEY" => {
                    return p256::ecdsa::SigningKey::from_pkcs8_der(der)
                        .map(|inner| SigningKey { inner })
                        .map_err(|e| bad(format!("not an EC P-256 PKCS#8 key: {e}")));
                }
                "EC PRIVATE KEY" => {
                    return p256::SecretKey::from_sec1_der(der)
                        .map(|sk| SigningKey { inner: sk.into() })
                        .map_err(|e| bad(format!("not an EC P-256 SEC1 key: {e}")));
                }
                l if ENCRYPTED_LABELS.contains(&l) => {
                    let pw = password.get(origin)?;
                    return decrypt_cosign_key(der, &pw, origin);
                }
                _ => {}
            }
        }
        let labels: Vec<&str> = blocks.iter().map(|(l, _)| l.as_str()).collect();
        Err(bad(format!(
            "no private key in it (found {}); expected PRIVATE KEY, EC PRIVATE KEY or ENCRYPTED SIGSTORE PRIVATE KEY",
            labels.join(", ")
        )))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            inner: *self.inner.verifying_key(),
            origin: "the signing key's public half".into(),
        }
    }

    /// ECDSA over SHA-256 of `msg`, ASN.1 DER (what cosign stores, base64, in annotations).
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let sig: p256::ecdsa::Signature = self.inner.sign(msg);
        sig.to_der().as_bytes().to_vec()
    }

    /// The key as unencrypted PKCS#8 PEM.
    pub fn to_pkcs8_pem(&self) -> Result<String> {
        self.inner
            .to_pkcs8_pem(pem::LineEnding::LF)
            .map(|s| s.to_string())
            .map_err(|e| SignError::KeyFormat {
                origin: "generated key".into(),
                reason: e.to_string(),
            })
    }
}

/// An ECDSA P-256 public key, and where it came from (for messages).
#[derive(Clone)]
pub struct PublicKey {
    inner: p256::ecdsa::VerifyingKey,
    origin: String,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &PublicKey) -> bool {
        self.inner == other.inner
    }
}

impl Eq for PublicKey {}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", hex::encode(self.inner.to_sec1_bytes()))
    }
}

impl PublicKey {
    /// Reads a public key file (SPKI `PUBLIC KEY` PEM).
    pub fn load(path: &Path) -> Result<PublicKey> {
        let text = std::fs::read_to_string(path).map_err(|source| SignError::KeyRead {
            path: path.to_path_buf(),
            source,
        })?;
        PublicKey::from_pem(&text, &path.display().to_string())
    }

    /// Parses a public key from PEM text; `origin` names it in errors.
    pub fn from_pem(text: &str, origin: &str) -> Result<PublicKey> {
        let bad = |reason: String| SignError::KeyFormat {
            origin: origin.to_string(),
            reason,
        };
        let blocks = pem_blocks(text);
        let Some((_, der)) = blocks.iter().find(|(l, _)| l == "PUBLIC KEY") else {
            let private = blocks.iter().any(|(l, _)| l.contains("PRIVATE KEY"));
            return Err(bad(if private {
                "this is a private key; verify with the public key (cosign.pub)".into()
            } else {
                "no PUBLIC KEY PEM block found".into()
            }));
        };
        p256::ecdsa::VerifyingKey::from_public_key_der(der)
            .map(|inner| PublicKey {
                inner,
                origin: origin.to_string(),
            })
            .map_err(|e| bad(format!("not an EC P-256 public key: {e}")))
    }

    /// Where the key came from (its file), for messages.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether `der_sig` (ASN.1 DER ECDSA) is this key's signature over SHA-256 of `msg`.
    pub fn verify(&self, msg: &[u8], der_sig: &[u8]) -> bool {
        match p256::ecdsa::Signature::from_der(der_sig) {
            Ok(sig) => self.inner.verify(msg, &sig).is_ok(),
            Err(_) => false,
        }
    }

    /// The key as SPKI PEM.
    pub fn to_pem(&self) -> Result<String> {
        self.inner
            .to_public_key_pem(pem::LineEnding::LF)
            .map_err(|e| SignError::KeyFormat {
                origin: "public key".into(),
                reason: e.to_string(),
            })
    }
}

/// Every PEM block of `text` as (label, DER), in order; blocks that do not decode are left
/// out (a file from `openssl ecparam -genkey` starts with `EC PARAMETERS`).
fn pem_blocks(text: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let from = &rest[start..];
        let Some(label_end) = from["-----BEGIN ".len()..].find("-----") else {
            break;
        };
        let label = &from["-----BEGIN ".len().."-----BEGIN ".len() + label_end];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = from.find(&end_marker) else {
            break;
        };
        let block = &from[..end + end_marker.len()];
        if let Ok((l, der)) = pem::decode_vec(block.as_bytes()) {
            out.push((l.to_string(), der));
        }
        rest = &from[end + end_marker.len()..];
    }
    out
}

#[derive(Deserialize)]
struct EncryptedKey {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    salt: String,
}

#[derive(Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// Decrypts cosign's encrypted key document `doc` (the PEM body) with `password`.
fn decrypt_cosign_key(doc: &[u8], password: &str, origin: &str) -> Result<SigningKey> {
    use crypto_secretbox::aead::{Aead, KeyInit};
    let bad = |reason: String| SignError::KeyFormat {
        origin: origin.to_string(),
        reason: format!("encrypted cosign key: {reason}"),
    };
    let enc: EncryptedKey =
        serde_json::from_slice(doc).map_err(|e| bad(format!("not the expected JSON: {e}")))?;
    if enc.kdf.name != "scrypt" {
        return Err(bad(format!(
            "key derivation {:?} (only scrypt)",
            enc.kdf.name
        )));
    }
    if enc.cipher.name != "nacl/secretbox" {
        return Err(bad(format!(
            "cipher {:?} (only nacl/secretbox)",
            enc.cipher.name
        )));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let field = |name: &str, v: &str| {
        b64.decode(v)
            .map_err(|e| bad(format!("{name} is not base64: {e}")))
    };
    let salt = field("salt", &enc.kdf.salt)?;
    let nonce = field("nonce", &enc.cipher.nonce)?;
    let ciphertext = field("ciphertext", &enc.ciphertext)?;
    let KdfParams { n, r, p } = enc.kdf.params;
    if !n.is_power_of_two() || n < 2 {
        return Err(bad(format!("scrypt N {n} is not a power of two")));
    }
    let log_n = n.trailing_zeros() as u8;
    if log_n > MAX_SCRYPT_LOG_N || r > 32 || p > 16 {
        return Err(bad(format!(
            "scrypt cost N={n} r={r} p={p} is beyond what hoist accepts (N ≤ 2^{MAX_SCRYPT_LOG_N}, r ≤ 32, p ≤ 16)"
        )));
    }
    let params = scrypt::Params::new(log_n, r, p)
        .map_err(|e| bad(format!("scrypt parameters N={n} r={r} p={p}: {e}")))?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password.as_bytes(), &salt, &params, &mut key)
        .map_err(|e| bad(format!("scrypt: {e}")))?;
    let nonce: [u8; 24] = nonce
        .as_slice()
        .try_into()
        .map_err(|_| bad(format!("nonce is {} bytes, not 24", nonce.len())))?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(&key.into());
    let plain = cipher
        .decrypt(&nonce.into(), ciphertext.as_slice())
        .map_err(|_| SignError::WrongPassword {
            origin: origin.to_string(),
        })?;
    let plain = Zeroed(plain);
    p256::ecdsa::SigningKey::from_pkcs8_der(&plain.0)
        .map(|inner| SigningKey { inner })
        .map_err(|e| {
            bad(format!(
                "the decrypted key is not an EC P-256 PKCS#8 key: {e}"
            ))
        })
}

/// Bytes wiped when dropped (a decrypted key).
struct Zeroed(Vec<u8>);

impl Drop for Zeroed {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|b| *b = 0);
    }
}

/// Asks for the password of `origin` on the controlling terminal, without echo.
fn ask_on_terminal(origin: &str) -> Result<String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    use std::io::{BufRead, Write};
    let no_tty = || SignError::NoPassword {
        origin: origin.to_string(),
    };
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| no_tty())?;
    let saved = tcgetattr(&tty).map_err(|_| no_tty())?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&tty, OptionalActions::Now, &quiet).map_err(|_| no_tty())?;
    let mut w = &tty;
    let _ = write!(w, "Enter password for private key {origin}: ");
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    let _ = tcsetattr(&tty, OptionalActions::Now, &saved);
    let _ = writeln!(w);
    read.map_err(|_| no_tty())?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Writes `PREFIX.key` (PKCS#8 PEM, mode 0600) and `PREFIX.pub` (SPKI PEM) for a new key,
/// refusing to overwrite either. Returns the two paths.
pub fn generate_key_pair(prefix: &Path) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let key = SigningKey::generate();
    let mut name = prefix.as_os_str().to_owned();
    name.push(".key");
    let key_path = std::path::PathBuf::from(name);
    let mut name = prefix.as_os_str().to_owned();
    name.push(".pub");
    let pub_path = std::path::PathBuf::from(name);
    let write = |path: &Path, mode: u32, text: &str| -> Result<()> {
        let io = |source| SignError::KeyWrite {
            path: path.to_path_buf(),
            source,
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)
    };
    for p in [&key_path, &pub_path] {
        if p.exists() {
            return Err(SignError::KeyWrite {
                path: p.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "already exists; remove it or choose another prefix",
                ),
            });
        }
    }
    write(&key_path, 0o600, &key.to_pkcs8_pem()?)?;
    write(&pub_path, 0o644, &key.public_key().to_pem()?)?;
    Ok((key_path, pub_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify_and_refusals() {
        let k = SigningKey::generate();
        let sig = k.sign(b"payload");
        assert!(k.public_key().verify(b"payload", &sig));
        assert!(!k.public_key().verify(b"payload2", &sig));
        let other = SigningKey::generate();
        assert!(!other.public_key().verify(b"payload", &sig));
        let mut bad = sig.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(!k.public_key().verify(b"payload", &bad));
        assert!(!k.public_key().verify(b"payload", b"not der"));
    }

    #[test]
    fn pkcs8_and_spki_round_trip() {
        let k = SigningKey::generate();
        let pem_text = k.to_pkcs8_pem().unwrap();
        assert!(pem_text.starts_with("-----BEGIN PRIVATE KEY-----"));
        let back = SigningKey::from_pem(&pem_text, "k", &Password::Given(String::new())).unwrap();
        assert_eq!(back.public_key(), k.public_key());
        let pub_text = k.public_key().to_pem().unwrap();
        assert_eq!(PublicKey::from_pem(&pub_text, "p").unwrap(), k.public_key());
    }

    #[test]
    fn sec1_key_after_ec_parameters_block() {
        let k = SigningKey::generate();
        let sk = p256::SecretKey::from(k.inner.as_nonzero_scalar());
        let sec1 = sk.to_sec1_pem(pem::LineEnding::LF).unwrap();
        // `openssl ecparam -genkey` writes the curve's parameters first.
        let text = format!(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{}",
            &*sec1
        );
        let back = SigningKey::from_pem(&text, "k", &Password::Given(String::new())).unwrap();
        assert_eq!(back.public_key(), k.public_key());
    }

    #[test]
    fn wrong_kinds_are_named() {
        let k = SigningKey::generate();
        let e = PublicKey::from_pem(&k.to_pkcs8_pem().unwrap(), "cosign.key").unwrap_err();
        assert!(e.to_string().contains("cosign.key"), "{e}");
        assert!(e.to_string().contains("private key"), "{e}");
        let e = SigningKey::from_pem("hello", "x.key", &Password::Given(String::new()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.key") && e.contains("no PEM block"), "{e}");
    }

    /// An encrypted key built here with the same primitives, then read back; the independent
    /// check (a key made by Python's nacl and cryptography) is in `tests/sign.rs`.
    #[test]
    fn encrypted_key_and_wrong_password() {
        use crypto_secretbox::aead::{Aead, KeyInit};
        let k = SigningKey::generate();
        let der = k.inner.to_pkcs8_der().unwrap();
        let salt = [7u8; 32];
        let nonce = [9u8; 24];
        let params = scrypt::Params::new(10, 8, 1).unwrap();
        let mut key = [0u8; 32];
        scrypt::scrypt(b"hunter2", &salt, &params, &mut key).unwrap();
        let ct = crypto_secretbox::XSalsa20Poly1305::new(&key.into())
            .encrypt(&nonce.into(), der.as_bytes())
            .unwrap();
        let b64 = base64::engine::general_purpose::STANDARD;
        let doc = serde_json::json!({
            "kdf": {"name": "scrypt", "params": {"N": 1024, "r": 8, "p": 1}, "salt": b64.encode(salt)},
            "cipher": {"name": "nacl/secretbox", "nonce": b64.encode(nonce)},
            "ciphertext": b64.encode(&ct),
        });
        let text = pem::encode_string(
            "ENCRYPTED SIGSTORE PRIVATE KEY",
            pem::LineEnding::LF,
            &serde_json::to_vec(&doc).unwrap(),
        )
        .unwrap();
        let back =
            SigningKey::from_pem(&text, "c.key", &Password::Given("hunter2".into())).unwrap();
        assert_eq!(back.public_key(), k.public_key());
        let e = SigningKey::from_pem(&text, "c.key", &Password::Given("nope".into())).unwrap_err();
        assert!(matches!(e, SignError::WrongPassword { .. }), "{e}");
        assert!(e.to_string().contains("c.key"), "{e}");
        // Older cosign's label, same body.
        let old = text.replace("SIGSTORE", "COSIGN");
        let back = SigningKey::from_pem(&old, "c.key", &Password::Given("hunter2".into())).unwrap();
        assert_eq!(back.public_key(), k.public_key());
    }
}

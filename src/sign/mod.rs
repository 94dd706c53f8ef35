//! Image signatures and attestations in cosign's format, so that `cosign verify --key`
//! accepts what hoist signs and hoist verifies what cosign signs.
//!
//! - `keys.rs`: ECDSA P-256 keys (PKCS#8, SEC1, cosign's encrypted keys; SPKI public keys).
//! - `payload.rs`: the simple-signing payload a signature covers, and its checks.
//! - `dsse.rs`: DSSE envelopes (PAE) around in-toto statements, for attestations.
//! - `artifact.rs`: the `sha256-<hex>.sig` / `.att` manifests: layers, config, appending.
//! - `remote.rs`: signing against a registry (resolve, read the existing manifest, push).
//! - `verify.rs`: verification against a registry; trusts nothing it did not check.
//!
//! Signature manifests carry an OCI 1.1 `subject` and `artifactType`, so registries with the
//! referrers API list them, and are always pushed under the tag cosign reads as well.

pub mod artifact;
pub mod dsse;
pub mod keys;
pub mod payload;
pub mod remote;
pub mod verify;

pub use keys::{Password, PublicKey, SigningKey, generate_key_pair};
pub use remote::{SignOptions, Signed, attest_image, attest_index, index_attestations, sign_image};
pub use verify::{
    VerifiedAttestation, VerifiedSignature, VerifyOptions, verify_attestations, verify_signatures,
};

use crate::registry::RegistryError;
use std::path::PathBuf;

/// Errors of signing and verification; each names the key file or the image at fault.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("{path}: cannot read the key: {source}")]
    KeyRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot write the key: {source}")]
    KeyWrite {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: {reason}")]
    KeyFormat { origin: String, reason: String },
    #[error(
        "{origin}: wrong password: the key does not decrypt with it (COSIGN_PASSWORD, or what was typed)"
    )]
    WrongPassword { origin: String },
    #[error(
        "{origin} is encrypted and needs its password: set COSIGN_PASSWORD (there is no terminal to ask on)"
    )]
    NoPassword { origin: String },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A signature manifest that hoist cannot read (it will not overwrite it).
    #[error("{image}: {what}: {reason}")]
    BadArtifact {
        image: String,
        what: String,
        reason: String,
    },
    /// An attestation that cannot be attached where asked.
    #[error("{image}: {reason}")]
    BadStatement { image: String, reason: String },
    /// Nothing verified: names the image, its digest, where hoist looked and why each
    /// candidate failed.
    #[error("{image} ({digest}): no {kind} verifies with {key}: {details}")]
    NotVerified {
        image: String,
        digest: String,
        kind: &'static str,
        key: String,
        details: String,
    },
    #[error("--sign {value:?}: {reason}")]
    BadSignFlag { value: String, reason: String },
}

/// Result alias for signing.
pub type Result<T> = std::result::Result<T, SignError>;

/// The key file of build's `--sign key=PATH` (the only setting so far; a bare `PATH` is taken
/// as the key too).
pub fn parse_sign_flag(value: &str) -> Result<PathBuf> {
    let bad = |reason: &str| SignError::BadSignFlag {
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let mut key = None;
    for part in value.split(',') {
        match part.split_once('=') {
            Some(("key", p)) if !p.is_empty() => key = Some(PathBuf::from(p)),
            Some(("key", _)) => return Err(bad("key= needs a path")),
            Some((k, _)) => {
                return Err(bad(&format!("unknown setting {k:?}; expected key=PATH")));
            }
            None if !part.is_empty() && key.is_none() => key = Some(PathBuf::from(part)),
            None => return Err(bad("expected key=PATH")),
        }
    }
    key.ok_or_else(|| bad("expected key=PATH"))
}

/// The key of build's `--sign key=PATH`, loaded (an encrypted key's password from
/// `COSIGN_PASSWORD`, else the terminal). Call it before the build, so that a wrong path or
/// password fails before any work.
pub fn signing_key_from_flag(value: &str) -> Result<SigningKey> {
    SigningKey::load(&parse_sign_flag(value)?, &Password::EnvOrTerminal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_flag_values() {
        assert_eq!(
            parse_sign_flag("key=/k/cosign.key").unwrap(),
            PathBuf::from("/k/cosign.key")
        );
        assert_eq!(parse_sign_flag("a.key").unwrap(), PathBuf::from("a.key"));
        let e = parse_sign_flag("keyring=x").unwrap_err().to_string();
        assert!(e.contains("keyring") && e.contains("key=PATH"), "{e}");
        assert!(parse_sign_flag("key=").is_err());
        assert!(parse_sign_flag("").is_err());
    }
}

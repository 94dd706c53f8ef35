//! `hoist sign` and `hoist verify`: cosign-format signatures of images in a registry (the
//! work is in `crate::sign`; this file reads flags and prints as cosign does: the verified
//! payloads on stdout, the account of the checks on stderr).

use super::images::parse_ref;
use super::pull_push::client;
use super::{GlobalArgs, RegistryTimeoutArgs};
use crate::Error;
use crate::sign::{self, Password, PublicKey, SignOptions, SigningKey, VerifyOptions};
use clap::{Args, ValueEnum};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// `hoist sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// Private key: PEM PKCS#8 or SEC1 EC P-256, or cosign's encrypted key (password from
    /// COSIGN_PASSWORD, else asked on the terminal)
    #[arg(long, value_name = "KEY", required_unless_present = "generate_key")]
    pub key: Option<PathBuf>,
    /// Write a new key pair, PREFIX.key (unencrypted PKCS#8, mode 0600) and PREFIX.pub; with
    /// an IMAGE, sign it with the new key
    #[arg(long, value_name = "PREFIX", conflicts_with = "key")]
    pub generate_key: Option<PathBuf>,
    /// A claim written into the signed payload's "optional" map; repeatable
    #[arg(short = 'a', long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    /// Also sign the in-toto attestations the image's index carries (BuildKit's attestation
    /// manifests: provenance, SBOM) as DSSE envelopes under `sha256-<hex>.att`
    #[arg(long)]
    pub attestations: bool,
    #[command(flatten)]
    pub timeouts: RegistryTimeoutArgs,
    /// Image in a registry, by tag or digest (a tag is signed as the digest it points to)
    #[arg(required_unless_present = "generate_key")]
    pub image: Option<String>,
}

/// How `hoist verify` prints verified payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerifyOutput {
    /// One JSON array of the payloads (cosign's default)
    Json,
    /// Each payload as signed, one a line
    Text,
}

/// `hoist verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Public key (PEM `PUBLIC KEY`, e.g. cosign.pub)
    #[arg(long, value_name = "PUB")]
    pub key: PathBuf,
    /// A claim the payload must carry (`-a` given when signing); repeatable
    #[arg(short = 'a', long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    /// Verify the attestations (`.att`, DSSE) instead of the signatures, and print their
    /// envelopes
    #[arg(long)]
    pub attestations: bool,
    /// Output of the verified signatures
    #[arg(short = 'o', long, value_enum, default_value_t = VerifyOutput::Json)]
    pub output: VerifyOutput,
    #[command(flatten)]
    pub timeouts: RegistryTimeoutArgs,
    /// Image in a registry, by tag or digest
    pub image: String,
}

fn annotations(list: &[String]) -> crate::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for a in list {
        let (k, v) = a
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| Error::Usage(format!("-a {a:?}: expected KEY=VALUE")))?;
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// `hoist sign`.
pub fn sign(g: &GlobalArgs, a: SignArgs) -> crate::Result<ExitCode> {
    let key = match (&a.generate_key, &a.key) {
        (Some(prefix), _) => {
            let (k, p) = sign::generate_key_pair(prefix)?;
            errln!("Private key written to {}", k.display());
            errln!("Public key written to {}", p.display());
            SigningKey::load(&k, &Password::Given(String::new()))?
        }
        (None, Some(path)) => SigningKey::load(path, &Password::EnvOrTerminal)?,
        (None, None) => return Err(Error::Usage("--key KEY is required".into())),
    };
    let Some(image) = &a.image else {
        return Ok(ExitCode::SUCCESS);
    };
    let r = parse_ref(image)?;
    let opts = SignOptions {
        annotations: annotations(&a.annotations)?,
    };
    let c = client(g, &a.timeouts, true)?;
    let s = sign::sign_image(&c, &r, &key, &opts)?;
    if s.added == 0 {
        errln!(
            "{r}: an identical signature of {} is already in {}",
            s.subject,
            s.tag
        );
    } else {
        errln!(
            "Pushing signature of {} to: {} ({})",
            s.subject,
            s.tag,
            s.manifest
        );
    }
    if a.attestations {
        let found = sign::attest_index(&c, &r, &key)?;
        if found.is_empty() {
            errln!("{r}: no attestation manifests in its index; nothing to attest");
        }
        for (n, at) in found {
            errln!(
                "Pushing {n} attestation(s) of {} to: {} ({} new)",
                at.subject,
                at.tag,
                at.added
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `hoist verify`.
pub fn verify(g: &GlobalArgs, a: VerifyArgs) -> crate::Result<ExitCode> {
    let r = parse_ref(&a.image)?;
    let key = PublicKey::load(&a.key)?;
    let c = client(g, &a.timeouts, true)?;
    if a.attestations {
        let found = sign::verify_attestations(&c, &r, &key)?;
        errln!("Verification for {r} --");
        errln!("The following checks were performed on each of these attestations:");
        errln!("  - The DSSE signatures were verified against the specified public key");
        errln!("  - Each statement's subject is the manifest it is attached to");
        for v in &found {
            errln!(
                "Verified attestation {} of {} ({})",
                v.predicate_type,
                v.subject,
                v.source
            );
            outln!("{}", String::from_utf8_lossy(&v.envelope));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let opts = VerifyOptions {
        annotations: annotations(&a.annotations)?,
    };
    let found = sign::verify_signatures(&c, &r, &key, &opts)?;
    errln!("Verification for {r} --");
    errln!("The following checks were performed on each of these signatures:");
    errln!("  - The cosign claims were validated");
    errln!("  - The signatures were verified against the specified public key");
    for v in &found {
        if let Some(other) = &v.checked.other_repository {
            errln!(
                "WARNING: a signature ({}) was made for the image in {other}, not {}: accepted, as cosign accepts it (a copied image keeps its signatures)",
                v.source,
                sign::payload::docker_reference(&r)
            );
        }
    }
    match a.output {
        VerifyOutput::Text => {
            for v in &found {
                outln!("{}", String::from_utf8_lossy(&v.payload));
            }
        }
        VerifyOutput::Json => {
            let all: Vec<&sign::payload::Payload> =
                found.iter().map(|v| &v.checked.payload).collect();
            let text = serde_json::to_string(&all)
                .map_err(|e| Error::Usage(format!("cannot render the payloads: {e}")))?;
            outln!("{text}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

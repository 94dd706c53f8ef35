//! DSSE envelopes around in-toto statements, as cosign stores attestations: the signature
//! covers the pre-authentication encoding (PAE) of the payload type and the raw statement,
//! never the JSON envelope itself.

use super::keys::{PublicKey, SigningKey};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// `payloadType` of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// DSSE's pre-authentication encoding:
/// `"DSSEv1" SP len(type) SP type SP len(payload) SP payload`, lengths in ASCII decimal.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// A DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub payload_type: String,
    /// The statement, standard base64.
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    #[serde(default)]
    pub keyid: String,
    /// DER ECDSA over the PAE, standard base64.
    pub sig: String,
}

/// The envelope bytes signing `statement` with `key`.
pub fn seal(key: &SigningKey, statement: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let sig = key.sign(&pae(IN_TOTO_PAYLOAD_TYPE, statement));
    let env = Envelope {
        payload_type: IN_TOTO_PAYLOAD_TYPE.to_string(),
        payload: b64.encode(statement),
        signatures: vec![EnvelopeSignature {
            keyid: String::new(),
            sig: b64.encode(sig),
        }],
    };
    serde_json::to_vec(&env).unwrap_or_default()
}

/// The statement inside envelope bytes when one of its signatures is `key`'s over the PAE;
/// the error is the reason.
pub fn open(envelope: &[u8], key: &PublicKey) -> Result<Vec<u8>, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let env: Envelope =
        serde_json::from_slice(envelope).map_err(|e| format!("not a DSSE envelope: {e}"))?;
    if env.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(format!(
            "the envelope's payloadType is {:?}, not {IN_TOTO_PAYLOAD_TYPE:?}",
            env.payload_type
        ));
    }
    let statement = b64
        .decode(&env.payload)
        .map_err(|e| format!("the envelope's payload is not base64: {e}"))?;
    if env.signatures.is_empty() {
        return Err("the envelope has no signature".into());
    }
    let message = pae(&env.payload_type, &statement);
    let verified = env.signatures.iter().any(|s| {
        b64.decode(&s.sig)
            .is_ok_and(|sig| key.verify(&message, &sig))
    });
    if !verified {
        return Err(format!(
            "none of the envelope's {} signature(s) verifies with the key",
            env.signatures.len()
        ));
    }
    Ok(statement)
}

/// What a verifier reads from an in-toto statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementInfo {
    pub predicate_type: String,
    /// Subject digests as `sha256:HEX`.
    pub subjects: Vec<String>,
}

/// The predicate type and subject digests of an in-toto statement (v0.1 or v1).
pub fn statement_info(statement: &[u8]) -> Result<StatementInfo, String> {
    #[derive(Deserialize)]
    struct Subject {
        #[serde(default)]
        digest: std::collections::BTreeMap<String, String>,
    }
    #[derive(Deserialize)]
    struct Statement {
        #[serde(rename = "_type")]
        kind: String,
        #[serde(default)]
        subject: Vec<Subject>,
        #[serde(rename = "predicateType")]
        predicate_type: String,
    }
    let s: Statement =
        serde_json::from_slice(statement).map_err(|e| format!("not an in-toto statement: {e}"))?;
    if !s.kind.starts_with("https://in-toto.io/Statement/") {
        return Err(format!("statement _type {:?} is not in-toto's", s.kind));
    }
    let subjects = s
        .subject
        .iter()
        .flat_map(|sub| sub.digest.iter().map(|(alg, hex)| format!("{alg}:{hex}")))
        .collect();
    Ok(StatementInfo {
        predicate_type: s.predicate_type,
        subjects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_spec_example() {
        // The DSSE protocol document's example: type "http://example.com/HelloWorld",
        // payload "hello world".
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    fn statement(hex: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "x", "digest": {"sha256": hex}}],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {}
        }))
        .unwrap()
    }

    #[test]
    fn seal_open_and_refusals() {
        let k = SigningKey::generate();
        let st = statement("ab");
        let env = seal(&k, &st);
        assert_eq!(open(&env, &k.public_key()).unwrap(), st);
        let other = SigningKey::generate();
        assert!(
            open(&env, &other.public_key())
                .unwrap_err()
                .contains("verifies")
        );
        // A statement swapped under the same signature.
        let mut e: Envelope = serde_json::from_slice(&env).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD;
        e.payload = b64.encode(statement("cd"));
        let swapped = serde_json::to_vec(&e).unwrap();
        assert!(open(&swapped, &k.public_key()).is_err());
        // The signature made over the bare statement (not the PAE) is refused.
        let mut e: Envelope = serde_json::from_slice(&env).unwrap();
        e.signatures[0].sig = b64.encode(k.sign(&st));
        assert!(open(&serde_json::to_vec(&e).unwrap(), &k.public_key()).is_err());
    }

    #[test]
    fn statement_subjects_and_type() {
        let i = statement_info(&statement("ab")).unwrap();
        assert_eq!(i.predicate_type, "https://slsa.dev/provenance/v1");
        assert_eq!(i.subjects, vec!["sha256:ab".to_string()]);
        assert!(statement_info(b"{\"_type\":\"x\",\"predicateType\":\"p\"}").is_err());
    }
}

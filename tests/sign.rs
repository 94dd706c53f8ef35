//! `hoist sign` / `hoist verify` end to end: the real binary against Debian's
//! `docker-registry` (distribution 2.8: no referrers API, so the `.sig`/`.att` tag scheme),
//! with independent oracles: `skopeo` reads the signature manifest, `openssl dgst -verify`
//! checks the signature over the payload, keys come from `openssl` and from Python's
//! `cryptography` + `nacl` writing cosign's encrypted format, and Python checks a DSSE
//! envelope's signature over the PAE and signs a signature image laid out as cosign lays it
//! (which hoist must verify and append to). The referrers path runs through the test proxy
//! answering `GET …/referrers/…` as an OCI 1.1 registry would.

mod common;

use common::proxy::{Fault, Server};
use common::{Auth, Hoist, Registry, fixture_image, hoist, noise, text};
use hoist::oci::Digest;
use hoist::registry::{Client, ImageRef, RegistryOptions};
use hoist::store::Store;
use std::path::{Path, PathBuf};
use std::process::Command;

const SIG_LAYER: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const SIG_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// A registry with one pushed image.
struct Lab {
    reg: Registry,
    root: tempfile::TempDir,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        Lab {
            reg: Registry::start(Auth::None),
            root: tempfile::tempdir().unwrap(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Pushes a small image with content from `seed` as `HOST/REPO`; returns its digest.
    fn push(&self, repo: &str, seed: u64) -> Digest {
        let store = Store::open(self.root.path()).unwrap();
        // The store keeps names as the parsed reference writes them.
        let name = ImageRef::parse(&format!("local/s{seed}:1"))
            .unwrap()
            .to_string();
        fixture_image(&store, &name, &[("f", noise(2000, seed))]);
        let o = hoist(
            self.root.path(),
            &["push", "-q", &name, &format!("{}/{repo}", self.reg.host)],
        );
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
    }

    fn image(&self, repo: &str) -> String {
        format!("{}/{repo}", self.reg.host)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn hoist(&self, args: &[&str]) -> std::process::Output {
        hoist(self.root.path(), args)
    }

    fn client(&self) -> Client {
        Client::new(RegistryOptions::default()).unwrap()
    }

    /// The raw manifest under `tag` of `repo`, read by skopeo (not hoist).
    fn skopeo_raw(&self, repo_tag: &str) -> serde_json::Value {
        common::require("skopeo", "skopeo");
        let out = common::run(Command::new("skopeo").args([
            "inspect",
            "--tls-verify=false",
            "--raw",
            &format!("docker://{}/{repo_tag}", self.reg.host),
        ]));
        serde_json::from_slice(&out).unwrap()
    }

    fn blob(&self, repo: &str, digest: &str) -> Vec<u8> {
        common::run(Command::new("curl").args([
            "-sf",
            &format!("http://{}/v2/{repo}/blobs/{digest}", self.reg.host),
        ]))
    }
}

fn sig_tag(d: &Digest) -> String {
    format!("sha256-{}.sig", d.hex())
}

/// An EC P-256 key pair made by openssl: (private PKCS#8 PEM, public SPKI PEM).
fn openssl_key(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    common::require("openssl", "openssl");
    let key = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub"));
    common::run(
        Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
            ])
            .arg(&key),
    );
    common::run(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&public),
    );
    (key, public)
}

fn ok(o: &std::process::Output) {
    assert!(o.status.success(), "{}", text(o));
}

fn failed_naming(o: &std::process::Output, image: &str, reason: &str) {
    let t = text(o);
    assert!(!o.status.success(), "expected a failure: {t}");
    assert!(t.contains(image), "the error does not name {image}: {t}");
    assert!(t.contains(reason), "the error does not say {reason:?}: {t}");
}

#[test]
fn sign_writes_cosigns_format_and_verify_checks_the_key() {
    let lab = Lab::new();
    let digest = lab.push("app:1", 1);
    let image = lab.image("app:1");
    let (key, public) = openssl_key(lab.dir.path(), "a");
    let (_, other_pub) = openssl_key(lab.dir.path(), "b");
    ok(&lab.hoist(&["sign", "--key", key.to_str().unwrap(), &image]));

    // skopeo sees cosign's layout under the tag.
    let m = lab.skopeo_raw(&format!("app:{}", sig_tag(&digest)));
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], SIG_LAYER);
    assert_eq!(m["subject"]["digest"], digest.to_string().as_str());
    let cfg: serde_json::Value =
        serde_json::from_slice(&lab.blob("app", m["config"]["digest"].as_str().unwrap())).unwrap();
    assert_eq!(cfg["rootfs"]["diff_ids"][0], layers[0]["digest"]);

    // The payload names the image's digest, and openssl accepts the signature over it.
    let payload = lab.blob("app", layers[0]["digest"].as_str().unwrap());
    let p: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        p["critical"]["image"]["docker-manifest-digest"],
        digest.to_string().as_str()
    );
    assert_eq!(p["critical"]["type"], "cosign container image signature");
    assert_eq!(
        p["critical"]["identity"]["docker-reference"],
        lab.image("app").as_str()
    );
    use base64::Engine as _;
    let sig = base64::engine::general_purpose::STANDARD
        .decode(layers[0]["annotations"][SIG_ANNOTATION].as_str().unwrap())
        .unwrap();
    std::fs::write(lab.path("payload.json"), &payload).unwrap();
    std::fs::write(lab.path("sig.der"), &sig).unwrap();
    let o = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&public)
        .arg("-signature")
        .arg(lab.path("sig.der"))
        .arg(lab.path("payload.json"))
        .output()
        .unwrap();
    assert!(o.status.success(), "openssl refused: {}", text(&o));

    // hoist verify: the right key passes and prints the payload; another key fails loudly.
    let o = lab.hoist(&["verify", "--key", public.to_str().unwrap(), &image]);
    ok(&o);
    let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(out.as_array().unwrap().len(), 1);
    assert_eq!(
        out[0]["critical"]["image"]["docker-manifest-digest"],
        digest.to_string().as_str()
    );
    let o = lab.hoist(&["verify", "--key", other_pub.to_str().unwrap(), &image]);
    failed_naming(&o, &image, "does not verify");
    assert!(text(&o).contains(&sig_tag(&digest)), "{}", text(&o));

    // An unsigned image: nothing found, said so.
    let bare = lab.push("app:bare", 2);
    let o = lab.hoist(&[
        "verify",
        "--key",
        public.to_str().unwrap(),
        &lab.image("app:bare"),
    ]);
    failed_naming(&o, &lab.image("app:bare"), "none found");
    assert!(text(&o).contains(&sig_tag(&bare)), "{}", text(&o));
}

#[test]
fn tampered_signature_manifests_are_refused() {
    let lab = Lab::new();
    let a = lab.push("app:a", 3);
    let b = lab.push("app:b", 4);
    let (key, public) = openssl_key(lab.dir.path(), "k");
    let key = key.to_str().unwrap();
    let public = public.to_str().unwrap();
    ok(&lab.hoist(&["sign", "--key", key, &lab.image("app:a")]));
    ok(&lab.hoist(&["sign", "--key", key, &lab.image("app:b")]));
    ok(&lab.hoist(&["verify", "--key", public, &lab.image("app:a")]));

    let c = lab.client();
    let repo = ImageRef::parse(&lab.image("app")).unwrap();
    let (b_sig, mt, _) = c.get_manifest(&repo.with_tag(&sig_tag(&b))).unwrap();
    let (a_sig, _, _) = c.get_manifest(&repo.with_tag(&sig_tag(&a))).unwrap();

    // B's valid signature (right key) moved under A's tag: its payload names B.
    c.put_manifest(&repo.with_tag(&sig_tag(&a)), &b_sig, &mt)
        .unwrap();
    let o = lab.hoist(&["verify", "--key", public, &lab.image("app:a")]);
    failed_naming(&o, &lab.image("app:a"), &format!("signs {b}, not {a}"));

    // A's manifest with one character of the signature changed.
    let mut m: serde_json::Value = serde_json::from_slice(&a_sig).unwrap();
    let s = m["layers"][0]["annotations"][SIG_ANNOTATION]
        .as_str()
        .unwrap()
        .to_string();
    let mut chars: Vec<char> = s.chars().collect();
    chars[10] = if chars[10] == 'A' { 'B' } else { 'A' };
    m["layers"][0]["annotations"][SIG_ANNOTATION] =
        serde_json::Value::String(chars.into_iter().collect());
    c.put_manifest(
        &repo.with_tag(&sig_tag(&a)),
        &serde_json::to_vec(&m).unwrap(),
        &mt,
    )
    .unwrap();
    let o = lab.hoist(&["verify", "--key", public, &lab.image("app:a")]);
    failed_naming(&o, &lab.image("app:a"), "does not verify");

    // Signing again repairs it: the good layer is appended beside the tampered one.
    ok(&lab.hoist(&["sign", "--key", key, &lab.image("app:a")]));
    ok(&lab.hoist(&["verify", "--key", public, &lab.image("app:a")]));
}

#[test]
fn signing_twice_appends_and_every_signature_verifies() {
    let lab = Lab::new();
    let d = lab.push("app:1", 5);
    let image = lab.image("app:1");
    let (k1, p1) = openssl_key(lab.dir.path(), "one");
    // A SEC1 key as `openssl ecparam -genkey` writes it (EC PARAMETERS block first).
    let k2 = lab.path("two.pem");
    common::run(
        Command::new("openssl")
            .args(["ecparam", "-name", "prime256v1", "-genkey", "-out"])
            .arg(&k2),
    );
    let p2 = lab.path("two.pub");
    common::run(
        Command::new("openssl")
            .args(["ec", "-pubout", "-in"])
            .arg(&k2)
            .arg("-out")
            .arg(&p2),
    );
    let (k1, p1, k2, p2) = (
        k1.to_str().unwrap(),
        p1.to_str().unwrap(),
        k2.to_str().unwrap(),
        p2.to_str().unwrap(),
    );
    let layers = || {
        lab.skopeo_raw(&format!("app:{}", sig_tag(&d)))["layers"]
            .as_array()
            .unwrap()
            .len()
    };
    ok(&lab.hoist(&["sign", "--key", k1, &image]));
    // The same key and payload again: deterministic ECDSA, an identical layer, skipped.
    ok(&lab.hoist(&["sign", "--key", k1, &image]));
    assert_eq!(layers(), 1);
    ok(&lab.hoist(&["sign", "--key", k2, &image]));
    assert_eq!(layers(), 2);
    ok(&lab.hoist(&["verify", "--key", p1, &image]));
    ok(&lab.hoist(&["verify", "--key", p2, &image]));

    // Annotations: signed into the payload, required by verify -a.
    ok(&lab.hoist(&["sign", "--key", k1, "-a", "env=prod", &image]));
    assert_eq!(layers(), 3);
    let o = lab.hoist(&[
        "verify", "--key", p1, "-a", "env=prod", "-o", "text", &image,
    ]);
    ok(&o);
    let lines: Vec<&str> = std::str::from_utf8(&o.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(r#""optional":{"env":"prod"}"#),
        "{lines:?}"
    );
    let o = lab.hoist(&["verify", "--key", p1, "-a", "env=dev", &image]);
    failed_naming(&o, &image, "env=dev");

    // By digest works the same as by tag.
    let by_digest = format!("{}@{d}", lab.image("app"));
    ok(&lab.hoist(&["verify", "--key", p2, &by_digest]));
}

/// Python with `cryptography` and `nacl` (scripts/lab-setup.sh installs them).
fn python_oracle() {
    let ok = Command::new("python3")
        .args(["-c", "import nacl.secret, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "python3 with pynacl and cryptography is needed: pip install pynacl cryptography (scripts/lab-setup.sh)"
    );
}

/// Writes cosign's encrypted key format, independently of hoist: scrypt (N=32768, r=8,
/// p=1) of the password keys a NaCl secretbox around the PKCS#8 DER.
const PY_COSIGN_KEY: &str = r#"
import base64, hashlib, json, os, sys
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import serialization
import nacl.secret
out, password = sys.argv[1], sys.argv[2].encode()
k = ec.generate_private_key(ec.SECP256R1())
der = k.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
salt = os.urandom(32)
key = hashlib.scrypt(password, salt=salt, n=32768, r=8, p=1, maxmem=64 * 1024 * 1024, dklen=32)
nonce = os.urandom(24)
ct = nacl.secret.SecretBox(key).encrypt(der, nonce).ciphertext
b = lambda x: base64.b64encode(x).decode()
doc = json.dumps({"kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1}, "salt": b(salt)},
                  "cipher": {"name": "nacl/secretbox", "nonce": b(nonce)}, "ciphertext": b(ct)}).encode()
body = base64.b64encode(doc).decode()
pem = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n" + "\n".join(body[i:i+64] for i in range(0, len(body), 64)) + "\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
open(out + ".key", "w").write(pem)
open(out + ".pub", "wb").write(k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
"#;

#[test]
fn cosign_encrypted_key_from_python_signs_and_a_wrong_password_is_refused() {
    python_oracle();
    let lab = Lab::new();
    lab.push("app:1", 6);
    let image = lab.image("app:1");
    let prefix = lab.path("cosign");
    common::run(
        Command::new("python3")
            .args(["-c", PY_COSIGN_KEY])
            .arg(&prefix)
            .arg("s3cret pass"),
    );
    let key = lab.path("cosign.key");
    let public = lab.path("cosign.pub");
    let key = key.to_str().unwrap();
    let sign = |password: &str| {
        Hoist::new(lab.root.path())
            .args(["sign", "--key", key, &image])
            .env("COSIGN_PASSWORD", password)
            .output()
    };
    let o = sign("wrong");
    failed_naming(&o, key, "wrong password");
    // No password and no terminal: a clear failure, not a hang. (setsid drops the
    // controlling terminal the test runner may have.)
    let mut wrapper = Command::new("setsid");
    wrapper.arg("-w");
    let o = Hoist::under(wrapper, lab.root.path())
        .args(["sign", "--key", key, &image])
        .output();
    failed_naming(&o, key, "COSIGN_PASSWORD");
    ok(&sign("s3cret pass"));
    ok(&lab.hoist(&["verify", "--key", public.to_str().unwrap(), &image]));
}

#[test]
fn generate_key_writes_a_private_key_only_its_owner_reads() {
    use std::os::unix::fs::PermissionsExt;
    let lab = Lab::new();
    let prefix = lab.path("gen");
    ok(&lab.hoist(&["sign", "--generate-key", prefix.to_str().unwrap()]));
    let key = lab.path("gen.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // openssl reads both, and they are one pair.
    let from_key = common::run(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&key),
    );
    assert_eq!(from_key, std::fs::read(lab.path("gen.pub")).unwrap());
    // A second run refuses to overwrite.
    let o = lab.hoist(&["sign", "--generate-key", prefix.to_str().unwrap()]);
    failed_naming(&o, "gen.key", "already exists");
}

/// A statement about `subject`, as BuildKit would attach it.
fn statement(subject: &Digest, predicate_type: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": predicate_type,
        "subject": [{"name": "pkg:docker/app", "digest": {"sha256": subject.hex()}}],
        "predicate": {"note": "test"}
    }))
    .unwrap()
}

/// Checks a DSSE envelope's signature over the PAE with Python's `cryptography`.
const PY_DSSE_VERIFY: &str = r#"
import base64, json, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
env = json.loads(open(sys.argv[1]).read())
pub = serialization.load_pem_public_key(open(sys.argv[2], "rb").read())
payload = base64.b64decode(env["payload"])
t = env["payloadType"].encode()
pae = b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)
pub.verify(base64.b64decode(env["signatures"][0]["sig"]), pae, ec.ECDSA(hashes.SHA256()))
print(json.loads(payload)["predicateType"])
"#;

#[test]
fn index_attestations_are_signed_as_dsse_and_verified() {
    python_oracle();
    let lab = Lab::new();
    let img = lab.push("app:1", 7);
    let c = lab.client();
    let repo = ImageRef::parse(&lab.image("app")).unwrap();
    // An attestation manifest (BuildKit's layout) and an index holding both.
    let st = statement(&img, "https://slsa.dev/provenance/v0.2");
    let st_d = c.push_blob_bytes(&repo, &st).unwrap();
    let empty_cfg = b"{}".to_vec();
    let cfg_d = c.push_blob_bytes(&repo, &empty_cfg).unwrap();
    let att = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_d.to_string(), "size": empty_cfg.len()},
        "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": st_d.to_string(), "size": st.len(),
                    "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}}]
    });
    let att = serde_json::to_vec(&att).unwrap();
    let att_d = c
        .put_manifest(
            &repo.with_digest(&Digest::of(&att)),
            &att,
            "application/vnd.oci.image.manifest.v1+json",
        )
        .unwrap();
    let (img_bytes, _, _) = c.get_manifest(&repo.with_digest(&img)).unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": img.to_string(), "size": img_bytes.len(),
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": att_d.to_string(), "size": att.len(),
             "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": img.to_string()},
             "platform": {"architecture": "unknown", "os": "unknown"}}
        ]
    });
    c.put_manifest(
        &repo.with_tag("multi"),
        &serde_json::to_vec(&index).unwrap(),
        "application/vnd.oci.image.index.v1+json",
    )
    .unwrap();

    let (key, public) = openssl_key(lab.dir.path(), "k");
    let (_, other) = openssl_key(lab.dir.path(), "o");
    let image = lab.image("app:multi");
    ok(&lab.hoist(&[
        "sign",
        "--key",
        key.to_str().unwrap(),
        "--attestations",
        &image,
    ]));
    // The .att tag sits on the manifest the statement is about.
    let m = lab.skopeo_raw(&format!("app:sha256-{}.att", img.hex()));
    let layer = &m["layers"][0];
    assert_eq!(layer["mediaType"], "application/vnd.dsse.envelope.v1+json");
    assert_eq!(
        layer["annotations"]["predicateType"],
        "https://slsa.dev/provenance/v0.2"
    );
    let env = lab.blob("app", layer["digest"].as_str().unwrap());
    std::fs::write(lab.path("env.json"), &env).unwrap();
    let o = common::run(
        Command::new("python3")
            .args(["-c", PY_DSSE_VERIFY])
            .arg(lab.path("env.json"))
            .arg(&public),
    );
    assert_eq!(
        String::from_utf8_lossy(&o).trim(),
        "https://slsa.dev/provenance/v0.2"
    );

    let o = lab.hoist(&[
        "verify",
        "--attestations",
        "--key",
        public.to_str().unwrap(),
        &image,
    ]);
    ok(&o);
    assert!(
        text(&o).contains("https://slsa.dev/provenance/v0.2"),
        "{}",
        text(&o)
    );
    let o = lab.hoist(&[
        "verify",
        "--attestations",
        "--key",
        other.to_str().unwrap(),
        &image,
    ]);
    failed_naming(&o, &image, "none of the envelope");
    // The index itself has a signature too (cosign signs the index digest).
    ok(&lab.hoist(&["verify", "--key", public.to_str().unwrap(), &image]));
}

#[test]
fn verify_finds_signatures_through_the_referrers_api() {
    let lab = Lab::new();
    let d = lab.push("app:1", 8);
    let (key, public) = openssl_key(lab.dir.path(), "k");
    ok(&lab.hoist(&["sign", "--key", key.to_str().unwrap(), &lab.image("app:1")]));
    let c = lab.client();
    let repo = ImageRef::parse(&lab.image("app")).unwrap();
    let (sig, mt, sig_d) = c.get_manifest(&repo.with_tag(&sig_tag(&d))).unwrap();
    // The tag now names something else: the signature is reachable by digest only.
    let (img_bytes, img_mt, _) = c.get_manifest(&repo.with_digest(&d)).unwrap();
    c.put_manifest(&repo.with_tag(&sig_tag(&d)), &img_bytes, &img_mt)
        .unwrap();

    // A registry without the referrers API: nothing verifies.
    let proxy = Server::start(Some(lab.reg.host.clone()), None);
    let through = format!("{}/app:1", proxy.host);
    let o = lab.hoist(&["verify", "--key", public.to_str().unwrap(), &through]);
    failed_naming(&o, &through, "referrers API (not offered");

    // The same registry answering the referrers API lists it: verified.
    let list = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": mt, "digest": sig_d.to_string(), "size": sig.len(),
                       "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json"}]
    });
    proxy.add_rule(
        "GET",
        &format!("/v2/app/referrers/{d}"),
        Fault::Serve(
            "application/vnd.oci.image.index.v1+json".into(),
            serde_json::to_vec(&list).unwrap(),
        ),
        10,
    );
    let o = lab.hoist(&["verify", "--key", public.to_str().unwrap(), &through]);
    ok(&o);
    assert!(
        proxy.seen().iter().any(|s| s.path.contains("/referrers/")),
        "no referrers request"
    );
    let payloads = |o: &std::process::Output| {
        serde_json::from_slice::<serde_json::Value>(&o.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(payloads(&o), 1);

    // The tag back, and a second key's signature appended: the tag's manifest repeats the
    // layer of the one the referrers API lists, and that layer counts once.
    c.put_manifest(&repo.with_tag(&sig_tag(&d)), &sig, &mt)
        .unwrap();
    let (key2, _) = openssl_key(lab.dir.path(), "k2");
    ok(&lab.hoist(&["sign", "--key", key2.to_str().unwrap(), &lab.image("app:1")]));
    let o = lab.hoist(&["verify", "--key", public.to_str().unwrap(), &through]);
    ok(&o);
    assert_eq!(payloads(&o), 1, "{}", text(&o));
}

/// Signs a payload as cosign does, independently of hoist: Python's `cryptography` (random
/// nonces, so not hoist's deterministic signatures), DER, base64.
const PY_SIGN: &str = r#"
import base64, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
payload, pub = sys.argv[1], sys.argv[2]
k = ec.generate_private_key(ec.SECP256R1())
open(pub, "wb").write(k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
print(base64.b64encode(k.sign(open(payload, "rb").read(), ec.ECDSA(hashes.SHA256()))).decode())
"#;

#[test]
fn a_signature_image_laid_out_by_cosign_verifies_and_hoist_appends_to_it() {
    python_oracle();
    let lab = Lab::new();
    let d = lab.push("app:1", 9);
    let image = lab.image("app:1");
    // The payload and the signature image exactly as cosign writes them (no subject, no
    // artifactType), signed outside hoist.
    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{}"}},"image":{{"docker-manifest-digest":"{d}"}},"type":"cosign container image signature"}},"optional":null}}"#,
        lab.image("app")
    );
    std::fs::write(lab.path("payload.json"), &payload).unwrap();
    let their_pub = lab.path("theirs.pub");
    let sig = common::run(
        Command::new("python3")
            .args(["-c", PY_SIGN])
            .arg(lab.path("payload.json"))
            .arg(&their_pub),
    );
    let sig = String::from_utf8(sig).unwrap().trim().to_string();
    let c = lab.client();
    let repo = ImageRef::parse(&lab.image("app")).unwrap();
    let layer_d = c.push_blob_bytes(&repo, payload.as_bytes()).unwrap();
    let cfg = format!(
        r#"{{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{{"created":"0001-01-01T00:00:00Z"}}],"os":"","rootfs":{{"type":"layers","diff_ids":["{layer_d}"]}},"config":{{}}}}"#
    );
    let cfg_d = c.push_blob_bytes(&repo, cfg.as_bytes()).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": cfg.len(), "digest": cfg_d.to_string()},
        "layers": [{"mediaType": SIG_LAYER, "size": payload.len(), "digest": layer_d.to_string(),
                    "annotations": {SIG_ANNOTATION: sig}}]
    });
    c.put_manifest(
        &repo.with_tag(&sig_tag(&d)),
        &serde_json::to_vec(&manifest).unwrap(),
        "application/vnd.oci.image.manifest.v1+json",
    )
    .unwrap();
    let o = lab.hoist(&["verify", "--key", their_pub.to_str().unwrap(), &image]);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout).contains(&d.to_string()));

    // hoist's own signature joins it; both keys verify.
    let (key, public) = openssl_key(lab.dir.path(), "ours");
    ok(&lab.hoist(&["sign", "--key", key.to_str().unwrap(), &image]));
    let m = lab.skopeo_raw(&format!("app:{}", sig_tag(&d)));
    assert_eq!(m["layers"].as_array().unwrap().len(), 2);
    assert_eq!(m["layers"][0]["annotations"][SIG_ANNOTATION], sig.as_str());
    ok(&lab.hoist(&["verify", "--key", their_pub.to_str().unwrap(), &image]));
    ok(&lab.hoist(&["verify", "--key", public.to_str().unwrap(), &image]));
}

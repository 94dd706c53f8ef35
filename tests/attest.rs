//! Attestations end to end (issue 16): `--provenance` pushes BuildKit's layout (an index with
//! the image and an `unknown/unknown` attestation manifest whose layer is an in-toto SLSA v1
//! statement about the image manifest); `mode=max` lists build args, secret ids and every
//! step, never a secret's value; `mode=min` leaves the args out; without the flags the image
//! stays a plain manifest; `hoist inspect --format` reads it back; `--output type=oci` carries
//! it. Needs root, the lab registry and an OCI runtime.

mod common;

use common::lab::{Need, ready, registry_json};
use common::{Hoist, text};
use serde_json::Value;
use std::path::Path;

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const SECRET: &str = "s3cr3t-value-never-in-provenance";

const DF: &str = "FROM localhost:5000/busybox:latest AS b
RUN --mount=type=secret,id=tok test -s /run/secrets/tok && echo built > /made
FROM localhost:5000/busybox:latest
ARG V
COPY --from=b /made /made
ENV V=$V
";

fn context() -> tempfile::TempDir {
    let ctx = context_of(DF);
    std::fs::write(ctx.path().join("tok"), SECRET).unwrap();
    ctx
}

/// A context holding only `dockerfile`.
fn context_of(dockerfile: &str) -> tempfile::TempDir {
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();
    ctx
}

/// A blob of `repo` on the lab registry, as JSON.
fn blob_json(repo: &str, digest: &Value) -> Value {
    let path = format!("/v2/{repo}/blobs/{}", digest.as_str().unwrap());
    serde_json::from_slice(&common::lab::registry_get(&path, "*/*")).unwrap()
}

fn build(root: &Path, ctx: &Path, tag: &str, extra: &[&str]) {
    let secret = format!("id=tok,src={}", ctx.join("tok").display());
    let o = Hoist::new(root)
        .args(["build", "-q", "--secret", &secret, "--build-arg", "V=one"])
        .args(extra)
        .args(["-t", tag, "--push"])
        .arg(ctx)
        .output();
    assert!(o.status.success(), "{}", text(&o));
}

/// The provenance statement of `repo:tag` on the lab registry, after checking the layout.
fn pushed(repo: &str, tag: &str) -> Value {
    let index = registry_json(&format!("/v2/{repo}/manifests/{tag}"), INDEX);
    assert_eq!(index["mediaType"], INDEX, "{index}");
    let m = index["manifests"].as_array().unwrap().clone();
    assert_eq!(m.len(), 2, "{index}");
    let (image, att) = (m[0].clone(), m[1].clone());
    assert_eq!(image["platform"]["os"], "linux");
    assert_eq!(
        att["platform"],
        serde_json::json!({"architecture": "unknown", "os": "unknown"})
    );
    assert_eq!(
        att["annotations"]["vnd.docker.reference.type"],
        "attestation-manifest"
    );
    assert_eq!(
        att["annotations"]["vnd.docker.reference.digest"],
        image["digest"]
    );
    let am = registry_json(
        &format!("/v2/{repo}/manifests/{}", att["digest"].as_str().unwrap()),
        MANIFEST,
    );
    let layers = am["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{am}");
    assert_eq!(layers[0]["mediaType"], "application/vnd.in-toto+json");
    assert_eq!(
        layers[0]["annotations"]["in-toto.io/predicate-type"],
        "https://slsa.dev/provenance/v1"
    );
    let blob = common::lab::registry_get(
        &format!("/v2/{repo}/blobs/{}", layers[0]["digest"].as_str().unwrap()),
        "*/*",
    );
    assert!(
        !String::from_utf8_lossy(&blob).contains(SECRET),
        "the secret's value is in the provenance"
    );
    let statement: Value = serde_json::from_slice(&blob).unwrap();
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        image["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
    );
    statement
}

#[test]
fn provenance_max_is_pushed_in_buildkits_layout_without_secret_values() {
    if !ready(&[Need::Root, Need::LabRegistry, Need::OciRuntime]) {
        return;
    }
    let (root, ctx) = (tempfile::tempdir().unwrap(), context());
    build(
        root.path(),
        ctx.path(),
        "localhost:5000/attest/max:1",
        &["--provenance", "mode=max"],
    );
    let st = pushed("attest/max", "1");
    assert_eq!(
        st["subject"][0]["name"],
        "pkg:docker/localhost:5000/attest/max@1?platform=linux%2Famd64"
    );
    let p = &st["predicate"];
    let bd = &p["buildDefinition"];
    let req = &bd["externalParameters"]["request"];
    assert_eq!(req["frontend"], "dockerfile.v0");
    assert_eq!(req["args"]["build-arg:V"], "one");
    assert_eq!(req["args"]["platform"], "linux/amd64");
    assert_eq!(req["secrets"], serde_json::json!([{"id": "tok"}]));
    // The base, by the digest the registry serves for it.
    let dep = &bd["resolvedDependencies"][0];
    assert_eq!(
        dep["uri"],
        "pkg:docker/localhost:5000/busybox@latest?platform=linux%2Famd64"
    );
    let served = common::lab::registry_get("/v2/busybox/manifests/latest", MANIFEST);
    assert_eq!(
        dep["digest"]["sha256"].as_str().unwrap(),
        hoist::oci::Digest::of(&served).hex()
    );
    // Every step, with its lines and (for those with a layer) its layer chain.
    let steps = bd["internalParameters"]["buildConfig"]["llbDefinition"]
        .as_array()
        .unwrap();
    let texts: Vec<&str> = steps
        .iter()
        .filter_map(|s| s["op"]["instruction"].as_str())
        .collect();
    assert!(texts.contains(&"COPY --from=b /made /made"), "{texts:?}");
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("RUN --mount=type=secret"))
    );
    let md = &p["runDetails"]["metadata"];
    assert!(md["startedOn"].as_str().unwrap() <= md["finishedOn"].as_str().unwrap());
    assert_eq!(md["invocationId"].as_str().unwrap().len(), 25);
    let bk = &md["buildkit_metadata"];
    assert!(!bk["layers"].as_object().unwrap().is_empty(), "{bk}");
    assert_eq!(bk["source"]["infos"][0]["filename"], "Dockerfile");

    // `hoist inspect --format` reads it from the store.
    let o = Hoist::new(root.path())
        .args(["inspect", "--format", "{{json .Provenance}}"])
        .arg("localhost:5000/attest/max:1")
        .output();
    assert!(o.status.success(), "{}", text(&o));
    let shown: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(&shown["SLSA"], p);
}

#[test]
fn provenance_min_leaves_args_secrets_and_steps_out() {
    if !ready(&[Need::Root, Need::LabRegistry, Need::OciRuntime]) {
        return;
    }
    let (root, ctx) = (tempfile::tempdir().unwrap(), context());
    build(
        root.path(),
        ctx.path(),
        "localhost:5000/attest/min:1",
        &["--attest", "type=provenance,mode=min"],
    );
    let st = pushed("attest/min", "1");
    let p = &st["predicate"];
    let req = &p["buildDefinition"]["externalParameters"]["request"];
    assert_eq!(
        req["args"],
        serde_json::json!({"platform": "linux/amd64"}),
        "no build args in mode=min"
    );
    assert!(req.get("secrets").is_none(), "{req}");
    assert!(
        p["buildDefinition"]["internalParameters"]
            .get("buildConfig")
            .is_none()
    );
    assert_eq!(
        p["runDetails"]["metadata"]["buildkit_completeness"]["request"],
        false
    );
}

#[test]
fn no_flag_no_attestation_and_oci_output_carries_them() {
    if !ready(&[Need::Root, Need::LabRegistry, Need::OciRuntime]) {
        return;
    }
    let (root, ctx) = (tempfile::tempdir().unwrap(), context());
    build(root.path(), ctx.path(), "localhost:5000/attest/none:1", &[]);
    let m = registry_json(
        "/v2/attest/none/manifests/1",
        &format!("{INDEX}, {MANIFEST}"),
    );
    assert_eq!(
        m["mediaType"], MANIFEST,
        "without flags the image is a plain manifest"
    );

    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("image.tar");
    let dir = out.path().join("dir");
    let o = Hoist::new(root.path())
        .args(["build", "-q", "--provenance=true", "--build-arg", "V=x"])
        .arg("--secret")
        .arg(format!("id=tok,src={}", ctx.path().join("tok").display()))
        .arg("--output")
        .arg(format!("type=oci,dest={}", layout.display()))
        .arg("--output")
        .arg(format!("type=local,dest={}", dir.display()))
        .arg(ctx.path())
        .output();
    assert!(o.status.success(), "{}", text(&o));
    // The local output is the image's files alone, at the top (one platform).
    assert_eq!(
        std::fs::read_to_string(dir.join("made")).unwrap(),
        "built\n"
    );
    let x = tempfile::tempdir().unwrap();
    let st = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&layout)
        .arg("-C")
        .arg(x.path())
        .status()
        .unwrap();
    assert!(st.success());
    let top: Value =
        serde_json::from_slice(&std::fs::read(x.path().join("index.json")).unwrap()).unwrap();
    let d = top["manifests"][0]["digest"].as_str().unwrap();
    let blob = |d: &str| -> Value {
        serde_json::from_slice(
            &std::fs::read(
                x.path()
                    .join("blobs/sha256")
                    .join(d.trim_start_matches("sha256:")),
            )
            .unwrap(),
        )
        .unwrap()
    };
    let idx = blob(d);
    let att = &idx["manifests"][1];
    assert_eq!(
        att["annotations"]["vnd.docker.reference.type"],
        "attestation-manifest"
    );
    let am = blob(att["digest"].as_str().unwrap());
    let st = blob(am["layers"][0]["digest"].as_str().unwrap());
    assert_eq!(st["predicateType"], "https://slsa.dev/provenance/v1");
    // An unnamed image's subject is "_".
    assert_eq!(st["subject"][0]["name"], "_");
}

#[test]
fn git_context_and_add_sources_are_resolved_dependencies() {
    if !ready(&[Need::Root, Need::LabRegistry, Need::OciRuntime]) {
        return;
    }
    let body = b"downloaded payload\n".to_vec();
    let sha = hoist::oci::Digest::of(&body).hex().to_string();
    let base = common::http::http_server(std::collections::HashMap::from([(
        "/payload.txt".to_string(),
        body,
    )]));
    let df = format!("FROM localhost:5000/busybox:latest\nADD {base}/payload.txt /payload.txt\n");
    let repo = common::git::serve_repo(|w| std::fs::write(w.join("Dockerfile"), &df).unwrap());
    let root = tempfile::tempdir().unwrap();
    let o = Hoist::new(root.path())
        .args(["build", "-q", "--provenance=mode=max", "-t", "gitctx"])
        .arg(format!("{}#main", repo.url))
        .output();
    assert!(o.status.success(), "{}", text(&o));
    let o = Hoist::new(root.path())
        .args(["inspect", "--format", "{{json .Provenance}}", "gitctx"])
        .output();
    assert!(o.status.success(), "{}", text(&o));
    let p: Value = serde_json::from_slice(&o.stdout).unwrap();
    let bd = &p["SLSA"]["buildDefinition"];
    let cs = &bd["externalParameters"]["configSource"];
    assert_eq!(cs["uri"], format!("{}#main", repo.url));
    let commit = cs["digest"]["sha1"].as_str().unwrap();
    assert_eq!(commit.len(), 40, "{cs}");
    assert!(bd["externalParameters"]["request"].get("locals").is_none());
    let deps = bd["resolvedDependencies"].as_array().unwrap();
    assert!(
        deps.iter()
            .any(|d| d["uri"] == format!("{}#main", repo.url) && d["digest"]["sha1"] == commit),
        "{deps:?}"
    );
    assert!(
        deps.iter()
            .any(|d| d["uri"] == format!("{base}/payload.txt") && d["digest"]["sha256"] == sha),
        "{deps:?}"
    );
    assert_eq!(
        p["SLSA"]["runDetails"]["metadata"]["buildkit_completeness"]["resolvedDependencies"],
        true
    );
}

#[test]
fn build_signs_what_it_pushed_and_its_attestations() {
    if !ready(&[Need::Root, Need::LabRegistry, Need::OciRuntime]) {
        return;
    }
    let (root, ctx) = (tempfile::tempdir().unwrap(), context());
    let keys = tempfile::tempdir().unwrap();
    let prefix = keys.path().join("ci");
    let o = Hoist::new(root.path())
        .args(["sign", "--generate-key"])
        .arg(&prefix)
        .output();
    assert!(o.status.success(), "{}", text(&o));
    let (key, public) = (prefix.with_extension("key"), prefix.with_extension("pub"));
    let tag = "localhost:5000/attest/signed:1";
    build(
        root.path(),
        ctx.path(),
        tag,
        &[
            "--provenance=mode=max",
            "--sign",
            &format!("key={}", key.display()),
        ],
    );
    pushed("attest/signed", "1");
    // The index (what was pushed) is signed; the provenance is attested on the image manifest.
    let index_digest = {
        let bytes = common::lab::registry_get("/v2/attest/signed/manifests/1", INDEX);
        hoist::oci::Digest::of(&bytes)
    };
    let o = Hoist::new(root.path())
        .args(["verify", "--key"])
        .arg(&public)
        .arg(tag)
        .output();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&index_digest.to_string()),
        "{}",
        text(&o)
    );
    let o = Hoist::new(root.path())
        .args(["verify", "--attestations", "--key"])
        .arg(&public)
        .arg(tag)
        .output();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("https://slsa.dev/provenance/v1"),
        "{}",
        text(&o)
    );
    // Without --push there is nothing to sign: refused before any work.
    let o = Hoist::new(root.path())
        .args(["build", "-q", "--sign", &format!("key={}", key.display())])
        .arg(ctx.path())
        .output();
    assert!(!o.status.success());
    assert!(
        text(&o).contains("--sign signs what --push pushes"),
        "{}",
        text(&o)
    );
}

/// `pyspdxtools -i` accepts the document.
fn spdx_valid(doc: &Value) {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("sbom.spdx.json");
    std::fs::write(&f, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    let o = std::process::Command::new("pyspdxtools")
        .arg("-i")
        .arg(&f)
        .output()
        .expect("pyspdxtools (pip install spdx-tools)");
    assert!(o.status.success(), "pyspdxtools: {}", text(&o));
}

/// (name, version) of the deb packages of an SPDX document.
fn debs(doc: &Value) -> std::collections::BTreeSet<(String, String)> {
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["externalRefs"].as_array().is_some_and(|r| {
                r.iter().any(|x| {
                    x["referenceLocator"]
                        .as_str()
                        .is_some_and(|l| l.starts_with("pkg:deb/"))
                })
            })
        })
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["versionInfo"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Issue 16's "done when": `--provenance mode=max --sbom=true --push` of a Debian-based image
/// pushes the layout, the SBOM lists the image's Debian packages and validates, `hoist sbom`
/// of the pushed image (fresh store) prints the attached document, and `scan-stage` adds one
/// per other stage.
#[test]
fn debian_image_with_provenance_and_sbom_pushes_both() {
    if !ready(&[
        Need::Root,
        Need::LabRegistry,
        Need::LabDebian,
        Need::OciRuntime,
    ]) || !common::lab::tool("pyspdxtools", "pip install spdx-tools")
    {
        return;
    }
    let ctx = context_of(
        "FROM localhost:5000/busybox:latest AS tools\nRUN echo t > /t\n\
         FROM localhost:5000/debian:bookworm\nCOPY --from=tools /t /t\n\
         RUN dpkg-query -W -f '${Package} ${Version}\\n' > /dpkg.txt\n",
    );
    let root = tempfile::tempdir().unwrap();
    let tag = "localhost:5000/attest/deb:1";
    let o = Hoist::new(root.path())
        .args(["build", "-q", "--provenance", "mode=max", "--sbom=true"])
        .args(["--attest", "type=sbom,scan-stage=true", "-t", tag, "--push"])
        .arg(ctx.path())
        .output();
    assert!(o.status.success(), "{}", text(&o));
    let index = registry_json("/v2/attest/deb/manifests/1", INDEX);
    let m = index["manifests"].as_array().unwrap();
    assert_eq!(m.len(), 2, "{index}");
    let image = m[0]["digest"].as_str().unwrap();
    let am = registry_json(
        &format!(
            "/v2/attest/deb/manifests/{}",
            m[1]["digest"].as_str().unwrap()
        ),
        MANIFEST,
    );
    let types: Vec<&str> = am["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["annotations"]["in-toto.io/predicate-type"]
                .as_str()
                .unwrap()
        })
        .collect();
    // Provenance, the image's SBOM, then the tools stage's (scan-stage).
    assert_eq!(
        types,
        [
            "https://slsa.dev/provenance/v1",
            "https://spdx.dev/Document",
            "https://spdx.dev/Document"
        ]
    );
    let statement = |i: usize| blob_json("attest/deb", &am["layers"][i]["digest"]);
    let sbom = statement(1);
    assert_eq!(
        sbom["subject"][0]["digest"]["sha256"],
        image.trim_start_matches("sha256:")
    );
    let doc = &sbom["predicate"];
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    spdx_valid(doc);
    // Exactly what dpkg-query listed inside the image (written by its last RUN).
    let listed = Hoist::new(root.path())
        .args(["run", tag, "cat", "/dpkg.txt"])
        .output();
    assert!(listed.status.success(), "{}", text(&listed));
    let want: std::collections::BTreeSet<(String, String)> =
        String::from_utf8_lossy(&listed.stdout)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
    assert!(want.len() > 50, "{want:?}");
    assert_eq!(debs(doc), want);
    // The stage's SBOM is about the busybox stage: no Debian packages.
    assert!(debs(&statement(2)["predicate"]).is_empty());

    // A fresh store: `hoist sbom` prints the attached document (same bytes as pushed).
    let fresh = tempfile::tempdir().unwrap();
    let o = Hoist::new(fresh.path()).args(["sbom", tag]).output();
    assert!(o.status.success(), "{}", text(&o));
    let printed: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(&printed, doc);
    // And the build's store answers `inspect --format` with it.
    let o = Hoist::new(root.path())
        .args(["inspect", "--format", "{{json .SBOM}}", tag])
        .output();
    assert!(o.status.success(), "{}", text(&o));
    let shown: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(&shown["SPDX"], doc);
    assert_eq!(shown["AdditionalSPDXs"].as_array().unwrap().len(), 1);
}

/// With `--reproducible` an SBOM's time is the epoch, so the whole index (image, SBOM
/// statement, attestation manifest) is one digest in two fresh stores; a provenance, whose
/// times and invocation id are the build's own, makes the index differ while the image
/// manifest stays the same.
#[test]
fn reproducible_sbom_keeps_the_index_digest_provenance_does_not() {
    if !ready(&[Need::Root, Need::LabRegistry, Need::OciRuntime]) {
        return;
    }
    let ctx = context_of("FROM localhost:5000/busybox:latest\nRUN echo made > /made\n");
    let build = |flags: &[&str]| -> (String, String) {
        let root = tempfile::tempdir().unwrap();
        let o = Hoist::new(root.path())
            .epoch("1600000000")
            .args(["build", "-q", "--reproducible", "-t", "r"])
            .args(flags)
            .arg(ctx.path())
            .output();
        assert!(o.status.success(), "{}", text(&o));
        let o = Hoist::new(root.path()).args(["inspect", "r"]).output();
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        (
            v[0]["Digest"].as_str().unwrap().to_string(),
            v[0]["Index"]["manifests"][0]["digest"]
                .as_str()
                .unwrap()
                .to_string(),
        )
    };
    let (i1, m1) = build(&["--sbom=true"]);
    let (i2, m2) = build(&["--sbom=true"]);
    assert_eq!((&i1, &m1), (&i2, &m2));
    let (p1, pm1) = build(&["--provenance=true"]);
    std::thread::sleep(std::time::Duration::from_millis(10));
    let (p2, pm2) = build(&["--provenance=true"]);
    assert_ne!(p1, p2, "a provenance's times differ per build");
    assert_eq!(pm1, pm2, "the image manifest itself stays reproducible");
    assert_eq!(pm1, m1);
}

/// `scan-context=true` adds an SBOM of the build context (here its npm lock file), which the
/// image's own SBOM does not list (the lock file is not copied in).
#[test]
fn scan_context_describes_the_context() {
    if !ready(&[Need::Root, Need::LabRegistry, Need::OciRuntime]) {
        return;
    }
    let ctx = context_of("FROM localhost:5000/busybox:latest\nRUN echo x > /x\n");
    std::fs::write(
        ctx.path().join("package-lock.json"),
        r#"{"name":"app","version":"1.0.0","lockfileVersion":3,"packages":{"":{"name":"app","version":"1.0.0"},"node_modules/left-pad":{"version":"1.3.0","license":"WTFPL"}}}"#,
    )
    .unwrap();
    let root = tempfile::tempdir().unwrap();
    let o = Hoist::new(root.path())
        .args([
            "build",
            "-q",
            "--attest",
            "type=sbom,scan-context=true",
            "-t",
            "ctxsbom",
        ])
        .arg(ctx.path())
        .output();
    assert!(o.status.success(), "{}", text(&o));
    let o = Hoist::new(root.path())
        .args(["inspect", "--format", "{{json .SBOM}}", "ctxsbom"])
        .output();
    assert!(o.status.success(), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let names = |doc: &Value| -> Vec<String> {
        doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(!names(&v["SPDX"]).contains(&"left-pad".to_string()));
    let context = &v["AdditionalSPDXs"][0];
    assert!(
        context["name"].as_str().unwrap().ends_with("context"),
        "{context}"
    );
    assert!(
        names(context).contains(&"left-pad".to_string()),
        "{context}"
    );
}

/// Several platforms: each image gets its own attestation manifest, listed after all the
/// images, each about its own manifest and naming its own platform's base (no RUN, so no
/// emulator is needed).
#[test]
fn each_platform_gets_its_own_attestations() {
    if !ready(&[Need::Root, Need::LabRegistry, Need::LabMulti]) {
        return;
    }
    let ctx = context_of("FROM localhost:5000/multi/busybox:latest\nCOPY f /f\n");
    std::fs::write(ctx.path().join("f"), "x").unwrap();
    let root = tempfile::tempdir().unwrap();
    let o = Hoist::new(root.path())
        .args(["build", "-q", "--platform", "linux/amd64,linux/arm64"])
        .args(["--provenance=true", "--sbom=true"])
        .args(["-t", "localhost:5000/attest/multi:1", "--push"])
        .arg(ctx.path())
        .output();
    assert!(o.status.success(), "{}", text(&o));
    let index = registry_json("/v2/attest/multi/manifests/1", INDEX);
    let m = index["manifests"].as_array().unwrap();
    assert_eq!(m.len(), 4, "{index}");
    for (i, arch) in [(0, "amd64"), (1, "arm64")] {
        assert_eq!(m[i]["platform"]["architecture"], arch);
        let att = &m[i + 2];
        assert_eq!(att["platform"]["architecture"], "unknown");
        assert_eq!(
            att["annotations"]["vnd.docker.reference.digest"],
            m[i]["digest"]
        );
        let am = registry_json(
            &format!(
                "/v2/attest/multi/manifests/{}",
                att["digest"].as_str().unwrap()
            ),
            MANIFEST,
        );
        assert_eq!(am["layers"].as_array().unwrap().len(), 2, "{am}");
        let st = blob_json("attest/multi", &am["layers"][0]["digest"]);
        let want = format!("pkg:docker/localhost:5000/attest/multi@1?platform=linux%2F{arch}");
        assert_eq!(st["subject"][0]["name"], want);
        let dep = &st["predicate"]["buildDefinition"]["resolvedDependencies"][0];
        assert!(
            dep["uri"]
                .as_str()
                .unwrap()
                .ends_with(&format!("platform=linux%2F{arch}")),
            "{dep}"
        );
    }
}

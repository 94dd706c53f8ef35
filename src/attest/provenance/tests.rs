use super::*;
use crate::engine::trace::{ImageRecord, SourceRecord, StageRecord, StepRecord};
use crate::oci::{Digest, media};
use std::sync::LazyLock;

static AMD64: LazyLock<Platform> = LazyLock::new(|| Platform::parse("linux/amd64").unwrap());

fn desc(n: &[u8]) -> Descriptor {
    Descriptor::new(media::OCI_LAYER_GZIP, Digest::of(n), 10)
}

fn trace() -> Trace {
    Trace {
        stages: vec![
            StageRecord {
                index: 1,
                name: None,
                line: 4,
                base: "stage 0".into(),
                layers: vec![desc(b"base"), desc(b"b1"), desc(b"copy")],
            },
            StageRecord {
                index: 0,
                name: Some("build".into()),
                line: 1,
                base: "busybox".into(),
                layers: vec![desc(b"base"), desc(b"b1")],
            },
        ],
        steps: vec![
            StepRecord {
                stage: 0,
                text: "RUN --mount=type=secret,id=tok make".into(),
                lines: (2, 3),
                layer: Some(desc(b"b1")),
                from_stages: vec![],
            },
            StepRecord {
                stage: 1,
                text: "COPY --from=build a /a".into(),
                lines: (5, 5),
                layer: Some(desc(b"copy")),
                from_stages: vec![0],
            },
            StepRecord {
                stage: 1,
                text: "ENV X=1".into(),
                lines: (6, 6),
                layer: None,
                from_stages: vec![],
            },
        ],
        images: vec![ImageRecord {
            reference: "docker.io/library/busybox:latest".into(),
            platform: "linux/amd64".into(),
            digest: Digest::of(b"busybox"),
        }],
        sources: vec![SourceRecord {
            uri: "https://example.com/a.tar".into(),
            digest: ("sha256".into(), "ab".repeat(32)),
        }],
    }
}

fn input<'a>(
    req: &'a ProvenanceRequest,
    t: &'a Trace,
    args: &'a BTreeMap<String, String>,
    context: ContextSource,
) -> Input<'a> {
    Input {
        request: req,
        dockerfile_name: "Dockerfile",
        dockerfile_text: "FROM busybox AS build\nRUN make\n",
        context,
        build_args: args,
        labels: args,
        target: None,
        platform: &AMD64,
        no_cache: false,
        secret_ids: vec!["tok".into()],
        ssh_ids: vec![],
        trace: t,
        builder_platform: Platform::parse("linux/amd64").unwrap(),
        invocation_id: "inv",
        started: "2026-12-02T00:00:00Z",
        finished: "2026-12-02T00:00:01Z",
    }
}

#[test]
fn min_mode_keeps_materials_and_times_but_no_args_secrets_or_steps() {
    let req = ProvenanceRequest {
        mode: ProvenanceMode::Min,
        builder_id: None,
        reproducible: false,
    };
    let t = trace();
    let args = BTreeMap::from([("TOKEN".to_string(), "hunter2".to_string())]);
    let p = predicate(&input(&req, &t, &args, ContextSource::Local));
    let text = p.to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!text.contains("\"secrets\""), "{text}");
    // The platform is no build arg: min keeps it.
    assert_eq!(
        p["buildDefinition"]["externalParameters"]["request"]["args"],
        json!({"platform": "linux/amd64"})
    );
    let bd = &p["buildDefinition"];
    assert_eq!(bd["buildType"], BUILD_TYPE);
    assert_eq!(
        bd["externalParameters"]["request"]["frontend"],
        "dockerfile.v0"
    );
    assert_eq!(
        bd["externalParameters"]["configSource"]["path"],
        "Dockerfile"
    );
    assert!(bd["internalParameters"].get("buildConfig").is_none());
    assert_eq!(
        bd["resolvedDependencies"][0]["uri"],
        "pkg:docker/busybox@latest?platform=linux%2Famd64"
    );
    assert_eq!(
        bd["resolvedDependencies"][0]["digest"]["sha256"],
        Digest::of(b"busybox").hex()
    );
    let md = &p["runDetails"]["metadata"];
    assert_eq!(md["invocationId"], "inv");
    assert_eq!(md["buildkit_completeness"]["request"], false);
    assert_eq!(md["buildkit_completeness"]["resolvedDependencies"], false);
    assert_eq!(md["buildkit_metadata"], json!({}));
}

#[test]
fn max_mode_lists_args_secret_ids_steps_sources_and_layers() {
    let req = ProvenanceRequest {
        mode: ProvenanceMode::Max,
        builder_id: Some("https://ci.example/1".into()),
        reproducible: true,
    };
    let t = trace();
    let args = BTreeMap::from([("V".to_string(), "1".to_string())]);
    let p = predicate(&input(
        &req,
        &t,
        &args,
        ContextSource::Git {
            url: "https://git.example/r.git#main".into(),
            commit: "a".repeat(40),
        },
    ));
    let ext = &p["buildDefinition"]["externalParameters"];
    assert_eq!(ext["request"]["args"]["build-arg:V"], "1");
    assert_eq!(ext["request"]["args"]["label:V"], "1");
    assert_eq!(ext["request"]["secrets"], json!([{"id": "tok"}]));
    assert!(ext["request"].get("locals").is_none());
    assert_eq!(ext["configSource"]["uri"], "https://git.example/r.git#main");
    assert_eq!(ext["configSource"]["digest"]["sha1"], "a".repeat(40));
    // The base image, the git context, then ADD's http source.
    let deps = p["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    assert_eq!(deps.len(), 3);
    assert_eq!(deps[1]["uri"], "https://git.example/r.git#main");
    assert_eq!(deps[1]["digest"]["sha1"], "a".repeat(40));
    assert_eq!(deps[2]["digest"]["sha256"], "ab".repeat(32));
    let steps = p["buildDefinition"]["internalParameters"]["buildConfig"]["llbDefinition"]
        .as_array()
        .unwrap();
    // Stage 0: start + RUN; stage 1: start (from stage 0's last step) + COPY + ENV.
    assert_eq!(steps.len(), 5);
    assert_eq!(
        steps[0]["op"]["source"]["identifier"],
        format!(
            "docker-image://docker.io/library/busybox:latest@{}",
            Digest::of(b"busybox")
        )
    );
    assert_eq!(steps[1]["inputs"], json!(["step0:0"]));
    assert_eq!(steps[2]["inputs"], json!(["step1:0"]));
    assert_eq!(steps[3]["op"]["instruction"], "COPY --from=build a /a");
    assert_eq!(steps[3]["inputs"], json!(["step2:0", "step1:0"]));
    let md = &p["runDetails"]["metadata"];
    assert_eq!(p["runDetails"]["builder"]["id"], "https://ci.example/1");
    assert_eq!(md["buildkit_reproducible"], true);
    assert_eq!(md["buildkit_completeness"]["request"], true);
    assert_eq!(md["buildkit_completeness"]["resolvedDependencies"], true);
    let bk = &md["buildkit_metadata"];
    assert_eq!(
        bk["source"]["locations"]["step1"]["locations"][0]["ranges"][0],
        json!({"start": {"line": 2}, "end": {"line": 3}})
    );
    assert_eq!(bk["source"]["infos"][0]["language"], "Dockerfile");
    // The COPY's chain is the stage's three layers; ENV has none.
    assert_eq!(bk["layers"]["step3:0"][0].as_array().unwrap().len(), 3);
    assert!(bk["layers"].get("step4:0").is_none());
}

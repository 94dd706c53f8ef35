//! Engine tests with a recording fake sandbox: config threading for every instruction, ARG/ENV
//! scoping, SHELL, history, cache hits and misses, concurrency of independent stages, pruned
//! stages, and errors that carry the Dockerfile line. Stages start FROM scratch so no registry
//! is needed; COPY and WORKDIR over layers mount read-only overlay views (root).

#![allow(clippy::print_stderr)] // skip notes name what is missing

mod common;

use hoist::engine::{self, BuildEvent, BuildOutcome, BuildRequest, EngineError, Reporter};
use hoist::executor::{ExecutorError, Isolation, Network, OciRuntime, RunSpec, View};
use hoist::graph::GraphOptions;
use hoist::oci::Platform;
use hoist::parser::dockerignore::Matcher;
use hoist::store::Store;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Records every RunSpec; RUN `exit N` fails with N, `sleep N` sleeps N×100 ms, anything else
/// writes `/ran-<n>` into the upper dir (so the step makes a layer).
#[derive(Default)]
struct FakeSandbox {
    runs: Mutex<Vec<RunSpec>>,
    /// (start, end) of every run.
    spans: Mutex<Vec<(Instant, Instant)>>,
}

/// Views and pins are the real backend's (mounts need root): only the run is faked.
impl Isolation for FakeSandbox {
    fn view(&self, lowers: &[std::path::PathBuf]) -> Result<View, ExecutorError> {
        OciRuntime::detect()?.view(lowers)
    }

    fn pin(&self, source: &Path, is_dir: bool, readonly: bool) -> Result<View, ExecutorError> {
        OciRuntime::detect()?.pin(source, is_dir, readonly)
    }

    fn run(&self, spec: &RunSpec, out: &mut dyn FnMut(&[u8])) -> Result<i32, ExecutorError> {
        let n = {
            let mut r = self.runs.lock().unwrap();
            r.push(spec.clone());
            r.len()
        };
        let start = Instant::now();
        let script = spec.argv.last().cloned().unwrap_or_default();
        out(format!("running {script}\n").as_bytes());
        if let Some(code) = script.strip_prefix("exit ") {
            out(b"something went wrong\n");
            return Ok(code.trim().parse().unwrap_or(1));
        }
        if let Some(t) = script.strip_prefix("sleep ") {
            std::thread::sleep(Duration::from_millis(
                t.trim().parse::<u64>().unwrap() * 100,
            ));
        }
        self.spans.lock().unwrap().push((start, Instant::now()));
        if let Some(upper) = &spec.upper {
            std::fs::write(upper.join(format!("ran-{n}")), script.as_bytes()).unwrap();
        }
        Ok(0)
    }
}

#[derive(Default)]
struct Events(Mutex<Vec<BuildEvent>>);

impl Reporter for Events {
    fn event(&self, e: BuildEvent) {
        self.0.lock().unwrap().push(e);
    }
}

impl Events {
    fn started(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                BuildEvent::Started { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect()
    }
    fn cached(&self) -> usize {
        let ev = self.0.lock().unwrap();
        ev.iter()
            .filter(|e| matches!(e, BuildEvent::Cached { .. }))
            .count()
    }
}

struct Lab {
    root: tempfile::TempDir,
    ctx: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        Lab {
            root: tempfile::tempdir().unwrap(),
            ctx: tempfile::tempdir().unwrap(),
        }
    }

    fn file(&self, name: &str, body: &str) {
        let p = self.ctx.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }

    fn request(
        &self,
        dockerfile: &str,
        args: &[(&str, &str)],
        target: Option<&str>,
    ) -> BuildRequest {
        let df = hoist::parser::parse(dockerfile).unwrap();
        let graph_options = GraphOptions {
            build_args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            target: target.map(String::from),
            platform: None,
            ..Default::default()
        };
        let graph = hoist::graph::build(&df, &graph_options).unwrap();
        BuildRequest {
            dockerfile_name: "Dockerfile".into(),
            dockerfile_text: dockerfile.into(),
            graph,
            graph_options,
            context: self.ctx.path().to_path_buf(),
            ignore: Matcher::parse("").unwrap(),
            contexts: Default::default(),
            labels: BTreeMap::new(),
            no_cache: false,
            no_cache_filter: vec![],
            squash: false,
            pull: false,
            network: Network::Host,
            entitlements: Default::default(),
            sandbox: Default::default(),
            secrets: BTreeMap::new(),
            ssh: BTreeMap::new(),
            compression: Default::default(),
            source_date_epoch: None,
            platform: Platform::host(),
            stream_push: None,
            shared: Default::default(),
            explain_only: false,
        }
    }

    fn build_req(
        &self,
        req: &BuildRequest,
        sb: &FakeSandbox,
        ev: &Events,
    ) -> engine::Result<BuildOutcome> {
        let store = Store::open(self.root.path()).unwrap();
        engine::build(req, &store, None, sb, ev)
    }

    fn build(&self, dockerfile: &str, sb: &FakeSandbox) -> BuildOutcome {
        let ev = Events::default();
        self.build_req(&self.request(dockerfile, &[], None), sb, &ev)
            .unwrap()
    }
}

/// Root, for overlay views; skips (the caller says why) or fails as `common::lab` says.
fn is_root() -> bool {
    common::lab::ready(&[common::lab::Need::Root])
}

#[test]
fn config_follows_every_instruction() {
    let lab = Lab::new();
    let sb = FakeSandbox::default();
    let out = lab.build(
        r#"FROM scratch
MAINTAINER someone <s@example.com>
ENV PATH=/opt/bin:$PATH A=1
ENV B=${A}2 A=3
LABEL "com.example.x"="y z" other=$B
USER 1000:1000
EXPOSE 8080 53/udp
VOLUME ["/data", "/cache"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=1m30s --retries=2 CMD ["/check"]
SHELL ["/bin/bash", "-eu", "-c"]
ONBUILD RUN echo triggered
CMD echo hi
ENTRYPOINT ["/entry"]
"#,
        &sb,
    );
    let c = &out.config;
    let rc = &c.config;
    assert_eq!(c.author.as_deref(), Some("someone <s@example.com>"));
    assert_eq!(
        rc.env.as_deref().unwrap(),
        &[
            "PATH=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "A=3",
            "B=12"
        ]
    );
    let labels = rc.labels.as_ref().unwrap();
    assert_eq!(labels["com.example.x"], "y z");
    assert_eq!(labels["other"], "12");
    assert_eq!(rc.user.as_deref(), Some("1000:1000"));
    let ports: Vec<&String> = rc.exposed_ports.as_ref().unwrap().keys().collect();
    assert_eq!(ports, ["53/udp", "8080/tcp"]);
    let vols: Vec<&String> = rc.volumes.as_ref().unwrap().keys().collect();
    assert_eq!(vols, ["/cache", "/data"]);
    assert_eq!(rc.stop_signal.as_deref(), Some("SIGTERM"));
    let hc = rc.healthcheck.as_ref().unwrap();
    assert_eq!(hc.test.as_deref().unwrap(), &["CMD", "/check"]);
    assert_eq!(hc.interval, Some(30_000_000_000));
    assert_eq!(hc.timeout, Some(90_000_000_000));
    assert_eq!(hc.retries, Some(2));
    assert_eq!(rc.shell.as_deref().unwrap(), &["/bin/bash", "-eu", "-c"]);
    assert_eq!(rc.on_build.as_deref().unwrap(), &["RUN echo triggered"]);
    // CMD set in this stage survives the ENTRYPOINT after it; shell form uses SHELL.
    assert_eq!(
        rc.cmd.as_deref().unwrap(),
        &["/bin/bash", "-eu", "-c", "echo hi"]
    );
    assert_eq!(rc.entrypoint.as_deref().unwrap(), &["/entry"]);
    // Config-only steps: history entries with empty_layer, no layers, nothing run.
    assert!(out.manifest.layers.is_empty());
    assert!(sb.runs.lock().unwrap().is_empty());
    let by: Vec<&str> = c
        .history
        .iter()
        .map(|h| h.created_by.as_deref().unwrap())
        .collect();
    assert!(c.history.iter().all(|h| h.empty_layer), "{by:?}");
    assert!(
        by.contains(&"ENV A=3 B=12") || by.contains(&"ENV B=12 A=3"),
        "{by:?}"
    );
    // created_by exactly as BuildKit renders it (Go %v / %q); ONBUILD has no entry.
    assert_eq!(
        by,
        [
            "MAINTAINER someone <s@example.com>",
            "ENV PATH=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin A=1",
            "ENV B=12 A=3",
            "LABEL com.example.x=y z other=12",
            "USER 1000:1000",
            "EXPOSE [8080/tcp 53/udp]",
            "VOLUME [/data /cache]",
            "STOPSIGNAL SIGTERM",
            r#"HEALTHCHECK &{["CMD" "/check"] "30s" "1m30s" "0s" "0s" '\x02'}"#,
            "SHELL [/bin/bash -eu -c]",
            r#"CMD ["/bin/bash" "-eu" "-c" "echo hi"]"#,
            r#"ENTRYPOINT ["/entry"]"#,
        ]
    );
}

#[test]
fn entrypoint_resets_an_inherited_cmd() {
    let lab = Lab::new();
    let sb = FakeSandbox::default();
    let out = lab.build(
        "FROM scratch AS base\nCMD [\"/base-cmd\"]\nFROM base\nENTRYPOINT [\"/e\"]\n",
        &sb,
    );
    assert_eq!(out.config.config.entrypoint.as_deref().unwrap(), &["/e"]);
    assert_eq!(out.config.config.cmd, None);
}

/// `# escape=`` ` reached the graph but the engine expanded ENV, LABEL, … with a backslash.
#[test]
fn the_escape_directive_reaches_the_engine_expansions() {
    let lab = Lab::new();
    let sb = FakeSandbox::default();
    let out = lab.build(
        "# escape=`\nFROM scratch\nENV A=1\nENV B=`$A C=C:\\dir\nLABEL l=`$A\n",
        &sb,
    );
    let c = &out.config.config;
    assert_eq!(c.env_get("B"), Some("$A"));
    assert_eq!(c.env_get("C"), Some("C:\\dir"));
    assert_eq!(
        c.labels
            .as_ref()
            .and_then(|l| l.get("l"))
            .map(String::as_str),
        Some("$A")
    );
    // The default escape is unchanged: a backslash escapes, a backtick is a letter.
    let out = lab.build("FROM scratch\nENV A=1\nENV B=`$A C=C:\\dir\n", &sb);
    let c = &out.config.config;
    assert_eq!(c.env_get("B"), Some("`1"));
    assert_eq!(c.env_get("C"), Some("C:dir"));
}

#[test]
fn args_reach_run_but_never_the_image() {
    if !is_root() {
        eprintln!("skipped: RUN layers need root for overlay views");
        return;
    }
    let lab = Lab::new();
    let sb = FakeSandbox::default();
    let df = "ARG GLOBAL=g\nFROM scratch\nARG GLOBAL\nARG V=default\nARG UNSET\nENV SHADOW=env\nARG SHADOW=arg\nRUN echo $V\nRUN [\"/x\", \"$V\"]\n";
    let ev = Events::default();
    let req = lab.request(df, &[("V", "from-cli")], None);
    let out = lab.build_req(&req, &sb, &ev).unwrap();
    let runs = sb.runs.lock().unwrap();
    let env = &runs[0].env;
    assert!(env.contains(&"V=from-cli".to_string()), "{env:?}");
    assert!(env.contains(&"GLOBAL=g".to_string()), "{env:?}");
    // An ARG with a value declared after an ENV of its name wins in RUN (BuildKit).
    assert!(env.contains(&"SHADOW=arg".to_string()), "{env:?}");
    assert!(
        !env.iter()
            .any(|e| e == "SHADOW=env" || e.starts_with("UNSET")),
        "{env:?}"
    );
    // Shell form: the shell expands; exec form: no expansion at all.
    assert_eq!(runs[0].argv, ["/bin/sh", "-c", "echo $V"]);
    assert_eq!(runs[1].argv, ["/x", "$V"]);
    let image_env = out.config.config.env.clone().unwrap();
    assert!(
        !image_env
            .iter()
            .any(|e| e.starts_with("V=") || e.starts_with("GLOBAL="))
    );
    let h: Vec<&str> = out
        .config
        .history
        .iter()
        .filter_map(|h| h.created_by.as_deref())
        .collect();
    assert!(h.contains(&"ARG GLOBAL=g"), "{h:?}");
    assert!(h.contains(&"ARG V=from-cli"), "{h:?}");
    assert!(h.contains(&"ARG UNSET"), "{h:?}");
    assert!(
        h.contains(&"RUN |4 GLOBAL=g V=from-cli UNSET= SHADOW=arg /bin/sh -c echo $V # buildkit"),
        "{h:?}"
    );
    assert!(
        h.contains(&"RUN |4 GLOBAL=g V=from-cli UNSET= SHADOW=arg /x $V # buildkit"),
        "{h:?}"
    );
    assert_eq!(out.manifest.layers.len(), 2);
}

/// BuildKit's state env: a stage built `FROM <stage>` starts with that stage's ARGs, and
/// of an ENV and an ARG of the same name the later one wins, in RUN and in expansion.
#[test]
fn args_are_inherited_through_from_stage_and_the_later_of_env_and_arg_wins() {
    if !is_root() {
        eprintln!("skipped: RUN layers need root for overlay views");
        return;
    }
    let lab = Lab::new();
    let sb = FakeSandbox::default();
    let df = "ARG REL=1.2\nFROM scratch AS base\nARG REL\nARG FLAVOR=slim-$REL\n\
              ENV MODE=env\nARG MODE=arg\nENV LABELLED=$MODE\nRUN one\n\
              FROM base AS child\nENV OUT=$FLAVOR\nARG MODE\nRUN two\nENV MODE=again\nRUN three\n";
    let out = lab.build(df, &sb);
    let runs = sb.runs.lock().unwrap();
    let has = |i: usize, e: &str| runs[i].env.iter().any(|x| x == e);
    assert!(
        has(0, "MODE=arg") && !has(0, "MODE=env"),
        "{:?}",
        runs[0].env
    );
    // The child stage sees the base stage's ARG values.
    assert!(
        has(1, "REL=1.2") && has(1, "FLAVOR=slim-1.2"),
        "{:?}",
        runs[1].env
    );
    // But an inherited ARG stays below the image's ENV of its name, even declared again
    // without a value (BuildKit: "env"; conformance fixture arg-env-precedence-across-stages).
    assert!(
        has(1, "MODE=env") && !has(1, "MODE=arg"),
        "{:?}",
        runs[1].env
    );
    // A later ENV wins again.
    assert!(
        has(2, "MODE=again") && !has(2, "MODE=arg"),
        "{:?}",
        runs[2].env
    );
    let c = &out.config.config;
    assert_eq!(c.env_get("LABELLED"), Some("arg"));
    assert_eq!(c.env_get("OUT"), Some("slim-1.2"));
    // ARG values never reach the image config.
    assert!(c.env_get("FLAVOR").is_none() && c.env_get("REL").is_none());
}

#[test]
fn cache_hits_skip_work_and_inputs_invalidate() {
    if !is_root() {
        eprintln!("skipped: needs root for overlay views");
        return;
    }
    let lab = Lab::new();
    lab.file("app.txt", "v1");
    lab.file("unrelated.txt", "u1");
    let df = "FROM scratch\nARG V\nCOPY app.txt /app.txt\nRUN build $V\n";
    let sb = FakeSandbox::default();
    let ev = Events::default();
    let first = lab
        .build_req(&lab.request(df, &[("V", "1")], None), &sb, &ev)
        .unwrap();
    assert_eq!(sb.runs.lock().unwrap().len(), 1);
    assert_eq!(ev.cached(), 0);

    // Same inputs, an unrelated file changed: everything cached, same image.
    lab.file("unrelated.txt", "u2");
    let ev = Events::default();
    let again = lab
        .build_req(&lab.request(df, &[("V", "1")], None), &sb, &ev)
        .unwrap();
    assert_eq!(sb.runs.lock().unwrap().len(), 1, "RUN must not run again");
    assert_eq!(ev.cached(), 2);
    assert_eq!(again.manifest_digest, first.manifest_digest);

    // A build arg the RUN sees changes: COPY cached, RUN runs.
    let ev = Events::default();
    lab.build_req(&lab.request(df, &[("V", "2")], None), &sb, &ev)
        .unwrap();
    assert_eq!(sb.runs.lock().unwrap().len(), 2);
    assert_eq!(ev.cached(), 1);

    // Config-only steps before them do not invalidate layer steps (as in BuildKit).
    let df2 = "FROM scratch\nLABEL v=2\nARG V\nCOPY app.txt /app.txt\nRUN build $V\n";
    let ev = Events::default();
    lab.build_req(&lab.request(df2, &[("V", "2")], None), &sb, &ev)
        .unwrap();
    assert_eq!(sb.runs.lock().unwrap().len(), 2);
    assert_eq!(ev.cached(), 2);

    // The copied file changes: both run.
    lab.file("app.txt", "v2");
    let ev = Events::default();
    lab.build_req(&lab.request(df, &[("V", "2")], None), &sb, &ev)
        .unwrap();
    assert_eq!(sb.runs.lock().unwrap().len(), 3);
    assert_eq!(ev.cached(), 0);

    // --no-cache runs everything even when entries exist.
    let ev = Events::default();
    let mut req = lab.request(df, &[("V", "2")], None);
    req.no_cache = true;
    lab.build_req(&req, &sb, &ev).unwrap();
    assert_eq!(sb.runs.lock().unwrap().len(), 4);
    assert_eq!(ev.cached(), 0);

    // An entry whose layer blob is gone is a miss, not an error.
    let store = Store::open(lab.root.path()).unwrap();
    for l in &first.manifest.layers {
        let p = store.blob_path(&l.digest);
        let _ = std::fs::remove_file(p);
    }
    let ev = Events::default();
    lab.build_req(&lab.request(df, &[("V", "1")], None), &sb, &ev)
        .unwrap();
    assert_eq!(sb.runs.lock().unwrap().len(), 5);
}

#[test]
fn independent_stages_run_concurrently() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let lab = Lab::new();
    let sb = FakeSandbox::default();
    // Each RUN sleeps 1 s in the fake. Concurrency is shown by overlap, not by a time limit:
    // every run starts before any run ends. The RUNs differ: identical steps (equal keys) are
    // computed once per build, as BuildKit merges identical vertices.
    let df = "FROM scratch AS a\nRUN sleep 10\nFROM scratch AS b\nRUN sleep 11\nFROM scratch AS c\nRUN sleep 12\nFROM scratch\nCOPY --from=a / /a\nCOPY --from=b / /b\nCOPY --from=c / /c\n";
    let ev = Events::default();
    lab.build_req(&lab.request(df, &[], None), &sb, &ev)
        .unwrap();
    assert_eq!(sb.runs.lock().unwrap().len(), 3);
    let spans = sb.spans.lock().unwrap().clone();
    let last_start = spans.iter().map(|s| s.0).max().unwrap();
    let first_end = spans.iter().map(|s| s.1).min().unwrap();
    assert!(
        last_start < first_end,
        "the three stages did not overlap: {spans:?}"
    );
}

#[test]
fn stages_the_target_does_not_need_never_run() {
    let lab = Lab::new();
    let sb = FakeSandbox::default();
    let df = "FROM scratch AS unused\nRUN exit 1\nFROM scratch AS wanted\nENV X=1\nFROM scratch AS final\nENV Y=2\n";
    let ev = Events::default();
    let out = lab
        .build_req(&lab.request(df, &[], Some("wanted")), &sb, &ev)
        .unwrap();
    assert!(sb.runs.lock().unwrap().is_empty());
    assert_eq!(out.config.config.env_get("X"), Some("1"));
    assert_eq!(out.config.config.env_get("Y"), None);
}

#[test]
fn a_failing_run_names_line_command_and_exit_code() {
    let lab = Lab::new();
    let sb = FakeSandbox::default();
    let df = "FROM scratch\nENV A=1\n\nRUN exit 3\n";
    let ev = Events::default();
    let err = lab
        .build_req(&lab.request(df, &[], None), &sb, &ev)
        .unwrap_err();
    let EngineError::Step {
        location,
        error: cause,
        ..
    } = &err
    else {
        panic!("not a step error: {err}");
    };
    assert_eq!(location, "Dockerfile:4");
    match cause.as_ref() {
        EngineError::RunFailed {
            command,
            code,
            tail,
        } => {
            assert_eq!(command, "/bin/sh -c exit 3");
            assert_eq!(*code, 3);
            assert!(tail.contains("something went wrong"), "{tail}");
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(
        cause.to_string(),
        "process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3"
    );
    let failed =
        ev.0.lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, BuildEvent::Failed { .. }));
    assert!(failed);
}

#[test]
fn source_date_epoch_sets_created() {
    let lab = Lab::new();
    let sb = FakeSandbox::default();
    let mut req = lab.request("FROM scratch\nENV A=1\n", &[], None);
    req.source_date_epoch = Some(1_700_000_000);
    let ev = Events::default();
    let out = lab.build_req(&req, &sb, &ev).unwrap();
    assert_eq!(out.config.created.as_deref(), Some("2023-11-14T22:13:20Z"));
}

#[test]
fn step_names_like_buildkit() {
    let lab = Lab::new();
    let sb = FakeSandbox::default();
    let _ = Path::new("");
    let ev = Events::default();
    // One stage: no stage name; ENV makes no vertex, so the RUN is step 1 of 1.
    let df = "FROM scratch AS build\nENV A=1\nrun exit 0\n";
    let _ = lab.build_req(&lab.request(df, &[], None), &sb, &ev);
    let started = ev.started();
    assert!(
        started.iter().any(|s| s == "[1/1] RUN exit 0"),
        "{started:?}"
    );

    // Several stages: named or `stage-N`; the index is padded to the total's width.
    let ev = Events::default();
    let runs: String = (0..10).map(|i| format!("RUN echo {i}\n")).collect();
    let df = format!("FROM scratch AS a\nRUN echo a\nFROM scratch\nWORKDIR /w\n{runs}");
    lab.build_req(&lab.request(&df, &[], None), &sb, &ev)
        .unwrap();
    let started = ev.started();
    for want in [
        "[stage-1  1/11] WORKDIR /w",
        "[stage-1  2/11] RUN echo 0",
        "[stage-1 11/11] RUN echo 9",
    ] {
        assert!(started.iter().any(|s| s == want), "{want}: {started:?}");
    }
}

#[test]
fn onbuild_triggers_run_first_in_the_child_and_are_not_inherited() {
    let lab = Lab::new();
    let sb = FakeSandbox::default();
    let ev = Events::default();
    let df = "FROM scratch AS base\nONBUILD RUN echo trig\nFROM base\nRUN echo main\n";
    let out = lab
        .build_req(&lab.request(df, &[], None), &sb, &ev)
        .unwrap();
    let scripts: Vec<String> = sb
        .runs
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.argv.last().cloned().unwrap_or_default())
        .collect();
    assert_eq!(scripts, ["echo trig", "echo main"]);
    let started = ev.started();
    for want in [
        "[stage-1 1/2] ONBUILD RUN echo trig",
        "[stage-1 2/2] RUN echo main",
    ] {
        assert!(started.iter().any(|s| s == want), "{want}: {started:?}");
    }
    assert_eq!(
        out.config.config.on_build, None,
        "triggers run once, then go"
    );
    assert_eq!(out.manifest.layers.len(), 2);

    // A failing trigger is reported at the FROM line that brought it in.
    let df = "FROM scratch AS base\nONBUILD RUN exit 4\nFROM base\nRUN echo main\n";
    let err = lab
        .build_req(&lab.request(df, &[], None), &sb, &ev)
        .unwrap_err();
    let EngineError::Step { location, .. } = &err else {
        panic!("not a step error: {err}");
    };
    assert_eq!(location, "Dockerfile:3");
}

/// `(path, uid, mode)` of every entry of a gzip layer blob in the lab's store.
fn layer_entries(lab: &Lab, digest: &hoist::oci::Digest) -> Vec<(String, u64, u32)> {
    let store = Store::open(lab.root.path()).unwrap();
    let f = std::fs::File::open(store.blob_path(digest)).unwrap();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    ar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                h.uid().unwrap(),
                h.mode().unwrap() & 0o7777,
            )
        })
        .collect()
}

#[test]
fn copy_link_makes_a_base_independent_layer() {
    if !is_root() {
        eprintln!("skipped: needs root for overlay views");
        return;
    }
    let lab = Lab::new();
    lab.file("a.txt", "a");
    let sb = FakeSandbox::default();
    // /etc exists below, owned by 1000 (WORKDIR under USER 1000 creates it so).
    let with = |link: &str, run: &str| {
        format!(
            "FROM scratch\nUSER 1000\nWORKDIR /etc\nRUN {run}\nUSER 0\nCOPY {link} a.txt /etc/\n"
        )
    };
    let plain = lab.build(&with("", "one"), &sb);
    let linked = lab.build(&with("--link", "one"), &sb);
    let last = |o: &BuildOutcome| o.manifest.layers.last().unwrap().digest.clone();
    // A plain COPY keeps the existing dir's metadata in its layer; --link writes a fresh one.
    let etc = |d: &hoist::oci::Digest| {
        layer_entries(&lab, d)
            .into_iter()
            .find(|e| e.0 == "etc/")
            .unwrap()
    };
    assert_eq!(etc(&last(&plain)).1, 1000);
    assert_eq!(etc(&last(&linked)), ("etc/".to_string(), 0, 0o755));

    // A different layer below: the --link step is still a cache hit, the plain one is not.
    let ev = Events::default();
    let linked2 = lab
        .build_req(&lab.request(&with("--link", "two"), &[], None), &sb, &ev)
        .unwrap();
    assert_eq!(ev.cached(), 2, "WORKDIR and the --link COPY");
    assert_eq!(last(&linked2), last(&linked));
    assert_ne!(linked2.manifest_digest, linked.manifest_digest);
    let ev = Events::default();
    lab.build_req(&lab.request(&with("", "three"), &[], None), &sb, &ev)
        .unwrap();
    assert_eq!(
        ev.cached(),
        1,
        "only WORKDIR: the plain COPY follows the new RUN"
    );
}

/// Two platforms' passes of one build share a memo of steps: a stage pinned to one platform
/// (`FROM --platform=…`, the `$BUILDPLATFORM` pattern) is computed once even with
/// `--no-cache` and run at the same time; steps reading `TARGETARCH` run per platform.
#[test]
fn passes_sharing_a_memo_compute_equal_steps_once() {
    if !is_root() {
        return;
    }
    let lab = Lab::new();
    let sb = FakeSandbox::default();
    let df = "FROM --platform=linux/amd64 scratch AS tools\nRUN sleep 5\nARG TARGETARCH\nRUN echo $TARGETARCH\nFROM scratch\nCOPY --from=tools / /\n";
    let shared = std::sync::Arc::new(hoist::engine::SharedSteps::default());
    let for_platform = |p: &str| {
        let mut req = lab.request(df, &[], None);
        let df = hoist::parser::parse(df).unwrap();
        req.graph_options.platform = Some(p.into());
        req.graph = hoist::graph::build(&df, &req.graph_options).unwrap();
        req.platform = Platform::parse(p).unwrap();
        req.no_cache = true;
        req.shared = shared.clone();
        req
    };
    let (amd, arm) = (for_platform("linux/amd64"), for_platform("linux/arm64"));
    let (ev1, ev2) = (Events::default(), Events::default());
    std::thread::scope(|s| {
        let a = s.spawn(|| lab.build_req(&amd, &sb, &ev1));
        let b = s.spawn(|| lab.build_req(&arm, &sb, &ev2));
        a.join().unwrap().unwrap();
        b.join().unwrap().unwrap();
    });
    let scripts: Vec<String> = sb
        .runs
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.argv.last().cloned().unwrap_or_default())
        .collect();
    assert_eq!(
        scripts.iter().filter(|s| s.as_str() == "sleep 5").count(),
        1,
        "{scripts:?}"
    );
    assert_eq!(
        scripts.len(),
        3,
        "one shared RUN, one RUN per TARGETARCH: {scripts:?}"
    );
    assert_eq!(ev1.cached() + ev2.cached(), 1);
}

//! BuildKit's `SecretsUsedInArgOrEnv` build check through the real binary: an ARG/ENV whose
//! key looks like a secret gives one warning per occurrence at the end of the build, in
//! Docker's format (`WARNING: Rule - URL`, the message, `Dockerfile:LINE`) with plain
//! progress and as one `warning` event each with JSON progress, and the build still succeeds;
//! `# check=skip=…` silences it. (The rules are unit-tested in `src/lint/`, and replayed
//! against BuildKit's findings in `tests/lint_fixtures.rs`.)

#[path = "hardening_util/mod.rs"]
mod util;

use util::*;

const RULE: &str = "SecretsUsedInArgOrEnv";

#[test]
fn secrets_in_arg_or_env_warn_once_per_occurrence() {
    if !can_run() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let df = format!(
        "ARG GLOBAL_TOKEN=g\nFROM {BASE}\nARG API_TOKEN=abc NAME=x\nENV DB_PASSWORD=hunter2 \\\n    PATH=/usr/bin:/bin\nENV GPG_KEY_FILE=/k\nRUN true\n"
    );
    std::fs::write(ctx.join("Dockerfile"), &df).unwrap();
    let root = work.path().join("store");
    let c = ctx.to_str().unwrap();

    let plain = ok(
        &hoist(&root, &["build", "--progress=plain", c]),
        "plain build",
    );
    let lines: Vec<&str> = plain.lines().collect();
    let url = "https://docs.docker.com/go/dockerfile/rule/secrets-used-in-arg-or-env/";
    let blocks: Vec<(&str, &str)> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| **l == format!("WARNING: {RULE} - {url}"))
        .map(|(i, _)| (lines[i + 1], lines[i + 2]))
        .collect();
    assert_eq!(
        blocks,
        vec![
            (
                "Do not use ARG or ENV instructions for sensitive data (ARG \"API_TOKEN\")",
                "Dockerfile:3"
            ),
            (
                "Do not use ARG or ENV instructions for sensitive data (ENV \"DB_PASSWORD\")",
                "Dockerfile:4"
            ),
        ],
        "{plain}"
    );

    let json = ok(
        &hoist(&root, &["build", "--progress=json", c]),
        "json build",
    );
    let events: Vec<serde_json::Value> = json
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "warning")
        .collect();
    let msgs: Vec<&str> = events
        .iter()
        .filter_map(|v| v["message"].as_str())
        .collect();
    assert_eq!(msgs.len(), 2, "{json}");
    assert_eq!(
        msgs,
        vec![
            "SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ARG \"API_TOKEN\") (line 3)",
            "SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ENV \"DB_PASSWORD\") (line 4)",
        ],
        "{json}"
    );

    std::fs::write(ctx.join("Dockerfile"), format!("# check=skip={RULE}\n{df}")).unwrap();
    let skipped = ok(
        &hoist(&root, &["build", "--progress=plain", c]),
        "skip build",
    );
    assert!(!skipped.contains(RULE), "{skipped}");
}

fn blobs(root: &std::path::Path) -> usize {
    std::fs::read_dir(root.join("blobs/sha256")).map_or(0, |d| d.count())
}

/// `hoist build --check` as `docker build --check`: BuildKit's findings printed in Docker's
/// format, exit 1, and nothing built: no RUN, no layer pulled (only base configs are read,
/// from the registry when the store lacks them: here a base whose ENV a COPY uses).
#[test]
fn check_reports_without_building() {
    if !can_run() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    // A base image with an ENV of its own, pushed to the lab registry.
    let base_repo = fresh_repo("lint-envbase");
    let base_ref = format!("{base_repo}:1");
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {BASE}\nENV FROM_BASE=/etc\n"),
    )
    .unwrap();
    let pusher = work.path().join("pusher");
    ok(
        &hoist(
            &pusher,
            &[
                "build",
                "-q",
                "-t",
                &base_ref,
                "--push",
                ctx.to_str().unwrap(),
            ],
        ),
        "push the env base",
    );

    let df = format!(
        "FROM {base_ref} as build\nRUN touch /ran\nCOPY $FROM_BASE $FROM_BASEE /x\nCMD run it\n"
    );
    std::fs::write(ctx.join("Dockerfile"), &df).unwrap();
    let root = work.path().join("store");
    let c = ctx.to_str().unwrap();
    let o = hoist(&root, &["build", "--check", c]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let head: Vec<&str> = out
        .lines()
        .filter(|l| {
            l.starts_with("WARNING: ") || l.starts_with("Dockerfile:") || l.starts_with("Check")
        })
        .collect();
    assert_eq!(
        head,
        vec![
            "Check complete, 3 warnings have been found!",
            "WARNING: FromAsCasing - https://docs.docker.com/go/dockerfile/rule/from-as-casing/",
            "Dockerfile:1",
            "WARNING: UndefinedVar - https://docs.docker.com/go/dockerfile/rule/undefined-var/",
            "Dockerfile:3",
            "WARNING: JSONArgsRecommended - https://docs.docker.com/go/dockerfile/rule/json-args-recommended/",
            "Dockerfile:4",
        ],
        "{out}"
    );
    assert!(
        out.contains("Usage of undefined variable '$FROM_BASEE' (did you mean $FROM_BASE?)\n"),
        "the base image's ENV is in scope: {out}"
    );
    assert!(
        out.contains("   3 | >>> COPY $FROM_BASE $FROM_BASEE /x\n"),
        "{out}"
    );
    // Only the base's config was fetched: no layer, no snapshot, no image.
    assert_eq!(blobs(&root), 1, "only the config blob is stored");
    assert!(
        std::fs::read_dir(root.join("snapshots")).map_or(true, |mut d| d.next().is_none()),
        "no layer was unpacked"
    );

    // `--call=check` is the same; BUILDKIT_DOCKERFILE_CHECK replaces the directive.
    let o = hoist(&root, &["build", "--call=check", c]);
    assert_eq!(o.status.code(), Some(1));
    let o = hoist(
        &root,
        &[
            "build",
            "--check",
            "--build-arg",
            "BUILDKIT_DOCKERFILE_CHECK=skip=all",
            c,
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "Check complete, no warnings found.\n"
    );

    // `error=true` fails an ordinary build before anything runs.
    std::fs::write(ctx.join("Dockerfile"), format!("# check=error=true\n{df}")).unwrap();
    let o = hoist(&root, &["build", "--progress=plain", c]);
    let text = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "{text}");
    assert!(
        text.contains(
            "lint violation found for rules: FromAsCasing, JSONArgsRecommended, UndefinedVar"
        ),
        "{text}"
    );
    assert!(
        !text.lines().any(|l| l.starts_with('#')),
        "no step started: {text}"
    );
}

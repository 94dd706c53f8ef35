//! BuildKit's `SecretsUsedInArgOrEnv` build check through the real binary: an ARG/ENV whose
//! key looks like a secret gives one warning per occurrence naming `Dockerfile:LINE` and the
//! rule, in plain and in JSON progress, and the build still succeeds; `# check=skip=…`
//! silences it. (The rule itself is unit-tested in `src/parser/lint.rs`.)

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
    let warnings: Vec<&str> = plain.lines().filter(|l| l.contains(RULE)).collect();
    assert_eq!(
        warnings,
        vec![
            "WARNING: Dockerfile:3: SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ARG \"API_TOKEN\") (see https://docs.docker.com/go/dockerfile/rule/secrets-used-in-arg-or-env/)",
            "WARNING: Dockerfile:4: SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ENV \"DB_PASSWORD\") (see https://docs.docker.com/go/dockerfile/rule/secrets-used-in-arg-or-env/)",
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
    assert!(
        msgs[0].starts_with("Dockerfile:3: SecretsUsedInArgOrEnv: "),
        "{msgs:?}"
    );
    assert!(msgs[1].contains("(ENV \"DB_PASSWORD\")"), "{msgs:?}");

    std::fs::write(ctx.join("Dockerfile"), format!("# check=skip={RULE}\n{df}")).unwrap();
    let skipped = ok(
        &hoist(&root, &["build", "--progress=plain", c]),
        "skip build",
    );
    assert!(!skipped.contains(RULE), "{skipped}");
}

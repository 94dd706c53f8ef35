//! Rule-by-rule cases from BuildKit's check tests, run over the pure checks.

use super::*;

fn run_with(
    text: &str,
    args: &[(&str, &str)],
    ignore: Option<&str>,
) -> Vec<(String, usize, String)> {
    let df = crate::parser::parse(text).unwrap();
    let build_args: BTreeMap<String, String> = args
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let p = Platform::parse("linux/amd64").unwrap();
    let ig = ignore.map(|t| Ignore {
        matcher: Matcher::parse(t).unwrap(),
        patterns: crate::parser::dockerignore::read_ignore_lines(t),
    });
    let bases = BTreeMap::from([(
        base_key("alpine", &p),
        BaseConfig {
            env: vec!["PATH=/usr/bin:/bin".into(), "HOME=/root".into()],
            shell: vec![],
            platform: None,
        },
    )]);
    let req = Request {
        dockerfile: &df,
        text,
        build_args: &build_args,
        target_platform: &p,
        build_platform: &p,
        target: None,
        stages: None,
        bases: &bases,
        ignore: ig.as_ref(),
        bases_failed: false,
    };
    check(&req)
        .unwrap()
        .findings
        .into_iter()
        .map(|f| (f.rule.name.to_string(), f.span.start, f.detail))
        .collect()
}

fn run(text: &str) -> Vec<(String, usize, String)> {
    run_with(text, &[], None)
}

fn names(text: &str) -> Vec<(String, usize)> {
    run(text).into_iter().map(|(r, l, _)| (r, l)).collect()
}

fn n(r: &str, l: usize) -> (String, usize) {
    (r.to_string(), l)
}

#[test]
fn stage_names_and_as_casing() {
    let w = run(
        "\n# c\n#\nFROM scratch AS BadStageName\n\nFROM scratch as base2\nFROM scratch AS base3\n",
    );
    assert_eq!(
        w,
        vec![
            (
                "StageNameCasing".into(),
                4,
                "Stage name 'BadStageName' should be lowercase".into()
            ),
            (
                "FromAsCasing".into(),
                6,
                "'as' and 'FROM' keywords' casing do not match".into()
            ),
        ]
    );
    assert_eq!(
        run("from scratch AS base\nfrom scratch as base2\n")[0].2,
        "'AS' and 'from' keywords' casing do not match"
    );
    assert_eq!(
        names("FROM scratch AS b\nFROM scratch AS b\nFROM scratch AS context\n"),
        vec![n("DuplicateStageName", 2), n("ReservedStageName", 3)]
    );
}

#[test]
fn instruction_casing_majority() {
    let w = run("From scratch as base\nFROM scratch AS base2\n");
    assert_eq!(
        w[0].2,
        "Command 'From' should match the case of the command majority (uppercase)"
    );
    assert_eq!(
        names("FROM scratch\ncopy a /foo\ncopy a /bar\ncopy a /baz\n"),
        vec![n("ConsistentInstructionCasing", 1)]
    );
    assert!(names("from scratch\ncopy a /foo\n").is_empty());
    assert!(
        names("ARG x=1\nfrom scratch\ncopy a /foo\n").is_empty(),
        "global ARGs are not counted"
    );
}

#[test]
fn empty_continuation_maintainer_json_args() {
    assert_eq!(
        names("FROM scratch\nCOPY a \\\n\n.\nCOPY a \\\n.\n"),
        vec![n("NoEmptyContinuation", 4)]
    );
    assert_eq!(
        run("FROM scratch\nMAINTAINER me\nCMD x\nENTRYPOINT y\n"),
        vec![
            (
                "MaintainerDeprecated".into(),
                2,
                "Maintainer instruction is deprecated in favor of using label".into()
            ),
            (
                "JSONArgsRecommended".into(),
                3,
                "JSON arguments recommended for CMD to prevent unintended behavior related to OS signals".into()
            ),
            (
                "JSONArgsRecommended".into(),
                4,
                "JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related to OS signals".into()
            ),
        ]
    );
    assert!(names("FROM scratch AS base\nSHELL [\"/x\"]\nFROM base\nCMD y\n").is_empty());
    assert!(names("FROM scratch\n# check=skip=JSONArgsRecommended\nCMD x\n").is_empty());
}

#[test]
fn multiple_instructions_report_the_earlier() {
    assert_eq!(
        run("FROM scratch\nENTRYPOINT [\"a\"]\nCMD [\"a\"]\nHEALTHCHECK CMD [\"a\"]\nENTRYPOINT [\"b\"]\ncmd [\"b\"]\nHEALTHCHECK NONE\n")
            .into_iter()
            .filter(|w| w.0 == "MultipleInstructionsDisallowed")
            .map(|w| (w.1, w.2))
            .collect::<Vec<_>>(),
        vec![
            (2, "Multiple ENTRYPOINT instructions should not be used in the same stage because only the last one will be used".into()),
            (3, "Multiple cmd instructions should not be used in the same stage because only the last one will be used".into()),
            (4, "Multiple HEALTHCHECK instructions should not be used in the same stage because only the last one will be used".into()),
        ]
    );
    assert!(names("FROM scratch AS a\nCMD [\"a\"]\nFROM a AS b\nCMD [\"b\"]\n").is_empty());
}

#[test]
fn legacy_key_value_and_secrets() {
    assert_eq!(
        run("FROM scratch\nENV testkey value\nLABEL key value\nENV a=b\n"),
        vec![
            (
                "LegacyKeyValueFormat".into(),
                2,
                "\"ENV key=value\" should be used instead of legacy \"ENV key value\" format"
                    .into()
            ),
            (
                "LegacyKeyValueFormat".into(),
                3,
                "\"LABEL key=value\" should be used instead of legacy \"LABEL key value\" format"
                    .into()
            ),
        ]
    );
    let w = names(
        "FROM scratch\nARG SECRET_PASSPHRASE\nENV password=bar secret=baz\nENV PUBLIC_KEY=\n# check=skip=SecretsUsedInArgOrEnv // ok\nENV password=bar\n",
    );
    assert_eq!(
        w,
        vec![
            n("SecretsUsedInArgOrEnv", 2),
            n("SecretsUsedInArgOrEnv", 3),
            n("SecretsUsedInArgOrEnv", 3)
        ]
    );
    assert!(
        names("ARG GLOBAL_TOKEN=x\nFROM scratch\n").is_empty(),
        "global ARGs are not checked for secrets"
    );
}

#[test]
fn undefined_vars_with_scope_and_suggestions() {
    assert!(names("FROM scratch\nARG foo\nCOPY Dockerfile${foo} .\n").is_empty());
    assert!(names("FROM alpine AS base\nARG foo=Dockerfile\nFROM base\nCOPY $foo .\n").is_empty());
    assert!(names("FROM alpine\nRUN echo $PATH $nothing\nCOPY $HOME /x\n").is_empty());
    assert_eq!(
        run("FROM alpine\nCOPY $foo .\nARG foo=bar\n"),
        vec![(
            "UndefinedVar".into(),
            2,
            "Usage of undefined variable '$foo'".into()
        )]
    );
    assert_eq!(
        run("FROM alpine\nARG DIR_ASSETS=assets/\nCOPY $DIR_ASSET .\n")[0].2,
        "Usage of undefined variable '$DIR_ASSET' (did you mean $DIR_ASSETS?)"
    );
    assert_eq!(
        run("FROM alpine\nENV PATH=$PAHT:/tmp/bin\n")[0].2,
        "Usage of undefined variable '$PAHT' (did you mean $PATH?)"
    );
    assert_eq!(
        names("FROM scratch AS first\nCOPY $foo .\nFROM scratch AS second\nCOPY $bar .\n"),
        vec![n("UndefinedVar", 2), n("UndefinedVar", 4)]
    );
    assert!(
        names("FROM scratch\nENV A=1 B=$A\n").contains(&n("UndefinedVar", 2)),
        "one ENV's pairs are expanded before any is set"
    );
}

#[test]
fn from_line_args() {
    assert!(names("ARG base=scratch\nFROM $base\n").is_empty());
    assert!(names("FROM --platform=$BUILDPLATFORM scratch AS x\n").is_empty());
    assert!(names("ARG DEBUG\nFROM scra${DEBUG:-tch}\n").is_empty());
    assert_eq!(
        run("ARG tag=latest\nFROM alpine:${tag}${version} AS b\n"),
        vec![(
            "UndefinedArgInFrom".into(),
            2,
            "FROM argument 'version' is not declared".into()
        )]
    );
    assert_eq!(
        run("ARG MY_ARCH=amd64\nFROM --platform=linux/${MYARCH} alpine AS x\n")[0].2,
        "FROM argument 'MYARCH' is not declared (did you mean MY_ARCH?)"
    );
    assert_eq!(
        run("FROM --platform=${TARGETPLATFORM} scratch\n")[0].2,
        "Setting platform to predefined ${TARGETPLATFORM} in FROM is redundant as this is the default behavior"
    );
    assert_eq!(
        run("FROM --platform=linux/amd64 scratch\n")[0].2,
        "FROM --platform flag should not use constant value \"linux/amd64\""
    );
    assert!(names("FROM --platform=linux/amd64 scratch AS my_amd64_stage\n").is_empty());
    assert_eq!(
        run_with(
            "ARG VERSION\nFROM busybox:$VERSION\n",
            &[("VERSION", "latest")],
            None
        ),
        vec![(
            "InvalidDefaultArgInFrom".into(),
            2,
            "Default value for ARG busybox:$VERSION results in empty or invalid base image name"
                .into()
        )]
    );
    assert!(
        run_with(
            "ARG V=\"\"\nFROM busybox:stable${V}\n",
            &[("V", "-musl")],
            None
        )
        .is_empty()
    );
}

#[test]
fn workdir_expose_ignored_files() {
    assert_eq!(
        run("FROM scratch\nWORKDIR app/\n")[0].2,
        "Relative workdir \"app/\" can have unexpected results if the base image changes"
    );
    assert!(names("FROM scratch AS a\nWORKDIR /app\nFROM a\nWORKDIR sub/\n").is_empty());
    assert_eq!(
        run("FROM scratch\nEXPOSE 80/TcP 8080/TCP 8080/udp 127.0.0.1:80:80 [::1]:8080:8080 5000:5000 8000\n")
            .into_iter()
            .map(|w| w.2)
            .collect::<Vec<_>>(),
        vec![
            "Defined protocol '80/TcP' in EXPOSE instruction should be lowercase",
            "Defined protocol '8080/TCP' in EXPOSE instruction should be lowercase",
            "EXPOSE instruction should not define an IP address or host-port mapping, found '127.0.0.1:80:80'",
            "EXPOSE instruction should not define an IP address or host-port mapping, found '[::1]:8080:8080'",
            "EXPOSE instruction should not define an IP address or host-port mapping, found '5000:5000'",
        ]
    );
    let df = "FROM scratch AS base\nCOPY Dockerfile .\nADD ./Dockerfile /windy\nCOPY sub /x\nFROM base\nCOPY --from=base Dockerfile /y\n";
    assert_eq!(
        run_with(df, &[], Some("Dockerfile\nsub/\n"))
            .into_iter()
            .map(|w| (w.1, w.2))
            .collect::<Vec<_>>(),
        vec![
            (
                2,
                "Attempting to Copy file \"Dockerfile\" that is excluded by .dockerignore".into()
            ),
            (
                3,
                "Attempting to Add file \"Dockerfile\" that is excluded by .dockerignore".into()
            ),
            (
                4,
                "Attempting to Copy file \"sub\" that is excluded by .dockerignore".into()
            ),
        ]
    );
    assert!(run_with(df, &[], Some("**\n!Dockerfile\n")).is_empty());
    assert_eq!(
        names_ig("FROM scratch\nCOPY . .\n", "*\n"),
        vec![n("CopyIgnoredFile", 2)]
    );
    assert!(names_ig("FROM scratch\nCOPY . .\n", ".*\n").is_empty());
}

fn names_ig(text: &str, ig: &str) -> Vec<(String, usize)> {
    run_with(text, &[], Some(ig))
        .into_iter()
        .map(|(r, l, _)| (r, l))
        .collect()
}

#[test]
fn check_settings() {
    let text = "#check=skip=ConsistentInstructionCasing;error=true\nFROM scratch as base\ncopy Dockerfile .\n";
    let df = crate::parser::parse(text).unwrap();
    let p = Platform::parse("linux/amd64").unwrap();
    let bases = BTreeMap::new();
    let mut args = BTreeMap::new();
    let report = |args: &BTreeMap<String, String>| {
        check(&Request {
            dockerfile: &df,
            text,
            build_args: args,
            target_platform: &p,
            build_platform: &p,
            target: None,
            stages: None,
            bases: &bases,
            ignore: None,
            bases_failed: false,
        })
    };
    let r = report(&args).unwrap();
    assert_eq!(r.findings.len(), 1);
    assert_eq!(
        r.error.as_deref(),
        Some("lint violation found for rules: FromAsCasing")
    );
    args.insert(CHECK_BUILD_ARG.into(), "skip=all".into());
    assert_eq!(report(&args).unwrap(), Report::default());
    args.insert(CHECK_BUILD_ARG.into(), "skip=all;nope".into());
    assert!(report(&args).is_err());
}

#[test]
fn excerpt_as_buildkit_prints_it() {
    let text = "FROM a as b\nMAINTAINER x\nENV L v\nCMD x\n";
    assert_eq!(
        render::excerpt("Dockerfile", text, 1, 1),
        "Dockerfile:1\n--------------------\n   1 | >>> FROM a as b\n   2 |     MAINTAINER x\n   3 |     ENV L v\n--------------------\n"
    );
    assert_eq!(
        render::excerpt("Dockerfile", text, 4, 4),
        "Dockerfile:4\n--------------------\n   2 |     MAINTAINER x\n   3 |     ENV L v\n   4 | >>> CMD x\n   5 |     \n--------------------\n"
    );
}

#[test]
fn an_unresolved_base_stops_before_the_stages() {
    let text = "FROM nope as x\nCOPY $A /\nCMD x\n";
    let df = crate::parser::parse(text).unwrap();
    let p = Platform::parse("linux/amd64").unwrap();
    let (args, bases) = (BTreeMap::new(), BTreeMap::new());
    let run = |bases_failed| {
        let r = check(&Request {
            dockerfile: &df,
            text,
            build_args: &args,
            target_platform: &p,
            build_platform: &p,
            target: None,
            stages: None,
            bases: &bases,
            ignore: None,
            bases_failed,
        })
        .unwrap();
        r.findings.iter().map(|f| f.rule.name).collect::<Vec<_>>()
    };
    assert_eq!(
        run(false),
        vec!["FromAsCasing", "UndefinedVar", "JSONArgsRecommended"]
    );
    assert_eq!(run(true), vec!["FromAsCasing"]);
}

//! Property tests: parse + graph::build + plan::render never panic on random or mutated
//! Dockerfiles. `PROPTEST_CASES` raises the number of cases for long runs.

use hoist::graph::{self, GraphOptions};
use hoist::parser;
use proptest::prelude::*;

const SEED: &str = r#"# syntax=docker/dockerfile:1
ARG BASE=alpine
FROM --platform=$BUILDPLATFORM ${BASE:-alpine} AS build
ARG TARGETARCH
ENV A=1 B="two words" \
    C=${A:+x}
RUN --mount=type=cache,target=/c,from=busybox --network=none echo $A
RUN <<EOF cat > /x && <<-'E2' cat
body $A
EOF
	tabbed
	E2
COPY --from=busybox --chown=1:1 --chmod=755 --exclude=*.md ["a b", "/dst/"]
ADD --checksum=sha256:00 --keep-git-dir --unpack=true https://x/y.tar /y
LABEL "k k"=v x='y'
EXPOSE 80/tcp 1000-2000
HEALTHCHECK --interval=5s --retries=3 CMD ["true"]
ONBUILD RUN echo hi
SHELL ["/bin/sh", "-c"]
FROM build AS final
COPY --from=build /x /y
VOLUME ["/v"]
USER 1000:1000
WORKDIR /w/${A%%.*}
STOPSIGNAL SIGTERM
CMD echo ${B//o/0}
"#;

fn run(text: &str) {
    if let Ok(df) = parser::parse(text) {
        for target in [None, Some("build".to_string()), Some("nope".to_string())] {
            let opts = GraphOptions {
                target,
                platform: Some("linux/arm64".into()),
                ..GraphOptions::default()
            };
            if let Ok(g) = graph::build(&df, &opts) {
                let _ = graph::plan::render_with_escape(&g, df.directives.escape);
            }
        }
    }
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("FROM ".to_string()),
        Just("RUN ".to_string()),
        Just("COPY ".to_string()),
        Just("ONBUILD ".to_string()),
        Just("ARG ".to_string()),
        Just("ENV ".to_string()),
        Just("HEALTHCHECK ".to_string()),
        Just("\n".to_string()),
        Just("\\\n".to_string()),
        Just("`\n".to_string()),
        Just("# escape=`\n".to_string()),
        Just("<<EOF".to_string()),
        Just("<<-'X'".to_string()),
        Just("EOF\n".to_string()),
        Just("--mount=type=bind,from=".to_string()),
        Just("--from=".to_string()),
        Just("${".to_string()),
        Just("}".to_string()),
        Just("$".to_string()),
        Just("[\"".to_string()),
        Just("\"]".to_string()),
        Just(" AS ".to_string()),
        Just("'".to_string()),
        Just("=".to_string()),
        "[a-z0-9:/.#%-]{0,6}",
        any::<char>().prop_map(String::from),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_token_soup_never_panics(toks in prop::collection::vec(token(), 0..60)) {
        run(&toks.concat());
    }

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,300}") {
        run(&s);
        run(&format!("FROM alpine\n{s}"));
    }

    #[test]
    fn mutated_seed_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, token()), 1..8)
    ) {
        let mut text: Vec<char> = SEED.chars().collect();
        for (at, op, tok) in edits {
            let i = at.index(text.len() + 1);
            match op {
                0 => { text.truncate(i); }
                1 => { if i < text.len() { text.remove(i); } }
                _ => { for (k, c) in tok.chars().enumerate() { text.insert(i + k, c); } }
            }
        }
        run(&text.into_iter().collect::<String>());
    }
}

#[test]
fn seed_is_valid() {
    let df = parser::parse(SEED).expect("seed parses");
    let g = graph::build(&df, &GraphOptions::default()).expect("seed graphs");
    assert!(graph::plan::render(&g).contains("WORKDIR"));
}

//! Build checks over a parsed Dockerfile, as BuildKit's linter reports them. Pure: the
//! engine turns the findings into warnings.
//!
//! `SecretsUsedInArgOrEnv`: an `ARG` or `ENV` in a stage whose key looks like it holds a
//! secret. As in BuildKit, the key is split on `_`; it is flagged when a part equals (ASCII,
//! case-insensitively) one of `apikey auth credential credentials key password pword passwd
//! secret token`, unless a part equals one of `public file version` (e.g. `GPG_KEY_FILE`,
//! `PUBLIC_KEY`). Global ARGs (before the first FROM) are not checked, as BuildKit does not.
//! `# check=skip=SecretsUsedInArgOrEnv` (or `skip=all`) turns the check off.

use super::ast::{Dockerfile, Instruction, Node};

/// Name of the secrets rule, as BuildKit names it.
pub const SECRETS_USED_IN_ARG_OR_ENV: &str = "SecretsUsedInArgOrEnv";
/// Where the rule is documented.
pub const SECRETS_RULE_URL: &str =
    "https://docs.docker.com/go/dockerfile/rule/secrets-used-in-arg-or-env/";

const SECRET_TOKENS: &[&str] = &[
    "apikey",
    "auth",
    "credential",
    "credentials",
    "key",
    "password",
    "pword",
    "passwd",
    "secret",
    "token",
];
const ALLOW_TOKENS: &[&str] = &["public", "file", "version"];

/// One finding of a build check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintWarning {
    /// The rule's name (e.g. `SecretsUsedInArgOrEnv`).
    pub rule: &'static str,
    /// 1-based line of the instruction.
    pub line: usize,
    /// What is wrong, in BuildKit's words.
    pub message: String,
    /// The rule's documentation.
    pub url: &'static str,
}

impl LintWarning {
    /// `Dockerfile:3: SecretsUsedInArgOrEnv: Do not use … (ARG "API_TOKEN") (see URL)`,
    /// with `file` the name the user gave the Dockerfile.
    pub fn render(&self, file: &str) -> String {
        format!(
            "{file}:{}: {}: {} (see {})",
            self.line, self.rule, self.message, self.url
        )
    }
}

/// True when an ARG/ENV key looks like it names a secret (BuildKit's rule).
pub fn is_secret_key(key: &str) -> bool {
    let has = |tokens: &[&str]| {
        key.split('_')
            .any(|part| tokens.iter().any(|t| part.eq_ignore_ascii_case(t)))
    };
    has(SECRET_TOKENS) && !has(ALLOW_TOKENS)
}

/// True when the `# check=` directive skips `rule` (`skip=all` or a list naming it).
pub fn rule_skipped(check: Option<&str>, rule: &str) -> bool {
    let Some(check) = check else {
        return false;
    };
    check
        .split(';')
        .filter_map(|opt| opt.trim().strip_prefix("skip="))
        .flat_map(|list| list.split(','))
        .any(|r| {
            let r = r.trim();
            r.eq_ignore_ascii_case("all") || r == rule
        })
}

/// `SecretsUsedInArgOrEnv` findings for `nodes` (instructions of stages), one per key.
pub fn secrets_used_in_arg_or_env<'a>(
    nodes: impl IntoIterator<Item = &'a Node>,
) -> Vec<LintWarning> {
    let mut out = Vec::new();
    for node in nodes {
        let (what, keys): (&str, Vec<&str>) = match &node.instruction {
            Instruction::Arg(args) => ("ARG", args.iter().map(|(k, _)| k.as_str()).collect()),
            Instruction::Env(pairs) => ("ENV", pairs.iter().map(|(k, _)| k.as_str()).collect()),
            _ => continue,
        };
        for key in keys.into_iter().filter(|k| is_secret_key(k)) {
            out.push(LintWarning {
                rule: SECRETS_USED_IN_ARG_OR_ENV,
                line: node.span.start,
                message: format!(
                    "Do not use ARG or ENV instructions for sensitive data ({what} {key:?})"
                ),
                url: SECRETS_RULE_URL,
            });
        }
    }
    out
}

/// Every build check over a whole Dockerfile: instructions after the first FROM, honouring
/// the `# check=skip=…` directive.
pub fn lint(df: &Dockerfile) -> Vec<LintWarning> {
    if rule_skipped(df.directives.check.as_deref(), SECRETS_USED_IN_ARG_OR_ENV) {
        return Vec::new();
    }
    let in_stages = df
        .nodes
        .iter()
        .skip_while(|n| !matches!(n.instruction, Instruction::From { .. }));
    secrets_used_in_arg_or_env(in_stages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildkit_token_rule() {
        for k in [
            "AWS_SECRET_ACCESS_KEY",
            "api_key",
            "APIKEY",
            "DATABASE_PASSWORD",
            "GITHUB_TOKEN",
            "secret_MESSAGE",
            "AUTH",
            "db_passwd",
            "MY_PWORD",
            "GCP_CREDENTIALS",
            "Key",
            "apiKey_x",
        ] {
            assert!(is_secret_key(k), "{k} looks like a secret");
        }
        for k in [
            "PATH",
            "KEYBOARD",
            "TOKENIZER_DIR",
            "MONKEY",
            "AUTHOR",
            "PUBLIC_KEY",
            "GPG_KEY_FILE",
            "NODE_AUTH_VERSION",
            "password1",
            "",
            "API-KEY",
        ] {
            assert!(!is_secret_key(k), "{k} is not flagged");
        }
    }

    #[test]
    fn lines_keys_and_global_args() {
        let df = crate::parser::parse(
            "ARG GLOBAL_TOKEN=x\nFROM scratch\nARG API_TOKEN NAME=1\nENV A=1 \\\n    DB_PASSWORD=p\nENV PATH=/bin\n",
        )
        .unwrap();
        let w = lint(&df);
        assert_eq!(
            w.iter()
                .map(|w| (w.line, w.message.as_str()))
                .collect::<Vec<_>>(),
            vec![
                (
                    3,
                    "Do not use ARG or ENV instructions for sensitive data (ARG \"API_TOKEN\")"
                ),
                (
                    4,
                    "Do not use ARG or ENV instructions for sensitive data (ENV \"DB_PASSWORD\")"
                ),
            ]
        );
        assert_eq!(
            w[0].render("Dockerfile"),
            "Dockerfile:3: SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for \
             sensitive data (ARG \"API_TOKEN\") (see https://docs.docker.com/go/dockerfile/rule/secrets-used-in-arg-or-env/)"
        );
    }

    #[test]
    fn check_directive_skips() {
        for (check, skipped) in [
            ("skip=SecretsUsedInArgOrEnv", true),
            ("skip=all", true),
            (
                "skip=JSONArgsRecommended,SecretsUsedInArgOrEnv;error=true",
                true,
            ),
            ("error=true", false),
            ("skip=JSONArgsRecommended", false),
        ] {
            let df =
                crate::parser::parse(&format!("# check={check}\nFROM scratch\nENV MY_SECRET=1\n"))
                    .unwrap();
            assert_eq!(lint(&df).is_empty(), skipped, "{check}");
        }
    }
}

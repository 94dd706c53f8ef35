//! Which rules run: the `# check=skip=A,B;error=true;experimental=C` directive, the
//! `BUILDKIT_DOCKERFILE_CHECK` build-arg (which replaces the directive), and `# check=…`
//! comments right above one instruction (which add to the file's setting for that instruction
//! only), as BuildKit's linter reads them.

use super::{LintError, Rule};
use std::collections::BTreeSet;

/// A parsed check setting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckConfig {
    /// `skip=all`.
    pub skip_all: bool,
    /// `skip=A,B`.
    pub skip: BTreeSet<String>,
    /// `experimental=all`.
    pub experimental_all: bool,
    /// `experimental=A,B`.
    pub experimental: BTreeSet<String>,
    /// `error=true`: a finding fails the build.
    pub error: bool,
}

fn list(v: &str) -> BTreeSet<String> {
    v.split(',').map(|r| r.trim().to_string()).collect()
}

impl CheckConfig {
    /// Parses `skip=…;error=…;experimental=…` (at most three parts, as BuildKit).
    pub fn parse(text: &str) -> Result<CheckConfig, LintError> {
        let text = text.trim();
        let mut c = CheckConfig::default();
        if text.is_empty() {
            return Ok(c);
        }
        for part in text.splitn(3, ';') {
            let Some((k, v)) = part.split_once('=') else {
                return Err(LintError::BadOption {
                    option: part.to_string(),
                    reason: "expected key=value (skip=, error= or experimental=)".into(),
                });
            };
            let v = v.trim();
            match k.trim() {
                "skip" if v == "all" => c.skip_all = true,
                "skip" => c.skip = list(v),
                "experimental" if v == "all" => c.experimental_all = true,
                "experimental" => c.experimental = list(v),
                "error" => {
                    c.error = match v.to_ascii_lowercase().as_str() {
                        "1" | "t" | "true" => true,
                        "0" | "f" | "false" => false,
                        _ => {
                            return Err(LintError::BadOption {
                                option: part.to_string(),
                                reason: "error= takes true or false".into(),
                            });
                        }
                    }
                }
                other => {
                    return Err(LintError::BadOption {
                        option: other.to_string(),
                        reason: "known options are skip, error and experimental".into(),
                    });
                }
            }
        }
        Ok(c)
    }

    /// True when `rule` reports under this setting.
    pub fn enabled(&self, rule: &Rule) -> bool {
        if rule.experimental {
            self.experimental_all || self.experimental.contains(rule.name)
        } else {
            !(self.skip_all || self.skip.contains(rule.name))
        }
    }

    /// This setting with `other` added (skips and experiments unioned, as BuildKit merges).
    fn merged(&self, other: &CheckConfig) -> CheckConfig {
        let mut c = self.clone();
        c.skip_all |= other.skip_all;
        c.experimental_all |= other.experimental_all;
        c.skip.extend(other.skip.iter().cloned());
        c.experimental.extend(other.experimental.iter().cloned());
        c
    }

    /// The setting for one instruction: the first of its comments that reads as a
    /// `check=…` directive (up to its first space, so `# check=skip=X // why` works) is
    /// added; an unparsable one leaves the setting as it is.
    pub fn with_comments(&self, comments: &[String]) -> CheckConfig {
        for c in comments {
            let Some((name, value)) = directive(c) else {
                continue;
            };
            if !name.eq_ignore_ascii_case("check") {
                continue;
            }
            let value = value.split(' ').next().unwrap_or("");
            return match CheckConfig::parse(value) {
                Ok(other) => self.merged(&other),
                Err(_) => self.clone(),
            };
        }
        self.clone()
    }
}

/// `name=value` in a comment's text (the `#` already removed): a letter, then letters or
/// digits, `=`, a non-empty value.
fn directive(text: &str) -> Option<(&str, &str)> {
    let (k, v) = text.split_once('=')?;
    let k = k.trim();
    let v = v.trim();
    let ok = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && k.chars().all(|c| c.is_ascii_alphanumeric());
    (ok && !v.is_empty()).then_some((k, v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::rules;

    #[test]
    fn parses_buildkit_options() {
        let c = CheckConfig::parse("skip=JSONArgsRecommended, FromAsCasing;error=true").unwrap();
        assert!(c.error);
        assert!(!c.enabled(&rules::FROM_AS_CASING));
        assert!(c.enabled(&rules::MAINTAINER_DEPRECATED));
        assert!(!c.enabled(&rules::INVALID_DEFINITION_DESCRIPTION));
        let all = CheckConfig::parse("skip=all;experimental=all").unwrap();
        assert!(!all.enabled(&rules::UNDEFINED_VAR));
        assert!(all.enabled(&rules::INVALID_DEFINITION_DESCRIPTION));
        assert!(CheckConfig::parse("skip").is_err());
        assert!(CheckConfig::parse("error=maybe").is_err());
        assert!(CheckConfig::parse("bogus=1").is_err());
        assert_eq!(CheckConfig::parse("  ").unwrap(), CheckConfig::default());
    }

    #[test]
    fn comment_adds_to_the_file_setting() {
        let file = CheckConfig::parse("skip=A").unwrap();
        let c = file.with_comments(&["check=skip=all // local".into()]);
        assert!(c.skip_all && c.skip.contains("A"));
        let c = file.with_comments(&["just words".into(), "check=skip=B".into()]);
        assert!(c.skip.contains("B"));
        assert_eq!(file.with_comments(&["check=nonsense".into()]), file);
    }
}

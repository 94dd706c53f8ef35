//! Heredoc helpers shared by RUN and COPY/ADD: the name in `<<EOF`, and BuildKit's expansion
//! of a COPY/ADD heredoc body.

use crate::parser::expand::{self, Lookup};

/// `<<EOF`, `<<-EOF`, `<<"EOF"` → `EOF`.
pub(crate) fn heredoc_name(word: &str) -> Option<String> {
    let w = word.strip_prefix("<<")?;
    let w = w.strip_prefix('-').unwrap_or(w);
    let w = w.trim_matches(|c| c == '"' || c == '\'');
    (!w.is_empty()).then(|| w.to_string())
}

/// Variable expansion in a heredoc body the way BuildKit does it for COPY/ADD: `$V`, `${V}`
/// and `${V:-w}`-style forms are expanded, quotes are left alone.
///
/// `escape` is the Dockerfile's escape character (a backslash unless `# escape=` says otherwise).
pub(crate) fn expand_heredoc(body: &str, env: &dyn Lookup, escape: char) -> String {
    let mut out = String::with_capacity(body.len());
    let chars: Vec<char> = body.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == escape && i + 1 < chars.len() && chars[i + 1] == '$' {
            out.push('$');
            i += 2;
            continue;
        }
        if c != '$' || i + 1 >= chars.len() {
            out.push(c);
            i += 1;
            continue;
        }
        if chars[i + 1] == '{' {
            if let Some(end) = chars[i + 2..].iter().position(|&c| c == '}') {
                let inner: String = chars[i + 2..i + 2 + end].iter().collect();
                let word: String = format!("${{{inner}}}");
                match expand::expand_word(&word, env, escape) {
                    Ok(v) => out.push_str(&v),
                    Err(_) => out.push_str(&word),
                }
                i += 3 + end;
                continue;
            }
            out.push(c);
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut j = start;
        while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
            j += 1;
        }
        if j == start {
            out.push(c);
            i += 1;
            continue;
        }
        let name: String = chars[start..j].iter().collect();
        out.push_str(&env.get(&name).unwrap_or_default());
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heredoc_names() {
        assert_eq!(heredoc_name("<<EOF").as_deref(), Some("EOF"));
        assert_eq!(heredoc_name("<<-EOT").as_deref(), Some("EOT"));
        assert_eq!(heredoc_name("<<'EOT'").as_deref(), Some("EOT"));
        assert_eq!(heredoc_name("file.txt"), None);
    }

    #[test]
    fn heredoc_bodies_expand_with_the_escape_character() {
        let env = |n: &str| (n == "A").then(|| "1".to_string());
        assert_eq!(expand_heredoc("a=$A ${A} \\$A", &env, '\\'), "a=1 1 $A");
        assert_eq!(expand_heredoc("a=$A `$A", &env, '`'), "a=1 $A");
    }
}

//! What the AST does not keep and some rules need, read back from the Dockerfile text at each
//! node's lines: the keyword as written (the AST holds the canonical one), FROM's words as
//! written, the comments right above an instruction, empty continuation lines, and whether
//! ENV/LABEL used the legacy `KEY value` form. Lines are 1-based as in `Span`.

use crate::parser::{Dockerfile, Instruction, Node};

/// Source facts of one node, in AST order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeSource {
    /// The keyword as written (`from`, `Run`).
    pub keyword: String,
    /// The words after the keyword and its `--flags`, split at whitespace, as written.
    pub words: Vec<String>,
    /// Comment texts (without `#`) since the previous instruction; an empty `#` line
    /// clears them and the parser directives at the top are not among them (as BuildKit).
    pub comments: Vec<String>,
    /// The last line of the instruction when a continuation has an empty line in it.
    pub empty_continuation: Option<usize>,
    /// ENV/LABEL in the `KEY value` form (the first word has no `=`).
    pub legacy_key_value: bool,
}

/// Source facts for every node of `df`, read from `text`.
pub fn read(df: &Dockerfile, text: &str) -> Vec<NodeSource> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // A final newline ends the last line; it does not start another.
    let text = text.strip_suffix('\n').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let escape = df.directives.escape;
    let top = directive_lines(&lines);
    let mut prev_end = top;
    df.nodes
        .iter()
        .map(|node| {
            let s = node_source(node, &lines, prev_end, escape);
            prev_end = prev_end.max(node.span.end);
            s
        })
        .collect()
}

/// How many lines at the top are parser directives (`# syntax=`, `# escape=`, `# check=`).
fn directive_lines(lines: &[&str]) -> usize {
    let mut n = 0;
    for l in lines {
        let Some(rest) = l.trim().strip_prefix('#') else {
            break;
        };
        let Some((k, v)) = rest.split_once('=') else {
            break;
        };
        let k = k.trim().to_ascii_lowercase();
        if v.trim().is_empty() || !matches!(k.as_str(), "syntax" | "escape" | "check") {
            break;
        }
        n += 1;
    }
    n
}

fn node_source(node: &Node, lines: &[&str], prev_end: usize, escape: char) -> NodeSource {
    let start = node.span.start;
    let line = |n: usize| lines.get(n.wrapping_sub(1)).copied().unwrap_or("");

    let mut comments = Vec::new();
    for n in prev_end + 1..start {
        let t = line(n).trim();
        if let Some(c) = t.strip_prefix('#') {
            let c = c.trim();
            if c.is_empty() {
                comments.clear();
            } else {
                comments.push(c.to_string());
            }
        }
    }

    // The logical line, continuation by continuation, as BuildKit's parser joins it.
    let mut logical = String::new();
    let mut n = start;
    let mut empty = false;
    let mut last;
    let mut first = true;
    loop {
        let raw = line(n);
        // BuildKit points at the last line it read, skipped ones included.
        last = n;
        if !first {
            if raw.trim_start().starts_with('#') {
                n += 1;
                if n > lines.len() {
                    break;
                }
                continue;
            }
            if raw.trim().is_empty() {
                empty = true;
                n += 1;
                if n > lines.len() {
                    break;
                }
                continue;
            }
        }
        first = false;
        let t = raw.trim_end();
        match t.strip_suffix(escape) {
            Some(body) => {
                logical.push_str(body);
                n += 1;
                if n > lines.len() {
                    break;
                }
            }
            None => {
                logical.push_str(raw);
                break;
            }
        }
    }

    let t = logical.trim_start();
    let (keyword, rest) = match t.find(char::is_whitespace) {
        Some(p) => (&t[..p], t[p..].trim_start()),
        None => (t, ""),
    };
    let mut words: Vec<String> = rest.split_whitespace().map(str::to_string).collect();
    let flags = words.iter().take_while(|w| w.starts_with("--")).count();
    words.drain(..flags);
    let legacy_key_value = matches!(
        node.instruction,
        Instruction::Env(_) | Instruction::Label(_)
    ) && !first_word(rest, escape).contains('=');
    NodeSource {
        keyword: keyword.to_string(),
        words,
        comments,
        empty_continuation: empty.then_some(last),
        legacy_key_value,
    }
}

/// The first word of `s` with quotes and escapes kept, ending at unquoted whitespace.
fn first_word(s: &str, escape: char) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match quote {
            None if c.is_whitespace() => break,
            None if c == '"' || c == '\'' => quote = Some(c),
            Some(q) if c == q => quote = None,
            _ => {}
        }
        out.push(c);
        if c == escape
            && quote != Some('\'')
            && let Some(n) = chars.next()
        {
            out.push(n);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_comments_continuations() {
        let text = "# check=skip=A\n# about\nfrom scratch as Base\n#\n# skip me\nENV a \\\n\n  # c\n  b\nLABEL \"k=1\" v=2\nRUN <<EOF\nx\nEOF\n# last\nCmd x\n";
        let df = crate::parser::parse(text).unwrap();
        let s = read(&df, text);
        assert_eq!(s[0].keyword, "from");
        assert_eq!(s[0].words, vec!["scratch", "as", "Base"]);
        assert_eq!(s[0].comments, vec!["about"]);
        assert_eq!(s[1].comments, vec!["skip me"]);
        assert_eq!(s[1].empty_continuation, Some(9));
        assert!(s[1].legacy_key_value);
        assert!(
            !s[2].legacy_key_value,
            "a quoted first word with = is the new form"
        );
        assert_eq!(s[4].keyword, "Cmd");
        assert_eq!(
            s[4].comments,
            vec!["last"],
            "heredoc lines are not comments"
        );
        assert_eq!(s[3].empty_continuation, None);
    }
}

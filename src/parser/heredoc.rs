//! Heredocs in instruction lines: finding the `<<EOF` markers (BuildKit's rules for what is a
//! marker and whether it expands) and reading the bodies from the lines that follow.

use super::Result;
use super::ast::Heredoc;
use super::dockerfile::err;
use super::words::split_words;

/// Heredoc markers (`<<EOF`, `<<-EOF`, `<<"EOF"`) in a line: (name, strip tabs, expand).
/// As in BuildKit, a marker is a whole shell word matching `[0-9]*<<-?WORD` (so `cat<<EOF` and
/// `"<<EOF"` are not markers); a delimiter with any quote in it disables expansion.
pub(super) fn heredoc_markers(s: &str) -> Vec<(String, bool, bool)> {
    let mut out = Vec::new();
    for word in split_words(s, '\\') {
        let w = word.trim_start_matches(|c: char| c.is_ascii_digit());
        let Some(rest) = w.strip_prefix("<<") else {
            continue;
        };
        let (strip, rest) = match rest.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        if rest.is_empty() || rest.contains('<') {
            continue;
        }
        let mut name = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '\'' | '"' => {}
                '\\' => name.extend(chars.next()),
                c => name.push(c),
            }
        }
        if name.is_empty() {
            continue;
        }
        let quoted = rest.contains(['\'', '"']);
        out.push((name, strip, !quoted));
    }
    out
}

/// Reads heredoc bodies from `following` lines; returns them and how many lines they used.
pub(super) fn read_heredocs(
    markers: &[(String, bool, bool)],
    following: &[&str],
    line: usize,
) -> Result<(Vec<Heredoc>, usize)> {
    let mut used = 0;
    let mut docs = Vec::new();
    for (name, strip, expand) in markers {
        let mut content = String::new();
        let mut closed = false;
        while used < following.len() {
            let raw = following[used];
            used += 1;
            let l = if *strip {
                raw.trim_start_matches('\t')
            } else {
                raw
            };
            if l == name {
                closed = true;
                break;
            }
            content.push_str(l);
            content.push('\n');
        }
        if !closed {
            return Err(err(
                line,
                format!("unterminated heredoc: no closing {name} line found for <<{name}"),
            ));
        }
        docs.push(Heredoc {
            name: name.clone(),
            content,
            expand: *expand,
        });
    }
    Ok((docs, used))
}

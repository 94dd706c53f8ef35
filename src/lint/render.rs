//! Findings in Docker's words: `docker build --check`'s blocks (`WARNING: Rule - URL`, the
//! message, `Dockerfile:LINE` and an excerpt of the file with the lines marked) and the
//! closing `Check complete, …` line.

use super::Finding;

/// One finding as `docker build --check` prints it (a blank line first).
pub fn warning(f: &Finding, file: &str, text: &str) -> String {
    let mut out = format!("\nWARNING: {}", f.rule.name);
    if !f.rule.url.is_empty() {
        out.push_str(&format!(" - {}", f.rule.url));
    }
    out.push_str(&format!("\n{}\n", f.detail));
    out.push_str(&excerpt(file, text, f.span.start, f.span.end));
    out
}

/// `FILE:LINE`, then the lines around `start..=end` with those marked `>>>`: BuildKit's
/// source excerpt (four lines of context for one line, two for a range, shared between
/// before and after as far as the file allows).
pub fn excerpt(file: &str, text: &str, start: usize, end: usize) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    if start < 1 || start > lines.len() {
        return String::new();
    }
    let (mark_start, mark_end) = (start, end.max(start));
    let mut end = mark_end.min(lines.len());
    let mut start = start;
    let pad = if end == start { 4 } else { 2 };
    let mut p = 0;
    while p < pad {
        if start > 1 {
            start -= 1;
            p += 1;
        }
        if end != lines.len() {
            end += 1;
            p += 1;
        }
        p += 1;
    }
    let mut out = format!("{file}:{mark_start}\n--------------------\n");
    for (n, l) in lines.iter().enumerate().take(end).skip(start - 1) {
        let n = n + 1;
        let mark = if n >= mark_start && n <= mark_end {
            ">>>"
        } else {
            "   "
        };
        out.push_str(&format!(" {n:>3} | {mark} {l}\n"));
    }
    out.push_str("--------------------\n");
    out
}

/// One line, as BuildKit's short form: `Rule: message (line N)`.
pub fn short(f: &Finding) -> String {
    format!("{}: {} (line {})", f.rule.name, f.detail, f.span.start)
}

/// The line `docker build --check` ends with.
pub fn summary(count: usize) -> String {
    match count {
        0 => "Check complete, no warnings found.".into(),
        1 => "Check complete, 1 warning has been found!".into(),
        n => format!("Check complete, {n} warnings have been found!"),
    }
}

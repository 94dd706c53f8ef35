//! Fuzzes the `.dockerignore` reader and matcher.
//!
//! Input: the `.dockerignore` text, a NUL byte, then newline-separated paths (at most 16).
//! The first path line doubles as an extra pattern `X`.
//!
//! Invariants (from Docker's rule "a path is excluded when the last pattern matching it or a
//! parent is not an exception", as moby's patternmatcher evaluates it):
//! - parsing and matching never panic; the context root (`""`, `.`, `/`) is never excluded;
//! - appending a non-exception pattern never re-includes an excluded path (monotone);
//! - appending an exception `!X` never excludes an included path;
//! - prepending an exception `!X` changes nothing (an exception only acts after a match);
//! - `can_prune_dir(d)` implies `is_excluded(d)` and that every path below `d` (`d/q` for
//!   every other input path `q`) is excluded: pruning never skips a re-included file.
#![no_main]

use hoist::parser::dockerignore::{Matcher, read_ignore_lines};
use libfuzzer_sys::fuzz_target;

/// A slash-separated relative path with no empty, `.` or `..` component.
fn clean_rel(p: &str) -> bool {
    !p.is_empty() && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

fuzz_target!(|data: &[u8]| {
    let (text, rest) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let text = String::from_utf8_lossy(text);
    let rest = String::from_utf8_lossy(rest);
    let paths: Vec<&str> = rest.split('\n').take(16).collect();

    let lines = read_ignore_lines(&text);
    let Ok(m) = Matcher::from_patterns(&lines) else {
        assert!(Matcher::parse(&text).is_err());
        return;
    };
    let _ = (m.is_empty(), m.has_exceptions());

    let x = paths.first().copied().unwrap_or("").trim();
    // The extra patterns go through the `.dockerignore` reader like every other line: it
    // strips `!` before cleaning, so `!/../..` stays an exception (refused, as `!/`). Passed
    // raw to `from_patterns` (the `COPY --exclude` path), cleaning comes first, as in moby's
    // patternmatcher, and `!/../..` cleans to the inclusion `..`: not a bug, and not what
    // these properties are about.
    let with = |pre: &str, post: &str| {
        let mut v = read_ignore_lines(pre);
        v.extend(lines.iter().cloned());
        v.extend(read_ignore_lines(post));
        Matcher::from_patterns(v).ok()
    };
    let plain = !x.is_empty() && !x.starts_with('!') && !x.starts_with('#');
    let appended = plain.then(|| with("", x)).flatten();
    let appended_exc = plain.then(|| with("", &format!("!{x}"))).flatten();
    let prepended_exc = plain.then(|| with(&format!("!{x}"), "")).flatten();

    for &p in &paths {
        let excluded = m.is_excluded(p);
        let prune = m.can_prune_dir(p);
        if matches!(p.trim_start_matches('/'), "" | ".") {
            assert!(!excluded, "the context root {p:?} was excluded");
        }
        if prune {
            assert!(excluded, "{p:?} prunable but not excluded");
        }
        if let Some(a) = &appended {
            assert!(
                !excluded || a.is_excluded(p),
                "appending {x:?} re-included {p:?}"
            );
        }
        if let Some(a) = &appended_exc {
            assert!(
                excluded || !a.is_excluded(p),
                "appending !{x:?} excluded {p:?}"
            );
        }
        if let Some(a) = &prepended_exc {
            assert_eq!(
                a.is_excluded(p),
                excluded,
                "prepending !{x:?} changed {p:?}"
            );
        }
        if prune && clean_rel(p) {
            for &q in &paths {
                if clean_rel(q) {
                    let child = format!("{p}/{q}");
                    assert!(
                        m.is_excluded(&child),
                        "{p:?} was pruned but {child:?} is not excluded (patterns {lines:?})"
                    );
                }
            }
        }
    }
});

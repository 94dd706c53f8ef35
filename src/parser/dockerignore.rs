//! `.dockerignore` patterns with Docker's exact semantics (Go `filepath.Match` plus `**`,
//! `!` exceptions, last match wins), and directory pruning for fast walks.
//!
//! The rules follow moby's `patternmatcher` and its `ignorefile` reader as BuildKit uses them:
//!
//! * a line whose first byte is `#` is a comment (only at column 0, before trimming); other
//!   lines are trimmed, empty ones skipped, a UTF-8 BOM on the first line dropped;
//! * each pattern is cleaned like Go's `filepath.Clean` (so `./a//b/` is `a/b`) and one leading
//!   `/` is removed; a leading `!` makes it an exception;
//! * a pattern is Go `filepath.Match` syntax (`*` and `?` never match `/`, `[...]` classes with
//!   `^` negation, `\` escapes) plus `**`, which matches any number of directories;
//! * a path is excluded when the last pattern matching it, or matching one of its parent
//!   directories, is not an exception.
//!
//! [`go_match`] is Go's `filepath.Match`, also used by COPY wildcards.

use regex::Regex;

/// Errors from a bad pattern.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IgnoreError {
    #[error("invalid .dockerignore pattern {pattern:?}: {reason}")]
    BadPattern { pattern: String, reason: String },
}

/// How one pattern is matched (moby's fast paths, then a regex).
#[derive(Debug, Clone)]
enum Kind {
    /// No wildcard: the path must equal the pattern.
    Exact,
    /// `foo**`: any path starting with `foo`.
    Prefix(String),
    /// `**foo` / `**/foo`: any path ending with the suffix (and `foo` itself for `**/foo`).
    Suffix(String),
    /// Anything else.
    Regex(Regex),
}

#[derive(Debug, Clone)]
struct Pattern {
    /// The cleaned pattern without its `!`.
    text: String,
    exception: bool,
    kind: Kind,
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.text,
            Kind::Prefix(p) => path.starts_with(p.as_str()),
            Kind::Suffix(s) => {
                path.ends_with(s.as_str()) || (s.starts_with('/') && path == &s[1..])
            }
            Kind::Regex(re) => re.is_match(path),
        }
    }

    /// True when this pattern matches `path` or one of its parent directories.
    fn matches_or_parent(&self, path: &str) -> bool {
        if self.matches(path) {
            return true;
        }
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            let parent = &path[..end + i];
            if self.matches(parent) {
                return true;
            }
            end += i + 1;
        }
        false
    }
}

/// A compiled pattern list.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

impl Matcher {
    /// Parses the text of a `.dockerignore` file.
    pub fn parse(text: &str) -> Result<Matcher, IgnoreError> {
        Matcher::from_patterns(read_ignore_lines(text))
    }

    /// Builds a matcher from patterns already split into lines (`COPY --exclude` values, or
    /// the lines [`read_ignore_lines`] returns): each is trimmed and cleaned, `!` marks an
    /// exception.
    pub fn from_patterns<I, S>(patterns: I) -> Result<Matcher, IgnoreError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Vec::new();
        for raw in patterns {
            let p = raw.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let p = go_clean(p);
            let (exception, body) = match p.strip_prefix('!') {
                Some("") => {
                    return Err(IgnoreError::BadPattern {
                        pattern: raw.as_ref().to_string(),
                        reason: "illegal exclusion pattern \"!\"".into(),
                    });
                }
                Some(rest) => (true, rest.to_string()),
                None => (false, p),
            };
            go_match(&body, ".").map_err(|reason| IgnoreError::BadPattern {
                pattern: raw.as_ref().to_string(),
                reason,
            })?;
            let kind = compile(&body).map_err(|reason| IgnoreError::BadPattern {
                pattern: raw.as_ref().to_string(),
                reason,
            })?;
            out.push(Pattern {
                text: body,
                exception,
                kind,
            });
        }
        Ok(Matcher { patterns: out })
    }

    /// True when there are no patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// True when some pattern is a `!` exception.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }

    /// True when `rel` (slash-separated, relative to the context root) is excluded.
    pub fn is_excluded(&self, rel: &str) -> bool {
        let rel = rel.trim_start_matches('/');
        if rel.is_empty() || rel == "." {
            // Docker never excludes the context root itself.
            return false;
        }
        let mut matched = false;
        for p in &self.patterns {
            // An inclusion after a match, or an exception before one, changes nothing.
            if p.exception != matched {
                continue;
            }
            if p.matches_or_parent(rel) {
                matched = !p.exception;
            }
        }
        matched
    }

    /// True when nothing under directory `rel` can be re-included, so a walk may skip it.
    /// Exact for literal exceptions; an exception with `**` or a class keeps every excluded
    /// directory open (correct, merely slower).
    pub fn can_prune_dir(&self, rel: &str) -> bool {
        if !self.is_excluded(rel) {
            return false;
        }
        let rel = rel.trim_start_matches('/');
        let rel_parts: Vec<&str> = rel.split('/').collect();
        for p in self.patterns.iter().filter(|p| p.exception) {
            if exception_may_match_below(&p.text, &rel_parts) {
                return false;
            }
        }
        true
    }
}

/// Could exception pattern `pat` match some path strictly below the directory `dir`?
fn exception_may_match_below(pat: &str, dir: &[&str]) -> bool {
    if pat.contains("**") || pat.contains('[') || pat.contains('\\') {
        return true; // crosses or may cross component boundaries: stay conservative
    }
    let parts: Vec<&str> = pat.split('/').collect();
    if parts.len() <= dir.len() {
        return false;
    }
    dir.iter()
        .zip(&parts)
        .all(|(d, p)| go_match(p, d).unwrap_or(true))
}

/// Splits a `.dockerignore` file into patterns as Docker's reader does: BOM dropped, `#`
/// comment lines (at column 0) and blank lines skipped, each pattern trimmed, cleaned and
/// stripped of one leading `/` (an exception keeps its `!`).
pub fn read_ignore_lines(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut p = line.trim();
        if p.is_empty() {
            continue;
        }
        let invert = p.starts_with('!');
        if invert {
            p = p[1..].trim();
        }
        let mut cleaned = String::new();
        if !p.is_empty() {
            cleaned = go_clean(p);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        out.push(if invert {
            format!("!{cleaned}")
        } else {
            cleaned
        });
    }
    out
}

/// Go's `path.Clean`: lexical cleanup of `.`, `..` and repeated slashes; `""` is `"."`.
pub fn go_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Translates a cleaned pattern as moby's `Pattern.compile` does.
fn compile(pat: &str) -> Result<Kind, String> {
    #[derive(PartialEq, Clone, Copy)]
    enum Ty {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let chars: Vec<char> = pat.chars().collect();
    let mut re = String::from("^");
    let mut ty = Ty::Exact;
    let mut in_class = false;
    let mut i = 0;
    let mut step = 0;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        if ch == '*' {
            if chars.get(i) == Some(&'*') {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i >= chars.len() {
                    if ty == Ty::Exact {
                        ty = Ty::Prefix;
                    } else {
                        re.push_str(".*");
                        ty = Ty::Regex;
                    }
                } else {
                    re.push_str("(.*/)?");
                    ty = Ty::Regex;
                }
                if step == 0 {
                    ty = Ty::Suffix;
                }
            } else {
                re.push_str("[^/]*");
                ty = Ty::Regex;
            }
        } else if ch == '?' {
            re.push_str("[^/]");
            ty = Ty::Regex;
        } else if ".+()|{}$".contains(ch) {
            re.push('\\');
            re.push(ch);
        } else if ch == '\\' {
            if let Some(&next) = chars.get(i) {
                i += 1;
                re.push('\\');
                re.push(next);
                ty = Ty::Regex;
            } else {
                re.push('\\');
            }
        } else if ch == '[' || ch == ']' {
            if in_class && ch == '[' {
                re.push_str("\\[");
            } else {
                re.push(ch);
                in_class = ch == '[';
            }
            ty = Ty::Regex;
        } else if in_class && (ch == '&' || ch == '~') {
            // Go's regexp has no class set operations; keep these literal for Rust's.
            re.push('\\');
            re.push(ch);
        } else {
            re.push(ch);
        }
        step += 1;
    }
    Ok(match ty {
        Ty::Exact => Kind::Exact,
        Ty::Prefix => Kind::Prefix(pat[..pat.len() - 2].to_string()),
        Ty::Suffix => Kind::Suffix(pat[2..].to_string()),
        Ty::Regex => {
            re.push('$');
            Kind::Regex(Regex::new(&re).map_err(|e| e.to_string())?)
        }
    })
}

const BAD: &str = "syntax error in pattern";

/// Go's `filepath.Match(pattern, name)` on Unix: `*` (no `/`), `?`, `[...]` with `^`
/// negation and ranges, `\` escapes. Errors with a reason on a malformed pattern.
pub fn go_match(pattern: &str, name: &str) -> Result<bool, String> {
    let mut pat: &str = pattern;
    let mut name: &str = name;
    'outer: while !pat.is_empty() {
        let (star, chunk, rest) = scan_chunk(pat);
        pat = rest;
        if star && chunk.is_empty() {
            return Ok(!name.contains('/'));
        }
        let (t, ok, err) = match_chunk(chunk, name);
        if ok && (t.is_empty() || !pat.is_empty()) {
            name = t;
            continue;
        }
        if let Some(e) = err {
            return Err(e);
        }
        if star {
            for (i, c) in name.char_indices() {
                if c == '/' {
                    break;
                }
                let after = &name[i + c.len_utf8()..];
                let (t, ok, err) = match_chunk(chunk, after);
                if ok {
                    if pat.is_empty() && !t.is_empty() {
                        continue;
                    }
                    name = t;
                    continue 'outer;
                }
                if let Some(e) = err {
                    return Err(e);
                }
            }
        }
        // Report syntax errors in the rest of the pattern before saying "no".
        while !pat.is_empty() {
            let (_, chunk, rest) = scan_chunk(pat);
            pat = rest;
            if let (_, _, Some(e)) = match_chunk(chunk, "") {
                return Err(e);
            }
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

fn scan_chunk(mut pat: &str) -> (bool, &str, &str) {
    let mut star = false;
    while let Some(r) = pat.strip_prefix('*') {
        pat = r;
        star = true;
    }
    let bytes = pat.as_bytes();
    let mut in_range = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if i + 1 < bytes.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pat[..i], &pat[i..])
}

/// Matches `chunk` at the start of `s`: (rest of s, matched, syntax error).
fn match_chunk<'a>(mut chunk: &str, mut s: &'a str) -> (&'a str, bool, Option<String>) {
    let mut failed = false;
    while !chunk.is_empty() {
        if !failed && s.is_empty() {
            failed = true;
        }
        let c = chunk.chars().next().unwrap_or('\0');
        match c {
            '[' => {
                let mut r = '\0';
                if !failed {
                    r = s.chars().next().unwrap_or('\0');
                    s = &s[r.len_utf8()..];
                }
                chunk = &chunk[1..];
                let mut negated = false;
                if let Some(rest) = chunk.strip_prefix('^') {
                    negated = true;
                    chunk = rest;
                }
                let mut matched = false;
                let mut nrange = 0;
                loop {
                    if chunk.starts_with(']') && nrange > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = match get_esc(chunk) {
                        Ok(v) => v,
                        Err(e) => return ("", false, Some(e)),
                    };
                    chunk = rest;
                    let mut hi = lo;
                    if let Some(rest) = chunk.strip_prefix('-') {
                        match get_esc(rest) {
                            Ok((h, rest)) => {
                                hi = h;
                                chunk = rest;
                            }
                            Err(e) => return ("", false, Some(e)),
                        }
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    nrange += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            '?' => {
                if !failed {
                    let r = s.chars().next().unwrap_or('\0');
                    if r == '/' {
                        failed = true;
                    }
                    s = &s[r.len_utf8().min(s.len())..];
                }
                chunk = &chunk[1..];
            }
            '\\' => {
                chunk = &chunk[1..];
                if chunk.is_empty() {
                    return ("", false, Some(BAD.into()));
                }
                let lit = chunk.chars().next().unwrap_or('\0');
                if !failed {
                    if s.starts_with(lit) {
                        s = &s[lit.len_utf8()..];
                    } else {
                        failed = true;
                    }
                }
                chunk = &chunk[lit.len_utf8()..];
            }
            lit => {
                if !failed {
                    if s.starts_with(lit) {
                        s = &s[lit.len_utf8()..];
                    } else {
                        failed = true;
                    }
                }
                chunk = &chunk[lit.len_utf8()..];
            }
        }
    }
    if failed {
        return ("", false, None);
    }
    (s, true, None)
}

fn get_esc(chunk: &str) -> Result<(char, &str), String> {
    let mut chunk = chunk;
    if chunk.is_empty() || chunk.starts_with('-') || chunk.starts_with(']') {
        return Err(BAD.into());
    }
    if let Some(rest) = chunk.strip_prefix('\\') {
        chunk = rest;
        if chunk.is_empty() {
            return Err(BAD.into());
        }
    }
    let r = chunk.chars().next().ok_or_else(|| BAD.to_string())?;
    let rest = &chunk[r.len_utf8()..];
    if rest.is_empty() {
        return Err(BAD.into());
    }
    Ok((r, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_match_basics() {
        assert_eq!(go_match("*.txt", "a.txt"), Ok(true));
        assert_eq!(go_match("*.txt", "d/a.txt"), Ok(false));
        assert_eq!(go_match("a?c", "abc"), Ok(true));
        assert_eq!(go_match("[a-c]x", "bx"), Ok(true));
        assert_eq!(go_match("[^a-c]x", "bx"), Ok(false));
        assert_eq!(go_match("[!a]x", "!x"), Ok(true));
        assert_eq!(go_match("\\*", "*"), Ok(true));
        assert_eq!(go_match("\\*", "a"), Ok(false));
        assert!(go_match("[", "a").is_err());
        assert!(go_match("a[", ".").is_err());
        assert!(go_match("[a-]", "a").is_err());
        assert!(go_match("x\\", "x").is_err());
        assert_eq!(go_match("*", ""), Ok(true));
        assert_eq!(go_match("a*b*c", "aXbYc"), Ok(true));
        assert_eq!(go_match("a*b", "ab/b"), Ok(false));
    }

    #[test]
    fn clean() {
        assert_eq!(go_clean("./a//b/"), "a/b");
        assert_eq!(go_clean("/../a"), "/a");
        assert_eq!(go_clean("a/../.."), "..");
        assert_eq!(go_clean(""), ".");
        assert_eq!(go_clean("/"), "/");
    }
}

//! The syntax of instruction arguments, as BuildKit's parser reads it: leading `--flag[=value]`
//! words and their checks, JSON (exec) form against shell form, `key=value` pairs and
//! quote-aware word splitting. Pure string work for `dockerfile.rs`.

use super::Result;
use super::ast::Command;
use super::dockerfile::err;

/// Splits leading `--flag[=value]` words off `rest`.
pub(super) fn take_flags(rest: &str) -> (Vec<(String, Option<String>)>, String) {
    let mut flags = Vec::new();
    let mut s = rest.trim_start();
    while let Some(after) = s.strip_prefix("--") {
        let end = after.find(char::is_whitespace).unwrap_or(after.len());
        let word = &after[..end];
        if word.is_empty() {
            // `--` alone ends the flags and is dropped, as BuildKit does.
            s = after.trim_start();
            break;
        }
        match word.split_once('=') {
            // Flag names are case-sensitive in BuildKit (`--NETWORK` is unknown).
            Some((k, v)) => flags.push((k.to_string(), Some(unquote(v)))),
            None => flags.push((word.to_string(), None)),
        }
        s = after[end..].trim_start();
    }
    (flags, s.to_string())
}

pub(super) fn unquote(v: &str) -> String {
    if v.len() >= 2
        && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\'')))
    {
        v[1..v.len() - 1].to_string()
    } else {
        v.to_string()
    }
}

/// An instruction's flags, with the checks BuildKit makes on them.
pub(super) struct Flags {
    pub(super) line: usize,
    pub(super) kw: &'static str,
    pub(super) flags: Vec<(String, Option<String>)>,
}

impl Flags {
    pub(super) fn check(&self, allowed: &[&str]) -> Result<()> {
        for (k, _) in &self.flags {
            if !allowed.contains(&k.as_str()) {
                return Err(err(
                    self.line,
                    format!("unknown flag: --{k} for {}", self.kw),
                ));
            }
        }
        Ok(())
    }
    /// Fails when a single-valued flag is given more than once, as BuildKit does.
    pub(super) fn once(&self, name: &str) -> Result<()> {
        if self.flags.iter().filter(|(k, _)| k == name).count() > 1 {
            return Err(err(
                self.line,
                format!("duplicate flag specified: --{name} for {}", self.kw),
            ));
        }
        Ok(())
    }
    pub(super) fn value(&self, name: &str) -> Result<Option<String>> {
        self.once(name)?;
        match self.flags.iter().rev().find(|(k, _)| k == name) {
            None => Ok(None),
            Some((_, Some(v))) => Ok(Some(v.clone())),
            Some((_, None)) => Err(err(self.line, format!("missing a value on flag: --{name}"))),
        }
    }
    pub(super) fn values(&self, name: &str) -> Result<Vec<String>> {
        self.flags
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| {
                v.clone()
                    .ok_or_else(|| err(self.line, format!("missing a value on flag: --{name}")))
            })
            .collect()
    }
    pub(super) fn boolean(&self, name: &str) -> Result<Option<bool>> {
        self.once(name)?;
        match self.flags.iter().rev().find(|(k, _)| k == name) {
            None => Ok(None),
            Some((_, None)) => Ok(Some(true)),
            Some((_, Some(v))) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(Some(true)),
                "false" | "0" => Ok(Some(false)),
                _ => Err(err(
                    self.line,
                    format!("expecting boolean value for flag {name}, not: {v}"),
                )),
            },
        }
    }
}

/// JSON array of strings, or None (then the text is shell form).
pub(super) fn json_array(s: &str) -> Option<Vec<String>> {
    json_form(s, 0).ok().flatten()
}

/// BuildKit's `parseJSON`: the first JSON value of the text (anything after it is ignored,
/// as Go's `json.Decoder` does). An array of strings is exec form; anything that is not a
/// JSON array falls back to shell form (`Ok(None)`); an array holding a non-string is an
/// error.
pub(super) fn json_form(s: &str, line: usize) -> Result<Option<Vec<String>>> {
    let t = s.trim_start();
    if !t.starts_with('[') {
        return Ok(None);
    }
    let mut values = serde_json::Deserializer::from_str(t).into_iter::<serde_json::Value>();
    match values.next() {
        Some(Ok(serde_json::Value::Array(items))) => items
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s),
                _ => Err(err(
                    line,
                    "when using JSON array syntax, arrays must be comprised of strings only",
                )),
            })
            .collect::<Result<Vec<String>>>()
            .map(Some),
        _ => Ok(None),
    }
}

pub(super) fn command(s: &str, line: usize) -> Result<Command> {
    Ok(match json_form(s, line)? {
        Some(v) => Command::Exec(v),
        None => Command::Shell(s.trim_start().to_string()),
    })
}

/// `k=v k2="v 2"` pairs (quotes kept raw), or the legacy `k v` form when allowed.
pub(super) fn pairs(
    s: &str,
    kw: &str,
    line: usize,
    legacy: bool,
    escape: char,
) -> Result<Vec<(String, String)>> {
    let words = split_words(s, escape);
    if words.is_empty() {
        return Err(err(line, format!("{kw} requires at least one argument")));
    }
    if !words[0].contains('=') {
        if !legacy {
            return Err(err(line, format!("{kw} names can not be blank")));
        }
        let t = s.trim();
        let (k, v) = t
            .split_once(char::is_whitespace)
            .ok_or_else(|| err(line, format!("{kw} must have two arguments")))?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    let mut out = Vec::new();
    for w in words {
        let (k, v) = w.split_once('=').ok_or_else(|| {
            err(
                line,
                format!("Syntax error - can't find = in {w:?}. Must be of the form: name=value"),
            )
        })?;
        if k.is_empty() {
            return Err(err(line, format!("{kw} names can not be blank")));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Splits at whitespace outside quotes, keeping quotes and escapes raw.
pub(super) fn split_words(s: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == escape && q == '"' {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == q {
                    quote = None;
                }
            }
            None if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            None => {
                cur.push(c);
                if c == escape {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == '"' || c == '\'' {
                    quote = Some(c);
                }
            }
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

pub(super) fn valid_name(n: &str) -> bool {
    !n.is_empty() && !n.contains(char::is_whitespace)
}

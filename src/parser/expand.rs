//! BuildKit's shell-word lexer: variable expansion and quote removal for the instructions
//! that BuildKit expands itself (FROM, ADD, COPY, ENV, EXPOSE, LABEL, STOPSIGNAL, USER,
//! VOLUME, WORKDIR, ARG, ONBUILD). Written by hand: no crate implements BuildKit's rules
//! (`${V:-w}`, `${V#p}`, `${V/p/r}`, its quote and escape handling).

/// Errors from expansion (`${V:?msg}` on an unset V, bad substitution syntax).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExpandError {
    #[error("{0}")]
    Bad(String),
}

/// Looks a variable up; `None` when unset.
pub trait Lookup {
    fn get(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Lookup for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// Expands one word (quotes removed, escapes processed) as BuildKit's `ProcessWord` does.
pub fn expand_word(word: &str, env: &dyn Lookup, escape: char) -> Result<String, ExpandError> {
    let mut lx = Lexer {
        chars: word.chars().collect(),
        pos: 0,
        env,
        escape,
    };
    let words = lx.process(false)?;
    Ok(words.into_iter().next().unwrap_or_default())
}

/// Expands and splits into words as BuildKit's `ProcessWords` does (used for e.g. VOLUME, EXPOSE).
pub fn expand_words(
    text: &str,
    env: &dyn Lookup,
    escape: char,
) -> Result<Vec<String>, ExpandError> {
    let mut lx = Lexer {
        chars: text.chars().collect(),
        pos: 0,
        env,
        escape,
    };
    lx.process(true)
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn Lookup,
    escape: char,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    /// The whole input: one word, or words split at unquoted whitespace.
    fn process(&mut self, split: bool) -> Result<Vec<String>, ExpandError> {
        let mut words = Vec::new();
        let mut cur = String::new();
        let mut in_word = false;
        while let Some(c) = self.peek() {
            if split && c.is_whitespace() {
                self.pos += 1;
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
                continue;
            }
            in_word = true;
            match c {
                '\'' => {
                    self.pos += 1;
                    self.single_quoted(&mut cur)?;
                }
                '"' => {
                    self.pos += 1;
                    self.double_quoted(&mut cur)?;
                }
                '$' => {
                    self.pos += 1;
                    let v = self.dollar()?;
                    cur.push_str(&v);
                }
                c if c == self.escape => {
                    self.pos += 1;
                    match self.next() {
                        Some(n) => cur.push(n),
                        None => cur.push(c),
                    }
                }
                c => {
                    self.pos += 1;
                    cur.push(c);
                }
            }
        }
        if in_word || !split {
            words.push(cur);
        }
        Ok(words)
    }

    fn single_quoted(&mut self, out: &mut String) -> Result<(), ExpandError> {
        loop {
            match self.next() {
                Some('\'') => return Ok(()),
                Some(c) => out.push(c),
                None => {
                    return Err(ExpandError::Bad(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    ));
                }
            }
        }
    }

    fn double_quoted(&mut self, out: &mut String) -> Result<(), ExpandError> {
        loop {
            match self.next() {
                Some('"') => return Ok(()),
                Some('$') => {
                    let v = self.dollar()?;
                    out.push_str(&v);
                }
                Some(c) if c == self.escape => match self.peek() {
                    Some(n) if n == '"' || n == '$' || n == self.escape => {
                        self.pos += 1;
                        out.push(n);
                    }
                    _ => out.push(c),
                },
                Some(c) => out.push(c),
                None => {
                    return Err(ExpandError::Bad(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    ));
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut n = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                n.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        n
    }

    /// After `$`.
    fn dollar(&mut self) -> Result<String, ExpandError> {
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                self.braced()
            }
            // `$12`: positional parameters are digits only (unset in a Dockerfile).
            Some(c) if c.is_ascii_digit() => {
                let mut n = String::new();
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    n.push(d);
                    self.pos += 1;
                }
                Ok(self.env.get(&n).unwrap_or_default())
            }
            // Special parameters (`$$`, `$@`, `$?`, …) are one character, as in BuildKit.
            Some(c @ ('@' | '*' | '#' | '?' | '-' | '$' | '!')) => {
                self.pos += 1;
                Ok(self.env.get(&c.to_string()).unwrap_or_default())
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let n = self.name();
                Ok(self.env.get(&n).unwrap_or_default())
            }
            _ => Ok("$".into()),
        }
    }

    /// Reads a nested word up to the closing `}` (quotes and `$` processed).
    fn word_until_brace(&mut self) -> Result<String, ExpandError> {
        self.word_until('}')
    }

    /// Reads a nested word up to `stop` (quotes and `$` processed), consuming `stop`.
    fn word_until(&mut self, stop: char) -> Result<String, ExpandError> {
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(ExpandError::Bad(format!(
                        "missing '{stop}' in variable substitution"
                    )));
                }
                Some(c) if c == stop => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('\'') => {
                    self.pos += 1;
                    self.single_quoted(&mut out)?;
                }
                Some('"') => {
                    self.pos += 1;
                    self.double_quoted(&mut out)?;
                }
                Some('$') => {
                    self.pos += 1;
                    let v = self.dollar()?;
                    out.push_str(&v);
                }
                Some(c) if c == self.escape => {
                    self.pos += 1;
                    if let Some(n) = self.next() {
                        out.push(n);
                    }
                }
                Some(c) => {
                    self.pos += 1;
                    out.push(c);
                }
            }
        }
    }

    fn braced(&mut self) -> Result<String, ExpandError> {
        let name = self.name();
        if name.is_empty() {
            return Err(ExpandError::Bad(
                "bad substitution: missing variable name".into(),
            ));
        }
        let val = self.env.get(&name);
        let op = match self.next() {
            Some('}') => return Ok(val.unwrap_or_default()),
            Some(c) => c,
            None => return Err(ExpandError::Bad(format!("missing '}}' after ${{{name}"))),
        };
        match op {
            ':' => {
                let m = self
                    .next()
                    .ok_or_else(|| ExpandError::Bad(format!("bad substitution in ${{{name}:")))?;
                let word = self.word_until_brace()?;
                let set = val.as_deref().is_some_and(|v| !v.is_empty());
                match m {
                    '-' => Ok(if set { val.unwrap_or_default() } else { word }),
                    '+' => Ok(if set { word } else { String::new() }),
                    '?' => {
                        if set {
                            Ok(val.unwrap_or_default())
                        } else {
                            Err(ExpandError::Bad(format!(
                                "{name}: {}",
                                if word.is_empty() {
                                    "is not allowed to be unset"
                                } else {
                                    &word
                                }
                            )))
                        }
                    }
                    _ => Err(ExpandError::Bad(format!(
                        "unsupported modifier ({m}) in substitution"
                    ))),
                }
            }
            '-' => {
                let word = self.word_until_brace()?;
                Ok(val.unwrap_or(word))
            }
            '+' => {
                let word = self.word_until_brace()?;
                Ok(if val.is_some() { word } else { String::new() })
            }
            '?' => {
                let word = self.word_until_brace()?;
                val.ok_or_else(|| {
                    ExpandError::Bad(format!(
                        "{name}: {}",
                        if word.is_empty() {
                            "is not allowed to be unset"
                        } else {
                            &word
                        }
                    ))
                })
            }
            '#' | '%' => {
                let longest = self.peek() == Some(op);
                if longest {
                    self.pos += 1;
                }
                let pat = self.word_until_brace()?;
                let v = val.unwrap_or_default();
                Ok(trim_pattern(&v, &pat, op == '#', longest))
            }
            '/' => {
                let all = self.peek() == Some('/');
                if all {
                    self.pos += 1;
                }
                // As BuildKit: the pattern ends at the next unescaped `/` (required), the
                // replacement at `}`.
                let pat = self.word_until('/')?;
                let rep = self.word_until_brace()?;
                Ok(replace_pattern(&val.unwrap_or_default(), &pat, &rep, all))
            }
            c => Err(ExpandError::Bad(format!(
                "unsupported modifier ({c}) in substitution"
            ))),
        }
    }
}

/// Shell glob match of a whole string (`*`, `?`, literal otherwise).
fn glob(pat: &[char], s: &[char]) -> bool {
    match pat.first() {
        None => s.is_empty(),
        Some('*') => (0..=s.len()).any(|i| glob(&pat[1..], &s[i..])),
        Some('?') => !s.is_empty() && glob(&pat[1..], &s[1..]),
        Some(c) => s.first() == Some(c) && glob(&pat[1..], &s[1..]),
    }
}

fn trim_pattern(v: &str, pat: &str, prefix: bool, longest: bool) -> String {
    let vc: Vec<char> = v.chars().collect();
    let pc: Vec<char> = pat.chars().collect();
    let n = vc.len();
    let candidates: Box<dyn Iterator<Item = usize>> = if longest {
        Box::new((0..=n).rev())
    } else {
        Box::new(0..=n)
    };
    for k in candidates {
        if prefix {
            if glob(&pc, &vc[..k]) {
                return vc[k..].iter().collect();
            }
        } else if glob(&pc, &vc[n - k..]) {
            return vc[..n - k].iter().collect();
        }
    }
    v.to_string()
}

fn replace_pattern(v: &str, pat: &str, rep: &str, all: bool) -> String {
    if pat.is_empty() {
        return v.to_string();
    }
    let vc: Vec<char> = v.chars().collect();
    let pc: Vec<char> = pat.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut done = false;
    while i < vc.len() {
        if !done {
            // Longest match starting at i.
            if let Some(end) = (i + 1..=vc.len()).rev().find(|&e| glob(&pc, &vc[i..e])) {
                out.push_str(rep);
                i = end;
                if !all {
                    done = true;
                }
                continue;
            }
        }
        out.push(vc[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("hello".into()),
            "EMPTY" => Some(String::new()),
            "P" => Some("/usr/local/bin:/usr/bin".into()),
            "F" => Some("archive.tar.gz".into()),
            _ => None,
        }
    }

    fn x(w: &str) -> String {
        expand_word(w, &env, '\\').unwrap()
    }

    #[test]
    fn table() {
        let cases = [
            ("$A", "hello"),
            ("${A}", "hello"),
            ("pre${A}post", "prehellopost"),
            ("$UNSET", ""),
            ("${UNSET:-dflt}", "dflt"),
            ("${EMPTY:-dflt}", "dflt"),
            ("${EMPTY-dflt}", ""),
            ("${UNSET-dflt}", "dflt"),
            ("${A:+set}", "set"),
            ("${EMPTY:+set}", ""),
            ("${EMPTY+set}", "set"),
            ("${UNSET+set}", ""),
            ("${F#*.}", "tar.gz"),
            ("${F##*.}", "gz"),
            ("${F%.*}", "archive.tar"),
            ("${F%%.*}", "archive"),
            ("${P/usr/opt}", "/opt/local/bin:/usr/bin"),
            ("${P//usr/opt}", "/opt/local/bin:/opt/bin"),
            ("'$A'", "$A"),
            ("\"$A world\"", "hello world"),
            ("\\$A", "$A"),
            ("\"\\$A\"", "$A"),
            ("\"a\\b\"", "a\\b"),
            ("a\\ b", "a b"),
            ("$", "$"),
            ("a$", "a$"),
            ("${UNSET:-$A}", "hello"),
            ("${UNSET:-\"x y\"}", "x y"),
        ];
        for (input, want) in cases {
            assert_eq!(x(input), want, "{input}");
        }
    }

    #[test]
    fn errors() {
        assert!(
            expand_word("${UNSET:?must be set}", &env, '\\')
                .unwrap_err()
                .to_string()
                .contains("must be set")
        );
        assert!(expand_word("${A", &env, '\\').is_err());
        assert!(expand_word("'open", &env, '\\').is_err());
    }

    #[test]
    fn words_split_outside_quotes() {
        assert_eq!(
            expand_words("80 \"$A x\" 53/udp", &env, '\\').unwrap(),
            vec!["80", "hello x", "53/udp"]
        );
    }

    #[test]
    fn backtick_escape() {
        assert_eq!(expand_word("a`$A", &env, '`').unwrap(), "a$A");
    }
}

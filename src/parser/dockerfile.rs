//! Dockerfile text → AST: directives, comments, continuations, heredocs, then one typed
//! instruction per logical line with its flags, in BuildKit's rules.

use super::ast::*;
use super::{ParseError, Result};

const KEYWORDS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError::Syntax {
        line,
        message: message.into(),
    }
}

/// Parses directives: `# key=value` lines at the very top.
fn directives(lines: &[&str]) -> (Directives, usize) {
    let mut d = Directives::default();
    let mut i = 0;
    let mut seen = std::collections::HashSet::new();
    while i < lines.len() {
        let l = lines[i].trim();
        let Some(rest) = l.strip_prefix('#') else {
            break;
        };
        let Some((k, v)) = rest.split_once('=') else {
            break;
        };
        let k = k.trim().to_ascii_lowercase();
        if k.is_empty() || k.contains(char::is_whitespace) || !seen.insert(k.clone()) {
            break;
        }
        let v = v.trim().to_string();
        match k.as_str() {
            "escape" if v == "`" => d.escape = '`',
            "escape" if v == "\\" => d.escape = '\\',
            "syntax" => d.syntax = Some(v),
            "check" => d.check = Some(v),
            _ => {}
        }
        i += 1;
    }
    (d, i)
}

/// Parses a whole Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let (directives, mut i) = directives(&lines);
    let escape = directives.escape;
    let mut nodes = Vec::new();
    while i < lines.len() {
        let trimmed = lines[i].trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            i += 1;
            continue;
        }
        // Join continuation lines; comment and empty lines inside are dropped.
        let start = i;
        let mut logical = String::new();
        loop {
            let raw = lines[i];
            let t = raw.trim_end();
            if let Some(stripped) = t.strip_suffix(escape) {
                logical.push_str(stripped);
                i += 1;
                // Skip comment/blank lines inside the continuation.
                while i < lines.len()
                    && (lines[i].trim().starts_with('#') || lines[i].trim().is_empty())
                {
                    i += 1;
                }
                if i >= lines.len() {
                    break;
                }
            } else {
                logical.push_str(raw);
                i += 1;
                break;
            }
        }
        let end = i.max(start + 1);
        let (node, consumed) =
            parse_logical(&logical, start + 1, end, &lines[i.min(lines.len())..])?;
        i += consumed;
        let mut node = node;
        node.span.end += consumed;
        nodes.push(node);
    }
    if nodes.is_empty() {
        return Err(err(1, "the Dockerfile (Dockerfile) cannot be empty"));
    }
    let first_non_arg = nodes
        .iter()
        .find(|n| !matches!(n.instruction, Instruction::Arg(_)));
    match first_non_arg {
        Some(n) if !matches!(n.instruction, Instruction::From { .. }) => {
            return Err(err(
                n.span.start,
                format!(
                    "no build stage in current context: {} before the first FROM",
                    n.instruction.keyword()
                ),
            ));
        }
        None => {
            return Err(err(
                nodes.last().map(|n| n.span.start).unwrap_or(1),
                "no build stage in current context: the Dockerfile has no FROM",
            ));
        }
        _ => {}
    }
    Ok(Dockerfile { directives, nodes })
}

/// Parses one instruction line (ONBUILD triggers).
pub fn parse_instruction(line: &str, _escape: char) -> Result<Node> {
    let (node, _) = parse_logical(line, 1, 1, &[])?;
    Ok(node)
}

fn did_you_mean(word: &str) -> String {
    let up = word.to_ascii_uppercase();
    let best = KEYWORDS
        .iter()
        .min_by_key(|k| levenshtein(k, &up))
        .filter(|k| levenshtein(k, &up) <= 2);
    match best {
        Some(k) => format!(
            "unknown instruction: {word} (did you mean {}?)",
            k.to_ascii_lowercase()
        ),
        None => format!("unknown instruction: {word}"),
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Splits leading `--flag[=value]` words off `rest`.
fn take_flags(rest: &str) -> (Vec<(String, Option<String>)>, String) {
    let mut flags = Vec::new();
    let mut s = rest.trim_start();
    while let Some(after) = s.strip_prefix("--") {
        let end = after.find(char::is_whitespace).unwrap_or(after.len());
        let word = &after[..end];
        if word.is_empty() {
            break;
        }
        match word.split_once('=') {
            Some((k, v)) => flags.push((k.to_ascii_lowercase(), Some(unquote(v)))),
            None => flags.push((word.to_ascii_lowercase(), None)),
        }
        s = after[end..].trim_start();
    }
    (flags, s.to_string())
}

fn unquote(v: &str) -> String {
    if v.len() >= 2
        && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\'')))
    {
        v[1..v.len() - 1].to_string()
    } else {
        v.to_string()
    }
}

struct Flags {
    line: usize,
    kw: &'static str,
    flags: Vec<(String, Option<String>)>,
}

impl Flags {
    fn check(&self, allowed: &[&str]) -> Result<()> {
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
    fn value(&self, name: &str) -> Result<Option<String>> {
        match self.flags.iter().rev().find(|(k, _)| k == name) {
            None => Ok(None),
            Some((_, Some(v))) => Ok(Some(v.clone())),
            Some((_, None)) => Err(err(self.line, format!("missing a value on flag: --{name}"))),
        }
    }
    fn values(&self, name: &str) -> Result<Vec<String>> {
        self.flags
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| {
                v.clone()
                    .ok_or_else(|| err(self.line, format!("missing a value on flag: --{name}")))
            })
            .collect()
    }
    fn boolean(&self, name: &str) -> Result<Option<bool>> {
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
fn json_array(s: &str) -> Option<Vec<String>> {
    let t = s.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

fn command(s: &str) -> Command {
    match json_array(s) {
        Some(v) => Command::Exec(v),
        None => Command::Shell(s.trim_start().to_string()),
    }
}

/// Heredoc markers (`<<EOF`, `<<-EOF`, `<<"EOF"`) in a line: (name, strip tabs, expand).
fn heredoc_markers(s: &str) -> Vec<(String, bool, bool)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i + 1 < b.len() {
        let c = b[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if c == b'\'' || c == b'"' {
            quote = Some(c);
            i += 1;
            continue;
        }
        if c == b'<' && b[i + 1] == b'<' && (i + 2 >= b.len() || b[i + 2] != b'<') {
            let mut j = i + 2;
            let strip = j < b.len() && b[j] == b'-';
            if strip {
                j += 1;
            }
            let q = if j < b.len() && (b[j] == b'"' || b[j] == b'\'') {
                Some(b[j])
            } else {
                None
            };
            if q.is_some() {
                j += 1;
            }
            let start = j;
            while j < b.len()
                && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'-' || b[j] == b'.')
            {
                j += 1;
            }
            if j > start {
                let name = s[start..j].to_string();
                if let Some(q) = q {
                    if j < b.len() && b[j] == q {
                        j += 1;
                    } else {
                        i += 2;
                        continue;
                    }
                }
                out.push((name, strip, q.is_none()));
                i = j;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Reads heredoc bodies from `following` lines; returns them and how many lines they used.
fn read_heredocs(
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

/// `k=v k2="v 2"` pairs (quotes kept raw), or the legacy `k v` form when allowed.
fn pairs(s: &str, kw: &str, line: usize, legacy: bool) -> Result<Vec<(String, String)>> {
    let words = split_words(s);
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
        let (k, v) = w.split_once('=').ok_or_else(|| err(line, format!("{kw} names can not be blank: syntax error - can't find = in {w:?}. Must be of the form: name=value")))?;
        if k.is_empty() {
            return Err(err(line, format!("{kw} names can not be blank")));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Splits at whitespace outside quotes, keeping quotes and escapes raw.
fn split_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == '\\' && q == '"' {
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
                if c == '\\' {
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

fn valid_name(n: &str) -> bool {
    !n.is_empty() && !n.contains(char::is_whitespace)
}

fn parse_logical(
    logical: &str,
    line: usize,
    end: usize,
    following: &[&str],
) -> Result<(Node, usize)> {
    let t = logical.trim_start();
    let (kw_raw, rest) = match t.find(char::is_whitespace) {
        Some(p) => (&t[..p], t[p..].trim_start()),
        None => (t, ""),
    };
    let kw_up = kw_raw.to_ascii_uppercase();
    let Some(&kw) = KEYWORDS.iter().find(|k| **k == kw_up) else {
        return Err(err(line, did_you_mean(kw_raw)));
    };
    let (flags, args) = take_flags(rest);
    let f = Flags { line, kw, flags };
    let args = args.trim_end().to_string();
    let mut consumed = 0;
    let need_args = |a: &str| -> Result<()> {
        if a.trim().is_empty() {
            return Err(err(line, format!("{kw} requires at least one argument")));
        }
        Ok(())
    };
    let instruction = match kw {
        "FROM" => {
            f.check(&["platform"])?;
            let w = split_words(&args);
            let (image, name) = match w.as_slice() {
                [img] => (img.clone(), None),
                [img, as_, name] if as_.eq_ignore_ascii_case("as") => {
                    (img.clone(), Some(name.to_ascii_lowercase()))
                }
                [] => return Err(err(line, "FROM requires either one or three arguments")),
                _ => return Err(err(line, "FROM requires either one or three arguments")),
            };
            Instruction::From {
                image,
                name,
                platform: f.value("platform")?,
            }
        }
        "RUN" => {
            f.check(&["mount", "network", "security", "device"])?;
            let markers = heredoc_markers(&args);
            let (heredocs, used) = read_heredocs(&markers, following, line)?;
            consumed = used;
            if heredocs.is_empty() {
                need_args(&args)?;
            }
            Instruction::Run {
                cmd: if heredocs.is_empty() {
                    command(&args)
                } else {
                    Command::Shell(args.clone())
                },
                heredocs,
                mounts: f.values("mount")?,
                network: f.value("network")?,
                security: f.value("security")?,
                devices: f.values("device")?,
            }
        }
        "CMD" | "ENTRYPOINT" => {
            f.check(&[])?;
            let c = command(&args);
            if kw == "CMD" {
                Instruction::Cmd(c)
            } else {
                Instruction::Entrypoint(c)
            }
        }
        "LABEL" => {
            f.check(&[])?;
            Instruction::Label(pairs(&args, "LABEL", line, true)?)
        }
        "MAINTAINER" => {
            f.check(&[])?;
            need_args(&args)?;
            Instruction::Maintainer(args.clone())
        }
        "EXPOSE" => {
            f.check(&[])?;
            need_args(&args)?;
            Instruction::Expose(split_words(&args))
        }
        "ENV" => {
            f.check(&[])?;
            let p = pairs(&args, "ENV", line, true)?;
            for (k, _) in &p {
                if !valid_name(k) {
                    return Err(err(line, format!("invalid ENV name {k:?}")));
                }
            }
            Instruction::Env(p)
        }
        "ADD" | "COPY" => {
            let allowed: &[&str] = if kw == "ADD" {
                &[
                    "chown",
                    "chmod",
                    "link",
                    "parents",
                    "exclude",
                    "keep-git-dir",
                    "checksum",
                    "unpack",
                    "from",
                ]
            } else {
                &["from", "chown", "chmod", "link", "parents", "exclude"]
            };
            f.check(allowed)?;
            let markers = heredoc_markers(&args);
            let (heredocs, used) = read_heredocs(&markers, following, line)?;
            consumed = used;
            let (words, json_form) = match json_array(&args) {
                Some(v) => (v, true),
                None => (split_words(&args), false),
            };
            if words.len() < 2 {
                return Err(err(
                    line,
                    format!(
                        "{kw} requires at least two arguments, but only one was provided. Destination could not be determined"
                    ),
                ));
            }
            let dest = words[words.len() - 1].clone();
            let sources = words[..words.len() - 1].to_vec();
            Instruction::Copy(CopyArgs {
                sources,
                dest,
                heredocs,
                from: f.value("from")?,
                chown: f.value("chown")?,
                chmod: f.value("chmod")?,
                link: f.boolean("link")?.unwrap_or(false),
                parents: f.boolean("parents")?.unwrap_or(false),
                exclude: f.values("exclude")?,
                keep_git_dir: f.boolean("keep-git-dir")?.unwrap_or(false),
                checksum: f.value("checksum")?,
                unpack: f.boolean("unpack")?,
                json_form,
            })
        }
        "VOLUME" => {
            f.check(&[])?;
            need_args(&args)?;
            Instruction::Volume(json_array(&args).unwrap_or_else(|| split_words(&args)))
        }
        "USER" => {
            f.check(&[])?;
            need_args(&args)?;
            Instruction::User(args.clone())
        }
        "WORKDIR" => {
            f.check(&[])?;
            need_args(&args)?;
            Instruction::Workdir(args.clone())
        }
        "ARG" => {
            f.check(&[])?;
            need_args(&args)?;
            let mut out = Vec::new();
            for w in split_words(&args) {
                let (n, d) = match w.split_once('=') {
                    Some((n, d)) => (n.to_string(), Some(d.to_string())),
                    None => (w.clone(), None),
                };
                if n.is_empty()
                    || !n
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
                {
                    return Err(err(line, format!("invalid ARG name {n:?}")));
                }
                out.push((n, d));
            }
            Instruction::Arg(out)
        }
        "ONBUILD" => {
            f.check(&[])?;
            need_args(&args)?;
            let (inner, used) = parse_logical(&args, line, end, following)?;
            consumed = used;
            if matches!(
                inner.instruction,
                Instruction::Onbuild(_) | Instruction::From { .. } | Instruction::Maintainer(_)
            ) {
                return Err(err(
                    line,
                    format!(
                        "{} isn't allowed as an ONBUILD trigger",
                        inner.instruction.keyword()
                    ),
                ));
            }
            Instruction::Onbuild(Box::new(inner))
        }
        "STOPSIGNAL" => {
            f.check(&[])?;
            need_args(&args)?;
            Instruction::StopSignal(args.clone())
        }
        "HEALTHCHECK" => {
            f.check(&[
                "interval",
                "timeout",
                "start-period",
                "start-interval",
                "retries",
            ])?;
            let w = args.trim();
            if w.eq_ignore_ascii_case("NONE") {
                Instruction::Healthcheck(None)
            } else {
                let (ty, rest) = match w.find(char::is_whitespace) {
                    Some(p) => (&w[..p], w[p..].trim_start()),
                    None => (w, ""),
                };
                if !ty.eq_ignore_ascii_case("CMD") {
                    return Err(err(
                        line,
                        format!("Unknown type {ty:?} in HEALTHCHECK (try CMD)"),
                    ));
                }
                need_args(rest)?;
                Instruction::Healthcheck(Some(Healthcheck {
                    cmd: Some(command(rest)),
                    interval: f.value("interval")?,
                    timeout: f.value("timeout")?,
                    start_period: f.value("start-period")?,
                    start_interval: f.value("start-interval")?,
                    retries: f.value("retries")?,
                }))
            }
        }
        "SHELL" => {
            f.check(&[])?;
            let v = json_array(&args)
                .ok_or_else(|| err(line, "SHELL requires the arguments to be in JSON form"))?;
            if v.is_empty() {
                return Err(err(line, "SHELL requires at least one argument"));
            }
            Instruction::Shell(v)
        }
        _ => return Err(err(line, did_you_mean(kw_raw))),
    };
    let instruction = match (kw, instruction) {
        ("ADD", Instruction::Copy(a)) => Instruction::Add(a),
        (_, i) => i,
    };
    let original = format!("{kw} {}", rest.trim()).trim_end().to_string();
    Ok((
        Node {
            instruction,
            span: Span {
                start: line,
                end: end.max(line),
            },
            original,
        },
        consumed,
    ))
}

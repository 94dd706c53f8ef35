//! Dockerfile text → AST: directives, comments, continuations, heredocs, then one typed
//! instruction per logical line with its flags, in BuildKit's rules.

use super::ast::*;
use super::heredoc::{heredoc_markers, read_heredocs};
use super::words::{
    Flags, command, json_array, json_form, pairs, split_words, take_flags, valid_name,
};
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

pub(super) fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError::Syntax {
        line,
        message: message.into(),
    }
}

/// Parses directives: `# key=value` lines at the very top, as BuildKit does: the first line
/// that is not a directive of a known kind (`syntax`, `escape`, `check`) ends them, so an
/// unknown directive is a comment and so is every directive after it.
fn directives(lines: &[&str]) -> Result<(Directives, usize)> {
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
        let k = k.trim();
        let v = v.trim();
        let key_ok = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && k.chars().all(|c| c.is_ascii_alphanumeric());
        if !key_ok || v.is_empty() {
            break;
        }
        let k = k.to_ascii_lowercase();
        if !matches!(k.as_str(), "syntax" | "escape" | "check") {
            break;
        }
        if !seen.insert(k.clone()) {
            return Err(err(
                i + 1,
                format!("only one {k} parser directive can be used"),
            ));
        }
        match k.as_str() {
            "escape" => {
                d.escape = match v {
                    "`" => '`',
                    "\\" => '\\',
                    _ => {
                        return Err(err(
                            i + 1,
                            format!("invalid escape token '{v}' does not match ` or \\"),
                        ));
                    }
                }
            }
            "syntax" => d.syntax = Some(v.to_string()),
            _ => d.check = Some(v.to_string()),
        }
        i += 1;
    }
    Ok((d, i))
}

/// Parses a whole Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // A final newline ends the last line; it does not start another.
    let body = text.strip_suffix('\n').unwrap_or(text);
    let lines: Vec<&str> = if text.is_empty() {
        Vec::new()
    } else {
        body.split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect()
    };
    let (directives, mut i) = directives(&lines)?;
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
        let (node, consumed) = parse_logical(
            &logical,
            start + 1,
            end,
            &lines[i.min(lines.len())..],
            escape,
        )?;
        i += consumed;
        let mut node = node;
        node.span.end += consumed;
        nodes.push(node);
    }
    if nodes.is_empty() {
        return Err(err(1, "the Dockerfile cannot be empty"));
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
                "dockerfile contains no stages to build: add a FROM line",
            ));
        }
        _ => {}
    }
    Ok(Dockerfile { directives, nodes })
}

/// Parses one instruction line (ONBUILD triggers).
pub fn parse_instruction(line: &str, escape: char) -> Result<Node> {
    let (node, _) = parse_logical(line, 1, 1, &[], escape)?;
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

/// The edit distance between `a` and `b` ("did you mean" suggestions here and in `lint`).
pub(crate) fn levenshtein(a: &str, b: &str) -> usize {
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

fn parse_logical(
    logical: &str,
    line: usize,
    end: usize,
    following: &[&str],
    escape: char,
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
            let w = split_words(&args, escape);
            let (image, name) = match w.as_slice() {
                [img] => (img.clone(), None),
                [img, as_, name] if as_.eq_ignore_ascii_case("as") => {
                    let name = name.to_ascii_lowercase();
                    // BuildKit: ^[a-z][a-z0-9-_.]*$ after lower-casing.
                    let ok = name.starts_with(|c: char| c.is_ascii_lowercase())
                        && name.chars().all(|c| {
                            c.is_ascii_lowercase()
                                || c.is_ascii_digit()
                                || matches!(c, '-' | '_' | '.')
                        });
                    if !ok {
                        return Err(err(
                            line,
                            format!(
                                "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
                            ),
                        ));
                    }
                    (img.clone(), Some(name))
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
                    command(&args, line)?
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
            let c = command(&args, line)?;
            if kw == "CMD" {
                Instruction::Cmd(c)
            } else {
                Instruction::Entrypoint(c)
            }
        }
        "LABEL" => {
            f.check(&[])?;
            Instruction::Label(pairs(&args, "LABEL", line, true, escape)?)
        }
        "MAINTAINER" => {
            f.check(&[])?;
            need_args(&args)?;
            Instruction::Maintainer(args.clone())
        }
        "EXPOSE" => {
            f.check(&[])?;
            need_args(&args)?;
            Instruction::Expose(split_words(&args, escape))
        }
        "ENV" => {
            f.check(&[])?;
            let p = pairs(&args, "ENV", line, true, escape)?;
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
            let (words, json_form) = match json_form(&args, line)? {
                Some(v) => (v, true),
                None => (split_words(&args, escape), false),
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
            Instruction::Volume(match json_form(&args, line)? {
                Some(v) => v,
                None => split_words(&args, escape),
            })
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
            for w in split_words(&args, escape) {
                let (n, d) = match w.split_once('=') {
                    Some((n, d)) => (n.to_string(), Some(d.to_string())),
                    None => (w.clone(), None),
                };
                if n.is_empty() {
                    return Err(err(line, "ARG names can not be blank"));
                }
                if !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
                {
                    return Err(err(
                        line,
                        format!(
                            "invalid ARG name {n:?}: use letters, digits, '_', '-' and '.' only"
                        ),
                    ));
                }
                out.push((n, d));
            }
            Instruction::Arg(out)
        }
        "ONBUILD" => {
            f.check(&[])?;
            need_args(&args)?;
            let (inner, used) = parse_logical(&args, line, end, following, escape)?;
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
            need_args(w)?;
            let (ty, rest) = match w.find(char::is_whitespace) {
                Some(p) => (&w[..p], w[p..].trim_start()),
                None => (w, ""),
            };
            if ty.eq_ignore_ascii_case("NONE") {
                if !rest.is_empty() {
                    return Err(err(line, "HEALTHCHECK NONE takes no arguments"));
                }
                Instruction::Healthcheck(None)
            } else {
                if !ty.eq_ignore_ascii_case("CMD") {
                    return Err(err(
                        line,
                        format!(
                            "Unknown type {:?} in HEALTHCHECK (try CMD)",
                            ty.to_ascii_uppercase()
                        ),
                    ));
                }
                if rest.is_empty() || json_array(rest).is_some_and(|v| v.is_empty()) {
                    return Err(err(line, "Missing command after HEALTHCHECK CMD"));
                }
                Instruction::Healthcheck(Some(Healthcheck {
                    cmd: Some(command(rest, line)?),
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
            let v = json_form(&args, line)?
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

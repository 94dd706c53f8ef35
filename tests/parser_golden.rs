//! Golden tests of the Dockerfile parser and of word expansion.
//!
//! Each `tests/fixtures/parser/<case>/Dockerfile` has either `expected` (the AST dump below) or
//! `error` (the exact `ParseError` message). `tests/fixtures/expand/cases.txt` is a table of
//! `input<TAB>expected[<TAB>escape]` rows expanded with a fixed environment.
//! `UPDATE_GOLDEN=1 cargo test --test parser_golden` rewrites the golden files.
#![allow(clippy::print_stderr)] // the tests report counts on stderr

#[path = "golden_util/mod.rs"]
mod common;

use hoist::parser::expand::expand_word;
use hoist::parser::{self, Command, CopyArgs, Dockerfile, Heredoc, Instruction, Node};
use std::fmt::Write;
use std::path::Path;

fn opt(v: &Option<String>) -> String {
    match v {
        Some(s) => format!("{s:?}"),
        None => "-".into(),
    }
}

fn cmd(c: &Command) -> String {
    match c {
        Command::Exec(v) => format!("exec={v:?}"),
        Command::Shell(s) => format!("shell={s:?}"),
    }
}

fn heredocs(out: &mut String, indent: &str, docs: &[Heredoc]) {
    for h in docs {
        let _ = writeln!(
            out,
            "{indent}  heredoc {:?} expand={} content={:?}",
            h.name, h.expand, h.content
        );
    }
}

fn copy_args(a: &CopyArgs) -> String {
    let mut s = format!("src={:?} dest={:?}", a.sources, a.dest);
    for (k, v) in [
        ("from", &a.from),
        ("chown", &a.chown),
        ("chmod", &a.chmod),
        ("checksum", &a.checksum),
    ] {
        if v.is_some() {
            let _ = write!(s, " {k}={}", opt(v));
        }
    }
    for (k, v) in [
        ("link", a.link),
        ("parents", a.parents),
        ("keep-git-dir", a.keep_git_dir),
        ("json", a.json_form),
    ] {
        if v {
            let _ = write!(s, " {k}");
        }
    }
    if let Some(u) = a.unpack {
        let _ = write!(s, " unpack={u}");
    }
    if !a.exclude.is_empty() {
        let _ = write!(s, " exclude={:?}", a.exclude);
    }
    s
}

fn node(out: &mut String, indent: &str, n: &Node) {
    let _ = write!(
        out,
        "{indent}{}-{} {} ",
        n.span.start,
        n.span.end,
        n.instruction.keyword()
    );
    let mut docs: &[Heredoc] = &[];
    let rest = match &n.instruction {
        Instruction::From {
            image,
            name,
            platform,
        } => format!(
            "image={image:?} name={} platform={}",
            opt(name),
            opt(platform)
        ),
        Instruction::Run {
            cmd: c,
            heredocs: h,
            mounts,
            network,
            security,
            devices,
        } => {
            docs = h;
            let mut s = cmd(c);
            for m in mounts {
                let _ = write!(s, " mount={m:?}");
            }
            if network.is_some() {
                let _ = write!(s, " network={}", opt(network));
            }
            if security.is_some() {
                let _ = write!(s, " security={}", opt(security));
            }
            for d in devices {
                let _ = write!(s, " device={d:?}");
            }
            s
        }
        Instruction::Cmd(c) | Instruction::Entrypoint(c) => cmd(c),
        Instruction::Label(p) | Instruction::Env(p) => format!("{p:?}"),
        Instruction::Maintainer(s)
        | Instruction::User(s)
        | Instruction::Workdir(s)
        | Instruction::StopSignal(s) => format!("{s:?}"),
        Instruction::Expose(v) | Instruction::Volume(v) | Instruction::Shell(v) => {
            format!("{v:?}")
        }
        Instruction::Add(a) | Instruction::Copy(a) => {
            docs = &a.heredocs;
            copy_args(a)
        }
        Instruction::Arg(v) => v
            .iter()
            .map(|(k, d)| match d {
                Some(d) => format!("{k}={d:?}"),
                None => k.clone(),
            })
            .collect::<Vec<_>>()
            .join(" "),
        Instruction::Onbuild(inner) => {
            out.pop();
            let _ = writeln!(out);
            node(out, &format!("{indent}  "), inner);
            return;
        }
        Instruction::Healthcheck(None) => "NONE".into(),
        Instruction::Healthcheck(Some(h)) => {
            let mut s = h.cmd.as_ref().map(cmd).unwrap_or_else(|| "-".into());
            for (k, v) in [
                ("interval", &h.interval),
                ("timeout", &h.timeout),
                ("start-period", &h.start_period),
                ("start-interval", &h.start_interval),
                ("retries", &h.retries),
            ] {
                if v.is_some() {
                    let _ = write!(s, " {k}={}", opt(v));
                }
            }
            s
        }
    };
    let _ = writeln!(out, "{rest}");
    heredocs(out, indent, docs);
}

/// The AST, one line per node.
fn dump(df: &Dockerfile) -> String {
    let d = &df.directives;
    let mut out = format!(
        "directives syntax={} escape={:?} check={}\n",
        opt(&d.syntax),
        d.escape,
        opt(&d.check)
    );
    for n in &df.nodes {
        node(&mut out, "", n);
    }
    out
}

fn parse_case(case: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(case.join("Dockerfile"))
        .unwrap_or_else(|e| panic!("{}: {e}", case.display()));
    parser::parse(&text)
        .map(|df| dump(&df))
        .map_err(|e| e.to_string())
}

#[test]
fn parser_golden() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parser");
    let n = common::run_all(&dir, parse_case);
    eprintln!("{n} parser golden cases");
}

fn env(name: &str) -> Option<String> {
    match name {
        "A" => Some("hello".into()),
        "EMPTY" => Some(String::new()),
        "P" => Some("/usr/local/bin:/usr/bin".into()),
        "F" => Some("archive.tar.gz".into()),
        "SP" => Some("a b".into()),
        "Q" => Some("it's \"q\"".into()),
        _ => None,
    }
}

/// `tests/fixtures/expand/cases.txt`: `input<TAB>expected[<TAB>escape]`; an expected value
/// `ERROR: message` means expansion must fail with that message. Rewritten by UPDATE_GOLDEN.
#[test]
fn expand_table() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/expand/cases.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
    let mut out = String::new();
    let mut failures = Vec::new();
    let mut rows = 0;
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with("##") {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let (input, want, esc) = match cols.as_slice() {
            [i, w] => (*i, *w, '\\'),
            [i, w, e] => (*i, *w, e.chars().next().unwrap_or('\\')),
            _ => panic!("{}:{}: want input<TAB>expected", path.display(), i + 1),
        };
        rows += 1;
        let got = match expand_word(input, &env, esc) {
            Ok(v) => v,
            Err(e) => format!("ERROR: {e}"),
        };
        if got != want {
            failures.push(format!(
                "line {}: {input:?}: expected {want:?}, got {got:?}",
                i + 1
            ));
        }
        let _ = write!(out, "{input}\t{got}");
        if cols.len() == 3 {
            let _ = write!(out, "\t{esc}");
        }
        out.push('\n');
    }
    if common::updating() {
        std::fs::write(&path, out).unwrap_or_else(|e| panic!("{e}"));
        return;
    }
    assert!(
        failures.is_empty(),
        "{} of {rows} expansion rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{rows} expansion rows");
}

//! The typed Dockerfile AST. Every string that BuildKit expands at build time is kept raw
//! (quotes and `$VAR` intact): the engine expands it with `parser::expand` and the stage's
//! environment, because values such as `$PATH` come from the base image's config.

/// Lines a node spans in its Dockerfile, 1-based, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// Parser directives from the top of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    pub syntax: Option<String>,
    /// `\` (default) or `` ` ``.
    pub escape: char,
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives { syntax: None, escape: '\\', check: None }
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dockerfile {
    pub directives: Directives,
    /// Every instruction in file order, global ARGs and FROMs included.
    pub nodes: Vec<Node>,
}

/// One instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub instruction: Instruction,
    pub span: Span,
    /// The instruction's source text, continuation lines joined, heredoc bodies excluded
    /// (as BuildKit shows it in progress and errors).
    pub original: String,
}

/// Exec form or shell form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `["a", "b"]`: run as is.
    Exec(Vec<String>),
    /// Anything else: run with the stage's SHELL (`/bin/sh -c` by default).
    Shell(String),
}

/// A here-document attached to RUN, COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word (`EOF`), without quotes or `-`.
    pub name: String,
    /// The body, with a trailing newline, tabs already stripped for `<<-`.
    pub content: String,
    /// False when the delimiter was quoted: the body is taken literally.
    pub expand: bool,
}

/// `--mount` as written (`type=cache,target=/x`); the engine expands it, then parses it
/// with `parser::mounts::parse_mount`.
pub type RawMount = String;

/// Flags shared by COPY and ADD, raw (unexpanded).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyArgs {
    /// Source words (raw), or heredoc names when the source is `<<EOF`.
    pub sources: Vec<String>,
    /// Destination word (raw).
    pub dest: String,
    /// Heredocs used as sources, in order.
    pub heredocs: Vec<Heredoc>,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
    /// ADD only.
    pub keep_git_dir: bool,
    /// ADD only.
    pub checksum: Option<String>,
    /// ADD only: `--unpack` (None: default behaviour).
    pub unpack: Option<bool>,
    /// True when the sources were written in JSON form.
    pub json_form: bool,
}

/// HEALTHCHECK CMD with its options (durations as written, e.g. `30s`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Healthcheck {
    pub cmd: Option<Command>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    pub retries: Option<String>,
}

/// Every Dockerfile instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    From { image: String, name: Option<String>, platform: Option<String> },
    Run { cmd: Command, heredocs: Vec<Heredoc>, mounts: Vec<RawMount>, network: Option<String>, security: Option<String>, devices: Vec<String> },
    Cmd(Command),
    Entrypoint(Command),
    /// Raw `key=value` pairs; both sides expanded and unquoted at build time.
    Label(Vec<(String, String)>),
    Maintainer(String),
    /// Raw port words (`80`, `53/udp`, `8000-8010`).
    Expose(Vec<String>),
    /// Raw `key=value` pairs (legacy `ENV k v` becomes one pair).
    Env(Vec<(String, String)>),
    Add(CopyArgs),
    Copy(CopyArgs),
    /// Raw paths.
    Volume(Vec<String>),
    User(String),
    Workdir(String),
    /// Names with raw defaults.
    Arg(Vec<(String, Option<String>)>),
    /// The trigger instruction, parsed (never FROM, ONBUILD or MAINTAINER).
    Onbuild(Box<Node>),
    StopSignal(String),
    /// `None` for `HEALTHCHECK NONE`.
    Healthcheck(Option<Healthcheck>),
    Shell(Vec<String>),
}

impl Instruction {
    /// Upper-case keyword, as in `RUN`.
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::From { .. } => "FROM",
            Instruction::Run { .. } => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Label(_) => "LABEL",
            Instruction::Maintainer(_) => "MAINTAINER",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Env(_) => "ENV",
            Instruction::Add(_) => "ADD",
            Instruction::Copy(_) => "COPY",
            Instruction::Volume(_) => "VOLUME",
            Instruction::User(_) => "USER",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::Arg(_) => "ARG",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Shell(_) => "SHELL",
        }
    }
}

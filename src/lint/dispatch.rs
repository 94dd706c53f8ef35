//! The rules BuildKit checks while it converts each stage: the stage's variables in scope
//! (the base image's env, PATH when it has none, ARGs with a value, ENVs; a base stage passes
//! its scope on) decide UndefinedVar for every word BuildKit expands (ENV, LABEL, COPY/ADD
//! flags, sources, destination and heredoc bodies, WORKDIR, USER, VOLUME, STOPSIGNAL, RUN
//! `--mount` values, ARG defaults); the same walk checks legacy ENV/LABEL, ENV/ARG secrets,
//! CMD/ENTRYPOINT form and repetition, HEALTHCHECK repetition, WORKDIR, EXPOSE and COPY/ADD
//! sources the `.dockerignore` excludes.

use super::from::Meta;
use super::secrets::is_secret_key;
use super::source::NodeSource;
use super::{
    BaseConfig, CheckConfig, Env, Request, Sink, StageNodes, expand_tracked, rules, suggest,
};
use crate::parser::{Command, Instruction, Node, Span};

/// ARGs BuildKit never puts into the environment.
const NON_ENV_ARGS: &[&str] = &["BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"];
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A stage's scope as its instructions change it.
#[derive(Debug, Clone, Default)]
struct State {
    /// What expansion sees (BuildKit's state env: the latest assignment last).
    env: Env,
    /// The image config's `Env` (ENV replaces a variable in place; ARG is not in it): a
    /// stage built on this one re-applies it over the inherited scope, which reorders it.
    config_env: Vec<(String, String)>,
    /// Names declared by ARG in this stage (or its base stage): never "undefined".
    args: Vec<String>,
    shell: Vec<String>,
    workdir_set: bool,
}

/// The last CMD, ENTRYPOINT and HEALTHCHECK of a stage (not inherited).
#[derive(Default)]
struct Seen {
    cmd: Option<Span>,
    entrypoint: Option<Span>,
    healthcheck: Option<Span>,
}

struct Walk<'a, 'r> {
    req: &'a Request<'r>,
    meta: &'a Meta,
    sink: &'a mut Sink,
    escape: char,
}

pub(super) fn check(
    req: &Request,
    stages: &[StageNodes],
    src: &[NodeSource],
    meta: &Meta,
    cfg: &CheckConfig,
    sink: &mut Sink,
) {
    let nodes = &req.dockerfile.nodes;
    let mut walk = Walk {
        req,
        meta,
        sink,
        escape: req.dockerfile.directives.escape,
    };
    let mut done: Vec<Option<State>> = vec![None; stages.len()];
    for (i, st) in stages.iter().enumerate() {
        if req.stages.is_some_and(|s| !s.contains(&i)) {
            continue;
        }
        let base = meta.bases[i].as_deref();
        let parent = base.and_then(|b| {
            stages[..i]
                .iter()
                .rposition(|s| s.name.as_deref() == Some(b))
        });
        let from_span = nodes[st.from].span;
        let want = meta.platforms[i]
            .clone()
            .unwrap_or_else(|| req.target_platform.clone());
        let config = base.and_then(|b| req.bases.get(&super::base_key(b, &want)));
        let mut state = match parent {
            Some(j) => {
                let mut st = done[j].clone().unwrap_or_default();
                for (k, v) in st.config_env.clone() {
                    st.env.set(&k, &v);
                }
                st
            }
            None => start(config, base == Some("scratch")),
        };
        if let (None, Some(b), Some(have)) =
            (parent, base, config.and_then(|c| c.platform.as_ref()))
            && (want.os != have.os || want.architecture != have.architecture)
        {
            walk.sink.report(
                cfg,
                &rules::INVALID_BASE_IMAGE_PLATFORM,
                from_span,
                format!(
                    "Base image {b} was pulled with platform {:?}, expected {:?} for current build",
                    have.normalized().to_string_short(),
                    want.normalized().to_string_short()
                ),
            );
        }
        let mut seen = Seen::default();
        // ONBUILD triggers of a base stage run first, located at this FROM.
        if let Some(j) = parent {
            for &n in &stages[j].steps {
                if let Instruction::Onbuild(inner) = &nodes[n].instruction {
                    let mut trigger: Node = (**inner).clone();
                    trigger.span = from_span;
                    walk.step(&trigger, &NodeSource::default(), cfg, &mut state, &mut seen);
                }
            }
        }
        for &n in &st.steps {
            let local = cfg.with_comments(&src[n].comments);
            walk.step(&nodes[n], &src[n], &local, &mut state, &mut seen);
        }
        done[i] = Some(state);
    }
}

/// The scope of a stage on an image (or scratch): its env, PATH added when missing.
fn start(base: Option<&BaseConfig>, scratch: bool) -> State {
    let mut st = State::default();
    if let (Some(b), false) = (base, scratch) {
        for kv in &b.env {
            let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            st.set_config_env(k, v);
        }
        st.shell = b.shell.clone();
    }
    if !st.config_env.iter().any(|(k, _)| k == "PATH") {
        st.set_config_env("PATH", DEFAULT_PATH);
    }
    for (k, v) in st.config_env.clone() {
        st.env.set(&k, &v);
    }
    st
}

impl State {
    fn set_config_env(&mut self, k: &str, v: &str) {
        match self.config_env.iter_mut().find(|(n, _)| n == k) {
            Some(e) => e.1 = v.to_string(),
            None => self.config_env.push((k.to_string(), v.to_string())),
        }
    }
}

impl Walk<'_, '_> {
    /// Expands one word as BuildKit does for the instruction at `span`, reporting each
    /// variable that is neither set nor a declared ARG.
    fn expand(&mut self, word: &str, st: &State, cfg: &CheckConfig, span: Span) -> Option<String> {
        self.expand_with(word, st, cfg, span, self.escape)
    }

    fn expand_with(
        &mut self,
        word: &str,
        st: &State,
        cfg: &CheckConfig,
        span: Span,
        escape: char,
    ) -> Option<String> {
        let e = expand_tracked(word, &|n| st.env.get(n), escape);
        for var in &e.unmatched {
            if st.args.iter().any(|a| a == var) || NON_ENV_ARGS.contains(&var.as_str()) {
                continue;
            }
            let detail = match suggest(var, st.env.keys()) {
                Some(s) => format!("Usage of undefined variable '${var}' (did you mean ${s}?)"),
                None => format!("Usage of undefined variable '${var}'"),
            };
            self.sink.report(cfg, &rules::UNDEFINED_VAR, span, detail);
        }
        e.value
    }

    fn step(
        &mut self,
        node: &Node,
        src: &NodeSource,
        cfg: &CheckConfig,
        st: &mut State,
        seen: &mut Seen,
    ) {
        let span = node.span;
        let kw = if src.keyword.is_empty() {
            node.instruction.keyword().to_string()
        } else {
            src.keyword.clone()
        };
        match &node.instruction {
            Instruction::Env(pairs) | Instruction::Label(pairs) => {
                let is_env = matches!(node.instruction, Instruction::Env(_));
                let before = st.clone();
                let mut out = Vec::new();
                for (k, v) in pairs {
                    let k = self
                        .expand(k, &before, cfg, span)
                        .unwrap_or_else(|| k.clone());
                    let v = self.expand(v, &before, cfg, span).unwrap_or_default();
                    out.push((k, v));
                }
                for (k, v) in out {
                    if src.legacy_key_value {
                        self.sink.report(
                            cfg,
                            &rules::LEGACY_KEY_VALUE_FORMAT,
                            span,
                            format!("\"{kw} key=value\" should be used instead of legacy \"{kw} key value\" format"),
                        );
                    }
                    if is_env {
                        self.secret(cfg, "ENV", &k, span);
                        st.env.set(&k, &v);
                        st.set_config_env(&k, &v);
                    }
                }
            }
            Instruction::Add(a) | Instruction::Copy(a) => {
                let is_add = matches!(node.instruction, Instruction::Add(_));
                for w in [&a.chown, &a.chmod].into_iter().flatten() {
                    self.expand(w, st, cfg, span);
                }
                if is_add && let Some(c) = &a.checksum {
                    self.expand(c, st, cfg, span);
                }
                let mut sources = Vec::new();
                for s in a.sources.iter().filter(|s| !s.starts_with("<<")) {
                    if let Some(v) = self.expand(s, st, cfg, span) {
                        sources.push(v);
                    }
                }
                self.expand(&a.dest, st, cfg, span);
                for h in a.heredocs.iter().filter(|h| h.expand) {
                    // BuildKit expands heredoc bodies leaving quotes alone: hide them.
                    let body: String = h
                        .content
                        .chars()
                        .map(|c| if c == '"' || c == '\'' { '\u{1}' } else { c })
                        .collect();
                    self.expand_with(&body, st, cfg, span, '\\');
                }
                if a.from.is_none() || is_add {
                    for s in &sources {
                        self.ignored(cfg, is_add, s, span);
                    }
                }
            }
            Instruction::Workdir(p) => {
                let p = self.expand(p, st, cfg, span).unwrap_or_else(|| p.clone());
                if !st.workdir_set && !p.starts_with('/') {
                    self.sink.report(
                        cfg,
                        &rules::WORKDIR_RELATIVE_PATH,
                        span,
                        format!("Relative workdir {p:?} can have unexpected results if the base image changes"),
                    );
                }
                st.workdir_set = true;
            }
            Instruction::User(w) | Instruction::StopSignal(w) => {
                self.expand(w, st, cfg, span);
            }
            Instruction::Volume(vs) => {
                for v in vs {
                    self.expand(v, st, cfg, span);
                }
            }
            Instruction::Run { mounts, .. } => {
                for m in mounts {
                    for field in m.split(',') {
                        if let Some((_, v)) = field.split_once('=') {
                            self.expand(v, st, cfg, span);
                        }
                    }
                }
            }
            Instruction::Cmd(c) | Instruction::Entrypoint(c) => {
                let slot = if matches!(node.instruction, Instruction::Cmd(_)) {
                    &mut seen.cmd
                } else {
                    &mut seen.entrypoint
                };
                self.once(cfg, &kw, slot, span);
                if matches!(c, Command::Shell(_)) && st.shell.is_empty() {
                    self.sink.report(
                        cfg,
                        &rules::JSON_ARGS_RECOMMENDED,
                        span,
                        format!("JSON arguments recommended for {kw} to prevent unintended behavior related to OS signals"),
                    );
                }
            }
            Instruction::Healthcheck(_) => self.once(cfg, &kw, &mut seen.healthcheck, span),
            Instruction::Shell(s) => st.shell = s.clone(),
            Instruction::Expose(ports) => self.expose(cfg, ports, st, span),
            Instruction::Arg(defs) => {
                for (k, d) in defs {
                    self.secret(cfg, "ARG", k, span);
                    let value = match (self.req.build_args.get(k), d) {
                        (Some(v), _) => Some(v.clone()),
                        (None, Some(d)) => self.expand(d, st, cfg, span),
                        (None, None) => self.meta.global.get(k),
                    };
                    if let Some(v) = value
                        && !NON_ENV_ARGS.contains(&k.as_str())
                    {
                        st.env.set(k, &v);
                    }
                    st.args.push(k.clone());
                }
            }
            _ => {}
        }
    }

    /// MultipleInstructionsDisallowed: the earlier one is reported, it is the one ignored.
    fn once(&mut self, cfg: &CheckConfig, kw: &str, slot: &mut Option<Span>, span: Span) {
        if let Some(prev) = slot.replace(span) {
            self.sink.report(
                cfg,
                &rules::MULTIPLE_INSTRUCTIONS_DISALLOWED,
                prev,
                format!("Multiple {kw} instructions should not be used in the same stage because only the last one will be used"),
            );
        }
    }

    fn secret(&mut self, cfg: &CheckConfig, what: &str, key: &str, span: Span) {
        if is_secret_key(key) {
            self.sink.report(
                cfg,
                &rules::SECRETS_USED_IN_ARG_OR_ENV,
                span,
                format!("Do not use ARG or ENV instructions for sensitive data ({what} {key:?})"),
            );
        }
    }

    /// EXPOSE `[ip:][hostPort:]port[/proto]`: a protocol not in lower case, an IP or a host
    /// port. A port BuildKit cannot parse ends the checks of that EXPOSE (BuildKit fails).
    fn expose(&mut self, cfg: &CheckConfig, ports: &[String], st: &State, span: Span) {
        let lookup = |n: &str| st.env.get(n);
        let mut all = Vec::new();
        for p in ports {
            match crate::parser::expand::expand_words(p, &lookup, self.escape) {
                Ok(w) => all.extend(w),
                Err(_) => return,
            }
        }
        for raw in all {
            let parts: Vec<&str> = raw.split(':').collect();
            let n = parts.len();
            let (ip, host, container) = match n {
                1 => (String::new(), "", parts[0]),
                2 => (String::new(), parts[0], parts[1]),
                _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
            };
            let (port, proto) = container.split_once('/').unwrap_or((container, ""));
            if port.is_empty()
                || !matches!(
                    proto.to_ascii_lowercase().as_str(),
                    "" | "tcp" | "udp" | "sctp"
                )
            {
                return;
            }
            if proto != proto.to_lowercase() {
                self.sink.report(
                    cfg,
                    &rules::EXPOSE_PROTO_CASING,
                    span,
                    format!("Defined protocol '{raw}' in EXPOSE instruction should be lowercase"),
                );
            }
            if !ip.is_empty() || !host.is_empty() {
                self.sink.report(
                    cfg,
                    &rules::EXPOSE_INVALID_FORMAT,
                    span,
                    format!("EXPOSE instruction should not define an IP address or host-port mapping, found '{raw}'"),
                );
            }
        }
    }

    /// CopyIgnoredFile: a context source the `.dockerignore` excludes. Skipped when the
    /// file has exceptions (`!`), as BuildKit cannot tell statically; the context root counts
    /// only when a pattern is `*`, `**` or `**/*`.
    fn ignored(&mut self, cfg: &CheckConfig, is_add: bool, src: &str, span: Span) {
        let Some(ig) = self.req.ignore else { return };
        if ig.matcher.is_empty() || ig.matcher.has_exceptions() {
            return;
        }
        if src.contains("://") || src.starts_with("git@") {
            return;
        }
        let clean = crate::parser::dockerignore::go_clean(src);
        let hit = if clean == "." || clean == "/" {
            ig.patterns
                .iter()
                .any(|p| matches!(p.as_str(), "*" | "**" | "**/*"))
        } else {
            !clean.starts_with('/') && ig.matcher.is_excluded(&clean)
        };
        if hit {
            let cmd = if is_add { "Add" } else { "Copy" };
            self.sink.report(
                cfg,
                &rules::COPY_IGNORED_FILE,
                span,
                format!("Attempting to {cmd} file {clean:?} that is excluded by .dockerignore"),
            );
        }
    }
}

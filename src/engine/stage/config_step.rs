//! Instructions that change only the image config (ENV, ARG, LABEL, MAINTAINER, EXPOSE,
//! VOLUME, USER, STOPSIGNAL, SHELL, CMD, ENTRYPOINT, HEALTHCHECK, ONBUILD): expand their
//! words, apply the change, record the history entry. They make no layer and leave the cache
//! chain alone.

use super::State;
use crate::engine::{Ctx, Result, config, history};
use crate::oci::RunConfig;
use crate::parser::Instruction;
use crate::parser::expand;

fn rc(st: &mut State) -> &mut RunConfig {
    &mut st.config.config
}

/// Applies a config-only instruction to `st`; other instructions are left to the caller.
pub(super) fn config_step(ctx: &Ctx, st: &mut State, instruction: &Instruction) -> Result<()> {
    let escape = ctx.req.graph.escape;
    let ex = |st: &State, w: &str| -> Result<String> {
        Ok(expand::expand_word(w, &st.lookup(), escape)?)
    };
    // Config-only steps leave the cache chain alone, as in BuildKit: every layer step's key
    // already holds what it depends on (RUN: argv with SHELL, env, user, cwd; COPY: expanded
    // words; WORKDIR: path and user), so a LABEL or CMD change rebuilds nothing.
    let config_only = |st: &mut State, desc: String| {
        st.push_history(desc, true, None);
    };
    match instruction {
        Instruction::From { .. } => Ok(()),
        Instruction::Env(pairs) => {
            // One value per instruction: every pair sees the env from before it.
            let mut out = Vec::new();
            for (k, v) in pairs {
                out.push((ex(st, k)?, ex(st, v)?));
            }
            for (k, v) in &out {
                st.set_env(k, v);
            }
            let desc = format!(
                "ENV {}",
                out.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            config_only(st, desc);
            Ok(())
        }
        Instruction::Arg(defs) => {
            for (n, def) in defs {
                let def = def.as_ref().map(|d| ex(st, d)).transpose()?;
                let v = crate::graph::args::stage_arg_value(&ctx.req.graph, n, def);
                st.declare_arg(n, v);
            }
            let shown: Vec<String> = st.args[st.args.len() - defs.len()..]
                .iter()
                .map(|(n, v)| history::arg_shown(n, v.as_deref()))
                .collect();
            st.push_history(format!("ARG {}", shown.join(" ")), true, None);
            // Like BuildKit, an ARG alone invalidates nothing: RUN keys include the env it
            // sees (ARG values included), and other steps key on their expanded words.
            Ok(())
        }
        Instruction::Label(pairs) => {
            let mut out = Vec::new();
            for (k, v) in pairs {
                out.push((ex(st, k)?, ex(st, v)?));
            }
            config::labels(rc(st), &out);
            config_only(
                st,
                format!(
                    "LABEL {}",
                    out.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            );
            Ok(())
        }
        Instruction::Maintainer(m) => {
            st.config.author = Some(m.clone());
            config_only(st, format!("MAINTAINER {m}"));
            Ok(())
        }
        Instruction::Expose(ports) => {
            let mut all = Vec::new();
            for p in ports {
                all.extend(expand::expand_words(p, &st.lookup(), escape)?);
            }
            let ports = config::expose(rc(st), &all)?;
            config_only(st, format!("EXPOSE {}", history::go_list(&ports)));
            Ok(())
        }
        Instruction::Volume(paths) => {
            let mut all = Vec::new();
            for p in paths {
                all.push(ex(st, p)?);
            }
            config::volume(rc(st), &all)?;
            config_only(st, format!("VOLUME {}", history::go_list(&all)));
            Ok(())
        }
        Instruction::User(u) => {
            let u = ex(st, u)?;
            rc(st).user = Some(u.clone());
            config_only(st, format!("USER {u}"));
            Ok(())
        }
        Instruction::StopSignal(s) => {
            let s = ex(st, s)?;
            rc(st).stop_signal = Some(s.clone());
            config_only(st, format!("STOPSIGNAL {s}"));
            Ok(())
        }
        Instruction::Shell(sh) => {
            rc(st).shell = Some(sh.clone());
            config_only(st, format!("SHELL {}", history::go_list(sh)));
            Ok(())
        }
        Instruction::Cmd(c) => {
            config::set_cmd(rc(st), c);
            st.cmd_set = true;
            let v = st.config.config.cmd.clone().unwrap_or_default();
            config_only(st, format!("CMD {}", history::go_quote_list(&v)));
            Ok(())
        }
        Instruction::Entrypoint(c) => {
            let cmd_set = st.cmd_set;
            config::set_entrypoint(rc(st), c, cmd_set);
            let v = st.config.config.entrypoint.clone().unwrap_or_default();
            config_only(st, format!("ENTRYPOINT {}", history::go_quote_list(&v)));
            Ok(())
        }
        Instruction::Healthcheck(h) => {
            config::healthcheck(rc(st), h.as_ref())?;
            let hc = st.config.config.healthcheck.clone().unwrap_or_default();
            config_only(st, history::healthcheck(&hc));
            Ok(())
        }
        Instruction::Onbuild(inner) => {
            let text = inner.original.clone();
            // BuildKit records the trigger in the config only, with no history entry.
            rc(st).on_build.get_or_insert_with(Vec::new).push(text);
            Ok(())
        }
        // Layer steps go through `dispatch`.
        Instruction::Workdir(_)
        | Instruction::Run { .. }
        | Instruction::Copy(_)
        | Instruction::Add(_) => Ok(()),
    }
}

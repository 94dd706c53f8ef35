//! `RUN --mount=type=ssh`: an `--ssh` agent socket bind-mounted for the run, with
//! `SSH_AUTH_SOCK` pointing at it.

use super::MountPart;
use crate::engine::{Ctx, EngineError, Result};
use crate::executor::{Mount, MountKind};

/// Prepares the agent socket `id` (default `default`) at `target`; `None` when it is optional
/// and was not given.
pub(super) fn mount(
    ctx: &Ctx,
    id: Option<String>,
    target: Option<String>,
    required: bool,
) -> Result<Option<MountPart>> {
    let id = id.unwrap_or_else(|| "default".into());
    let sock = ctx.req.ssh.get(&id).cloned();
    let Some(sock) = sock else {
        if required {
            return Err(EngineError::BadMount(format!(
                "ssh agent {id:?} is required but --ssh {id} was not given"
            )));
        }
        return Ok(None);
    };
    let target = target.unwrap_or_else(|| "/run/buildkit/ssh_agent.0".into());
    Ok(Some(MountPart {
        key: format!("ssh {id} {target}\n"),
        env: Some(format!("SSH_AUTH_SOCK={target}")),
        mount: Some(Mount {
            target,
            kind: MountKind::Bind {
                source: sock,
                readonly: true,
            },
        }),
        ..MountPart::default()
    }))
}

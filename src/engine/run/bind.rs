//! `RUN --mount=type=bind`: a path of the context, a stage or an image, pinned in-root and
//! bind-mounted read-only, or as a private copy with `rw` (writes are discarded).

use super::cache::copy_tree;
use super::in_root::pin_in_root;
use super::{MountPart, abs_target};
use crate::engine::stage::{RootView, State};
use crate::engine::{Ctx, Result};
use crate::executor::{Mount, MountKind};

/// Prepares a bind mount of `source` at `target`; `from` is the view of what `from=` names
/// (and its identity), `None` for the build context.
pub(super) fn mount(
    ctx: &Ctx,
    st: &State,
    target: String,
    source: Option<String>,
    readwrite: bool,
    from: Option<(RootView, String)>,
) -> Result<MountPart> {
    let mut part = MountPart::default();
    let source = source.unwrap_or_default();
    let (root, tag) = match from {
        Some((v, k)) => {
            let path = v.path().to_path_buf();
            part.hold.push(Box::new(v));
            (path, k)
        }
        None => (ctx.req.context.clone(), "context".to_string()),
    };
    // Resolved and opened in-root in one step, then bind-mounted from that open
    // object: what the run sees is what was resolved, whatever changes after.
    let pinned = pin_in_root(&root, &source)?;
    let is_dir = std::fs::metadata(&pinned.path).is_ok_and(|m| m.is_dir());
    let view = ctx.isolation.pin(&pinned.path, is_dir, true)?;
    let resolved = view.path().to_path_buf();
    part.hold.push(Box::new(view));
    part.hold.push(Box::new(pinned));
    let content = if tag == "context" {
        let ignore = &ctx.req.ignore;
        let src = crate::copy::CopySource::Context {
            root: &ctx.req.context,
            ignore,
        };
        let req = crate::copy::CopyRequest {
            sources: vec![source.clone()],
            dest: "/m/".into(),
            ..Default::default()
        };
        crate::copy::content_key(&src, &req, &ctx.hashes)
            .map(|d| d.to_string())
            .unwrap_or_default()
    } else {
        tag
    };
    part.key = format!("bind {target} {source} {readwrite} {content}\n");
    let target = abs_target(st, &target);
    if readwrite {
        // Writes are discarded: give the run a private copy.
        let tmp = ctx.store.tmp_dir()?;
        let copy = tmp.path().join("rw");
        copy_tree(&resolved, &copy)?;
        part.mount = Some(Mount {
            target,
            kind: MountKind::Bind {
                source: copy,
                readonly: false,
            },
        });
        part.hold.push(Box::new(tmp));
    } else {
        part.mount = Some(Mount {
            target,
            kind: MountKind::Bind {
                source: resolved,
                readonly: true,
            },
        });
    }
    Ok(part)
}

//! Base images for FROM, `COPY --from=<image>` and `RUN --mount from=<image>`: loaded once
//! per build per (reference, platform), each load reported as a step.

use crate::engine::base::{self, BaseImage};
use crate::engine::{BuildEvent, Ctx, EngineError, Result};
use crate::oci::Platform;
use std::time::Instant;

/// Loads an image for FROM or `--from` for `platform` (the platform of the stage that names
/// it), reporting it as a step.
pub(crate) fn load_image(ctx: &Ctx, reference: &str, platform: &Platform) -> Result<BaseImage> {
    let slot = ctx
        .bases
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry((reference.to_string(), platform.to_string_short()))
        .or_default()
        .clone();
    // Holding the slot serialises loads of one reference; others proceed in parallel.
    let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(b) = slot.as_ref() {
        return Ok(b.clone());
    }
    let b = load_image_once(ctx, reference, platform)?;
    *slot = Some(b.clone());
    Ok(b)
}

fn load_image_once(ctx: &Ctx, reference: &str, platform: &Platform) -> Result<BaseImage> {
    let id = ctx.new_id();
    let t = Instant::now();
    ctx.reporter.event(BuildEvent::Started {
        id,
        // BuildKit names the normalized reference: docker.io/library/busybox:latest.
        name: format!(
            "[internal] load metadata for {}",
            crate::registry::ImageRef::parse(reference)
                .map(|r| r.to_string())
                .unwrap_or_else(|_| crate::registry::auth::redact_credentials(reference))
        ),
    });
    let warn = |message: String| ctx.reporter.event(BuildEvent::Warning { message });
    match base::load(
        ctx.store,
        ctx.registry,
        reference,
        platform,
        if ctx.req.pull {
            base::Policy::Always
        } else {
            base::Policy::Check
        },
        &warn,
    ) {
        Ok(b) => {
            ctx.reporter.event(BuildEvent::Done {
                id,
                secs: t.elapsed().as_secs_f64(),
            });
            Ok(b)
        }
        Err(e) => {
            ctx.reporter.event(BuildEvent::Failed {
                id,
                message: e.to_string(),
            });
            Err(EngineError::BaseImage {
                reference: reference.to_string(),
                error: Box::new(e),
            })
        }
    }
}

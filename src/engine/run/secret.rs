//! `RUN --mount=type=secret`: a `--secret` given to the build, as a file on a memory-backed
//! filesystem and/or an environment variable, for the run only. The cache key names the secret,
//! never its value.

use super::{MountPart, abs_target};
use crate::engine::stage::State;
use crate::engine::{Ctx, EngineError, Result};
use crate::executor::{Mount, MountKind};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The options of one secret mount, as parsed from `--mount=type=secret,…`.
pub(super) struct SecretSpec {
    pub id: Option<String>,
    pub target: Option<String>,
    pub env: Option<String>,
    pub required: bool,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// Prepares a secret mount; `None` when the secret is optional and was not given.
pub(super) fn mount(ctx: &Ctx, st: &State, spec: SecretSpec) -> Result<Option<MountPart>> {
    let SecretSpec {
        id,
        target,
        env,
        required,
        mode,
        uid,
        gid,
    } = spec;
    let mut part = MountPart::default();
    let id = id.or_else(|| {
        target.as_ref().and_then(|t| {
            Path::new(t)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
    });
    let Some(id) = id else {
        return Err(EngineError::BadMount(
            "secret mount needs id= or target=".into(),
        ));
    };
    let Some(secret) = ctx.req.secrets.get(&id) else {
        if required {
            return Err(EngineError::MissingSecret { id });
        }
        return Ok(None);
    };
    // The key names the secret, never its value.
    part.key = format!("secret {id} {target:?} {env:?}\n");
    if let Some(var) = env {
        part.env = Some(format!("{var}={}", String::from_utf8_lossy(&secret.0)));
        if target.is_none() {
            return Ok(Some(part));
        }
    }
    let file = secret_file(
        &secret.0,
        mode.unwrap_or(0o400),
        uid.unwrap_or(0),
        gid.unwrap_or(0),
    )?;
    let target = target
        .map(|t| abs_target(st, &t))
        .unwrap_or_else(|| format!("/run/secrets/{id}"));
    part.mount = Some(Mount {
        target,
        kind: MountKind::Bind {
            source: file.path().to_path_buf(),
            readonly: true,
        },
    });
    part.hold.push(Box::new(file));
    Ok(Some(part))
}

/// A secret in a file on /dev/shm (memory, not disk) when available.
fn secret_file(data: &[u8], mode: u32, uid: u32, gid: u32) -> Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    let dir = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let mut f = tempfile::Builder::new()
        .prefix("hoist-secret-")
        .tempfile_in(&dir)
        .map_err(|source| EngineError::Io {
            path: dir.clone(),
            source,
        })?;
    f.write_all(data).map_err(|source| EngineError::Io {
        path: f.path().to_path_buf(),
        source,
    })?;
    std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(mode)).map_err(
        |source| EngineError::Io {
            path: f.path().to_path_buf(),
            source,
        },
    )?;
    crate::userns::io_chown_result(std::os::unix::fs::chown(f.path(), Some(uid), Some(gid)))
        .map_err(|source| EngineError::Io {
            path: f.path().to_path_buf(),
            source,
        })?;
    Ok(f)
}

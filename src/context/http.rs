//! http(s) contexts, downloaded (at most [`Limits::max_bytes`]). As the main context
//! (`docker build URL`), a tar (plain, gzip, bzip2, xz or zstd) is the context, unpacked
//! in-root by the same extractor as a context on stdin with its unpacked bytes capped too,
//! and anything else is the Dockerfile alone. As a named context, the download is one file
//! named `context`, as BuildKit's dockerui makes it (`llb.HTTP(url, Filename("context"))`).

use super::{ContextError, Limits, Result};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whole-download time limit (as ADD's downloads).
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// Downloads `url` to `file` (at most `limits.max_bytes`); returns `Last-Modified` as
/// seconds since the epoch when the server sent it.
fn download(url: &str, file: &Path, limits: &Limits) -> Result<Option<i64>> {
    let shown = crate::registry::auth::redact_credentials(url);
    let fail = |reason: String| ContextError::Http {
        url: shown.clone(),
        reason,
    };
    let too_large = || ContextError::TooLarge {
        what: format!("download of {shown}"),
        limit: limits.max_bytes,
    };
    let client = reqwest::blocking::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let resp = client
        .get(url)
        .send()
        .map_err(|e| fail(crate::registry::auth::redact_credentials(&e.to_string())))?;
    if !resp.status().is_success() {
        return Err(fail(format!("HTTP {}", resp.status())));
    }
    if resp.content_length().is_some_and(|n| n > limits.max_bytes) {
        return Err(too_large());
    }
    let mtime = resp
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::copy::parse_http_date);
    let mut f = std::fs::File::create(file).map_err(super::io_err(file))?;
    let mut body = resp.take(limits.max_bytes + 1);
    let n = std::io::copy(&mut body, &mut f).map_err(|e| fail(e.to_string()))?;
    if n > limits.max_bytes {
        return Err(too_large());
    }
    f.flush().map_err(super::io_err(file))?;
    Ok(mtime)
}

/// A named http(s) context, as BuildKit makes it: a directory holding the download as one
/// file named `context` (mode 0600, mtime from `Last-Modified`), never unpacked.
pub(super) fn fetch_file(url: &str, tmp: &Path, limits: &Limits) -> Result<PathBuf> {
    let dir = tmp.join("context");
    std::fs::create_dir(&dir).map_err(super::io_err(&dir))?;
    let file = dir.join("context");
    let mtime = download(url, &file, limits)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
        .map_err(super::io_err(&file))?;
    let t = rustix::fs::Timespec {
        tv_sec: mtime.unwrap_or(0),
        tv_nsec: 0,
    };
    let ts = rustix::fs::Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(rustix::fs::CWD, &file, &ts, rustix::fs::AtFlags::empty())
        .map_err(|e| super::io_err(&file)(e.into()))?;
    Ok(dir)
}

/// The main context from `url` (`hoist build URL`): downloaded into `tmp`, then unpacked
/// when it is a tar, else taken as the Dockerfile alone; returns the context directory.
pub(super) fn fetch(url: &str, tmp: &Path, limits: &Limits) -> Result<PathBuf> {
    let shown = crate::registry::auth::redact_credentials(url);
    let fail = |reason: String| ContextError::Http {
        url: shown.clone(),
        reason,
    };
    let file = tmp.join("download");
    download(url, &file, limits)?;

    let mut head = Vec::with_capacity(512);
    std::fs::File::open(&file)
        .and_then(|f| f.take(512).read_to_end(&mut head))
        .map_err(super::io_err(&file))?;
    let open = || std::fs::File::open(&file).map_err(super::io_err(&file));
    let dir = if crate::copy::context::is_compressed(&head)
        || crate::copy::context::is_tar_header(&head)
    {
        let plain = crate::layers::decompress(open()?, crate::layers::DecompressHint::Sniff)
            .map_err(|e| fail(e.to_string()))?;
        let tripped = Arc::new(AtomicBool::new(false));
        let capped = Capped {
            inner: plain,
            left: limits.max_bytes,
            tripped: tripped.clone(),
        };
        match crate::copy::context::tar_stdin_context(capped, tmp) {
            Ok(d) => d,
            Err(_) if tripped.load(Ordering::Relaxed) => {
                return Err(ContextError::TooLarge {
                    what: format!("unpacked context from {shown}"),
                    limit: limits.max_bytes,
                });
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        crate::copy::context::stdin_context(open()?, tmp)?
    };
    let _ = std::fs::remove_file(&file);
    Ok(dir)
}

/// A reader that fails once more than its budget came through, and says so.
struct Capped {
    inner: Box<dyn Read + Send>,
    left: u64,
    tripped: Arc<AtomicBool>,
}

impl Read for Capped {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            self.tripped.store(true, Ordering::Relaxed);
            return Err(std::io::Error::other("remote context over its size limit"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

//! An http(s) context: the body is downloaded (at most [`Limits::max_bytes`]), then, as with
//! `docker build URL`, a tar (plain, gzip, bzip2, xz or zstd) is the context, unpacked
//! in-root by the same extractor as a context on stdin with its unpacked bytes capped too,
//! and anything else is the Dockerfile alone.

use super::{ContextError, Limits, Result};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whole-download time limit (as ADD's downloads).
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// Downloads `url` into `tmp` and returns the context directory made of it.
pub(super) fn fetch(url: &str, tmp: &Path, limits: &Limits) -> Result<PathBuf> {
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
    let file = tmp.join("download");
    let mut f = std::fs::File::create(&file).map_err(super::io_err(&file))?;
    let mut body = resp.take(limits.max_bytes + 1);
    let n = std::io::copy(&mut body, &mut f).map_err(|e| fail(e.to_string()))?;
    if n > limits.max_bytes {
        return Err(too_large());
    }
    f.flush().map_err(super::io_err(&file))?;
    drop(f);

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

//! Progress events of transfers (what the client reports through [`Client::set_progress`]),
//! and the reader that reports an upload's bytes as they are sent.

use super::session::Client;
use std::io::Read;
use std::sync::Arc;

/// What a transfer is doing, for progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressKind {
    /// The blob is already present (locally for pulls, remotely for pushes).
    Exists,
    /// Bytes moving: `current` of `total`.
    Downloading,
    /// Downloaded and verified.
    Downloaded,
    /// Bytes being uploaded.
    Pushing,
    /// Uploaded and accepted by the registry.
    Pushed,
    /// Mounted from another repository of the same registry (`from`).
    Mounted { from: String },
    /// A failure that will be retried.
    Retrying { reason: String },
}

/// A progress event; `id` is the short digest of the blob (or the URL for retries).
#[derive(Debug, Clone)]
pub struct Progress {
    /// Short digest of the blob, or the URL being retried.
    pub id: String,
    /// What is happening.
    pub kind: ProgressKind,
    /// Bytes done so far.
    pub current: u64,
    /// Bytes in all (the descriptor's size).
    pub total: u64,
}

pub(super) type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// A reader that reports upload progress.
pub(super) struct ProgressReader<R> {
    pub(super) inner: R,
    pub(super) cb: Option<ProgressFn>,
    pub(super) id: String,
    pub(super) done: u64,
    pub(super) total: u64,
    pub(super) last: u64,
}

impl<R: Read> Read for ProgressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if let Some(cb) = &self.cb
            && (self.done - self.last >= 1 << 20 || n == 0)
        {
            self.last = self.done;
            cb(&Progress {
                id: self.id.clone(),
                kind: ProgressKind::Pushing,
                current: self.done,
                total: self.total,
            });
        }
        Ok(n)
    }
}

impl Client {
    /// Receives progress events (from several threads).
    pub fn set_progress(&mut self, f: impl Fn(&Progress) + Send + Sync + 'static) {
        self.progress = Some(Arc::new(f));
    }

    pub(super) fn emit(&self, id: &str, kind: ProgressKind, current: u64, total: u64) {
        if let Some(cb) = &self.progress {
            cb(&Progress {
                id: id.to_string(),
                kind,
                current,
                total,
            });
        }
    }
}

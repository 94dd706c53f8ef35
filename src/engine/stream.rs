//! Uploading a layer of the target stage to the `--push` destination while it is being
//! compressed, so the push at the end finds it already there.
//!
//! The compressed stream is teed: every byte the store's blob writer accepts is also copied
//! into chunks of [`CHUNK`] bytes that an uploader thread sends through a bounded channel
//! (compression waits for a slow registry at most [`QUEUE`] chunks ahead: bounded memory).
//! Streaming is an optimisation only: when it fails the session is aborted, one warning is
//! reported, and the normal push uploads the blob later.

use super::{BuildEvent, Ctx};
use crate::oci::Digest;
use crate::registry::{Client, ImageRef, RegistryError};
use bytes::Bytes;
use std::io::{self, Write};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Bytes per PATCH request: big enough to keep a local registry busy, small enough that the
/// queue adds little to peak memory (each queued chunk is held in RAM).
pub(crate) const CHUNK: usize = 8 << 20;
/// Chunks queued between the compressor and the uploader.
const QUEUE: usize = 2;

/// What the writer side tells the uploader.
pub(crate) enum Msg {
    /// The next bytes of the blob.
    Chunk(Bytes),
    /// The blob is complete and stored under this digest: commit the upload.
    Finish(Digest),
}

/// How an upload ended without an error.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The registry has the blob.
    Uploaded,
    /// The writer went away before the blob was complete (the layer failed): the session was
    /// aborted.
    Abandoned,
}

/// A writer that passes everything to `inner` and copies what `inner` accepted into chunks
/// for the uploader. Once the uploader is gone (it failed), it only writes to `inner`.
pub(crate) struct Tee<'w> {
    inner: &'w mut dyn Write,
    buf: Vec<u8>,
    tx: Option<SyncSender<Msg>>,
    chunk: usize,
}

impl<'w> Tee<'w> {
    pub(crate) fn new(inner: &'w mut dyn Write, tx: SyncSender<Msg>, chunk: usize) -> Tee<'w> {
        Tee {
            inner,
            buf: Vec::new(),
            tx: Some(tx),
            chunk,
        }
    }

    fn send_buf(&mut self) {
        let chunk = std::mem::take(&mut self.buf);
        if let Some(tx) = &self.tx
            && tx.send(Msg::Chunk(Bytes::from(chunk))).is_err()
        {
            self.tx = None;
        }
    }

    /// Sends the last partial chunk and hands back the channel (None when the uploader is
    /// gone), for the [`Msg::Finish`] that follows once the blob is stored.
    pub(crate) fn close(mut self) -> Option<SyncSender<Msg>> {
        if !self.buf.is_empty() {
            self.send_buf();
        }
        self.tx.take()
    }
}

impl Write for Tee<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(b)?;
        if self.tx.is_some() {
            if self.buf.capacity() == 0 {
                self.buf.reserve_exact(self.chunk);
            }
            self.buf.extend_from_slice(&b[..n]);
            if self.buf.len() >= self.chunk {
                self.send_buf();
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The bounded channel between a [`Tee`] and [`upload`].
pub(crate) fn channel() -> (SyncSender<Msg>, Receiver<Msg>) {
    sync_channel(QUEUE)
}

/// The uploader: opens a session in `dest`'s repository, sends each chunk, commits on
/// [`Msg::Finish`]. On an error the session is aborted and the receiver dropped, so the writer
/// stops teeing at once.
pub(crate) fn upload(
    client: &Client,
    dest: &ImageRef,
    rx: Receiver<Msg>,
) -> Result<Outcome, RegistryError> {
    let mut up = client.begin_upload(dest)?;
    loop {
        match rx.recv() {
            Ok(Msg::Chunk(b)) => {
                if let Err(e) = up.write_chunk(b) {
                    drop(rx);
                    up.abort();
                    return Err(e);
                }
            }
            Ok(Msg::Finish(d)) => {
                drop(rx);
                return up.finish(&d).map(|()| Outcome::Uploaded);
            }
            Err(_) => {
                up.abort();
                return Ok(Outcome::Abandoned);
            }
        }
    }
}

/// Where this build streams layers to, if anywhere: `--push` given, a registry client, and
/// no earlier streaming failure.
pub(crate) fn destination<'a>(ctx: &Ctx<'a>) -> Option<(&'a Client, &'a ImageRef)> {
    if ctx.stream_off.load(Ordering::Relaxed) {
        return None;
    }
    Some((ctx.registry?, ctx.req.stream_push.as_ref()?))
}

/// Records a streaming failure: one warning per build, and no more streaming in this build.
pub(crate) fn failed(ctx: &Ctx, dest: &ImageRef, reason: &str) {
    if !ctx.stream_off.swap(true, Ordering::Relaxed) {
        ctx.reporter.event(BuildEvent::Warning {
            message: format!(
                "uploading a layer to {} while building it failed ({reason}); \
                 layers will be uploaded by the push at the end instead",
                dest.name()
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tee_copies_exactly_what_the_inner_writer_accepted_in_chunks() {
        /// Accepts at most 3 bytes per write, like a short-writing file.
        struct Short(Vec<u8>);
        impl Write for Short {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                let n = b.len().min(3);
                self.0.extend_from_slice(&b[..n]);
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (tx, rx) = sync_channel(1000);
        let mut inner = Short(Vec::new());
        let mut tee = Tee::new(&mut inner, tx, 64);
        tee.write_all(&data).unwrap();
        let tx = tee.close();
        assert!(tx.is_some());
        drop(tx);
        let mut got = Vec::new();
        let mut sizes = Vec::new();
        while let Ok(Msg::Chunk(b)) = rx.recv() {
            sizes.push(b.len());
            got.extend_from_slice(&b);
        }
        assert_eq!(inner.0, data);
        assert_eq!(got, data);
        // A chunk is cut once it reaches 64 bytes: at most one write (3 bytes here) more.
        assert!(
            sizes[..sizes.len() - 1]
                .iter()
                .all(|&s| (64..67).contains(&s)),
            "{sizes:?}"
        );
        assert_eq!(sizes.iter().sum::<usize>(), 1000);
    }

    #[test]
    fn tee_keeps_writing_when_the_uploader_is_gone() {
        let (tx, rx) = sync_channel(0);
        drop(rx);
        let mut inner = Vec::new();
        let mut tee = Tee::new(&mut inner, tx, 4);
        tee.write_all(b"hello world, and more").unwrap();
        assert!(tee.close().is_none(), "the dead channel is reported");
        assert_eq!(inner, b"hello world, and more");
    }
}

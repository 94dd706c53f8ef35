//! Uploading a layer of the target stage to the `--push` destination while it is being
//! compressed, so the push at the end finds it already there.
//!
//! The uploader follows the blob file: the layer writer goes on at full speed into the store's
//! temp file and publishes how far it has written ([`Progress`]); the uploader reads the
//! same file through its own handle ([`Follow`]), waiting when it catches up, and sends it in
//! one streamed PATCH. Compression never waits for the registry (the file is the buffer, so
//! memory stays flat whatever the layer size), the registry ingests without a gap per chunk,
//! and the store's fsync of the finished blob runs while the upload's tail is sent.
//! Streaming is an optimisation only: when it fails the session is aborted, one warning is
//! reported, and the normal push uploads the blob later.

use super::{BuildEvent, Ctx};
use crate::oci::Digest;
use crate::registry::{Client, ImageRef, RegistryError};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// How an upload ended without an error.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The registry has the blob.
    Uploaded,
    /// The writer failed before the blob was complete (the layer failed): the session was
    /// aborted.
    Abandoned,
}

/// How far the blob file has been written, shared by the writer and the uploader.
#[derive(Default)]
pub(crate) struct Progress {
    state: Mutex<State>,
    moved: Condvar,
}

#[derive(Default)]
struct State {
    written: u64,
    end: End,
}

#[derive(Default)]
enum End {
    #[default]
    Open,
    /// Every byte is written; the blob's digest.
    Complete(Digest),
    /// The writer gave up (or the uploader is no longer wanted).
    Failed,
}

impl Progress {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn advance(&self, n: usize) {
        self.state().written += n as u64;
        self.moved.notify_all();
    }

    /// All bytes are in the file and hash to `digest`.
    pub(crate) fn complete(&self, digest: Digest) {
        let mut st = self.state();
        if matches!(st.end, End::Open) {
            st.end = End::Complete(digest);
        }
        drop(st);
        self.moved.notify_all();
    }

    /// The blob will not be completed: the uploader stops and aborts its session.
    pub(crate) fn fail(&self) {
        let mut st = self.state();
        if matches!(st.end, End::Open) {
            st.end = End::Failed;
        }
        drop(st);
        self.moved.notify_all();
    }

    fn digest(&self) -> Option<Digest> {
        match &self.state().end {
            End::Complete(d) => Some(d.clone()),
            _ => None,
        }
    }
}

/// A writer that passes everything to `inner` (the blob file, unbuffered) and publishes what
/// it accepted.
pub(crate) struct Tracked<'w> {
    inner: &'w mut dyn Write,
    progress: Arc<Progress>,
}

impl<'w> Tracked<'w> {
    pub(crate) fn new(inner: &'w mut dyn Write, progress: Arc<Progress>) -> Tracked<'w> {
        Tracked { inner, progress }
    }
}

impl Write for Tracked<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(b)?;
        self.progress.advance(n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads the blob file as it grows: up to what the writer has published, waiting for more
/// until the blob is complete (EOF) or failed (an error, which ends the PATCH).
pub(crate) struct Follow {
    file: File,
    pos: u64,
    progress: Arc<Progress>,
}

impl Follow {
    pub(crate) fn new(file: File, progress: Arc<Progress>) -> Follow {
        Follow {
            file,
            pos: 0,
            progress,
        }
    }
}

impl Read for Follow {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut st = self.progress.state();
        loop {
            if st.written > self.pos {
                let n = (st.written - self.pos).min(buf.len() as u64) as usize;
                drop(st);
                let got = self.file.read_at(&mut buf[..n], self.pos)?;
                if got == 0 {
                    return Err(io::Error::other("the blob file is shorter than written"));
                }
                self.pos += got as u64;
                return Ok(got);
            }
            match st.end {
                End::Complete(_) => return Ok(0),
                End::Failed => return Err(io::Error::other("the layer was not completed")),
                End::Open => {
                    st = self
                        .progress
                        .moved
                        .wait(st)
                        .unwrap_or_else(|p| p.into_inner());
                }
            }
        }
    }
}

/// The uploader: opens a session in `dest`'s repository, streams the file that `follow`
/// reads, and commits under the digest the writer published. On an error the session is
/// aborted; when the writer failed, the outcome is [`Outcome::Abandoned`].
pub(crate) fn upload(
    client: &Client,
    dest: &ImageRef,
    follow: Follow,
) -> Result<Outcome, RegistryError> {
    let progress = follow.progress.clone();
    let mut up = client.begin_upload(dest)?;
    let sent = up.write_stream(follow);
    match (sent, progress.digest()) {
        (Ok(()), Some(d)) => up.finish(&d).map(|()| Outcome::Uploaded),
        (_, None) => {
            up.abort();
            Ok(Outcome::Abandoned)
        }
        (Err(e), Some(_)) => {
            up.abort();
            Err(e)
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

    /// Accepts at most 3 bytes per write, like a short-writing file.
    struct Short(File);
    impl Write for Short {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let n = b.len().min(3);
            self.0.write(&b[..n])
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_follower_reads_exactly_what_was_written_while_it_grows() {
        let t = tempfile::NamedTempFile::new().unwrap();
        let progress = Arc::new(Progress::default());
        let follow = Follow::new(File::open(t.path()).unwrap(), progress.clone());
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let reader = std::thread::spawn(move || {
            let mut follow = follow;
            let mut got = Vec::new();
            follow.read_to_end(&mut got).map(|_| got)
        });
        let mut inner = Short(t.reopen().unwrap());
        let mut w = Tracked::new(&mut inner, progress.clone());
        for part in data.chunks(777) {
            w.write_all(part).unwrap();
            std::thread::yield_now();
        }
        progress.complete(Digest::of(&data));
        assert_eq!(reader.join().unwrap().unwrap(), data);
    }

    #[test]
    fn a_failed_writer_ends_the_follower_with_an_error() {
        let t = tempfile::NamedTempFile::new().unwrap();
        let progress = Arc::new(Progress::default());
        let mut follow = Follow::new(File::open(t.path()).unwrap(), progress.clone());
        let mut inner = t.reopen().unwrap();
        Tracked::new(&mut inner, progress.clone())
            .write_all(b"partial")
            .unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(follow.read(&mut buf).unwrap(), 7);
        progress.fail();
        assert!(follow.read(&mut buf).is_err());
        // Completing after a failure changes nothing: the upload is not committed.
        progress.complete(Digest::of(b"x"));
        assert!(progress.digest().is_none());
        assert!(follow.read(&mut buf).is_err());
    }
}

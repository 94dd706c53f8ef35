//! `--push`: pushes the built image under each tag and counts what each push really sent
//! (uploads vs blobs the registry already had).

use super::{Notice, Observer};
use crate::oci::Digest;
use crate::registry::{Client, ImageRef, ProgressKind};
use crate::store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Counts the registry client's blob uploads and skips.
pub(super) struct PushCounter {
    sent: Arc<AtomicUsize>,
    skipped: Arc<AtomicUsize>,
}

impl PushCounter {
    /// Hooks a counter into `registry`'s progress events.
    pub fn install(registry: &mut Client) -> PushCounter {
        let sent = Arc::new(AtomicUsize::new(0));
        let skipped = Arc::new(AtomicUsize::new(0));
        let (s, k) = (sent.clone(), skipped.clone());
        registry.set_progress(move |p| match p.kind {
            ProgressKind::Pushed => {
                s.fetch_add(1, Relaxed);
            }
            // Measured around the push only, so `Exists` here means "the registry had it".
            ProgressKind::Exists | ProgressKind::Mounted { .. } => {
                k.fetch_add(1, Relaxed);
            }
            _ => {}
        });
        PushCounter { sent, skipped }
    }

    fn now(&self) -> (usize, usize) {
        (self.sent.load(Relaxed), self.skipped.load(Relaxed))
    }
}

/// Pushes `digest` under every tag, one notice per tag.
pub(super) fn push_tags(
    registry: &Client,
    store: &Store,
    counter: &PushCounter,
    digest: &Digest,
    tags: &[ImageRef],
    observer: &dyn Observer,
) -> crate::Result<()> {
    for t in tags {
        let (s0, k0) = counter.now();
        registry.push(store, digest, t)?;
        let (s1, k1) = counter.now();
        observer.notice(Notice::Pushed {
            reference: t.clone(),
            digest: digest.clone(),
            uploaded: s1 - s0,
            existing: k1 - k0,
        });
    }
    Ok(())
}

/// `--sign`: signs the pushed image under each tag's repository (cosign's `.sig`), and its
/// attestation statements as DSSE envelopes (`.att`), one notice per signature pushed.
pub(super) fn sign_tags(
    registry: &Client,
    key: &crate::sign::SigningKey,
    digest: &Digest,
    tags: &[ImageRef],
    observer: &dyn Observer,
) -> crate::Result<()> {
    for t in tags {
        let pinned = t.with_digest(digest);
        let s = crate::sign::sign_image(registry, &pinned, key, &Default::default())?;
        observer.notice(Notice::Signed {
            reference: t.clone(),
            subject: s.subject,
            tag: s.tag,
            statements: 0,
        });
        for (n, at) in crate::sign::attest_index(registry, &pinned, key)? {
            observer.notice(Notice::Signed {
                reference: t.clone(),
                subject: at.subject,
                tag: at.tag,
                statements: n,
            });
        }
    }
    Ok(())
}

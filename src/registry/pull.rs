//! Pulling: manifests (an index resolved to the platform's manifest, each checked against its
//! digest, size and type), and blobs downloaded into the store, resumed after a broken
//! connection and verified before they are committed.

use super::auth::redact;
use super::progress::ProgressKind;
use super::session::{Client, Expect, Req, pull_scope, read_limited};
use super::timeout::Deadline;
use super::{ImageRef, PulledImage, RegistryError, Result};
use crate::oci::{Descriptor, Digest, Index, Manifest, Platform, classify_manifest, media};
use crate::store::{MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, Store, StoreError};
use reqwest::blocking::Response;
use reqwest::header;
use reqwest::{Method, StatusCode};
use std::io::{Read, Write};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};

/// Reads a response body on a helper thread, so that the caller can stop waiting at the
/// operation's deadline: a read of reqwest's blocking client cannot be interrupted and may
/// wait up to the idle limit. An abandoned thread ends after that read (its receiver gone),
/// dropping the response and its connection.
struct BodyReader {
    rx: Receiver<std::io::Result<Vec<u8>>>,
}

impl BodyReader {
    fn start(mut resp: Response) -> BodyReader {
        let (tx, rx) = mpsc::sync_channel(2);
        std::thread::spawn(move || {
            loop {
                let mut buf = vec![0u8; 256 << 10];
                let read = resp.read(&mut buf).map(|n| {
                    buf.truncate(n);
                    buf
                });
                let more = matches!(&read, Ok(b) if !b.is_empty());
                if tx.send(read).is_err() || !more {
                    return;
                }
            }
        });
        BodyReader { rx }
    }

    /// The next piece of the body (empty at its end), or the timeout once `dl` has passed.
    fn next(&self, dl: &Deadline) -> Result<std::io::Result<Vec<u8>>> {
        loop {
            dl.check()?;
            let got = match dl.remaining() {
                Some(left) => self.rx.recv_timeout(left),
                None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match got {
                Ok(read) => return Ok(read),
                // The deadline: `check` above turns it into the error.
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    return Ok(Err(std::io::Error::other("the body reader thread ended")));
                }
            }
        }
    }
}

impl Client {
    fn fetch_manifest(
        &self,
        r: &ImageRef,
        reference: &str,
        scopes: &[String],
    ) -> Result<(Vec<u8>, String, Digest)> {
        let ep = self.endpoint(&r.registry)?;
        let url = self.url(&ep, &format!("v2/{}/manifests/{reference}", r.repository))?;
        let sep = if reference.starts_with("sha256:") {
            "@"
        } else {
            ":"
        };
        let resp = self.send_expect(
            &ep,
            scopes,
            &Req::new(Method::GET, &url)
                .with(&|rb| Ok(rb.header(header::ACCEPT, media::ACCEPT_MANIFESTS))),
            Expect::Success,
            &format!("manifest {}{sep}{reference}", r.name()),
        )?;
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        let bytes = read_limited(resp, MAX_MANIFEST_SIZE, "manifest", url.as_str())?;
        let digest = Digest::of(&bytes);
        if let Ok(want) = reference.parse::<Digest>()
            && want != digest
        {
            return Err(RegistryError::DigestMismatch {
                what: format!("manifest of {r}"),
                expected: want,
                actual: digest,
            });
        }
        let bad = |reason: String| RegistryError::BadManifest {
            url: redact(url.as_str()),
            reason,
        };
        let mt = classify_manifest(&bytes, &content_type).map_err(bad)?;
        Ok((bytes, mt, digest))
    }

    /// Fetches a manifest or index as the registry serves it: bytes, media type, digest.
    pub fn get_manifest(&self, r: &ImageRef) -> Result<(Vec<u8>, String, Digest)> {
        self.operation(format!("fetching the manifest of {r}"), || {
            self.get_manifest_op(r)
        })
    }

    fn get_manifest_op(&self, r: &ImageRef) -> Result<(Vec<u8>, String, Digest)> {
        self.fetch_manifest(r, &r.reference(), &[pull_scope(&r.repository)])
    }

    fn platform_manifest(
        &self,
        r: &ImageRef,
        platform: &Platform,
        scopes: &[String],
    ) -> Result<(Vec<u8>, String, Digest)> {
        let (bytes, mt, digest) = self.fetch_manifest(r, &r.reference(), scopes)?;
        if !media::is_index(&mt) {
            return Ok((bytes, mt, digest));
        }
        let idx: Index =
            serde_json::from_slice(&bytes).map_err(|e| RegistryError::BadManifest {
                url: r.to_string(),
                reason: format!("invalid index: {e}"),
            })?;
        let desc = idx
            .select(platform)
            .ok_or_else(|| RegistryError::NoPlatform {
                image: r.to_string(),
                platform: platform.to_string_short(),
                available: idx
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref().map(Platform::to_string_short))
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        if desc.size > MAX_MANIFEST_SIZE {
            return Err(RegistryError::TooLarge {
                what: format!("manifest {}", desc.digest),
                url: r.to_string(),
                limit: MAX_MANIFEST_SIZE,
            });
        }
        let (b, mt2, d2) = self.fetch_manifest(r, &desc.digest.to_string(), scopes)?;
        if b.len() as u64 != desc.size {
            return Err(RegistryError::SizeMismatch {
                what: format!("manifest {d2} of {r}"),
                expected: desc.size,
                actual: b.len() as u64,
            });
        }
        if !media::is_manifest(&mt2) {
            return Err(RegistryError::BadManifest {
                url: r.to_string(),
                reason: format!("index entry {d2} is {mt2:?}, not an image manifest"),
            });
        }
        Ok((b, mt2, d2))
    }

    /// The digest of the manifest for `platform` (resolving an index).
    pub fn resolve(&self, r: &ImageRef, platform: &Platform) -> Result<Digest> {
        self.operation(format!("resolving {r}"), || self.resolve_op(r, platform))
    }

    fn resolve_op(&self, r: &ImageRef, platform: &Platform) -> Result<Digest> {
        Ok(self
            .platform_manifest(r, platform, &[pull_scope(&r.repository)])?
            .2)
    }

    /// Pulls an image: manifest (platform-selected), config and layers into the store, all
    /// verified; names it `r.to_string()` in the store.
    pub fn pull(&self, r: &ImageRef, platform: &Platform, store: &Store) -> Result<PulledImage> {
        self.operation(format!("pulling {r}"), || self.pull_op(r, platform, store))
    }

    fn pull_op(&self, r: &ImageRef, platform: &Platform, store: &Store) -> Result<PulledImage> {
        let scopes = vec![pull_scope(&r.repository)];
        // A concurrent `prune` must not collect blobs between their download and set_image.
        let _gc = store.gc_shared_lock()?;
        let (bytes, digest, manifest) = self.image_manifest(r, platform, &scopes)?;
        self.fetch_blob_scoped(r, &manifest.config, store, &scopes)?;
        self.parallel_each(&manifest.layers, |d| {
            self.fetch_blob_scoped(r, d, store, &scopes)
        })?;
        store.put_blob(&bytes)?;
        let (manifest, config) = store.load_image(&digest)?;
        store.set_image(&r.to_string(), &digest)?;
        let mut all: Vec<Digest> = manifest.layers.iter().map(|l| l.digest.clone()).collect();
        all.push(manifest.config.digest.clone());
        store.record_blob_sources(&r.registry, &r.repository, &all)?;
        Ok(PulledImage {
            manifest_digest: digest,
            manifest,
            config,
        })
    }

    /// The image manifest of `r` for `platform` (its bytes, digest and parsed form), with a
    /// config no larger than the limit.
    fn image_manifest(
        &self,
        r: &ImageRef,
        platform: &Platform,
        scopes: &[String],
    ) -> Result<(Vec<u8>, Digest, Manifest)> {
        let (bytes, _mt, digest) = self.platform_manifest(r, platform, scopes)?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| RegistryError::BadManifest {
                url: r.to_string(),
                reason: format!("invalid image manifest: {e}"),
            })?;
        if manifest.config.size > MAX_CONFIG_SIZE {
            return Err(RegistryError::TooLarge {
                what: format!("config {}", manifest.config.digest),
                url: r.to_string(),
                limit: MAX_CONFIG_SIZE,
            });
        }
        Ok((bytes, digest, manifest))
    }

    /// The config of `r` for `platform` without its layers (`build --check` reads the base
    /// images' env): the manifest, then the config blob, verified and kept in the store.
    pub fn pull_config(
        &self,
        r: &ImageRef,
        platform: &Platform,
        store: &Store,
    ) -> Result<crate::oci::ImageConfig> {
        self.operation(format!("fetching the config of {r}"), || {
            let scopes = vec![pull_scope(&r.repository)];
            let (_bytes, _digest, manifest) = self.image_manifest(r, platform, &scopes)?;
            self.fetch_blob_scoped(r, &manifest.config, store, &scopes)?;
            let raw = store.read_blob(&manifest.config.digest)?;
            serde_json::from_slice(&raw).map_err(|e| RegistryError::BadManifest {
                url: r.to_string(),
                reason: format!("invalid image config {}: {e}", manifest.config.digest),
            })
        })
    }

    /// Downloads one blob into the store (verified against the descriptor's digest and size).
    pub fn fetch_blob(&self, r: &ImageRef, desc: &Descriptor, store: &Store) -> Result<()> {
        self.operation(format!("fetching blob {} of {r}", desc.digest), || {
            self.fetch_blob_op(r, desc, store)
        })
    }

    fn fetch_blob_op(&self, r: &ImageRef, desc: &Descriptor, store: &Store) -> Result<()> {
        self.fetch_blob_scoped(r, desc, store, &[pull_scope(&r.repository)])
    }

    fn fetch_blob_scoped(
        &self,
        r: &ImageRef,
        desc: &Descriptor,
        store: &Store,
        scopes: &[String],
    ) -> Result<()> {
        let id = desc.digest.short().to_string();
        if store.has_blob(&desc.digest) {
            self.emit(&id, ProgressKind::Exists, desc.size, desc.size);
            return Ok(());
        }
        // One download per blob across processes (flock, released if the holder dies); 256
        // buckets keep the lock files few.
        let _ingest = store.lock(&format!("ingest-{}", &desc.digest.hex()[..2]), true)?;
        if store.has_blob(&desc.digest) {
            self.emit(&id, ProgressKind::Exists, desc.size, desc.size);
            return Ok(());
        }
        let ep = self.endpoint(&r.registry)?;
        // Foreign `urls` are ignored: blobs come from the registry only.
        let url = self.url(&ep, &format!("v2/{}/blobs/{}", r.repository, desc.digest))?;
        let what = format!("blob {} of {r}", desc.digest);
        let mut w = store.blob_writer()?;
        let mut resumes = 0u32;
        let mut last_emit = 0u64;
        let dl = self.deadline();
        // On any error `w` is dropped, which removes its temporary file.
        'outer: loop {
            let offset = w.len();
            let expect: &'static [StatusCode] = if offset > 0 {
                &[StatusCode::OK, StatusCode::PARTIAL_CONTENT]
            } else {
                &[StatusCode::OK]
            };
            let resp = self.send_expect(
                &ep,
                scopes,
                &Req::new(Method::GET, &url).with(&|rb| {
                    Ok(if offset > 0 {
                        rb.header(header::RANGE, format!("bytes={offset}-"))
                    } else {
                        rb
                    })
                }),
                Expect::Status(expect),
                &what,
            )?;
            if resp.status() == StatusCode::PARTIAL_CONTENT {
                let start = resp
                    .headers()
                    .get(header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.parse::<u64>().ok());
                if start != Some(offset) {
                    w = store.blob_writer()?;
                    continue;
                }
            } else if offset > 0 {
                // 200: the registry sends the whole blob again.
                w = store.blob_writer()?;
            }
            let body = BodyReader::start(resp);
            loop {
                // A read fails after the idle limit; the wait for it ends at the deadline.
                let read = body.next(&dl)?;
                match read {
                    Ok(buf) if buf.is_empty() => {
                        if w.len() < desc.size && resumes < 10 {
                            resumes += 1;
                            continue 'outer;
                        }
                        break 'outer;
                    }
                    Ok(buf) => {
                        let n = buf.len();
                        if w.len() + n as u64 > desc.size {
                            return Err(RegistryError::SizeMismatch {
                                what,
                                expected: desc.size,
                                actual: w.len() + n as u64,
                            });
                        }
                        w.write_all(&buf).map_err(|e| StoreError::Io {
                            path: store.root().join("tmp"),
                            source: e,
                        })?;
                        if w.len() - last_emit >= 1 << 20 {
                            last_emit = w.len();
                            self.emit(&id, ProgressKind::Downloading, w.len(), desc.size);
                        }
                    }
                    Err(e) => {
                        dl.check()?;
                        let reason = self.read_error(&e);
                        if resumes >= 10 {
                            return Err(RegistryError::Connection {
                                url: redact(url.as_str()),
                                reason: format!("reading {what}: {reason}"),
                            });
                        }
                        self.emit(&id, ProgressKind::Retrying { reason }, w.len(), desc.size);
                        std::thread::sleep(dl.cap(self.policy.backoff(resumes.min(4))));
                        resumes += 1;
                        continue 'outer;
                    }
                }
            }
        }
        match w.commit_sized(&desc.digest, desc.size) {
            Ok(_) => {}
            Err(StoreError::DigestMismatch { expected, actual }) => {
                return Err(RegistryError::DigestMismatch {
                    what,
                    expected,
                    actual,
                });
            }
            Err(StoreError::SizeMismatch {
                expected, actual, ..
            }) => {
                return Err(RegistryError::SizeMismatch {
                    what,
                    expected,
                    actual,
                });
            }
            Err(e) => return Err(e.into()),
        }
        self.emit(&id, ProgressKind::Downloaded, desc.size, desc.size);
        Ok(())
    }
}

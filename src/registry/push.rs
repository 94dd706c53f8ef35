//! Pushing an image from the store: an index's manifests, then each manifest's blobs (skipped
//! when the registry has them, mounted from another repository of the same registry when the
//! store knows one, else uploaded), then the manifest itself.

use super::progress::ProgressKind;
use super::session::{Client, Expect, Req, pull_scope, push_scope, retryable};
use super::{ImageRef, RegistryError, Result};
use crate::oci::{Digest, Index, Manifest, media};
use crate::store::{MAX_MANIFEST_SIZE, Store};
use reqwest::header;
use reqwest::{Method, StatusCode};

impl Client {
    /// Pushes an image from the store: blobs (HEAD-skip, cross-repo mount, upload), then the
    /// manifest under `dest`'s tag (or digest). Returns the manifest digest.
    pub fn push(&self, store: &Store, manifest: &Digest, dest: &ImageRef) -> Result<Digest> {
        self.operation(format!("pushing {dest}"), || {
            self.push_op(store, manifest, dest)
        })
    }

    fn push_op(&self, store: &Store, manifest: &Digest, dest: &ImageRef) -> Result<Digest> {
        let _gc = store.gc_shared_lock()?;
        let bytes = store.read_blob_limited(manifest, "manifest", MAX_MANIFEST_SIZE)?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| RegistryError::BadManifest {
                url: store.blob_path(manifest).display().to_string(),
                reason: e.to_string(),
            })?;
        let mt = v
            .get("mediaType")
            .and_then(|m| m.as_str())
            .map(str::to_string);
        if v.get("manifests").is_some() {
            let idx: Index = serde_json::from_value(v).map_err(|e| RegistryError::BadManifest {
                url: store.blob_path(manifest).display().to_string(),
                reason: e.to_string(),
            })?;
            for m in &idx.manifests {
                if store.has_blob(&m.digest) {
                    self.push(store, &m.digest, &dest.with_digest(&m.digest))?;
                }
            }
            return self.put_manifest(dest, &bytes, mt.as_deref().unwrap_or(media::OCI_INDEX));
        }
        let m: Manifest = serde_json::from_value(v).map_err(|e| RegistryError::BadManifest {
            url: store.blob_path(manifest).display().to_string(),
            reason: e.to_string(),
        })?;
        let mut blobs: Vec<Digest> = vec![m.config.digest.clone()];
        blobs.extend(m.layers.iter().map(|l| l.digest.clone()));
        self.parallel_each(&blobs, |d| self.push_blob(store, dest, d))?;
        let d = self.put_manifest(dest, &bytes, mt.as_deref().unwrap_or(media::OCI_MANIFEST))?;
        store.record_blob_sources(&dest.registry, &dest.repository, &blobs)?;
        Ok(d)
    }

    /// Uploads one blob unless the registry has it; mounts it from another repository of the
    /// same registry when the store knows one.
    pub fn push_blob(&self, store: &Store, dest: &ImageRef, d: &Digest) -> Result<()> {
        self.operation(format!("pushing blob {d} to {}", dest.name()), || {
            self.push_blob_op(store, dest, d)
        })
    }

    fn push_blob_op(&self, store: &Store, dest: &ImageRef, d: &Digest) -> Result<()> {
        let size = store.blob_size(d)?;
        let id = d.short().to_string();
        let ep = self.endpoint(&dest.registry)?;
        let source = store
            .blob_sources(&dest.registry, d)?
            .into_iter()
            .rev()
            .find(|s| s != &dest.repository);
        let mut scopes = vec![push_scope(&dest.repository)];
        if let Some(src) = &source {
            scopes.push(pull_scope(src));
        }
        let what = format!("blob {d} to {}", dest.name());
        let head = self.url(&ep, &format!("v2/{}/blobs/{d}", dest.repository))?;
        let resp = self.send(&ep, &scopes, &Req::new(Method::HEAD, &head))?;
        if resp.status().is_success() {
            self.emit(&id, ProgressKind::Exists, size, size);
            return Ok(());
        }
        if resp.status() == StatusCode::UNAUTHORIZED || resp.status() == StatusCode::FORBIDDEN {
            return Err(self.status_error(&ep, &scopes, &Method::HEAD, &head, &what, resp));
        }
        let mut mounted_session = None;
        if let Some(src) = &source {
            let mut u = self.url(&ep, &format!("v2/{}/blobs/uploads/", dest.repository))?;
            u.query_pairs_mut()
                .append_pair("mount", &d.to_string())
                .append_pair("from", src);
            let resp = self.send(
                &ep,
                &scopes,
                &Req::new(Method::POST, &u).with(&|rb| Ok(rb.header(header::CONTENT_LENGTH, "0"))),
            )?;
            match resp.status() {
                StatusCode::CREATED => {
                    self.emit(&id, ProgressKind::Mounted { from: src.clone() }, size, size);
                    return Ok(());
                }
                StatusCode::ACCEPTED => mounted_session = self.location(&ep, &resp),
                _ => {}
            }
        }
        let dl = self.deadline();
        let mut attempt = 0;
        loop {
            dl.check()?;
            let session = match mounted_session.take() {
                Some(s) => s,
                None => self.start_upload(&ep, &scopes, dest)?,
            };
            match self.upload(&ep, &scopes, store, d, size, session, &id) {
                Ok(()) => break,
                Err(e) if attempt + 1 < self.policy.attempts && retryable(&e) => {
                    self.emit(
                        &id,
                        ProgressKind::Retrying {
                            reason: e.to_string(),
                        },
                        0,
                        size,
                    );
                    std::thread::sleep(dl.cap(self.policy.backoff(attempt)));
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
        self.emit(&id, ProgressKind::Pushed, size, size);
        Ok(())
    }

    /// Puts a manifest (or index) under `r`'s tag, or its digest when it has none.
    pub fn put_manifest(&self, r: &ImageRef, bytes: &[u8], media_type: &str) -> Result<Digest> {
        self.operation(format!("pushing the manifest of {r}"), || {
            self.put_manifest_op(r, bytes, media_type)
        })
    }

    fn put_manifest_op(&self, r: &ImageRef, bytes: &[u8], media_type: &str) -> Result<Digest> {
        let digest = Digest::of(bytes);
        let ep = self.endpoint(&r.registry)?;
        let scopes = vec![push_scope(&r.repository)];
        let reference = r.tag.clone().unwrap_or_else(|| digest.to_string());
        let url = self.url(&ep, &format!("v2/{}/manifests/{reference}", r.repository))?;
        let body = bytes.to_vec();
        let resp = self.send_expect(
            &ep,
            &scopes,
            &Req::new(Method::PUT, &url).with(&|rb| {
                Ok(rb
                    .header(header::CONTENT_TYPE, media_type)
                    .body(body.clone()))
            }),
            Expect::Status(&[StatusCode::CREATED, StatusCode::OK]),
            &format!("manifest {r}"),
        )?;
        if let Some(got) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok())
            && got != digest
        {
            return Err(RegistryError::DigestMismatch {
                what: format!("manifest pushed to {r}"),
                expected: digest,
                actual: got,
            });
        }
        Ok(digest)
    }
}

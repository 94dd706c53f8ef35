//! Push side: blobs (HEAD first, cross-repository mount when the store knows another
//! repository of the same registry has the blob, monolithic PUT for small blobs, chunked PATCH
//! streamed from disk for big ones), then the manifest with its media type.
//!
//! Where blobs came from is remembered in `<root>/registry-sources/<hex>`, one
//! `registry/repository` per line, so later pushes can mount instead of upload.

use super::http::{Scope, error_body};
use super::{
    Client, ImageRef, MONOLITHIC_UPLOAD_MAX, PARALLEL_LAYERS, Progress, RegistryError, Result,
    UPLOAD_CHUNK,
};
use crate::oci::{Digest, Manifest, media};
use crate::store::Store;
use reqwest::blocking::{Body, Response};
use reqwest::{Method, StatusCode, Url};
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

fn sources_path(store: &Store, d: &Digest) -> std::path::PathBuf {
    store.root().join("registry-sources").join(d.hex())
}

/// Notes that `d` is in `r`'s repository (best effort: a lost note only costs a mount).
pub(crate) fn record_source(store: &Store, d: &Digest, r: &ImageRef) {
    let line = r.name();
    let path = sources_path(store, d);
    let known = std::fs::read_to_string(&path).unwrap_or_default();
    if known.lines().any(|l| l == line) {
        return;
    }
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
}

/// Another repository of `dest`'s registry known to hold `d`.
fn mount_source(store: &Store, d: &Digest, dest: &ImageRef) -> Option<String> {
    let known = std::fs::read_to_string(sources_path(store, d)).ok()?;
    let prefix = format!("{}/", dest.registry);
    known
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .find(|repo| *repo != dest.repository && !repo.is_empty())
        .map(str::to_string)
}

impl Client {
    fn status_err(&self, method: &str, url: &str, resp: Response) -> RegistryError {
        RegistryError::Status {
            method: method.into(),
            url: url.to_string(),
            status: resp.status().as_u16(),
            body: error_body(resp),
        }
    }

    /// The absolute upload URL from a `Location` header.
    fn location(&self, dest: &ImageRef, url: &str, resp: &Response) -> Result<Url> {
        let base = Url::parse(&format!("{}/", self.http.base_url(&dest.registry)));
        resp.headers()
            .get("Location")
            .and_then(|v| v.to_str().ok())
            .and_then(|l| base.ok().and_then(|b| b.join(l).ok()))
            .ok_or_else(|| RegistryError::MissingHeader {
                url: url.to_string(),
                header: "Location".into(),
            })
    }

    /// Uploads blob `d` from `store` to `dest`'s repository unless the registry has it.
    pub fn push_blob(&self, store: &Store, dest: &ImageRef, d: &Digest) -> Result<()> {
        let base = self.http.base_url(&dest.registry);
        let blob_url = format!("{base}/v2/{}/blobs/{d}", dest.repository);
        let mut scope = Scope::new(&dest.registry, &dest.repository, "pull,push");
        let head = self.http.send(&scope, Method::HEAD, &blob_url, &[], None)?;
        if head.status().is_success() {
            record_source(store, d, dest);
            self.report(Progress::Exists {
                digest: d.clone(),
                push: true,
            });
            return Ok(());
        }
        let size = store
            .open_blob(d)?
            .metadata()
            .map_err(|source| RegistryError::Io {
                path: store.blob_path(d),
                source,
            })?
            .len();
        let uploads = format!("{base}/v2/{}/blobs/uploads/", dest.repository);
        let mut started = None;
        if let Some(from) = mount_source(store, d, dest) {
            let mut s = scope.clone();
            s.extra.push(format!("repository:{from}:pull"));
            let url = format!("{uploads}?mount={d}&from={from}");
            // A registry that refuses the mount (or our token for `from`) still takes an upload.
            if let Ok(resp) = self.http.send(
                &s,
                Method::POST,
                &url,
                &[("Content-Length", "0".into())],
                None,
            ) {
                if resp.status() == StatusCode::CREATED {
                    record_source(store, d, dest);
                    self.report(Progress::Mounted {
                        digest: d.clone(),
                        from: format!("{}/{from}", dest.registry),
                    });
                    return Ok(());
                }
                if resp.status() == StatusCode::ACCEPTED {
                    started = Some(self.location(dest, &url, &resp)?);
                    scope = s;
                }
            }
        }
        let mut loc = match started {
            Some(l) => l,
            None => {
                let resp = self.http.send(
                    &scope,
                    Method::POST,
                    &uploads,
                    &[("Content-Length", "0".into())],
                    None,
                )?;
                if resp.status() != StatusCode::ACCEPTED {
                    return Err(self.status_err("POST", &uploads, resp));
                }
                self.location(dest, &uploads, &resp)?
            }
        };
        self.report(Progress::Started {
            digest: d.clone(),
            size,
            push: true,
        });
        if size > MONOLITHIC_UPLOAD_MAX {
            let mut offset = 0u64;
            while offset < size {
                let len = UPLOAD_CHUNK.min(size - offset);
                let start = offset;
                let body = || -> Result<Body> {
                    let mut f = store.open_blob(d)?;
                    f.seek(SeekFrom::Start(start))
                        .map_err(|source| RegistryError::Io {
                            path: store.blob_path(d),
                            source,
                        })?;
                    Ok(Body::sized(f.take(len), len))
                };
                let url = loc.to_string();
                let headers = [
                    ("Content-Type", "application/octet-stream".to_string()),
                    ("Content-Range", format!("{}-{}", start, start + len - 1)),
                    ("Content-Length", len.to_string()),
                ];
                let resp = self
                    .http
                    .send(&scope, Method::PATCH, &url, &headers, Some(&body))?;
                if resp.status() != StatusCode::ACCEPTED {
                    return Err(self.status_err("PATCH", &url, resp));
                }
                loc = self.location(dest, &url, &resp)?;
                offset += len;
            }
            loc.query_pairs_mut().append_pair("digest", &d.to_string());
            let url = loc.to_string();
            let resp = self.http.send(
                &scope,
                Method::PUT,
                &url,
                &[("Content-Length", "0".into())],
                None,
            )?;
            if resp.status() != StatusCode::CREATED {
                return Err(self.status_err("PUT", &url, resp));
            }
        } else {
            loc.query_pairs_mut().append_pair("digest", &d.to_string());
            let url = loc.to_string();
            let body = || -> Result<Body> { Ok(Body::sized(store.open_blob(d)?, size)) };
            let headers = [
                ("Content-Type", "application/octet-stream".to_string()),
                ("Content-Length", size.to_string()),
            ];
            let resp = self
                .http
                .send(&scope, Method::PUT, &url, &headers, Some(&body))?;
            if resp.status() != StatusCode::CREATED {
                return Err(self.status_err("PUT", &url, resp));
            }
        }
        record_source(store, d, dest);
        self.report(Progress::Done {
            digest: d.clone(),
            size,
            push: true,
        });
        Ok(())
    }

    /// PUTs a manifest (or index) under `dest`'s tag (or digest) with `media_type`; returns
    /// its digest.
    pub fn put_manifest(&self, dest: &ImageRef, bytes: &[u8], media_type: &str) -> Result<Digest> {
        let digest = Digest::of(bytes);
        let url = format!(
            "{}/v2/{}/manifests/",
            self.http.base_url(&dest.registry),
            dest.repository
        );
        if let Some(want) = &dest.digest
            && want != &digest
        {
            return Err(RegistryError::DigestMismatch {
                what: format!("manifest for {dest}"),
                url,
                expected: want.clone(),
                actual: digest,
            });
        }
        let reference = dest.tag.clone().unwrap_or_else(|| digest.to_string());
        let url = format!("{url}{reference}");
        let scope = Scope::new(&dest.registry, &dest.repository, "pull,push");
        let owned = bytes.to_vec();
        let body = || -> Result<Body> { Ok(Body::from(owned.clone())) };
        let resp = self.http.send(
            &scope,
            Method::PUT,
            &url,
            &[("Content-Type", media_type.to_string())],
            Some(&body),
        )?;
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(self.status_err("PUT", &url, resp));
        }
        Ok(digest)
    }

    /// Pushes the image whose manifest is `manifest` in `store` to `dest`: config and layers
    /// (up to `PARALLEL_LAYERS` at once), then the manifest. Returns the manifest digest.
    pub fn push(&self, store: &Store, manifest: &Digest, dest: &ImageRef) -> Result<Digest> {
        let bytes = store.read_blob(manifest)?;
        let m: Manifest =
            serde_json::from_slice(&bytes).map_err(|source| RegistryError::InvalidJson {
                what: format!("manifest {manifest}"),
                url: store.blob_path(manifest).display().to_string(),
                source,
            })?;
        let mut blobs: Vec<&Digest> = vec![&m.config.digest];
        blobs.extend(
            m.layers
                .iter()
                .filter(|l| l.media_type != media::DOCKER_LAYER_FOREIGN)
                .map(|l| &l.digest),
        );
        let next = AtomicUsize::new(0);
        let results: Vec<Result<()>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..PARALLEL_LAYERS.min(blobs.len()))
                .map(|_| {
                    s.spawn(|| -> Result<()> {
                        loop {
                            let i = next.fetch_add(1, Ordering::SeqCst);
                            let Some(d) = blobs.get(i) else { return Ok(()) };
                            if let Err(e) = self.push_blob(store, dest, d) {
                                next.store(usize::MAX / 2, Ordering::SeqCst);
                                return Err(e);
                            }
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        for r in results {
            r?;
        }
        let mt = match &m.media_type {
            Some(t) => t.clone(),
            None if m.config.media_type == media::DOCKER_CONFIG => {
                media::DOCKER_MANIFEST.to_string()
            }
            None => media::OCI_MANIFEST.to_string(),
        };
        let target = if dest.tag.is_none() && dest.digest.is_none() {
            dest.with_tag("latest")
        } else {
            dest.clone()
        };
        self.put_manifest(&target, &bytes, &mt)
    }
}

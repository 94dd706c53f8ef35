//! Pull side: manifests (with platform selection from an index), configs and layer blobs,
//! each verified against its digest and declared size before it lands in the store.

use super::http::{Scope, error_body};
use super::{
    Client, ImageRef, MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, PARALLEL_LAYERS, Progress, PulledImage,
    RegistryError, Result,
};
use crate::oci::{Descriptor, Digest, ImageConfig, Index, Manifest, Platform, media};
use crate::store::{Store, StoreError};
use reqwest::{Method, StatusCode};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Attempts at a blob download whose connection drops mid-stream.
const BLOB_ATTEMPTS: u32 = 3;

fn strip_params(ct: &str) -> &str {
    ct.split(';').next().unwrap_or(ct).trim()
}

/// The media type a manifest document declares (`mediaType`), if any.
fn declared_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    let p: Probe = serde_json::from_slice(bytes).ok()?;
    p.media_type
        .or_else(|| p.manifests.map(|_| media::OCI_INDEX.to_string()))
}

impl Client {
    fn manifest_url(&self, r: &ImageRef, reference: &str) -> String {
        format!(
            "{}/v2/{}/manifests/{}",
            self.http.base_url(&r.registry),
            r.repository,
            reference
        )
    }

    fn blob_url(&self, r: &ImageRef, d: &Digest) -> String {
        format!(
            "{}/v2/{}/blobs/{}",
            self.http.base_url(&r.registry),
            r.repository,
            d
        )
    }

    /// Fetches the manifest or index `r` names: its bytes, media type and digest (verified
    /// when `r` has a digest).
    pub fn get_manifest(&self, r: &ImageRef) -> Result<(Vec<u8>, String, Digest)> {
        self.fetch_manifest(r, &r.reference(), r.digest.as_ref())
    }

    fn fetch_manifest(
        &self,
        r: &ImageRef,
        reference: &str,
        expect: Option<&Digest>,
    ) -> Result<(Vec<u8>, String, Digest)> {
        let url = self.manifest_url(r, reference);
        let scope = Scope::new(&r.registry, &r.repository, "pull");
        let resp = self.http.send(
            &scope,
            Method::GET,
            &url,
            &[("Accept", media::ACCEPT_MANIFESTS.to_string())],
            None,
        )?;
        let image = match expect {
            Some(d) => format!("{}@{d}", r.name()),
            None => format!("{}:{reference}", r.name()),
        };
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(RegistryError::ManifestNotFound { image });
        }
        if !resp.status().is_success() {
            return Err(RegistryError::Status {
                method: "GET".into(),
                url,
                status: resp.status().as_u16(),
                body: error_body(resp),
            });
        }
        let ct = resp
            .headers()
            .get("Content-Type")
            .and_then(|v| v.to_str().ok())
            .map(|s| strip_params(s).to_string());
        let bytes = read_limited(
            resp,
            MAX_MANIFEST_SIZE,
            &format!("manifest of {image}"),
            &url,
        )?;
        let digest = Digest::of(&bytes);
        if let Some(e) = expect
            && e != &digest
        {
            return Err(RegistryError::DigestMismatch {
                what: format!("manifest of {image}"),
                url,
                expected: e.clone(),
                actual: digest,
            });
        }
        let declared = declared_media_type(&bytes);
        let mt = match (declared, ct) {
            (Some(d), _) => d,
            (None, Some(c)) if media::is_index(&c) || media::is_manifest(&c) => c,
            (None, _) => media::OCI_MANIFEST.to_string(),
        };
        if !media::is_index(&mt) && !media::is_manifest(&mt) {
            return Err(RegistryError::UnsupportedMediaType {
                url,
                media_type: mt,
            });
        }
        Ok((bytes, mt, digest))
    }

    /// Picks the platform's manifest from an index; errors list what is available.
    fn select(
        &self,
        r: &ImageRef,
        bytes: &[u8],
        url: &str,
        platform: &Platform,
    ) -> Result<Descriptor> {
        let idx: Index =
            serde_json::from_slice(bytes).map_err(|source| RegistryError::InvalidJson {
                what: format!("index of {r}"),
                url: url.to_string(),
                source,
            })?;
        match idx.select(platform) {
            Some(d) => Ok(d.clone()),
            None => Err(RegistryError::NoPlatform {
                image: r.to_string(),
                platform: platform.to_string_short(),
                available: idx
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref().map(Platform::to_string_short))
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// The platform manifest `r` names, as (bytes, media type, digest).
    fn platform_manifest(
        &self,
        r: &ImageRef,
        platform: &Platform,
    ) -> Result<(Vec<u8>, String, Digest)> {
        let (bytes, mt, digest) = self.get_manifest(r)?;
        if !media::is_index(&mt) {
            return Ok((bytes, mt, digest));
        }
        let url = self.manifest_url(r, &r.reference());
        let d = self.select(r, &bytes, &url, platform)?;
        if d.size > MAX_MANIFEST_SIZE {
            return Err(RegistryError::TooLarge {
                what: format!("manifest {}", d.digest),
                url,
                limit: MAX_MANIFEST_SIZE,
            });
        }
        let (b, mt, dg) = self.fetch_manifest(r, &d.digest.to_string(), Some(&d.digest))?;
        if b.len() as u64 != d.size {
            return Err(RegistryError::SizeMismatch {
                what: format!("manifest {}", d.digest),
                url: self.manifest_url(r, &d.digest.to_string()),
                expected: d.size,
                actual: b.len() as u64,
            });
        }
        if media::is_index(&mt) {
            return Err(RegistryError::UnsupportedMediaType {
                url: self.manifest_url(r, &d.digest.to_string()),
                media_type: mt,
            });
        }
        Ok((b, mt, dg))
    }

    /// The digest of the manifest `r` resolves to for `platform`: a HEAD when the registry
    /// answers with a single-platform manifest, else a GET of the index.
    pub fn resolve(&self, r: &ImageRef, platform: &Platform) -> Result<Digest> {
        let url = self.manifest_url(r, &r.reference());
        let scope = Scope::new(&r.registry, &r.repository, "pull");
        let resp = self.http.send(
            &scope,
            Method::HEAD,
            &url,
            &[("Accept", media::ACCEPT_MANIFESTS.to_string())],
            None,
        )?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(RegistryError::ManifestNotFound {
                image: r.to_string(),
            });
        }
        if resp.status().is_success() {
            let ct = resp
                .headers()
                .get("Content-Type")
                .and_then(|v| v.to_str().ok())
                .map(strip_params);
            let dcd = resp
                .headers()
                .get("Docker-Content-Digest")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<Digest>().ok());
            if let (Some(ct), Some(d)) = (ct, dcd)
                && media::is_manifest(ct)
            {
                return Ok(d);
            }
        }
        Ok(self.platform_manifest(r, platform)?.2)
    }

    /// Pulls `r` for `platform` into `store`: manifest (platform picked from an index),
    /// config and layers (up to `PARALLEL_LAYERS` at once), all verified; then names it.
    pub fn pull(&self, r: &ImageRef, platform: &Platform, store: &Store) -> Result<PulledImage> {
        let (bytes, _mt, digest) = self.platform_manifest(r, platform)?;
        let url = self.manifest_url(r, &digest.to_string());
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|source| RegistryError::InvalidJson {
                what: format!("manifest of {r}"),
                url: url.clone(),
                source,
            })?;
        if manifest.config.size > MAX_CONFIG_SIZE {
            return Err(RegistryError::TooLarge {
                what: format!("config {}", manifest.config.digest),
                url: self.blob_url(r, &manifest.config.digest),
                limit: MAX_CONFIG_SIZE,
            });
        }
        self.fetch_blob(r, &manifest.config, store)?;
        let next = AtomicUsize::new(0);
        let layers = &manifest.layers;
        let results: Vec<Result<()>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..PARALLEL_LAYERS.min(layers.len()))
                .map(|_| {
                    s.spawn(|| -> Result<()> {
                        loop {
                            let i = next.fetch_add(1, Ordering::SeqCst);
                            let Some(d) = layers.get(i) else {
                                return Ok(());
                            };
                            if d.media_type == media::DOCKER_LAYER_FOREIGN {
                                continue;
                            }
                            if let Err(e) = self.fetch_blob(r, d, store) {
                                // Stop the other workers early.
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
        for res in results {
            res?;
        }
        let cbytes = store.read_blob(&manifest.config.digest)?;
        let config: ImageConfig =
            serde_json::from_slice(&cbytes).map_err(|source| RegistryError::InvalidJson {
                what: format!("config of {r}"),
                url: self.blob_url(r, &manifest.config.digest),
                source,
            })?;
        store.put_blob(&bytes)?;
        store.set_image(&r.to_string(), &digest)?;
        super::push::record_source(store, &manifest.config.digest, r);
        for l in &manifest.layers {
            super::push::record_source(store, &l.digest, r);
        }
        Ok(PulledImage {
            manifest_digest: digest,
            manifest,
            config,
        })
    }

    /// Downloads the blob `desc` names from `r`'s repository into `store`, streaming and
    /// verifying size and digest; nothing is stored when either is wrong. Skipped when the
    /// store already has it. A connection dropped mid-stream is resumed with `Range` (or
    /// restarted when the registry ignores it), up to `BLOB_ATTEMPTS` times.
    pub fn fetch_blob(&self, r: &ImageRef, desc: &Descriptor, store: &Store) -> Result<()> {
        if store.has_blob(&desc.digest) {
            self.report(Progress::Exists {
                digest: desc.digest.clone(),
                push: false,
            });
            return Ok(());
        }
        self.report(Progress::Started {
            digest: desc.digest.clone(),
            size: desc.size,
            push: false,
        });
        let url = self.blob_url(r, &desc.digest);
        let what = format!("blob {}", desc.digest);
        let scope = Scope::new(&r.registry, &r.repository, "pull");
        let mut w = store.blob_writer()?;
        let mut attempt = 0;
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let offset = w.written();
            let headers = if offset > 0 {
                vec![("Range", format!("bytes={offset}-"))]
            } else {
                vec![]
            };
            let resp = self.http.send(&scope, Method::GET, &url, &headers, None)?;
            let status = resp.status();
            if status == StatusCode::NOT_FOUND {
                return Err(RegistryError::BlobNotFound {
                    registry: r.registry.clone(),
                    repository: r.repository.clone(),
                    digest: desc.digest.clone(),
                });
            }
            let resumed = offset > 0 && status == StatusCode::PARTIAL_CONTENT;
            if !resumed && status != StatusCode::OK {
                return Err(RegistryError::Status {
                    method: "GET".into(),
                    url: url.clone(),
                    status: status.as_u16(),
                    body: error_body(resp),
                });
            }
            if !resumed && offset > 0 {
                // The registry sent the whole blob again: start over.
                w = store.blob_writer()?;
            }
            let remaining = desc.size - w.written();
            if let Some(len) = resp.content_length()
                && len != remaining
            {
                return Err(RegistryError::SizeMismatch {
                    what,
                    url,
                    expected: desc.size,
                    actual: len + w.written(),
                });
            }
            let mut limited = resp.take(remaining + 1);
            let mut broke = None;
            loop {
                match limited.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => w.write_all(&buf[..n]).map_err(|source| RegistryError::Io {
                        path: store.root().join("tmp"),
                        source,
                    })?,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        broke = Some(e);
                        break;
                    }
                }
            }
            let short = w.written() < desc.size;
            if (broke.is_some() || short) && attempt + 1 < BLOB_ATTEMPTS {
                attempt += 1;
                continue;
            }
            if let Some(e) = broke {
                return Err(RegistryError::Connect {
                    url,
                    message: format!("download broke off: {e}"),
                });
            }
            break;
        }
        if w.written() != desc.size {
            return Err(RegistryError::SizeMismatch {
                what,
                url,
                expected: desc.size,
                actual: w.written(),
            });
        }
        match w.commit(Some(&desc.digest)) {
            Ok(_) => {
                self.report(Progress::Done {
                    digest: desc.digest.clone(),
                    size: desc.size,
                    push: false,
                });
                Ok(())
            }
            Err(StoreError::DigestMismatch {
                expected, actual, ..
            }) => Err(RegistryError::DigestMismatch {
                what,
                url,
                expected,
                actual,
            }),
            Err(e) => Err(e.into()),
        }
    }
}

/// Reads at most `limit` bytes of a response; more is `TooLarge`.
fn read_limited(
    resp: reqwest::blocking::Response,
    limit: u64,
    what: &str,
    url: &str,
) -> Result<Vec<u8>> {
    if resp.content_length().is_some_and(|l| l > limit) {
        return Err(RegistryError::TooLarge {
            what: what.to_string(),
            url: url.to_string(),
            limit,
        });
    }
    let mut out = Vec::new();
    resp.take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| RegistryError::Connect {
            url: url.to_string(),
            message: format!("reading the answer: {e}"),
        })?;
    if out.len() as u64 > limit {
        return Err(RegistryError::TooLarge {
            what: what.to_string(),
            url: url.to_string(),
            limit,
        });
    }
    Ok(out)
}

//! Requests for artifacts that live beside an image (cosign signatures and attestations):
//! a manifest that may be absent, small blobs read into memory and verified, blobs pushed
//! from bytes, and the OCI 1.1 referrers API with a clean "not supported" answer.

use super::auth::redact;
use super::session::{Client, Expect, Req, pull_scope, push_scope, read_limited};
use super::{ImageRef, RegistryError, Result};
use crate::oci::{Descriptor, Digest};
use reqwest::header;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The largest referrers list read (an index of descriptors).
const MAX_REFERRERS_SIZE: u64 = 4 << 20;

/// One entry of a referrers list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Referrer {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default)]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct ReferrersIndex {
    #[serde(default)]
    manifests: Vec<Referrer>,
}

impl Client {
    /// [`Client::get_manifest`], with `None` when the registry has no such manifest (or
    /// repository).
    pub fn get_manifest_if_exists(
        &self,
        r: &ImageRef,
    ) -> Result<Option<(Vec<u8>, String, Digest)>> {
        match self.get_manifest(r) {
            Ok(m) => Ok(Some(m)),
            Err(RegistryError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads one blob of `r`'s repository into memory, refusing more than `limit` bytes, a
    /// size other than the descriptor's, and content whose digest differs.
    pub fn fetch_blob_bytes(&self, r: &ImageRef, desc: &Descriptor, limit: u64) -> Result<Vec<u8>> {
        self.operation(format!("fetching blob {} of {r}", desc.digest), || {
            let what = format!("blob {} of {}", desc.digest, r.name());
            let ep = self.endpoint(&r.registry)?;
            let url = self.url(&ep, &format!("v2/{}/blobs/{}", r.repository, desc.digest))?;
            if desc.size > limit {
                return Err(RegistryError::TooLarge {
                    what,
                    url: redact(url.as_str()),
                    limit,
                });
            }
            let resp = self.send_expect(
                &ep,
                &[pull_scope(&r.repository)],
                &Req::new(Method::GET, &url),
                Expect::Status(&[StatusCode::OK]),
                &what,
            )?;
            let bytes = read_limited(resp, limit, &what, url.as_str())?;
            if bytes.len() as u64 != desc.size {
                return Err(RegistryError::SizeMismatch {
                    what,
                    expected: desc.size,
                    actual: bytes.len() as u64,
                });
            }
            let actual = Digest::of(&bytes);
            if actual != desc.digest {
                return Err(RegistryError::DigestMismatch {
                    what,
                    expected: desc.digest.clone(),
                    actual,
                });
            }
            Ok(bytes)
        })
    }

    /// Uploads `bytes` as a blob of `dest`'s repository unless it is there already; returns
    /// its digest. For small blobs (signature payloads, configs): one monolithic `PUT`.
    pub fn push_blob_bytes(&self, dest: &ImageRef, bytes: &[u8]) -> Result<Digest> {
        let d = Digest::of(bytes);
        self.operation(format!("pushing blob {d} to {}", dest.name()), || {
            let ep = self.endpoint(&dest.registry)?;
            let scopes = vec![push_scope(&dest.repository)];
            let head = self.url(&ep, &format!("v2/{}/blobs/{d}", dest.repository))?;
            let resp = self.send(&ep, &scopes, &Req::new(Method::HEAD, &head))?;
            if resp.status().is_success() {
                return Ok(d.clone());
            }
            let mut loc = self.start_upload(&ep, &scopes, dest)?;
            loc.query_pairs_mut().append_pair("digest", &d.to_string());
            let body = bytes.to_vec();
            self.send_expect(
                &ep,
                &scopes,
                &Req::new(Method::PUT, &loc).with(&|rb| {
                    Ok(rb
                        .header(header::CONTENT_TYPE, "application/octet-stream")
                        .body(body.clone()))
                }),
                Expect::Status(&[StatusCode::CREATED]),
                &format!("upload of blob {d} to {}", dest.name()),
            )?;
            Ok(d.clone())
        })
    }

    /// The manifests that name `subject` in `r`'s repository, through the OCI 1.1 referrers
    /// API, keeping those of `artifact_type` when given (filtered here too: a registry may
    /// ignore the filter). `None` when the registry has no referrers API (404 and other
    /// client errors but auth); a denial or a server error is an error.
    pub fn referrers(
        &self,
        r: &ImageRef,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Option<Vec<Referrer>>> {
        self.operation(format!("listing the referrers of {subject} in {r}"), || {
            let ep = self.endpoint(&r.registry)?;
            let scopes = vec![pull_scope(&r.repository)];
            let mut url = self.url(&ep, &format!("v2/{}/referrers/{subject}", r.repository))?;
            if let Some(t) = artifact_type {
                url.query_pairs_mut().append_pair("artifactType", t);
            }
            let req = Req::new(Method::GET, &url)
                .with(&|rb| Ok(rb.header(header::ACCEPT, crate::oci::media::OCI_INDEX)));
            let resp = self.send(&ep, &scopes, &req)?;
            let st = resp.status();
            if st == StatusCode::UNAUTHORIZED || st == StatusCode::FORBIDDEN || st.is_server_error()
            {
                let what = format!("referrers of {subject} in {}", r.name());
                return Err(self.status_error(&ep, &scopes, &Method::GET, &url, &what, resp));
            }
            if !st.is_success() {
                return Ok(None);
            }
            let bytes = read_limited(resp, MAX_REFERRERS_SIZE, "referrers list", url.as_str())?;
            let idx: ReferrersIndex =
                serde_json::from_slice(&bytes).map_err(|e| RegistryError::BadManifest {
                    url: redact(url.as_str()),
                    reason: format!("invalid referrers list: {e}"),
                })?;
            Ok(Some(
                idx.manifests
                    .into_iter()
                    .filter(|m| artifact_type.is_none_or(|t| m.artifact_type.as_deref() == Some(t)))
                    .collect(),
            ))
        })
    }
}

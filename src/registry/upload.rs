//! Blob uploads: a session opened with a POST, the bytes sent in one PUT (small blobs) or in
//! chunks, and the streamed session ([`Upload`]) that follows a layer while it is produced.

use super::auth::redact;
use super::endpoint::Endpoint;
use super::progress::ProgressReader;
use super::session::{Client, Expect, Req, lock, push_scope};
use super::{ImageRef, RegistryError, Result};
use crate::oci::Digest;
use crate::store::{Store, StoreError};
use reqwest::blocking::{Body, RequestBuilder, Response};
use reqwest::header;
use reqwest::{Method, StatusCode, Url};
use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};

impl Client {
    pub(super) fn location(&self, ep: &Endpoint, resp: &Response) -> Option<Url> {
        let loc = resp.headers().get(header::LOCATION)?.to_str().ok()?;
        ep.base.join(loc).ok()
    }

    pub(super) fn start_upload(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        dest: &ImageRef,
    ) -> Result<Url> {
        let u = self.url(ep, &format!("v2/{}/blobs/uploads/", dest.repository))?;
        let resp = self.send_expect(
            ep,
            scopes,
            &Req::new(Method::POST, &u).with(&|rb| Ok(rb.header(header::CONTENT_LENGTH, "0"))),
            Expect::Status(&[StatusCode::ACCEPTED]),
            &format!("upload to {}", dest.name()),
        )?;
        self.location(ep, &resp)
            .ok_or_else(|| RegistryError::Status {
                method: "POST".into(),
                url: redact(u.as_str()),
                status: 202,
                body: "no valid Location header in the upload response".into(),
            })
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn upload(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        store: &Store,
        d: &Digest,
        size: u64,
        mut loc: Url,
        id: &str,
    ) -> Result<()> {
        let path = store.blob_path(d);
        let open = |offset: u64| -> Result<std::fs::File> {
            let mut f = store.open_blob(d)?;
            f.seek(SeekFrom::Start(offset))
                .map_err(|e| StoreError::Io {
                    path: path.clone(),
                    source: e,
                })?;
            Ok(f)
        };
        let reader = |offset: u64, len: u64| -> Result<Body> {
            let f = open(offset)?;
            let pr = ProgressReader {
                inner: f.take(len),
                cb: self.progress.clone(),
                id: id.to_string(),
                done: offset,
                total: size,
                last: offset,
            };
            Ok(Body::sized(pr, len))
        };
        let with_digest = |mut u: Url| {
            u.query_pairs_mut().append_pair("digest", &d.to_string());
            u
        };
        let created = Expect::Status(&[StatusCode::CREATED]);
        if size <= self.monolithic_max {
            let u = with_digest(loc);
            self.send_expect(
                ep,
                scopes,
                &Req::new(Method::PUT, &u).upload().with(&|rb| {
                    Ok(rb
                        .header(header::CONTENT_TYPE, "application/octet-stream")
                        .body(reader(0, size)?))
                }),
                created,
                &format!("upload of blob {d}"),
            )?;
            return Ok(());
        }
        let mut offset = 0;
        while offset < size {
            let n = self.chunk_size.min(size - offset);
            let u = loc.clone();
            let resp = self.send_expect(
                ep,
                scopes,
                &Req::new(Method::PATCH, &u).no_retry().upload().with(&|rb| {
                    Ok(rb
                        .header(header::CONTENT_TYPE, "application/octet-stream")
                        .header(
                            header::CONTENT_RANGE,
                            format!("{offset}-{}", offset + n - 1),
                        )
                        .body(reader(offset, n)?))
                }),
                Expect::Status(&[StatusCode::ACCEPTED]),
                &format!("chunk upload of blob {d}"),
            )?;
            loc = self.location(ep, &resp).unwrap_or(loc);
            offset += n;
        }
        let u = with_digest(loc);
        self.send_expect(
            ep,
            scopes,
            &Req::new(Method::PUT, &u)
                .no_retry()
                .with(&|rb| Ok(rb.header(header::CONTENT_LENGTH, "0"))),
            created,
            &format!("upload of blob {d}"),
        )?;
        Ok(())
    }
}

/// A blob upload session opened with [`Client::begin_upload`]: the blob is sent in chunks as
/// it is produced (its digest is known only at the end), then committed with
/// [`Upload::finish`]. The bytes go in one streamed PATCH ([`Upload::write_stream`]), which is
/// not retried: a failed stream fails the session. A session that is dropped unfinished is
/// abandoned (the registry collects it);
/// [`Upload::abort`] cancels it explicitly.
pub struct Upload<'a> {
    client: &'a Client,
    ep: Arc<Endpoint>,
    scopes: Vec<String>,
    dest: ImageRef,
    loc: Url,
    offset: u64,
}

impl Client {
    /// Opens a blob upload session in `dest`'s repository (a POST to `/blobs/uploads/`).
    pub fn begin_upload(&self, dest: &ImageRef) -> Result<Upload<'_>> {
        self.operation(format!("uploading a blob to {}", dest.name()), || {
            self.begin_upload_op(dest)
        })
    }

    fn begin_upload_op(&self, dest: &ImageRef) -> Result<Upload<'_>> {
        let ep = self.endpoint(&dest.registry)?;
        let scopes = vec![push_scope(&dest.repository)];
        let loc = self.start_upload(&ep, &scopes, dest)?;
        Ok(Upload {
            client: self,
            ep,
            scopes,
            dest: dest.clone(),
            loc,
            offset: 0,
        })
    }
}

impl Upload<'_> {
    /// Bytes accepted by the registry so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Appends everything `body` yields, until it ends, in ONE PATCH with a chunked body
    /// (Docker's "stream upload"): the registry ingests while the bytes are produced, with no
    /// request per chunk. Not retried (the body is gone once read); an error fails the
    /// session (abort it then).
    pub fn write_stream(&mut self, body: impl Read + Send + 'static) -> Result<()> {
        let c = self.client;
        let body = Mutex::new(Some(reqwest::blocking::Body::new(body)));
        let what = format!("streamed upload to {}", self.dest.name());
        let loc = self.loc.clone();
        let build = |rb: RequestBuilder| {
            let b = lock(&body)
                .take()
                .ok_or_else(|| RegistryError::Connection {
                    url: loc.to_string(),
                    reason: "a streamed upload cannot be sent twice".into(),
                })?;
            Ok(rb
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .body(b))
        };
        let req = Req::new(Method::PATCH, &self.loc)
            .upload()
            .no_retry()
            .with(&build);
        let resp = c.operation(self.what(), || {
            c.send_expect(
                &self.ep,
                &self.scopes,
                &req,
                Expect::Status(&[StatusCode::ACCEPTED]),
                &what,
            )
        })?;
        // `Range: 0-<last>` says how much the registry holds.
        let end = resp
            .headers()
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|r| r.rsplit('-').next())
            .and_then(|n| n.trim().parse::<u64>().ok());
        self.loc = c.location(&self.ep, &resp).unwrap_or(self.loc.clone());
        if let Some(last) = end {
            self.offset = last + 1;
        }
        Ok(())
    }

    /// Commits the blob under `digest` (a PUT with `?digest=`): the registry checks that the
    /// bytes sent hash to it and refuses the upload otherwise.
    pub fn finish(self, digest: &Digest) -> Result<()> {
        let c = self.client;
        let mut u = self.loc.clone();
        u.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        c.operation(self.what(), || {
            c.send_expect(
                &self.ep,
                &self.scopes,
                &Req::new(Method::PUT, &u).with(&|rb| Ok(rb.header(header::CONTENT_LENGTH, "0"))),
                Expect::Status(&[StatusCode::CREATED]),
                &format!(
                    "streamed upload of blob {digest} ({} bytes) to {}",
                    self.offset,
                    self.dest.name()
                ),
            )
        })?;
        Ok(())
    }

    /// Cancels the session (a DELETE), best effort: a registry that refuses it collects the
    /// session later anyway.
    pub fn abort(self) {
        let c = self.client;
        let _ = c.operation(self.what(), || {
            c.send(
                &self.ep,
                &self.scopes,
                &Req::new(Method::DELETE, &self.loc).no_retry(),
            )
        });
    }

    /// What a timeout of this session's requests names.
    fn what(&self) -> String {
        format!("uploading a blob to {}", self.dest.name())
    }
}

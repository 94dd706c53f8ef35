//! Atomic blob ingestion: temp file in `<root>/tmp`, hashed while written, checked against the
//! expected digest, fsynced, made read-only, renamed into `blobs/sha256/<hex>`.

use super::{Result, Store, StoreError, io_err};
use crate::oci::{Digest, Digester};
use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;

/// A blob being written; dropped without `commit`, it leaves nothing behind.
pub struct BlobWriter {
    store: Store,
    tmp: tempfile::NamedTempFile,
    digester: Digester<io::BufWriter<fs::File>>,
}

impl BlobWriter {
    pub(super) fn new(store: &Store) -> Result<BlobWriter> {
        let dir = store.root.join("tmp");
        let tmp = tempfile::Builder::new()
            .prefix(&format!("t{}-blob-", std::process::id()))
            .tempfile_in(&dir)
            .map_err(io_err(&dir))?;
        let file = tmp.reopen().map_err(io_err(tmp.path()))?;
        Ok(BlobWriter {
            store: store.clone(),
            tmp,
            digester: Digester::wrap(io::BufWriter::with_capacity(1 << 20, file)),
        })
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.digester.len()
    }

    /// Finishes the blob: verifies it against `expected` (when given), syncs it to disk and
    /// renames it into place. Returns its digest and size.
    pub fn commit(self, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        let BlobWriter {
            store,
            tmp,
            digester,
        } = self;
        let (digest, size, buf) = digester.finish();
        let file = buf.into_inner().map_err(|e| StoreError::Io {
            path: tmp.path().to_path_buf(),
            source: e.into_error(),
        })?;
        if let Some(exp) = expected
            && exp != &digest
        {
            return Err(StoreError::DigestMismatch {
                expected: exp.clone(),
                actual: digest,
                size,
            });
        }
        file.sync_all().map_err(io_err(tmp.path()))?;
        let dest: PathBuf = store.blob_path(&digest);
        if dest.is_file() {
            return Ok((digest, size));
        }
        let mut perm = file.metadata().map_err(io_err(tmp.path()))?.permissions();
        perm.set_readonly(true);
        file.set_permissions(perm).map_err(io_err(tmp.path()))?;
        tmp.persist(&dest).map_err(|e| StoreError::Io {
            path: dest.clone(),
            source: e.error,
        })?;
        if let Some(parent) = dest.parent()
            && let Ok(d) = fs::File::open(parent)
        {
            let _ = d.sync_all();
        }
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.digester.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.digester.flush()
    }
}

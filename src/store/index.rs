//! The image index file (`images.json`): read freely, rewritten under a lock by temp file +
//! fsync + rename so a crash leaves either the old or the new index, never a torn one.

use super::{Result, Store, StoreError, io_err};
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};

pub(super) fn read(store: &Store) -> Result<BTreeMap<String, String>> {
    let p = store.root.join("images.json");
    match fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).map_err(|source| StoreError::Json {
            path: p.display().to_string(),
            source,
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(StoreError::Io { path: p, source: e }),
    }
}

pub(super) fn update(store: &Store, f: impl FnOnce(&mut BTreeMap<String, String>)) -> Result<()> {
    let _lock = store.lock("images.json")?;
    let mut m = read(store)?;
    f(&mut m);
    let p = store.root.join("images.json");
    let tmpdir = store.root.join("tmp");
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!("t{}-index-", std::process::id()))
        .tempfile_in(&tmpdir)
        .map_err(io_err(&tmpdir))?;
    let body = serde_json::to_vec_pretty(&m).map_err(|source| StoreError::Json {
        path: p.display().to_string(),
        source,
    })?;
    tmp.write_all(&body).map_err(io_err(tmp.path()))?;
    tmp.as_file().sync_all().map_err(io_err(tmp.path()))?;
    tmp.persist(&p).map_err(|e| StoreError::Io {
        path: p.clone(),
        source: e.error,
    })?;
    Ok(())
}

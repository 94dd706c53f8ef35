//! Reads a stored layer blob into the file map `hoist diff` compares: every tar entry's type,
//! mode, owner, mtime, link target, xattrs, and a regular file's sha256. Read with the same
//! strict, bounded tar reader as extraction, since a layer may come from anywhere.

use super::{DiffError, FileMeta, Files};
use crate::layers::extract::ExtractLimits;
use crate::layers::tarfmt::{Kind, ReadLimits, Reader};
use crate::layers::{DecompressHint, decompress};
use crate::oci::Descriptor;
use crate::store::Store;
use sha2::{Digest as _, Sha256};

/// The files of layer `desc`, read from its blob in `store`.
pub fn read_layer(store: &Store, desc: &Descriptor) -> Result<Files, DiffError> {
    let digest = desc.digest.to_string();
    let blob = store
        .open_blob(&desc.digest)
        .map_err(|source| DiffError::Store {
            digest: digest.clone(),
            source,
        })?;
    let layer_err = |source| DiffError::Layer {
        digest: digest.clone(),
        source,
    };
    let tar = decompress(blob, DecompressHint::MediaType(&desc.media_type)).map_err(layer_err)?;
    read_tar(tar).map_err(layer_err)
}

/// The files of an uncompressed layer tar.
pub fn read_tar(tar: impl std::io::Read) -> crate::layers::Result<Files> {
    let l = ExtractLimits::default();
    let mut r = Reader::new(
        tar,
        ReadLimits {
            max_pax: l.max_pax_bytes,
            max_path: l.max_path_len,
            max_entries: l.max_entries,
            max_total: l.max_total_bytes,
        },
    );
    let mut files = Files::new();
    let mut buf = vec![0u8; 128 * 1024];
    while let Some(e) = r.next_entry()? {
        let mut sha256 = String::new();
        if e.kind == Kind::Regular {
            let mut h = Sha256::new();
            loop {
                let n = r.read_data(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            sha256 = format!("sha256:{}", hex::encode(h.finalize()));
        }
        let name = String::from_utf8_lossy(&e.name);
        let name = name.trim_start_matches("./").trim_matches('/');
        let mut xattrs: Vec<String> = e
            .xattrs
            .iter()
            .map(|(k, v)| format!("{}={}", String::from_utf8_lossy(k), hex::encode(v)))
            .collect();
        xattrs.sort();
        files.insert(
            format!("/{name}"),
            FileMeta {
                kind: kind_name(e.kind),
                mode: e.mode & 0o7777,
                uid: e.uid,
                gid: e.gid,
                mtime: e.mtime,
                sha256,
                link: String::from_utf8_lossy(&e.link).into_owned(),
                xattrs,
            },
        );
    }
    Ok(files)
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Regular => "file",
        Kind::Link => "hardlink",
        Kind::Symlink => "symlink",
        Kind::Char => "char",
        Kind::Block => "block",
        Kind::Dir => "dir",
        Kind::Fifo => "fifo",
    }
}

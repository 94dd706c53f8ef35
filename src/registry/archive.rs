//! `hoist save` / `hoist load`: images as tar archives. `save` writes an OCI image layout
//! (`oci-layout`, `index.json`, `blobs/sha256/…`) plus, for the docker format, the
//! `manifest.json` that `docker load` reads (as Docker 25+ does). `load` reads either that or
//! a classic docker-archive (`<id>/layer.tar`, `<hex>.json`, `manifest.json`); every blob is
//! verified on the way into the store.

use super::{ImageRef, RegistryError, Result};
use crate::oci::{Descriptor, Digest, Index, Manifest, Platform, media};
use crate::store::{Store, StoreError};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::path::Path;

/// Largest JSON document read from an archive.
const MAX_JSON: u64 = 8 << 20;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `docker.io/library/busybox:latest` → `busybox:latest`, as Docker writes RepoTags.
fn familiar(r: &ImageRef) -> String {
    let s = r.to_string();
    s.strip_prefix("docker.io/library/")
        .or_else(|| s.strip_prefix("docker.io/"))
        .unwrap_or(&s)
        .to_string()
}

fn append(
    tar: &mut tar::Builder<impl Write>,
    name: &str,
    size: u64,
    data: impl Read,
    out: &Path,
) -> Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, name, data).map_err(io_err(out))
}

/// Writes `images` (name, manifest digest) from `store` to `out`; `docker` adds
/// `manifest.json` for `docker load`.
pub fn save(store: &Store, images: &[(ImageRef, Digest)], out: &Path, docker: bool) -> Result<()> {
    let file = std::fs::File::create(out).map_err(io_err(out))?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    append(
        &mut tar,
        "oci-layout",
        layout.len() as u64,
        &layout[..],
        out,
    )?;
    let mut written: HashSet<Digest> = HashSet::new();
    let mut index = Vec::new();
    let mut docker_manifest = Vec::new();
    for (r, md) in images {
        let bytes = store.read_blob(md)?;
        let (m, _) = store.load_image(md)?;
        let mut blobs = vec![
            (md.clone(), bytes.len() as u64),
            (m.config.digest.clone(), m.config.size),
        ];
        blobs.extend(m.layers.iter().map(|l| (l.digest.clone(), l.size)));
        for (d, _) in &blobs {
            if !written.insert(d.clone()) {
                continue;
            }
            let f = store.open_blob(d)?;
            let len = f.metadata().map_err(io_err(&store.blob_path(d)))?.len();
            append(&mut tar, &format!("blobs/sha256/{}", d.hex()), len, f, out)?;
        }
        let mut desc = Descriptor::new(
            m.media_type.as_deref().unwrap_or(media::OCI_MANIFEST),
            md.clone(),
            bytes.len() as u64,
        );
        let mut ann = BTreeMap::new();
        ann.insert("io.containerd.image.name".to_string(), r.to_string());
        if let Some(t) = &r.tag {
            ann.insert("org.opencontainers.image.ref.name".to_string(), t.clone());
        }
        desc.annotations = Some(ann);
        index.push(desc);
        docker_manifest.push(serde_json::json!({
            "Config": format!("blobs/sha256/{}", m.config.digest.hex()),
            "RepoTags": if r.tag.is_some() { vec![familiar(r)] } else { vec![] },
            "Layers": m.layers.iter().map(|l| format!("blobs/sha256/{}", l.digest.hex())).collect::<Vec<_>>(),
        }));
    }
    let idx = Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.to_string()),
        manifests: index,
        annotations: None,
    };
    let json_err = |e: serde_json::Error| RegistryError::Config {
        path: out.to_path_buf(),
        message: e.to_string(),
    };
    let ib = serde_json::to_vec(&idx).map_err(json_err)?;
    append(&mut tar, "index.json", ib.len() as u64, &ib[..], out)?;
    if docker {
        let mb = serde_json::to_vec(&docker_manifest).map_err(json_err)?;
        append(&mut tar, "manifest.json", mb.len() as u64, &mb[..], out)?;
    }
    let mut w = tar.into_inner().map_err(io_err(out))?;
    w.flush().map_err(io_err(out))?;
    Ok(())
}

/// Reads an archive written by `save`, `docker save` (old or new) or an OCI layout tar into
/// `store`; returns the names it set.
pub fn load(store: &Store, input: &Path) -> Result<Vec<(String, Digest)>> {
    let file = std::fs::File::open(input).map_err(io_err(input))?;
    let mut ar = tar::Archive::new(std::io::BufReader::new(file));
    let mut files: HashMap<String, (Digest, u64)> = HashMap::new();
    let mut docs: HashMap<String, Vec<u8>> = HashMap::new();
    let bad = |message: String| RegistryError::Config {
        path: input.to_path_buf(),
        message,
    };
    for entry in ar.entries().map_err(io_err(input))? {
        let mut e = entry.map_err(io_err(input))?;
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = e
            .path()
            .map_err(io_err(input))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        if matches!(name.as_str(), "index.json" | "manifest.json") {
            let mut b = Vec::new();
            (&mut e)
                .take(MAX_JSON + 1)
                .read_to_end(&mut b)
                .map_err(io_err(input))?;
            if b.len() as u64 > MAX_JSON {
                return Err(bad(format!("{name} is larger than {MAX_JSON} bytes")));
            }
            docs.insert(name, b);
            continue;
        }
        let expected = name
            .strip_prefix("blobs/sha256/")
            .and_then(|h| Digest::from_hex(h).ok());
        let mut w = store.blob_writer()?;
        std::io::copy(&mut e, &mut w).map_err(io_err(input))?;
        let (d, size) = match w.commit(expected.as_ref()) {
            Ok(x) => x,
            Err(StoreError::DigestMismatch {
                expected, actual, ..
            }) => {
                return Err(RegistryError::DigestMismatch {
                    what: format!("{name} in the archive"),
                    url: input.display().to_string(),
                    expected,
                    actual,
                });
            }
            Err(e) => return Err(e.into()),
        };
        files.insert(name, (d, size));
    }
    let mut named = Vec::new();
    // An OCI layout (also inside Docker 25+ archives) keeps the original manifests: prefer it.
    if let Some(b) = docs.get("index.json") {
        let idx: Index = serde_json::from_slice(b).map_err(|e| bad(format!("index.json: {e}")))?;
        return load_index(store, idx, input);
    }
    if let Some(b) = docs.get("manifest.json") {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Entry {
            config: String,
            #[serde(default)]
            repo_tags: Option<Vec<String>>,
            layers: Vec<String>,
        }
        let entries: Vec<Entry> =
            serde_json::from_slice(b).map_err(|e| bad(format!("manifest.json: {e}")))?;
        for en in entries {
            let get = |p: &str| {
                files
                    .get(p.trim_start_matches("./"))
                    .cloned()
                    .ok_or_else(|| {
                        bad(format!(
                            "manifest.json names {p:?}, which is not in the archive"
                        ))
                    })
            };
            let (cd, cs) = get(&en.config)?;
            let mut layers = Vec::new();
            for l in &en.layers {
                let (ld, ls) = get(l)?;
                let mt = sniff_layer(store, &ld)?;
                layers.push(Descriptor::new(mt, ld, ls));
            }
            let m = Manifest {
                schema_version: 2,
                media_type: Some(media::OCI_MANIFEST.to_string()),
                config: Descriptor::new(media::OCI_CONFIG, cd, cs),
                layers,
                annotations: None,
            };
            let mb = serde_json::to_vec(&m).map_err(|e| bad(e.to_string()))?;
            let md = store.put_blob(&mb)?;
            for t in en.repo_tags.unwrap_or_default() {
                let r = ImageRef::parse(&t)?;
                store.set_image(&r.to_string(), &md)?;
                named.push((r.to_string(), md.clone()));
            }
        }
        return Ok(named);
    }
    Err(bad(
        "neither index.json nor manifest.json: not an image archive".into(),
    ))
}

fn load_index(store: &Store, idx: Index, input: &Path) -> Result<Vec<(String, Digest)>> {
    let bad = |message: String| RegistryError::Config {
        path: input.to_path_buf(),
        message,
    };
    let mut named = Vec::new();
    for d in idx.manifests {
        let name = d
            .annotations
            .as_ref()
            .and_then(|a| a.get("io.containerd.image.name").cloned());
        let mut md = d.digest.clone();
        if media::is_index(&d.media_type) {
            let inner: Index = serde_json::from_slice(&store.read_blob(&md)?)
                .map_err(|e| bad(format!("index {md}: {e}")))?;
            match inner.select(&Platform::host()) {
                Some(x) => md = x.digest.clone(),
                None => continue,
            }
        }
        store.load_image(&md)?;
        if let Some(n) = name {
            let r = ImageRef::parse(&n)?;
            store.set_image(&r.to_string(), &md)?;
            named.push((r.to_string(), md));
        }
    }
    Ok(named)
}

/// Media type of a layer blob by its magic bytes.
fn sniff_layer(store: &Store, d: &Digest) -> Result<&'static str> {
    let mut f = store.open_blob(d)?;
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic).map_err(io_err(&store.blob_path(d)))?;
    Ok(match &magic[..n] {
        [0x1f, 0x8b, ..] => media::OCI_LAYER_GZIP,
        [0x28, 0xb5, 0x2f, 0xfd] => media::OCI_LAYER_ZSTD,
        _ => media::OCI_LAYER,
    })
}

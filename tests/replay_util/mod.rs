//! A normalized snapshot of an image in the lab registry, in the shape the differential engine
//! (`scripts/differential/`) stores BuildKit's results in: the runtime config fields, `os`,
//! `architecture`, and the final filesystem (every layer applied with OCI whiteouts) as
//! `path → {type, mode, uid, gid, target | size + sha256[..16] | dev}`, timestamps left out.
//! Against a base, only what differs from the base is kept and what was removed is
//! `{"type": "deleted"}`. Written for the replay test, independent of the kit's scripts.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;

/// The config fields compared (the ones that matter when the image runs).
const CONFIG_KEYS: &[&str] = &[
    "User",
    "ExposedPorts",
    "Env",
    "Entrypoint",
    "Cmd",
    "Volumes",
    "WorkingDir",
    "Labels",
    "StopSignal",
    "Healthcheck",
    "Shell",
    "OnBuild",
];

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// One image's snapshot: `os`, `architecture`, `config` and `fs`.
pub struct Snapshot {
    /// `{"os", "architecture", "config"}`.
    pub meta: Map<String, Value>,
    /// Path → entry.
    pub fs: BTreeMap<String, Value>,
}

fn get(url: &str) -> Vec<u8> {
    let r = reqwest::blocking::Client::new()
        .get(url)
        .header("Accept", ACCEPT)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    r.bytes().expect("body").to_vec()
}

/// Reads `host/repo:tag` (linux/amd64 of an index) from a plain-HTTP registry.
pub fn load(image: &str) -> Snapshot {
    let (host, rest) = image.split_once('/').expect("HOST/REPO:TAG");
    let (repo, tag) = rest.rsplit_once(':').expect("REPO:TAG");
    let base = format!("http://{host}/v2/{repo}");
    let mut man: Value =
        serde_json::from_slice(&get(&format!("{base}/manifests/{tag}"))).expect("manifest");
    if let Some(list) = man.get("manifests").and_then(Value::as_array) {
        let pick = list
            .iter()
            .find(|m| m["platform"]["architecture"] == "amd64" && m["platform"]["os"] == "linux")
            .expect("linux/amd64 in the index");
        let d = pick["digest"].as_str().expect("digest");
        man = serde_json::from_slice(&get(&format!("{base}/manifests/{d}"))).expect("manifest");
    }
    let blob = |d: &Value| get(&format!("{base}/blobs/{}", d.as_str().expect("digest")));
    let cfg: Value = serde_json::from_slice(&blob(&man["config"]["digest"])).expect("config");
    let mut config = Map::new();
    for k in CONFIG_KEYS {
        match cfg["config"].get(*k) {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) if a.is_empty() => {}
            Some(Value::Object(o)) if o.is_empty() => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(v) => {
                config.insert((*k).to_string(), v.clone());
            }
        }
    }
    let mut meta = Map::new();
    meta.insert("os".into(), cfg["os"].clone());
    meta.insert("architecture".into(), cfg["architecture"].clone());
    meta.insert("config".into(), Value::Object(config));
    let mut fs = BTreeMap::new();
    for layer in man["layers"].as_array().expect("layers") {
        apply(&mut fs, &decompress(blob(&layer["digest"])));
    }
    fs.remove("/");
    Snapshot { meta, fs }
}

fn decompress(data: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::new();
    if data.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(&data[..])
            .read_to_end(&mut out)
            .expect("gunzip layer");
        out
    } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::decode_all(&data[..]).expect("zstd layer")
    } else {
        data
    }
}

fn remove_tree(fs: &mut BTreeMap<String, Value>, path: &str) {
    let under = format!("{}/", path.trim_end_matches('/'));
    fs.retain(|p, _| p != path && !p.starts_with(&under));
}

/// Applies one layer tar to `fs` (the same normalization as the kit's snapshot.py).
fn apply(fs: &mut BTreeMap<String, Value>, tar_bytes: &[u8]) {
    let mut ar = tar::Archive::new(tar_bytes);
    for e in ar.entries().expect("layer tar") {
        let mut e = e.expect("tar entry");
        let raw = e.path().expect("path").to_string_lossy().into_owned();
        let trimmed = raw
            .trim_start_matches("./")
            .trim_start_matches('/')
            .trim_end_matches('/');
        let name = if trimmed.is_empty() || trimmed == "." {
            "/".to_string()
        } else {
            format!("/{trimmed}")
        };
        let (parent, base) = name.rsplit_once('/').unwrap_or(("", &name));
        let parent = if parent.is_empty() { "/" } else { parent };
        if base == ".wh..wh..opq" {
            let under = format!("{}/", parent.trim_end_matches('/'));
            fs.retain(|p, _| !p.starts_with(&under));
            continue;
        }
        if let Some(gone) = base.strip_prefix(".wh.") {
            remove_tree(fs, &format!("{}/{gone}", parent.trim_end_matches('/')));
            continue;
        }
        let h = e.header().clone();
        let kind = h.entry_type();
        let is_dir = kind.is_dir();
        if fs
            .get(&name)
            .is_some_and(|old| !(is_dir && old["type"] == "d"))
        {
            remove_tree(fs, &name);
        }
        let mode = h.mode().expect("mode") & 0o7777;
        let mut v = json!({
            "mode": format!("0o{mode:o}"),
            "uid": h.uid().expect("uid"),
            "gid": h.gid().expect("gid"),
        });
        let o = v.as_object_mut().expect("object");
        if is_dir {
            o.insert("type".into(), "d".into());
        } else if kind.is_symlink() {
            let t = h.link_name().expect("link").expect("target");
            o.insert("type".into(), "l".into());
            o.insert("target".into(), t.to_string_lossy().into_owned().into());
        } else if kind.is_hard_link() {
            let t = h.link_name().expect("link").expect("target");
            let src = format!(
                "/{}",
                t.to_string_lossy()
                    .trim_start_matches("./")
                    .trim_start_matches('/')
            );
            let s = fs.get(&src).cloned().unwrap_or(Value::Null);
            o.insert("type".into(), "f".into());
            o.insert("size".into(), s.get("size").cloned().unwrap_or(Value::Null));
            o.insert(
                "sha256".into(),
                s.get("sha256").cloned().unwrap_or(Value::Null),
            );
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            let mut content = Vec::new();
            e.read_to_end(&mut content).expect("file content");
            let sum = hex::encode(Sha256::digest(&content));
            o.insert("type".into(), "f".into());
            o.insert("size".into(), content.len().into());
            o.insert("sha256".into(), sum[..16].to_string().into());
        } else if kind.is_fifo() {
            o.insert("type".into(), "p".into());
        } else {
            let t = if kind.is_character_special() {
                "c"
            } else {
                "b"
            };
            o.insert("type".into(), t.into());
            let dev = json!([
                h.device_major().ok().flatten(),
                h.device_minor().ok().flatten()
            ]);
            o.insert("dev".into(), dev);
        }
        fs.insert(name, v);
    }
}

impl Snapshot {
    /// Keeps only what differs from `base`; what `base` had and this lacks becomes `deleted`.
    pub fn against(mut self, base: &Snapshot) -> Snapshot {
        for (p, e) in &base.fs {
            match self.fs.get(p) {
                None => {
                    self.fs.insert(p.clone(), json!({"type": "deleted"}));
                }
                Some(mine) if mine == e => {
                    self.fs.remove(p);
                }
                Some(_) => {}
            }
        }
        self
    }

    /// How this snapshot differs from `want` (BuildKit's stored one), one line per difference.
    pub fn diff(&self, want: &Value) -> Vec<String> {
        let mut out = Vec::new();
        let empty = Map::new();
        let wc = want["config"].as_object().unwrap_or(&empty);
        let gc = self.meta["config"].as_object().unwrap_or(&empty);
        let keys: std::collections::BTreeSet<&String> = wc.keys().chain(gc.keys()).collect();
        for k in keys {
            if wc.get(k) != gc.get(k) {
                out.push(format!(
                    "config.{k}: want {:?} got {:?}",
                    wc.get(k),
                    gc.get(k)
                ));
            }
        }
        for k in ["os", "architecture"] {
            if want[k] != self.meta[k] {
                out.push(format!("{k}: want {} got {}", want[k], self.meta[k]));
            }
        }
        let wf = want["fs"].as_object().unwrap_or(&empty);
        for (p, w) in wf {
            match self.fs.get(p) {
                None => out.push(format!("missing {p}")),
                Some(g) if g != w => out.push(format!("changed {p}: want {w} got {g}")),
                Some(_) => {}
            }
        }
        for p in self.fs.keys().filter(|p| !wf.contains_key(*p)) {
            out.push(format!("extra   {p}"));
        }
        out
    }
}

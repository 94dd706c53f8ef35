//! What a layer scan found, kept per chain of layers, so an SBOM of an image whose lower
//! layers were scanned before reads only its new layers: a warm rebuild with `--sbom` reads
//! no layer, a rebuild after a source change reads the one new layer. A state is the
//! findings (small: one entry per interesting file) after the chain, keyed by the chain's
//! layer digests and the scanner's version; it is a pure cache, so anything unreadable is a
//! miss, writes are atomic, and the directory keeps only the newest [`KEEP`] states.

use super::Finding;
use crate::oci::{Descriptor, Digest};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Bumped whenever a parser's findings change, so older states are not reused.
const SCANNER_VERSION: &str = "hoist-sbom-1";
/// States kept; older ones go when a new one is written.
const KEEP: usize = 256;
/// A state larger than this is not read back.
const MAX_STATE: u64 = 16 << 20;

/// The collector's state after a chain of layers.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct State {
    /// Path → (layer index, finding).
    pub findings: Vec<(String, usize, Finding)>,
    pub warnings: Vec<String>,
}

/// The states under `<store>/cache/sbom/`.
pub(super) struct ScanCache {
    dir: PathBuf,
}

impl ScanCache {
    pub fn new(store_root: &Path) -> ScanCache {
        ScanCache {
            dir: store_root.join("cache").join("sbom"),
        }
    }

    fn path(&self, chain: &[Descriptor]) -> PathBuf {
        let mut key = String::from(SCANNER_VERSION);
        for d in chain {
            key.push('\n');
            key.push_str(&d.digest.to_string());
        }
        self.dir
            .join(format!("{}.json", Digest::of(key.as_bytes()).hex()))
    }

    /// The longest prefix of `layers` with a state: (its length, the state).
    pub fn longest(&self, layers: &[Descriptor]) -> Option<(usize, State)> {
        (1..=layers.len()).rev().find_map(|k| {
            let p = self.path(&layers[..k]);
            let f = std::fs::File::open(&p).ok()?;
            if f.metadata().ok()?.len() > MAX_STATE {
                return None;
            }
            let s: State = serde_json::from_reader(std::io::BufReader::new(f)).ok()?;
            // A state names layers by index: it must not claim more than the chain has.
            if s.findings.iter().any(|(_, l, _)| *l >= k) {
                return None;
            }
            // Used: the newest survive the trim.
            let _ = std::fs::File::options()
                .append(true)
                .open(&p)
                .and_then(|f| f.set_modified(std::time::SystemTime::now()));
            Some((k, s))
        })
    }

    /// Records the state after `chain`; a failure only costs a later rescan.
    pub fn put(&self, chain: &[Descriptor], state: &State) {
        let _ = self.write(chain, state);
    }

    fn write(&self, chain: &[Descriptor], state: &State) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        serde_json::to_writer(&mut tmp, state)?;
        tmp.persist(self.path(chain)).map_err(|e| e.error)?;
        self.trim()
    }

    /// Keeps the newest [`KEEP`] states.
    fn trim(&self) -> std::io::Result<()> {
        let mut all: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        if all.len() <= KEEP {
            return Ok(());
        }
        all.sort();
        for (_, p) in &all[..all.len() - KEEP] {
            let _ = std::fs::remove_file(p);
        }
        Ok(())
    }
}

//! Mutation fuzzing on stable Rust (issue 7): proptest drives byte-level mutations of seed
//! inputs through every parser of untrusted data (layer tars, gzip streams, OCI JSON documents,
//! image references, digests, `.dockerignore`, `--mount` options) and checks properties, not
//! just "no panic":
//!
//! - a mutated layer, extracted as root, never changes anything outside its dest dir (a canary
//!   directory beside it, which seed symlinks and hardlinks point at, stays byte-identical);
//! - a digest that parses is exactly `sha256:` + 64 lowercase hex, so it is safe in a path;
//! - an image reference that parses prints to a string that parses back to the same reference.
//!
//! `PROPTEST_CASES` scales the run (default 256 per property, a few seconds); the long runs
//! reported in the README use e.g. `PROPTEST_CASES=200000 cargo test --release --test fuzz_props`.

use hoist::layers::{DecompressHint, ExtractLimits, ExtractMode};
use hoist::oci::{Digest, ImageConfig, Index, Manifest};
use hoist::registry::ImageRef;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// One mutation of a byte string.
#[derive(Debug, Clone)]
enum Mutation {
    /// Overwrite the byte at (offset mod len).
    Set(usize, u8),
    /// Cut the input at (offset mod len).
    Truncate(usize),
    /// Insert bytes at (offset mod len).
    Insert(usize, Vec<u8>),
    /// Copy a range of the input over another place (keeps structure-like bytes around).
    Splice(usize, usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        6 => (any::<usize>(), any::<u8>()).prop_map(|(o, b)| Mutation::Set(o, b)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        2 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(o, b)| Mutation::Insert(o, b)),
        2 => (any::<usize>(), any::<usize>(), 1usize..600)
            .prop_map(|(a, b, n)| Mutation::Splice(a, b, n)),
    ]
}

fn apply(mut data: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        if data.is_empty() {
            break;
        }
        let len = data.len();
        match m {
            Mutation::Set(o, b) => data[o % len] = *b,
            Mutation::Truncate(o) => data.truncate(o % len),
            Mutation::Insert(o, b) => {
                let at = o % len;
                data.splice(at..at, b.iter().copied());
            }
            Mutation::Splice(a, b, n) => {
                let (a, b) = (a % len, b % len);
                let n = (*n).min(len - a).min(len - b);
                let chunk = data[a..a + n].to_vec();
                data[b..b + n].copy_from_slice(&chunk);
            }
        }
    }
    data
}

/// Mutations that mostly land in tar headers (the first 512 bytes of each entry), where the
/// interesting parsing happens.
fn header_biased(len_hint: usize) -> impl Strategy<Value = Vec<Mutation>> {
    let entries = (len_hint / 512).max(1);
    let set =
        (0..entries, 0usize..512, any::<u8>()).prop_map(|(e, o, b)| Mutation::Set(e * 512 + o, b));
    prop::collection::vec(prop_oneof![3 => set, 2 => mutation()], 1..8)
}

/// A seed layer whose entries aim at `canary` in every way a hostile layer can: `..` names,
/// absolute and relative symlinks to it, a write through such a symlink, a hardlink to it,
/// whiteouts of `..`, a PAX long name, plus ordinary entries.
fn seed_tar(canary: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, link: Option<&str>, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_size(data.len() as u64);
        if let Some(l) = link {
            // Raw bytes: the builder's checked setters would refuse hostile targets.
            let raw = h.as_old_mut();
            raw.linkname.fill(0);
            let n = l.len().min(100);
            raw.linkname[..n].copy_from_slice(&l.as_bytes()[..n]);
        }
        {
            let raw = h.as_old_mut();
            raw.name.fill(0);
            let n = path.len().min(100);
            raw.name[..n].copy_from_slice(&path.as_bytes()[..n]);
        }
        h.set_cksum();
        b.append(&h, data).unwrap();
    };
    let abs = canary.to_string_lossy().into_owned();
    add("dir/", tar::EntryType::Directory, None, b"");
    add("dir/file", tar::EntryType::Regular, None, b"hello");
    add("../canary/escaped", tar::EntryType::Regular, None, b"x");
    add("up", tar::EntryType::Symlink, Some("../canary"), b"");
    add("abs", tar::EntryType::Symlink, Some(&abs), b"");
    add("up/through-rel", tar::EntryType::Regular, None, b"x");
    add("abs/through-abs", tar::EntryType::Regular, None, b"x");
    add(
        "abs/precious",
        tar::EntryType::Regular,
        None,
        b"overwritten",
    );
    add("dir/.wh...", tar::EntryType::Regular, None, b"");
    add("dir/.wh.file", tar::EntryType::Regular, None, b"");
    add("abs/.wh.precious", tar::EntryType::Regular, None, b"");
    let mut h = tar::Header::new_ustar();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    let long = format!("{}/long", "d".repeat(150));
    b.append_data(&mut h, long, &b"abc"[..]).unwrap();
    // Last: extractors refuse it, which ends the archive.
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Link);
    h.set_size(0);
    h.as_old_mut().name[..4].copy_from_slice(b"hard");
    h.as_old_mut().linkname[..18].copy_from_slice(b"../canary/precious");
    h.set_cksum();
    b.append(&h, &b""[..]).unwrap();
    b.into_inner().unwrap()
}

/// Everything observable about a directory tree (names, types, modes, owners, sizes, content).
fn tree(root: &Path) -> BTreeMap<String, (u32, u32, u32, u64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1) {
        let e = e.unwrap();
        let m = e.path().symlink_metadata().unwrap();
        let content = if m.is_file() {
            std::fs::read(e.path()).unwrap()
        } else {
            Vec::new()
        };
        out.insert(
            e.path().to_string_lossy().into_owned(),
            (m.mode(), m.uid(), m.gid(), m.size(), content),
        );
    }
    out
}

/// Extracts `data` (gzip-compressed when `gz`) into `<tmp>/dest` beside `<tmp>/canary` and
/// asserts that nothing but `dest` changed.
fn extract_stays_in_root(data: impl FnOnce(&Path) -> Vec<u8>, gz: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let canary = tmp.path().join("canary");
    std::fs::create_dir(&canary).unwrap();
    std::fs::write(canary.join("precious"), b"keep me").unwrap();
    let dest = tmp.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    let before = tree(&canary);
    let siblings = |p: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };
    let sib_before = siblings(tmp.path());
    let bytes = data(&canary);
    let limits = ExtractLimits::default();
    // Errors are fine; escaping is not.
    let _ = if gz {
        hoist::layers::unpack_with_limits(
            &bytes[..],
            DecompressHint::Sniff,
            &dest,
            ExtractMode::Layer,
            &limits,
        )
    } else {
        hoist::layers::extract_with_limits(&bytes[..], &dest, ExtractMode::Layer, &limits)
    };
    assert_eq!(tree(&canary), before, "the canary beside dest changed");
    assert_eq!(siblings(tmp.path()), sib_before, "dest's siblings changed");
    assert!(
        std::fs::symlink_metadata(&dest).unwrap().is_dir(),
        "dest changed type"
    );
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae","size":3,"urls":["http://x"]}],"annotations":{"a":"b"}}"#;
const INDEX: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae","size":7,"platform":{"architecture":"amd64","os":"linux","variant":"v2"}}]}"#;
const CONFIG: &str = r#"{"architecture":"amd64","os":"linux","config":{"User":"1:2","Env":["PATH=/bin"],"Entrypoint":["/e"],"Cmd":["c"],"WorkingDir":"/w","Labels":{"k":"v"},"ExposedPorts":{"80/tcp":{}},"Volumes":{"/v":{}},"Healthcheck":{"Test":["CMD","true"],"Interval":1000},"OnBuild":["RUN x"],"Shell":["/bin/sh","-c"],"StopSignal":"SIGTERM"},"rootfs":{"type":"layers","diff_ids":["sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"]},"history":[{"created":"2024-01-01T00:00:00Z","created_by":"x","empty_layer":true}]}"#;

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_layers_never_escape_their_dest(muts in header_biased(16 * 512)) {
        // Ownership and device entries need root; the escape checks matter either way.
        let _ = is_root();
        extract_stays_in_root(|c| apply(seed_tar(c), &muts), false);
    }

    #[test]
    fn mutated_gzip_layers_never_escape_their_dest(
        muts in prop::collection::vec(mutation(), 1..4),
        inner in header_biased(16 * 512),
    ) {
        extract_stays_in_root(|c| apply(gzip(&apply(seed_tar(c), &inner)), &muts), true);
    }

    #[test]
    fn oci_documents_never_panic(
        which in 0usize..3,
        muts in prop::collection::vec(mutation(), 1..6),
    ) {
        let seed = [MANIFEST, INDEX, CONFIG][which].as_bytes().to_vec();
        let bytes = apply(seed, &muts);
        match which {
            0 => {
                if let Ok(m) = serde_json::from_slice::<Manifest>(&bytes) {
                    // Every digest that got through is path-safe.
                    for d in std::iter::once(&m.config).chain(m.layers.iter()) {
                        prop_assert!(digest_is_path_safe(&d.digest));
                    }
                }
            }
            1 => {
                if let Ok(i) = serde_json::from_slice::<Index>(&bytes) {
                    for d in &i.manifests {
                        prop_assert!(digest_is_path_safe(&d.digest));
                    }
                }
            }
            _ => {
                let _ = serde_json::from_slice::<ImageConfig>(&bytes);
            }
        }
    }

    #[test]
    fn digests_that_parse_are_path_safe(s in "(sha256|sha512|SHA256|)[:]?[0-9a-fA-F./\\\\:%-]{0,70}") {
        if let Ok(d) = s.parse::<Digest>() {
            prop_assert!(digest_is_path_safe(&d));
            prop_assert_eq!(d.to_string(), s);
        }
    }

    #[test]
    fn image_references_round_trip(
        s in "[a-zA-Z0-9._/:@-]{0,40}(@sha256:[0-9a-f]{64})?"
    ) {
        if let Ok(r) = ImageRef::parse(&s) {
            let printed = r.to_string();
            prop_assert!(!printed.contains(char::is_whitespace));
            let again = ImageRef::parse(&printed);
            prop_assert_eq!(again.as_ref(), Ok(&r), "{} printed as {}", s, printed);
        }
    }

    #[test]
    fn dockerignore_and_mount_options_never_panic(
        text in "\\PC{0,200}",
        path in "[a-z./*?!\\[\\]-]{0,40}",
        mount in "[a-z=,./$0-9{}:-]{0,80}",
    ) {
        if let Ok(m) = hoist::parser::dockerignore::Matcher::parse(&text) {
            let _ = m.is_excluded(&path);
            let _ = m.can_prune_dir(&path);
        }
        let _ = hoist::parser::mounts::parse_mount(&mount);
    }
}

fn digest_is_path_safe(d: &Digest) -> bool {
    let s = d.to_string();
    s.len() == 71
        && s.starts_with("sha256:")
        && s[7..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[test]
fn seed_layer_is_hostile_and_handled() {
    // The unmutated seed itself: extraction may refuse it, but must not escape.
    extract_stays_in_root(seed_tar, false);
    extract_stays_in_root(|c| gzip(&seed_tar(c)), true);
}

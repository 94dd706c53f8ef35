//! Layer round trips on the real kernel (run as root): real overlayfs upper dirs are diffed
//! into layers, unpacked again, and the trees (and the overlay views they give) compared.

#[path = "fixtures/layers/common.rs"]
mod common;

use common::{Node, Overlay, SnapOpts, set_mtime, snapshot};
use hoist::layers::{self, Compression, ExtractMode, LayerOptions};
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

const CAP_NET_BIND_SERVICE_V2: [u8; 20] = [
    0x01, 0, 0, 0x02, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
}

fn mknod(p: &Path, ft: rustix::fs::FileType, major: u32, minor: u32) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p,
        ft,
        rustix::fs::Mode::from_raw_mode(0o644),
        rustix::fs::makedev(major, minor),
    )
    .unwrap();
}

/// Builds a lower dir, mounts an overlay on it and makes every kind of change through the
/// merged view. Returns the snapshot of the merged view before unmounting.
fn make_upper(t: &Path) -> BTreeMap<String, Node> {
    let (lower, upper, work, merged) = (
        t.join("lower"),
        t.join("upper"),
        t.join("work"),
        t.join("merged"),
    );
    for d in [&lower, &upper, &work, &merged] {
        fs::create_dir_all(d).unwrap();
    }
    fs::write(lower.join("gone"), "old").unwrap();
    fs::create_dir_all(lower.join("opq/sub")).unwrap();
    fs::write(lower.join("opq/sub/x"), "x").unwrap();
    fs::write(lower.join("opq/y"), "y").unwrap();
    fs::create_dir_all(lower.join("keep")).unwrap();
    fs::write(lower.join("keep/old"), "kept").unwrap();
    fs::create_dir_all(lower.join("gonedir/deep")).unwrap();

    let ov = Overlay::mount(&[&lower], Some((&upper, &work)), &merged);
    let m = &ov.merged;
    fs::remove_file(m.join("gone")).unwrap();
    fs::remove_dir_all(m.join("gonedir")).unwrap();
    fs::remove_dir_all(m.join("opq")).unwrap();
    fs::create_dir(m.join("opq")).unwrap();
    fs::write(m.join("opq/new"), "new").unwrap();
    fs::write(m.join("keep/new"), "data").unwrap();
    let suid = m.join("keep/suid");
    fs::write(&suid, "#!/bin/sh\n").unwrap();
    chown(&suid, 1000, 1001);
    fs::set_permissions(&suid, fs::Permissions::from_mode(0o4755)).unwrap();
    let cap = m.join("ping");
    fs::write(&cap, vec![7u8; 3 << 20]).unwrap();
    rustix::fs::setxattr(
        &cap,
        "security.capability",
        &CAP_NET_BIND_SERVICE_V2,
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    rustix::fs::setxattr(&cap, "user.note", b"hello", rustix::fs::XattrFlags::empty()).unwrap();
    fs::write(m.join("h1"), "linked").unwrap();
    fs::hard_link(m.join("h1"), m.join("h2")).unwrap();
    fs::hard_link(m.join("h1"), m.join("keep/h3")).unwrap();
    symlink("/etc/passwd", m.join("abs")).unwrap();
    symlink("../keep", m.join("opq/rel")).unwrap();
    chown(&m.join("abs"), 5, 6);
    mknod(&m.join("fifo"), rustix::fs::FileType::Fifo, 0, 0);
    mknod(&m.join("null"), rustix::fs::FileType::CharacterDevice, 1, 3);
    mknod(&m.join("loop9"), rustix::fs::FileType::BlockDevice, 7, 9);
    fs::create_dir(m.join("tmp")).unwrap();
    fs::set_permissions(m.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    let long = m.join("l".repeat(120)).join("m".repeat(140));
    fs::create_dir_all(&long).unwrap();
    fs::write(long.join("n".repeat(200)), "long").unwrap();
    symlink("t".repeat(300), m.join("longlink")).unwrap();
    chown(&m.join("tmp"), 0, 50);
    for (i, p) in ["h1", "keep/new", "abs", "fifo", "opq/new", "tmp"]
        .iter()
        .enumerate()
    {
        set_mtime(&m.join(p), 1_600_000_000 + i as i64 * 1000);
    }
    let view = snapshot(
        m,
        &SnapOpts {
            dir_mtimes: false,
            inode_groups: false,
        },
    );
    drop(ov);
    view
}

#[test]
fn overlay_upper_round_trips_through_every_compression() {
    let t = tempfile::tempdir().unwrap();
    let merged_before = make_upper(t.path());
    let upper = t.path().join("upper");
    let full = SnapOpts {
        dir_mtimes: true,
        inode_groups: true,
    };
    let want = snapshot(&upper, &full);
    // The overlay really produced whiteouts and an opaque dir.
    assert_eq!(want["gone"].kind, 'c');
    assert_eq!(want["gone"].rdev, 0);
    assert!(
        want["opq"]
            .xattrs
            .iter()
            .any(|(k, v)| k == "trusted.overlay.opaque" && v == b"y")
    );

    for c in [
        Compression::Gzip { level: 1 },
        Compression::Zstd { level: 3 },
        Compression::Uncompressed,
    ] {
        let mut blob = Vec::new();
        let lb = layers::write_layer(
            &upper,
            &LayerOptions {
                compression: c,
                source_date_epoch: None,
            },
            &mut blob,
        )
        .unwrap();
        assert_eq!(lb.size, blob.len() as u64);
        assert_eq!(lb.digest, hoist::oci::Digest::of(&blob));
        assert_eq!(lb.media_type, c.media_type());

        let dest = t.path().join(format!("dest-{}", lb.digest.short()));
        fs::create_dir(&dest).unwrap();
        let stats = layers::unpack(&blob[..], &lb.media_type, &dest).unwrap();
        assert_eq!(stats.diff_id, lb.diff_id, "{c:?}");
        assert_eq!(stats.hardlinks, 2);
        assert_eq!(stats.whiteouts, 3, "gone, gonedir and the opaque marker");
        let got = snapshot(&dest, &full);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>()
        );
        for (k, v) in &want {
            assert_eq!(&got[k], v, "{c:?}: {k}");
        }

        // The extracted layer over the same lower gives the same merged view.
        let merged2 = t.path().join(format!("merged-{}", lb.digest.short()));
        fs::create_dir(&merged2).unwrap();
        let ov = Overlay::mount(&[&dest, &t.path().join("lower")], None, &merged2);
        let view = snapshot(
            &ov.merged,
            &SnapOpts {
                dir_mtimes: false,
                inode_groups: false,
            },
        );
        assert_eq!(view, merged_before, "{c:?}");
    }
}

#[test]
fn layer_entries_follow_the_buildkit_layout() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    fs::create_dir(d.join("b")).unwrap();
    fs::write(d.join("b/f"), "f").unwrap();
    rustix::fs::setxattr(
        d.join("b").as_path(),
        "trusted.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    rustix::fs::setxattr(
        d.join("b").as_path(),
        "trusted.overlay.origin",
        b"zz",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    mknod(&d.join("a.wh"), rustix::fs::FileType::CharacterDevice, 0, 0);
    fs::write(d.join("a"), "a").unwrap();
    fs::write(d.join("c"), "c").unwrap();
    fs::hard_link(d.join("c"), d.join("b/h")).unwrap();
    let mut blob = Vec::new();
    layers::write_layer(
        d,
        &LayerOptions {
            compression: Compression::Uncompressed,
            source_date_epoch: None,
        },
        &mut blob,
    )
    .unwrap();
    let mut ar = tar::Archive::new(&blob[..]);
    let mut got = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let x: Vec<String> = e
            .pax_extensions()
            .unwrap()
            .map(|p| p.map(|r| r.unwrap().key().unwrap().to_string()).collect())
            .unwrap_or_default();
        let h = e.header();
        let link = h
            .link_name()
            .unwrap()
            .map(|l| format!(" -> {}", l.display()))
            .unwrap_or_default();
        got.push(format!(
            "{:?} {}{link} {x:?}",
            h.entry_type(),
            e.path().unwrap().display()
        ));
        let mut s = String::new();
        e.read_to_string(&mut s).unwrap();
    }
    assert_eq!(
        got,
        vec![
            "Regular a []",
            "Regular .wh.a.wh []",
            "Directory b/ []",
            "Regular b/.wh..wh..opq []",
            "Regular b/f []",
            "Regular b/h []",
            "Link c -> b/h []",
        ]
    );
}

/// The chroot isolation's whiteout marker (an empty root-owned `.wh.NAME` of mode 0, written
/// where the filesystem refuses a 0/0 device) gives the same layer bytes as the device: same
/// entry, same place in the order (under NAME, not under `.wh.NAME`).
#[test]
fn whiteout_marker_files_write_the_same_layer_as_whiteout_devices() {
    use std::os::unix::fs::PermissionsExt;
    let layer = |marker: bool| {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        fs::create_dir(d.join("dir")).unwrap();
        for n in ["a", "m", "z"] {
            fs::write(d.join("dir").join(n), n).unwrap();
        }
        let gone = if marker {
            let p = d.join("dir/.wh.k");
            fs::write(&p, "").unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o000)).unwrap();
            p
        } else {
            let p = d.join("dir/k");
            mknod(&p, rustix::fs::FileType::CharacterDevice, 0, 0);
            p
        };
        set_mtime(&gone, 1_700_000_000);
        for p in ["dir/a", "dir/m", "dir/z", "dir"] {
            set_mtime(&d.join(p), 1_700_000_000);
        }
        let mut blob = Vec::new();
        layers::write_layer(
            d,
            &LayerOptions {
                compression: Compression::Uncompressed,
                source_date_epoch: None,
            },
            &mut blob,
        )
        .unwrap();
        blob
    };
    let (device, marker) = (layer(false), layer(true));
    let names = |blob: &[u8]| -> Vec<String> {
        tar::Archive::new(blob)
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    };
    assert_eq!(
        names(&device),
        ["dir/", "dir/a", "dir/.wh.k", "dir/m", "dir/z"]
    );
    assert_eq!(names(&marker), names(&device));
    assert!(marker == device, "the two layers differ in their bytes");
}

fn write_tree(root: &Path, mtime: i64, reverse: bool) {
    let mut names: Vec<String> = (0..40).map(|i| format!("f{i:02}")).collect();
    if reverse {
        names.reverse();
    }
    fs::create_dir_all(root.join("d/e")).unwrap();
    for n in &names {
        fs::write(root.join("d").join(n), n.repeat(1000)).unwrap();
        set_mtime(&root.join("d").join(n), mtime);
    }
    fs::write(root.join("big"), vec![1u8; 2 << 20]).unwrap();
    for p in ["big", "d/e", "d"] {
        set_mtime(&root.join(p), mtime);
    }
}

#[test]
fn same_tree_gives_the_same_digests_and_source_date_epoch_clamps() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    write_tree(&a, 2_000_000_000, false);
    write_tree(&b, 2_000_000_777, true);
    for c in [
        Compression::Gzip { level: 6 },
        Compression::Zstd { level: 3 },
    ] {
        let run = |dir: &Path, sde: Option<i64>| {
            let mut out = Vec::new();
            let lb = layers::write_layer(
                dir,
                &LayerOptions {
                    compression: c,
                    source_date_epoch: sde,
                },
                &mut out,
            )
            .unwrap();
            (lb, out)
        };
        let (a1, a1_bytes) = run(&a, None);
        let (a2, a2_bytes) = run(&a, None);
        assert_eq!(a1, a2);
        assert_eq!(a1_bytes, a2_bytes);
        let (b1, _) = run(&b, None);
        assert_ne!(
            a1.diff_id, b1.diff_id,
            "different mtimes without SOURCE_DATE_EPOCH"
        );
        let (ac, ac_bytes) = run(&a, Some(1_700_000_000));
        let (bc, _) = run(&b, Some(1_700_000_000));
        assert_eq!(ac.diff_id, bc.diff_id);
        assert_eq!(ac.digest, bc.digest);
        // Every header time is clamped.
        let mut plain = Vec::new();
        layers::decompress(
            &ac_bytes[..],
            layers::DecompressHint::MediaType(c.media_type()),
        )
        .unwrap()
        .read_to_end(&mut plain)
        .unwrap();
        let mut ar = tar::Archive::new(&plain[..]);
        for e in ar.entries().unwrap() {
            assert_eq!(e.unwrap().header().mtime().unwrap(), 1_700_000_000);
        }
        // Clamping only lowers: a later epoch keeps the real times.
        let (al, _) = run(&a, Some(2_100_000_000));
        assert_eq!(al.diff_id, a1.diff_id);
    }
}

#[test]
fn archive_mode_keeps_whiteout_names_and_merges() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("d/.wh.x"), "not a whiteout").unwrap();
    fs::write(src.join("d/f"), "new").unwrap();
    let mut blob = Vec::new();
    layers::write_layer(
        &src,
        &LayerOptions {
            compression: Compression::Uncompressed,
            source_date_epoch: None,
        },
        &mut blob,
    )
    .unwrap();
    let dest = t.path().join("dest");
    fs::create_dir_all(dest.join("d")).unwrap();
    fs::write(dest.join("d/existing"), "stays").unwrap();
    fs::write(dest.join("d/f"), "old").unwrap();
    let st = layers::extract(&blob[..], &dest, ExtractMode::Archive).unwrap();
    assert_eq!(st.whiteouts, 0);
    assert_eq!(
        fs::read_to_string(dest.join("d/.wh.x")).unwrap(),
        "not a whiteout"
    );
    assert_eq!(
        fs::read_to_string(dest.join("d/existing")).unwrap(),
        "stays"
    );
    assert_eq!(fs::read_to_string(dest.join("d/f")).unwrap(), "new");
}

/// Unpacks a real layer blob named by `HOIST_LAYER_BLOB` (media type `HOIST_LAYER_MEDIA_TYPE`,
/// default OCI gzip) and checks its diffID against `HOIST_LAYER_DIFF_ID`; then re-diffs the
/// extracted tree and unpacks that again to check the trees agree. For manual runs against
/// pulled images: `HOIST_LAYER_BLOB=… cargo test --test layers real_layer -- --ignored`.
#[test]
#[ignore = "needs a real layer blob in HOIST_LAYER_BLOB"]
fn real_layer_unpacks_to_its_diff_id_and_round_trips() {
    let blob = std::env::var("HOIST_LAYER_BLOB").expect("HOIST_LAYER_BLOB");
    let media = std::env::var("HOIST_LAYER_MEDIA_TYPE")
        .unwrap_or_else(|_| hoist::oci::media::OCI_LAYER_GZIP.to_string());
    let t = tempfile::tempdir().unwrap();
    let dest = t.path().join("a");
    fs::create_dir(&dest).unwrap();
    let stats = layers::unpack(fs::File::open(&blob).unwrap(), &media, &dest).unwrap();
    if let Ok(want) = std::env::var("HOIST_LAYER_DIFF_ID") {
        assert_eq!(stats.diff_id.to_string(), want);
    }
    let mut out = Vec::new();
    let lb = layers::write_layer(&dest, &LayerOptions::default(), &mut out).unwrap();
    if let Ok(dump) = std::env::var("HOIST_LAYER_DUMP") {
        // The uncompressed tar hoist writes for the extracted tree, to compare by hand.
        let mut f = fs::File::create(dump).unwrap();
        layers::write_layer(
            &dest,
            &LayerOptions {
                compression: Compression::Uncompressed,
                source_date_epoch: None,
            },
            &mut f,
        )
        .unwrap();
    }
    let again = t.path().join("b");
    fs::create_dir(&again).unwrap();
    layers::unpack(&out[..], &lb.media_type, &again).unwrap();
    let o = SnapOpts {
        dir_mtimes: true,
        inode_groups: true,
    };
    assert_eq!(snapshot(&dest, &o), snapshot(&again, &o));
}

/// `tests/fixtures/layers/go-busybox-subset.tar` is raw bytes cut from a busybox layer that
/// Go's `archive/tar` wrote (buildah; the same writer and settings as BuildKit's differ):
/// dirs, symlinks and small files with every header as Go laid it out. Extracting it and
/// diffing the tree again must give the very same bytes, hence the same diffID.
#[test]
fn go_written_layer_is_reproduced_byte_for_byte() {
    let fixture = fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/layers/go-busybox-subset.tar"),
    )
    .unwrap();
    let t = tempfile::tempdir().unwrap();
    let st = layers::extract(&fixture[..], t.path(), ExtractMode::Layer).unwrap();
    assert_eq!(st.diff_id, hoist::oci::Digest::of(&fixture));
    assert!(st.symlinks > 200 && st.dirs > 5 && st.files > 0, "{st:?}");
    let mut ours = Vec::new();
    let lb = layers::write_layer(
        t.path(),
        &LayerOptions {
            compression: Compression::Uncompressed,
            source_date_epoch: None,
        },
        &mut ours,
    )
    .unwrap();
    assert_eq!(lb.diff_id, st.diff_id);
    assert!(
        ours == fixture,
        "hoist's tar differs from Go's at byte {:?}",
        ours.iter().zip(&fixture).position(|(a, b)| a != b)
    );
}

/// `tests/fixtures/layers/go-pax.tar` was written by Go's `archive/tar` (`gen-go-pax.go`
/// beside it) with every case where Go leaves plain ustar: prefix-split long names, PAX
/// paths (too long, non-ASCII), PAX linkpaths, big ids, xattrs on files and dirs (sorted
/// records, `DIR/PaxHeaders.0` naming, truncated names ending in `/`), hardlinks, setuid.
/// Extracting it and diffing the tree again must give the same bytes.
#[test]
fn go_pax_layout_is_reproduced_byte_for_byte() {
    let fixture =
        fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/layers/go-pax.tar"))
            .unwrap();
    let t = tempfile::tempdir().unwrap();
    let st = layers::extract(&fixture[..], t.path(), ExtractMode::Layer).unwrap();
    assert_eq!(
        (st.dirs, st.files, st.hardlinks, st.symlinks),
        (5, 5, 1, 2),
        "{st:?}"
    );
    let mut ours = Vec::new();
    layers::write_layer(
        t.path(),
        &LayerOptions {
            compression: Compression::Uncompressed,
            source_date_epoch: None,
        },
        &mut ours,
    )
    .unwrap();
    if let Some(at) = ours.iter().zip(&fixture).position(|(a, b)| a != b) {
        let block = at / 512 * 512;
        panic!(
            "hoist's tar differs from Go's at byte {at} (block at {block}):\n go:   {:?}\n ours: {:?}",
            String::from_utf8_lossy(&fixture[block..(block + 512).min(fixture.len())]),
            String::from_utf8_lossy(&ours[block..(block + 512).min(ours.len())])
        );
    }
    assert_eq!(ours.len(), fixture.len());
}

#[test]
fn parallel_gzip_is_read_by_the_system_gzip() {
    // Random runs (stored blocks), zero runs (deflated) and job boundaries mixed, big enough
    // for the multi-threaded path; GNU gzip, not our own reader, checks the stream and CRC.
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("upper");
    fs::create_dir(&dir).unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut data = Vec::with_capacity(6 << 20);
    for block in 0..96 {
        for _ in 0..(64 << 10) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            data.push(if block % 3 == 0 { 0 } else { seed as u8 });
        }
    }
    fs::write(dir.join("mixed.bin"), &data).unwrap();
    let mut blob = Vec::new();
    let b = layers::write_layer(
        &dir,
        &LayerOptions {
            compression: Compression::Gzip { level: 2 },
            source_date_epoch: Some(0),
        },
        &mut blob,
    )
    .unwrap();
    assert!(blob.len() > (3 << 20), "random data does not shrink");
    let mut child = std::process::Command::new("gzip")
        .arg("-dc")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip (Debian's gzip package)");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(&blob).unwrap();
    });
    let mut tar = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut tar).unwrap();
    writer.join().unwrap();
    assert!(child.wait().unwrap().success(), "gzip rejected the stream");
    assert_eq!(hoist::oci::Digest::of(&tar), b.diff_id);
}

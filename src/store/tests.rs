use super::maintenance::{ExtraRoots, FsckIssue};
use super::*;
use crate::oci::{Descriptor, media};
use std::os::unix::fs::PermissionsExt;

fn tiny_image(s: &Store) -> (Digest, Digest, Digest) {
    let layer = s.put_blob(b"layer-bytes").unwrap();
    let diff = Digest::of(b"diff");
    let cfg = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{diff}"]}}}}"#
    );
    let cfg_d = s.put_blob(cfg.as_bytes()).unwrap();
    let m = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        config: Descriptor::new(media::OCI_CONFIG, cfg_d.clone(), cfg.len() as u64),
        layers: vec![Descriptor::new(media::OCI_LAYER_GZIP, layer.clone(), 11)],
        annotations: None,
    };
    let md = s.put_blob(&serde_json::to_vec(&m).unwrap()).unwrap();
    (md, layer, diff)
}

#[test]
fn blob_roundtrip_is_atomic_and_read_only() {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(t.path()).unwrap();
    let d = s.put_blob(b"hello").unwrap();
    assert_eq!(d, Digest::of(b"hello"));
    assert!(s.has_blob(&d));
    assert_eq!(s.read_blob(&d).unwrap(), b"hello");
    let mode = fs::metadata(s.blob_path(&d)).unwrap().permissions().mode();
    assert_eq!(mode & 0o222, 0, "blob must be read-only, mode {mode:o}");

    let mut w = s.blob_writer().unwrap();
    w.write_all(b"other").unwrap();
    let err = w.commit(Some(&Digest::of(b"expected"))).unwrap_err();
    assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
    assert!(
        !s.has_blob(&Digest::of(b"other")),
        "nothing stored on mismatch"
    );

    let mut w = s.blob_writer().unwrap();
    w.write_all(b"sized").unwrap();
    assert!(matches!(
        w.commit_sized(&Digest::of(b"sized"), 4),
        Err(StoreError::SizeMismatch { .. })
    ));
    assert!(!s.has_blob(&Digest::of(b"sized")));
    // No temp debris left in the session dir.
    assert_eq!(fs::read_dir(&s.session.dir).unwrap().count(), 0);
}

#[test]
fn corrupt_blob_is_detected_on_read() {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(t.path()).unwrap();
    let d = s.put_blob(b"good").unwrap();
    let p = s.blob_path(&d);
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&p, b"evil").unwrap();
    assert!(matches!(
        s.read_blob(&d),
        Err(StoreError::CorruptBlob { .. })
    ));
    let r = s.fsck(false).unwrap();
    assert_eq!(r.issues.len(), 1, "{:?}", r.issues);
    let r = s.fsck(true).unwrap();
    assert_eq!(r.repaired, 1);
    assert!(!s.has_blob(&d));
    assert!(s.fsck(false).unwrap().issues.is_empty());
}

#[test]
fn image_index_and_load_image() {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(t.path()).unwrap();
    let (md, layer, diff) = tiny_image(&s);
    assert_eq!(s.get_image("docker.io/library/x:latest").unwrap(), None);
    s.set_image("docker.io/library/x:latest", &md).unwrap();
    s.set_image("docker.io/library/y:1", &md).unwrap();
    assert_eq!(
        s.get_image("docker.io/library/x:latest").unwrap(),
        Some(md.clone())
    );
    assert_eq!(s.list_images().unwrap().len(), 2);
    let (m, c) = s.load_image(&md).unwrap();
    assert_eq!(m.layers[0].digest, layer);
    assert_eq!(c.rootfs.diff_ids, vec![diff]);
    assert!(s.remove_image("docker.io/library/y:1").unwrap());
    assert!(!s.remove_image("docker.io/library/y:1").unwrap());
    // A second handle (another process) sees the same index.
    let s2 = Store::open(t.path()).unwrap();
    assert_eq!(
        s2.list_images().unwrap(),
        vec![("docker.io/library/x:latest".to_string(), md)]
    );
}

#[test]
fn concurrent_index_updates_are_not_lost() {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(t.path()).unwrap();
    let d = s.put_blob(b"m").unwrap();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let root = t.path().to_path_buf();
            let d = d.clone();
            std::thread::spawn(move || {
                let s = Store::open(&root).unwrap();
                for j in 0..10 {
                    s.set_image(&format!("r/{i}:{j}"), &d).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(s.list_images().unwrap().len(), 80);
}

#[test]
fn snapshots_tmp_and_cache_mounts() {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(t.path()).unwrap();
    let diff = Digest::of(b"x");
    let tmp = s.tmp_dir().unwrap();
    let filled = tmp.path().join("fill");
    fs::create_dir(&filled).unwrap();
    fs::write(filled.join("f"), b"1").unwrap();
    let p = s.commit_snapshot(&diff, &filled).unwrap();
    assert!(s.has_snapshot(&diff));
    assert_eq!(fs::read(p.join("f")).unwrap(), b"1");
    // Second commit of the same diff id discards the new dir.
    let again = tmp.path().join("again");
    fs::create_dir(&again).unwrap();
    s.commit_snapshot(&diff, &again).unwrap();
    assert!(!again.exists());

    let c = s.cache_mount_dir("../../etc").unwrap();
    assert!(c.starts_with(t.path().join("cache-mounts")));
    assert_eq!(c, s.cache_mount_dir("../../etc").unwrap());
    assert_ne!(c, s.cache_mount_dir("other").unwrap());
    assert!(s.lock_path("../x").starts_with(t.path().join("locks")));
}

#[test]
fn stale_tmp_entries_are_removed_live_ones_kept() {
    let t = tempfile::tempdir().unwrap();
    let live = Store::open(t.path()).unwrap();
    let live_tmp = live.tmp_dir().unwrap();
    // Debris from a dead process: a session dir with an unlocked lock file, and a stray dir.
    fs::create_dir_all(t.path().join("tmp/dead/x")).unwrap();
    fs::write(t.path().join("tmp/dead.lock"), b"").unwrap();
    fs::create_dir_all(t.path().join("tmp/stray")).unwrap();
    let _other = Store::open(t.path()).unwrap();
    assert!(!t.path().join("tmp/dead").exists());
    assert!(!t.path().join("tmp/stray").exists());
    assert!(
        live_tmp.path().exists(),
        "a live session's scratch must survive"
    );
}

#[test]
fn opening_the_store_never_walks_into_the_sandbox_pool() {
    // Regression: the pool has no `sandbox.lock`, so the scratch cleaner took it for debris and
    // `remove_dir_all`ed it, through the overlay rootfs of another process's running RUN.
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(t.path()).unwrap();
    let live = s.sandbox_pool().join("hoist-1-1-x/rootfs/bin");
    fs::create_dir_all(&live).unwrap();
    fs::write(live.join("sh"), b"x").unwrap();
    let _other = Store::open(t.path()).unwrap();
    assert!(live.join("sh").exists(), "the pool belongs to the executor");
}

#[test]
fn prune_keeps_referenced_and_extra_roots() {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(t.path()).unwrap();
    let (md, layer, diff) = tiny_image(&s);
    s.set_image("a:b", &md).unwrap();
    let junk = s.put_blob(b"junk").unwrap();
    let cached = s.put_blob(b"cache").unwrap();
    let tmp = s.tmp_dir().unwrap();
    for d in [&diff, &Digest::of(b"unused")] {
        let f = tmp.path().join(d.hex());
        fs::create_dir(&f).unwrap();
        s.commit_snapshot(d, &f).unwrap();
    }
    let mut extra = ExtraRoots::default();
    extra.blobs.insert(cached.clone());
    let r = s.prune(&extra).unwrap();
    assert_eq!(r.blobs_removed, 1);
    assert_eq!(r.snapshots_removed, 1);
    assert!(s.has_blob(&md) && s.has_blob(&layer) && s.has_blob(&cached));
    assert!(!s.has_blob(&junk));
    assert!(s.has_snapshot(&diff));
    assert!(!s.has_snapshot(&Digest::of(b"unused")));
}

#[test]
fn fsck_reports_broken_images_and_repairs() {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(t.path()).unwrap();
    let (md, layer, _) = tiny_image(&s);
    s.set_image("a:b", &md).unwrap();
    assert!(s.fsck(false).unwrap().issues.is_empty());
    fs::remove_file(s.blob_path(&layer)).unwrap();
    fs::write(t.path().join("blobs/sha256/not-a-digest"), b"").unwrap();
    let r = s.fsck(false).unwrap();
    assert_eq!(r.issues.len(), 2, "{:?}", r.issues);
    assert!(
        r.issues
            .iter()
            .any(|i| matches!(i, FsckIssue::BrokenImage { name, .. } if name == "a:b"))
    );
    s.fsck(true).unwrap();
    assert_eq!(s.get_image("a:b").unwrap(), None);
    assert!(s.fsck(false).unwrap().issues.is_empty());
}

#[test]
fn sources_record() {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(t.path()).unwrap();
    let d = Digest::of(b"b");
    s.record_blob_source("localhost:5000", "a/b", &d).unwrap();
    s.record_blob_source("localhost:5000", "a/b", &d).unwrap();
    s.record_blob_source("other:1", "c", &d).unwrap();
    assert_eq!(
        s.blob_sources("localhost:5000", &d).unwrap(),
        vec!["a/b".to_string()]
    );
    assert!(s.blob_sources("localhost:5001", &d).unwrap().is_empty());
}

#[test]
fn snapshots_survive_reopening_but_not_a_reboot() {
    let t = tempfile::tempdir().unwrap();
    let diff = Digest::of(b"boot");
    {
        let s = Store::open(t.path()).unwrap();
        let tmp = s.tmp_dir().unwrap();
        let filled = tmp.path().join("fill");
        fs::create_dir_all(filled.join("sub")).unwrap();
        fs::write(filled.join("sub/f"), b"1").unwrap();
        s.commit_snapshot(&diff, &filled).unwrap();
    }
    // Same boot: the snapshot stays.
    let s = Store::open(t.path()).unwrap();
    assert!(s.has_snapshot(&diff));
    drop(s);
    // A store last opened in another boot: its snapshots may hold torn files, so they go.
    fs::write(t.path().join("meta/boot-id"), "another-boot\n").unwrap();
    let s = Store::open(t.path()).unwrap();
    assert!(!s.has_snapshot(&diff));
    let boot = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert_eq!(
        fs::read_to_string(t.path().join("meta/boot-id"))
            .unwrap()
            .trim(),
        boot.trim()
    );
}

#[test]
fn a_producer_hashed_blob_needs_its_digest_and_size() {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(t.path()).unwrap();
    let data = b"layer bytes hashed by their producer";
    let d = Digest::of(data);
    let mut w = s.blob_writer_hashed_by_producer().unwrap();
    w.write_all(data).unwrap();
    assert!(matches!(w.commit(None), Err(StoreError::UnnamedBlob(_))));
    let mut w = s.blob_writer_hashed_by_producer().unwrap();
    w.write_all(data).unwrap();
    assert!(matches!(
        w.commit_sized(&d, data.len() as u64 + 1),
        Err(StoreError::SizeMismatch { .. })
    ));
    assert!(!s.has_blob(&d));
    let mut w = s.blob_writer_hashed_by_producer().unwrap();
    w.write_all(data).unwrap();
    w.commit_sized(&d, data.len() as u64).unwrap();
    assert_eq!(s.read_blob(&d).unwrap(), data);
}

#[test]
fn archives_round_trip_through_the_one_writer_and_reader() {
    use super::archive::{NamesFrom, read_archive, write_archive};
    use crate::oci::layout::{ArchiveFormat, ArchiveImage, ArchiveName};
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let (md, layer, _) = tiny_image(&s);
    let (m, _) = s.load_image(&md).unwrap();
    let image = ArchiveImage {
        manifest: Descriptor::new(media::OCI_MANIFEST, md.clone(), s.blob_size(&md).unwrap()),
        config: m.config.digest.clone(),
        layers: vec![layer.clone()],
        names: vec![ArchiveName {
            full: "docker.io/library/app:1".into(),
            tag: Some("1".into()),
            familiar: "app:1".into(),
        }],
    };
    for (format, from, name) in [
        (
            ArchiveFormat::Oci,
            NamesFrom::OciIndex,
            "docker.io/library/app:1",
        ),
        (ArchiveFormat::Docker, NamesFrom::DockerManifest, "app:1"),
    ] {
        let mut tar = Vec::new();
        write_archive(&s, std::slice::from_ref(&image), format, 0, &mut tar).unwrap();
        let d2 = tempfile::tempdir().unwrap();
        let s2 = Store::open(d2.path()).unwrap();
        let loaded = read_archive(&s2, tar.as_slice(), &crate::oci::Platform::host()).unwrap();
        assert_eq!(loaded.len(), 1, "{format:?}");
        assert_eq!(loaded[0].names, vec![name.to_string()], "{format:?}");
        assert_eq!(loaded[0].names_from, from);
        let (m2, _) = s2.load_image(&loaded[0].manifest).unwrap();
        assert_eq!(m2.layers[0].digest, layer);
        if format == ArchiveFormat::Oci {
            assert_eq!(
                loaded[0].manifest, md,
                "the layout holds the stored manifest"
            );
        }
    }
}

#[test]
fn an_index_of_whole_images_passes_fsck_and_keeps_them_from_prune() {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(t.path()).unwrap();
    let (md, layer, _) = tiny_image(&s);
    let size = s.blob_size(&md).unwrap();
    let index = crate::oci::Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.into()),
        manifests: vec![Descriptor::new(media::OCI_MANIFEST, md.clone(), size)],
        annotations: None,
    };
    let id = s.put_blob(&serde_json::to_vec(&index).unwrap()).unwrap();
    s.set_image("multi:1", &id).unwrap();
    assert_eq!(s.load_index(&id).unwrap(), Some(index));
    assert_eq!(s.load_index(&md).unwrap(), None);
    assert!(s.fsck(false).unwrap().issues.is_empty());
    s.prune(&ExtraRoots::default()).unwrap();
    assert!(s.has_blob(&md) && s.has_blob(&layer));
    // A missing image of the index breaks it.
    fs::remove_file(s.blob_path(&layer)).unwrap();
    let r = s.fsck(false).unwrap();
    assert!(
        r.issues
            .iter()
            .any(|i| matches!(i, FsckIssue::BrokenImage { name, .. } if name == "multi:1")),
        "{:?}",
        r.issues
    );
}

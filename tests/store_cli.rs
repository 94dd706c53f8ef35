//! Store commands end to end through the `hoist` binary: images, tag, rmi, inspect, save
//! (docker-archive and OCI, checked with skopeo), load, prune and fsck.

mod common;

use common::{blob_names, fixture_image, hoist, noise};
use hoist::oci::Digest;
use hoist::store::Store;
use std::process::{Command, Output};

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "hoist failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn images_tag_inspect_rmi() {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(t.path()).unwrap();
    let md = fixture_image(&s, "docker.io/library/app:1", &[("f", b"x".to_vec())]);
    ok(&hoist(
        t.path(),
        &["tag", "app:1", "registry.example:5000/team/app:2"],
    ));
    let list = ok(&hoist(t.path(), &["images"]));
    assert!(
        list.contains("app ") && list.contains("registry.example:5000/team/app"),
        "{list}"
    );
    let cfg = s.load_image(&md).unwrap().0.config.digest;
    assert!(list.contains(cfg.short()), "{list}");
    let json: serde_json::Value = serde_json::from_str(&ok(&hoist(
        t.path(),
        &["inspect", "registry.example:5000/team/app:2"],
    )))
    .unwrap();
    assert_eq!(json[0]["Digest"], md.to_string());
    assert_eq!(json[0]["Config"]["rootfs"]["type"], "layers");
    assert_eq!(json[0]["Manifest"]["layers"].as_array().unwrap().len(), 1);
    assert!(ok(&hoist(t.path(), &["rmi", "app:1"])).contains("Untagged: docker.io/library/app:1"));
    let missing = hoist(t.path(), &["inspect", "app:1"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not in the store"));
}

#[test]
fn save_load_roundtrip_and_skopeo_reads_archives() {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(t.path()).unwrap();
    let md = fixture_image(
        &s,
        "docker.io/library/saved:v1",
        &[("bin/x", noise(30_000, 2))],
    );
    let out = tempfile::tempdir().unwrap();
    let docker_tar = out.path().join("d.tar");
    let oci_tar = out.path().join("o.tar");
    ok(&hoist(
        t.path(),
        &["save", "-o", docker_tar.to_str().unwrap(), "saved:v1"],
    ));
    ok(&hoist(
        t.path(),
        &[
            "save",
            "--format",
            "oci",
            "-o",
            oci_tar.to_str().unwrap(),
            "saved:v1",
        ],
    ));
    common::require("skopeo", "skopeo");
    {
        let d = common::run(
            Command::new("skopeo")
                .args(["inspect", "--raw"])
                .arg(format!("docker-archive:{}", docker_tar.display())),
        );
        let v: serde_json::Value = serde_json::from_slice(&d).unwrap();
        assert_eq!(v["layers"].as_array().unwrap().len(), 1);
        let o = common::run(
            Command::new("skopeo")
                .args(["inspect", "--raw"])
                .arg(format!("oci-archive:{}", oci_tar.display())),
        );
        assert_eq!(
            o,
            s.read_blob(&md).unwrap(),
            "the OCI archive holds the stored manifest"
        );
    }
    for tar in [&docker_tar, &oci_tar] {
        let t2 = tempfile::tempdir().unwrap();
        let loaded = ok(&hoist(t2.path(), &["load", "-i", tar.to_str().unwrap()]));
        assert!(loaded.contains("Loaded image: saved:v1"), "{loaded}");
        let s2 = Store::open(t2.path()).unwrap();
        let d2 = s2
            .get_image("docker.io/library/saved:v1")
            .unwrap()
            .expect("loaded");
        let (m1, c1) = s.load_image(&md).unwrap();
        let (m2, c2) = s2.load_image(&d2).unwrap();
        assert_eq!(c1, c2);
        assert_eq!(
            m1.layers.iter().map(|l| &l.digest).collect::<Vec<_>>(),
            m2.layers.iter().map(|l| &l.digest).collect::<Vec<_>>()
        );
        ok(&hoist(t2.path(), &["fsck"]));
    }
}

#[test]
fn prune_and_fsck_repair() {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(t.path()).unwrap();
    let keep = fixture_image(&s, "docker.io/library/keep:1", &[("f", b"keep".to_vec())]);
    let gone = fixture_image(&s, "docker.io/library/gone:1", &[("f", b"gone".to_vec())]);
    ok(&hoist(t.path(), &["rmi", "gone:1"]));
    let before = blob_names(t.path());
    let out = ok(&hoist(t.path(), &["prune"]));
    assert!(out.contains("Deleted 3 blobs"), "{out}");
    let after = blob_names(t.path());
    assert!(after.contains(keep.hex()) && !after.contains(gone.hex()));
    assert_eq!(before.len() - 3, after.len());

    // Corrupt a layer: fsck fails, --repair drops the blob and the image, then fsck passes.
    let layer = s.load_image(&keep).unwrap().0.layers[0].digest.clone();
    let p = s.blob_path(&layer);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&p, b"tampered").unwrap();
    let bad = hoist(t.path(), &["fsck"]);
    assert!(!bad.status.success());
    let text = String::from_utf8_lossy(&bad.stdout);
    assert!(
        text.contains(&format!("blob {layer}"))
            && text.contains(&Digest::of(b"tampered").to_string()),
        "{text}"
    );
    ok(&hoist(t.path(), &["fsck", "--repair"]));
    ok(&hoist(t.path(), &["fsck"]));
    assert_eq!(s.get_image("docker.io/library/keep:1").unwrap(), None);
}

//! The pure core of `hoist diff`: config fields, file aspects, layer pairing, text.

use super::*;
use serde_json::json;

fn file(sha: &str) -> FileMeta {
    FileMeta {
        kind: "file",
        mode: 0o644,
        sha256: sha.into(),
        mtime: 100,
        ..FileMeta::default()
    }
}

#[test]
fn config_fields_are_compared_one_by_one_and_history_by_count_and_entry() {
    let a = json!({
        "architecture": "amd64", "os": "linux", "created": "2020-01-01T00:00:00Z",
        "config": {"Env": ["A=1"], "Cmd": ["sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:1"]},
        "history": [{"created_by": "x"}, {"created_by": "y"}]
    });
    let b = json!({
        "architecture": "arm64", "os": "linux", "created": "2020-01-01T00:00:00Z",
        "config": {"Env": ["A=2"], "Cmd": ["sh"], "User": "app", "Labels": null},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:2"]},
        "history": [{"created_by": "x"}, {"created_by": "z"}, {"created_by": "w"}]
    });
    let fields: Vec<(String, Option<Value>, Option<Value>)> = diff_configs(&a, &b)
        .into_iter()
        .map(|c| (c.field, c.old, c.new))
        .collect();
    assert_eq!(
        fields,
        vec![
            (
                "architecture".into(),
                Some(json!("amd64")),
                Some(json!("arm64"))
            ),
            (
                "config.Env".into(),
                Some(json!(["A=1"])),
                Some(json!(["A=2"]))
            ),
            ("config.User".into(), None, Some(json!("app"))),
            ("config.WorkingDir".into(), Some(json!("/")), None),
            ("history.length".into(), Some(json!(2)), Some(json!(3))),
            (
                "history[1]".into(),
                Some(json!({"created_by": "y"})),
                Some(json!({"created_by": "z"}))
            ),
        ]
    );
    assert!(diff_configs(&a, &a).is_empty());
}

#[test]
fn files_added_removed_and_changed_say_what_changed() {
    let mut a = Files::new();
    a.insert("/same".into(), file("sha256:1"));
    a.insert("/gone".into(), file("sha256:1"));
    a.insert("/f".into(), file("sha256:1"));
    a.insert(
        "/l".into(),
        FileMeta {
            kind: "symlink",
            link: "x".into(),
            mode: 0o777,
            ..FileMeta::default()
        },
    );
    let mut b = a.clone();
    b.remove("/gone");
    b.insert("/new".into(), file("sha256:2"));
    b.insert(
        "/f".into(),
        FileMeta {
            mode: 0o755,
            uid: 1000,
            mtime: 200,
            ..file("sha256:2")
        },
    );
    if let Some(l) = b.get_mut("/l") {
        l.link = "y".into();
    }
    let d = diff_files(&a, &b);
    let summary: Vec<(&str, FileStatus, Vec<&str>)> = d
        .iter()
        .map(|f| {
            (
                f.path.as_str(),
                f.status,
                f.changes.iter().map(|a| a.aspect).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "/f",
                FileStatus::Changed,
                vec!["content", "mode", "owner", "mtime"]
            ),
            ("/gone", FileStatus::Removed, vec![]),
            ("/l", FileStatus::Changed, vec!["link"]),
            ("/new", FileStatus::Added, vec![]),
        ]
    );
    let mode = &d[0].changes[1];
    assert_eq!((mode.old.as_str(), mode.new.as_str()), ("0644", "0755"));
    assert_eq!(d[0].changes[2].new, "1000:0");
}

#[test]
fn layers_pair_by_index_identical_ones_are_not_compared() {
    let files = |sha: &str| {
        let mut f = Files::new();
        f.insert("/a".into(), file(sha));
        Some(f)
    };
    let side = |d: &str, f| LayerSide {
        diff_id: d.into(),
        files: f,
    };
    let cfg = json!({"architecture": "amd64", "os": "linux"});
    let r = diff_images(
        "one",
        "two",
        &cfg,
        &cfg,
        &[
            side("sha256:base", None),
            side("sha256:x", files("sha256:1")),
        ],
        &[
            side("sha256:base", None),
            side("sha256:y", files("sha256:2")),
            side("sha256:z", files("sha256:3")),
        ],
    );
    assert!(!r.identical);
    let st: Vec<LayerStatus> = r.layers.iter().map(|l| l.status).collect();
    assert_eq!(
        st,
        vec![
            LayerStatus::Identical,
            LayerStatus::Changed,
            LayerStatus::Added
        ]
    );
    assert_eq!(r.layers[1].files[0].changes[0].aspect, "content");
    assert_eq!(r.layers[2].files[0].status, FileStatus::Added);
    let text = render_text(&r);
    assert!(text.contains("layer 0: identical"), "{text}");
    assert!(text.contains("changed  /a: content 1 -> 2"), "{text}");
    assert!(text.contains("layer 2: only in two"), "{text}");

    let same = diff_images(
        "one",
        "two",
        &cfg,
        &cfg,
        &[side("sha256:b", None)],
        &[side("sha256:b", None)],
    );
    assert!(same.identical);
    assert_eq!(render_text(&same), "one and two are identical\n");
}

#[test]
fn a_layer_tar_is_read_into_file_metadata() {
    use crate::layers::tarfmt::{Entry, Kind, write_end, write_header, write_padding};
    let mut tar = Vec::new();
    let mut d = Entry::new("app/", Kind::Dir);
    d.mode = 0o755;
    write_header(&mut tar, &d).unwrap();
    let mut f = Entry::new("app/f", Kind::Regular);
    f.mode = 0o640;
    f.uid = 7;
    f.mtime = 1234;
    f.size = 3;
    write_header(&mut tar, &f).unwrap();
    tar.extend_from_slice(b"abc");
    write_padding(&mut tar, 3).unwrap();
    let mut l = Entry::new("app/l", Kind::Symlink);
    l.link = b"f".to_vec();
    write_header(&mut tar, &l).unwrap();
    write_end(&mut tar).unwrap();
    let files = layer::read_tar(&tar[..]).unwrap();
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        vec!["/app", "/app/f", "/app/l"]
    );
    let f = &files["/app/f"];
    assert_eq!((f.kind, f.mode, f.uid, f.mtime), ("file", 0o640, 7, 1234));
    // sha256("abc")
    assert_eq!(
        f.sha256,
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        (files["/app/l"].kind, files["/app/l"].link.as_str()),
        ("symlink", "f")
    );
}

//! `hoist build --squash` end to end (issue 17): the target stage's own layers become one
//! on top of its base; the filesystem equals the unsquashed build's (files added, changed,
//! deleted from the base, a file replaced by a dir, a dir deleted and made again), the config
//! too, and the history marks the squashed steps as empty layers plus one merge entry.

mod common;

use common::lab::{LAB_BASE, Need, ready};
use common::{Hoist, text};
use std::collections::BTreeMap;
use std::io::Read;

const DF: &str = "FROM localhost:5000/busybox:latest
RUN mkdir -p /app/tmp /gone && echo 1 > /app/a && head -c 100000 /dev/zero > /app/tmp/big \\
    && echo k > /keep && echo g > /gone/g && ln -s a /app/link
RUN echo 2 > /app/a && rm -rf /app/tmp /bin/vi /gone && chmod 700 /app
COPY f /app/f
RUN rm /keep && mkdir /keep && echo d > /keep/x && mkdir /gone && echo again > /gone/new
ENV AFTER=1
";

/// Every entry of a rootfs tar: path → (type, mode, uid, gid, content or link target).
fn entries(tar_path: &std::path::Path) -> BTreeMap<String, String> {
    let mut a = tar::Archive::new(std::fs::File::open(tar_path).unwrap());
    let mut out = BTreeMap::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let path = e.path().unwrap().display().to_string();
        let mut body = String::new();
        if h.entry_type().is_file() {
            let mut b = Vec::new();
            e.read_to_end(&mut b).unwrap();
            body = format!(
                "{} bytes {:x}",
                b.len(),
                b.iter()
                    .fold(0u64, |a, x| a.wrapping_mul(31).wrapping_add(*x as u64))
            );
        } else if let Some(l) = e.link_name().unwrap() {
            body = l.display().to_string();
        }
        let v = format!(
            "{:?} {:o} {}:{} {body}",
            h.entry_type(),
            h.mode().unwrap(),
            h.uid().unwrap(),
            h.gid().unwrap()
        );
        out.insert(path, v);
    }
    out
}

fn inspect(h: Hoist) -> serde_json::Value {
    let o = h.output();
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v[0]["Config"].clone()
}

#[test]
fn squash_gives_base_plus_one_layer_with_the_same_filesystem_and_config() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), DF).unwrap();
    std::fs::write(ctx.path().join("f"), "from the context\n").unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut trees = Vec::new();
    for (tag, extra) in [("plain", None), ("squashed", Some("--squash"))] {
        let tar = out.path().join(format!("{tag}.tar"));
        let mut h = Hoist::new(root.path())
            .epoch("1700000000")
            .args(["build", "-q", "-t", tag]);
        if let Some(x) = extra {
            h = h.arg(x);
        }
        let o = h
            .arg("--output")
            .arg(format!("type=tar,dest={}", tar.display()))
            .arg(ctx.path())
            .output();
        assert!(o.status.success(), "{tag}: {}", text(&o));
        trees.push(entries(&tar));
    }
    assert_eq!(trees[0], trees[1], "the squashed filesystem differs");
    assert!(trees[1].contains_key("keep/x") && !trees[1].contains_key("bin/vi"));
    assert!(!trees[1].contains_key("gone/g") && trees[1].contains_key("gone/new"));

    let base = inspect(Hoist::new(root.path()).args(["inspect", LAB_BASE]));
    let plain = inspect(Hoist::new(root.path()).args(["inspect", "plain"]));
    let sq = inspect(Hoist::new(root.path()).args(["inspect", "squashed"]));
    let layers = |v: &serde_json::Value| v["rootfs"]["diff_ids"].as_array().unwrap().len();
    let n_base = layers(&base);
    assert_eq!(layers(&plain), n_base + 4, "{plain}");
    assert_eq!(layers(&sq), n_base + 1, "{sq}");
    assert_eq!(plain["config"], sq["config"]);
    let hist = |v: &serde_json::Value| v["history"].as_array().unwrap().clone();
    let (hp, hs) = (hist(&plain), hist(&sq));
    assert_eq!(hs.len(), hp.len() + 1, "{hs:?}");
    let own = &hs[hist(&base).len()..hp.len()];
    assert!(own.iter().all(|h| h["empty_layer"] == true), "{own:?}");
    let last = hs.last().unwrap();
    assert!(
        last["comment"]
            .as_str()
            .unwrap()
            .starts_with("merge sha256:"),
        "{last}"
    );
    assert!(last.get("empty_layer").is_none());
}

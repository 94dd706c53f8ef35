//! The hostile-input suites in rootless mode 1 (issue 15). Inside its user namespace hoist is
//! root over everything the user owns, so an escape there would write the user's files: here
//! the user owns a canary dir beside its store (and its whole home), and hoist runs as that
//! user (`common::rootless`: a subordinate range, `setpriv`). For a representative part of
//! the hostile-layer corpus (`tests/layers_hostile.rs`, the same raw tar writer,
//! `common::rawtar`), pushed to the lab registry on top of busybox, and of the hostile
//! contexts (`tests/copy_rules.rs`' escapes: links out of the context, `..` chains, absolute
//! links, an ADD'ed hostile tar, a bind mount through a link), every test checks that:
//! - nothing outside the user's store and runtime dir changed (the canary and the home, every
//!   path's type, mode, owner, size, content, link target and mtime);
//! - the rootless run fails or clamps exactly as the same input does as root (same success,
//!   same probe output inside the image, same error).

mod common;

#[path = "fixtures/layers/common.rs"]
mod tree;

use common::rawtar::{Tar, h};
use common::rootless::{User, as_user, ready, user};
use common::{Hoist, lab::LAB_BASE, text};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// What a Dockerfile's probe puts before each line it reports; the Dockerfiles spell it
/// `PRO""BE: ` so that an excerpt of the Dockerfile in an error is not taken for output.
const MARK: &str = "PROBE: ";

/// Enough `..` to climb from any snapshot or layer dir of the store to `/`.
const UP: &str = "../../../../../../../../../../../../../../../../../../../../../../../..";

/// The user these tests run hoist as: its own name and a range no other suite uses, so the
/// suites can run at once.
fn hostile_user() -> User {
    user("hoist-rlh", Some((470000, 65536)))
}

/// A home owned by the user: `ctx/`, `canary/` (a secret, a dir, a link), and `store/` and
/// `run/` (the store and `XDG_RUNTIME_DIR`, the only places hoist may write).
struct Home {
    _t: tempfile::TempDir,
    dir: PathBuf,
    canary: PathBuf,
}

impl Home {
    fn new(u: &User) -> Home {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().to_path_buf();
        let canary = dir.join("canary");
        for d in ["ctx", "store", "run", "canary/cdir", "config"] {
            fs::create_dir_all(dir.join(d)).unwrap();
        }
        fs::write(canary.join("secret"), "canary").unwrap();
        fs::set_permissions(canary.join("secret"), fs::Permissions::from_mode(0o640)).unwrap();
        fs::write(canary.join("cdir/inner"), "inner").unwrap();
        symlink("secret", canary.join("slink")).unwrap();
        chown(&dir, u);
        Home { _t: t, dir, canary }
    }

    /// The canary's absolute path, as a hostile input names it.
    fn c(&self) -> String {
        self.canary.display().to_string()
    }

    /// hoist as the user, its store in `store/`, its runtime dir `run/`.
    fn hoist(&self, u: &User) -> Hoist {
        as_user(u, &self.dir).env("XDG_RUNTIME_DIR", self.dir.join("run"))
    }

    /// Everything in the home but the store and the runtime dir (which hoist owns), and the
    /// home dir itself.
    fn snapshot(&self) -> BTreeMap<String, String> {
        let opts = tree::SnapOpts {
            dir_mtimes: true,
            inode_groups: true,
        };
        let mut out = BTreeMap::new();
        let m = fs::symlink_metadata(&self.dir).unwrap();
        out.insert(".".into(), meta(&m));
        for e in fs::read_dir(&self.dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            out.insert(name.clone(), meta(&e.metadata().unwrap()));
            if name == "store" || name == "run" {
                continue;
            }
            for (p, n) in tree::snapshot(&e.path(), &opts) {
                out.insert(format!("{name}/{p}"), format!("{n:?}"));
            }
        }
        out
    }
}

fn meta(m: &fs::Metadata) -> String {
    format!(
        "{:o} {}:{} {}",
        m.mode(),
        m.uid(),
        m.gid(),
        if m.is_dir() { 0 } else { m.mtime() }
    )
}

fn chown(p: &Path, u: &User) {
    let o = Command::new("chown")
        .arg("-R")
        .arg(format!("{}:{}", u.uid, u.gid))
        .arg(p)
        .output()
        .unwrap();
    assert!(o.status.success());
}

/// What a build or run showed: success, the `PROBE` lines (or all of stdout for a run), the
/// error lines with the store paths replaced.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    ok: bool,
    probe: Vec<String>,
    errors: Vec<String>,
}

fn outcome(o: &Output, stores: &[&Path], probe_all_stdout: bool) -> Outcome {
    // Scratch dirs in the store have random names.
    let scratch = regex::Regex::new(r"<store>/tmp/[^/ ]+/[^/ ]+/").unwrap();
    let norm = |l: &str| {
        let mut l = l.to_string();
        for s in stores {
            l = l.replace(&s.display().to_string(), "<store>");
        }
        scratch.replace_all(&l, "<store>/tmp/…/").into_owned()
    };
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    let probe = if probe_all_stdout {
        out.lines().map(String::from).collect()
    } else {
        out.lines()
            .chain(err.lines())
            .filter_map(|l| l.split_once(MARK).map(|(_, p)| p.to_string()))
            .collect()
    };
    let errors = err
        .lines()
        .filter(|l| l.starts_with("error") || l.contains("error:"))
        .map(norm)
        .collect();
    Outcome {
        ok: o.status.success(),
        probe,
        errors,
    }
}

/// Pushes `LAB_BASE` plus one gzip layer per tar in `layers` as `localhost:5000/rootless-hostile/NAME:PID`
/// (made as root in a scratch store) and returns the reference.
fn push_image(name: &str, layers: &[Vec<u8>]) -> String {
    use hoist::oci::Digest;
    use std::io::Write;
    let scratch = tempfile::tempdir().unwrap();
    let o = Hoist::new(scratch.path())
        .args(["pull", "-q", LAB_BASE])
        .output();
    assert!(o.status.success(), "pull: {}", text(&o));
    let store = hoist::store::Store::open(scratch.path()).unwrap();
    let base_ref = hoist::registry::ImageRef::parse(LAB_BASE).unwrap();
    let base = store.get_image(&base_ref.to_string()).unwrap().unwrap();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&store.read_blob(&base).unwrap()).unwrap();
    let cfg_digest: Digest = manifest["config"]["digest"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&store.read_blob(&cfg_digest).unwrap()).unwrap();
    for raw in layers {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(raw).unwrap();
        let gz = gz.finish().unwrap();
        let d = store.put_blob(&gz).unwrap();
        manifest["layers"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": d.to_string(), "size": gz.len()
            }));
        cfg["rootfs"]["diff_ids"]
            .as_array_mut()
            .unwrap()
            .push(Digest::of(raw).to_string().into());
        if let Some(hist) = cfg["history"].as_array_mut() {
            hist.push(serde_json::json!({"created_by": format!("hostile layer {name}")}));
        }
    }
    let cfg = serde_json::to_vec(&cfg).unwrap();
    let cd = store.put_blob(&cfg).unwrap();
    manifest["config"]["digest"] = cd.to_string().into();
    manifest["config"]["size"] = cfg.len().into();
    manifest["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
    let md = store
        .put_blob(&serde_json::to_vec(&manifest).unwrap())
        .unwrap();
    let r = format!(
        "localhost:5000/rootless-hostile/{name}:{}",
        std::process::id()
    );
    let full = hoist::registry::ImageRef::parse(&r).unwrap().to_string();
    store.set_image(&full, &md).unwrap();
    let o = Hoist::new(scratch.path()).args(["push", "-q", &r]).output();
    assert!(o.status.success(), "push {r}: {}", text(&o));
    r
}

/// Runs `args` as the user (its store) and as root (a fresh store), checking the home before
/// and after the user's run, and returns both outcomes.
fn both(u: &User, home: &Home, args: &[&str], probe_all_stdout: bool) -> (Outcome, Outcome) {
    let before = home.snapshot();
    let o = home.hoist(u).args(args).output();
    let after = home.snapshot();
    let changed: Vec<_> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .chain(before.keys().filter(|k| !after.contains_key(*k)).cloned())
        .collect();
    assert!(
        changed.is_empty(),
        "{args:?} as the user changed {changed:?} outside its store:\n{}",
        text(&o)
    );
    let user_store = home.dir.join("store");
    let rootless = outcome(&o, &[&user_store], probe_all_stdout);
    let root_store = tempfile::tempdir().unwrap();
    let o = Hoist::new(root_store.path())
        .args(["--insecure-registry", "localhost:5000"])
        .args(args)
        .output();
    let root = outcome(&o, &[root_store.path()], probe_all_stdout);
    assert_eq!(rootless, root, "{args:?}: rootless vs root:\n{}", text(&o));
    (rootless, root)
}

#[test]
fn hostile_layers_clamp_rootless_as_they_do_as_root() {
    if !ready() {
        return;
    }
    let u = hostile_user();
    let home = Home::new(&u);
    let c = home.c();
    let up_c = format!("{UP}{c}");
    let mut fifo = h("p/fifo", b'6');
    fifo.mode = 0o600;
    let mut own = h("own", b'2');
    own.link = format!("{c}/secret").into_bytes();
    own.uid = 4242;
    let mut own2 = h("own2", b'2');
    own2.link = format!("{up_c}/secret").into_bytes();
    own2.uid = 4242;
    let mut chdir = h("q/cdir", b'5');
    chdir.uid = 4242;
    chdir.mode = 0o777;
    let layers = vec![
        Tar::default()
            .file(&format!("{up_c}/dotdot"), b"pwned")
            .end(),
        Tar::default()
            .file(&format!("{c}/absolute"), b"pwned")
            .end(),
        Tar::default()
            .pax(&[("path", format!("{up_c}/pax").as_bytes())])
            .file("harmless", b"pwned")
            .end(),
        Tar::default()
            .symlink("esc", &up_c)
            .file("esc/viarel", b"pwned")
            .end(),
        Tar::default()
            .symlink("esc2", &c)
            .file("esc2/viaabs", b"pwned")
            .end(),
        Tar::default()
            .symlink("s", &format!("{c}/secret"))
            .file("s", b"pwned")
            .end(),
        Tar::default()
            .symlink("a", "b")
            .symlink("b", &c)
            .dir("a/cdir")
            .file("a/cdir/inner", b"pwned")
            .end(),
        Tar::default()
            .dir("d")
            .file("d/f", b"ok")
            .symlink("d", &c)
            .file("d/secret", b"pwned")
            .dir("d/cdir")
            .end(),
        Tar::default()
            .symlink("x", &format!("{c}/cdir"))
            .dir("x")
            .file("x/inner", b"pwned")
            .end(),
        Tar::default().raw(&own, b"").raw(&own2, b"").end(),
        Tar::default().symlink("p", &c).raw(&fifo, b"").end(),
        Tar::default().symlink("q", &c).raw(&chdir, b"").end(),
    ];
    let image = push_image("clamp", &layers);
    // The pull as the user writes only its store, and gives root's digest.
    let (pulled, _) = both(&u, &home, &["pull", "-q", &image], true);
    assert!(pulled.ok, "rootless pull: {pulled:?}");
    let probe = format!(
        "cd / && for p in .{c} esc esc2 s a b d x own own2 p q; do \
         find \"$p\" | sort | while read f; do \
         if [ -L \"$f\" ]; then echo \"$f $(stat -c '%F %u:%g %a' \"$f\") $(readlink \"$f\")\"; \
         elif [ -f \"$f\" ]; then echo \"$f $(stat -c '%F %u:%g %a' \"$f\") $(cat \"$f\")\"; \
         else echo \"$f $(stat -c '%F %u:%g %a' \"$f\")\"; fi; done; done"
    );
    let (rootless, _) = both(&u, &home, &["run", &image, "sh", "-c", &probe], true);
    assert!(rootless.ok, "{rootless:?}");
    let lines = rootless.probe.join("\n");
    // Every write landed inside the image, at the canary's path re-rooted there.
    for name in ["dotdot", "absolute", "pax", "viarel", "viaabs", "secret"] {
        assert!(
            lines.contains(&format!(".{c}/{name} regular file 0:0 644 pwned")),
            "{name}:\n{lines}"
        );
    }
    assert!(
        lines.contains(&format!(".{c}/cdir directory 4242:0 777")),
        "{lines}"
    );
    assert!(
        lines.contains(&format!(".{c}/fifo fifo 0:0 600")),
        "{lines}"
    );
    assert!(
        lines.contains(&format!("own symbolic link 4242:0 777 {c}/secret")),
        "{lines}"
    );
}

#[test]
fn hostile_layers_are_rejected_rootless_as_they_are_as_root() {
    if !ready() {
        return;
    }
    let u = hostile_user();
    let home = Home::new(&u);
    let c = home.c();
    let up_c = format!("{UP}{c}");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "hardlink-out",
            Tar::default()
                .hardlink("hl", &format!("{up_c}/secret"))
                .end(),
            "hardlink",
        ),
        (
            "hardlink-via-symlink",
            Tar::default()
                .symlink("sl", "/")
                .hardlink("hl", &format!("sl{c}/secret"))
                .end(),
            "hardlink",
        ),
        (
            "root-symlink",
            Tar::default().symlink(".", &c).end(),
            "root",
        ),
        (
            "opaque-root-dotdot",
            Tar::default().file("../.wh..wh..opq", b"").end(),
            "whiteout",
        ),
        (
            "symlink-loop",
            Tar::default()
                .symlink("loop1", "loop2")
                .symlink("loop2", "loop1")
                .file("loop1/y", b"pwned")
                .end(),
            "",
        ),
    ];
    fs::write(
        home.dir.join("ctx/Dockerfile"),
        "ARG IMG\nFROM $IMG\nRUN echo PRO\"\"BE: extracted\n",
    )
    .unwrap();
    chown(&home.dir.join("ctx"), &u);
    let ctx = home.dir.join("ctx").display().to_string();
    for (name, tar, word) in cases {
        let image = push_image(name, &[tar]);
        let arg = format!("IMG={image}");
        let (rootless, _) = both(
            &u,
            &home,
            &["build", "--progress", "plain", "--build-arg", &arg, &ctx],
            false,
        );
        assert!(!rootless.ok, "{name}: {rootless:?}");
        let e = rootless.errors.join("\n");
        assert!(e.contains(word), "{name}: {e}");
    }
}

/// A context with links out of it (to the user's canary), `..` chains, an absolute link, a
/// link loop and a hostile tar for ADD.
fn hostile_context(home: &Home, u: &User) {
    let ctx = home.dir.join("ctx");
    let c = home.c();
    fs::write(ctx.join("a.txt"), "A").unwrap();
    fs::create_dir_all(ctx.join("etc")).unwrap();
    fs::write(ctx.join("etc/passwd"), "fake").unwrap();
    fs::create_dir_all(ctx.join("dir")).unwrap();
    fs::write(ctx.join("dir/f"), "f").unwrap();
    symlink(format!("{c}/secret"), ctx.join("dir/l")).unwrap();
    symlink(format!("{c}/secret"), ctx.join("leak")).unwrap();
    symlink(&c, ctx.join("d")).unwrap();
    symlink("../../../../../../../..", ctx.join("up")).unwrap();
    symlink("loop2", ctx.join("loop1")).unwrap();
    symlink("loop1", ctx.join("loop2")).unwrap();
    let mut hard = h("hard", b'1');
    hard.link = b"../../canary/secret".to_vec();
    let evil = Tar::default()
        .file("../../escape", b"x")
        .file(&format!("{c}/abs"), b"y")
        .symlink("lnk", &c)
        .file("lnk/secret", b"overwritten")
        .raw(&hard, b"")
        .end();
    fs::write(ctx.join("evil.tar"), evil).unwrap();
    let files = [
        (
            "Dockerfile.clamp",
            format!(
                "FROM {LAB_BASE}
RUN ln -s {UP}{c} /evil && ln -s {c} /evil2
COPY ../../etc/passwd /p
COPY up/a.txt /a
COPY dir /x/
COPY a.txt /evil/x
COPY a.txt /evil2/y
RUN --mount=type=bind,source=up,target=/m,rw touch /m/written-by-run && ls /m > /bind-list
RUN (cat /p; echo; cat /a; echo; readlink /x/l; cat {c}/x {c}/y; echo; cat /bind-list) | sed \"s/^/PRO\"\"BE: /\"
"
            ),
        ),
        ("Dockerfile.leak", format!("FROM {LAB_BASE}\nCOPY leak /x\n")),
        (
            "Dockerfile.linkdir",
            format!("FROM {LAB_BASE}\nCOPY d/secret /s\n"),
        ),
        ("Dockerfile.loop", format!("FROM {LAB_BASE}\nCOPY loop1 /l\n")),
        (
            "Dockerfile.bind",
            format!(
                "FROM {LAB_BASE}\nRUN --mount=type=bind,source=d,target=/m,rw cat /m/secret; echo x > /m/secret\n"
            ),
        ),
        (
            "Dockerfile.add",
            format!(
                "FROM {LAB_BASE}\nADD evil.tar /u/\nRUN find /u | sort | sed \"s/^/PRO\"\"BE: /\"\n"
            ),
        ),
    ];
    for (name, body) in files {
        fs::write(ctx.join(name), body).unwrap();
    }
    chown(&ctx, u);
}

#[test]
fn hostile_contexts_stay_inside_rootless_as_they_do_as_root() {
    if !ready() {
        return;
    }
    let u = hostile_user();
    let home = Home::new(&u);
    hostile_context(&home, &u);
    let c = home.c();
    let ctx = home.dir.join("ctx").display().to_string();
    let build = |file: &str| {
        let f = format!("{ctx}/{file}");
        both(
            &u,
            &home,
            &["build", "--progress", "plain", "-f", &f, &ctx],
            false,
        )
        .0
    };
    let clamp = build("Dockerfile.clamp");
    assert!(clamp.ok, "{clamp:?}");
    let p = clamp.probe.join("\n");
    assert!(p.starts_with("fake\nA\n"), "{p}");
    assert!(p.contains(&format!("{c}/secret\nAA\n")), "{p}");
    assert!(p.contains("written-by-run"), "{p}");
    for file in ["Dockerfile.leak", "Dockerfile.linkdir", "Dockerfile.loop"] {
        let o = build(file);
        assert!(!o.ok, "{file}: {o:?}");
    }
    // These may fail or clamp; `both` checked they do the same as root and stayed inside.
    build("Dockerfile.bind");
    build("Dockerfile.add");
}

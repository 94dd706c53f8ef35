//! Hostile layer corpus (issue 7): raw tar headers written by hand, extracted as root into a
//! dest dir that has a canary directory beside it. Whatever the outcome (error or success),
//! the canary's contents, modes, owners and times, the dest's siblings and the mount table
//! must not change; where the expected outcome is known it is asserted too.

#[path = "fixtures/layers/common.rs"]
mod common;

#[path = "common/rawtar.rs"]
mod rawtar;

use common::{SnapOpts, mountinfo, snapshot};
use hoist::layers::{self, DecompressHint, ExtractLimits, ExtractMode, LayersError};
use rawtar::{Tar, h};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

// ------------------------------------------------------------ the harness

struct Arena {
    _t: tempfile::TempDir,
    top: PathBuf,
    dest: PathBuf,
    canary: PathBuf,
}

fn arena() -> Arena {
    let t = tempfile::tempdir().unwrap();
    let top = t.path().to_path_buf();
    let dest = top.join("dest");
    let canary = top.join("canary");
    fs::create_dir(&dest).unwrap();
    fs::create_dir_all(canary.join("cdir")).unwrap();
    fs::write(canary.join("secret"), "canary").unwrap();
    fs::set_permissions(canary.join("secret"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::write(canary.join("cdir/inner"), "inner").unwrap();
    symlink("secret", canary.join("slink")).unwrap();
    Arena {
        _t: t,
        top,
        dest,
        canary,
    }
}

fn sibling_names(top: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(top)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Extracts `tar` in `mode` and checks the canary invariants; returns the result.
fn run_case(
    name: &str,
    tar: &[u8],
    mode: ExtractMode,
    limits: &ExtractLimits,
) -> (Arena, Result<layers::ExtractStats, LayersError>) {
    let a = arena();
    let opts = SnapOpts {
        dir_mtimes: true,
        inode_groups: true,
    };
    let canary_before = snapshot(&a.canary, &opts);
    let canary_dir_meta = fs::symlink_metadata(&a.canary).unwrap();
    let r = layers::extract_with_limits(tar, &a.dest, mode, limits);
    assert_eq!(
        snapshot(&a.canary, &opts),
        canary_before,
        "case {name}: canary changed ({r:?})"
    );
    let after = fs::symlink_metadata(&a.canary).unwrap();
    assert_eq!(
        (after.mode(), after.uid(), after.mtime()),
        (
            canary_dir_meta.mode(),
            canary_dir_meta.uid(),
            canary_dir_meta.mtime()
        ),
        "case {name}"
    );
    assert_eq!(
        sibling_names(&a.top),
        vec!["canary", "dest"],
        "case {name}: something appeared beside dest"
    );
    assert!(
        fs::symlink_metadata(&a.dest).unwrap().is_dir(),
        "case {name}: dest changed type"
    );
    // Other processes may mount meanwhile; nothing may be mounted at or under the arena.
    let top = a.top.display().to_string();
    assert!(
        !mountinfo().lines().any(|l| l.contains(&top)),
        "case {name}: a mount appeared under {top}"
    );
    (a, r)
}

fn layer(name: &str, tar: &[u8]) -> (Arena, Result<layers::ExtractStats, LayersError>) {
    run_case(name, tar, ExtractMode::Layer, &ExtractLimits::default())
}

fn expect_rejected(name: &str, tar: &[u8]) -> String {
    let (_a, r) = layer(name, tar);
    match r {
        Ok(s) => panic!("case {name}: expected an error, extracted {s:?}"),
        Err(e) => e.to_string(),
    }
}

// ------------------------------------------------------------ cases

#[test]
fn dotdot_and_absolute_names_are_clamped_inside_dest() {
    for (name, path) in [
        ("dotdot", "../canary/secret"),
        ("deep-dotdot", "a/../../../../canary/secret"),
        ("absolute", "/canary/secret"),
        ("abs-dotdot", "/../../canary/secret"),
    ] {
        let tar = Tar::default().file(path, b"pwned").end();
        let (a, r) = layer(name, &tar);
        r.unwrap();
        assert_eq!(
            fs::read_to_string(a.dest.join("canary/secret")).unwrap(),
            "pwned",
            "{name}"
        );
    }
    // The same through a PAX path and a GNU long name.
    let pax = Tar::default()
        .pax(&[("path", b"../../canary/secret")])
        .file("harmless", b"pwned")
        .end();
    let (a, r) = layer("pax-dotdot", &pax);
    r.unwrap();
    assert_eq!(
        fs::read_to_string(a.dest.join("canary/secret")).unwrap(),
        "pwned"
    );
    let gnu = Tar::default()
        .gnu_long(b'L', b"../../../canary/secret")
        .file("harmless", b"pwned")
        .end();
    let (a, r) = layer("gnu-dotdot", &gnu);
    r.unwrap();
    assert_eq!(
        fs::read_to_string(a.dest.join("canary/secret")).unwrap(),
        "pwned"
    );
}

#[test]
fn symlinks_never_lead_writes_outside() {
    let a0 = arena();
    let abs_canary = a0.canary.display().to_string();
    drop(a0);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "relative-symlink-dir",
            Tar::default()
                .symlink("esc", "../canary")
                .file("esc/secret", b"pwned")
                .end(),
        ),
        (
            "absolute-symlink-dir",
            Tar::default()
                .symlink("esc", &abs_canary)
                .file("esc/secret", b"pwned")
                .end(),
        ),
        (
            "symlink-to-root-dotdot",
            Tar::default()
                .symlink("up", "../../../..")
                .file("up/canary/secret", b"pwned")
                .end(),
        ),
        (
            "overwrite-symlink-file",
            Tar::default()
                .symlink("s", "../canary/secret")
                .file("s", b"pwned")
                .end(),
        ),
        (
            "symlink-chain",
            Tar::default()
                .symlink("a", "b")
                .symlink("b", "../canary")
                .dir("a/cdir")
                .file("a/cdir/inner", b"pwned")
                .end(),
        ),
        (
            "dir-swap",
            Tar::default()
                .dir("d")
                .file("d/f", b"ok")
                .symlink("d", "../canary")
                .file("d/secret", b"pwned")
                .dir("d/cdir")
                .end(),
        ),
        (
            "symlink-then-dir-entry",
            Tar::default()
                .symlink("x", "../canary/cdir")
                .dir("x")
                .file("x/inner", b"pwned")
                .end(),
        ),
        ("symlink-owner", {
            let mut s = h("own", b'2');
            s.link = b"../canary/secret".to_vec();
            s.uid = 4242;
            s.mode = 0o777;
            Tar::default().raw(&s, b"").end()
        }),
        (
            "whiteout-through-symlink",
            Tar::default()
                .symlink("w", "../canary")
                .file("w/.wh.secret", b"")
                .file("w/.wh..wh..opq", b"")
                .end(),
        ),
        ("device-through-symlink", {
            let mut c = h("p/null", b'3');
            c.major = 1;
            c.minor = 3;
            Tar::default().symlink("p", "../canary").raw(&c, b"").end()
        }),
        (
            "replace-dir-holding-escape-link",
            Tar::default()
                .dir("d")
                .symlink("d/s", "../../canary")
                .symlink("d/t", &abs_canary)
                .file("d", b"now a file")
                .end(),
        ),
    ];
    for (name, tar) in cases {
        let (a, r) = layer(name, &tar);
        if name == "overwrite-symlink-file" {
            r.as_ref().unwrap();
            assert!(fs::symlink_metadata(a.dest.join("s")).unwrap().is_file());
        }
        if name == "symlink-owner" {
            r.as_ref().unwrap();
            assert_eq!(
                fs::symlink_metadata(a.dest.join("own")).unwrap().uid(),
                4242
            );
        }
        if name == "replace-dir-holding-escape-link" {
            r.as_ref().unwrap();
            assert_eq!(fs::read_to_string(a.dest.join("d")).unwrap(), "now a file");
        }
        if name == "absolute-symlink-dir" {
            // Either refused or written inside dest, never into the real canary.
            if r.is_ok() {
                assert!(
                    a.dest
                        .join(abs_canary.trim_start_matches('/'))
                        .join("secret")
                        .exists()
                );
            }
        }
    }
}

#[test]
fn hardlinks_must_target_files_extracted_earlier() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "outside-relative",
            Tar::default().hardlink("h", "../canary/secret").end(),
        ),
        (
            "outside-absolute",
            Tar::default().hardlink("h", "/etc/passwd").end(),
        ),
        (
            "via-symlink",
            Tar::default()
                .symlink("s", "/")
                .hardlink("h", "s/etc/passwd")
                .end(),
        ),
        (
            "to-symlink",
            Tar::default()
                .symlink("s", "../canary/secret")
                .hardlink("h", "s")
                .end(),
        ),
        ("to-dir", Tar::default().dir("d").hardlink("h", "d").end()),
        (
            "to-self",
            Tar::default().file("f", b"x").hardlink("f", "f").end(),
        ),
        (
            "pax-linkpath",
            Tar::default()
                .file("f", b"x")
                .pax(&[("linkpath", b"../canary/secret")])
                .hardlink("h", "f")
                .end(),
        ),
        (
            "target-swapped-for-symlink",
            Tar::default()
                .file("f", b"x")
                .symlink("f", "../canary/secret")
                .hardlink("h", "f")
                .end(),
        ),
    ];
    for (name, tar) in cases {
        let e = expect_rejected(name, &tar);
        assert!(e.contains("hardlink"), "{name}: {e}");
    }
    // A good hardlink, then a write to the link name replaces it without touching the target.
    let tar = Tar::default()
        .file("f", b"one")
        .hardlink("g", "f")
        .file("g", b"two")
        .end();
    let (a, r) = layer("relink", &tar);
    assert_eq!(r.unwrap().hardlinks, 1);
    assert_eq!(fs::read_to_string(a.dest.join("f")).unwrap(), "one");
    assert_eq!(fs::read_to_string(a.dest.join("g")).unwrap(), "two");
}

#[test]
fn whiteout_abuse_is_rejected() {
    for (name, path) in [
        ("wh-empty", ".wh."),
        ("wh-dot", ".wh.."),
        ("wh-dotdot", ".wh..."),
        ("wh-nested-dotdot", "sub/.wh..."),
        ("opaque-root", ".wh..wh..opq"),
        ("opaque-root-dotdot", "../.wh..wh..opq"),
        ("opaque-root-abs", "/.wh..wh..opq"),
    ] {
        let e = expect_rejected(name, &Tar::default().file(path, b"").end());
        assert!(e.contains("whiteout"), "{name}: {e}");
    }
    let e = expect_rejected("wh-as-dir", &Tar::default().dir(".wh.x").end());
    assert!(e.contains("whiteout"), "{e}");
    // A whiteout that clamps to a name in dest is fine and stays inside.
    let (a, r) = layer(
        "wh-clamped",
        &Tar::default().file("../.wh.canary", b"").end(),
    );
    r.unwrap();
    let m = fs::symlink_metadata(a.dest.join("canary")).unwrap();
    assert_eq!(m.rdev(), 0);
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &m.file_type()
    ));
}

#[test]
fn the_root_never_changes_type() {
    for (name, tar) in [
        (
            "root-symlink",
            Tar::default().symlink(".", "../canary").end(),
        ),
        ("root-symlink-slash", Tar::default().symlink("/", "/").end()),
        ("root-file", Tar::default().file("./", b"x").end()),
        ("root-file-dotdot", Tar::default().file("..", b"x").end()),
        (
            "root-hardlink",
            Tar::default().file("f", b"x").hardlink(".", "f").end(),
        ),
    ] {
        let e = expect_rejected(name, &tar);
        assert!(e.contains("root"), "{name}: {e}");
    }
    // A root directory entry only changes the root's metadata.
    let (a, r) = layer("root-dir", &Tar::default().dir("./").end());
    r.unwrap();
    assert_eq!(fs::metadata(&a.dest).unwrap().mode() & 0o7777, 0o755);
}

#[test]
fn header_tricks_are_rejected() {
    let mut desync = h("f", b'0');
    desync.size = 5;
    let desync = Tar::default()
        .pax(&[("size", b"1536")])
        .raw(&desync, b"hello")
        .file("other", b"x")
        .end();
    let e = expect_rejected("pax-size-desync", &desync);
    assert!(e.contains("disagrees"), "{e}");

    let huge_pax = Tar::default()
        .pax(&[("comment", &vec![b'a'; 2 << 20])])
        .file("f", b"")
        .end();
    let e = expect_rejected("pax-too-big", &huge_pax);
    assert!(e.contains("PAX header size"), "{e}");

    let two_pax = Tar::default()
        .pax(&[("path", b"a")])
        .pax(&[("path", b"b")])
        .file("f", b"")
        .end();
    assert!(expect_rejected("two-pax", &two_pax).contains("two PAX"));

    let both = Tar::default()
        .pax(&[("path", b"a")])
        .gnu_long(b'L', b"b")
        .file("f", b"")
        .end();
    assert!(expect_rejected("pax-and-gnu", &both).contains("ambiguous"));

    let long = Tar::default()
        .gnu_long(b'L', &vec![b'a'; 10_000])
        .file("f", b"")
        .end();
    assert!(expect_rejected("gnu-long-too-long", &long).contains("limit"));

    let mut dir_with_data = h("d", b'5');
    dir_with_data.size = 512;
    let t = Tar::default().raw(&dir_with_data, &[b'A'; 512]).end();
    assert!(expect_rejected("dir-with-data", &t).contains("ambiguous"));

    let mut neg = h("f", b'0');
    neg.size_field = Some(vec![0xff; 12]);
    assert!(
        expect_rejected("negative-size", &Tar::default().raw(&neg, b"").end()).contains("size")
    );

    let mut sparse = h("f", b'S');
    sparse.size = 0;
    assert!(
        expect_rejected("gnu-sparse", &Tar::default().raw(&sparse, b"").end()).contains("sparse")
    );

    let reserved = Tar::default()
        .pax(&[("SCHILY.xattr.trusted.overlay.opaque", b"y")])
        .dir("d")
        .end();
    assert!(expect_rejected("overlay-xattr", &reserved).contains("overlay"));

    let nul = Tar::default()
        .pax(&[("path", b"a\0b")])
        .file("f", b"")
        .end();
    assert!(expect_rejected("nul-in-name", &nul).contains("NUL"));

    let mut truncated = Tar::default().file("f", &[1u8; 4000]).end();
    truncated.truncate(2048);
    assert!(expect_rejected("truncated", &truncated).contains("truncated"));

    let mut bad_sum = Tar::default().file("f", b"x").end();
    bad_sum[0] = b'g';
    assert!(expect_rejected("bad-checksum", &bad_sum).contains("checksum"));

    let mut unknown = h("f", b'Z');
    unknown.size = 0;
    assert!(
        expect_rejected("unknown-type", &Tar::default().raw(&unknown, b"").end())
            .contains("unsupported")
    );
}

#[test]
fn sizes_and_counts_are_capped() {
    // A header claiming 1 TiB of data.
    let mut big = h("f", b'0');
    big.size_field = Some({
        let mut f = vec![0x80u8; 1];
        f.extend_from_slice(&[0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0, 0]);
        f
    });
    let e = expect_rejected("huge-size", &Tar::default().raw(&big, b"").end());
    assert!(e.contains("uncompressed layer size"), "{e}");

    let small = ExtractLimits {
        max_entries: 10,
        max_total_bytes: 1 << 20,
        ..ExtractLimits::default()
    };
    let mut many = Tar::default();
    for i in 0..11 {
        many.file(&format!("f{i}"), b"");
    }
    let (_a, r) = run_case("too-many-entries", &many.end(), ExtractMode::Layer, &small);
    assert!(r.unwrap_err().to_string().contains("number of entries"));

    let (_a, r) = run_case(
        "too-many-bytes",
        &Tar::default().file("f", &vec![0u8; 2 << 20]).end(),
        ExtractMode::Layer,
        &small,
    );
    assert!(
        r.unwrap_err()
            .to_string()
            .contains("uncompressed layer size")
    );

    let deep = "d/".repeat(3000);
    let e = expect_rejected(
        "path-too-long",
        &Tar::default()
            .pax(&[("path", deep.as_bytes())])
            .file("f", b"")
            .end(),
    );
    assert!(e.contains("path length"), "{e}");

    // A gzip bomb: 16 MiB of zeros in a ~16 KiB blob, with a 100:1 ratio cap.
    let mut bomb = Tar::default();
    let mut x = h("zeros", b'0');
    x.size = 16 << 20;
    bomb.raw(&x, &vec![0u8; 16 << 20]);
    let plain = bomb.end();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    let a = arena();
    let before = snapshot(
        &a.canary,
        &SnapOpts {
            dir_mtimes: true,
            inode_groups: true,
        },
    );
    let limits = ExtractLimits {
        max_ratio: Some(100),
        ..ExtractLimits::default()
    };
    let e = layers::unpack_with_limits(
        &gz[..],
        DecompressHint::Sniff,
        &a.dest,
        ExtractMode::Archive,
        &limits,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("decompression ratio"), "{e}");
    assert_eq!(
        snapshot(
            &a.canary,
            &SnapOpts {
                dir_mtimes: true,
                inode_groups: true
            }
        ),
        before
    );
}

#[test]
fn type_flips_replace_entries_per_oci_rules() {
    let tar = Tar::default()
        .file("x", b"file")
        .dir("x")
        .file("x/in", b"in")
        .symlink("x", "../canary")
        .dir("x")
        .file("y", b"y")
        .dir("y")
        .dir("y")
        .file("z/deep/f", b"implicit parents")
        .end();
    let (a, r) = layer("type-flips", &tar);
    r.unwrap();
    assert!(fs::symlink_metadata(a.dest.join("x")).unwrap().is_dir());
    assert!(
        !a.dest.join("x/in").exists(),
        "the symlink replaced the old dir, the new dir is empty"
    );
    assert!(fs::symlink_metadata(a.dest.join("y")).unwrap().is_dir());
    assert_eq!(
        fs::read_to_string(a.dest.join("z/deep/f")).unwrap(),
        "implicit parents"
    );
}

#[test]
fn setuid_devices_and_capabilities_are_kept() {
    let mut suid = h("bin/su", b'0');
    suid.mode = 0o4755;
    suid.size = 2;
    let mut dev = h("dev/null", b'3');
    dev.major = 1;
    dev.minor = 3;
    dev.mode = 0o666;
    let cap: &[u8] = &[
        0x01, 0, 0, 0x02, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let tar = Tar::default()
        .dir("bin")
        .raw(&suid, b"#!")
        .pax(&[("SCHILY.xattr.security.capability", cap)])
        .file("bin/ping", b"p")
        .dir("dev")
        .raw(&dev, b"")
        .end();
    let (a, r) = layer("setuid", &tar);
    let s = r.unwrap();
    assert_eq!(s.specials, 1);
    assert_eq!(
        fs::metadata(a.dest.join("bin/su")).unwrap().mode() & 0o7777,
        0o4755
    );
    assert_eq!(
        fs::symlink_metadata(a.dest.join("dev/null"))
            .unwrap()
            .rdev(),
        rustix::fs::makedev(1, 3)
    );
    let mut buf = [0u8; 64];
    let n = rustix::fs::getxattr(
        a.dest.join("bin/ping").as_path(),
        "security.capability",
        &mut buf[..],
    )
    .unwrap();
    assert_eq!(&buf[..n], cap);
}

// ------------------------------------------------------------ generated corpus

mod generated {
    use super::*;
    use proptest::prelude::*;

    /// Path pieces chosen to collide: escapes, whiteouts, the canary's real path.
    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("..".to_string()),
            Just(".".to_string()),
            Just("canary".to_string()),
            Just("secret".to_string()),
            Just("cdir".to_string()),
            Just(".wh.a".to_string()),
            Just(".wh..wh..opq".to_string()),
            Just(".wh..".to_string()),
            Just("".to_string()),
        ]
    }

    fn path() -> impl Strategy<Value = String> {
        (any::<bool>(), proptest::collection::vec(piece(), 1..5)).prop_map(|(abs, parts)| {
            let p = parts.join("/");
            if abs { format!("/{p}") } else { p }
        })
    }

    #[derive(Debug, Clone)]
    enum Op {
        File(String),
        Dir(String),
        Symlink(String, String),
        Hardlink(String, String),
        Fifo(String),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            path().prop_map(Op::File),
            path().prop_map(Op::Dir),
            (path(), path()).prop_map(|(a, b)| Op::Symlink(a, b)),
            (path(), path()).prop_map(|(a, b)| Op::Hardlink(a, b)),
            path().prop_map(Op::Fifo),
        ]
    }

    fn build(ops: &[Op], canary_abs: &str) -> Vec<u8> {
        let mut t = Tar::default();
        for o in ops {
            match o {
                Op::File(p) => t.file(p, b"pwned"),
                Op::Dir(p) => t.dir(p),
                Op::Symlink(p, target) => {
                    // Some links point at the canary's real absolute path.
                    let target = if let Some(rest) = target.strip_prefix("/canary") {
                        format!("{canary_abs}{rest}")
                    } else {
                        target.clone()
                    };
                    t.symlink(p, &target)
                }
                Op::Hardlink(p, target) => t.hardlink(p, target),
                Op::Fifo(p) => t.raw(&h(p, b'6'), b""),
            };
        }
        t.end()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn generated_archives_never_touch_the_canary(ops in proptest::collection::vec(op(), 1..12), archive in any::<bool>()) {
            let probe = arena();
            let canary_abs = probe.canary.display().to_string();
            drop(probe);
            let tar = build(&ops, &canary_abs);
            let mode = if archive { ExtractMode::Archive } else { ExtractMode::Layer };
            // run_case asserts the invariants; the result itself may be an error.
            let _ = run_case("generated", &tar, mode, &ExtractLimits::default());
        }

        #[test]
        fn mutated_archives_never_panic_or_escape(flips in proptest::collection::vec((0usize..6144, any::<u8>()), 1..8), cut in proptest::option::of(0usize..6144)) {
            let mut tar = Tar::default()
                .dir("d")
                .symlink("d/up", "../../canary")
                .file("d/f", &[b'x'; 700])
                .hardlink("d/g", "d/f")
                .pax(&[("path", b"d/long"), ("SCHILY.xattr.user.k", b"v")])
                .file("ignored", b"pax")
                .symlink("abs", "/canary")
                .file("abs/secret", b"pwned")
                .end();
            for (i, b) in flips {
                if i < tar.len() {
                    tar[i] = b;
                }
            }
            if let Some(c) = cut {
                tar.truncate(c.min(tar.len()));
            }
            let _ = run_case("mutated", &tar, ExtractMode::Layer, &ExtractLimits::default());
        }
    }
}

#[test]
fn absolute_and_overlong_symlinks_resolve_inside_dest_like_real_images() {
    let tar = Tar::default()
        .dir("run")
        .dir("usr/lib")
        .dir("var")
        .symlink("var/run", "/run")
        .symlink("lib", "../../../../usr/lib")
        .file("var/run/pid", b"1")
        .file("lib/libc.so", b"elf")
        .end();
    let (a, r) = layer("real-image-links", &tar);
    r.unwrap();
    assert_eq!(fs::read_to_string(a.dest.join("run/pid")).unwrap(), "1");
    assert_eq!(
        fs::read_to_string(a.dest.join("usr/lib/libc.so")).unwrap(),
        "elf"
    );
    assert_eq!(
        fs::read_link(a.dest.join("var/run")).unwrap(),
        Path::new("/run"),
        "link targets are kept verbatim"
    );
}

#[test]
fn writes_through_dangling_symlinks_create_the_target_inside_dest_as_containerd() {
    // containerd creates the resolved parent; so do we, always inside dest (the absolute and
    // `..`-heavy targets are clamped), and a symlink loop is an error, not a hang.
    let tar = Tar::default()
        .dir("var")
        .symlink("var/run", "/run/sub")
        .symlink("up", "../../../../elsewhere")
        .file("var/run/pid", b"1")
        .file("up/x", b"2")
        .symlink("loop1", "loop2")
        .symlink("loop2", "loop1")
        .file("loop1/y", b"3")
        .end();
    let (a, r) = layer("dangling-links", &tar);
    assert!(r.is_err(), "the loop must fail");
    assert_eq!(fs::read_to_string(a.dest.join("run/sub/pid")).unwrap(), "1");
    assert_eq!(fs::read_to_string(a.dest.join("elsewhere/x")).unwrap(), "2");
}

//! COPY/ADD rules, one test each: in-root resolution (escape attempts), destinations,
//! wildcards, ignore/exclude, --parents, ownership, modes, times, hardlinks, heredocs, ADD
//! archives and URLs, content keys and the hash cache, stdin contexts.

mod common;

use common::git::git;
use hoist::copy::{self, CopyError, CopyRequest, CopySource, HashCache, content_key, context};
use hoist::parser::dockerignore::Matcher;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

struct T {
    _tmp: tempfile::TempDir,
    ctx: PathBuf,
    image: PathBuf,
    out: PathBuf,
    canary: PathBuf,
}

fn setup() -> T {
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| {
        let d = tmp.path().join(n);
        fs::create_dir(&d).unwrap();
        d
    };
    let (ctx, image, out, canary) = (p("ctx"), p("image"), p("out"), p("canary"));
    fs::write(canary.join("secret"), "host secret").unwrap();
    T {
        ctx,
        image,
        out,
        canary,
        _tmp: tmp,
    }
}

impl T {
    fn file(&self, rel: &str, content: &str) {
        let p = self.ctx.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    fn copy(&self, r: CopyRequest) -> Result<(), CopyError> {
        self.copy_ign(r, "")
    }
    fn copy_ign(&self, r: CopyRequest, ignore: &str) -> Result<(), CopyError> {
        let m = Matcher::parse(ignore).unwrap();
        copy::apply(
            &CopySource::Context {
                root: &self.ctx,
                ignore: &m,
            },
            &r,
            &self.image,
            &self.out,
        )
    }
    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.out.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }
    fn canary_intact(&self) {
        let names: Vec<_> = fs::read_dir(&self.canary)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "canary dir changed: {names:?}");
        assert_eq!(
            fs::read_to_string(self.canary.join("secret")).unwrap(),
            "host secret"
        );
    }
}

fn req(sources: &[&str], dest: &str) -> CopyRequest {
    CopyRequest {
        sources: sources.iter().map(|s| s.to_string()).collect(),
        dest: dest.into(),
        ..Default::default()
    }
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

// ---- escapes ------------------------------------------------------------------------------

#[test]
fn absolute_symlink_in_context_is_resolved_inside_it() {
    let t = setup();
    symlink(t.canary.join("secret"), t.ctx.join("leak")).unwrap();
    let e = t.copy(req(&["leak"], "/x")).unwrap_err();
    assert!(matches!(e, CopyError::NotFound { .. }), "{e}");
    // the same absolute path, re-rooted, inside the context is what gets copied
    let inside = t.ctx.join(t.canary.strip_prefix("/").unwrap());
    fs::create_dir_all(&inside).unwrap();
    fs::write(inside.join("secret"), "context copy").unwrap();
    t.copy(req(&["leak"], "/x")).unwrap();
    assert_eq!(t.read("x"), "context copy");
    t.canary_intact();
}

#[test]
fn dotdot_sources_are_clamped_at_the_root() {
    let t = setup();
    let e = t.copy(req(&["../../etc/passwd"], "/p")).unwrap_err();
    assert!(e.to_string().contains("\"/etc/passwd\": not found"), "{e}");
    t.file("etc/passwd", "fake");
    t.copy(req(&["../../etc/passwd"], "/p")).unwrap();
    assert_eq!(t.read("p"), "fake");
}

#[test]
fn symlinked_directory_pointing_outside_is_followed_only_inside() {
    let t = setup();
    symlink(&t.canary, t.ctx.join("d")).unwrap();
    symlink("../../../../../..", t.ctx.join("up")).unwrap();
    assert!(t.copy(req(&["d/secret"], "/s")).is_err());
    assert!(t.copy(req(&["up/canary/secret"], "/s")).is_err());
    // `up` resolves to the context root itself
    t.file("a.txt", "A");
    t.copy(req(&["up/a.txt"], "/a")).unwrap();
    assert_eq!(t.read("a"), "A");
    assert!(!t.out.join("s").exists());
    t.canary_intact();
}

#[test]
fn symlinks_inside_a_copied_directory_stay_links() {
    let t = setup();
    t.file("dir/f", "f");
    symlink(t.canary.join("secret"), t.ctx.join("dir/l")).unwrap();
    t.copy(req(&["dir"], "/x/")).unwrap();
    let l = t.out.join("x/l");
    assert!(fs::symlink_metadata(&l).unwrap().file_type().is_symlink());
    assert_eq!(fs::read_link(&l).unwrap(), t.canary.join("secret"));
}

#[test]
fn destination_through_image_symlink_stays_in_the_layer() {
    let t = setup();
    t.file("a.txt", "A");
    // the image has evil -> ../canary (relative, escaping) and var/run -> /run
    symlink("../../../canary", t.image.join("evil")).unwrap();
    fs::create_dir_all(t.image.join("var")).unwrap();
    fs::create_dir(t.image.join("run")).unwrap();
    fs::set_permissions(t.image.join("run"), fs::Permissions::from_mode(0o710)).unwrap();
    symlink("/run", t.image.join("var/run")).unwrap();
    t.copy(req(&["a.txt"], "/evil/x")).unwrap();
    t.copy(req(&["a.txt"], "/var/run/y")).unwrap();
    t.canary_intact();
    assert_eq!(t.read("canary/x"), "A"); // clamped: /canary inside the layer
    assert_eq!(t.read("run/y"), "A");
    assert_eq!(
        mode(&t.out.join("run")),
        0o710,
        "parent mirrored from the image"
    );
    assert!(!t.out.join("var").exists());
}

#[test]
fn hostile_tar_in_add_stays_in_the_layer() {
    let t = setup();
    // an archive with ../ names, an absolute name, and a symlink then a write through it
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, typ: tar::EntryType, link: Option<&Path>, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(typ);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        // raw names: bypass tar-rs path checks like an attacker would
        let bytes = name.as_bytes();
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        h.set_cksum();
        b.append(&h, data).unwrap();
    };
    add("../../escape", tar::EntryType::Regular, None, b"x");
    add("/abs", tar::EntryType::Regular, None, b"y");
    add("lnk", tar::EntryType::Symlink, Some(&t.canary), b"");
    add("lnk/secret", tar::EntryType::Regular, None, b"overwritten");
    add(
        "hard",
        tar::EntryType::Link,
        Some(Path::new("../../canary/secret")),
        b"",
    );
    fs::write(t.ctx.join("evil.tar"), b.into_inner().unwrap()).unwrap();
    let r = t.copy(CopyRequest {
        add: true,
        ..req(&["evil.tar"], "/u/")
    });
    t.canary_intact();
    let _ = r; // the hardlink to a missing in-root target may fail; nothing may leave the layer
    assert_eq!(t.read("u/escape"), "x");
    assert_eq!(t.read("u/abs"), "y");
}

// ---- destinations and selection ---------------------------------------------------------

#[test]
fn missing_source_and_empty_wildcard_name_the_pattern() {
    let t = setup();
    let e = t.copy(req(&["nope.txt"], "/x")).unwrap_err().to_string();
    assert!(e.contains("\"/nope.txt\": not found"), "{e}");
    // A wildcard may match nothing (BuildKit copies nothing), as long as its directory would
    // have been sent with the context: here no source names anything in `sub/`.
    t.copy(req(&["*.nothing"], "/x/")).unwrap();
    t.file("sub/a.txt", "a");
    let sent = std::sync::Arc::new(copy::SentPaths::new(["sub/*.nothing"]).unwrap());
    let e = t
        .copy(CopyRequest {
            sent: Some(sent),
            ..req(&["sub/*.nothing"], "/x/")
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("sub/*.nothing"), "{e}");
    let sent = std::sync::Arc::new(copy::SentPaths::new(["sub/*.nothing", "sub/a.txt"]).unwrap());
    t.copy(CopyRequest {
        sent: Some(sent),
        ..req(&["sub/*.nothing"], "/x/")
    })
    .unwrap();
}

/// BuildKit copies each source to a destination without a trailing `/` in turn: the last
/// file wins (the reference asks for a directory, but BuildKit does not enforce it), and a
/// directory cannot then land on the file an earlier source wrote.
#[test]
fn several_sources_to_a_plain_destination_land_in_turn() {
    let t = setup();
    t.file("a", "a");
    t.file("b", "b");
    t.copy(req(&["a", "b"], "/x")).unwrap();
    assert_eq!(t.read("x"), "b");
    t.copy(req(&["?"], "/y")).unwrap();
    assert_eq!(t.read("y"), "b");
    t.copy(req(&["?"], "/z/")).unwrap();
    assert_eq!(t.read("z/a") + &t.read("z/b"), "ab");
    t.file("d/c", "c");
    let e = t.copy(req(&["a", "d"], "/w")).unwrap_err();
    assert!(matches!(e, CopyError::DirOntoEarlierFile { .. }), "{e}");
}

#[test]
fn file_into_an_existing_image_directory() {
    let t = setup();
    t.file("a.txt", "A");
    fs::create_dir(t.image.join("data")).unwrap();
    fs::set_permissions(t.image.join("data"), fs::Permissions::from_mode(0o750)).unwrap();
    std::os::unix::fs::chown(t.image.join("data"), Some(7), Some(8)).unwrap();
    t.copy(req(&["a.txt"], "/data")).unwrap();
    assert_eq!(t.read("data/a.txt"), "A");
    let md = fs::metadata(t.out.join("data")).unwrap();
    assert_eq!((md.mode() & 0o7777, md.uid(), md.gid()), (0o750, 7, 8));
}

#[test]
fn parents_created_0755_and_chowned() {
    let t = setup();
    t.file("a.txt", "A");
    t.copy(CopyRequest {
        chown: Some((11, 12)),
        ..req(&["a.txt"], "/p/q/a")
    })
    .unwrap();
    for d in ["p", "p/q"] {
        let md = fs::metadata(t.out.join(d)).unwrap();
        assert_eq!(
            (md.mode() & 0o7777, md.uid(), md.gid()),
            (0o755, 11, 12),
            "{d}"
        );
    }
    assert_eq!(fs::metadata(t.out.join("p/q/a")).unwrap().uid(), 11);
}

#[test]
fn wildcards_follow_go_match_and_sorted_order() {
    let t = setup();
    for n in ["a1.txt", "b2.txt", "c.md", "sub/d3.txt"] {
        t.file(n, n);
    }
    t.copy(req(&["[ab]?.txt"], "/w/")).unwrap();
    let mut names: Vec<_> = fs::read_dir(t.out.join("w"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["a1.txt", "b2.txt"]);
    t.copy(req(&["*/*.txt"], "/v/")).unwrap();
    assert_eq!(t.read("v/d3.txt"), "sub/d3.txt");
}

#[test]
fn dockerignore_hides_files_from_copy() {
    let t = setup();
    t.file("keep.txt", "k");
    t.file("secret.env", "s");
    t.file("logs/a.log", "a");
    t.file("logs/keep.log", "kl");
    let ign = "*.env\nlogs\n!logs/keep.log\n";
    let e = t.copy_ign(req(&["secret.env"], "/x"), ign).unwrap_err();
    assert!(matches!(e, CopyError::NotFound { .. }), "{e}");
    t.copy_ign(req(&["."], "/c"), ign).unwrap();
    assert!(t.out.join("c/keep.txt").exists());
    assert!(!t.out.join("c/secret.env").exists());
    assert!(!t.out.join("c/logs/a.log").exists());
    assert_eq!(t.read("c/logs/keep.log"), "kl");
    t.copy_ign(req(&["*"], "/w/"), ign).unwrap();
    assert!(!t.out.join("w/secret.env").exists());
}

#[test]
fn exclude_patterns_are_relative_to_each_source() {
    let t = setup();
    t.file("src/a.go", "a");
    t.file("src/a_test.go", "t");
    t.file("src/sub/b_test.go", "t");
    t.file("src/sub/keep_test.go", "k");
    let r = CopyRequest {
        exclude: vec!["**/*_test.go".into(), "!sub/keep_test.go".into()],
        ..req(&["src"], "/s/")
    };
    t.copy(r).unwrap();
    assert!(t.out.join("s/a.go").exists());
    assert!(!t.out.join("s/a_test.go").exists());
    assert!(!t.out.join("s/sub/b_test.go").exists());
    assert!(t.out.join("s/sub/keep_test.go").exists());
}

#[test]
fn parents_keep_paths_and_pivot_at_dot() {
    let t = setup();
    t.file("x/y/f.txt", "f");
    t.file("x/y/g.md", "g");
    t.copy(CopyRequest {
        parents: true,
        ..req(&["x/y/f.txt"], "/p/")
    })
    .unwrap();
    assert_eq!(t.read("p/x/y/f.txt"), "f");
    t.copy(CopyRequest {
        parents: true,
        ..req(&["x/./y/f.txt"], "/q/")
    })
    .unwrap();
    assert_eq!(t.read("q/y/f.txt"), "f");
    assert!(!t.out.join("q/x").exists());
    t.copy(CopyRequest {
        parents: true,
        ..req(&["x/**/*.md"], "/r/")
    })
    .unwrap();
    assert_eq!(t.read("r/x/y/g.md"), "g");
    assert!(!t.out.join("r/x/y/f.txt").exists());
}

// ---- metadata ----------------------------------------------------------------------------

#[test]
fn owners_modes_and_times() {
    let t = setup();
    t.file("d/f", "f");
    t.file("d/x", "x");
    fs::set_permissions(t.ctx.join("d/x"), fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(t.ctx.join("d/f"), Some(33), Some(44)).unwrap();
    let ts = filetime_set(&t.ctx.join("d/f"), 1_600_000_000);
    // context: 0:0, modes and mtimes kept
    t.copy(req(&["d"], "/c/")).unwrap();
    let md = fs::metadata(t.out.join("c/f")).unwrap();
    assert_eq!((md.uid(), md.gid(), md.mtime()), (0, 0, ts));
    assert_eq!(mode(&t.out.join("c/x")), 0o700);
    // rootfs: owners kept
    let m = Matcher::default();
    let _ = m;
    copy::apply(
        &CopySource::Rootfs(&t.ctx),
        &req(&["d"], "/r/"),
        &t.image,
        &t.out,
    )
    .unwrap();
    let md = fs::metadata(t.out.join("r/f")).unwrap();
    assert_eq!((md.uid(), md.gid()), (33, 44));
    // symbolic chmod, and SOURCE_DATE_EPOCH clamps
    t.copy(CopyRequest {
        chmod: Some("u=rwX,go=rX".into()),
        source_date_epoch: Some(1000),
        ..req(&["d"], "/m/")
    })
    .unwrap();
    assert_eq!(mode(&t.out.join("m/f")), 0o644);
    assert_eq!(mode(&t.out.join("m/x")), 0o755);
    assert_eq!(mode(&t.out.join("m")), 0o755);
    assert_eq!(fs::metadata(t.out.join("m/f")).unwrap().mtime(), 1000);
    let e = t
        .copy(CopyRequest {
            chmod: Some("bogus".into()),
            ..req(&["d"], "/z/")
        })
        .unwrap_err();
    assert!(e.to_string().contains("--chmod=bogus"), "{e}");
}

/// BuildKit gives the directories a COPY/ADD creates for its destination an octal
/// `--chmod`'s mode; directories that exist keep theirs, a symbolic `--chmod` leaves 0755,
/// and an archive's directory stays 0755.
#[test]
fn octal_chmod_sets_the_mode_of_created_destination_dirs() {
    let t = setup();
    t.file("g", "g");
    t.copy(CopyRequest {
        chmod: Some("0711".into()),
        ..req(&["g"], "/a/b/")
    })
    .unwrap();
    assert_eq!(mode(&t.out.join("a")), 0o711);
    assert_eq!(mode(&t.out.join("a/b")), 0o711);
    assert_eq!(mode(&t.out.join("a/b/g")), 0o711);
    // A file destination: only its parents are created.
    t.copy(CopyRequest {
        chmod: Some("640".into()),
        ..req(&["g"], "/p/q/renamed")
    })
    .unwrap();
    assert_eq!(mode(&t.out.join("p/q")), 0o640);
    assert_eq!(mode(&t.out.join("p/q/renamed")), 0o640);
    // An image directory keeps its mode; only the new one below it takes the chmod.
    fs::create_dir(t.image.join("keep")).unwrap();
    fs::set_permissions(t.image.join("keep"), fs::Permissions::from_mode(0o751)).unwrap();
    t.copy(CopyRequest {
        chmod: Some("700".into()),
        ..req(&["g"], "/keep/sub/")
    })
    .unwrap();
    assert_eq!(mode(&t.out.join("keep")), 0o751);
    assert_eq!(mode(&t.out.join("keep/sub")), 0o700);
    t.copy(CopyRequest {
        chmod: Some("go-rwx".into()),
        ..req(&["g"], "/sym/d/")
    })
    .unwrap();
    assert_eq!(mode(&t.out.join("sym/d")), 0o755);
    assert_eq!(mode(&t.out.join("sym/d/g")), 0o600);
    make_tar(&t, "m.tar", None);
    t.copy(CopyRequest {
        add: true,
        chmod: Some("600".into()),
        ..req(&["m.tar"], "/arch/x/")
    })
    .unwrap();
    assert_eq!(mode(&t.out.join("arch/x")), 0o755);
    assert_eq!(t.read("arch/x/pkg/in.txt"), "inner");
}

fn filetime_set(p: &Path, secs: i64) -> i64 {
    let st = Command::new("touch")
        .arg("-h")
        .arg("-d")
        .arg(format!("@{secs}"))
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
    secs
}

#[test]
fn hardlinks_are_kept_and_symlink_sources_followed() {
    let t = setup();
    t.file("h/a", "same");
    fs::hard_link(t.ctx.join("h/a"), t.ctx.join("h/b")).unwrap();
    symlink("h/a", t.ctx.join("ln")).unwrap();
    t.copy(req(&["h"], "/h/")).unwrap();
    assert_eq!(
        fs::metadata(t.out.join("h/a")).unwrap().ino(),
        fs::metadata(t.out.join("h/b")).unwrap().ino()
    );
    t.copy(req(&["ln"], "/l/")).unwrap();
    let md = fs::symlink_metadata(t.out.join("l/ln")).unwrap();
    assert!(md.is_file());
    assert_eq!(t.read("l/ln"), "same");
}

#[test]
fn heredocs_land_0644_and_by_name_in_directories() {
    let t = setup();
    let r = CopyRequest {
        heredocs: vec![("EOF".into(), "hello\n".into())],
        ..req(&["EOF"], "/etc/")
    };
    t.copy(r).unwrap();
    assert_eq!(t.read("etc/EOF"), "hello\n");
    assert_eq!(mode(&t.out.join("etc/EOF")), 0o644);
    let r = CopyRequest {
        heredocs: vec![("X".into(), "#!/bin/sh\n".into())],
        chmod: Some("755".into()),
        ..req(&["X"], "/run.sh")
    };
    t.copy(r).unwrap();
    assert_eq!(mode(&t.out.join("run.sh")), 0o755);
}

// ---- ADD ------------------------------------------------------------------------------------

fn make_tar(t: &T, name: &str, compress: Option<&str>) {
    let src = t.ctx.join("tarsrc");
    fs::create_dir_all(src.join("pkg")).unwrap();
    fs::write(src.join("pkg/in.txt"), "inner").unwrap();
    let plain = t.ctx.join(format!("{name}.plain"));
    let st = Command::new("tar")
        .arg("-cf")
        .arg(&plain)
        .arg("-C")
        .arg(&src)
        .arg("pkg")
        .status()
        .unwrap();
    assert!(st.success());
    let out = t.ctx.join(name);
    match compress {
        None => fs::rename(&plain, &out).unwrap(),
        Some(tool) => {
            let data = Command::new(tool).arg("-c").arg(&plain).output().unwrap();
            assert!(data.status.success(), "{tool}");
            fs::write(&out, data.stdout).unwrap();
            fs::remove_file(&plain).unwrap();
        }
    }
}

#[test]
fn add_unpacks_every_compression_and_copy_does_not() {
    let t = setup();
    for (name, tool) in [
        ("p.tar", None),
        ("g.tgz", Some("gzip")),
        ("b.tbz", Some("bzip2")),
        ("x.txz", Some("xz")),
        ("z.tzst", Some("zstd")),
    ] {
        make_tar(&t, name, tool);
        t.copy(CopyRequest {
            add: true,
            ..req(&[name], &format!("/u/{name}/"))
        })
        .unwrap();
        assert_eq!(t.read(&format!("u/{name}/pkg/in.txt")), "inner", "{name}");
    }
    t.copy(CopyRequest {
        add: true,
        unpack: Some(false),
        ..req(&["g.tgz"], "/k/")
    })
    .unwrap();
    assert!(t.out.join("k/g.tgz").is_file());
    t.copy(req(&["g.tgz"], "/c/")).unwrap();
    assert!(t.out.join("c/g.tgz").is_file());
}

/// Serves one file over HTTP once per connection, with a Last-Modified header.
fn serve(body: &'static [u8]) -> String {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let mut s = s.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body);
        }
    });
    format!("http://{addr}/files/tool.bin?x=1")
}

#[test]
fn add_url_downloads_with_mode_0600_mtime_and_checksum() {
    let t = setup();
    let url = serve(b"payload");
    t.copy(CopyRequest {
        add: true,
        ..req(&[&url], "/dl/")
    })
    .unwrap();
    let p = t.out.join("dl/tool.bin");
    assert_eq!(fs::read(&p).unwrap(), b"payload");
    assert_eq!(mode(&p), 0o600);
    assert_eq!(fs::metadata(&p).unwrap().mtime(), 784111777);
    let good = "sha256:239f59ed55e737c77147cf55ad0c1b030b6d7ee748a7426952f9b852d5a935e5";
    t.copy(CopyRequest {
        add: true,
        checksum: Some(good.into()),
        ..req(&[&url], "/named")
    })
    .unwrap();
    assert_eq!(fs::read(t.out.join("named")).unwrap(), b"payload");
    let bad = format!("sha256:{}", "0".repeat(64));
    let e = t
        .copy(CopyRequest {
            add: true,
            checksum: Some(bad),
            ..req(&[&url], "/x")
        })
        .unwrap_err();
    assert!(matches!(e, CopyError::Checksum { .. }), "{e}");
}

// ---- keys, cache, contexts -----------------------------------------------------------------

#[test]
fn content_key_tracks_exactly_what_is_read() {
    let t = setup();
    t.file("app/main.c", "int main;");
    t.file("app/notes.log", "log");
    t.file("other.txt", "o");
    let ign = Matcher::parse("**/*.log").unwrap();
    let src = CopySource::Context {
        root: &t.ctx,
        ignore: &ign,
    };
    let cache = HashCache::in_memory();
    let r = req(&["app"], "/app/");
    let k1 = content_key(&src, &r, &cache).unwrap();
    assert_eq!(k1, content_key(&src, &r, &cache).unwrap());
    fs::write(t.ctx.join("app/notes.log"), "changed").unwrap();
    fs::write(t.ctx.join("other.txt"), "changed").unwrap();
    assert_eq!(
        k1,
        content_key(&src, &r, &cache).unwrap(),
        "ignored/unrelated changes"
    );
    fs::write(t.ctx.join("app/main.c"), "int main(){}").unwrap();
    let k2 = content_key(&src, &r, &cache).unwrap();
    assert_ne!(k1, k2, "content change");
    fs::set_permissions(t.ctx.join("app/main.c"), fs::Permissions::from_mode(0o755)).unwrap();
    let k3 = content_key(&src, &r, &cache).unwrap();
    assert_ne!(k2, k3, "mode change");
    let k4 = content_key(
        &src,
        &CopyRequest {
            chown: Some((1, 1)),
            ..r.clone()
        },
        &cache,
    )
    .unwrap();
    assert_ne!(k3, k4, "owner change");
}

#[test]
fn hash_cache_makes_warm_keys_read_nothing() {
    let t = setup();
    for i in 0..20 {
        t.file(&format!("f{i}"), &format!("{i}"));
    }
    let dir = t.out.join("cache");
    let m = Matcher::default();
    let src = CopySource::Context {
        root: &t.ctx,
        ignore: &m,
    };
    let r = req(&["."], "/x/");
    let cold = HashCache::open(&dir).unwrap();
    let k = content_key(&src, &r, &cold).unwrap();
    assert_eq!(cold.reads(), 20);
    cold.save().unwrap();
    let warm = HashCache::open(&dir).unwrap();
    assert_eq!(content_key(&src, &r, &warm).unwrap(), k);
    assert_eq!(warm.reads(), 0);
    // a rewrite with the same size is noticed (ctime/mtime change)
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::write(t.ctx.join("f3"), "X").unwrap();
    assert_ne!(content_key(&src, &r, &warm).unwrap(), k);
    assert_eq!(warm.reads(), 1);
}

#[test]
fn dockerfile_specific_ignore_wins() {
    let t = setup();
    fs::write(t.ctx.join(".dockerignore"), "a\n").unwrap();
    fs::create_dir(t.ctx.join("sub")).unwrap();
    fs::write(t.ctx.join("sub/app.Dockerfile"), "FROM x\n").unwrap();
    fs::write(t.ctx.join("sub/app.Dockerfile.dockerignore"), "b\n").unwrap();
    let m = context::load_ignore(&t.ctx, &t.ctx.join("sub/app.Dockerfile")).unwrap();
    assert!(m.is_excluded("b") && !m.is_excluded("a"));
    let m = context::load_ignore(&t.ctx, &t.ctx.join("Dockerfile")).unwrap();
    assert!(m.is_excluded("a") && !m.is_excluded("b"));
    fs::write(t.ctx.join(".dockerignore"), "[\n").unwrap();
    let e = context::load_ignore(&t.ctx, &t.ctx.join("Dockerfile"))
        .unwrap_err()
        .to_string();
    assert!(e.contains(".dockerignore"), "{e}");
}

#[test]
fn stdin_tar_context_is_extracted_in_root() {
    let t = setup();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    let name = b"../../../escape";
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_cksum();
    b.append(&h, &b"hi"[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(10);
    h.set_mode(0o644);
    b.append_data(&mut h, "Dockerfile", &b"FROM x\nRUN"[..])
        .unwrap();
    let data = b.into_inner().unwrap();
    let gz = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&data).unwrap();
        e.finish().unwrap()
    };
    let dir = context::tar_stdin_context(std::io::Cursor::new(gz), &t.out).unwrap();
    assert_eq!(fs::read_to_string(dir.join("escape")).unwrap(), "hi");
    assert_eq!(
        fs::read_to_string(dir.join("Dockerfile")).unwrap(),
        "FROM x\nRUN"
    );
    assert!(!t.out.join("escape").exists());
    t.canary_intact();
}

fn git_server() -> common::git::GitServer {
    git_server_with(|work| {
        fs::create_dir_all(work.join("sub")).unwrap();
        fs::write(work.join("sub/a.txt"), "from git").unwrap();
        fs::write(work.join("b.txt"), "top").unwrap();
    })
}

/// A git daemon serving one repository whose work tree `fill` writes (committed, tagged v1).
fn git_server_with(fill: impl FnOnce(&Path)) -> common::git::GitServer {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    fs::create_dir_all(&work).unwrap();
    fill(&work);
    git(&["init", "-q"], &work);
    git(&["add", "."], &work);
    git(&["commit", "-q", "-m", "one"], &work);
    git(&["tag", "v1"], &work);
    git(&["clone", "-q", "--bare", "work", "repo.git"], dir.path());
    common::git::serve(dir)
}

#[test]
fn add_git_ref_subdir_and_keep_git_dir() {
    let t = setup();
    let srv = git_server();
    let src = format!("{}#v1:sub", srv.url);
    t.copy(CopyRequest {
        add: true,
        ..req(&[&src], "/g/")
    })
    .unwrap();
    assert_eq!(t.read("g/a.txt"), "from git");
    assert!(!t.out.join("g/b.txt").exists());
    t.copy(CopyRequest {
        add: true,
        keep_git_dir: true,
        ..req(&[&srv.url], "/k")
    })
    .unwrap();
    assert_eq!(t.read("k/b.txt"), "top");
    assert!(t.out.join("k/.git").is_dir());
    t.copy(CopyRequest {
        add: true,
        ..req(&[&srv.url], "/n/")
    })
    .unwrap();
    assert!(!t.out.join("n/.git").exists());
    let e = t
        .copy(CopyRequest {
            add: true,
            ..req(&[&format!("{}#nope", srv.url)], "/x/")
        })
        .unwrap_err();
    assert!(matches!(e, CopyError::Git { .. }), "{e}");
}

#[test]
fn xattrs_are_copied_after_chown() {
    let t = setup();
    t.file("cap", "bin");
    let f = fs::File::open(t.ctx.join("cap")).unwrap();
    rustix::fs::fsetxattr(&f, "user.hoist", b"1", rustix::fs::XattrFlags::empty()).unwrap();
    t.copy(CopyRequest {
        chown: Some((5, 5)),
        ..req(&["cap"], "/c")
    })
    .unwrap();
    let g = fs::File::open(t.out.join("c")).unwrap();
    let mut v = [0u8; 8];
    let n = rustix::fs::fgetxattr(&g, "user.hoist", &mut v[..]).unwrap();
    assert_eq!(&v[..n], b"1");
}

#[test]
fn add_refuses_a_decompression_bomb() {
    let t = setup();
    // 300 MiB of zeros in one member: a few KiB with zstd, far over 1000x
    let f = fs::File::create(t.ctx.join("bomb.tar.zst")).unwrap();
    let enc = zstd::stream::write::Encoder::new(f, 1)
        .unwrap()
        .auto_finish();
    let mut b = tar::Builder::new(enc);
    let mut h = tar::Header::new_gnu();
    let size = 300u64 << 20;
    h.set_size(size);
    h.set_mode(0o644);
    b.append_data(
        &mut h,
        "zeros",
        std::io::Read::take(std::io::repeat(0), size),
    )
    .unwrap();
    drop(b.into_inner().unwrap());
    let e = t
        .copy(CopyRequest {
            add: true,
            ..req(&["bomb.tar.zst"], "/b/")
        })
        .unwrap_err();
    assert!(e.to_string().contains("decompression bomb"), "{e}");
}

#[test]
fn directories_below_the_destination_follow_image_symlinks_in_root() {
    let t = setup();
    t.file("rootfs/lib/x.so", "so");
    t.file("rootfs/etc/conf", "c");
    fs::create_dir_all(t.image.join("usr/lib")).unwrap();
    symlink("usr/lib", t.image.join("lib")).unwrap();
    symlink("../../../canary", t.image.join("etc")).unwrap(); // escaping link: re-rooted
    fs::create_dir_all(t.image.join("canary")).unwrap();
    t.copy(req(&["rootfs/"], "/")).unwrap();
    assert_eq!(t.read("usr/lib/x.so"), "so");
    assert!(!t.out.join("lib").exists());
    assert_eq!(t.read("canary/conf"), "c"); // clamped: /canary inside the image
    t.canary_intact();
}

/// A hostile repository (issue 7: a git checkout is an untrusted tree): symlinks to the host's
/// canary, absolute and relative, as the ADD source sub-dir and inside the copied tree. Every
/// one resolves inside the checkout (the repo mirrors the canary's path, so a clamped lookup
/// finds "clamped"); nothing of the host is read and the canary is untouched.
#[test]
fn add_git_from_a_hostile_repository_stays_in_the_checkout() {
    let t = setup();
    let canary = t.canary.clone();
    let rel_canary = canary.strip_prefix("/").unwrap().to_path_buf();
    let srv = git_server_with(|work| {
        std::os::unix::fs::symlink(&canary, work.join("abs")).unwrap();
        let ups = "../".repeat(30);
        std::os::unix::fs::symlink(format!("{ups}{}", rel_canary.display()), work.join("up"))
            .unwrap();
        fs::create_dir_all(work.join("real")).unwrap();
        fs::write(work.join("real/file.txt"), "inside").unwrap();
        std::os::unix::fs::symlink("/", work.join("real/root")).unwrap();
        fs::create_dir_all(work.join(&rel_canary)).unwrap();
        fs::write(work.join(&rel_canary).join("secret"), "clamped").unwrap();
    });
    let before = tree(&t.canary);
    let mut seen = Vec::new();
    for (sub, dest) in [("abs", "/a/"), ("up", "/u/"), ("real/root", "/r/")] {
        let r = t.copy(CopyRequest {
            add: true,
            ..req(&[&format!("{}#main:{sub}", srv.url)], dest)
        });
        // A sub-dir through a symlink resolves in the checkout (or is refused): never the host.
        if r.is_ok() {
            let d = dest.trim_matches('/');
            let found = fs::read_to_string(t.out.join(d).join("secret"))
                .or_else(|_| fs::read_to_string(t.out.join(d).join(&rel_canary).join("secret")))
                .unwrap_or_default();
            assert_ne!(found, "host secret", "ADD #main:{sub} read the host");
            seen.push((sub, found));
        }
    }
    // The absolute link resolves to the checkout's mirror of the canary's path: the clamped
    // copy is what lands (so the checks above cannot pass by finding nothing).
    assert!(
        seen.contains(&("abs", "clamped".to_string())),
        "the absolute link did not resolve in the checkout: {seen:?}"
    );
    // The whole repo: links are copied as links, never followed.
    t.copy(CopyRequest {
        add: true,
        ..req(&[&srv.url], "/w/")
    })
    .unwrap();
    for l in ["w/abs", "w/up", "w/real/root"] {
        let m = fs::symlink_metadata(t.out.join(l)).unwrap();
        assert!(m.file_type().is_symlink(), "{l} was not copied as a link");
    }
    assert_eq!(t.read("w/real/file.txt"), "inside");
    // Nothing anywhere in the output holds the host's secret; the canary is unchanged.
    for e in walkdir::WalkDir::new(&t.out).follow_links(false) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            assert_ne!(
                fs::read_to_string(e.path()).unwrap_or_default(),
                "host secret",
                "{} holds the host's file",
                e.path().display()
            );
        }
    }
    assert_eq!(tree(&t.canary), before, "the canary changed");
}

/// Every entry under `root`: path, mode, and file contents or link target.
fn tree(root: &Path) -> Vec<(String, u32, String)> {
    use std::os::unix::fs::MetadataExt;
    walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            let m = fs::symlink_metadata(e.path()).unwrap();
            let body = if m.file_type().is_symlink() {
                fs::read_link(e.path()).unwrap().display().to_string()
            } else if m.is_file() {
                fs::read_to_string(e.path()).unwrap_or_default()
            } else {
                String::new()
            };
            (e.path().display().to_string(), m.mode(), body)
        })
        .collect()
}

//! Hostile trees against both entry points: `..` chains, absolute and relative symlinks that
//! point out of the root, loops, a link as the final component, magic links, and the
//! agreement of the clamping walk with `openat2(RESOLVE_IN_ROOT)`.

use super::*;
use std::os::unix::fs::symlink;

/// A root with a decoy tree beside it (`outside/`) that no lookup may reach.
fn hostile() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let r = t.path().join("root");
    let out = t.path().join("outside");
    std::fs::create_dir_all(r.join("a/b")).unwrap();
    std::fs::create_dir_all(r.join("etc")).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(r.join("a/b/f"), "in").unwrap();
    std::fs::write(r.join("etc/passwd"), "in").unwrap();
    std::fs::write(out.join("secret"), "out").unwrap();
    symlink("/a", r.join("abs")).unwrap();
    symlink(&out, r.join("host")).unwrap();
    symlink("../../../../../../a/b", r.join("a/up")).unwrap();
    symlink("../../outside/secret", r.join("rel_out")).unwrap();
    symlink("loop2", r.join("loop1")).unwrap();
    symlink("loop1", r.join("loop2")).unwrap();
    symlink("self", r.join("self")).unwrap();
    symlink("/nowhere/x", r.join("dangling")).unwrap();
    symlink("a/b/f", r.join("last")).unwrap();
    (t, r)
}

/// The in-root path an fd landed on, as `/`-joined components.
fn landed(root: &OwnedFd, fd: &OwnedFd) -> String {
    let base = fd_path(root).unwrap();
    let real = fd_path(fd).unwrap();
    real.strip_prefix(&base)
        .expect("escaped the root")
        .to_string_lossy()
        .into_owned()
}

fn read(root: &OwnedFd, path: &str) -> Result<String, Errno> {
    use std::io::Read;
    let mut s = String::new();
    std::fs::File::from(open(root, path, OFlags::RDONLY)?)
        .read_to_string(&mut s)
        .unwrap();
    Ok(s)
}

#[test]
fn dotdot_chains_stop_at_the_root() {
    let (_t, r) = hostile();
    let root = open_root(&r).unwrap();
    assert_eq!(read(&root, "../../../../etc/passwd").unwrap(), "in");
    assert_eq!(read(&root, "/a/b/../../../../../etc/passwd").unwrap(), "in");
    assert_eq!(read(&root, "a/up/f").unwrap(), "in");
    for p in ["..", "../..", "/..", "a/b/../../..", "", "/", "."] {
        let fd = open(&root, p, OFlags::PATH).unwrap();
        assert_eq!(landed(&root, &fd), "", "{p}");
    }
    assert_eq!(
        read(&root, "../outside/secret").unwrap_err(),
        Errno::NOENT,
        "reached the decoy"
    );
}

#[test]
fn absolute_and_relative_links_are_rerooted() {
    let (_t, r) = hostile();
    let root = open_root(&r).unwrap();
    assert_eq!(read(&root, "abs/b/f").unwrap(), "in");
    // `host` names the decoy by its host path: re-rooted, that path does not exist here.
    assert_eq!(read(&root, "host/secret").unwrap_err(), Errno::NOENT);
    assert_eq!(read(&root, "rel_out").unwrap_err(), Errno::NOENT);
    assert_eq!(read(&root, "dangling").unwrap_err(), Errno::NOENT);
}

#[test]
fn loops_fail_with_eloop() {
    let (_t, r) = hostile();
    let root = open_root(&r).unwrap();
    for p in ["loop1", "self", "loop2/x", "a/../self"] {
        assert_eq!(
            open(&root, p, OFlags::PATH).unwrap_err(),
            Errno::LOOP,
            "{p}"
        );
    }
    let walk = Root::open(&r).unwrap();
    let e = walk.resolve("self", true).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
}

#[test]
fn a_final_link_is_followed_only_when_asked() {
    let (_t, r) = hostile();
    let root = open_root(&r).unwrap();
    let link = open(&root, "last", OFlags::PATH | OFlags::NOFOLLOW).unwrap();
    let st = rustix::fs::fstat(&link).unwrap();
    assert_eq!(FileType::from_raw_mode(st.st_mode), FileType::Symlink);
    assert_eq!(read(&root, "last").unwrap(), "in");
    // Even unfollowed, a link to the host is only ever the link itself.
    let host = open(&root, "host", OFlags::PATH | OFlags::NOFOLLOW).unwrap();
    assert_eq!(landed(&root, &host), "host");
    // Only the last component is left alone: links before it are still followed in-root.
    let f = open(&root, "abs/b/f", OFlags::PATH | OFlags::NOFOLLOW).unwrap();
    assert_eq!(landed(&root, &f), "a/b/f");
    // The parent and the final name: the name is handed back unresolved.
    let (dir, name) = open_parent(&root, &["abs", "b", "last"]).unwrap().unwrap();
    assert_eq!(
        (landed(&root, &dir).as_str(), name),
        ("a/b", b"last".as_slice())
    );
    let (dir, name) = open_parent(&root, &["..", "host"]).unwrap().unwrap();
    assert_eq!(
        (landed(&root, &dir).as_str(), name),
        ("", b"host".as_slice())
    );
    assert!(open_parent(&root, &[] as &[&str]).unwrap().is_none());
}

#[test]
fn magic_links_under_a_root_are_refused() {
    // /proc/self as a root: `cwd`, `root` and `exe` are magic links to anywhere.
    let root = open_root(Path::new("/proc/self")).unwrap();
    for p in ["root/etc/passwd", "cwd", "fd/0"] {
        assert_eq!(
            open(&root, p, OFlags::PATH).unwrap_err(),
            Errno::LOOP,
            "{p}"
        );
    }
    // Unfollowed, the magic link itself may be opened (it leads nowhere by itself).
    assert!(open(&root, "cwd", OFlags::PATH | OFlags::NOFOLLOW).is_ok());
}

#[test]
fn the_walk_agrees_with_resolve_in_root() {
    let (_t, r) = hostile();
    let root = open_root(&r).unwrap();
    let walk = Root::open(&r).unwrap();
    let paths = [
        "a/b/f",
        "../../abs/b/f",
        "/abs/../etc/passwd",
        "a/up/f",
        "a/up/../../..",
        "abs",
        "last",
        "host",
        "rel_out",
        "dangling",
        "loop1",
        "a/b/f/x",
        "nope/x",
        "",
    ];
    for p in paths {
        for follow in [true, false] {
            let flags = if follow {
                OFlags::PATH
            } else {
                OFlags::PATH | OFlags::NOFOLLOW
            };
            let kernel = open(&root, p, flags).map(|fd| landed(&root, &fd));
            // The walk reports a missing last component as found-but-absent.
            let walked = walk.resolve(p, follow).and_then(|f| match f.meta {
                Some(_) => Ok(f.comps.join("/")),
                None => Err(Errno::NOENT.into()),
            });
            match (&kernel, &walked) {
                (Ok(k), Ok(w)) => assert_eq!(k, w, "{p} follow={follow}"),
                (Err(k), Err(w)) => {
                    assert_eq!(Some(k.raw_os_error()), w.raw_os_error(), "{p} {follow}")
                }
                _ => panic!("{p} follow={follow}: kernel {kernel:?}, walk {walked:?}"),
            }
        }
    }
}

#[test]
fn mkdir_all_creates_only_in_root() {
    let (t, r) = hostile();
    let root = open_root(&r).unwrap();
    let made = std::cell::RefCell::new(Vec::new());
    let mut mkdir = |dir: BorrowedFd<'_>, name: &[u8], _last: bool| -> Result<(), Errno> {
        made.borrow_mut()
            .push(String::from_utf8_lossy(name).into_owned());
        rustix::fs::mkdirat(dir, OsStr::from_bytes(name), Mode::from_raw_mode(0o755))
    };
    let comps = |p: &str| -> Vec<Vec<u8>> { p.split('/').map(|c| c.as_bytes().to_vec()).collect() };
    // A dangling absolute link: its target is made, in-root.
    let fd = mkdir_all(root.as_fd(), &comps("dangling/y"), OFlags::PATH, &mut mkdir).unwrap();
    assert_eq!(landed(&root, &fd), "nowhere/x/y");
    // A link to the host path of the decoy: re-rooted, made inside.
    let fd = mkdir_all(root.as_fd(), &comps("host/new"), OFlags::PATH, &mut mkdir).unwrap();
    assert!(landed(&root, &fd).ends_with("outside/new"));
    assert!(!t.path().join("outside/new").exists(), "escaped the root");
    // `..` in a link target stops at the root.
    symlink("../../../../made", r.join("a/b/up")).unwrap();
    let fd = mkdir_all(root.as_fd(), &comps("a/b/up/z"), OFlags::PATH, &mut mkdir).unwrap();
    assert_eq!(landed(&root, &fd), "made/z");
    // Existing paths create nothing.
    let n = made.borrow().len();
    mkdir_all(root.as_fd(), &comps("a/b"), OFlags::PATH, &mut mkdir).unwrap();
    assert_eq!(made.borrow().len(), n);
    let e = mkdir_all(root.as_fd(), &comps("loop1/x"), OFlags::PATH, &mut mkdir).unwrap_err();
    assert_eq!(e, Errno::LOOP);
    let e = mkdir_all(root.as_fd(), &comps("a/b/f/x"), OFlags::PATH, &mut mkdir).unwrap_err();
    assert_eq!(e, Errno::NOTDIR);
    assert!(!made.borrow().iter().any(|m| m.contains("secret")));
}

#[test]
fn concurrent_renames_do_not_surface_eagain() {
    // A `..` walked while a rename runs anywhere makes the kernel answer EAGAIN; `open`
    // retries it, so callers never see it.
    let (_t, r) = hostile();
    let root = open_root(&r).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let renamer = {
        let (stop, r) = (stop.clone(), r.clone());
        std::thread::spawn(move || {
            std::fs::create_dir(r.join("spin")).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::fs::rename(r.join("spin"), r.join("spun")).unwrap();
                std::fs::rename(r.join("spun"), r.join("spin")).unwrap();
            }
        })
    };
    for _ in 0..20_000 {
        assert_eq!(
            read(&root, "a/b/../../etc/../a/b/../../../etc/passwd").unwrap(),
            "in"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    renamer.join().unwrap();
}

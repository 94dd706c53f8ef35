//! Fuzzes the whiteout applier: a fixed base layer is extracted into a fresh dest, then the
//! input is extracted over it as a second layer (Layer mode), so `.wh.NAME` and
//! `.wh..wh..opq` entries act on an existing tree. The base holds what hostile whiteouts aim
//! at: a relative symlink `up -> ../canary`, an absolute one to the canary's real path,
//! `var/run -> /run`, a directory symlink, a hardlink pair and nested dirs.
//!
//! Invariant (as `layer_extract`): the canary dir beside dest is identical afterwards,
//! nothing else appears beside dest, dest stays a directory. Plus: the base layer itself
//! extracts cleanly every time (a harness self-check).
#![no_main]

mod common;

use hoist::layers::{ExtractLimits, ExtractMode};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

struct State {
    sb: common::Sandbox,
    base: Vec<u8>,
}

static STATE: OnceLock<State> = OnceLock::new();

fn base_layer(canary: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut entry = |path: &str, kind: tar::EntryType, mode: u32, link: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(if path.starts_with("home/u") { 1000 } else { 0 });
        h.set_gid(if path.starts_with("home/u") { 1000 } else { 0 });
        h.set_mtime(1_700_000_000);
        h.set_size(data.len() as u64);
        h.set_path(path).expect("base path");
        if !link.is_empty() {
            // Raw: the checked setter refuses `..` and absolute targets.
            let raw = &mut h.as_old_mut().linkname;
            raw.fill(0);
            raw[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_cksum();
        b.append(&h, data).expect("base entry");
    };
    use tar::EntryType::{Directory as D, Link as H, Regular as F, Symlink as S};
    entry("etc/", D, 0o755, "", b"");
    entry("etc/passwd", F, 0o644, "", b"root:x:0:0::/root:/bin/sh\n");
    entry("etc/hosts", F, 0o644, "", b"127.0.0.1 localhost\n");
    entry("usr/", D, 0o755, "", b"");
    entry("usr/bin/", D, 0o755, "", b"");
    entry("usr/bin/sh", F, 0o755, "", b"\x7fELF");
    entry("lib/", D, 0o755, "", b"");
    entry("lib/libc.so", F, 0o755, "", b"libc");
    entry("lib/libc.so.6", H, 0o755, "lib/libc.so", b"");
    entry("usr/lib", S, 0o777, "../lib", b"");
    entry("run/", D, 0o755, "", b"");
    entry("run/x", F, 0o644, "", b"x");
    entry("var/", D, 0o755, "", b"");
    entry("var/run", S, 0o777, "/run", b"");
    entry("tmp/", D, 0o1777, "", b"");
    entry("home/u/", D, 0o700, "", b"");
    entry("home/u/.profile", F, 0o644, "", b"export A=1\n");
    entry("data/", D, 0o755, "", b"");
    entry("data/a", F, 0o644, "", b"a");
    entry("data/b", F, 0o644, "", b"b");
    entry("data/sub/", D, 0o755, "", b"");
    entry("data/sub/c", F, 0o644, "", b"c");
    entry("up", S, 0o777, "../canary", b"");
    entry("abs", S, 0o777, canary, b"");
    entry("dirlink", S, 0o777, "data", b"");
    b.into_inner().expect("base layer")
}

fn limits() -> ExtractLimits {
    ExtractLimits {
        max_total_bytes: 64 << 20,
        max_entries: 100_000,
        ..ExtractLimits::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let st = STATE.get_or_init(|| {
        let sb = common::Sandbox::create("whiteout");
        let base = base_layer(&sb.canary.to_string_lossy());
        State { sb, base }
    });
    st.sb.with_dest(|dest| {
        hoist::layers::extract_with_limits(&st.base[..], dest, ExtractMode::Layer, &limits())
            .expect("the base layer extracts");
        let _ = hoist::layers::extract_with_limits(data, dest, ExtractMode::Layer, &limits());
    });
});

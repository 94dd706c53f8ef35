//! Builds `hoist-init` (src/executor/init/main.rs), the static PID 1 that hoist execs from a
//! memfd in a sandbox run with `--init`, and leaves it in `$OUT_DIR/hoist-init`, where
//! `src/executor/init.rs` embeds it with `include_bytes!`. That is all this script does.
//!
//! It is one self-contained file compiled with `$RUSTC` directly (no Cargo, no crates): static
//! glibc (`crt-static`, needs `libc6-dev`'s libc.a), `panic=abort`, size-optimised, stripped.
//! Any failure fails the build with rustc's own diagnostics.

#![allow(clippy::print_stdout)] // cargo:: directives go to stdout

use std::path::PathBuf;
use std::process::Command;

const SRC: &str = "src/executor/init/main.rs";

fn main() {
    println!("cargo::rerun-if-changed={SRC}");
    println!("cargo::rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    let dest = out.join("hoist-init");
    let mut cmd = Command::new(&rustc);
    cmd.args([
        "--edition",
        "2024",
        "--crate-type",
        "bin",
        "--crate-name",
        "hoist_init",
    ])
    .args(["--target", &target])
    .args(["-C", "target-feature=+crt-static"])
    .args(["-C", "opt-level=s"])
    .args(["-C", "panic=abort"])
    .args(["-C", "strip=symbols"])
    .args(["-C", "lto=fat", "-C", "codegen-units=1"])
    .arg("-o")
    .arg(&dest)
    .arg(SRC)
    // Cargo's flags for hoist (e.g. -C instrument-coverage) are not meant for the init.
    .env_remove("CARGO_ENCODED_RUSTFLAGS");
    if let Some(linker) = std::env::var_os(format!(
        "CARGO_TARGET_{}_LINKER",
        target.to_uppercase().replace('-', "_")
    )) {
        cmd.arg("-C")
            .arg(format!("linker={}", linker.to_string_lossy()));
    }
    let status = cmd.status().unwrap_or_else(|e| {
        panic!(
            "cannot run {} to build the sandbox init ({SRC}): {e}",
            PathBuf::from(&rustc).display()
        )
    });
    assert!(
        status.success(),
        "building the static sandbox init ({SRC}) failed (see rustc's errors above); it needs \
         a static C library for {target}: on Debian/Ubuntu `apt-get install libc6-dev`"
    );
}

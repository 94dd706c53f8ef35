//! Fuzzes the layer tar reader and the in-root extractor, run as root.
//!
//! Input: one flag byte, then the layer. Flag & 3: 0 = plain tar, Layer mode; 1 = the harness
//! gzips the tar and it goes through `unpack_with_limits` (decompress by sniffing); 2 = the
//! bytes go raw to the sniffing decompressor (gzip/zstd/bzip2/xz/plain); 3 = plain tar,
//! Archive mode (`ADD x.tar`). Flag & 4: a decompression-ratio limit is set.
//!
//! Invariant: whatever the layer holds (`..` names, symlinks to `/` or to the canary, writes
//! through them, hardlinks out, whiteouts of `..`, PAX overrides), extraction into
//! `/tmp/hoist-fuzz/layer_extract/dest` leaves the canary dir beside it byte- and
//! metadata-identical, creates nothing else beside dest, and dest stays a directory.
//! Errors are fine; escaping is not.
#![no_main]

mod common;

use hoist::layers::{DecompressHint, ExtractLimits, ExtractMode};
use libfuzzer_sys::fuzz_target;
use std::io::Write;
use std::sync::OnceLock;

static SANDBOX: OnceLock<common::Sandbox> = OnceLock::new();

fn limits(flag: u8) -> ExtractLimits {
    ExtractLimits {
        // Small caps keep a fuzz input from filling the disk; the logic is the same.
        max_total_bytes: 64 << 20,
        max_entries: 100_000,
        max_ratio: (flag & 4 != 0).then_some(100),
        ..ExtractLimits::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flag, layer)) = data.split_first() else {
        return;
    };
    let sb = SANDBOX.get_or_init(|| common::Sandbox::create("layer_extract"));
    let limits = limits(flag);
    sb.with_dest(|dest| {
        let _ = match flag & 3 {
            0 => hoist::layers::extract_with_limits(layer, dest, ExtractMode::Layer, &limits),
            1 => {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(layer).expect("gzip to memory");
                let gz = gz.finish().expect("gzip to memory");
                hoist::layers::unpack_with_limits(
                    &gz[..],
                    DecompressHint::Sniff,
                    dest,
                    ExtractMode::Layer,
                    &limits,
                )
            }
            2 => hoist::layers::unpack_with_limits(
                layer,
                DecompressHint::Sniff,
                dest,
                ExtractMode::Layer,
                &limits,
            ),
            _ => hoist::layers::extract_with_limits(layer, dest, ExtractMode::Archive, &limits),
        };
    });
});

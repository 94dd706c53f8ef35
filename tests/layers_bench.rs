//! Layer-writing throughput and memory.
//!
//! `bounded_memory_for_large_layers` runs in the normal suite. The throughput bench is
//! ignored by default; run it on a quiet machine with an optimised build:
//!
//!     cargo test --release --test layers_bench -- --ignored --nocapture
//!
//! (`HOIST_BENCH_MIB` sets the layer size, default 1024). It prints MiB/s and peak RSS for
//! gzip levels 1 and 6 and zstd level 3 on half random, half zero data (issue 6's biglayer).
#![allow(clippy::print_stdout)]

use hoist::layers::{self, Compression, LayerOptions};
use std::io::{self, Write};
use std::path::Path;
use std::time::Instant;

/// Writes `mib` MiB as 16 files of alternating 64 KiB random / zero blocks.
fn make_tree(dir: &Path, mib: usize) {
    let mut x: u64 = 0x2545F4914F6CDD1D;
    let per_file = (mib << 20) / 16;
    for i in 0..16 {
        let mut f =
            io::BufWriter::new(std::fs::File::create(dir.join(format!("blob{i:02}"))).unwrap());
        let mut block = vec![0u8; 64 << 10];
        for b in 0..per_file / block.len() {
            if b % 2 == 0 {
                for chunk in block.chunks_mut(8) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    chunk.copy_from_slice(&x.to_le_bytes());
                }
            } else {
                block.fill(0);
            }
            f.write_all(&block).unwrap();
        }
        f.flush().unwrap();
    }
}

/// Counts bytes; keeps nothing.
struct Count(u64);
impl Write for Count {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn status_kib(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Resets the peak-RSS counter (VmHWM) of this process.
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

#[test]
fn bounded_memory_for_large_layers() {
    let t = tempfile::tempdir().unwrap();
    make_tree(t.path(), 64);
    for c in [
        Compression::Gzip { level: 1 },
        Compression::Zstd { level: 1 },
        Compression::Uncompressed,
    ] {
        reset_peak();
        let base = status_kib("VmRSS:");
        let mut out = Count(0);
        let lb = layers::write_layer(
            t.path(),
            &LayerOptions {
                compression: c,
                source_date_epoch: None,
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(lb.size, out.0);
        let grew_mib = status_kib("VmHWM:").saturating_sub(base) / 1024;
        assert!(
            grew_mib < 48,
            "{c:?}: peak RSS grew {grew_mib} MiB while writing a 64 MiB layer"
        );
    }
}

#[test]
#[ignore = "throughput bench: run with --release --ignored --nocapture"]
fn bench_gzip_vs_zstd() {
    let mib: usize = std::env::var("HOIST_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let t = tempfile::tempdir().unwrap();
    make_tree(t.path(), mib);
    println!(
        "layer: {mib} MiB, half random, {} threads",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    for c in [
        Compression::Gzip { level: 1 },
        Compression::Gzip { level: 2 },
        Compression::Gzip { level: 6 },
        Compression::Zstd { level: 3 },
        Compression::Uncompressed,
    ] {
        reset_peak();
        let start = Instant::now();
        let mut out = Count(0);
        layers::write_layer(
            t.path(),
            &LayerOptions {
                compression: c,
                source_date_epoch: None,
            },
            &mut out,
        )
        .unwrap();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{:<28} {:>8.1} MiB/s  ratio {:.3}  peak RSS {} MiB",
            format!("{c:?}"),
            mib as f64 / secs,
            out.0 as f64 / (mib << 20) as f64,
            status_kib("VmHWM:") / 1024
        );
    }
}

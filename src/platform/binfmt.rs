//! Which platforms this machine can run binaries of: its own, the ones its CPU runs natively
//! (`386` on `amd64`, `arm/v7…v5` on `arm64`), and every enabled binfmt_misc entry under
//! `/proc/sys/fs/binfmt_misc` whose magic is an ELF header (qemu-user-static's entries), as
//! BuildKit lists them. RUN for a foreign platform then needs nothing else: with the entry's
//! `F` flag the kernel holds the interpreter open, so it works inside the sandbox's rootfs.

use super::{Platform, PlatformError, Result};
use std::path::Path;

/// Where the kernel lists binfmt_misc handlers.
pub const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// The platform of an ELF binary, from its class, byte order and `e_machine`.
fn elf_platform(class: u8, data: u8, machine: u16) -> Option<&'static str> {
    Some(match (class, data, machine) {
        (2, 1, 0x3e) => "linux/amd64",
        (1, 1, 0x03) => "linux/386",
        (2, 1, 0xb7) => "linux/arm64",
        (1, 1, 0x28) => "linux/arm/v7",
        (2, 1, 0xf3) => "linux/riscv64",
        (2, 1, 0x15) => "linux/ppc64le",
        (2, 2, 0x16) => "linux/s390x",
        (2, 1, 0x102) => "linux/loong64",
        (2, 2, 0x08) => "linux/mips64",
        (2, 1, 0x08) => "linux/mips64le",
        _ => return None,
    })
}

/// The platform one binfmt_misc entry (the text of its file) runs, when it is enabled and
/// matches ELF binaries at offset 0.
pub fn entry_platform(text: &str) -> Option<Platform> {
    let mut enabled = false;
    let mut magic = None;
    let mut offset = 0u64;
    for line in text.lines() {
        let line = line.trim();
        if line == "enabled" {
            enabled = true;
        } else if let Some(m) = line.strip_prefix("magic ") {
            magic = Some(m.trim().to_string());
        } else if let Some(o) = line.strip_prefix("offset ") {
            offset = o.trim().parse().ok()?;
        }
    }
    if !enabled || offset != 0 {
        return None;
    }
    let bytes = hex_bytes(&magic?)?;
    if bytes.len() < 20 || bytes[..4] != [0x7f, b'E', b'L', b'F'] {
        return None;
    }
    let (class, data) = (bytes[4], bytes[5]);
    let machine = match data {
        1 => u16::from_le_bytes([bytes[18], bytes[19]]),
        2 => u16::from_be_bytes([bytes[18], bytes[19]]),
        _ => return None,
    };
    elf_platform(class, data, machine).and_then(Platform::parse)
}

fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What the host CPU runs without emulation.
fn native(host: &Platform) -> Vec<Platform> {
    let mut out = vec![host.clone()];
    let extra: &[&str] = match host.architecture.as_str() {
        "amd64" => &["linux/386"],
        "arm64" => &["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"],
        _ => &[],
    };
    out.extend(extra.iter().filter_map(|p| Platform::parse(p)));
    out
}

/// The platforms runnable here given the binfmt_misc directory `dir`: native ones first, then
/// each emulated one (with its lower `arm` variants).
pub fn runnable_in(dir: &Path) -> Vec<Platform> {
    let host = Platform::host();
    let mut out = native(&host);
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if matches!(name, "register" | "status") {
            continue;
        }
        let Some(p) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| entry_platform(&t))
        else {
            continue;
        };
        for f in p.fallbacks() {
            if f.os == p.os && f.architecture == p.architecture && !out.contains(&f) {
                out.push(f);
            }
        }
    }
    out
}

/// The platforms this machine can run binaries of (see [`runnable_in`]).
pub fn runnable() -> Vec<Platform> {
    runnable_in(Path::new(BINFMT_DIR))
}

/// True when `want` is in `runnable`.
fn in_list(runnable: &[Platform], want: &Platform) -> bool {
    runnable.iter().any(|r| r.same(want))
}

/// True when RUN steps for `want` can execute here.
pub fn can_run(want: &Platform) -> bool {
    in_list(&runnable(), want)
}

/// Fails fast, naming the package to install, when one of `wanted` cannot run here.
pub fn check_runnable(wanted: &[Platform]) -> Result<()> {
    let runnable = runnable();
    for w in wanted {
        if !in_list(&runnable, w) {
            return Err(PlatformError::NoEmulator {
                platform: w.to_string_short(),
                host: Platform::host().to_string_short(),
                runnable: runnable
                    .iter()
                    .map(Platform::to_string_short)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const AARCH64: &str = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POF\noffset 0\nmagic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n";
    const ARM: &str = "enabled\ninterpreter /usr/libexec/qemu-binfmt/arm-binfmt-P\nflags: POF\noffset 0\nmagic 7f454c4601010100000000000000000002002800\n";
    const S390X: &str = "enabled\ninterpreter /usr/bin/qemu-s390x\nflags: F\noffset 0\nmagic 7f454c4602020100000000000000000000020016\n";

    #[test]
    fn entries_map_to_platforms() {
        let name = |t: &str| entry_platform(t).map(|p| p.to_string_short());
        assert_eq!(name(AARCH64).as_deref(), Some("linux/arm64"));
        assert_eq!(name(ARM).as_deref(), Some("linux/arm/v7"));
        assert_eq!(name(S390X).as_deref(), Some("linux/s390x"));
        assert_eq!(name(&AARCH64.replace("enabled", "disabled")), None);
        assert_eq!(
            name("enabled\nmagic 4d5a\n"),
            None,
            "not ELF (a PE handler)"
        );
        assert_eq!(name(&AARCH64.replace("offset 0", "offset 2")), None);
    }

    #[test]
    fn runnable_reads_a_binfmt_dir() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("qemu-aarch64"), AARCH64).unwrap();
        std::fs::write(d.path().join("qemu-arm"), ARM).unwrap();
        std::fs::write(d.path().join("status"), "enabled\n").unwrap();
        let r = runnable_in(d.path());
        assert!(in_list(&r, &Platform::host()));
        for p in [
            "linux/arm64",
            "linux/arm/v7",
            "linux/arm/v6",
            "linux/arm/v5",
        ] {
            assert!(in_list(&r, &Platform::parse(p).unwrap()), "{p}");
        }
        assert!(!in_list(&r, &Platform::parse("linux/s390x").unwrap()));
        let empty = tempfile::tempdir().unwrap();
        assert!(!in_list(
            &runnable_in(empty.path()),
            &Platform::parse("linux/s390x").unwrap()
        ));
    }

    #[test]
    fn a_missing_emulator_names_the_package() {
        let e = check_runnable(&[Platform::parse("linux/s390x").unwrap()]).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("linux/s390x") && m.contains("qemu-user-static"),
            "{m}"
        );
        assert!(check_runnable(&[Platform::host()]).is_ok());
    }
}

//! Whether this machine can run a platform's binaries: natively, or through a qemu-user
//! handler registered with binfmt_misc.

use crate::oci::Platform;
use std::path::Path;

/// True when RUN steps for `want` can execute here.
pub fn can_run(want: &Platform) -> bool {
    let host = Platform::host();
    if want.os == host.os && want.architecture == host.architecture {
        return true;
    }
    let binfmt = format!(
        "/proc/sys/fs/binfmt_misc/qemu-{}",
        qemu_arch(&want.architecture)
    );
    Path::new(&binfmt).exists()
}

/// The qemu name of an OCI architecture.
fn qemu_arch(arch: &str) -> &str {
    match arch {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "arm" => "arm",
        "ppc64le" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "386" => "i386",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_runs_natively() {
        assert!(can_run(&Platform::host()));
        assert_eq!(qemu_arch("arm64"), "aarch64");
    }
}

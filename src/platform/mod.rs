//! Platforms (`os/arch[/variant]`): parsing and normalising as containerd does
//! (`linux/arm64/v8` ≡ `linux/arm64`, `arm` → `arm/v7`, `x86_64` → `amd64`), matching an
//! index entry against a wanted platform with containerd's variant fallback (`arm/v7` also
//! takes `arm/v6` and `arm/v5`; `amd64` also takes `386`), the host's platform, and which
//! platforms this machine can run (see [`binfmt`]).
//!
//! The data type itself is [`crate::oci::Platform`] (it is what index entries carry); its
//! behaviour lives here. Pure logic except [`binfmt::runnable`], which reads
//! `/proc/sys/fs/binfmt_misc`.

pub mod binfmt;

pub use crate::oci::Platform;
pub use binfmt::{can_run, check_runnable};

/// Errors about platforms; each names the platform at fault and what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlatformError {
    /// A `--platform` value that does not parse.
    #[error(
        "{flag} {value:?}: expected os/arch[/variant] (e.g. linux/amd64, linux/arm64, linux/arm/v7)"
    )]
    Invalid { flag: String, value: String },
    /// A platform this machine cannot run RUN steps for.
    #[error(
        "cannot run {platform} binaries on this {host} machine: RUN steps for it need qemu's \
         user-mode emulation registered with binfmt_misc (runnable here: {runnable}); install \
         Debian's qemu-user-static (apt-get install qemu-user-static binfmt-support), or build \
         without RUN steps for it"
    )]
    NoEmulator {
        platform: String,
        host: String,
        runnable: String,
    },
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, PlatformError>;

impl Platform {
    /// The platform hoist runs on (`linux/amd64`, `linux/arm64`, …), normalised.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "loongarch64" => "loong64",
            other => other,
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: arch.to_string(),
            ..Default::default()
        }
        .normalized()
    }

    /// Parses `os/arch[/variant]` (or a bare `arch`, taken as Linux) and normalises it.
    pub fn parse(s: &str) -> Option<Platform> {
        let parts: Vec<&str> = s.trim().split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        let (os, arch, variant) = match parts.as_slice() {
            [arch] => ("linux", *arch, None),
            [os, arch] => (*os, *arch, None),
            [os, arch, v] => (*os, *arch, Some(v.to_string())),
            _ => return None,
        };
        Some(
            Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant,
                ..Default::default()
            }
            .normalized(),
        )
    }

    /// A comma-separated `--platform` list (`linux/amd64,linux/arm64`), normalised, without
    /// duplicates, in the order given. `flag` names the source in errors.
    pub fn parse_list(s: &str, flag: &str) -> Result<Vec<Platform>> {
        let mut out: Vec<Platform> = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let p = Platform::parse(item).ok_or_else(|| PlatformError::Invalid {
                flag: flag.to_string(),
                value: item.to_string(),
            })?;
            if !out.contains(&p) {
                out.push(p);
            }
        }
        if out.is_empty() {
            return Err(PlatformError::Invalid {
                flag: flag.to_string(),
                value: s.to_string(),
            });
        }
        Ok(out)
    }

    /// containerd's normal form: lower-case os, canonical architecture names, the default
    /// variant spelled out for `arm` (`v7`) and dropped where it is the only one (`arm64/v8`,
    /// `amd64/v1`).
    pub fn normalized(&self) -> Platform {
        let os = match self.os.to_ascii_lowercase().as_str() {
            "macos" => "darwin".to_string(),
            o => o.to_string(),
        };
        let variant = self.variant.as_deref().map(str::to_ascii_lowercase);
        let (arch, variant): (&str, Option<String>) =
            match (self.architecture.to_ascii_lowercase().as_str(), variant) {
                ("x86_64" | "x86-64" | "amd64", v) => {
                    ("amd64", v.filter(|v| v != "v1" && !v.is_empty()))
                }
                ("i386" | "i686" | "386", _) => ("386", None),
                ("aarch64" | "arm64", v) => (
                    "arm64",
                    match v.as_deref() {
                        None | Some("" | "8" | "v8" | "v8.0") => None,
                        Some("9" | "9.0" | "v9.0") => Some("v9".into()),
                        Some(_) => v,
                    },
                ),
                ("armhf", _) => ("arm", Some("v7".into())),
                ("armel", _) => ("arm", Some("v6".into())),
                ("arm", None) => ("arm", Some("v7".into())),
                ("arm", Some(v)) => (
                    "arm",
                    Some(match v.as_str() {
                        "" | "7" => "v7".into(),
                        "5" | "6" | "8" => format!("v{v}"),
                        _ => v,
                    }),
                ),
                (a, v) => return self.with(os, a, v.filter(|v| !v.is_empty())),
            };
        self.with(os, arch, variant)
    }

    fn with(&self, os: String, arch: &str, variant: Option<String>) -> Platform {
        Platform {
            os,
            architecture: arch.to_string(),
            variant,
            os_version: self.os_version.clone(),
            os_features: self.os_features.clone(),
        }
    }

    /// `os/arch[/variant]`.
    pub fn to_string_short(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{}", self.os, self.architecture, v),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }

    /// BuildKit's directory name for this platform in a multi-platform `type=local` export:
    /// `linux_amd64`, `linux_arm_v7`.
    pub fn dir_name(&self) -> String {
        self.to_string_short().replace('/', "_")
    }

    /// The platforms an image for `self` may be replaced by, best first: itself, then
    /// containerd's fallbacks (lower `arm` variants; `arm/v8` down to `arm/v5`; `386` for
    /// `amd64`). All normalised.
    pub fn fallbacks(&self) -> Vec<Platform> {
        let me = self.normalized();
        let mut out = vec![me.clone()];
        let arm = |v: &str| Platform {
            variant: Some(v.to_string()),
            architecture: "arm".into(),
            ..me.clone()
        };
        match (me.architecture.as_str(), me.variant.as_deref()) {
            ("arm", Some(v)) => {
                let order = ["v8", "v7", "v6", "v5"];
                if let Some(i) = order.iter().position(|o| *o == v) {
                    out.extend(order[i + 1..].iter().map(|v| arm(v)));
                }
            }
            ("amd64", _) => out.push(Platform {
                architecture: "386".into(),
                variant: None,
                ..me.clone()
            }),
            _ => {}
        }
        out
    }

    /// How well `have` (an index entry's platform) serves `self`: `Some(0)` for the same
    /// platform, higher for a fallback, `None` when it cannot. OS version and features are
    /// not compared (Linux images do not set them).
    pub fn rank(&self, have: &Platform) -> Option<usize> {
        let have = have.normalized();
        self.fallbacks().iter().position(|f| {
            f.os == have.os && f.architecture == have.architecture && f.variant == have.variant
        })
    }

    /// True when `have` is `self` after normalising (`linux/arm64/v8` is `linux/arm64`).
    pub fn same(&self, have: &Platform) -> bool {
        self.rank(have) == Some(0)
    }
}

/// The best of `candidates` for `want` (lowest [`Platform::rank`], first on a tie), by index.
pub fn best_match<'a>(
    want: &Platform,
    candidates: impl IntoIterator<Item = Option<&'a Platform>>,
) -> Option<usize> {
    candidates
        .into_iter()
        .enumerate()
        .filter_map(|(i, p)| p.and_then(|p| want.rank(p)).map(|r| (r, i)))
        .min()
        .map(|(_, i)| i)
}

#[cfg(test)]
mod tests;

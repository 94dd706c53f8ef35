//! `RUN --mount=…` option parsing (after expansion) into a typed `MountSpec`.

/// A typed `--mount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    Bind { target: String, source: Option<String>, from: Option<String>, readwrite: bool },
    Cache { target: String, id: Option<String>, sharing: CacheSharing, from: Option<String>, source: Option<String>, mode: Option<u32>, uid: Option<u32>, gid: Option<u32>, readonly: bool },
    Tmpfs { target: String, size: Option<u64> },
    Secret { id: Option<String>, target: Option<String>, env: Option<String>, required: bool, mode: Option<u32>, uid: Option<u32>, gid: Option<u32> },
    Ssh { id: Option<String>, target: Option<String>, required: bool, mode: Option<u32>, uid: Option<u32>, gid: Option<u32> },
}

/// `sharing=` of a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheSharing {
    #[default]
    Shared,
    Private,
    Locked,
}

/// Parses one expanded `--mount` value; errors name the bad option.
pub fn parse_mount(_value: &str) -> Result<MountSpec, String> {
    todo!("parser helper")
}

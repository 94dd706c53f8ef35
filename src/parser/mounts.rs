//! `RUN --mount=…` option parsing (after expansion) into a typed `MountSpec`.

/// The options of one `--mount=type=cache,…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheMount {
    pub target: String,
    pub id: Option<String>,
    pub sharing: CacheSharing,
    /// `from=`: the stage or image that seeds a new cache.
    pub from: Option<String>,
    pub source: Option<String>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub readonly: bool,
}

/// A typed `--mount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    Bind {
        target: String,
        source: Option<String>,
        from: Option<String>,
        readwrite: bool,
    },
    Cache(CacheMount),
    Tmpfs {
        target: String,
        size: Option<u64>,
    },
    Secret {
        id: Option<String>,
        target: Option<String>,
        env: Option<String>,
        required: bool,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    },
    Ssh {
        id: Option<String>,
        target: Option<String>,
        required: bool,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    },
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
pub fn parse_mount(value: &str) -> Result<MountSpec, String> {
    let mut kv: Vec<(String, Option<String>)> = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some((k, v)) => kv.push((k.trim().to_ascii_lowercase(), Some(v.trim().to_string()))),
            None => kv.push((part.to_ascii_lowercase(), None)),
        }
    }
    let ty = kv
        .iter()
        .find(|(k, _)| k == "type")
        .and_then(|(_, v)| v.clone())
        .unwrap_or_else(|| "bind".into());
    let get = |names: &[&str]| {
        kv.iter()
            .find(|(k, _)| names.contains(&k.as_str()))
            .map(|(_, v)| v.clone().unwrap_or_default())
    };
    let flag = |names: &[&str]| -> Result<bool, String> {
        match kv.iter().find(|(k, _)| names.contains(&k.as_str())) {
            None => Ok(false),
            Some((_, None)) => Ok(true),
            Some((k, Some(v))) => match v.as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(format!("invalid value for {k}: {v:?}")),
            },
        }
    };
    let num = |names: &[&str], radix: u32| -> Result<Option<u32>, String> {
        get(names)
            .map(|v| {
                u32::from_str_radix(&v, radix)
                    .map_err(|_| format!("invalid value for {}: {v:?}", names[0]))
            })
            .transpose()
    };
    let allowed: &[&str] = match ty.as_str() {
        "bind" => &[
            "type",
            "target",
            "dst",
            "destination",
            "source",
            "src",
            "from",
            "rw",
            "readwrite",
            "ro",
            "readonly",
        ],
        "cache" => &[
            "type",
            "target",
            "dst",
            "destination",
            "id",
            "sharing",
            "from",
            "source",
            "src",
            "mode",
            "uid",
            "gid",
            "ro",
            "readonly",
            "rw",
            "readwrite",
        ],
        "tmpfs" => &["type", "target", "dst", "destination", "size"],
        "secret" => &[
            "type",
            "id",
            "target",
            "dst",
            "destination",
            "env",
            "required",
            "mode",
            "uid",
            "gid",
        ],
        "ssh" => &[
            "type",
            "id",
            "target",
            "dst",
            "destination",
            "required",
            "mode",
            "uid",
            "gid",
        ],
        other => return Err(format!("unsupported mount type {other:?}")),
    };
    if let Some((k, _)) = kv.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        return Err(format!("unexpected key '{k}' for mount type {ty}"));
    }
    let target = get(&["target", "dst", "destination"]);
    let need_target = || {
        target
            .clone()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| format!("mount type {ty} requires target"))
    };
    Ok(match ty.as_str() {
        "bind" => MountSpec::Bind {
            target: need_target()?,
            source: get(&["source", "src"]),
            from: get(&["from"]),
            readwrite: flag(&["rw", "readwrite"])?,
        },
        "cache" => MountSpec::Cache(CacheMount {
            target: need_target()?,
            id: get(&["id"]),
            sharing: match get(&["sharing"]).as_deref() {
                None | Some("shared") => CacheSharing::Shared,
                Some("private") => CacheSharing::Private,
                Some("locked") => CacheSharing::Locked,
                Some(o) => return Err(format!("unsupported sharing value {o:?}")),
            },
            from: get(&["from"]),
            source: get(&["source", "src"]),
            mode: num(&["mode"], 8)?,
            uid: num(&["uid"], 10)?,
            gid: num(&["gid"], 10)?,
            readonly: flag(&["ro", "readonly"])?,
        }),
        "tmpfs" => MountSpec::Tmpfs {
            target: need_target()?,
            size: get(&["size"])
                .map(|s| parse_size(&s).ok_or_else(|| format!("invalid size {s:?}")))
                .transpose()?,
        },
        "secret" => MountSpec::Secret {
            id: get(&["id"]),
            target,
            env: get(&["env"]),
            required: flag(&["required"])?,
            mode: num(&["mode"], 8)?,
            uid: num(&["uid"], 10)?,
            gid: num(&["gid"], 10)?,
        },
        _ => MountSpec::Ssh {
            id: get(&["id"]),
            target,
            required: flag(&["required"])?,
            mode: num(&["mode"], 8)?,
            uid: num(&["uid"], 10)?,
            gid: num(&["gid"], 10)?,
        },
    })
}

/// `64m`, `1g`, `4096` → bytes (binary units).
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = match s.trim_end_matches('b').chars().last()? {
        'k' => (&s[..s.trim_end_matches('b').len() - 1], 1u64 << 10),
        'm' => (&s[..s.trim_end_matches('b').len() - 1], 1 << 20),
        'g' => (&s[..s.trim_end_matches('b').len() - 1], 1 << 30),
        _ => (s.trim_end_matches('b'), 1),
    };
    num.parse::<u64>().ok().map(|n| n * mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type() {
        assert_eq!(
            parse_mount("type=cache,target=/var/cache/apt,sharing=locked,mode=0700,uid=1000")
                .unwrap(),
            MountSpec::Cache(CacheMount {
                target: "/var/cache/apt".into(),
                id: None,
                sharing: CacheSharing::Locked,
                from: None,
                source: None,
                mode: Some(0o700),
                uid: Some(1000),
                gid: None,
                readonly: false
            })
        );
        assert_eq!(
            parse_mount("source=input.txt,target=/mnt/input.txt").unwrap(),
            MountSpec::Bind {
                target: "/mnt/input.txt".into(),
                source: Some("input.txt".into()),
                from: None,
                readwrite: false
            }
        );
        assert_eq!(
            parse_mount("type=tmpfs,target=/scratch,size=64m").unwrap(),
            MountSpec::Tmpfs {
                target: "/scratch".into(),
                size: Some(64 << 20)
            }
        );
        assert!(matches!(
            parse_mount("type=secret,id=token,env=TOKEN").unwrap(),
            MountSpec::Secret { env: Some(_), .. }
        ));
        assert!(matches!(
            parse_mount("type=ssh").unwrap(),
            MountSpec::Ssh { .. }
        ));
    }

    #[test]
    fn bad_options_are_named() {
        assert!(
            parse_mount("type=bind,target=/x,bogus=1")
                .unwrap_err()
                .contains("bogus")
        );
        assert!(
            parse_mount("type=nfs,target=/x")
                .unwrap_err()
                .contains("nfs")
        );
        assert!(parse_mount("type=cache").unwrap_err().contains("target"));
        assert!(parse_mount("type=cache,target=/x,sharing=weird").is_err());
    }
}

//! Resolving Dockerfile `USER` and `COPY --chown` values against a rootfs' `/etc/passwd` and
//! `/etc/group`, the way Docker and BuildKit do. The files are read in-root (symlinks clamped
//! to the rootfs), only as regular files of at most 10 MiB.

use super::fsutil::read_regular_in_root;
use super::{ExecutorError, Result};
use std::path::Path;

/// Largest /etc/passwd or /etc/group hoist reads.
pub const MAX_DB_SIZE: u64 = 10 << 20;

/// A user resolved for a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// The process's groups: the primary gid first (unless the list already holds it), then
    /// the supplementary groups from /etc/group member lists when no group was given; as
    /// BuildKit/runc set them, so `id` as root prints `groups=0(root)`.
    pub additional_gids: Vec<u32>,
    /// Home directory from /etc/passwd, when the user has an entry.
    pub home: Option<String>,
}

/// One /etc/passwd entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// One /etc/group entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// Parses /etc/passwd text; malformed lines are skipped (as libc does).
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].trim().parse().ok()?,
                gid: f[3].trim().parse().ok()?,
                home: f.get(5).map(|s| s.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

/// Parses /etc/group text; malformed lines are skipped.
pub fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 3 {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f[2].trim().parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Resolves `user` (`""`, `name`, `uid`, `name:group`, `uid:gid`, …) against parsed
/// databases. `rootfs` only names the files in errors.
pub fn resolve_with(
    user: &str,
    passwd: &[PasswdEntry],
    groups: &[GroupEntry],
    rootfs: &Path,
) -> Result<ResolvedUser> {
    let (user_arg, group_arg) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let numeric_uid = user_arg.parse::<u32>().ok();
    let entry = if user_arg.is_empty() {
        passwd.iter().find(|p| p.uid == 0)
    } else if let Some(uid) = numeric_uid {
        passwd.iter().find(|p| p.uid == uid)
    } else {
        passwd.iter().find(|p| p.name == user_arg)
    };
    let (uid, mut gid, name, home) = match (entry, numeric_uid) {
        (Some(e), _) => (e.uid, e.gid, Some(e.name.as_str()), Some(e.home.clone())),
        (None, Some(uid)) => (uid, 0, None, None),
        (None, None) if user_arg.is_empty() => (0, 0, None, None),
        (None, None) => {
            return Err(ExecutorError::UnknownUser {
                name: user_arg.into(),
                rootfs: rootfs.into(),
            });
        }
    };
    let mut additional_gids = Vec::new();
    match group_arg.filter(|g| !g.is_empty()) {
        Some(g) => {
            gid = lookup_group(g, groups, rootfs)?;
        }
        None => {
            if let Some(name) = name {
                for g in groups
                    .iter()
                    .filter(|g| g.members.iter().any(|m| m == name))
                {
                    if !additional_gids.contains(&g.gid) {
                        additional_gids.push(g.gid);
                    }
                }
            }
        }
    }
    // BuildKit adds the primary gid in front unless the supplementary list has it.
    if !additional_gids.contains(&gid) {
        additional_gids.insert(0, gid);
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home: home.filter(|h| !h.is_empty()),
    })
}

fn lookup_group(g: &str, groups: &[GroupEntry], rootfs: &Path) -> Result<u32> {
    if let Ok(gid) = g.parse::<u32>() {
        return Ok(gid);
    }
    groups
        .iter()
        .find(|e| e.name == g)
        .map(|e| e.gid)
        .ok_or_else(|| ExecutorError::UnknownGroup {
            name: g.into(),
            rootfs: rootfs.into(),
        })
}

/// Reads /etc/passwd and /etc/group from `rootfs` (missing files are empty).
pub fn read_dbs(rootfs: &Path) -> Result<(Vec<PasswdEntry>, Vec<GroupEntry>)> {
    let read = |p: &str| -> Result<String> {
        match read_regular_in_root(rootfs, p, MAX_DB_SIZE) {
            Ok(Some(b)) => Ok(String::from_utf8_lossy(&b).into_owned()),
            Ok(None) => Ok(String::new()),
            // The image's path, not the sandbox's: that is what the user can fix.
            Err(reason) => Err(ExecutorError::BadUserDb {
                path: p.into(),
                reason,
            }),
        }
    };
    Ok((
        parse_passwd(&read("/etc/passwd")?),
        parse_group(&read("/etc/group")?),
    ))
}

/// Resolves a `USER` value against the rootfs' /etc/passwd and /etc/group.
pub fn resolve(rootfs: &Path, user: &str) -> Result<ResolvedUser> {
    let (p, g) = read_dbs(rootfs)?;
    resolve_with(user, &p, &g, rootfs)
}

/// Resolves the owner BuildKit's file operations give a path for a `USER` value (WORKDIR's
/// mkdir): a number `N` is `N:N`; a name is looked up in passwd and is root when absent (no
/// error, unlike RUN); a group part, numeric or a name found in group, overrides the gid.
pub fn file_op_owner(spec: &str, passwd: &[PasswdEntry], groups: &[GroupEntry]) -> (u32, u32) {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, mut gid) = match u.parse::<u32>() {
        Ok(n) => (n, n),
        Err(_) => passwd
            .iter()
            .find(|p| p.name == u)
            .map_or((0, 0), |e| (e.uid, e.gid)),
    };
    if let Some(g) = g.filter(|g| !g.is_empty()) {
        if let Ok(n) = g.parse::<u32>() {
            gid = n;
        } else if let Some(e) = groups.iter().find(|e| e.name == g) {
            gid = e.gid;
        }
    }
    (uid, gid)
}

/// Resolves `COPY --chown` against the rootfs' /etc/passwd and /etc/group. BuildKit resolves
/// it as a file operation, like WORKDIR's owner ([`file_op_owner`]): a name that the files do
/// not list (or a missing file) falls back instead of failing, unlike USER for RUN.
pub fn resolve_chown(rootfs: &Path, spec: &str) -> Result<(u32, u32)> {
    let (p, g) = read_dbs(rootfs)?;
    Ok(file_op_owner(spec, &p, &g))
}

/// True when a `--chown` or USER value names a user or group (rather than numbers):
/// BuildKit can only look names up in a filesystem the file operation is based on.
/// `root` counts as a number, as in BuildKit's parser.
pub fn names_an_id(spec: &str) -> bool {
    spec.split(':')
        .take(2)
        .any(|p| p != "root" && p.parse::<u32>().is_err())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
        app:x:1000:1000::/home/app:/bin/sh\n\
        broken line\n\
        nohome:x:1001:1001\n";
    const GROUP: &str =
        "root:x:0:\nwheel:x:10:root,app\napp:x:1000:\ndocker:x:999:app\nstaff:x:50:\n";

    fn rootfs() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        std::fs::write(t.path().join("etc/passwd"), PASSWD).unwrap();
        std::fs::write(t.path().join("etc/group"), GROUP).unwrap();
        t
    }

    fn r(user: &str) -> Result<ResolvedUser> {
        let t = rootfs();
        resolve(t.path(), user)
    }

    #[test]
    fn file_op_owner_is_buildkits() {
        let (p, g) = (parse_passwd(PASSWD), parse_group(GROUP));
        assert_eq!(file_op_owner("1234", &p, &g), (1234, 1234));
        assert_eq!(file_op_owner("app", &p, &g), (1000, 1000));
        assert_eq!(file_op_owner("nobody-here", &p, &g), (0, 0));
        assert_eq!(file_op_owner("app:staff", &p, &g), (1000, 50));
        assert_eq!(file_op_owner("app:7", &p, &g), (1000, 7));
        assert_eq!(file_op_owner("1234:nogroup", &p, &g), (1234, 1234));
    }

    #[test]
    fn root_by_default() {
        let u = r("").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_deref()), (0, 0, Some("/root")));
        assert_eq!(u.additional_gids, vec![0, 10]);
    }

    #[test]
    fn by_name_with_supplementary_groups() {
        let u = r("app").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.additional_gids, vec![1000, 10, 999]);
        assert_eq!(u.home.as_deref(), Some("/home/app"));
    }

    /// A user whose primary group also lists it as a member keeps one copy, in /etc/group's
    /// order (BuildKit only prepends the primary gid when it is missing).
    #[test]
    fn primary_gid_listed_once() {
        let groups = parse_group("wheel:x:10:app\napp:x:1000:app\n");
        let u = resolve_with("app", &parse_passwd(PASSWD), &groups, Path::new("/r")).unwrap();
        assert_eq!(u.additional_gids, vec![10, 1000]);
    }

    #[test]
    fn by_uid_matches_passwd() {
        let u = r("1000").unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids.len()), (1000, 1000, 3));
    }

    #[test]
    fn explicit_group_drops_supplementary() {
        let u = r("app:staff").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 50));
        assert_eq!(u.additional_gids, vec![50]);
        let u = r("1:4242").unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids), (1, 4242, vec![4242]));
    }

    #[test]
    fn unknown_numeric_uid_allowed_with_gid_0() {
        let u = r("4321").unwrap();
        assert_eq!((u.uid, u.gid, u.home), (4321, 0, None));
        assert_eq!(u.additional_gids, vec![0]);
        assert_eq!(r("4321:7").unwrap().gid, 7);
    }

    #[test]
    fn unknown_names_are_clear_errors() {
        let e = r("nobody").unwrap_err().to_string();
        assert!(
            e.starts_with("unable to find user nobody: no matching entries in "),
            "{e}"
        );
        assert!(e.ends_with("/etc/passwd"), "{e}");
        let e = r("app:nogroup").unwrap_err().to_string();
        assert!(e.contains("unable to find group nogroup"), "{e}");
    }

    #[test]
    fn missing_dbs_allow_numeric_only() {
        let t = tempfile::tempdir().unwrap();
        let u = resolve(t.path(), "").unwrap();
        assert_eq!((u.uid, u.gid, u.home), (0, 0, None));
        assert_eq!(resolve(t.path(), "12:34").unwrap().gid, 34);
        assert!(resolve(t.path(), "app").is_err());
    }

    #[test]
    fn oversized_or_special_db_rejected() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc/passwd")).unwrap();
        let e = resolve(t.path(), "root").unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        std::fs::remove_dir(t.path().join("etc/passwd")).unwrap();
        let f = std::fs::File::create(t.path().join("etc/passwd")).unwrap();
        f.set_len(MAX_DB_SIZE + 1).unwrap();
        let e = resolve(t.path(), "root").unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");
    }

    #[test]
    fn chown_semantics() {
        let t = rootfs();
        assert_eq!(resolve_chown(t.path(), "app").unwrap(), (1000, 1000));
        assert_eq!(resolve_chown(t.path(), "daemon:wheel").unwrap(), (1, 10));
        assert_eq!(resolve_chown(t.path(), "42").unwrap(), (42, 42));
        assert_eq!(resolve_chown(t.path(), "42:7").unwrap(), (42, 7));
        assert_eq!(resolve_chown(t.path(), "1000:docker").unwrap(), (1000, 999));
        // Unknown names fall back as in BuildKit's file operations: root, the user's gid.
        assert_eq!(resolve_chown(t.path(), "ghost").unwrap(), (0, 0));
        assert_eq!(resolve_chown(t.path(), "app:ghosts").unwrap(), (1000, 1000));
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(resolve_chown(empty.path(), "app:staff").unwrap(), (0, 0));
        assert!(names_an_id("app") && names_an_id("0:staff") && names_an_id(":staff"));
        assert!(!names_an_id("root") && !names_an_id("1000:50") && !names_an_id("7"));
    }
}

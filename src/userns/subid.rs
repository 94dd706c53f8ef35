//! `/etc/subuid` and `/etc/subgid`: the subordinate id ranges a user may map into a user
//! namespace (`shadow-utils`' format, one `NAME_OR_UID:START:COUNT` per line). hoist reads
//! them only to decide whether `newuidmap`/`newgidmap` can give it a full mapping; those
//! setuid helpers check the same files again before they write anything.

use std::path::Path;

/// One subordinate range: ids `start … start+count-1` on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u32,
    pub count: u32,
}

/// The first range of `file`'s text that belongs to the user (by `name` or numeric `id`).
/// Malformed lines are skipped, as `newuidmap` does.
pub fn parse(text: &str, name: Option<&str>, id: u32) -> Option<Range> {
    text.lines().find_map(|line| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let mut f = line.split(':');
        let who = f.next()?;
        let start = f.next()?.trim().parse::<u32>().ok()?;
        let count = f.next()?.trim().parse::<u32>().ok()?;
        let mine = Some(who) == name || who.parse::<u32>().ok() == Some(id);
        (mine && count > 0).then_some(Range { start, count })
    })
}

/// The user's range in `path` (`/etc/subuid` or `/etc/subgid`); `None` when the file is
/// missing or has no line for the user.
pub fn lookup(path: &Path, name: Option<&str>, id: u32) -> Option<Range> {
    let text = std::fs::read_to_string(path).ok()?;
    parse(&text, name, id)
}

/// The login name of `uid` from `/etc/passwd` (`newuidmap` matches ranges by name first).
pub fn user_name(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let _pw = f.next()?;
        (f.next()?.parse::<u32>().ok()? == uid).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_users_range_by_name_or_id() {
        let t = "# comment\nalice:100000:65536\n1001:200000:1000\nbad:line\nbob:x:5\n";
        assert_eq!(
            parse(t, Some("alice"), 1000),
            Some(Range {
                start: 100000,
                count: 65536
            })
        );
        assert_eq!(
            parse(t, Some("carol"), 1001),
            Some(Range {
                start: 200000,
                count: 1000
            })
        );
        assert_eq!(parse(t, Some("bob"), 1002), None);
        assert_eq!(parse(t, None, 1003), None);
        assert_eq!(parse("dave:1:0\n", Some("dave"), 5), None);
    }
}

//! The pure part of garbage collection: given what the store holds (records that use parts of
//! known sizes) and an ordered list of policies, decide which records go.
//!
//! Policies run in order, as BuildKit's do: each removes unprotected records it matches,
//! least recently used first, until the store's total is at most its `keep_storage`. A part
//! (a blob, a snapshot, a cache mount's directory) is freed when the last record using it
//! goes; parts no record uses are freed whatever the policies say. Tagged images are only
//! candidates for a policy with `all`, and only after every other kind of record of that
//! policy (they are what the user asked to keep).

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A build cache entry (a step's layer and snapshot).
    CacheEntry,
    /// A `RUN --mount=type=cache` directory.
    CacheMount,
    /// A tagged image (with `all` only).
    Image,
}

/// One GC policy (Docker's `builder.gc.policy[]` entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Trim until the store holds at most this many bytes.
    pub keep_storage: u64,
    /// Only records unused for at least this long (`unused-for=168h`).
    pub unused_for: Option<Duration>,
    /// Tagged images are candidates too.
    pub all: bool,
}

/// A removable thing and the parts it uses.
#[derive(Debug, Clone)]
pub struct Record {
    pub kind: Kind,
    /// When it was last used (a cache hit, a build, a tag).
    pub last_used: SystemTime,
    /// Never removed (what the just-finished build produced or used).
    pub protected: bool,
    /// Indices into [`Inventory::parts`].
    pub parts: Vec<usize>,
}

/// Everything the store holds, as records over sized parts.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Size in bytes of each part.
    pub parts: Vec<u64>,
    pub records: Vec<Record>,
}

/// What to remove and what it frees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Indices into [`Inventory::records`], in removal order.
    pub remove: Vec<usize>,
    /// Parts that end up unused (freed), sorted.
    pub freed_parts: BTreeSet<usize>,
    /// Total bytes before.
    pub before: u64,
    /// Total bytes after.
    pub after: u64,
}

impl Inventory {
    /// Total bytes of every part.
    pub fn total(&self) -> u64 {
        self.parts.iter().sum()
    }

    /// How many records use each part.
    fn refcounts(&self) -> Vec<usize> {
        let mut n = vec![0usize; self.parts.len()];
        for r in &self.records {
            for &p in &r.parts {
                if let Some(c) = n.get_mut(p) {
                    *c += 1;
                }
            }
        }
        n
    }
}

/// Decides what goes under `policies` at time `now` (see the module doc).
pub fn plan(inv: &Inventory, policies: &[Policy], now: SystemTime) -> Plan {
    let mut refs = inv.refcounts();
    let before = inv.total();
    let mut out = Plan {
        before,
        ..Plan::default()
    };
    let mut total = before;
    for (i, &n) in refs.iter().enumerate() {
        if n == 0 {
            out.freed_parts.insert(i);
            total -= inv.parts[i];
        }
    }
    let mut removed = vec![false; inv.records.len()];
    // Least recently used first; images after everything else.
    let mut order: Vec<usize> = (0..inv.records.len()).collect();
    order.sort_by_key(|&i| {
        let r = &inv.records[i];
        (r.kind == Kind::Image, r.last_used, i)
    });
    for p in policies {
        for &i in &order {
            if total <= p.keep_storage {
                break;
            }
            let r = &inv.records[i];
            let old_enough = p
                .unused_for
                .is_none_or(|d| now.duration_since(r.last_used).is_ok_and(|age| age >= d));
            if removed[i] || r.protected || (r.kind == Kind::Image && !p.all) || !old_enough {
                continue;
            }
            removed[i] = true;
            out.remove.push(i);
            for &part in &r.parts {
                if let Some(c) = refs.get_mut(part) {
                    *c -= 1;
                    if *c == 0 {
                        out.freed_parts.insert(part);
                        total -= inv.parts[part];
                    }
                }
            }
        }
    }
    out.after = total;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn rec(kind: Kind, used: u64, parts: &[usize]) -> Record {
        Record {
            kind,
            last_used: at(used),
            protected: false,
            parts: parts.to_vec(),
        }
    }

    fn keep(n: u64) -> Policy {
        Policy {
            keep_storage: n,
            unused_for: None,
            all: false,
        }
    }

    #[test]
    fn under_the_limit_nothing_goes_but_unused_parts() {
        let inv = Inventory {
            parts: vec![10, 20, 5],
            records: vec![
                rec(Kind::CacheEntry, 1, &[0]),
                rec(Kind::CacheEntry, 2, &[1]),
            ],
        };
        let p = plan(&inv, &[keep(100)], at(10));
        assert!(p.remove.is_empty());
        assert_eq!(p.freed_parts, BTreeSet::from([2]));
        assert_eq!((p.before, p.after), (35, 30));
    }

    #[test]
    fn least_recently_used_goes_first_until_the_limit() {
        let inv = Inventory {
            parts: vec![10, 10, 10, 10],
            records: vec![
                rec(Kind::CacheEntry, 30, &[0]),
                rec(Kind::CacheEntry, 10, &[1]),
                rec(Kind::CacheEntry, 20, &[2]),
                rec(Kind::CacheEntry, 40, &[3]),
            ],
        };
        let p = plan(&inv, &[keep(25)], at(50));
        assert_eq!(p.remove, vec![1, 2]);
        assert_eq!(p.after, 20);
    }

    #[test]
    fn shared_parts_are_freed_with_their_last_user_and_protected_records_stay() {
        let mut protected = rec(Kind::CacheEntry, 1, &[2]);
        protected.protected = true;
        let inv = Inventory {
            parts: vec![100, 10, 50],
            records: vec![
                rec(Kind::CacheEntry, 2, &[0, 1]),
                rec(Kind::CacheEntry, 3, &[0]),
                protected,
            ],
        };
        let p = plan(&inv, &[keep(0)], at(10));
        assert_eq!(p.remove, vec![0, 1]);
        assert_eq!(p.freed_parts, BTreeSet::from([0, 1]));
        assert_eq!(p.after, 50, "the protected record's part stays");
    }

    #[test]
    fn images_only_with_all_and_last() {
        let inv = Inventory {
            parts: vec![10, 10, 10],
            records: vec![
                rec(Kind::Image, 1, &[0]),
                rec(Kind::CacheEntry, 5, &[1]),
                rec(Kind::CacheMount, 6, &[2]),
            ],
        };
        let p = plan(&inv, &[keep(0)], at(10));
        assert_eq!(p.remove, vec![1, 2], "no image without all");
        let all = Policy {
            all: true,
            ..keep(5)
        };
        let p = plan(&inv, &[all], at(10));
        assert_eq!(p.remove, vec![1, 2, 0], "the oldest image still goes last");
    }

    #[test]
    fn unused_for_spares_recent_records_and_later_policies_continue() {
        let inv = Inventory {
            parts: vec![10, 10],
            records: vec![
                rec(Kind::CacheEntry, 100, &[0]),
                rec(Kind::CacheEntry, 900, &[1]),
            ],
        };
        let old = Policy {
            unused_for: Some(Duration::from_secs(500)),
            ..keep(0)
        };
        let p = plan(&inv, std::slice::from_ref(&old), at(1000));
        assert_eq!(p.remove, vec![0]);
        let p = plan(&inv, &[old, keep(0)], at(1000));
        assert_eq!(p.remove, vec![0, 1]);
    }
}

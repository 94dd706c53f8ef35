//! Time limits of registry work: the overall deadline of one operation (a pull or push of one
//! image, a cache import or export), and the parsing of limits given by the user.
//!
//! An operation's deadline lives in a thread-local scope opened by [`Client::operation`]
//! (`super::Client::operation`): every request, retry and backoff made inside it (on this
//! thread, or on the threads `parallel_each` starts for it) checks the time left, so the
//! client's methods need no extra argument and nested operations (a push of an index pushing
//! its images) share the outermost deadline.

use super::{RegistryError, Result};
use std::cell::RefCell;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A time limit; `TimeLimit(None)` is no limit. Parsed from `90s`, `10m`, `1h30m`, `500ms`,
/// or a bare number of seconds; `0` means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeLimit(pub Option<Duration>);

impl TimeLimit {
    /// Default limit of one registry operation: 30 minutes. Long enough for a multi-gigabyte
    /// image on a modest link (2 GB at 2 MB/s is about 17 minutes) or a registry that asks
    /// for several long `Retry-After` waits; short enough to end before the usual CI job
    /// limits (60 minutes and more) with a message that says what gave up.
    pub const DEFAULT_OPERATION: TimeLimit = TimeLimit(Some(Duration::from_secs(30 * 60)));
    /// Default idle limit of one request (nothing received for this long): 60 seconds.
    pub const DEFAULT_IDLE: TimeLimit = TimeLimit(Some(Duration::from_secs(60)));
    /// No limit.
    pub const NONE: TimeLimit = TimeLimit(None);
}

impl FromStr for TimeLimit {
    type Err = RegistryError;

    fn from_str(s: &str) -> Result<TimeLimit> {
        let d = parse_duration(s)?;
        Ok(TimeLimit(Some(d).filter(|d| !d.is_zero())))
    }
}

impl fmt::Display for TimeLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("0"),
            Some(d) => f.write_str(&format_duration(d)),
        }
    }
}

/// Parses a duration: one or more `NUMBER UNIT` parts (units `ms`, `s`, `m`, `h`), as in
/// `90s`, `10m`, `1h30m`, `1m30s500ms`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = |reason: &'static str| RegistryError::InvalidDuration {
        value: s.to_string(),
        reason,
    };
    let t = s.trim();
    if t.is_empty() {
        return Err(bad("empty"));
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| bad("too large"));
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad("expected a number"));
        }
        let (num, tail) = rest.split_at(digits);
        let n: u64 = num.parse().map_err(|_| bad("too large"))?;
        let letters = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(letters);
        let part = match unit {
            "ms" => Some(Duration::from_millis(n)),
            "s" => Some(Duration::from_secs(n)),
            "m" => n.checked_mul(60).map(Duration::from_secs),
            "h" => n.checked_mul(3600).map(Duration::from_secs),
            "" => {
                return Err(bad(
                    "a number needs a unit (ms, s, m or h) after another part",
                ));
            }
            _ => return Err(bad("unknown unit (ms, s, m or h)")),
        };
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or_else(|| bad("too large"))?;
        rest = tail;
    }
    Ok(total)
}

/// `d` as the user would write it: `90s`, `10m`, `2h`, `1500ms`.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 {
        format!("{}ms", d.as_millis())
    } else if secs != 0 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs != 0 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// The deadline of one registry operation.
#[derive(Debug, Clone)]
pub(crate) struct Deadline {
    what: Arc<str>,
    limit: Option<Duration>,
    at: Option<Instant>,
}

impl Deadline {
    /// A deadline `limit` from now for the operation described by `what`.
    pub(crate) fn start(what: String, limit: TimeLimit) -> Deadline {
        Deadline {
            what: what.into(),
            limit: limit.0,
            at: limit.0.and_then(|l| Instant::now().checked_add(l)),
        }
    }

    /// No deadline (work done outside any operation).
    pub(crate) fn unlimited() -> Deadline {
        Deadline {
            what: "".into(),
            limit: None,
            at: None,
        }
    }

    /// Time left; `None` when there is no limit.
    pub(crate) fn remaining(&self) -> Option<Duration> {
        self.at
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// `d`, cut to the time left (a backoff sleep never outlives the operation).
    pub(crate) fn cap(&self, d: Duration) -> Duration {
        self.remaining().map_or(d, |r| d.min(r))
    }

    /// True once the time is up.
    pub(crate) fn expired(&self) -> bool {
        self.remaining().is_some_and(|r| r.is_zero())
    }

    /// The timeout error once the time is up.
    pub(crate) fn check(&self) -> Result<()> {
        if self.expired() {
            return Err(self.error());
        }
        Ok(())
    }

    fn error(&self) -> RegistryError {
        RegistryError::Timeout {
            what: self.what.to_string(),
            limit: format_duration(self.limit.unwrap_or_default()),
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Deadline>> = const { RefCell::new(None) };
}

/// The deadline of the operation this thread works for, if any.
pub(crate) fn current() -> Option<Deadline> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Makes `d` this thread's deadline until the guard is dropped (then restores the previous).
pub(crate) fn enter(d: Option<Deadline>) -> Scope {
    Scope {
        prev: CURRENT.with(|c| c.replace(d)),
    }
}

/// Guard of [`enter`].
pub(crate) struct Scope {
    prev: Option<Deadline>,
}

impl Drop for Scope {
    fn drop(&mut self) {
        let prev = self.prev.take();
        CURRENT.with(|c| *c.borrow_mut() = prev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        let ok = [
            ("90s", 90_000),
            ("10m", 600_000),
            ("1h", 3_600_000),
            ("1h30m", 5_400_000),
            ("1m30s500ms", 90_500),
            ("500ms", 500),
            ("45", 45_000),
            (" 2s ", 2_000),
            ("0", 0),
            ("0s", 0),
        ];
        for (s, ms) in ok {
            assert_eq!(parse_duration(s).unwrap(), Duration::from_millis(ms), "{s}");
        }
        for bad in [
            "",
            "s",
            "10x",
            "-5s",
            "1.5m",
            "10 m",
            "m10",
            "5s3",
            "1d",
            "99999999999999999999",
            "9999999999999999h",
        ] {
            let e = parse_duration(bad).unwrap_err();
            assert!(matches!(e, RegistryError::InvalidDuration { .. }), "{bad}");
            assert!(e.to_string().contains("90s"), "{bad}: {e}");
        }
    }

    #[test]
    fn zero_is_no_limit_and_limits_print_as_written() {
        assert_eq!("0".parse::<TimeLimit>().unwrap(), TimeLimit::NONE);
        assert_eq!("0m".parse::<TimeLimit>().unwrap(), TimeLimit::NONE);
        assert_eq!(
            "30m".parse::<TimeLimit>().unwrap(),
            TimeLimit::DEFAULT_OPERATION
        );
        assert_eq!("60s".parse::<TimeLimit>().unwrap(), TimeLimit::DEFAULT_IDLE);
        for s in ["90s", "10m", "2h", "1500ms", "0"] {
            assert_eq!(s.parse::<TimeLimit>().unwrap().to_string(), s);
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "90m");
    }

    #[test]
    fn deadlines_cap_and_expire() {
        let d = Deadline::start("pulling x".into(), TimeLimit(Some(Duration::from_secs(60))));
        assert!(d.cap(Duration::from_secs(3600)) <= Duration::from_secs(60));
        assert_eq!(d.cap(Duration::from_secs(1)), Duration::from_secs(1));
        assert!(d.check().is_ok());
        let gone = Deadline::start("pushing r/a:1".into(), TimeLimit(Some(Duration::ZERO)));
        assert!(gone.expired());
        assert_eq!(gone.cap(Duration::from_secs(5)), Duration::ZERO);
        let e = gone.check().unwrap_err().to_string();
        assert!(e.starts_with("pushing r/a:1: gave up after 0s"), "{e}");
        assert!(e.contains("--registry-timeout"), "{e}");
        let none = Deadline::unlimited();
        assert_eq!(none.remaining(), None);
        assert!(!none.expired());
    }

    #[test]
    fn scopes_nest_and_restore() {
        assert!(current().is_none());
        {
            let _a = enter(Some(Deadline::start("a".into(), TimeLimit::NONE)));
            assert_eq!(current().map(|d| d.what.to_string()).as_deref(), Some("a"));
            {
                let _b = enter(Some(Deadline::start("b".into(), TimeLimit::NONE)));
                assert_eq!(current().map(|d| d.what.to_string()).as_deref(), Some("b"));
            }
            assert_eq!(current().map(|d| d.what.to_string()).as_deref(), Some("a"));
        }
        assert!(current().is_none());
    }
}

//! Retry timing: exponential backoff with jitter, and `Retry-After` (seconds or HTTP-date).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often and how long to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all (first try included).
    pub attempts: u32,
    /// First backoff delay; doubles each time.
    pub base: Duration,
    /// Cap on a backoff delay and on a `Retry-After` wait.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            base: Duration::from_millis(250),
            max: Duration::from_secs(30),
        }
    }
}

fn jitter_fraction() -> f64 {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    // Cheap mixing of the clock's nanoseconds; good enough to de-synchronise clients.
    let x = (u64::from(n)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    (x % 1000) as f64 / 1000.0
}

impl RetryPolicy {
    /// Delay before retry number `attempt` (0-based): base·2^attempt, capped, with up to 50%
    /// jitter subtracted.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.min(16));
        let d = exp.min(self.max);
        d.mul_f64(1.0 - 0.5 * jitter_fraction())
    }

    /// The wait a `Retry-After` value asks for, capped at `max`.
    pub fn retry_after(&self, value: &str) -> Option<Duration> {
        parse_retry_after(value, SystemTime::now()).map(|d| d.min(self.max))
    }
}

/// Parses `Retry-After`: delta seconds or an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = parse_http_date(v)?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

fn parse_http_date(s: &str) -> Option<SystemTime> {
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    let rest = s.split_once(", ")?.1;
    let parts: Vec<&str> = rest.split_whitespace().collect();
    if parts.len() != 5 || parts[4] != "GMT" {
        return None;
    }
    let day: u32 = parts[0].parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[1])? as u32
        + 1;
    let year: i64 = parts[2].parse().ok()?;
    let hms: Vec<u64> = parts[3]
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if hms.len() != 3 || hms[0] > 23 || hms[1] > 59 || hms[2] > 60 || !(1..=31).contains(&day) {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + (hms[0] * 3600 + hms[1] * 60 + hms[2]) as i64;
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        let p = RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        assert_eq!(
            p.retry_after("3600"),
            Some(Duration::from_secs(2)),
            "capped"
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let b0 = p.backoff(0);
        assert!(b0 <= Duration::from_millis(100) && b0 >= Duration::from_millis(50));
        let b3 = p.backoff(3);
        assert!(b3 <= Duration::from_millis(800) && b3 >= Duration::from_millis(400));
        assert!(p.backoff(20) <= Duration::from_secs(1));
    }
}

//! `created_by` strings of history entries, formatted exactly as BuildKit's Dockerfile frontend
//! writes them (Go's `%v` / `%q` renderings of slices, durations and structs).

use crate::oci::HealthConfig;

/// Go's `strconv.Quote`: double-quoted, with `\"`, `\\` and control characters escaped.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
pub fn go_quote_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", items.join(" "))
}

/// Go's `%v` of a `[]string`: `[a b]`.
pub fn go_list(v: &[String]) -> String {
    format!("[{}]", v.join(" "))
}

/// Go's `time.Duration.String()` for a non-negative number of nanoseconds.
pub fn go_duration(ns: u64) -> String {
    fn frac(v: u64, unit: u64, digits: usize) -> String {
        let whole = v / unit;
        let rem = v % unit;
        if rem == 0 {
            return whole.to_string();
        }
        let f = format!("{rem:0digits$}");
        format!("{whole}.{}", f.trim_end_matches('0'))
    }
    match ns {
        0 => "0s".into(),
        1..=999 => format!("{ns}ns"),
        1_000..=999_999 => format!("{}µs", frac(ns, 1_000, 3)),
        1_000_000..=999_999_999 => format!("{}ms", frac(ns, 1_000_000, 6)),
        _ => {
            let secs = ns / 1_000_000_000;
            let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
            let mut out = String::new();
            if h > 0 {
                out.push_str(&format!("{h}h"));
            }
            if h > 0 || m > 0 {
                out.push_str(&format!("{m}m"));
            }
            out.push_str(&frac(
                s * 1_000_000_000 + ns % 1_000_000_000,
                1_000_000_000,
                9,
            ));
            out.push('s');
            out
        }
    }
}

/// Go's `%q` of an int (a rune literal), as BuildKit's HEALTHCHECK entry shows `Retries`.
fn go_quote_rune(n: u64) -> String {
    match char::from_u32(n as u32) {
        Some('\'') => "'\\''".into(),
        Some('\\') => "'\\\\'".into(),
        Some(c) if (0x20..0x7f).contains(&n) => format!("'{c}'"),
        _ if n < 0x80 => format!("'\\x{n:02x}'"),
        Some(c) if !c.is_control() => format!("'{c}'"),
        _ => format!("'\\u{n:04x}'"),
    }
}

/// `HEALTHCHECK %q` of the config struct pointer, as BuildKit writes it.
pub fn healthcheck(hc: &HealthConfig) -> String {
    let d = |v: Option<u64>| go_quote(&go_duration(v.unwrap_or(0)));
    format!(
        "HEALTHCHECK &{{{} {} {} {} {} {}}}",
        go_quote_list(hc.test.as_deref().unwrap_or(&[])),
        d(hc.interval),
        d(hc.timeout),
        d(hc.start_period),
        d(hc.start_interval),
        go_quote_rune(hc.retries.unwrap_or(0))
    )
}

/// `K=V` as history shows a build arg, or `K` when it has no value. The value of an arg named
/// like a secret (BuildKit's SecretsUsedInArgOrEnv rule) is replaced by `<redacted>` (issue 7:
/// secrets never reach history; BuildKit would show it after warning).
pub fn arg_shown(key: &str, value: Option<&str>) -> String {
    match value {
        None => key.to_string(),
        Some(v) if !v.is_empty() && crate::lint::secrets::is_secret_key(key) => {
            format!("{key}=<redacted>")
        }
        Some(v) => format!("{key}={v}"),
    }
}

/// `RUN …` with BuildKit's `|N K=V …` prefix for the stage's ARGs (first declaration order,
/// later values win), then the command words, then ` # buildkit`.
pub fn run(args: &[(String, String)], words: &[String]) -> String {
    let mut dedup: Vec<(String, String)> = Vec::new();
    for (k, v) in args {
        match dedup.iter_mut().find(|(dk, _)| dk == k) {
            Some(slot) => slot.1 = v.clone(),
            None => dedup.push((k.clone(), v.clone())),
        }
    }
    let mut parts: Vec<String> = Vec::new();
    if !dedup.is_empty() {
        parts.push(format!("|{}", dedup.len()));
        parts.extend(dedup.iter().map(|(k, v)| arg_shown(k, Some(v))));
    }
    parts.extend(words.iter().cloned());
    format!("RUN {} # buildkit", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_renderings() {
        assert_eq!(
            go_quote_list(&["cat".into(), "a \"b\"".into()]),
            r#"["cat" "a \"b\""]"#
        );
        assert_eq!(
            go_list(&["/data".into(), "/cache".into()]),
            "[/data /cache]"
        );
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(30_000_000_000), "30s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(100_000_000), "100ms");
        assert_eq!(go_duration(1_500), "1.5µs");
        assert_eq!(go_quote_rune(2), "'\\x02'");
        assert_eq!(go_quote_rune(65), "'A'");
    }

    #[test]
    fn healthcheck_like_buildkit() {
        let hc = HealthConfig {
            test: Some(vec!["CMD-SHELL".into(), "curl -f localhost".into()]),
            interval: Some(30_000_000_000),
            timeout: Some(90_000_000_000),
            retries: Some(3),
            ..Default::default()
        };
        assert_eq!(
            healthcheck(&hc),
            r#"HEALTHCHECK &{["CMD-SHELL" "curl -f localhost"] "30s" "1m30s" "0s" "0s" '\x03'}"#
        );
    }

    #[test]
    fn secret_named_arg_values_are_redacted() {
        let args = [
            ("PASSWORD".to_string(), "hunter2".to_string()),
            ("NAME".to_string(), "x".to_string()),
            ("API_TOKEN".to_string(), String::new()),
        ];
        let s = run(&args, &["/bin/sh".into(), "-c".into(), "true".into()]);
        assert_eq!(
            s,
            "RUN |3 PASSWORD=<redacted> NAME=x API_TOKEN= /bin/sh -c true # buildkit"
        );
        assert_eq!(arg_shown("GPG_KEY_FILE", Some("/k")), "GPG_KEY_FILE=/k");
        assert_eq!(arg_shown("DB_PASSWORD", None), "DB_PASSWORD");
    }

    #[test]
    fn run_prefixes_args() {
        let w = vec!["/bin/sh".to_string(), "-c".into(), "make".into()];
        assert_eq!(run(&[], &w), "RUN /bin/sh -c make # buildkit");
        let a = vec![
            ("A".to_string(), "1".to_string()),
            ("B".into(), "".into()),
            ("A".into(), "2".into()),
        ];
        assert_eq!(run(&a, &w), "RUN |2 A=2 B= /bin/sh -c make # buildkit");
    }
}

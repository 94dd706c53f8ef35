//! Pure image-config changes, one function per instruction, exactly as BuildKit's dispatcher
//! makes them (expansion has already happened). No I/O: tested without root.

use super::EngineError;
use crate::oci::{HealthConfig, RunConfig};
use crate::parser::Command;
use serde_json::Map;

/// The shell for shell-form instructions: SHELL's, else `/bin/sh -c`.
pub fn shell_of(rc: &RunConfig) -> Vec<String> {
    rc.shell
        .clone()
        .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
}

/// argv for CMD/ENTRYPOINT/RUN in `cmd`'s form.
pub fn argv(rc: &RunConfig, cmd: &Command) -> Vec<String> {
    match cmd {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => {
            let mut v = shell_of(rc);
            v.push(s.clone());
            v
        }
    }
}

/// CMD.
pub fn set_cmd(rc: &mut RunConfig, cmd: &Command) {
    rc.cmd = Some(argv(rc, cmd));
}

/// ENTRYPOINT: also resets a CMD that was not set in this stage, as BuildKit does.
pub fn set_entrypoint(rc: &mut RunConfig, cmd: &Command, cmd_set_in_stage: bool) {
    rc.entrypoint = Some(argv(rc, cmd));
    if !cmd_set_in_stage {
        rc.cmd = None;
    }
}

/// EXPOSE of expanded port words: `80` → `80/tcp`, ranges expanded, protocol lower-cased.
pub fn expose(rc: &mut RunConfig, ports: &[String]) -> Result<Vec<String>, EngineError> {
    let map = rc.exposed_ports.get_or_insert_with(Default::default);
    let mut added = Vec::new();
    for p in ports {
        let (num, proto) = match p.split_once('/') {
            Some((n, pr)) => (n, pr.to_ascii_lowercase()),
            None => (p.as_str(), "tcp".to_string()),
        };
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(EngineError::BadValue {
                what: "EXPOSE",
                value: p.clone(),
                reason: format!("invalid protocol {proto:?}"),
            });
        }
        let bad = || EngineError::BadValue {
            what: "EXPOSE",
            value: p.clone(),
            reason: "invalid port number".into(),
        };
        let (lo, hi) = match num.split_once('-') {
            Some((a, b)) => (
                a.parse::<u16>().map_err(|_| bad())?,
                b.parse::<u16>().map_err(|_| bad())?,
            ),
            None => {
                let n = num.parse::<u16>().map_err(|_| bad())?;
                (n, n)
            }
        };
        if hi < lo {
            return Err(bad());
        }
        for n in lo..=hi {
            map.insert(format!("{n}/{proto}"), Map::new());
            added.push(format!("{n}/{proto}"));
        }
    }
    Ok(added)
}

/// VOLUME.
pub fn volume(rc: &mut RunConfig, paths: &[String]) -> Result<(), EngineError> {
    let map = rc.volumes.get_or_insert_with(Default::default);
    for p in paths {
        if p.trim().is_empty() {
            return Err(EngineError::BadValue {
                what: "VOLUME",
                value: p.clone(),
                reason: "volume path cannot be empty".into(),
            });
        }
        map.insert(p.clone(), Map::new());
    }
    Ok(())
}

/// LABEL pairs (already expanded).
pub fn labels(rc: &mut RunConfig, pairs: &[(String, String)]) {
    let map = rc.labels.get_or_insert_with(Default::default);
    for (k, v) in pairs {
        map.insert(k.clone(), v.clone());
    }
}

/// WORKDIR: relative paths join the current one; the result is cleaned.
pub fn workdir(rc: &mut RunConfig, dir: &str) -> String {
    let base = rc.working_dir.clone().unwrap_or_else(|| "/".into());
    let joined = if dir.starts_with('/') {
        dir.to_string()
    } else {
        format!("{base}/{dir}")
    };
    let cleaned = clean_path(&joined);
    rc.working_dir = Some(cleaned.clone());
    cleaned
}

/// Lexical clean of an absolute path (`/a/./b/../c/` → `/a/c`).
pub fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// HEALTHCHECK; durations parsed Go-style (`30s`, `1m30s`, `500ms`) into nanoseconds.
pub fn healthcheck(
    rc: &mut RunConfig,
    hc: Option<&crate::parser::Healthcheck>,
) -> Result<(), EngineError> {
    let Some(hc) = hc else {
        rc.healthcheck = Some(HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        });
        return Ok(());
    };
    let test = match &hc.cmd {
        Some(Command::Exec(v)) => {
            let mut t = vec!["CMD".to_string()];
            t.extend(v.iter().cloned());
            Some(t)
        }
        Some(Command::Shell(s)) => Some(vec!["CMD-SHELL".into(), s.clone()]),
        None => None,
    };
    let dur = |v: &Option<String>, what: &'static str| -> Result<Option<u64>, EngineError> {
        v.as_deref()
            .map(|s| {
                parse_duration(s).ok_or_else(|| EngineError::BadValue {
                    what,
                    value: s.into(),
                    reason: "invalid duration".into(),
                })
            })
            .transpose()
    };
    let retries = hc
        .retries
        .as_deref()
        .map(|r| {
            r.parse::<u64>().map_err(|_| EngineError::BadValue {
                what: "HEALTHCHECK --retries",
                value: r.into(),
                reason: "not a number".into(),
            })
        })
        .transpose()?;
    rc.healthcheck = Some(HealthConfig {
        test,
        interval: dur(&hc.interval, "HEALTHCHECK --interval")?,
        timeout: dur(&hc.timeout, "HEALTHCHECK --timeout")?,
        start_period: dur(&hc.start_period, "HEALTHCHECK --start-period")?,
        start_interval: dur(&hc.start_interval, "HEALTHCHECK --start-interval")?,
        retries,
    });
    Ok(())
}

/// Go `time.ParseDuration` for the units Docker accepts; nanoseconds.
pub fn parse_duration(s: &str) -> Option<u64> {
    if s == "0" {
        return Some(0);
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Some(total as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entrypoint_resets_inherited_cmd_only() {
        let mut rc = RunConfig {
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        };
        set_entrypoint(
            &mut rc,
            &Command::Exec(vec!["/bin/sh".into(), "-c".into()]),
            false,
        );
        assert_eq!(rc.cmd, None);
        set_cmd(&mut rc, &Command::Exec(vec!["cat greeting".into()]));
        set_entrypoint(&mut rc, &Command::Shell("run".into()), true);
        assert_eq!(rc.cmd.as_deref(), Some(&["cat greeting".to_string()][..]));
        assert_eq!(rc.entrypoint.as_deref().unwrap(), &["/bin/sh", "-c", "run"]);
    }

    #[test]
    fn shell_form_uses_shell_instruction() {
        let mut rc = RunConfig {
            shell: Some(vec!["/bin/bash".into(), "-ec".into()]),
            ..Default::default()
        };
        set_cmd(&mut rc, &Command::Shell("echo hi".into()));
        assert_eq!(rc.cmd.unwrap(), vec!["/bin/bash", "-ec", "echo hi"]);
    }

    #[test]
    fn expose_normalizes_and_expands_ranges() {
        let mut rc = RunConfig::default();
        expose(
            &mut rc,
            &["8080".into(), "53/UDP".into(), "7000-7002/tcp".into()],
        )
        .unwrap();
        let keys: Vec<_> = rc.exposed_ports.unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            ["53/udp", "7000/tcp", "7001/tcp", "7002/tcp", "8080/tcp"]
        );
        assert!(expose(&mut RunConfig::default(), &["http".into()]).is_err());
        assert!(expose(&mut RunConfig::default(), &["80/xyz".into()]).is_err());
    }

    #[test]
    fn workdir_joins_and_cleans() {
        let mut rc = RunConfig::default();
        assert_eq!(workdir(&mut rc, "/srv/app"), "/srv/app");
        assert_eq!(workdir(&mut rc, "sub/../other/"), "/srv/app/other");
        assert_eq!(workdir(&mut rc, "/"), "/");
    }

    #[test]
    fn durations_like_go() {
        assert_eq!(parse_duration("30s"), Some(30_000_000_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("abc"), None);
    }

    #[test]
    fn healthcheck_forms() {
        let mut rc = RunConfig::default();
        healthcheck(&mut rc, None).unwrap();
        assert_eq!(
            rc.healthcheck.as_ref().unwrap().test.as_deref().unwrap(),
            &["NONE"]
        );
        let hc = crate::parser::Healthcheck {
            cmd: Some(Command::Shell("curl -f http://localhost/".into())),
            interval: Some("5m".into()),
            retries: Some("3".into()),
            ..Default::default()
        };
        healthcheck(&mut rc, Some(&hc)).unwrap();
        let h = rc.healthcheck.unwrap();
        assert_eq!(
            h.test.unwrap(),
            vec!["CMD-SHELL", "curl -f http://localhost/"]
        );
        assert_eq!(h.interval, Some(300_000_000_000));
        assert_eq!(h.retries, Some(3));
    }
}

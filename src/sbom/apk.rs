//! Alpine packages: apk's installed database (`/lib/apk/db/installed`), one block of
//! `X:value` lines per package, blocks separated by a blank line. Fields used: `P` name,
//! `V` version, `A` arch, `L` license, `o` origin, `m` maintainer, `D` depends, `p` provides.

use super::Found;

/// A dependency or provide token without its version constraint or `!` negation:
/// `so:libc.musl-x86_64.so.1=1` → `so:libc.musl-x86_64.so.1`; a negated one is dropped.
fn token_name(t: &str) -> Option<String> {
    if t.starts_with('!') {
        return None;
    }
    let end = t.find(['=', '<', '>', '~']).unwrap_or(t.len());
    let n = &t[..end];
    (!n.is_empty()).then(|| n.to_string())
}

/// The packages of an apk installed database.
pub fn parse_installed(text: &str) -> Vec<Found> {
    let mut out = Vec::new();
    let mut cur = Found::default();
    let mut origin = None;
    let flush = |cur: &mut Found, origin: &mut Option<String>, out: &mut Vec<Found>| {
        let mut f = std::mem::take(cur);
        if let Some(o) = origin.take()
            && o != f.name
        {
            f.qualifiers.push(("upstream".into(), o));
        }
        if !f.name.is_empty() && !f.version.is_empty() {
            out.push(f);
        }
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            flush(&mut cur, &mut origin, &mut out);
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        match k {
            "P" => cur.name = v.to_string(),
            "V" => cur.version = v.to_string(),
            "A" => cur.arch = Some(v.to_string()),
            "L" => cur.license = Some(v.to_string()),
            "o" => origin = Some(v.to_string()),
            "m" => cur.supplier = Some(v.to_string()),
            "D" => cur.depends = v.split_whitespace().filter_map(token_name).collect(),
            "p" => cur.provides = v.split_whitespace().filter_map(token_name).collect(),
            _ => {}
        }
    }
    flush(&mut cur, &mut origin, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_db_gives_packages_licenses_and_relations() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/sbom/apk-installed"
        ))
        .unwrap();
        let p = parse_installed(&text);
        let names: Vec<(&str, &str)> = p
            .iter()
            .map(|f| (f.name.as_str(), f.version.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("musl", "1.2.5-r0"),
                ("busybox", "1.36.1-r29"),
                ("libcrypto3", "3.3.1-r0")
            ]
        );
        assert_eq!(p[0].license.as_deref(), Some("MIT"));
        assert_eq!(p[0].provides, vec!["so:libc.musl-x86_64.so.1"]);
        assert_eq!(p[1].depends, vec!["so:libc.musl-x86_64.so.1"]);
        assert_eq!(p[2].arch.as_deref(), Some("x86_64"));
        assert_eq!(
            p[2].qualifiers,
            vec![("upstream".to_string(), "openssl".to_string())]
        );
    }
}

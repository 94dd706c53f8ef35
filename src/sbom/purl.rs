//! Package URLs (the purl spec): `pkg:TYPE/NAMESPACE/NAME@VERSION?QUALIFIERS`, with each part
//! percent-encoded as the spec asks (`@` in an npm scope is `%40`; qualifiers sorted by key).

use super::{Ecosystem, Found, OsRelease};

/// Percent-encodes everything but the spec's unreserved characters (and `:` in versions and
/// qualifier values, which purl leaves as is).
fn enc(s: &str, keep_colon: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'.' | b'-' | b'_' | b'~' | b'+')
            || (keep_colon && b == b':');
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Builds a purl from its parts; empty qualifier values are left out.
pub fn build(
    ty: &str,
    namespace: Option<&str>,
    name: &str,
    version: &str,
    qualifiers: &[(String, String)],
) -> String {
    let mut s = format!("pkg:{ty}/");
    if let Some(ns) = namespace.filter(|n| !n.is_empty()) {
        for seg in ns.split('/').filter(|s| !s.is_empty()) {
            s.push_str(&enc(seg, false));
            s.push('/');
        }
    }
    s.push_str(&enc(name, false));
    if !version.is_empty() {
        s.push('@');
        s.push_str(&enc(version, true));
    }
    let mut q: Vec<&(String, String)> = qualifiers.iter().filter(|(_, v)| !v.is_empty()).collect();
    q.sort();
    for (i, (k, v)) in q.iter().enumerate() {
        s.push(if i == 0 { '?' } else { '&' });
        s.push_str(k);
        s.push('=');
        s.push_str(&enc(v, true));
    }
    s
}

/// The purl of a found package; OS packages take namespace and `distro` from os-release.
pub fn purl(eco: Ecosystem, f: &Found, os: Option<&OsRelease>) -> String {
    let distro_q = |default_id: &str| -> (String, Vec<(String, String)>) {
        let id = os
            .map(|o| o.id.clone())
            .filter(|i| !i.is_empty())
            .unwrap_or_else(|| default_id.to_string());
        let mut q = f.qualifiers.clone();
        q.push(("arch".into(), f.arch.clone().unwrap_or_default()));
        if let Some(o) = os.filter(|o| !o.version_id.is_empty()) {
            q.push(("distro".into(), format!("{id}-{}", o.version_id)));
        }
        (id, q)
    };
    match eco {
        Ecosystem::Deb => {
            let (id, q) = distro_q("debian");
            build("deb", Some(&id), &f.name, &f.version, &q)
        }
        Ecosystem::Apk => {
            let (id, q) = distro_q("alpine");
            build("apk", Some(&id), &f.name, &f.version, &q)
        }
        Ecosystem::Rpm => {
            let (id, q) = distro_q("redhat");
            build("rpm", Some(&id), &f.name, &f.version, &q)
        }
        Ecosystem::Npm => match f.name.strip_prefix('@').and_then(|n| n.split_once('/')) {
            Some((scope, name)) => build("npm", Some(&format!("@{scope}")), name, &f.version, &[]),
            None => build("npm", None, &f.name, &f.version, &[]),
        },
        Ecosystem::Python => build(
            "pypi",
            None,
            &f.name.to_ascii_lowercase().replace('_', "-"),
            &f.version,
            &[],
        ),
        Ecosystem::Cargo => build("cargo", None, &f.name, &f.version, &[]),
        Ecosystem::Go => match f.name.rsplit_once('/') {
            Some((ns, name)) => build("golang", Some(ns), name, &f.version, &[]),
            None => build("golang", None, &f.name, &f.version, &[]),
        },
        Ecosystem::Maven => build("maven", f.namespace.as_deref(), &f.name, &f.version, &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(name: &str, version: &str) -> Found {
        Found {
            name: name.into(),
            version: version.into(),
            ..Found::default()
        }
    }

    #[test]
    fn purls_follow_the_spec_per_type() {
        let os = OsRelease {
            id: "debian".into(),
            version_id: "12".into(),
        };
        let mut f = found("libc6", "2.36-9+deb12u4");
        f.arch = Some("amd64".into());
        assert_eq!(
            purl(Ecosystem::Deb, &f, Some(&os)),
            "pkg:deb/debian/libc6@2.36-9+deb12u4?arch=amd64&distro=debian-12"
        );
        assert_eq!(
            purl(Ecosystem::Npm, &found("@types/node", "20.1.0"), None),
            "pkg:npm/%40types/node@20.1.0"
        );
        assert_eq!(
            purl(
                Ecosystem::Python,
                &found("Typing_Extensions", "4.9.0"),
                None
            ),
            "pkg:pypi/typing-extensions@4.9.0"
        );
        assert_eq!(
            purl(Ecosystem::Go, &found("golang.org/x/sys", "v0.15.0"), None),
            "pkg:golang/golang.org/x/sys@v0.15.0"
        );
        let mut m = found("guava", "33.0.0-jre");
        m.namespace = Some("com.google.guava".into());
        assert_eq!(
            purl(Ecosystem::Maven, &m, None),
            "pkg:maven/com.google.guava/guava@33.0.0-jre"
        );
        let mut r = found("bash", "5.2.26-3.fc40");
        r.arch = Some("x86_64".into());
        r.qualifiers = vec![("epoch".into(), "1".into())];
        let fedora = OsRelease {
            id: "fedora".into(),
            version_id: "40".into(),
        };
        assert_eq!(
            purl(Ecosystem::Rpm, &r, Some(&fedora)),
            "pkg:rpm/fedora/bash@5.2.26-3.fc40?arch=x86_64&distro=fedora-40&epoch=1"
        );
    }
}

//! Declared license text → a valid SPDX license expression. Package databases write licenses
//! their own way (Debian's `GPL-2+`, Fedora's old `GPLv2+`, npm's `(MIT OR Apache-2.0)`,
//! Python classifiers); SPDX validators reject any identifier not on the SPDX license list.
//! An expression whose every identifier is known (or maps exactly) is rewritten in canonical
//! case; an unknown identifier becomes `LicenseRef-…`, which the document then explains in
//! `hasExtractedLicensingInfos`; text that is not an expression at all becomes one
//! `LicenseRef-…` for the whole text. Only exact equivalences are mapped (`Expat` is `MIT`;
//! Debian's `BSD` names no one license, so it stays a reference).

/// SPDX license-list identifiers hoist knows (the common ones in distributions and language
/// registries; anything else is kept as a `LicenseRef-`, which is valid, just less precise).
const IDS: &[&str] = &[
    "0BSD",
    "AFL-2.1",
    "AFL-3.0",
    "AGPL-3.0-only",
    "AGPL-3.0-or-later",
    "Apache-1.0",
    "Apache-1.1",
    "Apache-2.0",
    "APSL-2.0",
    "Artistic-1.0",
    "Artistic-1.0-Perl",
    "Artistic-2.0",
    "Beerware",
    "BlueOak-1.0.0",
    "BSD-1-Clause",
    "BSD-2-Clause",
    "BSD-2-Clause-Patent",
    "BSD-3-Clause",
    "BSD-3-Clause-Clear",
    "BSD-4-Clause",
    "BSD-4-Clause-UC",
    "BSL-1.0",
    "bzip2-1.0.6",
    "CC-BY-3.0",
    "CC-BY-4.0",
    "CC-BY-SA-3.0",
    "CC-BY-SA-4.0",
    "CC0-1.0",
    "CDDL-1.0",
    "CDDL-1.1",
    "CPL-1.0",
    "curl",
    "EPL-1.0",
    "EPL-2.0",
    "EUPL-1.1",
    "EUPL-1.2",
    "FSFAP",
    "FSFUL",
    "FSFULLR",
    "FTL",
    "GFDL-1.2-only",
    "GFDL-1.2-or-later",
    "GFDL-1.3-only",
    "GFDL-1.3-or-later",
    "GPL-1.0-only",
    "GPL-1.0-or-later",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "HPND",
    "ICU",
    "IJG",
    "Info-ZIP",
    "IPA",
    "ISC",
    "LGPL-2.0-only",
    "LGPL-2.0-or-later",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "Libpng",
    "libpng-2.0",
    "libtiff",
    "LPPL-1.3c",
    "MirOS",
    "MIT",
    "MIT-0",
    "MPL-1.1",
    "MPL-2.0",
    "MPL-2.0-no-copyleft-exception",
    "MS-PL",
    "NCSA",
    "NTP",
    "OFL-1.1",
    "OLDAP-2.8",
    "OpenSSL",
    "PHP-3.01",
    "PostgreSQL",
    "PSF-2.0",
    "Python-2.0",
    "Ruby",
    "Sleepycat",
    "TCL",
    "Unicode-3.0",
    "Unicode-DFS-2016",
    "Unlicense",
    "UPL-1.0",
    "Vim",
    "W3C",
    "WTFPL",
    "X11",
    "Zlib",
    "zlib-acknowledgement",
    "ZPL-2.1",
];

/// SPDX license exceptions (after `WITH`).
const EXCEPTIONS: &[&str] = &[
    "Autoconf-exception-2.0",
    "Autoconf-exception-3.0",
    "Bison-exception-2.2",
    "Classpath-exception-2.0",
    "GCC-exception-2.0",
    "GCC-exception-3.1",
    "LLVM-exception",
    "OpenSSL-exception",
];

/// Names that mean exactly one SPDX identifier: Debian's DEP-5 short names, Fedora's older
/// names, deprecated SPDX `+`/bare GPL forms. Matched case-insensitively.
const ALIASES: &[(&str, &str)] = &[
    ("Expat", "MIT"),
    ("MIT/X11", "MIT"),
    ("GPL-1", "GPL-1.0-only"),
    ("GPL-1+", "GPL-1.0-or-later"),
    ("GPL-2", "GPL-2.0-only"),
    ("GPL-2+", "GPL-2.0-or-later"),
    ("GPL-3", "GPL-3.0-only"),
    ("GPL-3+", "GPL-3.0-or-later"),
    ("GPL-2.0", "GPL-2.0-only"),
    ("GPL-2.0+", "GPL-2.0-or-later"),
    ("GPL-3.0", "GPL-3.0-only"),
    ("GPL-3.0+", "GPL-3.0-or-later"),
    ("GPLv2", "GPL-2.0-only"),
    ("GPLv2+", "GPL-2.0-or-later"),
    ("GPLv3", "GPL-3.0-only"),
    ("GPLv3+", "GPL-3.0-or-later"),
    ("LGPL-2", "LGPL-2.0-only"),
    ("LGPL-2+", "LGPL-2.0-or-later"),
    ("LGPL-2.0", "LGPL-2.0-only"),
    ("LGPL-2.0+", "LGPL-2.0-or-later"),
    ("LGPL-2.1", "LGPL-2.1-only"),
    ("LGPL-2.1+", "LGPL-2.1-or-later"),
    ("LGPL-3", "LGPL-3.0-only"),
    ("LGPL-3+", "LGPL-3.0-or-later"),
    ("LGPL-3.0", "LGPL-3.0-only"),
    ("LGPL-3.0+", "LGPL-3.0-or-later"),
    ("LGPLv2", "LGPL-2.0-only"),
    ("LGPLv2+", "LGPL-2.0-or-later"),
    ("LGPLv2.1", "LGPL-2.1-only"),
    ("LGPLv2.1+", "LGPL-2.1-or-later"),
    ("LGPLv3", "LGPL-3.0-only"),
    ("LGPLv3+", "LGPL-3.0-or-later"),
    ("AGPL-3", "AGPL-3.0-only"),
    ("AGPL-3+", "AGPL-3.0-or-later"),
    ("AGPL-3.0", "AGPL-3.0-only"),
    ("AGPL-3.0+", "AGPL-3.0-or-later"),
    ("AGPLv3", "AGPL-3.0-only"),
    ("AGPLv3+", "AGPL-3.0-or-later"),
    ("GFDL-1.2", "GFDL-1.2-only"),
    ("GFDL-1.2+", "GFDL-1.2-or-later"),
    ("GFDL-1.3", "GFDL-1.3-only"),
    ("GFDL-1.3+", "GFDL-1.3-or-later"),
    ("ASL 2.0", "Apache-2.0"),
    ("Apache-2", "Apache-2.0"),
    ("Apache 2.0", "Apache-2.0"),
    ("BSD-2-clause", "BSD-2-Clause"),
    ("BSD-3-clause", "BSD-3-Clause"),
    ("BSD-4-clause", "BSD-4-Clause"),
    ("MPL-2", "MPL-2.0"),
    ("MPLv2.0", "MPL-2.0"),
    ("Zlib", "Zlib"),
    ("zlib/libpng", "Zlib"),
    ("Boost", "BSL-1.0"),
    ("PSF", "PSF-2.0"),
    ("Unicode-DFS", "Unicode-DFS-2016"),
    ("CC0", "CC0-1.0"),
    ("public-domain-cc0", "CC0-1.0"),
];

/// Trove classifiers (`License :: OSI Approved :: …`, last part) that name one license.
const CLASSIFIERS: &[(&str, &str)] = &[
    ("MIT License", "MIT"),
    ("MIT No Attribution License (MIT-0)", "MIT-0"),
    ("ISC License (ISCL)", "ISC"),
    ("Apache License 2.0", "Apache-2.0"),
    ("Mozilla Public License 2.0 (MPL 2.0)", "MPL-2.0"),
    ("GNU General Public License v2 (GPLv2)", "GPL-2.0-only"),
    (
        "GNU General Public License v2 or later (GPLv2+)",
        "GPL-2.0-or-later",
    ),
    ("GNU General Public License v3 (GPLv3)", "GPL-3.0-only"),
    (
        "GNU General Public License v3 or later (GPLv3+)",
        "GPL-3.0-or-later",
    ),
    (
        "GNU Lesser General Public License v3 (LGPLv3)",
        "LGPL-3.0-only",
    ),
    (
        "GNU Lesser General Public License v3 or later (LGPLv3+)",
        "LGPL-3.0-or-later",
    ),
    ("GNU Affero General Public License v3", "AGPL-3.0-only"),
    ("Python Software Foundation License", "PSF-2.0"),
    ("The Unlicense (Unlicense)", "Unlicense"),
    ("Boost Software License 1.0 (BSL-1.0)", "BSL-1.0"),
    ("zlib/libpng License", "Zlib"),
    ("Universal Permissive License (UPL)", "UPL-1.0"),
    ("Eclipse Public License 2.0 (EPL-2.0)", "EPL-2.0"),
    (
        "CC0 1.0 Universal (CC0 1.0) Public Domain Dedication",
        "CC0-1.0",
    ),
];

/// The SPDX identifier a trove classifier names, when it names exactly one.
pub fn classifier(c: &str) -> Option<&'static str> {
    let last = c.rsplit("::").next()?.trim();
    CLASSIFIERS
        .iter()
        .find(|(k, _)| *k == last)
        .map(|(_, v)| *v)
}

/// The SPDX identifier for one license name: known ids in canonical case, exact aliases.
fn known(token: &str) -> Option<&'static str> {
    IDS.iter()
        .find(|id| id.eq_ignore_ascii_case(token))
        .copied()
        .or_else(|| {
            ALIASES
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(token))
                .map(|(_, v)| *v)
        })
}

/// A declared license as SPDX: `expression` is valid SPDX; `refs` are the `LicenseRef-` ids
/// it uses, each with the text it stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spdx {
    /// A valid SPDX license expression.
    pub expression: String,
    /// `(LicenseRef-…, the original text)` for each reference in `expression`.
    pub refs: Vec<(String, String)>,
}

/// `LicenseRef-` plus `text` with every character SPDX does not allow in an idstring turned
/// into `-` (the document makes colliding references unique).
pub fn license_ref(text: &str) -> String {
    let mut s: String = text
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    let s = s.trim_matches('-');
    format!("LicenseRef-{}", if s.is_empty() { "unknown" } else { s })
}

#[derive(Debug, PartialEq)]
enum Tok {
    Open,
    Close,
    And,
    Or,
    With,
    Id(String),
}

fn tokens(text: &str) -> Vec<Tok> {
    let spaced = text.replace('(', " ( ").replace(')', " ) ");
    spaced
        .split_whitespace()
        .map(|w| match w {
            "(" => Tok::Open,
            ")" => Tok::Close,
            _ if w.eq_ignore_ascii_case("and") || w == "&" => Tok::And,
            _ if w.eq_ignore_ascii_case("or") || w == "|" => Tok::Or,
            _ if w.eq_ignore_ascii_case("with") => Tok::With,
            _ => Tok::Id(w.to_string()),
        })
        .collect()
}

/// Whether the tokens form `term (op term)*` with balanced parentheses, `WITH` after an id.
fn well_formed(t: &[Tok]) -> bool {
    let mut depth = 0i32;
    let mut want_term = true;
    let mut after_with = false;
    for tok in t {
        match tok {
            Tok::Open if want_term && !after_with => depth += 1,
            Tok::Close if !want_term => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Tok::Id(_) if want_term => {
                want_term = false;
                after_with = false;
            }
            Tok::And | Tok::Or if !want_term => want_term = true,
            Tok::With if !want_term => {
                want_term = true;
                after_with = true;
            }
            _ => return false,
        }
    }
    depth == 0 && !want_term && !t.is_empty()
}

/// `text` as a valid SPDX expression (see the module doc); `None` for empty text or the
/// registries' "no license" words.
pub fn to_spdx(text: &str) -> Option<Spdx> {
    let text = text.trim();
    if text.is_empty()
        || ["NOASSERTION", "NONE", "UNKNOWN", "UNLICENSED"]
            .iter()
            .any(|w| w.eq_ignore_ascii_case(text))
    {
        return None;
    }
    // A whole name with spaces that maps exactly (`ASL 2.0`).
    if let Some(id) = known(text) {
        return Some(Spdx {
            expression: id.to_string(),
            refs: Vec::new(),
        });
    }
    let toks = tokens(text);
    if !well_formed(&toks) {
        return Some(and_of_parts(text, &toks));
    }
    let mut out: Vec<String> = Vec::new();
    let mut refs = Vec::new();
    let mut after_with = false;
    for tok in &toks {
        match tok {
            Tok::Open => out.push("(".into()),
            Tok::Close => out.push(")".into()),
            Tok::And => out.push("AND".into()),
            Tok::Or => out.push("OR".into()),
            Tok::With => {
                after_with = true;
                continue;
            }
            Tok::Id(id) if after_with => {
                match EXCEPTIONS.iter().find(|e| e.eq_ignore_ascii_case(id)) {
                    Some(e) => {
                        out.push("WITH".into());
                        out.push((*e).into());
                    }
                    None => {
                        // An exception SPDX does not list: the licence with it is one ref.
                        let prev = out.pop().unwrap_or_default();
                        let orig = format!("{prev} with {id}");
                        refs.retain(|(r, _): &(String, String)| *r != prev);
                        let r = license_ref(&orig);
                        refs.push((r.clone(), orig));
                        out.push(r);
                    }
                }
            }
            Tok::Id(id) => match known(id) {
                Some(k) => out.push(k.into()),
                None if id.starts_with("LicenseRef-") => {
                    let r = license_ref(id.trim_start_matches("LicenseRef-"));
                    refs.push((r.clone(), id.clone()));
                    out.push(r);
                }
                None => {
                    let r = license_ref(id);
                    refs.push((r.clone(), id.clone()));
                    out.push(r);
                }
            },
        }
        after_with = false;
    }
    let expression = out.join(" ").replace("( ", "(").replace(" )", ")");
    refs.sort();
    refs.dedup();
    Some(Spdx { expression, refs })
}

/// Text that is no expression as a whole: when it has no parentheses, each `and`-separated
/// part on its own (`GPLv2+ and Public Domain` → `GPL-2.0-or-later AND
/// LicenseRef-Public-Domain`), else one reference for all of it.
fn and_of_parts(text: &str, toks: &[Tok]) -> Spdx {
    let whole = || {
        let r = license_ref(text);
        Spdx {
            expression: r.clone(),
            refs: vec![(r, text.to_string())],
        }
    };
    if toks.iter().any(|t| matches!(t, Tok::Open | Tok::Close)) || !toks.contains(&Tok::And) {
        return whole();
    }
    let mut terms: Vec<String> = Vec::new();
    let mut refs = Vec::new();
    for part in toks.split(|t| *t == Tok::And) {
        let words: Vec<String> = part
            .iter()
            .map(|t| match t {
                Tok::Id(w) => w.clone(),
                Tok::Or => "or".into(),
                Tok::With => "with".into(),
                _ => String::new(),
            })
            .collect();
        let Some(mut s) = to_spdx(&words.join(" ")) else {
            continue;
        };
        if s.expression.contains(' ') {
            s.expression = format!("({})", s.expression);
        }
        if !terms.contains(&s.expression) {
            terms.push(s.expression);
        }
        refs.extend(s.refs);
    }
    if terms.is_empty() {
        return whole();
    }
    refs.sort();
    refs.dedup();
    Spdx {
        expression: terms.join(" AND "),
        refs,
    }
}

/// The declared license of a Debian package from the licenses its DEP-5 copyright file names:
/// each kept as written, joined with `and` (a package is under all of them, file by file).
pub fn debian_licenses(names: &[String]) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for n in names {
        let n = n.trim();
        if n.is_empty() {
            continue;
        }
        let p = if n.contains(' ') {
            format!("({n})")
        } else {
            n.to_string()
        };
        if !parts.contains(&p) {
            parts.push(p);
        }
    }
    if parts.is_empty() {
        return None;
    }
    if parts.len() == 1 {
        return Some(
            parts[0]
                .trim_start_matches('(')
                .trim_end_matches(')')
                .to_string(),
        );
    }
    Some(parts.join(" and "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(t: &str) -> String {
        to_spdx(t).unwrap().expression
    }

    #[test]
    fn known_ids_and_exact_aliases_become_spdx() {
        assert_eq!(expr("mit"), "MIT");
        assert_eq!(expr("GPL-2+"), "GPL-2.0-or-later");
        assert_eq!(expr("Expat"), "MIT");
        assert_eq!(expr("ASL 2.0"), "Apache-2.0");
        assert_eq!(expr("(MIT OR Apache-2.0)"), "(MIT OR Apache-2.0)");
        assert_eq!(
            expr("GPLv2+ and LGPLv2+"),
            "GPL-2.0-or-later AND LGPL-2.0-or-later"
        );
        assert_eq!(
            expr("GPL-2.0-only WITH Classpath-exception-2.0"),
            "GPL-2.0-only WITH Classpath-exception-2.0"
        );
        assert!(to_spdx("UNLICENSED").is_none());
    }

    #[test]
    fn unknown_names_become_references_with_their_text() {
        let s = to_spdx("GPL-2+ or Artistic").unwrap();
        assert_eq!(s.expression, "GPL-2.0-or-later OR LicenseRef-Artistic");
        assert_eq!(
            s.refs,
            vec![("LicenseRef-Artistic".to_string(), "Artistic".to_string())]
        );
        // Not an expression at all: one reference for the whole text.
        // Not an expression, but an `and` list: each part on its own.
        let s = to_spdx("GPLv2+ and Public Domain").unwrap();
        assert_eq!(
            s.expression,
            "GPL-2.0-or-later AND LicenseRef-Public-Domain"
        );
        let s = to_spdx("GPL-3 and GPL-3 with Bison exception and MIT and GPL-3").unwrap();
        assert_eq!(
            s.expression,
            "GPL-3.0-only AND LicenseRef-GPL-3-with-Bison-exception AND MIT"
        );
        // Parentheses around free text: one reference for all of it.
        let s = to_spdx("(GPL and Public Domain) or x y").unwrap();
        assert_eq!(s.expression, "LicenseRef-GPL-and-Public-Domain-or-x-y");
        let s = to_spdx("GPL-2+ with OpenSSL exception").unwrap();
        assert_eq!(s.expression, "LicenseRef-GPL-2-with-OpenSSL-exception");
        let s = to_spdx("GPL-2+ with OpenSSL-exception").unwrap();
        assert_eq!(s.expression, "GPL-2.0-or-later WITH OpenSSL-exception");
        let s = to_spdx("GPL-3+ WITH Foo-exception").unwrap();
        assert_eq!(
            s.expression,
            "LicenseRef-GPL-3.0-or-later-with-Foo-exception"
        );
        assert_eq!(s.refs.len(), 1, "{s:?}");
    }

    #[test]
    fn classifiers_map_only_when_exact() {
        assert_eq!(
            classifier("License :: OSI Approved :: MIT License"),
            Some("MIT")
        );
        assert_eq!(classifier("License :: OSI Approved :: BSD License"), None);
    }

    #[test]
    fn debian_license_lists_join_with_and() {
        let l = debian_licenses(&["GPL-2+".into(), "BSD-3-clause".into(), "GPL-2+".into()]);
        assert_eq!(l.as_deref(), Some("GPL-2+ and BSD-3-clause"));
        assert_eq!(
            expr(l.as_deref().unwrap()),
            "GPL-2.0-or-later AND BSD-3-Clause"
        );
        let l = debian_licenses(&["GPL-2+ or Artistic".into(), "MIT".into()]).unwrap();
        assert_eq!(
            expr(&l),
            "(GPL-2.0-or-later OR LicenseRef-Artistic) AND MIT"
        );
    }
}

//! Fuzzes image references, digests and `--platform` strings.
//!
//! Invariants:
//! - a string that parses as a `Digest` is exactly `sha256:` + 64 lowercase hex (hoist
//!   accepts no other algorithm), prints back to the same string, and survives
//!   `from_hex(hex())` and a JSON round trip;
//! - a string that parses as an `ImageRef` prints to a string without whitespace or
//!   credentials that parses back to an equal reference (normalization is idempotent);
//!   `name()`/`reference()` agree with it; `with_tag`/`with_digest` results round-trip too;
//!   `familiar()` parses back to the same reference unless its first component looks like a
//!   registry host (Docker's own ambiguity: `docker.io/localhost/x` is shown `localhost/x`);
//! - a `Platform` that parses prints (`os/arch[/variant]`) to a string that parses back equal.
#![no_main]

use hoist::oci::{Digest, Platform};
use hoist::registry::ImageRef;
use libfuzzer_sys::fuzz_target;

fn check_ref(r: &ImageRef) {
    let printed = r.to_string();
    assert!(!printed.contains(char::is_whitespace), "{printed:?}");
    let again = ImageRef::parse(&printed)
        .unwrap_or_else(|e| panic!("{printed:?} (printed form of {r:?}) does not parse: {e}"));
    assert_eq!(&again, r, "{printed:?} parses to something else");
    assert_eq!(again.to_string(), printed);
    assert!(printed.starts_with(&r.name()));
    match &r.digest {
        Some(d) => assert_eq!(r.reference(), d.to_string()),
        None => assert_eq!(Some(r.reference()), r.tag.clone()),
    }
    let fam = r.familiar();
    let first = fam.split('/').next().unwrap_or("");
    let hostlike =
        fam.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    // A host-like first component (`docker.io/foo.bar/x` shown as `foo.bar/x`) reads back as
    // a registry, or not at all: Docker's own ambiguity, not checked.
    if !hostlike {
        match ImageRef::parse(&fam) {
            Ok(f) => assert_eq!(&f, r, "familiar form {fam:?} names another image"),
            Err(e) => panic!("familiar form {fam:?} of {r:?} does not parse: {e}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };

    if let Ok(d) = s.parse::<Digest>() {
        assert_eq!(d.to_string(), s);
        assert_eq!(d.algorithm(), "sha256");
        let hex = d.hex();
        assert!(
            hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "digest {s:?} is not path-safe"
        );
        assert_eq!(Digest::from_hex(hex).as_ref(), Ok(&d));
        assert!(s[7..].starts_with(d.short()));
        let json = serde_json::to_string(&d).expect("digest to JSON");
        assert_eq!(
            serde_json::from_str::<Digest>(&json).ok().as_ref(),
            Some(&d)
        );
    }

    if let Ok(r) = ImageRef::parse(s) {
        assert!(r.tag.is_some() || r.digest.is_some());
        check_ref(&r);
        check_ref(&r.with_tag("v1.0_x-y"));
        check_ref(&r.with_digest(&Digest::of(data)));
    }

    if let Some(p) = Platform::parse(s) {
        let printed = p.to_string_short();
        assert_eq!(
            Platform::parse(&printed).as_ref(),
            Some(&p),
            "{s:?} -> {printed:?}"
        );
    }
});

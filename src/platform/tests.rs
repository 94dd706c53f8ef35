//! Unit tests of platform parsing, normalising and matching.

use super::*;

fn p(s: &str) -> Platform {
    Platform::parse(s).unwrap()
}

#[test]
fn parse_normalises_as_containerd() {
    assert_eq!(p("linux/arm64/v8"), p("linux/arm64"));
    assert_eq!(p("linux/arm64").to_string_short(), "linux/arm64");
    assert_eq!(p("linux/arm64/9.0").to_string_short(), "linux/arm64/v9");
    assert_eq!(p("linux/aarch64").to_string_short(), "linux/arm64");
    assert_eq!(p("linux/arm").to_string_short(), "linux/arm/v7");
    assert_eq!(p("linux/arm/7").to_string_short(), "linux/arm/v7");
    assert_eq!(p("linux/armhf").to_string_short(), "linux/arm/v7");
    assert_eq!(p("linux/armel").to_string_short(), "linux/arm/v6");
    assert_eq!(p("linux/x86_64").to_string_short(), "linux/amd64");
    assert_eq!(p("Linux/AMD64").to_string_short(), "linux/amd64");
    assert_eq!(p("linux/amd64/v1").to_string_short(), "linux/amd64");
    assert_eq!(p("linux/amd64/v3").to_string_short(), "linux/amd64/v3");
    assert_eq!(p("linux/i386").to_string_short(), "linux/386");
    assert_eq!(p("arm64").to_string_short(), "linux/arm64");
    assert_eq!(p("linux/riscv64").to_string_short(), "linux/riscv64");
    assert_eq!(p("linux/arm/v6").dir_name(), "linux_arm_v6");
    for bad in ["", "linux/", "/amd64", "a/b/c/d", "linux//v7"] {
        assert_eq!(Platform::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn lists_are_deduplicated_and_errors_name_the_item() {
    let l = Platform::parse_list("linux/amd64, linux/arm64/v8,linux/arm64", "--platform").unwrap();
    let names: Vec<String> = l.iter().map(Platform::to_string_short).collect();
    assert_eq!(names, ["linux/amd64", "linux/arm64"]);
    let e = Platform::parse_list("linux/amd64,linux/", "--platform").unwrap_err();
    assert_eq!(
        e.to_string(),
        "--platform \"linux/\": expected os/arch[/variant] (e.g. linux/amd64, linux/arm64, linux/arm/v7)"
    );
    assert!(Platform::parse_list(" , ", "--platform").is_err());
}

#[test]
fn matching_falls_back_to_lower_variants() {
    let want = p("linux/arm/v7");
    assert_eq!(want.rank(&p("linux/arm/v7")), Some(0));
    assert_eq!(want.rank(&p("linux/arm/v6")), Some(1));
    assert_eq!(want.rank(&p("linux/arm/v5")), Some(2));
    assert_eq!(want.rank(&p("linux/arm/v8")), None);
    assert_eq!(p("linux/arm/v6").rank(&p("linux/arm/v7")), None);
    // An entry without a variant is arm/v7.
    let bare = Platform {
        os: "linux".into(),
        architecture: "arm".into(),
        ..Default::default()
    };
    assert_eq!(want.rank(&bare), Some(0));
    // arm64/v8 is arm64, both ways.
    let v8 = Platform {
        os: "linux".into(),
        architecture: "arm64".into(),
        variant: Some("v8".into()),
        ..Default::default()
    };
    assert!(p("linux/arm64").same(&v8));
    assert!(v8.same(&p("linux/arm64")));
    assert_eq!(p("linux/amd64").rank(&p("linux/386")), Some(1));
    assert_eq!(p("linux/amd64").rank(&p("linux/arm64")), None);
    assert_eq!(p("linux/amd64").rank(&p("windows/amd64")), None);
}

#[test]
fn best_match_prefers_the_exact_entry() {
    let entries = [p("linux/arm/v5"), p("linux/arm/v7"), p("linux/arm/v6")];
    let got = best_match(&p("linux/arm/v7"), entries.iter().map(Some));
    assert_eq!(got, Some(1));
    let got = best_match(&p("linux/arm/v6"), entries.iter().map(Some));
    assert_eq!(got, Some(2));
    assert_eq!(
        best_match(&p("linux/s390x"), entries.iter().map(Some)),
        None
    );
    assert_eq!(
        best_match(&p("linux/arm/v7"), [None, Some(&entries[0])]),
        Some(1)
    );
}

#[test]
fn host_is_normalised() {
    let h = Platform::host();
    assert_eq!(h, h.normalized());
    assert_eq!(h.os, "linux");
}

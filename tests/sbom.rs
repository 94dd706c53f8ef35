//! SBOMs (issue 16), checked against real tools. In a directory: an rpmdb written by `rpm`,
//! a Go binary built by `go`, jars made by `jar`, and the text fixtures of every other
//! ecosystem, scanned into one SPDX document that `pyspdxtools` (PyPI `spdx-tools`)
//! validates. For an image: `hoist sbom` of an image built on the lab's debootstrapped
//! Debian (plus a Go binary, jars and Python/npm metadata, and a RUN that purges a package
//! and deletes a copyright file) lists exactly the packages `dpkg-query` lists inside it,
//! with their versions, and the others from the layers that hold them.

mod common;

use common::lab::{Need, ready, tool};
use common::{Hoist, text};
use hoist::sbom::{self, DocInfo, Ecosystem, Inventory};
use std::path::{Path, PathBuf};
use std::process::Command;

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(o.status.success(), "{cmd:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sbom")
        .join(name)
}

fn put(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

/// Asserts that pyspdxtools accepts the document.
fn validate(doc: &serde_json::Value) {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("sbom.spdx.json");
    std::fs::write(&f, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    let o = Command::new("pyspdxtools")
        .arg("-i")
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "pyspdxtools rejects the document: {}\n{}",
        text(&o),
        serde_json::to_string_pretty(doc).unwrap()
    );
}

/// An rpmdb with one noarch package built by rpmbuild and registered with `rpm --justdb`.
fn rpmdb(work: &Path, db: &Path) {
    let spec = work.join("hello.spec");
    std::fs::write(
        &spec,
        "Name: hello-sbom\nVersion: 1.2.3\nRelease: 4\nEpoch: 2\nSummary: test\n\
         License: MIT and GPLv2+\nBuildArch: noarch\n%description\ntest\n%files\n",
    )
    .unwrap();
    let top = work.join("rpmbuild");
    run(Command::new("rpmbuild")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg("-bb")
        .arg(&spec));
    std::fs::create_dir_all(db).unwrap();
    run(Command::new("rpm")
        .arg("--dbpath")
        .arg(db)
        .args(["-i", "--justdb", "--nodeps", "--ignorearch"])
        .arg(top.join("RPMS/noarch/hello-sbom-1.2.3-4.noarch.rpm")));
    // The copy in the tree is the main file alone, as an image layer would hold it.
    for extra in ["rpmdb.sqlite-shm", "rpmdb.sqlite-wal", ".rpm.lock"] {
        let _ = std::fs::remove_file(db.join(extra));
    }
}

/// A Go binary whose one dependency is replaced by a sibling directory (no network).
fn go_binary(work: &Path, out: &Path) {
    put(work, "lib/go.mod", b"module example.com/lib\n\ngo 1.19\n");
    put(
        work,
        "lib/lib.go",
        b"package lib\n\nfunc Hello() string { return \"hi\" }\n",
    );
    put(
        work,
        "app/go.mod",
        b"module example.com/app\n\ngo 1.19\n\nrequire example.com/lib v1.2.3\n\nreplace example.com/lib => ../lib\n",
    );
    put(
        work,
        "app/main.go",
        b"package main\n\nimport (\n\t\"fmt\"\n\t\"example.com/lib\"\n)\n\nfunc main() { fmt.Println(lib.Hello()) }\n",
    );
    run(Command::new("go")
        .args(["build", "-o"])
        .arg(out)
        .arg(".")
        .current_dir(work.join("app"))
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOTOOLCHAIN", "local")
        .env("GOCACHE", work.join("gocache"))
        .env("GOPATH", work.join("gopath")));
}

/// Jars made by the JDK's `jar`: one with Maven metadata, one with a manifest only.
fn jars(work: &Path, dir: &Path) {
    let m = work.join("maven");
    put(
        &m,
        "META-INF/maven/com.example/demo/pom.properties",
        b"groupId=com.example\nartifactId=demo\nversion=3.1.4\n",
    );
    put(&m, "com/example/Demo.txt", b"demo");
    std::fs::create_dir_all(dir).unwrap();
    run(Command::new("jar")
        .arg("cf")
        .arg(dir.join("demo.jar"))
        .arg("-C")
        .arg(&m)
        .arg("."));
    let p = work.join("plain");
    put(&p, "x.txt", b"x");
    let mf = work.join("manifest.txt");
    std::fs::write(
        &mf,
        "Implementation-Title: plainlib\nImplementation-Version: 0.9\n",
    )
    .unwrap();
    run(Command::new("jar")
        .arg("cfm")
        .arg(dir.join("plain.jar"))
        .arg(&mf)
        .arg("-C")
        .arg(&p)
        .arg("."));
}

/// A real ELF (a copy of `true`) given a `.dep-v0` section holding zlib-compressed
/// `cargo auditable` JSON, as cargo-auditable's linker step lays it out.
fn auditable_binary(work: &Path, out: &Path) {
    use std::io::Write;
    let json = br#"{"packages":[
        {"name":"rustapp","version":"0.1.0","source":"local","kind":"runtime","dependencies":[1],"root":true},
        {"name":"log","version":"0.4.20","source":"crates.io","kind":"runtime","dependencies":[2]},
        {"name":"cfg-if","version":"1.0.0","source":"crates.io","kind":"runtime"}]}"#;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(json).unwrap();
    let data = work.join("dep-v0.z");
    std::fs::write(&data, z.finish().unwrap()).unwrap();
    let truebin = ["/usr/bin/true", "/bin/true"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("true");
    run(Command::new("objcopy")
        .arg("--add-section")
        .arg(format!(".dep-v0={}", data.display()))
        .args(["--set-section-flags", ".dep-v0=noload,readonly"])
        .arg(truebin)
        .arg(out));
}

fn find<'a>(inv: &'a Inventory, eco: Ecosystem, name: &str) -> &'a sbom::Package {
    inv.packages
        .iter()
        .find(|p| p.ecosystem == eco && p.found.name == name)
        .unwrap_or_else(|| panic!("no {eco:?} package {name}: {inv:#?}"))
}

#[test]
fn every_ecosystem_from_real_tools_in_one_valid_document() {
    if !(tool("pyspdxtools", "pip install spdx-tools")
        && tool("rpmbuild", "apt-get install rpm")
        && tool("go", "apt-get install golang-go")
        && tool("jar", "apt-get install default-jdk-headless")
        && tool("objcopy", "apt-get install binutils"))
    {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    rpmdb(work.path(), &r.join("usr/lib/sysimage/rpm"));
    std::fs::create_dir_all(r.join("usr/local/bin")).unwrap();
    go_binary(work.path(), &r.join("usr/local/bin/app"));
    auditable_binary(work.path(), &r.join("usr/local/bin/rustapp"));
    jars(work.path(), &r.join("opt/java"));
    let copy = |from: &str, to: &str| put(r, to, &std::fs::read(fixture(from)).unwrap());
    copy("dpkg-status", "var/lib/dpkg/status");
    copy("copyright-dep5", "usr/share/doc/bash/copyright");
    copy("apk-installed", "lib/apk/db/installed");
    copy("package-lock.json", "app/package-lock.json");
    copy(
        "METADATA",
        "usr/lib/python3/dist-packages/typing_extensions-4.9.0.dist-info/METADATA",
    );
    copy("Cargo.lock", "src/Cargo.lock");
    put(r, "etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\n");

    let inv = sbom::scan_dir(r).unwrap();
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);

    let rpm = find(&inv, Ecosystem::Rpm, "hello-sbom");
    assert_eq!(rpm.found.version, "1.2.3-4");
    assert_eq!(rpm.found.license.as_deref(), Some("MIT and GPLv2+"));
    assert_eq!(rpm.source, "/usr/lib/sysimage/rpm/rpmdb.sqlite");
    assert!(
        rpm.purl
            .starts_with("pkg:rpm/debian/hello-sbom@1.2.3-4?arch=noarch&distro=debian-12&epoch=2"),
        "{}",
        rpm.purl
    );
    let lib = find(&inv, Ecosystem::Go, "example.com/lib");
    assert_eq!(lib.found.version, "v1.2.3");
    assert_eq!(lib.purl, "pkg:golang/example.com/lib@v1.2.3");
    assert_eq!(lib.source, "/usr/local/bin/app");
    let go_version = run(Command::new("go").arg("env").arg("GOVERSION"));
    assert_eq!(
        find(&inv, Ecosystem::Go, "stdlib").found.version,
        go_version.trim()
    );
    assert_eq!(
        find(&inv, Ecosystem::Maven, "demo").purl,
        "pkg:maven/com.example/demo@3.1.4"
    );
    assert_eq!(
        find(&inv, Ecosystem::Maven, "plainlib").found.version,
        "0.9"
    );
    assert_eq!(
        find(&inv, Ecosystem::Deb, "bash").found.license.as_deref(),
        Some("GPL-3+ and BSD-3-clause and (GPL-2+ or Artistic)")
    );
    for (eco, name) in [
        (Ecosystem::Apk, "busybox"),
        (Ecosystem::Npm, "@types/node"),
        (Ecosystem::Python, "typing-extensions"),
        (Ecosystem::Cargo, "log"),
    ] {
        find(&inv, eco, name);
    }

    let info = DocInfo {
        name: "sbom-test".into(),
        namespace: "https://spdx.org/spdxdocs/hoist/sbom-test-1".into(),
        created: "2026-01-01T00:00:00Z".into(),
    };
    let doc = sbom::spdx::document(&inv, &info);
    validate(&doc);
    let pkgs = doc["packages"].as_array().unwrap();
    let bash = pkgs.iter().find(|p| p["name"] == "bash").unwrap();
    assert_eq!(
        bash["licenseDeclared"],
        "GPL-3.0-or-later AND BSD-3-Clause AND (GPL-2.0-or-later OR LicenseRef-Artistic)"
    );
    let rels = doc["relationships"].as_array().unwrap();
    let depends = |from: &str, to: &str| {
        let id = |n: &str| {
            pkgs.iter()
                .find(|p| p["name"] == n)
                .map(|p| p["SPDXID"].clone())
                .unwrap()
        };
        rels.iter().any(|r| {
            r["relationshipType"] == "DEPENDS_ON"
                && r["spdxElementId"] == id(from)
                && r["relatedSpdxElement"] == id(to)
        })
    };
    assert!(depends("bash", "libc6"));
    assert!(depends("log", "cfg-if"));
    assert!(depends("busybox", "musl"));
    assert!(!depends("libc6", "bash"));
    // Same inventory and info: the same bytes.
    assert_eq!(
        serde_json::to_string(&doc).unwrap(),
        serde_json::to_string(&sbom::spdx::document(&inv, &info)).unwrap()
    );
}

const DEBIAN: &str = "localhost:5000/debian:bookworm";

#[test]
fn hoist_sbom_of_a_debian_image_lists_what_dpkg_query_lists() {
    if !ready(&[
        Need::Root,
        Need::LabRegistry,
        Need::LabDebian,
        Need::OciRuntime,
    ]) || !tool("pyspdxtools", "pip install spdx-tools")
        || !tool("go", "apt-get install golang-go")
        || !tool("jar", "apt-get install default-jdk-headless")
    {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    put(
        c,
        "Dockerfile",
        format!(
            "FROM {DEBIAN}\n\
             COPY site /usr/lib/python3/dist-packages/\n\
             COPY package-lock.json /app/package-lock.json\n\
             COPY app /usr/local/bin/app\n\
             COPY java /opt/java/\n\
             RUN dpkg --purge e2fsprogs && rm -r /usr/share/doc/bash\n"
        )
        .as_bytes(),
    );
    put(
        c,
        "site/typing_extensions-4.9.0.dist-info/METADATA",
        &std::fs::read(fixture("METADATA")).unwrap(),
    );
    put(
        c,
        "package-lock.json",
        &std::fs::read(fixture("package-lock.json")).unwrap(),
    );
    go_binary(work.path(), &c.join("app"));
    jars(work.path(), &c.join("java"));
    let o = Hoist::new(store.path())
        .args(["build", "-q", "-t", "sbom-test"])
        .arg(c)
        .output();
    assert!(o.status.success(), "{}", text(&o));

    let sbom = || {
        let o = Hoist::new(store.path())
            .epoch("1700000000")
            .args(["sbom", "--format", "spdx-json", "sbom-test"])
            .output();
        assert!(o.status.success(), "{}", text(&o));
        o.stdout
    };
    let bytes = sbom();
    // SOURCE_DATE_EPOCH: the creation time, and so the whole document, is fixed.
    assert_eq!(sbom(), bytes);
    let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(doc["creationInfo"]["created"], "2023-11-14T22:13:20Z");
    validate(&doc);

    let o = Hoist::new(store.path())
        .args([
            "run",
            "sbom-test",
            "dpkg-query",
            "-W",
            "-f",
            "${db:Status-Status} ${Package} ${Version}\n",
        ])
        .output();
    assert!(o.status.success(), "{}", text(&o));
    let mut want: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("installed "))
        .map(str::to_string)
        .collect();
    want.sort();
    assert!(want.len() > 50, "{want:?}");
    assert!(
        !want.iter().any(|l| l.starts_with("e2fsprogs ")),
        "{want:?}"
    );

    let pkgs = doc["packages"].as_array().unwrap();
    let purl = |p: &serde_json::Value| {
        p["externalRefs"][0]["referenceLocator"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let mut got: Vec<String> = pkgs
        .iter()
        .filter(|p| purl(p).starts_with("pkg:deb/"))
        .map(|p| {
            format!(
                "{} {}",
                p["name"].as_str().unwrap(),
                p["versionInfo"].as_str().unwrap()
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, want);
    let bash = pkgs.iter().find(|p| p["name"] == "bash").unwrap();
    assert!(
        purl(bash).ends_with("?arch=amd64&distro=debian-12"),
        "{}",
        purl(bash)
    );
    // Its copyright file was removed in the last layer: no license is known any more.
    assert_eq!(bash["licenseDeclared"], "NOASSERTION");
    let dash = pkgs.iter().find(|p| p["name"] == "dash").unwrap();
    assert_ne!(dash["licenseDeclared"], "NOASSERTION", "{dash}");
    for (name, source) in [
        (
            "typing-extensions",
            "/usr/lib/python3/dist-packages/typing_extensions-4.9.0.dist-info/METADATA",
        ),
        ("undici-types", "/app/package-lock.json"),
        ("example.com/lib", "/usr/local/bin/app"),
        ("demo", "/opt/java/demo.jar"),
    ] {
        let p = pkgs
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(
            p["sourceInfo"],
            format!("acquired package info from {source}")
        );
    }

    let o = Hoist::new(store.path())
        .args(["sbom", "--format", "table", "sbom-test"])
        .output();
    assert!(o.status.success(), "{}", text(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.starts_with("NAME "), "{table}");
    let line = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some("bash"))
        .unwrap();
    let bash_version = bash["versionInfo"].as_str().unwrap();
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>(),
        vec!["bash", bash_version, "deb"]
    );
    let o = Hoist::new(store.path())
        .args(["sbom", "--format", "xml", "sbom-test"])
        .output();
    assert!(!o.status.success());
    assert!(
        text(&o).contains("--format xml: expected spdx-json or table"),
        "{}",
        text(&o)
    );
}

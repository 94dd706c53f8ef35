//! Where findings come from: an image's layers, read in order with the strict tar reader
//! (OCI whiteouts applied, so a later layer's file or whiteout replaces or removes what a
//! lower layer held), or a directory (never following a symlink). Each file whose path
//! interests a parser is handed to it while the layer streams: text databases are read into
//! memory within a per-kind limit, an rpmdb goes to a temporary file, an executable is
//! scanned chunk by chunk; only the small finding is kept per path. Layers are hostile input:
//! everything read is bounded and an oversized file is skipped with a warning.

use super::scan_cache::{ScanCache, State};
use super::{Ecosystem, Finding, Inventory, Result, SbomError};
use crate::layers::extract::ExtractLimits;
use crate::layers::tarfmt::{Kind, ReadLimits, Reader};
use crate::layers::{DecompressHint, decompress};
use crate::oci::Descriptor;
use crate::store::Store;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// What a path is to the scanners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Interest {
    OsRelease,
    DpkgStatus,
    Copyright,
    Apk,
    RpmDb,
    /// BerkeleyDB or ndb rpmdb (RHEL ≤ 8, SUSE): not read, said so.
    RpmLegacy,
    NpmLock,
    NpmManifest,
    Python,
    CargoLock,
    Jar,
    Binary,
}

impl Interest {
    /// Most bytes read of such a file (the rpmdb goes to disk; a binary is streamed).
    fn limit(self) -> u64 {
        match self {
            Interest::OsRelease => 64 << 10,
            Interest::Copyright => 1 << 20,
            Interest::NpmManifest | Interest::Python => 4 << 20,
            Interest::CargoLock => 16 << 20,
            Interest::DpkgStatus | Interest::Apk | Interest::NpmLock | Interest::Jar => 64 << 20,
            Interest::RpmDb => 512 << 20,
            Interest::RpmLegacy => u64::MAX,
            Interest::Binary => u64::MAX,
        }
    }
}

/// Which scanner wants the regular file at `path` (absolute, `/`-separated), if any.
fn interest(path: &str, mode: u32) -> Option<Interest> {
    let file = path.rsplit('/').next().unwrap_or("");
    let i = match path {
        "/etc/os-release" | "/usr/lib/os-release" => Interest::OsRelease,
        "/var/lib/dpkg/status" => Interest::DpkgStatus,
        "/lib/apk/db/installed" => Interest::Apk,
        "/var/lib/rpm/rpmdb.sqlite" | "/usr/lib/sysimage/rpm/rpmdb.sqlite" => Interest::RpmDb,
        "/var/lib/rpm/Packages"
        | "/var/lib/rpm/Packages.db"
        | "/usr/lib/sysimage/rpm/Packages"
        | "/usr/lib/sysimage/rpm/Packages.db" => Interest::RpmLegacy,
        _ if path.starts_with("/var/lib/dpkg/status.d/")
            && path.matches('/').count() == 5
            && !file.ends_with(".md5sums") =>
        {
            Interest::DpkgStatus
        }
        _ if path.starts_with("/usr/share/doc/")
            && file == "copyright"
            && path.matches('/').count() == 5 =>
        {
            Interest::Copyright
        }
        _ if file == "package-lock.json" && !path.contains("/node_modules/") => Interest::NpmLock,
        _ if super::npm::is_installed_manifest(path) => Interest::NpmManifest,
        _ if super::python::is_metadata(path) => Interest::Python,
        _ if file == "Cargo.lock" => Interest::CargoLock,
        _ if super::java::is_archive(path) => Interest::Jar,
        _ if mode & 0o111 != 0 => Interest::Binary,
        _ => return None,
    };
    Some(i)
}

/// Collects findings per path and the warnings of one scan.
struct Collector<'a> {
    findings: BTreeMap<String, (usize, Finding)>,
    warnings: Vec<String>,
    tmp: &'a Path,
}

impl Collector<'_> {
    /// Removes what lower layers (before `layer`) held at `path` and, unless it stays a
    /// directory, below it.
    fn replace(&mut self, path: &str, layer: usize, keep_below: bool) {
        if self.findings.get(path).is_some_and(|(l, _)| *l < layer) {
            self.findings.remove(path);
        }
        if !keep_below {
            self.remove_below(path, layer);
        }
    }

    /// Removes what lower layers held under directory `dir`.
    fn remove_below(&mut self, dir: &str, layer: usize) {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        let doomed: Vec<String> = self
            .findings
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(_, (l, _))| *l < layer)
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.findings.remove(&k);
        }
    }

    /// Reads one interesting file and records what it says.
    fn scan_file(
        &mut self,
        path: &str,
        what: Interest,
        size: u64,
        data: &mut dyn Read,
        layer: usize,
    ) {
        if size > what.limit() {
            self.warnings.push(format!(
                "{path}: {size} bytes, more than the {} MiB read for such a file: skipped",
                what.limit() >> 20
            ));
            return;
        }
        let found = match what {
            Interest::RpmLegacy => Err(
                "an rpm database in BerkeleyDB or ndb format: not read (only rpmdb.sqlite is)"
                    .to_string(),
            ),
            Interest::Binary => Ok(binary(data)),
            Interest::RpmDb => self.rpm(path, data),
            _ => {
                let mut bytes = Vec::new();
                match data.take(what.limit()).read_to_end(&mut bytes) {
                    Ok(_) => parse(path, what, &bytes),
                    Err(e) => Err(format!("cannot read: {e}")),
                }
            }
        };
        match found {
            Ok(Some(f)) => {
                self.findings.insert(path.to_string(), (layer, f));
            }
            Ok(None) => {}
            Err(e) => self.warnings.push(format!("{path}: {e}")),
        }
    }

    fn rpm(
        &mut self,
        path: &str,
        data: &mut dyn Read,
    ) -> std::result::Result<Option<Finding>, String> {
        let tmp = tempfile::NamedTempFile::new_in(self.tmp)
            .map_err(|e| format!("cannot make a temporary file: {e}"))?;
        let mut f = tmp.as_file();
        std::io::copy(data, &mut f).map_err(|e| format!("cannot copy the database: {e}"))?;
        let (pkgs, warnings) = super::rpm::read_sqlite(tmp.path(), path);
        self.warnings.extend(warnings);
        Ok(Some(Finding::Packages(Ecosystem::Rpm, pkgs)))
    }

    /// The findings so far, for [`ScanCache`].
    fn state(&self) -> State {
        State {
            findings: self
                .findings
                .iter()
                .map(|(p, (l, f))| (p.clone(), *l, f.clone()))
                .collect(),
            warnings: self.warnings.clone(),
        }
    }

    fn finish(self) -> Inventory {
        let findings = self
            .findings
            .into_iter()
            .map(|(k, (_, f))| (k, f))
            .collect();
        super::assemble(&findings, self.warnings)
    }
}

/// A streamed executable's embedded dependency data, as findings.
fn binary(data: &mut dyn Read) -> Option<Finding> {
    let mut s = super::binary::Scanner::new();
    let mut buf = vec![0u8; 256 * 1024];
    while s.wants_more() {
        match data.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => s.feed(&buf[..n]),
        }
    }
    let e = s.finish();
    if let Some(go) = e.go {
        return Some(Finding::Packages(
            Ecosystem::Go,
            super::golang::modules(&go),
        ));
    }
    let json = e.auditable?;
    super::cargo::parse_auditable(&json)
        .ok()
        .map(|p| Finding::Packages(Ecosystem::Cargo, p))
}

/// Parses a text file that was read whole.
fn parse(path: &str, what: Interest, bytes: &[u8]) -> std::result::Result<Option<Finding>, String> {
    let text = String::from_utf8_lossy(bytes);
    let pkgs = |eco, list: Vec<super::Found>| {
        Ok((!list.is_empty()).then_some(Finding::Packages(eco, list)))
    };
    match what {
        Interest::OsRelease => Ok(Some(Finding::OsRelease(super::parse_os_release(&text)))),
        Interest::DpkgStatus => pkgs(Ecosystem::Deb, super::dpkg::parse_status(&text)),
        Interest::Copyright => {
            Ok(super::dpkg::copyright_licenses(&text).map(Finding::DebCopyright))
        }
        Interest::Apk => pkgs(Ecosystem::Apk, super::apk::parse_installed(&text)),
        Interest::NpmLock => pkgs(Ecosystem::Npm, super::npm::parse_lock(&text)?),
        Interest::NpmManifest => pkgs(
            Ecosystem::Npm,
            super::npm::parse_package_json(&text).into_iter().collect(),
        ),
        Interest::Python => pkgs(
            Ecosystem::Python,
            super::python::parse_metadata(&text).into_iter().collect(),
        ),
        Interest::CargoLock => pkgs(Ecosystem::Cargo, super::cargo::parse_lock(&text)),
        Interest::Jar => pkgs(Ecosystem::Maven, super::java::scan(bytes, path)?),
        Interest::RpmDb | Interest::RpmLegacy | Interest::Binary => Ok(None),
    }
}

/// A tar entry's data as `Read`.
struct EntryData<'a, R: Read>(&'a mut Reader<R>);

impl<R: Read> Read for EntryData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0
            .read_data(buf)
            .map_err(|e| std::io::Error::other(e.to_string()))
    }
}

/// The inventory of an image whose layers (in order, lowest first) are in `store`.
pub fn scan_layers(store: &Store, layers: &[Descriptor]) -> Result<Inventory> {
    let tmp = store.tmp_dir().map_err(SbomError::Scratch)?;
    let cache = ScanCache::new(store.root());
    let (start, state) = cache.longest(layers).unwrap_or_default();
    let mut c = Collector {
        findings: state
            .findings
            .into_iter()
            .map(|(path, layer, f)| (path, (layer, f)))
            .collect(),
        warnings: state.warnings,
        tmp: tmp.path(),
    };
    for (i, desc) in layers.iter().enumerate().skip(start) {
        let digest = desc.digest.to_string();
        let blob = store
            .open_blob(&desc.digest)
            .map_err(|source| SbomError::Store {
                digest: digest.clone(),
                source,
            })?;
        let layer_err = |source| SbomError::Layer {
            digest: digest.clone(),
            source,
        };
        let tar =
            decompress(blob, DecompressHint::MediaType(&desc.media_type)).map_err(layer_err)?;
        scan_tar(tar, i, &mut c).map_err(layer_err)?;
        cache.put(&layers[..=i], &c.state());
    }
    Ok(c.finish())
}

/// Applies one layer's entries to the collector.
fn scan_tar(tar: impl Read, layer: usize, c: &mut Collector<'_>) -> crate::layers::Result<()> {
    let l = ExtractLimits::default();
    let mut r = Reader::new(
        tar,
        ReadLimits {
            max_pax: l.max_pax_bytes,
            max_path: l.max_path_len,
            max_entries: l.max_entries,
            max_total: l.max_total_bytes,
        },
    );
    while let Some(e) = r.next_entry()? {
        let name = String::from_utf8_lossy(&e.name);
        let rel = name.trim_start_matches("./").trim_matches('/');
        if rel.is_empty() || rel.split('/').any(|s| s == "..") {
            continue;
        }
        let path = format!("/{rel}");
        let (dir, file) = path.rsplit_once('/').unwrap_or(("", &path));
        if file == ".wh..wh..opq" {
            c.remove_below(if dir.is_empty() { "/" } else { dir }, layer);
            continue;
        }
        if let Some(gone) = file.strip_prefix(".wh.") {
            c.replace(&format!("{dir}/{gone}"), layer, false);
            continue;
        }
        c.replace(&path, layer, e.kind == Kind::Dir);
        if e.kind != Kind::Regular {
            continue;
        }
        if let Some(what) = interest(&path, e.mode) {
            c.scan_file(&path, what, e.size, &mut EntryData(&mut r), layer);
        }
    }
    Ok(())
}

/// The inventory of a directory tree (a build context): symlinks are never followed, so
/// nothing outside `root` is read.
pub fn scan_dir(root: &Path) -> Result<Inventory> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |path: &Path, source| SbomError::Io {
        path: path.display().to_string(),
        source,
    };
    let tmp = tempfile::tempdir().map_err(|e| io(Path::new("(temporary directory)"), e))?;
    let mut c = Collector {
        findings: BTreeMap::new(),
        warnings: Vec::new(),
        tmp: tmp.path(),
    };
    for entry in walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let p = e
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                if e.depth() == 0 {
                    let source = e
                        .into_io_error()
                        .unwrap_or_else(|| std::io::Error::other("cannot walk"));
                    return Err(io(root, source));
                }
                c.warnings.push(format!("{p}: cannot read: {e}"));
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(root) else {
            continue;
        };
        let path = format!("/{}", rel.to_string_lossy());
        let Ok(meta) = entry.metadata() else { continue };
        let Some(what) = interest(&path, meta.permissions().mode()) else {
            continue;
        };
        // O_NOFOLLOW: a file swapped for a symlink after the walk saw it is not followed.
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(entry.path());
        match f {
            Ok(mut f) => c.scan_file(&path, what, meta.len(), &mut f, 0),
            Err(e) => c
                .warnings
                .push(format!("{}: cannot open: {e}", entry.path().display())),
        }
    }
    Ok(c.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::tarfmt::{Entry, write_end, write_header, write_padding};

    fn layer(entries: &[(&str, Kind, u32, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, kind, mode, data) in entries {
            let mut e = Entry::new(name.as_bytes().to_vec(), *kind);
            e.mode = *mode;
            e.size = data.len() as u64;
            write_header(&mut out, &e).unwrap();
            out.extend_from_slice(data);
            write_padding(&mut out, data.len() as u64).unwrap();
        }
        write_end(&mut out).unwrap();
        out
    }

    const STATUS_A: &[u8] =
        b"Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n";
    const META: &[u8] = b"Name: requests\nVersion: 2.31.0\nLicense: Apache-2.0\n";

    fn names(inv: &Inventory) -> Vec<String> {
        inv.packages
            .iter()
            .map(|p| format!("{} {}", p.found.name, p.found.version))
            .collect()
    }

    /// Scanned chains are kept: a later scan sharing the lower layers reads only the new ones
    /// (here the lower layer's blob is gone, so reading it would fail) and finds what a
    /// fresh scan finds; an unreadable state is a miss, not an error.
    #[test]
    fn a_scanned_prefix_is_not_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let put = |tar: Vec<u8>| {
            let d = store.put_blob(&tar).unwrap();
            Descriptor::new(crate::oci::media::OCI_LAYER, d, tar.len() as u64)
        };
        let base = put(layer(&[(
            "var/lib/dpkg/status",
            Kind::Regular,
            0o644,
            STATUS_A,
        )]));
        let top1 = put(layer(&[(
            "app/x.dist-info/METADATA",
            Kind::Regular,
            0o644,
            META,
        )]));
        let top2 = put(layer(&[("var/lib/dpkg/.wh.status", Kind::Regular, 0, b"")]));
        let first = scan_layers(&store, &[base.clone(), top1.clone()]).unwrap();
        assert_eq!(names(&first), ["a 1", "requests 2.31.0"]);
        let fresh = {
            let other = tempfile::tempdir().unwrap();
            let s2 = Store::open(other.path()).unwrap();
            for d in [&base, &top2] {
                s2.put_blob(&store.read_blob(&d.digest).unwrap()).unwrap();
            }
            scan_layers(&s2, &[base.clone(), top2.clone()]).unwrap()
        };
        std::fs::remove_file(store.blob_path(&base.digest)).unwrap();
        let again = scan_layers(&store, &[base.clone(), top2.clone()]).unwrap();
        assert_eq!(again, fresh);
        assert!(names(&again).is_empty(), "the whiteout removed the status");
        // Warm: the whole chain is known, no blob is read.
        assert_eq!(
            scan_layers(&store, &[base.clone(), top1.clone()]).unwrap(),
            first
        );
        // A damaged state is a miss: the (missing) base blob is then needed, and says so.
        for e in std::fs::read_dir(dir.path().join("cache/sbom")).unwrap() {
            std::fs::write(e.unwrap().path(), b"{not json").unwrap();
        }
        assert!(scan_layers(&store, &[base, top1]).is_err());
    }

    #[test]
    fn later_layers_replace_and_whiteouts_remove_findings() {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = Collector {
            findings: BTreeMap::new(),
            warnings: Vec::new(),
            tmp: tmp.path(),
        };
        let l0 = layer(&[
            ("var/lib/dpkg/status", Kind::Regular, 0o644, STATUS_A),
            ("app/x.dist-info/METADATA", Kind::Regular, 0o644, META),
            ("opt/y.dist-info/METADATA", Kind::Regular, 0o644, META),
            ("srv/z.dist-info/METADATA", Kind::Regular, 0o644, META),
        ]);
        scan_tar(&l0[..], 0, &mut c).unwrap();
        let l1 = layer(&[
            // A new status replaces the old one.
            (
                "var/lib/dpkg/status",
                Kind::Regular,
                0o644,
                b"Package: b\nStatus: install ok installed\nVersion: 2\n",
            ),
            // Whiteout of a directory; opaque directory; a file turned into a directory.
            ("app/.wh.x.dist-info", Kind::Regular, 0, b""),
            ("opt/.wh..wh..opq", Kind::Regular, 0, b""),
            (
                "opt/w.dist-info/METADATA",
                Kind::Regular,
                0o644,
                b"Name: w\nVersion: 1\n",
            ),
            ("srv/z.dist-info", Kind::Regular, 0o644, b"not a dir"),
        ]);
        scan_tar(&l1[..], 1, &mut c).unwrap();
        let inv = c.finish();
        assert_eq!(names(&inv), vec!["b 2", "w 1"]);
    }

    #[test]
    fn a_truncated_layer_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = Collector {
            findings: BTreeMap::new(),
            warnings: Vec::new(),
            tmp: tmp.path(),
        };
        let l = layer(&[("var/lib/dpkg/status", Kind::Regular, 0o644, STATUS_A)]);
        // Cut inside the file's data: the status is not recorded and the layer fails.
        assert!(scan_tar(&l[..520], 0, &mut c).is_err());
        assert!(c.findings.is_empty());
    }

    #[test]
    fn paths_go_to_their_scanner() {
        let cases = [
            ("/etc/os-release", 0o644, Some(Interest::OsRelease)),
            ("/var/lib/dpkg/status", 0o644, Some(Interest::DpkgStatus)),
            (
                "/var/lib/dpkg/status.d/python3.11",
                0o644,
                Some(Interest::DpkgStatus),
            ),
            ("/var/lib/dpkg/status.d/libc6.md5sums", 0o644, None),
            ("/var/lib/dpkg/status.d/x/y", 0o644, None),
            (
                "/usr/share/doc/bash/copyright",
                0o644,
                Some(Interest::Copyright),
            ),
            ("/usr/share/doc/bash/x/copyright", 0o644, None),
            ("/var/lib/rpm/Packages", 0o644, Some(Interest::RpmLegacy)),
            ("/app/package-lock.json", 0o644, Some(Interest::NpmLock)),
            ("/app/node_modules/x/package-lock.json", 0o644, None),
            (
                "/app/node_modules/@s/x/package.json",
                0o644,
                Some(Interest::NpmManifest),
            ),
            ("/srv/Cargo.lock", 0o644, Some(Interest::CargoLock)),
            ("/opt/app.WAR", 0o644, Some(Interest::Jar)),
            ("/usr/bin/tool", 0o755, Some(Interest::Binary)),
            ("/usr/lib/libx.so", 0o644, None),
        ];
        for (path, mode, want) in cases {
            assert_eq!(interest(path, mode), want, "{path}");
        }
    }

    #[test]
    fn oversized_files_are_skipped_with_a_warning() {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = Collector {
            findings: BTreeMap::new(),
            warnings: Vec::new(),
            tmp: tmp.path(),
        };
        let big = vec![b'x'; (64 << 10) + 1];
        let l = layer(&[("etc/os-release", Kind::Regular, 0o644, &big)]);
        scan_tar(&l[..], 0, &mut c).unwrap();
        assert!(c.findings.is_empty());
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].starts_with("/etc/os-release: 65537 bytes"));
    }

    #[test]
    fn directory_scan_does_not_follow_symlinks_out_of_the_root() {
        let outside = tempfile::tempdir().unwrap();
        let d = outside.path().join("secret.dist-info");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("METADATA"), META).unwrap();
        let root = tempfile::tempdir().unwrap();
        let inside = root.path().join("ok.dist-info");
        std::fs::create_dir(&inside).unwrap();
        std::fs::write(inside.join("METADATA"), b"Name: ok\nVersion: 1\n").unwrap();
        std::os::unix::fs::symlink(&d, root.path().join("link.dist-info")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("out")).unwrap();
        let inv = scan_dir(root.path()).unwrap();
        assert_eq!(names(&inv), vec!["ok 1"]);
        assert_eq!(inv.packages[0].source, "/ok.dist-info/METADATA");
    }
}

//! ADD's extras: local tar archives unpacked (gzip, bzip2, xz, zstd or plain, detected by
//! content), http(s) downloads (`--checksum`, mode 0600, mtime from `Last-Modified`) and git
//! repositories (`URL#ref:subdir`, `--keep-git-dir`) fetched with the `git` CLI.

use super::fsops::Kind;
use super::write::Writer;
use super::{CopyError, Result, io_err};
use crate::fsroot::Found;
use crate::parser::dockerignore::go_clean;
use sha2::{Digest as _, Sha256};
use std::io::{Read, Write};
use std::process::{Command, Stdio};

/// True for `http://` and `https://` sources (that are not git URLs).
pub(crate) fn is_http_url(s: &str) -> bool {
    (s.starts_with("http://") || s.starts_with("https://")) && !is_git_url(s)
}

/// True for git sources as BuildKit recognises them: `git@…`, `git://…`, `ssh://…`, or an
/// http(s) URL whose path ends in `.git` (before `#`).
pub(crate) fn is_git_url(s: &str) -> bool {
    if s.starts_with("git@") || s.starts_with("git://") || s.starts_with("ssh://") {
        return true;
    }
    if s.starts_with("http://") || s.starts_with("https://") {
        let base = s.split('#').next().unwrap_or(s);
        let base = base.split('?').next().unwrap_or(base);
        return base.ends_with(".git");
    }
    false
}

/// The file name a downloaded URL gets: the last segment of its path.
pub(crate) fn url_file_name(url: &str) -> String {
    let no_q = url.split(['?', '#']).next().unwrap_or(url);
    let after_host = no_q.splitn(4, '/').nth(3).unwrap_or("");
    after_host
        .rsplit('/')
        .find(|s| !s.is_empty() && *s != "." && *s != "..")
        .unwrap_or("__unnamed__")
        .to_string()
}

fn parse_checksum(c: &str) -> Result<String> {
    match c.strip_prefix("sha256:") {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(h.to_ascii_lowercase())
        }
        _ => Err(CopyError::BadChecksum {
            value: c.to_string(),
        }),
    }
}

/// Parses an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`) to Unix seconds.
pub(crate) fn parse_http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" {
        return None;
    }
    let day: i64 = parts[1].parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[2])? as i64
        + 1;
    let year: i64 = parts[3].parse().ok()?;
    let hms: Vec<i64> = parts[4]
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if hms.len() != 3 {
        return None;
    }
    // days from civil (Howard Hinnant's algorithm)
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + hms[0] * 3600 + hms[1] * 60 + hms[2])
}

/// Downloads `url` into a new temp dir as file `name` (mode 0600, mtime from Last-Modified),
/// verifying `--checksum`; returns it with the content's sha256 (hex).
pub(crate) fn download(
    url: &str,
    name: &str,
    checksum: Option<&str>,
) -> Result<(tempfile::TempDir, String)> {
    let expected = checksum.map(parse_checksum).transpose()?;
    let fail = |reason: String| CopyError::Download {
        url: url.to_string(),
        reason,
    };
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(600))
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let mut resp = client.get(url).send().map_err(|e| fail(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(fail(format!("HTTP {}", resp.status())));
    }
    let mtime = resp
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date);
    let tmp = tempfile::tempdir().map_err(io_err(std::env::temp_dir()))?;
    let path = tmp.path().join(name);
    let mut f = std::fs::File::create(&path).map_err(io_err(&path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = resp.read(&mut buf).map_err(|e| fail(e.to_string()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        f.write_all(&buf[..n]).map_err(io_err(&path))?;
    }
    drop(f);
    let got = hex::encode(h.finalize());
    if let Some(exp) = expected
        && exp != got
    {
        return Err(CopyError::Checksum {
            url: url.to_string(),
            expected: format!("sha256:{exp}"),
            got: format!("sha256:{got}"),
        });
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(io_err(&path))?;
    let t = mtime.unwrap_or(0);
    let ts = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: t,
            tv_nsec: 0,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: t,
            tv_nsec: 0,
        },
    };
    rustix::fs::utimensat(rustix::fs::CWD, &path, &ts, rustix::fs::AtFlags::empty())
        .map_err(|e| io_err(&path)(e.into()))?;
    Ok((tmp, got))
}

/// A git source split into (remote, ref, subdir).
pub(crate) fn split_git_url(s: &str) -> (String, String, String) {
    let (remote, frag) = match s.split_once('#') {
        Some((r, f)) => (r.to_string(), f.to_string()),
        None => (s.to_string(), String::new()),
    };
    let (reference, subdir) = match frag.split_once(':') {
        Some((r, d)) => (r.to_string(), d.to_string()),
        None => (frag, String::new()),
    };
    (remote, reference, subdir)
}

fn git(args: &[&str], dir: &std::path::Path, url: &str) -> Result<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| CopyError::Git {
            url: url.to_string(),
            reason: format!("cannot run git: {e}"),
        })?;
    if !out.status.success() {
        return Err(CopyError::Git {
            url: url.to_string(),
            reason: format!(
                "git {} failed: {}",
                args.first().unwrap_or(&""),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Fetches a git source into a temp dir; returns it and the subdir to copy.
pub(crate) fn git_fetch(
    s: &str,
    keep_git_dir: bool,
    checksum: Option<&str>,
) -> Result<(tempfile::TempDir, String)> {
    let (remote, reference, subdir) = split_git_url(s);
    let tmp = tempfile::tempdir().map_err(io_err(std::env::temp_dir()))?;
    let d = tmp.path();
    git(&["init", "-q"], d, s)?;
    git(&["remote", "add", "origin", &remote], d, s)?;
    let r = if reference.is_empty() {
        "HEAD"
    } else {
        reference.as_str()
    };
    git(
        &["fetch", "-q", "--depth", "1", "--no-tags", "origin", r],
        d,
        s,
    )?;
    git(&["checkout", "-q", "FETCH_HEAD"], d, s)?;
    let commit = git(&["rev-parse", "FETCH_HEAD"], d, s)?;
    if let Some(c) = checksum
        && !commit.starts_with(c)
    {
        return Err(CopyError::Checksum {
            url: s.to_string(),
            expected: c.to_string(),
            got: commit,
        });
    }
    if !keep_git_dir {
        let g = d.join(".git");
        std::fs::remove_dir_all(&g).map_err(io_err(&g))?;
    }
    let sub = go_clean(&format!("/{subdir}"))
        .trim_start_matches('/')
        .to_string();
    Ok((tmp, sub))
}

/// The commit a git source's ref points to (for cache keys), via `git ls-remote`.
pub(crate) fn git_ls_remote(s: &str) -> Result<String> {
    let (remote, reference, _) = split_git_url(s);
    let r = if reference.is_empty() {
        "HEAD".to_string()
    } else {
        reference
    };
    let out = git(&["ls-remote", &remote, &r], &std::env::temp_dir(), s)?;
    Ok(out
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or(&r)
        .to_string())
}

// ---- archives -------------------------------------------------------------------------
// Decompression (gzip, bzip2, xz, zstd, plain by magic bytes, decoder memory capped) is the
// layers module's; members are written through this module's in-root writer so `--chown` and
// the destination rules apply exactly as for COPY.

fn decompressor(f: std::fs::File) -> std::io::Result<Box<dyn Read>> {
    crate::layers::decompress(f, crate::layers::DecompressHint::Sniff)
        .map(|r| -> Box<dyn Read> { r })
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// True when a tar header checksum is valid.
fn is_tar_header(h: &[u8]) -> bool {
    if h.len() < 512 || h.iter().all(|b| *b == 0) {
        return false;
    }
    let field = String::from_utf8_lossy(&h[148..156]);
    let field = field.trim_matches(|c: char| c == '\0' || c == ' ');
    let Ok(want) = u32::from_str_radix(field, 8) else {
        return false;
    };
    let sum: u32 = h
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                *b as u32
            }
        })
        .sum();
    sum == want
}

/// True when the file `f` is a tar archive, possibly compressed.
pub(crate) fn is_archive(f: &Found) -> std::io::Result<bool> {
    let fd = f.open_read()?;
    let file = std::fs::File::from(fd);
    let mut r = decompressor(file)?;
    let mut head = vec![0u8; 512];
    let mut got = 0;
    while got < 512 {
        match r.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(_) => return Ok(false),
        }
    }
    Ok(got == 512 && is_tar_header(&head))
}

/// Unpacks archive `file` into directory `dest` of `w` (ownership kept unless `--chown`).
pub(crate) fn extract_archive(
    file: std::fs::File,
    label: &str,
    w: &mut Writer,
    dest: &[String],
) -> Result<()> {
    let compressed = file.metadata().map(|m| m.len()).unwrap_or(0);
    let r = decompressor(file).map_err(|e| CopyError::Archive {
        path: label.to_string(),
        reason: e.to_string(),
    })?;
    let limit = MIN_UNPACKED.max(compressed.saturating_mul(MAX_RATIO));
    extract_tar(
        Box::new(Capped {
            inner: r,
            left: limit,
            limit,
        }),
        label,
        w,
        dest,
    )
}

/// Decompression-bomb guard: an archive may unpack to at most `MAX_RATIO` times its size
/// (and always at least `MIN_UNPACKED` bytes).
const MAX_RATIO: u64 = 1000;
const MIN_UNPACKED: u64 = 256 << 20;
/// Caps on one archive's members and their names.
const MAX_ENTRIES: usize = 1_000_000;
const MAX_PATH: usize = 4096;

/// A reader that fails once more than `limit` bytes came through.
struct Capped {
    inner: Box<dyn Read>,
    left: u64,
    limit: u64,
}

impl Read for Capped {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(std::io::Error::other(format!(
                "archive unpacks to more than {} bytes (over {MAX_RATIO}x its size): refusing a likely decompression bomb",
                self.limit
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Decompresses a stream by its magic bytes.
pub(crate) fn decompress_stream(r: Box<dyn Read + Send>) -> std::io::Result<Box<dyn Read>> {
    crate::layers::decompress(r, crate::layers::DecompressHint::Sniff)
        .map(|r| -> Box<dyn Read> { r })
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// Unpacks an uncompressed tar stream into directory `dest` of `w`.
pub(crate) fn extract_tar(
    r: Box<dyn Read>,
    label: &str,
    w: &mut Writer,
    dest: &[String],
) -> Result<()> {
    let bad = |reason: String| CopyError::Archive {
        path: label.to_string(),
        reason,
    };
    let mut ar = tar::Archive::new(r);
    let entries = ar.entries().map_err(|e| bad(e.to_string()))?;
    for (i, entry) in entries.enumerate() {
        if i >= MAX_ENTRIES {
            return Err(bad(format!("more than {MAX_ENTRIES} entries")));
        }
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if raw.len() > MAX_PATH {
            return Err(bad(format!("entry name longer than {MAX_PATH} bytes")));
        }
        let clean = go_clean(&format!("/{raw}"));
        let rel: Vec<String> = clean
            .split('/')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        if rel.is_empty() {
            continue;
        }
        let mut comps = dest.to_vec();
        comps.extend(rel);
        let h = entry.header();
        let kind = match h.entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
            tar::EntryType::Symlink => Kind::Symlink,
            tar::EntryType::Char => Kind::Char,
            tar::EntryType::Block => Kind::Block,
            tar::EntryType::Fifo => Kind::Fifo,
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let t = go_clean(&format!("/{target}"));
                let mut tcomps = dest.to_vec();
                tcomps.extend(t.split('/').filter(|c| !c.is_empty()).map(str::to_string));
                w.mkdir_all_plain(&comps[..comps.len() - 1])?;
                w.write_hardlink(&comps, &tcomps)?;
                continue;
            }
            _ => continue, // pax/global headers are consumed by the reader; others skipped
        };
        let perm = h.mode().map_err(|e| bad(e.to_string()))? & 0o7777;
        let uid = h.uid().unwrap_or(0) as u32;
        let gid = h.gid().unwrap_or(0) as u32;
        let owner = w.chown.unwrap_or((uid, gid));
        let mtime = h.mtime().unwrap_or(0) as i64;
        let link = entry
            .link_name_bytes()
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let rdev = match kind {
            Kind::Char | Kind::Block => {
                let ma = h.device_major().ok().flatten().unwrap_or(0);
                let mi = h.device_minor().ok().flatten().unwrap_or(0);
                rustix::fs::makedev(ma, mi)
            }
            _ => 0,
        };
        w.mkdir_all_plain(&comps[..comps.len() - 1])?;
        w.write_member(
            &comps,
            kind,
            perm,
            owner,
            mtime,
            link.as_deref(),
            rdev,
            &mut entry,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(is_git_url("https://github.com/a/b.git#main:dir"));
        assert!(is_git_url("git@github.com:a/b.git"));
        assert!(!is_git_url("https://example.com/x.tar.gz"));
        assert!(is_http_url("https://example.com/x.tar.gz"));
        assert_eq!(
            url_file_name("https://example.com/a/b/x.tar.gz?x=1"),
            "x.tar.gz"
        );
        assert_eq!(url_file_name("https://example.com/"), "__unnamed__");
        assert_eq!(
            split_git_url("https://h/r.git#v1:sub/dir"),
            ("https://h/r.git".into(), "v1".into(), "sub/dir".into())
        );
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784111777)
        );
        assert_eq!(parse_http_date("garbage"), None);
    }
}

//! The build context: which `.dockerignore` applies (`<Dockerfile>.dockerignore` beside the
//! Dockerfile wins over the context's `.dockerignore`), and a context sent as a tar on stdin
//! (`hoist build -`), extracted safely.
//!
//! As with BuildKit, the ignore file applies to the context as COPY sees it; the engine reads
//! the Dockerfile itself directly, so ignoring the Dockerfile or `.dockerignore` never breaks
//! a build (they are simply not copied by `COPY . /x`).
//!
//! Like `docker build -`, stdin holds either a context tar (compressed or not, with the
//! Dockerfile inside) or plain Dockerfile text, which becomes a context of that one file.

use super::write::Writer;
use super::{CopyError, Result, add, io_err};
use crate::parser::dockerignore::Matcher;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest ignore file read (a larger one is an error naming it).
const MAX_IGNORE: u64 = 16 << 20;

/// The ignore file that applies: `<dockerfile name>.dockerignore` beside the Dockerfile if it
/// exists, else `<context>/.dockerignore`, else none.
pub fn ignore_file(context_dir: &Path, dockerfile_path: &Path) -> Option<PathBuf> {
    if let Some(name) = dockerfile_path.file_name() {
        let mut n = name.to_os_string();
        n.push(".dockerignore");
        let beside = dockerfile_path.with_file_name(n);
        if beside.is_file() {
            return Some(beside);
        }
    }
    let p = context_dir.join(".dockerignore");
    p.is_file().then_some(p)
}

/// Loads the matcher for a build (empty when there is no ignore file).
pub fn load_ignore(context_dir: &Path, dockerfile_path: &Path) -> Result<Matcher> {
    let Some(path) = ignore_file(context_dir, dockerfile_path) else {
        return Ok(Matcher::default());
    };
    let f = std::fs::File::open(&path).map_err(io_err(&path))?;
    let mut text = String::new();
    f.take(MAX_IGNORE + 1)
        .read_to_string(&mut text)
        .map_err(io_err(&path))?;
    if text.len() as u64 > MAX_IGNORE {
        return Err(io_err(&path)(std::io::Error::other(
            "ignore file larger than 16 MiB",
        )));
    }
    Matcher::parse(&text).map_err(|source| CopyError::Ignore { path, source })
}

/// Extracts a tar build context (plain, gzip, bzip2, xz or zstd) read from `reader` into a
/// new directory `context` under `tmpdir` and returns its path. Entries are written in-root
/// (`..` and absolute names clamped, links never followed out); owners become the caller's.
pub fn tar_stdin_context(reader: impl Read + Send + 'static, tmpdir: &Path) -> Result<PathBuf> {
    let dir = tmpdir.join("context");
    std::fs::create_dir(&dir).map_err(io_err(&dir))?;
    let me = (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    );
    let mut w = Writer::for_dir(&dir, Some(me))?;
    let r = add::decompress_stream(Box::new(reader)).map_err(io_err("<stdin>"))?;
    add::extract_tar(r, "<stdin>", &mut w, &[])?;
    w.finish()?;
    Ok(dir)
}

/// Largest plain Dockerfile read from stdin.
const MAX_STDIN_DOCKERFILE: u64 = 16 << 20;

/// The context `hoist build -` reads from stdin: a tar (plain, gzip, bzip2, xz or zstd)
/// is extracted as by [`tar_stdin_context`]; anything else is Dockerfile text, written as
/// `Dockerfile` into an otherwise empty context (as `docker build -` does).
pub fn stdin_context(mut reader: impl Read + Send + 'static, tmpdir: &Path) -> Result<PathBuf> {
    let mut head = Vec::with_capacity(512);
    (&mut reader)
        .take(512)
        .read_to_end(&mut head)
        .map_err(io_err("<stdin>"))?;
    if is_compressed(&head) || is_tar_header(&head) {
        let all = std::io::Cursor::new(head).chain(reader);
        return tar_stdin_context(all, tmpdir);
    }
    let mut text = head;
    reader
        .take(MAX_STDIN_DOCKERFILE + 1 - text.len() as u64)
        .read_to_end(&mut text)
        .map_err(io_err("<stdin>"))?;
    if text.len() as u64 > MAX_STDIN_DOCKERFILE {
        return Err(io_err("<stdin>")(std::io::Error::other(
            "neither a tar archive nor a Dockerfile (larger than 16 MiB)",
        )));
    }
    let dir = tmpdir.join("context");
    std::fs::create_dir(&dir).map_err(io_err(&dir))?;
    let df = dir.join("Dockerfile");
    std::fs::write(&df, text).map_err(io_err(&df))?;
    Ok(dir)
}

/// gzip, bzip2, xz or zstd magic.
pub(crate) fn is_compressed(b: &[u8]) -> bool {
    b.starts_with(&[0x1f, 0x8b])
        || b.starts_with(b"BZh")
        || b.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
        || b.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
}

/// A tar header block: its checksum field (octal, bytes 148..156) matches the sum of the
/// block's bytes with that field read as spaces. Holds for v7, ustar and GNU tars.
pub(crate) fn is_tar_header(b: &[u8]) -> bool {
    if b.len() < 512 {
        return false;
    }
    let field = String::from_utf8_lossy(&b[148..156]);
    let Ok(want) = u32::from_str_radix(field.trim_matches(|c: char| c == ' ' || c == '\0'), 8)
    else {
        return false;
    };
    let sum: u32 = b[..512]
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(x)
            }
        })
        .sum();
    sum == want
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_dockerfile_text_becomes_a_one_file_context() {
        let t = tempfile::tempdir().unwrap();
        let text = "FROM scratch\nCOPY Dockerfile /\n";
        let dir = stdin_context(std::io::Cursor::new(text.to_string()), t.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("Dockerfile")).unwrap(),
            text
        );
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    }

    #[test]
    fn stdin_tar_is_extracted() {
        let t = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        for (name, body) in [("Dockerfile", "FROM scratch\n"), ("sub/a.txt", "a")] {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, body.as_bytes()).unwrap();
        }
        let data = b.into_inner().unwrap();
        assert!(is_tar_header(&data));
        let dir = stdin_context(std::io::Cursor::new(data), t.path()).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("sub/a.txt")).unwrap(), "a");
        assert!(dir.join("Dockerfile").is_file());
    }
}

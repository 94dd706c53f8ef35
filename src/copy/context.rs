//! The build context: which `.dockerignore` applies (`<Dockerfile>.dockerignore` beside the
//! Dockerfile wins over the context's `.dockerignore`), and a context sent as a tar on stdin
//! (`hoist build -`), extracted safely.
//!
//! As with BuildKit, the ignore file applies to the context as COPY sees it; the engine reads
//! the Dockerfile itself directly, so ignoring the Dockerfile or `.dockerignore` never breaks
//! a build (they are simply not copied by `COPY . /x`).

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

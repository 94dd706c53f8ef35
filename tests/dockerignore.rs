//! Table-driven tests of the `.dockerignore` matcher (tests/fixtures/dockerignore/cases.txt)
//! and a pruned walk over a 100k-file tree.

use hoist::copy::{CopyRequest, CopySource, HashCache, content_key};
use hoist::parser::dockerignore::{Matcher, read_ignore_lines};

#[test]
fn table_cases() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/dockerignore/cases.txt"
    ))
    .unwrap();
    let mut failures = Vec::new();
    let mut count = 0;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (head, pats) = line
            .split_once(" <- ")
            .unwrap_or_else(|| panic!("line {}: no <-", n + 1));
        let (expect, path) = head.split_once(' ').unwrap();
        let file = pats.split(' ').collect::<Vec<_>>().join("\n");
        count += 1;
        let parsed = Matcher::parse(&file);
        let got = match (expect, parsed) {
            ("error", Err(_)) => continue,
            ("error", Ok(_)) => "parsed".to_string(),
            (_, Err(e)) => format!("error {e}"),
            ("excluded" | "included", Ok(m)) => if m.is_excluded(path) {
                "excluded"
            } else {
                "included"
            }
            .to_string(),
            ("prune" | "noprune", Ok(m)) => if m.can_prune_dir(path) {
                "prune"
            } else {
                "noprune"
            }
            .to_string(),
            (other, _) => panic!("line {}: unknown expectation {other}", n + 1),
        };
        if got != expect {
            failures.push(format!("line {}: {line:?}: got {got}", n + 1));
        }
    }
    assert!(count >= 40, "only {count} cases");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn reader_trims_bom_comments_and_slashes() {
    let lines = read_ignore_lines("\u{feff}# c\n  /a/b/  \n\n ! ./c \n  # not a comment\n");
    assert_eq!(lines, vec!["a/b", "!c", "# not a comment"]);
}

#[test]
fn error_names_the_pattern() {
    let err = Matcher::parse("ok\n[z\n").unwrap_err().to_string();
    assert!(err.contains("\"[z\""), "{err}");
}

/// A walk that asks `can_prune_dir` skips a huge excluded directory without reading it.
#[test]
fn pruned_walk_of_100k_files_is_fast() {
    // on tmpfs when there is one: creating and removing 100k files dominates otherwise
    let shm = std::path::Path::new("/dev/shm");
    let tmp = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .unwrap();
    let root = tmp.path();
    // 100 dirs x 1000 files under node_modules, plus a small src tree.
    for d in 0..100 {
        let dir = root.join(format!("node_modules/p{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..1000 {
            std::fs::File::create(dir.join(format!("f{f}"))).unwrap();
        }
    }
    std::fs::create_dir_all(root.join("src/sub")).unwrap();
    for f in 0..50 {
        std::fs::write(root.join(format!("src/sub/s{f}.c")), "x").unwrap();
    }
    let m = Matcher::parse("node_modules\n*.log\n!src/keep.log\n").unwrap();
    let mut visited = 0usize;
    let mut kept = 0usize;
    let mut it = walkdir::WalkDir::new(root).min_depth(1).into_iter();
    while let Some(entry) = it.next() {
        let entry = entry.unwrap();
        visited += 1;
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        if entry.file_type().is_dir() && m.can_prune_dir(&rel) {
            it.skip_current_dir();
            continue;
        }
        if !m.is_excluded(&rel) {
            kept += 1;
        }
    }
    assert_eq!(kept, 52, "src, src/sub and 50 files");
    assert!(visited < 100, "pruned walk still visited {visited} entries");

    // COPY's own walker prunes the same way: a content key of `COPY . /x` reads only src.
    let cache = HashCache::in_memory();
    let src = CopySource::Context { root, ignore: &m };
    let req = CopyRequest {
        sources: vec![".".into()],
        dest: "/x/".into(),
        ..Default::default()
    };
    content_key(&src, &req, &cache).unwrap();
    assert_eq!(cache.reads(), 50);
}

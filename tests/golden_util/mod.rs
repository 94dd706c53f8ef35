//! Shared helpers for the golden tests: case discovery, comparison with a readable diff, and
//! `UPDATE_GOLDEN=1` regeneration.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Sub-directories of `dir`, sorted.
pub fn cases(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

pub fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v != "0")
}

/// A line diff (longest common subsequence) of `want` against `got`.
pub fn diff(want: &str, got: &str) -> String {
    let a: Vec<&str> = want.lines().collect();
    let b: Vec<&str> = got.lines().collect();
    let mut l = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            l[i][j] = if a[i] == b[j] {
                l[i + 1][j + 1] + 1
            } else {
                l[i + 1][j].max(l[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("  {}\n", a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || l[i][j + 1] >= l[i + 1][j]) {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        } else {
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        }
    }
    out
}

/// Compares `got` (Ok → `expected`, Err → `error`) with the case's golden file, or rewrites
/// it under UPDATE_GOLDEN. Returns a failure description.
pub fn check(case: &Path, got: Result<String, String>) -> Option<String> {
    let (name, other, text) = match &got {
        Ok(t) => ("expected", "error", t.clone()),
        Err(e) => ("error", "expected", format!("{e}\n")),
    };
    let path = case.join(name);
    if updating() {
        let _ = std::fs::remove_file(case.join(other));
        std::fs::write(&path, &text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return None;
    }
    if case.join(other).exists() {
        return Some(format!(
            "{}: has `{other}` but the run produced `{name}`:\n{text}",
            case.display()
        ));
    }
    match std::fs::read_to_string(&path) {
        Err(_) => Some(format!(
            "{}: no `{name}` file (run with UPDATE_GOLDEN=1); output:\n{text}",
            case.display()
        )),
        Ok(want) if want == text => None,
        Ok(want) => Some(format!(
            "{}: `{name}` differs (- expected, + actual):\n{}",
            case.display(),
            diff(&want, &text)
        )),
    }
}

/// Runs `f` over every case of `dir` and panics listing every failure.
pub fn run_all(dir: &Path, f: impl Fn(&Path) -> Result<String, String>) -> usize {
    let all = cases(dir);
    assert!(!all.is_empty(), "no cases under {}", dir.display());
    let failures: Vec<String> = all.iter().filter_map(|c| check(c, f(c))).collect();
    assert!(
        failures.is_empty(),
        "{} of {} golden cases failed:\n\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
    all.len()
}

//! `hoist run --env-file FILE`, read as `docker run` reads it: one `KEY=VALUE` per line, the
//! value taken literally (no quotes or expansion), a bare `KEY` taking hoist's own value
//! (dropped when unset), `#` comment lines and blank lines skipped, leading whitespace
//! ignored; a name with whitespace or an empty name is an error naming the file and line.
//! The entries come before `-e`'s, so `-e` overrides them.

use std::path::Path;

/// The entries of `path` as `-e` values (`KEY=VALUE`, or `KEY` to look up).
pub fn read_env_file(path: &Path) -> crate::Result<Vec<String>> {
    let bytes = std::fs::read(path).map_err(|source| crate::Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        crate::Error::Usage(format!(
            "--env-file {}: the file is not valid UTF-8",
            path.display()
        ))
    })?;
    parse(&text).map_err(|(line, m)| {
        crate::Error::Usage(format!("--env-file {}:{line}: {m}", path.display()))
    })
}

/// The entries of an env file's text; an error is `(line, message)`.
pub fn parse(text: &str) -> Result<Vec<String>, (usize, String)> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name = line.split_once('=').map_or(line, |(k, _)| k);
        if name.is_empty() {
            return Err((i + 1, format!("no variable name in {line:?}")));
        }
        if name.chars().any(char::is_whitespace) {
            return Err((i + 1, format!("variable {name:?} contains whitespace")));
        }
        out.push(line.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_env_file_rules() {
        let text = "# comment\n\n  A=1\nB= spaced value \nC=\"quoted\"\nFROMHOST\nD=x=y\n";
        assert_eq!(
            parse(text).unwrap(),
            [
                "A=1",
                "B= spaced value ",
                "C=\"quoted\"",
                "FROMHOST",
                "D=x=y"
            ]
        );
        assert_eq!(parse("=v\n").unwrap_err().0, 1);
        let e = parse("OK=1\nBAD NAME=2\n").unwrap_err();
        assert_eq!(e.0, 2);
        assert!(e.1.contains("whitespace"));
    }
}

//! `--chmod` values: octal (`0755`, `640`) or symbolic (`u=rwX,go=rX`, `a+x`, `g-w`), as
//! chmod(1) reads them (no umask: an empty "who" means `a`).

/// A parsed `--chmod`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    /// A fixed mode for every copied file and directory.
    Octal(u32),
    /// Clauses applied in order to each entry's own mode.
    Symbolic(Vec<Clause>),
}

/// One `who op perms` clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    who: u32,
    op: char,
    perms: String,
}

impl Chmod {
    /// Parses a `--chmod` value; None when it is neither octal nor symbolic.
    pub fn parse(spec: &str) -> Option<Chmod> {
        if !spec.is_empty() && spec.len() <= 4 && spec.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return u32::from_str_radix(spec, 8).ok().map(Chmod::Octal);
        }
        let mut clauses = Vec::new();
        for part in spec.split(',') {
            let who_end = part.find(['+', '-', '=']).unwrap_or(part.len());
            let mut who = 0;
            for c in part[..who_end].chars() {
                who |= match c {
                    'u' => 0o4700,
                    'g' => 0o2070,
                    'o' => 0o1007,
                    'a' => 0o7777,
                    _ => return None,
                };
            }
            if who == 0 {
                who = 0o7777;
            }
            let mut rest = &part[who_end..];
            if rest.is_empty() {
                return None;
            }
            while let Some(op) = rest.chars().next().filter(|c| matches!(c, '+' | '-' | '=')) {
                rest = &rest[1..];
                let end = rest.find(['+', '-', '=']).unwrap_or(rest.len());
                let perms = &rest[..end];
                if !perms.chars().all(|c| "rwxXst".contains(c)) {
                    return None;
                }
                clauses.push(Clause {
                    who,
                    op,
                    perms: perms.to_string(),
                });
                rest = &rest[end..];
            }
            if !rest.is_empty() {
                return None;
            }
        }
        Some(Chmod::Symbolic(clauses))
    }

    /// The mode an entry with permission bits `orig` gets.
    pub fn apply(&self, orig: u32, is_dir: bool) -> u32 {
        match self {
            Chmod::Octal(m) => *m,
            Chmod::Symbolic(clauses) => {
                let mut mode = orig & 0o7777;
                for c in clauses {
                    let mut bits = 0;
                    for p in c.perms.chars() {
                        bits |= match p {
                            'r' => 0o444,
                            'w' => 0o222,
                            'x' => 0o111,
                            'X' if is_dir || mode & 0o111 != 0 => 0o111,
                            's' => 0o6000,
                            't' => 0o1000,
                            _ => 0,
                        };
                    }
                    let bits = bits & c.who;
                    match c.op {
                        '+' => mode |= bits,
                        '-' => mode &= !bits,
                        _ => mode = (mode & !(c.who & 0o7777)) | bits,
                    }
                }
                mode
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_and_symbolic() {
        assert_eq!(Chmod::parse("0755"), Some(Chmod::Octal(0o755)));
        assert_eq!(
            Chmod::parse("640").map(|c| c.apply(0o777, true)),
            Some(0o640)
        );
        let c = Chmod::parse("u=rwX,go=rX").unwrap();
        assert_eq!(c.apply(0o600, false), 0o644);
        assert_eq!(c.apply(0o700, false), 0o755);
        assert_eq!(c.apply(0o600, true), 0o755);
        assert_eq!(Chmod::parse("a+x").unwrap().apply(0o644, false), 0o755);
        assert_eq!(
            Chmod::parse("g-w,o-rwx").unwrap().apply(0o777, false),
            0o750
        );
        assert_eq!(Chmod::parse("+x").unwrap().apply(0o600, false), 0o711);
        assert_eq!(Chmod::parse("u+s").unwrap().apply(0o755, false), 0o4755);
        assert!(Chmod::parse("z=r").is_none());
        assert!(Chmod::parse("u").is_none());
        assert!(Chmod::parse("u=q").is_none());
        assert!(Chmod::parse("99999").is_none());
    }
}

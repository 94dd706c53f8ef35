//! `SecretsUsedInArgOrEnv`'s test of a key, shared with the history writer (which redacts
//! such values): the key is split on `_`; it looks like a secret when a part equals (ASCII,
//! case-insensitively) one of `apikey auth credential credentials key password pword passwd
//! secret token`, unless a part equals one of `public file version` (`GPG_KEY_FILE`,
//! `PUBLIC_KEY`), as in BuildKit.

const SECRET_TOKENS: &[&str] = &[
    "apikey",
    "auth",
    "credential",
    "credentials",
    "key",
    "password",
    "pword",
    "passwd",
    "secret",
    "token",
];
const ALLOW_TOKENS: &[&str] = &["public", "file", "version"];

/// True when an ARG/ENV key looks like it names a secret (BuildKit's rule).
pub fn is_secret_key(key: &str) -> bool {
    let has = |tokens: &[&str]| {
        key.split('_')
            .any(|part| tokens.iter().any(|t| part.eq_ignore_ascii_case(t)))
    };
    has(SECRET_TOKENS) && !has(ALLOW_TOKENS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildkit_token_rule() {
        for k in [
            "AWS_SECRET_ACCESS_KEY",
            "api_key",
            "APIKEY",
            "DATABASE_PASSWORD",
            "GITHUB_TOKEN",
            "secret_MESSAGE",
            "AUTH",
            "db_passwd",
            "MY_PWORD",
            "GCP_CREDENTIALS",
            "Key",
            "apiKey_x",
        ] {
            assert!(is_secret_key(k), "{k} looks like a secret");
        }
        for k in [
            "PATH",
            "KEYBOARD",
            "TOKENIZER_DIR",
            "MONKEY",
            "AUTHOR",
            "PUBLIC_KEY",
            "GPG_KEY_FILE",
            "NODE_AUTH_VERSION",
            "password1",
            "",
            "API-KEY",
        ] {
            assert!(!is_secret_key(k), "{k} is not flagged");
        }
    }
}

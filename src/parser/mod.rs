//! Dockerfile text → typed AST (`ast`), BuildKit's shell-word expansion (`expand`),
//! `--mount` option parsing (`mounts`) and `.dockerignore` matching (`dockerignore`). The
//! instruction parser (`dockerfile`) reads argument syntax through `words` and heredocs
//! through `heredoc`.
//! Pure: no file, env or network access beyond the text it is given.

pub mod ast;
pub mod diagnostic;
mod dockerfile;
pub mod dockerignore;
pub mod expand;
mod heredoc;
pub mod mounts;
mod words;

pub use ast::*;

/// Errors from parsing a Dockerfile: each names the line and says what is wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
}

/// Result alias for the parser.
pub type Result<T> = std::result::Result<T, ParseError>;

pub(crate) use dockerfile::levenshtein;
pub use dockerfile::{parse, parse_instruction};

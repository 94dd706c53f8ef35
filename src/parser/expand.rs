//! BuildKit's shell-word lexer: variable expansion and quote removal for the instructions
//! that BuildKit expands itself (FROM, ADD, COPY, ENV, EXPOSE, LABEL, STOPSIGNAL, USER,
//! VOLUME, WORKDIR, ARG, ONBUILD).

/// Errors from expansion (`${V:?msg}` on an unset V, bad substitution syntax).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExpandError {
    #[error("{0}")]
    Bad(String),
}

/// Looks a variable up; `None` when unset.
pub trait Lookup {
    fn get(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Lookup for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// Expands one word (quotes removed, escapes processed) as BuildKit's `ProcessWord` does.
pub fn expand_word(_word: &str, _env: &dyn Lookup, _escape: char) -> Result<String, ExpandError> {
    todo!("parser helper")
}

/// Expands and splits into words as BuildKit's `ProcessWords` does (used for e.g. VOLUME, EXPOSE).
pub fn expand_words(_text: &str, _env: &dyn Lookup, _escape: char) -> Result<Vec<String>, ExpandError> {
    todo!("parser helper")
}

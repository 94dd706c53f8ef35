//! The engine's side of cache-miss explanations: where a step is (its identity, stable across
//! edits of the step), what it was keyed on (a [`StepInputs`] record), and the `CacheMiss`
//! event that says why it runs. Only a miss gets here: a hit reads and writes nothing.

use super::State;
use crate::cache::StepKey;
use crate::cache::explain::{self, ArgInput, FileList, StepInputs};
use crate::engine::{BuildEvent, Ctx};
use crate::oci::Digest;

/// Where the current step is, set by the stage loop before each step.
#[derive(Debug, Clone, Default)]
pub(crate) struct StepAt {
    /// The stage's name (or index) and platform.
    pub stage: String,
    /// The stage's base image manifest digest, when the stage is built on an image.
    pub base: Option<String>,
    /// The step's position in the stage (ONBUILD triggers first).
    pub index: usize,
    /// The instruction as written.
    pub text: String,
}

/// A step's record and the identity it is kept under, for [`record`] once the step ran.
pub(crate) struct Pending {
    identity: Digest,
    inputs: StepInputs,
}

/// Reports why the step `id` (key parts `key` on `parent`, digest `digest`) runs, and returns
/// the record to write once it ran.
pub(crate) fn report_miss(
    ctx: &Ctx,
    st: &State,
    key: &StepKey,
    parent: &Digest,
    digest: &Digest,
    no_cache: bool,
    id: usize,
) -> Pending {
    let identity = Digest::of(
        format!(
            "hoist-step-place\0{}\0{}\0{}\0{}\0{}",
            ctx.req.context.display(),
            ctx.req.dockerfile_name,
            st.at.stage,
            st.at.index,
            key.kind()
        )
        .as_bytes(),
    );
    let inputs = inputs(st, key, parent, digest);
    let prev = ctx.cache.get_inputs(&identity);
    let reason = explain::explain(prev.as_ref(), &inputs, no_cache);
    ctx.reporter.event(BuildEvent::CacheMiss {
        id,
        reason: reason.to_string(),
    });
    Pending { identity, inputs }
}

/// Keeps the record of a step that ran. A failed write only loses the next explanation, so it
/// does not fail the build.
pub(crate) fn record(ctx: &Ctx, p: Pending) {
    let _ = ctx.cache.put_inputs(&p.identity, &p.inputs);
}

/// The inputs record of the current step.
fn inputs(st: &State, key: &StepKey, parent: &Digest, digest: &Digest) -> StepInputs {
    let text = st.at.text.clone();
    // RUN sees every ARG in scope (they are in its environment); other steps only those their
    // words name.
    let run = key.kind() == "RUN";
    let mut args: Vec<ArgInput> = Vec::new();
    for (name, value) in &st.args {
        if !run && !mentions(&text, name) {
            continue;
        }
        let a = ArgInput::new(name, value.as_deref());
        match args.iter_mut().find(|x| x.name == *name) {
            Some(slot) => *slot = a,
            None => args.push(a),
        }
    }
    let files = key.files().map(|lines| {
        FileList::new(
            lines
                .iter()
                .filter_map(|l| crate::copy::split_line(l.as_str())),
        )
    });
    StepInputs {
        key: digest.to_string(),
        parent: parent.to_string(),
        text,
        base: st.at.base.clone(),
        args,
        parts: key
            .parts()
            .iter()
            .map(|(n, v)| (n.to_string(), explain::short(v)))
            .collect(),
        files,
    }
}

/// `text` names `$name` or `${name…}`.
fn mentions(text: &str, name: &str) -> bool {
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        rest = &rest[i + 1..];
        let word = rest.strip_prefix('{').unwrap_or(rest);
        if let Some(after) = word.strip_prefix(name)
            && !after
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::mentions;

    #[test]
    fn mentions_finds_whole_variable_names() {
        assert!(mentions("COPY $SRC /app", "SRC"));
        assert!(mentions("COPY ${SRC:-x} /app", "SRC"));
        assert!(!mentions("COPY $SRCDIR /app", "SRC"));
        assert!(!mentions("COPY SRC /app", "SRC"));
    }
}

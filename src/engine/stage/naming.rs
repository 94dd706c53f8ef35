//! Progress-line names of a stage's steps, numbered the way BuildKit numbers its vertices.

use crate::engine::Ctx;
use crate::graph::{Source, Stage, Step};
use crate::parser::Instruction;

/// Names progress lines as BuildKit does: only steps that make a vertex are numbered (FROM an
/// image, RUN, COPY, ADD, WORKDIR other than `/`, the base's ONBUILD triggers), the index is
/// padded to the total's width, the stage name appears only when the file has several stages,
/// and triggers say `ONBUILD`.
pub(super) struct StepNamer {
    prefix: String,
    total: usize,
    index: usize,
}

impl StepNamer {
    pub(super) fn new(ctx: &Ctx, stage: &Stage, steps: &[Step]) -> StepNamer {
        let from_image = matches!(stage.base, Source::Image(_));
        let total = usize::from(from_image) + steps.iter().filter(|s| counts(&s.node)).count();
        let prefix = if ctx.req.graph.stages.len() > 1 {
            let name = stage.name.clone();
            format!(
                "{} ",
                name.unwrap_or_else(|| format!("stage-{}", stage.index))
            )
        } else {
            String::new()
        };
        StepNamer {
            prefix,
            total,
            index: usize::from(from_image),
        }
    }

    /// The name of the FROM vertex (always step 1).
    pub(super) fn from(&self, image: &str) -> String {
        let width = self.total.max(1).to_string().len();
        format!("[{}{:>width$}/{}] FROM {image}", self.prefix, 1, self.total)
    }

    /// The name of `node`'s progress line; steps that make no vertex keep the index.
    pub(super) fn name(&mut self, node: &crate::parser::ast::Node, onbuild: bool) -> String {
        let text = uppercase_first_word(&node.original);
        if !counts(node) || is_root_workdir(node) {
            return text;
        }
        self.index += 1;
        let width = self.total.max(1).to_string().len();
        format!(
            "[{}{:>width$}/{}] {}{text}",
            self.prefix,
            self.index,
            self.total,
            if onbuild { "ONBUILD " } else { "" },
        )
    }
}

fn counts(node: &crate::parser::ast::Node) -> bool {
    matches!(
        node.instruction,
        Instruction::Run { .. }
            | Instruction::Copy(_)
            | Instruction::Add(_)
            | Instruction::Workdir(_)
    )
}

/// `WORKDIR /` creates nothing, so BuildKit makes no vertex for it (it still counts in the total).
fn is_root_workdir(node: &crate::parser::ast::Node) -> bool {
    matches!(&node.instruction, Instruction::Workdir(w) if w.trim() == "/")
}

fn uppercase_first_word(s: &str) -> String {
    match s.split_once(' ') {
        Some((a, b)) => format!("{} {b}", a.to_ascii_uppercase()),
        None => s.to_ascii_uppercase(),
    }
}

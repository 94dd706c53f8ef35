//! ARG scoping helpers for the engine: which value an ARG inside a stage takes.
use super::BuildGraph;

/// ARG inside a stage: --build-arg wins, else the expanded default, else the global value.
pub fn stage_arg_value(graph: &BuildGraph, name: &str, default: Option<String>) -> Option<String> {
    if let Some(v) = graph.build_args.get(name) {
        return Some(v.clone());
    }
    if default.is_some() {
        return default;
    }
    graph.global_args.get(name).cloned().flatten()
}

//! AST + build args + target → the build graph: stages with their base, the steps they run,
//! the stages and images each depends on, pruned to what the target needs.

pub mod args;
pub mod named;
pub mod outline;
pub mod plan;
mod resolve;

use crate::parser::{Dockerfile, Node};
use std::collections::BTreeMap;

/// Errors from resolving the graph; each names the line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GraphError {
    #[error("line {line}: {message}")]
    Invalid { line: usize, message: String },
}

/// Inputs from the command line.
#[derive(Debug, Clone, Default)]
pub struct GraphOptions {
    /// `--build-arg` values (already taken from the environment for `--build-arg NAME`).
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    /// `os/arch[/variant]` for TARGETPLATFORM; the host's when None.
    pub platform: Option<String>,
    /// `--build-context` names (see [`named`]): they replace images and stages they name.
    pub contexts: named::NamedContexts,
}

/// What a stage starts from, or what `--from` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Scratch,
    Stage(usize),
    /// An image reference, expanded.
    Image(String),
    /// A named build context holding content (a directory, a fetched git or http context,
    /// an OCI layout), by its key; the engine holds what it is.
    Context(String),
}

/// One instruction of a stage, with its `--from` references resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub node: Node,
    /// COPY/ADD `--from`.
    pub from: Option<Source>,
    /// RUN `--mount from=` by mount index.
    pub mount_from: Vec<(usize, Source)>,
}

/// A build stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub index: usize,
    /// `AS name`, lower-cased.
    pub name: Option<String>,
    pub base: Source,
    /// Expanded `--platform`, if any.
    pub platform: Option<String>,
    /// The FROM node.
    pub from_node: Node,
    pub steps: Vec<Step>,
    /// Stages this one needs (its base and every `--from`), sorted.
    pub deps: Vec<usize>,
}

/// The resolved build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildGraph {
    /// All stages in file order (pruned ones included, see `order`).
    pub stages: Vec<Stage>,
    /// The stage whose image is the result.
    pub target: usize,
    /// Stages the target needs, dependencies first.
    pub order: Vec<usize>,
    /// Global ARGs (before the first FROM) with their resolved values.
    pub global_args: BTreeMap<String, Option<String>>,
    /// Build args and predefined ARGs visible to stages (TARGETPLATFORM, …).
    pub build_args: BTreeMap<String, String>,
    /// The Dockerfile's escape character (`# escape=`; a backslash by default): every
    /// expansion of the file's words at build time uses it.
    pub escape: char,
}

pub use resolve::build;

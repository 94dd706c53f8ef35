//! hoist: a daemonless OCI image builder. See `docs/architecture.md` for the data flow; each module
//! below owns one step of it.

#![deny(unsafe_code)]

pub mod attest;
pub mod build;
pub mod cache;
pub mod cli;
pub mod context;
pub mod copy;
pub mod diff;
pub mod engine;
pub mod executor;
pub mod fsroot;
pub mod gc;
pub mod graph;
pub mod layers;
pub mod lint;
pub mod oci;
pub mod parser;
pub mod platform;
pub mod registry;
pub mod sbom;
pub mod sign;
pub mod store;
pub mod userns;

/// Any hoist error; each module's error converts into it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Parse(#[from] parser::ParseError),
    #[error(transparent)]
    Graph(#[from] graph::GraphError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    #[error(transparent)]
    Layers(#[from] layers::LayersError),
    #[error(transparent)]
    Executor(#[from] executor::ExecutorError),
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    #[error(transparent)]
    Cache(#[from] cache::CacheError),
    #[error(transparent)]
    Copy(#[from] copy::CopyError),
    #[error(transparent)]
    Build(#[from] build::BuildError),
    #[error(transparent)]
    Platform(#[from] platform::PlatformError),
    #[error(transparent)]
    Gc(#[from] gc::GcError),
    #[error(transparent)]
    Context(#[from] context::ContextError),
    #[error(transparent)]
    Diff(#[from] diff::DiffError),
    #[error(transparent)]
    Attest(#[from] attest::AttestError),
    #[error(transparent)]
    Sign(#[from] sign::SignError),
    #[error(transparent)]
    Sbom(#[from] sbom::SbomError),
    /// An image archive (`hoist load`) that is not what it claims: names the file.
    #[error("{path}: {source}")]
    Archive {
        path: std::path::PathBuf,
        source: store::archive::ArchiveError,
    },
    /// A Dockerfile that does not parse or resolve: `Dockerfile:3: unknown instruction: FOO`.
    #[error("{location}: {message}")]
    Dockerfile { location: String, message: String },
    /// A command-line value that does not parse; says which flag.
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Result alias for the crate.
pub type Result<T> = std::result::Result<T, Error>;

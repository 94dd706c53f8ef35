//! OCI data types shared by every module: digests, descriptors, manifests, indexes and the
//! image configuration. Plain data with serde; no I/O.
//!
//! Our own image-config struct (not `oci-spec`'s) because that one drops `Healthcheck`,
//! `OnBuild`, `Shell` and `ArgsEscaped`, which BuildKit writes and users rely on.

pub mod config;
pub mod digest;
pub mod layout;
pub mod manifest;
pub mod sniff;

pub use config::{HealthConfig, History, ImageConfig, RootFs, RunConfig};
pub use digest::{Digest, DigestError, Digester};
pub use manifest::{Descriptor, Index, Manifest, Platform, media};
pub use sniff::classify_manifest;

//! Keyward core: the shared library behind the console, the CLI and the token service.
//!
//! Layers: [`model`] (validated domain types) → [`service`] (use cases: permission,
//! validation, write and audit in one transaction) → [`store`] (the only SQL), with
//! [`secret`] (CSPRNG, keyed hashes, encryption at rest, argon2id) and [`token`]
//! (RFC 9068 JWTs, signing keys, JWK Sets). The core knows nothing of terminals,
//! HTTP or argument parsing.

pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod model;
pub mod secret;
pub mod service;
pub mod store;
pub mod text;
pub mod token;

pub use error::{Error, Listing, Result, Step};
pub use service::{Actor, Keyward, OsIdentity};

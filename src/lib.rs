//! Keyward core.

pub mod error;
pub mod model;
pub mod secret;
pub mod service;
pub mod store;
pub mod text;
pub mod tui;

pub use error::{Error, Result};
pub use service::{Actor, Keyward, OsIdentity};

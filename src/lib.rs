//! Keyward core.

pub mod secret;

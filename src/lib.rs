//! Keyward core.

pub mod secret;
pub mod token;

//! Keyward core.

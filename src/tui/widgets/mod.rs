//! Reusable pieces: the paged list state, forms, confirmation, palette.

pub mod detail;
pub mod form;
pub mod input;
pub mod list;
pub mod palette;

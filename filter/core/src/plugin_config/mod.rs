//! What both roles' plugin configurations share: reading the JSON document
//! with field paths in errors ([`document`]), the field checks and their
//! wording (`checks`), and the one error type ([`ConfigError`]).
//! Each role's own format lives with the role (`inbound::config`,
//! `outbound::raw` / `outbound::compile`).

pub(crate) mod checks;
pub mod document;
pub mod error;

pub use error::ConfigError;

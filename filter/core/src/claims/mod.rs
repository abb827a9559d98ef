//! Claims of an Entra access token and their validation.
pub mod model;

pub use model::Claims;

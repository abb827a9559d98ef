//! Claims of an Entra access token and their validation.
pub mod decode;
pub mod model;
pub mod validate;

pub use decode::decode_claims;
pub use model::Claims;
pub use validate::validate_claims;

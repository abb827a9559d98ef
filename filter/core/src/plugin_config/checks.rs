//! Field checks shared by the two configuration compilers: the callee role's
//! (`crate::inbound::config::compile`) and the outbound role's (`crate::outbound::compile`).
//!
//! Both documents are described in `docs/configuration.md` with the same
//! wording for the same mistake, so the checks and their messages live here
//! once; every error still names the field it is about.

use std::ops::RangeInclusive;

use super::error::ConfigError;

pub(crate) type Result<T> = std::result::Result<T, ConfigError>;

pub(crate) fn fail<T>(field: impl Into<String>, message: impl Into<String>) -> Result<T> {
    Err(ConfigError::new(field, message))
}

pub(crate) fn required<T>(value: Option<T>, field: &str) -> Result<T> {
    value.ok_or_else(|| ConfigError::new(field, "is required"))
}

/// A number with a default and an allowed range.
pub(crate) fn number(
    value: Option<u64>,
    field: &str,
    default: u64,
    range: RangeInclusive<u64>,
) -> Result<u64> {
    let value = value.unwrap_or(default);
    if range.contains(&value) {
        Ok(value)
    } else {
        fail(
            field,
            format!(
                "must be between {} and {} (got {value})",
                range.start(),
                range.end()
            ),
        )
    }
}

/// A value used as one word: as-is in a callout or a log (cluster name,
/// authority, path, scope), or as a role or scope value, which Entra writes
/// without whitespace. Non-empty and free of whitespace and control characters.
pub(crate) fn word(value: String, field: &str) -> Result<String> {
    if value.is_empty() {
        return fail(field, "must not be empty");
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return fail(field, "must not contain whitespace or control characters");
    }
    Ok(value)
}

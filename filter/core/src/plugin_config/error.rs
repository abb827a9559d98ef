//! The one error type of configuration loading.
//!
//! A configuration error always names the field it is about, as a path into the
//! JSON document (`rules[1].app_roles.any_of`), so an operator reading Envoy's
//! log knows exactly what to fix. The filter refuses to start on any error:
//! there is no "best effort" partial configuration for an authorization filter.

use std::fmt;

/// Why a configuration was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Path of the offending field, e.g. `rules[1].app_roles.any_of` or
    /// `claim_headers.x-entra-roles`. Empty when the document as a whole is at
    /// fault (not JSON, not an object).
    pub field: String,
    /// What is wrong, e.g. "must not be empty". For JSON syntax and type errors
    /// this is serde_json's message, which includes the line and column.
    pub message: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "configuration: {}", self.message)
        } else {
            write!(f, "configuration field `{}`: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_field() {
        let e = ConfigError::new("rules[1].app_roles.any_of", "must not be empty");
        assert_eq!(
            e.to_string(),
            "configuration field `rules[1].app_roles.any_of`: must not be empty"
        );
    }

    #[test]
    fn display_without_field_talks_about_the_document() {
        let e = ConfigError::new("", "EOF while parsing a value at line 1 column 0");
        assert_eq!(
            e.to_string(),
            "configuration: EOF while parsing a value at line 1 column 0"
        );
    }
}

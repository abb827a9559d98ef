//! Errors and warnings about a mesh policy.
//!
//! Every finding names the file, the position when the YAML parser knows it (syntax, type and unknown-field
//! errors), and the path of the offending value in the document (`services.fraud-detector.rules[0].
//! allowed_callers[1]`), so a reviewer can go straight to the line to fix.

use std::fmt;

/// Line and column (both 1-based) in the policy file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// One error: the policy is rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeshError {
    /// The policy file as named on the command line (empty when the policy did not come from a file).
    pub file: String,
    pub location: Option<Location>,
    /// Path of the offending value (`services.fraud-detector.rules[0].allowed_callers[1]`); empty for the
    /// document as a whole.
    pub path: String,
    pub message: String,
}

impl MeshError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> MeshError {
        MeshError {
            file: String::new(),
            location: None,
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for MeshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.file.is_empty() {
            write!(f, "{}:", self.file)?;
            if let Some(at) = self.location {
                write!(f, "{}:{}:", at.line, at.column)?;
            }
            f.write_str(" ")?;
        }
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Everything wrong with a policy (validation goes on after the first error, so one run shows them all).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeshErrors(pub Vec<MeshError>);

impl MeshErrors {
    pub fn one(error: MeshError) -> MeshErrors {
        MeshErrors(vec![error])
    }

    /// Names the file in every error.
    pub fn in_file(mut self, file: &str) -> MeshErrors {
        for error in &mut self.0 {
            if error.file.is_empty() {
                error.file = file.to_string();
            }
        }
        self
    }

    /// The messages, one per line.
    pub fn lines(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

impl fmt::Display for MeshErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        if count > 1 {
            write!(f, "\n{count} errors")?;
        }
        Ok(())
    }
}

impl std::error::Error for MeshErrors {}

/// A risky but valid choice (anonymous route, FAIL_OPEN, multi-tenant without an allow-list, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub path: String,
    pub message: String,
}

impl Warning {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Warning {
        Warning {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "warning: {}: {}", self.path, self.message)
    }
}

/// Errors and warnings collected while validating.
#[derive(Default)]
pub(super) struct Findings {
    pub errors: Vec<MeshError>,
    pub warnings: Vec<Warning>,
}

impl Findings {
    pub fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(MeshError::new(path, message));
    }

    pub fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Warning::new(path, message));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_puts_file_position_and_path_first() {
        let mut e = MeshError::new("services.a.rules[0]", "bad");
        assert_eq!(e.to_string(), "services.a.rules[0]: bad");
        e.file = "mesh.yaml".into();
        assert_eq!(e.to_string(), "mesh.yaml: services.a.rules[0]: bad");
        e.location = Some(Location { line: 3, column: 7 });
        assert_eq!(e.to_string(), "mesh.yaml:3:7: services.a.rules[0]: bad");
        let all = MeshErrors(vec![e.clone(), MeshError::new("", "whole")]).in_file("m.yaml");
        assert_eq!(
            all.to_string(),
            "mesh.yaml:3:7: services.a.rules[0]: bad\nm.yaml: whole\n2 errors"
        );
    }
}

//! Reading `mesh.yaml` into [`RawMesh`], with `--set` overrides.
//!
//! The document is first deserialised straight from the text, so syntax, type and unknown-field errors carry
//! the line and column the YAML parser reports. Overrides (`--set identity_provider.authority=http://...`)
//! are then applied to the document tree and the result deserialised again: the same checks apply to an
//! overridden value as to a written one.

use super::error::{Location, MeshError, MeshErrors};
use super::model::RawMesh;
use serde_yaml_ng::{Mapping, Value};

/// One `--set PATH=VALUE`: a dotted path of mapping keys and a YAML scalar (`15006` is a number, `true` a
/// boolean, `[a, b]` a list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    pub path: Vec<String>,
    pub value: String,
}

impl Override {
    /// Parses `a.b.c=value`.
    pub fn parse(text: &str) -> Result<Override, String> {
        let (path, value) = text
            .split_once('=')
            .ok_or_else(|| format!("--set {text:?}: expected PATH=VALUE"))?;
        let path: Vec<String> = path.trim().split('.').map(str::to_string).collect();
        if path.iter().any(String::is_empty) {
            return Err(format!(
                "--set {text:?}: the path must be dot-separated keys, e.g. services.fraud-detector.ports.inbound"
            ));
        }
        Ok(Override {
            path,
            value: value.to_string(),
        })
    }
}

/// Parses the document text.
pub fn parse(text: &str, overrides: &[Override]) -> Result<RawMesh, MeshErrors> {
    let raw: RawMesh =
        serde_yaml_ng::from_str(text).map_err(|e| MeshErrors::one(yaml_error(&e)))?;
    if overrides.is_empty() {
        return Ok(raw);
    }
    let mut tree: Value =
        serde_yaml_ng::from_str(text).map_err(|e| MeshErrors::one(yaml_error(&e)))?;
    for o in overrides {
        apply(&mut tree, o).map_err(|m| MeshErrors::one(MeshError::new(o.path.join("."), m)))?;
    }
    serde_yaml_ng::from_value(tree).map_err(|e| {
        let mut error = yaml_error(&e);
        error.message = format!("{} (after --set overrides)", error.message);
        MeshErrors::one(error)
    })
}

fn apply(tree: &mut Value, o: &Override) -> Result<(), String> {
    let value: Value = serde_yaml_ng::from_str(&o.value)
        .map_err(|e| format!("--set value {:?} is not YAML: {e}", o.value))?;
    let mut node = tree;
    for key in &o.path {
        if node.is_null() {
            *node = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(map) = node else {
            return Err(format!("--set cannot descend into `{key}`: not a mapping"));
        };
        node = map.entry(Value::String(key.clone())).or_insert(Value::Null);
    }
    *node = value;
    Ok(())
}

/// serde_yaml_ng's message is `path: message at line L column C`; split it into our parts.
fn yaml_error(error: &serde_yaml_ng::Error) -> MeshError {
    let location = error.location().map(|l| Location {
        line: l.line(),
        column: l.column(),
    });
    let mut text = error.to_string();
    if let Some(at) = text.rfind(" at line ") {
        if text.get(at..).is_some_and(|tail| tail.contains(" column ")) {
            text.truncate(at);
        }
    }
    // A path is the part before the first ": " when it contains no spaces (`services.a.rules[0]`).
    let (path, message) = match text.split_once(": ") {
        Some((path, message)) if !path.contains(' ') && !path.is_empty() => {
            (path.to_string(), message.to_string())
        }
        _ => (String::new(), text),
    };
    MeshError {
        file: String::new(),
        location,
        path,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_is_located_and_named() {
        let text = "version: 1\nservices:\n  a:\n    rules:\n      - path: /x\n        allowed_caller: [b]\n";
        let e = parse(text, &[]).unwrap_err().0.remove(0);
        assert_eq!(e.path, "services.a.rules[0]", "{e}");
        assert!(
            e.message.starts_with("unknown field `allowed_caller`"),
            "{e}"
        );
        assert_eq!(e.location, Some(Location { line: 6, column: 9 }), "{e}");
    }

    #[test]
    fn duplicate_service_is_an_error() {
        let text = "services:\n  a: {}\n  a: {}\n";
        let e = parse(text, &[]).unwrap_err().0.remove(0);
        assert!(e.message.contains("duplicate"), "{e}");
    }

    #[test]
    fn overrides_set_nested_values_with_yaml_types() {
        let text = "version: 1\nservices:\n  a:\n    ports: {inbound: 1}\n";
        let raw = parse(
            text,
            &[
                Override::parse("services.a.ports.inbound=2").unwrap(),
                Override::parse("services.a.host=127.0.0.1").unwrap(),
                Override::parse("identity_provider.authority=http://127.0.0.1:9").unwrap(),
            ],
        )
        .unwrap();
        let services = raw.services.unwrap().0;
        let (_, a) = &services[0];
        assert_eq!(a.ports.as_ref().unwrap().inbound, Some(2));
        assert_eq!(a.host.as_deref(), Some("127.0.0.1"));
        assert_eq!(
            raw.identity_provider.unwrap().authority.as_deref(),
            Some("http://127.0.0.1:9")
        );
        let e = parse(
            text,
            &[Override::parse("services.a.ports.inbund=2").unwrap()],
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `inbund`"), "{e}");
        assert!(Override::parse("novalue").is_err());
        assert!(Override::parse("a..b=1").is_err());
    }
}

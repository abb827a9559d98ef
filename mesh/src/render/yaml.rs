//! Building YAML documents in a fixed key order (serde_yaml_ng's mapping keeps insertion order) and writing
//! them out.

use serde_yaml_ng::{Mapping, Value};

/// A mapping with `entries` in this order.
pub fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
    let mut m = Mapping::new();
    for (k, v) in entries {
        m.insert(Value::String(k.to_string()), v);
    }
    Value::Mapping(m)
}

/// Adds `key: value` to a mapping (no-op on anything else).
pub fn insert(target: &mut Value, key: &str, value: Value) {
    if let Value::Mapping(m) = target {
        m.insert(Value::String(key.to_string()), value);
    }
}

pub fn s(text: impl Into<String>) -> Value {
    Value::String(text.into())
}

pub fn n(number: impl Into<u64>) -> Value {
    let number: u64 = number.into();
    Value::Number(number.into())
}

pub fn b(flag: bool) -> Value {
    Value::Bool(flag)
}

pub fn list(items: Vec<Value>) -> Value {
    Value::Sequence(items)
}

/// A JSON value (e.g. a plugin configuration) as YAML, keys in serde_json's (sorted) order.
pub fn from_json(json: &serde_json::Value) -> Result<Value, String> {
    serde_yaml_ng::to_value(json).map_err(|e| format!("cannot convert to YAML: {e}"))
}

/// One YAML document.
pub fn to_string(document: &Value) -> Result<String, String> {
    serde_yaml_ng::to_string(document).map_err(|e| format!("cannot write YAML: {e}"))
}

/// Several documents separated by `---`.
pub fn documents(documents: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    for (i, d) in documents.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&to_string(d)?);
    }
    Ok(out)
}

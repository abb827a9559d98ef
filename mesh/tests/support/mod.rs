//! Reading rendered YAML in the mesh tests: a value by dotted path (`a.0.b`).
#![allow(dead_code, clippy::panic)] // test code: failing loudly is the point

use serde_yaml_ng::Value;

pub fn get<'a>(value: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .fold(value, |v, key| match key.parse::<usize>() {
            Ok(i) => &v[i],
            Err(_) => &v[key],
        })
}

pub fn str_at<'a>(value: &'a Value, path: &str) -> &'a str {
    get(value, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path} is not a string in {value:?}"))
}

//! Parses the secret's JSON: `{"ClientId","ClientSecret","TenantId"}` in PascalCase or camelCase.

use super::{Credentials, SecretError};
use secrecy::SecretString;
use serde_json::{Map, Value};
use zeroize::Zeroize;

/// The fields bootstrap needs: (canonical PascalCase name, camelCase alias).
const FIELDS: [(&str, &str); 3] = [
    ("ClientId", "clientId"),
    ("ClientSecret", "clientSecret"),
    ("TenantId", "tenantId"),
];

/// Which spelling of a field was found; lets `secret-check` tell people what it saw without values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldSeen {
    pub field: &'static str,
    /// The key as written in the secret.
    pub key: &'static str,
}

/// What the parser saw: the fields it used and the names (only) of other keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldReport {
    pub found: Vec<FieldSeen>,
    pub other_keys: Vec<String>,
}

/// Parses `json` into credentials. Intermediate copies of values are zeroized before returning.
pub fn parse_secret_json(json: &str) -> Result<(Credentials, FieldReport), SecretError> {
    // serde_json syntax errors name a line and column only, never the input text.
    let mut value: Value = serde_json::from_str(json).map_err(|e| SecretError::NotJson {
        detail: e.to_string(),
    })?;
    let result = match &mut value {
        Value::Object(map) => extract(map),
        other => Err(SecretError::NotJson {
            detail: format!("top level is {}, not an object", kind(other)),
        }),
    };
    zeroize_value(&mut value);
    result
}

fn extract(map: &mut Map<String, Value>) -> Result<(Credentials, FieldReport), SecretError> {
    let mut report = FieldReport::default();
    let mut values: Vec<Option<SecretString>> = Vec::with_capacity(FIELDS.len());
    let mut missing = Vec::new();
    for (pascal, camel) in FIELDS {
        let mut picked: Option<(&'static str, String)> = None;
        for key in [pascal, camel] {
            let Some(v) = map.get_mut(key) else { continue };
            let Value::String(s) = v else {
                return Err(SecretError::InvalidField {
                    field: pascal,
                    reason: format!("key {key:?} holds {}, expected a string", kind(v)),
                });
            };
            let s = std::mem::take(s);
            match &mut picked {
                None => picked = Some((key, s)),
                Some((_, first)) => {
                    let same = *first == s;
                    let mut s = s;
                    s.zeroize();
                    if !same {
                        return Err(SecretError::InvalidField {
                            field: pascal,
                            reason: format!(
                                "both {pascal:?} and {camel:?} are present with different values"
                            ),
                        });
                    }
                }
            }
        }
        match picked {
            Some((key, s)) if !s.trim().is_empty() => {
                report.found.push(FieldSeen { field: pascal, key });
                values.push(Some(SecretString::from(s)));
            }
            Some((key, mut s)) => {
                s.zeroize();
                return Err(SecretError::InvalidField {
                    field: pascal,
                    reason: format!("key {key:?} is empty"),
                });
            }
            None => {
                missing.push(pascal);
                values.push(None);
            }
        }
    }
    let known: Vec<&str> = FIELDS.iter().flat_map(|(p, c)| [*p, *c]).collect();
    report.other_keys = map
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .cloned()
        .collect();
    if !missing.is_empty() {
        let hints = report
            .other_keys
            .iter()
            .filter(|k| missing.iter().any(|m| normalise(k) == normalise(m)))
            .cloned()
            .collect();
        return Err(SecretError::MissingFields { missing, hints });
    }
    let mut it = values.into_iter().flatten();
    let (Some(client_id), Some(client_secret), Some(tenant_id)) = (it.next(), it.next(), it.next())
    else {
        return Err(SecretError::MissingFields {
            missing: vec!["ClientId"],
            hints: vec![],
        });
    };
    use secrecy::ExposeSecret;
    let client_id = client_id.expose_secret().trim().to_string();
    let tenant_id = tenant_id.expose_secret().trim().to_string();
    validate_tenant(&tenant_id)?;
    Ok((
        Credentials::new(client_id, tenant_id, client_secret),
        report,
    ))
}

/// The tenant goes into the token URL path: allow only GUIDs / domain names so it cannot alter the path.
fn validate_tenant(tenant: &str) -> Result<(), SecretError> {
    let ok = !tenant.is_empty()
        && tenant.len() <= 253
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(SecretError::InvalidField {
            field: "TenantId",
            reason: "must be a tenant GUID or domain name (letters, digits, '-' and '.')".into(),
        })
    }
}

/// `client_secret`, `clientsecret`, `CLIENT-SECRET` → `clientsecret`, for near-miss hints.
fn normalise(key: &str) -> String {
    key.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Overwrites every string left in the parsed tree (other keys may hold secrets too).
fn zeroize_value(v: &mut Value) {
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(zeroize_value),
        Value::Object(map) => map.values_mut().for_each(zeroize_value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pascal_case() {
        let (c, r) = parse_secret_json(
            r#"{"ClientId":"c1d8f1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6","ClientSecret":"s3cr3t~x","TenantId":"72f988bf-86f1-41af-91ab-2d7cd011db47","Note":"x"}"#,
        )
        .unwrap();
        assert_eq!(c.client_id, "c1d8f1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6");
        assert_eq!(c.tenant_id, "72f988bf-86f1-41af-91ab-2d7cd011db47");
        assert_eq!(c.client_secret(), "s3cr3t~x");
        assert_eq!(
            r.found.iter().map(|f| f.key).collect::<Vec<_>>(),
            ["ClientId", "ClientSecret", "TenantId"]
        );
        assert_eq!(r.other_keys, ["Note"]);
    }

    #[test]
    fn camel_case_and_mixed() {
        let (c, r) = parse_secret_json(
            r#"{"clientId":"a","ClientSecret":"b","tenantId":"contoso.onmicrosoft.com"}"#,
        )
        .unwrap();
        assert_eq!((c.client_id.as_str(), c.client_secret()), ("a", "b"));
        assert_eq!(
            r.found.iter().map(|f| f.key).collect::<Vec<_>>(),
            ["clientId", "ClientSecret", "tenantId"]
        );
    }

    #[test]
    fn both_casings_must_agree() {
        assert!(parse_secret_json(
            r#"{"ClientId":"a","clientId":"a","ClientSecret":"b","TenantId":"t"}"#
        )
        .is_ok());
        let e = parse_secret_json(
            r#"{"ClientId":"a","clientId":"z","ClientSecret":"b","TenantId":"t"}"#,
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                SecretError::InvalidField {
                    field: "ClientId",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn missing_fields_are_listed_with_hints() {
        let e = parse_secret_json(r#"{"ClientId":"a","client_secret":"b"}"#).unwrap_err();
        assert_eq!(
            e,
            SecretError::MissingFields {
                missing: vec!["ClientSecret", "TenantId"],
                hints: vec!["client_secret".into()]
            }
        );
        let msg = e.to_string();
        assert!(
            msg.contains("ClientSecret, TenantId") && msg.contains("client_secret"),
            "{msg}"
        );
    }

    #[test]
    fn not_json_or_not_object() {
        assert!(matches!(
            parse_secret_json("hunter2"),
            Err(SecretError::NotJson { .. })
        ));
        assert!(matches!(
            parse_secret_json("[1,2]"),
            Err(SecretError::NotJson { .. })
        ));
        let e = parse_secret_json("not-json-secret-value")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("not-json-secret-value"), "{e}");
    }

    #[test]
    fn wrong_types_and_empty_values() {
        let e =
            parse_secret_json(r#"{"ClientId":5,"ClientSecret":"b","TenantId":"t"}"#).unwrap_err();
        assert!(matches!(
            e,
            SecretError::InvalidField {
                field: "ClientId",
                ..
            }
        ));
        let e = parse_secret_json(r#"{"ClientId":"a","ClientSecret":"  ","TenantId":"t"}"#)
            .unwrap_err();
        assert!(matches!(
            e,
            SecretError::InvalidField {
                field: "ClientSecret",
                ..
            }
        ));
    }

    #[test]
    fn tenant_cannot_inject_path() {
        let e = parse_secret_json(r#"{"ClientId":"a","ClientSecret":"b","TenantId":"../evil?x="}"#)
            .unwrap_err();
        assert!(matches!(
            e,
            SecretError::InvalidField {
                field: "TenantId",
                ..
            }
        ));
    }

    #[test]
    fn errors_never_contain_values() {
        for json in [
            r#"{"ClientId":"a","ClientSecret":"TOPSECRET","clientSecret":"TOPSECRET2","TenantId":"t"}"#,
            r#"{"ClientId":"a","ClientSecret":["TOPSECRET"],"TenantId":"t"}"#,
            r#"{"ClientSecret":"TOPSECRET"}"#,
            r#"{"ClientSecret":"TOPSECRET", "#,
        ] {
            let e = parse_secret_json(json).unwrap_err().to_string();
            assert!(!e.contains("TOPSECRET"), "{e}");
        }
    }
}

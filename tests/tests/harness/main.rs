//! Self-test of the integration-test harness: proves the local IdP, the echo
//! upstream and the Envoy runner behave as documented, without the wasm
//! filter, so a failing filter test can be trusted to be about the filter.

mod echo;
mod envoy;
mod idp_assertions;
mod idp_discovery;
mod idp_faults;
mod idp_keys;
mod idp_tokens;
mod token_endpoint;

use serde_json::Value;

/// GET returning (status, JSON body).
pub async fn get_json(url: &str) -> (u16, Value) {
    let response = entragate_tests::http_client()
        .get(url)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let body = response.json().await.expect("JSON body");
    (status, body)
}

/// Sorted member names of a JSON object.
pub fn keys_of(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    keys
}

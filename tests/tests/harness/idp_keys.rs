//! Key rotation and the published key set.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use entragate_tests::{verify_rs256, Idp, Rotation};

use crate::get_json;

fn kids(jwks: &serde_json::Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn rotation_keeping_the_old_key_publishes_both() {
    let idp = Idp::start().unwrap();
    let old = idp.signing_key();
    let old_token = idp.app_token_v2().build();

    let new = idp.rotate_keys(Rotation::KeepOld).unwrap();
    let (_, jwks) = get_json(&idp.jwks_uri()).await;
    assert_eq!(kids(&jwks).len(), 3);
    assert!(kids(&jwks).contains(&old.kid().to_string()));
    assert!(kids(&jwks).contains(&new.kid().to_string()));
    verify_rs256(&old_token, &jwks).unwrap();

    let new_token = idp.app_token_v2().build();
    assert_eq!(
        entragate_tests::decode_jwt(&new_token).unwrap().header["kid"],
        new.kid()
    );
    verify_rs256(&new_token, &jwks).unwrap();
}

#[tokio::test]
async fn rotation_removing_the_old_key_invalidates_its_tokens() {
    let idp = Idp::start().unwrap();
    let old = idp.signing_key();
    let old_token = idp.app_token_v2().build();
    let (_, before) = get_json(&idp.jwks_uri()).await;

    idp.rotate_keys(Rotation::RemoveOld).unwrap();
    let (_, after) = get_json(&idp.jwks_uri()).await;
    assert_ne!(before, after);
    assert!(!kids(&after).contains(&old.kid().to_string()));
    assert!(verify_rs256(&old_token, &after).is_err());
    verify_rs256(&idp.app_token_v2().build(), &after).unwrap();
}

#[tokio::test]
async fn weak_key_can_be_published_and_used() {
    let idp = Idp::start().unwrap();
    let weak = idp.publish_weak_key().unwrap();
    let (_, jwks) = get_json(&idp.jwks_uri()).await;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == weak.kid())
        .unwrap()
        .clone();
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(jwk["n"].as_str().unwrap())
            .unwrap()
            .len()
            * 8,
        1024
    );
    verify_rs256(&idp.app_token_v2().signed_with(&weak).build(), &jwks).unwrap();

    idp.unpublish_key(weak.kid());
    let (_, jwks) = get_json(&idp.jwks_uri()).await;
    assert!(!kids(&jwks).contains(&weak.kid().to_string()));
}

#[test]
fn key_debug_output_hides_key_material() {
    let idp = Idp::start().unwrap();
    let text = format!("{:?}", idp.signing_key());
    assert!(text.contains(idp.signing_key().kid()));
    assert!(!text.contains("BEGIN"), "{text}");
    assert!(text.len() < 200, "{text}");
}

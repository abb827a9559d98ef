//! Minted tokens: Entra-shaped claims, genuine signatures, attack variants.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use entragate_tests::{decode_jwt, ids, unix_now, verify_rs256, Idp};
use hmac::{Hmac, Mac as _};
use serde_json::json;
use sha2::Sha256;

use crate::{get_json, keys_of};

#[tokio::test]
async fn minted_tokens_verify_against_the_published_jwks() {
    let idp = Idp::start().unwrap();
    let (_, jwks) = get_json(&idp.jwks_uri()).await;
    for token in [
        idp.app_token_v2().build(),
        idp.app_token_v1().build(),
        idp.user_token_v2().build(),
    ] {
        verify_rs256(&token, &jwks).unwrap();
        let header = decode_jwt(&token).unwrap().header;
        assert_eq!(
            json!(header),
            json!({"typ": "JWT", "alg": "RS256", "kid": idp.signing_key().kid(), "x5t": idp.signing_key().kid()})
        );
    }
}

#[test]
fn app_token_v2_has_entra_claims() {
    let idp = Idp::start().unwrap();
    let claims = decode_jwt(&idp.app_token_v2().build()).unwrap().claims;
    assert_eq!(
        keys_of(&json!(claims)),
        [
            "aio", "aud", "azp", "azpacr", "exp", "iat", "idtyp", "iss", "nbf", "oid", "rh",
            "roles", "sub", "tid", "uti", "ver"
        ]
    );
    assert_eq!(
        claims["iss"],
        format!("https://login.microsoftonline.com/{}/v2.0", ids::TENANT_ID)
    );
    assert_eq!(claims["aud"], ids::API_APP_ID);
    assert_eq!(claims["azp"], ids::CLIENT_ID);
    assert_eq!(claims["idtyp"], "app");
    assert_eq!(claims["roles"], json!([ids::CLIENT_ROLE]));
    assert_eq!(claims["ver"], "2.0");
    let now = unix_now();
    let iat = claims["iat"].as_i64().unwrap();
    assert!((now - 5..=now).contains(&iat), "iat from the real clock");
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 3599);
}

#[test]
fn app_token_v1_and_user_token_have_their_shapes() {
    let idp = Idp::start().unwrap();
    let v1 = decode_jwt(&idp.app_token_v1().build()).unwrap().claims;
    assert_eq!(
        v1["iss"],
        format!("https://sts.windows.net/{}/", ids::TENANT_ID)
    );
    assert_eq!(v1["aud"], ids::API_APP_ID_URI);
    assert_eq!(v1["appid"], ids::CLIENT_ID);
    assert_eq!(v1["ver"], "1.0");
    assert!(v1.get("azp").is_none());

    let user = decode_jwt(&idp.user_token_v2().build()).unwrap().claims;
    assert_eq!(user["scp"], ids::USER_SCOPES);
    assert!(user.get("roles").is_none());
    assert!(user.get("idtyp").is_none());
}

#[test]
fn claims_and_header_can_be_overridden() {
    let idp = Idp::start().unwrap();
    let token = idp
        .app_token_v2()
        .aud("api://other")
        .roles(["A", "B"])
        .claim("custom", 7)
        .without_claim("tid")
        .expired_since(Duration::from_secs(600))
        .header("kid", "nope")
        .without_header("x5t")
        .header("crit", json!(["exp"]))
        .build();
    let decoded = decode_jwt(&token).unwrap();
    assert_eq!(decoded.claims["aud"], "api://other");
    assert_eq!(decoded.claims["roles"], json!(["A", "B"]));
    assert_eq!(decoded.claims["custom"], 7);
    assert!(decoded.claims.get("tid").is_none());
    assert!(decoded.claims["exp"].as_i64().unwrap() <= unix_now() - 600);
    assert_eq!(decoded.header["kid"], "nope");
    assert!(decoded.header.get("x5t").is_none());
    assert_eq!(decoded.header["crit"], json!(["exp"]));
}

#[test]
fn attack_tokens_are_built_as_described() {
    let idp = Idp::start().unwrap();
    let none = idp.app_token_v2().alg_none().build();
    assert!(none.ends_with('.'), "empty signature segment");
    assert_eq!(decode_jwt(&none).unwrap().header["alg"], "none");

    let confused = idp.app_token_v2().hs256_with_public_key().build();
    let decoded = decode_jwt(&confused).unwrap();
    assert_eq!(decoded.header["alg"], "HS256");
    assert_eq!(decoded.header["kid"], idp.signing_key().kid());
    let (input, _) = confused.rsplit_once('.').unwrap();
    let mut mac =
        Hmac::<Sha256>::new_from_slice(idp.signing_key().public_key_pem().as_bytes()).unwrap();
    mac.update(input.as_bytes());
    assert_eq!(decoded.signature, mac.finalize().into_bytes().to_vec());

    let raw = idp.app_token_v2().raw_signature(vec![1, 2, 3]).build();
    assert!(raw.ends_with(&URL_SAFE_NO_PAD.encode([1, 2, 3])));
}

#[tokio::test]
async fn tokens_signed_with_an_unpublished_key_do_not_verify() {
    let idp = Idp::start().unwrap();
    let rogue = idp.unpublished_key().unwrap();
    let token = idp
        .app_token_v2()
        .signed_with(&rogue)
        .header("kid", idp.signing_key().kid())
        .build();
    let (_, jwks) = get_json(&idp.jwks_uri()).await;
    assert!(verify_rs256(&token, &jwks).is_err());
}

//! Certificate client assertions at the IdP's token endpoint, checked as Entra checks them: a registered
//! certificate, a PS256 signature, `aud` = the token endpoint, the validity window, and a `jti` used once.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use entragate_tests::{ids, random_uuid, unix_now, Idp, SigningKey};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

fn assertion(key: &SigningKey, cert: &[u8], aud: &str, jti: &str, exp_in: i64) -> String {
    let header = json!({"alg": "PS256", "typ": "JWT", "x5t#S256": URL_SAFE_NO_PAD.encode(Sha256::digest(cert))});
    let now = unix_now();
    let claims = json!({"aud": aud, "iss": ids::CLIENT_ID, "sub": ids::CLIENT_ID, "jti": jti,
                        "nbf": now, "iat": now, "exp": now + exp_in});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(key.sign_ps256(input.as_bytes()))
    )
}

/// `(status, AADSTS code or 0)`.
async fn redeem(idp: &Idp, assertion: &str) -> (u16, u64) {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", ids::CLIENT_ID)
        .append_pair("scope", &format!("{}/.default", ids::API_APP_ID_URI))
        .append_pair(
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        )
        .append_pair("client_assertion", assertion)
        .finish();
    let response = entragate_tests::http_client()
        .post(idp.token_endpoint())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let json: Value = response.json().await.unwrap();
    (status, json["error_codes"][0].as_u64().unwrap_or(0))
}

#[tokio::test]
async fn certificate_assertions_are_checked_like_entra() {
    let idp = Idp::start().unwrap();
    let key = idp.unpublished_key().unwrap();
    let cert = idp
        .signing_key()
        .issue_certificate("transaction-processor", &key.public_key_der())
        .unwrap();
    let aud = idp.token_endpoint();

    // Not registered yet.
    let first = assertion(&key, &cert, &aud, &random_uuid(), 300);
    assert_eq!(redeem(&idp, &first).await, (401, 700027));
    idp.add_certificate(ids::CLIENT_ID, &cert);
    assert_eq!(redeem(&idp, &first).await.0, 200);
    // The same assertion again: replay refused.
    assert_eq!(redeem(&idp, &first).await, (401, 50013));
    // Wrong audience, expired, signed by another key.
    let wrong_aud = assertion(
        &key,
        &cert,
        "https://login.microsoftonline.com/x/oauth2/v2.0/token",
        &random_uuid(),
        300,
    );
    assert_eq!(redeem(&idp, &wrong_aud).await, (401, 50013));
    let expired = assertion(&key, &cert, &aud, &random_uuid(), -3600);
    assert_eq!(redeem(&idp, &expired).await, (401, 700024));
    let other_key = idp.signing_key();
    let forged = assertion(&other_key, &cert, &aud, &random_uuid(), 300);
    assert_eq!(redeem(&idp, &forged).await, (401, 700027));
    // Removed from the app: refused again.
    idp.remove_certificates(ids::CLIENT_ID);
    assert_eq!(
        redeem(&idp, &assertion(&key, &cert, &aud, &random_uuid(), 300)).await,
        (401, 700027)
    );
}

//! Discovery and JWKS documents have Entra's shapes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use entragate_tests::{ids, x5c_thumbprint, Idp};

use crate::{get_json, keys_of};

#[tokio::test]
async fn discovery_document_points_at_the_local_idp() {
    let idp = Idp::start().unwrap();
    let (status, doc) = get_json(&idp.discovery_url()).await;
    assert_eq!(status, 200);
    assert_eq!(
        doc["issuer"],
        format!("https://login.microsoftonline.com/{}/v2.0", ids::TENANT_ID)
    );
    assert_eq!(doc["jwks_uri"], idp.jwks_uri());
    assert_eq!(doc["token_endpoint"], idp.token_endpoint());
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    for member in [
        "authorization_endpoint",
        "end_session_endpoint",
        "tenant_region_scope",
        "claims_supported",
    ] {
        assert!(doc.get(member).is_some(), "missing {member}");
    }
}

#[tokio::test]
async fn multi_tenant_discovery_keeps_the_tenantid_placeholder() {
    let idp = Idp::start().unwrap();
    let (status, doc) = get_json(&format!(
        "{}/common/v2.0/.well-known/openid-configuration",
        idp.base_url()
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        doc["issuer"],
        "https://login.microsoftonline.com/{tenantid}/v2.0"
    );
}

#[tokio::test]
async fn issuer_authority_is_configurable() {
    let idp = Idp::start().unwrap();
    idp.set_authority(&idp.base_url());
    let (_, doc) = get_json(&idp.discovery_url()).await;
    assert_eq!(
        doc["issuer"],
        format!("{}/{}/v2.0", idp.base_url(), ids::TENANT_ID)
    );
    assert_eq!(idp.app_token_v2().claims_json()["iss"], doc["issuer"]);
}

#[tokio::test]
async fn unknown_tenant_is_rejected_like_entra() {
    let idp = Idp::start().unwrap();
    let (status, body) = get_json(&format!(
        "{}/00000000-0000-0000-0000-000000000000/discovery/v2.0/keys",
        idp.base_url()
    ))
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_tenant");
    assert_eq!(body["error_codes"], serde_json::json!([90002]));
}

#[tokio::test]
async fn jwks_has_entra_shape_without_alg() {
    let idp = Idp::start().unwrap();
    for url in [
        idp.jwks_uri(),
        format!("{}/common/discovery/v2.0/keys", idp.base_url()),
    ] {
        let (status, jwks) = get_json(&url).await;
        assert_eq!(status, 200, "{url}");
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2, "standby key + signing key");
        for key in keys {
            assert_eq!(
                keys_of(key),
                ["e", "issuer", "kid", "kty", "n", "use", "x5c", "x5t"],
                "no alg, like Entra"
            );
            assert_eq!(key["kty"], "RSA");
            assert_eq!(key["use"], "sig");
            assert_eq!(key["e"], "AQAB");
            assert_eq!(key["kid"], key["x5t"]);
            assert_eq!(key["kid"].as_str().unwrap(), x5c_thumbprint(key).unwrap());
            let n = URL_SAFE_NO_PAD.decode(key["n"].as_str().unwrap()).unwrap();
            assert_eq!(n.len() * 8, 2048);
        }
    }
    let (_, tenant_jwks) = get_json(&idp.jwks_uri()).await;
    assert_eq!(
        tenant_jwks["keys"][0]["issuer"],
        format!("https://login.microsoftonline.com/{}/v2.0", ids::TENANT_ID)
    );
    assert_eq!(tenant_jwks, idp.jwks(), "Idp::jwks() is what is served");
}

#[tokio::test]
async fn signing_key_is_not_the_first_published_key() {
    let idp = Idp::start().unwrap();
    let (_, jwks) = get_json(&idp.jwks_uri()).await;
    assert_eq!(jwks["keys"][1]["kid"], idp.signing_key().kid());
    assert_ne!(jwks["keys"][0]["kid"], idp.signing_key().kid());
}

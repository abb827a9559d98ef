//! End to end with no client secret anywhere: the caller's agent federates its (local) AWS workload identity
//! into the IdP (STS `GetWebIdentityToken` as the client assertion), the caller-side Envoy attaches the token,
//! the callee-side Envoy accepts it; when the federation is revoked the caller's sidecar fails closed (503),
//! and it recovers once the federated credential is back.

mod outbound_support;
mod support;

use std::time::Duration;

use entragate_tests::sts::{Sts, DEFAULT_ROLE_ARN};
use entragate_tests::{decode_jwt, ids, FederatedCredential};
use outbound_support::{eventually, token_seen_by, Chain, ChainOptions};
use reqwest::StatusCode;
use support::require_envoy;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_with_no_secret_is_accepted_and_fails_closed_when_federation_is_revoked() {
    if !require_envoy("a_caller_with_no_secret_is_accepted") {
        return;
    }
    let sts = Sts::start().expect("sts");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[credential]\nkind = \"aws-federation\"\nclient_id = \"{}\"\ntenant_id = \"{}\"\nendpoint_url = \"{}\"\n",
            ids::CLIENT_ID,
            ids::TENANT_ID,
            sts.endpoint()
        ),
    )
    .expect("agent config");
    let issuer = sts.issuer();
    let chain = Chain::start(
        ChainOptions::new("secretless")
            .agent_args(&["--config", &config.display().to_string()])
            .idp(move |idp| {
                // Short tokens, so a revocation shows within seconds.
                idp.set_token_lifetime(Duration::from_secs(4));
                idp.add_federated_credential(
                    ids::CLIENT_ID,
                    FederatedCredential::new(&issuer, DEFAULT_ROLE_ARN),
                );
            }),
    )
    .await;

    let response = chain.analyze().await;
    assert_eq!(response.status(), StatusCode::OK);
    let token = token_seen_by(&chain.callee).expect("the callee's app saw a token");
    assert_eq!(
        decode_jwt(&token).expect("jwt").claims["azp"],
        ids::CLIENT_ID
    );
    let requests = chain.callee.idp.token_requests();
    assert!(!requests.is_empty());
    assert!(
        requests.iter().all(|r| r.auth_method == "private_key_jwt"),
        "every token request used a client assertion, none a secret"
    );

    chain
        .callee
        .idp
        .remove_federated_credentials(ids::CLIENT_ID);
    eventually(
        Duration::from_secs(30),
        "caller sidecar answers 503",
        || async { chain.analyze().await.status() == StatusCode::SERVICE_UNAVAILABLE },
    )
    .await;
    chain.callee.idp.add_federated_credential(
        ids::CLIENT_ID,
        FederatedCredential::new(&sts.issuer(), DEFAULT_ROLE_ARN),
    );
    eventually(
        Duration::from_secs(30),
        "caller sidecar recovers",
        || async { chain.analyze().await.status() == StatusCode::OK },
    )
    .await;
    let log = chain.agent.as_ref().expect("agent").log();
    assert!(!log.contains("eyJ"), "a JWT reached the agent log:\n{log}");
}

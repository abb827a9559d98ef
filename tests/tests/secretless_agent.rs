//! Secretless callers, agent level: the real `bootstrap agent` authenticates to the local IdP with
//! - `aws-federation`: a JWT from the harness's local STS (`GetWebIdentityToken` through the real
//!   `aws-sdk-sts`), which the IdP verifies against the STS issuer's discovery and JWKS;
//! - `kms-certificate`: a PS256 assertion signed by moto's KMS (real `aws-sdk-kms`) for a certificate
//!   registered on the app.
//!
//! Each failure an operator will meet (wrong subject, wrong audience, revoked federation, federation
//! disabled, unregistered certificate, KMS outage) must fail closed with the reason in `/healthz` and
//! the 503 Envoy gets, then recover once fixed, with no restart. No token or assertion reaches the log.

mod outbound_support;
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use entragate_tests::sts::{Sts, DEFAULT_ROLE_ARN};
use entragate_tests::{decode_jwt, ids, FederatedCredential, Idp};
use outbound_support::agent::{Agent, AgentSpec};
use outbound_support::{eventually, moto, REGION, SCOPE};
use serde_json::Value;

/// Short tokens: the agent refreshes every few seconds, so a change at the IdP shows quickly.
const TOKEN_LIFETIME: Duration = Duration::from_secs(4);
const WAIT: Duration = Duration::from_secs(30);

struct Caller {
    agent: Agent,
    dir: tempfile::TempDir,
}

impl Caller {
    async fn start(idp: &Idp, credential_toml: &str) -> Caller {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("agent.toml");
        std::fs::write(&config, format!("[credential]\n{credential_toml}")).expect("config");
        let spec = AgentSpec {
            secret_id: "unused-by-secretless-kinds".into(),
            region: REGION.into(),
            // Never called for these kinds: a closed port proves no Secrets Manager call is needed.
            moto_endpoint: format!("http://{}", entragate_tests::unused_addr().expect("addr")),
            authority: idp.base_url(),
            scope: format!("api={SCOPE}"),
            dir: dir.path().to_path_buf(),
            extra_args: vec!["--config".into(), config.display().to_string()],
        };
        let agent = Agent::start(&spec, "127.0.0.1:0")
            .await
            .expect("agent starts");
        Caller { agent, dir }
    }

    async fn health(&self) -> Value {
        let url = format!("http://{}/healthz", self.agent.addr());
        let response = entragate_tests::http_client().get(url).send().await;
        match response {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    }

    /// `(status, body)` of the token Envoy would get.
    async fn token(&self) -> (u16, Value) {
        let key = std::fs::read_to_string(self.dir.path().join("agent-key")).expect("agent key");
        let response = entragate_tests::http_client()
            .get(format!("http://{}/v1/token/api", self.agent.addr()))
            .header("x-entragate-agent-key", key.trim())
            .send()
            .await
            .expect("agent answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Waits until the scope's last error mentions `needle`, then checks Envoy is refused with it once the
    /// last token expired (fail closed).
    async fn wait_refused_with(&self, needle: &str) {
        eventually(WAIT, &format!("last_error with {needle}"), || async {
            let h = self.health().await;
            h["scopes"]["api"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains(needle))
        })
        .await;
        eventually(WAIT, &format!("503 naming {needle}"), || async {
            let (status, body) = self.token().await;
            status == 503 && body["reason"].as_str().is_some_and(|r| r.contains(needle))
        })
        .await;
    }

    /// Waits until a token is served again and returns it.
    async fn wait_token(&self) -> String {
        eventually(WAIT, "a token is served", || async {
            self.token().await.0 == 200
        })
        .await;
        let (_, body) = self.token().await;
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// No JWT (token, federation JWT, assertion) ever reaches the agent's output.
    fn assert_log_clean(&self) {
        let log = self.agent.log();
        assert!(!log.contains("eyJ"), "a JWT reached the log:\n{log}");
    }
}

/// The agent's path to KMS (moto), which the test can cut: while `down`, every connection is closed at once,
/// as when KMS or the network to it is out. (moto 5.2.5 keeps signing with a disabled key, so a disabled key
/// cannot stand in for an outage.)
struct KmsLink {
    addr: std::net::SocketAddr,
    down: Arc<AtomicBool>,
}

impl KmsLink {
    async fn start(moto_port: u16) -> KmsLink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let down = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&down);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if flag.load(Ordering::SeqCst) {
                    continue; // dropped: the connection closes without an answer
                }
                tokio::spawn(async move {
                    if let Ok(mut upstream) =
                        tokio::net::TcpStream::connect(("127.0.0.1", moto_port)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut upstream).await;
                    }
                });
            }
        });
        KmsLink { addr, down }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn idp_with_short_tokens() -> Idp {
    let idp = Idp::start().expect("idp");
    idp.set_token_lifetime(TOKEN_LIFETIME);
    idp
}

fn federated(sts: &Sts) -> FederatedCredential {
    FederatedCredential::new(&sts.issuer(), DEFAULT_ROLE_ARN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_federation_yields_tokens_and_every_refusal_fails_closed_then_recovers() {
    let idp = idp_with_short_tokens();
    let sts = Sts::start().expect("sts");
    idp.add_federated_credential(ids::CLIENT_ID, federated(&sts));
    let caller = Caller::start(
        &idp,
        &format!(
            "kind = \"aws-federation\"\nclient_id = \"{}\"\ntenant_id = \"{}\"\nendpoint_url = \"{}\"\n",
            ids::CLIENT_ID,
            idp.tenant_id(),
            sts.endpoint()
        ),
    )
    .await;

    // A token for the app, obtained with the STS JWT as the client assertion.
    let token = caller.wait_token().await;
    let claims = decode_jwt(&token).expect("jwt").claims;
    assert_eq!(claims["azp"], ids::CLIENT_ID);
    assert!(idp
        .token_requests()
        .iter()
        .all(|r| r.auth_method == "private_key_jwt"));
    assert!(!sts.issued_tokens().is_empty());
    assert_eq!(caller.health().await["credential"], "aws-federation");

    // The workload runs as another role: Entra finds no federated credential for that subject.
    sts.set_role_arn("arn:aws:iam::111122223333:role/impostor");
    caller.wait_refused_with("AADSTS700213").await;
    sts.set_role_arn(DEFAULT_ROLE_ARN);
    caller.wait_token().await;

    // The federated credential expects another audience.
    idp.remove_federated_credentials(ids::CLIENT_ID);
    let mut other_audience = federated(&sts);
    other_audience.audiences = vec!["api://SomethingElse".into()];
    idp.add_federated_credential(ids::CLIENT_ID, other_audience);
    caller.wait_refused_with("AADSTS700212").await;
    idp.remove_federated_credentials(ids::CLIENT_ID);
    idp.add_federated_credential(ids::CLIENT_ID, federated(&sts));
    caller.wait_token().await;

    // Federation revoked in Entra: no credential trusts the issuer any more.
    idp.remove_federated_credentials(ids::CLIENT_ID);
    caller.wait_refused_with("AADSTS700211").await;
    idp.add_federated_credential(ids::CLIENT_ID, federated(&sts));
    caller.wait_token().await;

    // Outbound federation switched off in the AWS account.
    sts.set_enabled(false);
    caller
        .wait_refused_with("aws iam enable-outbound-web-identity-federation")
        .await;
    sts.set_enabled(true);
    caller.wait_token().await;

    caller.assert_log_clean();
    for jwt in sts.issued_tokens() {
        assert!(!caller.agent.log().contains(&jwt[..40]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_certificate_yields_tokens_and_refusals_fail_closed_then_recover() {
    let idp = idp_with_short_tokens();
    let kms = moto::shared();
    let (key_id, spki) = kms.create_signing_key(REGION).await.expect("KMS key");
    let cert = idp
        .signing_key()
        .issue_certificate("transaction-processor", &spki)
        .expect("certificate");
    let dir = tempfile::tempdir().expect("tempdir");
    let cert_path = dir.path().join("transaction-processor.pem");
    let pem = {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&cert);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).expect("ascii"))
            .collect();
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        )
    };
    std::fs::write(&cert_path, pem).expect("write cert");

    let outage = KmsLink::start(kms.port).await;
    // Not registered on the app yet.
    let caller = Caller::start(
        &idp,
        &format!(
            "kind = \"kms-certificate\"\nclient_id = \"{}\"\ntenant_id = \"{}\"\nkey_id = \"{key_id}\"\n\
             certificate = \"{}\"\nendpoint_url = \"{}\"\n",
            ids::CLIENT_ID,
            idp.tenant_id(),
            cert_path.display(),
            outage.endpoint()
        ),
    )
    .await;
    caller.wait_refused_with("AADSTS700027").await;
    assert!(caller.health().await["scopes"]["api"]["last_error"]
        .as_str()
        .is_some_and(|e| e.contains("not registered on the app registration")));

    idp.add_certificate(ids::CLIENT_ID, &cert);
    let token = caller.wait_token().await;
    assert_eq!(
        decode_jwt(&token).expect("jwt").claims["azp"],
        ids::CLIENT_ID
    );
    assert_eq!(caller.health().await["credential"], "kms-certificate");

    // KMS outage: connections to KMS are cut; no assertion can be signed until it is back.
    outage.down.store(true, Ordering::SeqCst);
    caller
        .wait_refused_with("KMS Sign failed, cannot reach the endpoint")
        .await;
    outage.down.store(false, Ordering::SeqCst);
    caller.wait_token().await;

    caller.assert_log_clean();
}

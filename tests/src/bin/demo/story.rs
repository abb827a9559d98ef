//! The demo's setup and story (see `main.rs`).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use entragate_tests::moto::Moto;
use entragate_tests::sts::{Sts, DEFAULT_ROLE_ARN};
use entragate_tests::{
    free_ports, random_uuid, repo_root, ApiApp, ClientApp, Envoy, FederatedCredential, Idp,
    Rotation, TemplateVars, TokenVersion,
};
use serde_json::{json, Value};

use crate::children;
use crate::policy::{self, FintechIds};

/// Prints one story step and remembers whether it behaved.
struct Verdicts {
    all_ok: bool,
}

impl Verdicts {
    fn check(&mut self, ok: bool, line: &str) {
        self.all_ok &= ok;
        println!("   {} {line}", if ok { "ok  " } else { "FAIL" });
    }
}

#[derive(Clone, Copy)]
struct Ports {
    fd_inbound: u16,
    fd_app: u16,
    fd_admin: u16,
    tp_outbound: u16,
    tp_admin: u16,
    agent: u16,
}

impl Ports {
    fn pick() -> anyhow::Result<Ports> {
        let [fd_inbound, fd_app, fd_admin, tp_outbound, tp_admin, agent] = free_ports()?;
        Ok(Ports {
            fd_inbound,
            fd_app,
            fd_admin,
            tp_outbound,
            tp_admin,
            agent,
        })
    }

    /// `--set` overrides: the example policy's fixed ports are replaced by
    /// free ones, every address is loopback, and each sidecar's certificates
    /// are in its own directory under `tls` (the policy's default mtls).
    fn overrides(&self, idp_port: u16, tls: &Path) -> Vec<String> {
        let certificates = ["fraud-detector", "transaction-processor", "reporting"].map(|s| {
            format!(
                "services.{s}.sidecar.certificates={}",
                tls.join(s).display()
            )
        });
        [
            format!("identity_provider.authority=http://127.0.0.1:{idp_port}"),
            // A DNS identity, so the story's own TLS client (playing the Reporting workload) can check the
            // Fraud Detector's certificate by name.
            format!("services.fraud-detector.workload.dns={FD_NAME}"),
            "services.fraud-detector.host=127.0.0.1".to_string(),
            "services.fraud-detector.sidecar.inbound_address=127.0.0.1".to_string(),
            format!("services.fraud-detector.ports.inbound={}", self.fd_inbound),
            format!("services.fraud-detector.ports.app={}", self.fd_app),
            format!("services.fraud-detector.ports.admin={}", self.fd_admin),
            format!(
                "services.transaction-processor.ports.outbound={}",
                self.tp_outbound
            ),
            format!(
                "services.transaction-processor.ports.admin={}",
                self.tp_admin
            ),
            format!(
                "services.transaction-processor.sidecar.agent=127.0.0.1:{}",
                self.agent
            ),
        ]
        .into_iter()
        .chain(certificates)
        .flat_map(|o| ["--set".to_string(), o])
        .collect()
    }
}

/// The Fraud Detector's workload identity in the demo.
const FD_NAME: &str = "fraud-detector.demo.test";

/// An HTTPS client holding `service`'s workload certificate: a call from that workload, straight to the
/// Fraud Detector's sidecar.
fn workload_client(tls: &Path, service: &str, fd_port: u16) -> anyhow::Result<reqwest::Client> {
    let dir = tls.join(service);
    let read = |f: &str| std::fs::read(dir.join(f)).with_context(|| format!("reading {f}"));
    Ok(reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .tls_certs_only([reqwest::Certificate::from_pem(&read("ca.crt")?)?])
        .identity(reqwest::Identity::from_pem(
            &[read("tls.crt")?, read("tls.key")?].concat(),
        )?)
        .resolve(FD_NAME, ([127, 0, 0, 1], fd_port).into())
        .build()?)
}

fn ready(what: &str) {
    println!("[ready] {what}");
}

/// A client-credentials token straight from the IdP's token endpoint (what
/// any registered app can get with its own secret).
async fn client_credentials(
    idp: &Idp,
    client_id: &str,
    secret: &str,
    resource: &str,
) -> anyhow::Result<String> {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", client_id)
        .append_pair("client_secret", secret)
        .append_pair("scope", &format!("{resource}/.default"))
        .finish();
    let response: Value = entragate_tests::http_client()
        .post(idp.token_endpoint())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await?
        .json()
        .await?;
    response["access_token"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("token endpoint answered {}", response["error"]))
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

pub async fn run(keep_running: bool) -> anyhow::Result<bool> {
    let started = Instant::now();
    let policy_path = repo_root().join("examples/fintech/mesh.yaml");
    let ids: FintechIds = policy::read(&policy_path)?;
    let dir = tempfile::Builder::new()
        .prefix("entragate-demo-")
        .tempdir()?;

    // 1. Identity provider: the apps of the policy, registered like in Entra.
    let idp = Idp::builder().tenant(&ids.tenant).start()?;
    idp.register_api(ApiApp::new(
        &ids.api_client_id,
        &ids.api_app_id_uri,
        TokenVersion::V2,
    ));
    let processor_secret = format!("demo~{}", random_uuid());
    let impostor_secret = format!("demo~{}", random_uuid());
    idp.register_client(
        ClientApp::new(&ids.processor_client_id, &processor_secret)
            .grant(&ids.api_client_id, ["Fraud.Scan"]),
    );
    idp.register_client(
        ClientApp::new(&ids.impostor_client_id, &impostor_secret)
            .grant(&ids.api_client_id, ["Fraud.Read"]),
    );
    ready(&format!(
        "local Entra-compatible identity provider on {} (tenant {}; FinTech-FraudDetector-API exposes Fraud.Scan, granted to FinTech-TransactionProcessor only)",
        idp.base_url(),
        ids.tenant
    ));

    // 2. Secrets Manager with the Transaction Processor's client secret.
    let moto = Moto::start().context("starting the local Secrets Manager (moto)")?;
    let secret_json = json!({
        "ClientId": ids.processor_client_id,
        "ClientSecret": processor_secret,
        "TenantId": ids.tenant,
    })
    .to_string();
    moto.put_secret(
        &ids.processor_region,
        &ids.processor_secret_id,
        &secret_json,
    )
    .await?;
    ready(&format!(
        "local AWS Secrets Manager (moto) on {}, holding `{}`",
        moto.endpoint, ids.processor_secret_id
    ));

    // 3. Sidecar configurations, rendered from the mesh policy, and their certificates.
    let ports = Ports::pick()?;
    let wasm = entragate_tests::wasm_path()?;
    let tls = dir.path().join("tls");
    let mut certs = vec![
        "certs".to_string(),
        "--policy".to_string(),
        policy_path.display().to_string(),
        "--ca-dir".to_string(),
        tls.join("ca").display().to_string(),
    ];
    certs.extend(ports.overrides(idp.port(), &tls));
    children::bootstrap(&certs)?;
    ready("mesh CA and one certificate per service (its workload identity as SAN) issued by `bootstrap certs`");
    let check = children::bootstrap(&[
        "check".to_string(),
        "--policy".to_string(),
        policy_path.display().to_string(),
    ])?;
    for service in ["fraud-detector", "transaction-processor"] {
        let mut args = vec![
            "render".to_string(),
            "--policy".to_string(),
            policy_path.display().to_string(),
            "--service".to_string(),
            service.to_string(),
            "--format".to_string(),
            "envoy".to_string(),
            "--wasm".to_string(),
            wasm.display().to_string(),
            "--set".to_string(),
            format!(
                "services.{service}.sidecar.agent_key_file={}",
                dir.path().join(format!("{service}.agent-key")).display()
            ),
            "--out".to_string(),
            dir.path().display().to_string(),
        ];
        args.extend(ports.overrides(idp.port(), &tls));
        children::bootstrap(&args)?;
    }
    ready("sidecar configs rendered by `bootstrap render` from examples/fintech/mesh.yaml; `bootstrap check` says:");
    for line in check.lines().filter(|l| !l.trim().is_empty()) {
        println!("        {line}");
    }

    // 4. Fraud Detector: app, then its validating sidecar.
    let (_fd_app, fd_app_addr) = children::start_app(
        "fraud-detector",
        &[
            "--listen".to_string(),
            format!("127.0.0.1:{}", ports.fd_app),
        ],
        dir.path(),
    )?;
    ready(&format!(
        "Fraud Detector app on {fd_app_addr} (no auth code in it)"
    ));
    let fd_envoy = start_envoy(&dir.path().join("fraud-detector.envoy.yaml")).await?;
    fd_envoy
        .wait_for_stat(
            "wasmcustom.entragate.jwks.fetch_ok",
            Duration::from_secs(20),
            |v| v >= 1,
        )
        .await
        .context("the Fraud Detector's sidecar did not load the tenant's signing keys")?;
    let fd_url = format!("https://{FD_NAME}:{}", ports.fd_inbound);
    ready(&format!(
        "Fraud Detector sidecar (Envoy + entragate, inbound, mTLS only) on 127.0.0.1:{}; signing keys loaded from the IdP's JWKS",
        ports.fd_inbound
    ));

    // 5. Transaction Processor: token agent, outbound sidecar, app.
    let mut agent = children::start_agent(
        &dir.path().join("transaction-processor.bootstrap.toml"),
        &moto.endpoint,
        dir.path(),
    )?;
    children::wait_healthy(
        &mut agent,
        &format!("http://127.0.0.1:{}/healthz", ports.agent),
        Duration::from_secs(30),
    )
    .await?;
    ready(&format!(
        "bootstrap agent on 127.0.0.1:{}: read the client secret from Secrets Manager, holds a token for the Fraud Detector",
        ports.agent
    ));
    let _tp_envoy = start_envoy(&dir.path().join("transaction-processor.envoy.yaml")).await?;
    ready(&format!(
        "Transaction Processor sidecar (Envoy + entragate, outbound) on 127.0.0.1:{}",
        ports.tp_outbound
    ));
    let (_tp_app, tp_addr) = children::start_app(
        "transaction-processor",
        &[
            "--listen".to_string(),
            "127.0.0.1:0".to_string(),
            "--fraud-detector-url".to_string(),
            format!("http://127.0.0.1:{}", ports.tp_outbound),
        ],
        dir.path(),
    )?;
    ready(&format!(
        "Transaction Processor app on {tp_addr} (no secret, no token in it)"
    ));
    println!(
        "        everything up in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut verdicts = Verdicts { all_ok: true };
    let client = entragate_tests::http_client();
    // Calls straight to the Fraud Detector's sidecar come from another workload of the mesh (the Reporting
    // service's certificate): without one, its mTLS listener does not even answer.
    let outsider = workload_client(&tls, "reporting", ports.fd_inbound)?;
    let processor_workload = workload_client(&tls, "transaction-processor", ports.fd_inbound)?;
    let jwks_before = idp.jwks_fetches();

    println!("\n1. A customer pays 120.50 EUR: Transaction Processor -> its sidecar -> Fraud Detector's sidecar -> Fraud Detector");
    let response = client
        .post(format!("http://{tp_addr}/transactions"))
        .json(&json!({ "amount": 120.5, "currency": "EUR", "merchant": "Coffee Corner" }))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let check = &body["fraudCheck"];
    if status != 200 {
        println!("   the Transaction Processor answered: {body}");
    }
    verdicts.check(
        status == 200
            && body["status"] == "Approved"
            && check["verifiedCaller"] == ids.processor_client_id.as_str(),
        &format!(
            "{} {} riskScore {}; the Fraud Detector saw caller {} with roles {}",
            status.as_u16(),
            body["status"].as_str().unwrap_or("?"),
            check["riskScore"],
            check["verifiedCaller"].as_str().unwrap_or("?"),
            check["verifiedRoles"].as_str().unwrap_or("?"),
        ),
    );

    println!("\n2. An impostor (FinTech-Reporting: a valid token of this tenant, but not the Fraud.Scan role) calls the Fraud Detector");
    let impostor = client_credentials(
        &idp,
        &ids.impostor_client_id,
        &impostor_secret,
        &ids.api_app_id_uri,
    )
    .await?;
    let response = outsider
        .post(format!("{fd_url}/fraud/analyze"))
        .bearer_auth(&impostor)
        .json(&json!({ "amount": 120.5 }))
        .send()
        .await?;
    let challenge = header(&response, "www-authenticate");
    verdicts.check(
        response.status() == 403 && challenge.contains("insufficient_scope"),
        &format!(
            "{} refused: WWW-Authenticate: {challenge}",
            response.status().as_u16()
        ),
    );

    println!("\n3. A call without a token");
    let response = outsider
        .post(format!("{fd_url}/fraud/analyze"))
        .json(&json!({ "amount": 120.5 }))
        .send()
        .await?;
    let challenge = header(&response, "www-authenticate");
    verdicts.check(
        response.status() == 401 && challenge.starts_with("Bearer"),
        &format!(
            "{} refused: WWW-Authenticate: {challenge}",
            response.status().as_u16()
        ),
    );

    println!("\n4. The identity provider rotates its signing key (the old one stays published during the rollover, as Entra does)");
    let new_key = idp.rotate_keys(Rotation::KeepOld)?;
    let fetches_before_rotation = idp.jwks_fetches();
    let response = client
        .post(format!("http://{tp_addr}/transactions"))
        .json(&json!({ "amount": 42.0, "currency": "EUR" }))
        .send()
        .await?;
    verdicts.check(
        response.status() == 200,
        &format!(
            "{} for the agent's current token (signed with the old key)",
            response.status().as_u16()
        ),
    );
    let fresh = client_credentials(
        &idp,
        &ids.processor_client_id,
        &processor_secret,
        &ids.api_app_id_uri,
    )
    .await?;
    // Sent from the Transaction Processor's own workload: its token is bound to it.
    let response = processor_workload
        .post(format!("{fd_url}/fraud/analyze"))
        .bearer_auth(&fresh)
        .json(&json!({ "amount": 42.0 }))
        .send()
        .await?;
    let refetches = idp.jwks_fetches() - fetches_before_rotation;
    verdicts.check(
        response.status() == 200 && refetches == 1,
        &format!(
            "{} for a token signed with the new key {}: the sidecar fetched the key set {refetches} time(s) to learn it",
            response.status().as_u16(),
            new_key.kid()
        ),
    );

    println!("\n5. What it cost");
    let counters = idp.counters();
    let stats = fd_envoy.stats().await?;
    let allowed = stats
        .get("wasmcustom.entragate.allowed")
        .copied()
        .unwrap_or(0);
    let denied: u64 = stats
        .iter()
        .filter(|(name, _)| name.starts_with("wasmcustom.entragate.denied."))
        .map(|(_, value)| value)
        .sum();
    println!(
        "   token requests to the IdP: {} (the agent's one, plus the two this demo made directly); JWKS fetches: {} ({jwks_before} at start-up, 1 for the rotation)",
        counters.token,
        idp.jwks_fetches(),
    );
    verdicts.check(
        allowed == 3 && denied == 2,
        &format!("the Fraud Detector's sidecar let {allowed} requests through (the 3 legitimate ones) and refused {denied}"),
    );

    println!("\n6. A Transaction Processor with no secret anywhere: its agent federates its AWS workload identity into Entra");
    let secretless = secretless_caller(&policy_path, &ids, &idp, &ports, &wasm, dir.path()).await?;
    verdicts.check(
        secretless.ok,
        &format!(
            "{} {} for a second Transaction Processor whose agent read no secret: it sent the STS web-identity token as its client assertion ({} token request(s) by private_key_jwt, none with a client secret); the Fraud Detector saw caller {}",
            secretless.status,
            secretless.decision,
            secretless.assertion_requests,
            secretless.caller,
        ),
    );

    println!("\n7. A token copied off the Transaction Processor is replayed from another workload (the Reporting service's, with its genuine mesh certificate)");
    let stolen = client_credentials(
        &idp,
        &ids.processor_client_id,
        &processor_secret,
        &ids.api_app_id_uri,
    )
    .await?;
    let denied_before = fd_envoy
        .stat("wasmcustom.entragate.denied.workload_mismatch")
        .await?
        .unwrap_or(0);
    let response = outsider
        .post(format!("{fd_url}/fraud/analyze"))
        .bearer_auth(&stolen)
        .json(&json!({ "amount": 120.5 }))
        .send()
        .await?;
    let status = response.status().as_u16();
    let challenge = header(&response, "www-authenticate");
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let counted = fd_envoy
        .stat("wasmcustom.entragate.denied.workload_mismatch")
        .await?
        .unwrap_or(0)
        - denied_before;
    verdicts.check(
        status == 403
            && body["error_description"] == "token not issued to the calling workload"
            && counted == 1,
        &format!(
            "{status} refused: {}; the token is valid (signature, audience, Fraud.Scan, an allowed caller) but the mTLS peer is spiffe://cluster.local/ns/default/sa/reporting, not the Transaction Processor's workload (entragate.denied.workload_mismatch +{counted}); WWW-Authenticate: {challenge}",
            body["error_description"].as_str().unwrap_or("?")
        ),
    );

    if keep_running && verdicts.all_ok {
        let certs = tls.join("reporting");
        println!("\nEverything keeps running; try:");
        println!("  curl -s -X POST http://{tp_addr}/transactions -H 'content-type: application/json' -d '{{\"amount\":99.9,\"currency\":\"EUR\"}}'");
        println!(
            "  curl -s -i --cacert {0}/ca.crt --cert {0}/tls.crt --key {0}/tls.key --resolve {FD_NAME}:{1}:127.0.0.1 -X POST {fd_url}/fraud/analyze -d '{{}}'",
            certs.display(),
            ports.fd_inbound
        );
        println!("Ctrl-C stops everything.");
        std::future::pending::<()>().await;
    }
    drop(agent);
    Ok(verdicts.all_ok)
}

/// What step 6 saw.
struct Secretless {
    ok: bool,
    status: u16,
    decision: String,
    caller: String,
    assertion_requests: usize,
    /// Kept alive until the demo ends.
    _children: (children::Running, children::Running, Envoy, Sts),
}

/// Step 6: the same Transaction Processor, rendered from the same policy but with `identity.aws_federation`
/// instead of a Secrets Manager secret. Its agent is given no Secrets Manager at all: it asks the (local) STS
/// for a web-identity token and sends it to the IdP as the client assertion, which the IdP checks against the
/// federated credential registered on the app (issuer, subject, audience, the issuer's JWKS).
async fn secretless_caller(
    policy_path: &Path,
    ids: &FintechIds,
    idp: &Idp,
    ports: &Ports,
    wasm: &Path,
    dir: &Path,
) -> anyhow::Result<Secretless> {
    let tls = dir.join("tls");
    let sts = Sts::start().context("starting the local STS")?;
    idp.add_federated_credential(
        &ids.processor_client_id,
        FederatedCredential::new(&sts.issuer(), DEFAULT_ROLE_ARN),
    );
    let dir = dir.join("secretless");
    std::fs::create_dir_all(&dir)?;
    let policy = std::fs::read_to_string(policy_path)?;
    let secret_line = format!("secret: aws-secretsmanager:{}", ids.processor_secret_id);
    anyhow::ensure!(
        policy.contains(&secret_line),
        "{} no longer has `{secret_line}`",
        policy_path.display()
    );
    let variant = dir.join("mesh.yaml");
    std::fs::write(&variant, policy.replace(&secret_line, "aws_federation: {}"))?;
    // The Fraud Detector's ports stay; the second caller gets its own.
    let [tp_outbound, tp_admin, agent] = free_ports()?;
    let own = Ports {
        tp_outbound,
        tp_admin,
        agent,
        ..*ports
    };
    let mut args = vec![
        "render".to_string(),
        "--policy".to_string(),
        variant.display().to_string(),
        "--service".to_string(),
        "transaction-processor".to_string(),
        "--format".to_string(),
        "envoy".to_string(),
        "--wasm".to_string(),
        wasm.display().to_string(),
        "--set".to_string(),
        format!(
            "services.transaction-processor.sidecar.agent_key_file={}",
            dir.join("agent-key").display()
        ),
        "--out".to_string(),
        dir.display().to_string(),
    ];
    args.extend(own.overrides(idp.port(), &tls));
    children::bootstrap(&args)?;
    // The rendered agent config ends with its `[credential]` table; on this machine the STS is local
    // (`endpoint_url`, as `--set` points the IdP at a local one). In AWS the regional STS is the default.
    let agent_config = dir.join("transaction-processor.bootstrap.toml");
    let rendered = std::fs::read_to_string(&agent_config)?;
    anyhow::ensure!(
        rendered.contains("kind = \"aws-federation\""),
        "the rendered agent config has no aws-federation credential:\n{rendered}"
    );
    std::fs::write(
        &agent_config,
        format!("{rendered}endpoint_url = \"{}\"\n", sts.endpoint()),
    )?;
    let requests_before = idp.token_requests().len();
    // The agent's only AWS endpoint is the STS: there is no Secrets Manager it could read a secret from.
    let mut agent = children::start_agent(&agent_config, &sts.endpoint(), &dir)?;
    children::wait_healthy(
        &mut agent,
        &format!("http://127.0.0.1:{}/healthz", own.agent),
        Duration::from_secs(30),
    )
    .await?;
    let envoy = start_envoy(&dir.join("transaction-processor.envoy.yaml")).await?;
    let (app, addr) = children::start_app(
        "transaction-processor",
        &[
            "--listen".to_string(),
            "127.0.0.1:0".to_string(),
            "--fraud-detector-url".to_string(),
            format!("http://127.0.0.1:{}", own.tp_outbound),
        ],
        &dir,
    )?;
    let response = entragate_tests::http_client()
        .post(format!("http://{addr}/transactions"))
        .json(&json!({ "amount": 7.5, "currency": "EUR", "merchant": "Bakery" }))
        .send()
        .await?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let caller = body["fraudCheck"]["verifiedCaller"]
        .as_str()
        .unwrap_or("?")
        .to_string();
    let requests: Vec<_> = idp
        .token_requests()
        .into_iter()
        .skip(requests_before)
        .collect();
    let assertion_requests = requests
        .iter()
        .filter(|r| r.auth_method == "private_key_jwt" && r.status == 200)
        .count();
    let with_secret = requests
        .iter()
        .filter(|r| r.auth_method.starts_with("client_secret"))
        .count();
    Ok(Secretless {
        ok: status == 200
            && caller == ids.processor_client_id
            && assertion_requests >= 1
            && with_secret == 0,
        status,
        decision: body["status"].as_str().unwrap_or("?").to_string(),
        caller,
        assertion_requests,
        _children: (agent, app, envoy, sts),
    })
}

async fn start_envoy(config: &Path) -> anyhow::Result<Envoy> {
    let text =
        std::fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
    Envoy::start(&text, TemplateVars::new())
        .await
        .with_context(|| format!("starting Envoy with {}", config.display()))
}

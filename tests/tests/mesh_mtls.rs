//! The FinTech sidecars over mTLS (mesh.yaml's default transport), with real Envoys and certificates from
//! `bootstrap certs` (entragate_bootstrap::certs):
//!
//! - the Transaction Processor's call succeeds, each side having verified the other's workload identity;
//! - plain HTTP to the Fraud Detector's sidecar is refused (the listener speaks TLS only);
//! - a caller whose certificate comes from another CA is refused by the callee's handshake;
//! - a callee presenting another workload's identity is refused by the caller (SAN check);
//! - certificates rotated while traffic flows are picked up (file-based SDS) and no request fails;
//! - a token of the Transaction Processor replayed from the Reporting workload is refused (workload binding).
//!
//! Every sidecar (the Fraud Detector's callee and the callers') runs the filter of `ENTRAGATE_FILTER_HOST`
//! (`wasm` or `native`, tests/src/filter_host.rs), rendered as `bootstrap render --filter <host>` renders it.
//!
//! Readiness is observed through Envoy's admin interface (stats, /certs), never by sleeping.

mod mesh_support;
mod outbound_support;
mod support;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use entragate_bootstrap::certs::{self, MeshCa, Outcome};
use entragate_mesh::policy::WorkloadIdentity;
use entragate_mesh::MeshPolicy;
use entragate_tests::{wait_for, Envoy, FilterHost};
use mesh_support::{call, try_call, Fintech, REPORTING_CLIENT, TP_CLIENT};
use reqwest::{Method, StatusCode};
use support::{require_envoy, Refusal};

const DAY: Duration = Duration::from_secs(86400);

/// Certificate directories per service under `root`, as `--set` overrides.
fn certificate_overrides(root: &Path) -> Vec<String> {
    ["fraud-detector", "transaction-processor", "reporting"]
        .iter()
        .map(|s| {
            format!(
                "services.{s}.sidecar.certificates={}",
                root.join(s).display()
            )
        })
        .collect()
}

/// The mesh CA in `root/ca` and every service's certificate from `policy`.
fn issue_all(root: &Path, policy: &MeshPolicy) -> MeshCa {
    let (ca, _) = MeshCa::load_or_create(&root.join("ca"), "cluster.local", DAY).unwrap();
    for service in policy.services() {
        certs::provision(&ca, service, DAY, false).unwrap();
    }
    ca
}

/// Certificates issued under `root` for the loopback policy with `extra` overrides, and the Fraud Detector's and
/// the Transaction Processor's sidecars over mTLS.
async fn mtls_sidecars(
    mesh: &Fintech,
    root: &Path,
    extra: &[String],
) -> (MeshPolicy, MeshCa, Envoy, Envoy) {
    let policy = mesh.policy(&[certificate_overrides(root), extra.to_vec()].concat());
    let ca = issue_all(root, &policy);
    let fraud = mesh
        .sidecar(&policy, "fraud-detector")
        .await
        .expect("fraud-detector sidecar");
    let tp = mesh
        .sidecar(&policy, "transaction-processor")
        .await
        .expect("tp sidecar");
    (policy, ca, fraud, tp)
}

/// Sum of the stats whose name starts with `prefix` and ends with `suffix`.
async fn stat_sum(envoy: &Envoy, prefix: &str, suffix: &str) -> u64 {
    envoy
        .stats()
        .await
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with(prefix) && k.ends_with(suffix))
        .map(|(_, v)| *v)
        .sum()
}

async fn wait_stat_sum(envoy: &Envoy, prefix: &str, suffix: &str, at_least: u64) -> u64 {
    wait_for(
        Duration::from_secs(20),
        &format!("{prefix}*{suffix} >= {at_least}"),
        || async move { Some(stat_sum(envoy, prefix, suffix).await).filter(|v| *v >= at_least) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", envoy.log_tail(30)))
}

/// The serial numbers of the certificates a sidecar holds (admin `/certs`).
async fn serials(envoy: &Envoy) -> Vec<String> {
    let certs: serde_json::Value =
        serde_json::from_str(&envoy.admin_get("/certs").await.unwrap()).unwrap();
    let mut out = Vec::new();
    for entry in certs["certificates"].as_array().into_iter().flatten() {
        for chain in entry["cert_chain"].as_array().into_iter().flatten() {
            if let Some(serial) = chain["serial_number"].as_str() {
                out.push(serial.to_string());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecars_talk_mtls_and_refuse_plaintext_foreign_cas_and_wrong_identities() {
    if !require_envoy("mesh_mtls") {
        return;
    }
    let mesh = Fintech::start().await;
    let root = tempfile::tempdir().unwrap();
    let (policy, _, fraud, tp) = mtls_sidecars(&mesh, root.path(), &[]).await;

    // The Transaction Processor's call goes through, over mTLS.
    let response = call(&tp, Method::POST, "/fraud/analyze").await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{:?}",
        response.text().await
    );
    assert_eq!(
        mesh.echo.last_request().unwrap().header("x-entra-caller"),
        Some(TP_CLIENT)
    );
    assert!(stat_sum(&fraud, "listener.", "ssl.handshake").await >= 1);
    let served = mesh.echo.request_count();

    // Plain HTTP to the Fraud Detector's sidecar: no HTTP answer at all, the listener speaks TLS only.
    let plain = entragate_tests::http_client()
        .get(format!("http://127.0.0.1:{}/healthz", mesh.inbound))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP answered: {plain:?}");
    wait_stat_sum(&fraud, "listener.", "ssl.connection_error", 1).await;
    assert_eq!(mesh.echo.request_count(), served);

    // A caller whose certificate another CA issued (it trusts the real CA, so only the callee can object).
    let rogue_root = tempfile::tempdir().unwrap();
    let rogue_policy = mesh.policy(&certificate_overrides(rogue_root.path()));
    let (rogue_ca, _) =
        MeshCa::load_or_create(&rogue_root.path().join("ca"), "cluster.local", DAY).unwrap();
    let rogue_tp = rogue_policy.service("transaction-processor").unwrap();
    certs::provision(&rogue_ca, rogue_tp, DAY, false).unwrap();
    std::fs::copy(
        root.path().join("ca/ca.crt"),
        rogue_root
            .path()
            .join("transaction-processor/..data/ca.crt"),
    )
    .unwrap();
    drop(tp);
    let rogue = mesh
        .sidecar(&rogue_policy, "transaction-processor")
        .await
        .expect("rogue caller sidecar");
    let before = stat_sum(&fraud, "listener.", "ssl.fail_verify_error").await;
    let response = call(&rogue, Method::POST, "/fraud/analyze").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    wait_stat_sum(&fraud, "listener.", "ssl.fail_verify_error", before + 1).await;
    assert_eq!(mesh.echo.request_count(), served, "nothing reached the app");
    drop(rogue);

    // A callee presenting another workload's identity (a valid certificate of the mesh CA for
    // `reporting`): the caller's SAN check refuses it.
    let impostor_root = tempfile::tempdir().unwrap();
    let mut sets = certificate_overrides(impostor_root.path());
    sets.push(
        "services.fraud-detector.workload.uri=spiffe://cluster.local/ns/default/sa/impostor".into(),
    );
    let impostor_policy = mesh.policy(&sets);
    let (ca, _) = MeshCa::load_or_create(&root.path().join("ca"), "cluster.local", DAY).unwrap();
    certs::provision(
        &ca,
        impostor_policy.service("fraud-detector").unwrap(),
        DAY,
        false,
    )
    .unwrap();
    drop(fraud);
    let mut fd_sets = certificate_overrides(root.path());
    fd_sets.push(format!(
        "services.fraud-detector.sidecar.certificates={}",
        impostor_root.path().join("fraud-detector").display()
    ));
    let impostor = mesh
        .sidecar(&mesh.policy(&fd_sets), "fraud-detector")
        .await
        .expect("impostor callee sidecar");
    let tp = mesh
        .sidecar(&policy, "transaction-processor")
        .await
        .expect("tp sidecar");
    let response = call(&tp, Method::POST, "/fraud/analyze").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    wait_stat_sum(&tp, "cluster.fraud_detector.", "ssl.fail_verify_san", 1).await;
    assert_eq!(mesh.echo.request_count(), served, "nothing reached the app");
    drop((impostor, tp));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rotated_under_traffic_lose_no_request() {
    if !require_envoy("mesh_mtls_rotation") {
        return;
    }
    let mesh = Fintech::start().await;
    let root = tempfile::tempdir().unwrap();
    let (policy, ca, fraud, tp) = mtls_sidecars(&mesh, root.path(), &[]).await;
    let tp = Arc::new(tp);
    let response = call(&tp, Method::POST, "/fraud/analyze").await;
    assert_eq!(response.status(), StatusCode::OK);

    // Traffic: sequential calls until told to stop; every answer is recorded.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let traffic = {
        let (tp, stop, ok, failed) = (tp.clone(), stop.clone(), ok.clone(), failed.clone());
        tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                match try_call(&tp, Method::POST, "/fraud/analyze").await {
                    Ok(r) if r.status() == StatusCode::OK => {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    other => {
                        failed.fetch_add(1, Ordering::SeqCst);
                        failures.push(format!("{other:?}"));
                    }
                }
            }
            failures
        })
    };
    let settle = |n: usize| {
        let ok = ok.clone();
        async move {
            let target = ok.load(Ordering::SeqCst) + n;
            wait_for(Duration::from_secs(20), "traffic", || {
                let ok = ok.clone();
                async move { (ok.load(Ordering::SeqCst) >= target).then_some(()) }
            })
            .await
            .unwrap();
        }
    };
    settle(5).await;

    // Rotate both sides while requests flow; each sidecar must load its new pair from the watched directory.
    for (envoy, service) in [(&fraud, "fraud-detector"), (&*tp, "transaction-processor")] {
        let old = serials(envoy).await;
        let outcome = certs::provision(&ca, policy.service(service).unwrap(), DAY, true).unwrap();
        assert!(matches!(outcome, Outcome::Issued { .. }));
        let new = wait_for(Duration::from_secs(20), "new certificate loaded", || {
            let old = old.clone();
            async move {
                let now = serials(envoy).await;
                (now != old && !now.is_empty()).then_some(now)
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{service}: {e}\n{}", envoy.log_tail(30)));
        assert!(
            old.iter().all(|s| !new.contains(s)),
            "{service}: {old:?} -> {new:?}"
        );
        // Still served after the switch.
        settle(5).await;
    }
    stop.store(true, Ordering::SeqCst);
    let failures = traffic.await.unwrap();
    assert!(
        failures.is_empty(),
        "{} failed: {failures:?}",
        failures.len()
    );
    assert_eq!(failed.load(Ordering::SeqCst), 0);
    assert!(ok.load(Ordering::SeqCst) >= 15);
    // A new connection handshakes with the new certificates on both sides.
    drop(tp);
    let fresh = mesh
        .sidecar(&policy, "transaction-processor")
        .await
        .expect("fresh caller");
    let before = stat_sum(&fraud, "listener.", "ssl.handshake").await;
    let response = call(&fresh, Method::POST, "/fraud/analyze").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(stat_sum(&fraud, "listener.", "ssl.handshake").await > before);
}

/// A client-credentials token for `client` straight from the IdP: what a thief copies off a workload.
async fn token_of(mesh: &Fintech, client: &str, secret: &str) -> String {
    let body = format!(
        "grant_type=client_credentials&client_id={client}&client_secret={secret}&scope={}",
        "api%3A%2F%2Ffintech-fraud-detector%2F.default"
    );
    let response: serde_json::Value = entragate_tests::http_client()
        .post(mesh.idp.token_endpoint())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    response["access_token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_replayed_from_another_workload_is_refused() {
    if !require_envoy("mesh_mtls_binding") {
        return;
    }
    let host = FilterHost::from_env();
    let mesh = Fintech::start().await;
    let root = tempfile::tempdir().unwrap();
    // A DNS identity for the Fraud Detector, so this test's own TLS client (rustls) can verify it by name.
    const FD_NAME: &str = "fraud-detector.mesh.test";
    // The Transaction Processor keeps its URI identity (SPIFFE) and the Reporting workload gets a DNS one,
    // so the filter must read both kinds of SAN from the peer certificate to accept both genuine calls.
    const REPORTING_NAME: &str = "reporting.mesh.test";
    let sets = [
        format!("services.fraud-detector.workload.dns={FD_NAME}"),
        format!("services.reporting.workload.dns={REPORTING_NAME}"),
    ];
    let (policy, _, fraud, tp) = mtls_sidecars(&mesh, root.path(), &sets).await;
    assert!(fraud.config().contains("workload_binding"));
    assert!(
        fraud.config().contains(REPORTING_NAME),
        "bound by its DNS name"
    );
    assert_eq!(
        fraud.config().contains("DynamicModuleFilter"),
        host == FilterHost::Native,
        "the callee runs the host under test"
    );
    let tp_workload = policy
        .service("transaction-processor")
        .unwrap()
        .workload
        .clone();
    assert!(
        matches!(tp_workload, WorkloadIdentity::Uri(_)),
        "{tp_workload:?}"
    );

    // The Transaction Processor, from its own workload: accepted.
    let response = call(&tp, Method::POST, "/fraud/analyze").await;
    assert_eq!(response.status(), StatusCode::OK);
    let served = mesh.echo.request_count();

    // The Reporting workload (a genuine mesh certificate, so the handshake succeeds) replays a token of the
    // Transaction Processor: valid signature, audience, role and allowed caller, but not its workload.
    let stolen = token_of(&mesh, TP_CLIENT, "tp-secret-not-real").await;
    let dir = root.path().join("reporting");
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let identity =
        reqwest::Identity::from_pem(&[read("tls.crt"), read("tls.key")].concat()).unwrap();
    let reporting_workload = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(&read("ca.crt")).unwrap()])
        .identity(identity)
        .resolve(FD_NAME, ([127, 0, 0, 1], mesh.inbound).into())
        .build()
        .unwrap();
    let url = |path: &str| format!("https://{FD_NAME}:{}{path}", mesh.inbound);
    let refusal = Refusal::from(
        reporting_workload
            .post(url("/fraud/analyze"))
            .bearer_auth(&stolen)
            .body("{}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(refusal.status, StatusCode::FORBIDDEN, "{refusal:?}");
    assert_eq!(refusal.body["error"], "insufficient_scope", "{refusal:?}");
    assert_eq!(
        refusal.description(),
        "token not issued to the calling workload"
    );
    assert!(
        refusal
            .www_authenticate
            .as_deref()
            .is_some_and(|h| h.contains("error=\"insufficient_scope\"")),
        "{refusal:?}"
    );
    assert_eq!(
        fraud
            .stat(&host.stat("entragate.denied.workload_mismatch"))
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        mesh.echo.request_count(),
        served,
        "the replay never reached the app"
    );

    // The same workload with its own token, on the route it is allowed (bound too): accepted, through its
    // DNS SAN.
    let own = token_of(&mesh, REPORTING_CLIENT, "rep-secret-not-real").await;
    let response = reporting_workload
        .get(url("/fraud/reports/daily"))
        .bearer_auth(&own)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        mesh.echo.last_request().unwrap().header("x-entra-caller"),
        Some(REPORTING_CLIENT)
    );
    drop((fraud, tp));
}

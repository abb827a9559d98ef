//! What `bootstrap render` produces for the platforms users deploy on, checked by each platform's own
//! validator (installed into `.cache/` by `cargo xtask setup`):
//!
//! | artifact | validator |
//! |---|---|
//! | `--format kubernetes` (ServiceAccount, Deployment, Service) | PyPI `kubernetes-validate --strict`, Kubernetes 1.29 schemas (native sidecars' minimum) |
//! | `--format istio` (WasmPlugin, ServiceEntry, DestinationRule) | PyPI `cloudcoil-models-istio`: pydantic models generated from Istio's CRDs |
//! | `--format ecs` (task definition) | `RegisterTaskDefinition` through boto3 (botocore validates against AWS's ECS service model) against moto |
//! | `docker-compose.yml` | `docker-compose config` (Debian `docker-compose`; no engine needed) |
//! | `--format envoy-gateway` (wasm and native: EnvoyExtensionPolicy, EnvoyPatchPolicy, ClientTrafficPolicy, EnvoyProxy) | Envoy Gateway v1.9.0's CRD schemas pinned in `validators/envoy-gateway-crds.json` (no registry package carries them; `kubernetes-validate` only warns "Couldn't find schema" for its kinds): OpenAPI schema through PyPI `jsonschema`, unknown fields refused, CEL rules through PyPI `cel-python` |
//!
//! Envoy Gateway's API rules are also asserted here for what the CLI renders per transport mode, and in
//! `mesh/tests/mesh_render.rs`. A missing validator skips the check, except under `ENTRAGATE_REQUIRE_ENVOY=1`
//! (`cargo xtask test`, CI), where it fails: CI must not pass without running them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is the point

mod support;

use serde_yaml_ng::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const REQUIRE_ENV: &str = "ENTRAGATE_REQUIRE_ENVOY";
const EXECUTION_ROLE: &str = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole";
const TASK_ROLE: &str = "arn:aws:iam::123456789012:role/transaction-processor-task";
const OCI_URL: &str = "oci://registry.example.com/entragate-filter@sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn example() -> String {
    support::workspace_root()
        .join("examples/fintech/mesh.yaml")
        .display()
        .to_string()
}

/// `bootstrap render` for `service` with `args`; its stdout.
fn render(service: &str, args: &[&str]) -> String {
    let policy = example();
    let out = Command::new(env!("CARGO_BIN_EXE_bootstrap"))
        .args(["render", "--policy", &policy, "--service", service])
        .args(args)
        .env_remove("ENTRAGATE_POLICY")
        .env_remove("ENTRAGATE_WASM")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "render {service} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn kubernetes(service: &str) -> String {
    render(
        service,
        &[
            "--format",
            "kubernetes",
            "--namespace",
            "fintech",
            "--app-image",
            "registry.example.com/fintech/app:1.0",
            "--bootstrap-image",
            "registry.example.com/entragate-bootstrap:0.1.0",
        ],
    )
}

fn ecs(service: &str, task_role: Option<&str>) -> String {
    let mut args = vec![
        "--format",
        "ecs",
        "--app-image",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1.0",
        "--bootstrap-image",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/entragate-bootstrap-fintech:0.1.0",
        "--execution-role-arn",
        EXECUTION_ROLE,
    ];
    if let Some(role) = task_role {
        args.extend(["--task-role-arn", role]);
    }
    render(service, &args)
}

/// The validator at `path`, or `None` (skip) when it is not installed; under [`REQUIRE_ENV`] a panic.
fn validator(path: PathBuf) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    let message = format!(
        "{} is not installed: run `cargo xtask setup`",
        path.display()
    );
    assert!(
        std::env::var_os(REQUIRE_ENV).is_none(),
        "{message} ({REQUIRE_ENV} is set)"
    );
    eprintln!("skipped: {message}");
    None
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/validators")
        .join(name)
}

fn write_temp(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn assert_ok(what: &str, out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} rejected the rendered output:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn documents(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("no {kind} in the output"))
}

fn names(containers: &Value) -> Vec<&str> {
    containers
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

/// Every probe of every container, by container name.
fn probes(pod: &Value) -> Vec<(String, Value)> {
    let mut all = Vec::new();
    for list in ["initContainers", "containers"] {
        for c in pod[list].as_sequence().unwrap() {
            for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
                if !c[probe].is_null() {
                    all.push((c["name"].as_str().unwrap().to_string(), c[probe].clone()));
                }
            }
        }
    }
    all
}

#[test]
fn kubernetes_objects_follow_the_sidecar_rules_and_pass_kubernetes_validate() {
    let caller = kubernetes("transaction-processor");
    let docs = documents(&caller);
    let pod = &find(&docs, "Deployment")["spec"]["template"]["spec"];
    // The render step runs to completion first, then the native sidecars (restartPolicy Always, KEP-753),
    // in order: the agent (tokens ready) before Envoy, both before the app.
    assert_eq!(
        names(&pod["initContainers"]),
        ["entragate-render", "entragate-agent", "envoy"]
    );
    let init = pod["initContainers"].as_sequence().unwrap();
    assert!(init[0]["restartPolicy"].is_null(), "render runs once");
    assert_eq!(init[1]["restartPolicy"].as_str(), Some("Always"));
    assert_eq!(init[2]["restartPolicy"].as_str(), Some("Always"));
    assert_eq!(names(&pod["containers"]), ["app"]);
    // mtls (the default): Envoy reads its certificate directory from one projected volume (the workload's
    // Secret and the rendered SDS ConfigMap), swapped atomically by the kubelet.
    let tls_mount = init[2]["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["name"].as_str() == Some("entragate-tls"))
        .expect("envoy mounts its certificates");
    assert_eq!(tls_mount["mountPath"].as_str(), Some("/etc/entragate/tls"));
    let volume = pod["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"].as_str() == Some("entragate-tls"))
        .expect("the certificate volume");
    let sources = volume["projected"]["sources"].as_sequence().unwrap();
    assert_eq!(
        sources[0]["secret"]["name"].as_str(),
        Some("transaction-processor-workload-tls")
    );
    let sds = find(&docs, "ConfigMap");
    assert_eq!(
        sources[1]["configMap"]["name"].as_str(),
        sds["metadata"]["name"].as_str()
    );
    assert!(sds["data"]["certificate.sds.yaml"]
        .as_str()
        .unwrap()
        .contains("/etc/entragate/tls/tls.key"));
    // The agent listens on the pod's loopback: an httpGet probe goes to the pod IP (and with
    // `host: 127.0.0.1` to the node), so its probes must run inside the container.
    for (container, probe) in probes(pod) {
        assert!(
            probe["httpGet"]["host"].is_null(),
            "{container}: a probe with host: targets the node, not the pod"
        );
        if container == "entragate-agent" {
            let command = probe["exec"]["command"].as_sequence().unwrap();
            assert_eq!(command[0].as_str(), Some("curl"));
            assert!(command
                .iter()
                .any(|w| w.as_str() == Some("http://127.0.0.1:15901/healthz")));
        }
    }
    assert!(
        !init[1]["startupProbe"].is_null(),
        "the app waits for tokens"
    );
    // One key, in the pod only: render creates it in the shared memory volume the agent reads.
    let render_args: Vec<&str> = init[0]["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let key = render_args[render_args
        .iter()
        .position(|a| *a == "--agent-key-file")
        .unwrap()
        + 1];
    assert_eq!(key, "/run/entragate/agent-key");
    let volume = &pod["volumes"][0];
    assert_eq!(volume["emptyDir"]["medium"].as_str(), Some("Memory"));
    assert_eq!(
        pod["serviceAccountName"].as_str(),
        find(&docs, "ServiceAccount")["metadata"]["name"].as_str()
    );

    let callee = kubernetes("fraud-detector");
    let callee_docs = documents(&callee);
    let callee_pod = &find(&callee_docs, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(
        names(&callee_pod["initContainers"]),
        ["entragate-render", "envoy"]
    );
    let service = find(&callee_docs, "Service");
    assert_eq!(service["spec"]["ports"][0]["port"].as_u64(), Some(15006));
    assert_eq!(
        service["spec"]["ports"][0]["targetPort"].as_str(),
        Some("inbound")
    );

    let Some(tool) = validator(entragate_tools::VALIDATORS.bin("kubernetes-validate")) else {
        return;
    };
    let dir = support::temp_dir("kubernetes");
    let files = [
        write_temp(&dir, "transaction-processor.kubernetes.yaml", &caller),
        write_temp(&dir, "fraud-detector.kubernetes.yaml", &callee),
    ];
    let validate = |files: &[PathBuf]| {
        Command::new(&tool)
            .args(["--strict", "--kubernetes-version", "1.29.0"])
            .args(files)
            .output()
            .unwrap()
    };
    // The check can fail: a misspelt field is refused.
    let misspelt = write_temp(
        &dir,
        "misspelt.kubernetes.yaml",
        &caller.replace("readOnlyRootFilesystem", "readOnlyRootFileSystem"),
    );
    assert!(
        !validate(&[misspelt]).status.success(),
        "a misspelt field passed"
    );
    let out = validate(&files);
    std::fs::remove_dir_all(&dir).unwrap();
    let report = assert_ok("kubernetes-validate", &out);
    for resource in [
        "serviceaccount/transaction-processor",
        "deployment/transaction-processor",
        "deployment/fraud-detector",
        "service/fraud-detector",
    ] {
        assert!(
            report.contains(&format!(
                "passed for resource {resource} against version 1.29"
            )),
            "{report}"
        );
    }
}

#[test]
fn istio_resources_pass_istios_crd_models() {
    let text = render(
        "fraud-detector",
        &[
            "--format",
            "istio",
            "--namespace",
            "fintech",
            "--wasm-url",
            OCI_URL,
        ],
    );
    let Some(python) = validator(entragate_tools::VALIDATORS.bin("python")) else {
        return;
    };
    let dir = support::temp_dir("istio");
    let file = write_temp(&dir, "fraud-detector.istio.yaml", &text);
    let out = Command::new(python)
        .arg(script("istio_models.py"))
        .arg(&file)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let report = assert_ok("the Istio CRD models", &out);
    for kind in ["WasmPlugin", "ServiceEntry", "DestinationRule"] {
        assert!(report.contains(&format!("{kind} ok")), "{report}");
    }
}

#[test]
fn istio_model_check_rejects_an_unknown_field() {
    // The check itself must be able to fail: a misspelt field is refused.
    let text = render(
        "fraud-detector",
        &[
            "--format",
            "istio",
            "--namespace",
            "fintech",
            "--wasm-url",
            OCI_URL,
        ],
    )
    .replace("subjectAltNames:", "subjectAltName:");
    let Some(python) = validator(entragate_tools::VALIDATORS.bin("python")) else {
        return;
    };
    let dir = support::temp_dir("istio-bad");
    let file = write_temp(&dir, "bad.istio.yaml", &text);
    let out = Command::new(python)
        .arg(script("istio_models.py"))
        .arg(&file)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!out.status.success(), "a misspelt field passed");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("subjectAltName"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ecs_task_definitions_register_through_the_ecs_api_model() {
    let caller = ecs("transaction-processor", Some(TASK_ROLE));
    let task: serde_json::Value = serde_json::from_str(&caller).unwrap();
    assert_eq!(task["executionRoleArn"], EXECUTION_ROLE);
    assert_eq!(task["taskRoleArn"], TASK_ROLE);
    assert_eq!(task["networkMode"], "awsvpc");
    let containers = task["containerDefinitions"].as_array().unwrap();
    let by_name = |name: &str| {
        containers
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no container {name}"))
    };
    let depends = |name: &str| -> Vec<(String, String)> {
        by_name(name)["dependsOn"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["containerName"].as_str().unwrap().to_string(),
                    d["condition"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(by_name("entragate-render")["essential"], false);
    assert!(depends("app").contains(&("entragate-agent".into(), "HEALTHY".into())));
    assert!(depends("entragate-agent").contains(&("entragate-render".into(), "SUCCESS".into())));
    assert!(depends("envoy").contains(&("entragate-render".into(), "SUCCESS".into())));
    // One volume holds the rendered files and the key, for render, agent and Envoy alike.
    for name in ["entragate-render", "entragate-agent", "envoy"] {
        assert_eq!(
            by_name(name)["mountPoints"][0]["containerPath"],
            "/run/entragate",
            "{name}"
        );
    }
    // The agent's config is the one render writes, not a file only the Envoy image holds.
    assert_eq!(
        by_name("entragate-agent")["command"][2],
        "/run/entragate/transaction-processor.bootstrap.toml"
    );
    // A caller without a task role cannot read its secret: refused at render time.
    let policy = example();
    let refused = Command::new(env!("CARGO_BIN_EXE_bootstrap"))
        .args([
            "render",
            "--policy",
            &policy,
            "--service",
            "transaction-processor",
        ])
        .args([
            "--format",
            "ecs",
            "--app-image",
            "a:1",
            "--bootstrap-image",
            "b:1",
        ])
        .args(["--execution-role-arn", EXECUTION_ROLE])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--task-role-arn"));

    let callee = ecs("fraud-detector", None);
    let moto = support::moto::shared();
    let Some(python) = validator(entragate_tools::MOTO.bin("python")) else {
        return;
    };
    let dir = support::temp_dir("ecs");
    let files = [
        write_temp(&dir, "transaction-processor.ecs.json", &caller),
        write_temp(&dir, "fraud-detector.ecs.json", &callee),
    ];
    let register = |files: &[PathBuf]| {
        Command::new(&python)
            .arg(script("ecs_register.py"))
            .arg(&moto.endpoint)
            .args(files)
            .output()
            .unwrap()
    };
    // The check can fail: botocore refuses a member the ECS model does not have.
    let misspelt = write_temp(
        &dir,
        "misspelt.ecs.json",
        &callee.replace("\"essential\"", "\"esential\""),
    );
    let refused = register(&[misspelt]);
    assert!(!refused.status.success(), "a misspelt member passed");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("esential"));
    let out = register(&files);
    std::fs::remove_dir_all(&dir).unwrap();
    let report = assert_ok("ECS RegisterTaskDefinition", &out);
    assert!(
        report.contains("containers=entragate-render,entragate-agent,envoy,app"),
        "{report}"
    );
    assert!(
        report.contains("containers=entragate-render,envoy,app"),
        "{report}"
    );
}

#[test]
fn docker_compose_config_accepts_the_compose_file() {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("docker-compose"))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("/usr/bin/docker-compose"));
    let Some(tool) = validator(found) else {
        return;
    };
    let out = Command::new(tool)
        .current_dir(support::workspace_root())
        .args(["--file", "docker-compose.yml", "config", "--quiet"])
        .output()
        .unwrap();
    assert_ok("docker-compose config", &out);
}

/// The render step the task/pod runs, run here with its paths moved into a temporary directory: it leaves
/// exactly what the agent and Envoy containers are started with, agreeing on one key.
#[test]
fn the_render_step_leaves_what_the_agent_and_envoy_read() {
    let rendered = kubernetes("transaction-processor");
    let docs = documents(&rendered);
    let pod = &find(&docs, "Deployment")["spec"]["template"]["spec"];
    let init = pod["initContainers"].as_sequence().unwrap();
    let dir = support::temp_dir("render-step");
    // The mounted volume: it exists before the render step runs.
    let run_dir = dir.join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let module = write_temp(&dir, "module.wasm", "\0asm\u{1}\0\0\0");
    let policy = example();
    let moved = |arg: &str| {
        arg.replace("/etc/entragate/policy/mesh.yaml", &policy)
            .replace(
                "/usr/share/entragate/entragate_filter.wasm",
                module.to_str().unwrap(),
            )
            .replace("/run/entragate", run_dir.to_str().unwrap())
    };
    let args: Vec<String> = init[0]["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| moved(a.as_str().unwrap()))
        .collect();
    let out = Command::new(env!("CARGO_BIN_EXE_bootstrap"))
        .args(&args)
        .env_remove("ENTRAGATE_POLICY")
        .env_remove("ENTRAGATE_WASM")
        .output()
        .unwrap();
    assert_ok("the render step", &out);
    // What the agent container is started with exists and names the key render created.
    let agent_config = moved(init[1]["args"][2].as_str().unwrap());
    let toml = std::fs::read_to_string(&agent_config).unwrap();
    let key_path = run_dir.join("agent-key");
    assert!(
        toml.contains(&format!("agent_key_file = \"{}\"", key_path.display())),
        "{toml}"
    );
    let key = std::fs::read_to_string(&key_path).unwrap();
    // What Envoy is started with carries that key and loads the module copied beside it.
    let envoy_config = moved(init[2]["args"][1].as_str().unwrap());
    let envoy = std::fs::read_to_string(&envoy_config).unwrap();
    assert!(
        envoy.contains(key.trim()),
        "Envoy and the agent share the key"
    );
    let copied = run_dir.join("entragate_filter.wasm");
    assert!(
        envoy.contains(&format!("filename: {}", copied.display())),
        "{envoy}"
    );
    assert_eq!(std::fs::read(&copied).unwrap(), b"\0asm\x01\0\0\0");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--format envoy-gateway` through the CLI, per transport mode, against Envoy Gateway's own API rules
/// (envoyproxy/gateway `api/v1alpha1`): what its CRDs' CEL and OpenAPI rules would refuse, asserted.
#[test]
fn envoy_gateway_resources_follow_envoy_gateways_api_in_mtls_and_plaintext() {
    let gateway = |mode: &str| {
        documents(&render(
            "fraud-detector",
            &[
                "--format",
                "envoy-gateway",
                "--namespace",
                "fintech",
                "--gateway",
                "eg",
                "--gateway-namespace",
                "envoy-gateway-system",
                "--wasm-url",
                OCI_URL,
                "--set",
                &format!("transport.mode={mode}"),
            ],
        ))
    };
    let kinds = |docs: &[Value]| -> Vec<String> {
        docs.iter()
            .map(|d| d["kind"].as_str().unwrap().to_string())
            .collect()
    };

    let mtls = gateway("mtls");
    assert_eq!(
        kinds(&mtls),
        [
            "EnvoyExtensionPolicy",
            "EnvoyPatchPolicy",
            "ClientTrafficPolicy"
        ]
    );
    let policy = find(&mtls, "ClientTrafficPolicy");
    assert_eq!(
        policy["apiVersion"].as_str(),
        Some("gateway.envoyproxy.io/v1alpha1")
    );
    // Policy target references are local (LocalPolicyTargetReferenceWithSectionName): the policy must be in
    // the Gateway's namespace. clienttrafficpolicy_types.go's CEL rules: targetRefs of group
    // gateway.networking.k8s.io and kind Gateway or ListenerSet.
    assert_eq!(
        policy["metadata"]["namespace"].as_str(),
        Some("envoy-gateway-system")
    );
    let targets = policy["spec"]["targetRefs"].as_sequence().unwrap();
    assert!(
        policy["spec"]["targetRef"].is_null(),
        "targetRef or targetRefs, not both"
    );
    for target in targets {
        assert_eq!(target["group"].as_str(), Some("gateway.networking.k8s.io"));
        assert!(matches!(
            target["kind"].as_str(),
            Some("Gateway" | "ListenerSet")
        ));
        assert_eq!(target["sectionName"].as_str(), Some("fraud-detector"));
    }
    // tls_types.go: caCertificateRefs MaxItems 8, "a Kubernetes ConfigMap or a Kubernetes Secret, with the
    // CA certificate in a key named `ca.crt`"; a ConfigMap here, so no Secret holding a key is named.
    let validation = &policy["spec"]["tls"]["clientValidation"];
    let refs = validation["caCertificateRefs"].as_sequence().unwrap();
    assert!((1..=8).contains(&refs.len()));
    assert_eq!(refs[0]["group"].as_str(), Some(""));
    assert_eq!(refs[0]["kind"].as_str(), Some("ConfigMap"));
    // Deprecated `optional: true` would let clients without a certificate in; `mode` defaults to
    // RequireAndVerify.
    assert!(validation["optional"].is_null() && validation["mode"].is_null());
    // StringMatch: type in Exact|Prefix|Suffix|RegularExpression, value 1..=1024 characters.
    let sans = validation["subjectAltNames"]["uris"].as_sequence().unwrap();
    assert_eq!(sans.len(), 2, "the two callers of fraud-detector");
    for san in sans {
        assert_eq!(san["type"].as_str(), Some("Exact"));
        let value = san["value"].as_str().unwrap();
        assert!((1..=1024).contains(&value.len()) && value.starts_with("spiffe://"));
    }
    // TLSVersion enum: Auto, 1.0 .. 1.3, a string.
    assert_eq!(policy["spec"]["tls"]["minVersion"].as_str(), Some("1.2"));
    // The Gateway terminates the caller's mTLS, so the filter binds tokens to the caller's workload.
    let config = &find(&mtls, "EnvoyExtensionPolicy")["spec"]["wasm"][0]["config"];
    assert!(config["workload_binding"]["workloads"].is_mapping());

    let plaintext = gateway("plaintext");
    assert_eq!(
        kinds(&plaintext),
        ["EnvoyExtensionPolicy", "EnvoyPatchPolicy"]
    );
    let config = &find(&plaintext, "EnvoyExtensionPolicy")["spec"]["wasm"][0]["config"];
    assert!(
        config["workload_binding"].is_null(),
        "no peer certificate to bind to"
    );
}

/// Every `--format envoy-gateway` rendering (wasm and native, each transport mode, with and without a module
/// image) is accepted by Envoy Gateway's own CRD schemas and CEL rules (v1.9.0, pinned in
/// `validators/envoy-gateway-crds.json`), as the API server would check them on `kubectl apply`; and the
/// validator refuses a native rendering whose module name breaks the CRD's pattern (so it does check).
#[test]
fn envoy_gateway_renderings_pass_envoy_gateways_crd_schemas_and_cel_rules() {
    let Some(python) = validator(entragate_tools::VALIDATORS.bin("python")) else {
        return;
    };
    // A venv made before jsonschema and cel-python were pinned gets them (a no-op when the pins match).
    entragate_tools::pip::ensure(&entragate_tools::VALIDATORS).unwrap();
    let dir = support::temp_dir("envoy-gateway-crds");
    let validate = |name: &str, rendered: &str| {
        let file = write_temp(&dir, name, rendered);
        Command::new(&python)
            .arg(script("envoy_gateway_validate.py"))
            .arg(&file)
            .output()
            .unwrap()
    };
    let base = [
        "--format",
        "envoy-gateway",
        "--namespace",
        "fintech",
        "--gateway-namespace",
        "envoy-gateway-system",
    ];
    let mut native_mtls = String::new();
    for mode in ["mtls", "tls", "plaintext"] {
        let set = format!("transport.mode={mode}");
        let builds: [(&str, Vec<&str>); 3] = [
            ("wasm", vec!["--wasm-url", OCI_URL]),
            ("native", vec!["--filter", "native"]),
            (
                "native-image",
                vec![
                    "--filter",
                    "native",
                    "--native-image",
                    "registry.example.com/entragate/native:0.1.0",
                ],
            ),
        ];
        for (build, extra) in builds {
            let mut args: Vec<&str> = base.to_vec();
            args.extend(extra);
            args.extend(["--set", &set]);
            let rendered = render("fraud-detector", &args);
            let out = validate(&format!("{build}-{mode}.yaml"), &rendered);
            let stdout = assert_ok(&format!("Envoy Gateway's CRDs ({build}, {mode})"), &out);
            let kinds = if mode == "plaintext" { 2 } else { 3 } + usize::from(build != "wasm");
            assert_eq!(stdout.matches(" ok ").count(), kinds, "{stdout}");
            if build == "native" && mode == "mtls" {
                native_mtls = rendered;
            }
        }
    }
    assert!(native_mtls.contains("kind: EnvoyProxy"), "{native_mtls}");
    // It bites: a schema pattern, an unknown field and a CEL rule, each broken once.
    for (from, to, expected) in [
        (
            "name: entragate-native",
            "name: entragate_native",
            "does not match",
        ),
        (
            "filterName: entragate\n",
            "filterName: entragate\n    failOpen: false\n",
            "failOpen: unknown field",
        ),
        (
            "type: Local",
            "type: Remote",
            "If type is Remote, remote field needs to be set",
        ),
    ] {
        let broken = native_mtls.replace(from, to);
        assert_ne!(broken, native_mtls, "{from:?} not in the rendering");
        let out = validate("broken.yaml", &broken);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !out.status.success() && stdout.contains(expected),
            "{expected:?}: {stdout}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

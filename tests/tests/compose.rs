//! `docker-compose.yml` cannot run here (no Docker engine), so this checks
//! that it is consistent with everything it references: files and
//! Dockerfiles exist, images are pinned to the Envoy the project tests with,
//! the packages and binaries the Dockerfiles build exist, service references
//! resolve, and the ports, tenant, client ids and secret names agree with
//! `examples/fintech/mesh.yaml`. Finally the sidecars are rendered exactly
//! as `deploy/compose/render.sh` renders them and validated by the real Envoy.

use std::collections::BTreeSet;
use std::path::Path;

use entragate_tests::repo_root;
use serde_yaml_ng::Value;

fn yaml(path: &str) -> Value {
    let full = repo_root().join(path);
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn text(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn services(compose: &Value) -> Vec<(String, Value)> {
    compose["services"]
        .as_mapping()
        .expect("services")
        .iter()
        .map(|(k, v)| (k.as_str().expect("name").to_string(), v.clone()))
        .collect()
}

fn command_words(service: &Value) -> Vec<String> {
    service["command"]
        .as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn mesh_str(mesh: &Value, path: &[&str]) -> String {
    let mut node = mesh;
    for key in path {
        node = &node[*key];
    }
    match node {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("mesh.yaml {}: {other:?}", path.join(".")),
    }
}

#[test]
fn referenced_files_dockerfiles_and_services_exist() {
    let compose = yaml("docker-compose.yml");
    let all = services(&compose);
    let names: BTreeSet<String> = all.iter().map(|(n, _)| n.clone()).collect();
    let volumes: BTreeSet<String> = compose["volumes"]
        .as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut problems = Vec::new();
    for (name, service) in &all {
        if let Some(dockerfile) = service["build"]["dockerfile"].as_str() {
            if !repo_root().join(dockerfile).is_file() {
                problems.push(format!("{name}: dockerfile {dockerfile} missing"));
            }
        }
        if service["build"].is_null() && service["image"].is_null() {
            problems.push(format!("{name}: neither build nor image"));
        }
        for mount in service["volumes"].as_sequence().into_iter().flatten() {
            let mount = mount.as_str().expect("short volume syntax");
            let source = mount.split(':').next().unwrap_or("");
            if let Some(relative) = source.strip_prefix("./") {
                if !repo_root().join(relative).exists() {
                    problems.push(format!("{name}: mounted {source} does not exist"));
                }
            } else if !volumes.contains(source) {
                problems.push(format!("{name}: volume {source} not declared"));
            }
        }
        if let Some(mode) = service["network_mode"].as_str() {
            let target = mode.strip_prefix("service:").unwrap_or(mode);
            if !names.contains(target) {
                problems.push(format!("{name}: network_mode refers to unknown {target}"));
            }
        }
        for dependency in service["depends_on"].as_mapping().into_iter().flatten() {
            let dependency = dependency.0.as_str().unwrap_or("");
            if !names.contains(dependency) {
                problems.push(format!("{name}: depends_on unknown {dependency}"));
            }
        }
        if let Some(image) = service["image"].as_str() {
            if image.starts_with("envoyproxy/envoy") && image != tested_envoy_image() {
                problems.push(format!(
                    "{name}: Envoy image {image} is not the tested {}",
                    entragate_tools::ENVOY_VERSION
                ));
            }
        }
    }
    // Images built by one service and used by others must be built somewhere.
    for (name, service) in &all {
        if let Some(image) = service["image"].as_str().filter(|i| i.ends_with(":dev")) {
            let built = all
                .iter()
                .any(|(_, s)| s["image"].as_str() == Some(image) && !s["build"].is_null());
            if !built {
                problems.push(format!("{name}: image {image} is built by no service"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "docker-compose.yml:\n{}",
        problems.join("\n")
    );
}

/// The image of the Envoy every test runs (pinned once, in `xtask/tools`).
fn tested_envoy_image() -> String {
    format!("envoyproxy/envoy:v{}", entragate_tools::ENVOY_VERSION)
}

/// What `bootstrap render --format ecs|kubernetes` puts into a task or pod by default is the tested Envoy.
#[test]
fn the_rendered_default_envoy_image_is_the_tested_one() {
    assert_eq!(
        entragate_mesh::render::workload::DEFAULT_ENVOY_IMAGE,
        tested_envoy_image()
    );
}

#[test]
fn dockerfiles_build_packages_and_binaries_that_exist() {
    let workspace = text("Cargo.toml");
    let mut checked = 0;
    for entry in std::fs::read_dir(repo_root().join("deploy/docker")).expect("deploy/docker") {
        let path = entry.expect("entry").path();
        let dockerfile = std::fs::read_to_string(&path).expect("read");
        let words: Vec<&str> = dockerfile.split_whitespace().collect();
        for pair in words.windows(2) {
            match pair[0] {
                "-p" => {
                    let package = pair[1];
                    let manifest = workspace_member_manifest(&workspace, package);
                    assert!(
                        manifest.is_some(),
                        "{}: package {package} is not a workspace member",
                        path.display()
                    );
                    checked += 1;
                }
                "--bin" => {
                    let bin = pair[1];
                    assert!(
                        repo_root()
                            .join(format!("tests/src/bin/{bin}.rs"))
                            .is_file(),
                        "{}: binary {bin} not found",
                        path.display()
                    );
                }
                _ => {}
            }
        }
        assert!(
            dockerfile.contains("--locked"),
            "{}: builds must use Cargo.lock (--locked)",
            path.display()
        );
    }
    assert!(
        checked >= 4,
        "expected the Dockerfiles to build the project's packages"
    );
}

/// The manifest path of workspace member `package`, if any.
fn workspace_member_manifest(workspace: &str, package: &str) -> Option<std::path::PathBuf> {
    let members = workspace.lines().find(|l| l.starts_with("members"))?;
    members
        .split('"')
        .skip(1)
        .step_by(2)
        .map(|member| repo_root().join(member).join("Cargo.toml"))
        .find(|manifest| {
            std::fs::read_to_string(manifest)
                .map(|t| t.contains(&format!("name = \"{package}\"")))
                .unwrap_or(false)
        })
}

#[test]
fn ids_ports_and_secrets_agree_with_the_mesh_policy() {
    let compose = yaml("docker-compose.yml");
    let mesh = yaml("examples/fintech/mesh.yaml");
    let all: std::collections::BTreeMap<String, Value> = services(&compose).into_iter().collect();
    let tenant = mesh_str(&mesh, &["identity_provider", "tenant_id"]);
    let api = mesh_str(
        &mesh,
        &["services", "fraud-detector", "application", "client_id"],
    );
    let api_uri = mesh_str(
        &mesh,
        &["services", "fraud-detector", "application", "app_id_uri"],
    );
    let processor = mesh_str(
        &mesh,
        &[
            "services",
            "transaction-processor",
            "application",
            "client_id",
        ],
    );
    let reporting = mesh_str(
        &mesh,
        &["services", "reporting", "application", "client_id"],
    );

    let idp = command_words(&all["idp"]);
    assert!(
        idp.contains(&format!("--tenant={tenant}")),
        "idp tenant: {idp:?}"
    );
    assert!(
        idp.contains(&format!("--api={api}={api_uri}")),
        "idp api: {idp:?}"
    );
    assert!(
        idp.iter()
            .any(|a| a.starts_with(&format!("--client={processor}:"))
                && a.ends_with(&format!("{api}=Fraud.Scan"))),
        "the Transaction Processor must be granted Fraud.Scan: {idp:?}"
    );
    assert!(
        idp.iter()
            .any(|a| a.starts_with(&format!("--client={reporting}:")) && !a.contains("Fraud.Scan")),
        "Reporting must not have Fraud.Scan: {idp:?}"
    );

    // Secrets seeded in LocalStack: the names the policy references, with the IdP's client secrets.
    let init = text("deploy/compose/localstack-init.sh");
    for service in ["transaction-processor", "reporting"] {
        let reference = mesh_str(&mesh, &["services", service, "identity", "secret"]);
        let name = reference
            .strip_prefix("aws-secretsmanager:")
            .expect("aws-secretsmanager: reference");
        assert!(
            init.contains(&format!("--name {name}")),
            "{name} not seeded"
        );
        let client = mesh_str(&mesh, &["services", service, "application", "client_id"]);
        let secret = idp
            .iter()
            .find_map(|a| a.strip_prefix(&format!("--client={client}:")))
            .and_then(|rest| rest.split(':').next())
            .expect("client secret in idp args");
        assert!(
            init.contains(&format!(
                "\\\"ClientId\\\":\\\"{client}\\\",\\\"ClientSecret\\\":\\\"{secret}\\\""
            )),
            "{service}: secret in LocalStack differs from the IdP's"
        );
    }
    assert!(
        init.contains(&tenant),
        "LocalStack secrets name another tenant"
    );

    // Ports: published inbound listener, the app's sidecar URL, the IdP address.
    let inbound = mesh_str(&mesh, &["services", "fraud-detector", "ports", "inbound"]);
    let published: Vec<String> = all["idp"]["ports"]
        .as_sequence()
        .expect("ports")
        .iter()
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect();
    assert!(
        published.contains(&format!("{inbound}:{inbound}")),
        "inbound {inbound} not published: {published:?}"
    );
    let outbound = mesh_str(
        &mesh,
        &["services", "transaction-processor", "ports", "outbound"],
    );
    let processor_cmd = command_words(&all["transaction-processor"]);
    assert!(
        processor_cmd.contains(&format!("http://127.0.0.1:{outbound}")),
        "{processor_cmd:?}"
    );
    let app = mesh_str(&mesh, &["services", "fraud-detector", "ports", "app"]);
    assert!(command_words(&all["fraud-detector"]).contains(&format!("127.0.0.1:{app}")));
    let render = text("deploy/compose/render.sh");
    let idp_port = idp
        .iter()
        .find_map(|a| a.strip_prefix("--listen="))
        .and_then(|a| a.rsplit(':').next())
        .expect("idp --listen");
    assert!(
        render.contains(&format!(
            "identity_provider.authority=http://127.0.0.1:{idp_port}"
        )),
        "render.sh authority"
    );

    // Every config a container loads is one render.sh writes.
    for (name, service) in &all {
        for word in command_words(service) {
            if let Some(file) = word.strip_prefix("/config/") {
                let rendered = file
                    .strip_suffix(".envoy.yaml")
                    .or_else(|| file.strip_suffix(".bootstrap.toml"))
                    .unwrap_or_else(|| panic!("{name}: unexpected config {word}"));
                assert!(
                    render.contains(rendered),
                    "{name}: {word} is not rendered by render.sh"
                );
                assert!(
                    !mesh["services"][rendered].is_null(),
                    "{name}: {rendered} is not in mesh.yaml"
                );
            }
        }
    }
}

#[test]
fn sidecars_rendered_as_compose_renders_them_pass_envoy_validation() {
    if !entragate_tests::envoy_available(
        "sidecars_rendered_as_compose_renders_them_pass_envoy_validation",
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let script = text("deploy/compose/render.sh");
    let sets: Vec<String> = script
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "--set")
        .map(|w| w[1].to_string())
        .collect();
    assert!(!sets.is_empty(), "render.sh has no --set overrides");
    for service in ["fraud-detector", "transaction-processor", "reporting"] {
        assert!(
            script.contains(service),
            "render.sh does not render {service}"
        );
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_bootstrap_for_tests"));
        command
            .args(["render", "--policy"])
            .arg(repo_root().join("examples/fintech/mesh.yaml"))
            .args(["--service", service, "--format", "envoy", "--wasm"])
            .arg(entragate_tests::wasm_path().expect("wasm"))
            .arg("--set")
            .arg(format!(
                "services.{service}.sidecar.agent_key_file={}",
                dir.path().join(format!("{service}.agent-key")).display()
            ))
            .arg("--out")
            .arg(dir.path());
        // render.sh's own overrides, except its key-file path (a /config path here).
        for set in sets.iter().filter(|s| !s.contains("agent_key_file")) {
            command.args(["--set", set]);
        }
        let output = command.output().expect("bootstrap render");
        assert!(
            output.status.success(),
            "{service}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let config = std::fs::read_to_string(dir.path().join(format!("{service}.envoy.yaml")))
            .expect("rendered");
        // Compose mounts everything at /config; here the files sit in the temp folder.
        entragate_tests::Envoy::validate(&config).unwrap_or_else(|e| panic!("{service}: {e}"));
        assert!(Path::new(&dir.path().join(format!("{service}.envoy.yaml"))).exists());
    }
}

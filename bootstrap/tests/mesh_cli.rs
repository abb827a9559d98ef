//! `bootstrap check` and `bootstrap render` as a user runs them: output, files written, exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is the point

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/fintech/mesh.yaml")
}

fn bootstrap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bootstrap"))
        .args(args)
        .env_remove("ENTRAGATE_POLICY")
        .env_remove("ENTRAGATE_WASM")
        .output()
        .expect("running bootstrap")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn check_prints_the_table_and_exits_zero() {
    let policy = example();
    let out = bootstrap(&["check", "--policy", policy.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(
            "transaction-processor  secret     -> fraud-detector  POST     /fraud/analyze     role Fraud.Scan"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("warning: services.fraud-detector.rules[0]: anonymous route"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "warning: services.transaction-processor.identity.secret: a client secret can leak"
        ),
        "{stdout}"
    );
}

#[test]
fn check_lists_every_error_and_exits_6() {
    let dir = support::temp_dir("mesh-check");
    let bad = dir.join("mesh.yaml");
    let text_in = std::fs::read_to_string(example())
        .unwrap()
        .replace(
            "allowed_callers: [reporting]",
            "allowed_callers: [reportin]",
        )
        .replace("roles: [Fraud.Scan]", "roles: [Fraud.Scan, Fraud.Admin]");
    std::fs::write(&bad, text_in).unwrap();
    let out = bootstrap(&["check", "--policy", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let file = bad.display();
    assert!(
        stderr.contains(&format!(
            "error: {file}: services.fraud-detector.rules[1].roles[1]: role `Fraud.Admin`"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("error: {file}: services.fraud-detector.rules[2].allowed_callers[0]: unknown caller `reportin`")),
        "{stderr}"
    );
    assert!(stderr.contains("mesh policy error: 2 error(s)"), "{stderr}");
    assert!(out.stdout.is_empty(), "no table for an invalid policy");
}

#[test]
fn render_writes_the_sidecar_the_agent_config_and_a_private_agent_key() {
    let dir = support::temp_dir("mesh-render");
    let wasm = dir.join("entragate_filter.wasm");
    std::fs::write(&wasm, b"\0asm\x01\0\0\0").unwrap();
    let key_file = dir.join("agent-key");
    let out_dir = dir.join("out");
    let policy = example();
    let args = [
        "render",
        "--policy",
        policy.to_str().unwrap(),
        "--service",
        "transaction-processor",
        "--format",
        "envoy",
        "--wasm",
        wasm.to_str().unwrap(),
        "--agent-key-file",
        key_file.to_str().unwrap(),
        "--set",
        "services.transaction-processor.ports.outbound=16001",
        "--out",
        out_dir.to_str().unwrap(),
    ];
    let out = bootstrap(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sidecar = out_dir.join("transaction-processor.envoy.yaml");
    let rendered = std::fs::read_to_string(&sidecar).unwrap();
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(mode(&key_file), 0o600, "the agent key file is private");
    assert_eq!(
        mode(&sidecar),
        0o600,
        "the sidecar config carries the key: private"
    );
    assert!(
        rendered.contains(key.trim()),
        "the sidecar carries the agent key"
    );
    assert!(rendered.contains("port_value: 16001"), "--set applies");
    let agent =
        entragate_bootstrap::config::load(&out_dir.join("transaction-processor.bootstrap.toml"))
            .unwrap();
    assert_eq!(
        agent.secret_id.as_deref(),
        Some("fintech/transaction-processor/identity")
    );
    assert_eq!(agent.listen.as_deref(), Some("127.0.0.1:15901"));
    // Rendering again reuses the key and gives the same bytes.
    assert!(bootstrap(&args).status.success());
    assert_eq!(std::fs::read_to_string(&sidecar).unwrap(), rendered);

    // An unknown service is a usage error (2).
    let out = bootstrap(&[
        "render",
        "--policy",
        policy.to_str().unwrap(),
        "--service",
        "nope",
        "--wasm",
        wasm.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no service `nope`"));
}

/// Istio (`pkg/wasm/imagefetcher.go`) and Envoy Gateway (`code.image.sha256`) verify an `oci://` module
/// against the image manifest digest: the file's hash there refuses every request. So for `oci://` the
/// digest is an input and the file is never hashed for it.
#[test]
fn render_takes_an_oci_modules_digest_never_the_files_hash() {
    let dir = support::temp_dir("mesh-render-oci");
    let wasm = dir.join("entragate_filter.wasm");
    std::fs::write(&wasm, b"\0asm\x01\0\0\0").unwrap();
    let file_hash = entragate_mesh::render::wasm::sha256_hex(b"\0asm\x01\0\0\0");
    let digest = "ab".repeat(32);
    let policy = example();
    let base = [
        "render",
        "--policy",
        policy.to_str().unwrap(),
        "--service",
        "fraud-detector",
        "--namespace",
        "fintech",
    ];
    for format in ["istio", "envoy-gateway"] {
        // The documented mistake: a local file with an OCI url. Refused, naming the fix.
        let mut args = base.to_vec();
        args.extend(["--format", format, "--wasm", wasm.to_str().unwrap()]);
        args.extend([
            "--wasm-url",
            "oci://registry.example.com/entragate-filter:0.1.0",
        ]);
        let out = bootstrap(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{format}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("--wasm-digest"),
            "{}",
            text(&out.stderr)
        );

        let with_digest = format!("sha256:{digest}");
        args.extend(["--wasm-digest", &with_digest]);
        let out = bootstrap(&args);
        assert!(out.status.success(), "{format}: {}", text(&out.stderr));
        let rendered = text(&out.stdout);
        assert!(
            rendered.contains(&format!("sha256: {digest}")),
            "{rendered}"
        );
        assert!(
            !rendered.contains(&file_hash),
            "{format}: the file's hash leaked in"
        );

        // A pinned url needs no file at all.
        let pinned = format!("oci://registry.example.com/entragate-filter@sha256:{digest}");
        let mut args = base.to_vec();
        args.extend(["--format", format, "--wasm-url", &pinned]);
        let out = bootstrap(&args);
        assert!(out.status.success(), "{format}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains(&format!("sha256: {digest}")));
    }
    // A digest is for OCI images only.
    let mut args = base.to_vec();
    args.extend(["--format", "istio", "--wasm", wasm.to_str().unwrap()]);
    args.extend([
        "--wasm-url",
        "https://artifacts.example.com/f.wasm",
        "--wasm-digest",
    ]);
    let with_digest = format!("sha256:{digest}");
    args.push(&with_digest);
    let out = bootstrap(&args);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("oci://"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--filter native`: the callee and the caller render with the dynamic module (no --wasm needed: Envoy
/// finds the `.so` by name; the callee keeps its workload binding under mtls; the caller's agent key is
/// created as for wasm), and so does the Envoy Gateway callee; what the module cannot do yet is a usage
/// error naming the option.
#[test]
fn render_filter_native_renders_both_roles_and_refuses_what_the_module_cannot_do() {
    let dir = support::temp_dir("mesh-render-native");
    let policy = example();
    let policy = policy.to_str().unwrap();
    let render = |extra: &[&str]| {
        let mut args = vec!["render", "--policy", policy, "--filter", "native"];
        args.extend_from_slice(extra);
        bootstrap(&args)
    };
    let out = render(&[
        "--service",
        "fraud-detector",
        "--set",
        "transport.mode=plaintext",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rendered = text(&out.stdout);
    assert!(rendered.contains("DynamicModuleFilter"), "{rendered}");
    assert!(
        rendered.contains("ENVOY_DYNAMIC_MODULES_SEARCH_PATH"),
        "{rendered}"
    );

    // The example's mtls binds the rules to the peer workload: rendered, binding included.
    let out = render(&["--service", "fraud-detector"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rendered = text(&out.stdout);
    assert!(rendered.contains("workload_binding"), "{rendered}");
    assert!(rendered.contains("DynamicModuleFilter"), "{rendered}");

    let key_file = dir.join("agent-key");
    let out = render(&[
        "--service",
        "transaction-processor",
        "--set",
        "transport.mode=plaintext",
        "--agent-key-file",
        key_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rendered = text(&out.stdout);
    assert!(rendered.contains("DynamicModuleFilter"), "{rendered}");
    assert!(
        rendered.contains("filter_name: entragate_outbound"),
        "{rendered}"
    );
    assert!(key_file.exists(), "the caller's agent key was created");

    // Envoy Gateway: the dynamicModule policy and the EnvoyProxy that allow-lists it, no --wasm needed.
    let out = render(&["--service", "fraud-detector", "--format", "envoy-gateway"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rendered = text(&out.stdout);
    assert!(rendered.contains("dynamicModule:"), "{rendered}");
    assert!(rendered.contains("kind: EnvoyProxy"), "{rendered}");
    assert!(rendered.contains("VERSION CAVEAT"), "{rendered}");

    let out = render(&["--service", "fraud-detector", "--format", "istio"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--filter native renders --format envoy and envoy-gateway only"),
        "{}",
        text(&out.stderr)
    );
    // --native-image only means something for the Envoy Gateway rendering.
    let out = render(&[
        "--service",
        "fraud-detector",
        "--native-image",
        "r.example/m:1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--native-image is for --format envoy-gateway"),
        "{}",
        text(&out.stderr)
    );
}

//! The mesh-wide policy (`mesh.yaml`): YAML text -> validated `MeshPolicy`
//! -> every sidecar's rendered configuration (the `entragate-mesh` crate,
//! `mesh/`, which has no AWS SDK: what is fuzzed is exactly what ships).
//!
//! Oracles: no panic on any input; a rejected policy has at least one error
//! and every error has a message; a policy that validates renders, for every
//! service, as an Envoy bootstrap and, for a callee, as Istio and Envoy
//! Gateway resources (a validated policy that cannot be rendered
//! means validation let something through that the renderer refuses); each
//! rendering is valid YAML and identical when repeated (deterministic,
//! diff-friendly output); the who-can-call-whom table renders.
#![no_main]

use entragate_mesh as mesh;
use libfuzzer_sys::fuzz_target;
use mesh::render::envoy::{self, EnvoyOptions, FilterModule};
use mesh::render::envoy_gateway::{self, GatewayFilter, GatewayOptions, NativeProxy};
use mesh::render::istio::{self, KubeOptions};
use mesh::render::wasm::WasmModule;

/// Renders `f` twice and checks the text is YAML and stable.
fn rendered(what: &str, service: &str, f: impl Fn() -> Result<String, String>) {
    let first = f().unwrap_or_else(|e| {
        panic!("validated policy, but `{service}` does not render as {what}: {e}")
    });
    assert_eq!(
        Some(&first),
        f().ok().as_ref(),
        "{what} rendering of `{service}` is not deterministic"
    );
    for document in serde_yaml_ng::Deserializer::from_str(&first) {
        if let Err(e) = <serde_yaml_ng::Value as serde::Deserialize>::deserialize(document) {
            panic!("{what} rendering of `{service}` is not YAML: {e}\n{first}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let policy = match mesh::from_str(&text, "mesh.yaml", &[]) {
        Ok(policy) => policy,
        Err(errors) => {
            let lines = errors.lines();
            assert!(!lines.is_empty(), "rejected without an error");
            for line in lines {
                assert!(line.len() > "mesh.yaml:".len(), "an empty error: {line:?}");
            }
            return;
        }
    };
    // Where each format loads the module from, as `bootstrap render` requires: a file for
    // Envoy, a registry for Kubernetes (Envoy Gateway fetches only over HTTP(S) or OCI).
    let module = |reference: &str| WasmModule {
        reference: reference.into(),
        sha256: "0".repeat(64),
    };
    let wasm = module("/etc/envoy/entragate_filter.wasm");
    let kube = KubeOptions {
        namespace: "default".into(),
        wasm: module("oci://registry.example/entragate-filter:1.0.0"),
    };
    for service in policy.services() {
        let name = service.name.as_str();
        let agent_key = service.is_caller().then(|| "ab".repeat(32));
        let envoy_options = EnvoyOptions {
            filter: FilterModule::Wasm(wasm.clone()),
            agent_key: agent_key.clone(),
        };
        rendered("envoy", name, || {
            envoy::render(&policy, service, &envoy_options)
        });
        // The native module may refuse what it does not support yet (an
        // error naming it); what it renders obeys the same oracles.
        let native_options = EnvoyOptions {
            filter: FilterModule::Native,
            agent_key,
        };
        if envoy::render(&policy, service, &native_options).is_ok() {
            rendered("envoy (native)", name, || {
                envoy::render(&policy, service, &native_options)
            });
        }
        let gateway = GatewayOptions {
            namespace: kube.namespace.clone(),
            filter: GatewayFilter::Wasm(kube.wasm.clone()),
            gateway: "eg".into(),
            gateway_namespace: "envoy-gateway-system".into(),
        };
        let native_gateway = GatewayOptions {
            filter: GatewayFilter::Native(NativeProxy {
                envoy_image: "envoyproxy/envoy:v1.40.0".into(),
                module_image: None,
            }),
            ..gateway.clone()
        };
        if service.is_callee() {
            rendered("istio", name, || istio::render(&policy, service, &kube));
            rendered("envoy-gateway", name, || {
                envoy_gateway::render(&policy, service, &gateway)
            });
            rendered("envoy-gateway (native)", name, || {
                envoy_gateway::render(&policy, service, &native_gateway)
            });
        } else {
            // The Kubernetes formats render the validating (callee) side only
            // (docs/mesh-policy.md); a pure caller must get an error, not an
            // empty policy that validates nothing.
            assert!(istio::render(&policy, service, &kube).is_err());
            assert!(envoy_gateway::render(&policy, service, &gateway).is_err());
        }
        if let Some(agent) = envoy::agent_config(&policy, service, "/run/entragate/agent.key") {
            if let Err(e) = toml::from_str::<toml::Table>(&agent) {
                panic!("agent config of `{name}` is not TOML: {e}\n{agent}");
            }
        }
    }
    let _ = mesh::table::render(&policy);
});

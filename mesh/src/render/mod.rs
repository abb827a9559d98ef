//! Rendering a service's sidecar configuration from the policy.
//!
//! - [`envoy`]: a complete Envoy bootstrap (inbound validating listener, outbound token-attaching listener,
//!   JWKS and agent clusters, admin on loopback);
//! - [`istio`]: a `WasmPlugin` and the `ServiceEntry`/`DestinationRule` for the Entra host;
//! - [`envoy_gateway`]: an `EnvoyExtensionPolicy`, the `EnvoyPatchPolicy` adding the JWKS cluster and, unless
//!   plaintext, the `ClientTrafficPolicy` with the callee listener's TLS and mTLS settings (with the native
//!   module, a `dynamicModule` extension and the `EnvoyProxy` that allow-lists it);
//! - [`ecs`] and [`kubernetes`]: the service with its sidecars ([`workload`]) as an ECS task definition or
//!   as Kubernetes objects.
//!
//! Output is deterministic: document order, no timestamps, the same bytes for the same inputs.

pub mod access_log;
pub mod ecs;
pub mod envoy;
pub mod envoy_gateway;
pub mod istio;
pub mod kubernetes;
pub mod transport;
pub mod wasm;
pub mod workload;
pub mod yaml;

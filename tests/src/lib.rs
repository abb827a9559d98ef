//! Integration-test harness for entragate.
//!
//! Three pieces, each a real network service on `127.0.0.1` (port 0, so tests
//! run in parallel without port clashes), each stopped on drop, including when
//! a test panics:
//!
//! - [`Idp`]: a local identity provider with Entra ID's URL layout and
//!   document shapes (discovery, JWKS, client-credentials token endpoint),
//!   an in-process token minting API for valid and malicious tokens, key
//!   rotation, fault injection and request counters.
//! - [`Echo`]: an upstream that answers with a JSON description of the
//!   request it got (method, path, headers), and remembers it.
//! - [`Envoy`]: the real Envoy (installed by `cargo xtask setup`) started from
//!   a config template, with access to its admin API, stats and logs.
//!
//! Tests never sleep to synchronise: servers are listening when their
//! constructor returns, Envoy is awaited through its admin `/ready`, and
//! asynchronous effects are awaited with [`wait_until`]/[`wait_for`].
//!
//! Environment:
//!
//! | variable | effect |
//! |---|---|
//! | `ENTRAGATE_ENVOY` | Envoy binary (default: the one `cargo xtask setup` put in `.cache/`) |
//! | `ENTRAGATE_WASM` | filter wasm (default: `<target>/wasm32-wasip1/release/entragate_filter.wasm`) |
//! | `ENTRAGATE_REQUIRE_ENVOY` | a missing Envoy (or, in `bootstrap/tests/platforms.rs`, a missing platform validator) fails tests instead of skipping them (`cargo xtask test`, CI) |
//! | `ENTRAGATE_KEEP_ENVOY_DIR` | keep each Envoy's rendered config and log after the test |
//! | `ENTRAGATE_FRESH_KEYS` | generate every IdP key anew instead of using `.cache/test-keys/` |
//!
//! A typical filter test:
//!
//! ```no_run
//! use entragate_tests::{Echo, Envoy, Idp, TemplateVars};
//!
//! # async fn t(template: &str) -> anyhow::Result<()> {
//! if !entragate_tests::envoy_available("my_test") {
//!     return Ok(());
//! }
//! let idp = Idp::start()?;
//! let echo = Echo::start()?;
//! let vars = TemplateVars::new()
//!     .set("IDP_PORT", idp.port())
//!     .set("ECHO_PORT", echo.port())
//!     .json_string("PLUGIN_CONFIG", &serde_json::json!({ "tenant_id": idp.tenant_id() }));
//! let envoy = Envoy::start(template, vars).await?; // e.g. include_str!() of a YAML template
//!
//! let token = idp.app_token_v2().build();
//! let response = entragate_tests::http_client()
//!     .get(envoy.url("/api"))
//!     .bearer_auth(token)
//!     .send()
//!     .await?;
//! assert_eq!(response.status(), 200);
//! # Ok(()) }
//! ```

mod echo;
mod envoy;
pub mod filter_host;
mod idp;
mod inspect;
pub mod moto;
pub mod policy;
pub mod process;
mod server;
pub mod sts;
mod util;

pub use echo::{Echo, EchoedRequest};
pub use envoy::{
    envoy_available, envoy_binary, native_module_path, render, wasm_path, Envoy, EnvoyOptions,
    TemplateVars, ENVOY_ENV, KEEP_ENV, NATIVE_MODULE_ENV, REQUIRE_ENVOY_ENV, WASM_ENV,
};
pub use filter_host::{FilterHost, FILTER_HOST_ENV};
pub use idp::{
    ids, random_uuid, unix_now, ApiApp, ClientApp, Counters, Endpoint, Fault, FederatedCredential,
    Idp, IdpBuilder, Rotation, Signature, SigningKey, TokenBuilder, TokenRequest, TokenVersion,
    KEY_BITS,
};
pub use inspect::{decode_jwt, jwk_public_key, verify_rs256, x5c_thumbprint, DecodedJwt};
pub use util::{free_port, free_ports, http_client, repo_root, unused_addr, wait_for, wait_until};

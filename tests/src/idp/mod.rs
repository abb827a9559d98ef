//! A local identity provider that speaks Entra ID's protocol shapes.
//!
//! It serves, for any known tenant (plus `common`/`organizations`):
//! - `GET /{tenant}/v2.0/.well-known/openid-configuration`
//! - `GET /{tenant}/discovery/v2.0/keys` (and v1 `/{tenant}/discovery/keys`)
//! - `POST /{tenant}/oauth2/v2.0/token` (client credentials)
//!
//! and lets tests mint tokens in-process, rotate keys, inject faults and
//! count requests. Keys are generated at runtime (and cached across test
//! processes, see `keypool.rs`): by default one standby key
//! is published *before* the signing key, so a verifier that just takes the
//! first JWKS entry fails.
//!
//! Issuers default to the real Entra hosts (`https://login.microsoftonline.com/{tid}/v2.0`,
//! `https://sts.windows.net/{tid}/`), because the filter is configured with
//! an authority and validates `iss` against it independently of where keys are
//! fetched from. [`Idp::set_authority`] points issuers elsewhere (for example
//! at [`Idp::base_url`]).

mod claims;
mod client_assertion;
mod errors;
mod faults;
pub mod ids;
mod keypool;
mod keys;
mod model;
pub(crate) mod random;
mod routes;
mod state;
mod token;
mod token_endpoint;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::Value;

pub use faults::{Endpoint, Fault};
pub(crate) use keypool::next_key;
pub use keys::SigningKey;
pub use model::{ApiApp, ClientApp, FederatedCredential, TokenVersion};
pub use random::{now as unix_now, uuid as random_uuid};
pub use state::TokenRequest;
pub use token::{Signature, TokenBuilder};

use crate::server::Server;
use crate::util::wait_until;
use model::Directory;
use state::{lock, KeySet, RequestCounters, State};

/// Size of the keys Entra uses.
pub const KEY_BITS: usize = 2048;

/// What happens to the previous signing key on [`Idp::rotate_keys`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The old key stays published (tokens it signed still verify), as
    /// Entra does during a rollover.
    KeepOld,
    /// The old key disappears from the JWKS (an emergency revocation).
    RemoveOld,
}

/// Requests received per endpoint (faulty answers included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub discovery: u64,
    pub jwks: u64,
    pub token: u64,
}

/// Options for [`Idp::builder`].
#[derive(Debug)]
pub struct IdpBuilder {
    tenant: String,
    standby_keys: usize,
    bind: std::net::SocketAddr,
}

impl IdpBuilder {
    /// The default tenant (`tid` of minted tokens).
    pub fn tenant(mut self, tenant: &str) -> Self {
        self.tenant = tenant.to_string();
        self
    }

    /// How many extra (non-signing) keys are published ahead of the signing
    /// key. Default 1.
    pub fn standby_keys(mut self, n: usize) -> Self {
        self.standby_keys = n;
        self
    }

    /// The address to listen on. Default `127.0.0.1:0`; only the standalone
    /// `idp` binary (docker-compose) binds elsewhere.
    pub fn bind(mut self, bind: std::net::SocketAddr) -> Self {
        self.bind = bind;
        self
    }

    pub fn start(self) -> anyhow::Result<Idp> {
        let mut published = Vec::new();
        for _ in 0..self.standby_keys {
            published.push(Arc::new(keypool::next_key()?));
        }
        let current = Arc::new(keypool::next_key()?);
        published.push(Arc::clone(&current));

        let state = Arc::new(State {
            directory: Mutex::new(Directory::new(&self.tenant)),
            keys: Mutex::new(KeySet { published, current }),
            faults: Mutex::default(),
            counters: RequestCounters::default(),
            token_log: Mutex::default(),
            issued: Mutex::default(),
            seen_jti: Mutex::default(),
            base_url: OnceLock::new(),
        });
        let server = Server::start_on(
            "idp",
            self.bind,
            routes::IdpHandler {
                state: Arc::clone(&state),
            },
        )?;
        let _ = state.base_url.set(format!("http://{}", server.addr()));
        Ok(Idp { server, state })
    }
}

/// A running local IdP; stops when dropped.
pub struct Idp {
    server: Server,
    state: Arc<State>,
}

impl std::fmt::Debug for Idp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idp")
            .field("addr", &self.server.addr())
            .finish_non_exhaustive()
    }
}

impl Idp {
    /// Starts an IdP with the defaults of [`ids`].
    pub fn start() -> anyhow::Result<Idp> {
        Idp::builder().start()
    }

    pub fn builder() -> IdpBuilder {
        IdpBuilder {
            tenant: ids::TENANT_ID.to_string(),
            standby_keys: 1,
            bind: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }

    // ---- addresses ----

    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }

    pub fn port(&self) -> u16 {
        self.server.addr().port()
    }

    /// `http://127.0.0.1:<port>`
    pub fn base_url(&self) -> String {
        self.state.base_url().to_string()
    }

    /// The default tenant ID.
    pub fn tenant_id(&self) -> String {
        lock(&self.state.directory).default_tenant().to_string()
    }

    /// Path of the tenant's JWKS on this server: `/{tenant}/discovery/v2.0/keys`.
    pub fn jwks_path(&self) -> String {
        format!("/{}/discovery/v2.0/keys", self.tenant_id())
    }

    pub fn jwks_uri(&self) -> String {
        format!("{}{}", self.base_url(), self.jwks_path())
    }

    pub fn discovery_url(&self) -> String {
        format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            self.base_url(),
            self.tenant_id()
        )
    }

    pub fn token_endpoint(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.base_url(), self.tenant_id())
    }

    /// `iss` of v2 tokens for the default tenant.
    pub fn issuer_v2(&self) -> String {
        let directory = lock(&self.state.directory);
        directory.issuer_v2(directory.default_tenant())
    }

    /// `iss` of v1 tokens for the default tenant.
    pub fn issuer_v1(&self) -> String {
        let directory = lock(&self.state.directory);
        directory.issuer_v1(directory.default_tenant())
    }

    // ---- directory ----

    /// Authority of v2 issuers (default `https://login.microsoftonline.com`);
    /// affects discovery, JWKS `issuer` members and new tokens.
    pub fn set_authority(&self, authority: &str) {
        lock(&self.state.directory).authority = authority.trim_end_matches('/').to_string();
    }

    /// Authority of v1 issuers (default `https://sts.windows.net`).
    pub fn set_v1_authority(&self, authority: &str) {
        lock(&self.state.directory).v1_authority = authority.trim_end_matches('/').to_string();
    }

    /// Accept another tenant ID in URLs (tokens still default to the first).
    pub fn add_tenant(&self, tenant: &str) {
        lock(&self.state.directory).tenants.push(tenant.to_string());
    }

    /// Adds (or replaces, by app ID) a protected API.
    pub fn register_api(&self, api: ApiApp) {
        let mut directory = lock(&self.state.directory);
        directory.apis.retain(|a| a.app_id != api.app_id);
        directory.apis.push(api);
    }

    /// Adds (or replaces, by client ID) a confidential client.
    pub fn register_client(&self, client: ClientApp) {
        let mut directory = lock(&self.state.directory);
        directory
            .clients
            .retain(|c| c.client_id != client.client_id);
        directory.clients.push(client);
    }

    /// Adds a federated identity credential to the app `client_id`.
    pub fn add_federated_credential(&self, client_id: &str, credential: FederatedCredential) {
        lock(&self.state.directory)
            .federated
            .push((client_id.to_string(), credential));
    }

    /// Removes every federated identity credential of `client_id` (revokes the federation).
    pub fn remove_federated_credentials(&self, client_id: &str) {
        lock(&self.state.directory)
            .federated
            .retain(|(c, _)| c != client_id);
    }

    /// Registers a certificate (DER) on the app `client_id`.
    pub fn add_certificate(&self, client_id: &str, cert_der: &[u8]) {
        lock(&self.state.directory)
            .certificates
            .push((client_id.to_string(), cert_der.to_vec()));
    }

    /// Removes every certificate of `client_id`.
    pub fn remove_certificates(&self, client_id: &str) {
        lock(&self.state.directory)
            .certificates
            .retain(|(c, _)| c != client_id);
    }

    /// Lifetime of tokens from the token endpoint (`expires_in`) and the
    /// default `exp` of minted tokens. Default 3599 s, like Entra.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        lock(&self.state.directory).token_lifetime = lifetime;
    }

    /// Adds `refresh_in` to token responses (Entra sends it for long-lived tokens).
    pub fn set_refresh_in(&self, refresh_in: Option<Duration>) {
        lock(&self.state.directory).refresh_in = refresh_in;
    }

    // ---- keys ----

    /// The key new tokens are signed with.
    pub fn signing_key(&self) -> Arc<SigningKey> {
        Arc::clone(&lock(&self.state.keys).current)
    }

    /// The keys in the JWKS, in order.
    pub fn published_keys(&self) -> Vec<Arc<SigningKey>> {
        lock(&self.state.keys).published.clone()
    }

    /// The JWKS document exactly as served for the default tenant.
    pub fn jwks(&self) -> Value {
        routes::jwks_document(&self.state, &self.tenant_id())
    }

    /// Generates a new signing key, publishes it, and keeps or removes the
    /// previous one. Returns the new key.
    pub fn rotate_keys(&self, rotation: Rotation) -> anyhow::Result<Arc<SigningKey>> {
        let new = Arc::new(keypool::next_key()?);
        let mut keys = lock(&self.state.keys);
        if rotation == Rotation::RemoveOld {
            let old = Arc::clone(&keys.current);
            keys.published.retain(|k| !Arc::ptr_eq(k, &old));
        }
        keys.published.push(Arc::clone(&new));
        keys.current = Arc::clone(&new);
        Ok(new)
    }

    /// Publishes an extra key without signing with it.
    pub fn publish_key(&self, key: SigningKey) -> Arc<SigningKey> {
        let key = Arc::new(key);
        lock(&self.state.keys).published.push(Arc::clone(&key));
        key
    }

    /// Publishes a key the caller already holds (e.g. one from
    /// [`Idp::unpublished_key`] that tokens were signed with beforehand).
    pub fn publish_shared_key(&self, key: &Arc<SigningKey>) {
        lock(&self.state.keys).published.push(Arc::clone(key));
    }

    /// Publishes a 1024-bit key (too weak to accept) and returns it so tests
    /// can sign with it via [`TokenBuilder::signed_with`].
    pub fn publish_weak_key(&self) -> anyhow::Result<Arc<SigningKey>> {
        Ok(self.publish_key(SigningKey::generate(1024)?))
    }

    /// Removes a key from the JWKS (it may still be used to sign, to model a
    /// revoked key).
    pub fn unpublish_key(&self, kid: &str) {
        lock(&self.state.keys).published.retain(|k| k.kid() != kid);
    }

    /// Publishes a new key that does not sign yet: Entra lists its next
    /// signing key in the JWKS ahead of a rollover so relying parties learn it
    /// by their periodic refresh. [`Idp::sign_with`] starts using it.
    pub fn publish_next_key(&self) -> anyhow::Result<Arc<SigningKey>> {
        Ok(self.publish_key(keypool::next_key()?))
    }

    /// Switches signing to the published key `kid` (the rollover itself);
    /// the previous signing key stays published.
    pub fn sign_with(&self, kid: &str) -> anyhow::Result<()> {
        let mut keys = lock(&self.state.keys);
        let key = keys
            .published
            .iter()
            .find(|k| k.kid() == kid)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("key {kid} is not published"))?;
        keys.current = key;
        Ok(())
    }

    /// A fresh key that is *not* published: tokens signed with it must fail.
    pub fn unpublished_key(&self) -> anyhow::Result<Arc<SigningKey>> {
        Ok(Arc::new(keypool::next_key()?))
    }

    // ---- minting ----

    fn builder_with(
        &self,
        make: fn(&str, &str, Duration) -> serde_json::Map<String, Value>,
        v1: bool,
    ) -> TokenBuilder {
        let (issuer, tenant, lifetime) = {
            let directory = lock(&self.state.directory);
            let tenant = directory.default_tenant().to_string();
            let issuer = if v1 {
                directory.issuer_v1(&tenant)
            } else {
                directory.issuer_v2(&tenant)
            };
            (issuer, tenant, directory.token_lifetime)
        };
        TokenBuilder::new(make(&issuer, &tenant, lifetime), self.signing_key())
    }

    /// A v2 app-only token as the token endpoint would issue to the default
    /// client for the default API (`aud` = API app ID, `roles`, `azp`).
    pub fn app_token_v2(&self) -> TokenBuilder {
        self.builder_with(claims::app_v2, false)
    }

    /// The v1 equivalent (`sts.windows.net` issuer, `appid`, App ID URI `aud`).
    pub fn app_token_v1(&self) -> TokenBuilder {
        self.builder_with(claims::app_v1, true)
    }

    /// A v2 delegated token for a user (`scp`, no `roles`).
    pub fn user_token_v2(&self) -> TokenBuilder {
        self.builder_with(claims::user_v2, false)
    }

    // ---- faults ----

    /// Makes `endpoint` misbehave until changed (`Fault::None` restores it).
    pub fn set_fault(&self, endpoint: Endpoint, fault: Fault) {
        lock(&self.state.faults).set(endpoint, fault, None);
    }

    /// Makes only the next `times` requests to `endpoint` misbehave.
    pub fn set_fault_times(&self, endpoint: Endpoint, fault: Fault, times: u32) {
        lock(&self.state.faults).set(endpoint, fault, Some(times));
    }

    pub fn clear_faults(&self) {
        lock(&self.state.faults).clear();
    }

    /// `true`: the whole server goes down (connections refused, open ones
    /// cut); `false`: it listens again on the same port.
    ///
    /// # Panics
    /// If the port cannot be bound again (another process took it), since
    /// the test could not go on meaningfully.
    pub fn set_down(&self, down: bool) {
        assert!(
            self.server.set_refusing(down),
            "IdP on {} could not {}",
            self.server.addr(),
            if down { "go down" } else { "listen again" }
        );
    }

    // ---- counters ----

    pub fn counters(&self) -> Counters {
        let c = &self.state.counters;
        Counters {
            discovery: c.get(Endpoint::Discovery),
            jwks: c.get(Endpoint::Jwks),
            token: c.get(Endpoint::Token),
        }
    }

    pub fn jwks_fetches(&self) -> u64 {
        self.state.counters.get(Endpoint::Jwks)
    }

    pub fn reset_counters(&self) {
        self.state.counters.reset();
        lock(&self.state.token_log).clear();
    }

    /// Every token-endpoint call so far (secrets are not recorded).
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        lock(&self.state.token_log).clone()
    }

    /// Every access token the token endpoint has issued, oldest first (kept
    /// across [`reset_counters`](Self::reset_counters); for leak checks).
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.state.issued).clone()
    }

    /// Waits until the JWKS endpoint has been hit at least `n` times.
    pub async fn wait_for_jwks_fetches(&self, n: u64, timeout: Duration) -> anyhow::Result<()> {
        self.wait_for_requests(Endpoint::Jwks, n, timeout).await
    }

    /// Waits until `endpoint` has been hit at least `n` times.
    pub async fn wait_for_requests(
        &self,
        endpoint: Endpoint,
        n: u64,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let counters = &self.state.counters;
        wait_until(
            timeout,
            &format!("{n} requests to {endpoint:?}"),
            || async { counters.get(endpoint) >= n },
        )
        .await
        .map_err(|e| {
            e.context(format!(
                "{endpoint:?} was hit {} times",
                counters.get(endpoint)
            ))
        })
    }
}

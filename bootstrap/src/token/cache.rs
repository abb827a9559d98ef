//! Per-scope token cache: single-flight acquisition, refresh ahead of expiry, retries with backoff and
//! `Retry-After`, and one secret re-read on `invalid_client`.

use super::backoff::{random_unit, Backoff};
use super::client::{FetchError, TokenEndpoint};
use super::parse::EntraError;
use super::Token;
use crate::credential::{AssertionIdentity, AwsCallError, ClientAuth, CredentialKind};
use crate::secret::{CredentialStore, SecretError};
use crate::text::duration as dur;
use crate::{debug, info, warn};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// Backoff bounds for failed token requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First backoff ceiling (jittered down to half).
    pub initial: Duration,
    /// Largest backoff; also the pace of retries after a permanent error (the agent keeps trying, because a
    /// fix such as a secret rotation or a role assignment needs no restart).
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(60),
        }
    }
}

/// A scope to keep a token for: its short `name` (URL path segment) and the OAuth2 `scope` requested.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeConfig {
    pub name: String,
    pub scope: String,
}

/// Why a token could not be acquired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AcquireError {
    /// A request failed (after any retries the caller allowed).
    Fetch(FetchError),
    /// Entra said `invalid_client`; the secret was re-read once and the problem remains.
    InvalidClient {
        error: Box<EntraError>,
        secret_changed: bool,
    },
    /// Entra said `invalid_client` and re-reading the secret failed.
    Reread {
        error: Box<EntraError>,
        secret: SecretError,
    },
    /// STS or KMS could not produce a client assertion.
    Assertion(AwsCallError),
    /// Entra refused a client assertion (no matching federated credential, unregistered certificate…).
    AssertionRejected {
        kind: CredentialKind,
        error: Box<EntraError>,
    },
}

/// What to check for Entra's assertion errors (codes as Entra documents them).
fn assertion_hint(kind: CredentialKind, aadsts: Option<u32>) -> &'static str {
    match (kind, aadsts) {
        (_, Some(700_211)) => {
            "no federated identity credential on the app registration trusts this issuer: its Issuer must be \
             the AWS account's outbound federation issuer URL, exactly"
        }
        (_, Some(700_212)) => {
            "the federated identity credential's audience differs from the token's (credential.audience)"
        }
        (_, Some(700_213)) => {
            "the federated identity credential's Subject must equal the token's sub claim (the IAM role ARN), \
             case-sensitively"
        }
        (_, Some(70_021)) => "no federated identity credential matches the token's issuer, subject and audience",
        (_, Some(700_024)) => "the assertion is outside its validity window: check this host's clock",
        (CredentialKind::KmsCertificate, Some(700_027)) => {
            "the certificate (x5t#S256) is not registered on the app registration, or the KMS key is not its key"
        }
        (_, Some(700_027)) => "the assertion's signature did not verify against the issuer's published keys",
        (_, Some(700_016)) => "no such application in this tenant: check credential.client_id and tenant_id",
        _ => "see the AADSTS code in Entra's error reference",
    }
}

impl AcquireError {
    pub fn is_transient(&self) -> bool {
        match self {
            AcquireError::Fetch(e) => e.is_transient(),
            // A Secrets Manager outage during a re-read is transient; a bad secret is not.
            AcquireError::Reread { secret, .. } => secret.is_transient(),
            AcquireError::Assertion(e) => e.is_transient(),
            AcquireError::InvalidClient { .. } | AcquireError::AssertionRejected { .. } => false,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            AcquireError::Fetch(e) => e.retry_after(),
            _ => None,
        }
    }
}

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcquireError::Fetch(e) => e.fmt(f),
            AcquireError::InvalidClient { error, secret_changed: true } => write!(
                f,
                "identity provider rejected the client credentials even after re-reading a changed secret: {error}"
            ),
            AcquireError::InvalidClient { error, secret_changed: false } => write!(
                f,
                "identity provider rejected the client credentials and the secret in Secrets Manager is unchanged \
                 (wrong or expired client secret?): {error}"
            ),
            AcquireError::Reread { error, secret } => {
                write!(f, "identity provider rejected the client credentials ({error}) and re-reading the secret failed: {secret}")
            }
            AcquireError::Assertion(e) => write!(f, "cannot obtain a client assertion: {e}"),
            AcquireError::AssertionRejected { kind, error } => write!(
                f,
                "identity provider rejected the {kind} client assertion: {error}; {}",
                assertion_hint(*kind, error.aadsts)
            ),
        }
    }
}

impl std::error::Error for AcquireError {}

/// Why `/v1/token` cannot answer with a token right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unavailable {
    pub reason: String,
    /// When the next attempt is due, if one is scheduled.
    pub retry_in: Option<Duration>,
}

/// Per-scope readiness for `/healthz` and status lines.
#[derive(Clone, Debug)]
pub struct ScopeStatus {
    pub name: String,
    pub scope: String,
    pub ready: bool,
    pub expires_at_unix: Option<u64>,
    pub expires_in: Option<Duration>,
    pub refresh_in: Option<Duration>,
    pub last_error: Option<String>,
    pub requests: u64,
}

struct Slot {
    cfg: ScopeConfig,
    token: RwLock<Option<Arc<Token>>>,
    last_error: RwLock<Option<String>>,
    next_attempt: RwLock<Option<Instant>>,
    /// Held while a request for this scope is in flight: concurrent callers wait and reuse its result.
    flight: tokio::sync::Mutex<()>,
    requests: AtomicU64,
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().unwrap_or_else(|p| p.into_inner()).clone()
}

fn write<T>(lock: &RwLock<T>, value: T) {
    *lock.write().unwrap_or_else(|p| p.into_inner()) = value;
}

/// How the cache authenticates its token requests.
pub enum CallerIdentity {
    /// Client secret from Secrets Manager, re-read once on `invalid_client`.
    Secret(Arc<CredentialStore>),
    /// A fresh client assertion (STS federation JWT or KMS-signed certificate assertion) per request.
    Assertion(Arc<AssertionIdentity>),
}

/// Tokens for a fixed set of scopes, sharing one caller identity and one endpoint.
pub struct TokenCache {
    endpoint: TokenEndpoint,
    identity: CallerIdentity,
    slots: Vec<Arc<Slot>>,
    retry: RetryPolicy,
}

impl TokenCache {
    /// A cache authenticating with the client secret in `credentials`.
    pub fn new(
        endpoint: TokenEndpoint,
        credentials: Arc<CredentialStore>,
        scopes: Vec<ScopeConfig>,
        retry: RetryPolicy,
    ) -> Self {
        Self::with_identity(endpoint, CallerIdentity::Secret(credentials), scopes, retry)
    }

    pub fn with_identity(
        endpoint: TokenEndpoint,
        identity: CallerIdentity,
        scopes: Vec<ScopeConfig>,
        retry: RetryPolicy,
    ) -> Self {
        let slots = scopes
            .into_iter()
            .map(|cfg| {
                Arc::new(Slot {
                    cfg,
                    token: RwLock::new(None),
                    last_error: RwLock::new(None),
                    next_attempt: RwLock::new(None),
                    flight: tokio::sync::Mutex::new(()),
                    requests: AtomicU64::new(0),
                })
            })
            .collect();
        TokenCache {
            endpoint,
            identity,
            slots,
            retry,
        }
    }

    pub fn scopes(&self) -> impl Iterator<Item = &ScopeConfig> {
        self.slots.iter().map(|s| &s.cfg)
    }

    /// The secret store, for the `secret` kind.
    pub fn credentials(&self) -> Option<&Arc<CredentialStore>> {
        match &self.identity {
            CallerIdentity::Secret(store) => Some(store),
            CallerIdentity::Assertion(_) => None,
        }
    }

    /// `secret`, `aws-federation` or `kms-certificate`.
    pub fn credential_kind(&self) -> CredentialKind {
        match &self.identity {
            CallerIdentity::Secret(_) => CredentialKind::Secret,
            CallerIdentity::Assertion(id) => id.source.kind(),
        }
    }

    /// Finds a configured scope by name, exact scope, or resource (`api://x` matches `api://x/.default`).
    pub fn lookup(&self, key: &str) -> Option<&ScopeConfig> {
        let key = key.trim();
        let resource = key.trim_end_matches("/.default").trim_end_matches('/');
        self.scopes().find(|c| {
            c.name == key
                || c.scope == key
                || c.scope.trim_end_matches("/.default").trim_end_matches('/') == resource
        })
    }

    fn slot(&self, name: &str) -> Option<&Arc<Slot>> {
        self.slots.iter().find(|s| s.cfg.name == name)
    }

    /// Token endpoint requests made for `name` so far.
    pub fn requests(&self, name: &str) -> u64 {
        self.slot(name)
            .map(|s| s.requests.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// The token to hand out for `name` now, never one within its serve margin of expiry.
    pub fn serve(&self, name: &str) -> Result<Arc<Token>, Unavailable> {
        let Some(slot) = self.slot(name) else {
            return Err(Unavailable {
                reason: format!("scope {name} is not configured"),
                retry_in: None,
            });
        };
        let now = Instant::now();
        let current = read(&slot.token);
        if let Some(t) = current.as_ref().filter(|t| t.servable(now)) {
            return Ok(Arc::clone(t));
        }
        let retry_in = read(&slot.next_attempt).map(|at| at.saturating_duration_since(now));
        let reason = match (current, read(&slot.last_error)) {
            (Some(_), Some(e)) => format!("token expired and refreshing it failed: {e}"),
            (Some(_), None) => "token expired; refresh in progress".to_string(),
            (None, Some(e)) => format!("no token acquired yet: {e}"),
            (None, None) => "no token acquired yet".to_string(),
        };
        Err(Unavailable { reason, retry_in })
    }

    /// Readiness of every scope.
    pub fn status(&self) -> Vec<ScopeStatus> {
        let now = Instant::now();
        self.slots
            .iter()
            .map(|s| {
                let token = read(&s.token);
                let servable = token.as_ref().filter(|t| t.servable(now));
                ScopeStatus {
                    name: s.cfg.name.clone(),
                    scope: s.cfg.scope.clone(),
                    ready: servable.is_some(),
                    expires_at_unix: servable.map(|t| t.expires_at_unix),
                    expires_in: servable.map(|t| t.expires_at().saturating_duration_since(now)),
                    refresh_in: servable.map(|t| t.refresh_at().saturating_duration_since(now)),
                    last_error: read(&s.last_error),
                    requests: s.requests.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// Whether every scope has a servable token.
    pub fn ready(&self) -> bool {
        self.status().iter().all(|s| s.ready)
    }

    /// Returns a fresh token for `name`, requesting one if needed (single-flight), retrying transient errors
    /// up to `max_attempts` requests in all. Used by `bootstrap token` and tests; the agent uses
    /// [`TokenCache::run_refresher`].
    pub async fn get(&self, name: &str, max_attempts: u32) -> Result<Arc<Token>, AcquireError> {
        let Some(slot) = self.slot(name).cloned() else {
            return Err(AcquireError::Fetch(FetchError::Rejected(Box::new(
                EntraError {
                    status: 0,
                    error: format!("scope {name} is not configured"),
                    aadsts: None,
                    description: None,
                    correlation_id: None,
                    trace_id: None,
                    timestamp: None,
                },
            ))));
        };
        let mut backoff = Backoff::new(self.retry.initial, self.retry.max);
        loop {
            match self.refresh(&slot).await {
                Ok(t) => return Ok(t),
                Err(e) if e.is_transient() && backoff.attempts() + 1 < max_attempts => {
                    let delay = self.delay_after(&e, &mut backoff);
                    warn!(
                        "token for {} failed: {e}; retrying in {}",
                        slot.cfg.scope,
                        dur(delay)
                    );
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Keeps `name`'s token fresh forever: refreshes at the token's refresh time, retries failures with
    /// backoff (or `Retry-After`), and paces permanent failures at the backoff maximum.
    pub async fn run_refresher(self: Arc<Self>, name: String) {
        let Some(slot) = self.slot(&name).cloned() else {
            return;
        };
        let mut backoff = Backoff::new(self.retry.initial, self.retry.max);
        loop {
            if let Some(t) = read(&slot.token) {
                // After a failed attempt the refresh time is already past: go straight on.
                let at = t.refresh_at();
                if at > Instant::now() {
                    write(&slot.next_attempt, Some(at));
                    tokio::time::sleep_until(at.into()).await;
                }
            }
            match self.refresh(&slot).await {
                Ok(_) => backoff.reset(),
                Err(e) => {
                    let delay = self.delay_after(&e, &mut backoff);
                    let next = Instant::now() + delay;
                    write(&slot.next_attempt, Some(next));
                    let holding = match read(&slot.token).filter(|t| t.servable(Instant::now())) {
                        Some(t) => format!(
                            "the current token is served for another {}",
                            dur(t.serve_until().saturating_duration_since(Instant::now()))
                        ),
                        None => "no valid token: Envoy gets 503 for this scope until this succeeds"
                            .into(),
                    };
                    warn!(
                        "token for {} failed (attempt {}): {e}; retrying in {}; {holding}",
                        slot.cfg.scope,
                        backoff.attempts(),
                        dur(delay)
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// Delay before the next attempt after `e`.
    fn delay_after(&self, e: &AcquireError, backoff: &mut Backoff) -> Duration {
        if let Some(ra) = e.retry_after() {
            backoff.next_delay(0.0); // still escalate, for a 429 storm without Retry-After later
                                     // Honour Retry-After: never earlier; a little jitter on top spreads a fleet.
            return ra + ra.min(Duration::from_secs(1)).mul_f64(random_unit() * 0.1);
        }
        if e.is_transient() {
            backoff.next_delay(random_unit())
        } else {
            backoff.next_delay(0.0);
            let max = backoff.max();
            max / 2 + (max / 2).mul_f64(random_unit())
        }
    }

    /// One single-flight refresh of `slot`: if another task refreshed while we waited for the flight lock, its
    /// token is returned without a new request.
    async fn refresh(&self, slot: &Slot) -> Result<Arc<Token>, AcquireError> {
        let _flight = slot.flight.lock().await;
        if let Some(t) = read(&slot.token).filter(|t| t.fresh(Instant::now())) {
            return Ok(t);
        }
        match self.attempt(slot).await {
            Ok(token) => {
                let token = Arc::new(token);
                info!(
                    "token for {} acquired, expires in {}, next refresh in {} (sha256 {})",
                    slot.cfg.scope,
                    dur(token.lifetime),
                    dur(token
                        .refresh_at()
                        .saturating_duration_since(token.received_at)),
                    token.fingerprint
                );
                write(&slot.token, Some(Arc::clone(&token)));
                write(&slot.last_error, None);
                write(&slot.next_attempt, Some(token.refresh_at()));
                Ok(token)
            }
            Err(e) => {
                write(&slot.last_error, Some(e.to_string()));
                Err(e)
            }
        }
    }

    /// One logical attempt with the cache's identity.
    async fn attempt(&self, slot: &Slot) -> Result<Token, AcquireError> {
        match &self.identity {
            CallerIdentity::Secret(store) => self.attempt_with_secret(slot, store).await,
            CallerIdentity::Assertion(id) => self.attempt_with_assertion(slot, id).await,
        }
    }

    /// A fresh assertion, then one request. Nothing to re-read on `invalid_client`: the next attempt gets a
    /// new assertion anyway, so the refusal is reported with what to check.
    async fn attempt_with_assertion(
        &self,
        slot: &Slot,
        id: &AssertionIdentity,
    ) -> Result<Token, AcquireError> {
        let assertion = id
            .source
            .assertion()
            .await
            .map_err(AcquireError::Assertion)?;
        debug!(
            "{} client assertion obtained (sha256 {})",
            id.source.kind(),
            assertion.fingerprint
        );
        let auth = ClientAuth::Assertion(&assertion);
        match self.request(slot, &id.client_id, &id.tenant_id, auth).await {
            Ok(t) => Ok(t),
            Err(FetchError::InvalidClient(error)) | Err(FetchError::Rejected(error))
                if error.aadsts.is_some_and(is_assertion_code) || error.is_invalid_client() =>
            {
                Err(AcquireError::AssertionRejected {
                    kind: id.source.kind(),
                    error,
                })
            }
            Err(e) => Err(AcquireError::Fetch(e)),
        }
    }

    /// A request, plus (on `invalid_client`) one secret re-read and one more request.
    async fn attempt_with_secret(
        &self,
        slot: &Slot,
        store: &CredentialStore,
    ) -> Result<Token, AcquireError> {
        let (generation, credentials) = store.current();
        let secret = ClientAuth::Secret(credentials.client_secret());
        let error = match self
            .request(slot, &credentials.client_id, &credentials.tenant_id, secret)
            .await
        {
            Ok(t) => return Ok(t),
            Err(FetchError::InvalidClient(error)) => error,
            Err(e) => return Err(AcquireError::Fetch(e)),
        };
        info!(
            "identity provider rejected the client secret ({}{}); re-reading secret from Secrets Manager (it may have been rotated)…",
            error.error,
            error.aadsts.map(|c| format!(" AADSTS{c}")).unwrap_or_default()
        );
        let reloaded = match store.reload_after(generation).await {
            Ok(r) => r,
            Err(secret) => return Err(AcquireError::Reread { error, secret }),
        };
        if !reloaded.changed {
            return Err(AcquireError::InvalidClient {
                error,
                secret_changed: false,
            });
        }
        info!(
            "secret re-read: new credentials (version {}); retrying token request",
            reloaded
                .credentials
                .version_id
                .as_deref()
                .unwrap_or("unknown")
        );
        let fresh = &reloaded.credentials;
        let secret = ClientAuth::Secret(fresh.client_secret());
        match self
            .request(slot, &fresh.client_id, &fresh.tenant_id, secret)
            .await
        {
            Ok(t) => Ok(t),
            Err(FetchError::InvalidClient(error)) => Err(AcquireError::InvalidClient {
                error,
                secret_changed: true,
            }),
            Err(e) => Err(AcquireError::Fetch(e)),
        }
    }

    async fn request(
        &self,
        slot: &Slot,
        client_id: &str,
        tenant: &str,
        auth: ClientAuth<'_>,
    ) -> Result<Token, FetchError> {
        slot.requests.fetch_add(1, Ordering::Relaxed);
        debug!(
            "requesting token for {} from {}",
            slot.cfg.scope,
            self.endpoint.url(tenant)
        );
        let response = self
            .endpoint
            .request_as(client_id, tenant, auth, &slot.cfg.scope)
            .await?;
        Ok(Token::from_response(
            &slot.cfg.scope,
            response,
            Instant::now(),
            SystemTime::now(),
        ))
    }
}

/// Entra's client-assertion error codes (federated credential matching, validity window, signature, replay).
fn is_assertion_code(code: u32) -> bool {
    matches!(
        code,
        50_013 | 50_027 | 70_021 | 700_024 | 700_027 | 700_211 | 700_212 | 700_213
    )
}

//! Client-credentials tokens: the endpoint client, the response parser, timing and retry rules, and the
//! per-scope cache that keeps them fresh.

pub mod backoff;
pub mod cache;
pub mod client;
pub mod exp;
pub mod timing;

/// The response parser, a crate of its own (see the crate root).
pub use entragate_token_response as parse;

pub use cache::{AcquireError, RetryPolicy, ScopeStatus, TokenCache, Unavailable};
pub use client::{FetchError, TokenEndpoint, DEFAULT_AUTHORITY};

use parse::TokenResponse;
use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::time::{Duration, Instant, SystemTime};

/// An access token with the times that govern it. Monotonic `Instant`s drive refresh and serving (immune to
/// wall-clock jumps); `expires_at_unix` is what consumers are told.
pub struct Token {
    value: SecretString,
    pub token_type: String,
    pub scope: String,
    pub received_at: Instant,
    pub lifetime: Duration,
    pub refresh_in_hint: Option<Duration>,
    pub expires_at_unix: u64,
    /// sha256 prefix, the only form of the token that appears in logs.
    pub fingerprint: String,
}

impl Token {
    /// Builds a token from a response received at (`received_at`, `received_wall`). Its lifetime is
    /// `expires_in`, shortened to the token's own `exp` if that comes first ([`timing::effective_lifetime`]).
    pub fn from_response(
        scope: &str,
        response: TokenResponse,
        received_at: Instant,
        received_wall: SystemTime,
    ) -> Self {
        let fingerprint = crate::text::fingerprint(response.access_token.expose_secret());
        let exp = exp::jwt_exp(response.access_token.expose_secret());
        let (lifetime, skewed) =
            timing::effective_lifetime(response.expires_in, exp, received_wall);
        if skewed {
            crate::warn!(
                "token sha256:{fingerprint} for {scope}: its exp comes more than 5 s before receipt + \
                 expires_in; serving it for {}s of {}s. Is this machine's clock ahead of the issuer's?",
                lifetime.as_secs(),
                response.expires_in.as_secs()
            );
        }
        Token {
            value: response.access_token,
            token_type: response.token_type,
            scope: scope.to_string(),
            received_at,
            lifetime,
            refresh_in_hint: response.refresh_in.filter(|hint| *hint < lifetime),
            expires_at_unix: crate::text::unix_secs(received_wall + lifetime),
            fingerprint,
        }
    }

    /// The bearer token itself: only for the agent's authenticated response and `token --print-token`.
    pub fn secret(&self) -> &str {
        self.value.expose_secret()
    }

    /// When a refresh should start (see [`timing`]).
    pub fn refresh_at(&self) -> Instant {
        self.received_at + timing::refresh_after(self.lifetime, self.refresh_in_hint)
    }

    /// After this the token is no longer handed out.
    pub fn serve_until(&self) -> Instant {
        self.received_at + timing::serve_for(self.lifetime)
    }

    pub fn expires_at(&self) -> Instant {
        self.received_at + self.lifetime
    }

    /// Whether it may still be handed out at `now`.
    pub fn servable(&self, now: Instant) -> bool {
        now < self.serve_until()
    }

    /// Whether it is still before its refresh time at `now`.
    pub fn fresh(&self, now: Instant) -> bool {
        now < self.refresh_at()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field(
                "value",
                &format_args!("[redacted sha256:{}]", self.fingerprint),
            )
            .field("scope", &self.scope)
            .field("lifetime", &self.lifetime)
            .field("expires_at_unix", &self.expires_at_unix)
            .finish()
    }
}

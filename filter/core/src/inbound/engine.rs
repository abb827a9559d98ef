//! The per-request verification flow, as an explicit state machine.
//!
//! Steps (named after Envoy `jwt_authn`'s authenticator):
//!
//! ```text
//! start_verify ──► route rule? ── anonymous ─────────────────────────► Done(Allow)
//!      │                └─ none & deny ──────────────────────────────► Done(Deny 403)
//!      ▼
//!  extract token ── keys Ready & verified-token cache hit ── key still in JWKS,
//!      │                  claims still valid now, authorize ─────────────────► Done(..)
//!      ▼
//!  decode token ── malformed ──────────────────────────────────────────► Done(Deny 401)
//!      ▼
//!  verify_key(keys) ── keys Ready ── kid known ── signature, claims, authorize ──► Done(..)
//!      │                               └─ kid unknown ── refresh allowed ─► AwaitKeys
//!      │                                               └─ rate-limited ──► Done(Deny 401)
//!      ├─ keys Pending (fetch in flight) ─────────────────────────────► AwaitKeys
//!      └─ keys Unavailable ─────────────────────────────────────────► Done(Deny 503)
//! AwaitKeys ── on_keys_changed ──► verify_key again (at most one forced refresh per request)
//!           └─ on_wait_timeout ──► Done(Deny 503)
//! ```
//!
//! The flow owns copies of the request data it needs, so it can be resumed from
//! the root context after a JWKS fetch, and simply dropped if the request goes away.
//!
//! A cache hit replaces only decoding and the signature check: the key that
//! verified the token must still be in the current key set, the claims are
//! validated again against the current time, and route authorization runs as
//! on a miss. A token is cached only after it passed both signature and claims.

use crate::claims::validate::validate_claims;
use crate::claims::Claims;
use crate::error::AuthError;
use crate::inbound::cache::{TokenKey, TokenMemo};
use crate::inbound::config::FilterPolicy;
use crate::inbound::jwks::KeyAvailability;
use crate::inbound::policy::authorize::{authorize, Denial};
use crate::inbound::policy::routes::Rule;
use crate::keys::{KeySet, RsaPublicKey};
use crate::token::extract::{bearer_token, bearer_token_shape};
use crate::token::jws::{decode, DecodedJws};
use crate::token::signature::SignatureVerifier;

/// The request data the flow needs, copied out of the host's header map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInput {
    pub method: String,
    pub path: String,
    /// Every `Authorization` header value, in order (more than one is an error).
    pub authorization: Vec<String>,
    /// The URI/DNS SANs of the connection's verified peer certificate (empty
    /// without mTLS). Read only when the policy binds a rule to the workload.
    pub peer_identities: Vec<String>,
}

/// The outcome of a finished flow.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Forward the request; set these headers (the adapter has already stripped
    /// every configured claim header name from the incoming request).
    Allow {
        set_headers: Vec<(String, String)>,
        /// Caller app id for the log line; `None` for anonymous routes.
        caller: Option<String>,
    },
    Deny(Denial),
}

impl Decision {
    fn deny(error: AuthError) -> Decision {
        Decision::Deny(Denial {
            error,
            required_scope: None,
        })
    }
}

/// What the flow wants next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Done(Decision),
    /// Wait for the JWKS to change. If `force_refresh`, the adapter must ask the
    /// coordinator for an unknown-`kid` refresh; if that is refused (rate-limited)
    /// it calls [`RequestFlow::on_refresh_refused`].
    AwaitKeys {
        force_refresh: bool,
    },
}

/// What the flow learned that an auditor needs, filled in as it goes.
///
/// Identity fields come only from claims whose signature was verified (or from
/// the verified-token cache): a refusal before that point records no caller or
/// tenant, so an audit trail never shows attacker-written values as identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditTrail {
    /// Name of the route rule that matched, if any.
    pub rule: Option<String>,
    /// Verified caller app id (`appid` v1 / `azp` v2).
    pub caller: Option<String>,
    /// Verified tenant (`tid`).
    pub tenant: Option<String>,
    /// Verified app roles (`roles`).
    pub roles: Vec<String>,
    /// True once a token's signature and claims were verified (now or, for a
    /// cache hit, earlier); false for anonymous routes and early refusals.
    pub token_verified: bool,
    /// The presented token's fingerprint, when the flow knew it without
    /// hashing the token again (a cache hit, or the digest a lookup made);
    /// see [`crate::inbound::audit::token_fingerprint`].
    pub token_fingerprint: Option<String>,
}

impl AuditTrail {
    fn learn_claims(&mut self, claims: &Claims) {
        self.caller = claims.caller_app_id().map(str::to_string);
        self.tenant.clone_from(&claims.tid);
        self.roles.clone_from(&claims.roles);
        self.token_verified = true;
    }
}

/// One request's verification. Cheap to create; holds no host resources.
#[derive(Debug, Clone)]
pub struct RequestFlow {
    input: RequestInput,
    audit: AuditTrail,
    /// Parked in [`Step::AwaitKeys`]: only then may [`RequestFlow::on_keys_changed`] resume it.
    awaiting_keys: bool,
    /// A request triggers at most one forced (unknown-kid) refresh: after it, an
    /// unknown kid is final. This bounds the work an attacker can cause.
    forced_refresh_used: bool,
}

impl RequestFlow {
    pub fn new(input: RequestInput) -> RequestFlow {
        RequestFlow {
            input,
            audit: AuditTrail::default(),
            awaiting_keys: false,
            forced_refresh_used: false,
        }
    }

    pub fn input(&self) -> &RequestInput {
        &self.input
    }

    /// What the flow learned so far (complete once it is done).
    pub fn audit(&self) -> &AuditTrail {
        &self.audit
    }

    /// Step 1: route lookup, token extraction and structural decoding, then the
    /// first attempt at key lookup.
    pub fn start_verify(
        &mut self,
        policy: &FilterPolicy,
        keys: &KeyAvailability,
        verifier: &dyn SignatureVerifier,
        cache: &mut dyn TokenMemo,
        now_secs: i64,
    ) -> Step {
        self.awaiting_keys = false;
        self.verify_key(policy, keys, verifier, cache, now_secs)
    }

    /// Resume after the shared key set changed (or the fetch this request waited
    /// for finished, successfully or not).
    pub fn on_keys_changed(
        &mut self,
        policy: &FilterPolicy,
        keys: &KeyAvailability,
        verifier: &dyn SignatureVerifier,
        cache: &mut dyn TokenMemo,
        now_secs: i64,
    ) -> Step {
        if !self.awaiting_keys {
            return Step::Done(Decision::deny(AuthError::KeysUnavailable));
        }
        self.verify_key(policy, keys, verifier, cache, now_secs)
    }

    /// The forced refresh was refused (rate-limited): the `kid` is unknown.
    pub fn on_refresh_refused(&mut self) -> Decision {
        self.finish(Decision::deny(AuthError::SigningKeyUnknown))
    }

    /// The bounded wait for keys elapsed.
    pub fn on_wait_timeout(&mut self) -> Decision {
        self.finish(Decision::deny(AuthError::KeysWaitTimedOut))
    }

    fn finish(&mut self, decision: Decision) -> Decision {
        self.awaiting_keys = false;
        decision
    }

    fn done(&mut self, decision: Decision) -> Step {
        Step::Done(self.finish(decision))
    }

    fn verify_key(
        &mut self,
        policy: &FilterPolicy,
        keys: &KeyAvailability,
        verifier: &dyn SignatureVerifier,
        cache: &mut dyn TokenMemo,
        now_secs: i64,
    ) -> Step {
        // Route first: an anonymous route needs no token, and an unmatched or
        // ambiguous path (`..`, encoded slashes) is refused before any crypto.
        let rule =
            match policy
                .routes
                .resolve(&self.input.method, &self.input.path, policy.unmatched)
            {
                Ok(rule) => rule,
                Err(e) => return self.done(Decision::deny(e)),
            };
        self.audit.rule = rule.map(|rule| rule.name().to_string());
        if rule.is_some_and(Rule::is_anonymous) {
            return self.done(Decision::Allow {
                set_headers: Vec::new(),
                caller: None,
            });
        }

        let authorization = &self.input.authorization;
        let max_token_bytes = policy.verify.max_token_bytes;
        // A token verified before is looked up before the per-byte checks of
        // `bearer_token`: the same bytes passed them then. (Hashing costs
        // about as much as a lookup saves when the cache is off; the key
        // hashes the token only if a lookup needs the digest.)
        let mut cache_key = None;
        if let (true, Some(shape), KeyAvailability::Ready(key_set)) = (
            cache.is_enabled(),
            bearer_token_shape(authorization, max_token_bytes),
            keys,
        ) {
            let key = TokenKey::new(shape);
            let peer = &self.input.peer_identities;
            if let Some(decision) = from_cache(
                policy,
                cache,
                &key,
                key_set,
                now_secs,
                &mut self.audit,
                |claims| decide(policy, rule, claims, peer),
            ) {
                return self.done(decision);
            }
            if key.is_hashed() {
                self.audit.token_fingerprint = Some(key.digest().fingerprint());
            }
            cache_key = Some(key);
        }
        let token = match bearer_token(authorization, max_token_bytes) {
            Ok(token) => token,
            Err(e) => return self.done(Decision::deny(e)),
        };
        // The key of the lookup above (its digest, if computed, is reused).
        let cache_key = cache_key
            .filter(|key| key.token() == Some(token))
            .or_else(|| cache.is_enabled().then(|| TokenKey::new(token)));
        let jws = match decode(token, &policy.verify) {
            Ok(jws) => jws,
            Err(e) => return self.done(Decision::deny(e)),
        };

        let key_set = match keys {
            KeyAvailability::Ready(key_set) => key_set,
            KeyAvailability::Pending => {
                self.awaiting_keys = true;
                return Step::AwaitKeys {
                    force_refresh: false,
                };
            }
            KeyAvailability::Unavailable => {
                return self.done(Decision::deny(AuthError::KeysUnavailable))
            }
        };
        let Some(key) = key_set.find(jws.header.kid.as_deref(), jws.header.x5t.as_deref()) else {
            if self.forced_refresh_used {
                return self.done(Decision::deny(AuthError::SigningKeyUnknown));
            }
            self.forced_refresh_used = true;
            self.awaiting_keys = true;
            return Step::AwaitKeys {
                force_refresh: true,
            };
        };

        let decision = match check_token(policy, &jws, key, verifier, now_secs) {
            Ok(claims) => {
                self.audit.learn_claims(&claims);
                let decision = decide(policy, rule, &claims, &self.input.peer_identities);
                if let Some(cache_key) = &cache_key {
                    remember(policy, cache, cache_key, claims, key, now_secs);
                }
                decision
            }
            Err(e) => Decision::deny(e),
        };
        self.done(decision)
    }
}

/// The decision for a token verified earlier, or `None` to verify it in full
/// (not cached, or verified with a key that is no longer in `key_set`).
fn from_cache(
    policy: &FilterPolicy,
    cache: &mut dyn TokenMemo,
    token: &TokenKey,
    key_set: &KeySet,
    now_secs: i64,
    audit: &mut AuditTrail,
    decide: impl FnOnce(&Claims) -> Decision,
) -> Option<Decision> {
    let entry = cache.get(token)?;
    // Compared in full (kid and material), so a key re-published under the
    // same kid with other material does not keep old tokens alive.
    if !key_set.keys.iter().any(|key| *key == *entry.key) {
        cache.remove(token);
        return None;
    }
    audit.token_fingerprint = Some(entry.fingerprint.clone());
    match validate_claims(&entry.claims, &policy.verify, now_secs) {
        Ok(()) => {
            audit.learn_claims(&entry.claims);
            Some(decide(&entry.claims))
        }
        Err(e) => {
            cache.remove(token);
            Some(Decision::deny(e))
        }
    }
}

/// Caches a fully verified token until `exp` plus leeway (hits still re-check
/// the claims; this bound only decides what eviction drops first).
fn remember(
    policy: &FilterPolicy,
    cache: &mut dyn TokenMemo,
    token: &TokenKey,
    claims: Claims,
    key: &RsaPublicKey,
    now_secs: i64,
) {
    let Some(exp) = claims.exp else {
        return; // validate_claims requires exp; never cache without one
    };
    let leeway = i64::try_from(policy.verify.leeway_secs).unwrap_or(i64::MAX);
    cache.insert(token, claims, key, exp.saturating_add(leeway), now_secs);
}

/// Signature first, then claims. The signature is checked before any claim so
/// that nothing an attacker wrote into an unsigned token influences which error
/// we report (e.g. no "expired" oracle for forged tokens).
fn check_token(
    policy: &FilterPolicy,
    jws: &DecodedJws<'_>,
    key: &RsaPublicKey,
    verifier: &dyn SignatureVerifier,
    now_secs: i64,
) -> Result<Claims, AuthError> {
    verifier.verify(
        jws.header.alg,
        key,
        jws.signing_input.as_bytes(),
        &jws.signature,
    )?;
    validate_claims(&jws.claims, &policy.verify, now_secs)?;
    Ok(jws.claims.clone())
}

/// Authorization of verified claims: the rule's access, then (last, so a
/// token that would be refused anyway is refused for that) the workload
/// binding, which fails closed: a bound rule without a binding map, without
/// a peer certificate or with a caller other than the peer's app is refused.
fn decide(
    policy: &FilterPolicy,
    rule: Option<&Rule>,
    claims: &Claims,
    peer_identities: &[String],
) -> Decision {
    if let Some(rule) = rule {
        if let Err(denial) = authorize(rule.access(), claims) {
            return Decision::Deny(denial);
        }
        if rule.is_bound_to_workload() {
            let bound = policy
                .workload_binding
                .as_ref()
                .map_or(Err(AuthError::WorkloadMismatch), |binding| {
                    binding.check(peer_identities, claims.caller_app_id())
                });
            if let Err(error) = bound {
                return Decision::deny(error);
            }
        }
    }
    let set_headers = policy
        .claim_headers
        .values(claims)
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();
    Decision::Allow {
        set_headers,
        caller: claims.caller_app_id().map(str::to_string),
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::panic)] // a failed expectation in a test is a test failure
#[path = "engine_cache_tests.rs"]
mod cache_tests;

//! The callee role's reading and writing of request headers.
//!
//! Claim headers carry identity the upstream trusts (`x-entra-caller`, ...),
//! so every configured name is removed from every incoming request, on every
//! route, before anything else: a caller must never be able to inject what the
//! upstream treats as verified. Only an allowed request gets them back, set
//! from verified claims.

use super::config::FilterPolicy;
use super::engine::RequestInput;
use super::policy::ClaimHeaders;
use crate::host::RequestHeaders;

/// Reads what the request flow needs and strips every configured claim
/// header. The peer certificate is read only when a rule is bound to the
/// workload (it costs hostcalls on every request otherwise).
pub fn read_request(headers: &mut dyn RequestHeaders, policy: &FilterPolicy) -> RequestInput {
    let mut input = read_headers(headers, &policy.claim_headers);
    if policy.workload_binding.is_some() {
        input.peer_identities = headers.peer_certificate_identities();
    }
    input
}

/// The header part of [`read_request`]. The header map is read once; a
/// hostcall to remove is only made for names the request actually carries
/// (the usual request has none).
fn read_headers(headers: &mut dyn RequestHeaders, claim_headers: &ClaimHeaders) -> RequestInput {
    let mut method = String::new();
    let mut path = String::new();
    let mut authorization = Vec::new();
    let mut spoofed: Vec<String> = Vec::new();
    headers.for_each(&mut |name, value| match name {
        ":method" => method = value.to_string(),
        ":path" => path = value.to_string(),
        // Envoy lower-cases header names; keep every value to detect duplicates.
        "authorization" => authorization.push(value.to_string()),
        other => {
            if claim_headers.names().any(|n| n == other) && !spoofed.iter().any(|s| s == other) {
                spoofed.push(other.to_string());
            }
        }
    });
    for name in &spoofed {
        headers.remove(name);
    }
    RequestInput {
        method,
        path,
        authorization,
        peer_identities: Vec::new(),
    }
}

/// Sets the identity headers of an allowed request. Best effort: a header
/// that cannot be set was stripped on the way in, so the upstream sees no
/// value rather than a forged one.
pub fn set_identity_headers(headers: &mut dyn RequestHeaders, set_headers: &[(String, String)]) {
    for (name, value) in set_headers {
        let _ = headers.set(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::HeaderList;
    use crate::inbound::policy::ClaimSource;

    fn claim_headers() -> ClaimHeaders {
        ClaimHeaders::new(vec![
            ("x-entra-caller".into(), ClaimSource::Caller),
            ("x-entra-roles".into(), ClaimSource::Roles),
        ])
    }

    #[test]
    fn spoofed_claim_headers_are_stripped_and_the_flow_input_read() {
        let mut headers = HeaderList::of(&[
            (":method", "POST"),
            (":path", "/fraud/scan?x=1"),
            ("authorization", "Bearer a"),
            ("x-entra-caller", "forged"),
            ("x-entra-roles", "Admin"),
            ("x-entra-caller", "forged again"),
            ("authorization", "Bearer b"),
            ("x-entra-tenant", "not configured here"),
        ]);
        let input = read_headers(&mut headers, &claim_headers());
        assert_eq!(input.method, "POST");
        assert_eq!(input.path, "/fraud/scan?x=1");
        assert_eq!(input.authorization, ["Bearer a", "Bearer b"]);
        assert!(headers.values("x-entra-caller").is_empty());
        assert!(headers.values("x-entra-roles").is_empty());
        assert_eq!(headers.values("x-entra-tenant"), ["not configured here"]);
        assert_eq!(
            headers.values("authorization").len(),
            2,
            "left for the upstream"
        );
    }

    #[test]
    fn identity_headers_replace_whatever_is_there() {
        let mut headers = HeaderList::of(&[("x-entra-caller", "stale")]);
        set_identity_headers(
            &mut headers,
            &[
                ("x-entra-caller".into(), "app".into()),
                ("x-entra-roles".into(), "Fraud.Scan".into()),
            ],
        );
        assert_eq!(headers.values("x-entra-caller"), ["app"]);
        assert_eq!(headers.values("x-entra-roles"), ["Fraud.Scan"]);
        headers.refuse_writes = true;
        set_identity_headers(&mut headers, &[("x-entra-tenant".into(), "t".into())]);
        assert!(headers.values("x-entra-tenant").is_empty());
    }
}

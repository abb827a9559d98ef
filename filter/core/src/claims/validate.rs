//! Validating the claims of a token whose signature has already been verified.
//!
//! Check order (each step assumes the previous ones passed):
//!
//! 1. `ver`: selects which issuer form applies, so it comes first. Entra always
//!    sends it; a missing or unknown version is [`AuthError::TokenVersionUnsupported`]
//!    rather than a guess (guessing would let a v1 issuer pass as v2 or vice versa).
//! 2. `iss` and `tid`: the token comes from the tenant(s) we trust.
//! 3. `aud`: the token was issued for this API.
//! 4. `exp`, `nbf` and `iat`: the token is within its lifetime, with leeway.
//!
//! Identity before time: a stale token from the wrong tenant is reported as a
//! wrong issuer, which is the more useful signal for operators (expiry is routine,
//! a foreign issuer is misconfiguration or an attack). All checks are cheap
//! string or integer comparisons; none allocates.
//!
//! The clock is injected (`now_secs`) so that the same inputs always give the
//! same answer and tests can probe exact boundaries.

use crate::claims::model::Claims;
use crate::error::AuthError;
use crate::guid::is_guid;
use crate::options::{IssuerPolicy, TenantPolicy, VerifyOptions};

/// Entra access token versions (the `ver` claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenVersion {
    /// `ver` = "1.0": issuer `{v1_authority}/{tid}/`.
    V1,
    /// `ver` = "2.0": issuer `{v2_authority}/{tid}/v2.0`.
    V2,
}

/// Validates issuer, tenant, audience and lifetime. `now_secs` is the current
/// time in seconds since the Unix epoch.
pub fn validate_claims(
    claims: &Claims,
    options: &VerifyOptions,
    now_secs: i64,
) -> Result<(), AuthError> {
    let version = token_version(claims, &options.issuer)?;
    check_issuer(claims, &options.issuer, version)?;
    check_audience(claims, &options.audiences)?;
    check_lifetime(claims, options.leeway_secs, now_secs)
}

fn token_version(claims: &Claims, policy: &IssuerPolicy) -> Result<TokenVersion, AuthError> {
    match claims.ver.as_deref() {
        Some("1.0") if policy.accept_v1 => Ok(TokenVersion::V1),
        Some("2.0") if policy.accept_v2 => Ok(TokenVersion::V2),
        _ => Err(AuthError::TokenVersionUnsupported),
    }
}

/// The issuer must be exactly the one Entra uses for this token version and
/// tenant: byte-for-byte, no case folding, no trailing-slash tolerance. Any
/// normalisation here would widen the set of accepted issuers beyond what the
/// IdP can actually produce.
fn check_issuer(
    claims: &Claims,
    policy: &IssuerPolicy,
    version: TokenVersion,
) -> Result<(), AuthError> {
    let iss = claims.iss.as_deref().ok_or(AuthError::IssuerInvalid)?;
    let segment = issuer_tenant_segment(iss, policy, version).ok_or(AuthError::IssuerInvalid)?;

    match &policy.tenants {
        TenantPolicy::Single(tenant) => {
            if segment != tenant {
                return Err(AuthError::IssuerInvalid);
            }
            // Decision: `tid` is required even though the issuer already pins
            // the tenant. Entra puts `tid` in every access token (v1 and v2),
            // so a token without it is not one Entra issued, and a backend
            // reading `tid` (as Microsoft.Identity.Web does) would see none.
            // A `tid` that disagrees with the issuer is an inconsistent token.
            match claims.tid.as_deref() {
                Some(tid) if tid.eq_ignore_ascii_case(tenant) => Ok(()),
                _ => Err(AuthError::TenantInvalid),
            }
        }
        TenantPolicy::Multi { allowed } => {
            // The issuer template `{tenantid}` is only safe when the substituted
            // value is pinned: it must be a real tenant GUID (not `common`,
            // `organizations`, ...), exactly as Entra writes it (lowercase), agree
            // with `tid`, and be one of the tenants this API serves.
            if !is_lowercase_guid(segment) {
                return Err(AuthError::IssuerInvalid);
            }
            let tid = claims.tid.as_deref().ok_or(AuthError::TenantInvalid)?;
            if !is_guid(tid) || !tid.eq_ignore_ascii_case(segment) {
                return Err(AuthError::TenantInvalid);
            }
            if !allowed.iter().any(|t| t.eq_ignore_ascii_case(tid)) {
                return Err(AuthError::TenantNotAllowed);
            }
            Ok(())
        }
    }
}

/// Returns the tenant segment of `iss` if it has exactly the shape of the
/// version's issuer: `{authority}/{segment}/` (v1) or `{authority}/{segment}/v2.0`
/// (v2), where the segment is non-empty and contains no `/`.
fn issuer_tenant_segment<'a>(
    iss: &'a str,
    policy: &IssuerPolicy,
    version: TokenVersion,
) -> Option<&'a str> {
    let (authority, suffix) = match version {
        TokenVersion::V1 => (policy.v1_authority.as_str(), "/"),
        TokenVersion::V2 => (policy.v2_authority.as_str(), "/v2.0"),
    };
    let segment = iss
        .strip_prefix(authority)?
        .strip_prefix('/')?
        .strip_suffix(suffix)?;
    (!segment.is_empty() && !segment.contains('/')).then_some(segment)
}

fn is_lowercase_guid(s: &str) -> bool {
    is_guid(s) && !s.bytes().any(|b| b.is_ascii_uppercase())
}

/// Any `aud` value equal to any configured audience (exact, case-sensitive).
/// An empty value never matches, so an empty configured audience cannot be
/// satisfied by an empty claim.
fn check_audience(claims: &Claims, audiences: &[String]) -> Result<(), AuthError> {
    let accepted = claims
        .aud
        .iter()
        .any(|aud| !aud.is_empty() && audiences.iter().any(|a| a == aud));
    if accepted {
        Ok(())
    } else {
        Err(AuthError::AudienceInvalid)
    }
}

/// `exp` is required (a token that never expires is not acceptable for an API);
/// `nbf` applies when present; `iat`, when present, must not be in the future.
///
/// Decision on `iat`: Entra stamps `iat` with the issuing time (and `nbf` with
/// the same value), so an `iat` beyond `now + leeway` is a token from a
/// skewed or compromised issuer, or one minted to become valid later without
/// an `nbf`; it is refused as [`AuthError::IssuedInFuture`]. No maximum *age*
/// is derived from `iat`: Entra defines lifetime by `exp` alone.
///
/// Boundaries: valid while `now <= exp + leeway`, `now + leeway >= nbf` and
/// `now + leeway >= iat`.
/// Additions saturate, so absurd values (`exp = i64::MAX`, `now = i64::MIN`,
/// `leeway = u64::MAX`) compare sensibly instead of overflowing.
fn check_lifetime(claims: &Claims, leeway_secs: u64, now_secs: i64) -> Result<(), AuthError> {
    let leeway = i64::try_from(leeway_secs).unwrap_or(i64::MAX);
    let exp = claims.exp.ok_or(AuthError::ExpiryMissing)?;
    if now_secs > exp.saturating_add(leeway) {
        return Err(AuthError::Expired);
    }
    if let Some(nbf) = claims.nbf {
        if now_secs.saturating_add(leeway) < nbf {
            return Err(AuthError::NotYetValid);
        }
    }
    if let Some(iat) = claims.iat {
        if now_secs.saturating_add(leeway) < iat {
            return Err(AuthError::IssuedInFuture);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::decode::decode_claims;

    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const OTHER_TENANT: &str = "f8cdef31-a31e-4b4a-93e4-5f571e91255a";
    const CLIENT_ID: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
    const APP_URI: &str = "api://fintech-fraud-detector";
    const V1_ISS: &str = "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/";
    const V2_ISS: &str =
        "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0";
    const NOW: i64 = 1_767_226_000;
    const EXP: i64 = 1_767_230_400;
    const NBF: i64 = 1_767_225_600;
    const LEEWAY: i64 = 300;

    /// Entra's v2 app token (fixtures/entra/claims.app-token.v2.json).
    fn v2() -> Claims {
        decode_claims(
            br#"{
              "aud": "6e74172b-be56-4843-9ff4-e66a39bb12e3",
              "iss": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
              "iat": 1767225600, "nbf": 1767225600, "exp": 1767230400,
              "aio": "E2RgYJg9b3Wvvf8u5mLQ4QQ=",
              "azp": "c1d8f1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6", "azpacr": "1",
              "idtyp": "app", "oid": "a7d3b1e2-0f4c-4b8a-9e21-5c6d7e8f9a0b",
              "roles": ["Fraud.Scan"], "sub": "a7d3b1e2-0f4c-4b8a-9e21-5c6d7e8f9a0b",
              "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47", "ver": "2.0"
            }"#,
        )
        .unwrap()
    }

    /// Entra's v1 app token (fixtures/entra/claims.app-token.v1.json).
    fn v1() -> Claims {
        decode_claims(
            br#"{
              "aud": "api://fintech-fraud-detector",
              "iss": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
              "iat": 1767225600, "nbf": 1767225600, "exp": 1767230400,
              "appid": "c1d8f1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6", "appidacr": "1",
              "idp": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
              "idtyp": "app", "roles": ["Fraud.Scan"],
              "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47", "ver": "1.0"
            }"#,
        )
        .unwrap()
    }

    fn single() -> VerifyOptions {
        VerifyOptions::single_tenant(TENANT, vec![CLIENT_ID.to_string(), APP_URI.to_string()])
    }

    fn multi(allowed: &[&str]) -> VerifyOptions {
        let mut options = single();
        options.issuer.tenants = TenantPolicy::Multi {
            allowed: allowed.iter().map(|t| t.to_string()).collect(),
        };
        options
    }

    /// A v2 token from `tenant` (issuer and `tid` both name it).
    fn v2_from(tenant: &str) -> Claims {
        let mut c = v2();
        c.iss = Some(format!("https://login.microsoftonline.com/{tenant}/v2.0"));
        c.tid = Some(tenant.to_string());
        c
    }

    fn check(claims: &Claims, options: &VerifyOptions) -> Result<(), AuthError> {
        validate_claims(claims, options, NOW)
    }

    #[test]
    fn entra_v2_and_v1_tokens_are_valid() {
        assert_eq!(check(&v2(), &single()), Ok(()));
        assert_eq!(check(&v1(), &single()), Ok(()));
    }

    #[test]
    fn version_must_be_known_and_accepted() {
        for ver in [
            None,
            Some(""),
            Some("3.0"),
            Some("2"),
            Some("v2.0"),
            Some("2.0 "),
        ] {
            let mut c = v2();
            c.ver = ver.map(str::to_string);
            assert_eq!(
                check(&c, &single()),
                Err(AuthError::TokenVersionUnsupported),
                "{ver:?}"
            );
        }
        let mut options = single();
        options.issuer.accept_v1 = false;
        assert_eq!(
            check(&v1(), &options),
            Err(AuthError::TokenVersionUnsupported)
        );
        assert_eq!(check(&v2(), &options), Ok(()));
        let mut options = single();
        options.issuer.accept_v2 = false;
        assert_eq!(
            check(&v2(), &options),
            Err(AuthError::TokenVersionUnsupported)
        );
        assert_eq!(check(&v1(), &options), Ok(()));
    }

    #[test]
    fn issuer_must_match_the_token_version() {
        // A v1 issuer on a v2 token and vice versa.
        let mut c = v2();
        c.iss = Some(V1_ISS.to_string());
        assert_eq!(check(&c, &single()), Err(AuthError::IssuerInvalid));
        let mut c = v1();
        c.iss = Some(V2_ISS.to_string());
        assert_eq!(check(&c, &single()), Err(AuthError::IssuerInvalid));
    }

    #[test]
    fn issuer_look_alikes_fail() {
        let v2_lookalikes = [
            format!("{V2_ISS}/"),
            V2_ISS.to_uppercase(),
            V2_ISS.replace("login.microsoftonline.com", "Login.microsoftonline.com"),
            V2_ISS.replace(TENANT, &TENANT.to_uppercase()),
            V2_ISS.replace("https://", "http://"),
            V2_ISS.replace("v2.0", "V2.0"),
            V2_ISS.replace("/v2.0", "/v2.0/"),
            V2_ISS.replace("/v2.0", "//v2.0"),
            V2_ISS.replace(".com/", ".com//"),
            V2_ISS.replace(".com/", ".com.evil.example/"),
            V2_ISS.replace(TENANT, OTHER_TENANT),
            V2_ISS.replace(TENANT, "common"),
            V2_ISS.replace(TENANT, "organizations"),
            V2_ISS.replace(TENANT, "{tenantid}"),
            format!("{V2_ISS}?x"),
            format!(" {V2_ISS}"),
            format!("{V2_ISS}\0"),
            "https://login.microsoftonline.com/v2.0".to_string(),
            "https://login.microsoftonline.com//v2.0".to_string(),
            "https://login.microsoftonline.com".to_string(),
            String::new(),
        ];
        for iss in v2_lookalikes {
            let mut c = v2();
            c.iss = Some(iss.clone());
            assert_eq!(
                check(&c, &single()),
                Err(AuthError::IssuerInvalid),
                "{iss:?}"
            );
        }
        let v1_lookalikes = [
            V1_ISS.trim_end_matches('/').to_string(),
            format!("{V1_ISS}/"),
            format!("{V1_ISS}v2.0"),
            V1_ISS.replace("sts.windows.net", "STS.windows.net"),
            V1_ISS.replace(TENANT, OTHER_TENANT),
            V1_ISS.replace(TENANT, &TENANT.to_uppercase()),
        ];
        for iss in v1_lookalikes {
            let mut c = v1();
            c.iss = Some(iss.clone());
            assert_eq!(
                check(&c, &single()),
                Err(AuthError::IssuerInvalid),
                "{iss:?}"
            );
        }
    }

    #[test]
    fn missing_issuer_fails() {
        let mut c = v2();
        c.iss = None;
        assert_eq!(check(&c, &single()), Err(AuthError::IssuerInvalid));
    }

    #[test]
    fn custom_authorities_are_honoured() {
        let mut options = single();
        options.issuer.v2_authority = "https://login.microsoftonline.us".to_string();
        assert_eq!(check(&v2(), &options), Err(AuthError::IssuerInvalid));
        let mut c = v2();
        c.iss = Some(format!("https://login.microsoftonline.us/{TENANT}/v2.0"));
        assert_eq!(check(&c, &options), Ok(()));
    }

    #[test]
    fn single_tenant_requires_a_matching_tid() {
        let mut c = v2();
        c.tid = Some(OTHER_TENANT.to_string());
        assert_eq!(check(&c, &single()), Err(AuthError::TenantInvalid));
        c.tid = Some(String::new());
        assert_eq!(check(&c, &single()), Err(AuthError::TenantInvalid));
        c.tid = Some(TENANT.to_uppercase());
        assert_eq!(check(&c, &single()), Ok(()));
        // Entra access tokens always carry `tid`: one without it is refused
        // even though the issuer names the right tenant.
        c.tid = None;
        assert_eq!(check(&c, &single()), Err(AuthError::TenantInvalid));
        let mut c = v1();
        c.tid = None;
        assert_eq!(check(&c, &single()), Err(AuthError::TenantInvalid));
    }

    #[test]
    fn multi_tenant_accepts_allowed_tenants_in_both_versions() {
        let options = multi(&[TENANT, OTHER_TENANT]);
        assert_eq!(check(&v2(), &options), Ok(()));
        assert_eq!(check(&v1(), &options), Ok(()));
        assert_eq!(check(&v2_from(OTHER_TENANT), &options), Ok(()));
    }

    #[test]
    fn multi_tenant_refuses_tenants_not_in_the_list() {
        let options = multi(&[TENANT]);
        assert_eq!(
            check(&v2_from(OTHER_TENANT), &options),
            Err(AuthError::TenantNotAllowed)
        );
        assert_eq!(check(&v2(), &multi(&[])), Err(AuthError::TenantNotAllowed));
    }

    #[test]
    fn multi_tenant_compares_allowed_tenants_case_insensitively() {
        let upper = TENANT.to_uppercase();
        assert_eq!(check(&v2(), &multi(&[&upper])), Ok(()));
        let mut c = v2();
        c.tid = Some(upper);
        assert_eq!(check(&c, &multi(&[TENANT])), Ok(()));
    }

    #[test]
    fn multi_tenant_requires_tid_to_match_the_issuer() {
        let options = multi(&[TENANT, OTHER_TENANT]);
        // Issuer of an allowed tenant, tid of another allowed tenant.
        let mut c = v2();
        c.tid = Some(OTHER_TENANT.to_string());
        assert_eq!(check(&c, &options), Err(AuthError::TenantInvalid));
        // Missing or malformed tid.
        for tid in [
            None,
            Some(""),
            Some("contoso.onmicrosoft.com"),
            Some("72f988bf86f141af91ab2d7cd011db47"),
        ] {
            let mut c = v2();
            c.tid = tid.map(str::to_string);
            assert_eq!(
                check(&c, &options),
                Err(AuthError::TenantInvalid),
                "{tid:?}"
            );
        }
    }

    #[test]
    fn multi_tenant_issuer_segment_must_be_a_lowercase_guid() {
        let options = multi(&[TENANT]);
        for segment in [
            "common",
            "organizations",
            "consumers",
            "{tenantid}",
            "72f988bf-86f1-41af-91ab-2d7cd011db4",
            "72f988bf-86f1-41af-91ab-2d7cd011db477",
            "72f988bf_86f1_41af_91ab_2d7cd011db47",
            "72f988bg-86f1-41af-91ab-2d7cd011db47",
            "72F988BF-86F1-41AF-91AB-2D7CD011DB47",
        ] {
            let mut c = v2();
            c.iss = Some(format!("https://login.microsoftonline.com/{segment}/v2.0"));
            assert_eq!(
                check(&c, &options),
                Err(AuthError::IssuerInvalid),
                "{segment}"
            );
        }
    }

    #[test]
    fn multi_tenant_still_enforces_issuer_shape() {
        let options = multi(&[TENANT]);
        let mut c = v2();
        c.iss = Some(format!("{V2_ISS}/"));
        assert_eq!(check(&c, &options), Err(AuthError::IssuerInvalid));
        let mut c = v2();
        c.iss = Some(V1_ISS.to_string());
        assert_eq!(check(&c, &options), Err(AuthError::IssuerInvalid));
        let mut c = v2();
        c.iss = Some(format!("https://evil.example/{TENANT}/v2.0"));
        assert_eq!(check(&c, &options), Err(AuthError::IssuerInvalid));
    }

    #[test]
    fn one_matching_audience_is_enough() {
        let mut c = v2();
        c.aud = vec!["api://someone-else".to_string(), APP_URI.to_string()];
        assert_eq!(check(&c, &single()), Ok(()));
        c.aud = vec![CLIENT_ID.to_string()];
        assert_eq!(check(&c, &single()), Ok(()));
    }

    #[test]
    fn audience_must_match_exactly() {
        for aud in [
            vec![],
            vec!["api://someone-else".to_string()],
            vec![CLIENT_ID.to_uppercase()],
            vec![format!("{APP_URI}/")],
            vec![format!("{CLIENT_ID} ")],
            vec![String::new()],
            vec!["00000003-0000-0000-c000-000000000000".to_string()],
        ] {
            let mut c = v2();
            c.aud = aud.clone();
            assert_eq!(
                check(&c, &single()),
                Err(AuthError::AudienceInvalid),
                "{aud:?}"
            );
        }
    }

    #[test]
    fn no_configured_audience_accepts_nothing() {
        let mut options = single();
        options.audiences.clear();
        assert_eq!(check(&v2(), &options), Err(AuthError::AudienceInvalid));
        options.audiences = vec![String::new()];
        let mut c = v2();
        c.aud = vec![String::new()];
        assert_eq!(check(&c, &options), Err(AuthError::AudienceInvalid));
    }

    #[test]
    fn exp_is_required() {
        let mut c = v2();
        c.exp = None;
        assert_eq!(check(&c, &single()), Err(AuthError::ExpiryMissing));
    }

    #[test]
    fn exp_boundary_with_leeway() {
        let c = v2();
        assert_eq!(validate_claims(&c, &single(), EXP), Ok(()));
        assert_eq!(validate_claims(&c, &single(), EXP + LEEWAY), Ok(()));
        assert_eq!(
            validate_claims(&c, &single(), EXP + LEEWAY + 1),
            Err(AuthError::Expired)
        );
    }

    #[test]
    fn exp_boundary_without_leeway() {
        let mut options = single();
        options.leeway_secs = 0;
        assert_eq!(validate_claims(&v2(), &options, EXP), Ok(()));
        assert_eq!(
            validate_claims(&v2(), &options, EXP + 1),
            Err(AuthError::Expired)
        );
    }

    #[test]
    fn nbf_boundary_with_leeway() {
        let c = v2();
        assert_eq!(validate_claims(&c, &single(), NBF), Ok(()));
        assert_eq!(validate_claims(&c, &single(), NBF - LEEWAY), Ok(()));
        assert_eq!(
            validate_claims(&c, &single(), NBF - LEEWAY - 1),
            Err(AuthError::NotYetValid)
        );
        let mut options = single();
        options.leeway_secs = 0;
        assert_eq!(validate_claims(&c, &options, NBF), Ok(()));
        assert_eq!(
            validate_claims(&c, &options, NBF - 1),
            Err(AuthError::NotYetValid)
        );
    }

    #[test]
    fn iat_in_the_future_beyond_leeway_is_refused() {
        let mut c = v2();
        c.nbf = None;
        let iat = c.iat.unwrap();
        assert_eq!(validate_claims(&c, &single(), iat - LEEWAY), Ok(()));
        assert_eq!(
            validate_claims(&c, &single(), iat - LEEWAY - 1),
            Err(AuthError::IssuedInFuture)
        );
        // Far future (a token minted to become valid later without `nbf`).
        c.iat = Some(NOW + 30 * 24 * 3600);
        assert_eq!(check(&c, &single()), Err(AuthError::IssuedInFuture));
        // An old `iat` is fine: lifetime is `exp`'s business.
        c.iat = Some(0);
        assert_eq!(check(&c, &single()), Ok(()));
        c.iat = None;
        assert_eq!(check(&c, &single()), Ok(()));
    }

    #[test]
    fn nbf_is_optional() {
        let mut c = v2();
        c.nbf = None;
        c.iat = None;
        assert_eq!(check(&c, &single()), Ok(()));
        assert_eq!(validate_claims(&c, &single(), 0), Ok(()));
    }

    #[test]
    fn negative_exp_is_expired() {
        let mut c = v2();
        c.exp = Some(-1);
        assert_eq!(check(&c, &single()), Err(AuthError::Expired));
        c.exp = Some(i64::MIN);
        assert_eq!(check(&c, &single()), Err(AuthError::Expired));
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let mut c = v2();
        c.exp = Some(i64::MAX);
        c.nbf = Some(i64::MIN);
        c.iat = None;
        let mut options = single();
        options.leeway_secs = u64::MAX;
        for now in [i64::MIN, 0, NOW, i64::MAX] {
            assert_eq!(validate_claims(&c, &options, now), Ok(()), "{now}");
        }
        options.leeway_secs = 0;
        c.nbf = Some(i64::MAX);
        assert_eq!(validate_claims(&c, &options, i64::MAX), Ok(()));
        assert_eq!(
            validate_claims(&c, &options, i64::MAX - 1),
            Err(AuthError::NotYetValid)
        );
        c.nbf = None;
        c.exp = Some(1);
        options.leeway_secs = u64::MAX;
        // exp + huge leeway saturates at i64::MAX rather than wrapping negative.
        assert_eq!(validate_claims(&c, &options, i64::MAX), Ok(()));
    }

    #[test]
    fn checks_run_in_the_documented_order() {
        // Wrong version, wrong issuer, wrong audience and expired all at once:
        // each fix reveals the next reason.
        let mut c = v2();
        c.ver = Some("3.0".to_string());
        c.iss = Some(V2_ISS.replace(TENANT, OTHER_TENANT));
        c.aud = vec!["api://someone-else".to_string()];
        c.exp = Some(0);
        assert_eq!(
            check(&c, &single()),
            Err(AuthError::TokenVersionUnsupported)
        );
        c.ver = Some("2.0".to_string());
        assert_eq!(check(&c, &single()), Err(AuthError::IssuerInvalid));
        c.iss = Some(V2_ISS.to_string());
        assert_eq!(check(&c, &single()), Err(AuthError::AudienceInvalid));
        c.aud = vec![CLIENT_ID.to_string()];
        assert_eq!(check(&c, &single()), Err(AuthError::Expired));
        c.exp = Some(EXP);
        assert_eq!(check(&c, &single()), Ok(()));
    }

    #[test]
    fn lowercase_guid_shape() {
        assert!(is_lowercase_guid(TENANT));
        assert!(!is_lowercase_guid(&TENANT.to_uppercase()));
        assert!(!is_lowercase_guid("72f988bf-86f1-41af-91ab-2d7cd011db4"));
    }
}

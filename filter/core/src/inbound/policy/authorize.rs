//! Authorization: does a validated token satisfy the rule that matched?
//!
//! This runs only after the token's signature and claims were verified, so
//! every claim read here is trustworthy. It decides nothing about *whether* a
//! token is needed: anonymous rules are handled before any token is looked at.

use crate::claims::Claims;
use crate::error::AuthError;
pub use crate::error::Denial;

/// What a rule requires of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// No token is needed or checked (e.g. `/healthz`).
    Anonymous,
    /// A valid token is needed, plus these requirements.
    Authenticated(Requirements),
}

/// Requirements of an authenticated rule. Both parts are optional: with
/// neither, any valid token passes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirements {
    permissions: Option<Permissions>,
    callers: Option<CallerRestriction>,
}

impl Requirements {
    pub(crate) fn new(
        permissions: Option<Permissions>,
        callers: Option<CallerRestriction>,
    ) -> Requirements {
        Requirements {
            permissions,
            callers,
        }
    }

    pub fn permissions(&self) -> Option<&Permissions> {
        self.permissions.as_ref()
    }

    pub fn callers(&self) -> Option<&CallerRestriction> {
        self.callers.as_ref()
    }
}

/// `any_of` / `all_of` over a list of role or scope values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    AnyOf(Vec<String>),
    AllOf(Vec<String>),
}

impl Requirement {
    /// The required values, whichever the combinator.
    pub fn values(&self) -> &[String] {
        match self {
            Requirement::AnyOf(values) | Requirement::AllOf(values) => values,
        }
    }

    /// Case-sensitive: Entra role and scope values are case-sensitive strings,
    /// and `Fraud.scan` is not `Fraud.Scan`.
    fn is_satisfied_by(&self, granted: &[String]) -> bool {
        let has = |value: &String| granted.contains(value);
        match self {
            Requirement::AnyOf(values) => values.iter().any(has),
            Requirement::AllOf(values) => values.iter().all(has),
        }
    }
}

/// Roles and/or scopes a rule requires. With both set, either one satisfies
/// the rule (Microsoft.Identity.Web's `RequiredScopeOrAppPermission`): app
/// tokens carry `roles`, user tokens carry `scp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    app_roles: Option<Requirement>,
    scopes: Option<Requirement>,
    /// The RFC 6750 `scope` value of a 403, computed once at configuration time.
    challenge_scope: String,
}

impl Permissions {
    /// `None` when neither requirement is set: there is nothing to check.
    pub(crate) fn new(
        app_roles: Option<Requirement>,
        scopes: Option<Requirement>,
    ) -> Option<Permissions> {
        if app_roles.is_none() && scopes.is_none() {
            return None;
        }
        let mut values: Vec<&str> = Vec::new();
        for value in app_roles
            .iter()
            .chain(scopes.iter())
            .flat_map(Requirement::values)
        {
            if !values.contains(&value.as_str()) {
                values.push(value);
            }
        }
        let challenge_scope = values.join(" ");
        Some(Permissions {
            app_roles,
            scopes,
            challenge_scope,
        })
    }

    pub fn app_roles(&self) -> Option<&Requirement> {
        self.app_roles.as_ref()
    }

    pub fn scopes(&self) -> Option<&Requirement> {
        self.scopes.as_ref()
    }

    /// Every role and scope named by the rule (roles first, de-duplicated,
    /// space-separated) as sent in `WWW-Authenticate: ... scope="..."`.
    /// RFC 6750's `scope` cannot express any-of versus all-of; it lists the
    /// values that are relevant, which is what a client needs to ask for.
    pub fn challenge_scope(&self) -> &str {
        &self.challenge_scope
    }

    fn is_satisfied_by(&self, claims: &Claims) -> bool {
        let roles_ok = self
            .app_roles
            .as_ref()
            .is_some_and(|r| r.is_satisfied_by(&claims.roles));
        let scopes_ok = self
            .scopes
            .as_ref()
            .is_some_and(|s| s.is_satisfied_by(&claims.scopes));
        roles_ok || scopes_ok
    }
}

/// Which calling applications (`azp` v2 / `appid` v1) a rule accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerRestriction {
    /// Lower-case client id GUIDs.
    allowed: Vec<String>,
    trust_without_idtyp: bool,
}

impl CallerRestriction {
    pub(crate) fn new(allowed: Vec<String>, trust_without_idtyp: bool) -> CallerRestriction {
        CallerRestriction {
            allowed,
            trust_without_idtyp,
        }
    }

    pub fn allowed(&self) -> &[String] {
        &self.allowed
    }

    pub fn trusts_caller_without_idtyp(&self) -> bool {
        self.trust_without_idtyp
    }

    fn check(&self, claims: &Claims) -> Result<(), AuthError> {
        // Only `idtyp=app` proves the token was issued to the application
        // itself. Without it, `azp`/`appid` of a delegated token names the
        // client a *user* signed in to, which is a weaker statement about who
        // is calling; the operator must opt in to trusting it.
        if !claims.is_app_token() && !self.trust_without_idtyp {
            return Err(AuthError::CallerUnverified);
        }
        let Some(caller) = claims.caller_app_id() else {
            return Err(AuthError::CallerNotAllowed);
        };
        // Client ids are GUIDs: compare case-insensitively.
        if self
            .allowed
            .iter()
            .any(|id| id.eq_ignore_ascii_case(caller))
        {
            Ok(())
        } else {
            Err(AuthError::CallerNotAllowed)
        }
    }
}

/// What to do with a request no rule matches (`unmatched_requests`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnmatchedRequests {
    /// Refuse with 403 `RouteNotAllowed`.
    #[default]
    Deny,
    /// Any valid token passes.
    AllowAnyValidToken,
}

/// Checks a verified token against the access of the rule that matched the request.
///
/// Caller restrictions are checked before permissions, so a caller that is
/// not allowed at all is not told which scope the route needs.
pub fn authorize(access: &Access, claims: &Claims) -> Result<(), Denial> {
    let requirements = match access {
        Access::Anonymous => return Ok(()),
        Access::Authenticated(requirements) => requirements,
    };
    if let Some(callers) = &requirements.callers {
        callers.check(claims)?;
    }
    match &requirements.permissions {
        Some(permissions) if !permissions.is_satisfied_by(claims) => Err(Denial {
            error: AuthError::PermissionMissing,
            required_scope: Some(permissions.challenge_scope.clone()),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLER: &str = "c1d8f1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6";
    const OTHER: &str = "0f2c3b4a-5d6e-4f70-8a9b-c0d1e2f3a4b5";

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    fn rule(
        roles: Option<Requirement>,
        scopes: Option<Requirement>,
        callers: Option<CallerRestriction>,
    ) -> Access {
        Access::Authenticated(Requirements::new(Permissions::new(roles, scopes), callers))
    }

    fn any_of(values: &[&str]) -> Option<Requirement> {
        Some(Requirement::AnyOf(strings(values)))
    }

    fn all_of(values: &[&str]) -> Option<Requirement> {
        Some(Requirement::AllOf(strings(values)))
    }

    fn callers(ids: &[&str], trust: bool) -> Option<CallerRestriction> {
        Some(CallerRestriction::new(strings(ids), trust))
    }

    /// Shape of claims.app-token.v2.json.
    fn app_v2(roles: &[&str]) -> Claims {
        Claims {
            ver: Some("2.0".into()),
            azp: Some(CALLER.into()),
            idtyp: Some("app".into()),
            roles: strings(roles),
            ..Claims::default()
        }
    }

    /// Shape of claims.app-token.v1.json.
    fn app_v1(roles: &[&str]) -> Claims {
        Claims {
            ver: Some("1.0".into()),
            appid: Some(CALLER.into()),
            idtyp: Some("app".into()),
            roles: strings(roles),
            ..Claims::default()
        }
    }

    /// Shape of claims.user-token.v2.json.
    fn user_v2(scopes: &[&str]) -> Claims {
        Claims {
            ver: Some("2.0".into()),
            azp: Some(OTHER.into()),
            scopes: strings(scopes),
            ..Claims::default()
        }
    }

    fn denied(result: Result<(), Denial>) -> AuthError {
        result.expect_err("must be denied").error
    }

    #[test]
    fn anonymous_rule_always_passes() {
        assert_eq!(authorize(&Access::Anonymous, &Claims::default()), Ok(()));
    }

    #[test]
    fn no_requirements_means_any_valid_token() {
        let r = rule(None, None, None);
        assert_eq!(authorize(&r, &Claims::default()), Ok(()));
        assert_eq!(authorize(&r, &user_v2(&[])), Ok(()));
    }

    #[test]
    fn app_tokens_v1_and_v2_with_the_role_pass() {
        let r = rule(any_of(&["Fraud.Scan"]), None, callers(&[CALLER], false));
        assert_eq!(authorize(&r, &app_v2(&["Fraud.Scan"])), Ok(()));
        assert_eq!(authorize(&r, &app_v1(&["Fraud.Scan"])), Ok(()));
    }

    #[test]
    fn missing_role_is_403_with_the_scope_hint() {
        let r = rule(any_of(&["Fraud.Scan"]), None, None);
        let denial = authorize(&r, &app_v2(&["Fraud.Read"])).unwrap_err();
        assert_eq!(denial.error, AuthError::PermissionMissing);
        assert_eq!(denial.required_scope.as_deref(), Some("Fraud.Scan"));
        assert_eq!(
            denied(authorize(&r, &app_v2(&[]))),
            AuthError::PermissionMissing
        );
    }

    #[test]
    fn user_token_with_scp_does_not_satisfy_a_role() {
        let r = rule(any_of(&["Fraud.Scan"]), None, None);
        assert_eq!(
            denied(authorize(&r, &user_v2(&["Fraud.Read", "Fraud.Scan"]))),
            AuthError::PermissionMissing
        );
    }

    #[test]
    fn app_token_does_not_satisfy_a_scope() {
        let r = rule(None, any_of(&["Fraud.Scan"]), None);
        assert_eq!(
            denied(authorize(&r, &app_v2(&["Fraud.Scan"]))),
            AuthError::PermissionMissing
        );
        assert_eq!(
            authorize(&r, &user_v2(&["Fraud.Read", "Fraud.Scan"])),
            Ok(())
        );
    }

    #[test]
    fn roles_or_scopes_either_satisfies() {
        let r = rule(any_of(&["Fraud.Scan"]), any_of(&["Fraud.Scan.User"]), None);
        assert_eq!(authorize(&r, &app_v2(&["Fraud.Scan"])), Ok(()));
        assert_eq!(authorize(&r, &user_v2(&["Fraud.Scan.User"])), Ok(()));
        let denial = authorize(&r, &user_v2(&["Fraud.Read"])).unwrap_err();
        assert_eq!(
            denial.required_scope.as_deref(),
            Some("Fraud.Scan Fraud.Scan.User")
        );
    }

    #[test]
    fn any_of_and_all_of() {
        let any = rule(any_of(&["A", "B"]), None, None);
        let all = rule(all_of(&["A", "B"]), None, None);
        assert_eq!(authorize(&any, &app_v2(&["B"])), Ok(()));
        assert_eq!(
            denied(authorize(&all, &app_v2(&["B"]))),
            AuthError::PermissionMissing
        );
        assert_eq!(authorize(&all, &app_v2(&["B", "X", "A"])), Ok(()));
        let scopes_all = rule(None, all_of(&["A", "B"]), None);
        assert_eq!(
            denied(authorize(&scopes_all, &user_v2(&["A"]))),
            AuthError::PermissionMissing
        );
        assert_eq!(authorize(&scopes_all, &user_v2(&["A", "B"])), Ok(()));
    }

    #[test]
    fn role_comparison_is_case_sensitive() {
        let r = rule(any_of(&["Fraud.Scan"]), None, None);
        assert_eq!(
            denied(authorize(&r, &app_v2(&["fraud.scan"]))),
            AuthError::PermissionMissing
        );
        assert_eq!(
            denied(authorize(&r, &app_v2(&["Fraud.Scan "]))),
            AuthError::PermissionMissing
        );
    }

    #[test]
    fn caller_list_is_case_insensitive_for_guids() {
        let r = rule(None, None, callers(&[CALLER], false));
        let mut claims = app_v2(&[]);
        claims.azp = Some(CALLER.to_ascii_uppercase());
        assert_eq!(authorize(&r, &claims), Ok(()));
    }

    #[test]
    fn other_caller_is_not_allowed() {
        let r = rule(None, None, callers(&[CALLER], false));
        let mut claims = app_v2(&[]);
        claims.azp = Some(OTHER.into());
        assert_eq!(denied(authorize(&r, &claims)), AuthError::CallerNotAllowed);
        let mut v1 = app_v1(&[]);
        v1.appid = Some(OTHER.into());
        assert_eq!(denied(authorize(&r, &v1)), AuthError::CallerNotAllowed);
    }

    #[test]
    fn caller_comes_from_the_claim_of_the_token_version() {
        // v1 names its caller in `appid`, v2 in `azp`; the other version's
        // claim is never consulted (Claims::caller_app_id).
        let r = rule(None, None, callers(&[CALLER], false));
        let mut v1 = app_v1(&[]);
        v1.appid = Some(OTHER.into());
        v1.azp = Some(CALLER.into());
        assert_eq!(denied(authorize(&r, &v1)), AuthError::CallerNotAllowed);
        v1.appid = None;
        assert_eq!(denied(authorize(&r, &v1)), AuthError::CallerNotAllowed);
        v1.appid = Some(CALLER.into());
        v1.azp = Some(OTHER.into());
        assert_eq!(authorize(&r, &v1), Ok(()));

        let mut v2 = app_v2(&[]);
        v2.azp = None;
        v2.appid = Some(CALLER.into());
        assert_eq!(denied(authorize(&r, &v2)), AuthError::CallerNotAllowed);
    }

    #[test]
    fn app_token_without_caller_id_is_not_allowed() {
        let r = rule(None, None, callers(&[CALLER], false));
        let claims = Claims {
            idtyp: Some("app".into()),
            ..Claims::default()
        };
        assert_eq!(denied(authorize(&r, &claims)), AuthError::CallerNotAllowed);
    }

    #[test]
    fn caller_restriction_needs_idtyp_app_unless_trusted() {
        let strict = rule(None, None, callers(&[CALLER], false));
        let trusting = rule(None, None, callers(&[CALLER], true));
        let mut no_idtyp = app_v2(&[]);
        no_idtyp.idtyp = None;
        assert_eq!(
            denied(authorize(&strict, &no_idtyp)),
            AuthError::CallerUnverified
        );
        assert_eq!(authorize(&trusting, &no_idtyp), Ok(()));
        // A user token whose client is allowed: only with the opt-in.
        let mut user = user_v2(&[]);
        user.azp = Some(CALLER.into());
        assert_eq!(
            denied(authorize(&strict, &user)),
            AuthError::CallerUnverified
        );
        assert_eq!(authorize(&trusting, &user), Ok(()));
        user.azp = Some(OTHER.into());
        assert_eq!(
            denied(authorize(&trusting, &user)),
            AuthError::CallerNotAllowed
        );
        // `idtyp` other than "app" is not an app token.
        let mut user_typed = app_v2(&[]);
        user_typed.idtyp = Some("user".into());
        assert_eq!(
            denied(authorize(&strict, &user_typed)),
            AuthError::CallerUnverified
        );
    }

    #[test]
    fn caller_is_checked_before_permissions() {
        let r = rule(any_of(&["Fraud.Scan"]), None, callers(&[CALLER], false));
        let mut claims = app_v2(&[]);
        claims.azp = Some(OTHER.into());
        let denial = authorize(&r, &claims).unwrap_err();
        assert_eq!(denial, Denial::from(AuthError::CallerNotAllowed));
        assert_eq!(denial.required_scope, None);
    }

    #[test]
    fn challenge_scope_lists_roles_then_scopes_once() {
        let p = Permissions::new(all_of(&["A", "B"]), any_of(&["B", "C"])).unwrap();
        assert_eq!(p.challenge_scope(), "A B C");
        assert!(Permissions::new(None, None).is_none());
    }
}

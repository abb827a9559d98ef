//! The mesh policy: the FinTech example validates, the who-can-call-whom table, warnings, `--set` overrides,
//! and one test per kind of bad policy asserting the exact message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is the point

use entragate_mesh::{self as mesh, Override};

const EXAMPLE: &str = include_str!("../../examples/fintech/mesh.yaml");

/// The example with `from` replaced by `to` (which must occur exactly once).
fn edited(from: &str, to: &str) -> String {
    assert_eq!(
        EXAMPLE.matches(from).count(),
        1,
        "`{from}` must occur once in the example"
    );
    EXAMPLE.replacen(from, to, 1)
}

/// The errors of `text` as `mesh.yaml: ...` lines.
fn errors(text: &str) -> Vec<String> {
    match mesh::from_str(text, "mesh.yaml", &[]) {
        Ok(_) => panic!("the policy must be rejected"),
        Err(e) => e.lines(),
    }
}

fn assert_single_error(text: &str, expected: &str) {
    assert_eq!(errors(text), vec![expected.to_string()]);
}

/// 1-based line of the first line containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("`{needle}` not found"))
}

#[test]
fn the_example_validates_with_resolved_callers_and_derived_destinations() {
    let policy = mesh::from_str(EXAMPLE, "mesh.yaml", &[]).unwrap();
    let names: Vec<&str> = policy.services().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["fraud-detector", "transaction-processor", "reporting"]
    );
    let fraud = policy.service("fraud-detector").unwrap();
    assert!(fraud.is_callee() && !fraud.is_caller());
    assert_eq!(fraud.rules.len(), 3);
    assert_eq!(
        fraud.application.audiences,
        [
            "6e74172b-be56-4843-9ff4-e66a39bb12e3",
            "api://fintech-fraud-detector"
        ]
    );
    match &fraud.rules[1].access {
        mesh::policy::Access::Token { roles, callers, .. } => {
            assert_eq!(roles, &["Fraud.Scan"]);
            assert_eq!(callers.len(), 1);
            assert_eq!(callers[0].service, "transaction-processor");
            assert_eq!(callers[0].client_id, "c1d8f1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6");
        }
        other => panic!("analyze must need a token: {other:?}"),
    }
    let tp = policy.service("transaction-processor").unwrap();
    assert_eq!(tp.destinations, ["fraud-detector"]);
    assert!(!tp.is_callee());
    assert_eq!(
        policy
            .service("fraud-detector")
            .unwrap()
            .application
            .default_scope(),
        "api://fintech-fraud-detector/.default"
    );
}

#[test]
fn check_prints_who_can_call_whom() {
    let policy = mesh::from_str(EXAMPLE, "mesh.yaml", &[]).unwrap();
    let table = mesh::table::render(&policy);
    let expected = "\
CALLER                 CREDENTIAL    CALLEE          METHODS  ROUTE              REQUIRES
(anyone)               -          -> fraud-detector  GET      /healthz           no token
transaction-processor  secret     -> fraud-detector  POST     /fraud/analyze     role Fraud.Scan
reporting              secret     -> fraud-detector  GET      /fraud/reports/*   role Fraud.Read
(anyone)               -          -> fraud-detector  *        (no rule matches)  denied (403)
";
    assert_eq!(table, expected);
    let summary = entragate_bootstrap::cli::check::summary(&policy, "mesh.yaml");
    assert!(summary.contains(expected), "{summary}");
    assert!(
        summary.contains("warning: services.fraud-detector.rules[0]: anonymous route: GET /healthz needs no token"),
        "{summary}"
    );
    assert!(
        summary.ends_with("ok: no errors, 3 warning(s)\n"),
        "{summary}"
    );
}

#[test]
fn unknown_caller_is_named_with_its_path() {
    assert_single_error(
        &edited("allowed_callers: [reporting]", "allowed_callers: [reporting, repoting]"),
        "mesh.yaml: services.fraud-detector.rules[2].allowed_callers[1]: unknown caller `repoting`: \
         no service of that name is defined (services: fraud-detector, reporting, transaction-processor)",
    );
}

#[test]
fn a_role_the_api_does_not_expose_is_an_error() {
    assert_single_error(
        &edited("roles: [Fraud.Scan]", "roles: [Fraud.Admin]"),
        "mesh.yaml: services.fraud-detector.rules[1].roles[0]: role `Fraud.Admin` is not exposed by the \
         application of `fraud-detector` (app_roles: Fraud.Scan, Fraud.Read)",
    );
}

#[test]
fn duplicate_route_is_an_error() {
    let text = edited(
        "      - name: reports\n",
        "      - name: analyze-again\n        path: /fraud/analyze\n        methods: [POST]\n        roles: [Fraud.Scan]\n      - name: reports\n",
    );
    assert_single_error(
        &text,
        "mesh.yaml: services.fraud-detector.rules[2]: duplicate route: rules[1] (`analyze`) already matches \
         POST /fraud/analyze",
    );
}

#[test]
fn a_route_shadowed_by_an_earlier_prefix_is_an_error() {
    let text = edited(
        "      - name: analyze\n",
        "      - name: fraud-all\n        prefix: /fraud/\n        methods: [POST, GET]\n        roles: [Fraud.Scan]\n      - name: analyze\n",
    );
    assert_eq!(
        errors(&text),
        vec![
            "mesh.yaml: services.fraud-detector.rules[2]: rule `analyze` is never used: the earlier rule \
             `fraud-all` (rules[1]) matches every path and method it matches"
                .to_string(),
            "mesh.yaml: services.fraud-detector.rules[3]: rule `reports` is never used: the earlier rule \
             `fraud-all` (rules[1]) matches every path and method it matches"
                .to_string(),
        ]
    );
}

#[test]
fn a_caller_without_a_secret_is_an_error() {
    let text = edited(
        "    identity:\n      secret: aws-secretsmanager:fintech/reporting/identity\n      region: us-east-1\n",
        "",
    );
    assert_single_error(
        &text,
        "mesh.yaml: services.reporting.identity: `reporting` calls fraud-detector (allowed by \
         services.fraud-detector.rules[2]) but has no `identity`: its sidecar could not obtain tokens",
    );
}

/// Found by the `mesh_policy` fuzz target: a service with no rules that calls nobody used to
/// validate and then fail in `render`.
#[test]
fn a_service_with_nothing_to_do_is_an_error() {
    let text = format!(
        "{EXAMPLE}\n  audit:\n    application:\n      name: Audit\n      \
         client_id: 0f1e2d3c-4b5a-4678-9abc-def012345678\n    ports:\n      admin: 15030\n"
    );
    assert_single_error(
        &text,
        "mesh.yaml: services.audit: `audit` has no rules and calls no service: its sidecar would have \
         nothing to do (add `rules`, name it in another service's `allowed_callers` or `calls`, or remove it)",
    );
}

#[test]
fn a_tenant_that_is_not_a_guid_is_an_error() {
    assert_single_error(
        &edited(
            "tenant_id: 4b1f9c2e-7d3a-4e8b-9c5f-2a6d8e0b1c3f",
            "tenant_id: contoso.onmicrosoft.com",
        ),
        "mesh.yaml: identity_provider.tenant_id: `contoso.onmicrosoft.com` is not a GUID (expected \
         xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
    );
}

#[test]
fn a_client_id_that_is_not_a_guid_is_an_error() {
    assert_single_error(
        &edited(
            "client_id: 8d2e4f60-1a3b-4c5d-9e7f-0a1b2c3d4e5f",
            "client_id: 8d2e4f60-1a3b-4c5d-9e7f-0a1b2c3d4e5",
        ),
        "mesh.yaml: services.reporting.application.client_id: `8d2e4f60-1a3b-4c5d-9e7f-0a1b2c3d4e5` is not a \
         GUID (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
    );
}

#[test]
fn a_misspelt_field_is_refused_with_line_column_and_path() {
    let text = edited(
        "allowed_callers: [reporting]",
        "allowed_caller: [reporting]",
    );
    let line = line_of(&text, "allowed_caller: [reporting]");
    let all = errors(&text);
    assert_eq!(all.len(), 1);
    let expected = format!(
        "mesh.yaml:{line}:9: services.fraud-detector.rules[2]: unknown field `allowed_caller`, expected one of"
    );
    assert!(
        all[0].starts_with(&expected),
        "{}\nexpected prefix {expected}",
        all[0]
    );
}

#[test]
fn a_wrong_type_is_located() {
    let text = edited("inbound: 15006", "inbound: fifteen");
    let line = line_of(&text, "inbound: fifteen");
    let all = errors(&text);
    assert!(
        all[0].starts_with(&format!(
            "mesh.yaml:{line}:16: services.fraud-detector.ports.inbound: invalid type"
        )),
        "{}",
        all[0]
    );
}

#[test]
fn a_secret_reference_with_another_scheme_is_an_error() {
    assert_single_error(
        &edited(
            "secret: aws-secretsmanager:fintech/reporting/identity",
            "secret: vault:fintech/reporting",
        ),
        "mesh.yaml: services.reporting.identity.secret: `vault:fintech/reporting` is not a supported secret \
         reference: expected aws-secretsmanager:<secret-id>",
    );
}

#[test]
fn ports_clashing_in_one_sidecar_are_an_error() {
    assert_single_error(
        &edited("outbound: 15011", "outbound: 15020"),
        "mesh.yaml: services.reporting.ports.outbound: port 15020 clashes with services.reporting.ports.admin \
         (both on host reporting)",
    );
}

#[test]
fn ports_clashing_between_services_on_one_host_are_an_error() {
    let set = |s: &str| Override::parse(s).unwrap();
    let overrides = [
        set("services.transaction-processor.host=127.0.0.1"),
        set("services.reporting.host=127.0.0.1"),
        set("services.reporting.sidecar.agent=127.0.0.1:15901"),
    ];
    let e = mesh::from_str(EXAMPLE, "mesh.yaml", &overrides).unwrap_err();
    assert_eq!(
        e.lines(),
        vec![
            "mesh.yaml: services.reporting.sidecar.agent: port 15901 clashes with \
              services.transaction-processor.sidecar.agent (both on host 127.0.0.1)"
                .to_string()
        ]
    );
    // Every service on loopback, as for a local run: the example's ports do not clash.
    let local = [
        set("services.fraud-detector.host=127.0.0.1"),
        set("services.transaction-processor.host=127.0.0.1"),
        set("services.reporting.host=127.0.0.1"),
    ];
    mesh::from_str(EXAMPLE, "mesh.yaml", &local).unwrap();
}

#[test]
fn every_error_is_listed_not_only_the_first() {
    let text = edited("roles: [Fraud.Scan]", "roles: [Fraud.Admin]").replacen(
        "secret: aws-secretsmanager:fintech/reporting/identity",
        "secret: s3:x",
        1,
    );
    let all = errors(&text);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert!(all[0].contains("rules[1].roles[0]"));
    assert!(all[1].contains("services.reporting.identity.secret"));
}

#[test]
fn the_filter_compiler_has_the_last_word() {
    // Not normalised: the mesh checks let it through, the filter's own compiler refuses it, with the mesh path.
    let all = errors(&edited("path: /fraud/analyze", "path: /fraud/../analyze"));
    assert_eq!(all.len(), 1, "{all:#?}");
    assert!(
        all[0].starts_with("mesh.yaml: services.fraud-detector.rules[1].path"),
        "{}",
        all[0]
    );
}

#[test]
fn risky_choices_are_warnings() {
    let text = edited(
        "  cloud: public\n",
        "  cloud: public\n  multi_tenant: true\n",
    )
    .replacen(
        "    rules:                                     # first match wins; no match: 403\n",
        "    sidecar: {failure_policy: FAIL_OPEN}\n    rules:\n",
        1,
    );
    let policy = mesh::from_str(&text, "mesh.yaml", &[]).unwrap();
    let warnings: Vec<String> = policy.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        vec![
            "warning: identity_provider.multi_tenant: multi-tenant without an allow-list: any Entra ID tenant \
             can obtain tokens for these APIs; only the home tenant is accepted until \
             identity_provider.allowed_tenants lists the others",
            "warning: services.fraud-detector.rules[0]: anonymous route: GET /healthz needs no token",
            "warning: services.fraud-detector.sidecar.failure_policy: FAIL_OPEN: if the filter's VM fails, \
             requests reach the service without any check",
            "warning: services.transaction-processor.identity.secret: a client secret can leak and must be \
             rotated; aws_federation or kms_certificate need no secret (docs/deploy.md, \"Secretless callers\")",
            "warning: services.reporting.identity.secret: a client secret can leak and must be \
             rotated; aws_federation or kms_certificate need no secret (docs/deploy.md, \"Secretless callers\")",
        ]
    );
}

#[test]
fn overrides_apply_before_validation() {
    let set = |s: &str| Override::parse(s).unwrap();
    let policy = mesh::from_str(
        EXAMPLE,
        "mesh.yaml",
        &[
            set("identity_provider.authority=http://127.0.0.1:18080"),
            set("services.fraud-detector.ports.inbound=18006"),
        ],
    )
    .unwrap();
    let authority = &policy.identity_provider().authority;
    assert!(!authority.tls);
    assert_eq!(authority.host_header(), "127.0.0.1:18080");
    assert_eq!(
        policy.service("fraud-detector").unwrap().ports.inbound,
        18006
    );
    // Plain http is for loopback only, whether written or overridden.
    let e = mesh::from_str(
        EXAMPLE,
        "mesh.yaml",
        &[set("identity_provider.authority=http://idp.example.com")],
    )
    .unwrap_err();
    assert_eq!(
        e.lines(),
        vec!["mesh.yaml: identity_provider.authority: `http://idp.example.com` is not a usable authority: plain \
              http is accepted for a loopback test IdP only"
            .to_string()]
    );
}

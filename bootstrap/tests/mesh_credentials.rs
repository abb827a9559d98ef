//! A caller's credential kind in `mesh.yaml` (`identity.secret | aws_federation | kms_certificate`): validated
//! with the path named, shown in the `check` table, warned about for secrets, and rendered into an agent config
//! that the agent's own `[credential]` compiler accepts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is the point

use entragate_bootstrap::config::FileConfig;
use entragate_bootstrap::credential::{CredentialConfig, CredentialKind};
use entragate_mesh::{self as mesh, render::envoy};

const EXAMPLE: &str = include_str!("../../examples/fintech/mesh.yaml");
const TP_SECRET: &str = "      secret: aws-secretsmanager:fintech/transaction-processor/identity\n";

fn with_tp_identity(replacement: &str) -> String {
    assert_eq!(EXAMPLE.matches(TP_SECRET).count(), 1);
    EXAMPLE.replacen(TP_SECRET, replacement, 1)
}

fn errors(text: &str) -> Vec<String> {
    match mesh::from_str(text, "mesh.yaml", &[]) {
        Ok(_) => panic!("the policy must be rejected"),
        Err(e) => e.lines(),
    }
}

#[test]
fn aws_federation_caller_renders_a_secretless_agent_config() {
    let text = with_tp_identity("      aws_federation: {}\n");
    let policy = mesh::from_str(&text, "mesh.yaml", &[]).unwrap();
    let tp = policy.service("transaction-processor").unwrap();
    assert_eq!(
        tp.identity.as_ref().unwrap().credential.kind(),
        CredentialKind::AwsFederation
    );
    let table = mesh::table::render(&policy);
    assert!(table.contains("CREDENTIAL"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("transaction-processor") && l.contains(" aws-federation ")),
        "{table}"
    );
    // The secret warning stays for `reporting`, not for the secretless caller.
    let warnings: Vec<String> = policy.warnings().iter().map(|w| w.to_string()).collect();
    assert!(warnings
        .iter()
        .any(|w| w.contains("services.reporting.identity.secret: a client secret can leak")));
    assert!(!warnings
        .iter()
        .any(|w| w.contains("services.transaction-processor.identity")));

    let toml = envoy::agent_config(&policy, tp, "/run/entragate/agent-key").unwrap();
    assert!(!toml.contains("secret_id"), "{toml}");
    let file: FileConfig = toml::from_str(&toml).unwrap();
    let credential = CredentialConfig::try_from(file.credential.as_ref().unwrap()).unwrap();
    let CredentialConfig::AwsFederation(f) = credential else {
        panic!("not federation: {toml}")
    };
    assert_eq!(f.app.client_id, "c1d8f1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6");
    assert_eq!(f.app.tenant_id, "4b1f9c2e-7d3a-4e8b-9c5f-2a6d8e0b1c3f");
    assert_eq!(f.audience, "api://AzureADTokenExchange");
}

#[test]
fn kms_certificate_caller_renders_its_key_and_certificate() {
    let text = with_tp_identity(
        "      kms_certificate:\n        key_id: alias/transaction-processor\n        \
         certificate: /etc/entragate/tp.pem\n",
    );
    let policy = mesh::from_str(&text, "mesh.yaml", &[]).unwrap();
    let tp = policy.service("transaction-processor").unwrap();
    let toml = envoy::agent_config(&policy, tp, "/run/entragate/agent-key").unwrap();
    let file: FileConfig = toml::from_str(&toml).unwrap();
    let raw = file.credential.unwrap();
    assert_eq!(raw.kind, Some(CredentialKind::KmsCertificate));
    assert_eq!(raw.key_id.as_deref(), Some("alias/transaction-processor"));
    assert_eq!(raw.certificate.as_deref(), Some("/etc/entragate/tp.pem"));
    // The certificate is read when the agent starts: a missing file is refused with the key named.
    let e = CredentialConfig::try_from(&raw).unwrap_err();
    assert!(
        e.starts_with("credential.certificate: cannot read /etc/entragate/tp.pem"),
        "{e}"
    );
}

#[test]
fn bad_identities_are_refused_with_the_path() {
    assert_eq!(
        errors(&with_tp_identity(
            "      kms_certificate:\n        certificate: /c.pem\n"
        )),
        vec![
            "mesh.yaml: services.transaction-processor.identity.kms_certificate.key_id: required"
                .to_string()
        ]
    );
    let two = with_tp_identity(&format!("{TP_SECRET}      aws_federation: {{}}\n"));
    assert!(errors(&two)
        .iter()
        .any(|e| e.contains("services.transaction-processor.identity: give exactly one of secret, aws_federation and kms_certificate")));
    let typo = with_tp_identity("      aws_federation:\n        audiance: api://x\n");
    assert!(errors(&typo).iter().any(|e| e.contains("audiance")));
}

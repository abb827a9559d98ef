//! The environment variables that change what `bootstrap` does without a flag on its command line.
//!
//! Listed in one place so that what a deployment may set is documented next to the code, and so that tests
//! (this crate's and the end-to-end harness's) can start `bootstrap` with none of them inherited from the
//! developer's shell: a stray `AWS_PROFILE` or `HTTPS_PROXY` must not decide whether a test passes.

/// Read by the AWS SDK's credential, region and endpoint chain when `bootstrap` reads the client secret.
pub const AWS_SDK: &[&str] = &[
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_MAX_ATTEMPTS",
];

/// `bootstrap`'s own defaults for flags (`--config`, `--secret-id`, `--authority`, `--agent-key-file`,
/// `--policy`, `--wasm`).
pub const ENTRAGATE: &[&str] = &[
    "ENTRAGATE_CONFIG",
    "ENTRAGATE_SECRET_ID",
    "ENTRAGATE_AUTHORITY",
    "ENTRAGATE_AGENT_KEY_FILE",
    "ENTRAGATE_POLICY",
    "ENTRAGATE_WASM",
];

/// Outbound proxies honoured by the HTTP clients (Secrets Manager and the token endpoint).
pub const PROXIES: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// Every variable above.
pub fn all() -> impl Iterator<Item = &'static str> {
    AWS_SDK.iter().chain(ENTRAGATE).chain(PROXIES).copied()
}

#[cfg(test)]
mod tests {
    /// The `env = "…"` names of the CLI flags must all be listed, or a test could inherit one.
    #[test]
    fn every_flag_environment_variable_is_listed() {
        let sources = [
            include_str!("cli/agent.rs"),
            include_str!("cli/check.rs"),
            include_str!("cli/common.rs"),
            include_str!("cli/render.rs"),
        ];
        for source in sources {
            for name in source
                .split("env = \"")
                .skip(1)
                .filter_map(|rest| rest.split('"').next())
            {
                assert!(super::all().any(|v| v == name), "{name} is not listed");
            }
        }
    }
}

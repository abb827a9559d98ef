//! moto (a local Secrets Manager) for the real AWS SDK to talk to: the one launcher,
//! [`entragate_tools::moto::MotoServer`] (which installs the pinned moto on first use), plus an SDK client
//! for seeding it.
//!
//! One server per test binary, started lazily; it stops when the test process exits.

use std::ops::Deref;
use std::sync::OnceLock;

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use entragate_tools::moto::MotoServer;

/// A running moto server (`port`, `endpoint` through `Deref`).
pub struct Moto(MotoServer);

impl Deref for Moto {
    type Target = MotoServer;
    fn deref(&self) -> &MotoServer {
        &self.0
    }
}

static SHARED: OnceLock<Moto> = OnceLock::new();
static ENFORCING: OnceLock<Moto> = OnceLock::new();

/// The moto server shared by the tests of this binary (tests use distinct secret names).
pub fn shared() -> &'static Moto {
    SHARED.get_or_init(|| Moto::start(&[]))
}

/// A second server that enforces IAM authentication after its first request (moto's
/// `INITIAL_NO_AUTH_ACTION_COUNT`): the first request may seed a secret, later ones with the made-up test
/// credentials are refused — the "access denied / credentials rejected" case.
pub fn enforcing() -> &'static Moto {
    ENFORCING.get_or_init(|| Moto::start(&[("INITIAL_NO_AUTH_ACTION_COUNT", "1")]))
}

impl Moto {
    fn start(env: &[(&str, &str)]) -> Moto {
        Moto(MotoServer::start(env).unwrap_or_else(|e| panic!("moto_server did not start: {e}")))
    }

    /// An SDK client for this server with fixed test credentials (moto accepts any).
    pub fn client(&self, region: &str) -> aws_sdk_secretsmanager::Client {
        let conf = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new(
                "test",
                "test",
                None,
                None,
                "entragate-tests",
            ))
            .build();
        aws_sdk_secretsmanager::Client::from_conf(conf)
    }

    /// Creates (or overwrites) `name` with `value` in `region`.
    pub async fn put_secret(&self, region: &str, name: &str, value: &str) {
        let client = self.client(region);
        let created = client
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await;
        if created.is_err() {
            client
                .put_secret_value()
                .secret_id(name)
                .secret_string(value)
                .send()
                .await
                .unwrap();
        }
    }
}

//! The soak behind `cargo xtask soak` (which builds the filter and runs this
//! with Envoy and the wasm in the environment): a long run of mixed traffic
//! through one callee Envoy while the IdP rotates its signing key.
//!
//! `soak [--minutes N] [--seconds N] [--smoke] [--rate R] [--rotate-every S] [--warmup S]`
//!
//! - One Envoy (`envoy/callee.yaml`, 2 workers) with the filter, the test IdP
//!   and the echo upstream, all on loopback.
//! - A load loop at a fixed rate (default 200 requests/s, one task per
//!   request, bounded concurrency) cycling deterministically through request
//!   classes whose outcome is known in advance: valid app and user tokens,
//!   the anonymous route, and refusals (no token, expired, wrong audience,
//!   tampered signature, `alg: none`, unknown key, missing role, caller not
//!   allowed, unmatched route).
//! - A key rotation at the IdP every `--rotate-every` seconds (default 60), the
//!   way Entra rolls keys over: the key that starts signing was published one
//!   rotation earlier (Entra lists its next key ahead of use), a new next key
//!   is published, and the key before the previous one is withdrawn. The
//!   filter learns each key by its periodic refresh (every half rotation
//!   here), while the `UnknownKey` requests keep its rate-limited unknown-`kid`
//!   refresh busy, as an attacker would.
//!
//!   The periodic refresh runs every three quarters of a rotation, longer than
//!   the unknown-`kid` limit (30 s, the production default), so under the
//!   forged-`kid` traffic it is the limiter's refreshes that keep the keys
//!   current.
//! - One emergency rotation in the middle of the run (the middle scheduled
//!   rotation): a brand-new key is published and signs at the same instant,
//!   as after a key compromise, so the filter can learn it only by a fetch the
//!   unknown-`kid` limiter admits while the forged `UnknownKey` tokens keep
//!   asking for one. Valid tokens of that key get 401 until then (fail
//!   closed); the soak measures the time from its first use to its first 200.
//!
//! Criteria (the exit code is non-zero if one fails): no wrong decision (a
//! status other than the class's; for the emergency key's valid tokens, a 401
//! sent after its first 200 was received), no 5xx (or connection error) for
//! a valid token after warm-up, Envoy's resident memory (`VmRSS`) grows by
//! less than 10 % from the end of warm-up to the end of the run, the emergency
//! key is accepted within the unknown-`kid` limit (+1 s) of its first use, and
//! unknown-`kid` refreshes stay within the limit (one per 30 s: two a minute).
//!
//! `--smoke`: 30 s with rotations after 10 s and 20 s (the second an
//! emergency one), for CI.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use entragate_tests::policy::fraud_detector_rules;
use entragate_tests::{
    ids, Echo, Envoy, EnvoyOptions, Idp, SigningKey, TemplateVars, TokenBuilder,
};
use serde_json::{json, Value};

const MAX_RSS_GROWTH: f64 = 0.10;
/// Requests in flight at most; beyond that a tick is counted as "dropped".
const MAX_IN_FLIGHT: usize = 256;
/// Distinct tokens per class and key epoch (most requests hit the filter's
/// verified-token cache, as real service-to-service traffic does).
const TOKENS_PER_CLASS: usize = 8;
const OTHER_CALLER: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
/// The filter's default `jwks.unknown_kid_refresh_min_interval_seconds`,
/// which the soak runs with (and its criteria are derived from).
const UNKNOWN_KID_INTERVAL: Duration = Duration::from_secs(30);

struct Options {
    duration: Duration,
    rate: u32,
    rotate_every: Duration,
    warmup: Option<Duration>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            duration: Duration::from_secs(600),
            rate: 200,
            rotate_every: Duration::from_secs(60),
            warmup: None,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| -> Result<u64, String> {
                args.next()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| format!("{name} needs a number"))
            };
            match arg.as_str() {
                "--smoke" => {
                    options.duration = Duration::from_secs(30);
                    options.rotate_every = Duration::from_secs(10);
                    options.warmup = Some(Duration::from_secs(5));
                }
                "--minutes" => options.duration = Duration::from_secs(value("--minutes")? * 60),
                "--seconds" => options.duration = Duration::from_secs(value("--seconds")?),
                "--rate" => options.rate = value("--rate")?.clamp(1, 5_000) as u32,
                "--rotate-every" => {
                    options.rotate_every = Duration::from_secs(value("--rotate-every")?.max(5))
                }
                "--warmup" => options.warmup = Some(Duration::from_secs(value("--warmup")?)),
                other => return Err(format!("soak: unknown argument `{other}`")),
            }
        }
        if options.duration < Duration::from_secs(10) {
            return Err("soak: run at least 10 seconds".into());
        }
        Ok(options)
    }

    /// Which scheduled rotation (1-based) is the emergency one: the middle of
    /// those the run has time for; none if it has none.
    fn emergency_rotation(&self) -> Option<u32> {
        let planned = self.duration.as_secs().saturating_sub(1) / self.rotate_every.as_secs();
        (planned > 0).then(|| u32::try_from(planned / 2 + 1).unwrap_or(u32::MAX))
    }

    /// Until the RSS baseline: a tenth of the run, between 5 s and 60 s.
    fn warmup(&self) -> Duration {
        self.warmup.unwrap_or_else(|| {
            (self.duration / 10).clamp(Duration::from_secs(5), Duration::from_secs(60))
        })
    }
}

/// What a request is, and what the filter must answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    ValidApp,
    ValidUser,
    Anonymous,
    NoToken,
    Expired,
    WrongAudience,
    TamperedSignature,
    AlgNone,
    UnknownKey,
    MissingRole,
    CallerNotAllowed,
    UnmatchedRoute,
}

impl Class {
    /// Share of traffic, in requests per 100.
    const MIX: [(Class, u32); 12] = [
        (Class::ValidApp, 50),
        (Class::ValidUser, 10),
        (Class::Anonymous, 4),
        (Class::NoToken, 4),
        (Class::Expired, 5),
        (Class::WrongAudience, 5),
        (Class::TamperedSignature, 5),
        (Class::AlgNone, 4),
        (Class::UnknownKey, 2),
        (Class::MissingRole, 5),
        (Class::CallerNotAllowed, 4),
        (Class::UnmatchedRoute, 2),
    ];

    /// The class of request number `n` (a fixed, interleaved cycle of 100).
    fn of(n: u64) -> Class {
        // Spread each class over the cycle rather than in runs: slot i of the
        // cycle goes to the class whose cumulative share first exceeds
        // (i * 37) mod 100 (37 is coprime with 100, so every slot is used once).
        let slot = ((n % 100) * 37 % 100) as u32;
        let mut cumulative = 0;
        for (class, share) in Class::MIX {
            cumulative += share;
            if slot < cumulative {
                return class;
            }
        }
        Class::ValidApp
    }

    /// Signed by the current key and refused only after the signature is
    /// checked: 401 `signing key not found` while the filter does not know the
    /// key yet (an emergency rotation), the class's answer once it does.
    fn judged_after_the_key(self) -> bool {
        matches!(
            self,
            Class::ValidApp | Class::ValidUser | Class::MissingRole | Class::CallerNotAllowed
        )
    }

    fn valid(self) -> bool {
        matches!(self, Class::ValidApp | Class::ValidUser | Class::Anonymous)
    }

    fn expected(self) -> u16 {
        match self {
            Class::ValidApp | Class::ValidUser | Class::Anonymous => 200,
            Class::NoToken
            | Class::Expired
            | Class::WrongAudience
            | Class::TamperedSignature
            | Class::AlgNone
            | Class::UnknownKey => 401,
            Class::MissingRole | Class::CallerNotAllowed | Class::UnmatchedRoute => 403,
        }
    }

    fn request(self) -> (&'static str, &'static str) {
        match self {
            Class::ValidUser => ("GET", "/fraud/reports/daily"),
            Class::Anonymous => ("GET", "/healthz"),
            Class::UnmatchedRoute => ("GET", "/admin/users"),
            _ => ("POST", "/fraud/analyze"),
        }
    }
}

/// The tokens of one key epoch, per class.
struct Pool {
    epoch: u32,
    /// Signed by a key published at the moment it started signing.
    emergency: bool,
    tokens: BTreeMap<Class, Vec<String>>,
}

fn tamper(token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let at = chars.len().saturating_sub(10);
    if let Some(c) = chars.get_mut(at) {
        *c = if *c == 'A' { 'B' } else { 'A' };
    }
    chars.into_iter().collect()
}

/// The pool of key epoch `epoch`, signed by the IdP's signing key or, for an
/// emergency rotation, by `emergency` (a key not published yet).
fn mint(
    idp: &Idp,
    stranger: &Arc<SigningKey>,
    epoch: u32,
    emergency: Option<&Arc<SigningKey>>,
) -> Pool {
    let signed = |builder: TokenBuilder| match emergency {
        Some(key) => builder.signed_with(key),
        None => builder,
    };
    let app = || signed(idp.app_token_v2());
    let mut tokens = BTreeMap::new();
    for (class, _) in Class::MIX {
        let list = (0..TOKENS_PER_CLASS)
            .filter_map(|_| match class {
                Class::ValidApp | Class::UnmatchedRoute => Some(app().build()),
                Class::ValidUser => Some(signed(idp.user_token_v2()).build()),
                Class::Anonymous | Class::NoToken => None,
                Class::Expired => Some(app().expired_since(Duration::from_secs(900)).build()),
                Class::WrongAudience => Some(app().aud("api://someone-else").build()),
                Class::TamperedSignature => Some(tamper(&app().build())),
                Class::AlgNone => Some(app().alg_none().build()),
                Class::UnknownKey => Some(app().signed_with(stranger).build()),
                Class::MissingRole => Some(app().roles(["Fraud.Read"]).build()),
                Class::CallerNotAllowed => Some(app().claim("azp", OTHER_CALLER).build()),
            })
            .collect();
        tokens.insert(class, list);
    }
    Pool {
        epoch,
        emergency: emergency.is_some(),
        tokens,
    }
}

/// One answer to a token of the emergency key (see [`Class::judged_after_the_key`]).
struct EmergencyAnswer {
    class: Class,
    sent: Instant,
    answered: Instant,
    status: u16,
}

/// Outcome counts, shared by the request tasks.
#[derive(Default)]
struct Tally {
    /// (class, status) -> count; status 0 is a connection error.
    statuses: Mutex<BTreeMap<(Class, u16), u64>>,
    wrong: AtomicU64,
    valid_5xx_after_warmup: AtomicU64,
    valid_5xx_during_warmup: AtomicU64,
    sent: AtomicU64,
    dropped: AtomicU64,
    latencies_us: Mutex<Vec<u32>>,
    /// First few wrong decisions, for the report.
    examples: Mutex<Vec<String>>,
    /// Answers to tokens of the emergency key, judged at the end (a 401 is
    /// right until the filter has learned the key).
    emergency: Mutex<Vec<EmergencyAnswer>>,
}

/// What the request task knows about its request.
#[derive(Clone, Copy)]
struct Sent {
    class: Class,
    epoch: u32,
    emergency: bool,
    after_warmup: bool,
    at: Instant,
}

impl Tally {
    fn record(&self, sent: Sent, status: u16) {
        let Sent {
            class,
            epoch,
            emergency,
            after_warmup,
            at,
        } = sent;
        let answered = Instant::now();
        *lock(&self.statuses).entry((class, status)).or_default() += 1;
        let latency = answered.duration_since(at);
        lock(&self.latencies_us).push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
        if emergency
            && class.judged_after_the_key()
            && (status == 401 || status == class.expected())
        {
            lock(&self.emergency).push(EmergencyAnswer {
                class,
                sent: at,
                answered,
                status,
            });
            return;
        }
        let server_error = status == 0 || status >= 500;
        if class.valid() && server_error {
            let counter = if after_warmup {
                &self.valid_5xx_after_warmup
            } else {
                &self.valid_5xx_during_warmup
            };
            counter.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if status != class.expected() {
            self.wrong(format!(
                "{class:?} (key epoch {epoch}): expected {}, got {status}",
                class.expected()
            ));
        }
    }

    fn wrong(&self, example: String) {
        self.wrong.fetch_add(1, Ordering::Relaxed);
        let mut examples = lock(&self.examples);
        if examples.len() < 10 {
            examples.push(example);
        }
    }

    /// The emergency key's figures: time from the first use of a valid token
    /// to its first 200, and the valid tokens refused before; counts a 401
    /// sent after that 200 was received as a wrong decision.
    fn judge_emergency(&self) -> Option<EmergencyFigures> {
        let answers = lock(&self.emergency);
        let valid = || answers.iter().filter(|a| a.class.valid());
        let first_use = valid().map(|a| a.sent).min()?;
        let learned = valid()
            .filter(|a| a.status == 200)
            .map(|a| a.answered)
            .min();
        for answer in answers.iter().filter(|a| a.status == 401) {
            if learned.is_some_and(|at| answer.sent >= at) {
                self.wrong(format!(
                    "{:?} (emergency key): 401 after the key was accepted",
                    answer.class
                ));
            }
        }
        let refused_before = valid()
            .filter(|a| a.status == 401 && learned.is_none_or(|at| a.sent < at))
            .count() as u64;
        Some(EmergencyFigures {
            first_use,
            to_first_200: learned.map(|at| at.duration_since(first_use)),
            refused_before,
            accepted: valid().filter(|a| a.status == 200).count() as u64,
        })
    }
}

struct EmergencyFigures {
    first_use: Instant,
    to_first_200: Option<Duration>,
    refused_before: u64,
    accepted: u64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = Options::parse(&args).and_then(|options| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("tokio: {e}"))?
            .block_on(soak(&options))
            .map_err(|e| format!("{e:#}"))
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("soak: {message}");
            ExitCode::FAILURE
        }
    }
}

fn plugin_config(idp: &Idp, rotate_every: Duration) -> Value {
    let refresh_interval_seconds = (rotate_every.as_secs() * 3 / 4).max(1);
    json!({
        "realm": "fraud-detector",
        "tenant_id": idp.tenant_id(),
        "audiences": [ids::API_APP_ID, ids::API_APP_ID_URI],
        "jwks": {
            "cluster": "entra_idp",
            "authority": "login.microsoftonline.com",
            "keys_path": idp.jwks_path(),
            // Keys roll over every `rotate_every`, each published one
            // rotation ahead: a refresh every three quarters of a rotation
            // learns every key before it signs (production default: hourly,
            // for Entra's weeks-ahead publication). The unknown-kid limit is
            // the production default (UNKNOWN_KID_INTERVAL), not set here.
            "refresh_interval_seconds": refresh_interval_seconds
        },
        "rules": fraud_detector_rules()
    })
}

/// Envoy's resident set size in KiB (`VmRSS` of /proc/<pid>/status).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted.get(index).copied().unwrap_or(0)) / 1000.0
}

async fn soak(options: &Options) -> anyhow::Result<bool> {
    let idp = Arc::new(Idp::start()?);
    // The key the first rollover switches to, published before Envoy's first
    // fetch (every later one is published a whole rotation ahead).
    idp.publish_next_key()?;
    let echo = Echo::start()?;
    let template = std::fs::read_to_string(entragate_tests::repo_root().join("envoy/callee.yaml"))?;
    let vars = TemplateVars::new()
        .set("UPSTREAM_PORT", echo.port())
        .set("IDP_HOST", "127.0.0.1")
        .set("IDP_PORT", idp.port())
        .json_string("PLUGIN_CONFIG", &plugin_config(&idp, options.rotate_every));
    let envoy = Envoy::start_with(
        &template,
        vars,
        EnvoyOptions {
            log_level: "warning".into(),
            component_log_level: None,
            ..EnvoyOptions::default()
        },
    )
    .await?;
    let pid = envoy.pid();
    let stranger = idp.unpublished_key()?;
    let pool = Arc::new(RwLock::new(mint(&idp, &stranger, 0, None)));
    let emergency_rotation = options.emergency_rotation();
    println!(
        "soak: {} s at {} requests/s, key rotation every {} s (emergency: {}), warm-up {} s; Envoy pid {pid}, RSS {} KiB",
        options.duration.as_secs(),
        options.rate,
        options.rotate_every.as_secs(),
        emergency_rotation.map_or("none".into(), |r| format!("rotation {r}")),
        options.warmup().as_secs(),
        rss_kib(pid).unwrap_or(0)
    );

    let tally = Arc::new(Tally::default());
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(64)
        .build()?;
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let started = Instant::now();
    let warmup = options.warmup();
    let mut baseline_rss = None;
    let mut rss_samples: Vec<(u64, u64)> = Vec::new();
    let mut next_rotation = started + options.rotate_every;
    let mut next_report = started + Duration::from_secs(10);
    let mut rotations = 0u32;
    let mut rotation_task: Option<tokio::task::JoinHandle<anyhow::Result<()>>> = None;
    let mut pace = tokio::time::interval(Duration::from_secs(1) / options.rate);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let base = format!("http://{}", envoy.listener());
    let mut n: u64 = 0;

    while started.elapsed() < options.duration {
        pace.tick().await;
        let now = Instant::now();
        if now >= next_rotation
            && next_rotation < started + options.duration
            && rotation_task.as_ref().is_none_or(|t| t.is_finished())
        {
            next_rotation += options.rotate_every;
            rotations += 1;
            let (idp, pool, stranger) =
                (Arc::clone(&idp), Arc::clone(&pool), Arc::clone(&stranger));
            let epoch = rotations;
            let emergency = emergency_rotation == Some(epoch);
            rotation_task = Some(tokio::task::spawn_blocking(move || {
                rotate(&idp, &pool, &stranger, epoch, emergency)
            }));
        }
        if now >= next_report {
            next_report += Duration::from_secs(10);
            let rss = rss_kib(pid).unwrap_or(0);
            rss_samples.push((started.elapsed().as_secs(), rss));
            echo.clear();
            println!(
                "soak: {:>4} s  sent {:>7}  wrong {}  valid 5xx {}  dropped {}  key epoch {}  RSS {} KiB",
                started.elapsed().as_secs(),
                tally.sent.load(Ordering::Relaxed),
                tally.wrong.load(Ordering::Relaxed),
                tally.valid_5xx_after_warmup.load(Ordering::Relaxed)
                    + tally.valid_5xx_during_warmup.load(Ordering::Relaxed),
                tally.dropped.load(Ordering::Relaxed),
                pool.read().unwrap_or_else(PoisonError::into_inner).epoch,
                rss
            );
        }
        let after_warmup = started.elapsed() >= warmup;
        if after_warmup && baseline_rss.is_none() {
            baseline_rss = rss_kib(pid);
            println!(
                "soak: warm-up over, RSS baseline {} KiB",
                baseline_rss.unwrap_or(0)
            );
        }

        let Ok(permit) = Arc::clone(&in_flight).try_acquire_owned() else {
            tally.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let class = Class::of(n);
        let (epoch, emergency, token) = {
            let pool = pool.read().unwrap_or_else(PoisonError::into_inner);
            let list = pool.tokens.get(&class);
            let token = list.and_then(|l| l.get((n / 100) as usize % l.len().max(1)).cloned());
            (pool.epoch, pool.emergency, token)
        };
        n += 1;
        let (method, path) = class.request();
        let mut request = match method {
            "GET" => client.get(format!("{base}{path}")),
            _ => client.post(format!("{base}{path}")).body(r#"{"amount":1}"#),
        };
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let tally = Arc::clone(&tally);
        tally.sent.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let sent = Sent {
                class,
                epoch,
                emergency,
                after_warmup,
                at: Instant::now(),
            };
            let status = request.send().await.map_or(0, |r| r.status().as_u16());
            tally.record(sent, status);
            drop(permit);
        });
    }
    // Let the last requests finish.
    let _ = in_flight.acquire_many(MAX_IN_FLIGHT as u32).await;
    if let Some(task) = rotation_task {
        task.await??;
    }
    let end_rss = rss_kib(pid).unwrap_or(0);
    rss_samples.push((started.elapsed().as_secs(), end_rss));
    let stats = envoy.stats().await.unwrap_or_default();
    drop(envoy);

    report(
        options,
        &tally,
        baseline_rss,
        end_rss,
        &rss_samples,
        rotations,
        &stats,
        &idp,
        started,
    )
}

/// Entra's rollover: the key published one rotation ago starts signing, the
/// token pool switches to it, a new next key is published, and the key before
/// the previous one is withdrawn (tokens of the previous epoch stay valid
/// while they may still be in flight).
///
/// `emergency`: a brand-new key signs instead, published this instant (the
/// announced key stays published, and is withdrawn by the next rotation).
fn rotate(
    idp: &Idp,
    pool: &RwLock<Pool>,
    stranger: &Arc<SigningKey>,
    epoch: u32,
    emergency: bool,
) -> anyhow::Result<()> {
    let previous = idp.signing_key();
    let published = idp.published_keys();
    // Published last, one rotation ago, and not signing yet.
    let next = published
        .last()
        .filter(|k| k.kid() != previous.kid())
        .map(|k| k.kid().to_string())
        .ok_or_else(|| anyhow::anyhow!("no key published ahead of the rollover"))?;
    let older: Vec<String> = published
        .iter()
        .skip(1) // the standby key published at start stays
        .filter(|k| k.kid() != previous.kid() && k.kid() != next)
        .map(|k| k.kid().to_string())
        .collect();
    if emergency {
        // The slow parts (key generation, signing the pool) first, so that the
        // key enters the JWKS the moment its tokens start being sent.
        let key = idp.unpublished_key()?;
        let announced = idp.unpublished_key()?;
        let fresh = mint(idp, stranger, epoch, Some(&key));
        idp.publish_shared_key(&key);
        idp.sign_with(key.kid())?;
        idp.publish_shared_key(&announced);
        *pool.write().unwrap_or_else(PoisonError::into_inner) = fresh;
    } else {
        idp.sign_with(&next)?;
        idp.publish_next_key()?;
        let fresh = mint(idp, stranger, epoch, None);
        *pool.write().unwrap_or_else(PoisonError::into_inner) = fresh;
    }
    for kid in older {
        idp.unpublish_key(&kid);
    }
    println!(
        "soak: key rotation {epoch}: signing with {} ({}), {} keys published",
        idp.signing_key().kid(),
        if emergency {
            "EMERGENCY: unannounced, published this instant"
        } else {
            "published a rotation ago"
        },
        idp.published_keys().len()
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn report(
    options: &Options,
    tally: &Tally,
    baseline_rss: Option<u64>,
    end_rss: u64,
    rss_samples: &[(u64, u64)],
    rotations: u32,
    stats: &BTreeMap<String, u64>,
    idp: &Idp,
    started: Instant,
) -> anyhow::Result<bool> {
    // First: a late 401 of the emergency key counts as a wrong decision.
    let emergency = tally.judge_emergency();
    let statuses = lock(&tally.statuses).clone();
    let mut latencies = lock(&tally.latencies_us).clone();
    latencies.sort_unstable();
    let answered: u64 = statuses.values().sum();
    println!();
    println!("== soak results ({} s)", options.duration.as_secs());
    println!(
        "{:<20} {:>8} {:>9}  answers",
        "class", "expected", "requests"
    );
    for (class, _) in Class::MIX {
        let answers: Vec<String> = statuses
            .iter()
            .filter(|((c, _), _)| *c == class)
            .map(|((_, status), count)| format!("{status}: {count}"))
            .collect();
        let total: u64 = statuses
            .iter()
            .filter(|((c, _), _)| *c == class)
            .map(|(_, count)| count)
            .sum();
        println!(
            "{:<20} {:>8} {:>9}  {}",
            format!("{class:?}"),
            class.expected(),
            total,
            answers.join(", ")
        );
    }
    let wrong = tally.wrong.load(Ordering::Relaxed);
    let valid_5xx = tally.valid_5xx_after_warmup.load(Ordering::Relaxed);
    let growth = baseline_rss.map(|base| (end_rss as f64 - base as f64) / base.max(1) as f64);
    println!();
    println!(
        "requests sent {}, answered {answered}, dropped (client at {MAX_IN_FLIGHT} in flight) {}",
        tally.sent.load(Ordering::Relaxed),
        tally.dropped.load(Ordering::Relaxed)
    );
    println!(
        "achieved rate {:.1} requests/s; latency ms p50 {:.2}, p99 {:.2}, max {:.2}",
        answered as f64 / options.duration.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    let stat = |name: &str| {
        stats
            .get(&format!("wasmcustom.entragate.jwks.{name}"))
            .copied()
            .unwrap_or(0)
    };
    let minutes = options.duration.as_secs_f64() / 60.0;
    let unknown_kid_refreshes = stat("unknown_kid_refreshes");
    println!(
        "key rotations {rotations}; JWKS requests at the IdP {} ({:.1}/min); Envoy jwks.fetch_ok {}, fetch_failed {}",
        idp.jwks_fetches(),
        idp.jwks_fetches() as f64 / minutes,
        stat("fetch_ok"),
        stat("fetch_failed")
    );
    println!(
        "unknown-kid refreshes {unknown_kid_refreshes} ({:.2}/min; all caused by forged kids but at most the one the emergency key's first tokens won)",
        unknown_kid_refreshes as f64 / minutes
    );
    if let Some(e) = &emergency {
        println!(
            "emergency key: first used {:.1} s into the run; first 200 {} after its first use; {} valid requests refused (401) before, {} accepted",
            e.first_use.duration_since(started).as_secs_f64(),
            e.to_first_200
                .map_or("never".into(), |d| format!("{:.2} s", d.as_secs_f64())),
            e.refused_before,
            e.accepted
        );
    }
    let samples: Vec<String> = rss_samples
        .iter()
        .map(|(t, kib)| format!("{t}s:{}M", kib / 1024))
        .collect();
    println!("Envoy RSS over time: {}", samples.join(" "));
    for example in lock(&tally.examples).iter() {
        println!("wrong decision: {example}");
    }

    let mut ok = true;
    let mut criterion = |name: &str, pass: bool, detail: String| {
        println!("{} {name}: {detail}", if pass { "PASS" } else { "FAIL" });
        ok &= pass;
    };
    criterion(
        "wrong decisions",
        wrong == 0,
        format!("{wrong} (must be 0)"),
    );
    criterion(
        "5xx for valid tokens after warm-up",
        valid_5xx == 0,
        format!(
            "{valid_5xx} (must be 0; {} during warm-up)",
            tally.valid_5xx_during_warmup.load(Ordering::Relaxed)
        ),
    );
    match (baseline_rss, growth) {
        (Some(base), Some(growth)) => criterion(
            "Envoy RSS growth",
            growth < MAX_RSS_GROWTH,
            format!(
                "{base} KiB after warm-up -> {end_rss} KiB at the end: {:+.1} % (must be < {:.0} %)",
                growth * 100.0,
                MAX_RSS_GROWTH * 100.0
            ),
        ),
        _ => criterion(
            "Envoy RSS growth",
            false,
            "no RSS reading (is /proc mounted?)".into(),
        ),
    }
    if let Some(e) = &emergency {
        let limit = UNKNOWN_KID_INTERVAL + Duration::from_secs(1);
        criterion(
            "emergency key learned under forged-kid traffic",
            e.to_first_200.is_some_and(|d| d <= limit),
            format!(
                "first 200 {} after first use (must be <= {} s: the unknown-kid limit + 1 s)",
                e.to_first_200
                    .map_or("never".into(), |d| format!("{:.2} s", d.as_secs_f64())),
                limit.as_secs()
            ),
        );
    }
    // Grants are at least UNKNOWN_KID_INTERVAL apart, the first one at any time.
    let max_refreshes = options.duration.as_secs() / UNKNOWN_KID_INTERVAL.as_secs() + 1;
    criterion(
        "unknown-kid refreshes",
        unknown_kid_refreshes <= max_refreshes,
        format!(
            "{unknown_kid_refreshes} in {} s (at most {max_refreshes}: one per {} s, two a minute)",
            options.duration.as_secs(),
            UNKNOWN_KID_INTERVAL.as_secs()
        ),
    );
    criterion(
        "traffic",
        answered > 0 && tally.dropped.load(Ordering::Relaxed) * 100 <= answered,
        format!(
            "{answered} answered, {} dropped (at most 1 %)",
            tally.dropped.load(Ordering::Relaxed)
        ),
    );
    Ok(ok)
}

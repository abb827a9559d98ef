//! The benchmark behind `cargo xtask bench` (which builds the filter, installs
//! `wrk` and runs this with `--wasm FILE`): entragate against Envoy's native
//! `jwt_authn` in the same Envoy.
//!
//! `bench --wasm FILE [--smoke] [--seconds N] [--rounds N] [--pool N] [--hot-only] [--cases a,b]`
//!
//! It lives in the harness crate because it needs the test IdP (tokens, JWKS)
//! and the Envoy runner; the xtask only launches it, so `cargo xtask` itself
//! stays free of the harness's dependencies.
//!
//! One Envoy (`--concurrency 2`, `envoy/bench.yaml`) has identical listeners
//! that differ only in their auth filters, each answering from a
//! `direct_response`. `wrk` drives them in alternating rounds with two
//! workloads: `hot` (one caller token repeated: the service-to-service case)
//! and `cold` (a distinct valid token per request from a pre-minted pool).
//! Tokens come from the test IdP of `entragate-tests`, which also serves the
//! JWKS to both entragate and `jwt_authn`. The table is printed at the end;
//! `docs/performance.md` explains it. No speed threshold is asserted: the run
//! fails only if a listener refuses a valid token or accepts a bad one.

mod mesh;
mod report;
mod wrk;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use entragate_tests::{ids, Envoy, EnvoyOptions, Idp, TemplateVars};
use serde_json::{json, Value};

use report::{Facts, Results};

const THREADS: u32 = 2;
const CONNECTIONS: u32 = 16;
/// `entragate_anon` is the entragate listener on an anonymous route: the
/// cost of the wasm filter itself, without any token work.
/// `entragate_native*`: the same core and configuration as an Envoy dynamic
/// module (docs/native.md); `entragate_native_noaudit` without publishing
/// the audit record (`audit_fields: false`: no access log reads it here, and
/// `jwt_authn` publishes nothing). `mesh_plain` and `mesh_mtls` go through a second Envoy (the caller's sidecar) to
/// `entragate` in clear or over mTLS ([`mesh`]): their difference is the TLS
/// cost per request on kept-alive connections.
const HOT_CASES: [&str; 10] = [
    "noauth",
    "jwt",
    "jwt_cache",
    "entragate",
    "entragate_anon",
    "entragate_native",
    "entragate_native_anon",
    "entragate_native_noaudit",
    "mesh_plain",
    "mesh_mtls",
];
const COLD_CASES: [&str; 6] = [
    "noauth",
    "jwt",
    "jwt_cache",
    "entragate",
    "entragate_pure",
    "entragate_native",
];
/// The caller role (outbound filter) of each host against no filter at all.
const CALLER_CASES: [&str; 3] = ["noauth", "caller_wasm", "caller_native"];
const CUT_BEGIN: &str = "# -- entragate listeners begin";
const CUT_END: &str = "# -- entragate listeners end";
/// Inside the cut: where the native listener starts (the wasm ones come before).
const NATIVE_BEGIN: &str = "# -- entragate native listener begin";

struct Options {
    seconds: u32,
    rounds: u32,
    pool: usize,
    warmup_seconds: u32,
    /// The filter to load (required).
    wasm: Option<PathBuf>,
    /// The filter as a dynamic module (required).
    native: Option<PathBuf>,
    hot_only: bool,
    /// Only these cases (`--cases a,b`), e.g. one listener under a profiler.
    cases: Option<Vec<String>>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            seconds: 10,
            rounds: 3,
            pool: 10_000,
            warmup_seconds: 3,
            wasm: None,
            native: None,
            hot_only: false,
            cases: None,
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
                    options.seconds = 1;
                    options.rounds = 1;
                    options.pool = 1_000;
                    options.warmup_seconds = 1;
                }
                "--seconds" => options.seconds = value("--seconds")?.max(1) as u32,
                "--rounds" => options.rounds = value("--rounds")?.max(1) as u32,
                "--pool" => options.pool = value("--pool")?.max(1) as usize,
                "--wasm" => {
                    let path = args.next().ok_or("--wasm needs a file")?;
                    options.wasm = Some(PathBuf::from(path));
                }
                "--native" => {
                    let path = args.next().ok_or("--native needs a file")?;
                    options.native = Some(PathBuf::from(path));
                }
                "--hot-only" => options.hot_only = true,
                "--cases" => {
                    let list = args
                        .next()
                        .ok_or("--cases needs a list, e.g. entragate_native,jwt_cache")?;
                    let cases: Vec<String> = list.split(',').map(str::to_string).collect();
                    if let Some(unknown) = cases.iter().find(|c| {
                        ![&HOT_CASES[..], &COLD_CASES[..], &CALLER_CASES[..]]
                            .iter()
                            .any(|known| known.contains(&c.as_str()))
                    }) {
                        return Err(format!(
                            "--cases: no case `{unknown}` (hot: {HOT_CASES:?}, cold: {COLD_CASES:?}, caller: {CALLER_CASES:?})"
                        ));
                    }
                    options.cases = Some(cases);
                }
                other => return Err(format!("bench: unknown argument `{other}`")),
            }
        }
        Ok(options)
    }
}

impl Options {
    /// Whether `case` runs (every case unless `--cases` chose some).
    fn selected(&self, case: &str) -> bool {
        self.cases
            .as_ref()
            .is_none_or(|cases| cases.iter().any(|c| c == case))
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let options = Options::parse(args)?;
    let wasm = options
        .wasm
        .clone()
        .ok_or("--wasm FILE is required (cargo xtask bench passes it)")?;
    if options.native.is_none() {
        return Err("--native FILE is required (cargo xtask bench passes it)".to_string());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio: {e}"))?;
    runtime
        .block_on(bench(&options, &wasm))
        .map_err(|e| format!("{e:#}"))
}

async fn bench(options: &Options, wasm: &Path) -> anyhow::Result<()> {
    let idp = Idp::start()?;
    let hot_token = idp.app_token_v2().build();
    let started = Instant::now();
    let pool = mint(&idp, if options.hot_only { 1 } else { options.pool });
    println!(
        "bench: minted {} tokens in {:.1} s",
        pool.len(),
        started.elapsed().as_secs_f64()
    );

    let dir = std::env::temp_dir().join(format!("entragate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let _cleanup = RemoveOnDrop(dir.clone());
    let pool_path = dir.join("pool.txt");
    std::fs::write(&pool_path, pool.join("\n") + "\n")?;
    let hot_script = dir.join("hot.lua");
    std::fs::write(&hot_script, wrk::hot_script(&hot_token))?;
    let cold_script = dir.join("cold.lua");
    std::fs::write(&cold_script, wrk::cold_script(&pool_path, THREADS))?;
    let caller_script = dir.join("caller.lua");
    std::fs::write(&caller_script, wrk::caller_script())?;

    let template = std::fs::read_to_string(
        entragate_tests::repo_root()
            .join("envoy")
            .join("bench.yaml"),
    )?;
    let native = options.native.as_deref().unwrap_or(Path::new(""));
    let (callee_certs, caller_certs) = mesh::certificates(&dir.join("tls"))?;
    let vars = template_vars(&idp, wasm, &callee_certs)
        .set("NATIVE_MODULE", native.display())
        .set("AGENT_PORT", entragate_tests::free_port()?);
    let envoy_options = EnvoyOptions {
        log_level: "warning".into(),
        component_log_level: Some("wasm:info".into()),
        concurrency: 2,
        startup_timeout: Duration::from_secs(60),
        ..EnvoyOptions::default()
    };
    let mut facts = Facts {
        wasm_bytes: std::fs::metadata(wasm)?.len(),
        rounds: options.rounds,
        load_before: load_average(),
        seconds: options.seconds,
        pool: pool.len(),
        ..Facts::default()
    };

    // Memory of the same Envoy without the wasm listeners.
    {
        let envoy = Envoy::start_with(
            &without_entragate(&template),
            vars.clone(),
            envoy_options.clone(),
        )
        .await?;
        first_ok(&envoy, "jwt", &hot_token, Instant::now()).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        facts.rss_without_filter_kib = rss_kib(envoy.pid());
    }
    // And with the native module only (no wasm VM): issue 12's memory target
    // compares this with the Envoy above.
    if options.selected("entragate_native") {
        let envoy =
            Envoy::start_with(&native_only(&template), vars.clone(), envoy_options.clone()).await?;
        first_ok(&envoy, "entragate_native", &hot_token, Instant::now()).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        facts.rss_native_only_kib = rss_kib(envoy.pid());
    }

    let start = Instant::now();
    let envoy = Envoy::start_with(&template, vars, envoy_options.clone()).await?;
    let (entragate, jwt) = tokio::join!(
        first_ok(&envoy, "entragate", &hot_token, start),
        first_ok(&envoy, "jwt", &hot_token, start)
    );
    facts.first_ok_entragate_ms = entragate?;
    facts.first_ok_jwt_ms = jwt?;
    first_ok(&envoy, "entragate_pure", &hot_token, start).await?;
    first_ok(&envoy, "entragate_native", &hot_token, start).await?;
    first_ok(&envoy, "entragate_native_noaudit", &hot_token, start).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    facts.rss_with_filter_idle_kib = rss_kib(envoy.pid());
    facts.signature_path = signature_paths(&envoy.logs());
    check_enforcement(&envoy, &idp, &hot_token).await?;
    let listener = |name: &str| {
        envoy
            .listener_named(name)
            .ok_or_else(|| anyhow::anyhow!("no listener `{name}` in envoy/bench.yaml"))
    };
    let caller = Envoy::start_with(
        &mesh::caller_config(
            listener("entragate")?,
            listener("entragate_mtls")?,
            &caller_certs,
        ),
        TemplateVars::new(),
        envoy_options.clone(),
    )
    .await?;
    for case in ["mesh_plain", "mesh_mtls"] {
        first_ok(&caller, case, &hot_token, Instant::now()).await?;
    }

    // Warm-up: V8 compiles wasm in tiers; the first seconds are not steady state.
    let warm = options.warmup_seconds;
    for case in ["caller_wasm", "caller_native"] {
        if !options.hot_only && options.selected(case) {
            run_wrk(&caller_script, &url(&envoy, case)?, warm).await?;
        }
    }
    for case in [
        "entragate",
        "entragate_pure",
        "entragate_native",
        "entragate_native_noaudit",
    ] {
        if !options.selected(case) {
            continue;
        }
        let url = url(&envoy, case)?;
        run_wrk(&hot_script, &url, warm).await?;
        run_wrk(&cold_script, &url, warm).await?;
    }

    let clock_ticks = clock_ticks_per_second();
    let mut results = Results::new();
    for round in 0..options.rounds {
        let workloads = [
            ("hot", &hot_script, &HOT_CASES[..]),
            ("cold", &cold_script, &COLD_CASES[..]),
            ("caller", &caller_script, &CALLER_CASES[..]),
        ];
        for (workload, script, cases) in workloads.iter().take(if options.hot_only { 1 } else { 3 })
        {
            let cases: Vec<&str> = cases
                .iter()
                .copied()
                .filter(|case| options.selected(case))
                .collect();
            if cases.is_empty() {
                continue;
            }
            // Rotate the order so no listener always runs first or last.
            let offset = round as usize % cases.len();
            for i in 0..cases.len() {
                let case = cases[(i + offset) % cases.len()];
                // The mesh cases enter through the caller's Envoy; CPU counts both Envoys (the caller's
                // is idle in the other cases).
                let target = if case.starts_with("mesh_") {
                    &caller
                } else {
                    &envoy
                };
                let both = || cpu_ticks(envoy.pid()) + cpu_ticks(caller.pid());
                let cpu_before = both();
                let mut sample = run_wrk(script, &url(target, case)?, options.seconds).await?;
                let cpu = both().saturating_sub(cpu_before) as f64;
                if sample.requests > 0 {
                    sample.envoy_cpu_us = cpu * 1e6 / clock_ticks as f64 / sample.requests as f64;
                }
                let (workload, case): (&'static str, &'static str) = (*workload, case);
                println!(
                    "bench: round {} {workload:<4} {case:<15} {:>9.0} req/s  p50 {:.3} ms  p99 {:.3} ms  cpu {:.1} us/req{}",
                    round + 1,
                    sample.requests_per_sec,
                    sample.p50_ms,
                    sample.p99_ms,
                    sample.envoy_cpu_us,
                    if sample.non_2xx > 0 {
                        format!("  NON-2XX: {}", sample.non_2xx)
                    } else {
                        String::new()
                    }
                );
                results
                    .entry(workload)
                    .or_default()
                    .entry(case)
                    .or_default()
                    .push(sample);
            }
        }
    }

    facts.rss_with_filter_after_kib = rss_kib(envoy.pid());
    facts.load_after = load_average();
    let stats = envoy.stats().await?;
    facts.cache_hits = stats
        .get("wasmcustom.entragate.token_cache.hits")
        .copied()
        .unwrap_or(0);
    facts.cache_misses = stats
        .get("wasmcustom.entragate.token_cache.misses")
        .copied()
        .unwrap_or(0);

    // The caller cases only measure something if the token was attached.
    if let Some(caller) = results.get("caller") {
        for (case, prefix) in [
            ("caller_wasm", "wasmcustom."),
            ("caller_native", "dynamicmodulescustom."),
        ] {
            let injected = stats
                .get(&format!("{prefix}entragate.outbound.token_injected"))
                .copied()
                .unwrap_or(0);
            if caller.contains_key(case) && injected == 0 {
                anyhow::bail!("{case}: no token was injected (the caller role did not run)");
            }
        }
    }

    println!();
    println!("{}", report::render(&results, &facts));
    if let Some(hot) = results.get("hot") {
        if let (Some(plain), Some(mtls)) = (hot.get("mesh_plain"), hot.get("mesh_mtls")) {
            let (plain, mtls) = (report::median(plain), report::median(mtls));
            println!(
                "TLS between sidecars (hot, keep-alive, both Envoys): mTLS {:.1} us CPU/request vs {:.1} in clear \
                 (+{:.1} us, {:+.0} %); p50 {:.3} ms vs {:.3} ms; {:.0} vs {:.0} req/s",
                mtls.envoy_cpu_us,
                plain.envoy_cpu_us,
                mtls.envoy_cpu_us - plain.envoy_cpu_us,
                (mtls.envoy_cpu_us / plain.envoy_cpu_us - 1.0) * 100.0,
                mtls.p50_ms,
                plain.p50_ms,
                mtls.requests_per_sec,
                plain.requests_per_sec
            );
        }
    }
    let refused: u64 = results
        .values()
        .flat_map(|cases| cases.values().flatten())
        .map(|s| s.non_2xx)
        .sum();
    if refused > 0 {
        anyhow::bail!(
            "{refused} valid requests were refused: the numbers above are not comparable"
        );
    }
    Ok(())
}

fn template_vars(idp: &Idp, wasm: &Path, certs: &Path) -> TemplateVars {
    let config = |pure: bool, audit_fields: bool| -> Value {
        let mut config = json!({
            "tenant_id": idp.tenant_id(),
            "audiences": [ids::API_APP_ID],
            "jwks": {"cluster": "entra_idp", "authority": format!("127.0.0.1:{}", idp.port())},
            "rules": [
                {"name": "anon", "path": {"exact": "/anon"}, "anonymous": true},
                {"name": "bench", "path": {"prefix": "/"}, "app_roles": {"any_of": [ids::CLIENT_ROLE]}}
            ]
        });
        if pure {
            config["signature_verifier"] = json!("pure");
        }
        if !audit_fields {
            config["audit_fields"] = json!(false);
        }
        config
    };
    TemplateVars::new()
        .set("ADMIN_PORT", 0)
        .set("IDP_PORT", idp.port())
        .set("JWKS_PATH", idp.jwks_path())
        .set("ISSUER", idp.issuer_v2())
        .set("AUDIENCE", ids::API_APP_ID)
        .set("ROLE", ids::CLIENT_ROLE)
        .set("WASM_PATH", wasm.display())
        .set("CERT_DIR", certs.display())
        .json_string("ENTRAGATE_CONFIG", &config(false, true))
        .json_string("ENTRAGATE_PURE_CONFIG", &config(true, true))
        .json_string("ENTRAGATE_NOAUDIT_CONFIG", &config(false, false))
        .json_string(
            "CALLER_CONFIG",
            &json!({
                "agent": {"cluster": "entragate_agent", "key": "ab".repeat(32), "timeout_ms": 1000},
                "destinations": [{"name": "bench", "scope": "api://bench/.default", "hosts": ["bench"]}]
            }),
        )
}

/// Distinct valid tokens (each has its own `uti`), signed on every core.
fn mint(idp: &Idp, count: usize) -> Vec<String> {
    let builders: Vec<_> = (0..count).map(|_| idp.app_token_v2()).collect();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = count.div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = builders
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|b| b.build()).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// The template without any entragate listener (Envoy's memory without the filter).
fn without_entragate(template: &str) -> String {
    cut(template, CUT_BEGIN, CUT_END)
}

/// The template with the native listener but none of the wasm ones.
fn native_only(template: &str) -> String {
    cut(template, CUT_BEGIN, NATIVE_BEGIN)
}

/// `template` without what lies from marker `from` up to marker `to` (which
/// stays: it is a comment); unchanged if either is missing or out of order.
fn cut(template: &str, from: &str, to: &str) -> String {
    match (template.find(from), template.find(to)) {
        (Some(begin), Some(end)) if begin < end => {
            format!("{}{}", &template[..begin], &template[end..])
        }
        _ => template.to_string(),
    }
}

/// The URL of a case: a listener, plus the path (`entragate_anon` is the
/// entragate listener on its anonymous route).
fn url(envoy: &Envoy, case: &str) -> anyhow::Result<String> {
    let (listener, path) = match case {
        "entragate_anon" => ("entragate", "/anon"),
        "entragate_native_anon" => ("entragate_native", "/anon"),
        other => (other, "/bench"),
    };
    let addr = envoy
        .listener_named(listener)
        .ok_or_else(|| anyhow::anyhow!("no listener `{listener}` in envoy/bench.yaml"))?;
    Ok(format!("http://{addr}{path}"))
}

/// The 1-minute load average: other work on the machine skews every number.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".to_string())
}

async fn status(envoy: &Envoy, listener: &str, token: &str) -> anyhow::Result<u16> {
    let response = entragate_tests::http_client()
        .get(url(envoy, listener)?)
        .bearer_auth(token)
        .send()
        .await?;
    Ok(response.status().as_u16())
}

/// Milliseconds from `start` until `listener` first answers 200 to `token`.
async fn first_ok(
    envoy: &Envoy,
    listener: &str,
    token: &str,
    start: Instant,
) -> anyhow::Result<f64> {
    let deadline = start + Duration::from_secs(60);
    loop {
        if let Ok(200) = status(envoy, listener, token).await {
            return Ok(start.elapsed().as_secs_f64() * 1000.0);
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "{listener} never accepted a valid token\n{}",
                envoy.log_tail(40)
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Every authenticated listener must enforce the same thing, or the
/// comparison is meaningless.
async fn check_enforcement(envoy: &Envoy, idp: &Idp, valid: &str) -> anyhow::Result<()> {
    let mut tampered = valid.to_string();
    let at = tampered.rfind('.').unwrap_or(0) + 20;
    let replacement = if tampered.get(at..=at) == Some("A") {
        "B"
    } else {
        "A"
    };
    tampered.replace_range(at..=at, replacement);
    let no_role = idp.app_token_v2().roles(["Other.Role"]).build();
    let wrong_audience = idp.app_token_v2().aud("api://someone-else").build();
    // jwt_authn answers a wrong audience with 403 where entragate says 401
    // (RFC 6750 invalid_token): what matters here is pass versus refuse.
    for listener in [
        "jwt",
        "jwt_cache",
        "entragate",
        "entragate_pure",
        "entragate_native",
    ] {
        for (what, token, expected) in [
            ("valid", valid, &[200][..]),
            ("tampered", tampered.as_str(), &[401][..]),
            ("wrong audience", wrong_audience.as_str(), &[401, 403][..]),
            ("missing role", no_role.as_str(), &[403][..]),
        ] {
            let got = status(envoy, listener, token).await?;
            if !expected.contains(&got) {
                anyhow::bail!("{listener}: {what} token got {got}, expected {expected:?}");
            }
        }
    }
    Ok(())
}

/// The filter's start-up lines naming the signature path, one per plugin.
fn signature_paths(logs: &str) -> String {
    let mut paths: Vec<String> = logs
        .lines()
        .filter_map(|line| line.split("signatures checked by ").nth(1))
        .map(|rest| rest.split(';').next().unwrap_or(rest).trim().to_string())
        .collect();
    paths.sort();
    paths.dedup();
    if paths.is_empty() {
        "unknown (no start-up line in the log)".to_string()
    } else {
        paths.join("; ")
    }
}

/// utime + stime of a process (all threads), in clock ticks (`/proc/PID/stat`).
fn cpu_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // Fields after the parenthesised command name; utime and stime
            // are fields 14 and 15 of the whole line.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: u64 = fields.get(11)?.parse().ok()?;
            let stime: u64 = fields.get(12)?.parse().ok()?;
            Some(utime + stime)
        })
        .unwrap_or(0)
}

fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

async fn run_wrk(script: &Path, url: &str, seconds: u32) -> anyhow::Result<wrk::Sample> {
    let (script, url) = (script.to_path_buf(), url.to_string());
    tokio::task::spawn_blocking(move || wrk::run(&script, &url, THREADS, CONNECTIONS, seconds))
        .await?
        .map_err(anyhow::Error::msg)
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

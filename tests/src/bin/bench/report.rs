//! Aggregating rounds and printing the table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::wrk::Sample;

/// Median of each measure over the rounds (each measure on its own).
pub fn median(samples: &[Sample]) -> Sample {
    let pick = |f: fn(&Sample) -> f64| {
        let mut values: Vec<f64> = samples.iter().map(f).collect();
        values.sort_by(|a, b| a.total_cmp(b));
        values.get(values.len() / 2).copied().unwrap_or(0.0)
    };
    Sample {
        requests_per_sec: pick(|s| s.requests_per_sec),
        p50_ms: pick(|s| s.p50_ms),
        p99_ms: pick(|s| s.p99_ms),
        requests: samples.iter().map(|s| s.requests).sum(),
        non_2xx: samples.iter().map(|s| s.non_2xx).sum(),
        envoy_cpu_us: pick(|s| s.envoy_cpu_us),
    }
}

/// Everything measured outside the load runs.
#[derive(Debug, Default)]
pub struct Facts {
    pub wasm_bytes: u64,
    pub wasm_note: String,
    pub rss_without_filter_kib: u64,
    pub rss_with_filter_idle_kib: u64,
    /// The same Envoy with the native module as its only entragate filter.
    pub rss_native_only_kib: u64,
    pub rss_with_filter_after_kib: u64,
    pub first_ok_entragate_ms: f64,
    pub first_ok_jwt_ms: f64,
    pub signature_path: String,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub rounds: u32,
    pub seconds: u32,
    pub pool: usize,
    pub load_before: String,
    pub load_after: String,
}

/// `results[workload][case]` = samples of every round.
pub type Results = BTreeMap<&'static str, BTreeMap<&'static str, Vec<Sample>>>;

pub fn render(results: &Results, facts: &Facts) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "entragate bench: {} round(s) x {} s per case, wrk -t2 -c16, Envoy --concurrency 2; medians over rounds",
        facts.rounds, facts.seconds
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| workload | listener | req/s | p50 ms | p99 ms | Envoy CPU us/req | non-2xx |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|");
    let mut medians: BTreeMap<(&str, &str), Sample> = BTreeMap::new();
    for (workload, cases) in results {
        for (case, samples) in cases {
            let m = median(samples);
            medians.insert((workload, case), m);
            let _ = writeln!(
                out,
                "| {workload} | {case} | {:.0} | {:.3} | {:.3} | {:.1} | {} |",
                m.requests_per_sec, m.p50_ms, m.p99_ms, m.envoy_cpu_us, m.non_2xx
            );
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "| ratio | value | target |");
    let _ = writeln!(out, "|---|---:|---|");
    let rate = |w: &str, c: &str| medians.get(&(w, c)).map(|s| s.requests_per_sec);
    let p99 = |w: &str, c: &str| medians.get(&(w, c)).map(|s| s.p99_ms);
    // Throughput implied by CPU cost alone: 1 / (CPU per request).
    let by_cpu = |w: &str, c: &str| {
        medians
            .get(&(w, c))
            .filter(|s| s.envoy_cpu_us > 0.0)
            .map(|s| 1.0 / s.envoy_cpu_us)
    };
    let mut ratio = |name: &str, a: Option<f64>, b: Option<f64>, target: &str| {
        let value = match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "n/a".to_string(),
        };
        let _ = writeln!(out, "| {name} | {value} | {target} |");
    };
    ratio(
        "hot: entragate / jwt_authn",
        rate("hot", "entragate"),
        rate("hot", "jwt"),
        "",
    );
    ratio(
        "hot: entragate / jwt_authn+cache",
        rate("hot", "entragate"),
        rate("hot", "jwt_cache"),
        ">= 1.0",
    );
    ratio(
        "hot: entragate / no-auth",
        rate("hot", "entragate"),
        rate("hot", "noauth"),
        ">= 0.9",
    );
    ratio(
        "hot: p99 entragate / jwt_authn+cache",
        p99("hot", "entragate"),
        p99("hot", "jwt_cache"),
        "<= 1.2",
    );
    ratio(
        "hot, by CPU/request: entragate / jwt_authn+cache",
        by_cpu("hot", "entragate"),
        by_cpu("hot", "jwt_cache"),
        ">= 1.0",
    );
    ratio(
        "hot, by CPU/request: entragate / no-auth",
        by_cpu("hot", "entragate"),
        by_cpu("hot", "noauth"),
        ">= 0.9",
    );
    ratio(
        "hot: entragate anonymous route / no-auth",
        rate("hot", "entragate_anon"),
        rate("hot", "noauth"),
        "(wasm filter floor)",
    );
    ratio(
        "caller: native outbound / no-auth",
        rate("caller", "caller_native"),
        rate("caller", "noauth"),
        "",
    );
    ratio(
        "caller, by CPU/request: native outbound / no-auth",
        by_cpu("caller", "caller_native"),
        by_cpu("caller", "noauth"),
        "",
    );
    ratio(
        "caller: wasm outbound / no-auth",
        rate("caller", "caller_wasm"),
        rate("caller", "noauth"),
        "",
    );
    ratio(
        "cold: entragate / jwt_authn",
        rate("cold", "entragate"),
        rate("cold", "jwt"),
        ">= 0.8",
    );
    ratio(
        "cold: entragate / no-auth",
        rate("cold", "entragate"),
        rate("cold", "noauth"),
        "",
    );
    ratio(
        "cold: p99 entragate / jwt_authn",
        p99("cold", "entragate"),
        p99("cold", "jwt"),
        "<= 1.2",
    );
    ratio(
        "cold, by CPU/request: entragate / jwt_authn",
        by_cpu("cold", "entragate"),
        by_cpu("cold", "jwt"),
        ">= 0.8",
    );
    ratio(
        "cold: entragate_pure / jwt_authn",
        rate("cold", "entragate_pure"),
        rate("cold", "jwt"),
        "",
    );
    // The same core as an Envoy dynamic module (issue 12's targets).
    ratio(
        "hot: entragate_native / jwt_authn+cache",
        rate("hot", "entragate_native"),
        rate("hot", "jwt_cache"),
        ">= 1.0",
    );
    ratio(
        "hot: entragate_native / no-auth",
        rate("hot", "entragate_native"),
        rate("hot", "noauth"),
        ">= 0.9",
    );
    ratio(
        "hot, by CPU/request: entragate_native / jwt_authn+cache",
        by_cpu("hot", "entragate_native"),
        by_cpu("hot", "jwt_cache"),
        ">= 1.0",
    );
    ratio(
        "hot: p99 entragate_native / jwt_authn+cache",
        p99("hot", "entragate_native"),
        p99("hot", "jwt_cache"),
        "<= 1.1",
    );
    ratio(
        "hot, by CPU/request: entragate_native without audit fields / jwt_authn+cache",
        by_cpu("hot", "entragate_native_noaudit"),
        by_cpu("hot", "jwt_cache"),
        "(audit record off)",
    );
    ratio(
        "hot, by CPU/request: entragate_native without audit fields / no-auth",
        by_cpu("hot", "entragate_native_noaudit"),
        by_cpu("hot", "noauth"),
        "(audit record off)",
    );
    ratio(
        "hot: entragate_native anonymous route / no-auth",
        rate("hot", "entragate_native_anon"),
        rate("hot", "noauth"),
        "(native module floor)",
    );
    ratio(
        "cold: entragate_native / jwt_authn",
        rate("cold", "entragate_native"),
        rate("cold", "jwt"),
        ">= 1.0",
    );
    ratio(
        "cold: p99 entragate_native / jwt_authn",
        p99("cold", "entragate_native"),
        p99("cold", "jwt"),
        "<= 1.1",
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "| fact | value |");
    let _ = writeln!(out, "|---|---|");
    let _ = writeln!(
        out,
        "| .wasm size | {} bytes ({:.1} KiB){} |",
        facts.wasm_bytes,
        facts.wasm_bytes as f64 / 1024.0,
        facts.wasm_note
    );
    let _ = writeln!(
        out,
        "| Envoy RSS without the filter (idle) | {:.1} MiB |",
        facts.rss_without_filter_kib as f64 / 1024.0
    );
    if facts.rss_native_only_kib > 0 {
        let (native, without) = (
            facts.rss_native_only_kib as f64 / 1024.0,
            facts.rss_without_filter_kib as f64 / 1024.0,
        );
        let _ = writeln!(
            out,
            "| Envoy RSS with the native module only (idle, one token verified) | {native:.1} MiB ({:+.1} MiB; target <= +10) |",
            native - without
        );
    }
    let _ = writeln!(
        out,
        "| Envoy RSS with every filter (idle / after the runs) | {:.1} MiB / {:.1} MiB |",
        facts.rss_with_filter_idle_kib as f64 / 1024.0,
        facts.rss_with_filter_after_kib as f64 / 1024.0
    );
    let _ = writeln!(
        out,
        "| Envoy start to first 200 (entragate / jwt_authn) | {:.0} ms / {:.0} ms |",
        facts.first_ok_entragate_ms, facts.first_ok_jwt_ms
    );
    let _ = writeln!(out, "| entragate signatures | {} |", facts.signature_path);
    let _ = writeln!(
        out,
        "| entragate token cache hits / misses (all runs) | {} / {} |",
        facts.cache_hits, facts.cache_misses
    );
    let _ = writeln!(out, "| cold token pool | {} distinct tokens |", facts.pool);
    let _ = writeln!(
        out,
        "| load average (1 min) before / after | {} / {} |",
        facts.load_before, facts.load_after
    );
    out
}

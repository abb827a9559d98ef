//! Driving `wrk` and reading its report.

use std::path::Path;
use std::process::Command;

/// One wrk run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub requests: u64,
    /// Answers that were not 2xx/3xx: any is a broken benchmark (an auth
    /// filter refusing requests would look fast).
    pub non_2xx: u64,
    /// Envoy's CPU time (user + system, all threads) per request, in
    /// microseconds: unlike req/s it hardly depends on what else the machine
    /// is doing, so it is the number to compare on a busy machine.
    pub envoy_cpu_us: f64,
}

/// wrk script sending one fixed token (the `hot` workload).
pub fn hot_script(token: &str) -> String {
    format!("wrk.method = \"GET\"\nwrk.headers[\"Authorization\"] = \"Bearer {token}\"\n")
}

/// wrk script for the caller role: no token in, a destination the outbound
/// filter matches (`Host: bench`), so each request leaves with one attached.
pub fn caller_script() -> String {
    "wrk.method = \"GET\"\nwrk.headers[\"Host\"] = \"bench\"\n".to_string()
}

/// wrk script cycling through the tokens in `pool` (one per line), each
/// thread taking every `threads`-th one from its own offset, so no token is
/// sent twice before the whole pool has been used (the `cold` workload).
pub fn cold_script(pool: &Path, threads: u32) -> String {
    format!(
        r#"local tokens = {{}}
for line in io.lines("{pool}") do tokens[#tokens + 1] = line end
local next_thread = 0
function setup(thread)
  thread:set("offset", next_thread)
  next_thread = next_thread + 1
end
local counter = -1
function request()
  if counter < 0 then counter = offset end
  local token = tokens[(counter % #tokens) + 1]
  counter = counter + {threads}
  return wrk.format("GET", nil, {{ ["Authorization"] = "Bearer " .. token }})
end
"#,
        pool = pool.display()
    )
}

pub fn run(
    script: &Path,
    url: &str,
    threads: u32,
    connections: u32,
    seconds: u32,
) -> Result<Sample, String> {
    let output = Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("--latency")
        .arg("-s")
        .arg(script)
        .arg(url)
        .output()
        .map_err(|e| format!("running wrk: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(format!(
            "wrk failed ({}): {text}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    parse(&text).ok_or_else(|| format!("could not read wrk's report:\n{text}"))
}

/// Reads `Requests/sec`, the 50% and 99% latency lines (`--latency`), the
/// request count and `Non-2xx or 3xx responses`.
pub fn parse(report: &str) -> Option<Sample> {
    let mut sample = Sample::default();
    let mut seen_rate = false;
    for line in report.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("Requests/sec:") {
            sample.requests_per_sec = rest.trim().parse().ok()?;
            seen_rate = true;
        } else if let Some(rest) = line.strip_prefix("50%") {
            sample.p50_ms = duration_ms(rest.trim())?;
        } else if let Some(rest) = line.strip_prefix("99%") {
            sample.p99_ms = duration_ms(rest.trim())?;
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            sample.non_2xx = rest.trim().parse().ok()?;
        } else if line.contains("requests in") {
            sample.requests = line.split_whitespace().next()?.parse().ok()?;
        }
    }
    seen_rate.then_some(sample)
}

/// `310.00us`, `1.23ms`, `2.00s` -> milliseconds.
fn duration_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    match unit {
        "us" => Some(value / 1000.0),
        "ms" => Some(value),
        "s" => Some(value * 1000.0),
        "m" => Some(value * 60_000.0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_wrk_report() {
        let report = "Running 1s test @ http://127.0.0.1:1/bench
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   510.27us  300.12us   8.01ms   90.00%
    Req/Sec    15.20k     1.10k   17.00k    70.00%
  Latency Distribution
     50%  455.00us
     75%  600.00us
     90%  800.00us
     99%    1.52ms
  30200 requests in 1.00s, 3.10MB read
  Non-2xx or 3xx responses: 7
Requests/sec:  30150.42
Transfer/sec:      3.09MB
";
        let sample = parse(report).unwrap();
        assert_eq!(sample.requests_per_sec, 30150.42);
        assert_eq!(sample.p50_ms, 0.455);
        assert_eq!(sample.p99_ms, 1.52);
        assert_eq!(sample.requests, 30200);
        assert_eq!(sample.non_2xx, 7);
        assert!(parse("garbage").is_none());
    }
}

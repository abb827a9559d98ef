//! Retry delays shared by every fetch the filter makes through Envoy (the JWKS
//! and the outbound role's agent callouts).
//!
//! There is no RNG inside a proxy-wasm VM, and tests need deterministic
//! delays, so the jitter is derived from the worker id, the attempt number and
//! the clock: Envoys (and workers) that failed together drift apart, while the
//! same inputs always give the same delay.

use crate::host::UnixMillis;

/// Delay before attempt `failures + 1`: `initial_ms * 2^(failures-1)`, capped
/// at `max_ms`, minus up to 10% jitter. The jitter only ever shortens the
/// delay, so `max_ms` stays an upper bound.
pub fn jittered_backoff_ms(
    initial_ms: u64,
    max_ms: u64,
    worker_id: u32,
    failures: u32,
    now: UnixMillis,
) -> u64 {
    let exponent = failures.saturating_sub(1).min(63);
    let factor = 1u64.checked_shl(exponent).unwrap_or(u64::MAX);
    let base = initial_ms.saturating_mul(factor).min(max_ms);
    let spread = base / 10;
    if spread == 0 {
        return base;
    }
    let seed = u64::from(worker_id) ^ (u64::from(failures) << 32) ^ now;
    base - splitmix64(seed) % (spread + 1)
}

/// A well-mixed 64-bit hash of `x` (SplitMix64's finaliser).
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_only_shortens() {
        for failures in 1..=12u32 {
            let base = (200u64 << (failures - 1)).min(5_000);
            let delay = jittered_backoff_ms(200, 5_000, 3, failures, 1_000);
            assert!(
                base * 9 / 10 <= delay && delay <= base,
                "{failures}: {delay}"
            );
        }
        assert!(jittered_backoff_ms(200, 5_000, 3, u32::MAX, 7) <= 5_000);
        assert_eq!(jittered_backoff_ms(0, 5_000, 3, 4, 7), 0);
        assert_eq!(
            jittered_backoff_ms(5, 5_000, 3, 1, 7),
            5,
            "no spread below 10 ms"
        );
    }

    #[test]
    fn differs_between_workers_but_is_deterministic() {
        let delays: Vec<u64> = (0..8)
            .map(|w| jittered_backoff_ms(1_000, 60_000, w, 3, 42))
            .collect();
        assert!(
            delays.iter().any(|d| Some(d) != delays.first()),
            "{delays:?}"
        );
        assert_eq!(
            jittered_backoff_ms(1_000, 60_000, 5, 3, 42),
            jittered_backoff_ms(1_000, 60_000, 5, 3, 42)
        );
    }
}

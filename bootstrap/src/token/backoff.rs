//! Retry pacing: exponential backoff with jitter for network errors and 5xx, `Retry-After` for 429.

use std::time::{Duration, SystemTime};

/// Longest `Retry-After` we obey; a larger value is clamped so a misconfigured proxy cannot park the agent
/// for hours while the cached token runs out. Documented in the README.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10 * 60);

/// Exponential backoff with "equal jitter": the n-th delay is uniformly drawn from `[d/2, d]` where
/// `d = min(max, initial * 2^n)`. Half of the delay is guaranteed (no hammering after a lucky draw of 0);
/// the other half spreads a fleet of agents that failed at the same moment.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            attempt: 0,
        }
    }

    /// The upper bound of the next delay, before jitter.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// Next delay; `unit` is a random number in `[0, 1)` (see [`random_unit`]).
    pub fn next_delay(&mut self, unit: f64) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }

    /// The longest delay this backoff will ever produce (used for permanent errors: retry slowly).
    pub fn max(&self) -> Duration {
        self.max
    }

    /// Failures since the last [`Backoff::reset`].
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Parses `Retry-After`: delta-seconds or an HTTP-date (RFC 9110 §10.2.3), clamped to [`MAX_RETRY_AFTER`].
/// A date in the past means "now" (zero).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let delay = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// A random number in `[0, 1)` from the OS generator (falls back to the clock's nanoseconds if the OS
/// generator fails, which is good enough for jitter).
pub fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    let bits = if getrandom::fill(&mut bytes).is_ok() {
        u64::from_le_bytes(bytes)
    } else {
        u64::from(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0),
        )
    };
    // 53 random bits -> uniform double in [0, 1).
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_equal_jitter() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(4));
        assert_eq!(b.next_delay(0.0), Duration::from_millis(250));
        assert_eq!(
            b.next_delay(0.999_999),
            Duration::from_millis(1000) - Duration::from_nanos(500)
        );
        assert_eq!(b.next_delay(0.5), Duration::from_millis(1500));
        assert_eq!(b.next_delay(0.0), Duration::from_secs(2));
        assert_eq!(b.next_delay(0.0), Duration::from_secs(2)); // capped at 4s ceiling
        assert_eq!(b.attempts(), 5);
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(500));
    }

    #[test]
    fn never_overflows() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        for _ in 0..200 {
            assert!(b.next_delay(random_unit()) <= Duration::from_secs(60));
        }
    }

    #[test]
    fn random_unit_in_range() {
        for _ in 0..1000 {
            let u = random_unit();
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("86400", now), Some(MAX_RETRY_AFTER));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }
}

//! When a token from the agent is refreshed, and until when it is attached.
//!
//! The rule (documented in `docs/configuration.md`), with `lifetime` the
//! `expires_in` the agent reported when the token was fetched:
//!
//! * **refresh margin** = `min(refresh_before_expiry_ms, lifetime × percent / 100)`
//!   (defaults: 5 minutes, 10 %): an hour-long token is refreshed 5 minutes before
//!   expiry, a 20-second test token 2 seconds before. The refresh runs in the
//!   background (root `on_tick`): requests keep using the current token.
//! * **refresh at** = `expires_at − margin`. The percentage is capped at 50, so
//!   this is never before half the lifetime: an agent handing out an
//!   almost-expired token cannot cause a callout storm (each refetch waits at
//!   least half of what was left).
//! * **usable until** = `expires_at − min(expiry_margin_ms, margin / 2)`: a
//!   token that would expire in flight is never attached. Always after the
//!   refresh point, so a failing refresh has time to be retried before requests
//!   notice; after it, requests are refused (503) rather than sent with a token
//!   the callee would reject.

use crate::host::UnixMillis;

/// The configured refresh policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenTiming {
    pub refresh_before_expiry_ms: u64,
    /// 1..=50 (so a refresh never comes before half the lifetime).
    pub refresh_before_expiry_percent: u64,
    pub expiry_margin_ms: u64,
}

impl TokenTiming {
    pub const DEFAULT_REFRESH_BEFORE_EXPIRY_MS: u64 = 300_000;
    pub const DEFAULT_REFRESH_BEFORE_EXPIRY_PERCENT: u64 = 10;
    pub const DEFAULT_EXPIRY_MARGIN_MS: u64 = 5_000;

    /// The refresh margin for a token with this lifetime.
    pub fn refresh_margin_ms(&self, lifetime_ms: u64) -> u64 {
        let share = lifetime_ms.saturating_mul(self.refresh_before_expiry_percent) / 100;
        self.refresh_before_expiry_ms.min(share)
    }

    /// The schedule of a token received at `received_at_ms` that the agent
    /// said expires in `expires_in_ms`.
    pub fn schedule(&self, received_at_ms: UnixMillis, expires_in_ms: u64) -> TokenSchedule {
        let expires_at_ms = received_at_ms.saturating_add(expires_in_ms);
        let margin = self.refresh_margin_ms(expires_in_ms);
        let usable_until_ms = expires_at_ms.saturating_sub(self.expiry_margin_ms.min(margin / 2));
        let refresh_at_ms = expires_at_ms.saturating_sub(margin);
        TokenSchedule {
            expires_at_ms,
            refresh_at_ms,
            usable_until_ms,
        }
    }
}

impl Default for TokenTiming {
    fn default() -> Self {
        TokenTiming {
            refresh_before_expiry_ms: Self::DEFAULT_REFRESH_BEFORE_EXPIRY_MS,
            refresh_before_expiry_percent: Self::DEFAULT_REFRESH_BEFORE_EXPIRY_PERCENT,
            expiry_margin_ms: Self::DEFAULT_EXPIRY_MARGIN_MS,
        }
    }
}

/// Instants of one token's life, all in host milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenSchedule {
    pub expires_at_ms: UnixMillis,
    /// From here on a background refresh is due.
    pub refresh_at_ms: UnixMillis,
    /// From here on the token is no longer attached.
    pub usable_until_ms: UnixMillis,
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_700_000_000_000;

    #[test]
    fn hour_long_token_refreshes_five_minutes_early() {
        let s = TokenTiming::default().schedule(T, 3_599_000);
        assert_eq!(s.expires_at_ms, T + 3_599_000);
        assert_eq!(s.refresh_at_ms, T + 3_599_000 - 300_000);
        assert_eq!(s.usable_until_ms, T + 3_599_000 - 5_000);
    }

    #[test]
    fn short_tokens_scale_with_their_lifetime() {
        let s = TokenTiming::default().schedule(T, 20_000);
        assert_eq!(s.refresh_at_ms, T + 18_000, "10 % of 20 s");
        assert_eq!(s.usable_until_ms, T + 19_000, "half the margin");
    }

    #[test]
    fn refresh_always_precedes_the_end_of_use() {
        let timing = TokenTiming::default();
        for lifetime in [1, 2, 10, 999, 1_000, 5_000, 60_000, 3_599_000, 86_399_000] {
            let s = timing.schedule(T, lifetime);
            assert!(s.refresh_at_ms <= s.usable_until_ms, "{lifetime}: {s:?}");
            assert!(s.usable_until_ms <= s.expires_at_ms, "{lifetime}: {s:?}");
            assert!(s.refresh_at_ms >= T, "{lifetime}: {s:?}");
        }
    }

    #[test]
    fn an_almost_expired_token_is_refetched_after_half_of_what_is_left_at_the_earliest() {
        let greedy = TokenTiming {
            refresh_before_expiry_percent: 50,
            ..TokenTiming::default()
        };
        let s = greedy.schedule(T, 3_000);
        assert_eq!(s.refresh_at_ms, T + 1_500);
        assert_eq!(s.usable_until_ms, T + 3_000 - 750);
    }
}

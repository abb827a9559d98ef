//! When to refresh a token and until when it may be handed out.
//!
//! The rule (documented in the README):
//! * **refresh margin** = `min(5 min, lifetime / 5)`: the usual hour-long token is refreshed 5 minutes before
//!   expiry; a short-lived one (tests, custom lifetime policies under 25 minutes) at 80% of its lifetime, so
//!   the margin shrinks smoothly instead of swallowing the whole token.
//! * **refresh at** = `min(lifetime - margin, refresh_in)` after receipt: Entra's `refresh_in` hint wins when
//!   it is earlier (it is half the lifetime for long-lived tokens). Never sooner than 1 s (or half the
//!   lifetime if that is shorter) so a silly hint cannot cause a request storm.
//! * **serve margin** = `min(60 s, lifetime / 10)`: a token with less than that left is never handed out,
//!   so Envoy never attaches a token that expires in flight. Between "refresh at" and "serve until" there
//!   is at least 10% of the lifetime (4 minutes for an hour-long token) to retry a failing refresh.

//! * **lifetime** = `expires_in`, shortened to the token's own `exp` when that comes first (see
//!   [`effective_lifetime`]), so the serve margin is measured against what the callee will check.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Upper bound of the refresh margin (the "5 minutes before expiry" rule).
pub const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// Upper bound of the serve margin.
pub const MAX_SERVE_MARGIN: Duration = Duration::from_secs(60);
/// No refresh sooner than this after receipt (unless the token itself is shorter-lived than twice this).
pub const MIN_REFRESH_AFTER: Duration = Duration::from_secs(1);

/// The lifetime the agent schedules by, counted from `received`: `expires_in`, or less if the token's own
/// `exp` comes first.
///
/// Why: `expires_in` counts from when the agent received the response, but the issuer computes `exp` from when
/// it minted the token (in whole seconds, before the round trip), so receipt + `expires_in` can lie a second
/// or more after `exp`. The callee checks `exp`, so a token must stop being served before it, not after.
/// Never shortened below half of `expires_in`: a token whose `exp` is already past by this machine's clock
/// means clock skew, and a lifetime near zero would make the agent refresh back to back; the callee's own
/// clock decides such tokens anyway. Returns the lifetime and whether `exp` shortened it by more than 5 s
/// (worth a warning: clocks disagree).
pub fn effective_lifetime(
    expires_in: Duration,
    exp_unix: Option<u64>,
    received: SystemTime,
) -> (Duration, bool) {
    let Some(exp) = exp_unix else {
        return (expires_in, false);
    };
    let until_exp = (UNIX_EPOCH + Duration::from_secs(exp))
        .duration_since(received)
        .unwrap_or(Duration::ZERO);
    if until_exp >= expires_in {
        return (expires_in, false);
    }
    let skewed = expires_in - until_exp > Duration::from_secs(5);
    (until_exp.max(expires_in / 2), skewed)
}

/// How long before expiry a refresh starts.
pub fn refresh_margin(lifetime: Duration) -> Duration {
    MAX_REFRESH_MARGIN.min(lifetime / 5)
}

/// Delay from receipt until the token should be refreshed.
pub fn refresh_after(lifetime: Duration, refresh_in: Option<Duration>) -> Duration {
    let mut after = lifetime.saturating_sub(refresh_margin(lifetime));
    if let Some(hint) = refresh_in {
        after = after.min(hint);
    }
    after.max(MIN_REFRESH_AFTER.min(lifetime / 2))
}

/// How long before expiry the token stops being handed out.
pub fn serve_margin(lifetime: Duration) -> Duration {
    MAX_SERVE_MARGIN.min(lifetime / 10)
}

/// Delay from receipt after which the token is no longer handed out.
pub fn serve_for(lifetime: Duration) -> Duration {
    lifetime.saturating_sub(serve_margin(lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn exp_earlier_than_receipt_plus_expires_in_shortens_the_lifetime() {
        let received = UNIX_EPOCH + Duration::from_millis(1_000_900);
        // Minted at 1000 s with expires_in 15: exp 1015, received 0.9 s later.
        assert_eq!(
            effective_lifetime(secs(15), Some(1015), received),
            (Duration::from_millis(14_100), false)
        );
        // exp later than receipt + expires_in, or absent: expires_in stands.
        assert_eq!(
            effective_lifetime(secs(15), Some(1020), received),
            (secs(15), false)
        );
        assert_eq!(
            effective_lifetime(secs(15), None, received),
            (secs(15), false)
        );
    }

    #[test]
    fn skewed_clock_never_shortens_below_half_the_lifetime() {
        let received = UNIX_EPOCH + secs(10_000);
        // exp already past by this clock.
        assert_eq!(
            effective_lifetime(secs(3599), Some(9_000), received),
            (secs(3599) / 2, true)
        );
        // 10 minutes short: shortened, and flagged.
        assert_eq!(
            effective_lifetime(secs(3600), Some(10_000 + 3000), received),
            (secs(3000), true)
        );
    }

    #[test]
    fn hour_long_token_refreshes_five_minutes_early() {
        assert_eq!(refresh_after(secs(3599), None), secs(3599 - 300));
        assert_eq!(serve_for(secs(3599)), secs(3599 - 60));
    }

    #[test]
    fn refresh_in_wins_when_earlier() {
        // Entra sends refresh_in = expires_in / 2 for long-lived tokens.
        assert_eq!(
            refresh_after(secs(86_399), Some(secs(43_199))),
            secs(43_199)
        );
        // ...but a later hint never delays past the 5-minute margin.
        assert_eq!(
            refresh_after(secs(3599), Some(secs(3500))),
            secs(3599 - 300)
        );
    }

    #[test]
    fn short_lifetimes_scale_smoothly() {
        // 25 minutes is where lifetime/5 reaches 5 minutes: both rules agree there.
        assert_eq!(refresh_after(secs(1500), None), secs(1200));
        assert_eq!(refresh_after(secs(600), None), secs(480));
        assert_eq!(refresh_after(secs(10), None), secs(8));
        assert_eq!(serve_for(secs(10)), secs(9));
        assert_eq!(serve_for(secs(600)), secs(540));
        // Refresh always happens before the token stops being served, leaving time to retry.
        for l in [2, 5, 10, 60, 300, 600, 1500, 3599, 86_399] {
            let l = secs(l);
            assert!(refresh_after(l, None) < serve_for(l), "{l:?}");
            assert!(serve_for(l) < l);
        }
    }

    #[test]
    fn silly_hints_cannot_cause_a_storm() {
        assert_eq!(
            refresh_after(secs(3599), Some(Duration::from_millis(1))),
            MIN_REFRESH_AFTER
        );
        assert_eq!(
            refresh_after(secs(1), Some(Duration::from_millis(1))),
            Duration::from_millis(500)
        );
    }
}

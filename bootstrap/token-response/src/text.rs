//! Small formatting helpers shared by the status lines and the HTTP API.

use sha2::{Digest, Sha256};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// First 12 hex digits of SHA-256(`value`): lets logs tell tokens apart without revealing them.
pub fn fingerprint(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    let mut h = hex(&digest);
    h.truncate(12);
    h
}

/// Short human duration: `850ms`, `42s`, `4m30s`, `59m`, `1h5m`.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    if secs < 60 {
        return format!("{secs}s");
    }
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        return if m > 0 {
            format!("{h}h{m}m")
        } else {
            format!("{h}h")
        };
    }
    // Seconds matter for short (test) lifetimes, not for the usual hour-long tokens.
    if m < 10 && s > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{m}m")
    }
}

/// Seconds since the Unix epoch (0 if the clock is before 1970).
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Keeps at most `max` characters of an untrusted remote string and drops control characters, so a hostile
/// or broken peer cannot forge log lines.
pub fn sanitize(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

/// `outer: cause: root cause`, skipping a cause whose text the previous message already contains (many
/// libraries repeat their source in their own message). Avoids Debug dumps in status lines.
pub fn error_chain(err: &(dyn std::error::Error + 'static), max: usize) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !s_text.is_empty() && !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    sanitize(&text, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_fingerprint() {
        assert_eq!(hex(&[0x00, 0xff, 0x1a]), "00ff1a");
        assert_eq!(fingerprint("abc"), "ba7816bf8f01");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(Duration::from_millis(850)), "850ms");
        assert_eq!(duration(Duration::from_secs(42)), "42s");
        assert_eq!(duration(Duration::from_secs(270)), "4m30s");
        assert_eq!(duration(Duration::from_secs(3599 - 60)), "58m");
        assert_eq!(duration(Duration::from_secs(3599)), "59m");
        assert_eq!(duration(Duration::from_secs(3900)), "1h5m");
        assert_eq!(duration(Duration::from_secs(7200)), "2h");
    }

    #[test]
    fn error_chain_joins_causes_once() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let e = E(
            "dispatch failure",
            Some(Box::new(E(
                "io error: refused",
                Some(Box::new(E("refused", None))),
            ))),
        );
        assert_eq!(error_chain(&e, 200), "dispatch failure: io error: refused");
    }

    #[test]
    fn sanitize_strips_controls_and_truncates() {
        assert_eq!(sanitize("a\nb\r\tc", 10), "a b  c");
        assert_eq!(sanitize("abcdef", 3), "abc…");
    }
}

//! Reads the `exp` claim of an access token that is a JWT, without verifying it.
//!
//! Only ever used to *shorten* how long the agent hands a token out (see
//! [`super::timing::effective_lifetime`]): an unverified claim can make the agent refresh sooner, never serve
//! longer, so trusting it costs nothing. Opaque tokens, or JWTs whose payload does not parse, have no `exp` here
//! and the agent relies on `expires_in` alone.

use base64::Engine as _;
use serde::Deserialize;

/// Longest payload segment decoded: Entra's access tokens are 1-3 KB; anything far larger is not worth parsing.
const MAX_PAYLOAD_SEGMENT: usize = 16 * 1024;

#[derive(Deserialize)]
struct ExpOnly {
    exp: Option<u64>,
}

/// `exp` (seconds since the Unix epoch) of a compact JWS `header.payload.signature`, if it has one.
pub fn jwt_exp(token: &str) -> Option<u64> {
    let mut segments = token.split('.');
    let (_header, payload, _signature) = (segments.next()?, segments.next()?, segments.next()?);
    if segments.next().is_some() || payload.len() > MAX_PAYLOAD_SEGMENT {
        return None;
    }
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice::<ExpOnly>(&json).ok()?.exp
}

#[cfg(test)]
mod tests {
    use super::jwt_exp;
    use base64::Engine as _;

    fn jwt(payload: &str) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.c2ln", b64(r#"{"alg":"RS256"}"#), b64(payload))
    }

    #[test]
    fn reads_exp_of_a_jwt() {
        assert_eq!(
            jwt_exp(&jwt(r#"{"aud":"x","exp":1700003600}"#)),
            Some(1700003600)
        );
    }

    #[test]
    fn anything_else_has_no_exp() {
        for token in [
            String::new(),
            "opaque-token".into(),
            "a.b".into(),
            jwt(r#"{"aud":"x"}"#),
            jwt(r#"{"exp":"1700003600"}"#),
            jwt(r#"{"exp":-1}"#),
            jwt("not json"),
            format!("{}.extra", jwt(r#"{"exp":1}"#)),
            "a.!!!.c".into(),
        ] {
            assert_eq!(jwt_exp(&token), None, "{token}");
        }
    }
}

//! The attack corpus: one row per hostile request, with the answer the
//! callee-side sidecar must give. `docs/security.md` is rendered from this
//! table (see `table.rs`), so the document cannot drift from what is tested.
//!
//! Every token case targets `POST /fraud/analyze` (app role `Fraud.Scan`,
//! callers restricted to the test client) and starts from a token that passes
//! there; each row changes exactly what its description says. Unless a row
//! says otherwise, a token is signed by the tenant's current key with RS256.
//! Expectations are written out as literals, not taken from the filter's own
//! error table, so the corpus is an independent oracle.

use entragate_tests::ids;
use serde_json::json;

use super::forge::*;
use super::raw_http::Attack;

/// RFC 8725 (and HTTP) attack classes, in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Alg,
    KeyId,
    KeySource,
    Crit,
    Structure,
    Encoding,
    Duplicates,
    Json,
    Lifetime,
    Audience,
    Issuer,
    SigningKey,
    Signature,
    Http,
    Access,
}

impl Class {
    pub const ALL: &'static [Class] = &[
        Class::Alg,
        Class::KeyId,
        Class::KeySource,
        Class::Crit,
        Class::Structure,
        Class::Encoding,
        Class::Duplicates,
        Class::Json,
        Class::Lifetime,
        Class::Audience,
        Class::Issuer,
        Class::SigningKey,
        Class::Signature,
        Class::Http,
        Class::Access,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::Alg => "alg",
            Class::KeyId => "kid",
            Class::KeySource => "key source",
            Class::Crit => "crit",
            Class::Structure => "structure",
            Class::Encoding => "encoding",
            Class::Duplicates => "duplicates",
            Class::Json => "json",
            Class::Lifetime => "lifetime",
            Class::Audience => "audience",
            Class::Issuer => "issuer",
            Class::SigningKey => "signing key",
            Class::Signature => "signature",
            Class::Http => "http",
            Class::Access => "access",
        }
    }

    pub fn summary(self) -> &'static str {
        match self {
            Class::Alg => "algorithm confusion: `none`, HMAC keyed with the RSA public key, algorithms off the allow-list (RFC 8725 2.1, 3.1)",
            Class::KeyId => "hostile or missing key names (`kid`, `x5t`)",
            Class::KeySource => "keys supplied or pointed to by the token itself (`jku`, `x5u`, `jwk`, `x5c`; RFC 8725 3.10)",
            Class::Crit => "critical header extensions (RFC 7515 4.1.11)",
            Class::Structure => "not a compact JWS: JWE, wrong part count, non-JSON parts",
            Class::Encoding => "non-canonical or invalid base64url, stray characters",
            Class::Duplicates => "duplicate JSON members, including escaped spellings (RFC 7515 4, RFC 7519 4)",
            Class::Json => "ill-formed UTF-8 JSON in members the filter does not read (RFC 7519 7.2, RFC 8259 8.1): a strict backend parser would refuse it",
            Class::Lifetime => "`exp` / `nbf` / `iat`: wrong types, boundaries, leeway",
            Class::Audience => "`aud` values and shapes",
            Class::Issuer => "issuer look-alikes, tenant and token version (RFC 8725 3.8)",
            Class::SigningKey => "tokens signed by keys the tenant did not publish, or published but unusable",
            Class::Signature => "tampered, spliced, empty or malformed signatures",
            Class::Http => "how the credential is presented: headers, schemes, framing, path",
            Class::Access => "valid tokens that must not be authorised for this route",
        }
    }
}

/// The answer a case must get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Forwarded to the app: behaviour the table documents (e.g. RFC-conformant
    /// leniency), not a refusal.
    Accepted,
    /// Refused by the filter with an RFC 6750 answer: `error` is the code in
    /// the challenge and body (`None`: no credentials, no code).
    Filter {
        status: u16,
        error: Option<&'static str>,
        reason: &'static str,
    },
    /// Refused by Envoy itself before the filter ran (no challenge).
    Envoy { status: u16 },
}

impl Expect {
    pub fn status(self) -> u16 {
        match self {
            Expect::Accepted => 200,
            Expect::Filter { status, .. } | Expect::Envoy { status } => status,
        }
    }
}

pub type Build = fn(&Ctx<'_>) -> Attack;

/// One row of the corpus.
pub struct Case {
    pub id: &'static str,
    pub class: Class,
    pub description: &'static str,
    pub expect: Expect,
    pub build: Build,
}

const fn invalid(reason: &'static str) -> Expect {
    Expect::Filter {
        status: 401,
        error: Some("invalid_token"),
        reason,
    }
}

const fn forbidden(reason: &'static str) -> Expect {
    Expect::Filter {
        status: 403,
        error: Some("insufficient_scope"),
        reason,
    }
}

const MISSING: Expect = Expect::Filter {
    status: 401,
    error: None,
    reason: "missing bearer token",
};

// The filter's reasons (`error_description`), as the callers see them.
const ALG: Expect = invalid("token algorithm not allowed");
const HEADER: Expect = invalid("token header is invalid");
const CLAIMS: Expect = invalid("token claims are invalid");
const TENANT: Expect = invalid("tenant claim invalid");
const CALLER: Expect = forbidden("caller application not allowed");
const NOT_JWS: Expect = invalid("token is not a signed JWT");
const NOT_B64: Expect = invalid("token is not base64url");
const NO_KEY_NAME: Expect = invalid("token names no signing key");
const UNKNOWN_KEY: Expect = invalid("signing key not found");
const SIGNATURE: Expect = invalid("invalid signature");
const CRIT: Expect = invalid("unsupported critical header");
const EXPIRED: Expect = invalid("token expired");
const ISSUER: Expect = invalid("issuer not accepted");
const AUDIENCE: Expect = invalid("audience not accepted");
const NOT_BEARER: Expect = invalid("authorization scheme is not bearer");
const APP_TOKEN_REQUIRED: Expect = forbidden("caller identity requires an app token");
const PERMISSION: Expect = forbidden("missing required role or scope");

fn case(
    id: &'static str,
    class: Class,
    description: &'static str,
    expect: Expect,
    build: Build,
) -> Case {
    Case {
        id,
        class,
        description,
        expect,
        build,
    }
}

/// The whole corpus, in table order.
pub fn all() -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(alg());
    cases.extend(key_id());
    cases.extend(key_source());
    cases.extend(crit());
    cases.extend(structure());
    cases.extend(encoding());
    cases.extend(duplicates());
    cases.extend(json_text());
    cases.extend(lifetime());
    cases.extend(audience());
    cases.extend(issuer());
    cases.extend(signing_key());
    cases.extend(signature());
    cases.extend(http());
    cases.extend(access());
    cases
}

fn alg() -> Vec<Case> {
    use Class::Alg as C;
    vec![
        case("ALG-01", C, "`alg: none`, empty signature", ALG, |c| {
            Attack::bearer(c.app().alg_none().build())
        }),
        case("ALG-02", C, "`alg: None`, empty signature", ALG, |c| {
            Attack::bearer(c.app().alg_none().header("alg", "None").build())
        }),
        case("ALG-03", C, "`alg: NONE`, empty signature", ALG, |c| {
            Attack::bearer(c.app().alg_none().header("alg", "NONE").build())
        }),
        case(
            "ALG-04",
            C,
            "`alg: none` with a genuine RS256 signature kept",
            ALG,
            |c| {
                let good = c.good();
                let (_, payload, signature) = parts(&good);
                let header = header_text(&c.app().header("alg", "none"));
                Attack::bearer(format!("{}.{payload}.{signature}", b64(header)))
            },
        ),
        case(
            "ALG-05",
            C,
            "HS256 keyed with the tenant's RSA public key as PEM (SPKI)",
            ALG,
            |c| {
                let pem = c.idp.signing_key().public_key_pem();
                Attack::bearer(hmac_token(c.app(), Hs::H256, pem.as_bytes()))
            },
        ),
        case(
            "ALG-06",
            C,
            "HS256 keyed with the RSA public key as DER (SPKI)",
            ALG,
            |c| {
                let der = public_der(&c.idp.signing_key());
                Attack::bearer(hmac_token(c.app(), Hs::H256, &der))
            },
        ),
        case(
            "ALG-07",
            C,
            "HS256 keyed with the public key's JWK JSON as published in the JWKS",
            ALG,
            |c| {
                let jwk = public_jwk_json(c, &c.idp.signing_key());
                Attack::bearer(hmac_token(c.app(), Hs::H256, jwk.as_bytes()))
            },
        ),
        case(
            "ALG-08",
            C,
            "HS384 keyed with the public key PEM",
            ALG,
            |c| {
                let pem = c.idp.signing_key().public_key_pem();
                Attack::bearer(hmac_token(c.app(), Hs::H384, pem.as_bytes()))
            },
        ),
        case(
            "ALG-09",
            C,
            "HS512 keyed with the public key PEM",
            ALG,
            |c| {
                let pem = c.idp.signing_key().public_key_pem();
                Attack::bearer(hmac_token(c.app(), Hs::H512, pem.as_bytes()))
            },
        ),
        case(
            "ALG-10",
            C,
            "HS512 keyed with the public key DER",
            ALG,
            |c| {
                let der = public_der(&c.idp.signing_key());
                Attack::bearer(hmac_token(c.app(), Hs::H512, &der))
            },
        ),
        case(
            "ALG-11",
            C,
            "`alg: rs256` (wrong case) over a genuine RS256 signature",
            ALG,
            |c| Attack::bearer(c.app().header("alg", "rs256").build()),
        ),
        case(
            "ALG-12",
            C,
            "`alg: RS512` (not on the allow-list) over an RS256 signature",
            ALG,
            |c| Attack::bearer(c.app().header("alg", "RS512").build()),
        ),
        case(
            "ALG-13",
            C,
            "`alg: PS256` over an RS256 signature",
            ALG,
            |c| Attack::bearer(c.app().header("alg", "PS256").build()),
        ),
        case("ALG-14", C, "no `alg` member", HEADER, |c| {
            Attack::bearer(c.app().without_header("alg").build())
        }),
        case("ALG-15", C, "`alg: [\"RS256\"]` (an array)", HEADER, |c| {
            Attack::bearer(c.app().header("alg", json!(["RS256"])).build())
        }),
    ]
}

fn key_id() -> Vec<Case> {
    use Class::KeyId as C;
    vec![
        case(
            "KID-01",
            C,
            "`kid: ../../../../etc/passwd` (path traversal), `x5t` of the real key",
            UNKNOWN_KEY,
            |c| Attack::bearer(c.app().header("kid", "../../../../etc/passwd").build()),
        ),
        case(
            "KID-02",
            C,
            "`kid: x' OR '1'='1` (SQL injection with spaces)",
            HEADER,
            |c| Attack::bearer(c.app().header("kid", "x' OR '1'='1").build()),
        ),
        case(
            "KID-03",
            C,
            "`kid: '||(SELECT/**/kid/**/FROM/**/keys)||'` (SQL injection, no spaces)",
            UNKNOWN_KEY,
            |c| {
                Attack::bearer(
                    c.app()
                        .header("kid", "'||(SELECT/**/kid/**/FROM/**/keys)||'")
                        .build(),
                )
            },
        ),
        case("KID-04", C, "`kid` of 10 KB", HEADER, |c| {
            Attack::bearer(c.app().header("kid", "k".repeat(10 * 1024)).build())
        }),
        case("KID-05", C, "`kid` in Cyrillic (`ключ`)", HEADER, |c| {
            Attack::bearer(c.app().header("kid", "ключ").build())
        }),
        case(
            "KID-06",
            C,
            "`kid` = the real kid with one letter swapped for a Unicode look-alike",
            HEADER,
            |c| {
                let kid = format!("\u{0430}{}", c.kid().get(1..).unwrap_or_default());
                Attack::bearer(c.app().header("kid", kid).build())
            },
        ),
        case(
            "KID-07",
            C,
            "`kid` holding CR LF (log injection)",
            HEADER,
            |c| Attack::bearer(c.app().header("kid", "abc\r\nlevel=info forged").build()),
        ),
        case("KID-08", C, "`kid: \"\"` (empty)", NO_KEY_NAME, |c| {
            Attack::bearer(c.app().header("kid", "").build())
        }),
        case("KID-09", C, "`kid: null`", HEADER, |c| {
            Attack::bearer(c.app().header("kid", json!(null)).build())
        }),
        case(
            "KID-10",
            C,
            "`kid` and `x5t` both missing",
            NO_KEY_NAME,
            |c| Attack::bearer(c.app().without_header("kid").without_header("x5t").build()),
        ),
        case(
            "KID-11",
            C,
            "`kid` missing, `x5t` naming no published key",
            UNKNOWN_KEY,
            |c| {
                Attack::bearer(
                    c.app()
                        .without_header("kid")
                        .header("x5t", "bm90LWEtcmVhbC10aHVtYnByaW50")
                        .build(),
                )
            },
        ),
        case(
            "KID-12",
            C,
            "`kid` missing, `x5t` of the real key, signed by the attacker's key",
            SIGNATURE,
            |c| {
                Attack::bearer(
                    c.attacker_signed_with_trusted_kid()
                        .without_header("kid")
                        .build(),
                )
            },
        ),
        case(
            "KID-13",
            C,
            "`kid` = the real kid upper-cased (kids are case-sensitive)",
            UNKNOWN_KEY,
            |c| Attack::bearer(c.app().header("kid", c.kid().to_uppercase()).build()),
        ),
        case(
            "KID-14",
            C,
            "`kid` missing, `x5t` of the real key, genuinely signed (how some v1 tokens look)",
            Expect::Accepted,
            |c| Attack::bearer(c.app().without_header("kid").build()),
        ),
    ]
}

fn key_source() -> Vec<Case> {
    use Class::KeySource as C;
    vec![
        case(
            "KEYSRC-01",
            C,
            "`jku` pointing at an attacker JWKS, attacker `kid`, attacker-signed",
            UNKNOWN_KEY,
            |c| {
                Attack::bearer(
                    c.app()
                        .signed_with(&c.attacker)
                        .header("jku", format!("{}/attacker/jwks.json", c.attacker_url))
                        .build(),
                )
            },
        ),
        case(
            "KEYSRC-02",
            C,
            "`x5u` pointing at an attacker certificate, attacker `x5t`, no `kid`",
            UNKNOWN_KEY,
            |c| {
                Attack::bearer(
                    c.app()
                        .signed_with(&c.attacker)
                        .without_header("kid")
                        .header("x5u", format!("{}/attacker/cert.pem", c.attacker_url))
                        .build(),
                )
            },
        ),
        case(
            "KEYSRC-03",
            C,
            "`jwk` embedding the attacker's public key, attacker `kid`",
            UNKNOWN_KEY,
            |c| {
                let jwk = c.attacker.jwk("https://attacker.example/");
                Attack::bearer(c.app().signed_with(&c.attacker).header("jwk", jwk).build())
            },
        ),
        case(
            "KEYSRC-04",
            C,
            "`jwk` embedding the attacker's key, no `kid` and no `x5t`",
            NO_KEY_NAME,
            |c| {
                let jwk = c.attacker.jwk("https://attacker.example/");
                Attack::bearer(
                    c.app()
                        .signed_with(&c.attacker)
                        .header("jwk", jwk)
                        .without_header("kid")
                        .without_header("x5t")
                        .build(),
                )
            },
        ),
        case(
            "KEYSRC-05",
            C,
            "`x5c` embedding the attacker's certificate, its thumbprint as `x5t`, no `kid`",
            UNKNOWN_KEY,
            |c| {
                let cert = base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    c.attacker.cert_der(),
                );
                Attack::bearer(
                    c.app()
                        .signed_with(&c.attacker)
                        .without_header("kid")
                        .header("x5c", json!([cert]))
                        .build(),
                )
            },
        ),
        case(
            "KEYSRC-06",
            C,
            "`jku` to an attacker JWKS with the tenant's `kid`, attacker-signed",
            SIGNATURE,
            |c| {
                Attack::bearer(
                    c.attacker_signed_with_trusted_kid()
                        .header("jku", format!("{}/attacker/jwks.json", c.attacker_url))
                        .build(),
                )
            },
        ),
        case(
            "KEYSRC-07",
            C,
            "`jwk` embedding the attacker's key under the tenant's `kid`",
            SIGNATURE,
            |c| {
                let mut jwk = c.attacker.jwk("https://attacker.example/");
                jwk["kid"] = json!(c.kid());
                Attack::bearer(
                    c.attacker_signed_with_trusted_kid()
                        .header("jwk", jwk)
                        .build(),
                )
            },
        ),
        case(
            "KEYSRC-08",
            C,
            "`x5c` embedding the attacker's certificate under the tenant's `kid`",
            SIGNATURE,
            |c| {
                let cert = base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    c.attacker.cert_der(),
                );
                Attack::bearer(
                    c.attacker_signed_with_trusted_kid()
                        .header("x5c", json!([cert]))
                        .build(),
                )
            },
        ),
    ]
}

fn crit() -> Vec<Case> {
    use Class::Crit as C;
    vec![
        case("CRIT-01", C, "`crit: [\"exp\"]`", CRIT, |c| {
            Attack::bearer(c.app().header("crit", json!(["exp"])).build())
        }),
        case(
            "CRIT-02",
            C,
            "`crit: [\"b64\"]` with `b64: false`",
            CRIT,
            |c| {
                Attack::bearer(
                    c.app()
                        .header("crit", json!(["b64"]))
                        .header("b64", false)
                        .build(),
                )
            },
        ),
        case("CRIT-03", C, "`crit: []`", CRIT, |c| {
            Attack::bearer(c.app().header("crit", json!([])).build())
        }),
        case("CRIT-04", C, "`crit: null`", CRIT, |c| {
            Attack::bearer(c.app().header("crit", json!(null)).build())
        }),
    ]
}

fn structure() -> Vec<Case> {
    use Class::Structure as C;
    vec![
        case(
            "STRUCT-01",
            C,
            "JWE-shaped: five parts (`alg: RSA-OAEP`, `enc: A256GCM`)",
            NOT_JWS,
            |_| {
                let header = b64(r#"{"alg":"RSA-OAEP","enc":"A256GCM","kid":"x"}"#);
                Attack::bearer(format!(
                    "{header}.{}.{}.{}.{}",
                    b64([7u8; 256]),
                    b64([1u8; 12]),
                    b64(b"ciphertext"),
                    b64([2u8; 16])
                ))
            },
        ),
        case(
            "STRUCT-02",
            C,
            "two parts (`header.payload`)",
            NOT_JWS,
            |c| {
                let good = c.good();
                let (header, payload, _) = parts(&good);
                Attack::bearer(format!("{header}.{payload}"))
            },
        ),
        case(
            "STRUCT-03",
            C,
            "four parts (a valid token plus `.AAAA`)",
            NOT_JWS,
            |c| Attack::bearer(format!("{}.AAAA", c.good())),
        ),
        case("STRUCT-04", C, "one part, no dots", NOT_JWS, |_| {
            Attack::bearer("eyJhbGciOiJSUzI1NiJ9")
        }),
        case("STRUCT-05", C, "three empty parts (`..`)", NOT_JWS, |_| {
            Attack::bearer("..")
        }),
        case("STRUCT-06", C, "header is not JSON", HEADER, |c| {
            let good = c.good();
            let (_, payload, signature) = parts(&good);
            Attack::bearer(format!("{}.{payload}.{signature}", b64("alg=RS256")))
        }),
        case("STRUCT-07", C, "header is a JSON array", HEADER, |c| {
            let good = c.good();
            let (_, payload, signature) = parts(&good);
            Attack::bearer(format!(
                "{}.{payload}.{signature}",
                b64(r#"["RS256","JWT"]"#)
            ))
        }),
        case(
            "STRUCT-08",
            C,
            "payload is not JSON (genuinely signed)",
            CLAIMS,
            |c| {
                let header = header_text(&c.app());
                Attack::bearer(rs256(&c.idp.signing_key(), &header, "roles=Fraud.Scan"))
            },
        ),
        case(
            "STRUCT-09",
            C,
            "payload is a JSON array (genuinely signed)",
            CLAIMS,
            |c| {
                let header = header_text(&c.app());
                Attack::bearer(rs256(&c.idp.signing_key(), &header, r#"["Fraud.Scan"]"#))
            },
        ),
        case(
            "STRUCT-10",
            C,
            "header base64url decodes to invalid UTF-8",
            HEADER,
            |c| {
                let good = c.good();
                let (_, payload, signature) = parts(&good);
                Attack::bearer(format!("{}.{payload}.{signature}", b64([0xff, 0xfe, 0x7b])))
            },
        ),
    ]
}

fn encoding() -> Vec<Case> {
    use Class::Encoding as C;
    vec![
        case(
            "ENC-01",
            C,
            "standard base64 alphabet (`+`, `/`) in the signature",
            NOT_B64,
            |c| {
                let good = c.good();
                let (header, payload, signature) = parts(&good);
                let tail = signature.get(2..).unwrap_or_default();
                Attack::bearer(format!("{header}.{payload}.+/{tail}"))
            },
        ),
        case(
            "ENC-02",
            C,
            "`=` padding after the signature",
            NOT_B64,
            |c| Attack::bearer(format!("{}==", c.good())),
        ),
        case("ENC-03", C, "`=` padding after the header", NOT_B64, |c| {
            let good = c.good();
            let (header, payload, signature) = parts(&good);
            Attack::bearer(format!("{header}=.{payload}.{signature}"))
        }),
        case("ENC-04", C, "a space inside the token", NOT_B64, |c| {
            let good = c.good();
            let (header, payload, signature) = parts(&good);
            Attack::bearer(format!("{header}.{payload} .{signature}"))
        }),
        case("ENC-05", C, "a tab inside the token", NOT_B64, |c| {
            let good = c.good();
            let (header, payload, signature) = parts(&good);
            Attack::bearer(format!("{header}.\t{payload}.{signature}"))
        }),
        case(
            "ENC-06",
            C,
            "trailing garbage after a space (`<token> admin=true`)",
            NOT_B64,
            |c| Attack::bearer(format!("{} admin=true", c.good())),
        ),
        case(
            "ENC-07",
            C,
            "trailing base64url garbage appended to the signature",
            SIGNATURE,
            |c| Attack::bearer(format!("{}AAAA", c.good())),
        ),
        case(
            "ENC-08",
            C,
            "non-canonical last signature character (unused bits set)",
            NOT_B64,
            |c| Attack::bearer(non_canonical_tail(&c.good())),
        ),
        case("ENC-09", C, "percent-encoded dots (`%2E`)", NOT_B64, |c| {
            Attack::bearer(c.good().replace('.', "%2E"))
        }),
        case(
            "ENC-10",
            C,
            "non-ASCII bytes (UTF-8 `é`) inside the token",
            NOT_B64,
            |c| {
                let good = c.good();
                let (header, payload, signature) = parts(&good);
                Attack::bearer(format!("{header}.{payload}é.{signature}"))
            },
        ),
    ]
}

fn duplicates() -> Vec<Case> {
    use Class::Duplicates as C;
    vec![
        case(
            "DUP-01",
            C,
            "header `alg` twice (`RS256`, then `none`)",
            HEADER,
            |c| {
                let t = signed_raw(c, &c.app(), |h| with_member(&h, r#""alg":"none""#), |p| p);
                Attack::bearer(t)
            },
        ),
        case(
            "DUP-02",
            C,
            "header `kid` twice (the tenant's, then the attacker's)",
            HEADER,
            |c| {
                let member = format!(r#""kid":"{}""#, c.attacker.kid());
                let t = signed_raw(c, &c.app(), |h| with_member(&h, &member), |p| p);
                Attack::bearer(t)
            },
        ),
        case(
            "DUP-03",
            C,
            "payload `aud` twice (ours, then a foreign API)",
            CLAIMS,
            |c| {
                let t = signed_raw(
                    c,
                    &c.app(),
                    |h| h,
                    |p| with_member(&p, r#""aud":"api://someone-else""#),
                );
                Attack::bearer(t)
            },
        ),
        case(
            "DUP-04",
            C,
            "payload `aud` twice (a foreign API, then ours)",
            CLAIMS,
            |c| {
                let b = c.app().aud("api://someone-else");
                let member = format!(r#""aud":"{}""#, ids::API_APP_ID);
                Attack::bearer(signed_raw(c, &b, |h| h, |p| with_member(&p, &member)))
            },
        ),
        case(
            "DUP-05",
            C,
            "payload `exp` twice (past, then far future)",
            CLAIMS,
            |c| {
                let b = c.app().expired_since(std::time::Duration::from_secs(3600));
                let member = format!(r#""exp":{}"#, now_plus(10 * 365 * 86400));
                Attack::bearer(signed_raw(c, &b, |h| h, |p| with_member(&p, &member)))
            },
        ),
        case(
            "DUP-06",
            C,
            "payload `roles` twice (none, then `Fraud.Scan`)",
            CLAIMS,
            |c| {
                let b = c.app().roles(Vec::<String>::new());
                let t = signed_raw(
                    c,
                    &b,
                    |h| h,
                    |p| with_member(&p, r#""roles":["Fraud.Scan"]"#),
                );
                Attack::bearer(t)
            },
        ),
        case(
            "DUP-07",
            C,
            "payload `iss` twice, the second spelled `\\u0069ss`",
            CLAIMS,
            |c| {
                let t = signed_raw(
                    c,
                    &c.app(),
                    |h| h,
                    |p| with_member(&p, r#""\u0069ss":"https://evil.example/v2.0""#),
                );
                Attack::bearer(t)
            },
        ),
        case(
            "DUP-08",
            C,
            "payload `azp` twice (another app first, then the allowed one)",
            CLAIMS,
            |c| {
                let b = c.app().without_claim("azp");
                let member = format!(r#""azp":"{}""#, ids::CLIENT_ID);
                let first = format!(r#""azp":"{OTHER_CALLER}""#);
                let t = signed_raw(
                    c,
                    &b,
                    |h| h,
                    |p| with_member(&with_leading_member(&p, &first), &member),
                );
                Attack::bearer(t)
            },
        ),
    ]
}

fn json_text() -> Vec<Case> {
    use Class::Json as C;
    vec![
        case(
            "JSON-01",
            C,
            "byte `0xFF` (not UTF-8) inside an ignored claim",
            CLAIMS,
            |c| Attack::bearer(signed_with_claim_bytes(c, b"\"name\":\"a\xffb\"")),
        ),
        case(
            "JSON-02",
            C,
            "overlong UTF-8 (`C0 AF` for `/`) inside an ignored claim",
            CLAIMS,
            |c| Attack::bearer(signed_with_claim_bytes(c, b"\"name\":\"\xc0\xaf\"")),
        ),
        case(
            "JSON-03",
            C,
            "an encoded surrogate (CESU-8 `ED A0 80`) inside an ignored claim",
            CLAIMS,
            |c| Attack::bearer(signed_with_claim_bytes(c, b"\"name\":\"\xed\xa0\x80\"")),
        ),
        case(
            "JSON-04",
            C,
            "a truncated UTF-8 sequence in an ignored claim's name",
            CLAIMS,
            |c| Attack::bearer(signed_with_claim_bytes(c, b"\"na\xc3\":1")),
        ),
        case(
            "JSON-05",
            C,
            "a lone surrogate escape (`\\uDDDD`) in an ignored claim (the fuzz finding)",
            CLAIMS,
            |c| Attack::bearer(signed_with_claim_bytes(c, b"\"name\":\"\\uDDDD\"")),
        ),
        case(
            "JSON-06",
            C,
            "a lone high surrogate escape (`\\ud800`) in an ignored header parameter",
            HEADER,
            |c| Attack::bearer(signed_with_header_bytes(c, b"\"x\":\"\\ud800\"")),
        ),
        case(
            "JSON-07",
            C,
            "byte `0xFF` in an ignored header parameter",
            HEADER,
            |c| Attack::bearer(signed_with_header_bytes(c, b"\"x\":\"\xff\"")),
        ),
        case(
            "JSON-08",
            C,
            "a UTF-8 byte order mark before the claims object",
            CLAIMS,
            |c| {
                let b = c.app();
                let mut payload = b"\xef\xbb\xbf".to_vec();
                payload.extend_from_slice(payload_text(&b).as_bytes());
                Attack::bearer(rs256_bytes(
                    &c.idp.signing_key(),
                    header_text(&b).as_bytes(),
                    &payload,
                ))
            },
        ),
        case(
            "JSON-09",
            C,
            "a number beyond the double range (`1e400`) in an ignored claim",
            CLAIMS,
            |c| Attack::bearer(signed_with_claim_bytes(c, b"\"xms_n\":1e400")),
        ),
        case(
            "JSON-10",
            C,
            "an ignored claim twice (`aio`)",
            CLAIMS,
            |c| Attack::bearer(signed_with_claim_bytes(c, b"\"aio\":\"a\",\"aio\":\"b\"")),
        ),
        case(
            "JSON-11",
            C,
            "well-formed edge cases in ignored claims: a surrogate pair, non-ASCII text, `-0`, `5e-324`, 2^64",
            Expect::Accepted,
            |c| {
                Attack::bearer(signed_with_claim_bytes(
                    c,
                    "\"name\":\"\\ud83d\\ude00 Zoë\",\"a\":-0,\"b\":5e-324,\"c\":18446744073709551616"
                        .as_bytes(),
                ))
            },
        ),
    ]
}

fn lifetime() -> Vec<Case> {
    use std::time::Duration;
    use Class::Lifetime as C;
    vec![
        case("EXP-01", C, "`exp` as a string", CLAIMS, |c| {
            Attack::bearer(c.app().claim("exp", now_plus(3600).to_string()).build())
        }),
        case(
            "EXP-02",
            C,
            "`exp` as a fraction, 10 minutes in the past",
            CLAIMS,
            |c| Attack::bearer(c.app().claim("exp", now_plus(-600) as f64 + 0.5).build()),
        ),
        case(
            "EXP-03",
            C,
            "`exp` as a fraction in the future (RFC 7519 allows it; Entra writes integers only, so refused)",
            CLAIMS,
            |c| Attack::bearer(c.app().claim("exp", now_plus(3600) as f64 + 0.5).build()),
        ),
        case("EXP-04", C, "`exp` negative", EXPIRED, |c| {
            Attack::bearer(c.app().claim("exp", -1).build())
        }),
        case(
            "EXP-05",
            C,
            "`exp: 1e300` (beyond any 64-bit time)",
            CLAIMS,
            |c| Attack::bearer(c.app().claim("exp", 1e300).build()),
        ),
        case(
            "EXP-06",
            C,
            "`exp: 18446744073709551615` (u64::MAX, beyond i64)",
            CLAIMS,
            |c| Attack::bearer(c.app().claim("exp", u64::MAX).build()),
        ),
        case(
            "EXP-07",
            C,
            "`exp: 9223372036854775807` (i64::MAX), genuinely signed: the IdP's lifetime is trusted",
            Expect::Accepted,
            |c| Attack::bearer(c.app().claim("exp", i64::MAX).build()),
        ),
        case("EXP-08", C, "`exp` missing", invalid("token has no expiry"), |c| {
            Attack::bearer(c.app().without_claim("exp").build())
        }),
        case("EXP-09", C, "`exp: null`", CLAIMS, |c| {
            Attack::bearer(c.app().claim("exp", json!(null)).build())
        }),
        case(
            "EXP-10",
            C,
            "expired 10 minutes ago (beyond the 300 s leeway)",
            EXPIRED,
            |c| {
                Attack::bearer(
                    c.app()
                        .expired_since(Duration::from_secs(600))
                        .build(),
                )
            },
        ),
        case(
            "EXP-11",
            C,
            "expired 60 s ago (within the 300 s leeway)",
            Expect::Accepted,
            |c| Attack::bearer(c.app().expired_since(Duration::from_secs(60)).build()),
        ),
        case(
            "EXP-12",
            C,
            "`nbf` 15 minutes in the future",
            invalid("token not yet valid"),
            |c| {
                Attack::bearer(
                    c.app()
                        .not_before_in(Duration::from_secs(900))
                        .build(),
                )
            },
        ),
        case("EXP-13", C, "`nbf` as a string", CLAIMS, |c| {
            Attack::bearer(c.app().claim("nbf", "0").build())
        }),
        case(
            "EXP-15",
            C,
            "`exp` in exponent form (`1.8e9`), a whole number of seconds",
            CLAIMS,
            |c| {
                let t = signed_raw(
                    c,
                    &c.app().without_claim("exp"),
                    |h| h,
                    |p| with_member(&p, &format!(r#""exp":{}e0"#, now_plus(3600))),
                );
                Attack::bearer(t)
            },
        ),
        case(
            "EXP-16",
            C,
            "`iat` one day in the future (and no `nbf`)",
            invalid("token issued in the future"),
            |c| {
                Attack::bearer(
                    c.app()
                        .without_claim("nbf")
                        .claim("iat", now_plus(86_400))
                        .build(),
                )
            },
        ),
        case(
            "EXP-17",
            C,
            "`iat` 60 s in the future (within the 300 s leeway: clock skew)",
            Expect::Accepted,
            |c| Attack::bearer(c.app().claim("iat", now_plus(60)).build()),
        ),
        case(
            "EXP-14",
            C,
            "expired and attacker-signed: the signature is judged first (no expiry oracle)",
            SIGNATURE,
            |c| {
                Attack::bearer(
                    c.attacker_signed_with_trusted_kid()
                        .expired_since(Duration::from_secs(3600))
                        .build(),
                )
            },
        ),
    ]
}

fn audience() -> Vec<Case> {
    use Class::Audience as C;
    vec![
        case(
            "AUD-01",
            C,
            "`aud` array with our API among foreign values (RFC 7519 4.1.3: any match)",
            Expect::Accepted,
            |c| {
                Attack::bearer(
                    c.app()
                        .claim(
                            "aud",
                            json!([
                                "api://someone-else",
                                ids::API_APP_ID,
                                "https://graph.microsoft.com"
                            ]),
                        )
                        .build(),
                )
            },
        ),
        case(
            "AUD-02",
            C,
            "`aud` array of foreign values only",
            AUDIENCE,
            |c| {
                Attack::bearer(
                    c.app()
                        .claim(
                            "aud",
                            json!(["api://someone-else", "https://graph.microsoft.com"]),
                        )
                        .build(),
                )
            },
        ),
        case("AUD-03", C, "`aud: []`", AUDIENCE, |c| {
            Attack::bearer(c.app().claim("aud", json!([])).build())
        }),
        case("AUD-04", C, "`aud: \"\"`", AUDIENCE, |c| {
            Attack::bearer(c.app().aud("").build())
        }),
        case(
            "AUD-05",
            C,
            "`aud` = our application ID upper-cased",
            AUDIENCE,
            |c| Attack::bearer(c.app().aud(&ids::API_APP_ID.to_uppercase()).build()),
        ),
        case(
            "AUD-06",
            C,
            "`aud` = our App ID URI with a trailing slash",
            AUDIENCE,
            |c| Attack::bearer(c.app().aud(&format!("{}/", ids::API_APP_ID_URI)).build()),
        ),
        case("AUD-07", C, "`aud` missing", AUDIENCE, |c| {
            Attack::bearer(c.app().without_claim("aud").build())
        }),
        case("AUD-08", C, "`aud` as a number", CLAIMS, |c| {
            Attack::bearer(c.app().claim("aud", 42).build())
        }),
        case(
            "AUD-09",
            C,
            "`aud` array holding our API and a non-string",
            CLAIMS,
            |c| Attack::bearer(c.app().claim("aud", json!([ids::API_APP_ID, 1])).build()),
        ),
    ]
}

fn issuer() -> Vec<Case> {
    use Class::Issuer as C;
    vec![
        case("ISS-01", C, "issuer with a trailing slash", ISSUER, |c| {
            Attack::bearer(c.app().iss(&format!("{}/", c.issuer())).build())
        }),
        case(
            "ISS-02",
            C,
            "issuer host in other case (`Login.MicrosoftOnline.com`)",
            ISSUER,
            |c| {
                let iss = c.issuer_with("login.microsoftonline.com", "Login.MicrosoftOnline.com");
                Attack::bearer(c.app().iss(&iss).build())
            },
        ),
        case("ISS-03", C, "issuer tenant GUID upper-cased", ISSUER, |c| {
            let tenant = c.idp.tenant_id();
            let iss = c.issuer_with(&tenant, &tenant.to_uppercase());
            Attack::bearer(c.app().iss(&iss).build())
        }),
        case(
            "ISS-04",
            C,
            "another tenant's issuer and `tid` (signed by our key)",
            ISSUER,
            |c| {
                let iss = c.issuer_with(&c.idp.tenant_id(), FOREIGN_TENANT);
                Attack::bearer(c.app().iss(&iss).tid(FOREIGN_TENANT).build())
            },
        ),
        case("ISS-05", C, "v1 issuer on a v2 token", ISSUER, |c| {
            Attack::bearer(c.app().iss(&c.idp.issuer_v1()).build())
        }),
        case("ISS-06", C, "v2 issuer on a v1 token", ISSUER, |c| {
            Attack::bearer(c.idp.app_token_v1().iss(&c.issuer()).build())
        }),
        case("ISS-07", C, "`http://` issuer", ISSUER, |c| {
            let iss = c.issuer_with("https://", "http://");
            Attack::bearer(c.app().iss(&iss).build())
        }),
        case(
            "ISS-08",
            C,
            "issuer with the `common` tenant",
            ISSUER,
            |c| {
                let iss = c.issuer_with(&c.idp.tenant_id(), "common");
                Attack::bearer(c.app().iss(&iss).build())
            },
        ),
        case(
            "ISS-09",
            C,
            "look-alike host `login.microsoftonline.com.evil.example`",
            ISSUER,
            |c| {
                let iss = c.issuer_with(
                    "login.microsoftonline.com",
                    "login.microsoftonline.com.evil.example",
                );
                Attack::bearer(c.app().iss(&iss).build())
            },
        ),
        case("ISS-10", C, "`iss` missing", ISSUER, |c| {
            Attack::bearer(c.app().without_claim("iss").build())
        }),
        case(
            "ISS-11",
            C,
            "our issuer with another tenant's `tid`",
            invalid("tenant claim invalid"),
            |c| Attack::bearer(c.app().tid(FOREIGN_TENANT).build()),
        ),
        case(
            "ISS-12",
            C,
            "`ver: \"3.0\"`",
            invalid("token version not accepted"),
            |c| Attack::bearer(c.app().claim("ver", "3.0").build()),
        ),
        case(
            "ISS-13",
            C,
            "`ver` missing",
            invalid("token version not accepted"),
            |c| Attack::bearer(c.app().without_claim("ver").build()),
        ),
        case(
            "ISS-16",
            C,
            "`tid` missing (single tenant; the issuer names the right tenant)",
            TENANT,
            |c| Attack::bearer(c.app().without_claim("tid").build()),
        ),
        case("ISS-14", C, "`ver: 2.0` as a number", CLAIMS, |c| {
            Attack::bearer(c.app().claim("ver", 2.0).build())
        }),
        case(
            "ISS-15",
            C,
            "`ver: \"1.0\"` on a token with the v2 issuer",
            ISSUER,
            |c| Attack::bearer(c.app().claim("ver", "1.0").build()),
        ),
    ]
}

fn signing_key() -> Vec<Case> {
    use Class::SigningKey as C;
    vec![
        case(
            "KEY-01",
            C,
            "our claims signed by another tenant's signing key",
            UNKNOWN_KEY,
            |c| Attack::bearer(c.app().signed_with(&c.foreign.signing_key()).build()),
        ),
        case(
            "KEY-02",
            C,
            "a complete token from another tenant (its issuer, `tid` and key)",
            UNKNOWN_KEY,
            |c| Attack::bearer(c.foreign.app_token_v2().build()),
        ),
        case(
            "KEY-03",
            C,
            "signed by a key that is in no JWKS",
            UNKNOWN_KEY,
            |c| Attack::bearer(c.app().signed_with(&c.attacker).build()),
        ),
        case(
            "KEY-04",
            C,
            "signed by a 1024-bit key that the tenant's JWKS does publish (skipped as too weak)",
            UNKNOWN_KEY,
            |c| Attack::bearer(c.app().signed_with(&c.weak).build()),
        ),
        case(
            "KEY-05",
            C,
            "the tenant's `kid`, signed by the attacker's key",
            SIGNATURE,
            |c| Attack::bearer(c.attacker_signed_with_trusted_kid().build()),
        ),
        case(
            "KEY-06",
            C,
            "`kid` of a published standby key, signed by the current key",
            SIGNATURE,
            |c| {
                let standby = c.standby.kid().to_string();
                Attack::bearer(
                    c.app()
                        .header("kid", standby.clone())
                        .header("x5t", standby)
                        .build(),
                )
            },
        ),
    ]
}

fn signature() -> Vec<Case> {
    use Class::Signature as C;
    vec![
        case("SIG-01", C, "one signature bit flipped", SIGNATURE, |c| {
            Attack::bearer(flip_signature_bit(&c.good()))
        }),
        case(
            "SIG-02",
            C,
            "a valid signature spliced onto another payload (`roles: [\"Fraud.Admin\"]`)",
            SIGNATURE,
            |c| {
                let good = c.good();
                let (header, _, signature) = parts(&good);
                let forged = payload_text(&c.app().roles(["Fraud.Admin", "Fraud.Scan"]));
                Attack::bearer(format!("{header}.{}.{signature}", b64(forged)))
            },
        ),
        case(
            "SIG-03",
            C,
            "a valid signature spliced onto another header (`typ` changed)",
            SIGNATURE,
            |c| {
                let good = c.good();
                let (_, payload, signature) = parts(&good);
                let header = header_text(&c.app().header("typ", "at+jwt"));
                Attack::bearer(format!("{}.{payload}.{signature}", b64(header)))
            },
        ),
        case(
            "SIG-04",
            C,
            "the signature of another genuine token",
            SIGNATURE,
            |c| {
                let good = c.good();
                let other = c.app().claim("uti", "another-token").build();
                let (header, payload, _) = parts(&good);
                let (_, _, signature) = parts(&other);
                Attack::bearer(format!("{header}.{payload}.{signature}"))
            },
        ),
        case(
            "SIG-05",
            C,
            "empty signature with `alg: RS256`",
            NOT_JWS,
            |c| Attack::bearer(c.app().raw_signature(Vec::new()).build()),
        ),
        case("SIG-06", C, "signature one byte short", SIGNATURE, |c| {
            let good = c.good();
            let (header, payload, signature) = parts(&good);
            let mut bytes = base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                signature,
            )
            .unwrap_or_default();
            bytes.pop();
            Attack::bearer(format!("{header}.{payload}.{}", b64(bytes)))
        }),
        case(
            "SIG-07",
            C,
            "256 zero bytes as the signature",
            SIGNATURE,
            |c| Attack::bearer(c.app().raw_signature(vec![0; 256]).build()),
        ),
        case(
            "SIG-08",
            C,
            "the key's modulus `n` as the signature (out of range)",
            SIGNATURE,
            |c| {
                use rsa::traits::PublicKeyParts as _;
                let n = c.idp.signing_key().public_key().n().to_bytes_be();
                Attack::bearer(c.app().raw_signature(n).build())
            },
        ),
    ]
}

fn http() -> Vec<Case> {
    use Class::Http as C;
    vec![
        case("HTTP-01", C, "no `Authorization` header", MISSING, |_| {
            Attack::anonymous()
        }),
        case(
            "HTTP-02",
            C,
            "valid token only in the query string (`?access_token=`)",
            MISSING,
            |c| Attack::anonymous().target(format!("{ANALYZE}?access_token={}", c.good())),
        ),
        case(
            "HTTP-03",
            C,
            "valid token only in a form body (`access_token=`)",
            MISSING,
            |c| {
                let mut attack = Attack::anonymous().body(format!("access_token={}", c.good()));
                attack.headers = vec![(
                    "content-type".into(),
                    b"application/x-www-form-urlencoded".to_vec(),
                )];
                attack
            },
        ),
        case(
            "HTTP-04",
            C,
            "two `Authorization` headers, both with the valid token",
            invalid("more than one authorization header"),
            |c| {
                let value = format!("Bearer {}", c.good());
                Attack::authorization(value.clone()).header("authorization", value)
            },
        ),
        case(
            "HTTP-05",
            C,
            "one header with two credentials (`Bearer <valid>, Bearer <valid>`)",
            invalid("more than one authorization header"),
            |c| {
                let good = c.good();
                Attack::authorization(format!("Bearer {good}, Bearer {good}"))
            },
        ),
        case(
            "HTTP-06",
            C,
            "lower-case scheme `bearer` (RFC 9110 11.1: schemes are case-insensitive)",
            Expect::Accepted,
            |c| Attack::authorization(format!("bearer {}", c.good())),
        ),
        case("HTTP-07", C, "`Basic` scheme", NOT_BEARER, |_| {
            Attack::authorization("Basic ZnJhdWQ6c2Nhbg==")
        }),
        case(
            "HTTP-08",
            C,
            "valid token without a scheme",
            NOT_BEARER,
            |c| Attack::authorization(c.good()),
        ),
        case(
            "HTTP-09",
            C,
            "`Bearer` and the token separated by a tab",
            NOT_BEARER,
            |c| Attack::authorization(format!("Bearer\t{}", c.good())),
        ),
        case("HTTP-10", C, "`Bearer` and no token", NOT_JWS, |_| {
            Attack::authorization("Bearer")
        }),
        case(
            "HTTP-11",
            C,
            "token over the 16 KiB limit (a padded genuine token)",
            invalid("token too long"),
            |c| Attack::bearer(c.app().claim("padding", "x".repeat(17 * 1024)).build()),
        ),
        case(
            "HTTP-12",
            C,
            "`Authorization` of 70 KiB (over Envoy's 60 KiB header limit)",
            Expect::Envoy { status: 431 },
            |_| Attack::bearer("a".repeat(70 * 1024)),
        ),
        case(
            "HTTP-13",
            C,
            "bare CR inside `Authorization`, then `x-entra-roles: Fraud.Admin` (Envoy keeps the CR in the value)",
            NOT_B64,
            |c| Attack::authorization(format!("Bearer {}\rx-entra-roles: Fraud.Admin", c.good())),
        ),
        case(
            "HTTP-14",
            C,
            "NUL inside `Authorization`",
            Expect::Envoy { status: 400 },
            |c| Attack::authorization(format!("Bearer {}\0", c.good())),
        ),
        case(
            "HTTP-15",
            C,
            "bare LF inside `Authorization` smuggling `x-entra-roles: Fraud.Admin`: Envoy ends the header at the LF, the filter strips the smuggled header, the app sees only the token's role",
            Expect::Accepted,
            |c| Attack::authorization(format!("Bearer {}\nx-entra-roles: Fraud.Admin", c.good())),
        ),
        case(
            "HTTP-16",
            C,
            "obsolete line folding (CRLF SP) between scheme and token: Envoy unfolds it (RFC 9112 5.2), the genuine token passes",
            Expect::Accepted,
            |c| Attack::authorization(format!("Bearer\r\n {}", c.good())),
        ),
        case(
            "HTTP-17",
            C,
            "spoofed `x-entra-caller` / `x-entra-roles` without a token",
            MISSING,
            |_| {
                Attack::anonymous()
                    .header("x-entra-caller", ids::CLIENT_ID)
                    .header("x-entra-roles", "Fraud.Scan")
            },
        ),
        case(
            "HTTP-18",
            C,
            "`/healthz/../fraud/analyze` (anonymous prefix, dot-segments)",
            MISSING,
            |_| Attack::anonymous().target("/healthz/../fraud/analyze"),
        ),
        case(
            "HTTP-19",
            C,
            "`/fraud%2Fanalyze` (encoded slash)",
            Expect::Envoy { status: 400 },
            |c| Attack::bearer(c.good()).target("/fraud%2Fanalyze"),
        ),
    ]
}

fn access() -> Vec<Case> {
    use Class::Access as C;
    vec![
        case(
            "ACC-01",
            C,
            "user token (`scp`, no `roles`) where an app role is required",
            APP_TOKEN_REQUIRED,
            |c| Attack::bearer(c.idp.user_token_v2().build()),
        ),
        case(
            "ACC-02",
            C,
            "app token without `idtyp` (callers are restricted)",
            APP_TOKEN_REQUIRED,
            |c| Attack::bearer(c.app().without_claim("idtyp").build()),
        ),
        case(
            "ACC-03",
            C,
            "`idtyp: user` with the app role",
            APP_TOKEN_REQUIRED,
            |c| Attack::bearer(c.app().claim("idtyp", "user").build()),
        ),
        case(
            "ACC-04",
            C,
            "role in other case (`fraud.scan`)",
            PERMISSION,
            |c| Attack::bearer(c.app().roles(["fraud.scan"]).build()),
        ),
        case(
            "ACC-05",
            C,
            "`roles` as a string, not an array",
            CLAIMS,
            |c| Attack::bearer(c.app().claim("roles", "Fraud.Scan").build()),
        ),
        case(
            "ACC-06",
            C,
            "the role's name as a delegated scope (`scp: Fraud.Scan`), no `roles`",
            PERMISSION,
            |c| Attack::bearer(c.app().without_claim("roles").scp("Fraud.Scan").build()),
        ),
        case(
            "ACC-07",
            C,
            "`azp` of an application not on the allow-list",
            forbidden("caller application not allowed"),
            |c| Attack::bearer(c.app().claim("azp", OTHER_CALLER).build()),
        ),
        case(
            "ACC-08",
            C,
            "`azp` of another application, `appid` of the allowed one",
            forbidden("caller application not allowed"),
            |c| {
                Attack::bearer(
                    c.app()
                        .claim("azp", OTHER_CALLER)
                        .claim("appid", ids::CLIENT_ID)
                        .build(),
                )
            },
        ),
        case(
            "ACC-10",
            C,
            "v1 token: `appid` of another application, `azp` of the allowed one (v1 callers are `appid`)",
            CALLER,
            |c| {
                Attack::bearer(
                    c.idp
                        .app_token_v1()
                        .claim("appid", OTHER_CALLER)
                        .claim("azp", ids::CLIENT_ID)
                        .build(),
                )
            },
        ),
        case(
            "ACC-11",
            C,
            "v1 token with only `azp` of the allowed application (no `appid`: no caller)",
            CALLER,
            |c| {
                Attack::bearer(
                    c.idp
                        .app_token_v1()
                        .without_claim("appid")
                        .claim("azp", ids::CLIENT_ID)
                        .build(),
                )
            },
        ),
        case(
            "ACC-09",
            C,
            "valid token on a route no rule allows (`/admin/users`)",
            forbidden("no rule allows this route"),
            |c| {
                Attack::bearer(c.good())
                    .target("/admin/users")
                    .method("GET")
            },
        ),
    ]
}

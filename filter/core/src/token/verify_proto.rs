//! The protobuf messages of Envoy's `verify_signature` foreign function
//! (`source/extensions/common/wasm/ext/verify_signature.proto`):
//!
//! ```proto
//! message VerifySignatureArguments {
//!   string hash_function = 1;   // "sha256", "sha384", "sha512" (case-insensitive)
//!   bytes public_key = 2;       // DER SubjectPublicKeyInfo
//!   bytes signature = 3;
//!   bytes text = 4;             // the signed bytes, hashed by the host
//!   string public_key_pem = 5;  // alternative to public_key; unused here
//! }
//! message VerifySignatureResult {
//!   bool result = 1;
//!   string error = 2;
//! }
//! ```
//!
//! Two tiny messages do not justify a protobuf library: encoding is four
//! length-delimited fields, decoding reads two fields and skips the rest as
//! protobuf requires (unknown fields from a newer host are not an error).

/// Wire types (protobuf encoding guide, "Message Structure").
const WIRE_VARINT: u64 = 0;
const WIRE_I64: u64 = 1;
const WIRE_LEN: u64 = 2;
const WIRE_I32: u64 = 5;

/// Serialised `VerifySignatureArguments` (without `public_key_pem`: Envoy
/// refuses a request that sets both key forms).
pub fn encode_arguments(
    hash_function: &str,
    public_key_der: &[u8],
    signature: &[u8],
    text: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        hash_function.len() + public_key_der.len() + signature.len() + text.len() + 16,
    );
    put_bytes(&mut out, 1, hash_function.as_bytes());
    put_bytes(&mut out, 2, public_key_der);
    put_bytes(&mut out, 3, signature);
    put_bytes(&mut out, 4, text);
    out
}

/// A decoded `VerifySignatureResult`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyResult {
    /// True only when the host verified the signature. Absent (proto3
    /// default) means false.
    pub valid: bool,
    /// The host's reason when `valid` is false (may be empty).
    pub error: String,
}

/// The result message could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedResult;

pub fn decode_result(mut bytes: &[u8]) -> Result<VerifyResult, MalformedResult> {
    let mut result = VerifyResult::default();
    while !bytes.is_empty() {
        let key = read_varint(&mut bytes)?;
        let (field, wire) = (key >> 3, key & 7);
        match (field, wire) {
            (1, WIRE_VARINT) => result.valid = read_varint(&mut bytes)? != 0,
            (2, WIRE_LEN) => {
                let text = read_len(&mut bytes)?;
                result.error = String::from_utf8_lossy(text).into_owned();
            }
            (_, WIRE_VARINT) => {
                read_varint(&mut bytes)?;
            }
            (_, WIRE_LEN) => {
                read_len(&mut bytes)?;
            }
            (_, WIRE_I64) => skip(&mut bytes, 8)?,
            (_, WIRE_I32) => skip(&mut bytes, 4)?,
            // Groups (3, 4) are obsolete and never sent for these messages.
            _ => return Err(MalformedResult),
        }
    }
    Ok(result)
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A length-delimited field; empty values are omitted like proto3 does.
fn put_bytes(out: &mut Vec<u8>, field: u64, value: &[u8]) {
    if value.is_empty() {
        return;
    }
    put_varint(out, (field << 3) | WIRE_LEN);
    put_varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

fn read_varint(bytes: &mut &[u8]) -> Result<u64, MalformedResult> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first().ok_or(MalformedResult)?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(MalformedResult)
}

fn read_len<'a>(bytes: &mut &'a [u8]) -> Result<&'a [u8], MalformedResult> {
    let len = usize::try_from(read_varint(bytes)?).map_err(|_| MalformedResult)?;
    if len > bytes.len() {
        return Err(MalformedResult);
    }
    let (value, rest) = bytes.split_at(len);
    *bytes = rest;
    Ok(value)
}

fn skip(bytes: &mut &[u8], count: usize) -> Result<(), MalformedResult> {
    *bytes = bytes.get(count..).ok_or(MalformedResult)?;
    Ok(())
}

/// Test support: the host side of the exchange, to emulate Envoy.
#[cfg(test)]
pub(crate) mod host_side {
    use super::*;

    /// Decoded `VerifySignatureArguments`.
    #[derive(Debug, Default, PartialEq, Eq)]
    pub(crate) struct Arguments {
        pub hash_function: String,
        pub public_key: Vec<u8>,
        pub signature: Vec<u8>,
        pub text: Vec<u8>,
        pub public_key_pem: String,
    }

    pub(crate) fn decode_arguments(mut bytes: &[u8]) -> Result<Arguments, MalformedResult> {
        let mut args = Arguments::default();
        while !bytes.is_empty() {
            let key = read_varint(&mut bytes)?;
            if key & 7 != WIRE_LEN {
                return Err(MalformedResult);
            }
            let value = read_len(&mut bytes)?;
            match key >> 3 {
                1 => args.hash_function = String::from_utf8_lossy(value).into_owned(),
                2 => args.public_key = value.to_vec(),
                3 => args.signature = value.to_vec(),
                4 => args.text = value.to_vec(),
                5 => args.public_key_pem = String::from_utf8_lossy(value).into_owned(),
                _ => {}
            }
        }
        Ok(args)
    }

    pub(crate) fn encode_result(valid: bool, error: &str) -> Vec<u8> {
        let mut out = Vec::new();
        if valid {
            put_varint(&mut out, (1 << 3) | WIRE_VARINT);
            put_varint(&mut out, 1);
        }
        put_bytes(&mut out, 2, error.as_bytes());
        out
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // a wrong index in a test is a test failure
mod tests {
    use super::host_side::*;
    use super::*;

    #[test]
    fn arguments_are_length_delimited_fields_in_order() {
        let encoded = encode_arguments("sha256", &[0x30, 0x01], &[9; 3], b"ab");
        assert_eq!(
            encoded,
            [
                0x0a, 6, b's', b'h', b'a', b'2', b'5', b'6', //
                0x12, 2, 0x30, 0x01, //
                0x1a, 3, 9, 9, 9, //
                0x22, 2, b'a', b'b',
            ]
        );
        let decoded = decode_arguments(&encoded).unwrap();
        assert_eq!(decoded.hash_function, "sha256");
        assert_eq!(decoded.text, b"ab");
        assert!(decoded.public_key_pem.is_empty());
    }

    #[test]
    fn long_fields_get_multi_byte_lengths() {
        let key = vec![7u8; 294];
        let signature = vec![8u8; 256];
        let text = vec![b'x'; 70_000];
        let encoded = encode_arguments("sha512", &key, &signature, &text);
        // 294 = 0b10_0100110 -> 0xa6 0x02
        assert_eq!(encoded[8..11], [0x12, 0xa6, 0x02]);
        let decoded = decode_arguments(&encoded).unwrap();
        assert_eq!(
            (decoded.public_key, decoded.signature, decoded.text),
            (key, signature, text)
        );
    }

    #[test]
    fn results_decode() {
        assert_eq!(
            decode_result(&encode_result(true, "")),
            Ok(VerifyResult {
                valid: true,
                error: String::new()
            })
        );
        // proto3 omits `false`: an empty message is a failed verification.
        assert_eq!(decode_result(&[]), Ok(VerifyResult::default()));
        let failed = decode_result(&encode_result(
            false,
            "Failed to verify digest. Error code: 0",
        ))
        .unwrap();
        assert!(!failed.valid);
        assert_eq!(failed.error, "Failed to verify digest. Error code: 0");
        // Non-canonical but valid: a multi-byte varint 1.
        assert!(decode_result(&[0x08, 0x81, 0x00]).unwrap().valid);
    }

    #[test]
    fn unknown_fields_are_skipped() {
        let mut bytes = vec![0x18, 0x96, 0x01]; // field 3 varint 150
        bytes.extend([0x22, 0x02, b'h', b'i']); // field 4 bytes
        bytes.extend([0x2d, 1, 2, 3, 4]); // field 5 fixed32
        bytes.extend([0x31, 1, 2, 3, 4, 5, 6, 7, 8]); // field 6 fixed64
        bytes.extend(encode_result(true, "x"));
        let result = decode_result(&bytes).unwrap();
        assert!(result.valid);
        assert_eq!(result.error, "x");
    }

    #[test]
    fn truncated_or_invalid_results_are_errors() {
        for bad in [
            &[0x08][..],         // missing varint
            &[0x08, 0x80],       // unterminated varint
            &[0x12, 0x05, b'a'], // length past the end
            &[0x0b],             // start group
            &[0x2d, 1, 2],       // short fixed32
            &[0xff; 11],         // varint longer than 64 bits
        ] {
            assert_eq!(decode_result(bad), Err(MalformedResult), "{bad:?}");
        }
    }
}

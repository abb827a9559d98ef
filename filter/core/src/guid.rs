//! GUID syntax. Tenant ids, client ids and application ids are GUIDs in Entra; the filter's
//! configuration compiler, the tenant check on issuers and the bootstrap's mesh-policy validation
//! all use this one definition so they cannot disagree on what a GUID is.

/// Whether `s` is `8-4-4-4-12` hexadecimal digits, either case (no braces, no URN prefix).
///
/// Checked by byte position without allocating: it runs on issuers at request time.
pub fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::is_guid;

    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    #[test]
    fn accepts_only_the_8_4_4_4_12_hex_form() {
        assert!(is_guid(TENANT));
        assert!(is_guid(&TENANT.to_uppercase()));
        for bad in [
            "",
            "-",
            "contoso.onmicrosoft.com",
            "72f988bf-86f1-41af-91ab-2d7cd011db4",
            "72f988bf-86f1-41af-91ab-2d7cd011db47-",
            "72f988bf-86f1-41af-91ab-2d7cd011db4g",
            "{72f988bf-86f1-41af-91ab-2d7cd011db47}",
            "72f988bf-86f1-41af-91ab2-d7cd011db47",
        ] {
            assert!(!is_guid(bad), "{bad}");
        }
        // Multi-byte characters must not confuse the fixed positions.
        assert!(!is_guid("72f988bf-86f1-41af-91ab-2d7cd011dé"));
    }
}

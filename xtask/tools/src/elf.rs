//! What a built dynamic module exports, imports and needs, read with binutils' `readelf`: the checks of the
//! module to ship (`cargo xtask build-native --portable`) and of the symbols test (`tests/tests/native_module.rs`).
//!
//! `readelf` rather than `objdump -T` or `nm -D`: it parses ELF itself, so it names the machine and lists the
//! symbol versions of every architecture's module; the BFD tools of an x86_64 Debian read an AArch64 one as
//! generic `elf64-little` (`architecture: UNKNOWN!`). One check serves every architecture we ship.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// The hooks Envoy 1.40's HTTP filter factory resolves by name and requires
/// (source/extensions/filters/http/dynamic_modules/filter_config.cc), plus the program hook every module needs.
pub const DYNAMIC_MODULE_HOOKS: &[&str] = &[
    "envoy_dynamic_module_on_program_init",
    "envoy_dynamic_module_on_http_filter_config_new",
    "envoy_dynamic_module_on_http_filter_config_destroy",
    "envoy_dynamic_module_on_http_filter_new",
    "envoy_dynamic_module_on_http_filter_request_headers",
    "envoy_dynamic_module_on_http_filter_request_body",
    "envoy_dynamic_module_on_http_filter_request_trailers",
    "envoy_dynamic_module_on_http_filter_response_headers",
    "envoy_dynamic_module_on_http_filter_response_body",
    "envoy_dynamic_module_on_http_filter_response_trailers",
    "envoy_dynamic_module_on_http_filter_stream_complete",
    "envoy_dynamic_module_on_http_filter_destroy",
    "envoy_dynamic_module_on_http_filter_http_callout_done",
    "envoy_dynamic_module_on_http_filter_http_stream_headers",
    "envoy_dynamic_module_on_http_filter_http_stream_data",
    "envoy_dynamic_module_on_http_filter_http_stream_trailers",
    "envoy_dynamic_module_on_http_filter_http_stream_complete",
    "envoy_dynamic_module_on_http_filter_http_stream_reset",
    "envoy_dynamic_module_on_http_filter_scheduled",
    "envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark",
    "envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark",
];

/// One entry of the dynamic symbol table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    pub name: String,
    /// The version it is bound to, `GLIBC_2.28` in `memcpy@GLIBC_2.28`.
    pub version: Option<String>,
    /// Defined here (exported) rather than imported (`UND`).
    pub defined: bool,
}

/// The dynamic symbol table of `file` (`readelf -W --dyn-syms`).
pub fn dynamic_symbols(file: &Path) -> Result<Vec<Symbol>, String> {
    Ok(parse_dyn_syms(&readelf(file, &["-W", "--dyn-syms"])?))
}

/// `e_machine` as `readelf -h` names it: `AArch64`, `Advanced Micro Devices X86-64`.
pub fn machine(file: &Path) -> Result<String, String> {
    readelf(file, &["-h"])?
        .lines()
        .find_map(|line| line.trim().strip_prefix("Machine:"))
        .map(|machine| machine.trim().to_string())
        .ok_or_else(|| format!("{}: readelf -h printed no Machine", file.display()))
}

/// The names of the `envoy_*` symbols in `symbols` that are defined (`true`: the hooks a module exports, the
/// callbacks Envoy exports) or imported (`false`).
pub fn envoy_symbols(symbols: &[Symbol], defined: bool) -> BTreeSet<String> {
    symbols
        .iter()
        .filter(|s| s.defined == defined && s.name.starts_with("envoy_"))
        .map(|s| s.name.clone())
        .collect()
}

/// The newest `GLIBC_x.y` any of `symbols` is bound to, if any.
pub fn newest_glibc(symbols: &[Symbol]) -> Option<String> {
    symbols
        .iter()
        .filter_map(|s| s.version.as_deref()?.strip_prefix("GLIBC_"))
        .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.'))
        .max_by_key(|v| version_key(v))
        .map(str::to_string)
}

/// `2.28` -> `[2, 28]`, for comparing versions numerically (`2.9` < `2.28`).
pub fn version_key(version: &str) -> Vec<u32> {
    version.split('.').filter_map(|p| p.parse().ok()).collect()
}

fn readelf(file: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new("readelf")
        .args(args)
        .arg(file)
        .output()
        .map_err(|e| format!("readelf (binutils): {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "readelf {} {} failed: {}",
            args.join(" "),
            file.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Rows of `readelf -W --dyn-syms`: `Num: Value Size Type Bind Vis Ndx Name[@version (n)]`.
fn parse_dyn_syms(text: &str) -> Vec<Symbol> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // Rows start with `<n>:`; the name is the 8th field (absent on the null symbol).
            if !fields
                .first()?
                .strip_suffix(':')?
                .chars()
                .all(|c| c.is_ascii_digit())
            {
                return None;
            }
            let ndx = fields.get(6)?;
            let full = fields.get(7)?;
            // `name@VERSION` for a reference, `name@@VERSION` for the default version of a definition.
            let (name, version) = match full.split_once('@') {
                Some((name, version)) => (name, Some(version.trim_start_matches('@').to_string())),
                None => (*full, None),
            };
            Some(Symbol {
                name: name.to_string(),
                version,
                defined: *ndx != "UND",
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const READELF: &str = "
Symbol table '.dynsym' contains 4 entries:
   Num:    Value          Size Type    Bind   Vis      Ndx Name
     0: 0000000000000000     0 NOTYPE  LOCAL  DEFAULT  UND 
     1: 0000000000000000     0 FUNC    GLOBAL DEFAULT  UND memcpy@GLIBC_2.14 (2)
     2: 0000000000000000     0 NOTYPE  GLOBAL DEFAULT  UND envoy_dynamic_module_callback_http_send_response
     3: 0000000000000000     0 FUNC    GLOBAL DEFAULT  UND stat64@GLIBC_2.33 (5)
     4: 00000000000a1b20    97 FUNC    GLOBAL DEFAULT   12 envoy_dynamic_module_on_program_init
     5: 0000000000000000     0 FUNC    WEAK   DEFAULT  UND __cxa_finalize@GLIBC_2.9 (3)
";

    #[test]
    fn reads_names_versions_and_definedness() {
        let symbols = parse_dyn_syms(READELF);
        assert_eq!(symbols.len(), 5, "{symbols:?}");
        assert_eq!(
            symbols[0],
            Symbol {
                name: "memcpy".into(),
                version: Some("GLIBC_2.14".into()),
                defined: false
            }
        );
        assert_eq!(
            envoy_symbols(&symbols, true),
            BTreeSet::from(["envoy_dynamic_module_on_program_init".to_string()])
        );
        assert_eq!(
            envoy_symbols(&symbols, false),
            BTreeSet::from(["envoy_dynamic_module_callback_http_send_response".to_string()])
        );
    }

    #[test]
    fn the_newest_glibc_compares_numerically() {
        // 2.9 sorts after 2.33 as text.
        assert_eq!(
            newest_glibc(&parse_dyn_syms(READELF)).as_deref(),
            Some("2.33")
        );
        assert!(version_key("2.34") > version_key("2.28"));
        assert!(version_key("2.9") < version_key("2.28"));
        assert_eq!(version_key("2.28"), vec![2, 28]);
    }
}

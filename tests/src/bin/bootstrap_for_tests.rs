//! The `bootstrap` CLI, linked into this package so that cargo builds it for
//! the integration tests (`CARGO_BIN_EXE_bootstrap_for_tests`); identical to
//! `bootstrap/src/main.rs`. See `tests/tests/outbound_support/agent.rs`.

fn main() -> std::process::ExitCode {
    entragate_bootstrap::cli::main()
}

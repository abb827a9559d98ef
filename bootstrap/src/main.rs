//! `bootstrap`: see `entragate_bootstrap::cli` and the README.

fn main() -> std::process::ExitCode {
    entragate_bootstrap::cli::main()
}

//! `cargo xtask demo`: the FinTech scenario end to end on loopback.
//!
//! The Transaction Processor must be the only service that can call the Fraud
//! Detector. This starts, with a progress line as each part becomes ready: a
//! local Entra-compatible identity provider, a local AWS Secrets Manager
//! (moto) holding the Transaction Processor's client secret, the two sidecar
//! configurations rendered by `bootstrap render` from
//! `examples/fintech/mesh.yaml`, the Fraud Detector app and its Envoy
//! (entragate, inbound role), the `bootstrap agent` and the Transaction
//! Processor's Envoy (entragate, outbound role) and app. The sidecars talk
//! mTLS with certificates from `bootstrap certs`. Then it tells the
//! story (ending with a stolen token replayed from another workload) and
//! checks every step; the exit code is non-zero if any step did not
//! behave.
//!
//! `demo [--keep-running]`: keep everything up after the story until Ctrl-C
//! (prints the curl commands to try). Ctrl-C at any point stops every process
//! and removes the temporary files; ports are chosen afresh on each run.

mod children;
mod policy;
mod story;

use std::process::ExitCode;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let keep_running = std::env::args().any(|a| a == "--keep-running");
    let outcome = tokio::select! {
        outcome = story::run(keep_running) => outcome,
        _ = tokio::signal::ctrl_c() => {
            println!("\ndemo: interrupted; stopping every process");
            return ExitCode::from(130);
        }
    };
    // Everything started (Envoys, agent, apps, IdP, moto, temp files) is
    // dropped by now: stopped and removed.
    match outcome {
        Ok(true) => {
            println!("\ndemo: every step behaved as expected");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            println!(
                "\ndemo: FAILED (a step did not behave as expected; see the lines marked FAIL)"
            );
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("demo: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

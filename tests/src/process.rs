//! Child processes of the harness and the demo: hermetic AWS environment and
//! tied lifetimes, so nothing outlives the process that started it.

use std::os::unix::process::CommandExt as _;
use std::process::Command;

/// Fixed test credentials (moto accepts any), and nothing from the developer's
/// AWS setup.
pub fn hermetic_aws_env(command: &mut Command) {
    for var in entragate_bootstrap::environment::all() {
        command.env_remove(var);
    }
    command
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_CONFIG_FILE", "/nonexistent/entragate-test/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/entragate-test/credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true");
}

/// SIGKILL the child if the thread that started it dies (a test that
/// panics, the demo stopped with Ctrl-C).
pub fn kill_with_parent(command: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls
    // prctl(2), which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

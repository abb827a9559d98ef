//! Human-readable status lines on stderr.
//!
//! The agent is run by people (and by orchestrators whose logs people read), so every line says what is
//! happening in plain words. Nothing here ever receives a secret or a token: callers pass fingerprints
//! (`text::fingerprint`) instead.

use std::fmt::Arguments;
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::SystemTime;

/// Severity of a status line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN ",
            Level::Info => "INFO ",
            Level::Debug => "DEBUG",
        }
    }
}

static MAX_LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

/// Sets the most verbose level that is printed (`-q` lowers it, `-v` raises it).
pub fn set_max_level(level: Level) {
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Whether lines of `level` are printed.
pub fn enabled(level: Level) -> bool {
    (level as u8) <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// Writes one status line: `2026-11-28T21:40:00Z INFO  message`.
pub fn emit(level: Level, args: Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let now = humantime::format_rfc3339_seconds(SystemTime::now());
    // One `write_all` per line so concurrent tasks never interleave within a line.
    let line = format!("{now} {} {args}\n", level.label());
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// `info!("…")`: a status line for people.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::emit($crate::log::Level::Info, format_args!($($arg)*)) };
}

/// `warn!("…")`: something failed but the agent carries on.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::emit($crate::log::Level::Warn, format_args!($($arg)*)) };
}

/// `error!("…")`: something failed and the command stops.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::emit($crate::log::Level::Error, format_args!($($arg)*)) };
}

/// `debug!("…")`: shown with `-v`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::emit($crate::log::Level::Debug, format_args!($($arg)*)) };
}

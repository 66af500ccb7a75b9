//! The wall clock, with a test-only override.
//!
//! `POP3_TEST_NOW=SECONDS` (Unix time) replaces the clock, so that tests
//! of `--keep-days` can move time forward without waiting days. It is
//! read by nothing else and has no effect on the protocol.

use std::time::{SystemTime, UNIX_EPOCH};

/// The environment variable that sets "now" for tests.
pub const TEST_NOW_ENV: &str = "POP3_TEST_NOW";

/// Seconds since the Unix epoch (or `POP3_TEST_NOW` when set to a number).
pub fn now_unix() -> u64 {
    if let Some(t) = std::env::var(TEST_NOW_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        return t;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

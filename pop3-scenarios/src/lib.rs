//! Shared test scenarios (work in progress).
#![forbid(unsafe_code)]

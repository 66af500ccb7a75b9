//! The adapter's error type: `pop3-adapter`'s [`Error`], the very type
//! `pop3-blocking` returns (with [`Error::Cancelled`] for a dropped STLS).

pub use pop3_adapter::{BatchError, Error};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

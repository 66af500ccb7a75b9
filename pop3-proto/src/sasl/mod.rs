//! SASL (RFC 4422) mechanisms for POP3 `AUTH` (RFC 5034), as pure functions.
//!
//! A [`Mechanism`] never does I/O. The [`Client`](crate::Client) owns the
//! mechanism for the duration of one `AUTH` exchange: it sends the initial
//! response (or `=` / the empty continuation when it is too long for one
//! line), base64-decodes each `+ ` challenge, hands it to [`Mechanism::step`],
//! base64-encodes the answer, and on `+OK` calls [`Mechanism::finish`] so
//! that mechanisms with mutual authentication (SCRAM) can refuse a server
//! that never proved it knows the password.
//!
//! Every mechanism here is a plain state machine over raw bytes:
//!
//! | type | mechanism(s) | initial response |
//! | --- | --- | --- |
//! | [`Scram`] | `SCRAM-SHA-256(-PLUS)`, `SCRAM-SHA-1(-PLUS)` (RFC 5802, 7677) | yes |
//! | [`CramMd5`] | `CRAM-MD5` (RFC 2195) | no |
//! | [`Plain`] | `PLAIN` (RFC 4616) | yes |
//! | [`Login`] | `LOGIN` (draft-murchison-sasl-login) | no |
//! | [`XOAuth2`] | `XOAUTH2` (Google, Microsoft) | one-line: yes; two-step: no |
//! | [`OAuthBearer`] | `OAUTHBEARER` (RFC 7628) | yes |
//!
//! [`choose`] picks the strongest password mechanism a server advertises.
//!
//! Common behaviour:
//!
//! * `Debug` never prints a password, token, derived key or proof.
//! * A mechanism that offers an initial response also accepts an empty first
//!   challenge instead (a client that did not send the initial response gets
//!   `+ ` and answers with the same bytes), exactly once. So a driver
//!   whose `AUTH` line would be too long either keeps the bytes
//!   [`Mechanism::initial_response`] returned and sends them itself as the
//!   answer to the first `+ ` (without calling `step` for it), or does not
//!   call `initial_response` and calls `step(b"")` for that `+ `. After
//!   `initial_response` returned `Some`, an empty challenge is *not* the
//!   server's request for the initial response (for `XOAUTH2` it is an
//!   error document, for SCRAM a malformed server-first-message).
//! * [`Mechanism::step`] after the mechanism has finished returns
//!   [`SaslError::UnexpectedChallenge`]; after a `step` returned an error the
//!   mechanism is failed and every later `step` returns
//!   `UnexpectedChallenge` too.
//! * No input from the server can make a mechanism panic.

use alloc::vec::Vec;

use crate::Secret;

mod binding;
mod cram_md5;
mod login;
mod oauth;
mod plain;
#[cfg(feature = "scram")]
mod saslprep;
#[cfg(feature = "scram")]
mod scram;

pub use binding::ChannelBinding;
pub use cram_md5::CramMd5;
pub use login::Login;
pub use oauth::{OAuthBearer, XOAuth2};
pub use plain::Plain;
#[cfg(feature = "scram")]
pub use scram::{Scram, ScramHash, DEFAULT_MAX_ITERATIONS};

/// Why a SASL mechanism could not continue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    /// The server's challenge was not what the mechanism expects.
    #[error("malformed SASL challenge: {0}")]
    MalformedChallenge(&'static str),
    /// The server sent a challenge after the mechanism had finished.
    #[error("unexpected SASL challenge after the exchange completed")]
    UnexpectedChallenge,
    /// Mutual authentication failed: the server's proof (for example the
    /// SCRAM server signature) is wrong. The server does not know the password.
    #[error("the server failed to prove its identity (bad server signature)")]
    ServerVerificationFailed,
    /// The server answered `+OK` before the mechanism finished (for example
    /// before SCRAM verified the server signature).
    #[error("the server ended the exchange before the mechanism completed")]
    Incomplete,
    /// The server reported an error inside the exchange (SCRAM `e=`,
    /// OAuth JSON error); the text is the server's.
    #[error("server-side SASL error: {0}")]
    Server(alloc::string::String),
    /// The mechanism cannot be used with the given input (for example a
    /// username SCRAM cannot encode).
    #[error("invalid SASL input: {0}")]
    InvalidInput(&'static str),
    /// The server asked for more SCRAM iterations (PBKDF2 rounds) than the
    /// configured maximum: refused before any hashing, so that a hostile
    /// server cannot make the client burn minutes of CPU. `requested`
    /// saturates at `u64::MAX`.
    #[error("the server asked for {requested} SCRAM iterations, more than the allowed {max}")]
    TooManyIterations {
        /// The server's `i=` value.
        requested: u64,
        /// The limit in force.
        max: u32,
    },
}

/// One SASL mechanism's client side, driven by the [`Client`](crate::Client).
///
/// All payloads are raw (not base64): the core does the base64.
pub trait Mechanism: Send {
    /// The registered mechanism name, for example `"SCRAM-SHA-256"`
    /// (uppercase letters, digits, `-` and `_`, at most 20 characters).
    fn name(&self) -> &str;

    /// The initial response to send with `AUTH`, or `None` when the
    /// mechanism waits for a first challenge. `Some` of an empty vector is
    /// sent as `=`.
    fn initial_response(&mut self) -> Result<Option<Secret<Vec<u8>>>, SaslError>;

    /// Answers one server challenge (already base64-decoded; empty for a
    /// bare `+`).
    fn step(&mut self, challenge: &[u8]) -> Result<Secret<Vec<u8>>, SaslError>;

    /// Called when the server answered `+OK`: returns an error when the
    /// mechanism has not completed (for example SCRAM never saw a valid
    /// server signature), in which case the session must not be trusted.
    fn finish(&mut self) -> Result<(), SaslError>;

    /// The error text the server sent inside the exchange, if any: the JSON
    /// document of an `XOAUTH2` / `OAUTHBEARER` failure (for example
    /// `{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`).
    ///
    /// The server follows such a challenge with `-ERR`; the
    /// [`Client`](crate::Client) can attach this text to the failure it
    /// reports. It is server-controlled text: display it, never interpret it
    /// as trusted. The default returns `None`.
    fn server_error(&self) -> Option<&str> {
        None
    }
}

/// How strong a password mechanism is, by name (case-insensitive); higher is
/// stronger. `None` for a mechanism [`choose`] never picks (unknown ones,
/// `XOAUTH2` and `OAUTHBEARER`, which need a token rather than a password).
///
/// The order is `SCRAM-SHA-256-PLUS` (6) > `SCRAM-SHA-1-PLUS` (5) >
/// `SCRAM-SHA-256` (4) > `SCRAM-SHA-1` (3) > `CRAM-MD5` (2) > `PLAIN` (1) >
/// `LOGIN` (0). A `-PLUS` variant ranks above every non-`PLUS` one: when the
/// server offers channel binding and the client can do it, it must use it
/// (choosing a non-`PLUS` SCRAM with the `y` flag would fail on purpose, as
/// a suspected downgrade).
pub fn preference_rank(name: &str) -> Option<u8> {
    const RANKS: [(&str, u8); 7] = [
        ("SCRAM-SHA-256-PLUS", 6),
        ("SCRAM-SHA-1-PLUS", 5),
        ("SCRAM-SHA-256", 4),
        ("SCRAM-SHA-1", 3),
        ("CRAM-MD5", 2),
        ("PLAIN", 1),
        ("LOGIN", 0),
    ];
    RANKS
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .map(|&(_, rank)| rank)
        // Without the `scram` feature this build cannot do SCRAM.
        .filter(|&rank| cfg!(feature = "scram") || rank < 3)
}

/// Picks the strongest password mechanism from the server's advertised SASL
/// list (the `SASL` capability of `CAPA`), or `None` when none is usable.
///
/// Names compare case-insensitively; the server's own spelling is returned.
///
/// * `tls`: the session is protected by TLS (implicit TLS or after `STLS`).
///   The `-PLUS` (channel binding) variants are only chosen with `tls`; a
///   caller that cannot supply channel-binding data for this connection
///   should leave the `-PLUS` names out of `offered`.
/// * `allow_plaintext`: allow `PLAIN` and `LOGIN`, which send the password
///   itself, without TLS. With `tls` they are always allowed.
///
/// `XOAUTH2` and `OAUTHBEARER` are never chosen: they need a token, so the
/// caller selects them explicitly.
///
/// ```
/// use pop3_proto::sasl::choose;
/// let offered = ["PLAIN", "LOGIN", "CRAM-MD5", "scram-sha-1"];
/// # #[cfg(feature = "scram")]
/// assert_eq!(choose(offered, true, false), Some("scram-sha-1"));
/// # #[cfg(not(feature = "scram"))]
/// # assert_eq!(choose(offered, true, false), Some("CRAM-MD5"));
/// assert_eq!(choose(["PLAIN", "LOGIN"], false, false), None);
/// assert_eq!(choose(["LOGIN", "PLAIN"], true, false), Some("PLAIN"));
/// ```
pub fn choose<'a>(
    offered: impl IntoIterator<Item = &'a str>,
    tls: bool,
    allow_plaintext: bool,
) -> Option<&'a str> {
    let mut best: Option<(&'a str, u8)> = None;
    for name in offered {
        let Some(rank) = preference_rank(name) else {
            continue;
        };
        let plus = rank >= 5;
        let plaintext = rank <= 1;
        if (plus && !tls) || (plaintext && !tls && !allow_plaintext) {
            continue;
        }
        match best {
            Some((_, best_rank)) if best_rank >= rank => {}
            _ => best = Some((name, rank)),
        }
    }
    best.map(|(name, _)| name)
}

/// Rejects text a line-oriented SASL payload cannot carry unambiguously:
/// ASCII control characters (including NUL and the `^A` separator) and DEL.
fn check_no_controls(text: &str, what: &'static str) -> Result<(), SaslError> {
    if text.bytes().any(|b| b < 0x20 || b == 0x7f) {
        Err(SaslError::InvalidInput(what))
    } else {
        Ok(())
    }
}

/// Escapes a SASL `saslname` (RFC 5802 / RFC 5801): `,` → `=2C`, `=` → `=3D`.
fn escape_saslname(name: &str) -> alloc::string::String {
    let mut out = alloc::string::String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            ',' => out.push_str("=2C"),
            '=' => out.push_str("=3D"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "scram")]
    fn rank_and_choose() {
        assert_eq!(preference_rank("scram-sha-256-plus"), Some(6));
        assert_eq!(preference_rank("XOAUTH2"), None);
        assert_eq!(preference_rank(""), None);
        let all = [
            "LOGIN",
            "PLAIN",
            "CRAM-MD5",
            "SCRAM-SHA-1",
            "SCRAM-SHA-256",
            "SCRAM-SHA-256-PLUS",
            "XOAUTH2",
        ];
        assert_eq!(choose(all, true, false), Some("SCRAM-SHA-256-PLUS"));
        assert_eq!(choose(all, false, false), Some("SCRAM-SHA-256"));
        assert_eq!(
            choose(["SCRAM-SHA-1-PLUS", "SCRAM-SHA-256"], true, false),
            Some("SCRAM-SHA-1-PLUS")
        );
        assert_eq!(choose(["LOGIN", "PLAIN"], false, true), Some("PLAIN"));
        assert_eq!(choose(["LOGIN"], false, false), None);
        assert_eq!(choose(["LOGIN"], true, false), Some("LOGIN"));
        assert_eq!(
            choose(["XOAUTH2", "OAUTHBEARER", "GSSAPI"], true, true),
            None
        );
        assert_eq!(choose([], true, true), None);
        assert_eq!(choose(["cram-md5", "PLAIN"], true, true), Some("cram-md5"));
    }

    #[test]
    #[cfg(not(feature = "scram"))]
    fn no_scram_without_the_feature() {
        assert_eq!(preference_rank("SCRAM-SHA-256"), None);
        assert_eq!(preference_rank("CRAM-MD5"), Some(2));
        assert_eq!(
            choose(["SCRAM-SHA-256", "CRAM-MD5", "PLAIN"], true, false),
            Some("CRAM-MD5")
        );
    }

    #[test]
    fn saslname_escaping() {
        assert_eq!(escape_saslname("a,b=c"), "a=2Cb=3Dc");
        assert_eq!(escape_saslname("plain"), "plain");
    }
}

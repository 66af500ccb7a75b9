//! Error types of the core, one per failure domain.
//!
//! * [`ProtocolError`]: the server broke the protocol (or the connection
//!   ended early). Fatal and sticky: once [`Client::poll_event`] returns one,
//!   every later call returns the same error.
//! * [`UsageError`]: the caller asked for something the session cannot do
//!   now. The client stays usable.
//! * [`CommandError`]: a command argument was refused when the command value
//!   was built (CR, LF, NUL, empty, too long), so encoding can never fail.
//!
//! A server's `-ERR` is none of these: it is data, delivered as
//! [`Event::Err`](crate::Event::Err).
//!
//! [`Client::poll_event`]: crate::Client::poll_event

use alloc::string::String;

use crate::sasl::SaslError;
use crate::{CommandKind, SessionState};

/// The server violated the protocol, or the stream ended where it must not.
///
/// Protocol errors are sticky: the [`Client`](crate::Client) is poisoned and
/// returns the same error from every later `poll_event`. Server text quoted in
/// an error is truncated to 200 bytes and never contains client secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The first line from the server was neither `+OK` nor `-ERR`.
    #[error("bad greeting from server: {line:?}")]
    BadGreeting {
        /// The start of the offending line (lossy UTF-8, truncated).
        line: String,
    },
    /// A status line did not start with `+OK` or `-ERR` (or `+` where a
    /// SASL continuation was possible).
    #[error("malformed status line in reply to {command}: {line:?}")]
    MalformedStatus {
        /// The command the line was a reply to.
        command: CommandKind,
        /// The start of the offending line (lossy UTF-8, truncated).
        line: String,
    },
    /// A line of a reply (STAT, LIST, UIDL, CAPA entry, ...) could not be
    /// parsed.
    #[error("malformed {command} reply line ({reason}): {line:?}")]
    MalformedLine {
        /// The command the line belongs to.
        command: CommandKind,
        /// What was wrong.
        reason: &'static str,
        /// The start of the offending line (lossy UTF-8, truncated).
        line: String,
    },
    /// A status line, continuation line or listing entry exceeded
    /// [`Config::max_line_len`](crate::Config::max_line_len).
    #[error("line longer than the limit of {limit} bytes")]
    LineTooLong {
        /// The configured limit.
        limit: usize,
    },
    /// A multi-line listing (LIST, UIDL, CAPA, LANG) had more entries than
    /// [`Config::max_entries`](crate::Config::max_entries).
    #[error("multi-line reply with more than {limit} entries")]
    TooManyEntries {
        /// The configured limit.
        limit: usize,
    },
    /// A multi-line listing exceeded
    /// [`Config::max_listing_bytes`](crate::Config::max_listing_bytes).
    #[error("multi-line reply larger than {limit} bytes")]
    ListingTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The server sent bytes while no command was waiting for a reply:
    /// after the reply to the last command in flight and before the next
    /// command was sent (see the crate docs, "Unsolicited bytes").
    #[error("unsolicited data from server: {line:?}")]
    UnsolicitedResponse {
        /// The start of the unexpected data (lossy UTF-8, truncated).
        line: String,
    },
    /// Bytes arrived after the `+OK` to STLS and before the TLS handshake:
    /// a man in the middle may be injecting responses (CVE-2021-22947).
    #[error("{len} byte(s) received after +OK to STLS before TLS started (response injection)")]
    StlsInjection {
        /// How many unexpected bytes were buffered.
        len: usize,
    },
    /// The connection ended in the middle of a message body: what was
    /// received is incomplete and must not be treated as the message.
    #[error(
        "connection closed in the middle of a message body after {received} bytes (truncated)"
    )]
    TruncatedBody {
        /// Body bytes delivered before the end of the stream.
        received: u64,
    },
    /// The connection ended while a reply was expected.
    #[error("connection closed by server while waiting for a reply in state {state}")]
    UnexpectedEof {
        /// The session state at the time.
        state: SessionState,
    },
    /// The server claimed SASL success, but the mechanism did not complete
    /// (for example the SCRAM server signature was missing or wrong). The
    /// session must not be trusted.
    #[error("SASL authentication could not be verified: {0}")]
    Sasl(SaslError),
}

/// The caller asked for something that cannot be done in the current
/// session. The client is unchanged and stays usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// The command is not valid in the state it would run in (RFC 1939).
    #[error("{command} is not allowed in the {state} state")]
    WrongState {
        /// The state the command would have run in.
        state: SessionState,
        /// The refused command.
        command: CommandKind,
    },
    /// The session is closed (QUIT answered, or the server went away).
    #[error("the session is closed")]
    Closed,
    /// The client is poisoned by an earlier protocol error.
    #[error("the session failed earlier: {0}")]
    Poisoned(ProtocolError),
    /// APOP authentication is impossible with this server: it needs the
    /// `<timestamp>` of the server greeting, and there is none (or only a
    /// `<` without its `>`), or it was forgotten after STLS, as RFC 2595
    /// requires. Nothing was sent. This is an authentication failure, not
    /// a mistake in the arguments: use another login method.
    #[error("APOP authentication is impossible: the server greeting carried no APOP timestamp")]
    ApopUnavailable,
    /// STLS was asked for on a connection that is already TLS.
    #[error("TLS is already active on this connection")]
    AlreadyTls,
    /// A SASL response or cancel was given while no AUTH exchange was
    /// waiting for one.
    #[error("no SASL exchange is waiting for a response")]
    NoSaslExchange,
    /// [`Client::tls_established`](crate::Client::tls_established) was called
    /// while no STLS upgrade was pending.
    #[error("no STLS upgrade is pending")]
    NoStlsPending,
    /// The caller waited for a reply, but nothing is in flight or queued.
    #[error("nothing to wait for: no command is in flight")]
    NothingToWaitFor,
    /// The mechanism could not produce its initial response.
    #[error("SASL mechanism failed before sending anything: {0}")]
    Sasl(SaslError),
    /// A command argument was refused.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// A credential (`USER`, `PASS`, `APOP`, `RPOP`, `AUTH`) on a session
    /// without TLS, and [`Config::allow_cleartext_credentials`](crate::Config::allow_cleartext_credentials)
    /// is off. Nothing was queued.
    #[error("refusing to send credentials over a connection without TLS (not explicitly allowed)")]
    CleartextCredentials,
    /// A SASL mechanism the caller asked for explicitly is not in the
    /// server's `SASL` capability. Nothing was sent.
    #[error(
        "the server does not offer SASL {requested} (it offers: {})",
        offered_list(offered)
    )]
    MechanismNotOffered {
        /// The mechanism asked for.
        requested: alloc::string::String,
        /// What the server's CAPA lists.
        offered: alloc::vec::Vec<alloc::string::String>,
    },
}

fn offered_list(offered: &[alloc::string::String]) -> alloc::string::String {
    if offered.is_empty() {
        alloc::string::String::from("none")
    } else {
        offered.join(" ")
    }
}

/// A command argument that cannot be sent safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The argument contains CR, LF or NUL, which could inject a second
    /// command line.
    #[error("argument contains CR, LF or NUL")]
    ForbiddenByte,
    /// The argument is empty.
    #[error("argument is empty")]
    Empty,
    /// The argument contains a space where the command takes a single word.
    #[error("argument contains a space")]
    Space,
    /// The argument contains a byte outside printable US-ASCII where only
    /// that is allowed (SASL mechanism names, language tags).
    #[error("argument contains a byte that is not allowed here")]
    InvalidByte,
    /// The command line would exceed 255 octets with CRLF (RFC 2449 §4).
    #[error("command line would be {len} octets, over the limit of 255")]
    TooLong {
        /// The length the line would have had.
        len: usize,
    },
    /// A message number of zero (message numbers start at 1).
    #[error("message numbers start at 1")]
    ZeroMessageNumber,
}

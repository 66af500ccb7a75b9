//! The adapter's error type.

use std::io;
use std::sync::Arc;

use pop3_proto::{CommandKind, ErrResponse, ProtocolError, UsageError};
use pop3_proto::sasl::SaslError;
use pop3_tls::{ErrorKind, SecurityError, TlsConfigError};

/// Everything that can go wrong in a [`Client`](crate::Client) call.
///
/// [`Error::kind`] classifies it independently of the adapter (the same
/// [`ErrorKind`] as `pop3-blocking`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error from the transport (the connection is then poisoned).
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// A connect, read or write (or the TLS handshake) took longer than its
    /// timeout. The session stays usable: the late reply is drained by the
    /// next call (see the crate docs on cancellation).
    #[error("{0} timed out")]
    Timeout(TimeoutKind),
    /// The TLS handshake or record layer failed.
    #[error("TLS error: {0}")]
    Tls(io::Error),
    /// The TLS configuration could not be built.
    #[error("TLS configuration: {0}")]
    TlsConfig(#[from] TlsConfigError),
    /// The server broke the protocol, or closed the connection early.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// The caller asked for something the session cannot do now.
    #[error("usage error: {0}")]
    Usage(#[from] UsageError),
    /// The server answered `-ERR`.
    #[error("{command} failed: {response}")]
    Server {
        /// The command that failed.
        command: CommandKind,
        /// The server's response code and text.
        response: ErrResponse,
    },
    /// A SASL mechanism gave up on a server challenge; the exchange was
    /// cancelled with `*` and the server answered `response`.
    #[error("AUTH cancelled ({error}); server said {response}")]
    AuthCancelled {
        /// Why the mechanism gave up.
        error: SaslError,
        /// The server's reply to the cancel.
        response: ErrResponse,
    },
    /// The security policy refused to go on (nothing secret was sent).
    #[error("security policy: {0}")]
    Security(#[from] SecurityError),
    /// The client is unusable because of an earlier failure (an I/O or TLS
    /// error, a protocol error, or an STLS upgrade whose future was
    /// dropped). Every call returns this error from then on.
    #[error("the connection is unusable after an earlier error: {0}")]
    Poisoned(Arc<Error>),
    /// An operation that cannot be resumed was cancelled (its future was
    /// dropped); only ever seen inside [`Error::Poisoned`].
    #[error("{0} was cancelled part-way and cannot be resumed")]
    Cancelled(&'static str),
}

/// Which wait timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// The TCP connect.
    Connect,
    /// Waiting for bytes from the server.
    Read,
    /// Waiting for the transport to accept bytes.
    Write,
    /// The TLS handshake.
    Handshake,
}

impl std::fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimeoutKind::Connect => "connect",
            TimeoutKind::Read => "read",
            TimeoutKind::Write => "write",
            TimeoutKind::Handshake => "TLS handshake",
        })
    }
}

impl Error {
    /// What kind of failure this is, shared with `pop3-blocking`.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io(e) => ErrorKind::of_io(e),
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::Tls(_) | Error::TlsConfig(_) => ErrorKind::Tls,
            Error::Protocol(e) => ErrorKind::of_protocol(e),
            Error::Usage(e) => ErrorKind::of_usage(e),
            Error::Server { response, .. } => ErrorKind::of_server(response),
            Error::AuthCancelled { response, .. } => ErrorKind::of_server(response),
            Error::Security(_) => ErrorKind::Insecure,
            Error::Poisoned(e) => e.kind(),
            Error::Cancelled(_) => ErrorKind::Usage,
        }
    }

    /// The server's `-ERR`, if this is one.
    pub fn server_response(&self) -> Option<&ErrResponse> {
        match self {
            Error::Server { response, .. } | Error::AuthCancelled { response, .. } => {
                Some(response)
            }
            _ => None,
        }
    }

    /// Whether the client is poisoned by this error (every later call
    /// fails).
    pub fn is_poisoned(&self) -> bool {
        matches!(self, Error::Poisoned(_))
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        match e {
            Error::Io(e) | Error::Tls(e) => e,
            Error::Timeout(_) => io::Error::new(io::ErrorKind::TimedOut, e),
            other => io::Error::other(other),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

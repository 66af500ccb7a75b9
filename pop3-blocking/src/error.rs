//! The adapter's one error type.

use std::fmt;
use std::io;

use pop3_proto::{CommandError, CommandKind, ErrResponse, ProtocolError, UsageError};
use pop3_tls::{ErrorKind, SecurityError};

/// Everything that can go wrong in a [`Client`](crate::Client) call.
///
/// Use [`Error::kind`] for an adapter-independent classification (the same
/// [`ErrorKind`] the tokio adapter returns).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed (connect, read or write), other than a timeout.
    Io(io::Error),
    /// A connect, read or write timed out (the server stalled). The
    /// connection is unusable afterwards.
    Timeout(io::Error),
    /// The TLS handshake or a TLS record failed (also: the stream upgrade
    /// closure of [`Client::stls_with`](crate::Client::stls_with) failed).
    Tls(io::Error),
    /// The TLS configuration could not be built (bad CA file, key, name).
    #[cfg(feature = "rustls")]
    TlsConfig(pop3_tls::TlsConfigError),
    /// The server broke the protocol, or the connection ended where it must
    /// not ([`ProtocolError::TruncatedBody`]: a message was cut short and
    /// what was received must not be used). The session is dead.
    Protocol(ProtocolError),
    /// The server answered `-ERR`. The session continues (except after
    /// QUIT, where it means the deletions were not committed).
    Server {
        /// The command that failed.
        command: CommandKind,
        /// The server's response code and text.
        response: ErrResponse,
    },
    /// The server refused the connection in its greeting (`-ERR`, for
    /// example `[SYS/TEMP]` when overloaded).
    GreetingRefused(ErrResponse),
    /// The caller asked for something the session cannot do now (wrong
    /// state, closed session, invalid argument). Nothing was sent.
    Usage(UsageError),
    /// The security policy refused to continue; nothing secret was sent.
    Security(SecurityError),
    /// The caller's writer or message sink failed. The session is still
    /// usable: the rest of the message was read and discarded (and no
    /// `DELE` was sent for it).
    Sink(io::Error),
    /// An earlier I/O error or timeout left the connection in an unknown
    /// state; it cannot be used any more. Carries the original error's kind.
    Broken(ErrorKind),
}

impl Error {
    /// The adapter-independent kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io(e) => ErrorKind::of_io(e),
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::Tls(_) => ErrorKind::Tls,
            #[cfg(feature = "rustls")]
            Error::TlsConfig(_) => ErrorKind::Tls,
            Error::Protocol(e) => ErrorKind::of_protocol(e),
            Error::Server { response, .. } | Error::GreetingRefused(response) => {
                ErrorKind::of_server(response)
            }
            Error::Usage(e) => ErrorKind::of_usage(e),
            Error::Security(_) => ErrorKind::Insecure,
            Error::Sink(_) => ErrorKind::Io,
            Error::Broken(k) => k.clone(),
        }
    }

    /// The server's `-ERR`, if this is one (greeting included).
    pub fn server_response(&self) -> Option<&ErrResponse> {
        match self {
            Error::Server { response, .. } | Error::GreetingRefused(response) => Some(response),
            _ => None,
        }
    }

    /// Maps a transport error: timeouts and TLS failures get their own
    /// variants.
    pub(crate) fn from_io(e: io::Error) -> Error {
        match ErrorKind::of_io(&e) {
            ErrorKind::Timeout => Error::Timeout(e),
            ErrorKind::Tls => Error::Tls(e),
            _ => Error::Io(e),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Timeout(e) => write!(f, "timed out: {e}"),
            Error::Tls(e) => write!(f, "TLS error: {e}"),
            #[cfg(feature = "rustls")]
            Error::TlsConfig(e) => write!(f, "TLS configuration error: {e}"),
            Error::Protocol(e) => write!(f, "protocol error: {e}"),
            Error::Server { command, response } => write!(f, "{command} failed: {response}"),
            Error::GreetingRefused(r) => write!(f, "server refused the connection: {r}"),
            Error::Usage(e) => write!(f, "{e}"),
            Error::Security(e) => write!(f, "{e}"),
            Error::Sink(e) => write!(f, "writing the message failed: {e}"),
            Error::Broken(k) => write!(f, "the connection failed earlier ({k:?}) and is unusable"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) | Error::Timeout(e) | Error::Tls(e) | Error::Sink(e) => Some(e),
            #[cfg(feature = "rustls")]
            Error::TlsConfig(e) => Some(e),
            Error::Protocol(e) => Some(e),
            Error::Usage(e) => Some(e),
            Error::Security(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    /// Classifies like a transport error (timeouts become
    /// [`Error::Timeout`]); convenient for `?` on file I/O in callers.
    fn from(e: io::Error) -> Self {
        Error::from_io(e)
    }
}

impl From<UsageError> for Error {
    fn from(e: UsageError) -> Self {
        Error::Usage(e)
    }
}

impl From<CommandError> for Error {
    fn from(e: CommandError) -> Self {
        Error::Usage(UsageError::Command(e))
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Error::Protocol(e)
    }
}

impl From<SecurityError> for Error {
    fn from(e: SecurityError) -> Self {
        Error::Security(e)
    }
}

#[cfg(feature = "rustls")]
impl From<pop3_tls::TlsConfigError> for Error {
    fn from(e: pop3_tls::TlsConfigError) -> Self {
        Error::TlsConfig(e)
    }
}

impl From<Error> for io::Error {
    /// For code that needs an `io::Error` (inside a `Read` impl, say).
    fn from(e: Error) -> io::Error {
        match e {
            Error::Io(e) | Error::Timeout(e) | Error::Tls(e) | Error::Sink(e) => e,
            other => io::Error::other(other),
        }
    }
}

//! The one error type of both adapters, and the error of a batch that
//! stopped part-way.

use std::fmt;
use std::io;

use pop3_proto::login::LoginError;
use pop3_proto::session::SessionError;
use pop3_proto::{CommandError, CommandKind, ErrResponse, ProtocolError, UsageError};

#[cfg(feature = "rustls")]
use crate::TlsConfigError;
use crate::{BatchReport, ErrorKind, SecurityError, TlsFailure};

/// Everything that can go wrong in a `Client` call of `pop3-blocking` or
/// `pop3-tokio` (both re-export this type as their `Error`).
///
/// Use [`Error::kind`] for a classification that does not depend on the
/// variant (the same [`ErrorKind`] for both adapters).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed (connect, read or write), other than a timeout.
    Io(io::Error),
    /// A connect, read or write timed out (the server stalled). With
    /// `pop3-blocking` the connection is unusable afterwards; `pop3-tokio`
    /// keeps the session after a read or write timeout and drains the late
    /// reply on the next call (see its crate docs on cancellation). A
    /// timeout during connect or a TLS handshake leaves nothing to use.
    Timeout(io::Error),
    /// The TLS handshake or a TLS record failed (also: the stream upgrade
    /// closure of `Client::stls_with` failed).
    Tls(io::Error),
    /// The TLS configuration could not be built (bad CA file, key, name).
    #[cfg(feature = "rustls")]
    TlsConfig(TlsConfigError),
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
    /// An earlier I/O, TLS or protocol error (with `pop3-tokio` also an
    /// STLS upgrade whose future was dropped half-way) left the connection
    /// in an unknown state; it cannot be used any more. Carries the
    /// original error's kind.
    Broken(ErrorKind),
    /// Async only (`pop3-tokio`; the blocking adapter never returns it): an
    /// operation that cannot be resumed (the STLS upgrade) was cancelled by
    /// dropping its future; returned once by the next call, then
    /// [`Error::Broken`].
    Cancelled(&'static str),
}

impl Error {
    /// The adapter-independent kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io(e) => ErrorKind::of_io(e),
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::Tls(_) | Error::Cancelled(_) => ErrorKind::Tls,
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

    /// Why the TLS handshake (or a TLS record) failed, for an
    /// [`Error::Tls`]: matchable without downcasting a `rustls::Error`.
    /// `None` for every other variant.
    ///
    /// ```
    /// # use pop3_adapter::{Error, TlsFailure};
    /// fn hint(e: &Error) -> &'static str {
    ///     match e.tls_failure() {
    ///         Some(TlsFailure::UnknownIssuer) => "trust its CA with --ca-file",
    ///         Some(TlsFailure::NotTls) => "this port speaks plain POP3",
    ///         Some(_) => "TLS failed",
    ///         None => "not a TLS problem",
    ///     }
    /// }
    /// let e = Error::Tls(std::io::Error::other("custom upgrade failed"));
    /// assert_eq!(e.tls_failure(), Some(TlsFailure::Other));
    /// assert_eq!(hint(&Error::timeout("read")), "not a TLS problem");
    /// ```
    pub fn tls_failure(&self) -> Option<TlsFailure> {
        match self {
            Error::Tls(e) => Some(TlsFailure::of_io(e)),
            _ => None,
        }
    }

    /// The server certificate that verification refused, with why, when
    /// the configuration came from [`TlsOptions`](crate::TlsOptions) (its
    /// verifier records the presented certificate): subject, issuer,
    /// validity and SHA-256 fingerprint, to show to the user.
    #[cfg(feature = "rustls")]
    pub fn rejected_certificate(&self) -> Option<&pop3_rustls::CertificateRejected> {
        match self {
            Error::Tls(e) => pop3_rustls::CertificateRejected::find(e),
            _ => None,
        }
    }

    /// Whether this error says the client is unusable ([`Error::Broken`],
    /// [`Error::Cancelled`]): every later call fails.
    pub fn is_broken(&self) -> bool {
        matches!(self, Error::Broken(_) | Error::Cancelled(_))
    }

    /// Maps a transport error: timeouts and TLS failures get their own
    /// variants ([`ErrorKind::of_io`]).
    pub fn from_io(e: io::Error) -> Error {
        match ErrorKind::of_io(&e) {
            ErrorKind::Timeout => Error::Timeout(e),
            ErrorKind::Tls => Error::Tls(e),
            _ => Error::Io(e),
        }
    }

    /// Maps an error of a TLS handshake: like [`Error::from_io`], but a
    /// plain I/O failure is reported as [`Error::Tls`] too.
    pub fn from_handshake(e: io::Error) -> Error {
        match Error::from_io(e) {
            Error::Io(e) => Error::Tls(e),
            other => other,
        }
    }

    /// A timeout error for `what` (`"read"`, `"connect"`, `"TLS handshake"`).
    pub fn timeout(what: &str) -> Error {
        Error::Timeout(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what} timed out"),
        ))
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
            Error::Cancelled(what) => {
                write!(
                    f,
                    "{what} was cancelled part-way; the connection is unusable"
                )
            }
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
    /// The core's cleartext-credential refusal is a [`SecurityError`].
    fn from(e: UsageError) -> Self {
        match e {
            UsageError::CleartextCredentials => {
                Error::Security(SecurityError::CleartextCredentials)
            }
            e => Error::Usage(e),
        }
    }
}

impl From<SessionError> for Error {
    /// A session-layer error: a timeout becomes [`Error::Timeout`] whose
    /// inner error is the [`SessionError::Timeout`] (downcast it for what
    /// was waited for and how much of a body arrived).
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Protocol(p) => Error::Protocol(p),
            SessionError::Timeout(t) => Error::Timeout(io::Error::new(
                io::ErrorKind::TimedOut,
                SessionError::Timeout(t),
            )),
            SessionError::Cancelled(what) => Error::Cancelled(what),
            SessionError::Server { command, response } => Error::Server { command, response },
            SessionError::GreetingRefused(r) => Error::GreetingRefused(r),
            SessionError::Usage(u) => u.into(),
            SessionError::Security(s) => Error::Security(s),
            other => Error::Io(io::Error::other(other)),
        }
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

impl From<LoginError> for Error {
    fn from(e: LoginError) -> Self {
        Error::Security(e.into())
    }
}

#[cfg(feature = "rustls")]
impl From<TlsConfigError> for Error {
    fn from(e: TlsConfigError) -> Self {
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

/// A pipelined batch (`retr_each_report`, `top_each_report`) that stopped
/// part-way: which message it stopped at, what it had done until then,
/// and why.
///
/// `report.deleted` lists the `DELE`s the server acknowledged before the
/// failure: after a [`Error::Sink`] the session is still usable and a
/// `QUIT` commits exactly those.
#[derive(Debug)]
#[non_exhaustive]
pub struct BatchError {
    /// The message the batch stopped at: the one whose sink call failed,
    /// else the one being received, else the oldest one requested and not
    /// yet answered. `None` when no message was involved.
    pub message: Option<u32>,
    /// What the batch did before it stopped (boxed: keeps the error small).
    pub report: Box<BatchReport>,
    /// Why it stopped.
    pub error: Error,
}

impl BatchError {
    /// The kind of [`BatchError::error`].
    pub fn kind(&self) -> ErrorKind {
        self.error.kind()
    }
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.message {
            Some(n) => write!(f, "message {n}: {}", self.error),
            None => fmt::Display::fmt(&self.error, f),
        }
    }
}

impl std::error::Error for BatchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<BatchError> for Error {
    /// The error alone (message number and report dropped): what
    /// `retr_each` returns.
    fn from(e: BatchError) -> Self {
        e.error
    }
}

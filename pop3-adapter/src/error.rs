//! The one error type of both adapters, and the error of a batch that
//! stopped part-way.

use std::fmt;
use std::io;

use pop3_proto::login::LoginError;
use pop3_proto::session::SessionError;
use pop3_proto::{CommandError, CommandKind, ErrResponse, ProtocolError, RespCode, UsageError};

#[cfg(feature = "rustls")]
use crate::TlsConfigError;
use crate::{BatchReport, ErrorKind, SecurityError, TlsFailure};

/// Everything that can go wrong in a `Client` call of `pop3-blocking` or
/// `pop3-tokio` (both re-export this type as their `Error`).
///
/// Use [`Error::kind`] for a classification that does not depend on the
/// variant (the same [`ErrorKind`] for both adapters), and
/// [`Error::is_auth_failure`], [`Error::is_transient`] and
/// [`Error::is_permanent`] to decide what to do next.
///
/// ```
/// use pop3_adapter::{Error, ErrorKind};
/// use pop3_proto::{CommandKind, ErrResponse, RespCode};
///
/// fn advice(e: &Error) -> &'static str {
///     if e.is_auth_failure() {
///         "check the user name and password"
///     } else if e.is_transient() {
///         "try again later"
///     } else if e.is_permanent() {
///         "give up"
///     } else {
///         "look at the local side (disk, permissions)"
///     }
/// }
///
/// let locked = Error::Server {
///     command: CommandKind::Pass,
///     response: ErrResponse::new(Some(RespCode::InUse), "locked"),
/// };
/// assert_eq!(locked.kind(), ErrorKind::Server(Some(RespCode::InUse)));
/// assert_eq!(advice(&locked), "try again later");
/// assert_eq!(advice(&Error::timeout("read")), "try again later");
/// ```
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

    /// Whether the server rejected the credentials: a `-ERR` to a login
    /// command (`USER`, `PASS`, `APOP`, `AUTH`, `RPOP`) that is not a
    /// temporary refusal. `[IN-USE]`, `[LOGIN-DELAY]`, `[SYS/TEMP]` and
    /// `[SYS/PERM]` are not (the password may well be right); `[AUTH]`,
    /// another code, or none is, unless a server without response codes
    /// says in words that the problem is temporary ("try again later",
    /// "mailbox locked", ...). Asking the user for another password makes
    /// sense only when this is true.
    ///
    /// ```
    /// use pop3_adapter::Error;
    /// use pop3_proto::{CommandKind, ErrResponse, RespCode};
    ///
    /// let refused = |code| Error::Server {
    ///     command: CommandKind::Pass,
    ///     response: ErrResponse::new(code, "no"),
    /// };
    /// assert!(refused(Some(RespCode::Auth)).is_auth_failure());
    /// assert!(refused(None).is_auth_failure());
    /// // Locked by another session: right password, retry later.
    /// assert!(!refused(Some(RespCode::InUse)).is_auth_failure());
    /// assert!(refused(Some(RespCode::InUse)).is_transient());
    /// ```
    pub fn is_auth_failure(&self) -> bool {
        match self {
            Error::Server { command, response } if is_login_command(*command) => {
                match &response.code {
                    Some(code) => !code.is_temporary() && *code != RespCode::SysPerm,
                    None => !sounds_temporary(&response.text),
                }
            }
            _ => false,
        }
    }

    /// Whether trying again later may succeed without changing anything:
    /// a `-ERR` (or refused greeting) with `[IN-USE]`, `[LOGIN-DELAY]` or
    /// `[SYS/TEMP]` (or, from a server without response codes, a login
    /// refusal that says so in words), a timeout, a connection reset,
    /// refused or closed by the peer, and a connection that ended in the
    /// middle of a reply or a message. Never true together with
    /// [`Error::is_permanent`]; some errors are neither (a failing sink,
    /// another local I/O error, a cancelled call).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Server { command, response } => match &response.code {
                Some(code) => code.is_temporary(),
                None => is_login_command(*command) && sounds_temporary(&response.text),
            },
            Error::GreetingRefused(r) => r.code.as_ref().is_some_and(RespCode::is_temporary),
            Error::Timeout(_) => true,
            Error::Io(e) | Error::Tls(e) => is_transient_io(e),
            Error::Protocol(p) => matches!(
                ErrorKind::of_protocol(p),
                ErrorKind::Truncated | ErrorKind::Closed
            ),
            Error::Usage(UsageError::Poisoned(p)) => matches!(
                ErrorKind::of_protocol(p),
                ErrorKind::Truncated | ErrorKind::Closed
            ),
            Error::Broken(k) => matches!(
                k,
                ErrorKind::Timeout | ErrorKind::Truncated | ErrorKind::Closed
            ),
            _ => false,
        }
    }

    /// Whether trying again unchanged is expected to fail the same way:
    /// rejected credentials ([`Error::is_auth_failure`]), `[SYS/PERM]`, a
    /// `-ERR` without a temporary code (no such message, command not
    /// supported), a refused greeting without one, a TLS failure that is
    /// not a dropped connection (certificate, handshake, configuration),
    /// the security policy refusing to continue, a server breaking the
    /// protocol, and a caller's mistake ([`Error::Usage`]).
    pub fn is_permanent(&self) -> bool {
        if self.is_transient() {
            return false;
        }
        match self {
            Error::Server { .. } | Error::GreetingRefused(_) => true,
            Error::Tls(_) | Error::Security(_) | Error::Protocol(_) => true,
            #[cfg(feature = "rustls")]
            Error::TlsConfig(_) => true,
            Error::Usage(UsageError::Closed) => false,
            Error::Usage(_) => true,
            Error::Broken(k) => matches!(k, ErrorKind::Tls | ErrorKind::Protocol),
            _ => false,
        }
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

/// The commands that carry credentials.
fn is_login_command(c: CommandKind) -> bool {
    matches!(
        c,
        CommandKind::User
            | CommandKind::Pass
            | CommandKind::Apop
            | CommandKind::Auth
            | CommandKind::Rpop
    )
}

/// Whether the text of a `-ERR` without a response code says the server
/// has a temporary problem rather than that the credentials are wrong
/// ("server shutting down", "try again later", "temporarily unavailable").
/// Only consulted for servers that send no RFC 2449/3206 code.
fn sounds_temporary(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "shutting down",
        "try again",
        "temporar",
        "unavailable",
        "too many connections",
        "in use",
        "locked",
        "busy",
    ]
    .iter()
    .any(|w| t.contains(w))
}

/// Transport failures a reconnect may cure.
fn is_transient_io(e: &io::Error) -> bool {
    use io::ErrorKind as K;
    matches!(
        e.kind(),
        K::TimedOut
            | K::WouldBlock
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::ConnectionRefused
            | K::BrokenPipe
            | K::NotConnected
            | K::UnexpectedEof
            | K::Interrupted
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(command: CommandKind, code: Option<RespCode>, text: &str) -> Error {
        Error::Server {
            command,
            response: ErrResponse::new(code, text),
        }
    }

    /// (transient, permanent, auth failure) of an error.
    fn class(e: &Error) -> (bool, bool, bool) {
        (e.is_transient(), e.is_permanent(), e.is_auth_failure())
    }

    #[test]
    fn login_refusals() {
        use CommandKind::*;
        for cmd in [User, Pass, Apop, Auth, Rpop] {
            assert_eq!(
                class(&refused(cmd, None, "bad password")),
                (false, true, true)
            );
            assert_eq!(
                class(&refused(cmd, Some(RespCode::Auth), "no")),
                (false, true, true)
            );
            for temp in [RespCode::InUse, RespCode::LoginDelay, RespCode::SysTemp] {
                assert_eq!(
                    class(&refused(cmd, Some(temp), "later")),
                    (true, false, false)
                );
            }
            assert_eq!(
                class(&refused(cmd, Some(RespCode::SysPerm), "disabled")),
                (false, true, false)
            );
            // No response codes: the words decide.
            assert_eq!(
                class(&refused(cmd, None, "Mailbox locked, try again later")),
                (true, false, false)
            );
        }
    }

    #[test]
    fn other_commands_are_never_auth_failures() {
        let e = refused(CommandKind::Retr, None, "no such message");
        assert_eq!(class(&e), (false, true, false));
        // Words only count for login commands.
        let e = refused(CommandKind::Retr, None, "try again");
        assert_eq!(class(&e), (false, true, false));
        let e = refused(CommandKind::Retr, Some(RespCode::SysTemp), "later");
        assert_eq!(class(&e), (true, false, false));
        let e = Error::GreetingRefused(ErrResponse::new(Some(RespCode::SysTemp), ""));
        assert_eq!(class(&e), (true, false, false));
        assert_eq!(
            class(&Error::GreetingRefused(ErrResponse::default())),
            (false, true, false)
        );
    }

    #[test]
    fn transport_errors() {
        let io = |k| io::Error::new(k, "x");
        assert_eq!(class(&Error::timeout("read")), (true, false, false));
        for k in [
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::ConnectionRefused,
            io::ErrorKind::BrokenPipe,
            io::ErrorKind::UnexpectedEof,
        ] {
            assert_eq!(class(&Error::Io(io(k))), (true, false, false), "{k:?}");
        }
        // A local failure is neither: it depends on the disk, not the server.
        assert_eq!(
            class(&Error::Io(io(io::ErrorKind::PermissionDenied))),
            (false, false, false)
        );
        assert_eq!(
            class(&Error::Sink(io(io::ErrorKind::Other))),
            (false, false, false)
        );
        // A certificate problem does not go away; a reset handshake may.
        assert_eq!(
            class(&Error::Tls(io(io::ErrorKind::InvalidData))),
            (false, true, false)
        );
        assert_eq!(
            class(&Error::Tls(io(io::ErrorKind::ConnectionReset))),
            (true, false, false)
        );
        assert_eq!(
            class(&Error::Broken(ErrorKind::Timeout)),
            (true, false, false)
        );
        assert_eq!(class(&Error::Broken(ErrorKind::Tls)), (false, true, false));
        assert_eq!(class(&Error::Broken(ErrorKind::Io)), (false, false, false));
    }

    #[test]
    fn protocol_security_usage() {
        let cut = ProtocolError::TruncatedBody { received: 3 };
        assert_eq!(class(&Error::Protocol(cut)), (true, false, false));
        let sec = Error::Security(SecurityError::StlsNotOffered);
        assert_eq!(class(&sec), (false, true, false));
        assert_eq!(
            class(&Error::Usage(UsageError::Closed)),
            (false, false, false)
        );
        assert_eq!(
            class(&Error::Usage(UsageError::AlreadyTls)),
            (false, true, false)
        );
    }
}

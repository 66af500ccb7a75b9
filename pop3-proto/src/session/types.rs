//! The session layer's values: time, policy, configuration, errors, and
//! what [`Session::poll`](super::Session::poll) returns.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use crate::login::{LoginError, LoginMethod};
use crate::{
    Capabilities, CommandKind, Config, ErrResponse, Greeting, ProtocolError, Response, Status,
    UsageError,
};

/// A point in time: the duration since an epoch the driver chose (for
/// example the moment it created its first session). The layer never
/// reads a clock; the driver passes `now` to every call that can start or
/// end a wait and compares [`Session::poll_timeout`](super::Session::poll_timeout)
/// with its own monotonic clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(Duration);

impl Instant {
    /// The epoch itself.
    pub const ZERO: Instant = Instant(Duration::ZERO);

    /// The instant `since` after the driver's epoch.
    pub const fn from_epoch(since: Duration) -> Instant {
        Instant(since)
    }

    /// The time since the driver's epoch.
    pub const fn since_epoch(self) -> Duration {
        self.0
    }

    /// `self + d`, saturating at the largest representable instant.
    pub fn saturating_add(self, d: Duration) -> Instant {
        Instant(self.0.checked_add(d).unwrap_or(Duration::MAX))
    }

    /// How long after `earlier` this is (zero if it is not later).
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

/// When to use TLS, in the spirit of lettre's `Tls` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TlsPolicy {
    /// TLS from the first byte (POP3S, port 995, RFC 8314 recommends it):
    /// the driver handshakes before creating the session.
    Implicit,
    /// Plain connection upgraded with `STLS` before anything else; a server
    /// that does not advertise `STLS` in `CAPA`, or answers `-ERR`, is a
    /// [`SecurityError`] before any credential is sent. The default.
    #[default]
    Required,
    /// `STLS` when the server advertises it; otherwise stay in cleartext
    /// (credentials are still refused in cleartext unless allowed). A
    /// failed TLS handshake is still an error.
    Opportunistic,
    /// No TLS at all.
    None,
}

impl TlsPolicy {
    /// 995 for [`TlsPolicy::Implicit`], 110 otherwise.
    pub fn default_port(self) -> u16 {
        match self {
            TlsPolicy::Implicit => 995,
            _ => 110,
        }
    }

    /// The connect sequence's decision after the greeting and the first
    /// `CAPA` (`caps` is `None` when the server refused CAPA): whether to
    /// send `STLS` now. `Required` without `STLS` offered is
    /// [`SecurityError::StlsNotOffered`], before any credential.
    pub fn stls_after_capa(self, caps: Option<&Capabilities>) -> Result<bool, SecurityError> {
        let offered = caps.is_some_and(|c| c.stls);
        match self {
            TlsPolicy::Required if !offered => Err(SecurityError::StlsNotOffered),
            TlsPolicy::Required => Ok(true),
            TlsPolicy::Opportunistic => Ok(offered),
            TlsPolicy::Implicit | TlsPolicy::None => Ok(false),
        }
    }

    /// The server answered `STLS` with `-ERR`: an error under `Required`
    /// ([`SecurityError::StlsRefused`]); under `Opportunistic` the session
    /// goes on in cleartext.
    pub fn stls_refused(self, response: ErrResponse) -> Result<(), SecurityError> {
        match self {
            TlsPolicy::Opportunistic => Ok(()),
            _ => Err(SecurityError::StlsRefused(response)),
        }
    }
}

/// A refusal of the security policy. Nothing secret was sent when one of
/// these is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecurityError {
    /// [`TlsPolicy::Required`], but the server's `CAPA` has no `STLS`
    /// (or `CAPA` itself failed).
    #[error("TLS required but the server does not offer STLS")]
    StlsNotOffered,
    /// [`TlsPolicy::Required`], but the server answered `STLS` with `-ERR`.
    #[error("TLS required but STLS was refused: {0}")]
    StlsRefused(ErrResponse),
    /// A credential would have been sent without TLS, and cleartext
    /// credentials are not allowed.
    #[error(
        "refusing to send credentials over a connection without TLS \
         (allow_cleartext_credentials is off)"
    )]
    CleartextCredentials,
    /// `login` found no authentication method both sides accept under the
    /// policy.
    #[error("no authentication method acceptable under the security policy")]
    NoUsableMechanism,
}

impl From<LoginError> for SecurityError {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::CleartextRefused => SecurityError::CleartextCredentials,
            #[allow(unreachable_patterns)]
            _ => SecurityError::NoUsableMechanism,
        }
    }
}

/// Everything a [`Session`](super::Session) needs besides the clock.
///
/// `#[non_exhaustive]`: start from `SessionConfig::default()`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionConfig {
    /// The machine's limits and policies. `proto.tls` is forced on under
    /// [`TlsPolicy::Implicit`].
    pub proto: Config,
    /// What the connect sequence does about TLS (default `Required`).
    pub policy: TlsPolicy,
    /// The longest a whole response may take, from the moment its command
    /// was handed to the driver (or the previous response completed, when
    /// pipelining; or the session was created, for the greeting; or STLS
    /// was accepted, for the TLS handshake) until it is complete: status
    /// line, whole listing, whole body. Default 60 s.
    pub response_timeout: Duration,
    /// The longest wait for the first byte of the greeting, when not
    /// longer than `response_timeout` (default `None`: no separate limit;
    /// equal to it: the same deadline, reported as [`Waiting::FirstByte`]
    /// when not one byte arrived). A
    /// server that says nothing at all is most often an implicit-TLS
    /// port (995) that waits for a ClientHello: with this limit the
    /// session ends with [`Waiting::FirstByte`] early instead of after the
    /// whole response timeout. Not used under [`TlsPolicy::Implicit`]
    /// (the driver's handshake comes first there).
    pub first_byte_timeout: Option<Duration>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            proto: Config::default(),
            policy: TlsPolicy::default(),
            response_timeout: Duration::from_secs(60),
            first_byte_timeout: None,
        }
    }
}

/// What a timed-out session was waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Waiting {
    /// The server greeting.
    Greeting,
    /// The reply to this command (status line, listing or body).
    Reply(CommandKind),
    /// The TLS handshake after `+OK` to STLS.
    TlsHandshake,
    /// The first byte of the greeting
    /// ([`SessionConfig::first_byte_timeout`]): the server sent nothing at
    /// all, as an implicit-TLS port does while it waits for a ClientHello.
    FirstByte,
}

impl fmt::Display for Waiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Waiting::Greeting => f.write_str("the greeting"),
            Waiting::Reply(k) => write!(f, "the reply to {k}"),
            Waiting::TlsHandshake => f.write_str("the TLS handshake"),
            Waiting::FirstByte => f.write_str("the first byte of the greeting"),
        }
    }
}

/// A response did not complete within
/// [`SessionConfig::response_timeout`]. Sticky: the connection is
/// unusable afterwards (the rest of the response may still arrive).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeout {
    /// What was being waited for.
    pub waiting_for: Waiting,
    /// The limit that passed.
    pub limit: Duration,
    /// For a RETR/TOP body already started: the bytes delivered so far.
    /// The body is truncated and must not be used as the message.
    pub body_received: Option<u64>,
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} did not complete within {:?}",
            self.waiting_for, self.limit
        )?;
        if let Some(n) = self.body_received {
            write!(f, " (body truncated after {n} bytes)")?;
        }
        Ok(())
    }
}

/// Why a session operation failed.
///
/// [`SessionError::is_fatal`] says whether the session is still usable: a
/// server `-ERR`, a usage or a security refusal leave it usable; protocol
/// errors, timeouts and cancelled upgrades are sticky.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The server broke the protocol (sticky).
    #[error("protocol error: {0}")]
    Protocol(ProtocolError),
    /// A response took too long (sticky).
    #[error("timed out: {0}")]
    Timeout(Timeout),
    /// An operation that cannot be resumed (`"STLS"`, `"connect"`) was
    /// abandoned half-way (sticky).
    #[error("{0} was abandoned half-way; the connection is unusable")]
    Cancelled(&'static str),
    /// The server answered `-ERR`. The session continues.
    #[error("{command} failed: {response}")]
    Server {
        /// The command that failed.
        command: CommandKind,
        /// The server's response code and text.
        response: ErrResponse,
    },
    /// The server refused the connection in its greeting (sticky).
    #[error("the server refused the connection: {0}")]
    GreetingRefused(ErrResponse),
    /// The caller asked for something the session cannot do now. Nothing
    /// was sent.
    #[error(transparent)]
    Usage(UsageError),
    /// The security policy refused to continue; nothing secret was sent.
    #[error(transparent)]
    Security(SecurityError),
    /// An operation was started while another one is running (finish or
    /// [`abandon`](super::Session::abandon) it first).
    #[error("another operation is in progress")]
    Busy,
}

impl SessionError {
    /// Whether the session is unusable after this error.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            SessionError::Protocol(_)
                | SessionError::Timeout(_)
                | SessionError::Cancelled(_)
                | SessionError::GreetingRefused(_)
        ) || matches!(self, SessionError::Usage(UsageError::Poisoned(_)))
    }
}

impl From<UsageError> for SessionError {
    fn from(e: UsageError) -> Self {
        match e {
            UsageError::CleartextCredentials => {
                SessionError::Security(SecurityError::CleartextCredentials)
            }
            UsageError::Poisoned(p) => SessionError::Protocol(p),
            e => SessionError::Usage(e),
        }
    }
}

impl From<crate::CommandError> for SessionError {
    fn from(e: crate::CommandError) -> Self {
        SessionError::Usage(UsageError::Command(e))
    }
}

impl From<SecurityError> for SessionError {
    fn from(e: SecurityError) -> Self {
        SessionError::Security(e)
    }
}

impl From<ProtocolError> for SessionError {
    fn from(e: ProtocolError) -> Self {
        SessionError::Protocol(e)
    }
}

impl From<LoginError> for SessionError {
    fn from(e: LoginError) -> Self {
        SessionError::Security(e.into())
    }
}

/// What the driver must do next, from [`Session::poll`](super::Session::poll).
#[derive(Debug)]
#[non_exhaustive]
pub enum Action<'a> {
    /// Nothing to report: if [`wants_write`](super::Session::wants_write),
    /// write what [`poll_transmit`](super::Session::poll_transmit) gives and
    /// poll again; otherwise read (bounded by
    /// [`poll_timeout`](super::Session::poll_timeout)) and poll again.
    Wait,
    /// Perform the TLS handshake on the transport now, then call
    /// [`tls_established`](super::Session::tls_established).
    StartTls,
    /// The running RETR/TOP got `+OK` (this status); its body follows as
    /// [`Action::Body`] and ends with [`Output::Body`].
    BodyStart(Status),
    /// A piece of the running RETR/TOP body (dot-unstuffed): hand it to
    /// the caller's writer. Copy it before the next `&mut` call.
    Body(&'a [u8]),
    /// The running operation finished.
    Done(Output),
}

/// The result of a finished operation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// The connect sequence finished (greeting, CAPA, STLS per policy).
    Connected,
    /// The greeting arrived ([`start_greeting`](super::Session::start_greeting)).
    Greeted(Greeting),
    /// A single command's typed `+OK` (STAT, LIST, CAPA, DELE, STLS, ...).
    Response(Response),
    /// A RETR/TOP body ended with its terminator after this many bytes
    /// (all delivered as [`Action::Body`]): the message is complete.
    Body {
        /// Total body bytes.
        octets: u64,
    },
    /// `login` succeeded with this method.
    LoggedIn(LoginMethod),
    /// An explicit AUTH or APOP succeeded (capabilities re-read).
    Authenticated(Status),
}

/// Owned copy of a SASL channel-binding choice, re-exported for drivers:
/// the TLS driver passes `tls-exporter` (RFC 9266, TLS 1.3) or
/// `tls-server-end-point` (RFC 5929, TLS 1.2) data to
/// [`Session::tls_established`](super::Session::tls_established).
pub use crate::sasl::ChannelBinding;

pub(crate) fn names(caps: Option<&Capabilities>) -> Vec<String> {
    caps.map(|c| c.sasl.clone()).unwrap_or_default()
}

//! The std side shared by the POP3 adapters (`pop3-blocking`,
//! `pop3-tokio`): the one [`Error`] both return, the connect options and
//! timeouts, an adapter-independent classification of errors, the
//! redacted log lines, and the `std::io` flavour of the batch sink.
//!
//! Why a crate of its own: both adapters return the *same* error and
//! option types (code and tests written against one work with the other),
//! and these need `std` (`io::Error`, `Duration` timeouts, `tracing`), so
//! they cannot live in the `no_std` core. Everything protocol-related
//! (sequences, TLS policy decisions, deadlines, batches) is in
//! [`pop3_proto::session`]; TLS configuration is in `pop3-rustls`, pulled
//! in only by the `rustls` feature (on in the adapters by default).
//!
//! | type | what |
//! | --- | --- |
//! | [`ConnectOptions`] | policy, [`Timeouts`], TLS options (feature `rustls`), the cleartext-credentials switch and the core [`pop3_proto::Config`] |
//! | [`ErrorKind`] | what kind of failure an adapter error is: `Timeout`, `Server(code)`, `Truncated`, ... |
//! | [`Error`], [`BatchError`] | the one error type of both adapters (each re-exports it as its `Error`), and a batch that stopped part-way |
//! | [`MessageSink`], [`CollectSink`], [`RetrBatch`] | the io flavour of the session layer's batches |
//! | [`TlsPolicy`], [`SecurityError`] | re-exported from the session layer |
//! | [`log`] | what the adapters log (redacted), emitted under each adapter's `tracing` target |
//!
//! # Example
//!
//! ```
//! use pop3_adapter::{ConnectOptions, Timeouts, TlsPolicy};
//! use std::time::Duration;
//!
//! let options = ConnectOptions::new()
//!     .policy(TlsPolicy::Implicit)
//!     .timeouts(Timeouts::default().read(Duration::from_secs(20)));
//! assert_eq!(options.policy.default_port(), 995);
//! ```
//!
//! # Policy for credentials
//!
//! Adapters never send a credential (`USER`, `PASS`, `APOP`, `RPOP`,
//! `AUTH`) over a connection that is not protected by TLS, unless
//! [`ConnectOptions::allow_cleartext_credentials`] is set; they return
//! [`SecurityError::CleartextCredentials`] instead, before writing anything
//! (the core refuses them too). With [`TlsPolicy::Required`] a server that
//! does not advertise `STLS`, or answers it with `-ERR`, is an error right
//! after connecting ([`SecurityError::StlsNotOffered`],
//! [`SecurityError::StlsRefused`]).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::io;
use std::time::Duration;

use pop3_proto::{ErrResponse, ProtocolError, RespCode, UsageError};

mod batch;
mod error;
pub mod log;
mod read_buffer;
mod tls;
pub use batch::{
    Batch, BatchReport, CollectSink, CommandBatch, Disposition, MessageSink, Reply, RetrBatch,
};
pub use error::{BatchError, Error};
#[cfg(feature = "rustls")]
pub use pop3_rustls::{
    channel_binding, rustls, CertificateInfo, CertificateRejected, Fingerprint, TlsConfigError,
    TlsOptions, TlsSetup,
};
pub use read_buffer::ReadBuffer;
pub use tls::TlsFailure;

// ---------------------------------------------------------------------------
// Policy, timeouts, connect options
// ---------------------------------------------------------------------------

pub use pop3_proto::session::TlsPolicy;

/// The session an adapter drives: `config` (its `max_in_flight` already
/// bounded by the adapter) under `policy`, `timeouts.read` as the
/// response deadline, `observer` logging every event under the adapter's
/// target. Its clock starts at `Instant::ZERO`: the adapter's epoch.
pub fn new_session(
    policy: TlsPolicy,
    config: pop3_proto::Config,
    timeouts: Timeouts,
    observer: fn(&pop3_proto::Event<'_>),
) -> pop3_proto::session::Session {
    let mut sc = pop3_proto::session::SessionConfig::default();
    sc.proto = config;
    sc.policy = policy;
    sc.response_timeout = timeouts.read;
    sc.first_byte_timeout = timeouts.first_byte;
    let mut session = pop3_proto::session::Session::new(sc, pop3_proto::session::Instant::ZERO);
    session.set_event_observer(Some(observer));
    session
}

/// The greeting of an adapter's connected client: the session's (kept
/// after STLS for display). The adapters' constructors return a client
/// only once the greeting arrived, so the empty greeting returned before
/// that is never seen through them.
pub fn greeting(session: &pop3_proto::session::Session) -> &pop3_proto::Greeting {
    static NONE: pop3_proto::Greeting = pop3_proto::Greeting {
        status: pop3_proto::Status {
            code: None,
            text: String::new(),
        },
        apop_timestamp: None,
    };
    session.greeting().unwrap_or(&NONE)
}

/// Timeouts for every wait. `read` bounds each whole response (status
/// line, listing, body) from the moment its command was written (the
/// session layer's deadline, [`pop3_proto::session::SessionConfig::response_timeout`]),
/// and each TLS handshake; `write` each wait for the transport to accept
/// bytes; `connect` the TCP connect (per resolved address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// TCP connect timeout, per address (default 30 s).
    pub connect: Duration,
    /// Longest a whole response may take, from writing its command until
    /// it is complete (default 60 s).
    pub read: Duration,
    /// Longest wait for the socket to accept bytes (default 60 s).
    pub write: Duration,
    /// Longest wait for the first byte of the greeting on a connection
    /// that starts in plain text (default `None`: only `read` applies).
    /// A server that sends nothing is most often an implicit-TLS port
    /// waiting for a ClientHello; this ends such a connection early with a
    /// timeout whose [`pop3_proto::session::Waiting`] is `FirstByte`
    /// ([`SessionConfig::first_byte_timeout`](pop3_proto::session::SessionConfig::first_byte_timeout)).
    pub first_byte: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(30),
            read: Duration::from_secs(60),
            write: Duration::from_secs(60),
            first_byte: None,
        }
    }
}

impl Timeouts {
    /// The same timeout for connect, read and write.
    pub fn all(d: Duration) -> Timeouts {
        Timeouts {
            connect: d,
            read: d,
            write: d,
            first_byte: None,
        }
    }
    /// Sets the connect timeout. A zero duration is replaced by 1 ms (std
    /// refuses zero timeouts).
    pub fn connect(mut self, d: Duration) -> Timeouts {
        self.connect = nonzero(d);
        self
    }
    /// Sets the read timeout.
    pub fn read(mut self, d: Duration) -> Timeouts {
        self.read = nonzero(d);
        self
    }
    /// Sets the write timeout.
    pub fn write(mut self, d: Duration) -> Timeouts {
        self.write = nonzero(d);
        self
    }
    /// Sets the first-byte limit of the greeting (used only when not
    /// longer than `read`, and never with implicit TLS).
    pub fn first_byte(mut self, d: Duration) -> Timeouts {
        self.first_byte = Some(nonzero(d));
        self
    }
}

fn nonzero(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}

/// Everything a convenience `connect` needs besides host and port.
///
/// `#[non_exhaustive]`: build from [`ConnectOptions::new`] and the setters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// TLS policy (default [`TlsPolicy::Required`]).
    pub policy: TlsPolicy,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// TLS configuration (ignored with [`TlsPolicy::None`]).
    #[cfg(feature = "rustls")]
    pub tls: TlsOptions,
    /// Allow sending credentials over a connection without TLS (default
    /// `false`).
    pub allow_cleartext_credentials: bool,
    /// The sans-IO core's configuration (line limits, pipelining). The
    /// adapter sets `tls` itself and may lower `max_in_flight` (the
    /// blocking adapter bounds its pipeline window).
    pub proto: pop3_proto::Config,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions::new()
    }
}

impl ConnectOptions {
    /// Defaults: STLS required, default timeouts and TLS options, no
    /// cleartext credentials, default core config.
    pub fn new() -> ConnectOptions {
        ConnectOptions {
            policy: TlsPolicy::default(),
            timeouts: Timeouts::default(),
            #[cfg(feature = "rustls")]
            tls: TlsOptions::new(),
            allow_cleartext_credentials: false,
            proto: pop3_proto::Config::default(),
        }
    }
    /// Sets the TLS policy.
    pub fn policy(mut self, policy: TlsPolicy) -> Self {
        self.policy = policy;
        self
    }
    /// Sets the timeouts.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }
    /// Sets the TLS options.
    #[cfg(feature = "rustls")]
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = tls;
        self
    }

    /// What `connect` needs to do TLS with these options for a server
    /// called `host`: `None` under [`TlsPolicy::None`] (nothing is read or
    /// parsed then).
    #[cfg(feature = "rustls")]
    pub fn tls_setup(&self, host: &str) -> Result<Option<TlsSetup>, TlsConfigError> {
        match self.policy {
            TlsPolicy::None => Ok(None),
            _ => TlsSetup::new(&self.tls, host).map(Some),
        }
    }
    /// Allows (or forbids) credentials over a connection without TLS.
    pub fn allow_cleartext_credentials(mut self, yes: bool) -> Self {
        self.allow_cleartext_credentials = yes;
        self
    }
    /// Sets the core configuration.
    pub fn proto_config(mut self, config: pop3_proto::Config) -> Self {
        self.proto = config;
        self
    }
}

// ---------------------------------------------------------------------------
// Errors shared by the adapters
// ---------------------------------------------------------------------------

pub use pop3_proto::session::SecurityError;

/// What kind of failure an adapter error is, independent of the adapter.
///
/// Both adapters' `Error::kind()` return this, so shared tests (and
/// callers deciding whether to retry) need not match on adapter types.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An I/O error from the transport (other than a timeout).
    Io,
    /// A connect, read or write timed out.
    Timeout,
    /// The TLS handshake or record layer failed, or the TLS configuration
    /// could not be built.
    Tls,
    /// The server broke the protocol (malformed or over-long line,
    /// unsolicited data, STLS response injection, ...).
    Protocol,
    /// The connection ended in the middle of a message body; what was
    /// received must not be taken as the message.
    Truncated,
    /// The connection ended while a reply was expected, or the session is
    /// over (after `QUIT`, or the server closed it): a server that went
    /// away is not a usage error.
    Closed,
    /// The server answered `-ERR`, with this response code (if any).
    Server(Option<RespCode>),
    /// The caller asked for something the session cannot do (wrong state,
    /// session closed, bad argument).
    Usage,
    /// The security policy refused to continue ([`SecurityError`]).
    Insecure,
}

impl ErrorKind {
    /// Classifies a core protocol error.
    pub fn of_protocol(e: &ProtocolError) -> ErrorKind {
        match e {
            ProtocolError::TruncatedBody { .. } => ErrorKind::Truncated,
            ProtocolError::UnexpectedEof { .. } => ErrorKind::Closed,
            _ => ErrorKind::Protocol,
        }
    }

    /// Classifies a core usage error (a poisoned client is classified by
    /// the protocol error that poisoned it, a closed session is
    /// [`ErrorKind::Closed`]).
    pub fn of_usage(e: &UsageError) -> ErrorKind {
        match e {
            UsageError::Poisoned(p) => ErrorKind::of_protocol(p),
            UsageError::Closed => ErrorKind::Closed,
            _ => ErrorKind::Usage,
        }
    }

    /// Classifies an I/O error: `TimedOut` and `WouldBlock` (what a socket
    /// with a read timeout returns) are [`ErrorKind::Timeout`]; an error
    /// wrapping a `rustls::Error` is [`ErrorKind::Tls`].
    pub fn of_io(e: &io::Error) -> ErrorKind {
        match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => ErrorKind::Timeout,
            #[cfg(feature = "rustls")]
            _ if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) => ErrorKind::Tls,
            _ => ErrorKind::Io,
        }
    }

    /// Classifies a server `-ERR`.
    pub fn of_server(e: &ErrResponse) -> ErrorKind {
        ErrorKind::Server(e.code.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let t = io::Error::new(io::ErrorKind::WouldBlock, "x");
        assert_eq!(ErrorKind::of_io(&t), ErrorKind::Timeout);
        #[cfg(feature = "rustls")]
        {
            let tls = io::Error::new(io::ErrorKind::InvalidData, rustls::Error::DecryptError);
            assert_eq!(ErrorKind::of_io(&tls), ErrorKind::Tls);
        }
        assert_eq!(
            ErrorKind::of_protocol(&ProtocolError::TruncatedBody { received: 3 }),
            ErrorKind::Truncated
        );
        assert_eq!(TlsPolicy::default(), TlsPolicy::Required);
        assert_eq!(TlsPolicy::Implicit.default_port(), 995);
    }
}

#[cfg(test)]
mod policy_tests {
    use super::*;
    use pop3_proto::login::LoginError;
    use pop3_proto::Capabilities;

    #[test]
    fn connect_sequence_decisions() {
        let mut with = Capabilities::default();
        with.stls = true;
        let without = Capabilities::default();
        use TlsPolicy::{Implicit, Opportunistic, Required};
        assert_eq!(Required.stls_after_capa(Some(&with)), Ok(true));
        assert_eq!(
            Required.stls_after_capa(Some(&without)),
            Err(SecurityError::StlsNotOffered)
        );
        assert_eq!(
            Required.stls_after_capa(Option::None),
            Err(SecurityError::StlsNotOffered),
            "CAPA refused: STLS not known to be offered"
        );
        assert_eq!(Opportunistic.stls_after_capa(Some(&with)), Ok(true));
        assert_eq!(Opportunistic.stls_after_capa(Some(&without)), Ok(false));
        assert_eq!(Opportunistic.stls_after_capa(Option::None), Ok(false));
        for p in [Implicit, TlsPolicy::None] {
            assert_eq!(p.stls_after_capa(Some(&with)), Ok(false));
        }
        let refusal = ErrResponse::default();
        assert_eq!(Opportunistic.stls_refused(refusal.clone()), Ok(()));
        assert_eq!(
            Required.stls_refused(refusal.clone()),
            Err(SecurityError::StlsRefused(refusal))
        );
    }

    #[test]
    fn error_classification() {
        assert_eq!(ErrorKind::of_usage(&UsageError::Closed), ErrorKind::Closed);
        assert_eq!(
            Error::Usage(UsageError::Closed).kind(),
            ErrorKind::Closed,
            "a server that went away is not a usage error"
        );
        assert_eq!(
            Error::from(LoginError::CleartextRefused).kind(),
            ErrorKind::Insecure
        );
        assert!(matches!(
            SecurityError::from(LoginError::CleartextRefused),
            SecurityError::CleartextCredentials
        ));
        assert!(Error::Cancelled("STLS").is_broken());
        assert_eq!(Error::Cancelled("STLS").kind(), ErrorKind::Tls);
        assert!(matches!(
            Error::from_handshake(io::Error::other("reset")),
            Error::Tls(_)
        ));
        assert_eq!(Error::timeout("read").kind(), ErrorKind::Timeout);
        let e = io::Error::from(Error::Sink(io::Error::other("full")));
        assert_eq!(e.to_string(), "full");
    }
}

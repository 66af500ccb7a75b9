//! The session layer: every POP3 *sequence* as a typed, sans-IO operation
//! over the [`Client`] machine, with deadlines driven by the caller's
//! clock.
//!
//! The [`Client`] machine turns commands into bytes and bytes into events.
//! A [`Session`] decides *what to send next*: the connect sequence
//! (greeting → CAPA → STLS per [`TlsPolicy`] → TLS → CAPA), the login plan
//! (CAPA if unknown → UTF8 when needed → SASL / APOP / USER+PASS → CAPA
//! again), single commands, and the deadline of every response. A driver
//! (`pop3-blocking`, `pop3-tokio`, or the twenty lines of your own runtime)
//! only moves bytes, performs the TLS handshake when asked, and passes the
//! time in.
//!
//! ```text
//!   caller: session.start_login(..) / start_command(..) / abandon()
//!                │                                       ▲ Action::Done(Output)
//!                ▼                                       │ Action::Body(&[u8])
//!   ┌──────────────────────────── Session ─────────────────────────────┐
//!   │ operation state machines (connect, STLS, login, commands)        │
//!   │ deadlines per whole response · credential policy · abandon       │
//!   │   ┌──────────────────────── Client ──────────────────────────┐   │
//!   │   │ framing · parse · FIFO of commands in flight · SASL      │   │
//!   │   └──────────────────────────────────────────────────────────┘   │
//!   └──────────────────────────────────────────────────────────────────┘
//!      ▲ handle_input(now, bytes)   │ poll_transmit(now, buf)   ▲ tls_established(now, binding)
//!      │ handle_eof(now)            ▼ poll_timeout()            │ handle_timeout(now)
//!   driver: read · write · TLS handshake · clock   (blocking, tokio, smol, embassy, ...)
//! ```
//!
//! # Why a module of `pop3-proto`, not a crate
//!
//! The layer needs the machine's internals (abandoning a command, the
//! cleartext-credential check in `enqueue`, the oldest command in flight
//! for deadlines), and an embedder gets one `no_std + alloc` crate with the
//! whole protocol.
//!
//! # Time
//!
//! The layer never reads a clock (quinn-proto style). [`Instant`] is "time
//! since an epoch the driver picked". Every call that can start or end a
//! wait takes `now`; [`Session::poll_timeout`] gives the next deadline and
//! [`Session::handle_timeout`] reports it passed. A deadline covers a
//! **whole response**: a server that trickles one byte every 100 ms
//! still times out in the greeting, a status line, a listing or a body.
//! Expiry is a sticky [`SessionError::Timeout`]; a body cut by it is
//! reported with the bytes received ([`Timeout::body_received`]), never
//! as complete. A second, shorter deadline can cover the *first byte* of
//! the greeting ([`SessionConfig::first_byte_timeout`]): a server that
//! says nothing at all is most often an implicit-TLS port waiting for a
//! ClientHello, and is then reported early as [`Waiting::FirstByte`]
//! (a protocol fact the layer owns, so both adapters and every embedder
//! get it; the hint for the user is the caller's).
//!
//! # Login plan
//!
//! [`Session::start_login`] runs CAPA when no capabilities are known, then
//! picks: SASL (`SCRAM-SHA-256-PLUS` / `SCRAM-SHA-1-PLUS` when TLS is up,
//! the driver supplied channel-binding data and the server offers them;
//! then SCRAM-SHA-256, SCRAM-SHA-1, CRAM-MD5, PLAIN, LOGIN), APOP (only
//! over TLS), USER/PASS. When the name or password is not ASCII and the
//! server advertises `UTF8`, `UTF8` is sent first (RFC 6856). After the
//! method succeeds CAPA is read again (RFC 2449 §5), unless the server
//! refused CAPA. When CAPA was refused, a SASL initial response is never
//! sent inline (pre-RFC 2449 servers may not accept it).
//!
//! ## Round trips
//!
//! Round trips from [`Session::start_login`] (or the explicit method) to
//! the output, the CAPA refresh included; then to the listing a fetcher
//! needs (LIST and UIDL), without and with
//! [`Session::set_prefetch_listing`]. USER, PASS, APOP and AUTH are never
//! pipelined (each one's outcome decides the next); the CAPA refresh, LIST
//! and UIDL are, once `PIPELINING` is known. Add one when the capabilities
//! are not known yet (CAPA first) and one when `UTF8` is needed first; a
//! server that refused CAPA gets no refresh (one less) and no inline SASL
//! initial response (one more for SASL).
//!
//! | method | login | + LIST, UIDL | prefetched, `PIPELINING` before login | prefetched, `PIPELINING` only after |
//! |---|---|---|---|---|
//! | USER + PASS | 3 | 5 | 3 | 4 |
//! | APOP | 2 | 4 | 2 | 3 |
//! | AUTH PLAIN (initial response inline) | 2 | 4 | 2 | 3 |
//! | AUTH LOGIN | 4 | 6 | 4 | 5 |
//! | AUTH CRAM-MD5 | 3 | 5 | 3 | 4 |
//! | AUTH SCRAM-SHA-256 / -SHA-1 (-PLUS) | 4 | 6 | 4 | 5 |
//!
//! Without `PIPELINING` at all, the prefetch saves nothing (one command
//! per round trip, as without it). The automatic login stays "strongest
//! mechanism first": it may cost a round trip or two more than USER/PASS.
//!
//! *APOP whose secret differs from the password*: an automatic login whose
//! APOP gets `-ERR` without `[IN-USE]`, `[LOGIN-DELAY]` or `[SYS/…]` falls
//! back to USER/PASS (APOP is only chosen over TLS, so the password is
//! still protected). An explicit [`Session::start_apop`] does not.
//!
//! An explicit [`Session::start_authenticate`] with a mechanism the
//! server's CAPA does not list is refused before anything is sent
//! ([`UsageError::MechanismNotOffered`], naming what is offered).
//!
//! # Credentials
//!
//! The machine refuses USER, PASS, APOP, RPOP and AUTH on a session
//! without TLS unless [`Config::allow_cleartext_credentials`](crate::Config::allow_cleartext_credentials); the session
//! reports it as [`SecurityError::CleartextCredentials`].
//!
//! # Abandon
//!
//! [`Session::abandon`] stops the running operation: commands not yet
//! sent are dropped, replies already due are read and discarded, an AUTH
//! exchange in progress is cancelled with `*`. Abandoning the connect
//! sequence or an STLS upgrade makes the session unusable
//! ([`SessionError::Cancelled`]). An async driver calls it when a future
//! is dropped.
//!
//! # Run loop
//!
//! One operation at a time. The driver loop is the same for every
//! operation; this one is fed from a canned transcript with a fake clock:
//!
//! ```
//! use core::time::Duration;
//! use pop3_proto::session::{Action, Instant, Output, Session, SessionConfig, TlsPolicy};
//! use pop3_proto::{Command, Response};
//!
//! let mut config = SessionConfig::default();
//! config.policy = TlsPolicy::None;
//! config.proto.allow_cleartext_credentials = true; // a canned cleartext transcript
//! let mut now = Instant::ZERO;
//! let mut session = Session::new(config, now);
//! let mut server: &[&[u8]] = &[
//!     b"+OK ready\r\n",
//!     b"+OK\r\nUSER\r\n.\r\n",             // CAPA
//!     b"+OK\r\n", b"+OK\r\n",             // USER, PASS
//!     b"+OK\r\nUSER\r\nUIDL\r\n.\r\n",     // CAPA again after login
//!     b"+OK 1 5\r\n",                     // STAT
//! ];
//! let mut wire = Vec::new();
//!
//! // The generic driver: write, poll, read, with the deadline.
//! let mut run = |session: &mut Session, now: &mut Instant| -> Result<Output, Box<dyn std::error::Error>> {
//!     loop {
//!         while let Some(_t) = session.poll_transmit(*now, &mut wire) {}
//!         match session.poll()? {
//!             Action::Done(out) => return Ok(out),
//!             Action::BodyStart(_) | Action::Body(_) => {} // a body: to the caller's sink
//!             Action::StartTls => unreachable!("no TLS in this example"),
//!             Action::Wait => {
//!                 if session.wants_write() {
//!                     continue; // write first
//!                 }
//!                 // A real driver reads with a timeout of
//!                 // session.poll_timeout() - now, then calls
//!                 // handle_input / handle_eof / handle_timeout.
//!                 assert!(session.poll_timeout().is_some());
//!                 *now = now.saturating_add(Duration::from_millis(5));
//!                 let (first, rest) = server.split_first().expect("transcript ended");
//!                 server = rest;
//!                 session.handle_input(*now, first);
//!             }
//!             _ => {}
//!         }
//!     }
//! };
//!
//! session.start_connect()?;
//! assert_eq!(run(&mut session, &mut now)?, Output::Connected);
//! session.start_login("alice", "secret", &[7; 32])?;
//! assert!(matches!(run(&mut session, &mut now)?, Output::LoggedIn(_)));
//! session.start_command(Command::Stat)?;
//! let Output::Response(Response::Stat(stat)) = run(&mut session, &mut now)? else { panic!() };
//! assert_eq!(stat.count, 1);
//! assert_eq!(wire, b"CAPA\r\nUSER alice\r\nPASS secret\r\nCAPA\r\nSTAT\r\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use crate::login::{self, LoginMethod};
use crate::sasl::Mechanism;
use crate::{
    Client, Command, CommandKind, ErrResponse, Event, Greeting, Handle, RespCode, Response, Secret,
    SessionState, Status, Transmit, UsageError,
};

pub mod batch;
mod types;
pub use types::{
    Action, ChannelBinding, Instant, Output, SecurityError, SessionConfig, SessionError, Timeout,
    TlsPolicy, Waiting,
};

#[cfg(test)]
mod tests;

/// The reply to one command, owned.
enum Reply {
    Ok(Response),
    Err(CommandKind, ErrResponse),
    Rejected(UsageError),
}

/// Which login method an automatic or explicit login runs.
enum LoginKind {
    /// The plan picks; `Output::LoggedIn`.
    Auto {
        user: String,
        password: Secret<String>,
        random: Secret<Vec<u8>>,
    },
    /// An explicit SASL mechanism; `Output::Authenticated`.
    Mechanism(Option<Box<dyn Mechanism>>),
    /// An explicit APOP; `Output::Authenticated`.
    Apop {
        user: String,
        secret: Secret<String>,
    },
    /// An explicit USER + PASS; `Output::Authenticated`.
    UserPass {
        user: String,
        password: Secret<String>,
    },
}

/// Where a login stands.
#[derive(Clone, Copy)]
enum LoginStage {
    /// Not started (or CAPA just answered).
    Start,
    Capa(Handle),
    Utf8(Handle),
    User(Handle),
    /// PASS, APOP or AUTH.
    Final(Handle),
}

struct LoginOp {
    kind: LoginKind,
    stage: LoginStage,
    method: Option<LoginMethod>,
    utf8_tried: bool,
}

/// The running operation.
enum Op {
    Idle,
    /// Connect: waiting for the greeting.
    Greeting,
    /// Waiting for the greeting alone.
    GreetingOnly,
    /// Connect: the first CAPA.
    ConnectCapa(Handle),
    /// STLS sent (`connect`: part of the connect sequence).
    Stls {
        handle: Handle,
        connect: bool,
    },
    /// `+OK` to STLS: the driver handshakes.
    AwaitTls {
        connect: bool,
        status: Status,
    },
    /// A CAPA whose completion (either way) finishes the op with `then`.
    Capa {
        handle: Handle,
        then: Output,
    },
    /// A single command.
    Command(Handle),
    /// A RETR/TOP; `started` once its `+OK` arrived.
    Body {
        handle: Handle,
        started: bool,
    },
    Login(Box<LoginOp>),
    /// After a login with [`Session::set_prefetch_listing`]: CAPA, LIST,
    /// UIDL; finishes with `then` once all are answered.
    PostLogin(Box<PostLogin>),
}

/// The replies a [`Op::PostLogin`] still waits for.
struct PostLogin {
    capa: Option<Handle>,
    list: Option<Handle>,
    uidl: Option<Handle>,
    then: Output,
}

impl Op {
    fn handles(&self) -> Vec<Handle> {
        match self {
            Op::ConnectCapa(h)
            | Op::Stls { handle: h, .. }
            | Op::Capa { handle: h, .. }
            | Op::Command(h)
            | Op::Body { handle: h, .. } => alloc::vec![*h],
            Op::PostLogin(p) => [p.capa, p.list, p.uidl].into_iter().flatten().collect(),
            Op::Login(l) => match l.stage {
                LoginStage::Capa(h)
                | LoginStage::Utf8(h)
                | LoginStage::User(h)
                | LoginStage::Final(h) => alloc::vec![h],
                LoginStage::Start => Vec::new(),
            },
            Op::Idle | Op::Greeting | Op::GreetingOnly | Op::AwaitTls { .. } => Vec::new(),
        }
    }

    fn waits_for(&self, h: Handle) -> bool {
        self.handles().contains(&h)
    }
}

/// A POP3 session: the [`Client`] machine plus the sequences and the
/// deadlines. See the [module docs](self) for the run loop.
pub struct Session {
    client: Client,
    policy: TlsPolicy,
    timeout: Duration,
    /// The first-byte limit of the greeting (`None` once a byte arrived).
    first_byte: Option<Duration>,
    op: Op,
    /// An output ready to return (an op that finished without a reply).
    ready: Option<Output>,
    /// Handles of abandoned commands whose events are dropped.
    discard: Vec<Handle>,
    /// When each command in flight was handed to the driver, oldest first.
    sent: VecDeque<Instant>,
    /// When the oldest in-flight response's clock started.
    front_start: Option<Instant>,
    last_input: Instant,
    created: Instant,
    tls_wait_since: Option<Instant>,
    greeting: Option<Greeting>,
    fatal: Option<SessionError>,
    binding: Option<ChannelBinding>,
    body_received: u64,
    observer: Option<fn(&Event<'_>)>,
    /// The `+OK` of the running RETR/TOP, not yet reported.
    body_start: Option<Status>,
    /// Logins also fetch LIST and UIDL ([`Session::set_prefetch_listing`]).
    prefetch_listing: bool,
    /// LIST and UIDL fetched with the last login, each answered once.
    prefetched: [Option<Response>; 2],
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("client", &self.client)
            .field("policy", &self.policy)
            .field("busy", &self.is_busy())
            .field("fatal", &self.fatal)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session for a freshly opened connection (already TLS under
    /// [`TlsPolicy::Implicit`]). The greeting's deadline starts at `now`.
    pub fn new(config: SessionConfig, now: Instant) -> Session {
        let mut proto = config.proto;
        if config.policy == TlsPolicy::Implicit {
            proto.tls = true;
        }
        Session {
            client: Client::new(proto),
            policy: config.policy,
            timeout: config.response_timeout,
            first_byte: match config.policy {
                TlsPolicy::Implicit => None,
                _ => config
                    .first_byte_timeout
                    .filter(|d| *d <= config.response_timeout),
            },
            op: Op::Idle,
            ready: None,
            discard: Vec::new(),
            sent: VecDeque::new(),
            front_start: None,
            last_input: now,
            created: now,
            tls_wait_since: None,
            greeting: None,
            fatal: None,
            binding: None,
            body_received: 0,
            observer: None,
            body_start: None,
            prefetch_listing: false,
            prefetched: [None, None],
        }
    }

    // ----- getters -----

    /// Makes every later login also fetch `LIST` and `UIDL`, sent with
    /// the CAPA refresh after the login's last `+OK`: in the same write
    /// when the server announced `PIPELINING` before the login, else as
    /// soon as the refreshed CAPA announces it (the refresh is the only way
    /// to know; without it, one after the other). The login's output is
    /// unchanged; the next `LIST` / `UIDL` (no argument) started with
    /// [`start_command`](Session::start_command) is then answered at once
    /// from what was fetched, without a round trip. Any other command
    /// first drops what was fetched (the listing could change). A `-ERR`
    /// to either is not kept: the command is then sent for real. See the
    /// round trips per login method in the [module docs](self).
    pub fn set_prefetch_listing(&mut self, yes: bool) {
        self.prefetch_listing = yes;
    }

    /// Whether logins also fetch `LIST` and `UIDL`
    /// ([`Session::set_prefetch_listing`]).
    pub fn prefetch_listing(&self) -> bool {
        self.prefetch_listing
    }

    /// The machine underneath, for inspection.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The greeting received when connecting (kept after STLS for display;
    /// the machine itself forgets it, so APOP never uses a timestamp seen
    /// in cleartext).
    pub fn greeting(&self) -> Option<&Greeting> {
        self.greeting.as_ref()
    }

    /// The TLS policy of the connect sequence.
    pub fn policy(&self) -> TlsPolicy {
        self.policy
    }

    /// The response timeout.
    pub fn response_timeout(&self) -> Duration {
        self.timeout
    }

    /// Changes the response timeout (for responses whose clock starts
    /// from now on, and the current one).
    pub fn set_response_timeout(&mut self, d: Duration) {
        self.timeout = d;
    }

    /// Allows (or forbids) credentials without TLS from now on.
    pub fn set_allow_cleartext_credentials(&mut self, yes: bool) {
        self.client.set_allow_cleartext_credentials(yes);
    }

    /// The channel-binding data the driver supplied, if any.
    pub fn channel_binding(&self) -> Option<&ChannelBinding> {
        self.binding.as_ref()
    }

    /// Supplies channel-binding data for a connection that was TLS from
    /// the start ([`TlsPolicy::Implicit`]). After STLS the driver passes
    /// it to [`tls_established`](Session::tls_established) instead.
    pub fn set_channel_binding(&mut self, binding: ChannelBinding) {
        self.binding = binding.is_plus().then_some(binding);
    }

    /// Calls `observer` with every event of the machine the session sees
    /// (replies, body chunks, state changes), for logging.
    pub fn set_event_observer(&mut self, observer: Option<fn(&Event<'_>)>) {
        self.observer = observer;
    }

    /// Whether an operation is running.
    pub fn is_busy(&self) -> bool {
        !matches!(self.op, Op::Idle) || self.ready.is_some()
    }

    /// Whether the session is unusable (a sticky error happened).
    pub fn is_broken(&self) -> bool {
        self.fatal.is_some() || self.client.error().is_some()
    }

    /// The sticky error, if any.
    pub fn error(&self) -> Option<&SessionError> {
        self.fatal.as_ref()
    }

    /// Whether the driver should wait for the TLS handshake now.
    pub fn is_awaiting_tls(&self) -> bool {
        matches!(self.op, Op::AwaitTls { .. })
    }

    // ----- driver input -----

    /// Bytes for the transport; call until `None` after every input,
    /// start and poll. `now` starts the clock of each command sent.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> Option<Transmit> {
        if self.fatal.is_some() {
            return None;
        }
        self.sync();
        let before = self.client.in_flight();
        let t = self.client.poll_transmit(out);
        let after = self.client.in_flight();
        for _ in before..after {
            self.sent.push_back(now);
        }
        if before == 0 && after > 0 {
            self.front_start = Some(now);
        }
        t
    }

    /// Whether [`poll_transmit`](Session::poll_transmit) has bytes now.
    pub fn wants_write(&self) -> bool {
        self.fatal.is_none() && self.client.wants_write()
    }

    /// Bytes read from the transport at `now`. Input after the deadline
    /// passed is a timeout, not data.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        if self.expired(now) {
            return;
        }
        self.last_input = now;
        if !bytes.is_empty() {
            self.first_byte = None;
        }
        self.client.handle_input(bytes);
    }

    /// The transport reached end of stream at `now`.
    pub fn handle_eof(&mut self, now: Instant) {
        if self.expired(now) {
            return;
        }
        self.last_input = now;
        self.first_byte = None;
        self.client.handle_eof();
    }

    /// The next deadline, if a response (or the greeting, or the TLS
    /// handshake) is being waited for.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.fatal.is_some() || self.client.error().is_some() {
            return None;
        }
        if let Some(limit) = self.first_byte_limit() {
            return Some(self.created.saturating_add(limit));
        }
        let start = if self.client.session_state() == SessionState::Greeting {
            Some(self.created)
        } else if self.client.is_awaiting_tls() {
            self.tls_wait_since
        } else if self.client.in_flight() > 0 {
            self.front_start
        } else {
            None
        }?;
        Some(start.saturating_add(self.timeout))
    }

    /// The first-byte limit, while it applies (greeting, nothing received).
    fn first_byte_limit(&self) -> Option<Duration> {
        self.first_byte
            .filter(|_| self.client.session_state() == SessionState::Greeting)
    }

    /// Reports that `now` was reached; if the deadline passed the session
    /// fails with a sticky [`SessionError::Timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expired(now);
    }

    fn expired(&mut self, now: Instant) -> bool {
        if self.fatal.is_some() {
            return true;
        }
        match self.poll_timeout() {
            Some(deadline) if now >= deadline => {
                let first_byte = self.first_byte_limit();
                let waiting_for = if first_byte.is_some() {
                    Waiting::FirstByte
                } else if self.client.session_state() == SessionState::Greeting {
                    Waiting::Greeting
                } else if self.client.is_awaiting_tls() {
                    Waiting::TlsHandshake
                } else {
                    match self.client.oldest_in_flight() {
                        Some((_, k)) => Waiting::Reply(k),
                        None => Waiting::Greeting,
                    }
                };
                let body_received = match self.op {
                    Op::Body { started: true, .. } => Some(self.body_received),
                    _ => None,
                };
                self.fatal = Some(SessionError::Timeout(Timeout {
                    waiting_for,
                    limit: first_byte.unwrap_or(self.timeout),
                    body_received,
                }));
                self.op = Op::Idle;
                true
            }
            _ => false,
        }
    }

    /// The driver finished the TLS handshake asked for by
    /// [`Action::StartTls`]. `binding` is the connection's channel-binding
    /// data (`tls-exporter` for TLS 1.3, `tls-server-end-point` for 1.2),
    /// if the TLS library can give it; it enables the `-PLUS` mechanisms.
    pub fn tls_established(
        &mut self,
        now: Instant,
        binding: Option<ChannelBinding>,
    ) -> Result<(), SessionError> {
        if let Some(e) = &self.fatal {
            return Err(e.clone());
        }
        let Op::AwaitTls { connect, status } = core::mem::replace(&mut self.op, Op::Idle) else {
            return Err(SessionError::Usage(UsageError::NoStlsPending));
        };
        if let Err(e) = self.client.tls_established() {
            return Err(self.fail(e.into()));
        }
        self.last_input = now;
        self.tls_wait_since = None;
        self.binding = binding.filter(ChannelBinding::is_plus);
        if connect {
            let h = self.enqueue_inner(Command::Capa)?;
            self.op = Op::Capa {
                handle: h,
                then: Output::Connected,
            };
        } else {
            self.ready = Some(Output::Response(Response::Status(status)));
        }
        Ok(())
    }

    // ----- operations -----

    fn begin(&self) -> Result<(), SessionError> {
        if let Some(e) = &self.fatal {
            return Err(e.clone());
        }
        if let Some(p) = self.client.error() {
            return Err(SessionError::Protocol(p.clone()));
        }
        if self.is_busy() {
            return Err(SessionError::Busy);
        }
        Ok(())
    }

    fn enqueue_inner(&mut self, cmd: Command) -> Result<Handle, SessionError> {
        Ok(self.client.enqueue(cmd)?)
    }

    /// Starts the connect sequence: greeting, CAPA, then per the policy
    /// STLS, the handshake ([`Action::StartTls`]) and CAPA again. Output:
    /// [`Output::Connected`].
    pub fn start_connect(&mut self) -> Result<(), SessionError> {
        self.begin()?;
        if self.client.session_state() != SessionState::Greeting {
            return Err(SessionError::Usage(UsageError::WrongState {
                state: self.client.session_state(),
                command: CommandKind::Capa,
            }));
        }
        self.op = Op::Greeting;
        Ok(())
    }

    /// Waits for the greeting only (no CAPA, no TLS policy): for a caller
    /// that runs its own sequence. Output: [`Output::Greeted`].
    pub fn start_greeting(&mut self) -> Result<(), SessionError> {
        self.start_connect()?;
        self.op = Op::GreetingOnly;
        Ok(())
    }

    /// Starts one command. RETR and TOP stream their body as
    /// [`Action::Body`] and end with [`Output::Body`]; every other command
    /// ends with [`Output::Response`]. Use the dedicated operations for
    /// STLS ([`start_stls`](Session::start_stls)) and AUTH.
    pub fn start_command(&mut self, cmd: Command) -> Result<(), SessionError> {
        self.begin()?;
        match cmd.kind() {
            CommandKind::Stls => return self.start_stls(),
            CommandKind::Auth => {
                return Err(SessionError::Usage(UsageError::WrongState {
                    state: self.client.session_state(),
                    command: CommandKind::Auth,
                }))
            }
            _ => {}
        }
        let slot = match cmd {
            Command::List(None) => Some(0),
            Command::Uidl(None) => Some(1),
            _ => None,
        };
        match slot.and_then(|i| self.prefetched[i].take()) {
            Some(r) => {
                self.ready = Some(Output::Response(r));
                return Ok(());
            }
            None if slot.is_none() => self.prefetched = [None, None],
            None => {}
        }
        let body = matches!(cmd, Command::Retr(_) | Command::Top(..));
        let h = self.enqueue_inner(cmd)?;
        self.op = if body {
            self.body_received = 0;
            Op::Body {
                handle: h,
                started: false,
            }
        } else {
            Op::Command(h)
        };
        Ok(())
    }

    /// Starts `STLS`: on `+OK` [`Action::StartTls`], and after
    /// [`tls_established`](Session::tls_established) [`Output::Response`]
    /// with the `+OK` status. Capabilities learned in cleartext are
    /// forgotten (run CAPA again).
    pub fn start_stls(&mut self) -> Result<(), SessionError> {
        self.begin()?;
        let h = self.enqueue_inner(Command::Stls)?;
        self.op = Op::Stls {
            handle: h,
            connect: false,
        };
        Ok(())
    }

    /// Starts an automatic login (see the module docs for the plan).
    /// `random` must hold at least 16 bytes from a secure random source
    /// (the SCRAM nonce). Output: [`Output::LoggedIn`].
    pub fn start_login(
        &mut self,
        user: &str,
        password: &str,
        random: &[u8],
    ) -> Result<(), SessionError> {
        self.begin()?;
        self.credentials_allowed()?;
        self.start_login_op(LoginKind::Auto {
            user: String::from(user),
            password: Secret::new(String::from(password)),
            random: Secret::new(random.to_vec()),
        })
    }

    /// Starts `AUTH` with this mechanism, refused before anything is sent
    /// when the server's CAPA (if known: the connect sequence always reads
    /// it) does not list it; CAPA is read again after success. No CAPA is
    /// added before: the caller chose the mechanism. Output:
    /// [`Output::Authenticated`].
    pub fn start_authenticate(
        &mut self,
        mechanism: Box<dyn Mechanism>,
    ) -> Result<(), SessionError> {
        self.begin()?;
        self.credentials_allowed()?;
        self.start_login_op(LoginKind::Mechanism(Some(mechanism)))
    }

    /// Starts `APOP` (digest from the greeting's timestamp; a greeting
    /// received before STLS is not used), then CAPA. Output:
    /// [`Output::Authenticated`].
    pub fn start_apop(&mut self, user: &str, secret: &str) -> Result<(), SessionError> {
        self.begin()?;
        self.credentials_allowed()?;
        if self
            .client
            .greeting()
            .and_then(|g| g.apop_timestamp.as_ref())
            .is_none()
        {
            return Err(SessionError::Usage(UsageError::ApopUnavailable));
        }
        self.start_login_op(LoginKind::Apop {
            user: String::from(user),
            secret: Secret::new(String::from(secret)),
        })
    }

    /// Starts `USER` + `PASS`, then CAPA (RFC 2449 §5), as one login
    /// method (`UTF8` first when a name or password is not ASCII and the
    /// server advertises it). A `-ERR` to USER sends no password. Output:
    /// [`Output::Authenticated`] with PASS's status.
    pub fn start_user_pass(&mut self, user: &str, password: &str) -> Result<(), SessionError> {
        self.begin()?;
        self.credentials_allowed()?;
        // Validate both now: nothing is sent for an invalid password.
        Command::user(user)?;
        Command::pass(password)?;
        self.start_login_op(LoginKind::UserPass {
            user: String::from(user),
            password: Secret::new(String::from(password)),
        })
    }

    fn credentials_allowed(&self) -> Result<(), SessionError> {
        if self.client.is_tls() || self.client.config().allow_cleartext_credentials {
            Ok(())
        } else {
            Err(SessionError::Security(SecurityError::CleartextCredentials))
        }
    }

    fn start_login_op(&mut self, kind: LoginKind) -> Result<(), SessionError> {
        self.prefetched = [None, None];
        let mut op = Box::new(LoginOp {
            kind,
            stage: LoginStage::Start,
            method: None,
            utf8_tried: false,
        });
        self.login_step(&mut op)?;
        self.op = Op::Login(op);
        Ok(())
    }

    /// Abandons the running operation (see the module docs). The session
    /// can start another one at once, unless this was the connect
    /// sequence or an STLS upgrade.
    pub fn abandon(&mut self) {
        let op = core::mem::replace(&mut self.op, Op::Idle);
        self.ready = None;
        self.body_start = None;
        for h in op.handles() {
            self.abandon_handle(h);
        }
        let what = match op {
            Op::Greeting | Op::GreetingOnly | Op::ConnectCapa(_) => Some("connect"),
            Op::Capa {
                then: Output::Connected,
                ..
            } => Some("connect"),
            Op::Stls { .. } | Op::AwaitTls { .. } => Some("STLS"),
            _ => None,
        };
        if let (Some(what), None) = (what, &self.fatal) {
            self.fatal = Some(SessionError::Cancelled(what));
        }
    }

    /// Abandons one command queued with [`enqueue`](Session::enqueue):
    /// dropped if unsent, otherwise its events are discarded when they
    /// arrive (an AUTH exchange is cancelled with `*`).
    pub fn abandon_handle(&mut self, h: Handle) {
        if !self.client.abandon(h) && !self.discard.contains(&h) {
            self.discard.push(h);
        }
    }

    // ----- raw access (for batches) -----

    /// Queues a command outside any operation (pipelined batches drive
    /// the machine directly); its reply comes from
    /// [`poll_event`](Session::poll_event). Deadlines and the credential
    /// policy apply as for operations.
    pub fn enqueue(&mut self, cmd: Command) -> Result<Handle, SessionError> {
        self.begin()?;
        self.prefetched = [None, None];
        self.enqueue_inner(cmd)
    }

    /// The machine's next event while no operation runs (events of
    /// abandoned commands are dropped). `Ok(None)`: write, read, retry.
    pub fn poll_event(&mut self) -> Result<Option<Event<'_>>, SessionError> {
        loop {
            if let Some(e) = &self.fatal {
                return Err(e.clone());
            }
            match self.client.has_event() {
                Ok(true) => {}
                Ok(false) => {
                    self.sync();
                    return Ok(None);
                }
                Err(p) => return Err(self.fail(p.into())),
            }
            if let Some((h, _)) = self.client.ready_body_chunk() {
                if self.discard.contains(&h) {
                    let _ = self.client.poll_event();
                    continue;
                }
                let observer = self.observer;
                let ev = self.client.poll_event().map_err(SessionError::Protocol);
                if let (Some(f), Ok(Some(ev))) = (observer, &ev) {
                    f(ev);
                }
                return ev;
            }
            let Some(ev) = self.take_event()? else {
                continue;
            };
            if let Event::Greeting(g) = &ev {
                self.greeting.get_or_insert_with(|| g.clone());
            }
            return Ok(Some(ev));
        }
    }

    // ----- the run loop -----

    /// Makes progress on the running operation: see [`Action`].
    pub fn poll(&mut self) -> Result<Action<'_>, SessionError> {
        loop {
            if let Some(e) = &self.fatal {
                return Err(e.clone());
            }
            if let Some(out) = self.ready.take() {
                return Ok(Action::Done(out));
            }
            if let Some(status) = self.body_start.take() {
                return Ok(Action::BodyStart(status));
            }
            if matches!(self.op, Op::AwaitTls { .. }) {
                // Bytes behind the +OK are an injection: report them now,
                // before any TLS byte is sent.
                if let Err(p) = self.client.has_event() {
                    return Err(self.fail(p.into()));
                }
                return Ok(Action::StartTls);
            }
            match self.client.has_event() {
                Ok(true) => {}
                Ok(false) => {
                    self.sync();
                    if !matches!(self.op, Op::Idle)
                        && !self.client.wants_read()
                        && !self.client.wants_write()
                    {
                        let op = core::mem::replace(&mut self.op, Op::Idle);
                        let _ = op;
                        return Err(SessionError::Usage(
                            if self.client.session_state() == SessionState::Closed {
                                UsageError::Closed
                            } else {
                                UsageError::NothingToWaitFor
                            },
                        ));
                    }
                    return Ok(Action::Wait);
                }
                Err(p) => return Err(self.fail(p.into())),
            }
            if let Some((h, len)) = self.client.ready_body_chunk() {
                let mine = matches!(self.op, Op::Body { handle, .. } if handle == h);
                if !mine {
                    let _ = self.client.poll_event();
                    continue;
                }
                self.body_received += len as u64;
                let observer = self.observer;
                return match self.client.poll_event() {
                    Ok(Some(ev @ Event::BodyChunk { .. })) => {
                        if let Some(f) = observer {
                            f(&ev);
                        }
                        match ev {
                            Event::BodyChunk { data, .. } => Ok(Action::Body(data)),
                            _ => Ok(Action::Wait),
                        }
                    }
                    Ok(_) => Ok(Action::Wait),
                    Err(p) => Err(SessionError::Protocol(p)),
                };
            }
            let Some(ev) = self.take_event()? else {
                continue;
            };
            if let Some(out) = self.on_event(ev)? {
                return Ok(Action::Done(out));
            }
        }
    }

    /// The machine's next event (not a body chunk), owned and shown to
    /// the observer; `None` when there was none or it belonged to an
    /// abandoned command.
    fn take_event(&mut self) -> Result<Option<Event<'static>>, SessionError> {
        let ev = match self.client.poll_event() {
            Ok(Some(ev)) => owned(ev),
            Ok(None) => None,
            Err(p) => return Err(self.fail(p.into())),
        };
        self.sync();
        let Some(ev) = ev else { return Ok(None) };
        if let Some(f) = self.observer {
            f(&ev);
        }
        Ok((!self.discarded(&ev)).then_some(ev))
    }

    fn fail(&mut self, e: SessionError) -> SessionError {
        if e.is_fatal() {
            self.fatal = Some(e.clone());
            self.op = Op::Idle;
        }
        e
    }

    /// Drops the deadlines of responses that completed.
    fn sync(&mut self) {
        let mut changed = false;
        while self.sent.len() > self.client.in_flight() {
            self.sent.pop_front();
            changed = true;
        }
        if changed {
            self.front_start = self.sent.front().map(|s| (*s).max(self.last_input));
        }
    }

    fn discarded(&mut self, ev: &Event<'_>) -> bool {
        let Some(h) = ev.handle() else { return false };
        let Some(i) = self.discard.iter().position(|d| *d == h) else {
            return false;
        };
        let terminal = match ev {
            Event::Ok { response, .. } => !matches!(response, Response::BodyStart(_)),
            Event::Err { .. }
            | Event::BodyEnd { .. }
            | Event::Rejected { .. }
            | Event::AuthCancelled { .. } => true,
            _ => false,
        };
        if terminal {
            self.discard.swap_remove(i);
        }
        true
    }

    fn on_event(&mut self, ev: Event<'static>) -> Result<Option<Output>, SessionError> {
        match ev {
            Event::Greeting(g) => {
                self.greeting.get_or_insert_with(|| g.clone());
                if matches!(self.op, Op::Greeting) {
                    let h = self.enqueue_inner(Command::Capa)?;
                    self.op = Op::ConnectCapa(h);
                } else if matches!(self.op, Op::GreetingOnly) {
                    self.op = Op::Idle;
                    return Ok(Some(Output::Greeted(g)));
                }
                Ok(None)
            }
            Event::GreetingRefused(r) => Err(self.fail(SessionError::GreetingRefused(r))),
            Event::Ok {
                handle, response, ..
            } => {
                if let (Op::Body { handle: b, started }, Response::BodyStart(status)) =
                    (&mut self.op, &response)
                {
                    if *b == handle {
                        *started = true;
                        self.body_start = Some(status.clone());
                        return Ok(None);
                    }
                }
                self.on_reply(handle, Reply::Ok(response))
            }
            Event::Err {
                handle,
                command,
                response,
            } => self.on_reply(handle, Reply::Err(command, response)),
            Event::AuthCancelled {
                handle,
                error,
                mut response,
            } => {
                // The mechanism's reason travels with the server's -ERR
                // to our "*".
                response
                    .sasl_detail
                    .get_or_insert_with(|| alloc::format!("client cancelled: {error}"));
                self.on_reply(handle, Reply::Err(CommandKind::Auth, response))
            }
            Event::Rejected { handle, error, .. } => self.on_reply(handle, Reply::Rejected(error)),
            Event::BodyEnd { handle, octets } => match self.op {
                Op::Body { handle: b, .. } if b == handle => {
                    self.op = Op::Idle;
                    Ok(Some(Output::Body { octets }))
                }
                _ => Ok(None),
            },
            Event::Closed if !matches!(self.op, Op::Idle) => {
                self.op = Op::Idle;
                Err(SessionError::Usage(UsageError::Closed))
            }
            _ => Ok(None),
        }
    }

    fn on_reply(&mut self, h: Handle, reply: Reply) -> Result<Option<Output>, SessionError> {
        if !self.op.waits_for(h) {
            return Ok(None);
        }
        let op = core::mem::replace(&mut self.op, Op::Idle);
        let reply = match reply {
            Reply::Rejected(e) => return Err(e.into()),
            r => r,
        };
        match (op, reply) {
            (Op::ConnectCapa(_), reply) => {
                let caps = match &reply {
                    Reply::Ok(Response::Capa(c)) => Some(c),
                    _ => None,
                };
                if self.policy.stls_after_capa(caps)? {
                    let h = self.enqueue_inner(Command::Stls)?;
                    self.op = Op::Stls {
                        handle: h,
                        connect: true,
                    };
                    Ok(None)
                } else {
                    Ok(Some(Output::Connected))
                }
            }
            (Op::Stls { connect, .. }, Reply::Ok(r)) => {
                let status = r.into_status().unwrap_or_default();
                self.tls_wait_since = Some(self.last_input);
                self.op = Op::AwaitTls { connect, status };
                Ok(None)
            }
            (Op::Stls { connect: true, .. }, Reply::Err(_, response)) => {
                self.policy.stls_refused(response)?;
                Ok(Some(Output::Connected))
            }
            (Op::Capa { then, .. }, _) => Ok(Some(then)),
            (Op::Command(_) | Op::Body { .. }, Reply::Ok(r)) => Ok(Some(Output::Response(r))),
            (Op::Login(mut l), reply) => match self.login_reply(&mut l, reply)? {
                LoginNext::Continue => {
                    self.op = Op::Login(l);
                    Ok(None)
                }
                LoginNext::Done(out) => Ok(Some(out)),
                LoginNext::Capa(handle, then) => {
                    self.op = Op::Capa { handle, then };
                    Ok(None)
                }
                LoginNext::PostLogin(p) => {
                    self.op = Op::PostLogin(p);
                    Ok(None)
                }
            },
            (Op::PostLogin(mut p), reply) => {
                let ok = match reply {
                    Reply::Ok(r) => Some(r),
                    _ => None,
                };
                if p.capa == Some(h) {
                    p.capa = None;
                } else if p.list == Some(h) {
                    p.list = None;
                    self.prefetched[0] = ok.filter(|r| matches!(r, Response::List(_)));
                } else if p.uidl == Some(h) {
                    p.uidl = None;
                    self.prefetched[1] = ok.filter(|r| matches!(r, Response::Uidl(_)));
                }
                if p.capa.is_none() && p.list.is_none() && p.uidl.is_none() {
                    Ok(Some(p.then))
                } else {
                    self.op = Op::PostLogin(p);
                    Ok(None)
                }
            }
            (_, Reply::Err(command, response)) => Err(SessionError::Server { command, response }),
            (_, _) => Ok(None),
        }
    }

    // ----- login -----

    /// Sends the login's next command (from `Start`), or finishes.
    fn login_step(&mut self, l: &mut LoginOp) -> Result<(), SessionError> {
        if self.client.needs_capa() && matches!(l.kind, LoginKind::Auto { .. }) {
            l.stage = LoginStage::Capa(self.enqueue_inner(Command::Capa)?);
            return Ok(());
        }
        let caps = self.client.capabilities();
        let method = match &l.kind {
            LoginKind::Auto { .. } => {
                let plus = self.binding.is_some();
                let m = login::plan_with(
                    caps,
                    self.client.greeting(),
                    self.client.is_tls(),
                    self.client.config().allow_cleartext_credentials,
                    plus,
                )?;
                l.method.get_or_insert(m).clone()
            }
            LoginKind::Mechanism(Some(m)) => {
                if let Some(c) = caps {
                    if !c.sasl.iter().any(|s| s.eq_ignore_ascii_case(m.name())) {
                        return Err(SessionError::Usage(UsageError::MechanismNotOffered {
                            requested: String::from(m.name()),
                            offered: types::names(Some(c)),
                        }));
                    }
                }
                LoginMethod::Sasl(m.name().to_ascii_uppercase())
            }
            LoginKind::Mechanism(None) => {
                return Err(SessionError::Usage(UsageError::NoSaslExchange))
            }
            LoginKind::Apop { .. } => LoginMethod::Apop,
            LoginKind::UserPass { .. } => LoginMethod::UserPass,
        };
        if !l.utf8_tried && !self.client.is_utf8() {
            let non_ascii = match &l.kind {
                LoginKind::Auto { user, password, .. } => {
                    !user.is_ascii() || !password.expose().is_ascii()
                }
                LoginKind::Apop { user, secret } => !user.is_ascii() || !secret.expose().is_ascii(),
                LoginKind::UserPass { user, password } => {
                    !user.is_ascii() || !password.expose().is_ascii()
                }
                LoginKind::Mechanism(_) => false,
            };
            if non_ascii && caps.is_some_and(|c| c.utf8.is_some()) {
                l.utf8_tried = true;
                l.stage = LoginStage::Utf8(self.enqueue_inner(Command::Utf8)?);
                return Ok(());
            }
        }
        let defer = self.client.capa_refused();
        let h = match (&mut l.kind, &method) {
            (
                LoginKind::Auto {
                    user,
                    password,
                    random,
                },
                LoginMethod::Sasl(name),
            ) => {
                let m = login::mechanism_with_binding(
                    name,
                    user,
                    password.expose(),
                    random.expose(),
                    self.binding.as_ref(),
                )
                .map_err(|e| SessionError::Usage(UsageError::Sasl(e)))?;
                self.authenticate(m, defer)?
            }
            (LoginKind::Mechanism(m), _) => {
                let Some(m) = m.take() else {
                    return Err(SessionError::Usage(UsageError::NoSaslExchange));
                };
                self.authenticate(m, defer)?
            }
            (LoginKind::Auto { user, password, .. }, LoginMethod::Apop) => {
                self.client.apop(user, password.expose())?
            }
            (LoginKind::Apop { user, secret }, _) => self.client.apop(user, secret.expose())?,
            (LoginKind::Auto { user, .. } | LoginKind::UserPass { user, .. }, _) => {
                l.stage = LoginStage::User(self.enqueue_inner(Command::user(user)?)?);
                return Ok(());
            }
        };
        l.stage = LoginStage::Final(h);
        Ok(())
    }

    fn authenticate(&mut self, m: Box<dyn Mechanism>, defer: bool) -> Result<Handle, SessionError> {
        Ok(if defer {
            self.client.authenticate_deferred(m)?
        } else {
            self.client.authenticate(m)?
        })
    }

    /// A reply during a login: what comes next.
    fn login_reply(&mut self, l: &mut LoginOp, reply: Reply) -> Result<LoginNext, SessionError> {
        match (l.stage, reply) {
            (LoginStage::Capa(_) | LoginStage::Utf8(_), _) => {
                // CAPA: known now, or refused (then asked no more); UTF8:
                // tried (a refusal does not stop the login).
                l.stage = LoginStage::Start;
                self.login_step(l)?;
                Ok(LoginNext::Continue)
            }
            (LoginStage::User(_), Reply::Ok(_)) => {
                let (LoginKind::Auto { password, .. } | LoginKind::UserPass { password, .. }) =
                    &l.kind
                else {
                    return Ok(LoginNext::Continue);
                };
                let pass = Command::pass(password.expose())?;
                l.stage = LoginStage::Final(self.enqueue_inner(pass)?);
                Ok(LoginNext::Continue)
            }
            (LoginStage::Final(_), Reply::Ok(r)) => {
                let then = match (&l.kind, l.method.take()) {
                    (LoginKind::Auto { .. }, Some(m)) => Output::LoggedIn(m),
                    _ => Output::Authenticated(r.into_status().unwrap_or_default()),
                };
                let capa = if self.client.capa_refused() {
                    None
                } else {
                    Some(self.enqueue_inner(Command::Capa)?)
                };
                if self.prefetch_listing {
                    // With PIPELINING known, the machine sends all three
                    // at once; else LIST waits for CAPA's answer, which
                    // may announce it.
                    let list = Some(self.enqueue_inner(Command::List(None))?);
                    let uidl = Some(self.enqueue_inner(Command::Uidl(None))?);
                    return Ok(LoginNext::PostLogin(Box::new(PostLogin {
                        capa,
                        list,
                        uidl,
                        then,
                    })));
                }
                match capa {
                    Some(h) => Ok(LoginNext::Capa(h, then)),
                    None => Ok(LoginNext::Done(then)),
                }
            }
            (LoginStage::Final(_), Reply::Err(CommandKind::Apop, response))
                if matches!(l.kind, LoginKind::Auto { .. }) && apop_fallback(&response) =>
            {
                // The APOP secret may differ from the login password:
                // USER/PASS over TLS (APOP is only planned over TLS).
                let LoginKind::Auto { user, .. } = &l.kind else {
                    return Ok(LoginNext::Continue);
                };
                l.method = Some(LoginMethod::UserPass);
                l.stage = LoginStage::User(self.enqueue_inner(Command::user(user)?)?);
                Ok(LoginNext::Continue)
            }
            (_, Reply::Err(command, response)) => Err(SessionError::Server { command, response }),
            (_, _) => Ok(LoginNext::Continue),
        }
    }
}

/// What a login does after a reply.
enum LoginNext {
    /// Wait for the next reply of the login.
    Continue,
    /// Finished.
    Done(Output),
    /// Finished once this CAPA is answered.
    Capa(Handle, Output),
    /// Finished once CAPA, LIST and UIDL are answered.
    PostLogin(Box<PostLogin>),
}

/// Whether an APOP `-ERR` may mean "wrong secret" (not a lock, a delay or
/// a system problem), so USER/PASS is worth a try.
fn apop_fallback(e: &ErrResponse) -> bool {
    !matches!(
        e.code,
        Some(RespCode::InUse | RespCode::LoginDelay | RespCode::SysTemp | RespCode::SysPerm)
    ) && !matches!(&e.code, Some(RespCode::Other(c)) if c.len() >= 3 && c[..3].eq_ignore_ascii_case("SYS"))
}

/// The events without borrowed data, owned (body chunks are handled
/// before this is called).
fn owned(ev: Event<'_>) -> Option<Event<'static>> {
    Some(match ev {
        Event::Greeting(g) => Event::Greeting(g),
        Event::GreetingRefused(r) => Event::GreetingRefused(r),
        Event::Ok {
            handle,
            command,
            response,
        } => Event::Ok {
            handle,
            command,
            response,
        },
        Event::Err {
            handle,
            command,
            response,
        } => Event::Err {
            handle,
            command,
            response,
        },
        Event::Continuation { handle, challenge } => Event::Continuation { handle, challenge },
        Event::AuthCancelled {
            handle,
            error,
            response,
        } => Event::AuthCancelled {
            handle,
            error,
            response,
        },
        Event::BodyChunk { .. } => return None,
        Event::BodyEnd { handle, octets } => Event::BodyEnd { handle, octets },
        Event::Rejected {
            handle,
            command,
            error,
        } => Event::Rejected {
            handle,
            command,
            error,
        },
        Event::StateChanged { from, to } => Event::StateChanged { from, to },
        Event::Closed => Event::Closed,
    })
}

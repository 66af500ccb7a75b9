//! The client state machine: command queue, pipelining window, reply
//! matching, session state, STLS and SASL handling.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use base64::Engine as _;
use memchr::memmem;

use crate::command::{encode_sasl_response, Command, MechanismName};
use crate::error::{ProtocolError, UsageError};
use crate::framing::{body_step, BodyScan, BodyStep, RecvBuf};
use crate::parse::{self, StatusLine};
use crate::response::{
    Capabilities, CommandKind, ErrResponse, Greeting, Language, ListEntry, Response, SessionState,
    UidlEntry,
};
use crate::sasl::{Mechanism, SaslError};
use crate::Secret;

/// Most lines accepted in one CAPA or LANG listing.
pub const MAX_CAPABILITY_LINES: usize = 1024;

/// When commands may be sent before the previous reply arrived (RFC 2449
/// PIPELINING).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Pipelining {
    /// Pipeline only after CAPA reported `PIPELINING` (the default).
    #[default]
    Auto,
    /// Never: one command at a time.
    Never,
    /// Always, whatever the server said (for known servers and tests).
    Always,
}

/// Limits and policies of a [`Client`].
///
/// `Config` is `#[non_exhaustive]`: start from `Config::default()` and set
/// the fields you need.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Longest status line, SASL challenge or listing entry accepted, without
    /// its line ending (default 8192, 16 times RFC 1939's 512). Longer lines
    /// are a [`ProtocolError::LineTooLong`]. Message bodies have no line
    /// limit: they are streamed.
    pub max_line_len: usize,
    /// Most entries accepted in one LIST or UIDL listing (default
    /// 1,000,000). CAPA and LANG listings are capped at
    /// [`MAX_CAPABILITY_LINES`] lines.
    pub max_entries: usize,
    /// Most bytes (line contents) accepted in one multi-line listing
    /// (default 64 MiB), so a hostile server cannot grow a listing without
    /// bound even with long lenient UIDs.
    pub max_listing_bytes: usize,
    /// Pipelining policy.
    pub pipelining: Pipelining,
    /// Most commands in flight at once when pipelining (default 200). The
    /// pipelined batches of the session layer also bound the command bytes
    /// in flight ([`session::batch::Window`](crate::session::batch::Window)),
    /// which is what keeps a blocking transport from deadlocking.
    pub max_in_flight: usize,
    /// Accept unique-ids outside RFC 1939's 1–70 printable ASCII characters
    /// (any non-empty bytes except CR, LF, NUL). Off by default.
    pub lenient_uids: bool,
    /// The transport is already TLS (implicit TLS, port 995): STLS is
    /// refused locally.
    pub tls: bool,
    /// Allow credentials (`USER`, `PASS`, `APOP`, `RPOP`, `AUTH`) on a
    /// session that is not TLS-protected. Off by default: without it
    /// [`Client::enqueue`], [`Client::apop`] and [`Client::authenticate`]
    /// refuse them with [`UsageError::CleartextCredentials`] before
    /// anything is queued. Set it only for trusted networks and tests.
    pub allow_cleartext_credentials: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_line_len: 8192,
            max_entries: 1_000_000,
            max_listing_bytes: 64 * 1024 * 1024,
            pipelining: Pipelining::Auto,
            max_in_flight: 200,
            lenient_uids: false,
            tls: false,
            allow_cleartext_credentials: false,
        }
    }
}

/// Identifies one enqueued command; every reply event carries the handle
/// of the command it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(u64);

impl Handle {
    /// A number unique within one [`Client`], increasing in enqueue order.
    pub fn id(self) -> u64 {
        self.0
    }
}

/// Bytes appended by [`Client::poll_transmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Transmit {
    /// How many bytes were appended.
    pub len: usize,
    /// The bytes carry a secret (PASS, APOP, a SASL payload): never log them.
    pub sensitive: bool,
    /// For sensitive bytes, the command whose line they are (PASS, APOP,
    /// AUTH with an initial response), so a log can say which secret it
    /// left out; `None` for a SASL response line (and for public bytes).
    pub secret_of: Option<CommandKind>,
}

/// Something the caller must react to, from [`Client::poll_event`].
///
/// Only [`Event::BodyChunk`] borrows from the client; copy or write the
/// chunk before calling another `&mut self` method.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The server greeted with `+OK`; the session is in AUTHORIZATION.
    Greeting(Greeting),
    /// The server greeted with `-ERR` (for example `[SYS/TEMP]` when
    /// overloaded); the session is closed.
    GreetingRefused(ErrResponse),
    /// A command succeeded. For RETR and TOP the response is
    /// [`Response::BodyStart`] and the body follows.
    Ok {
        /// The command's handle.
        handle: Handle,
        /// Which command it was.
        command: CommandKind,
        /// The typed reply.
        response: Response,
    },
    /// A command failed with `-ERR`. This is data, not a protocol error;
    /// the session continues (after QUIT it means deletions failed).
    Err {
        /// The command's handle.
        handle: Handle,
        /// Which command it was.
        command: CommandKind,
        /// The server's response code and text.
        response: ErrResponse,
    },
    /// A SASL challenge for an AUTH enqueued as a plain
    /// [`Command::Auth`]; answer with [`Client::auth_respond`] or
    /// [`Client::auth_cancel`]. AUTH started with [`Client::authenticate`]
    /// is answered by its mechanism and never produces this event.
    Continuation {
        /// The AUTH command's handle.
        handle: Handle,
        /// The base64-decoded challenge (empty for a bare `+`).
        challenge: Vec<u8>,
    },
    /// A SASL mechanism refused a challenge, so the core cancelled the
    /// exchange with `*`; `response` is the server's `-ERR` to the cancel.
    AuthCancelled {
        /// The AUTH command's handle.
        handle: Handle,
        /// Why the mechanism gave up.
        error: SaslError,
        /// The server's reply to the cancel.
        response: ErrResponse,
    },
    /// Part of a RETR or TOP body: dot-unstuffed, line endings exactly as
    /// the server sent them.
    BodyChunk {
        /// The RETR/TOP command's handle.
        handle: Handle,
        /// The bytes.
        data: &'a [u8],
    },
    /// The body ended with its terminator: the message is complete.
    BodyEnd {
        /// The RETR/TOP command's handle.
        handle: Handle,
        /// Total body bytes delivered.
        octets: u64,
    },
    /// A queued command was dropped before it was sent, because an earlier
    /// command that it depended on failed (for example RETR queued behind a
    /// PASS that got `-ERR`).
    Rejected {
        /// The dropped command's handle.
        handle: Handle,
        /// Which command it was.
        command: CommandKind,
        /// Why.
        error: UsageError,
    },
    /// The session state changed.
    StateChanged {
        /// The previous state.
        from: SessionState,
        /// The new state.
        to: SessionState,
    },
    /// The session is over; nothing more will happen.
    Closed,
}

impl Event<'_> {
    /// The handle of the command this event belongs to, if any.
    pub fn handle(&self) -> Option<Handle> {
        match self {
            Event::Ok { handle, .. }
            | Event::Err { handle, .. }
            | Event::Continuation { handle, .. }
            | Event::AuthCancelled { handle, .. }
            | Event::BodyChunk { handle, .. }
            | Event::BodyEnd { handle, .. }
            | Event::Rejected { handle, .. } => Some(*handle),
            _ => None,
        }
    }
}

/// A command waiting to be sent.
struct Queued {
    handle: Handle,
    cmd: Command,
    mechanism: Option<Box<dyn Mechanism>>,
    /// An initial response to send after the first empty challenge
    /// instead of inline (see [`Client::authenticate_deferred`]).
    defer_ir: Option<Secret<Vec<u8>>>,
}

/// A command sent and waiting for its reply.
#[derive(Debug, Clone)]
struct InFlight {
    handle: Handle,
    kind: CommandKind,
    expect: Expect,
    /// How many bytes had been received when the command was sent: its
    /// reply cannot start before that offset of the input stream.
    sent_at: u64,
}

/// How to read the reply to a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Status,
    Stat,
    ListOne,
    UidlOne,
    List,
    Uidl,
    Capa,
    Languages,
    Body,
}

impl Expect {
    fn of(cmd: &Command) -> Expect {
        match cmd {
            Command::Stat => Expect::Stat,
            Command::List(Some(_)) => Expect::ListOne,
            Command::List(None) => Expect::List,
            Command::Uidl(Some(_)) => Expect::UidlOne,
            Command::Uidl(None) => Expect::Uidl,
            Command::Capa => Expect::Capa,
            Command::Lang(None) => Expect::Languages,
            Command::Retr(_) | Command::Top(..) => Expect::Body,
            _ => Expect::Status,
        }
    }
}

/// A multi-line listing being collected.
#[derive(Debug)]
enum Listing {
    List(Vec<ListEntry>),
    Uidl(Vec<UidlEntry>),
    Capa(Capabilities),
    Languages(Vec<Language>),
}

/// What the receive side expects next.
#[derive(Debug)]
enum Mode {
    /// A status line (or the greeting).
    Status,
    /// Lines of a listing, up to `.`: entries and bytes so far.
    Listing(Listing, usize, usize),
    /// A RETR/TOP body.
    Body(BodyScan),
    /// `+OK` to STLS seen; waiting for [`Client::tls_established`].
    StlsWait,
    /// The session is over.
    Closed,
}

/// The AUTH exchange in progress (AUTH is a barrier, so there is at most one).
struct AuthState {
    mechanism: Option<Box<dyn Mechanism>>,
    /// The initial response that did not fit on the AUTH line.
    deferred: Option<Secret<Vec<u8>>>,
    /// A manual exchange is waiting for `auth_respond`.
    awaiting_caller: bool,
    /// The core sent `*` because the mechanism failed.
    cancelled: Option<SaslError>,
    /// Stream offset when our last SASL line (response or `*`) was sent:
    /// a challenge or `+OK` that arrived before it answers nothing.
    sasl_sent_at: u64,
    /// The caller abandoned the exchange: answer the next challenge `*`.
    abandoned: bool,
}

/// A SASL line waiting to be sent.
enum SaslOut {
    Response(Secret<Vec<u8>>),
    Cancel,
}

/// Internal result of one receive step.
enum Step {
    /// Nothing more can be done without input.
    Idle,
    /// Progress was made (events may have been queued).
    Progress,
    /// A body chunk at this absolute range of the receive buffer.
    Chunk(Handle, core::ops::Range<usize>),
}

/// The sans-IO POP3 client: feed it bytes, take bytes and events out.
///
/// Its methods come in four families, in the style of `quinn-proto`:
///
/// * **Getters** (`&self`): [`session_state`](Client::session_state),
///   [`capabilities`](Client::capabilities), [`greeting`](Client::greeting),
///   [`in_flight`](Client::in_flight), [`wants_write`](Client::wants_write), ...
/// * **Input** (`handle_*`): [`handle_input`](Client::handle_input) with
///   bytes read from the transport (any chunking, down to one byte), and
///   [`handle_eof`](Client::handle_eof) when the transport ends.
/// * **Commands**: [`enqueue`](Client::enqueue) a [`Command`],
///   [`authenticate`](Client::authenticate) with a SASL mechanism, and the
///   follow-ups [`tls_established`](Client::tls_established),
///   [`auth_respond`](Client::auth_respond), [`auth_cancel`](Client::auth_cancel).
/// * **Output** (`poll_*`): [`poll_transmit`](Client::poll_transmit) for
///   bytes to write and [`poll_event`](Client::poll_event) for what happened.
///
/// After every input or command call, drain `poll_transmit` until it
/// returns `None`, then `poll_event` until it returns `Ok(None)`; only then
/// wait for I/O. See the crate docs for the run loop.
pub struct Client {
    config: Config,
    state: SessionState,
    recv: RecvBuf,
    /// Total bytes accepted by `handle_input` (the stream offset just past
    /// the last byte received).
    received: u64,
    eof: bool,
    mode: Mode,
    pending: VecDeque<Queued>,
    in_flight: VecDeque<InFlight>,
    events: VecDeque<Event<'static>>,
    next_handle: u64,
    error: Option<ProtocolError>,
    capabilities: Option<Capabilities>,
    capa_refused: bool,
    greeting: Option<Greeting>,
    tls: bool,
    utf8: bool,
    auth: Option<AuthState>,
    sasl_out: Option<SaslOut>,
    /// A body chunk found by `has_event` and not yet returned; its bytes
    /// stay valid because `handle_input` does not compact while it is set.
    ready_chunk: Option<(Handle, core::ops::Range<usize>)>,
    finder: memmem::Finder<'static>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("state", &self.state)
            .field("mode", &self.mode)
            .field("pending", &self.pending.len())
            .field("in_flight", &self.in_flight)
            .field("buffered", &self.recv.len())
            .field("error", &self.error)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// Commands that go out alone: only with nothing in flight, and nothing is
/// sent after them until they are answered.
fn is_barrier(kind: CommandKind) -> bool {
    matches!(
        kind,
        CommandKind::Stls
            | CommandKind::Auth
            | CommandKind::User
            | CommandKind::Pass
            | CommandKind::Apop
            | CommandKind::Rpop
            | CommandKind::Quit
    )
}

/// Commands that carry a credential (refused without TLS unless allowed).
fn is_credential(kind: CommandKind) -> bool {
    matches!(
        kind,
        CommandKind::User
            | CommandKind::Pass
            | CommandKind::Apop
            | CommandKind::Rpop
            | CommandKind::Auth
    )
}

/// Whether `kind` is valid in `state` (RFC 1939, 2449, 2595, 5034, 6856).
fn allowed(kind: CommandKind, state: SessionState) -> bool {
    use CommandKind as K;
    match state {
        SessionState::Greeting | SessionState::Authorization => matches!(
            kind,
            K::User
                | K::Pass
                | K::Apop
                | K::Rpop
                | K::Auth
                | K::Capa
                | K::Stls
                | K::Utf8
                | K::Lang
                | K::Quit
        ),
        SessionState::Transaction => matches!(
            kind,
            K::Stat
                | K::List
                | K::Retr
                | K::Dele
                | K::Rset
                | K::Noop
                | K::Top
                | K::Uidl
                | K::Capa
                | K::Lang
                | K::Quit
        ),
        SessionState::Update | SessionState::Closed => false,
    }
}

/// The state after `kind` succeeds in `state`.
fn state_after(kind: CommandKind, state: SessionState) -> SessionState {
    use CommandKind as K;
    match (kind, state) {
        (
            K::Pass | K::Apop | K::Rpop | K::Auth,
            SessionState::Authorization | SessionState::Greeting,
        ) => SessionState::Transaction,
        (K::Quit, _) => SessionState::Closed,
        (_, SessionState::Greeting) => SessionState::Authorization,
        (_, s) => s,
    }
}

impl Client {
    /// A new client for a freshly opened connection, waiting for the
    /// greeting.
    pub fn new(config: Config) -> Client {
        let tls = config.tls;
        Client {
            config,
            state: SessionState::Greeting,
            recv: RecvBuf::new(),
            received: 0,
            eof: false,
            mode: Mode::Status,
            pending: VecDeque::new(),
            in_flight: VecDeque::new(),
            events: VecDeque::new(),
            next_handle: 0,
            error: None,
            capabilities: None,
            capa_refused: false,
            greeting: None,
            tls,
            utf8: false,
            auth: None,
            sasl_out: None,
            ready_chunk: None,
            finder: memmem::Finder::new(b"\n."),
        }
    }

    // ----- (A) getters -----

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current session state (changes when replies arrive, not when
    /// commands are sent).
    pub fn session_state(&self) -> SessionState {
        self.state
    }

    /// The capabilities from the last CAPA reply, if any (forgotten after
    /// STLS, as RFC 2595 requires).
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.capabilities.as_ref()
    }

    /// Whether the server answered CAPA with `-ERR` (a pre-RFC 2449
    /// server): adapters should not ask again. Reset by
    /// [`tls_established`](Client::tls_established).
    pub fn capa_refused(&self) -> bool {
        self.capa_refused
    }

    /// Whether an adapter should run CAPA before deciding something that
    /// depends on capabilities (login method, pipelining): none are known
    /// and the server has not refused CAPA.
    pub fn needs_capa(&self) -> bool {
        self.capabilities.is_none() && !self.capa_refused
    }

    /// The greeting, once received (forgotten after STLS: its APOP
    /// timestamp came over the unprotected connection).
    pub fn greeting(&self) -> Option<&Greeting> {
        self.greeting.as_ref()
    }

    /// Whether the transport is TLS (implicit, or after STLS).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Whether the server accepted `UTF8`.
    pub fn is_utf8(&self) -> bool {
        self.utf8
    }

    /// Commands sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Commands enqueued and not yet sent.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Whether [`poll_transmit`](Client::poll_transmit) has bytes to give
    /// right now.
    pub fn wants_write(&self) -> bool {
        self.error.is_none() && (self.sasl_out.is_some() || self.next_sendable())
    }

    /// Whether a reply is still expected: the transport should be read.
    pub fn wants_read(&self) -> bool {
        self.error.is_none()
            && !matches!(self.mode, Mode::Closed | Mode::StlsWait)
            && (self.state == SessionState::Greeting || !self.in_flight.is_empty())
    }

    /// Whether the core waits for the transport to switch to TLS after a
    /// `+OK` to STLS.
    pub fn is_awaiting_tls(&self) -> bool {
        matches!(self.mode, Mode::StlsWait)
    }

    /// The sticky protocol error, if the client is poisoned.
    pub fn error(&self) -> Option<&ProtocolError> {
        self.error.as_ref()
    }

    /// The receive buffer's current capacity in bytes. After all events
    /// are drained it is bounded by the largest input chunk plus
    /// `max_line_len`, whatever the message sizes.
    pub fn buffer_capacity(&self) -> usize {
        self.recv.capacity()
    }

    // ----- (B) input -----

    /// Feeds bytes read from the transport. Any chunking is fine.
    pub fn handle_input(&mut self, bytes: &[u8]) {
        if self.error.is_some() || matches!(self.mode, Mode::Closed) || bytes.is_empty() {
            return;
        }
        self.received += bytes.len() as u64;
        if self.ready_chunk.is_some() {
            self.recv.append(bytes);
        } else {
            self.recv.push(bytes);
        }
    }

    /// Reports that the transport reached end of stream.
    pub fn handle_eof(&mut self) {
        self.eof = true;
    }

    // ----- (C) commands -----

    fn projected_state(&self) -> SessionState {
        let mut s = self.state;
        for f in &self.in_flight {
            s = state_after(f.kind, s);
        }
        for q in &self.pending {
            s = state_after(q.cmd.kind(), s);
        }
        if s == SessionState::Greeting {
            s = SessionState::Authorization;
        }
        s
    }

    fn check_enqueue(&self, cmd: &Command) -> Result<(), UsageError> {
        self.check_enqueue_kind(cmd.kind())
    }

    fn check_enqueue_kind(&self, kind: CommandKind) -> Result<(), UsageError> {
        if let Some(e) = &self.error {
            return Err(UsageError::Poisoned(e.clone()));
        }
        if matches!(self.mode, Mode::Closed) {
            return Err(UsageError::Closed);
        }
        let state = self.projected_state();
        if state == SessionState::Closed || state == SessionState::Update {
            return Err(UsageError::Closed);
        }
        if is_credential(kind) && !self.tls && !self.config.allow_cleartext_credentials {
            return Err(UsageError::CleartextCredentials);
        }
        if !allowed(kind, state) {
            return Err(UsageError::WrongState {
                state,
                command: kind,
            });
        }
        if kind == CommandKind::Stls
            && (self.tls
                || self
                    .pending
                    .iter()
                    .any(|q| q.cmd.kind() == CommandKind::Stls)
                || self.in_flight.iter().any(|f| f.kind == CommandKind::Stls))
        {
            return Err(UsageError::AlreadyTls);
        }
        Ok(())
    }

    fn push_pending(&mut self, cmd: Command, mechanism: Option<Box<dyn Mechanism>>) -> Handle {
        let handle = Handle(self.next_handle);
        self.next_handle += 1;
        self.pending.push_back(Queued {
            handle,
            cmd,
            mechanism,
            defer_ir: None,
        });
        handle
    }

    /// Queues a command. It is checked against the state it will run in
    /// (the current state, advanced by the commands already queued as if
    /// they succeed); a command that cannot run there is refused here and
    /// the client is unchanged.
    pub fn enqueue(&mut self, cmd: Command) -> Result<Handle, UsageError> {
        self.check_enqueue(&cmd)?;
        Ok(self.push_pending(cmd, None))
    }

    /// Queues `APOP user digest`, with the digest computed from the
    /// greeting's timestamp and `secret`.
    ///
    /// When the greeting carried no valid `<timestamp>` (none at all, or a
    /// `<` without its `>`), or it was forgotten after STLS, nothing is
    /// queued and the error is [`UsageError::ApopUnavailable`]: APOP
    /// authentication is impossible with this server, whatever the
    /// arguments. Before the greeting arrived, it is
    /// [`UsageError::WrongState`].
    pub fn apop(&mut self, user: &str, secret: &str) -> Result<Handle, UsageError> {
        self.check_enqueue_kind(CommandKind::Apop)?;
        if self.state == SessionState::Greeting {
            return Err(UsageError::WrongState {
                state: SessionState::Greeting,
                command: CommandKind::Apop,
            });
        }
        let ts = self
            .greeting
            .as_ref()
            .and_then(|g| g.apop_timestamp.clone())
            .ok_or(UsageError::ApopUnavailable)?;
        let cmd = Command::apop(user, &ts, secret)?;
        self.enqueue(cmd)
    }

    /// Queues `AUTH` driven by a SASL mechanism: the core sends its initial
    /// response (inline when the line fits in 255 octets, otherwise after the
    /// first empty challenge), answers every challenge through the
    /// mechanism, and on `+OK` asks the mechanism to confirm the exchange
    /// completed (a SCRAM server that never proved itself is a
    /// [`ProtocolError::Sasl`]).
    pub fn authenticate(
        &mut self,
        mut mechanism: Box<dyn Mechanism>,
    ) -> Result<Handle, UsageError> {
        let name = MechanismName::new(mechanism.name())?;
        let probe = Command::Auth {
            mechanism: name.clone(),
            initial_response: None,
        };
        self.check_enqueue(&probe)?;
        let initial_response = mechanism.initial_response().map_err(UsageError::Sasl)?;
        let cmd = Command::Auth {
            mechanism: name,
            initial_response,
        };
        Ok(self.push_pending(cmd, Some(mechanism)))
    }

    /// Like [`authenticate`](Client::authenticate), but the initial
    /// response is never sent inline on the AUTH line: it goes after the
    /// server's first empty challenge. For servers that refused CAPA (pre
    /// RFC 2449), which may not accept RFC 5034's inline response.
    pub fn authenticate_deferred(
        &mut self,
        mechanism: Box<dyn Mechanism>,
    ) -> Result<Handle, UsageError> {
        let name = MechanismName::new(mechanism.name())?;
        let mut mechanism = mechanism;
        let cmd = Command::Auth {
            mechanism: name,
            initial_response: None,
        };
        self.check_enqueue(&cmd)?;
        let ir = mechanism.initial_response().map_err(UsageError::Sasl)?;
        let handle = self.push_pending(cmd, Some(mechanism));
        if let Some(q) = self.pending.back_mut() {
            q.defer_ir = ir;
        }
        Ok(handle)
    }

    /// Abandons the command `handle`: if it was not sent yet it is dropped
    /// (no bytes, no events; returns `true`). If it was sent, its reply
    /// will still be read (POP3 replies are matched in order), and an AUTH
    /// exchange in progress is cancelled with `*` at its next step;
    /// returns `false`: the caller discards that handle's events (the
    /// [`session`](crate::session) layer does this for you).
    pub fn abandon(&mut self, handle: Handle) -> bool {
        if let Some(i) = self.pending.iter().position(|q| q.handle == handle) {
            self.pending.remove(i);
            return true;
        }
        let is_auth = self
            .in_flight
            .iter()
            .any(|f| f.handle == handle && f.kind == CommandKind::Auth);
        if let (true, Some(a)) = (is_auth, &mut self.auth) {
            a.abandoned = true;
            a.mechanism = None;
            let unsent = matches!(self.sasl_out, Some(SaslOut::Response(_)));
            if (unsent || a.awaiting_caller) && a.cancelled.is_none() {
                a.awaiting_caller = false;
                a.cancelled = Some(SaslError::InvalidInput("exchange abandoned by the caller"));
                self.sasl_out = Some(SaslOut::Cancel);
            }
        }
        false
    }

    /// Changes [`Config::allow_cleartext_credentials`] for commands queued
    /// from now on.
    pub fn set_allow_cleartext_credentials(&mut self, yes: bool) {
        self.config.allow_cleartext_credentials = yes;
    }

    /// The handle and length of the body chunk
    /// [`has_event`](Client::has_event) found, if the ready event is one.
    pub fn ready_body_chunk(&self) -> Option<(Handle, usize)> {
        self.ready_chunk.as_ref().map(|(h, r)| (*h, r.len()))
    }

    /// The oldest command sent and not yet answered: the one the next
    /// reply belongs to.
    pub fn oldest_in_flight(&self) -> Option<(Handle, CommandKind)> {
        self.in_flight.front().map(|f| (f.handle, f.kind))
    }

    /// Answers a [`Event::Continuation`] of a manual AUTH exchange.
    pub fn auth_respond(&mut self, response: Secret<Vec<u8>>) -> Result<(), UsageError> {
        match &mut self.auth {
            Some(a) if a.awaiting_caller => {
                a.awaiting_caller = false;
                self.sasl_out = Some(SaslOut::Response(response));
                Ok(())
            }
            _ => Err(UsageError::NoSaslExchange),
        }
    }

    /// Cancels a manual AUTH exchange waiting at a continuation (`*`); the
    /// server answers `-ERR`.
    pub fn auth_cancel(&mut self) -> Result<(), UsageError> {
        match &mut self.auth {
            Some(a) if a.awaiting_caller => {
                a.awaiting_caller = false;
                self.sasl_out = Some(SaslOut::Cancel);
                Ok(())
            }
            _ => Err(UsageError::NoSaslExchange),
        }
    }

    /// Tells the core the transport switched to TLS after `+OK` to STLS.
    /// Capabilities and the greeting learned over the cleartext connection
    /// are forgotten; issue CAPA again. Bytes that arrived between the
    /// `+OK` and now are a [`ProtocolError::StlsInjection`].
    pub fn tls_established(&mut self) -> Result<(), UsageError> {
        if let Some(e) = &self.error {
            return Err(UsageError::Poisoned(e.clone()));
        }
        if !matches!(self.mode, Mode::StlsWait) {
            return Err(UsageError::NoStlsPending);
        }
        if !self.recv.is_empty() {
            let e = ProtocolError::StlsInjection {
                len: self.recv.len(),
            };
            self.fail(e.clone());
            return Err(UsageError::Poisoned(e));
        }
        self.mode = Mode::Status;
        self.tls = true;
        self.capabilities = None;
        self.capa_refused = false;
        self.greeting = None;
        Ok(())
    }

    // ----- (D) output -----

    fn pipelining_allowed(&self) -> bool {
        match self.config.pipelining {
            Pipelining::Always => true,
            Pipelining::Never => false,
            Pipelining::Auto => self.capabilities.as_ref().is_some_and(|c| c.pipelining),
        }
    }

    /// Why a pending command of `kind` cannot run when it reaches the wire,
    /// if it cannot: re-checked against the state it now runs in, as an
    /// earlier state-changing command may have failed.
    fn rejection(&self, kind: CommandKind) -> Option<UsageError> {
        let mut s = self.state;
        for f in &self.in_flight {
            s = state_after(f.kind, s);
        }
        if !allowed(kind, s) {
            Some(if s == SessionState::Closed {
                UsageError::Closed
            } else {
                UsageError::WrongState {
                    state: s,
                    command: kind,
                }
            })
        } else if kind == CommandKind::Stls && self.tls {
            Some(UsageError::AlreadyTls)
        } else {
            None
        }
    }

    /// Whether the front pending command may be sent now (or must be
    /// rejected now: `poll_transmit` does that too).
    fn next_sendable(&self) -> bool {
        if self.state == SessionState::Greeting
            || !matches!(self.mode, Mode::Status | Mode::Listing(..) | Mode::Body(_))
            || self.auth.is_some()
        {
            return false;
        }
        let Some(front) = self.pending.front() else {
            return false;
        };
        if self.in_flight.is_empty() {
            // Bytes buffered while nothing is in flight answer no command
            // (the next one has not been sent): they are unsolicited, and
            // `poll_event` reports it. Nothing more is sent meanwhile; a
            // command that cannot run is still rejected first, so the
            // events do not depend on how the input was split.
            return self.recv.is_empty() || self.rejection(front.cmd.kind()).is_some();
        }
        if is_barrier(front.cmd.kind())
            || self.in_flight.iter().any(|f| is_barrier(f.kind))
            || !self.pipelining_allowed()
        {
            return false;
        }
        self.in_flight.len() < self.config.max_in_flight.max(1)
    }

    /// Appends the bytes to write to the transport to `out` and returns
    /// what was written, or `None` when there is nothing to send. Call it
    /// until it returns `None`.
    #[must_use]
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> Option<Transmit> {
        if self.error.is_some() {
            return None;
        }
        if let Some(s) = self.sasl_out.take() {
            if let Some(a) = &mut self.auth {
                a.sasl_sent_at = self.received;
            }
            let start = out.len();
            match s {
                SaslOut::Response(r) => encode_sasl_response(r.expose(), out),
                SaslOut::Cancel => out.extend_from_slice(b"*\r\n"),
            }
            return Some(Transmit {
                len: out.len() - start,
                sensitive: true,
                secret_of: None,
            });
        }
        let start = out.len();
        let mut secret_of = None;
        while self.next_sendable() {
            let Some(q) = self.pending.pop_front() else {
                break;
            };
            let kind = q.cmd.kind();
            if let Some(error) = self.rejection(kind) {
                self.events.push_back(Event::Rejected {
                    handle: q.handle,
                    command: kind,
                    error,
                });
                continue;
            }
            if q.cmd.is_sensitive() {
                // Secret lines are barriers, so they always go out alone.
                secret_of = Some(kind);
            }
            q.cmd.encode(out);
            if kind == CommandKind::Auth {
                let deferred = match (&q.cmd, q.cmd.auth_inline_response()) {
                    _ if q.defer_ir.is_some() => q.defer_ir,
                    (
                        Command::Auth {
                            initial_response: Some(ir),
                            ..
                        },
                        None,
                    ) => Some(ir.clone()),
                    _ => None,
                };
                self.auth = Some(AuthState {
                    mechanism: q.mechanism,
                    deferred,
                    awaiting_caller: false,
                    cancelled: None,
                    sasl_sent_at: 0,
                    abandoned: false,
                });
            }
            self.in_flight.push_back(InFlight {
                handle: q.handle,
                kind,
                expect: Expect::of(&q.cmd),
                sent_at: self.received,
            });
            if is_barrier(kind) {
                break;
            }
        }
        let len = out.len() - start;
        (len > 0).then_some(Transmit {
            len,
            sensitive: secret_of.is_some(),
            secret_of,
        })
    }

    /// Returns the next event, `Ok(None)` when more input is needed, or the
    /// sticky protocol error. Once an error is returned, the client is
    /// poisoned: every later call returns the same error and does no work.
    #[inline]
    pub fn poll_event(&mut self) -> Result<Option<Event<'_>>, ProtocolError> {
        // Fast path for the bulk of a message body: one scan step, no
        // intermediate state (this is most of the events of a RETR).
        if self.error.is_none() && self.events.is_empty() && self.ready_chunk.is_none() {
            if let (Mode::Body(scan), Some(front)) = (&mut self.mode, self.in_flight.front()) {
                let handle = front.handle;
                match body_step(&mut self.recv, scan, &self.finder) {
                    BodyStep::Chunk(r) => {
                        return Ok(Some(Event::BodyChunk {
                            handle,
                            data: self.recv.slice(r),
                        }))
                    }
                    BodyStep::End => {
                        let octets = scan.delivered;
                        self.end_body(handle, octets);
                    }
                    BodyStep::NeedMore => {}
                }
            }
        }
        if !self.has_event()? {
            return Ok(None);
        }
        if let Some((handle, range)) = self.ready_chunk.take() {
            return Ok(Some(Event::BodyChunk {
                handle,
                data: self.recv.slice(range),
            }));
        }
        Ok(self.events.pop_front())
    }

    /// Makes progress on buffered input and reports whether
    /// [`poll_event`](Client::poll_event) has an event ready, without taking
    /// it. Useful for callers that return a borrowed
    /// [`Event::BodyChunk`] from a loop (see [`has_body_chunk`](Client::has_body_chunk)).
    pub fn has_event(&mut self) -> Result<bool, ProtocolError> {
        loop {
            if let Some(e) = &self.error {
                return Err(e.clone());
            }
            if self.ready_chunk.is_some() || !self.events.is_empty() {
                return Ok(true);
            }
            match self.step() {
                Ok(Step::Idle) => {
                    if self.in_flight.is_empty() {
                        self.recv.trim_idle();
                    }
                    return Ok(false);
                }
                Ok(Step::Progress) => continue,
                Ok(Step::Chunk(handle, range)) => {
                    self.ready_chunk = Some((handle, range));
                    return Ok(true);
                }
                Err(e) => {
                    self.fail(e.clone());
                    return Err(e);
                }
            }
        }
    }

    /// Whether the event [`has_event`](Client::has_event) found is a
    /// [`Event::BodyChunk`].
    pub fn has_body_chunk(&self) -> bool {
        self.ready_chunk.is_some()
    }

    fn fail(&mut self, e: ProtocolError) {
        self.error = Some(e);
        self.ready_chunk = None;
        self.recv.clear();
        self.pending.clear();
        self.events.clear();
        self.sasl_out = None;
    }

    fn set_state(&mut self, to: SessionState) {
        if self.state != to {
            let from = self.state;
            self.state = to;
            self.events.push_back(Event::StateChanged { from, to });
        }
    }

    fn close(&mut self) {
        self.set_state(SessionState::Closed);
        self.mode = Mode::Closed;
        self.recv.clear();
        self.auth = None;
        self.sasl_out = None;
        for q in self.pending.drain(..) {
            self.events.push_back(Event::Rejected {
                handle: q.handle,
                command: q.cmd.kind(),
                error: UsageError::Closed,
            });
        }
        self.events.push_back(Event::Closed);
    }

    fn step(&mut self) -> Result<Step, ProtocolError> {
        match &mut self.mode {
            Mode::Closed => Ok(Step::Idle),
            Mode::StlsWait => {
                if !self.recv.is_empty() {
                    Err(ProtocolError::StlsInjection {
                        len: self.recv.len(),
                    })
                } else if self.eof {
                    Err(ProtocolError::UnexpectedEof { state: self.state })
                } else {
                    Ok(Step::Idle)
                }
            }
            Mode::Body(scan) => {
                let handle = self.in_flight.front().map(|f| f.handle);
                let Some(handle) = handle else {
                    // Unreachable by construction: body mode is entered for
                    // the front command. Treat as a protocol error, not a panic.
                    return Err(ProtocolError::UnsolicitedResponse {
                        line: String::new(),
                    });
                };
                match body_step(&mut self.recv, scan, &self.finder) {
                    BodyStep::Chunk(r) => Ok(Step::Chunk(handle, r)),
                    BodyStep::End => {
                        let octets = scan.delivered;
                        self.end_body(handle, octets);
                        Ok(Step::Progress)
                    }
                    BodyStep::NeedMore => {
                        if self.eof {
                            Err(ProtocolError::TruncatedBody {
                                received: scan.delivered + self.recv.len() as u64,
                            })
                        } else {
                            Ok(Step::Idle)
                        }
                    }
                }
            }
            Mode::Listing(..) => self.listing_step(),
            Mode::Status => self.status_step(),
        }
    }

    /// The body's terminator was consumed: the command is answered.
    fn end_body(&mut self, handle: Handle, octets: u64) {
        self.in_flight.pop_front();
        self.mode = Mode::Status;
        self.events.push_back(Event::BodyEnd { handle, octets });
    }

    fn next_line(&mut self) -> Result<Option<core::ops::Range<usize>>, ProtocolError> {
        match self.recv.next_line(self.config.max_line_len) {
            Ok(Some(r)) => Ok(Some(r)),
            Err(()) => Err(ProtocolError::LineTooLong {
                limit: self.config.max_line_len,
            }),
            Ok(None) => {
                if self.eof {
                    if self.recv.is_empty()
                        && self.in_flight.is_empty()
                        && self.state != SessionState::Greeting
                    {
                        return Ok(None);
                    }
                    return Err(ProtocolError::UnexpectedEof { state: self.state });
                }
                Ok(None)
            }
        }
    }

    fn listing_step(&mut self) -> Result<Step, ProtocolError> {
        let Some(range) = self.next_line()? else {
            return Ok(Step::Idle);
        };
        let Some(front) = self.in_flight.front().cloned() else {
            return Err(ProtocolError::UnsolicitedResponse {
                line: String::new(),
            });
        };
        let line = self.recv.slice(range);
        if line == b"." {
            let Mode::Listing(listing, _, _) = core::mem::replace(&mut self.mode, Mode::Status)
            else {
                return Ok(Step::Progress);
            };
            let response = match listing {
                Listing::List(v) => Response::List(v),
                Listing::Uidl(v) => Response::Uidl(v),
                Listing::Languages(v) => Response::Languages(v),
                Listing::Capa(c) => {
                    self.capabilities = Some(c.clone());
                    Response::Capa(c)
                }
            };
            self.in_flight.pop_front();
            self.events.push_back(Event::Ok {
                handle: front.handle,
                command: front.kind,
                response,
            });
            return Ok(Step::Progress);
        }
        let line = line.strip_prefix(b".").unwrap_or(line);
        if line.iter().all(|b| *b == b' ' || *b == b'\t') {
            // Blank lines carry nothing; some servers emit them.
            return Ok(Step::Progress);
        }
        let lenient = self.config.lenient_uids;
        let max_bytes = self.config.max_listing_bytes;
        let Mode::Listing(listing, count, bytes) = &mut self.mode else {
            return Ok(Step::Progress);
        };
        let max = match listing {
            Listing::Capa(_) | Listing::Languages(_) => MAX_CAPABILITY_LINES,
            Listing::List(_) | Listing::Uidl(_) => self.config.max_entries,
        };
        *count += 1;
        *bytes += line.len();
        if *count > max {
            return Err(ProtocolError::TooManyEntries { limit: max });
        }
        if *bytes > max_bytes {
            return Err(ProtocolError::ListingTooLarge { limit: max_bytes });
        }
        let malformed = |reason| ProtocolError::MalformedLine {
            command: front.kind,
            reason,
            line: parse::excerpt(line),
        };
        match listing {
            Listing::List(v) => v.push(parse::list_entry(line).map_err(malformed)?),
            Listing::Uidl(v) => v.push(parse::uidl_entry(line, lenient).map_err(malformed)?),
            Listing::Languages(v) => v.push(parse::language(line).map_err(malformed)?),
            Listing::Capa(c) => parse::capa_line(c, line),
        }
        Ok(Step::Progress)
    }

    fn status_step(&mut self) -> Result<Step, ProtocolError> {
        if self.sasl_out.is_some() && !self.eof {
            // Our SASL line is not sent yet: nothing the server sent can
            // answer it, so read on only after the transmit.
            return Ok(Step::Idle);
        }
        if self.in_flight.is_empty()
            && self.state != SessionState::Greeting
            && !self.recv.is_empty()
            && self.next_sendable()
        {
            // Bytes are buffered with nothing in flight, and
            // `poll_transmit` must first reject a queued command that
            // cannot run: the bytes are judged after it, so the events do
            // not depend on how the input was split.
            return Ok(Step::Idle);
        }
        if self.in_flight.is_empty()
            && self.state != SessionState::Greeting
            && !self.recv.is_empty()
        {
            // Nothing is in flight, so these bytes answer nothing, even
            // before their line is complete.
            let avail = self.recv.avail();
            let line = &avail[..memchr::memchr(b'\n', avail).unwrap_or(avail.len())];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            return Err(ProtocolError::UnsolicitedResponse {
                line: parse::excerpt(line),
            });
        }
        // Stream offset of the line about to be read.
        let line_start = self.received - self.recv.len() as u64;
        let Some(range) = self.next_line()? else {
            if self.eof && self.recv.is_empty() && !matches!(self.mode, Mode::Closed) {
                // Clean end with nothing outstanding: the server closed the
                // session (for example an autologout timer).
                self.close();
                return Ok(Step::Progress);
            }
            return Ok(Step::Idle);
        };
        let line = self.recv.slice(range.clone()).to_vec();
        if self.state == SessionState::Greeting {
            return match parse::status_line(&line) {
                Some(StatusLine::Ok(rest)) => {
                    let g = parse::greeting(rest);
                    self.greeting = Some(g.clone());
                    self.events.push_back(Event::Greeting(g));
                    self.set_state(SessionState::Authorization);
                    Ok(Step::Progress)
                }
                Some(StatusLine::Err(rest)) => {
                    let s = parse::status_text(rest);
                    self.events.push_back(Event::GreetingRefused(ErrResponse {
                        code: s.code,
                        text: s.text,
                        sasl_detail: None,
                    }));
                    self.close();
                    Ok(Step::Progress)
                }
                _ => Err(ProtocolError::BadGreeting {
                    line: parse::excerpt(&line),
                }),
            };
        }
        // A reply cannot arrive before its command was sent: bytes received
        // after the last reply and before the next command went out are
        // unsolicited, never the reply to a later command.
        let Some(front) = self
            .in_flight
            .front()
            .filter(|f| line_start >= f.sent_at)
            .cloned()
        else {
            return Err(ProtocolError::UnsolicitedResponse {
                line: parse::excerpt(&line),
            });
        };
        let status = parse::status_line(&line);
        if front.kind == CommandKind::Auth
            && !matches!(status, Some(StatusLine::Err(_)))
            && self
                .auth
                .as_ref()
                .is_some_and(|a| a.awaiting_caller || line_start < a.sasl_sent_at)
        {
            // A challenge or `+OK` before our answer to the previous
            // challenge was sent (or while the caller still owes it): the
            // server cannot have seen our credentials. (`-ERR` may end the
            // exchange at any time.)
            return Err(ProtocolError::UnsolicitedResponse {
                line: parse::excerpt(&line),
            });
        }
        match status {
            Some(StatusLine::Continue(data)) if front.kind == CommandKind::Auth => {
                self.continuation(front.handle, data)
            }
            Some(StatusLine::Err(rest)) => {
                self.in_flight.pop_front();
                let s = parse::status_text(rest);
                let mut response = ErrResponse {
                    code: s.code,
                    text: s.text,
                    sasl_detail: None,
                };
                if front.kind == CommandKind::Auth {
                    // The server ended the exchange: a SASL line not yet
                    // sent (an answer or our `*`) has nothing to go to.
                    self.sasl_out = None;
                    let auth = self.auth.take();
                    if let Some(a) = auth {
                        if let Some(m) = &a.mechanism {
                            response.sasl_detail = m.server_error().map(String::from);
                        }
                        if let Some(error) = a.cancelled {
                            self.events.push_back(Event::AuthCancelled {
                                handle: front.handle,
                                error,
                                response,
                            });
                            return Ok(Step::Progress);
                        }
                    }
                }
                let quit_in_transaction =
                    front.kind == CommandKind::Quit && self.state == SessionState::Transaction;
                if quit_in_transaction {
                    self.set_state(SessionState::Update);
                }
                self.events.push_back(Event::Err {
                    handle: front.handle,
                    command: front.kind,
                    response,
                });
                if front.kind == CommandKind::Capa {
                    self.capa_refused = true;
                }
                if front.kind == CommandKind::Quit {
                    self.close();
                }
                Ok(Step::Progress)
            }
            Some(StatusLine::Ok(rest)) => self.ok_line(front, rest),
            _ => Err(ProtocolError::MalformedStatus {
                command: front.kind,
                line: parse::excerpt(&line),
            }),
        }
    }

    fn continuation(&mut self, handle: Handle, data: &[u8]) -> Result<Step, ProtocolError> {
        let Some(auth) = &mut self.auth else {
            return Err(ProtocolError::UnsolicitedResponse {
                line: parse::excerpt(data),
            });
        };
        if auth.cancelled.is_some() || auth.awaiting_caller {
            // A challenge after our "*", or while the caller still owes
            // the answer to the previous one.
            return Err(ProtocolError::MalformedStatus {
                command: CommandKind::Auth,
                line: parse::excerpt(data),
            });
        }
        if auth.abandoned {
            auth.deferred = None;
            auth.cancelled = Some(SaslError::InvalidInput("exchange abandoned by the caller"));
            self.sasl_out = Some(SaslOut::Cancel);
            return Ok(Step::Progress);
        }
        if let Some(ir) = auth.deferred.take() {
            // The empty challenge that invites the long initial response.
            self.sasl_out = Some(SaslOut::Response(ir));
            return Ok(Step::Progress);
        }
        let trimmed = {
            let mut d = data;
            while let [head @ .., b' ' | b'\t'] = d {
                d = head;
            }
            d
        };
        let decoded = base64::engine::general_purpose::STANDARD.decode(trimmed);
        match (&mut auth.mechanism, decoded) {
            (Some(m), Ok(challenge)) => match m.step(&challenge) {
                Ok(r) => self.sasl_out = Some(SaslOut::Response(r)),
                Err(e) => {
                    auth.cancelled = Some(e);
                    self.sasl_out = Some(SaslOut::Cancel);
                }
            },
            (Some(_), Err(_)) => {
                auth.cancelled = Some(SaslError::MalformedChallenge("challenge is not base64"));
                self.sasl_out = Some(SaslOut::Cancel);
            }
            (None, Ok(challenge)) => {
                auth.awaiting_caller = true;
                self.events
                    .push_back(Event::Continuation { handle, challenge });
            }
            (None, Err(_)) => {
                return Err(ProtocolError::MalformedLine {
                    command: CommandKind::Auth,
                    reason: "SASL challenge is not base64",
                    line: parse::excerpt(data),
                })
            }
        }
        Ok(Step::Progress)
    }

    fn ok_line(&mut self, front: InFlight, rest: &[u8]) -> Result<Step, ProtocolError> {
        let malformed = |reason| ProtocolError::MalformedLine {
            command: front.kind,
            reason,
            line: parse::excerpt(rest),
        };
        let response = match front.expect {
            Expect::Status => Response::Status(parse::status_text(rest)),
            Expect::Stat => Response::Stat(parse::stat(rest).map_err(malformed)?),
            Expect::ListOne => Response::ListOne(parse::list_entry(rest).map_err(malformed)?),
            Expect::UidlOne => Response::UidlOne(
                parse::uidl_entry(rest, self.config.lenient_uids).map_err(malformed)?,
            ),
            Expect::List => {
                self.mode = Mode::Listing(Listing::List(Vec::new()), 0, 0);
                return Ok(Step::Progress);
            }
            Expect::Uidl => {
                self.mode = Mode::Listing(Listing::Uidl(Vec::new()), 0, 0);
                return Ok(Step::Progress);
            }
            Expect::Capa => {
                self.mode = Mode::Listing(Listing::Capa(Capabilities::default()), 0, 0);
                return Ok(Step::Progress);
            }
            Expect::Languages => {
                self.mode = Mode::Listing(Listing::Languages(Vec::new()), 0, 0);
                return Ok(Step::Progress);
            }
            Expect::Body => {
                self.mode = Mode::Body(BodyScan {
                    at_line_start: true,
                    delivered: 0,
                });
                self.events.push_back(Event::Ok {
                    handle: front.handle,
                    command: front.kind,
                    response: Response::BodyStart(parse::status_text(rest)),
                });
                return Ok(Step::Progress);
            }
        };
        self.in_flight.pop_front();
        match front.kind {
            CommandKind::Auth => {
                self.sasl_out = None;
                let auth = self.auth.take();
                if let Some(mut a) = auth {
                    if let Some(e) = a.cancelled {
                        return Err(ProtocolError::Sasl(e));
                    }
                    if let Some(m) = &mut a.mechanism {
                        m.finish().map_err(ProtocolError::Sasl)?;
                    }
                }
                self.events.push_back(Event::Ok {
                    handle: front.handle,
                    command: front.kind,
                    response,
                });
                self.set_state(SessionState::Transaction);
            }
            CommandKind::Pass | CommandKind::Apop | CommandKind::Rpop => {
                self.events.push_back(Event::Ok {
                    handle: front.handle,
                    command: front.kind,
                    response,
                });
                self.set_state(SessionState::Transaction);
            }
            CommandKind::Quit => {
                if self.state == SessionState::Transaction {
                    self.set_state(SessionState::Update);
                }
                self.events.push_back(Event::Ok {
                    handle: front.handle,
                    command: front.kind,
                    response,
                });
                self.close();
            }
            CommandKind::Stls => {
                self.events.push_back(Event::Ok {
                    handle: front.handle,
                    command: front.kind,
                    response,
                });
                // Bytes already buffered behind this line are reported by
                // the next step (and by `tls_established`), after this
                // event, so the events do not depend on how reads split.
                self.mode = Mode::StlsWait;
            }
            CommandKind::Utf8 => {
                self.utf8 = true;
                self.events.push_back(Event::Ok {
                    handle: front.handle,
                    command: front.kind,
                    response,
                });
            }
            _ => self.events.push_back(Event::Ok {
                handle: front.handle,
                command: front.kind,
                response,
            }),
        }
        Ok(Step::Progress)
    }
}

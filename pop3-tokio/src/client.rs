//! The async `Client`: typed POP3 methods over the driver.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::io;
use std::task::{Context, Poll};

use pop3_proto::login::{self, LoginMethod};
use pop3_proto::sasl::{Mechanism, SaslError};
use pop3_proto::{
    Capabilities, Client as Core, Command, CommandKind, Config, ErrResponse, Event, Greeting,
    Handle, Language, ListEntry, MsgNum, Response, SessionState, Stat, Status, UidlEntry,
    UsageError,
};
use pop3_tls::{
    ConnectOptions, ErrorKind, SecurityError, Timeouts, TlsOptions, TlsPolicy, TlsSetup,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::body::Body;
use crate::driver::{Driver, Progress};
use crate::error::{Error, Result};
use crate::stream::MaybeTlsStream;

/// A client over TCP, plain or TLS, that can upgrade with STLS in place.
pub type TcpClient = Client<MaybeTlsStream<TcpStream>>;

/// An async POP3 session over any `AsyncRead + AsyncWrite` transport.
///
/// Every method sends its command(s), drives the transport (reading and
/// writing concurrently) until the reply is complete, and turns the core's
/// events into a `Result`. A server `-ERR` is [`Error::Server`]; the session
/// continues. See the crate docs for cancellation safety.
pub struct Client<S> {
    pub(crate) d: Driver<S>,
    pub(crate) st: Session,
}

/// Everything of a [`Client`] but the driver.
pub(crate) struct Session {
    /// Handles of the running call; left over when its future was dropped.
    pub(crate) current: VecDeque<Handle>,
    /// Handles nobody waits for any more: their events are discarded.
    abandoned: HashSet<Handle>,
    /// Set when the connection became unusable.
    broken: Option<ErrorKind>,
    /// An STLS upgrade is under way (seen by the next call if dropped).
    upgrading: bool,
    allow_cleartext: bool,
    /// A dropped call's SASL exchange waits for an answer: cancel it.
    auth_cancel_due: bool,
    /// The greeting received on connect (kept after STLS, for display).
    greeting: Option<Greeting>,
    pub(crate) window: usize,
    /// TLS parameters kept for a later `stls()`.
    pub(crate) tls: Option<TlsSetup>,
    timeouts: Timeouts,
}

/// The default pipeline window of the batch methods. The tokio adapter
/// reads while it writes, so the window only bounds how many replies may
/// be outstanding (memory for their handles), not a deadlock risk.
pub const DEFAULT_WINDOW: usize = 100;

impl<S> std::fmt::Debug for Client<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("core", &self.d.core)
            .field("broken", &self.st.broken)
            .field("abandoned", &self.st.abandoned.len())
            .finish_non_exhaustive()
    }
}

/// What the event classifier found.
pub(crate) enum Next {
    /// A reply (or part of one) of a live command.
    Reply(Handle, Reply),
    /// The server greeting, or its refusal.
    Greeting(std::result::Result<Greeting, ErrResponse>),
    /// Nothing for the caller (logged, or belonged to a dropped call).
    Skip,
    /// The core needs I/O.
    NeedIo,
}

/// An owned reply event.
#[derive(Debug)]
pub(crate) enum Reply {
    Ok(Response),
    Err(CommandKind, ErrResponse),
    Rejected(UsageError),
    AuthCancelled(SaslError, ErrResponse),
    BodyEnd(u64),
    Continuation,
}

impl Reply {
    /// Whether this is the last event of its command.
    pub(crate) fn is_terminal(&self) -> bool {
        !matches!(
            self,
            Reply::Ok(Response::BodyStart(_)) | Reply::Continuation
        )
    }

    /// Turns a final reply into a result.
    pub(crate) fn into_result(self) -> Result<Response> {
        match self {
            Reply::Ok(r) => Ok(r),
            Reply::Err(command, response) => Err(Error::Server { command, response }),
            Reply::Rejected(e) => Err(Error::Usage(e)),
            Reply::AuthCancelled(error, response) => Err(Error::auth_cancelled(&error, response)),
            Reply::BodyEnd(_) | Reply::Continuation => Err(internal("unexpected reply event")),
        }
    }
}

fn internal(what: &str) -> Error {
    Error::Io(io::Error::other(format!("internal error: {what}")))
}

/// The next core event of a live call, or why there is none.
pub(crate) enum Live<'a> {
    /// An event for the running call (or one without a handle).
    Event(Event<'a>),
    /// An event of a dropped call, discarded.
    Skip,
    /// The core needs I/O.
    NeedIo,
}

/// Discards the events of dropped calls (`None`); a dropped call's SASL
/// exchange waiting for an answer is marked for cancelling.
fn live<'a>(st: &mut Session, ev: Event<'a>) -> Option<Event<'a>> {
    let Some(handle) = ev.handle() else {
        return Some(ev);
    };
    if !st.abandoned.contains(&handle) {
        return Some(ev);
    }
    match ev {
        Event::Continuation { .. } => st.auth_cancel_due = true,
        Event::BodyChunk { .. }
        | Event::Ok {
            response: Response::BodyStart(_),
            ..
        } => {}
        _ => {
            st.abandoned.remove(&handle);
        }
    }
    None
}

/// Sorts one live core event into an owned reply. Body chunks are taken
/// by the callers that want them (`Live`, `Body`), never here.
fn classify(ev: Event<'_>) -> Next {
    let (handle, reply) = match ev {
        Event::Greeting(g) => return Next::Greeting(Ok(g)),
        Event::GreetingRefused(e) => return Next::Greeting(Err(e)),
        Event::Ok {
            handle, response, ..
        } => (handle, Reply::Ok(response)),
        Event::Err {
            handle,
            command,
            response,
        } => (handle, Reply::Err(command, response)),
        Event::Rejected { handle, error, .. } => (handle, Reply::Rejected(error)),
        Event::AuthCancelled {
            handle,
            error,
            response,
        } => (handle, Reply::AuthCancelled(error, response)),
        Event::BodyEnd { handle, octets } => (handle, Reply::BodyEnd(octets)),
        Event::Continuation { handle, .. } => (handle, Reply::Continuation),
        _ => return Next::Skip,
    };
    Next::Reply(handle, reply)
}

fn msg(n: u32) -> Result<MsgNum> {
    Ok(MsgNum::try_from(n)?)
}

/// Fills `buf` with secure random bytes (for SCRAM nonces).
fn random_bytes(buf: &mut [u8]) -> Result<()> {
    getrandom::getrandom(buf).map_err(|e| Error::Io(io::Error::other(e.to_string())))
}

impl TcpClient {
    /// Connects over TCP and applies `options.policy`:
    ///
    /// * `Implicit`: TLS handshake first (POP3S), then greeting, CAPA;
    /// * `Required`: greeting, CAPA, STLS (an error before any credential
    ///   if the server does not offer it or refuses it), CAPA again;
    /// * `Opportunistic`: the same, staying in cleartext when STLS is not
    ///   offered or refused;
    /// * `None`: greeting, CAPA.
    ///
    /// Every step is bounded by `options.timeouts`.
    pub async fn connect(host: &str, port: u16, options: &ConnectOptions) -> Result<TcpClient> {
        let tcp = connect_tcp(host, port, &options.timeouts).await?;
        Client::establish(tcp, host, options).await
    }

    /// Implicit TLS (POP3S) with default options; `port` is usually 995.
    pub async fn connect_tls(host: &str, port: u16) -> Result<TcpClient> {
        let options = ConnectOptions::new().policy(TlsPolicy::Implicit);
        Client::connect(host, port, &options).await
    }

    /// Plain TCP upgraded with STLS ([`TlsPolicy::Required`]) with default
    /// options; `port` is usually 110.
    pub async fn connect_stls(host: &str, port: u16) -> Result<TcpClient> {
        Client::connect(host, port, &ConnectOptions::new()).await
    }

    /// Plain TCP without TLS ([`TlsPolicy::None`]). Credentials are refused
    /// unless `allow_cleartext_credentials` (for example only on a trusted
    /// network or in tests).
    pub async fn connect_plain(
        host: &str,
        port: u16,
        allow_cleartext_credentials: bool,
    ) -> Result<TcpClient> {
        let options = ConnectOptions::new()
            .policy(TlsPolicy::None)
            .allow_cleartext_credentials(allow_cleartext_credentials);
        Client::connect(host, port, &options).await
    }
}

/// Opens TCP to `host:port`, trying each resolved address with the connect
/// timeout, and sets `TCP_NODELAY`.
pub(crate) async fn connect_tcp(host: &str, port: u16, t: &Timeouts) -> Result<TcpStream> {
    let addrs = match tokio::time::timeout(t.connect, tokio::net::lookup_host((host, port))).await {
        Err(_) => return Err(Error::timeout("name lookup")),
        Ok(r) => r.map_err(Error::Io)?,
    };
    let mut last = None;
    for addr in addrs {
        match tokio::time::timeout(t.connect, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                // Commands are small and we wait for their replies.
                s.set_nodelay(true).map_err(Error::Io)?;
                return Ok(s);
            }
            Ok(Err(e)) => last = Some(Error::Io(e)),
            Err(_) => last = Some(Error::timeout("connect")),
        }
    }
    Err(last.unwrap_or_else(|| {
        Error::Io(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host}: no address found"),
        ))
    }))
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<MaybeTlsStream<S>> {
    /// Applies `options` (policy, TLS, timeouts, core config) over an
    /// already connected transport `stream`; `host` is the name the server
    /// certificate must match (unless `options.tls` overrides it).
    pub async fn establish(stream: S, host: &str, options: &ConnectOptions) -> Result<Self> {
        let setup = TlsSetup::for_connect(options, host)?;
        let implicit = options.policy == TlsPolicy::Implicit;
        let stream = match (&setup, implicit) {
            (Some(s), true) => {
                let handshake = MaybeTlsStream::tls(stream, s.config.clone(), s.name.clone());
                match tokio::time::timeout(options.timeouts.read, handshake).await {
                    Err(_) => return Err(Error::timeout("TLS handshake")),
                    Ok(r) => r.map_err(Error::from_handshake)?,
                }
            }
            _ => MaybeTlsStream::plain(stream),
        };
        let mut client = Client::unstarted(stream, implicit, options.proto.clone());
        client.set_allow_cleartext_credentials(options.allow_cleartext_credentials);
        client.st.tls = setup;
        client.set_timeouts(options.timeouts);
        client.read_greeting().await?;
        // The decisions are pop3-tls's, shared with pop3-blocking.
        let caps = client.capa_unless_refused().await?;
        if options.policy.stls_after_capa(caps.as_ref())? {
            match client.stls().await {
                Ok(_) => {
                    client.capa_unless_refused().await?;
                }
                Err(Error::Server { response, .. }) => {
                    tracing::debug!("STLS refused ({response})");
                    options.policy.stls_refused(response)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(client)
    }

    /// `STLS`: upgrades this session to TLS in place with the TLS options
    /// given when connecting (or [`Client::stls_with_options`]).
    /// Capabilities and the greeting's APOP timestamp learned in cleartext
    /// are forgotten (RFC 2595); call [`Client::capa`] again.
    ///
    /// **Not cancel-safe**: if this future is dropped after `STLS` was
    /// sent, the client is broken ([`Error::Cancelled`], then
    /// [`Error::Broken`]).
    pub async fn stls(&mut self) -> Result<Status> {
        let setup = self.st.tls.clone().ok_or_else(TlsSetup::missing)?;
        self.stls_setup(setup).await
    }

    /// `STLS` with explicit TLS options; `host` is the name the server
    /// certificate must match (unless `tls` overrides it).
    pub async fn stls_with_options(&mut self, tls: &TlsOptions, host: &str) -> Result<Status> {
        let setup = TlsSetup::new(tls, host)?;
        self.st.tls = Some(setup.clone());
        self.stls_setup(setup).await
    }

    async fn stls_setup(&mut self, setup: TlsSetup) -> Result<Status> {
        self.begin()?;
        if self.d.stream.is_tls() {
            return Err(Error::Usage(UsageError::AlreadyTls));
        }
        self.st.upgrading = true;
        let status = match self.stls_command().await {
            Ok(s) => s,
            Err(e) => {
                // Before +OK nothing is lost: a timeout leaves the reply
                // to be drained like any other (the core then waits for a
                // TLS upgrade that never comes, so break instead).
                self.st.upgrading = false;
                if matches!(e, Error::Timeout(_)) {
                    self.st.broken = Some(ErrorKind::Timeout);
                }
                return Err(e);
            }
        };
        let handshake = self.d.stream.upgrade(setup.config, setup.name);
        let r = tokio::time::timeout(self.st.timeouts.read, handshake).await;
        self.st.upgrading = false;
        match r {
            Err(_) => {
                self.st.broken = Some(ErrorKind::Timeout);
                return Err(Error::timeout("TLS handshake"));
            }
            Ok(Err(e)) => return Err(self.fail(Error::from_handshake(e))),
            Ok(Ok(())) => {}
        }
        self.d.core.tls_established().map_err(|e| self.usage(e))?;
        Ok(status)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// Wraps a connected stream that is **not** protected (no TLS) and reads
    /// the greeting. Credentials are refused on it unless
    /// [`Client::set_allow_cleartext_credentials`] is called; upgrade it with
    /// [`Client::stls_with`], or wrap it in [`MaybeTlsStream`] to use
    /// [`Client::stls`]. Default [`Timeouts`] apply ([`Client::set_timeouts`]).
    pub async fn new(stream: S) -> Result<Client<S>> {
        Client::with_config(stream, false, Config::default()).await
    }

    /// Wraps a stream that is already protected (TLS done by the caller, or
    /// a transport trusted like one, such as a local Unix socket) and reads
    /// the greeting. STLS is refused on it; credentials are allowed.
    pub async fn new_secure(stream: S) -> Result<Client<S>> {
        Client::with_config(stream, true, Config::default()).await
    }

    /// Wraps a stream with a core configuration and reads the greeting.
    /// `secure`: the stream is protected (see [`Client::new_secure`]).
    pub async fn with_config(stream: S, secure: bool, config: Config) -> Result<Client<S>> {
        let mut client = Client::unstarted(stream, secure, config);
        client.read_greeting().await?;
        Ok(client)
    }

    pub(crate) fn unstarted(stream: S, secure: bool, mut config: Config) -> Client<S> {
        config.tls = secure;
        config.max_in_flight = config.max_in_flight.max(1);
        let window = config.max_in_flight.min(DEFAULT_WINDOW);
        let timeouts = Timeouts::default();
        Client {
            d: Driver::new(stream, Core::new(config), timeouts.read, timeouts.write),
            st: Session {
                current: VecDeque::new(),
                abandoned: HashSet::new(),
                broken: None,
                upgrading: false,
                allow_cleartext: false,
                auth_cancel_due: false,
                greeting: None,
                window,
                tls: None,
                timeouts,
            },
        }
    }

    async fn read_greeting(&mut self) -> Result<()> {
        loop {
            let next = self.next_event()?;
            match next {
                Next::Greeting(Ok(g)) => {
                    self.st.greeting = Some(g);
                    return Ok(());
                }
                Next::Greeting(Err(e)) => return Err(Error::GreetingRefused(e)),
                Next::NeedIo => self.pump().await?,
                _ => {}
            }
        }
    }

    // ----- plumbing -----

    /// Start of every public call: refuses a broken client, abandons what
    /// a dropped call left behind, and resets the timers.
    pub(crate) fn begin(&mut self) -> Result<()> {
        if let Some(k) = &self.st.broken {
            return Err(Error::Broken(k.clone()));
        }
        if self.st.upgrading {
            self.st.upgrading = false;
            self.st.broken = Some(ErrorKind::Tls);
            return Err(Error::Cancelled("STLS"));
        }
        self.st.abandoned.extend(self.st.current.drain(..));
        self.d.reset_timers();
        Ok(())
    }

    /// Records an error; transport and protocol failures break the client.
    pub(crate) fn fail(&mut self, e: Error) -> Error {
        match &e {
            Error::Io(_) | Error::Tls(_) | Error::Protocol(_) => {
                self.st.broken = Some(e.kind());
            }
            _ => {}
        }
        e
    }

    pub(crate) fn enqueue(&mut self, cmd: Command) -> Result<Handle> {
        let h = self.d.core.enqueue(cmd).map_err(|e| self.usage(e))?;
        self.st.current.push_back(h);
        Ok(h)
    }

    /// A usage error from the core; a poisoned core means a broken client.
    fn usage(&mut self, e: UsageError) -> Error {
        if let UsageError::Poisoned(p) = &e {
            self.st.broken = Some(ErrorKind::of_protocol(p));
        }
        Error::Usage(e)
    }

    /// A handle got its final event.
    pub(crate) fn settle(&mut self, h: Handle) {
        if let Some(i) = self.st.current.iter().position(|c| *c == h) {
            self.st.current.remove(i);
        }
    }

    /// The next event of a live call. `Live::NeedIo` means: call `pump`.
    /// A dropped call's SASL exchange waiting for an answer is cancelled
    /// here.
    pub(crate) fn next_live_event(&mut self) -> Result<Live<'_>> {
        if std::mem::take(&mut self.st.auth_cancel_due) {
            // Only fails when no exchange waits, which the core just said
            // does.
            let _ = self.d.core.auth_cancel();
        }
        match self.d.poll_event() {
            Err(e) => {
                self.st.broken = Some(ErrorKind::of_protocol(&e));
                Err(Error::Protocol(e))
            }
            Ok(None) => Ok(Live::NeedIo),
            Ok(Some(ev)) => Ok(match live(&mut self.st, ev) {
                Some(ev) => Live::Event(ev),
                None => Live::Skip,
            }),
        }
    }

    /// The next event, classified. `Next::NeedIo` means: call `pump`.
    pub(crate) fn next_event(&mut self) -> Result<Next> {
        Ok(match self.next_live_event()? {
            Live::Event(ev) => classify(ev),
            Live::Skip => Next::Skip,
            Live::NeedIo => Next::NeedIo,
        })
    }

    /// One step of I/O.
    pub(crate) async fn pump(&mut self) -> Result<()> {
        let r = self.d.io().await;
        self.after_io(r)
    }

    /// Poll form of [`Client::pump`].
    pub(crate) fn poll_pump(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        match self.d.poll_io(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => Poll::Ready(self.after_io(r)),
        }
    }

    fn after_io(&mut self, r: Result<Progress>) -> Result<()> {
        match r {
            Ok(Progress::Read | Progress::Wrote) => Ok(()),
            Ok(Progress::Idle) => Err(self.fail(internal(
                "the session cannot make progress (nothing to send, no reply expected)",
            ))),
            Err(e @ Error::Timeout(_)) => Err(e),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Waits for the final reply to `h`.
    pub(crate) async fn wait(&mut self, h: Handle) -> Result<Reply> {
        loop {
            match self.next_event()? {
                Next::Reply(handle, reply) if reply.is_terminal() => {
                    self.settle(handle);
                    if handle == h {
                        return Ok(reply);
                    }
                }
                Next::NeedIo => self.pump().await?,
                _ => {}
            }
        }
    }

    /// Sends one command and returns its `+OK` response.
    async fn command(&mut self, cmd: Command) -> Result<Response> {
        self.begin()?;
        let h = self.enqueue(cmd)?;
        self.wait(h).await?.into_result()
    }

    async fn status(&mut self, cmd: Command) -> Result<Status> {
        match self.command(cmd).await? {
            Response::Status(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    fn check_credentials(&self) -> Result<()> {
        if self.d.core.is_tls() || self.st.allow_cleartext {
            Ok(())
        } else {
            Err(SecurityError::CleartextCredentials.into())
        }
    }

    // ----- getters -----

    /// The server greeting (`getwelcome()`): the one received when
    /// connecting, kept after STLS for display (the core itself forgets it
    /// after STLS, so APOP never uses a timestamp seen in cleartext).
    pub fn greeting(&self) -> Option<&Greeting> {
        self.st.greeting.as_ref()
    }

    /// The capabilities from the last CAPA, if any.
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.d.core.capabilities()
    }

    /// The session state.
    pub fn session_state(&self) -> SessionState {
        self.d.core.session_state()
    }

    /// Whether the session is protected by TLS.
    pub fn is_tls(&self) -> bool {
        self.d.core.is_tls()
    }

    /// Whether an earlier error left the client unusable.
    pub fn is_broken(&self) -> bool {
        self.st.broken.is_some()
    }

    /// The sans-IO core, for inspection.
    pub fn core(&self) -> &Core {
        &self.d.core
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.d.stream
    }

    /// The transport, mutably. Writing to it directly desynchronises the
    /// session.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.d.stream
    }

    /// Gives the transport back.
    pub fn into_inner(self) -> S {
        self.d.into_parts().0
    }

    /// Allows (or forbids, the default) sending credentials on a connection
    /// without TLS.
    pub fn set_allow_cleartext_credentials(&mut self, yes: bool) {
        self.st.allow_cleartext = yes;
        self.d.core.set_allow_cleartext_credentials(yes);
    }

    /// The pipeline window of the batch methods.
    pub fn window(&self) -> usize {
        self.st.window
    }

    /// Sets the pipeline window of the batch methods (clamped to 1 ..= the
    /// core's `max_in_flight`). Pipelining happens only when the server
    /// advertised `PIPELINING` (or the core config forces it); otherwise
    /// batches run one command at a time.
    pub fn set_window(&mut self, window: usize) {
        self.st.window = window.clamp(1, self.d.core.config().max_in_flight.max(1));
    }

    /// The read and write timeouts in force (the connect timeout applies
    /// only to the constructors).
    pub fn timeouts(&self) -> Timeouts {
        self.st.timeouts
    }

    /// Sets the read and write timeouts: each wait for the server to send
    /// something, or for the transport to accept bytes, is bounded by them.
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.st.timeouts = timeouts;
        self.d.set_timeouts(timeouts.read, timeouts.write);
    }

    // ----- AUTHORIZATION -----

    /// `USER name`.
    pub async fn user(&mut self, name: &str) -> Result<Status> {
        self.check_credentials()?;
        self.status(Command::user(name)?).await
    }

    /// `PASS password`.
    pub async fn pass(&mut self, password: &str) -> Result<Status> {
        self.check_credentials()?;
        self.status(Command::pass(password)?).await
    }

    /// `APOP name digest`, the digest computed from the greeting's
    /// timestamp.
    pub async fn apop(&mut self, name: &str, secret: &str) -> Result<Status> {
        self.check_credentials()?;
        self.begin()?;
        let h = self.d.core.apop(name, secret).map_err(|e| self.usage(e))?;
        self.st.current.push_back(h);
        match self.wait(h).await?.into_result()? {
            Response::Status(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// `RPOP user` (RFC 1081, obsolete).
    pub async fn rpop(&mut self, name: &str) -> Result<Status> {
        self.check_credentials()?;
        self.status(Command::rpop(name)?).await
    }

    /// `AUTH` driven by a SASL mechanism (see [`pop3_proto::sasl`]); the
    /// core answers the challenges.
    pub async fn authenticate(&mut self, mechanism: Box<dyn Mechanism>) -> Result<Status> {
        self.check_credentials()?;
        self.begin()?;
        let h = self
            .d
            .core
            .authenticate(mechanism)
            .map_err(|e| self.usage(e))?;
        self.st.current.push_back(h);
        match self.wait(h).await?.into_result()? {
            Response::Status(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// Logs in with the strongest method both sides support
    /// ([`pop3_proto::login::plan`]): SCRAM, CRAM-MD5, PLAIN, LOGIN, then
    /// APOP (over TLS), then USER/PASS. Issues CAPA first when no
    /// capabilities are known. Returns the method used.
    pub async fn login(&mut self, user: &str, password: &str) -> Result<LoginMethod> {
        self.check_credentials()?;
        self.learn_capabilities().await?;
        let method = login::plan(
            self.capabilities(),
            self.greeting(),
            self.is_tls(),
            self.st.allow_cleartext,
        )?;
        tracing::debug!("login method: {method:?}");
        match &method {
            LoginMethod::Sasl(name) => {
                let mut random = [0u8; 24];
                random_bytes(&mut random)?;
                let m = login::mechanism(name, user, password, &random)
                    .map_err(|e| Error::Usage(UsageError::Sasl(e)))?;
                self.authenticate(m).await?;
            }
            LoginMethod::Apop => {
                self.apop(user, password).await?;
            }
            _ => {
                self.user(user).await?;
                self.pass(password).await?;
            }
        }
        Ok(method)
    }

    // ----- TRANSACTION -----

    /// `STAT`: message count and total size.
    pub async fn stat(&mut self) -> Result<Stat> {
        self.command(Command::Stat)
            .await?
            .into_stat()
            .ok_or_else(wrong_type)
    }

    /// `LIST`: every message's number and size.
    pub async fn list(&mut self) -> Result<Vec<ListEntry>> {
        self.command(Command::List(None))
            .await?
            .into_list()
            .ok_or_else(wrong_type)
    }

    /// `LIST n`.
    pub async fn list_one(&mut self, n: u32) -> Result<ListEntry> {
        self.command(Command::List(Some(msg(n)?)))
            .await?
            .into_list_one()
            .ok_or_else(wrong_type)
    }

    /// `UIDL`: every message's unique id.
    pub async fn uidl(&mut self) -> Result<Vec<UidlEntry>> {
        self.command(Command::Uidl(None))
            .await?
            .into_uidl()
            .ok_or_else(wrong_type)
    }

    /// `UIDL n`.
    pub async fn uidl_one(&mut self, n: u32) -> Result<UidlEntry> {
        self.command(Command::Uidl(Some(msg(n)?)))
            .await?
            .into_uidl_one()
            .ok_or_else(wrong_type)
    }

    /// `RETR n`, collected into memory. Prefer [`Client::retr_to`] or
    /// [`Client::retr_body`] for large messages.
    pub async fn retr(&mut self, n: u32) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.retr_to(n, &mut out).await?;
        Ok(out)
    }

    /// `RETR n`, streamed into `w` (dot-unstuffed, line endings as sent);
    /// returns the number of bytes written. If `w` fails, the rest of the
    /// message is read and discarded and [`Error::Sink`] is returned; the
    /// session stays usable.
    pub async fn retr_to<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        n: u32,
        w: &mut W,
    ) -> Result<u64> {
        self.retr_body(n).await?.write_to(w).await
    }

    /// `RETR n` as a [`Body`] to consume chunk by chunk
    /// ([`Body::next_chunk`]), as an `AsyncRead`, or as a `Stream` of
    /// `Bytes`. Returns once the `+OK` arrived (a `-ERR` is an error here).
    pub async fn retr_body(&mut self, n: u32) -> Result<Body<'_, S>> {
        let cmd = Command::Retr(msg(n)?);
        self.body(cmd).await
    }

    /// `TOP n lines`, collected into memory.
    pub async fn top(&mut self, n: u32, lines: u32) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.top_to(n, lines, &mut out).await?;
        Ok(out)
    }

    /// `TOP n lines`, streamed into `w`.
    pub async fn top_to<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        n: u32,
        lines: u32,
        w: &mut W,
    ) -> Result<u64> {
        self.top_body(n, lines).await?.write_to(w).await
    }

    /// `TOP n lines` as a [`Body`].
    pub async fn top_body(&mut self, n: u32, lines: u32) -> Result<Body<'_, S>> {
        let cmd = Command::Top(msg(n)?, lines);
        self.body(cmd).await
    }

    async fn body(&mut self, cmd: Command) -> Result<Body<'_, S>> {
        self.begin()?;
        let h = self.enqueue(cmd)?;
        loop {
            match self.next_event()? {
                Next::Reply(handle, Reply::Ok(Response::BodyStart(status))) if handle == h => {
                    return Ok(Body::new(self, h, status))
                }
                Next::Reply(handle, reply) if reply.is_terminal() => {
                    self.settle(handle);
                    if handle == h {
                        reply.into_result()?;
                        return Err(internal("body reply without +OK"));
                    }
                }
                Next::NeedIo => self.pump().await?,
                _ => {}
            }
        }
    }

    /// `DELE n`: marks the message deleted (committed by `QUIT`).
    pub async fn dele(&mut self, n: u32) -> Result<Status> {
        self.status(Command::Dele(msg(n)?)).await
    }

    /// `RSET`: unmarks every deleted message.
    pub async fn rset(&mut self) -> Result<Status> {
        self.status(Command::Rset).await
    }

    /// `NOOP`.
    pub async fn noop(&mut self) -> Result<Status> {
        self.status(Command::Noop).await
    }

    /// `QUIT`: ends the session. In TRANSACTION, `Ok` means the server
    /// committed the deletions (UPDATE succeeded); `-ERR` is
    /// [`Error::Server`] and nothing was deleted. The transport is shut
    /// down afterwards.
    pub async fn quit(&mut self) -> Result<Status> {
        let r = self.status(Command::Quit).await;
        if r.is_ok() {
            // Best effort: the server closes too.
            let _ = tokio::time::timeout(self.st.timeouts.write, self.d.stream.shutdown()).await;
        }
        r
    }

    /// `CAPA`: the server's capabilities (also kept for
    /// [`Client::capabilities`] and pipelining).
    pub async fn capa(&mut self) -> Result<Capabilities> {
        // The core remembers a refusal (`needs_capa`), reset by STLS.
        match self.command(Command::Capa).await {
            Ok(Response::Capa(c)) => Ok(c),
            Ok(other) => Err(unexpected(other)),
            Err(e) => Err(e),
        }
    }

    /// CAPA, with a `-ERR` (a server without CAPA) as `None`.
    async fn capa_unless_refused(&mut self) -> Result<Option<Capabilities>> {
        match self.capa().await {
            Ok(c) => Ok(Some(c)),
            Err(Error::Server { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Runs CAPA when no capabilities are known and the server has not
    /// refused CAPA already (a `-ERR` is not an error here).
    pub(crate) async fn learn_capabilities(&mut self) -> Result<()> {
        if self.d.core.needs_capa() {
            self.capa_unless_refused().await?;
        }
        Ok(())
    }

    /// `UTF8` (RFC 6856).
    pub async fn utf8(&mut self) -> Result<Status> {
        self.status(Command::Utf8).await
    }

    /// `LANG tag` (RFC 6856): switches the language of server texts.
    pub async fn lang(&mut self, tag: &str) -> Result<Status> {
        self.status(Command::lang(Some(tag))?).await
    }

    /// `LANG` without argument: the languages the server offers.
    pub async fn languages(&mut self) -> Result<Vec<Language>> {
        self.command(Command::lang(None)?)
            .await?
            .into_languages()
            .ok_or_else(wrong_type)
    }

    /// Sends `STLS` and, on `+OK`, hands the transport to `upgrade` (any
    /// TLS library: an async closure that performs the handshake and
    /// returns the encrypted stream). Bytes the server sent after its `+OK`
    /// and before the handshake are refused as a response injection.
    pub async fn stls_with<T, F, Fut>(mut self, upgrade: F) -> Result<Client<T>>
    where
        T: AsyncRead + AsyncWrite + Unpin,
        F: FnOnce(S) -> Fut,
        Fut: Future<Output = io::Result<T>>,
    {
        self.begin()?;
        self.stls_command().await?;
        let Client { d, st } = self;
        let (stream, parts) = d.into_parts();
        let stream = match tokio::time::timeout(st.timeouts.read, upgrade(stream)).await {
            Err(_) => return Err(Error::timeout("TLS handshake")),
            Ok(r) => r.map_err(Error::Tls)?,
        };
        let mut client = Client {
            d: Driver::from_parts(stream, parts),
            st,
        };
        client
            .d
            .core
            .tls_established()
            .map_err(|e| client.usage(e))?;
        Ok(client)
    }

    /// Sends STLS, waits for `+OK`, checks that nothing followed it, and
    /// writes out everything before the handshake starts.
    async fn stls_command(&mut self) -> Result<Status> {
        let h = self.enqueue(Command::Stls)?;
        let status = match self.wait(h).await?.into_result()? {
            Response::Status(s) => s,
            other => return Err(unexpected(other)),
        };
        // Anything the server sent after its +OK is already in the core
        // (every byte read is handed over at once); this reports it as
        // ProtocolError::StlsInjection before any TLS byte is sent.
        if let Err(e) = self.d.poll_event() {
            self.st.broken = Some(ErrorKind::of_protocol(&e));
            return Err(Error::Protocol(e));
        }
        if !self.d.core.is_awaiting_tls() {
            return Err(internal("STLS answered but the core does not wait for TLS"));
        }
        self.d.flush_all().await.map_err(|e| self.fail(e))?;
        Ok(status)
    }
}

/// The core answered a command with a response type it never uses for it.
fn wrong_type() -> Error {
    internal("unexpected response type")
}

fn unexpected(r: Response) -> Error {
    internal(&format!("unexpected response type {r:?}"))
}

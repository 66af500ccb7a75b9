//! The async `Client`: a driver of the sans-IO session layer
//! ([`pop3_proto::session`]). Every operation is the layer's; this file
//! moves bytes, performs TLS handshakes when asked, and sleeps until the
//! layer's deadlines.

use std::future::Future;
use std::io;
use std::task::{Context, Poll};

#[cfg(feature = "rustls")]
use pop3_adapter::{ConnectOptions, TlsOptions, TlsSetup};
use pop3_adapter::{ErrorKind, Timeouts, TlsPolicy};
use pop3_proto::login::LoginMethod;
use pop3_proto::sasl::Mechanism;
use pop3_proto::session::{Action, ChannelBinding, Output, Session};
use pop3_proto::{
    Capabilities, Client as Core, Command, Config, Greeting, Handle, Language, ListEntry, MsgNum,
    Response, SessionState, Stat, Status, UidlEntry, UsageError,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::body::Body;
use crate::driver::{log_event, Driver, Progress};
use crate::error::{Error, Result};
use crate::stream::MaybeTlsStream;

/// A client over TCP, plain or TLS, that can upgrade with STLS in place.
pub type TcpClient = Client<MaybeTlsStream<TcpStream>>;

/// An async POP3 session over any `AsyncRead + AsyncWrite` transport.
///
/// Every method starts one operation of the session layer, drives the
/// transport (reading and writing concurrently) until it is done, and
/// returns its typed output. A server `-ERR` is [`Error::Server`]; the
/// session continues. See the crate docs for cancellation safety.
pub struct Client<S> {
    pub(crate) d: Driver<S>,
    pub(crate) st: State,
}

/// Everything of a [`Client`] but the driver.
pub(crate) struct State {
    /// Raw (batch) handles of the running call; abandoned if its future
    /// was dropped.
    pub(crate) current: Vec<Handle>,
    /// Set when the transport became unusable.
    broken: Option<ErrorKind>,
    pub(crate) window: usize,
    /// TLS parameters kept for a later `stls()`.
    #[cfg(feature = "rustls")]
    pub(crate) tls: Option<TlsSetup>,
    timeouts: Timeouts,
}

/// The default pipeline window of the batch methods: the cap the window
/// grows to (from
/// [`INITIAL_WINDOW`](pop3_proto::session::batch::INITIAL_WINDOW), doubling
/// every round trip), which protects the server; the command bytes in flight
/// are bounded too. The tokio adapter reads while it writes, so the window
/// is no deadlock risk here.
pub const DEFAULT_WINDOW: usize = 200;

impl<S> std::fmt::Debug for Client<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session", &self.d.session)
            .field("broken", &self.st.broken)
            .finish_non_exhaustive()
    }
}

/// How [`Client::run`] stopped.
pub(crate) enum Ran {
    Done(Output),
    StartTls,
}

pub(crate) fn internal(what: &str) -> Error {
    Error::Io(io::Error::other(format!("internal error: {what}")))
}

fn msg(n: u32) -> Result<MsgNum> {
    Ok(MsgNum::try_from(n)?)
}

/// Fills `buf` with secure random bytes (for SCRAM nonces).
fn random_bytes(buf: &mut [u8]) -> Result<()> {
    getrandom::getrandom(buf).map_err(|e| Error::Io(io::Error::other(e.to_string())))
}

#[cfg(feature = "rustls")]
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
    /// `options.timeouts.read` bounds every whole response (greeting,
    /// status line, listing, body) and each TLS handshake.
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
#[cfg(feature = "rustls")]
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

#[cfg(feature = "rustls")]
impl<S: AsyncRead + AsyncWrite + Unpin> Client<MaybeTlsStream<S>> {
    /// Applies `options` (policy, TLS, timeouts, core config) over an
    /// already connected transport `stream`; `host` is the name the server
    /// certificate must match (unless `options.tls` overrides it).
    pub async fn establish(stream: S, host: &str, options: &ConnectOptions) -> Result<Self> {
        let setup = options.tls_setup(host)?;
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
        let binding = stream
            .tls_connection()
            .and_then(pop3_adapter::channel_binding);
        let mut client = Client::unstarted(
            stream,
            options.policy,
            options.proto.clone(),
            options.timeouts,
        );
        client.set_allow_cleartext_credentials(options.allow_cleartext_credentials);
        if let Some(b) = binding {
            client.d.session.set_channel_binding(b);
        }
        client.st.tls = setup;
        client.begin()?;
        client.d.session.start_connect()?;
        loop {
            match client.run().await? {
                Ran::Done(_) => return Ok(client),
                Ran::StartTls => client.handshake().await?,
            }
        }
    }

    /// The TLS handshake the layer asked for, bounded by its deadline.
    async fn handshake(&mut self) -> Result<()> {
        let setup = self.st.tls.clone().ok_or_else(TlsSetup::missing)?;
        self.d.flush_all().await.map_err(|e| self.fail(e))?;
        let deadline = self.d.session.poll_timeout().map(|at| self.d.instant(at));
        let handshake = self.d.stream.upgrade(setup.config, setup.name);
        let r = match deadline {
            Some(when) => tokio::time::timeout_at(when, handshake).await,
            None => Ok(handshake.await),
        };
        match r {
            Err(_) => {
                let now = self.d.now();
                self.d.session.handle_timeout(now);
                self.st.broken = Some(ErrorKind::Timeout);
                return Err(Error::timeout("TLS handshake"));
            }
            Ok(Err(e)) => return Err(self.fail(Error::from_handshake(e))),
            Ok(Ok(())) => {}
        }
        let binding = self
            .d
            .stream
            .tls_connection()
            .and_then(pop3_adapter::channel_binding);
        let now = self.d.now();
        self.d.session.tls_established(now, binding)?;
        Ok(())
    }

    /// `STLS`: upgrades this session to TLS in place with the TLS options
    /// given when connecting (or [`Client::stls_with_options`]).
    /// Capabilities and the greeting's APOP timestamp learned in cleartext
    /// are forgotten (RFC 2595); call [`Client::capa`] again.
    ///
    /// **Not cancel-safe**: if this future is dropped after `STLS` was
    /// sent, the client is broken ([`Error::Cancelled`]).
    pub async fn stls(&mut self) -> Result<Status> {
        if self.st.tls.is_none() {
            return Err(TlsSetup::missing().into());
        }
        self.begin()?;
        if self.d.stream.is_tls() {
            return Err(Error::Usage(UsageError::AlreadyTls));
        }
        self.d.session.start_stls()?;
        match self.run().await? {
            Ran::StartTls => {}
            Ran::Done(_) => return Err(internal("STLS finished without a handshake")),
        }
        self.handshake().await?;
        self.finish_status().await
    }

    /// `STLS` with explicit TLS options; `host` is the name the server
    /// certificate must match (unless `tls` overrides it).
    pub async fn stls_with_options(&mut self, tls: &TlsOptions, host: &str) -> Result<Status> {
        self.st.tls = Some(TlsSetup::new(tls, host)?);
        self.stls().await
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
        let policy = if secure {
            TlsPolicy::Implicit
        } else {
            TlsPolicy::None
        };
        let mut client = Client::unstarted(stream, policy, config, Timeouts::default());
        client.begin()?;
        client.d.session.start_greeting()?;
        client.finish().await?;
        Ok(client)
    }

    pub(crate) fn unstarted(
        stream: S,
        policy: TlsPolicy,
        mut config: Config,
        timeouts: Timeouts,
    ) -> Client<S> {
        config.max_in_flight = config.max_in_flight.max(1);
        let window = config.max_in_flight.min(DEFAULT_WINDOW);

        let session = pop3_adapter::new_session(policy, config, timeouts, log_event);
        Client {
            d: Driver::new(stream, session, timeouts.write),
            st: State {
                current: Vec::new(),
                broken: None,
                window,
                #[cfg(feature = "rustls")]
                tls: None,
                timeouts,
            },
        }
    }

    // ----- plumbing -----

    /// Start of every public call: refuses a broken client, abandons what
    /// a dropped call left behind (the layer discards its replies and
    /// cancels a SASL exchange with `*`), and resets the write timer.
    pub(crate) fn begin(&mut self) -> Result<()> {
        if let Some(k) = &self.st.broken {
            return Err(Error::Broken(k.clone()));
        }
        if self.d.session.is_busy() {
            self.d.session.abandon();
        }
        for h in std::mem::take(&mut self.st.current) {
            self.d.session.abandon_handle(h);
        }
        if let Some(e) = self.d.session.error() {
            // Reported once as what it is, then as Broken.
            let e: Error = e.clone().into();
            self.st.broken = Some(e.kind());
            return Err(e);
        }
        self.d.reset_timers();
        Ok(())
    }

    /// Records an error; transport failures break the client (the layer
    /// keeps its own sticky errors).
    pub(crate) fn fail(&mut self, e: Error) -> Error {
        if let Error::Io(_) | Error::Tls(_) | Error::Timeout(_) = &e {
            self.st.broken = Some(e.kind());
        }
        e
    }

    /// Queues a raw command (batches); abandoned if the call is dropped.
    pub(crate) fn enqueue(&mut self, cmd: Command) -> Result<Handle> {
        let h = self.d.session.enqueue(cmd)?;
        self.st.current.push(h);
        Ok(h)
    }

    /// A raw handle got its final event.
    pub(crate) fn settle(&mut self, h: Handle) {
        if let Some(i) = self.st.current.iter().position(|c| *c == h) {
            self.st.current.swap_remove(i);
        }
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
            Err(e) => Err(self.fail(e)),
        }
    }

    /// The run loop of an operation without a body.
    pub(crate) async fn run(&mut self) -> Result<Ran> {
        loop {
            match self.d.session.poll() {
                Ok(Action::Done(out)) => {
                    self.d.idle();
                    return Ok(Ran::Done(out));
                }
                Ok(Action::StartTls) => return Ok(Ran::StartTls),
                Ok(Action::Body(_) | Action::BodyStart(_)) => {}
                Ok(_) => self.pump().await?,
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn finish(&mut self) -> Result<Output> {
        match self.run().await? {
            Ran::Done(out) => Ok(out),
            Ran::StartTls => Err(internal("unexpected TLS upgrade")),
        }
    }

    async fn finish_status(&mut self) -> Result<Status> {
        match self.finish().await? {
            Output::Response(r) => r.into_status().ok_or_else(wrong_type),
            Output::Authenticated(s) => Ok(s),
            _ => Err(wrong_type()),
        }
    }

    /// Sends one command and returns its `+OK` response.
    async fn command(&mut self, cmd: Command) -> Result<Response> {
        self.begin()?;
        self.d.session.start_command(cmd)?;
        match self.finish().await? {
            Output::Response(r) => Ok(r),
            _ => Err(wrong_type()),
        }
    }

    async fn status(&mut self, cmd: Command) -> Result<Status> {
        self.command(cmd)
            .await?
            .into_status()
            .ok_or_else(wrong_type)
    }

    // ----- getters -----

    /// The server greeting (`getwelcome()`): the one received when
    /// connecting, kept after STLS for display (the core itself forgets it
    /// after STLS, so APOP never uses a timestamp seen in cleartext).
    ///
    /// Always there: a client is returned only once the greeting arrived.
    pub fn greeting(&self) -> &Greeting {
        pop3_adapter::greeting(&self.d.session)
    }

    /// The capabilities from the last CAPA, if any.
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.d.session.client().capabilities()
    }

    /// The session state.
    pub fn session_state(&self) -> SessionState {
        self.d.session.client().session_state()
    }

    /// Whether the session is protected by TLS.
    pub fn is_tls(&self) -> bool {
        self.d.session.client().is_tls()
    }

    /// Whether an earlier error left the client unusable.
    pub fn is_broken(&self) -> bool {
        self.st.broken.is_some() || self.d.session.is_broken()
    }

    /// The sans-IO core, for inspection.
    pub fn core(&self) -> &Core {
        self.d.session.client()
    }

    /// The session layer, for inspection.
    pub fn session(&self) -> &Session {
        &self.d.session
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
        self.d.session.set_allow_cleartext_credentials(yes);
    }

    /// Makes later logins also fetch `LIST` and `UIDL` together with the
    /// CAPA refresh (one round trip instead of three when the server
    /// announced `PIPELINING`; see
    /// [`Session::set_prefetch_listing`](pop3_proto::session::Session::set_prefetch_listing)).
    /// The next [`Client::list`] and [`Client::uidl`] are then answered
    /// without a round trip (a `-ERR` to UIDL is asked again). For a
    /// fetcher, which lists right after logging in.
    pub fn set_prefetch_listing(&mut self, yes: bool) {
        self.d.session.set_prefetch_listing(yes);
    }

    /// The current size of the adaptive read buffer
    /// ([`ReadBuffer`](pop3_adapter::ReadBuffer)): small while idle,
    /// growing during bodies and listings, small again once an operation
    /// ended (for monitoring memory per session).
    pub fn read_buffer_size(&self) -> usize {
        self.d.read_buffer().capacity()
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
        let max = self.d.session.client().config().max_in_flight.max(1);
        self.st.window = window.clamp(1, max);
    }

    /// The timeouts in force: `read` bounds every whole response (from
    /// the moment its command was written), `write` each wait for the
    /// transport to accept bytes; `connect` applies to the constructors.
    pub fn timeouts(&self) -> Timeouts {
        self.st.timeouts
    }

    /// Sets the timeouts (see [`Client::timeouts`]).
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.st.timeouts = timeouts;
        self.d.session.set_response_timeout(timeouts.read);
        self.d.set_write_timeout(timeouts.write);
    }

    // ----- AUTHORIZATION -----

    /// `USER name`.
    pub async fn user(&mut self, name: &str) -> Result<Status> {
        self.status(Command::user(name)?).await
    }

    /// `PASS password`.
    pub async fn pass(&mut self, password: &str) -> Result<Status> {
        self.status(Command::pass(password)?).await
    }

    /// `APOP name digest`, the digest computed from the greeting's
    /// timestamp; CAPA is read again afterwards (RFC 2449 §5).
    pub async fn apop(&mut self, name: &str, secret: &str) -> Result<Status> {
        self.begin()?;
        self.d.session.start_apop(name, secret)?;
        self.finish_status().await
    }

    /// `USER name` then `PASS password` as one login method: CAPA is read
    /// again afterwards (RFC 2449 §5), `UTF8` goes first when needed, and a
    /// `-ERR` to USER sends no password. Returns PASS's status. (`user` and
    /// `pass` are the single commands.)
    pub async fn user_pass(&mut self, name: &str, password: &str) -> Result<Status> {
        self.begin()?;
        self.d.session.start_user_pass(name, password)?;
        self.finish_status().await
    }

    /// `RPOP user` (RFC 1081, obsolete).
    pub async fn rpop(&mut self, name: &str) -> Result<Status> {
        self.status(Command::rpop(name)?).await
    }

    /// `AUTH` driven by a SASL mechanism (see [`pop3_proto::sasl`]); the
    /// core answers the challenges. Refused before anything is sent when
    /// the server's CAPA does not list the mechanism; CAPA is read again
    /// afterwards.
    pub async fn authenticate(&mut self, mechanism: Box<dyn Mechanism>) -> Result<Status> {
        self.begin()?;
        self.d.session.start_authenticate(mechanism)?;
        self.finish_status().await
    }

    /// Logs in with the best method both sides support (the session
    /// layer's plan, see [`pop3_proto::session`]): SCRAM-*-PLUS with
    /// channel binding, SCRAM, CRAM-MD5, PLAIN, LOGIN, then APOP (over
    /// TLS, falling back to USER/PASS when the APOP secret is refused),
    /// then USER/PASS; CAPA first when unknown and again afterwards.
    /// Returns the method used.
    ///
    /// ```no_run
    /// use pop3_tokio::{Client, ConnectOptions, TlsPolicy};
    ///
    /// # async fn run() -> pop3_tokio::Result<()> {
    /// let options = ConnectOptions::new().policy(TlsPolicy::Implicit); // POP3S
    /// let mut client = Client::connect("pop.example.com", 995, &options).await?;
    /// match client.login("alice", "secret").await {
    ///     Ok(method) => println!("logged in with {method:?}"),
    ///     Err(e) if e.is_auth_failure() => eprintln!("wrong user or password"),
    ///     Err(e) if e.is_transient() => eprintln!("try again later: {e}"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn login(&mut self, user: &str, password: &str) -> Result<LoginMethod> {
        self.begin()?;
        let mut random = [0u8; 32];
        random_bytes(&mut random)?;
        self.d.session.start_login(user, password, &random)?;
        match self.finish().await? {
            Output::LoggedIn(m) => {
                tracing::debug!("logged in with {m:?}");
                Ok(m)
            }
            _ => Err(wrong_type()),
        }
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
        self.d.session.start_command(cmd)?;
        loop {
            match self.d.session.poll() {
                Ok(Action::BodyStart(status)) => return Ok(Body::new(self, status)),
                Ok(Action::Done(_) | Action::Body(_) | Action::StartTls) => {
                    return Err(internal("body without +OK"))
                }
                Ok(_) => self.pump().await?,
                Err(e) => return Err(e.into()),
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
        self.command(Command::Capa)
            .await?
            .into_capa()
            .ok_or_else(wrong_type)
    }

    /// Runs CAPA when no capabilities are known and the server has not
    /// refused CAPA already (a `-ERR` is not an error here).
    pub(crate) async fn learn_capabilities(&mut self) -> Result<()> {
        if self.d.session.client().needs_capa() {
            match self.capa().await {
                Ok(_) | Err(Error::Server { .. }) => {}
                Err(e) => return Err(e),
            }
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
    pub async fn stls_with<T, F, Fut>(self, upgrade: F) -> Result<Client<T>>
    where
        T: AsyncRead + AsyncWrite + Unpin,
        F: FnOnce(S) -> Fut,
        Fut: Future<Output = io::Result<T>>,
    {
        self.stls_with_binding(|s| async move { upgrade(s).await.map(|t| (t, None)) })
            .await
    }

    /// [`Client::stls_with`], where `upgrade` also returns the
    /// connection's channel-binding data (which enables the SCRAM `-PLUS`
    /// mechanisms in [`Client::login`]).
    pub async fn stls_with_binding<T, F, Fut>(mut self, upgrade: F) -> Result<Client<T>>
    where
        T: AsyncRead + AsyncWrite + Unpin,
        F: FnOnce(S) -> Fut,
        Fut: Future<Output = io::Result<(T, Option<ChannelBinding>)>>,
    {
        self.begin()?;
        if self.is_tls() {
            return Err(Error::Usage(UsageError::AlreadyTls));
        }
        self.d.session.start_stls()?;
        match self.run().await? {
            Ran::StartTls => {}
            Ran::Done(_) => return Err(internal("STLS finished without a handshake")),
        }
        self.d.flush_all().await.map_err(|e| self.fail(e))?;
        let deadline = self.d.session.poll_timeout().map(|at| self.d.instant(at));
        let Client { d, st } = self;
        let (stream, parts) = d.into_parts();
        let r = match deadline {
            Some(when) => tokio::time::timeout_at(when, upgrade(stream)).await,
            None => Ok(upgrade(stream).await),
        };
        let (stream, binding) = match r {
            Err(_) => return Err(Error::timeout("TLS handshake")),
            Ok(r) => r.map_err(Error::Tls)?,
        };
        let mut client = Client {
            d: Driver::from_parts(stream, parts),
            st,
        };
        let now = client.d.now();
        client.d.session.tls_established(now, binding)?;
        client.finish().await?;
        Ok(client)
    }
}

fn wrong_type() -> Error {
    internal("unexpected response type")
}

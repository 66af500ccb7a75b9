//! [`Client`]: the blocking driver of the sans-IO session layer
//! ([`pop3_proto::session`]). It reads, writes, performs the TLS handshake
//! when the layer asks, and passes the clock in; what to send next is
//! decided by the layer.

use std::io::{self, Read, Write};
#[cfg(feature = "rustls")]
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use pop3_adapter::{log, ReadBuffer};
use pop3_adapter::{Error, ErrorKind, Timeouts};
use pop3_proto::sasl::Mechanism;
use pop3_proto::session::{Action, ChannelBinding, Output, Session, TlsPolicy};
use pop3_proto::{
    Capabilities, Command, Config, Event, Greeting, Handle, Language, ListEntry, MsgNum, Response,
    SessionState, Stat, Status, UidlEntry, UsageError,
};

pub use pop3_proto::login::LoginMethod;

pop3_adapter::tracing_logger!(
    /// Emits the shared log lines ([`pop3_adapter::log`]) under this crate's
    /// target, so `RUST_LOG=pop3_blocking=debug` selects them.
    Log,
    "pop3_blocking"
);

fn log_event(ev: &Event<'_>) {
    log::event(&Log, ev);
}

/// The largest pipeline window (in commands) the blocking adapter allows.
///
/// Why pipelining needs care here: this adapter never reads and writes at
/// the same time. It writes every pending command, then reads. A POP3
/// server reads a command, writes the whole reply, then reads the next
/// command. If we kept writing while the server was blocked writing a
/// reply we do not read, both sides would block forever. That cannot
/// happen as long as all the command bytes we have outstanding fit in the
/// kernel buffers between us (our send buffer plus the server's receive
/// buffer): then our `write_all` always completes without the server
/// reading, and we get to the `read`. The batches bound exactly that: the
/// command bytes in flight never exceed
/// [`MAX_BYTES_IN_FLIGHT`](pop3_proto::session::batch::MAX_BYTES_IN_FLIGHT)
/// (4 KiB, ~400 `RETR`s; the smallest Linux send buffer is 4 KiB, the
/// default 16 KiB), whatever this count. Replies need no bound: we always
/// read them all before writing again. This cap protects the server.
pub const MAX_WINDOW: usize = 256;

/// The default pipeline window (the cap the batch window grows to; it
/// starts at [`INITIAL_WINDOW`](pop3_proto::session::batch::INITIAL_WINDOW)
/// and doubles every round trip).
pub const DEFAULT_WINDOW: usize = 200;

/// What a driver callback wants next.
pub(crate) enum Flow {
    Continue,
    Done,
}

/// How [`Client::run`] stopped.
enum Ran {
    Done(Output),
    StartTls,
}

/// Sets the transport's read timeout (TCP constructors install it, so a
/// read never outlives the layer's deadline).
type SetReadTimeout<S> = fn(&S, Duration) -> io::Result<()>;

/// A blocking POP3 client over any `Read + Write` transport.
///
/// Convenience constructors ([`Client::connect`] and friends) open TCP
/// with timeouts, apply a [`TlsPolicy`] and return a
/// [`TcpClient`](crate::TcpClient). [`Client::new`] wraps any stream you
/// bring (a proxy, a Unix socket, an in-memory pipe).
///
/// Every method sends one command and waits for its reply, except the
/// batch methods ([`Client::retr_each`], [`Client::top_each`],
/// [`Client::batch`]), which pipeline. A server `-ERR` is
/// [`Error::Server`] and the session continues; I/O errors, timeouts and
/// protocol errors leave the session unusable.
pub struct Client<S> {
    pub(crate) stream: S,
    pub(crate) session: Session,
    epoch: std::time::Instant,
    /// Small while idle, growing for bodies and listings.
    rbuf: ReadBuffer,
    wbuf: Vec<u8>,
    broken: Option<ErrorKind>,
    pub(crate) window: usize,
    timeouts: Timeouts,
    set_read_timeout: Option<SetReadTimeout<S>>,
    /// The read timeout last set on the transport.
    armed: Option<Duration>,
    /// TLS parameters kept for a later `stls()`.
    #[cfg(feature = "rustls")]
    pub(crate) tls: Option<pop3_adapter::TlsSetup>,
}

impl<S> std::fmt::Debug for Client<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session", &self.session)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl<S: Read + Write> Client<S> {
    /// Wraps a connected stream that is **not** protected (no TLS) and reads
    /// the greeting. Credentials are refused on it unless
    /// [`Client::set_allow_cleartext_credentials`] is called; upgrade it with
    /// [`Client::stls_with`], or wrap it in
    /// [`MaybeTlsStream`](crate::MaybeTlsStream) to use [`Client::stls`].
    pub fn new(stream: S) -> Result<Client<S>, Error> {
        Client::with_config(stream, false, Config::default())
    }

    /// Wraps a stream that is already protected (TLS done by the caller, or
    /// a transport trusted like one, such as a local Unix socket) and reads
    /// the greeting. STLS is refused on it; credentials are allowed.
    pub fn new_secure(stream: S) -> Result<Client<S>, Error> {
        Client::with_config(stream, true, Config::default())
    }

    /// Wraps a stream with a core configuration and reads the greeting.
    /// `secure`: the stream is protected (see [`Client::new_secure`]).
    pub fn with_config(stream: S, secure: bool, config: Config) -> Result<Client<S>, Error> {
        let policy = if secure {
            TlsPolicy::Implicit
        } else {
            TlsPolicy::None
        };
        let mut client = Client::unstarted(stream, policy, config, Timeouts::default());
        client.session.start_greeting()?;
        client.run_to_end(None)?;
        Ok(client)
    }

    pub(crate) fn unstarted(
        stream: S,
        policy: TlsPolicy,
        mut config: Config,
        timeouts: Timeouts,
    ) -> Client<S> {
        config.max_in_flight = config.max_in_flight.clamp(1, MAX_WINDOW);
        let window = config.max_in_flight.min(DEFAULT_WINDOW);

        let epoch = std::time::Instant::now();
        let session = pop3_adapter::new_session(policy, config, timeouts, log_event);
        Client {
            stream,
            session,
            epoch,
            rbuf: ReadBuffer::new(),
            wbuf: Vec::new(),
            broken: None,
            window,
            timeouts,
            set_read_timeout: None,
            armed: None,
            #[cfg(feature = "rustls")]
            tls: None,
        }
    }

    // ----- getters -----

    /// The server greeting (`getwelcome()`): the one received when
    /// connecting, kept after STLS for display (the core itself forgets it
    /// after STLS, so APOP never uses a timestamp seen in cleartext).
    ///
    /// Always there: a client is returned only once the greeting arrived.
    pub fn greeting(&self) -> &Greeting {
        pop3_adapter::greeting(&self.session)
    }

    /// The capabilities from the last CAPA (forgotten after STLS).
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.session.client().capabilities()
    }

    /// The session state.
    pub fn session_state(&self) -> SessionState {
        self.session.client().session_state()
    }

    /// Whether the session is protected by TLS (implicit, after STLS, or a
    /// stream declared secure).
    pub fn is_tls(&self) -> bool {
        self.session.client().is_tls()
    }

    /// Whether an earlier I/O, TLS, protocol or timeout error left the
    /// client unusable (every later call fails).
    pub fn is_broken(&self) -> bool {
        self.broken.is_some() || self.session.is_broken()
    }

    /// The sans-IO core, for inspection.
    pub fn core(&self) -> &pop3_proto::Client {
        self.session.client()
    }

    /// The session layer, for inspection.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The transport, mutably (for example to change socket timeouts).
    /// Writing to it directly desynchronises the session.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Gives the transport back.
    pub fn into_inner(self) -> S {
        self.stream
    }

    /// Allows (or forbids, the default) sending credentials on a connection
    /// without TLS.
    pub fn set_allow_cleartext_credentials(&mut self, yes: bool) {
        self.session.set_allow_cleartext_credentials(yes);
    }

    /// Makes later logins also fetch `LIST` and `UIDL` together with the
    /// CAPA refresh (one round trip instead of three when the server
    /// announced `PIPELINING`; see
    /// [`Session::set_prefetch_listing`](pop3_proto::session::Session::set_prefetch_listing)).
    /// The next [`Client::list`] and [`Client::uidl`] are then answered
    /// without a round trip (a `-ERR` to UIDL is asked again). For a
    /// fetcher, which lists right after logging in.
    pub fn set_prefetch_listing(&mut self, yes: bool) {
        self.session.set_prefetch_listing(yes);
    }

    /// The current size of the adaptive read buffer
    /// ([`ReadBuffer`](pop3_adapter::ReadBuffer)): small while idle,
    /// growing during bodies and listings, small again once an operation
    /// ended (for monitoring memory per session).
    pub fn read_buffer_size(&self) -> usize {
        self.rbuf.capacity()
    }

    /// The pipeline window of the batch methods.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Sets the pipeline window of the batch methods (clamped to 1 ..=
    /// [`MAX_WINDOW`] and the core's `max_in_flight`). Pipelining happens
    /// only when the server advertised `PIPELINING` (or the core config
    /// forces it); otherwise batches run one command at a time.
    pub fn set_window(&mut self, window: usize) {
        let max = self.session.client().config().max_in_flight.max(1);
        self.window = window.clamp(1, max);
    }

    /// The timeouts: `read` bounds every whole response (status line,
    /// listing, body) from the moment its command was written.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Changes the timeouts of later waits (`read`: the whole-response
    /// deadline; `write`: each write, where the transport supports it).
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.timeouts = timeouts;
        self.session.set_response_timeout(timeouts.read);
    }

    // ----- the driver -----

    fn now(&self) -> pop3_proto::session::Instant {
        pop3_proto::session::Instant::from_epoch(self.epoch.elapsed())
    }

    pub(crate) fn check_broken(&self) -> Result<(), Error> {
        match &self.broken {
            Some(k) => Err(Error::Broken(k.clone())),
            None => Ok(()),
        }
    }

    fn fail_io(&mut self, e: io::Error) -> Error {
        let e = Error::from_io(e);
        self.broken = Some(e.kind());
        e
    }

    /// Writes everything the layer wants to send.
    pub(crate) fn flush(&mut self) -> Result<(), Error> {
        self.wbuf.clear();
        let mut sensitive = false;
        let now = self.now();
        while let Some(t) = self.session.poll_transmit(now, &mut self.wbuf) {
            let start = self.wbuf.len() - t.len;
            log::sent(&Log, &self.wbuf[start..], &t);
            sensitive |= t.sensitive;
        }
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let result = self
            .stream
            .write_all(&self.wbuf)
            .and_then(|()| self.stream.flush());
        if sensitive {
            // Do not leave a password lying around in the buffer.
            self.wbuf.fill(0);
        }
        self.wbuf.clear();
        result.map_err(|e| self.fail_io(e))
    }

    /// Bounds the next read by the layer's deadline, where the transport
    /// lets us.
    ///
    /// The socket option is changed only when the one in force would let a
    /// read end more than an eighth of the time left after the deadline
    /// (a read that returns late is still a timeout: the layer checks
    /// `now` on every input), so a healthy session makes no system call
    /// per read and a trickling one a logarithmic number.
    fn arm_read_timeout(&mut self) -> Result<(), Error> {
        if let (Some(set), Some(deadline)) = (self.set_read_timeout, self.session.poll_timeout()) {
            let left = deadline
                .saturating_duration_since(self.now())
                .max(Duration::from_millis(1));
            let stale = !matches!(self.armed, Some(armed) if armed <= left + left / 8);
            if stale {
                set(&self.stream, left).map_err(|e| self.fail_io(e))?;
                self.armed = Some(left);
            }
        }
        Ok(())
    }

    /// One read from the transport into the layer.
    fn fill(&mut self) -> Result<(), Error> {
        self.arm_read_timeout()?;
        loop {
            let r = self.stream.read(self.rbuf.space());
            let now = self.now();
            match r {
                Ok(0) => {
                    log::end_of_stream(&Log, true);
                    self.session.handle_eof(now);
                    return Ok(());
                }
                Ok(n) => {
                    let data = self.rbuf.data(n);
                    log::received(&Log, data);
                    self.session.handle_input(now, data);
                    self.rbuf.filled(n);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // rustls reports a TCP close without close_notify this way.
                // POP3 frames its own replies, so the core decides whether
                // the end came too early (a truncated body is an error).
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    log::end_of_stream(&Log, false);
                    self.session.handle_eof(now);
                    return Ok(());
                }
                Err(e) if ErrorKind::of_io(&e) == ErrorKind::Timeout => {
                    // The layer's deadline (typed error from the next
                    // poll), or the transport's own timeout.
                    self.session.handle_timeout(now);
                    if self.session.is_broken() {
                        return Ok(());
                    }
                    return Err(self.fail_io(e));
                }
                Err(e) => return Err(self.fail_io(e)),
            }
        }
    }

    /// The run loop of an operation: write, poll, read; body chunks go to
    /// `sink` (a failing sink does not stop the reading: the rest of the
    /// body is discarded so the session stays in sync, then
    /// [`Error::Sink`]).
    fn run(&mut self, mut sink: Option<&mut dyn Write>) -> Result<Ran, Error> {
        self.check_broken()?;
        let mut sink_error: Option<io::Error> = None;
        loop {
            self.flush()?;
            match self.session.poll() {
                Ok(Action::Done(out)) => {
                    self.idle();
                    if let Some(e) = sink_error {
                        return Err(Error::Sink(e));
                    }
                    return Ok(Ran::Done(out));
                }
                Ok(Action::Body(data)) => {
                    if let (Some(w), None) = (sink.as_deref_mut(), &sink_error) {
                        if let Err(e) = w.write_all(data) {
                            sink_error = Some(e);
                        }
                    }
                }
                Ok(Action::StartTls) => return Ok(Ran::StartTls),
                Ok(Action::BodyStart(_)) => {}
                Ok(_) => {
                    if self.session.wants_write() {
                        continue;
                    }
                    self.fill()?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// An operation ended: the read buffer goes back to its idle size if
    /// no reply is expected.
    pub(crate) fn idle(&mut self) {
        if !self.session.client().wants_read() {
            self.rbuf.idle();
        }
    }

    /// [`Client::run`] for an operation that involves no TLS upgrade.
    fn run_to_end(&mut self, sink: Option<&mut dyn Write>) -> Result<Output, Error> {
        match self.run(sink)? {
            Ran::Done(out) => Ok(out),
            Ran::StartTls => Err(Error::Usage(UsageError::NoStlsPending)),
        }
    }

    /// The raw event loop of the batches: write what the machine wants to
    /// send, hand every event to `on_event` until it returns
    /// [`Flow::Done`], read when the machine needs input.
    pub(crate) fn drive(
        &mut self,
        mut on_event: impl FnMut(Event<'_>) -> Result<Flow, Error>,
    ) -> Result<(), Error> {
        self.check_broken()?;
        loop {
            self.flush()?;
            while let Some(ev) = self.session.poll_event()? {
                if let Flow::Done = on_event(ev)? {
                    return Ok(());
                }
            }
            if self.session.wants_write() {
                continue;
            }
            if !self.session.client().wants_read() {
                // Nothing to send and no reply due: waiting would hang.
                return Err(Error::Usage(match self.session_state() {
                    SessionState::Closed => UsageError::Closed,
                    _ => UsageError::NothingToWaitFor,
                }));
            }
            self.fill()?;
        }
    }

    pub(crate) fn enqueue(&mut self, cmd: Command) -> Result<Handle, Error> {
        self.check_broken()?;
        Ok(self.session.enqueue(cmd)?)
    }

    fn exec(&mut self, cmd: Command) -> Result<Response, Error> {
        self.check_broken()?;
        self.session.start_command(cmd)?;
        match self.run_to_end(None)? {
            Output::Response(r) => Ok(r),
            _ => Err(unexpected()),
        }
    }

    fn exec_status(&mut self, cmd: Command) -> Result<Status, Error> {
        self.exec(cmd)?.into_status().ok_or_else(unexpected)
    }

    fn exec_body(&mut self, cmd: Command, w: &mut dyn Write) -> Result<u64, Error> {
        self.check_broken()?;
        self.session.start_command(cmd)?;
        match self.run_to_end(Some(&mut *w))? {
            Output::Body { octets } => {
                w.flush().map_err(Error::Sink)?;
                Ok(octets)
            }
            _ => Err(unexpected()),
        }
    }

    fn authenticated(&mut self) -> Result<Status, Error> {
        match self.run_to_end(None)? {
            Output::Authenticated(s) => Ok(s),
            _ => Err(unexpected()),
        }
    }

    // ----- poplib's methods -----

    /// `USER name`. Refused without TLS unless cleartext credentials are
    /// allowed.
    pub fn user(&mut self, name: &str) -> Result<Status, Error> {
        self.exec_status(Command::user(name)?)
    }

    /// `PASS password`. Refused without TLS unless cleartext credentials
    /// are allowed.
    pub fn pass(&mut self, password: &str) -> Result<Status, Error> {
        self.exec_status(Command::pass(password)?)
    }

    /// `APOP name digest`, the digest made from the greeting's timestamp
    /// (a greeting received in cleartext before STLS is not used); CAPA is
    /// read again afterwards (RFC 2449 §5).
    pub fn apop(&mut self, user: &str, secret: &str) -> Result<Status, Error> {
        self.check_broken()?;
        self.session.start_apop(user, secret)?;
        self.authenticated()
    }

    /// `USER name` then `PASS password` as one login method: CAPA is read
    /// again afterwards (RFC 2449 §5), `UTF8` goes first when needed, and a
    /// `-ERR` to USER sends no password. Returns PASS's status. (`user` and
    /// `pass` are the single commands.)
    pub fn user_pass(&mut self, user: &str, password: &str) -> Result<Status, Error> {
        self.check_broken()?;
        self.session.start_user_pass(user, password)?;
        self.authenticated()
    }

    /// `RPOP user` (RFC 1081, obsolete).
    pub fn rpop(&mut self, user: &str) -> Result<Status, Error> {
        self.exec_status(Command::rpop(user)?)
    }

    /// `AUTH` driven by a SASL mechanism (see [`pop3_proto::sasl`]); the
    /// core answers the challenges. Refused before anything is sent when
    /// the server's CAPA does not list the mechanism; CAPA is read again
    /// afterwards.
    pub fn authenticate(&mut self, mechanism: Box<dyn Mechanism>) -> Result<Status, Error> {
        self.check_broken()?;
        self.session.start_authenticate(mechanism)?;
        self.authenticated()
    }

    /// Logs in with the best method the server offers (the session
    /// layer's plan, see [`pop3_proto::session`]): SASL (SCRAM-*-PLUS
    /// with channel binding, SCRAM-SHA-256, SCRAM-SHA-1, CRAM-MD5, PLAIN,
    /// LOGIN), then APOP (over TLS only, falling back to USER/PASS if the
    /// APOP secret is refused), then USER/PASS; CAPA again afterwards.
    /// Without TLS, refuses before sending anything unless cleartext
    /// credentials are allowed.
    ///
    /// ```no_run
    /// use pop3_blocking::{Client, ConnectOptions};
    ///
    /// # fn run() -> Result<(), pop3_blocking::Error> {
    /// // STLS before any credential (the default policy).
    /// let mut client = Client::connect("pop.example.com", 110, &ConnectOptions::new())?;
    /// match client.login("alice", "secret") {
    ///     Ok(method) => println!("logged in with {method:?}"),
    ///     Err(e) if e.is_auth_failure() => eprintln!("wrong user or password"),
    ///     Err(e) if e.is_transient() => eprintln!("try again later: {e}"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn login(&mut self, user: &str, password: &str) -> Result<LoginMethod, Error> {
        self.check_broken()?;
        let mut nonce = [0u8; 32];
        getrandom::getrandom(&mut nonce).map_err(|e| Error::Io(io::Error::other(e.to_string())))?;
        self.session.start_login(user, password, &nonce)?;
        match self.run_to_end(None)? {
            Output::LoggedIn(m) => {
                tracing::debug!("logged in with {m:?}");
                Ok(m)
            }
            _ => Err(unexpected()),
        }
    }

    /// `STAT`.
    pub fn stat(&mut self) -> Result<Stat, Error> {
        self.exec(Command::Stat)?.into_stat().ok_or_else(unexpected)
    }

    /// `LIST`: every message's size.
    pub fn list(&mut self) -> Result<Vec<ListEntry>, Error> {
        self.exec(Command::List(None))?
            .into_list()
            .ok_or_else(unexpected)
    }

    /// `LIST n`.
    pub fn list_one(&mut self, n: u32) -> Result<ListEntry, Error> {
        self.exec(Command::List(Some(msg(n)?)))?
            .into_list_one()
            .ok_or_else(unexpected)
    }

    /// `UIDL`: every message's unique id.
    pub fn uidl(&mut self) -> Result<Vec<UidlEntry>, Error> {
        self.exec(Command::Uidl(None))?
            .into_uidl()
            .ok_or_else(unexpected)
    }

    /// `UIDL n`.
    pub fn uidl_one(&mut self, n: u32) -> Result<UidlEntry, Error> {
        self.exec(Command::Uidl(Some(msg(n)?)))?
            .into_uidl_one()
            .ok_or_else(unexpected)
    }

    /// `RETR n`, streaming the (dot-unstuffed) message into `w` as it
    /// arrives; returns the number of bytes written. Memory stays flat
    /// for any message size. A connection that ends mid-message is
    /// [`Error::Protocol`] with [`ProtocolError::TruncatedBody`](pop3_proto::ProtocolError::TruncatedBody)
    /// (kind `Truncated`), never a short success.
    pub fn retr_to(&mut self, n: u32, w: &mut impl Write) -> Result<u64, Error> {
        self.exec_body(Command::Retr(msg(n)?), w)
    }

    /// `RETR n` into memory.
    pub fn retr(&mut self, n: u32) -> Result<Vec<u8>, Error> {
        let mut v = Vec::new();
        self.retr_to(n, &mut v)?;
        Ok(v)
    }

    /// `RETR n` as a [`Read`]er of the (dot-unstuffed) message: the body
    /// is read from the server as the reader is read (constant memory).
    /// The reader returns an error (kind `Truncated` or `Timeout` inside
    /// an `io::Error`) rather than a short end when the body is cut.
    /// Dropping it early discards the rest of the body on the next call.
    pub fn retr_body(&mut self, n: u32) -> Result<Body<'_, S>, Error> {
        self.body(Command::Retr(msg(n)?))
    }

    /// `TOP n lines` as a [`Read`]er (see [`Client::retr_body`]).
    pub fn top_body(&mut self, n: u32, lines: u32) -> Result<Body<'_, S>, Error> {
        self.body(Command::Top(msg(n)?, lines))
    }

    fn body(&mut self, cmd: Command) -> Result<Body<'_, S>, Error> {
        self.check_broken()?;
        self.session.start_command(cmd)?;
        Ok(Body {
            client: self,
            pending: Vec::new(),
            at: 0,
            done: false,
        })
    }

    /// `TOP n lines`, streaming headers plus `lines` body lines into `w`.
    pub fn top_to(&mut self, n: u32, lines: u32, w: &mut impl Write) -> Result<u64, Error> {
        self.exec_body(Command::Top(msg(n)?, lines), w)
    }

    /// `TOP n lines` into memory.
    pub fn top(&mut self, n: u32, lines: u32) -> Result<Vec<u8>, Error> {
        let mut v = Vec::new();
        self.top_to(n, lines, &mut v)?;
        Ok(v)
    }

    /// `DELE n` (only marks; QUIT commits).
    pub fn dele(&mut self, n: u32) -> Result<Status, Error> {
        self.exec_status(Command::Dele(msg(n)?))
    }

    /// `RSET`: unmarks deleted messages.
    pub fn rset(&mut self) -> Result<Status, Error> {
        self.exec_status(Command::Rset)
    }

    /// `NOOP`.
    pub fn noop(&mut self) -> Result<Status, Error> {
        self.exec_status(Command::Noop)
    }

    /// `QUIT`: ends the session. In TRANSACTION, `Ok` means the server
    /// committed the deletions (UPDATE succeeded); `Err(Error::Server)`
    /// means it did not. The client is closed afterwards either way.
    pub fn quit(&mut self) -> Result<Status, Error> {
        let r = self.exec_status(Command::Quit);
        // Drain the Closed event so later calls report Closed at once.
        while let Ok(Some(_)) = self.session.poll_event() {}
        r
    }

    /// `CAPA`: the server's capabilities (also remembered: see
    /// [`Client::capabilities`]).
    pub fn capa(&mut self) -> Result<Capabilities, Error> {
        self.exec(Command::Capa)?.into_capa().ok_or_else(unexpected)
    }

    /// Runs CAPA once if no capabilities are known (they decide pipelining
    /// and the login method); a server without CAPA is asked only once.
    pub(crate) fn ensure_capabilities(&mut self) -> Result<(), Error> {
        if self.session.client().needs_capa() {
            match self.capa() {
                Ok(_) | Err(Error::Server { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// `UTF8` (RFC 6856).
    pub fn utf8(&mut self) -> Result<Status, Error> {
        self.exec_status(Command::Utf8)
    }

    /// `LANG tag` (RFC 6856): switches the language of server texts (`*`
    /// for the client's default).
    pub fn lang(&mut self, tag: &str) -> Result<Status, Error> {
        self.exec_status(Command::lang(Some(tag))?)
    }

    /// `LANG` without argument: the languages the server offers.
    pub fn languages(&mut self) -> Result<Vec<Language>, Error> {
        self.exec(Command::lang(None)?)?
            .into_languages()
            .ok_or_else(unexpected)
    }

    /// Sends `STLS` and, on `+OK`, hands the transport to `upgrade` (any
    /// TLS library: a closure that performs the handshake and returns the
    /// encrypted stream). Bytes the server sent after its `+OK` and before
    /// the handshake are refused as a response injection.
    pub fn stls_with<T, F>(self, upgrade: F) -> Result<Client<T>, Error>
    where
        T: Read + Write,
        F: FnOnce(S) -> io::Result<T>,
    {
        self.stls_with_binding(|s| upgrade(s).map(|t| (t, None)))
    }

    /// [`Client::stls_with`], where `upgrade` also returns the
    /// connection's channel-binding data (which enables the SCRAM `-PLUS`
    /// mechanisms in [`Client::login`]).
    pub fn stls_with_binding<T, F>(mut self, upgrade: F) -> Result<Client<T>, Error>
    where
        T: Read + Write,
        F: FnOnce(S) -> io::Result<(T, Option<ChannelBinding>)>,
    {
        self.stls_command()?;
        let (stream, binding) = upgrade(self.stream).map_err(Error::Tls)?;
        let mut client = Client {
            stream,
            session: self.session,
            epoch: self.epoch,
            rbuf: self.rbuf,
            wbuf: self.wbuf,
            broken: self.broken,
            window: self.window,
            timeouts: self.timeouts,
            set_read_timeout: None,
            armed: None,
            #[cfg(feature = "rustls")]
            tls: self.tls,
        };
        let now = client.now();
        client.session.tls_established(now, binding)?;
        client.run_to_end(None)?;
        Ok(client)
    }

    /// Sends STLS and waits for `+OK` (the layer checks that nothing
    /// followed it); the transport must be upgraded next.
    pub(crate) fn stls_command(&mut self) -> Result<(), Error> {
        self.check_broken()?;
        if self.session.client().is_tls() {
            return Err(Error::Usage(UsageError::AlreadyTls));
        }
        self.session.start_stls()?;
        match self.run(None)? {
            Ran::StartTls => Ok(()),
            Ran::Done(_) => Err(unexpected()),
        }
    }
}

/// A RETR/TOP body being read ([`Client::retr_body`]): `Read` pulls it
/// from the server. Dropping it before the end abandons the rest (it is
/// read and discarded by the next call).
pub struct Body<'a, S: Read + Write> {
    client: &'a mut Client<S>,
    pending: Vec<u8>,
    at: usize,
    done: bool,
}

impl<S: Read + Write> std::fmt::Debug for Body<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body").field("done", &self.done).finish()
    }
}

impl<S: Read + Write> Read for Body<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.at < self.pending.len() {
                let n = buf.len().min(self.pending.len() - self.at);
                buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
                self.at += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            self.pending.clear();
            self.at = 0;
            let c = &mut *self.client;
            c.flush()?;
            match c.session.poll() {
                Ok(Action::Body(data)) => self.pending.extend_from_slice(data),
                Ok(Action::Done(_)) => {
                    self.done = true;
                    c.idle();
                }
                Ok(Action::StartTls) => return Err(unexpected().into()),
                Ok(Action::BodyStart(_)) => {}
                Ok(_) => {
                    if !c.session.wants_write() {
                        c.fill()?;
                    }
                }
                Err(e) => return Err(Error::from(e).into()),
            }
        }
    }
}

impl<S: Read + Write> Drop for Body<'_, S> {
    fn drop(&mut self) {
        if !self.done {
            self.client.session.abandon();
        }
    }
}

fn msg(n: u32) -> Result<MsgNum, Error> {
    Ok(MsgNum::try_from(n)?)
}

/// The layer answered with an output it never uses for this operation.
fn unexpected() -> Error {
    Error::Protocol(pop3_proto::ProtocolError::UnsolicitedResponse {
        line: String::from("unexpected response type"),
    })
}

// ----- TCP and rustls constructors -----

#[cfg(feature = "rustls")]
mod tcp {
    use super::*;
    use crate::MaybeTlsStream;
    use pop3_adapter::{ConnectOptions, TlsOptions, TlsSetup};

    /// Opens TCP to `host:port`, trying each resolved address with the
    /// connect timeout, and sets the read/write timeouts and `TCP_NODELAY`.
    pub(crate) fn connect_tcp(host: &str, port: u16, t: &Timeouts) -> Result<TcpStream, Error> {
        let addrs = (host, port).to_socket_addrs().map_err(Error::Io)?;
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, t.connect) {
                Ok(s) => {
                    s.set_read_timeout(Some(t.read)).map_err(Error::Io)?;
                    s.set_write_timeout(Some(t.write)).map_err(Error::Io)?;
                    // Commands are small and we wait for their replies.
                    s.set_nodelay(true).map_err(Error::Io)?;
                    return Ok(s);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(Error::from_io(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "host name resolved to no address")
        })))
    }

    fn tcp_read_timeout(s: &MaybeTlsStream<TcpStream>, d: Duration) -> io::Result<()> {
        match s.get_ref() {
            Some(tcp) => tcp.set_read_timeout(Some(d)),
            None => Ok(()),
        }
    }

    impl Client<MaybeTlsStream<TcpStream>> {
        /// Connects over TCP and applies `options.policy`:
        ///
        /// * `Implicit`: TLS handshake first (POP3S), then greeting, CAPA;
        /// * `Required`: greeting, CAPA, STLS (an error before any
        ///   credential if the server does not offer it or refuses it),
        ///   CAPA again;
        /// * `Opportunistic`: the same, staying in cleartext when STLS is
        ///   not offered or refused;
        /// * `None`: greeting, CAPA.
        ///
        /// `options.timeouts.read` bounds every whole response (greeting,
        /// status line, listing, body), not each read.
        pub fn connect(host: &str, port: u16, options: &ConnectOptions) -> Result<Self, Error> {
            let tcp = connect_tcp(host, port, &options.timeouts)?;
            let mut c = Client::establish_with(tcp, host, options)?;
            c.set_read_timeout = Some(tcp_read_timeout);
            c.connect_sequence()?;
            Ok(c)
        }

        /// Implicit TLS (POP3S) with default options; `port` is usually 995.
        pub fn connect_tls(host: &str, port: u16) -> Result<Self, Error> {
            Client::connect(
                host,
                port,
                &ConnectOptions::new().policy(TlsPolicy::Implicit),
            )
        }

        /// Plain TCP upgraded with STLS ([`TlsPolicy::Required`]) with
        /// default options; `port` is usually 110.
        pub fn connect_stls(host: &str, port: u16) -> Result<Self, Error> {
            Client::connect(host, port, &ConnectOptions::new())
        }

        /// Plain TCP without TLS ([`TlsPolicy::None`]). Credentials are
        /// refused unless `allow_cleartext_credentials` (for example only
        /// on a trusted network or in tests).
        pub fn connect_plain(
            host: &str,
            port: u16,
            allow_cleartext_credentials: bool,
        ) -> Result<Self, Error> {
            Client::connect(
                host,
                port,
                &ConnectOptions::new()
                    .policy(TlsPolicy::None)
                    .allow_cleartext_credentials(allow_cleartext_credentials),
            )
        }
    }

    impl<S: Read + Write> Client<MaybeTlsStream<S>> {
        /// Applies `options` (policy, TLS, core config, timeouts) over an
        /// already connected transport `stream`; `host` is the name the
        /// certificate must match (unless `options.tls` overrides it).
        pub fn establish(stream: S, host: &str, options: &ConnectOptions) -> Result<Self, Error> {
            let mut c = Client::establish_with(stream, host, options)?;
            c.connect_sequence()?;
            Ok(c)
        }

        fn establish_with(stream: S, host: &str, options: &ConnectOptions) -> Result<Self, Error> {
            let setup = options.tls_setup(host)?;
            let implicit = options.policy == TlsPolicy::Implicit;
            let stream = match (&setup, implicit) {
                (Some(s), true) => MaybeTlsStream::tls(stream, s.config.clone(), s.name.clone())
                    .map_err(Error::from_handshake)?,
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
                client.session.set_channel_binding(b);
            }
            client.tls = setup;
            Ok(client)
        }

        /// The layer's connect sequence; this driver performs the
        /// handshake when asked.
        fn connect_sequence(&mut self) -> Result<(), Error> {
            self.session.start_connect()?;
            loop {
                match self.run(None)? {
                    Ran::Done(_) => return Ok(()),
                    Ran::StartTls => self.handshake()?,
                }
            }
        }

        fn handshake(&mut self) -> Result<(), Error> {
            let Some(setup) = self.tls.clone() else {
                return Err(pop3_adapter::TlsSetup::missing().into());
            };
            self.arm_read_timeout()?;
            if let Err(e) = self.stream.upgrade(setup.config, setup.name) {
                let e = Error::from_handshake(e);
                self.broken = Some(e.kind());
                return Err(e);
            }
            let binding = self
                .stream
                .tls_connection()
                .and_then(pop3_adapter::channel_binding);
            let now = self.now();
            self.session.tls_established(now, binding)?;
            Ok(())
        }

        /// `STLS`: upgrades this session to TLS in place with the TLS
        /// options given when connecting (or [`Client::stls_with_options`]).
        /// Capabilities and the greeting's APOP timestamp learned in
        /// cleartext are forgotten (RFC 2595); call [`Client::capa`] again.
        pub fn stls(&mut self) -> Result<Status, Error> {
            if self.tls.is_none() {
                return Err(TlsSetup::missing().into());
            }
            self.stls_command()?;
            self.handshake()?;
            self.run_to_end(None)?.into_status().ok_or_else(unexpected)
        }

        /// `STLS` with explicit TLS options; `host` is the name the server
        /// certificate must match (unless `tls` overrides it).
        pub fn stls_with_options(&mut self, tls: &TlsOptions, host: &str) -> Result<Status, Error> {
            self.tls = Some(TlsSetup::new(tls, host)?);
            self.stls()
        }
    }
}

#[cfg(feature = "rustls")]
trait IntoStatus {
    fn into_status(self) -> Option<Status>;
}

#[cfg(feature = "rustls")]
impl IntoStatus for Output {
    fn into_status(self) -> Option<Status> {
        match self {
            Output::Response(r) => r.into_status(),
            _ => None,
        }
    }
}

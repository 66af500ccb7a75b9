//! [`Client`]: the blocking driver around the sans-IO core.

use std::io::{self, Read, Write};
#[cfg(feature = "rustls")]
use std::net::{TcpStream, ToSocketAddrs};

use pop3_proto::login::{self, LoginMethod};
use pop3_proto::sasl::Mechanism;
use pop3_proto::{
    Capabilities, Command, Config, Event, Greeting, Handle, Language, ListEntry, MsgNum, Response,
    SessionState, Stat, Status, UidlEntry, UsageError,
};
use pop3_tls::log;
use pop3_tls::{Error, ErrorKind, SecurityError};

pop3_tls::tracing_logger!(
    /// Emits the shared log lines ([`pop3_tls::log`]) under this crate's
    /// target, so `RUST_LOG=pop3_blocking=debug` selects them.
    Log,
    "pop3_blocking"
);

/// Size of the read buffer: one `read` call fills at most this much, and
/// the core's buffer holds at most this plus one partial line.
const READ_BUF: usize = 64 * 1024;

/// The largest pipeline window the blocking adapter allows (commands sent
/// and not yet answered).
///
/// Why a bound is needed: this adapter never reads and writes at the same
/// time. It writes every pending command, then reads. A POP3 server reads
/// a command, writes the whole reply, then reads the next command. If we
/// kept writing while the server was blocked writing a reply we do not
/// read, both sides would block forever. That cannot happen as long as
/// all the command bytes we have outstanding fit in the kernel buffers
/// between us (our send buffer plus the server's receive buffer): then
/// our `write_all` always completes without the server reading, and we
/// get to the `read`. Commands are at most 255 octets (RFC 2449), usually
/// about 12 (`RETR 1234\r\n`), plus TLS record overhead; 64 of them are
/// at most 16 KiB (typically under 2 KiB), far below the smallest TCP
/// buffers of any current OS. Replies need no bound: we always read them
/// all before writing again.
pub const MAX_WINDOW: usize = 64;

/// The default pipeline window for batch operations.
pub const DEFAULT_WINDOW: usize = 32;

/// What a driver callback wants next.
pub(crate) enum Flow {
    Continue,
    Done,
}

/// A blocking POP3 client over any `Read + Write` transport.
///
/// Convenience constructors ([`Client::connect`] and friends) open TCP
/// with timeouts, apply a [`TlsPolicy`](crate::TlsPolicy) and return a
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
    pub(crate) core: pop3_proto::Client,
    rbuf: Box<[u8]>,
    wbuf: Vec<u8>,
    greeting: Option<Greeting>,
    allow_cleartext: bool,
    broken: Option<ErrorKind>,
    /// CAPA was answered `-ERR` (since connect or STLS): do not ask again.
    pub(crate) window: usize,
    /// TLS parameters kept for a later `stls()`.
    #[cfg(feature = "rustls")]
    pub(crate) tls: Option<pop3_tls::TlsSetup>,
}

impl<S> std::fmt::Debug for Client<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("state", &self.core.session_state())
            .field("tls", &self.core.is_tls())
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
        let mut client = Client::unstarted(stream, secure, config);
        client.read_greeting()?;
        Ok(client)
    }

    pub(crate) fn unstarted(stream: S, secure: bool, mut config: Config) -> Client<S> {
        config.tls = secure;
        config.max_in_flight = config.max_in_flight.clamp(1, MAX_WINDOW);
        let window = config.max_in_flight.min(DEFAULT_WINDOW);
        Client {
            stream,
            core: pop3_proto::Client::new(config),
            rbuf: vec![0; READ_BUF].into_boxed_slice(),
            wbuf: Vec::new(),
            greeting: None,
            allow_cleartext: false,
            broken: None,
            window,
            #[cfg(feature = "rustls")]
            tls: None,
        }
    }

    // ----- getters -----

    /// The server greeting (`getwelcome()`): the one received when
    /// connecting, kept after STLS for display (the core itself forgets it
    /// after STLS, so APOP never uses a timestamp seen in cleartext).
    pub fn greeting(&self) -> Option<&Greeting> {
        self.greeting.as_ref()
    }

    /// The capabilities from the last CAPA (forgotten after STLS).
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.core.capabilities()
    }

    /// The session state.
    pub fn session_state(&self) -> SessionState {
        self.core.session_state()
    }

    /// Whether the session is protected by TLS (implicit, after STLS, or a
    /// stream declared secure).
    pub fn is_tls(&self) -> bool {
        self.core.is_tls()
    }

    /// The sans-IO core, for inspection.
    pub fn core(&self) -> &pop3_proto::Client {
        &self.core
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
        self.allow_cleartext = yes;
        self.core.set_allow_cleartext_credentials(yes);
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
        self.window = window.clamp(1, self.core.config().max_in_flight.max(1));
    }

    // ----- the driver -----

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

    /// Writes everything the core wants to send.
    pub(crate) fn flush(&mut self) -> Result<(), Error> {
        self.wbuf.clear();
        let mut sensitive = false;
        while let Some(t) = self.core.poll_transmit(&mut self.wbuf) {
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

    /// One read from the transport into the core.
    fn fill(&mut self) -> Result<(), Error> {
        loop {
            match self.stream.read(&mut self.rbuf) {
                Ok(0) => {
                    log::end_of_stream(&Log, true);
                    self.core.handle_eof();
                    return Ok(());
                }
                Ok(n) => {
                    let data = &self.rbuf[..n];
                    log::received(&Log, data);
                    self.core.handle_input(data);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // rustls reports a TCP close without close_notify this way.
                // POP3 frames its own replies, so the core decides whether
                // the end came too early (a truncated body is an error).
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    log::end_of_stream(&Log, false);
                    self.core.handle_eof();
                    return Ok(());
                }
                Err(e) => return Err(self.fail_io(e)),
            }
        }
    }

    /// The run loop: write what the core wants to send, hand every event to
    /// `on_event` until it returns [`Flow::Done`], read when the core needs
    /// input. Events left after `Done` stay queued in the core for the
    /// next call.
    pub(crate) fn drive(
        &mut self,
        mut on_event: impl FnMut(Event<'_>) -> Result<Flow, Error>,
    ) -> Result<(), Error> {
        self.check_broken()?;
        loop {
            self.flush()?;
            while let Some(ev) = self.core.poll_event()? {
                log::event(&Log, &ev);
                if let Flow::Done = on_event(ev)? {
                    return Ok(());
                }
            }
            if self.core.wants_write() {
                continue;
            }
            if !self.core.wants_read() {
                // Nothing to send and no reply due: waiting would hang.
                return Err(Error::Usage(match self.core.session_state() {
                    SessionState::Closed => UsageError::Closed,
                    _ => UsageError::NothingToWaitFor,
                }));
            }
            self.fill()?;
        }
    }

    fn read_greeting(&mut self) -> Result<(), Error> {
        let mut result = None;
        self.drive(|ev| match ev {
            Event::Greeting(g) => {
                result = Some(Ok(g));
                Ok(Flow::Done)
            }
            Event::GreetingRefused(e) => {
                result = Some(Err(Error::GreetingRefused(e)));
                Ok(Flow::Done)
            }
            _ => Ok(Flow::Continue),
        })?;
        match result {
            Some(Ok(g)) => {
                self.greeting = Some(g);
                Ok(())
            }
            Some(Err(e)) => Err(e),
            None => Err(Error::Usage(UsageError::Closed)),
        }
    }

    /// Waits for the reply to `h` (a single-line or listing reply).
    pub(crate) fn wait_reply(&mut self, h: Handle) -> Result<Response, Error> {
        let mut out: Option<Result<Response, Error>> = None;
        self.drive(|ev| {
            let r = match ev {
                Event::Ok {
                    handle, response, ..
                } if handle == h => Ok(response),
                Event::Err {
                    handle,
                    command,
                    response,
                } if handle == h => Err(Error::Server { command, response }),
                Event::AuthCancelled {
                    handle,
                    error,
                    response,
                } if handle == h => Err(Error::auth_cancelled(&error, response)),
                Event::Rejected { handle, error, .. } if handle == h => Err(Error::Usage(error)),
                Event::Closed => Err(Error::Usage(UsageError::Closed)),
                _ => return Ok(Flow::Continue),
            };
            out = Some(r);
            Ok(Flow::Done)
        })?;
        out.unwrap_or(Err(Error::Usage(UsageError::Closed)))
    }

    /// Waits for the body of `h` (RETR/TOP), streaming it into `w`. A
    /// failing writer does not stop the reading: the rest of the body is
    /// discarded so the session stays in sync, then [`Error::Sink`].
    pub(crate) fn wait_body(&mut self, h: Handle, w: &mut dyn Write) -> Result<u64, Error> {
        let mut out: Option<Result<u64, Error>> = None;
        let mut sink_error: Option<io::Error> = None;
        self.drive(|ev| {
            let r = match ev {
                Event::Ok { handle, .. } if handle == h => return Ok(Flow::Continue),
                Event::BodyChunk { handle, data } if handle == h => {
                    if sink_error.is_none() {
                        if let Err(e) = w.write_all(data) {
                            sink_error = Some(e);
                        }
                    }
                    return Ok(Flow::Continue);
                }
                Event::BodyEnd { handle, octets } if handle == h => Ok(octets),
                Event::Err {
                    handle,
                    command,
                    response,
                } if handle == h => Err(Error::Server { command, response }),
                Event::Rejected { handle, error, .. } if handle == h => Err(Error::Usage(error)),
                Event::Closed => Err(Error::Usage(UsageError::Closed)),
                _ => return Ok(Flow::Continue),
            };
            out = Some(r);
            Ok(Flow::Done)
        })?;
        let octets = out.unwrap_or(Err(Error::Usage(UsageError::Closed)))?;
        if let Some(e) = sink_error {
            return Err(Error::Sink(e));
        }
        w.flush().map_err(Error::Sink)?;
        Ok(octets)
    }

    pub(crate) fn enqueue(&mut self, cmd: Command) -> Result<Handle, Error> {
        self.check_broken()?;
        Ok(self.core.enqueue(cmd)?)
    }

    fn exec(&mut self, cmd: Command) -> Result<Response, Error> {
        let h = self.enqueue(cmd)?;
        self.wait_reply(h)
    }

    fn exec_status(&mut self, cmd: Command) -> Result<Status, Error> {
        match self.exec(cmd)? {
            Response::Status(s) | Response::BodyStart(s) => Ok(s),
            // Unreachable: the core answers these commands with Status.
            _ => Ok(Status::default()),
        }
    }

    fn check_credentials_allowed(&self) -> Result<(), Error> {
        if self.core.is_tls() || self.allow_cleartext {
            Ok(())
        } else {
            Err(Error::Security(SecurityError::CleartextCredentials))
        }
    }

    // ----- poplib's methods -----

    /// `USER name`. Refused without TLS unless cleartext credentials are
    /// allowed.
    pub fn user(&mut self, name: &str) -> Result<Status, Error> {
        self.check_credentials_allowed()?;
        self.exec_status(Command::user(name)?)
    }

    /// `PASS password`. Refused without TLS unless cleartext credentials
    /// are allowed.
    pub fn pass(&mut self, password: &str) -> Result<Status, Error> {
        self.check_credentials_allowed()?;
        self.exec_status(Command::pass(password)?)
    }

    /// `APOP name digest`, the digest made from the greeting's timestamp
    /// (a greeting received in cleartext before STLS is not used).
    pub fn apop(&mut self, user: &str, secret: &str) -> Result<Status, Error> {
        self.check_credentials_allowed()?;
        self.check_broken()?;
        let h = self.core.apop(user, secret)?;
        match self.wait_reply(h)? {
            Response::Status(s) => Ok(s),
            _ => Ok(Status::default()),
        }
    }

    /// `RPOP user` (RFC 1081, obsolete).
    pub fn rpop(&mut self, user: &str) -> Result<Status, Error> {
        self.check_credentials_allowed()?;
        self.exec_status(Command::rpop(user)?)
    }

    /// `AUTH` driven by a SASL mechanism (see [`pop3_proto::sasl`]); the
    /// core answers the challenges.
    pub fn authenticate(&mut self, mechanism: Box<dyn Mechanism>) -> Result<Status, Error> {
        self.check_credentials_allowed()?;
        self.check_broken()?;
        let h = self.core.authenticate(mechanism)?;
        let status = match self.wait_reply(h)? {
            Response::Status(s) => s,
            _ => Status::default(),
        };
        self.refresh_capabilities()?;
        Ok(status)
    }

    /// Re-reads CAPA after authentication: a server may announce different
    /// capabilities in TRANSACTION (RFC 2449 §5, RFC 5034 §4). Skipped for
    /// servers that refused CAPA.
    fn refresh_capabilities(&mut self) -> Result<(), Error> {
        if !self.core.capa_refused() {
            self.capa_unless_refused()?;
        }
        Ok(())
    }

    /// Logs in with the best method the server offers: a SASL mechanism
    /// (SCRAM-SHA-256, SCRAM-SHA-1, CRAM-MD5, PLAIN, LOGIN, in that order;
    /// PLAIN and LOGIN only with TLS or cleartext allowed), then APOP (over
    /// TLS only), then USER/PASS. Runs CAPA first if no capabilities are
    /// known. Without TLS, refuses before sending anything unless
    /// cleartext credentials are allowed.
    pub fn login(&mut self, user: &str, password: &str) -> Result<LoginMethod, Error> {
        self.check_credentials_allowed()?;
        self.ensure_capabilities()?;
        // The decision is the core's, so both adapters choose identically.
        let plan = login::plan(
            self.core.capabilities(),
            self.core.greeting(),
            self.core.is_tls(),
            self.allow_cleartext,
        )?;
        tracing::debug!("login method: {plan:?}");
        match &plan {
            LoginMethod::Sasl(name) => {
                let mut nonce = [0u8; 24];
                getrandom::getrandom(&mut nonce)
                    .map_err(|e| Error::Io(io::Error::other(e.to_string())))?;
                let m = login::mechanism(name, user, password, &nonce)
                    .map_err(|e| Error::Usage(UsageError::Sasl(e)))?;
                self.authenticate(m)?;
            }
            LoginMethod::Apop => {
                self.apop(user, password)?;
                self.refresh_capabilities()?;
            }
            LoginMethod::UserPass => {
                self.user(user)?;
                self.pass(password)?;
                self.refresh_capabilities()?;
            }
            _ => return Err(Error::Security(SecurityError::NoUsableMechanism)),
        }
        Ok(plan)
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
        let h = self.enqueue(Command::Retr(msg(n)?))?;
        self.wait_body(h, w)
    }

    /// `RETR n` into memory.
    pub fn retr(&mut self, n: u32) -> Result<Vec<u8>, Error> {
        let mut v = Vec::new();
        self.retr_to(n, &mut v)?;
        Ok(v)
    }

    /// `TOP n lines`, streaming headers plus `lines` body lines into `w`.
    pub fn top_to(&mut self, n: u32, lines: u32, w: &mut impl Write) -> Result<u64, Error> {
        let h = self.enqueue(Command::Top(msg(n)?, lines))?;
        self.wait_body(h, w)
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
        while let Ok(Some(_)) = self.core.poll_event() {}
        r
    }

    /// `CAPA`: the server's capabilities (also remembered: see
    /// [`Client::capabilities`]).
    pub fn capa(&mut self) -> Result<Capabilities, Error> {
        match self.exec(Command::Capa) {
            Ok(Response::Capa(c)) => Ok(c),
            Ok(_) => Err(unexpected()),
            Err(e) => Err(e),
        }
    }

    /// CAPA, with a `-ERR` (a server without CAPA) as `None`.
    pub(crate) fn capa_unless_refused(&mut self) -> Result<Option<Capabilities>, Error> {
        match self.capa() {
            Ok(c) => Ok(Some(c)),
            Err(Error::Server { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Runs CAPA once if no capabilities are known (they decide pipelining
    /// and the login method); a server without CAPA is asked only once.
    pub(crate) fn ensure_capabilities(&mut self) -> Result<(), Error> {
        if self.core.needs_capa() {
            self.capa_unless_refused()?;
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
    pub fn stls_with<T, F>(mut self, upgrade: F) -> Result<Client<T>, Error>
    where
        T: Read + Write,
        F: FnOnce(S) -> io::Result<T>,
    {
        self.stls_command()?;
        let stream = upgrade(self.stream).map_err(Error::Tls)?;
        let mut client = Client {
            stream,
            core: self.core,
            rbuf: self.rbuf,
            wbuf: self.wbuf,
            greeting: self.greeting,
            allow_cleartext: self.allow_cleartext,
            broken: self.broken,
            window: self.window,
            #[cfg(feature = "rustls")]
            tls: self.tls,
        };
        client.core.tls_established()?;
        Ok(client)
    }

    /// Sends STLS, waits for `+OK`, and checks that nothing followed it.
    pub(crate) fn stls_command(&mut self) -> Result<Status, Error> {
        let status = self.exec_status(Command::Stls)?;
        // Anything the server sent after its +OK is already in the core
        // (every byte read is handed over at once); this reports it as
        // ProtocolError::StlsInjection before any TLS byte is sent.
        if let Err(e) = self.core.poll_event() {
            return Err(Error::Protocol(e));
        }
        if !self.core.is_awaiting_tls() {
            return Err(unexpected());
        }
        Ok(status)
    }
}

fn msg(n: u32) -> Result<MsgNum, Error> {
    Ok(MsgNum::try_from(n)?)
}

/// The core answered with a response type it never uses for this command.
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
    use pop3_tls::{ConnectOptions, Timeouts, TlsOptions, TlsPolicy, TlsSetup};

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
        pub fn connect(host: &str, port: u16, options: &ConnectOptions) -> Result<Self, Error> {
            let tcp = connect_tcp(host, port, &options.timeouts)?;
            Client::establish(tcp, host, options)
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
        /// Applies `options` (policy, TLS, core config; not the timeouts,
        /// which belong to the transport) over an already connected
        /// transport `stream`; `host` is the name the certificate must
        /// match (unless `options.tls` overrides it).
        pub fn establish(stream: S, host: &str, options: &ConnectOptions) -> Result<Self, Error> {
            let setup = TlsSetup::for_connect(options, host)?;
            let implicit = options.policy == TlsPolicy::Implicit;
            let stream = match (&setup, implicit) {
                (Some(s), true) => MaybeTlsStream::tls(stream, s.config.clone(), s.name.clone())
                    .map_err(Error::from_io)?,
                _ => MaybeTlsStream::plain(stream),
            };
            let mut client = Client::unstarted(stream, implicit, options.proto.clone());
            client.set_allow_cleartext_credentials(options.allow_cleartext_credentials);
            client.tls = setup;
            client.read_greeting()?;
            // The decisions are pop3-tls's, shared with pop3-tokio.
            let caps = client.capa_unless_refused()?;
            if options.policy.stls_after_capa(caps.as_ref())? {
                match client.stls() {
                    Ok(_) => {
                        client.capa_unless_refused()?;
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

        /// `STLS`: upgrades this session to TLS in place with the TLS
        /// options given when connecting (or [`Client::stls_with_options`]).
        /// Capabilities and the greeting's APOP timestamp learned in
        /// cleartext are forgotten (RFC 2595); call [`Client::capa`] again.
        pub fn stls(&mut self) -> Result<Status, Error> {
            let setup = self.tls.clone().ok_or_else(TlsSetup::missing)?;
            self.stls_setup(setup)
        }

        /// `STLS` with explicit TLS options; `host` is the name the server
        /// certificate must match (unless `tls` overrides it).
        pub fn stls_with_options(&mut self, tls: &TlsOptions, host: &str) -> Result<Status, Error> {
            let setup = TlsSetup::new(tls, host)?;
            self.tls = Some(setup.clone());
            self.stls_setup(setup)
        }

        fn stls_setup(&mut self, setup: TlsSetup) -> Result<Status, Error> {
            self.check_broken()?;
            if self.stream.is_tls() {
                return Err(Error::Usage(UsageError::AlreadyTls));
            }
            let status = self.stls_command()?;
            if let Err(e) = self.stream.upgrade(setup.config, setup.name) {
                let e = Error::from_handshake(e);
                self.broken = Some(e.kind());
                return Err(e);
            }
            self.core.tls_established()?;
            Ok(status)
        }
    }
}

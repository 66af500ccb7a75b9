//! The server: builder, handle, accept loop and shared state.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::io::Conn;
use crate::mailbox::{Mailbox, Message};
use crate::script::{Script, ScriptError, ScriptOutcome, ScriptStatus};
use crate::transcript::Transcript;

/// Locks a mutex, ignoring poisoning (a panicking session thread must not
/// take the whole test server down with it).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sleeps for `d`, waking early if the server is shutting down.
pub(crate) fn sleep_interruptible(d: Duration, stop: &AtomicBool) {
    let deadline = Instant::now() + d;
    loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        thread::sleep((deadline - now).min(Duration::from_millis(20)));
    }
}

pub(crate) enum ScriptPlan {
    Every(Script),
    Sequence(Vec<Script>),
}

/// Everything the builder configures. Field docs are on the builder methods.
#[cfg_attr(not(feature = "tls"), allow(dead_code))]
pub(crate) struct Config {
    pub(crate) users: Vec<(String, String)>,
    pub(crate) greeting: String,
    pub(crate) capabilities: Vec<String>,
    pub(crate) read_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) max_line_len: usize,
    pub(crate) transcript_limit: usize,
    pub(crate) max_connections: usize,
    pub(crate) in_use: bool,
    pub(crate) login_delay: bool,
    pub(crate) exclusive_lock: bool,
    pub(crate) fail_commands: Vec<(String, String)>,
    pub(crate) reply_overrides: Vec<(String, Vec<u8>)>,
    pub(crate) bare_lf: bool,
    pub(crate) bare_ok: bool,
    pub(crate) capa_refused: bool,
    pub(crate) apop_timestamp: bool,
    pub(crate) greeting_delay: Duration,
    pub(crate) write_delay: Duration,
    pub(crate) split_writes: Option<usize>,
    pub(crate) close_after_commands: Option<usize>,
    pub(crate) truncate_retr: Option<(usize, usize)>,
    pub(crate) stall_on: Option<String>,
    pub(crate) overlong_greeting: Option<usize>,
    pub(crate) garbage_greeting: Option<Vec<u8>>,
    pub(crate) quit_fails: bool,
    pub(crate) lf_terminator: bool,
    pub(crate) implicit_tls: bool,
    pub(crate) stls: bool,
    pub(crate) stls_injection: Option<Vec<u8>>,
    pub(crate) script: Option<ScriptPlan>,
    pub(crate) sasl: Vec<String>,
    pub(crate) scram_iterations: u32,
    pub(crate) channel_binding: bool,
    pub(crate) strip_plus: bool,
    pub(crate) tls12_only: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            users: Vec::new(),
            greeting: "POP3 pop3-testkit ready".to_string(),
            capabilities: crate::DEFAULT_CAPABILITIES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            max_line_len: 8192,
            transcript_limit: 16 << 20,
            max_connections: 256,
            in_use: false,
            login_delay: false,
            exclusive_lock: false,
            fail_commands: Vec::new(),
            reply_overrides: Vec::new(),
            bare_lf: false,
            bare_ok: false,
            capa_refused: false,
            apop_timestamp: true,
            greeting_delay: Duration::ZERO,
            write_delay: Duration::ZERO,
            split_writes: None,
            close_after_commands: None,
            truncate_retr: None,
            stall_on: None,
            overlong_greeting: None,
            garbage_greeting: None,
            quit_fails: false,
            lf_terminator: false,
            implicit_tls: false,
            stls: false,
            stls_injection: None,
            script: None,
            sasl: vec!["PLAIN".to_string()],
            scram_iterations: 4096,
            channel_binding: true,
            strip_plus: false,
            tls12_only: false,
        }
    }
}

pub(crate) struct Store {
    next_id: u64,
    pub(crate) messages: Vec<(u64, Message)>,
}

impl Store {
    fn new(mailbox: Mailbox) -> Store {
        let mut store = Store {
            next_id: 1,
            messages: Vec::new(),
        };
        for m in mailbox.messages() {
            store.push(m.clone());
        }
        store
    }
    fn push(&mut self, m: Message) {
        self.messages.push((self.next_id, m));
        self.next_id += 1;
    }
}

/// State shared by the accept thread, the connection threads and the handle.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) store: Mutex<Store>,
    transcripts: Mutex<Vec<Transcript>>,
    pub(crate) scripts: Mutex<Vec<ScriptOutcome>>,
    pub(crate) stop: AtomicBool,
    active: AtomicUsize,
    accepted: AtomicUsize,
    sockets: Mutex<HashMap<usize, TcpStream>>,
    pub(crate) maildrop_locked: AtomicBool,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    /// The DER of the certificate the server presents (for
    /// `tls-server-end-point`).
    #[cfg(feature = "tls")]
    pub(crate) leaf_der: Option<Vec<u8>>,
}

impl Shared {
    pub(crate) fn is_shutdown(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub(crate) fn record_client(&self, id: usize, bytes: &[u8]) {
        let limit = self.config.transcript_limit;
        if let Some(t) = lock(&self.transcripts).get_mut(id) {
            let room = limit.saturating_sub(t.client.len());
            if room < bytes.len() {
                t.truncated = true;
            }
            t.client.extend_from_slice(&bytes[..room.min(bytes.len())]);
        }
    }

    pub(crate) fn record_server(&self, id: usize, bytes: &[u8]) {
        let limit = self.config.transcript_limit;
        if let Some(t) = lock(&self.transcripts).get_mut(id) {
            let room = limit.saturating_sub(t.server.len());
            if room < bytes.len() {
                t.truncated = true;
            }
            t.server.extend_from_slice(&bytes[..room.min(bytes.len())]);
        }
    }

    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(crate) fn mark_tls(&self, id: usize) {
        if let Some(t) = lock(&self.transcripts).get_mut(id) {
            t.tls = true;
        }
    }

    /// Checks a user name and password.
    pub(crate) fn password_of(&self, user: &str) -> Option<&str> {
        self.config
            .users
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, p)| p.as_str())
    }
}

/// Entry point: `Server::builder()`.
///
/// `Server` itself holds nothing; the running server is a [`ServerHandle`].
#[derive(Debug)]
pub struct Server;

impl Server {
    /// A builder with the defaults: empty mailbox, no users, APOP timestamp in
    /// the greeting, [`DEFAULT_CAPABILITIES`](crate::DEFAULT_CAPABILITIES),
    /// 30 s read/write timeouts, 8192-byte line limit, no quirks, no TLS.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }
}

/// Configures and starts a test server. Every method consumes and returns the
/// builder; finish with [`ServerBuilder::start`].
#[derive(Default)]
pub struct ServerBuilder {
    config: Config,
    mailbox: Mailbox,
    #[cfg(feature = "tls")]
    ca: Option<crate::TestCa>,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("messages", &self.mailbox.len())
            .finish_non_exhaustive()
    }
}

fn upper(verb: &str) -> String {
    verb.trim().to_ascii_uppercase()
}

impl ServerBuilder {
    // ----- mailbox, users, protocol ------------------------------------

    /// The mailbox to serve (default: empty). It is shared by all users and
    /// all connections; committed deletions (QUIT in TRANSACTION state) remove
    /// messages from it.
    pub fn mailbox(mut self, mailbox: Mailbox) -> Self {
        self.mailbox = mailbox;
        self
    }

    /// Adds a user. Credentials are checked by USER/PASS, APOP and
    /// the SASL mechanisms ([`sasl_mechanisms`](Self::sasl_mechanisms)).
    /// With no users configured nobody can log in.
    pub fn user(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        self.config.users.push((name.into(), password.into()));
        self
    }

    /// Greeting text after `+OK ` (default `POP3 pop3-testkit ready`); the
    /// APOP timestamp is appended after a space unless
    /// [`apop_timestamp(false)`](Self::apop_timestamp).
    pub fn greeting(mut self, text: impl Into<String>) -> Self {
        self.config.greeting = text.into();
        self
    }

    /// Replaces the CAPA list (default
    /// [`DEFAULT_CAPABILITIES`](crate::DEFAULT_CAPABILITIES)). `STLS` is still
    /// added automatically when `stls` is enabled and TLS is not
    /// yet active. This only changes what is *advertised*: every command is
    /// still served.
    pub fn capabilities<I, S>(mut self, caps: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.capabilities = caps.into_iter().map(Into::into).collect();
        self
    }

    /// Appends one line to the CAPA list (e.g. `"UTF8"`, `"LANG"`,
    /// `"EXPIRE NEVER"`).
    pub fn add_capability(mut self, cap: impl Into<String>) -> Self {
        self.config.capabilities.push(cap.into());
        self
    }

    /// The SASL mechanisms the server accepts in `AUTH` (default `PLAIN`),
    /// also advertised as the `SASL` line of CAPA (replacing the existing
    /// one; none when the list is empty). Known: `PLAIN`, `SCRAM-SHA-1`,
    /// `SCRAM-SHA-256`, `SCRAM-SHA-1-PLUS`, `SCRAM-SHA-256-PLUS` (case
    /// does not matter); other names are advertised but refused.
    ///
    /// SCRAM (RFC 5802, 7677) verifies the client's proof and sends the
    /// server signature. The `-PLUS` variants need TLS and verify the
    /// channel binding against the server's own values: `tls-exporter`
    /// (RFC 9266, TLS 1.3 only: the exporter with label
    /// `EXPORTER-Channel-Binding`) or `tls-server-end-point` (RFC 5929,
    /// the SHA-256 of the certificate the server presents, which
    /// [`TestCa`](crate::TestCa) signs with ECDSA-SHA256). Over TLS, with
    /// [`channel_binding`](Self::channel_binding) on, a client's `y` flag
    /// (it thought the server could not bind) fails the exchange as RFC
    /// 5802 §6 requires (`e=server-does-support-channel-binding`). Failures
    /// are sent as `e=` in a challenge, then `-ERR [AUTH]`.
    pub fn sasl_mechanisms<I, S>(mut self, mechanisms: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.sasl = mechanisms
            .into_iter()
            .map(|m| m.into().to_ascii_uppercase())
            .collect();
        let line = format!("SASL {}", self.config.sasl.join(" "));
        let position = self
            .config
            .capabilities
            .iter()
            .position(|c| c.to_ascii_uppercase().starts_with("SASL"));
        match (position, self.config.sasl.is_empty()) {
            (Some(i), true) => {
                self.config.capabilities.remove(i);
            }
            (Some(i), false) => self.config.capabilities[i] = line,
            (None, true) => {}
            (None, false) => self.config.capabilities.push(line),
        }
        self
    }

    /// The SCRAM iteration count (`i=`) the server asks for (default 4096).
    pub fn scram_iterations(mut self, iterations: u32) -> Self {
        self.config.scram_iterations = iterations.max(1);
        self
    }

    /// Whether the server supports channel binding over TLS (default
    /// `true`). With `false` it behaves like a server without -PLUS
    /// support: `-PLUS` mechanisms are refused and a client's `y` flag is
    /// accepted.
    pub fn channel_binding(mut self, yes: bool) -> Self {
        self.config.channel_binding = yes;
        self
    }

    /// Quirk (attack simulation): CAPA lists the `SASL` mechanisms without
    /// their `-PLUS` names, while the server still supports them, as a
    /// man-in-the-middle downgrading channel binding would show it. A
    /// client with binding data must then use the GS2 flag `y`, which the
    /// server refuses (RFC 5802 §6).
    pub fn strip_plus_from_capa(mut self, yes: bool) -> Self {
        self.config.strip_plus = yes;
        self
    }

    /// Quirk: do not advertise `PIPELINING` in CAPA (commands are still
    /// processed one at a time in order, as every RFC 1939 server does).
    ///
    /// Real servers: most. Dovecot advertises PIPELINING, but e.g. Gmail's
    /// POP3 service has not listed it, and pre-RFC 2449 servers have no CAPA
    /// at all. A client must then fall back to lockstep.
    pub fn no_pipelining(mut self) -> Self {
        self.config
            .capabilities
            .retain(|c| !c.eq_ignore_ascii_case("PIPELINING"));
        self
    }

    /// Read timeout per connection (default 30 s). When it expires the
    /// server closes the connection without committing (RFC 1939
    /// autologout), so threads of dead clients exit.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.config.read_timeout = timeout;
        self
    }

    /// Write timeout per connection (default 30 s).
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.config.write_timeout = timeout;
        self
    }

    /// Longest client line accepted, terminator included (default 8192).
    /// A longer line gets `-ERR line too long` and the connection is closed.
    pub fn max_line_len(mut self, len: usize) -> Self {
        self.config.max_line_len = len;
        self
    }

    /// Maximum bytes recorded per direction per connection in the transcript
    /// (default 16 MiB); beyond it [`Transcript::truncated`] is set.
    pub fn transcript_limit(mut self, bytes: usize) -> Self {
        self.config.transcript_limit = bytes;
        self
    }

    /// Maximum simultaneous connections (default 256). Extra connections get
    /// `-ERR [SYS/TEMP] too many connections` and are closed.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.config.max_connections = n.max(1);
        self
    }

    // ----- response codes ------------------------------------------------

    /// Every *successful* authentication is answered with
    /// `-ERR [IN-USE] maildrop is locked by another session` (RFC 2449), as
    /// if another session held the maildrop lock. Bad credentials still get
    /// `-ERR [AUTH] ...`.
    ///
    /// Real servers: Dovecot, Courier and qpopper refuse a second concurrent
    /// session on the same maildrop like this.
    pub fn in_use(mut self, yes: bool) -> Self {
        self.config.in_use = yes;
        self
    }

    /// Every successful authentication is answered with
    /// `-ERR [LOGIN-DELAY] minimum time between logins not reached`
    /// (RFC 2449). Real servers: Gmail advertises `LOGIN-DELAY 300`.
    pub fn login_delay(mut self, yes: bool) -> Self {
        self.config.login_delay = yes;
        self
    }

    /// Real RFC 1939 maildrop locking: while one session is in TRANSACTION
    /// state, another successful login gets `-ERR [IN-USE] ...`. The lock is
    /// released when the holding session ends (QUIT, drop or timeout).
    /// Off by default so tests that reconnect quickly never race with the
    /// previous connection's thread.
    pub fn exclusive_lock(mut self, yes: bool) -> Self {
        self.config.exclusive_lock = yes;
        self
    }

    /// Every command with this verb (case-insensitive, any state) is answered
    /// with `-ERR {text}` instead of being executed, e.g.
    /// `.fail_command("RETR", "[SYS/TEMP] storage unavailable")`.
    pub fn fail_command(mut self, verb: &str, text: impl Into<String>) -> Self {
        self.config.fail_commands.push((upper(verb), text.into()));
        self
    }

    /// Every command with this verb (case-insensitive, any state) is answered
    /// with exactly these bytes (no stuffing, no line-ending conversion)
    /// instead of being executed. If the verb is QUIT the connection is
    /// closed afterwards. Use it for over-long or malformed replies to a
    /// particular command.
    pub fn override_reply(mut self, verb: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.config
            .reply_overrides
            .push((upper(verb), bytes.into()));
        self
    }

    // ----- quirks ----------------------------------------------------------

    /// Quirk: every line the server sends ends with bare LF instead of CRLF:
    /// greeting, status lines, multi-line bodies (CRLF in the stored message
    /// is converted to LF) and the terminating `.`. (Scripts and
    /// [`override_reply`](Self::override_reply) are never converted.)
    ///
    /// Real servers: Unix-spool based and home-grown servers (and some
    /// embedded appliances) that emit the mbox file as stored have been seen
    /// doing this; RFC 1939 forbids it but robust clients accept it.
    pub fn bare_lf(mut self, yes: bool) -> Self {
        self.config.bare_lf = yes;
        self
    }

    /// Quirk: informational `+OK` replies carry no text at all (`+OK\r\n`),
    /// e.g. to USER, PASS, DELE, NOOP, RSET, QUIT, CAPA, LIST, UIDL, RETR and
    /// TOP. Replies whose text is data (STAT, `LIST n`, `UIDL n`) and the
    /// greeting keep their text. RFC 1939 allows this.
    ///
    /// Real servers: qmail-pop3d answers most commands with a bare
    /// `+OK ` (with a trailing space); minimal servers omit the text.
    pub fn bare_ok(mut self, yes: bool) -> Self {
        self.config.bare_ok = yes;
        self
    }

    /// Quirk: `CAPA` is answered with `-ERR unknown command`.
    ///
    /// Real servers: anything predating RFC 2449 (1998), e.g. qmail-pop3d from
    /// netqmail 1.06 and old UW ipop3d / Exchange 5.5 era servers.
    pub fn capa_refused(mut self, yes: bool) -> Self {
        self.config.capa_refused = yes;
        self
    }

    /// Whether the greeting ends with an APOP timestamp
    /// `<pid.clock.conn@pop3-testkit>` (default true). Without it, `APOP` is
    /// answered `-ERR APOP not supported`.
    ///
    /// Real servers without a timestamp: most modern ones (Gmail, Outlook.com,
    /// Dovecot by default); with one: qpopper, Courier with APOP enabled.
    pub fn apop_timestamp(mut self, yes: bool) -> Self {
        self.config.apop_timestamp = yes;
        self
    }

    /// Quirk: wait this long after accepting (and after the TLS handshake for
    /// implicit TLS) before sending the greeting.
    ///
    /// Real servers: ones doing reverse-DNS/ident lookups before greeting,
    /// or deliberately tarpitting (a "greet pause"), and overloaded servers.
    pub fn greeting_delay(mut self, delay: Duration) -> Self {
        self.config.greeting_delay = delay;
        self
    }

    /// Quirk: sleep this long before every write (every chunk when combined
    /// with [`split_writes`](Self::split_writes)). Simulates a slow server or
    /// link.
    pub fn write_delay(mut self, delay: Duration) -> Self {
        self.config.write_delay = delay;
        self
    }

    /// Quirk: write every reply in chunks of `n` bytes (`1` allowed), flushing
    /// after each chunk (TCP_NODELAY is on, so chunks tend to arrive as
    /// separate segments; add [`write_delay`](Self::write_delay) to force
    /// it). `0` disables splitting.
    ///
    /// Real servers: any server may have its replies re-segmented by TCP,
    /// TLS records or middleboxes; clients must never assume a reply arrives
    /// in one read.
    pub fn split_writes(mut self, n: usize) -> Self {
        self.config.split_writes = if n == 0 { None } else { Some(n) };
        self
    }

    /// Quirk: after writing the reply to the `n`-th command of a connection,
    /// close it (FIN, no QUIT semantics: nothing is committed). Every line
    /// read counts as a command (AUTH continuation lines do not).
    ///
    /// Real servers: ones enforcing command/abuse limits, crashes, and idle
    /// disconnects by middleboxes.
    pub fn close_after_commands(mut self, n: usize) -> Self {
        self.config.close_after_commands = Some(n);
        self
    }

    /// Quirk: on the `nth_retr`-th successful `RETR` of a connection
    /// (1-based), send the `+OK` line and only the first `body_bytes` bytes of
    /// the (stuffed) message, then close without the terminating `.`.
    ///
    /// Real servers: any server that crashes, hits a disk error or loses its
    /// connection mid-transfer; a client must report truncation, not a
    /// shorter message.
    pub fn truncate_retr(mut self, nth_retr: usize, body_bytes: usize) -> Self {
        self.config.truncate_retr = Some((nth_retr, body_bytes));
        self
    }

    /// Quirk: when a command with this verb arrives (any state), never answer
    /// it or anything after it, but keep the socket open (reading and
    /// recording whatever the client sends) until the client closes or the
    /// server shuts down. Read timeouts do not end a stalled connection.
    ///
    /// Real servers: overloaded or wedged servers, and NAT/firewall boxes
    /// that silently drop a flow; tests client timeouts.
    pub fn stall_on(mut self, verb: &str) -> Self {
        self.config.stall_on = Some(upper(verb));
        self
    }

    /// Quirk: the greeting is a `+OK ` line padded with `x` to `len` bytes
    /// (terminator not counted), to test the client's status-line limit
    /// (RFC 2449 limits status lines to 512 octets).
    ///
    /// Real servers: broken or hostile ones.
    pub fn overlong_greeting(mut self, len: usize) -> Self {
        self.config.overlong_greeting = Some(len);
        self
    }

    /// Quirk: send these bytes instead of a greeting (commands are still
    /// served afterwards), e.g. `b"220 mail.example.com ESMTP ready\r\n"`.
    ///
    /// Real servers: connecting to the wrong port (SMTP, HTTP, an IMAP
    /// server) or through a captive portal/proxy.
    pub fn garbage_greeting(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.config.garbage_greeting = Some(bytes.into());
        self
    }

    /// Quirk: QUIT in TRANSACTION state is answered with
    /// `-ERR [SYS/TEMP] some deleted messages not removed` and the connection
    /// is closed without committing deletions (RFC 1939 allows this reply).
    ///
    /// Real servers: any server whose maildrop update fails (disk full, lock
    /// lost, NFS error).
    pub fn quit_fails(mut self, yes: bool) -> Self {
        self.config.quit_fails = yes;
        self
    }

    /// Quirk: multi-line responses end with `.\n` instead of `.\r\n` (the
    /// other lines keep CRLF).
    ///
    /// Real servers: some broken servers and proxies that append the
    /// terminator with a Unix newline.
    pub fn lf_terminator(mut self, yes: bool) -> Self {
        self.config.lf_terminator = yes;
        self
    }

    // ----- scripted mode ----------------------------------------------------

    /// Scripted mode: every connection runs this script instead of the POP3
    /// interpreter (no greeting is sent unless the script sends it; all
    /// POP3 options and quirks are ignored, except
    /// `implicit_tls` (feature `tls`), read/write timeouts and line
    /// limit). See [`Script`].
    pub fn script(mut self, script: Script) -> Self {
        self.config.script = Some(ScriptPlan::Every(script));
        self
    }

    /// Scripted mode with one script per connection: the `i`-th accepted
    /// connection runs `scripts[i]`; further connections are closed at once
    /// and recorded as failed ("unexpected connection").
    pub fn scripts(mut self, scripts: Vec<Script>) -> Self {
        self.config.script = Some(ScriptPlan::Sequence(scripts));
        self
    }

    // ----- TLS ----------------------------------------------------------------

    /// Implicit TLS (POP3S, port 995 style): the TLS handshake happens right
    /// after accept, before the greeting. Uses the CA from
    /// [`tls_ca`](Self::tls_ca) or a freshly generated one.
    #[cfg(feature = "tls")]
    pub fn implicit_tls(mut self, yes: bool) -> Self {
        self.config.implicit_tls = yes;
        self
    }

    /// Offer STLS (RFC 2595): advertised in CAPA while TLS is not active, and
    /// valid in AUTHORIZATION state only. After the handshake the session
    /// stays in AUTHORIZATION state.
    #[cfg(feature = "tls")]
    pub fn stls(mut self, yes: bool) -> Self {
        self.config.stls = yes;
        self
    }

    /// Use this CA (and its leaf certificate for `127.0.0.1`, `::1` and
    /// `localhost`) instead of generating one; lets several servers share
    /// one trust anchor.
    #[cfg(feature = "tls")]
    pub fn tls_ca(mut self, ca: crate::TestCa) -> Self {
        self.ca = Some(ca);
        self
    }

    /// Offer only TLS 1.2 (default: TLS 1.2 and 1.3), to test what a
    /// client does on a TLS 1.2 connection (for example channel binding
    /// with `tls-server-end-point` instead of `tls-exporter`).
    #[cfg(feature = "tls")]
    pub fn tls12_only(mut self, yes: bool) -> Self {
        self.config.tls12_only = yes;
        self
    }

    /// Quirk (attack simulation): append these bytes to `+OK` of STLS in the
    /// same write, before the handshake. A correct client must treat data
    /// received after the STLS reply and before the handshake as an error
    /// (or at least discard it), never as a post-TLS response.
    ///
    /// This is the STARTTLS response injection of CVE-2021-22947 (curl) and
    /// the "NO STARTTLS" study (USENIX Security 2021), performed by a
    /// man-in-the-middle. Implies [`stls(true)`](Self::stls).
    #[cfg(feature = "tls")]
    pub fn stls_injection(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.config.stls = true;
        self.config.stls_injection = Some(bytes.into());
        self
    }

    // ----- start -------------------------------------------------------------

    /// Binds `127.0.0.1:0` (the OS picks the port), starts the accept thread
    /// and returns the handle. The server stops when the handle is dropped.
    pub fn start(self) -> io::Result<ServerHandle> {
        #[cfg(feature = "tls")]
        let (ca, tls) = {
            let ca = match self.ca {
                Some(ca) => Some(ca),
                None if self.config.implicit_tls || self.config.stls => {
                    Some(crate::TestCa::try_generate()?)
                }
                None => None,
            };
            let tls = match &ca {
                Some(ca) if self.config.tls12_only => Some(ca.server_config_tls12()?),
                Some(ca) => Some(ca.server_config()?),
                None => None,
            };
            (ca, tls)
        };
        #[cfg(feature = "tls")]
        let leaf_der = ca.as_ref().map(|ca| ca.leaf_cert_der().to_vec());

        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config: self.config,
            store: Mutex::new(Store::new(self.mailbox)),
            transcripts: Mutex::new(Vec::new()),
            scripts: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
            sockets: Mutex::new(HashMap::new()),
            maildrop_locked: AtomicBool::new(false),
            #[cfg(feature = "tls")]
            tls,
            #[cfg(feature = "tls")]
            leaf_der,
        });
        let threads: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let shared = Arc::clone(&shared);
            let threads = Arc::clone(&threads);
            thread::Builder::new()
                .name(format!("pop3-testkit-accept-{}", addr.port()))
                .spawn(move || accept_loop(listener, shared, threads))?
        };
        Ok(ServerHandle {
            shared,
            addr,
            accept: Some(accept),
            threads,
            #[cfg(feature = "tls")]
            ca,
        })
    }
}

/// Decrements the active-connection count and unregisters the socket even if
/// the session thread panics.
struct ConnGuard {
    shared: Arc<Shared>,
    id: usize,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        lock(&self.shared.sockets).remove(&self.id);
        if let Some(t) = lock(&self.shared.transcripts).get_mut(self.id) {
            t.closed = true;
        }
        self.shared.active.fetch_sub(1, Ordering::SeqCst);
    }
}

fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
) {
    for stream in listener.incoming() {
        if shared.is_shutdown() {
            break;
        }
        let Ok(mut stream) = stream else {
            // EMFILE and friends: back off a little instead of spinning.
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        let peer = stream
            .peer_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(nonzero(shared.config.read_timeout)));
        let _ = stream.set_write_timeout(Some(nonzero(shared.config.write_timeout)));
        if shared.active.load(Ordering::SeqCst) >= shared.config.max_connections {
            let _ = stream.write_all(b"-ERR [SYS/TEMP] too many connections\r\n");
            let _ = stream.shutdown(Shutdown::Both);
            continue;
        }
        let id = {
            let mut ts = lock(&shared.transcripts);
            let id = ts.len();
            ts.push(Transcript::new(id, peer));
            id
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        shared.active.fetch_add(1, Ordering::SeqCst);
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.sockets).insert(id, clone);
        }
        let guard = ConnGuard {
            shared: Arc::clone(&shared),
            id,
        };
        let sh = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .name(format!("pop3-testkit-conn-{id}"))
            .spawn(move || {
                let _guard = guard;
                let conn = Conn::new(stream, id, Arc::clone(&sh));
                match &sh.config.script {
                    Some(plan) => crate::script::run_connection(conn, &sh, plan),
                    None => crate::session::run(conn, &sh),
                }
            });
        let mut ts = lock(&threads);
        ts.retain(|h| !h.is_finished());
        if let Ok(h) = spawned {
            ts.push(h);
        }
    }
}

fn nonzero(d: Duration) -> Duration {
    if d.is_zero() {
        Duration::from_millis(1)
    } else {
        d
    }
}

/// A running server. Dropping it (or calling [`shutdown`](Self::shutdown))
/// stops accepting, closes every open connection and joins all threads.
pub struct ServerHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    #[cfg(feature = "tls")]
    ca: Option<crate::TestCa>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The listening address (`127.0.0.1:<port>`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// A snapshot of the mailbox as it is now: committed deletions applied,
    /// pending (uncommitted) DELE marks not.
    pub fn mailbox(&self) -> Mailbox {
        lock(&self.shared.store)
            .messages
            .iter()
            .map(|(_, m)| m.clone())
            .collect()
    }

    /// Appends a message to the live mailbox. Sessions already in
    /// TRANSACTION state keep their snapshot; new logins see it.
    pub fn add_message(&self, message: Message) {
        lock(&self.shared.store).push(message);
    }

    /// Replaces the live mailbox (same visibility rule as
    /// [`add_message`](Self::add_message)).
    pub fn set_mailbox(&self, mailbox: Mailbox) {
        let mut store = lock(&self.shared.store);
        store.messages.clear();
        for m in mailbox.messages() {
            store.push(m.clone());
        }
    }

    /// Transcripts of all connections so far, in accept order (index =
    /// [`Transcript::connection`]). A connection still open has a partial
    /// transcript; call [`wait_idle`](Self::wait_idle) first to be sure the
    /// server has read everything the client sent.
    pub fn transcripts(&self) -> Vec<Transcript> {
        lock(&self.shared.transcripts).clone()
    }

    /// Whether any connection's client bytes contain `needle`, e.g.
    /// `handle.client_sent(b"PASS")`.
    pub fn client_sent(&self, needle: impl AsRef<[u8]>) -> bool {
        let needle = needle.as_ref();
        lock(&self.shared.transcripts)
            .iter()
            .any(|t| t.client_contains(needle))
    }

    /// Number of connections accepted so far (refused over-limit ones not
    /// counted).
    pub fn connection_count(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Number of connections currently open (their threads still running).
    pub fn active_connections(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }

    /// Waits until no connection is open, or `timeout` passes. Returns
    /// whether the server is idle.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.active_connections() == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Outcomes of scripted connections so far, in accept order.
    pub fn script_outcomes(&self) -> Vec<ScriptOutcome> {
        lock(&self.shared.scripts).clone()
    }

    /// The verdict of scripted mode, after waiting up to 5 seconds for
    /// running scripts to finish (a script that reached `stall()` counts as
    /// finished; while no connection has been accepted yet it keeps waiting,
    /// so "no connection" is only reported after the full wait). `Ok(())` if
    /// at least one connection ran a script and every script completed all
    /// its steps; otherwise the first problem in accept order: a mismatch,
    /// the client closing early, a timeout, a script still running, an
    /// unexpected extra connection, or no connection at all.
    pub fn script_result(&self) -> Result<(), ScriptError> {
        self.script_result_within(Duration::from_secs(5))
    }

    /// [`script_result`](Self::script_result) with an explicit wait limit.
    pub fn script_result_within(&self, timeout: Duration) -> Result<(), ScriptError> {
        let deadline = Instant::now() + timeout;
        loop {
            let outcomes = self.script_outcomes();
            // Connections accepted but whose thread has not registered its
            // outcome yet count as running too.
            let running = outcomes.is_empty()
                || outcomes.len() < self.connection_count()
                || outcomes.iter().any(|o| o.status == ScriptStatus::Running);
            if !running || Instant::now() >= deadline {
                if outcomes.is_empty() {
                    return Err(ScriptError {
                        connection: None,
                        step: None,
                        message: "no connection ran the script".to_string(),
                    });
                }
                for o in &outcomes {
                    match &o.status {
                        ScriptStatus::Passed => {}
                        ScriptStatus::Running => {
                            return Err(ScriptError {
                                connection: Some(o.connection),
                                step: Some(o.steps_completed),
                                message: "script still running".to_string(),
                            })
                        }
                        ScriptStatus::Failed(msg) => {
                            return Err(ScriptError {
                                connection: Some(o.connection),
                                step: Some(o.steps_completed),
                                message: msg.clone(),
                            })
                        }
                    }
                }
                return Ok(());
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// The CA that signed the server certificate (TLS enabled or
    /// [`tls_ca`](ServerBuilder::tls_ca) given), for clients to trust.
    #[cfg(feature = "tls")]
    pub fn test_ca(&self) -> Option<&crate::TestCa> {
        self.ca.as_ref()
    }

    /// PEM of the CA certificate to trust, if TLS is configured.
    #[cfg(feature = "tls")]
    pub fn ca_cert_pem(&self) -> Option<String> {
        self.ca.as_ref().map(|c| c.cert_pem().to_string())
    }

    /// DER of the CA certificate to trust, if TLS is configured.
    #[cfg(feature = "tls")]
    pub fn ca_cert_der(&self) -> Option<Vec<u8>> {
        self.ca.as_ref().map(|c| c.cert_der().to_vec())
    }

    /// Stops the server now (same as dropping the handle).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        let _ = accept.join();
        for s in lock(&self.shared.sockets).values() {
            let _ = s.shutdown(Shutdown::Both);
        }
        let handles: Vec<JoinHandle<()>> = lock(&self.threads).drain(..).collect();
        for h in handles {
            let _ = h.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

//! Shared, adapter-independent test scenarios for the POP3 adapters.
//!
//! Each [`Scenario`] is data: how to configure a `pop3-testkit` server, how
//! the client connects ([`Connect`]), a list of client [`Step`]s with the
//! expected outcome of each, and checks on the server afterwards
//! ([`ServerCheck`], for example "the client never sent `PASS`").
//! Expected errors are [`ErrorKind`]s (from `pop3-adapter`), which both
//! adapters' `Error::kind()` return, so `pop3-blocking` and `pop3-tokio`
//! run the very same list, each through a small interpreter of its own:
//!
//! ```text
//! pop3_scenarios::run_all(|scenario, port, options| {
//!     // connect to ("127.0.0.1", port) with `options`;
//!     let Some(mut client) = scenario.connected(result)? else { return Ok(()) };
//!     for (i, step) in scenario.steps.iter().enumerate() {
//!         // run the step, `check` its result against its Expect
//!     }
//!     Ok(())   // run_all then runs scenario.check_server
//! });
//! ```
//!
//! Helpers that both interpreters need ([`run_all`], [`check`], [`kind`],
//! [`Collected`], [`check_capa`], [`expected_retr`]) live here too.
// `deny`, not `forbid`: the benches' counting allocator (`bench::Counting`)
// is the one allowed exception.
#![deny(unsafe_code)]
#![deny(missing_docs)]

use std::fmt::Debug;
use std::time::Duration;

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

pub use pop3_adapter::{
    ConnectOptions, Error, ErrorKind, Fingerprint, Timeouts, TlsFailure, TlsOptions, TlsPolicy,
};
use pop3_adapter::{Disposition, MessageSink};
use pop3_proto::{Capabilities, ListEntry, RespCode, Stat, UidlEntry};
use pop3_testkit::{Mailbox, Message, Script, Server, ServerBuilder, ServerHandle, TestCa};

pub mod bench;

/// The user every scenario server knows.
pub const USER: &str = "alice";
/// Her password.
pub const PASSWORD: &str = "secret";

/// The expected outcome of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect<T> {
    /// Success with exactly this value.
    Ok(T),
    /// Success, value not checked.
    Any,
    /// Failure of this kind.
    Err(ErrorKind),
}

/// How the client connects.
#[derive(Debug, Clone)]
pub struct Connect {
    /// TLS policy.
    pub policy: TlsPolicy,
    /// Allow credentials without TLS.
    pub allow_cleartext: bool,
    /// Read timeout (small for stall scenarios).
    pub read_timeout: Duration,
    /// Whether the client trusts the server's test CA (default true).
    pub trust_server_ca: bool,
    /// Whether connecting succeeds.
    pub expect: Expect<()>,
    /// For a TLS failure: its expected cause ([`Error::tls_failure`]).
    pub tls_failure: Option<TlsFailure>,
    /// The first-byte limit of the greeting ([`Timeouts::first_byte`]);
    /// a connect that times out must then have waited for the first byte.
    pub first_byte: Option<Duration>,
    /// Pin the server's certificate (and trust no CA).
    pub pin_server_cert: bool,
}

impl Connect {
    /// Plain TCP, cleartext credentials allowed, connect succeeds.
    pub fn plain() -> Connect {
        Connect {
            policy: TlsPolicy::None,
            allow_cleartext: true,
            read_timeout: Duration::from_secs(10),
            trust_server_ca: true,
            expect: Expect::Any,
            tls_failure: None,
            first_byte: None,
            pin_server_cert: false,
        }
    }
    /// With this policy (cleartext credentials not allowed).
    pub fn policy(policy: TlsPolicy) -> Connect {
        Connect {
            policy,
            allow_cleartext: false,
            ..Connect::plain()
        }
    }
    /// Expects connecting to fail with `kind`.
    pub fn fails(mut self, kind: ErrorKind) -> Connect {
        self.expect = Expect::Err(kind);
        self
    }
    /// Expects connecting to fail with a TLS error of this cause.
    pub fn fails_tls(mut self, cause: TlsFailure) -> Connect {
        self.expect = Expect::Err(ErrorKind::Tls);
        self.tls_failure = Some(cause);
        self
    }
    /// Sets the first-byte limit of the greeting.
    pub fn first_byte(mut self, d: Duration) -> Connect {
        self.first_byte = Some(d);
        self
    }
    /// Pins the server's leaf certificate instead of trusting its CA.
    pub fn pinned(mut self) -> Connect {
        self.pin_server_cert = true;
        self
    }
    /// Does not trust the server's test CA (only the default roots).
    pub fn untrusted(mut self) -> Connect {
        self.trust_server_ca = false;
        self
    }
    /// Sets the read timeout.
    pub fn read_timeout(mut self, d: Duration) -> Connect {
        self.read_timeout = d;
        self
    }
    /// Sets whether cleartext credentials are allowed.
    pub fn cleartext(mut self, yes: bool) -> Connect {
        self.allow_cleartext = yes;
        self
    }
}

/// One client action and its expected outcome. Message numbers are
/// 1-based as on the wire.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Step {
    /// `set_prefetch_listing(true)`: later logins also fetch LIST and UIDL.
    PrefetchListing,
    /// `login(user, password)`.
    Login(&'static str, &'static str, Expect<()>),
    /// `user(name)`.
    User(&'static str, Expect<()>),
    /// `pass(password)`.
    Pass(&'static str, Expect<()>),
    /// `apop(user, secret)`.
    Apop(&'static str, &'static str, Expect<()>),
    /// `stat()`.
    Stat(Expect<Stat>),
    /// `list()`.
    List(Expect<Vec<ListEntry>>),
    /// `list_one(n)`.
    ListOne(u32, Expect<ListEntry>),
    /// `uidl()`: (number, uid) pairs.
    Uidl(Expect<Vec<(u32, String)>>),
    /// `uidl_one(n)`.
    UidlOne(u32, Expect<(u32, String)>),
    /// `retr(n)` (the adapters may use their streaming form).
    Retr(u32, Expect<Vec<u8>>),
    /// `top(n, lines)`.
    Top(u32, u32, Expect<Vec<u8>>),
    /// `dele(n)`.
    Dele(u32, Expect<()>),
    /// `rset()`.
    Rset(Expect<()>),
    /// `noop()`.
    Noop(Expect<()>),
    /// `quit()`.
    Quit(Expect<()>),
    /// `capa()`: these capability names must be present (see
    /// [`capability_names`]).
    Capa(Expect<Vec<&'static str>>),
    /// `utf8()`.
    Utf8(Expect<()>),
    /// `lang(tag)`.
    Lang(&'static str, Expect<()>),
    /// `languages()`: the tags.
    Languages(Expect<Vec<String>>),
    /// Pipelined retrieval of `msgs`, deleting each after it is complete
    /// when `delete`: the (number, bytes) pairs received, in order.
    RetrEach {
        /// Message numbers.
        msgs: Vec<u32>,
        /// Delete each message once received.
        delete: bool,
        /// Expected messages.
        expect: Expect<Vec<(u32, Vec<u8>)>>,
    },
    /// Pipelined `TOP n lines` of `msgs`.
    TopEach {
        /// Message numbers.
        msgs: Vec<u32>,
        /// Body lines.
        lines: u32,
        /// Expected bodies.
        expect: Expect<Vec<(u32, Vec<u8>)>>,
    },
}

/// A check on the server after the client is gone.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ServerCheck {
    /// The client never sent these bytes on any connection (for example
    /// `"PASS"`: no credential on the wire).
    NeverSent(&'static str),
    /// The client sent these bytes.
    Sent(&'static str),
    /// The mailbox holds this many messages (committed deletions).
    MailboxLen(usize),
    /// The first connection's commands, in order.
    Commands(Vec<&'static str>),
}

/// One scenario.
pub struct Scenario {
    /// Unique name.
    pub name: &'static str,
    /// Builds the testkit server (the interpreter calls `.start()`).
    pub server: Box<dyn Fn() -> ServerBuilder + Send + Sync>,
    /// How the client connects.
    pub connect: Connect,
    /// What the client does.
    pub steps: Vec<Step>,
    /// Checks on the server afterwards.
    pub after: Vec<ServerCheck>,
}

impl Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scenario")
            .field("name", &self.name)
            .field("connect", &self.connect)
            .field("steps", &self.steps.len())
            .finish()
    }
}

impl Scenario {
    /// The connect options for this scenario against `server` (trusting the
    /// server's test CA, if it has one).
    pub fn connect_options(&self, server: &ServerHandle) -> ConnectOptions {
        let mut tls = TlsOptions::new().server_name("localhost");
        if self.connect.pin_server_cert {
            if let Some(ca) = server.test_ca() {
                tls = tls
                    .without_default_roots()
                    .pin_sha256(Fingerprint::of(ca.leaf_cert_der()));
            }
        } else if let Some(pem) = server
            .ca_cert_pem()
            .filter(|_| self.connect.trust_server_ca)
        {
            tls = tls.without_default_roots().add_ca_pem(pem.into_bytes());
        }
        let mut timeouts = Timeouts::all(Duration::from_secs(10)).read(self.connect.read_timeout);
        if let Some(d) = self.connect.first_byte {
            timeouts = timeouts.first_byte(d);
        }
        ConnectOptions::new()
            .policy(self.connect.policy)
            .allow_cleartext_credentials(self.connect.allow_cleartext)
            .timeouts(timeouts)
            .tls(tls)
    }

    /// Runs the [`ServerCheck`]s (waits for the server to finish the
    /// connections first).
    pub fn check_server(&self, server: &ServerHandle) -> Result<(), String> {
        server.wait_idle(Duration::from_secs(5));
        for c in &self.after {
            match c {
                ServerCheck::NeverSent(s) => {
                    if server.client_sent(s) {
                        return Err(format!("client sent {s:?} but must not have"));
                    }
                }
                ServerCheck::Sent(s) => {
                    if !server.client_sent(s) {
                        return Err(format!("client never sent {s:?}"));
                    }
                }
                ServerCheck::MailboxLen(n) => {
                    let got = server.mailbox().len();
                    if got != *n {
                        return Err(format!("mailbox has {got} messages, expected {n}"));
                    }
                }
                ServerCheck::Commands(want) => {
                    let t = server.transcripts();
                    let got = t.first().map(|t| t.client_commands()).unwrap_or_default();
                    if got != *want {
                        return Err(format!("client commands {got:?}, expected {want:?}"));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Runs every scenario whose name contains `$POP3_SCENARIO` (all without
/// it), four at a time on threads of their own (most of the time is spent
/// waiting for timeouts): starts its server, calls `run(scenario, port,
/// options)` (the adapter's interpreter: connect, then the steps), then
/// [`Scenario::check_server`]. Prints one line per scenario and panics
/// listing the failures.
pub fn run_all(run: impl Fn(&Scenario, u16, &ConnectOptions) -> Result<(), String> + Sync) {
    let filter = std::env::var("POP3_SCENARIO").unwrap_or_default();
    let all: Vec<Scenario> = all()
        .into_iter()
        .filter(|s| s.name.contains(filter.as_str()))
        .collect();
    assert!(!all.is_empty(), "no scenario matches {filter:?}");
    let results = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(s) = all.get(i) else { return };
                let start = Instant::now();
                let r = s.run_with(&run);
                results.lock().unwrap().push((s.name, r, start.elapsed()));
            });
        }
    });
    let results = results.into_inner().unwrap();
    let mut failures = Vec::new();
    for (name, r, t) in &results {
        let verdict = if r.is_ok() { "ok" } else { "FAILED" };
        eprintln!("scenario {name:45} {verdict} ({t:?})");
        if let Err(e) = r {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

impl Scenario {
    /// Runs the scenario with `run` (an adapter's interpreter) against a
    /// fresh server and returns what the server received on each
    /// connection, in accept order (for comparing adapters byte by byte).
    pub fn client_transcripts(
        &self,
        run: &impl Fn(&Scenario, u16, &ConnectOptions) -> Result<(), String>,
    ) -> Result<Vec<Vec<u8>>, String> {
        let server = (self.server)()
            .start()
            .map_err(|e| format!("server start: {e}"))?;
        let options = self.connect_options(&server);
        run(self, server.port(), &options)?;
        self.check_server(&server)?;
        let mut t = server.transcripts();
        t.sort_by_key(|t| t.connection);
        Ok(t.into_iter().map(|t| t.client).collect())
    }

    fn run_with(
        &self,
        run: &impl Fn(&Scenario, u16, &ConnectOptions) -> Result<(), String>,
    ) -> Result<(), String> {
        let server = (self.server)()
            .start()
            .map_err(|e| format!("server start: {e}"))?;
        let options = self.connect_options(&server);
        run(self, server.port(), &options)?;
        self.check_server(&server)
    }

    /// Checks the result of connecting against [`Connect::expect`]; the
    /// client, if there is one to run the steps on.
    pub fn connected<C>(&self, result: Result<C, Error>) -> Result<Option<C>, String> {
        let (client, got) = match result {
            Ok(c) => (Some(c), Ok(())),
            Err(e) => {
                if let Some(want) = self.connect.tls_failure {
                    if e.tls_failure() != Some(want) {
                        return Err(format!("connect: expected TLS failure {want:?}, got {e}"));
                    }
                }
                if self.connect.first_byte.is_some() && e.kind() == ErrorKind::Timeout {
                    let waited = match &e {
                        Error::Timeout(io) => io
                            .get_ref()
                            .and_then(|i| i.downcast_ref::<pop3_proto::session::SessionError>())
                            .and_then(|s| match s {
                                pop3_proto::session::SessionError::Timeout(t) => {
                                    Some(t.waiting_for)
                                }
                                _ => None,
                            }),
                        _ => None,
                    };
                    if waited != Some(pop3_proto::session::Waiting::FirstByte) {
                        return Err(format!("connect: expected a first-byte timeout, got {e}"));
                    }
                }
                (None, Err(e.kind()))
            }
        };
        check("connect", got, &self.connect.expect)?;
        Ok(client)
    }
}

/// A result with its error reduced to its [`ErrorKind`], for [`check`].
pub fn kind<T>(r: Result<T, Error>) -> Result<T, ErrorKind> {
    r.map_err(|e| e.kind())
}

/// [`kind`], value dropped.
pub fn unit<T>(r: Result<T, Error>) -> Result<(), ErrorKind> {
    kind(r).map(|_| ())
}

/// (number, uid) pairs of a UIDL listing, for [`Step::Uidl`].
pub fn uidl_pairs(v: Vec<UidlEntry>) -> Vec<(u32, String)> {
    v.into_iter().map(|u| uidl_pair(&u)).collect()
}

/// The (number, uid) pair of one UIDL entry, for [`Step::UidlOne`].
pub fn uidl_pair(u: &UidlEntry) -> (u32, String) {
    (u.number, u.uid.to_string())
}

/// Checks a [`Step::Capa`] result: the names expected must be present.
pub fn check_capa(
    got: Result<Capabilities, Error>,
    expect: &Expect<Vec<&'static str>>,
) -> Result<(), String> {
    match (kind(got), expect) {
        (Ok(caps), Expect::Ok(want)) if !capabilities_include(&caps, want) => {
            Err(format!("capa: {caps:?} lacks one of {want:?}"))
        }
        (got, Expect::Ok(_) | Expect::Any) => check("capa", got.map(|_| ()), &Expect::Any),
        (got, Expect::Err(k)) => check("capa", got.map(|_| ()), &Expect::Err(k.clone())),
    }
}

/// A [`MessageSink`] for [`Step::RetrEach`] / [`Step::TopEach`]: collects
/// (number, bytes), checks each `octets`, deletes when asked.
#[derive(Debug, Default)]
pub struct Collected {
    delete: bool,
    current: Vec<u8>,
    /// The messages received, in order.
    pub done: Vec<(u32, Vec<u8>)>,
}

impl Collected {
    /// Collects, answering [`Disposition::Delete`] when `delete`.
    pub fn new(delete: bool) -> Collected {
        Collected {
            delete,
            ..Collected::default()
        }
    }
}

impl MessageSink for Collected {
    fn begin(&mut self, _: u32) -> io::Result<()> {
        self.current.clear();
        Ok(())
    }
    fn data(&mut self, _: u32, chunk: &[u8]) -> io::Result<()> {
        self.current.extend_from_slice(chunk);
        Ok(())
    }
    fn end(&mut self, n: u32, octets: u64) -> io::Result<Disposition> {
        assert_eq!(octets as usize, self.current.len());
        self.done.push((n, std::mem::take(&mut self.current)));
        Ok(if self.delete {
            Disposition::Delete
        } else {
            Disposition::Keep
        })
    }
}

fn summarize<T: Debug>(v: &T) -> String {
    let s = format!("{v:?}");
    if s.len() > 400 {
        let head: String = s.chars().take(400).collect();
        format!("{head}... ({} chars)", s.len())
    } else {
        s
    }
}

/// Compares a step's result (its error already mapped to an
/// [`ErrorKind`]) with the expectation; `Err` describes the mismatch.
pub fn check<T: PartialEq + Debug>(
    what: &str,
    got: Result<T, ErrorKind>,
    expect: &Expect<T>,
) -> Result<(), String> {
    match (expect, got) {
        (Expect::Any, Ok(_)) => Ok(()),
        (Expect::Ok(want), Ok(got)) if *want == got => Ok(()),
        (Expect::Err(want), Err(got)) if *want == got => Ok(()),
        (want, got) => Err(format!(
            "{what}: expected {}, got {}",
            summarize(want),
            summarize(&got)
        )),
    }
}

/// The capability names present in `caps`, uppercased (`TOP`, `USER`,
/// `SASL`, `PIPELINING`, `STLS`, ...), for [`Step::Capa`].
pub fn capability_names(caps: &Capabilities) -> Vec<String> {
    let mut v = Vec::new();
    let flags = [
        ("TOP", caps.top),
        ("USER", caps.user),
        ("SASL", !caps.sasl.is_empty()),
        ("RESP-CODES", caps.resp_codes),
        ("AUTH-RESP-CODE", caps.auth_resp_code),
        ("PIPELINING", caps.pipelining),
        ("UIDL", caps.uidl),
        ("STLS", caps.stls),
        ("UTF8", caps.utf8.is_some()),
        ("LANG", caps.lang),
        ("EXPIRE", caps.expire.is_some()),
        ("LOGIN-DELAY", caps.login_delay.is_some()),
        ("IMPLEMENTATION", caps.implementation.is_some()),
    ];
    for (name, present) in flags {
        if present {
            v.push(name.to_string());
        }
    }
    v
}

/// Whether every name in `want` is in `caps`.
pub fn capabilities_include(caps: &Capabilities, want: &[&str]) -> bool {
    let have = capability_names(caps);
    want.iter()
        .all(|w| have.iter().any(|h| h.eq_ignore_ascii_case(w)))
}

/// What a client receives for a testkit message: the stored bytes, plus
/// the CRLF the server adds when they do not end with a newline.
pub fn expected_retr(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    if !v.is_empty() && !v.ends_with(b"\n") {
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// What `TOP n lines` returns for a testkit message.
pub fn expected_top(data: &[u8], lines: usize) -> Vec<u8> {
    let mut end = 0;
    let mut in_headers = true;
    let mut body = 0;
    for line in data.split_inclusive(|&b| b == b'\n') {
        if in_headers {
            end += line.len();
            if line == b"\r\n" || line == b"\n" {
                in_headers = false;
            }
        } else {
            if body >= lines {
                break;
            }
            end += line.len();
            body += 1;
        }
    }
    expected_retr(&data[..end])
}

fn bare_lf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    for line in data.split_inclusive(|&b| b == b'\n') {
        match line.strip_suffix(b"\r\n") {
            Some(l) => {
                out.extend_from_slice(l);
                out.push(b'\n');
            }
            None => out.extend_from_slice(line),
        }
    }
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out
}

fn mailbox() -> Mailbox {
    Mailbox::sample()
}

fn msg(n: u32) -> Vec<u8> {
    expected_retr(mailbox().messages()[n as usize - 1].data())
}

fn base() -> ServerBuilder {
    Server::builder().user(USER, PASSWORD).mailbox(mailbox())
}

fn tls_base() -> ServerBuilder {
    base().tls_ca(TestCa::generate())
}

fn ok() -> Expect<()> {
    Expect::Any
}

fn err(kind: ErrorKind) -> Expect<()> {
    Expect::Err(kind)
}

fn server_err(code: Option<RespCode>) -> ErrorKind {
    ErrorKind::Server(code)
}

fn login() -> Step {
    Step::Login(USER, PASSWORD, ok())
}

fn all_messages() -> Vec<(u32, Vec<u8>)> {
    (1..=mailbox().len() as u32).map(|n| (n, msg(n))).collect()
}

/// A scripted server that offers STLS and `SASL SCRAM-SHA-256
/// SCRAM-SHA-256-PLUS`, upgrades, and requires the client's login to pick
/// `SCRAM-SHA-256-PLUS` (then refuses it with `-ERR [AUTH]`), and the
/// options (policy `Required`) that trust its CA, and the CA. For the adapters'
/// channel-binding tests: after STLS the adapter must hand the layer the
/// `tls-exporter` data, or the plan falls back to plain SCRAM and the
/// script fails.
pub fn scram_plus_after_stls() -> (ServerHandle, ConnectOptions, TestCa) {
    let ca = TestCa::generate();
    let caps = "+OK\r\nSTLS\r\nSASL SCRAM-SHA-256 SCRAM-SHA-256-PLUS\r\n.\r\n";
    let script = Script::new()
        .send(b"+OK hi\r\n")
        .expect_line("CAPA")
        .send(caps)
        .expect_line("STLS")
        .send(b"+OK go\r\n")
        .start_tls()
        .expect_line("CAPA")
        .send(caps)
        .expect_prefix("AUTH SCRAM-SHA-256-PLUS ")
        .send(b"-ERR [AUTH] not today\r\n")
        .expect_line("QUIT")
        .send(b"+OK\r\n");
    let server = Server::builder()
        .script(script)
        .stls(true)
        .tls_ca(ca.clone())
        .start()
        .expect("scripted server");
    let options = ConnectOptions::new().policy(TlsPolicy::Required).tls(
        TlsOptions::new()
            .without_default_roots()
            .add_ca_pem(ca.cert_pem().as_bytes().to_vec())
            .server_name("localhost"),
    );
    (server, options, ca)
}

/// The scripted server of the adapters' bring-your-own-TLS tests: it
/// offers STLS and, after `+OK`, stays in the clear (the test's "TLS" is
/// an identity upgrade); it expects CAPA, then USER/PASS for
/// alice/secret, CAPA again, STAT (2 messages) and QUIT.
pub fn byo_tls_script() -> Script {
    Script::new()
        .send(b"+OK hi\r\n")
        .expect_line("CAPA")
        .send(b"+OK\r\nSTLS\r\nUSER\r\n.\r\n")
        .expect_line("STLS")
        .send(b"+OK go\r\n")
        .expect_line("CAPA")
        .send(b"+OK\r\nUSER\r\n.\r\n")
        .expect_line("USER alice")
        .send(b"+OK\r\n")
        .expect_line("PASS secret")
        .send(b"+OK\r\n")
        .expect_line("CAPA")
        .send(b"+OK\r\nUSER\r\n.\r\n")
        .expect_line("STAT")
        .send(b"+OK 2 20\r\n")
        .expect_line("QUIT")
        .send(b"+OK\r\n")
}

/// Sends `bytes` one at a time, 50 ms apart (a server that never stalls
/// long enough for a per-read timeout): the whole response takes far
/// longer than the 300 ms the trickling scenarios allow it.
fn trickle(mut script: Script, bytes: &[u8]) -> Script {
    for b in bytes {
        script = script.send([*b]).sleep(Duration::from_millis(50));
    }
    script
}

/// Greeting, CAPA refused, USER/PASS accepted: what `login()` over
/// `Connect::plain()` does.
fn logged_in_script() -> Script {
    Script::new()
        .send(b"+OK hi\r\n")
        .expect_line("CAPA")
        .send(b"-ERR unknown command\r\n")
        .expect_prefix("USER")
        .send(b"+OK\r\n")
        .expect_prefix("PASS")
        .send(b"+OK\r\n")
}

fn scenario(
    name: &'static str,
    server: impl Fn() -> ServerBuilder + Send + Sync + 'static,
    connect: Connect,
    steps: Vec<Step>,
    after: Vec<ServerCheck>,
) -> Scenario {
    Scenario {
        name,
        server: Box::new(server),
        connect,
        steps,
        after,
    }
}

/// Every scenario.
pub fn all() -> Vec<Scenario> {
    let mb = mailbox();
    let count = mb.len() as u32;
    let total = mb.total_size() as u64;
    let list: Vec<ListEntry> = mb
        .messages()
        .iter()
        .enumerate()
        .map(|(i, m)| ListEntry {
            number: i as u32 + 1,
            octets: m.size() as u64,
        })
        .collect();
    let uidl: Vec<(u32, String)> = mb
        .messages()
        .iter()
        .enumerate()
        .map(|(i, m)| (i as u32 + 1, m.uid().to_string()))
        .collect();
    let tricky = Message::tricky("tricky-1");
    let tricky_bytes = expected_retr(tricky.data());
    let big = Message::new("big-1", {
        // 8 MB of lines, a tenth starting with '.', to exercise streaming.
        let mut v = Vec::with_capacity(8 << 20);
        v.extend_from_slice(b"Subject: big\r\n\r\n");
        let mut i = 0u32;
        while v.len() < 8 << 20 {
            if i.is_multiple_of(10) {
                v.push(b'.');
            }
            v.extend_from_slice(format!("line {i} of a big message\r\n").as_bytes());
            i += 1;
        }
        v
    });
    let big_bytes = big.data().to_vec();
    let first = msg(1);
    let top1 = expected_top(mb.messages()[0].data(), 0);
    let top1_2 = expected_top(mb.messages()[0].data(), 2);

    let mut v = vec![
        scenario(
            "every_command_plain",
            base,
            Connect::plain(),
            vec![
                Step::Capa(Expect::Ok(vec![
                    "TOP",
                    "USER",
                    "UIDL",
                    "PIPELINING",
                    "SASL",
                ])),
                Step::User(USER, ok()),
                Step::Pass(PASSWORD, ok()),
                Step::Stat(Expect::Ok(Stat {
                    count,
                    octets: total,
                })),
                Step::List(Expect::Ok(list.clone())),
                Step::ListOne(2, Expect::Ok(list[1])),
                Step::Uidl(Expect::Ok(uidl.clone())),
                Step::UidlOne(3, Expect::Ok(uidl[2].clone())),
                Step::Retr(1, Expect::Ok(first.clone())),
                Step::Retr(5, Expect::Ok(msg(5))),
                Step::Top(1, 0, Expect::Ok(top1.clone())),
                Step::Top(1, 2, Expect::Ok(top1_2)),
                Step::Dele(1, ok()),
                Step::Retr(1, Expect::Err(server_err(None))),
                Step::Stat(Expect::Ok(Stat {
                    count: count - 1,
                    octets: total - mb.messages()[0].size() as u64,
                })),
                Step::Rset(ok()),
                Step::Noop(ok()),
                Step::Stat(Expect::Ok(Stat {
                    count,
                    octets: total,
                })),
                Step::Quit(ok()),
                // The session is over: Closed, not a usage error.
                Step::Noop(err(ErrorKind::Closed)),
            ],
            vec![
                ServerCheck::MailboxLen(count as usize),
                ServerCheck::Commands(vec![
                    "CAPA", "CAPA", "USER", "PASS", "STAT", "LIST", "LIST", "UIDL", "UIDL", "RETR",
                    "RETR", "TOP", "TOP", "DELE", "RETR", "STAT", "RSET", "NOOP", "STAT", "QUIT",
                ]),
            ],
        ),
        scenario(
            // LIST and UIDL come with the login, answer the next list() and
            // uidl() without being sent again; a DELE drops them.
            "prefetched_listing",
            base,
            Connect::plain(),
            vec![
                Step::PrefetchListing,
                login(),
                Step::List(Expect::Ok(list.clone())),
                Step::Uidl(Expect::Ok(uidl.clone())),
                Step::Dele(1, ok()),
                Step::List(Expect::Ok(list[1..].to_vec())),
                Step::Quit(ok()),
            ],
            vec![ServerCheck::Commands(vec![
                "CAPA", "AUTH", "CAPA", "LIST", "UIDL", "DELE", "LIST", "QUIT",
            ])],
        ),
        scenario(
            "dele_quit_commits",
            base,
            Connect::plain(),
            vec![
                login(),
                Step::Dele(1, ok()),
                Step::Dele(2, ok()),
                Step::Dele(2, err(server_err(None))),
                Step::Quit(ok()),
            ],
            vec![ServerCheck::MailboxLen(count as usize - 2)],
        ),
        scenario(
            "drop_without_quit_commits_nothing",
            base,
            Connect::plain(),
            vec![login(), Step::Dele(1, ok())],
            vec![ServerCheck::MailboxLen(count as usize)],
        ),
        scenario(
            "stls_required_login",
            || tls_base().stls(true),
            Connect::policy(TlsPolicy::Required),
            vec![
                Step::Capa(Expect::Ok(vec!["USER", "SASL"])),
                login(),
                Step::Retr(1, Expect::Ok(first.clone())),
                Step::Quit(ok()),
            ],
            vec![ServerCheck::Sent("STLS"), ServerCheck::Sent("AUTH PLAIN")],
        ),
        scenario(
            "implicit_tls_login",
            || tls_base().implicit_tls(true),
            Connect::policy(TlsPolicy::Implicit),
            vec![
                login(),
                Step::Stat(Expect::Ok(Stat {
                    count,
                    octets: total,
                })),
                Step::RetrEach {
                    msgs: (1..=count).collect(),
                    delete: false,
                    expect: Expect::Ok(all_messages()),
                },
                Step::Quit(ok()),
            ],
            vec![ServerCheck::NeverSent("STLS")],
        ),
        scenario(
            "implicit_tls_apop_user_pass",
            || {
                tls_base()
                    .implicit_tls(true)
                    .capabilities(["TOP", "UIDL", "USER"])
            },
            Connect::policy(TlsPolicy::Implicit),
            vec![login(), Step::Noop(ok()), Step::Quit(ok())],
            // No SASL offered, APOP timestamp over TLS: APOP is chosen.
            vec![
                ServerCheck::Sent("APOP alice "),
                ServerCheck::NeverSent("PASS"),
            ],
        ),
        scenario(
            "implicit_tls_wrong_ca_fails",
            || tls_base().implicit_tls(true),
            Connect::policy(TlsPolicy::Implicit)
                .untrusted()
                .fails_tls(TlsFailure::UnknownIssuer),
            vec![],
            vec![
                ServerCheck::NeverSent("USER"),
                ServerCheck::NeverSent("AUTH"),
            ],
        ),
        scenario(
            "implicit_tls_pinned_certificate",
            || tls_base().implicit_tls(true),
            Connect::policy(TlsPolicy::Implicit).pinned(),
            vec![login(), Step::Noop(ok()), Step::Quit(ok())],
            vec![ServerCheck::Sent("AUTH PLAIN")],
        ),
        scenario(
            "implicit_tls_to_a_plain_port_is_not_tls",
            base,
            Connect::policy(TlsPolicy::Implicit).fails_tls(TlsFailure::NotTls),
            vec![],
            vec![
                ServerCheck::NeverSent("USER"),
                ServerCheck::NeverSent("CAPA"),
            ],
        ),
        scenario(
            "stls_to_an_implicit_tls_port_fails_at_the_first_byte",
            || tls_base().implicit_tls(true),
            Connect::policy(TlsPolicy::Required)
                .first_byte(Duration::from_millis(300))
                .fails(ErrorKind::Timeout),
            vec![],
            vec![ServerCheck::NeverSent("CAPA")],
        ),
        scenario(
            "stls_required_not_offered",
            base,
            Connect::policy(TlsPolicy::Required).fails(ErrorKind::Insecure),
            vec![],
            vec![
                ServerCheck::NeverSent("USER"),
                ServerCheck::NeverSent("PASS"),
                ServerCheck::NeverSent("AUTH"),
                ServerCheck::NeverSent("APOP"),
            ],
        ),
        scenario(
            "stls_required_refused",
            || {
                base()
                    .add_capability("STLS")
                    .override_reply("STLS", b"-ERR [SYS/TEMP] no TLS today\r\n".to_vec())
            },
            Connect::policy(TlsPolicy::Required).fails(ErrorKind::Insecure),
            vec![],
            vec![
                ServerCheck::NeverSent("USER"),
                ServerCheck::NeverSent("PASS"),
            ],
        ),
        scenario(
            "stls_response_injection_refused",
            || {
                tls_base()
                    .stls(true)
                    .stls_injection(b"+OK injected\r\n".to_vec())
            },
            Connect::policy(TlsPolicy::Required).fails(ErrorKind::Protocol),
            vec![],
            vec![
                ServerCheck::NeverSent("USER"),
                ServerCheck::NeverSent("PASS"),
            ],
        ),
        scenario(
            "stls_opportunistic_not_offered_no_credentials",
            base,
            Connect::policy(TlsPolicy::Opportunistic),
            vec![
                Step::Login(USER, PASSWORD, err(ErrorKind::Insecure)),
                Step::User(USER, err(ErrorKind::Insecure)),
                Step::Pass(PASSWORD, err(ErrorKind::Insecure)),
                Step::Apop(USER, PASSWORD, err(ErrorKind::Insecure)),
                Step::Noop(err(ErrorKind::Usage)),
                Step::Quit(ok()),
            ],
            vec![
                ServerCheck::NeverSent("USER"),
                ServerCheck::NeverSent("PASS"),
                ServerCheck::NeverSent("APOP"),
                ServerCheck::NeverSent("AUTH"),
            ],
        ),
        scenario(
            "stls_opportunistic_offered",
            || tls_base().stls(true),
            Connect::policy(TlsPolicy::Opportunistic),
            vec![login(), Step::Noop(ok()), Step::Quit(ok())],
            vec![ServerCheck::Sent("STLS")],
        ),
        scenario(
            "apop_cleartext_allowed",
            base,
            Connect::plain(),
            vec![
                Step::Apop(USER, "wrong", err(server_err(Some(RespCode::Auth)))),
                Step::Apop(USER, PASSWORD, ok()),
                Step::Stat(Expect::Any),
                Step::Quit(ok()),
            ],
            vec![],
        ),
        scenario(
            "wrong_password_auth_code",
            base,
            Connect::plain(),
            vec![
                Step::User(USER, ok()),
                Step::Pass("wrong", err(server_err(Some(RespCode::Auth)))),
                Step::Login(USER, "wrong", err(server_err(Some(RespCode::Auth)))),
                Step::Stat(Expect::Err(ErrorKind::Usage)),
                login(),
                Step::Stat(Expect::Any),
            ],
            vec![],
        ),
        scenario(
            "in_use",
            || base().in_use(true),
            Connect::plain(),
            vec![Step::Login(
                USER,
                PASSWORD,
                err(server_err(Some(RespCode::InUse))),
            )],
            vec![],
        ),
        scenario(
            "login_delay",
            || base().login_delay(true),
            Connect::plain(),
            vec![Step::Login(
                USER,
                PASSWORD,
                err(server_err(Some(RespCode::LoginDelay))),
            )],
            vec![],
        ),
        scenario(
            "retr_sys_temp_then_continue",
            || base().fail_command("RETR", "[SYS/TEMP] storage unavailable"),
            Connect::plain(),
            vec![
                login(),
                Step::Retr(1, Expect::Err(server_err(Some(RespCode::SysTemp)))),
                Step::Noop(ok()),
                Step::Top(1, 0, Expect::Ok(top1.clone())),
            ],
            vec![],
        ),
        scenario(
            "resp_codes_perm_other_none",
            || {
                base()
                    .fail_command("TOP", "[SYS/PERM] gone")
                    .fail_command("UIDL", "[X-VENDOR/THING] odd")
                    .fail_command("LIST", "plain failure")
                    .fail_command("UTF8", "[UTF8] no")
            },
            Connect::plain(),
            vec![
                Step::Utf8(err(server_err(Some(RespCode::Utf8)))),
                login(),
                Step::Top(1, 0, Expect::Err(server_err(Some(RespCode::SysPerm)))),
                Step::Uidl(Expect::Err(server_err(Some(RespCode::Other(
                    "X-VENDOR/THING".into(),
                ))))),
                Step::List(Expect::Err(server_err(None))),
                Step::Utf8(err(ErrorKind::Usage)),
            ],
            vec![],
        ),
        scenario(
            "wrong_state_is_usage_error",
            base,
            Connect::plain(),
            vec![
                Step::Stat(Expect::Err(ErrorKind::Usage)),
                Step::Retr(1, Expect::Err(ErrorKind::Usage)),
                Step::Dele(1, err(ErrorKind::Usage)),
                login(),
                Step::Retr(0, Expect::Err(ErrorKind::Usage)),
                Step::User(USER, err(ErrorKind::Usage)),
                Step::Retr(99, Expect::Err(server_err(None))),
            ],
            vec![ServerCheck::NeverSent("STAT")],
        ),
        scenario(
            "truncated_body",
            || base().truncate_retr(1, 40),
            Connect::plain(),
            vec![
                login(),
                Step::Retr(1, Expect::Err(ErrorKind::Truncated)),
                Step::Noop(err(ErrorKind::Truncated)),
            ],
            vec![ServerCheck::MailboxLen(count as usize)],
        ),
        scenario(
            "truncated_body_in_batch_never_deleted",
            || base().truncate_retr(3, 100),
            Connect::plain(),
            vec![
                login(),
                Step::RetrEach {
                    msgs: (1..=count).collect(),
                    delete: true,
                    expect: Expect::Err(ErrorKind::Truncated),
                },
            ],
            vec![
                ServerCheck::MailboxLen(count as usize),
                ServerCheck::NeverSent("DELE 3"),
                ServerCheck::NeverSent("DELE 4"),
            ],
        ),
        scenario(
            "closed_mid_session",
            || {
                Server::builder().script(
                    Script::new()
                        .send(b"+OK hi\r\n")
                        .expect_line("CAPA")
                        .send(b"-ERR unknown command\r\n")
                        .expect_prefix("USER")
                        .send(b"+OK\r\n")
                        .expect_prefix("PASS")
                        .send(b"+OK\r\n")
                        .expect_line("NOOP")
                        .send(b"+OK\r\n")
                        .expect_line("NOOP")
                        .close(),
                )
            },
            Connect::plain(),
            vec![
                login(),
                Step::Noop(ok()),
                Step::Noop(err(ErrorKind::Closed)),
                Step::Noop(err(ErrorKind::Closed)),
            ],
            vec![],
        ),
        scenario(
            "stalled_server_times_out",
            || base().stall_on("STAT"),
            Connect::plain().read_timeout(Duration::from_millis(300)),
            vec![
                login(),
                Step::Stat(Expect::Err(ErrorKind::Timeout)),
                Step::Noop(err(ErrorKind::Timeout)),
            ],
            vec![],
        ),
        scenario(
            "trickling_greeting_times_out",
            || {
                Server::builder().script(trickle(
                    Script::new(),
                    b"+OK a greeting that trickles in\r\n",
                ))
            },
            Connect::plain()
                .read_timeout(Duration::from_millis(300))
                .fails(ErrorKind::Timeout),
            vec![],
            vec![],
        ),
        scenario(
            "trickling_status_line_times_out",
            || {
                Server::builder().script(trickle(
                    logged_in_script().expect_line("NOOP"),
                    b"+OK a status line that trickles in\r\n",
                ))
            },
            Connect::plain().read_timeout(Duration::from_millis(300)),
            vec![
                login(),
                Step::Noop(err(ErrorKind::Timeout)),
                Step::Noop(err(ErrorKind::Timeout)),
            ],
            vec![],
        ),
        scenario(
            "trickling_listing_times_out",
            || {
                Server::builder().script(trickle(
                    logged_in_script().expect_line("LIST").send(b"+OK\r\n"),
                    b"1 10\r\n2 10\r\n3 10\r\n4 10\r\n5 10\r\n.\r\n",
                ))
            },
            Connect::plain().read_timeout(Duration::from_millis(300)),
            vec![login(), Step::List(Expect::Err(ErrorKind::Timeout))],
            vec![],
        ),
        scenario(
            "trickling_body_times_out",
            || {
                Server::builder().script(trickle(
                    logged_in_script().expect_line("RETR 1").send(b"+OK\r\n"),
                    b"Subject: slow\r\n\r\nbody\r\nbody\r\n.\r\n",
                ))
            },
            Connect::plain().read_timeout(Duration::from_millis(300)),
            vec![login(), Step::Retr(1, Expect::Err(ErrorKind::Timeout))],
            vec![],
        ),
        scenario(
            "stalled_greeting_times_out",
            || base().greeting_delay(Duration::from_secs(1)),
            Connect::plain()
                .read_timeout(Duration::from_millis(300))
                .fails(ErrorKind::Timeout),
            vec![],
            vec![],
        ),
        scenario(
            "overlong_greeting_bounded",
            || base().overlong_greeting(100_000),
            Connect::plain().fails(ErrorKind::Protocol),
            vec![],
            vec![],
        ),
        scenario(
            "overlong_status_line_bounded",
            || {
                let mut line = b"+OK ".to_vec();
                line.extend_from_slice(&vec![b'x'; 1 << 20]);
                base().override_reply("NOOP", line)
            },
            Connect::plain(),
            vec![login(), Step::Noop(err(ErrorKind::Protocol))],
            vec![],
        ),
        scenario(
            "garbage_greeting",
            || base().garbage_greeting(b"220 smtp.example.com ESMTP\r\n".to_vec()),
            Connect::plain().fails(ErrorKind::Protocol),
            vec![],
            vec![],
        ),
        scenario(
            "greeting_refused",
            || Server::builder().script(Script::new().send(b"-ERR [SYS/TEMP] too busy\r\n")),
            Connect::plain().fails(server_err(Some(RespCode::SysTemp))),
            vec![],
            vec![],
        ),
        scenario(
            "quirks_bare_lf_bare_ok_split_writes",
            || base().bare_lf(true).bare_ok(true).split_writes(7),
            Connect::plain(),
            vec![
                login(),
                Step::Retr(1, Expect::Ok(bare_lf(&first))),
                Step::Retr(5, Expect::Ok(bare_lf(&msg(5)))),
                Step::List(Expect::Ok(list.clone())),
                Step::Quit(ok()),
            ],
            vec![],
        ),
        scenario(
            "quirk_lf_terminator",
            || base().lf_terminator(true),
            Connect::plain(),
            vec![
                login(),
                Step::Retr(1, Expect::Ok(first.clone())),
                Step::Quit(ok()),
            ],
            vec![],
        ),
        scenario(
            "no_capa_user_pass_lockstep_batch",
            || base().capa_refused(true),
            Connect::plain(),
            vec![
                login(),
                Step::RetrEach {
                    msgs: (1..=count).collect(),
                    delete: false,
                    expect: Expect::Ok(all_messages()),
                },
                Step::Quit(ok()),
            ],
            vec![
                ServerCheck::Sent("USER alice"),
                ServerCheck::NeverSent("AUTH"),
            ],
        ),
        scenario(
            "pipelined_retr_each_delete",
            base,
            Connect::plain(),
            vec![
                login(),
                Step::RetrEach {
                    msgs: (1..=count).collect(),
                    delete: true,
                    expect: Expect::Ok(all_messages()),
                },
                Step::Stat(Expect::Ok(Stat {
                    count: 0,
                    octets: 0,
                })),
                Step::Quit(ok()),
            ],
            vec![ServerCheck::MailboxLen(0)],
        ),
        scenario(
            "unpipelined_retr_each",
            || base().no_pipelining(),
            Connect::plain(),
            vec![
                login(),
                Step::RetrEach {
                    msgs: (1..=count).collect(),
                    delete: false,
                    expect: Expect::Ok(all_messages()),
                },
                Step::Quit(ok()),
            ],
            vec![],
        ),
        scenario(
            "top_each_headers",
            base,
            Connect::plain(),
            vec![
                login(),
                Step::TopEach {
                    msgs: vec![1, 2],
                    lines: 0,
                    expect: Expect::Ok(vec![
                        (1, top1.clone()),
                        (2, expected_top(mb.messages()[1].data(), 0)),
                    ]),
                },
                Step::RetrEach {
                    msgs: vec![1, 99, 2],
                    delete: false,
                    expect: Expect::Ok(vec![(1, first.clone()), (2, msg(2))]),
                },
            ],
            vec![],
        ),
        scenario(
            "quit_fails_update",
            || base().quit_fails(true),
            Connect::plain(),
            vec![
                login(),
                Step::Dele(1, ok()),
                Step::Quit(err(server_err(Some(RespCode::SysTemp)))),
            ],
            vec![ServerCheck::MailboxLen(count as usize)],
        ),
        scenario(
            "tricky_and_big_messages",
            move || base().mailbox(Mailbox::from(vec![tricky.clone(), big.clone()])),
            Connect::plain(),
            vec![
                login(),
                Step::Retr(1, Expect::Ok(tricky_bytes.clone())),
                Step::Retr(2, Expect::Ok(big_bytes.clone())),
                Step::RetrEach {
                    msgs: vec![1, 2],
                    delete: false,
                    expect: Expect::Ok(vec![(1, tricky_bytes), (2, big_bytes)]),
                },
                Step::Quit(ok()),
            ],
            vec![],
        ),
        scenario(
            "utf8_and_lang",
            || base().add_capability("UTF8").add_capability("LANG"),
            Connect::plain(),
            vec![
                Step::Capa(Expect::Ok(vec!["UTF8", "LANG"])),
                Step::Utf8(ok()),
                Step::Languages(Expect::Any),
                Step::Lang("en", ok()),
                login(),
                Step::Quit(ok()),
            ],
            vec![ServerCheck::Sent("UTF8"), ServerCheck::Sent("LANG en")],
        ),
    ];
    v.sort_by_key(|s| s.name);
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_unique() {
        let all = super::all();
        let mut names: Vec<_> = all.iter().map(|s| s.name).collect();
        names.dedup();
        assert_eq!(names.len(), all.len());
    }
}

//! The fuzz targets' logic: input decoding and the check functions.
//!
//! Shared, byte for byte, by the cargo-fuzz targets (`fuzz/src/lib.rs`) and
//! the corpus replay test `pop3-proto/tests/fuzz_corpus.rs`, which includes
//! this file and `reference.rs` with `#[path]`. So it depends only on
//! `pop3_proto`'s public API and `std` (plus `super::reference`); parts that
//! need the core's `#[cfg(fuzzing)] pub mod fuzzing` are behind
//! `#[cfg(fuzzing)]` and only run under `cargo fuzz`.
//!
//! Every input type decodes from *any* byte string (`Type::decode`) with the
//! small [`Reader`] below, and encodes back with [`Writer`] (used to write the
//! seed corpus). A fuzz input file therefore means the same thing to
//! libFuzzer and to `cargo test`, without the `arbitrary` crate. Every check
//! function panics (with a message saying which property broke) on a
//! violation, and returns normally otherwise.
#![allow(dead_code)]

use std::collections::VecDeque;

use pop3_proto::sasl::{
    ChannelBinding, CramMd5, Login, Mechanism, OAuthBearer, Plain, SaslError, Scram, ScramHash,
    XOAuth2,
};
use pop3_proto::{
    Capabilities, Client, Command, CommandError, CommandKind, Config, Event, Expire, MechanismName,
    MsgNum, OwnedEvent, Pipelining, ProtocolError, RespCode, Response, Secret, SessionState,
    UsageError, MAX_COMMAND_LINE,
};

use super::reference as r;

// ===========================================================================
// Byte reader / writer
// ===========================================================================

/// Reads structured values from arbitrary bytes; past the end every read
/// returns zero / empty, so any byte string decodes.
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }
    pub fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }
    /// A number: a byte below 0xF0 is itself, otherwise a little-endian
    /// u32 follows (so small numbers are cheap, large ones possible).
    pub fn num(&mut self) -> u32 {
        match self.byte() {
            b @ 0..=0xEF => u32::from(b),
            _ => u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()]),
        }
    }
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        head
    }
    /// A length-prefixed (one byte) blob of at most 255 bytes.
    pub fn blob(&mut self) -> &'a [u8] {
        let n = usize::from(self.byte());
        self.bytes(n)
    }
    pub fn text(&mut self) -> String {
        String::from_utf8_lossy(self.blob()).into_owned()
    }
    pub fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.data)
    }
}

/// The inverse of [`Reader`], for writing seed inputs.
#[derive(Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    pub fn byte(&mut self, b: u8) -> &mut Self {
        self.0.push(b);
        self
    }
    pub fn bool(&mut self, b: bool) -> &mut Self {
        self.byte(u8::from(b))
    }
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn num(&mut self, v: u32) -> &mut Self {
        if v < 0xF0 {
            self.byte(v as u8)
        } else {
            self.byte(0xFF);
            self.0.extend_from_slice(&v.to_le_bytes());
            self
        }
    }
    pub fn blob(&mut self, b: &[u8]) -> &mut Self {
        assert!(b.len() <= 255, "blob too long for a seed");
        self.byte(b.len() as u8);
        self.0.extend_from_slice(b);
        self
    }
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
}

// ===========================================================================
// Shared input pieces: configuration, commands, SASL mechanisms
// ===========================================================================

/// Two bytes of [`Config`]; `[0, 0]` is `Config::default()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConfigSpec(pub [u8; 2]);

pub const LINE_LIMITS: [usize; 8] = [8192, 255, 512, 64, 16, 8, 3, 0];

impl ConfigSpec {
    pub fn decode(r: &mut Reader<'_>) -> Self {
        ConfigSpec([r.byte(), r.byte()])
    }
    pub fn encode(&self, w: &mut Writer) {
        w.byte(self.0[0]).byte(self.0[1]);
    }
    pub fn config(&self) -> Config {
        let [f, l] = self.0;
        let mut c = Config::default();
        c.allow_cleartext_credentials = true;
        c.pipelining = match f & 3 {
            1 => Pipelining::Never,
            2 => Pipelining::Always,
            _ => Pipelining::Auto,
        };
        c.lenient_uids = f & 4 != 0;
        c.tls = f & 8 != 0;
        c.max_in_flight = [100, 1, 2, 3][usize::from((f >> 4) & 3)];
        c.max_entries = [10_000_000, 0, 1, 3][usize::from(f >> 6)];
        c.max_line_len = LINE_LIMITS[usize::from(l & 7)];
        c
    }
}

/// A command to build with the public constructors (which may refuse it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdSpec {
    User(String),
    Pass(String),
    Apop {
        user: String,
        timestamp: String,
        secret: String,
    },
    Rpop(String),
    Auth {
        mechanism: String,
        initial: Option<Vec<u8>>,
    },
    Stat,
    List(Option<u32>),
    Retr(u32),
    Dele(u32),
    Rset,
    Noop,
    Quit,
    Top(u32, u32),
    Uidl(Option<u32>),
    Capa,
    Stls,
    Utf8,
    Lang(Option<String>),
}

fn msg(n: u32) -> Result<MsgNum, CommandError> {
    MsgNum::try_from(n)
}

impl CmdSpec {
    pub fn decode(r: &mut Reader<'_>) -> Self {
        match r.byte() % 18 {
            0 => CmdSpec::User(r.text()),
            1 => CmdSpec::Pass(r.text()),
            2 => CmdSpec::Apop {
                user: r.text(),
                timestamp: r.text(),
                secret: r.text(),
            },
            3 => CmdSpec::Rpop(r.text()),
            4 => CmdSpec::Auth {
                mechanism: r.text(),
                initial: r.bool().then(|| r.blob().to_vec()),
            },
            5 => CmdSpec::Stat,
            6 => CmdSpec::List(r.bool().then(|| r.num())),
            7 => CmdSpec::Retr(r.num()),
            8 => CmdSpec::Dele(r.num()),
            9 => CmdSpec::Rset,
            10 => CmdSpec::Noop,
            11 => CmdSpec::Quit,
            12 => CmdSpec::Top(r.num(), r.num()),
            13 => CmdSpec::Uidl(r.bool().then(|| r.num())),
            14 => CmdSpec::Capa,
            15 => CmdSpec::Stls,
            16 => CmdSpec::Utf8,
            _ => CmdSpec::Lang(r.bool().then(|| r.text())),
        }
    }

    pub fn encode(&self, w: &mut Writer) {
        match self {
            CmdSpec::User(s) => w.byte(0).blob(s.as_bytes()),
            CmdSpec::Pass(s) => w.byte(1).blob(s.as_bytes()),
            CmdSpec::Apop {
                user,
                timestamp,
                secret,
            } => w
                .byte(2)
                .blob(user.as_bytes())
                .blob(timestamp.as_bytes())
                .blob(secret.as_bytes()),
            CmdSpec::Rpop(s) => w.byte(3).blob(s.as_bytes()),
            CmdSpec::Auth { mechanism, initial } => {
                w.byte(4).blob(mechanism.as_bytes());
                match initial {
                    Some(ir) => w.bool(true).blob(ir),
                    None => w.bool(false),
                }
            }
            CmdSpec::Stat => w.byte(5),
            CmdSpec::List(n) => opt_num(w.byte(6), *n),
            CmdSpec::Retr(n) => w.byte(7).num(*n),
            CmdSpec::Dele(n) => w.byte(8).num(*n),
            CmdSpec::Rset => w.byte(9),
            CmdSpec::Noop => w.byte(10),
            CmdSpec::Quit => w.byte(11),
            CmdSpec::Top(n, l) => w.byte(12).num(*n).num(*l),
            CmdSpec::Uidl(n) => opt_num(w.byte(13), *n),
            CmdSpec::Capa => w.byte(14),
            CmdSpec::Stls => w.byte(15),
            CmdSpec::Utf8 => w.byte(16),
            CmdSpec::Lang(t) => match t {
                Some(t) => w.byte(17).bool(true).blob(t.as_bytes()),
                None => w.byte(17).bool(false),
            },
        };
    }

    /// Builds the command with the public constructors.
    pub fn build(&self) -> Result<Command, CommandError> {
        Ok(match self {
            CmdSpec::User(s) => Command::user(s)?,
            CmdSpec::Pass(s) => Command::pass(s)?,
            CmdSpec::Apop {
                user,
                timestamp,
                secret,
            } => Command::apop(user, timestamp, secret)?,
            CmdSpec::Rpop(s) => Command::rpop(s)?,
            CmdSpec::Auth { mechanism, initial } => {
                Command::auth(mechanism, initial.clone().map(Secret::new))?
            }
            CmdSpec::Stat => Command::Stat,
            CmdSpec::List(n) => Command::List(n.map(msg).transpose()?),
            CmdSpec::Retr(n) => Command::Retr(msg(*n)?),
            CmdSpec::Dele(n) => Command::Dele(msg(*n)?),
            CmdSpec::Rset => Command::Rset,
            CmdSpec::Noop => Command::Noop,
            CmdSpec::Quit => Command::Quit,
            CmdSpec::Top(n, l) => Command::Top(msg(*n)?, *l),
            CmdSpec::Uidl(n) => Command::Uidl(n.map(msg).transpose()?),
            CmdSpec::Capa => Command::Capa,
            CmdSpec::Stls => Command::Stls,
            CmdSpec::Utf8 => Command::Utf8,
            CmdSpec::Lang(t) => Command::lang(t.as_deref())?,
        })
    }
}

fn opt_num(w: &mut Writer, n: Option<u32>) -> &mut Writer {
    match n {
        Some(n) => w.bool(true).num(n),
        None => w.bool(false),
    }
}

/// The client nonce of every SCRAM mechanism built here (RFC 5802's
/// example, so the RFC exchange can be a seed).
pub const SCRAM_NONCE: &str = "fyko+d2lbbFgONRv9qkxdawL";
/// The PBKDF2 cap for fuzzing: RFC 5802's 4096, so a hostile `i=` costs at
/// most a few milliseconds per input.
pub const SCRAM_MAX_ITERATIONS: u32 = 4096;

/// A SASL mechanism with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MechSpec {
    Plain {
        user: String,
        pass: String,
        authzid: String,
    },
    Login {
        user: String,
        pass: String,
    },
    CramMd5 {
        user: String,
        pass: String,
    },
    XOAuth2 {
        user: String,
        token: String,
        two_step: bool,
    },
    OAuthBearer {
        user: String,
        token: String,
        host: Option<String>,
        port: Option<u16>,
    },
    /// `binding`: 0 `n`, 1 `y`, 2 `tls-server-end-point`, 3 `tls-exporter`.
    Scram {
        sha256: bool,
        user: String,
        pass: String,
        authzid: String,
        binding: u8,
        cb_data: Vec<u8>,
    },
}

impl MechSpec {
    pub fn decode(r: &mut Reader<'_>) -> Self {
        match r.byte() % 6 {
            0 => MechSpec::Plain {
                user: r.text(),
                pass: r.text(),
                authzid: r.text(),
            },
            1 => MechSpec::Login {
                user: r.text(),
                pass: r.text(),
            },
            2 => MechSpec::CramMd5 {
                user: r.text(),
                pass: r.text(),
            },
            3 => MechSpec::XOAuth2 {
                user: r.text(),
                token: r.text(),
                two_step: r.bool(),
            },
            4 => MechSpec::OAuthBearer {
                user: r.text(),
                token: r.text(),
                host: r.bool().then(|| r.text()),
                port: r.bool().then(|| r.u16()),
            },
            _ => MechSpec::Scram {
                sha256: r.bool(),
                user: r.text(),
                pass: r.text(),
                authzid: r.text(),
                binding: r.byte() % 4,
                cb_data: r.blob().to_vec(),
            },
        }
    }

    pub fn encode(&self, w: &mut Writer) {
        match self {
            MechSpec::Plain {
                user,
                pass,
                authzid,
            } => w
                .byte(0)
                .blob(user.as_bytes())
                .blob(pass.as_bytes())
                .blob(authzid.as_bytes()),
            MechSpec::Login { user, pass } => w.byte(1).blob(user.as_bytes()).blob(pass.as_bytes()),
            MechSpec::CramMd5 { user, pass } => {
                w.byte(2).blob(user.as_bytes()).blob(pass.as_bytes())
            }
            MechSpec::XOAuth2 {
                user,
                token,
                two_step,
            } => w
                .byte(3)
                .blob(user.as_bytes())
                .blob(token.as_bytes())
                .bool(*two_step),
            MechSpec::OAuthBearer {
                user,
                token,
                host,
                port,
            } => {
                w.byte(4).blob(user.as_bytes()).blob(token.as_bytes());
                match host {
                    Some(h) => w.bool(true).blob(h.as_bytes()),
                    None => w.bool(false),
                };
                match port {
                    Some(p) => w.bool(true).u16(*p),
                    None => w.bool(false),
                }
            }
            MechSpec::Scram {
                sha256,
                user,
                pass,
                authzid,
                binding,
                cb_data,
            } => w
                .byte(5)
                .bool(*sha256)
                .blob(user.as_bytes())
                .blob(pass.as_bytes())
                .blob(authzid.as_bytes())
                .byte(*binding)
                .blob(cb_data),
        };
    }

    /// The same mechanism with every ASCII letter and digit of the password
    /// or token shifted by one within its class (so validity is unchanged).
    pub fn with_shifted_secret(&self) -> MechSpec {
        fn shift(s: &str) -> String {
            s.chars()
                .map(|c| match c {
                    'z' => 'a',
                    'Z' => 'A',
                    '9' => '0',
                    c if c.is_ascii_alphanumeric() => char::from(c as u8 + 1),
                    c => c,
                })
                .collect()
        }
        let mut m = self.clone();
        match &mut m {
            MechSpec::Plain { pass, .. }
            | MechSpec::Login { pass, .. }
            | MechSpec::CramMd5 { pass, .. }
            | MechSpec::Scram { pass, .. } => *pass = shift(pass),
            MechSpec::XOAuth2 { token, .. } | MechSpec::OAuthBearer { token, .. } => {
                *token = shift(token)
            }
        }
        m
    }

    /// Builds the mechanism; `None` when its constructor refuses the input.
    pub fn build(&self) -> Option<Box<dyn Mechanism>> {
        Some(Box::new(DynMech(self.build_dbg()?)))
    }

    /// The same, keeping `Debug`.
    pub fn build_dbg(&self) -> Option<Box<dyn MechDebug>> {
        Some(match self {
            MechSpec::Plain {
                user,
                pass,
                authzid,
            } => Box::new(Plain::new(user.as_str(), pass.as_str()).with_authzid(authzid.as_str())),
            MechSpec::Login { user, pass } => Box::new(Login::new(user.as_str(), pass.as_str())),
            MechSpec::CramMd5 { user, pass } => {
                Box::new(CramMd5::new(user.as_str(), pass.as_str()))
            }
            MechSpec::XOAuth2 {
                user,
                token,
                two_step,
            } => Box::new(if *two_step {
                XOAuth2::two_step(user.as_str(), token.as_str())
            } else {
                XOAuth2::new(user.as_str(), token.as_str())
            }),
            MechSpec::OAuthBearer {
                user,
                token,
                host,
                port,
            } => {
                let mut m = OAuthBearer::new(user.as_str(), token.as_str());
                if let Some(h) = host {
                    m = m.with_host(h.as_str());
                }
                if let Some(p) = port {
                    m = m.with_port(*p);
                }
                Box::new(m)
            }
            MechSpec::Scram { .. } => Box::new(self.scram()?),
        })
    }

    pub fn scram(&self) -> Option<Scram> {
        let MechSpec::Scram {
            sha256,
            user,
            pass,
            authzid,
            binding,
            cb_data,
        } = self
        else {
            return None;
        };
        let hash = if *sha256 {
            ScramHash::Sha256
        } else {
            ScramHash::Sha1
        };
        let cb = match binding {
            0 => ChannelBinding::Unsupported,
            1 => ChannelBinding::SupportedButNotOffered,
            2 => ChannelBinding::TlsServerEndPoint(cb_data.clone()),
            _ => ChannelBinding::TlsExporter(cb_data.clone()),
        };
        Some(
            Scram::with_nonce(hash, user, pass, SCRAM_NONCE)
                .ok()?
                .with_authzid(authzid)
                .ok()?
                .with_channel_binding(cb)
                .with_max_iterations(SCRAM_MAX_ITERATIONS),
        )
    }
}

/// A mechanism that also has `Debug` (every mechanism of the core has).
pub trait MechDebug: Mechanism + core::fmt::Debug {}
impl<T: Mechanism + core::fmt::Debug> MechDebug for T {}

/// Hands a `Box<dyn MechDebug>` to the client as a `Box<dyn Mechanism>`.
struct DynMech(Box<dyn MechDebug>);

impl Mechanism for DynMech {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn initial_response(&mut self) -> Result<Option<Secret<Vec<u8>>>, SaslError> {
        self.0.initial_response()
    }
    fn step(&mut self, challenge: &[u8]) -> Result<Secret<Vec<u8>>, SaslError> {
        self.0.step(challenge)
    }
    fn finish(&mut self) -> Result<(), SaslError> {
        self.0.finish()
    }
    fn server_error(&self) -> Option<&str> {
        self.0.server_error()
    }
}

// ===========================================================================
// Owned events and the drain loop
// ===========================================================================

/// One step of a run: an owned event (the core's [`OwnedEvent`]) or the
/// sticky protocol error that ended the run.
pub type Ev = Result<OwnedEvent, ProtocolError>;

/// Appends `ev`, merging it into a preceding body chunk of the same handle.
pub fn push_merged(events: &mut Vec<Ev>, ev: Ev) {
    if let (
        Ok(OwnedEvent::BodyChunk { handle: h, data }),
        Some(Ok(OwnedEvent::BodyChunk {
            handle: last_h,
            data: last,
        })),
    ) = (&ev, events.last_mut())
    {
        if h == last_h {
            last.extend_from_slice(data);
            return;
        }
    }
    events.push(ev);
}

/// Whether the session may move from `from` to `to` (RFC 1939 §3).
pub fn legal_transition(from: SessionState, to: SessionState) -> bool {
    use SessionState as S;
    matches!(
        (from, to),
        (S::Greeting, S::Authorization | S::Closed)
            | (S::Authorization, S::Transaction | S::Closed)
            | (S::Transaction, S::Update | S::Closed)
            | (S::Update, S::Closed)
    )
}

/// The receive buffer bound after all events are drained: one partial line
/// (the line limit, plus a CR and a held-back dot) plus the largest chunk,
/// with `Vec`'s doubling.
fn buffer_bound(max_chunk: usize, max_line_len: usize) -> usize {
    2 * (max_chunk + max_line_len + 4) + 64
}

// ===========================================================================
// Target: decoder_split
// ===========================================================================

/// Commands queued up front, server bytes, and where to cut them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecoderInput {
    pub config: ConfigSpec,
    pub commands: Vec<CmdSpec>,
    pub eof: bool,
    pub cuts: Vec<u16>,
    pub server: Vec<u8>,
}

impl DecoderInput {
    pub fn decode(data: &[u8]) -> Self {
        let mut r = Reader::new(data);
        let config = ConfigSpec::decode(&mut r);
        let flags = r.byte();
        let commands = (0..flags % 16).map(|_| CmdSpec::decode(&mut r)).collect();
        let cuts = (0..r.byte() % 32).map(|_| r.u16()).collect();
        DecoderInput {
            config,
            commands,
            eof: flags & 0x80 != 0,
            cuts,
            server: r.rest().to_vec(),
        }
    }
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        self.config.encode(&mut w);
        assert!(self.commands.len() < 16);
        w.byte(self.commands.len() as u8 | if self.eof { 0x80 } else { 0 });
        for c in &self.commands {
            c.encode(&mut w);
        }
        w.byte(self.cuts.len() as u8);
        for c in &self.cuts {
            w.u16(*c);
        }
        w.raw(&self.server);
        w.0
    }
}

/// The outcome of one run of a client over a server byte stream.
#[derive(Debug, PartialEq, Eq)]
pub struct Run {
    pub sent: Vec<u8>,
    pub events: Vec<Ev>,
}

/// The stream offsets at which the client sends a command when `server`
/// arrives causally: one line at a time, everything drained after each.
/// A server cannot answer a command before it was sent, and the core calls
/// bytes that arrived before the command unsolicited, so a canned
/// transcript must never be fed across these points in one piece.
pub fn send_points(config: &Config, commands: &[Command], server: &[u8]) -> Vec<usize> {
    let mut client = Client::new(config.clone());
    for c in commands {
        let _ = client.enqueue(c.clone());
    }
    let mut sink = Vec::new();
    let mut points = Vec::new();
    let mut fed = 0;
    let mut budget = 4 * (server.len() + commands.len()) + 64;
    for line in server.split_inclusive(|b| *b == b'\n') {
        client.handle_input(line);
        fed += line.len();
        let mut sent = false;
        loop {
            while client.poll_transmit(&mut sink).is_some() {
                sent = true;
            }
            while let Ok(Some(_)) = client.poll_event() {
                budget = budget.saturating_sub(1);
            }
            budget = budget.saturating_sub(1);
            if client.error().is_some() || budget == 0 || !client.wants_write() {
                break;
            }
        }
        if sent {
            points.push(fed);
        }
        if client.error().is_some() || budget == 0 {
            break;
        }
    }
    points
}

/// Runs `commands` against `server` fed in the chunks `cuts` delimits
/// (sorted offsets), draining after every call. Chunks are also cut at the
/// [`send_points`], so no reply is fed before its command was sent.
/// Checks on the way: body bytes out ≤ bytes in, the receive buffer stays
/// bounded, the drain loop terminates.
pub fn run_chunked(
    config: &Config,
    commands: &[Command],
    server: &[u8],
    cuts: &[usize],
    eof: bool,
) -> Run {
    let mut cuts = cuts.to_vec();
    cuts.extend(send_points(config, commands, server));
    cuts.sort_unstable();
    let mut client = Client::new(config.clone());
    let mut run = Run {
        sent: Vec::new(),
        events: Vec::new(),
    };
    for c in commands {
        let _ = client.enqueue(c.clone());
    }
    let budget = 4 * (server.len() + commands.len()) + 64;
    let mut spent = 0usize;
    let mut body_out = 0usize;
    let mut max_chunk = 0usize;
    let mut drain = |client: &mut Client, run: &mut Run, fed: usize, max_chunk: usize| -> bool {
        loop {
            while client.poll_transmit(&mut run.sent).is_some() {
                spent += 1;
                assert!(spent < budget, "drain loop does not terminate (transmit)");
            }
            loop {
                spent += 1;
                assert!(spent < budget, "drain loop does not terminate (events)");
                match client.poll_event() {
                    Ok(Some(ev)) => {
                        let ev = ev.into_owned();
                        if let OwnedEvent::BodyChunk { data: d, .. } = &ev {
                            body_out += d.len();
                            assert!(
                                body_out <= fed,
                                "more body bytes out ({body_out}) than in ({fed})"
                            );
                        }
                        push_merged(&mut run.events, Ok(ev));
                    }
                    Ok(None) => break,
                    Err(e) => {
                        run.events.push(Err(e));
                        return false;
                    }
                }
            }
            let cap = client.buffer_capacity();
            let bound = buffer_bound(max_chunk, config.max_line_len);
            assert!(
                cap <= bound,
                "receive buffer capacity {cap} over the bound {bound}"
            );
            if !client.wants_write() {
                return true;
            }
        }
    };
    if !drain(&mut client, &mut run, 0, 0) {
        return run;
    }
    let mut last = 0;
    for &cut in cuts.iter().chain(std::iter::once(&server.len())) {
        if cut <= last && cut != server.len() || cut > server.len() {
            continue;
        }
        client.handle_input(&server[last..cut]);
        max_chunk = max_chunk.max(cut - last);
        last = cut;
        if !drain(&mut client, &mut run, last, max_chunk) {
            return run;
        }
    }
    if eof {
        client.handle_eof();
        drain(&mut client, &mut run, last, max_chunk);
    }
    run
}

/// Inputs up to this size are also fed one byte at a time.
pub const BYTEWISE_MAX: usize = 1024;

/// `decoder_split`: the same server bytes fed whole, at the given cut
/// points, and one byte at a time must give the same events (bodies
/// compared as concatenated bytes), the same bytes sent, and the same
/// error; none may panic, and memory stays bounded.
pub fn decoder_split(input: &DecoderInput) {
    let config = input.config.config();
    let commands: Vec<Command> = input
        .commands
        .iter()
        .filter_map(|c| c.build().ok())
        .collect();
    let server = &input.server;
    let whole = run_chunked(&config, &commands, server, &[], input.eof);
    let mut cuts: Vec<usize> = input
        .cuts
        .iter()
        .map(|c| usize::from(*c) % (server.len() + 1))
        .collect();
    cuts.sort_unstable();
    let split = run_chunked(&config, &commands, server, &cuts, input.eof);
    assert_same_run(&whole, &split, "whole vs split");
    if server.len() <= BYTEWISE_MAX {
        let all: Vec<usize> = (1..server.len()).collect();
        let bytewise = run_chunked(&config, &commands, server, &all, input.eof);
        assert_same_run(&whole, &bytewise, "whole vs byte by byte");
    }
}

/// Makes two runs comparable: `StlsInjection::len` counts the bytes
/// buffered when the injection was noticed, which depends on how the input
/// was chunked (any count ≥ 1 is right), so it is compared as "some"; the
/// same for the excerpt of `UnsolicitedResponse`.
fn normalized(run: &Run) -> Run {
    Run {
        sent: run.sent.clone(),
        events: normalized_events(&run.events),
    }
}

/// The events part of [`normalized`] (also used by the core's tests).
pub fn normalized_events(events: &[Ev]) -> Vec<Ev> {
    events
        .iter()
        .map(|e| match e {
            Err(ProtocolError::StlsInjection { len }) => {
                assert!(*len > 0, "StlsInjection with no bytes");
                Err(ProtocolError::StlsInjection { len: 1 })
            }
            // Unsolicited bytes are reported as soon as they are buffered,
            // so the excerpt holds what had arrived by then.
            Err(ProtocolError::UnsolicitedResponse { .. }) => {
                Err(ProtocolError::UnsolicitedResponse {
                    line: String::new(),
                })
            }
            e => e.clone(),
        })
        .collect()
}

/// Same events; same bytes sent, except that when the session failed, the
/// commands sent before the failure depend on when replies freed the
/// pipeline window, so one run's bytes need only be a prefix of the other's.
fn assert_same_run(a: &Run, b: &Run, what: &str) {
    let (a, b) = (&normalized(a), &normalized(b));
    let failed = matches!(a.events.last(), Some(Err(_)));
    let sent_ok = if failed {
        a.sent.starts_with(&b.sent) || b.sent.starts_with(&a.sent)
    } else {
        a.sent == b.sent
    };
    if a.events == b.events && sent_ok {
        return;
    }
    let first = a
        .events
        .iter()
        .zip(&b.events)
        .position(|(x, y)| x != y)
        .unwrap_or(a.events.len().min(b.events.len()));
    panic!(
        "{what}: runs differ (first differing event #{first})\n  sent: {:?}\n    vs {:?}\n  events: {:#?}\n    vs {:#?}",
        String::from_utf8_lossy(&a.sent),
        String::from_utf8_lossy(&b.sent),
        &a.events[first.min(a.events.len())..],
        &b.events[first.min(b.events.len())..],
    );
}

// ===========================================================================
// Target: client_session
// ===========================================================================

/// Canned server replies the `Canned` action feeds, so that the fuzzer
/// reaches deep states without having to invent every line.
pub const CANNED: [&[u8]; 16] = [
    b"+OK\r\n",
    b"-ERR\r\n",
    b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n",
    b"+OK 2 320\r\n",
    b"1 120\r\n",
    b".\r\n",
    b"+ \r\n",
    b"+OK 120 octets\r\nSubject: x\r\n\r\n..dot\r\n.\r\n",
    b"-ERR [IN-USE] locked\r\n",
    b"+OK\r\nTOP\r\nUSER\r\nSASL PLAIN SCRAM-SHA-1 CRAM-MD5\r\nPIPELINING\r\nUIDL\r\nSTLS\r\n.\r\n",
    b"1 whqtswO00WBw418f9t5JxYwZ\r\n",
    b"+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n",
    b"\r\n",
    b"+OK 1 whqtswO00WBw418f9t5JxYwZ\r\n",
    b"-ERR [SYS/TEMP] try later\r\n",
    b"+OK 1 200\r\n",
];

/// One step of a client session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Enqueue(CmdSpec),
    Feed(Vec<u8>),
    Canned(u8),
    Eof,
    AuthRespond(Vec<u8>),
    AuthCancel,
    TlsEstablished,
    Authenticate(MechSpec),
    Apop { user: String, secret: String },
}

impl Action {
    pub fn decode(r: &mut Reader<'_>) -> Self {
        match r.byte() % 10 {
            0 | 1 => Action::Enqueue(CmdSpec::decode(r)),
            2 => Action::Feed(r.blob().to_vec()),
            3 => Action::Canned(r.byte() % CANNED.len() as u8),
            4 => Action::Eof,
            5 => Action::AuthRespond(r.blob().to_vec()),
            6 => Action::AuthCancel,
            7 => Action::TlsEstablished,
            8 => Action::Authenticate(MechSpec::decode(r)),
            _ => Action::Apop {
                user: r.text(),
                secret: r.text(),
            },
        }
    }
    pub fn encode(&self, w: &mut Writer) {
        match self {
            Action::Enqueue(c) => {
                w.byte(0);
                c.encode(w);
            }
            Action::Feed(b) => {
                // Longer feeds become several actions.
                for (i, chunk) in b.chunks(255).enumerate() {
                    if i > 0 || !chunk.is_empty() {
                        w.byte(2).blob(chunk);
                    }
                }
            }
            Action::Canned(i) => {
                w.byte(3).byte(*i);
            }
            Action::Eof => {
                w.byte(4);
            }
            Action::AuthRespond(b) => {
                w.byte(5).blob(b);
            }
            Action::AuthCancel => {
                w.byte(6);
            }
            Action::TlsEstablished => {
                w.byte(7);
            }
            Action::Authenticate(m) => {
                w.byte(8);
                m.encode(w);
            }
            Action::Apop { user, secret } => {
                w.byte(9).blob(user.as_bytes()).blob(secret.as_bytes());
            }
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionInput {
    pub config: ConfigSpec,
    pub actions: Vec<Action>,
}

impl SessionInput {
    /// At most this many actions are decoded (the rest is ignored).
    pub const MAX_ACTIONS: usize = 256;

    pub fn decode(data: &[u8]) -> Self {
        let mut r = Reader::new(data);
        let config = ConfigSpec::decode(&mut r);
        let mut actions = Vec::new();
        while !r.is_empty() && actions.len() < Self::MAX_ACTIONS {
            actions.push(Action::decode(&mut r));
        }
        SessionInput { config, actions }
    }
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        self.config.encode(&mut w);
        for a in &self.actions {
            a.encode(&mut w);
        }
        w.0
    }
}

/// A command enqueued and not yet seen on the wire.
#[derive(Debug)]
struct Expected {
    handle: u64,
    kind: CommandKind,
    line: Vec<u8>,
    sensitive: bool,
}

/// Drives a [`Client`] and checks every output against a model of what may
/// legally happen.
struct Session {
    client: Client,
    config: Config,
    fed: usize,
    max_chunk: usize,
    body_out: usize,
    state: SessionState,
    greeted: bool,
    closed: bool,
    error: Option<ProtocolError>,
    next_handle: u64,
    /// Enqueued, not yet transmitted, not rejected.
    pending: VecDeque<Expected>,
    /// Passed over by a transmit: must be reported `Rejected`.
    skipped: Vec<u64>,
    /// Transmitted, not yet answered, in order.
    in_flight: VecDeque<(u64, CommandKind)>,
    /// The RETR/TOP body being received: handle and bytes so far.
    body: Option<(u64, u64)>,
}

impl Session {
    fn new(config: Config) -> Self {
        Session {
            client: Client::new(config.clone()),
            config,
            fed: 0,
            max_chunk: 0,
            body_out: 0,
            state: SessionState::Greeting,
            greeted: false,
            closed: false,
            error: None,
            next_handle: 0,
            pending: VecDeque::new(),
            skipped: Vec::new(),
            in_flight: VecDeque::new(),
            body: None,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.client.handle_input(bytes);
        self.fed += bytes.len();
        self.max_chunk = self.max_chunk.max(bytes.len());
    }

    /// Records an accepted enqueue and checks a refused one.
    /// `strict`: the call checks poison and closure before anything else.
    fn enqueued(
        &mut self,
        res: Result<pop3_proto::Handle, UsageError>,
        expected: Option<(CommandKind, Vec<u8>, bool)>,
        strict: bool,
    ) {
        let pending_before = self.client.pending();
        match res {
            Ok(h) => {
                assert!(
                    self.error.is_none(),
                    "enqueue accepted on a poisoned client"
                );
                assert!(!self.closed, "enqueue accepted on a closed client");
                assert_eq!(h.id(), self.next_handle, "handles are not consecutive");
                self.next_handle += 1;
                let (kind, line, sensitive) =
                    expected.expect("accepted a command the harness could not build");
                self.pending.push_back(Expected {
                    handle: h.id(),
                    kind,
                    line,
                    sensitive,
                });
            }
            Err(e) => {
                if !strict {
                } else if let Some(pe) = &self.error {
                    assert_eq!(
                        e,
                        UsageError::Poisoned(pe.clone()),
                        "poisoned client refused with another error"
                    );
                } else if self.closed {
                    assert_eq!(
                        e,
                        UsageError::Closed,
                        "closed client refused with another error"
                    );
                }
                assert_eq!(
                    self.client.pending(),
                    pending_before,
                    "a refused enqueue changed the queue"
                );
            }
        }
    }

    fn act(&mut self, action: &Action) {
        match action {
            Action::Enqueue(spec) => {
                let Ok(cmd) = spec.build() else { return };
                let mut line = Vec::new();
                cmd.encode(&mut line);
                let exp = (cmd.kind(), line, cmd.is_sensitive());
                let res = self.client.enqueue(cmd);
                self.enqueued(res, Some(exp), true);
            }
            Action::Feed(bytes) => self.feed(bytes),
            Action::Canned(i) => self.feed(CANNED[usize::from(*i) % CANNED.len()]),
            Action::Eof => self.client.handle_eof(),
            Action::AuthRespond(bytes) => {
                if self.client.auth_respond(Secret::new(bytes.clone())).is_ok() {
                    assert!(
                        self.in_flight
                            .front()
                            .is_some_and(|f| f.1 == CommandKind::Auth)
                            || self.error.is_some(),
                        "auth_respond accepted with no AUTH in flight"
                    );
                }
            }
            Action::AuthCancel => {
                if self.client.auth_cancel().is_ok() {
                    assert!(
                        self.in_flight
                            .front()
                            .is_some_and(|f| f.1 == CommandKind::Auth)
                            || self.error.is_some(),
                        "auth_cancel accepted with no AUTH in flight"
                    );
                }
            }
            Action::TlsEstablished => match self.client.tls_established() {
                Ok(()) => {
                    assert!(
                        self.error.is_none(),
                        "tls_established accepted on a poisoned client"
                    );
                    assert!(
                        self.client.is_tls(),
                        "tls_established did not switch to TLS"
                    );
                    assert!(
                        self.client.capabilities().is_none(),
                        "capabilities kept across STLS"
                    );
                    assert!(
                        self.client.greeting().is_none(),
                        "greeting kept across STLS"
                    );
                }
                Err(UsageError::Poisoned(e)) => {
                    // The bytes that arrived between +OK and now poison it.
                    if let Some(pe) = &self.error {
                        assert_eq!(&e, pe, "tls_established: a different poison");
                    } else {
                        assert!(
                            matches!(e, ProtocolError::StlsInjection { .. }),
                            "tls_established poisoned with {e:?}"
                        );
                        self.poisoned(e);
                    }
                }
                Err(_) => {}
            },
            Action::Authenticate(spec) => {
                let (Some(mech), Some(mut twin)) = (spec.build(), spec.build()) else {
                    return;
                };
                // The twin computes the initial response the AUTH line carries.
                let expected = MechanismName::new(twin.name()).ok().and_then(|name| {
                    let ir = twin.initial_response().ok()?;
                    let cmd = Command::Auth {
                        mechanism: name,
                        initial_response: ir,
                    };
                    let mut line = Vec::new();
                    cmd.encode(&mut line);
                    Some((CommandKind::Auth, line, cmd.is_sensitive()))
                });
                let res = self.client.authenticate(mech);
                self.enqueued(res, expected, true);
            }
            Action::Apop { user, secret } => {
                let ts = self
                    .client
                    .greeting()
                    .and_then(|g| g.apop_timestamp.clone());
                let res = self.client.apop(user, secret);
                if ts.is_none() {
                    // Impossible, and said so (unless the session cannot
                    // take APOP at all right now).
                    assert!(
                        matches!(
                            res,
                            Err(UsageError::ApopUnavailable
                                | UsageError::WrongState { .. }
                                | UsageError::Closed
                                | UsageError::Poisoned(_))
                        ),
                        "APOP without a timestamp: {res:?}"
                    );
                }
                let expected = ts
                    .and_then(|ts| Command::apop(user, &ts, secret).ok())
                    .map(|c| {
                        let mut line = Vec::new();
                        c.encode(&mut line);
                        (CommandKind::Apop, line, true)
                    });
                // APOP checks the session first, like enqueue.
                self.enqueued(res, expected, true);
            }
        }
    }

    fn poisoned(&mut self, e: ProtocolError) {
        assert!(
            self.error.is_none(),
            "a second, different protocol error: {e:?}"
        );
        self.error = Some(e.clone());
        self.check_sticky();
    }

    /// A poisoned client returns the same error forever and does nothing.
    fn check_sticky(&mut self) {
        let Some(e) = self.error.clone() else { return };
        for _ in 0..2 {
            match self.client.poll_event() {
                Err(again) => assert_eq!(again, e, "the sticky error changed"),
                Ok(ev) => panic!("poll_event after a protocol error returned {ev:?}"),
            }
        }
        assert_eq!(self.client.error(), Some(&e));
        let mut out = Vec::new();
        assert!(
            self.client.poll_transmit(&mut out).is_none() && out.is_empty(),
            "transmit after a protocol error"
        );
        assert!(
            !self.client.wants_write(),
            "wants_write after a protocol error"
        );
        assert!(
            !self.client.wants_read(),
            "wants_read after a protocol error"
        );
    }

    /// Checks one transmit; returns whether there was one.
    fn transmit(&mut self) -> bool {
        let mut out = b"prefix".to_vec();
        let Some(t) = self.client.poll_transmit(&mut out) else {
            assert_eq!(
                out, b"prefix",
                "poll_transmit returned None but wrote bytes"
            );
            return false;
        };
        assert!(self.error.is_none(), "transmit after a protocol error");
        assert!(!self.closed, "transmit after Closed");
        assert_eq!(
            t.len,
            out.len() - 6,
            "Transmit::len does not match the bytes appended"
        );
        assert!(
            out.starts_with(b"prefix"),
            "poll_transmit overwrote the caller's buffer"
        );
        let bytes = &out[6..];
        let lines = r::split_lines(bytes)
            .unwrap_or_else(|e| panic!("transmit {:?}: {e}", String::from_utf8_lossy(bytes)));
        assert!(!lines.is_empty(), "empty transmit");
        if t.sensitive && lines.len() == 1 && !lines[0].contains(&b' ') {
            // A SASL response line (base64, possibly empty) or the cancel `*`.
            let body = &lines[0][..lines[0].len() - 2];
            assert!(
                self.in_flight
                    .front()
                    .is_some_and(|f| f.1 == CommandKind::Auth),
                "SASL line {:?} sent with no AUTH in flight",
                String::from_utf8_lossy(body)
            );
            assert!(
                body == b"*" || r::base64_decode(body, false).is_some(),
                "SASL line is neither base64 nor *"
            );
            return true;
        }
        let mut any_sensitive = false;
        for line in lines {
            assert!(
                line.len() <= MAX_COMMAND_LINE,
                "command line of {} octets",
                line.len()
            );
            if let Err(e) = r::parse_command(line) {
                panic!(
                    "transmitted {:?}, which a server cannot parse: {e}",
                    String::from_utf8_lossy(line)
                );
            }
            // The line must be the next enqueued command not rejected.
            let pos = self
                .pending
                .iter()
                .position(|p| p.line == line)
                .unwrap_or_else(|| {
                    panic!(
                        "transmitted {:?}, which was never enqueued (or out of order)",
                        String::from_utf8_lossy(line)
                    )
                });
            for skipped in self.pending.drain(..pos) {
                self.skipped.push(skipped.handle);
            }
            let exp = self.pending.pop_front().expect("matched");
            any_sensitive |= exp.sensitive;
            if let Some(&(_, kind)) = self.in_flight.back() {
                assert!(
                    !is_barrier(kind),
                    "{:?} sent while the barrier {kind} is unanswered",
                    exp.kind
                );
            }
            if !self.in_flight.is_empty() {
                assert!(
                    !is_barrier(exp.kind),
                    "barrier {} pipelined behind other commands",
                    exp.kind
                );
                let allowed = match self.config.pipelining {
                    Pipelining::Never => false,
                    Pipelining::Always => true,
                    _ => self.client.capabilities().is_some_and(|c| c.pipelining),
                };
                assert!(allowed, "pipelined although pipelining is not allowed");
            }
            assert!(
                self.in_flight.len() < self.config.max_in_flight.max(1),
                "more than max_in_flight commands in flight"
            );
            self.in_flight.push_back((exp.handle, exp.kind));
        }
        assert_eq!(t.sensitive, any_sensitive, "Transmit::sensitive is wrong");
        true
    }

    fn event(&mut self, ev: OwnedEvent) {
        assert!(!self.closed, "event after Closed: {ev:?}");
        let front = self.in_flight.front().copied();
        let expect_front = |handle: u64, what: &str| {
            let f = front
                .unwrap_or_else(|| panic!("{what} for handle {handle} with nothing in flight"));
            assert_eq!(
                f.0, handle,
                "{what} for handle {handle}, but the oldest command in flight is {f:?}"
            );
            f.1
        };
        if self.body.is_some() {
            assert!(
                matches!(
                    ev,
                    OwnedEvent::BodyChunk { .. } | OwnedEvent::BodyEnd { .. }
                ),
                "{ev:?} in the middle of a body"
            );
        }
        match ev {
            OwnedEvent::Greeting(g) => {
                assert!(!self.greeted, "second greeting");
                assert_eq!(self.state, SessionState::Greeting);
                self.greeted = true;
                if let Some(ts) = &g.apop_timestamp {
                    check_timestamp(ts);
                }
                assert_eq!(
                    self.client.greeting(),
                    Some(&g),
                    "greeting() differs from the event"
                );
            }
            OwnedEvent::GreetingRefused(_) => {
                assert!(!self.greeted, "greeting refused after a greeting");
                assert_eq!(self.state, SessionState::Greeting);
                self.greeted = true;
            }
            OwnedEvent::Ok {
                handle,
                command: kind,
                response: resp,
            } => {
                let h = handle.id();
                let k = expect_front(h, "Ok");
                assert_eq!(k, kind, "Ok carries the wrong command kind");
                check_response_shape(kind, &resp);
                match resp {
                    Response::BodyStart(_) => self.body = Some((h, 0)),
                    Response::Capa(c) => {
                        assert_eq!(
                            self.client.capabilities(),
                            Some(&c),
                            "capabilities() differs from CAPA"
                        );
                        self.in_flight.pop_front();
                    }
                    _ => {
                        self.in_flight.pop_front();
                    }
                }
            }
            OwnedEvent::Err {
                handle,
                command: kind,
                ..
            } => {
                let h = handle.id();
                let k = expect_front(h, "Err");
                assert_eq!(k, kind, "Err carries the wrong command kind");
                self.in_flight.pop_front();
            }
            OwnedEvent::Continuation { handle, .. } => {
                let h = handle.id();
                let k = expect_front(h, "Continuation");
                assert_eq!(k, CommandKind::Auth, "continuation for {k}");
            }
            OwnedEvent::AuthCancelled { handle, .. } => {
                let h = handle.id();
                let k = expect_front(h, "AuthCancelled");
                assert_eq!(k, CommandKind::Auth, "AuthCancelled for {k}");
                self.in_flight.pop_front();
            }
            OwnedEvent::BodyChunk { handle, data } => {
                let h = handle.id();
                let Some((bh, n)) = &mut self.body else {
                    panic!("body chunk for {h} outside a body");
                };
                assert_eq!(*bh, h, "body chunk for the wrong handle");
                assert!(!data.is_empty(), "empty body chunk");
                *n += data.len() as u64;
                self.body_out += data.len();
                assert!(
                    self.body_out <= self.fed,
                    "more body bytes out ({}) than in ({})",
                    self.body_out,
                    self.fed
                );
            }
            OwnedEvent::BodyEnd { handle, octets } => {
                let h = handle.id();
                let Some((bh, n)) = self.body.take() else {
                    panic!("BodyEnd for {h} outside a body");
                };
                assert_eq!(bh, h, "BodyEnd for the wrong handle");
                assert_eq!(n, octets, "BodyEnd octets differ from the chunks delivered");
                expect_front(h, "BodyEnd");
                self.in_flight.pop_front();
            }
            OwnedEvent::Rejected {
                handle,
                command: kind,
                ..
            } => {
                let h = handle.id();
                if let Some(i) = self.skipped.iter().position(|s| *s == h) {
                    self.skipped.remove(i);
                } else if let Some(i) = self.pending.iter().position(|p| p.handle == h) {
                    let p = self.pending.remove(i).expect("present");
                    assert_eq!(p.kind, kind, "Rejected carries the wrong command kind");
                } else {
                    panic!("Rejected for handle {h}, which is not waiting to be sent");
                }
            }
            OwnedEvent::StateChanged { from, to } => {
                assert_eq!(
                    from, self.state,
                    "StateChanged from {from}, but the state was {}",
                    self.state
                );
                assert!(
                    legal_transition(from, to),
                    "illegal transition {from} -> {to}"
                );
                self.state = to;
            }
            OwnedEvent::Closed => {
                assert_eq!(
                    self.state,
                    SessionState::Closed,
                    "Closed event in state {}",
                    self.state
                );
                assert!(
                    self.in_flight.is_empty(),
                    "closed with commands in flight: {:?}",
                    self.in_flight
                );
                assert!(
                    self.pending.is_empty(),
                    "closed with commands neither sent nor rejected"
                );
                self.closed = true;
            }
            other => panic!("event the harness does not know: {other:?}"),
        }
    }

    /// Drains transmits and events until the client has nothing to do,
    /// then checks the client's getters against the model.
    fn drain(&mut self) {
        let budget = 4 * (self.fed + self.next_handle as usize) + 256;
        let mut spent = 0;
        loop {
            while self.transmit() {
                spent += 1;
                assert!(spent < budget, "drain loop does not terminate (transmit)");
            }
            loop {
                spent += 1;
                assert!(spent < budget, "drain loop does not terminate (events)");
                if self.error.is_some() {
                    self.check_sticky();
                    return;
                }
                match self.client.poll_event() {
                    Ok(Some(ev)) => {
                        let ev = ev.into_owned();
                        self.event(ev);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        self.poisoned(e);
                        return;
                    }
                }
            }
            if !self.client.wants_write() {
                break;
            }
        }
        assert!(
            self.skipped.is_empty(),
            "commands passed over without a Rejected event: {:?}",
            self.skipped
        );
        assert_eq!(
            self.client.session_state(),
            self.state,
            "session_state() differs from the events"
        );
        assert_eq!(
            self.client.in_flight(),
            self.in_flight.len(),
            "in_flight() differs from the transmits"
        );
        assert_eq!(
            self.client.pending(),
            self.pending.len(),
            "pending() differs from enqueues"
        );
        let cap = self.client.buffer_capacity();
        let bound = buffer_bound(self.max_chunk, self.config.max_line_len);
        assert!(
            cap <= bound,
            "receive buffer capacity {cap} over the bound {bound}"
        );
        if self.closed {
            assert!(!self.client.wants_read(), "wants_read after Closed");
        }
    }
}

fn is_barrier(kind: CommandKind) -> bool {
    use CommandKind as K;
    matches!(
        kind,
        K::Stls | K::Auth | K::User | K::Pass | K::Apop | K::Rpop | K::Quit
    )
}

/// The response variant each command's `+OK` must carry.
fn check_response_shape(kind: CommandKind, resp: &Response) {
    use CommandKind as K;
    let ok = match resp {
        Response::Stat(_) => kind == K::Stat,
        Response::List(_) | Response::ListOne(_) => kind == K::List,
        Response::Uidl(_) | Response::UidlOne(_) => kind == K::Uidl,
        Response::Capa(_) => kind == K::Capa,
        Response::Languages(_) => kind == K::Lang,
        Response::BodyStart(_) => matches!(kind, K::Retr | K::Top),
        Response::Status(_) => !matches!(kind, K::Stat | K::Capa | K::Retr | K::Top),
        _ => false,
    };
    assert!(ok, "{kind} answered with {resp:?}");
}

fn check_timestamp(ts: &str) {
    let b = ts.as_bytes();
    assert!(
        b.len() >= 3
            && b[0] == b'<'
            && b[b.len() - 1] == b'>'
            && b[1..b.len() - 1].contains(&b'@')
            && b[1..b.len() - 1]
                .iter()
                .all(|c| c.is_ascii_graphic() && *c != b'<' && *c != b'>'),
        "malformed APOP timestamp {ts:?}"
    );
}

/// `client_session`: an arbitrary sequence of commands, SASL exchanges,
/// STLS upgrades and server bytes. Checks: no panic; state changes only
/// along legal transitions and agree with `session_state()`; replies match
/// the commands in flight in order; body bytes out ≤ bytes in; a protocol
/// error is sticky; every transmitted line is one well-formed command line
/// (CRLF, no other CR/LF/NUL, ≤ 255 octets, parses back to the command
/// enqueued, in order) or a SASL line during AUTH.
pub fn client_session(input: &SessionInput) -> SessionSummary {
    let mut s = Session::new(input.config.config());
    s.drain();
    for a in &input.actions {
        s.act(a);
        s.drain();
    }
    SessionSummary {
        state: s.state,
        error: s.error,
        transmitted: s.next_handle as usize - s.pending.len(),
    }
}

/// Where a session ended (for checking that seeds go where they should).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    pub state: SessionState,
    pub error: Option<ProtocolError>,
    /// Commands enqueued and no longer pending (sent or rejected).
    pub transmitted: usize,
}

// ===========================================================================
// Target: body_roundtrip
// ===========================================================================

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyInput {
    pub top: bool,
    pub lf_terminator: bool,
    pub pipelined: bool,
    pub cuts: Vec<u16>,
    pub body: Vec<u8>,
}

impl BodyInput {
    pub fn decode(data: &[u8]) -> Self {
        let mut r = Reader::new(data);
        let flags = r.byte();
        let cuts = (0..r.byte() % 32).map(|_| r.u16()).collect();
        BodyInput {
            top: flags & 1 != 0,
            lf_terminator: flags & 2 != 0,
            pipelined: flags & 4 != 0,
            cuts,
            body: r.rest().to_vec(),
        }
    }
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.byte(
            u8::from(self.top) | u8::from(self.lf_terminator) << 1 | u8::from(self.pipelined) << 2,
        );
        w.byte(self.cuts.len() as u8);
        for c in &self.cuts {
            w.u16(*c);
        }
        w.raw(&self.body);
        w.0
    }
}

/// `body_roundtrip`: any body, dot-stuffed as a server does, split
/// anywhere (and byte by byte), comes out exactly as it went in, its end is
/// found exactly (the next reply still parses), and `BodyEnd` counts it.
pub fn body_roundtrip(input: &BodyInput) {
    let (stuffed, expected) = r::stuff_body(&input.body, input.lf_terminator);
    let mut server = b"+OK ready\r\n+OK\r\n+OK\r\n+OK message follows\r\n".to_vec();
    server.extend_from_slice(&stuffed);
    server.extend_from_slice(b"+OK noop\r\n");
    let retr = if input.top {
        Command::Top(MsgNum::new(1).expect("nonzero"), 10)
    } else {
        Command::Retr(MsgNum::new(1).expect("nonzero"))
    };
    let commands = [
        Command::user("u").expect("valid"),
        Command::pass("p").expect("valid"),
        retr,
        Command::Noop,
    ];
    let mut config = Config::default();
    config.allow_cleartext_credentials = true;
    if input.pipelined {
        config.pipelining = Pipelining::Always;
    }
    let check = |run: &Run, how: &str| {
        let mut states = Vec::new();
        let mut body = Vec::new();
        let mut end = None;
        for e in &run.events {
            match e {
                Ok(OwnedEvent::StateChanged { from, to }) => states.push((*from, *to)),
                Ok(OwnedEvent::BodyChunk { handle, data }) => {
                    assert_eq!(handle.id(), 2, "{how}: body chunk for the wrong command");
                    assert_eq!(states.len(), 2, "{how}: body before TRANSACTION");
                    assert!(end.is_none(), "{how}: body chunk after BodyEnd");
                    body.extend_from_slice(data);
                }
                Ok(OwnedEvent::BodyEnd { handle, octets }) => {
                    assert_eq!(handle.id(), 2, "{how}: BodyEnd for the wrong command");
                    assert!(end.replace(*octets).is_none(), "{how}: two BodyEnds");
                }
                Err(e) => panic!("{how}: protocol error {e:?}"),
                Ok(_) => {}
            }
        }
        assert_eq!(
            states,
            [
                (SessionState::Greeting, SessionState::Authorization),
                (SessionState::Authorization, SessionState::Transaction),
            ],
            "{how}: states"
        );
        assert_eq!(body, expected, "{how}: body did not round-trip");
        assert_eq!(end, Some(expected.len() as u64), "{how}: BodyEnd octets");
        assert!(
            matches!(
                run.events.last(),
                Some(Ok(OwnedEvent::Ok {
                    handle,
                    command: CommandKind::Noop,
                    ..
                })) if handle.id() == 3
            ),
            "{how}: the reply after the body was not parsed as NOOP's: {:?}",
            run.events.last()
        );
    };
    let whole = run_chunked(&config, &commands, &server, &[], false);
    check(&whole, "whole");
    let mut cuts: Vec<usize> = input
        .cuts
        .iter()
        .map(|c| usize::from(*c) % (server.len() + 1))
        .collect();
    cuts.sort_unstable();
    check(
        &run_chunked(&config, &commands, &server, &cuts, false),
        "split",
    );
    if server.len() <= BYTEWISE_MAX {
        let all: Vec<usize> = (1..server.len()).collect();
        check(
            &run_chunked(&config, &commands, &server, &all, false),
            "byte by byte",
        );
    }
}

// ===========================================================================
// Target: command_roundtrip
// ===========================================================================

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandInput(pub CmdSpec);

impl CommandInput {
    pub fn decode(data: &[u8]) -> Self {
        CommandInput(CmdSpec::decode(&mut Reader::new(data)))
    }
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        self.0.encode(&mut w);
        w.0
    }
}

fn no_ctl(s: &str) -> bool {
    !s.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

fn one_word(s: &str) -> bool {
    !s.is_empty() && no_ctl(s) && !s.bytes().any(|b| b == b' ' || b == b'\t')
}

/// Whether RFC 1939 / 2449 / 5034 / 6856 allow these arguments: what a
/// constructor must accept (and refuse otherwise).
fn valid_args(spec: &CmdSpec) -> bool {
    let fits = |len: usize| len <= MAX_COMMAND_LINE;
    match spec {
        CmdSpec::User(s) => one_word(s) && fits(7 + s.len()),
        CmdSpec::Pass(s) => !s.is_empty() && no_ctl(s) && fits(7 + s.len()),
        CmdSpec::Apop { user, .. } => one_word(user) && fits(5 + user.len() + 1 + 32 + 2),
        CmdSpec::Rpop(s) => one_word(s) && fits(7 + s.len()),
        CmdSpec::Auth { mechanism, .. } => {
            (1..=20).contains(&mechanism.len())
                && mechanism
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }
        CmdSpec::List(Some(0)) | CmdSpec::Uidl(Some(0)) | CmdSpec::Retr(0) | CmdSpec::Dele(0) => {
            false
        }
        CmdSpec::Top(n, _) => *n != 0,
        CmdSpec::Lang(Some(t)) => {
            !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()) && fits(7 + t.len())
        }
        _ => true,
    }
}

/// Whether the parsed line is exactly `cmd`.
fn same_command(cmd: &Command, parsed: &r::ServerCmd) -> bool {
    use r::ServerCmd as S;
    let n = |m: &MsgNum| m.get();
    match (cmd, parsed) {
        (Command::User(a), S::User(b)) | (Command::Rpop(a), S::Rpop(b)) => {
            a.as_str().as_bytes() == b.as_slice()
        }
        (Command::Pass(a), S::Pass(b)) => a.expose().as_bytes() == b.as_slice(),
        (Command::Apop(a), S::Apop { user: u, digest: d }) => {
            a.user().as_str().as_bytes() == u.as_slice()
                && a.digest().expose().as_bytes() == d.as_slice()
        }
        (
            Command::Auth {
                mechanism,
                initial_response,
            },
            S::Auth {
                mechanism: m,
                initial,
            },
        ) => {
            if mechanism.as_str().as_bytes() != m.as_slice() {
                return false;
            }
            match (initial_response, initial) {
                (None, None) => true,
                (Some(ir), Some(got)) => ir.expose() == got,
                // Deferred: only when the line would exceed 255 octets.
                (Some(ir), None) => {
                    let inline = if ir.expose().is_empty() {
                        1
                    } else {
                        r::base64_encode(ir.expose()).len()
                    };
                    5 + m.len() + 1 + inline + 2 > MAX_COMMAND_LINE
                }
                (None, Some(_)) => false,
            }
        }
        (Command::Stat, S::Stat)
        | (Command::Rset, S::Rset)
        | (Command::Noop, S::Noop)
        | (Command::Quit, S::Quit)
        | (Command::Capa, S::Capa)
        | (Command::Stls, S::Stls)
        | (Command::Utf8, S::Utf8) => true,
        (Command::List(a), S::List(b)) | (Command::Uidl(a), S::Uidl(b)) => a.as_ref().map(n) == *b,
        (Command::Retr(a), S::Retr(b)) | (Command::Dele(a), S::Dele(b)) => a.get() == *b,
        (Command::Top(a, l), S::Top(b, m)) => a.get() == *b && l == m,
        (Command::Lang(a), S::Lang(b)) => a.as_ref().map(|t| t.as_str().as_bytes()) == b.as_deref(),
        _ => false,
    }
}

/// `command_roundtrip`: building a command from arbitrary arguments either
/// refuses them (and only when the RFCs do not allow them) or gives a
/// command whose encoding is a single line of at most 255 octets that a
/// server parses back to the same command, whose keyword matches `kind()`,
/// and whose APOP digest is MD5(timestamp + secret).
pub fn command_roundtrip(input: &CommandInput) {
    let spec = &input.0;
    let valid = valid_args(spec);
    let cmd = match spec.build() {
        Ok(c) => c,
        Err(e) => {
            assert!(
                !valid,
                "{spec:?} refused ({e:?}) although the RFCs allow it"
            );
            return;
        }
    };
    assert!(valid, "{spec:?} accepted although the RFCs do not allow it");
    let mut line = b"x".to_vec();
    cmd.encode(&mut line);
    let line = &line[1..];
    assert!(
        line.len() <= MAX_COMMAND_LINE,
        "{} octets: {:?}",
        line.len(),
        String::from_utf8_lossy(line)
    );
    let parsed = r::parse_command(line)
        .unwrap_or_else(|e| panic!("{:?} does not parse: {e}", String::from_utf8_lossy(line)));
    assert!(
        same_command(&cmd, &parsed),
        "{cmd:?} encoded as {:?}, parsed back as {parsed:?}",
        String::from_utf8_lossy(line)
    );
    assert!(
        line.starts_with(cmd.kind().keyword().as_bytes()),
        "keyword differs from kind()"
    );
    if let (
        CmdSpec::Apop {
            timestamp, secret, ..
        },
        Command::Apop(apop),
    ) = (spec, &cmd)
    {
        let digest = apop.digest();
        let mut data = timestamp.as_bytes().to_vec();
        data.extend_from_slice(secret.as_bytes());
        assert_eq!(
            digest.expose(),
            &r::hex(&r::md5(&data)),
            "wrong APOP digest"
        );
    }
    let multiline = matches!(
        cmd,
        Command::List(None)
            | Command::Uidl(None)
            | Command::Retr(_)
            | Command::Top(..)
            | Command::Capa
            | Command::Lang(None)
    );
    assert_eq!(
        cmd.is_multiline(),
        multiline,
        "is_multiline() is wrong for {cmd:?}"
    );
    // A clone encodes identically (encoding has no hidden state).
    let mut again = Vec::new();
    cmd.clone().encode(&mut again);
    assert_eq!(again, line);
}

// ===========================================================================
// Target: line_parsers
// ===========================================================================

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinesInput {
    pub which: u8,
    pub lenient: bool,
    /// Lines without LF; the first is the greeting text.
    pub lines: Vec<Vec<u8>>,
}

impl LinesInput {
    pub const WHICH: u8 = 8;

    pub fn decode(data: &[u8]) -> Self {
        let mut r = Reader::new(data);
        let flags = r.byte();
        let lines = r
            .rest()
            .split(|b| *b == b'\n')
            .map(<[u8]>::to_vec)
            .collect();
        LinesInput {
            which: (flags & 0x7f) % Self::WHICH,
            lenient: flags & 0x80 != 0,
            lines,
        }
    }
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.byte(self.which | if self.lenient { 0x80 } else { 0 });
        w.raw(&self.lines.join(&b'\n'));
        w.0
    }
}

fn ref_caps(c: &Capabilities) -> r::Caps {
    r::Caps {
        top: c.top,
        user: c.user,
        sasl: c.sasl.clone(),
        resp_codes: c.resp_codes,
        auth_resp_code: c.auth_resp_code,
        pipelining: c.pipelining,
        uidl: c.uidl,
        stls: c.stls,
        utf8: c.utf8,
        lang: c.lang,
        expire: c.expire.map(|(e, u)| {
            (
                match e {
                    Expire::Days(d) => Some(d),
                    _ => None,
                },
                u,
            )
        }),
        login_delay: c.login_delay,
        implementation: c.implementation.clone(),
        other: c.other.clone(),
    }
}

fn check_status(got_code: &Option<RespCode>, got_text: &str, rest: &[u8]) {
    let (code, text) = r::status_text(rest);
    assert_eq!(
        got_text,
        text,
        "status text of {:?}",
        String::from_utf8_lossy(rest)
    );
    match (got_code, code) {
        (None, None) => {}
        (Some(g), Some(c)) => match r::resp_code_class(&c) {
            Some(class) => assert_eq!(format!("{g:?}"), class, "response code {c:?}"),
            None => assert_eq!(g, &RespCode::Other(c.clone()), "response code {c:?}"),
        },
        (g, c) => panic!(
            "response code {g:?}, expected {c:?}, in {:?}",
            String::from_utf8_lossy(rest)
        ),
    }
}

/// The client's view of one reply: events after the greeting, or the error.
fn session_over(
    config: &Config,
    commands: &[Command],
    server: &[u8],
) -> Result<Vec<OwnedEvent>, ProtocolError> {
    let run = run_chunked(config, commands, server, &[], false);
    let mut events = run.events;
    if let Some(Err(e)) = events.last() {
        return Err(e.clone());
    }
    events.retain(|e| !matches!(e, Ok(OwnedEvent::StateChanged { .. })));
    Ok(events.into_iter().flatten().collect())
}

/// `line_parsers`: the STAT, LIST, UIDL, CAPA, LANG, status-text and
/// greeting/APOP parsers on arbitrary lines, through the public `Client`
/// (greeting + reply) and, under `cargo fuzz`, the core's `fuzzing` module,
/// compared with the independent grammars in `reference.rs`.
pub fn line_parsers(input: &LinesInput) {
    let mut config = Config::default();
    config.allow_cleartext_credentials = true;
    config.lenient_uids = input.lenient;
    let greeting_text: &[u8] = input.lines.first().map_or(&[], Vec::as_slice);
    let arg: &[u8] = input.lines.get(1).map_or(&[], Vec::as_slice);
    let listing: Vec<&[u8]> = input.lines.iter().skip(1).map(Vec::as_slice).collect();
    let too_long = input
        .lines
        .iter()
        .any(|l| l.len() + 5 > config.max_line_len);

    #[cfg(fuzzing)]
    fuzzing_module(input);

    // The greeting: text, response code and APOP timestamp.
    let mut server = b"+OK ".to_vec();
    server.extend_from_slice(greeting_text);
    server.extend_from_slice(b"\r\n");
    let login = [
        Command::user("u").expect("valid"),
        Command::pass("p").expect("valid"),
    ];
    let mut replies = server.clone();
    replies.extend_from_slice(b"+OK\r\n+OK\r\n");

    let (commands, reply): (Vec<Command>, Vec<u8>) = match input.which {
        0 => (vec![Command::Stat], [b"+OK ", arg, b"\r\n"].concat()),
        1 => (
            vec![Command::List(MsgNum::new(1))],
            [b"+OK ", arg, b"\r\n"].concat(),
        ),
        2 => (
            vec![Command::Uidl(MsgNum::new(1))],
            [b"+OK ", arg, b"\r\n"].concat(),
        ),
        3 => (
            vec![Command::List(None)],
            [&b"+OK\r\n"[..], &r::listing(&listing)].concat(),
        ),
        4 => (
            vec![Command::Uidl(None)],
            [&b"+OK\r\n"[..], &r::listing(&listing)].concat(),
        ),
        5 => (
            vec![Command::Capa],
            [&b"+OK\r\n"[..], &r::listing(&listing)].concat(),
        ),
        6 => (
            vec![Command::Lang(None)],
            [&b"+OK\r\n"[..], &r::listing(&listing)].concat(),
        ),
        _ => (vec![Command::Noop], [b"-ERR ", arg, b"\r\n"].concat()),
    };
    let (all_commands, server) = if input.which == 5 {
        // CAPA is allowed before login.
        (commands.clone(), [server, reply].concat())
    } else {
        ([&login[..], &commands].concat(), [replies, reply].concat())
    };
    let events = match session_over(&config, &all_commands, &server) {
        Ok(ev) => ev,
        Err(ProtocolError::LineTooLong { .. }) if too_long => return,
        Err(e) => {
            check_rejected_reply(input, &listing, arg, &e);
            return;
        }
    };
    let Some(OwnedEvent::Greeting(g)) = events.first() else {
        panic!("no greeting event: {events:?}");
    };
    check_status(&g.status.code, &g.status.text, greeting_text);
    assert_eq!(
        g.apop_timestamp,
        r::apop_timestamp(greeting_text),
        "APOP timestamp of {:?}",
        String::from_utf8_lossy(greeting_text)
    );
    let Some(last) = events.last() else {
        unreachable!()
    };
    let lenient = input.lenient;
    let blank = |l: &&[u8]| l.iter().all(|b| *b == b' ' || *b == b'\t');
    let entries: Vec<&[u8]> = listing.iter().copied().filter(|l| !blank(l)).collect();
    match (input.which, last) {
        (
            0,
            OwnedEvent::Ok {
                response: Response::Stat(s),
                ..
            },
        ) => {
            assert_eq!(
                r::stat(arg),
                Some((s.count, s.octets)),
                "STAT {:?}",
                String::from_utf8_lossy(arg)
            );
        }
        (
            1,
            OwnedEvent::Ok {
                response: Response::ListOne(e),
                ..
            },
        ) => {
            assert_eq!(
                r::list_entry(arg),
                Some((e.number, e.octets)),
                "LIST n {:?}",
                String::from_utf8_lossy(arg)
            );
        }
        (
            2,
            OwnedEvent::Ok {
                response: Response::UidlOne(e),
                ..
            },
        ) => {
            assert_eq!(
                r::uidl_entry(arg, lenient),
                Some((e.number, e.uid.as_bytes().to_vec())),
                "UIDL n {:?}",
                String::from_utf8_lossy(arg)
            );
        }
        (
            3,
            OwnedEvent::Ok {
                response: Response::List(v),
                ..
            },
        ) => {
            let want: Vec<_> = entries.iter().map(|l| r::list_entry(l)).collect();
            let got: Vec<_> = v.iter().map(|e| Some((e.number, e.octets))).collect();
            assert_eq!(got, want, "LIST listing");
        }
        (
            4,
            OwnedEvent::Ok {
                response: Response::Uidl(v),
                ..
            },
        ) => {
            let want: Vec<_> = entries.iter().map(|l| r::uidl_entry(l, lenient)).collect();
            let got: Vec<_> = v
                .iter()
                .map(|e| Some((e.number, e.uid.as_bytes().to_vec())))
                .collect();
            assert_eq!(got, want, "UIDL listing");
        }
        (
            5,
            OwnedEvent::Ok {
                response: Response::Capa(c),
                ..
            },
        ) => {
            let mut want = r::Caps::default();
            for l in &entries {
                r::capa_line(&mut want, l);
            }
            assert_eq!(ref_caps(c), want, "CAPA");
        }
        (
            6,
            OwnedEvent::Ok {
                response: Response::Languages(v),
                ..
            },
        ) => {
            assert_eq!(v.len(), entries.len(), "LANG listing length");
            for (lang, l) in v.iter().zip(&entries) {
                let w = r::words(l);
                assert_eq!(lang.tag, String::from_utf8_lossy(w[0]), "LANG tag");
                // The description: after the tag, leading blanks skipped.
                let start = l
                    .iter()
                    .position(|b| *b != b' ' && *b != b'\t')
                    .unwrap_or(0)
                    + w[0].len();
                let desc = l[start..]
                    .iter()
                    .position(|b| *b != b' ' && *b != b'\t')
                    .map_or(&[][..], |i| &l[start + i..]);
                assert_eq!(
                    lang.description,
                    String::from_utf8_lossy(desc),
                    "LANG description"
                );
            }
        }
        (7, OwnedEvent::Err { response: e, .. }) => check_status(&e.code, &e.text, arg),
        (w, ev) => panic!("reply kind {w}: unexpected last event {ev:?}"),
    }
}

/// The client refused a reply: the reference grammar must refuse it too.
fn check_rejected_reply(input: &LinesInput, listing: &[&[u8]], arg: &[u8], e: &ProtocolError) {
    let lenient = input.lenient;
    let blank = |l: &[u8]| l.iter().all(|b| *b == b' ' || *b == b'\t');
    let entries = || listing.iter().copied().filter(|l| !blank(l));
    let refused = match input.which {
        0 => r::stat(arg).is_none(),
        1 => r::list_entry(arg).is_none(),
        2 => r::uidl_entry(arg, lenient).is_none(),
        3 => entries().any(|l| r::list_entry(l).is_none()),
        4 => entries().any(|l| r::uidl_entry(l, lenient).is_none()),
        // CAPA lines are never refused (the quirks policy), nor LANG's.
        5 | 6 => false,
        _ => false,
    };
    assert!(
        refused && matches!(e, ProtocolError::MalformedLine { .. }),
        "reply kind {} refused with {e:?}, but the grammar accepts {:?}",
        input.which,
        input
            .lines
            .iter()
            .map(|l| String::from_utf8_lossy(l))
            .collect::<Vec<_>>()
    );
}

/// The same lines through the core's internal parsers.
#[cfg(fuzzing)]
fn fuzzing_module(input: &LinesInput) {
    use pop3_proto::fuzzing as f;
    for line in &input.lines {
        let l = line.as_slice();
        assert_eq!(
            f::stat(l).ok().map(|s| (s.count, s.octets)),
            r::stat(l),
            "fuzzing::stat"
        );
        assert_eq!(
            f::list_entry(l).ok().map(|e| (e.number, e.octets)),
            r::list_entry(l),
            "fuzzing::list_entry"
        );
        for lenient in [false, true] {
            assert_eq!(
                f::uidl_entry(l, lenient)
                    .ok()
                    .map(|e| (e.number, e.uid.as_bytes().to_vec())),
                r::uidl_entry(l, lenient),
                "fuzzing::uidl_entry lenient={lenient}"
            );
        }
        let s = f::status_text(l);
        check_status(&s.code, &s.text, l);
        assert_eq!(
            f::apop_timestamp(l),
            r::apop_timestamp(l),
            "fuzzing::apop_timestamp"
        );
    }
    let mut caps = Capabilities::default();
    let mut want = r::Caps::default();
    for line in &input.lines {
        f::capa_line(&mut caps, line);
        r::capa_line(&mut want, line);
    }
    assert_eq!(ref_caps(&caps), want, "fuzzing::capa_line");
}

// ===========================================================================
// Target: sasl_challenges
// ===========================================================================

/// How the SCRAM server-final message is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalKind {
    /// `v=` + the right signature (must verify).
    Right,
    /// `v=` + the right signature without `=` padding (must verify).
    RightUnpadded,
    /// `v=` + the right signature with one bit flipped at `bit`.
    Flipped(u16),
    /// `v=` + base64 of arbitrary bytes.
    Arbitrary,
    /// Arbitrary bytes.
    Raw,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslInput {
    /// A mechanism, then arbitrary challenges.
    Challenges {
        mech: MechSpec,
        initial: bool,
        challenges: Vec<Vec<u8>>,
    },
    /// A SCRAM exchange with a well-formed server-first built from parts.
    Scram {
        sha256: bool,
        pass: String,
        /// Appended to the client nonce.
        nonce_suffix: String,
        salt: Vec<u8>,
        iterations: u16,
        extensions: String,
        final_kind: FinalKind,
        final_bytes: Vec<u8>,
        through_client: bool,
    },
}

impl SaslInput {
    pub fn decode(data: &[u8]) -> Self {
        let mut r = Reader::new(data);
        if r.byte() % 2 == 0 {
            let mech = MechSpec::decode(&mut r);
            let initial = r.bool();
            let mut challenges = Vec::new();
            while !r.is_empty() && challenges.len() < 8 {
                challenges.push(r.blob().to_vec());
            }
            SaslInput::Challenges {
                mech,
                initial,
                challenges,
            }
        } else {
            let flags = r.byte();
            let nonce_suffix = r.text();
            let salt = r.blob().to_vec();
            let iterations = r.u16();
            let extensions = r.text();
            let kind = r.byte();
            let bit = r.u16();
            let final_bytes = r.blob().to_vec();
            let pass = String::from_utf8_lossy(r.rest()).into_owned();
            SaslInput::Scram {
                sha256: flags & 1 != 0,
                through_client: flags & 2 != 0,
                pass,
                nonce_suffix,
                salt,
                iterations,
                extensions,
                final_kind: match kind % 5 {
                    0 => FinalKind::Right,
                    1 => FinalKind::RightUnpadded,
                    2 => FinalKind::Flipped(bit),
                    3 => FinalKind::Arbitrary,
                    _ => FinalKind::Raw,
                },
                final_bytes,
            }
        }
    }
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match self {
            SaslInput::Challenges {
                mech,
                initial,
                challenges,
            } => {
                w.byte(0);
                mech.encode(&mut w);
                w.bool(*initial);
                for c in challenges {
                    w.blob(c);
                }
            }
            SaslInput::Scram {
                sha256,
                pass,
                nonce_suffix,
                salt,
                iterations,
                extensions,
                final_kind,
                final_bytes,
                through_client,
            } => {
                w.byte(1)
                    .byte(u8::from(*sha256) | u8::from(*through_client) << 1)
                    .blob(nonce_suffix.as_bytes())
                    .blob(salt)
                    .u16(*iterations)
                    .blob(extensions.as_bytes());
                let (k, bit) = match final_kind {
                    FinalKind::Right => (0, 0),
                    FinalKind::RightUnpadded => (1, 0),
                    FinalKind::Flipped(b) => (2, *b),
                    FinalKind::Arbitrary => (3, 0),
                    FinalKind::Raw => (4, 0),
                };
                w.byte(k).u16(bit).blob(final_bytes).raw(pass.as_bytes());
            }
        }
        w.0
    }
}

/// `sasl_challenges`: arbitrary challenges never panic any mechanism, a
/// failed or finished mechanism stays failed/finished, and SCRAM verifies
/// the server (directly and through the `Client`) exactly when the
/// server-final message carries the right signature.
pub fn sasl_challenges(input: &SaslInput) {
    match input {
        SaslInput::Challenges {
            mech,
            initial,
            challenges,
        } => arbitrary_challenges(mech, *initial, challenges),
        SaslInput::Scram { .. } => scram_exchange(input),
    }
}

fn arbitrary_challenges(spec: &MechSpec, initial: bool, challenges: &[Vec<u8>]) {
    let Some((m, outcomes)) = drive_mechanism(spec, initial, challenges, true) else {
        return;
    };
    // Debug never shows the secret: it does not change when the secret does
    // (same exchange with every letter and digit of the secret shifted).
    let twin = spec.with_shifted_secret();
    if twin != *spec {
        if let Some((t, twin_outcomes)) = drive_mechanism(&twin, initial, challenges, false) {
            if outcomes == twin_outcomes {
                let (a, b) = (format!("{m:?}"), format!("{t:?}"));
                assert_eq!(a, b, "Debug depends on the secret");
            }
        }
    }
}

/// Runs a mechanism over the challenges, checking the step contract.
/// Returns the mechanism and which steps succeeded.
fn drive_mechanism(
    spec: &MechSpec,
    initial: bool,
    challenges: &[Vec<u8>],
    check: bool,
) -> Option<(Box<dyn MechDebug>, Vec<bool>)> {
    let mut m = spec.build_dbg()?;
    assert!(
        MechanismName::new(m.name()).is_ok(),
        "mechanism name {:?} is not a valid name",
        m.name()
    );
    let mut outcomes = Vec::new();
    if initial {
        outcomes.push(m.initial_response().is_ok());
    }
    // After an error, every later step is `UnexpectedChallenge`; after a
    // real failure (not just a challenge too many), `finish` fails too.
    let mut stopped = false;
    let mut failed = false;
    for c in challenges {
        let res = m.step(c);
        outcomes.push(res.is_ok());
        if stopped {
            assert!(
                matches!(res, Err(SaslError::UnexpectedChallenge)),
                "step after an error returned {res:?}"
            );
            continue;
        }
        match res {
            Ok(resp) => {
                if check {
                    check_sasl_response(spec, c, resp.expose());
                }
            }
            Err(SaslError::UnexpectedChallenge) => stopped = true,
            Err(_) => {
                stopped = true;
                failed = true;
            }
        }
    }
    let finished = m.finish();
    if failed {
        assert!(finished.is_err(), "finish() succeeded after a failed step");
    }
    outcomes.push(finished.is_ok());
    let _ = m.server_error();
    Some((m, outcomes))
}

/// What a mechanism may answer to a challenge.
fn check_sasl_response(spec: &MechSpec, challenge: &[u8], resp: &[u8]) {
    match spec {
        MechSpec::CramMd5 { user, pass } => {
            let mut want = user.as_bytes().to_vec();
            want.push(b' ');
            want.extend_from_slice(r::hex(&r::hmac(r::md5, pass.as_bytes(), challenge)).as_bytes());
            assert_eq!(resp, want, "CRAM-MD5 response");
        }
        MechSpec::Login { user, pass } => {
            assert!(
                resp == user.as_bytes() || resp == pass.as_bytes(),
                "LOGIN answered neither user nor password"
            );
        }
        _ => {}
    }
}

/// A full SCRAM exchange with an honest server whose final message is
/// possibly tampered with.
fn scram_exchange(input: &SaslInput) {
    let SaslInput::Scram {
        sha256,
        pass,
        nonce_suffix,
        salt,
        iterations,
        extensions,
        final_kind,
        final_bytes,
        through_client,
    } = input
    else {
        return;
    };
    let iterations = u32::from(*iterations % 64) + 1;
    let hash: r::HashFn = if *sha256 { r::sha256 } else { r::sha1 };
    let spec = MechSpec::Scram {
        sha256: *sha256,
        user: "user".into(),
        pass: pass.clone(),
        authzid: String::new(),
        binding: 0,
        cb_data: Vec::new(),
    };
    let Some(mut m) = spec.scram() else { return };
    // Only printable-ASCII passwords: SASLprep leaves them unchanged, so
    // the reference server can use the bytes as they are.
    if !pass.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return;
    }
    let first = m
        .initial_response()
        .expect("SCRAM initial response")
        .expect("SCRAM has one");
    let first = String::from_utf8(first.expose().clone()).expect("client-first is UTF-8");
    let bare = first
        .strip_prefix("n,,")
        .expect("gs2 header n,,")
        .to_string();
    let suffix: String = nonce_suffix
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != ',')
        .collect();
    let suffix = if suffix.is_empty() {
        "x".to_string()
    } else {
        suffix
    };
    let salt = if salt.is_empty() {
        b"salt".to_vec()
    } else {
        salt.clone()
    };
    let ext: String = extensions
        .chars()
        .filter(|c| *c != ',' && !c.is_control())
        .collect();
    let mut server_first = format!(
        "r={SCRAM_NONCE}{suffix},s={},i={iterations}",
        r::base64_encode(&salt)
    );
    if !ext.is_empty() {
        server_first.push_str(&format!(",x={ext}"));
    }
    let server = r::ScramServer {
        hash,
        password: pass.as_bytes().to_vec(),
        salt,
        iterations,
    };
    let sig_for_check;
    let (server_final, should_verify) = {
        // The signature needs the client-final message, so compute it from a twin.
        let mut twin = spec.scram().expect("built once");
        let _ = twin.initial_response();
        let client_final = twin
            .step(server_first.as_bytes())
            .expect("well-formed server-first accepted");
        let client_final =
            String::from_utf8(client_final.expose().clone()).expect("client-final is UTF-8");
        let sig = server
            .verify(&bare, &server_first, &client_final)
            .expect("the client's proof verifies with the reference server");
        sig_for_check = sig.clone();
        match final_kind {
            FinalKind::Right => (format!("v={}", r::base64_encode(&sig)).into_bytes(), true),
            FinalKind::RightUnpadded => (
                format!("v={}", r::base64_encode(&sig).trim_end_matches('=')).into_bytes(),
                true,
            ),
            FinalKind::Flipped(bit) => {
                let mut s = sig.clone();
                let bit = usize::from(*bit) % (s.len() * 8);
                s[bit / 8] ^= 1 << (bit % 8);
                (format!("v={}", r::base64_encode(&s)).into_bytes(), false)
            }
            FinalKind::Arbitrary => {
                let v = final_bytes.as_slice() == sig.as_slice();
                (
                    format!("v={}", r::base64_encode(final_bytes)).into_bytes(),
                    v,
                )
            }
            FinalKind::Raw => (final_bytes.clone(), false),
        }
    };
    // Whatever the kind, the reference decides: `v=` + base64 (padding
    // optional) of exactly the signature, extensions after `,` ignored.
    let should_verify = should_verify || reference_verifies(&server_final, &sig_for_check);
    assert!(
        !(matches!(final_kind, FinalKind::Flipped(_)) && should_verify),
        "a flipped signature cannot be right"
    );

    if *through_client {
        scram_through_client(&spec, &server_first, &server_final, should_verify);
        return;
    }
    let client_final = m
        .step(server_first.as_bytes())
        .expect("well-formed server-first accepted");
    assert!(!client_final.expose().is_empty());
    assert!(
        m.finish().is_err(),
        "SCRAM finished before the server proved itself"
    );
    let res = m.step(&server_final);
    if should_verify {
        assert!(
            res.as_ref().is_ok_and(|r| r.expose().is_empty()),
            "right signature refused: {res:?}"
        );
        m.finish().expect("verified exchange finishes");
        assert!(m.is_server_verified());
    } else {
        assert!(
            res.is_err(),
            "SCRAM accepted a wrong server signature {:?}",
            String::from_utf8_lossy(&server_final)
        );
        assert!(!m.is_server_verified());
        assert!(m.finish().is_err(), "finish() after a bad signature");
    }
}

/// RFC 5802 §7: `server-final-message = (server-error / verifier) ["," extensions]`.
fn reference_verifies(server_final: &[u8], sig: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(server_final) else {
        return false;
    };
    let Some(v) = text.strip_prefix("v=") else {
        return false;
    };
    let v = v.split(',').next().unwrap_or("");
    r::base64_decode(v.as_bytes(), true).is_some_and(|d| d == sig)
}

/// The same exchange through a `Client`: the session reaches TRANSACTION
/// exactly when the signature is right; otherwise the `+OK` that follows
/// is a `ProtocolError::Sasl`.
fn scram_through_client(
    spec: &MechSpec,
    server_first: &str,
    server_final: &[u8],
    should_verify: bool,
) {
    let mut config = Config::default();
    config.allow_cleartext_credentials = true;
    let mut client = Client::new(config);
    let mech = spec.build().expect("built once");
    client
        .authenticate(mech)
        .expect("AUTH accepted in AUTHORIZATION");
    let mut server = b"+OK ready\r\n".to_vec();
    server.extend_from_slice(
        format!("+ {}\r\n", r::base64_encode(server_first.as_bytes())).as_bytes(),
    );
    server.extend_from_slice(format!("+ {}\r\n", r::base64_encode(server_final)).as_bytes());
    server.extend_from_slice(b"+OK logged in\r\n");
    let mut sent = Vec::new();
    let mut transaction = false;
    let mut error = None;
    for line in server.split_inclusive(|b| *b == b'\n') {
        client.handle_input(line);
        loop {
            while client.poll_transmit(&mut sent).is_some() {}
            match client.poll_event() {
                Ok(Some(Event::StateChanged { to, .. })) => {
                    transaction |= to == SessionState::Transaction
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    if !client.wants_write() {
                        break;
                    }
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        if error.is_some() {
            break;
        }
    }
    if should_verify {
        assert!(
            transaction && error.is_none(),
            "right signature: no TRANSACTION ({error:?})"
        );
    } else {
        assert!(
            !transaction,
            "SCRAM session reached TRANSACTION with a wrong server signature"
        );
        assert!(
            matches!(error, Some(ProtocolError::Sasl(_))),
            "wrong signature followed by +OK must be ProtocolError::Sasl, got {error:?}"
        );
    }
    // The client cancelled the exchange exactly when it refused the server.
    let cancelled = sent.windows(3).any(|w| w == b"*\r\n");
    assert_eq!(cancelled, !should_verify, "cancel sent = {cancelled}");
}

// ===========================================================================
// command_build
// ===========================================================================

/// `command_build` input: three texts, an initial-response blob (or none)
/// and two numbers, fed to every public way of building a command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildInput {
    pub texts: [String; 3],
    pub initial: Option<Vec<u8>>,
    pub nums: [u32; 2],
}

impl BuildInput {
    pub fn decode(data: &[u8]) -> Self {
        let mut r = Reader::new(data);
        let texts = [r.text(), r.text(), r.text()];
        let initial = r.bool().then(|| r.blob().to_vec());
        let nums = [r.num(), r.num()];
        BuildInput {
            texts,
            initial,
            nums,
        }
    }
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        for t in &self.texts {
            w.blob(t.as_bytes());
        }
        match &self.initial {
            Some(ir) => w.bool(true).blob(ir),
            None => w.bool(false),
        };
        w.num(self.nums[0]).num(self.nums[1]);
        w.0
    }
}

/// Asserts that `cmd` encodes to exactly one CRLF-terminated line of at
/// most [`MAX_COMMAND_LINE`] octets, with no other CR, LF or NUL, starting
/// with its keyword.
pub fn assert_one_line(cmd: &Command) {
    let mut line = Vec::new();
    cmd.encode(&mut line);
    let shown = String::from_utf8_lossy(&line);
    assert!(
        line.len() <= MAX_COMMAND_LINE,
        "{cmd:?}: {} octets: {shown:?}",
        line.len()
    );
    assert!(line.ends_with(b"\r\n"), "{cmd:?}: no CRLF: {shown:?}");
    let body = &line[..line.len() - 2];
    assert!(
        !body.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)),
        "{cmd:?}: CR, LF or NUL inside the line: {shown:?}"
    );
    assert!(
        line.starts_with(cmd.kind().keyword().as_bytes()),
        "{cmd:?}: keyword differs from kind()"
    );
}

/// The same verdict and value from `new`, `TryFrom<&str>` and
/// `TryFrom<String>`.
fn validated<T>(
    s: &str,
    new: fn(&str) -> Result<T, CommandError>,
    from_str: fn(&str) -> Result<T, CommandError>,
    from_string: fn(String) -> Result<T, CommandError>,
) -> Option<T>
where
    T: PartialEq + core::fmt::Debug,
{
    let a = new(s);
    assert_eq!(a, from_str(s), "new and TryFrom<&str> differ on {s:?}");
    assert_eq!(
        a,
        from_string(s.to_owned()),
        "new and TryFrom<String> differ on {s:?}"
    );
    a.ok()
}

/// `command_build`: every public way of building a [`Command`] (the
/// constructors, and each variant from its validated payload types built
/// with `new` / `TryFrom`) from arbitrary texts, bytes and numbers. Every
/// command that can be built encodes to one line of at most 255 octets,
/// and the constructor and the payload-type route agree.
pub fn command_build(input: &BuildInput) {
    use pop3_proto::{Apop, ApopDigest, LangTag, Password, UserName};
    let [a, b, c] = &input.texts;
    let ir = input.initial.clone().map(Secret::new);
    let mut built: Vec<Command> = Vec::new();
    for t in [a, b, c] {
        let user = validated(t, UserName::new, |s| s.try_into(), |s| s.try_into());
        assert_eq!(
            user.clone().map(Command::User),
            Command::user(t).ok(),
            "USER: constructor and UserName differ on {t:?}"
        );
        assert_eq!(
            user.clone().map(Command::Rpop),
            Command::rpop(t).ok(),
            "RPOP: constructor and UserName differ on {t:?}"
        );
        let pass = validated(t, Password::new, |s| s.try_into(), |s| s.try_into());
        assert_eq!(
            pass.clone().map(Command::Pass),
            Command::pass(t).ok(),
            "PASS: constructor and Password differ"
        );
        let tag = validated(t, LangTag::new, |s| s.try_into(), |s| s.try_into());
        assert_eq!(
            tag.clone().map(|t| Command::Lang(Some(t))),
            Command::lang(Some(t)).ok(),
            "LANG: constructor and LangTag differ on {t:?}"
        );
        let mech = validated(t, MechanismName::new, |s| s.try_into(), |s| s.try_into());
        let auth = mech.map(|m| Command::Auth {
            mechanism: m,
            initial_response: ir.clone(),
        });
        assert_eq!(
            auth,
            Command::auth(t, ir.clone()).ok(),
            "AUTH: constructor and MechanismName differ on {t:?}"
        );
        if let Some(digest) = validated(t, ApopDigest::new, |s| s.try_into(), |s| s.try_into()) {
            assert_eq!(digest.expose(), t.as_str());
            if let Some(u) = &user {
                built.extend(Apop::new(u.clone(), digest).ok().map(Command::Apop));
            }
        }
        built.extend(user.clone().map(Command::User));
        built.extend(user.map(Command::Rpop));
        built.extend(pass.map(Command::Pass));
        built.extend(tag.map(|t| Command::Lang(Some(t))));
        built.extend(auth);
    }
    // APOP: the constructor, and Apop::new with a computed digest.
    let computed = ApopDigest::compute(b, c);
    assert!(
        ApopDigest::new(computed.expose()).as_ref() == Ok(&computed),
        "a computed digest is not a valid digest"
    );
    let via_parts = UserName::new(a)
        .ok()
        .and_then(|u| Apop::new(u, computed).ok())
        .map(Command::Apop);
    assert_eq!(
        via_parts,
        Command::apop(a, b, c).ok(),
        "APOP: constructor and Apop::new differ"
    );
    built.extend(via_parts);
    // Message numbers and the commands without arguments.
    let [n, lines] = input.nums;
    let num = MsgNum::new(n);
    assert_eq!(num, MsgNum::try_from(n).ok(), "MsgNum::new vs TryFrom");
    if let Some(m) = num {
        assert_eq!(m.get(), n);
        built.extend([
            Command::List(Some(m)),
            Command::Uidl(Some(m)),
            Command::Retr(m),
            Command::Dele(m),
            Command::Top(m, lines),
        ]);
    }
    built.extend([
        Command::Stat,
        Command::List(None),
        Command::Uidl(None),
        Command::Rset,
        Command::Noop,
        Command::Quit,
        Command::Capa,
        Command::Stls,
        Command::Utf8,
        Command::Lang(None),
    ]);
    built.extend(Command::lang(None).ok());
    for cmd in &built {
        assert_one_line(cmd);
        assert_one_line(&cmd.clone());
    }
}

/// A target's check over raw input bytes.
pub type Check = fn(&[u8]);

/// Every target by name, with its check (for replay tools and tests).
pub const TARGETS: [(&str, Check); 7] = [
    ("decoder_split", |d| decoder_split(&DecoderInput::decode(d))),
    ("client_session", |d| {
        client_session(&SessionInput::decode(d));
    }),
    ("body_roundtrip", |d| body_roundtrip(&BodyInput::decode(d))),
    ("command_roundtrip", |d| {
        command_roundtrip(&CommandInput::decode(d))
    }),
    ("command_build", |d| command_build(&BuildInput::decode(d))),
    ("line_parsers", |d| line_parsers(&LinesInput::decode(d))),
    ("sasl_challenges", |d| {
        sasl_challenges(&SaslInput::decode(d))
    }),
];

/// The check of the target called `target`.
pub fn check_for(target: &str) -> Check {
    TARGETS
        .iter()
        .find(|(t, _)| *t == target)
        .map(|(_, c)| *c)
        .unwrap_or_else(|| panic!("unknown fuzz target {target:?}"))
}

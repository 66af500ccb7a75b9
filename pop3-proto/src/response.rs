//! Typed server responses: greeting, status lines with response codes,
//! STAT, LIST, UIDL, CAPA and LANG results.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The RFC 1939 session states, plus the two ends the client sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionState {
    /// Connected, waiting for the server greeting.
    Greeting,
    /// AUTHORIZATION: the client must identify itself.
    Authorization,
    /// TRANSACTION: the mailbox is locked and open.
    Transaction,
    /// UPDATE: QUIT was sent in TRANSACTION; the server applies deletions.
    Update,
    /// The session is over (QUIT answered, greeting refused, or the server
    /// closed the connection).
    Closed,
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SessionState::Greeting => "GREETING",
            SessionState::Authorization => "AUTHORIZATION",
            SessionState::Transaction => "TRANSACTION",
            SessionState::Update => "UPDATE",
            SessionState::Closed => "CLOSED",
        })
    }
}

/// Which command a reply belongs to (the keyword, without arguments).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)] // the variants are the RFC keywords
pub enum CommandKind {
    User,
    Pass,
    Apop,
    Rpop,
    Auth,
    Stat,
    List,
    Retr,
    Dele,
    Rset,
    Noop,
    Quit,
    Top,
    Uidl,
    Capa,
    Stls,
    Utf8,
    Lang,
}

impl CommandKind {
    /// The command keyword as sent on the wire.
    pub fn keyword(self) -> &'static str {
        match self {
            CommandKind::User => "USER",
            CommandKind::Pass => "PASS",
            CommandKind::Apop => "APOP",
            CommandKind::Rpop => "RPOP",
            CommandKind::Auth => "AUTH",
            CommandKind::Stat => "STAT",
            CommandKind::List => "LIST",
            CommandKind::Retr => "RETR",
            CommandKind::Dele => "DELE",
            CommandKind::Rset => "RSET",
            CommandKind::Noop => "NOOP",
            CommandKind::Quit => "QUIT",
            CommandKind::Top => "TOP",
            CommandKind::Uidl => "UIDL",
            CommandKind::Capa => "CAPA",
            CommandKind::Stls => "STLS",
            CommandKind::Utf8 => "UTF8",
            CommandKind::Lang => "LANG",
        }
    }
}

impl fmt::Display for CommandKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

/// An extended response code (RFC 2449 §8, RFC 3206, RFC 6856), the
/// bracketed word after `+OK` / `-ERR`.
///
/// Codes are hierarchical (`SYS/TEMP`); known codes are recognised by their
/// leading levels as RFC 2449 asks (`SYS/TEMP/QUOTA` is [`RespCode::SysTemp`]).
/// Anything else is kept verbatim in [`RespCode::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RespCode {
    /// `IN-USE`: the mailbox is locked by another session.
    InUse,
    /// `LOGIN-DELAY`: logged in too soon after the last login.
    LoginDelay,
    /// `SYS/TEMP`: a temporary system problem; try again later.
    SysTemp,
    /// `SYS/PERM`: a permanent system problem; do not retry.
    SysPerm,
    /// `AUTH`: the credentials were wrong (RFC 3206).
    Auth,
    /// `UTF8`: the command needs UTF-8 mode (RFC 6856).
    Utf8,
    /// Any other code, verbatim (for example `SYS` alone, or `X-FOO/BAR`).
    Other(String),
}

impl RespCode {
    /// Classifies a code string such as `"SYS/TEMP"`.
    pub fn from_code(code: &str) -> RespCode {
        let mut levels = code.split('/');
        let first = levels.next().unwrap_or("");
        let second = levels.next();
        let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        match (first, second) {
            (f, _) if eq(f, "IN-USE") => RespCode::InUse,
            (f, _) if eq(f, "LOGIN-DELAY") => RespCode::LoginDelay,
            (f, _) if eq(f, "AUTH") => RespCode::Auth,
            (f, _) if eq(f, "UTF8") => RespCode::Utf8,
            (f, Some(s)) if eq(f, "SYS") && eq(s, "TEMP") => RespCode::SysTemp,
            (f, Some(s)) if eq(f, "SYS") && eq(s, "PERM") => RespCode::SysPerm,
            _ => RespCode::Other(String::from(code)),
        }
    }

    /// The code as it would be written (`"SYS/TEMP"`, or the verbatim text).
    pub fn as_str(&self) -> &str {
        match self {
            RespCode::InUse => "IN-USE",
            RespCode::LoginDelay => "LOGIN-DELAY",
            RespCode::SysTemp => "SYS/TEMP",
            RespCode::SysPerm => "SYS/PERM",
            RespCode::Auth => "AUTH",
            RespCode::Utf8 => "UTF8",
            RespCode::Other(s) => s,
        }
    }

    /// Whether retrying later may succeed (`IN-USE`, `LOGIN-DELAY`,
    /// `SYS/TEMP`).
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            RespCode::InUse | RespCode::LoginDelay | RespCode::SysTemp
        )
    }
}

impl fmt::Display for RespCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text of a status line after `+OK` or `-ERR`, with its optional
/// response code split off.
///
/// `text` is the server's text as lossy UTF-8 and may contain any printable
/// or control character: neutralise it before showing it on a terminal.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    /// The bracketed response code, if the text started with one.
    pub code: Option<RespCode>,
    /// The human-readable text after the code (may be empty).
    pub text: String,
}

/// A `-ERR` reply: the command failed; the session continues (except after
/// QUIT, where it means the UPDATE state could not apply deletions).
///
/// `#[non_exhaustive]`: it has grown before (`sasl_detail`) and will again
/// (more extended codes); build one with [`ErrResponse::new`] (for a test
/// double, say) and [`ErrResponse::with_sasl_detail`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ErrResponse {
    /// The response code, if any (`IN-USE`, `AUTH`, `SYS/TEMP`, ...).
    pub code: Option<RespCode>,
    /// The server's text (lossy UTF-8).
    pub text: String,
    /// For AUTH failures: extra detail the SASL mechanism received inside
    /// the exchange, for example the JSON error of XOAUTH2/OAUTHBEARER.
    pub sasl_detail: Option<String>,
}

impl ErrResponse {
    /// A `-ERR` with this code and text (no SASL detail).
    pub fn new(code: Option<RespCode>, text: impl Into<String>) -> ErrResponse {
        ErrResponse {
            code,
            text: text.into(),
            sasl_detail: None,
        }
    }

    /// The same, with the detail a SASL mechanism received.
    pub fn with_sasl_detail(mut self, detail: impl Into<String>) -> ErrResponse {
        self.sasl_detail = Some(detail.into());
        self
    }
}

impl fmt::Display for ErrResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("-ERR")?;
        if let Some(code) = &self.code {
            write!(f, " [{code}]")?;
        }
        if !self.text.is_empty() {
            write!(f, " {}", self.text)?;
        }
        if let Some(d) = &self.sasl_detail {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

/// The server greeting (`+OK` line sent on connect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// The greeting's response code and text.
    pub status: Status,
    /// The APOP timestamp (`<...@...>`, angle brackets included), if any.
    pub apop_timestamp: Option<String>,
}

/// The reply to STAT: number of messages and their total size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Stat {
    /// Number of messages in the maildrop (not counting ones marked deleted).
    pub count: u32,
    /// Total size in octets.
    pub octets: u64,
}

/// One entry of a LIST reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListEntry {
    /// The message number (1-based).
    pub number: u32,
    /// The message size in octets, as the server counts it.
    pub octets: u64,
}

/// A message unique-id (RFC 1939 §7): 1 to 70 octets in 0x21..=0x7E.
///
/// With [`Config::lenient_uids`](crate::Config::lenient_uids), any
/// non-empty run of bytes without CR/LF is accepted, so the value is kept as
/// bytes; [`Uid::as_str`] returns `None` for non-UTF-8 ones.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uid(Box<[u8]>);

impl Uid {
    /// Validates a strict RFC 1939 unique-id.
    pub fn new(bytes: &[u8]) -> Option<Uid> {
        if (1..=70).contains(&bytes.len()) && bytes.iter().all(|b| (0x21..=0x7e).contains(b)) {
            Some(Uid(bytes.into()))
        } else {
            None
        }
    }

    /// Accepts any non-empty value without CR, LF or NUL (lenient mode).
    pub fn new_lenient(bytes: &[u8]) -> Option<Uid> {
        if !bytes.is_empty() && !bytes.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            Some(Uid(bytes.into()))
        } else {
            None
        }
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The value as text, when it is UTF-8 (always, for strict UIDs).
    pub fn as_str(&self) -> Option<&str> {
        core::str::from_utf8(&self.0).ok()
    }
}

impl fmt::Debug for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Some(s) => write!(f, "Uid({s:?})"),
            None => write!(f, "Uid({:?})", &self.0),
        }
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// One entry of a UIDL reply.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UidlEntry {
    /// The message number (1-based).
    pub number: u32,
    /// The message's unique id, stable across sessions.
    pub uid: Uid,
}

/// The `EXPIRE` capability (RFC 2449 §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Expire {
    /// Messages are never deleted by the server.
    Never,
    /// Messages are deleted this many days after retrieval (0: right after
    /// the session that retrieved them).
    Days(u32),
}

/// The server's capabilities, from CAPA (RFC 2449, 2595, 5034, 6856).
///
/// Capability names are matched case-insensitively. Lines the parser does
/// not know, and known capabilities whose arguments break their grammar,
/// are kept verbatim in [`Capabilities::other`] (the crate docs' quirks
/// policy): a capability line never ends the session.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Capabilities {
    /// `TOP`
    pub top: bool,
    /// `USER`
    pub user: bool,
    /// `SASL` mechanisms, uppercased, in the server's order.
    pub sasl: Vec<String>,
    /// `RESP-CODES`
    pub resp_codes: bool,
    /// `AUTH-RESP-CODE`
    pub auth_resp_code: bool,
    /// `PIPELINING`
    pub pipelining: bool,
    /// `UIDL`
    pub uidl: bool,
    /// `STLS`
    pub stls: bool,
    /// `UTF8`: `Some(true)` when it carries the `USER` argument (UTF-8
    /// user names and passwords are accepted too).
    pub utf8: Option<bool>,
    /// `LANG`
    pub lang: bool,
    /// `EXPIRE` policy and whether it is per `USER`.
    pub expire: Option<(Expire, bool)>,
    /// `LOGIN-DELAY` seconds and whether it is per `USER`.
    pub login_delay: Option<(u32, bool)>,
    /// `IMPLEMENTATION` text.
    pub implementation: Option<String>,
    /// Every other capability line, verbatim (lossy UTF-8).
    pub other: Vec<String>,
}

impl Capabilities {
    /// Whether the server offers this SASL mechanism (case-insensitive).
    pub fn has_sasl(&self, mechanism: &str) -> bool {
        self.sasl.iter().any(|m| m.eq_ignore_ascii_case(mechanism))
    }
}

/// One language of a `LANG` listing (RFC 6856 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Language {
    /// The language tag, for example `en` or `i-default`.
    pub tag: String,
    /// The description the server gave.
    pub description: String,
}

/// The typed payload of a `+OK` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Response {
    /// A single-line `+OK` with nothing more to parse (USER, PASS, APOP,
    /// RPOP, AUTH, DELE, RSET, NOOP, QUIT, STLS, UTF8, LANG tag).
    Status(Status),
    /// `STAT`
    Stat(Stat),
    /// `LIST` without an argument.
    List(Vec<ListEntry>),
    /// `LIST n`
    ListOne(ListEntry),
    /// `UIDL` without an argument.
    Uidl(Vec<UidlEntry>),
    /// `UIDL n`
    UidlOne(UidlEntry),
    /// `CAPA`
    Capa(Capabilities),
    /// `LANG` without an argument: the languages the server offers.
    Languages(Vec<Language>),
    /// The `+OK` line of `RETR` or `TOP`: the body follows as
    /// [`Event::BodyChunk`](crate::Event::BodyChunk) events and ends with
    /// [`Event::BodyEnd`](crate::Event::BodyEnd).
    BodyStart(Status),
}

macro_rules! response_accessor {
    ($(#[$doc:meta] $name:ident => $variant:ident($ty:ty);)*) => {
        impl Response {
            $(
                #[$doc]
                pub fn $name(self) -> Option<$ty> {
                    match self {
                        Response::$variant(v) => Some(v),
                        _ => None,
                    }
                }
            )*
        }
    };
}

response_accessor! {
    /// The status of a single-line `+OK`, if that is what this is.
    into_status => Status(Status);
    /// The STAT result, if this is one.
    into_stat => Stat(Stat);
    /// The entries of `LIST`, if this is one.
    into_list => List(Vec<ListEntry>);
    /// The entry of `LIST n`, if this is one.
    into_list_one => ListOne(ListEntry);
    /// The entries of `UIDL`, if this is one.
    into_uidl => Uidl(Vec<UidlEntry>);
    /// The entry of `UIDL n`, if this is one.
    into_uidl_one => UidlOne(UidlEntry);
    /// The capabilities of `CAPA`, if this is one.
    into_capa => Capa(Capabilities);
    /// The languages of `LANG`, if this is one.
    into_languages => Languages(Vec<Language>);
    /// The `+OK` status of `RETR`/`TOP`, if this is one.
    into_body_start => BodyStart(Status);
}

//! Validated POP3 commands. A [`Command`] value can only be built from
//! arguments that are safe to send, so [`Command::encode`] cannot fail and
//! always writes exactly one command line of at most 255 octets.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::num::NonZeroU32;

use base64::Engine as _;
use md5::{Digest, Md5};

use crate::error::CommandError;
use crate::response::CommandKind;
use crate::Secret;

/// The longest command line RFC 2449 §4 allows, CRLF included.
pub const MAX_COMMAND_LINE: usize = 255;

/// A message number: 1-based, never zero.
///
/// The one place a message number is a type of its own is the argument of
/// a [`Command`], where a zero must be refused before anything is sent.
/// Everywhere else (the adapters' `retr(n)`, `dele(n)`, `list_one(n)`,
/// batch iterators and sinks, [`ListEntry::number`](crate::ListEntry),
/// [`UidlEntry::number`](crate::UidlEntry), batch reports) a message
/// number is a plain `u32`: the parser refuses a zero from the server, a
/// zero from the caller is a `ZeroMessageNumber` usage error when the
/// command is built, and `client.retr(1)` needs no wrapping. The
/// constructors [`Command::retr`], [`Command::dele`], [`Command::top`],
/// [`Command::list_one`] and [`Command::uidl_one`] take that `u32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MsgNum(NonZeroU32);

impl MsgNum {
    /// Builds a message number; `None` for zero.
    pub const fn new(n: u32) -> Option<MsgNum> {
        match NonZeroU32::new(n) {
            Some(n) => Some(MsgNum(n)),
            None => None,
        }
    }

    /// The number.
    pub const fn get(self) -> u32 {
        self.0.get()
    }
}

impl TryFrom<u32> for MsgNum {
    type Error = CommandError;
    fn try_from(n: u32) -> Result<Self, CommandError> {
        MsgNum::new(n).ok_or(CommandError::ZeroMessageNumber)
    }
}

impl fmt::Display for MsgNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Checks one command argument: non-empty, no CR, LF or NUL, no space or
/// tab unless `allow_space`, and at most `max` octets.
fn check_arg(s: &str, allow_space: bool, max: usize) -> Result<(), CommandError> {
    if s.is_empty() {
        return Err(CommandError::Empty);
    }
    if s.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(CommandError::ForbiddenByte);
    }
    if !allow_space && s.bytes().any(|b| b == b' ' || b == b'\t') {
        return Err(CommandError::Space);
    }
    if s.len() > max {
        // Report the length of the shortest command line it would be in.
        return Err(CommandError::TooLong {
            len: MAX_COMMAND_LINE - max + s.len(),
        });
    }
    Ok(())
}

/// The longest argument of a one-argument command with a four-letter
/// keyword: `"USER " + arg + CRLF` = 255 octets.
const MAX_ONE_ARG: usize = MAX_COMMAND_LINE - 7;

/// Implements `TryFrom<&str>` and `TryFrom<String>` through `new`.
macro_rules! try_from_str {
    ($($t:ty),*) => {$(
        impl TryFrom<&str> for $t {
            type Error = CommandError;
            fn try_from(s: &str) -> Result<$t, CommandError> {
                <$t>::new(s)
            }
        }
        impl TryFrom<String> for $t {
            type Error = CommandError;
            fn try_from(s: String) -> Result<$t, CommandError> {
                <$t>::new(&s)
            }
        }
    )*};
}

/// A mailbox name for `USER` and `RPOP`: one word (no space or tab), not
/// empty, no CR, LF or NUL, at most 248 octets (so `USER name` fits in 255
/// octets with CRLF). UTF-8 is allowed (RFC 6856, after `UTF8`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserName(String);

impl UserName {
    /// The longest name accepted, in octets.
    pub const MAX_LEN: usize = MAX_ONE_ARG;

    /// Validates a mailbox name.
    pub fn new(name: &str) -> Result<UserName, CommandError> {
        check_arg(name, false, Self::MAX_LEN)?;
        Ok(UserName(String::from(name)))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password for `PASS`: not empty, no CR, LF or NUL; spaces are allowed
/// (RFC 1939 §7); at most 248 octets, so `PASS password` fits in the 255
/// octets RFC 2449 §4 allows a command line (RFC 1939 sets no limit of its
/// own; the same limit applies to every command). `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(Secret<String>);

impl Password {
    /// The longest password accepted, in octets.
    pub const MAX_LEN: usize = MAX_ONE_ARG;

    /// Validates a password.
    pub fn new(password: &str) -> Result<Password, CommandError> {
        check_arg(password, true, Self::MAX_LEN)?;
        Ok(Password(Secret::new(String::from(password))))
    }

    /// The password. Call this only where it must be used.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// An APOP digest: exactly 32 lowercase hex digits (the MD5 of the
/// greeting's timestamp and the shared secret, RFC 1939 §7). `Debug` is
/// redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct ApopDigest(Secret<String>);

impl ApopDigest {
    /// Validates a digest given as text: 32 of `0-9 a-f`.
    pub fn new(hex: &str) -> Result<ApopDigest, CommandError> {
        if hex.is_empty() {
            return Err(CommandError::Empty);
        }
        if hex.len() != 32 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(CommandError::InvalidByte);
        }
        Ok(ApopDigest(Secret::new(String::from(hex))))
    }

    /// Computes MD5(timestamp ‖ secret) as RFC 1939 §7 asks; `timestamp`
    /// is the greeting's `<...>`, angle brackets included.
    pub fn compute(timestamp: &str, secret: &str) -> ApopDigest {
        let mut h = Md5::new();
        h.update(timestamp.as_bytes());
        h.update(secret.as_bytes());
        let digest = h.finalize();
        let mut hex = String::with_capacity(32);
        for b in digest {
            hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            hex.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        ApopDigest(Secret::new(hex))
    }

    /// The digest. Call this only where it must be used.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl fmt::Debug for ApopDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApopDigest(<redacted>)")
    }
}

/// The arguments of `APOP name digest`, checked together: the name is a
/// [`UserName`] short enough that the whole line fits in 255 octets (at most
/// 215 octets, as the digest takes 32).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apop {
    user: UserName,
    digest: ApopDigest,
}

impl Apop {
    /// The longest mailbox name APOP can carry: `"APOP " + name + " " +
    /// 32 + CRLF` = 255 octets.
    pub const MAX_USER_LEN: usize = MAX_COMMAND_LINE - 5 - 1 - 32 - 2;

    /// Combines a name and a digest; refuses a name longer than
    /// [`Apop::MAX_USER_LEN`].
    pub fn new(user: UserName, digest: ApopDigest) -> Result<Apop, CommandError> {
        if user.as_str().len() > Self::MAX_USER_LEN {
            return Err(CommandError::TooLong {
                len: MAX_COMMAND_LINE - Self::MAX_USER_LEN + user.as_str().len(),
            });
        }
        Ok(Apop { user, digest })
    }

    /// The mailbox name.
    pub fn user(&self) -> &UserName {
        &self.user
    }

    /// The digest.
    pub fn digest(&self) -> &ApopDigest {
        &self.digest
    }
}

/// A language tag for `LANG tag` (RFC 6856 §3): printable US-ASCII
/// without spaces (a tag such as `en` or `de-CH`, or `*`), at most 248
/// octets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LangTag(String);

impl LangTag {
    /// The longest tag accepted, in octets.
    pub const MAX_LEN: usize = MAX_ONE_ARG;

    /// Validates a language tag.
    pub fn new(tag: &str) -> Result<LangTag, CommandError> {
        check_arg(tag, false, Self::MAX_LEN)?;
        if !tag.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(CommandError::InvalidByte);
        }
        Ok(LangTag(String::from(tag)))
    }

    /// The tag.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A SASL mechanism name: 1 to 20 of `A-Z 0-9 - _` (RFC 4422 §3.1);
/// lowercase input is uppercased.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MechanismName(String);

impl MechanismName {
    /// Validates a mechanism name.
    pub fn new(name: &str) -> Result<MechanismName, CommandError> {
        if name.is_empty() {
            return Err(CommandError::Empty);
        }
        if name.len() > 20 {
            return Err(CommandError::TooLong { len: name.len() });
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(CommandError::InvalidByte);
        }
        Ok(MechanismName(name.to_ascii_uppercase()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

try_from_str!(UserName, Password, ApopDigest, LangTag, MechanismName);

/// A client command of RFC 1939, 2449, 2595, 5034 or 6856.
///
/// Every payload is a type that can only be built validated ([`UserName`],
/// [`Password`], [`Apop`], [`MechanismName`], [`LangTag`], [`MsgNum`]), so
/// **any `Command` value encodes to exactly one CRLF-terminated line of at
/// most 255 octets** (RFC 2449 §4), whichever way it was built. The
/// constructors (`Command::user("alice")?`, `Command::pass(..)?`,
/// `Command::apop(..)?`, ...) validate and build in one step; the
/// variants can also be built from the validated types directly:
///
/// ```
/// use pop3_proto::{Command, CommandError, Password, UserName};
///
/// let user = Command::User(UserName::new("alice")?);
/// assert_eq!(user, Command::user("alice")?);
/// // An argument that would inject a second command line cannot be built.
/// assert_eq!(Password::new("x\r\nDELE 1"), Err(CommandError::ForbiddenByte));
/// assert_eq!(UserName::try_from("a b c"), Err(CommandError::Space));
/// # Ok::<(), CommandError>(())
/// ```
///
/// `Debug` never shows passwords, digests or SASL data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// `USER name`
    User(UserName),
    /// `PASS secret` (the password may contain spaces, RFC 1939 §7).
    Pass(Password),
    /// `APOP name digest`
    Apop(Apop),
    /// `RPOP user` (RFC 1081; obsolete, trusted-host authentication).
    Rpop(UserName),
    /// `AUTH mechanism [initial-response]` (RFC 5034). The initial response
    /// is sent on the command line when the line fits in 255 octets, and
    /// after the server's first empty challenge otherwise, so any value
    /// fits.
    Auth {
        /// The mechanism name.
        mechanism: MechanismName,
        /// The raw (not yet base64) initial response; `Some(empty)` is sent
        /// as `=`.
        initial_response: Option<Secret<Vec<u8>>>,
    },
    /// `STAT`
    Stat,
    /// `LIST [n]`
    List(Option<MsgNum>),
    /// `RETR n`
    Retr(MsgNum),
    /// `DELE n`
    Dele(MsgNum),
    /// `RSET`
    Rset,
    /// `NOOP`
    Noop,
    /// `QUIT`
    Quit,
    /// `TOP n lines`
    Top(MsgNum, u32),
    /// `UIDL [n]`
    Uidl(Option<MsgNum>),
    /// `CAPA`
    Capa,
    /// `STLS`
    Stls,
    /// `UTF8`
    Utf8,
    /// `LANG [tag]`: without a tag, lists the languages.
    Lang(Option<LangTag>),
}

impl Command {
    /// `USER name`; see [`UserName`].
    pub fn user(name: &str) -> Result<Command, CommandError> {
        Ok(Command::User(UserName::new(name)?))
    }

    /// `PASS password`; see [`Password`].
    pub fn pass(password: &str) -> Result<Command, CommandError> {
        Ok(Command::Pass(Password::new(password)?))
    }

    /// `APOP name digest`, computing the digest from the greeting's
    /// timestamp (angle brackets included) and the shared secret; see
    /// [`Apop`].
    pub fn apop(user: &str, timestamp: &str, secret: &str) -> Result<Command, CommandError> {
        let user = UserName::new(user)?;
        Ok(Command::Apop(Apop::new(
            user,
            ApopDigest::compute(timestamp, secret),
        )?))
    }

    /// `RPOP user`; see [`UserName`].
    pub fn rpop(user: &str) -> Result<Command, CommandError> {
        Ok(Command::Rpop(UserName::new(user)?))
    }

    /// `AUTH mechanism [initial-response]`; see [`MechanismName`].
    pub fn auth(
        mechanism: &str,
        initial_response: Option<Secret<Vec<u8>>>,
    ) -> Result<Command, CommandError> {
        Ok(Command::Auth {
            mechanism: MechanismName::new(mechanism)?,
            initial_response,
        })
    }

    /// `RETR n`; zero is [`CommandError::ZeroMessageNumber`].
    pub fn retr(n: u32) -> Result<Command, CommandError> {
        Ok(Command::Retr(MsgNum::try_from(n)?))
    }

    /// `DELE n`; zero is [`CommandError::ZeroMessageNumber`].
    pub fn dele(n: u32) -> Result<Command, CommandError> {
        Ok(Command::Dele(MsgNum::try_from(n)?))
    }

    /// `TOP n lines`; zero `n` is [`CommandError::ZeroMessageNumber`].
    pub fn top(n: u32, lines: u32) -> Result<Command, CommandError> {
        Ok(Command::Top(MsgNum::try_from(n)?, lines))
    }

    /// `LIST n`; zero is [`CommandError::ZeroMessageNumber`].
    pub fn list_one(n: u32) -> Result<Command, CommandError> {
        Ok(Command::List(Some(MsgNum::try_from(n)?)))
    }

    /// `UIDL n`; zero is [`CommandError::ZeroMessageNumber`].
    pub fn uidl_one(n: u32) -> Result<Command, CommandError> {
        Ok(Command::Uidl(Some(MsgNum::try_from(n)?)))
    }

    /// `LANG [tag]` (a language tag, or `*` for the client's default);
    /// see [`LangTag`].
    pub fn lang(tag: Option<&str>) -> Result<Command, CommandError> {
        Ok(Command::Lang(tag.map(LangTag::new).transpose()?))
    }

    /// The command keyword.
    pub fn kind(&self) -> CommandKind {
        match self {
            Command::User(_) => CommandKind::User,
            Command::Pass(_) => CommandKind::Pass,
            Command::Apop(_) => CommandKind::Apop,
            Command::Rpop(_) => CommandKind::Rpop,
            Command::Auth { .. } => CommandKind::Auth,
            Command::Stat => CommandKind::Stat,
            Command::List(_) => CommandKind::List,
            Command::Retr(_) => CommandKind::Retr,
            Command::Dele(_) => CommandKind::Dele,
            Command::Rset => CommandKind::Rset,
            Command::Noop => CommandKind::Noop,
            Command::Quit => CommandKind::Quit,
            Command::Top(..) => CommandKind::Top,
            Command::Uidl(_) => CommandKind::Uidl,
            Command::Capa => CommandKind::Capa,
            Command::Stls => CommandKind::Stls,
            Command::Utf8 => CommandKind::Utf8,
            Command::Lang(_) => CommandKind::Lang,
        }
    }

    /// Whether the line carries a secret (PASS, APOP, an AUTH initial
    /// response): such lines must never be logged.
    pub fn is_sensitive(&self) -> bool {
        match self {
            Command::Pass(_) | Command::Apop(_) => true,
            Command::Auth {
                initial_response, ..
            } => initial_response.is_some(),
            _ => false,
        }
    }

    /// Whether a `+OK` reply to this command opens a multi-line block.
    pub fn is_multiline(&self) -> bool {
        matches!(
            self,
            Command::List(None)
                | Command::Uidl(None)
                | Command::Retr(_)
                | Command::Top(..)
                | Command::Capa
                | Command::Lang(None)
        )
    }

    /// The AUTH initial response as it goes on the command line (`=` for an
    /// empty one), or `None` when there is none or the line would exceed
    /// 255 octets (then it is sent after the first server challenge).
    pub(crate) fn auth_inline_response(&self) -> Option<String> {
        let Command::Auth {
            mechanism,
            initial_response: Some(ir),
        } = self
        else {
            return None;
        };
        let text = if ir.expose().is_empty() {
            String::from("=")
        } else {
            base64::engine::general_purpose::STANDARD.encode(ir.expose())
        };
        // "AUTH " + name + " " + response + CRLF
        let len = 5 + mechanism.as_str().len() + 1 + text.len() + 2;
        (len <= MAX_COMMAND_LINE).then_some(text)
    }

    /// The length of the command line [`encode`](Command::encode) writes,
    /// CRLF included (computed without allocating for the message commands
    /// of pipelined batches: RETR, TOP, DELE, LIST n, UIDL n).
    pub fn encoded_len(&self) -> usize {
        let digits = |mut n: u32| {
            let mut d = 1;
            while n >= 10 {
                n /= 10;
                d += 1;
            }
            d
        };
        let kw = self.kind().keyword().len();
        match self {
            Command::List(Some(n))
            | Command::Uidl(Some(n))
            | Command::Retr(n)
            | Command::Dele(n) => kw + 1 + digits(n.get()) + 2,
            Command::Top(n, lines) => kw + 1 + digits(n.get()) + 1 + digits(*lines) + 2,
            _ => {
                let mut line = Vec::new();
                self.encode(&mut line);
                let len = line.len();
                line.fill(0);
                len
            }
        }
    }

    /// Appends the command line, CRLF included, to `out`. Always exactly
    /// one line of at most 255 octets.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let kw = self.kind().keyword().as_bytes();
        out.extend_from_slice(kw);
        let mut arg = |a: &[u8]| {
            out.push(b' ');
            out.extend_from_slice(a);
        };
        let mut num_buf = [0u8; 10];
        match self {
            Command::User(a) | Command::Rpop(a) => arg(a.0.as_bytes()),
            Command::Pass(a) => arg(a.expose().as_bytes()),
            Command::Apop(a) => {
                arg(a.user.0.as_bytes());
                arg(a.digest.expose().as_bytes());
            }
            Command::Auth { mechanism, .. } => {
                arg(mechanism.0.as_bytes());
                if let Some(ir) = self.auth_inline_response() {
                    arg(ir.as_bytes());
                }
            }
            Command::List(Some(n))
            | Command::Uidl(Some(n))
            | Command::Retr(n)
            | Command::Dele(n) => arg(fmt_u32(n.get(), &mut num_buf)),
            Command::Top(n, lines) => {
                arg(fmt_u32(n.get(), &mut num_buf));
                arg(fmt_u32(*lines, &mut num_buf));
            }
            Command::Lang(Some(tag)) => arg(tag.0.as_bytes()),
            Command::List(None)
            | Command::Uidl(None)
            | Command::Stat
            | Command::Rset
            | Command::Noop
            | Command::Quit
            | Command::Capa
            | Command::Stls
            | Command::Utf8
            | Command::Lang(None) => {}
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Formats a u32 in decimal without allocating.
fn fmt_u32(mut n: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Encodes a SASL response line (base64 + CRLF; an empty response is an
/// empty line).
pub(crate) fn encode_sasl_response(data: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(
        start + base64::encoded_len(data.len(), true).unwrap_or(0),
        0,
    );
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(data, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + n);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn encoded_len_matches_encode() {
        let n = |v| MsgNum::try_from(v).unwrap();
        let cmds = [
            Command::Retr(n(1)),
            Command::Retr(n(9)),
            Command::Retr(n(10)),
            Command::Dele(n(4_294_967_295)),
            Command::Top(n(123), 0),
            Command::Top(n(7), 4_000_000_000),
            Command::List(None),
            Command::List(Some(n(99))),
            Command::Uidl(Some(n(100))),
            Command::Uidl(None),
            Command::Stat,
            Command::Capa,
            Command::Quit,
            Command::user("alice").unwrap(),
            Command::pass("secret").unwrap(),
        ];
        for c in &cmds {
            assert_eq!(c.encoded_len(), enc(c).len(), "{:?}", c.kind());
        }
    }

    fn enc(c: &Command) -> Vec<u8> {
        let mut v = Vec::new();
        c.encode(&mut v);
        v
    }

    fn n(x: u32) -> MsgNum {
        MsgNum::new(x).unwrap()
    }

    #[test]
    fn numbered_constructors_take_u32_and_refuse_zero() {
        assert_eq!(enc(&Command::retr(3).unwrap()), b"RETR 3\r\n");
        assert_eq!(enc(&Command::dele(4).unwrap()), b"DELE 4\r\n");
        assert_eq!(enc(&Command::top(5, 0).unwrap()), b"TOP 5 0\r\n");
        assert_eq!(enc(&Command::list_one(6).unwrap()), b"LIST 6\r\n");
        assert_eq!(enc(&Command::uidl_one(7).unwrap()), b"UIDL 7\r\n");
        assert_eq!(Command::retr(2).unwrap(), Command::Retr(n(2)));
        for r in [
            Command::retr(0),
            Command::dele(0),
            Command::top(0, 1),
            Command::list_one(0),
            Command::uidl_one(0),
        ] {
            assert_eq!(r, Err(CommandError::ZeroMessageNumber));
        }
    }

    #[test]
    fn known_answers() {
        let cases: Vec<(Command, &[u8])> = vec![
            (Command::user("mrose").unwrap(), b"USER mrose\r\n"),
            (
                Command::pass("secret pass").unwrap(),
                b"PASS secret pass\r\n",
            ),
            (
                Command::apop("mrose", "<1896.697170952@dbc.mtview.ca.us>", "tanstaaf").unwrap(),
                b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n",
            ),
            (Command::rpop("alice").unwrap(), b"RPOP alice\r\n"),
            (Command::Stat, b"STAT\r\n"),
            (Command::List(None), b"LIST\r\n"),
            (Command::List(Some(n(2))), b"LIST 2\r\n"),
            (Command::Retr(n(1)), b"RETR 1\r\n"),
            (Command::Dele(n(4294967295)), b"DELE 4294967295\r\n"),
            (Command::Rset, b"RSET\r\n"),
            (Command::Noop, b"NOOP\r\n"),
            (Command::Quit, b"QUIT\r\n"),
            (Command::Top(n(10), 0), b"TOP 10 0\r\n"),
            (Command::Uidl(None), b"UIDL\r\n"),
            (Command::Uidl(Some(n(3))), b"UIDL 3\r\n"),
            (Command::Capa, b"CAPA\r\n"),
            (Command::Stls, b"STLS\r\n"),
            (Command::Utf8, b"UTF8\r\n"),
            (Command::lang(None).unwrap(), b"LANG\r\n"),
            (Command::lang(Some("de")).unwrap(), b"LANG de\r\n"),
            (Command::auth("plain", None).unwrap(), b"AUTH PLAIN\r\n"),
            (
                Command::auth(
                    "PLAIN",
                    Some(Secret::new(b"\0tim\0tanstaaftanstaaf".to_vec())),
                )
                .unwrap(),
                b"AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n",
            ),
            (
                Command::auth("EXTERNAL", Some(Secret::new(Vec::new()))).unwrap(),
                b"AUTH EXTERNAL =\r\n",
            ),
        ];
        for (c, want) in cases {
            assert_eq!(enc(&c), want, "{c:?}");
        }
    }

    #[test]
    fn long_initial_response_is_deferred() {
        let ir = vec![b'a'; 200];
        let c = Command::auth("XOAUTH2", Some(Secret::new(ir))).unwrap();
        assert_eq!(enc(&c), b"AUTH XOAUTH2\r\n");
        assert!(c.auth_inline_response().is_none());
        // The longest that fits: "AUTH X " + 244 + CRLF = 253 octets; the
        // next size up (248 base64 chars) would make 257.
        let ir = vec![b'a'; 183]; // base64 of 183 bytes is 244 chars
        let c = Command::auth("X", Some(Secret::new(ir))).unwrap();
        assert_eq!(enc(&c).len(), 253);
        let ir = vec![b'a'; 184];
        let c = Command::auth("X", Some(Secret::new(ir))).unwrap();
        assert_eq!(enc(&c), b"AUTH X\r\n");
    }

    #[test]
    fn refused_arguments() {
        assert_eq!(
            Command::user("a\r\nDELE 1"),
            Err(CommandError::ForbiddenByte)
        );
        assert_eq!(Command::user("a\nb"), Err(CommandError::ForbiddenByte));
        assert_eq!(Command::pass("a\0b"), Err(CommandError::ForbiddenByte));
        assert_eq!(Command::pass("x\ry"), Err(CommandError::ForbiddenByte));
        assert_eq!(Command::user(""), Err(CommandError::Empty));
        assert_eq!(Command::pass(""), Err(CommandError::Empty));
        assert_eq!(Command::user("a b"), Err(CommandError::Space));
        assert_eq!(Command::apop("a b", "<a@b>", "x"), Err(CommandError::Space));
        assert_eq!(Command::lang(Some("d e")), Err(CommandError::Space));
        assert_eq!(Command::lang(Some("dé")), Err(CommandError::InvalidByte));
        assert_eq!(
            Command::auth("PLAIN AUTH", None),
            Err(CommandError::InvalidByte)
        );
        assert_eq!(Command::auth("", None), Err(CommandError::Empty));
        assert!(matches!(
            Command::auth("A23456789012345678901", None),
            Err(CommandError::TooLong { .. })
        ));
        let long = "x".repeat(250);
        assert_eq!(
            Command::user(&long),
            Err(CommandError::TooLong { len: 257 })
        );
        assert!(Command::user(&long[..248]).is_ok()); // "USER " + 248 + CRLF = 255
        assert!(Command::user(&long[..249]).is_err());
        assert_eq!(MsgNum::try_from(0), Err(CommandError::ZeroMessageNumber));
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = Command::pass("hunter2").unwrap();
        let d = alloc::format!("{c:?}");
        assert!(!d.contains("hunter2"), "{d}");
        let c = Command::apop("u", "<a@b>", "hunter2").unwrap();
        let Command::Apop(a) = &c else { unreachable!() };
        let digest = a.digest();
        let d = alloc::format!("{c:?}");
        assert!(!d.contains(digest.expose()), "{d}");
        let c = Command::auth("PLAIN", Some(Secret::new(b"\0u\0hunter2".to_vec()))).unwrap();
        assert!(!alloc::format!("{c:?}").contains("hunter2"));
        assert!(c.is_sensitive());
    }

    #[test]
    fn sasl_response_lines() {
        let mut v = Vec::new();
        encode_sasl_response(b"", &mut v);
        assert_eq!(v, b"\r\n");
        v.clear();
        encode_sasl_response(b"tim b913a602c7eda7a495b4e6e7334d3890", &mut v);
        assert_eq!(v, b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n");
    }
}

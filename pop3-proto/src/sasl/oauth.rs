//! `XOAUTH2` (Google, Microsoft) and `OAUTHBEARER` (RFC 7628).
//!
//! Both send an OAuth 2.0 bearer token. On failure the server sends one
//! challenge holding a JSON error document, which the client must answer
//! (empty for `XOAUTH2`, a single `0x01` for `OAUTHBEARER`) before the server
//! sends `-ERR`. The mechanisms keep the JSON text; read it with
//! [`Mechanism::server_error`].

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::{check_no_controls, escape_saslname, Mechanism, SaslError};
use crate::Secret;

/// Where an OAuth exchange is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing sent yet.
    Start,
    /// The token was sent; a challenge now is the JSON error.
    Sent,
    /// The JSON error was acknowledged; the server must now send `-ERR`.
    ErrorAnswered,
    /// The exchange failed on our side.
    Failed,
}

/// The state machine both mechanisms share.
#[derive(Debug)]
struct Exchange {
    state: State,
    server_error: Option<String>,
}

impl Exchange {
    const fn new() -> Self {
        Exchange {
            state: State::Start,
            server_error: None,
        }
    }

    fn send(&mut self, message: Result<Vec<u8>, SaslError>) -> Result<Secret<Vec<u8>>, SaslError> {
        match message {
            Ok(m) => {
                self.state = State::Sent;
                Ok(Secret::new(m))
            }
            Err(e) => {
                self.state = State::Failed;
                Err(e)
            }
        }
    }

    /// `message` is the token message (only used in `Start`), `ack` the
    /// answer to the JSON error challenge.
    fn step(
        &mut self,
        challenge: &[u8],
        message: Result<Vec<u8>, SaslError>,
        ack: &[u8],
    ) -> Result<Secret<Vec<u8>>, SaslError> {
        match self.state {
            State::Start => self.send(message),
            State::Sent => {
                self.server_error = Some(String::from_utf8_lossy(challenge).into_owned());
                self.state = State::ErrorAnswered;
                Ok(Secret::new(ack.to_vec()))
            }
            State::ErrorAnswered | State::Failed => Err(SaslError::UnexpectedChallenge),
        }
    }

    fn finish(&self) -> Result<(), SaslError> {
        match self.state {
            State::Sent => Ok(()),
            State::ErrorAnswered => Err(SaslError::Server(
                self.server_error.clone().unwrap_or_default(),
            )),
            State::Start | State::Failed => Err(SaslError::Incomplete),
        }
    }
}

/// Checks a bearer token: non-empty, no controls, no spaces (RFC 6750
/// `b64token` never has them; a stray newline from a file is a common bug).
fn check_token(token: &str) -> Result<(), SaslError> {
    if token.is_empty() {
        return Err(SaslError::InvalidInput("OAuth token is empty"));
    }
    if token.contains(' ') {
        return Err(SaslError::InvalidInput("OAuth token contains a space"));
    }
    check_no_controls(token, "OAuth token contains a control character")
}

/// `XOAUTH2` (Google, Microsoft): sends
/// `user=<user>^Aauth=Bearer <token>^A^A`.
///
/// Two modes:
///
/// * [`XOAuth2::new`], one line: the message is the initial response
///   (`AUTH XOAUTH2 <base64>`), as Google accepts.
/// * [`XOAuth2::two_step`]: no initial response; the message answers the
///   server's first (empty) `+` prompt, as Microsoft 365 requires.
///
/// A challenge after the message is the server's JSON error (for example
/// `{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`):
/// it is answered with an empty response, kept for
/// [`Mechanism::server_error`], and the server then sends `-ERR`. Should the
/// server answer `+OK` anyway, [`Mechanism::finish`] returns
/// [`SaslError::Server`] with that text.
///
/// ```
/// use pop3_proto::sasl::{Mechanism, XOAuth2};
/// let mut m = XOAuth2::new("someuser@example.com", "ya29.token");
/// let ir = m.initial_response().unwrap().unwrap();
/// assert_eq!(ir.expose().as_slice(), b"user=someuser@example.com\x01auth=Bearer ya29.token\x01\x01");
/// ```
#[derive(Debug)]
pub struct XOAuth2 {
    user: String,
    token: Secret<String>,
    two_step: bool,
    exchange: Exchange,
}

impl XOAuth2 {
    /// One-line `XOAUTH2`: the token goes in the initial response.
    pub fn new(user: impl Into<String>, token: impl Into<String>) -> Self {
        XOAuth2 {
            user: user.into(),
            token: Secret::new(token.into()),
            two_step: false,
            exchange: Exchange::new(),
        }
    }

    /// Two-step `XOAUTH2`: no initial response; the token answers the
    /// server's first `+` prompt (Microsoft 365 / Outlook.com).
    pub fn two_step(user: impl Into<String>, token: impl Into<String>) -> Self {
        XOAuth2 {
            two_step: true,
            ..XOAuth2::new(user, token)
        }
    }

    fn message(&self) -> Result<Vec<u8>, SaslError> {
        check_no_controls(&self.user, "XOAUTH2 user contains a control character")?;
        check_token(self.token.expose())?;
        Ok(format!(
            "user={}\x01auth=Bearer {}\x01\x01",
            self.user,
            self.token.expose()
        )
        .into_bytes())
    }
}

impl Mechanism for XOAuth2 {
    fn name(&self) -> &str {
        "XOAUTH2"
    }

    fn initial_response(&mut self) -> Result<Option<Secret<Vec<u8>>>, SaslError> {
        match (self.exchange.state, self.two_step) {
            (State::Start, true) => Ok(None),
            (State::Start, false) => {
                let message = self.message();
                self.exchange.send(message).map(Some)
            }
            _ => Err(SaslError::UnexpectedChallenge),
        }
    }

    /// Before the message was sent, any challenge (normally the empty `+`)
    /// is answered with it; after, the challenge is the JSON error and is
    /// answered with an empty response.
    fn step(&mut self, challenge: &[u8]) -> Result<Secret<Vec<u8>>, SaslError> {
        let message = if self.exchange.state == State::Start {
            self.message()
        } else {
            Ok(Vec::new())
        };
        self.exchange.step(challenge, message, b"")
    }

    fn finish(&mut self) -> Result<(), SaslError> {
        self.exchange.finish()
    }

    fn server_error(&self) -> Option<&str> {
        self.exchange.server_error.as_deref()
    }
}

/// `OAUTHBEARER` (RFC 7628): sends the GS2 header `n,a=<user>,` then
/// `^Ahost=<host>^Aport=<port>^Aauth=Bearer <token>^A^A`, where `host` and
/// `port` are optional ([`OAuthBearer::with_host`],
/// [`OAuthBearer::with_port`]) and an empty user leaves `a=` out (`n,,`).
///
/// The message is the initial response (an empty first challenge is also
/// answered with it). A challenge after the message is the server's JSON
/// error (RFC 7628 §3.2.2): it is answered with the single byte `0x01`
/// (RFC 7628 §3.2.3), kept for [`Mechanism::server_error`], and the server
/// then sends `-ERR`.
///
/// ```
/// use pop3_proto::sasl::{Mechanism, OAuthBearer};
/// let mut m = OAuthBearer::new("user@example.com", "tok").with_port(995);
/// let ir = m.initial_response().unwrap().unwrap();
/// assert_eq!(ir.expose().as_slice(), b"n,a=user@example.com,\x01port=995\x01auth=Bearer tok\x01\x01");
/// ```
#[derive(Debug)]
pub struct OAuthBearer {
    user: String,
    token: Secret<String>,
    host: Option<String>,
    port: Option<u16>,
    exchange: Exchange,
}

impl OAuthBearer {
    /// `OAUTHBEARER` for `user` (the authorization identity; may be empty)
    /// with the bearer `token`.
    pub fn new(user: impl Into<String>, token: impl Into<String>) -> Self {
        OAuthBearer {
            user: user.into(),
            token: Secret::new(token.into()),
            host: None,
            port: None,
            exchange: Exchange::new(),
        }
    }

    /// Sends `host=<host>`: the host name the client connected to.
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Sends `port=<port>`: the port the client connected to.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    fn message(&self) -> Result<Vec<u8>, SaslError> {
        check_no_controls(&self.user, "OAUTHBEARER user contains a control character")?;
        check_token(self.token.expose())?;
        let mut out = String::from("n,");
        if !self.user.is_empty() {
            out.push_str("a=");
            out.push_str(&escape_saslname(&self.user));
        }
        out.push_str(",\x01");
        if let Some(host) = &self.host {
            check_no_controls(host, "OAUTHBEARER host contains a control character")?;
            out.push_str("host=");
            out.push_str(host);
            out.push('\x01');
        }
        if let Some(port) = self.port {
            out.push_str(&format!("port={port}\x01"));
        }
        out.push_str("auth=Bearer ");
        out.push_str(self.token.expose());
        out.push_str("\x01\x01");
        Ok(out.into_bytes())
    }
}

impl Mechanism for OAuthBearer {
    fn name(&self) -> &str {
        "OAUTHBEARER"
    }

    fn initial_response(&mut self) -> Result<Option<Secret<Vec<u8>>>, SaslError> {
        match self.exchange.state {
            State::Start => {
                let message = self.message();
                self.exchange.send(message).map(Some)
            }
            _ => Err(SaslError::UnexpectedChallenge),
        }
    }

    /// Before the message was sent, an empty challenge is answered with it;
    /// after, the challenge is the JSON error and is answered with `0x01`.
    fn step(&mut self, challenge: &[u8]) -> Result<Secret<Vec<u8>>, SaslError> {
        if self.exchange.state == State::Start && !challenge.is_empty() {
            self.exchange.state = State::Failed;
            return Err(SaslError::MalformedChallenge(
                "OAUTHBEARER expects an empty first challenge",
            ));
        }
        let message = if self.exchange.state == State::Start {
            self.message()
        } else {
            Ok(Vec::new())
        };
        self.exchange.step(challenge, message, b"\x01")
    }

    fn finish(&mut self) -> Result<(), SaslError> {
        self.exchange.finish()
    }

    fn server_error(&self) -> Option<&str> {
        self.exchange.server_error.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOGLE_ERROR: &str =
        r#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#;

    #[test]
    fn xoauth2_one_line() {
        let mut m = XOAuth2::new(
            "someuser@example.com",
            "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
        );
        assert_eq!(m.name(), "XOAUTH2");
        let ir = m.initial_response().unwrap().unwrap();
        assert_eq!(
            ir.expose().as_slice(),
            b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
        );
        assert_eq!(m.server_error(), None);
        m.finish().unwrap();
    }

    #[test]
    fn xoauth2_two_step_and_error() {
        let mut m = XOAuth2::two_step("u@example.com", "tok");
        assert!(m.initial_response().unwrap().is_none());
        assert_eq!(m.finish(), Err(SaslError::Incomplete));
        let r = m.step(b"").unwrap();
        assert_eq!(
            r.expose().as_slice(),
            b"user=u@example.com\x01auth=Bearer tok\x01\x01"
        );
        let r = m.step(GOOGLE_ERROR.as_bytes()).unwrap();
        assert!(r.expose().is_empty());
        assert_eq!(m.server_error(), Some(GOOGLE_ERROR));
        assert_eq!(m.step(b""), Err(SaslError::UnexpectedChallenge));
        assert_eq!(m.finish(), Err(SaslError::Server(GOOGLE_ERROR.into())));
    }

    #[test]
    fn xoauth2_invalid_input() {
        for mut m in [
            XOAuth2::new("u\x01", "t"),
            XOAuth2::new("u", ""),
            XOAuth2::new("u", "a b"),
            XOAuth2::new("u", "t\n"),
        ] {
            assert!(matches!(
                m.initial_response(),
                Err(SaslError::InvalidInput(_))
            ));
            assert_eq!(m.step(b""), Err(SaslError::UnexpectedChallenge));
            assert_eq!(m.finish(), Err(SaslError::Incomplete));
        }
        let mut m = XOAuth2::two_step("u", "");
        assert!(matches!(m.step(b""), Err(SaslError::InvalidInput(_))));
    }

    #[test]
    fn oauthbearer_messages() {
        let mut m = OAuthBearer::new(
            "user@example.com",
            "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
        )
        .with_host("server.example.com")
        .with_port(143);
        assert_eq!(m.name(), "OAUTHBEARER");
        let ir = m.initial_response().unwrap().unwrap();
        assert_eq!(
            ir.expose().as_slice(),
            &b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"[..]
        );
        m.finish().unwrap();

        let mut m = OAuthBearer::new("", "t");
        assert_eq!(
            m.step(b"").unwrap().expose().as_slice(),
            b"n,,\x01auth=Bearer t\x01\x01"
        );

        let mut m = OAuthBearer::new("a,b=c", "t");
        assert_eq!(
            m.initial_response().unwrap().unwrap().expose().as_slice(),
            b"n,a=a=2Cb=3Dc,\x01auth=Bearer t\x01\x01"
        );
    }

    #[test]
    fn oauthbearer_error() {
        let mut m = OAuthBearer::new("u", "t");
        m.initial_response().unwrap();
        let r = m.step(b"{\"status\":\"invalid_token\"}").unwrap();
        assert_eq!(r.expose().as_slice(), b"\x01");
        assert_eq!(m.server_error(), Some("{\"status\":\"invalid_token\"}"));
        assert_eq!(m.step(b"x"), Err(SaslError::UnexpectedChallenge));
        assert!(matches!(m.finish(), Err(SaslError::Server(_))));

        let mut m = OAuthBearer::new("u", "t");
        assert!(matches!(
            m.step(b"garbage"),
            Err(SaslError::MalformedChallenge(_))
        ));
        assert_eq!(m.finish(), Err(SaslError::Incomplete));

        let mut m = OAuthBearer::new("u", "t").with_host("h\x01");
        assert!(matches!(
            m.initial_response(),
            Err(SaslError::InvalidInput(_))
        ));
    }

    #[test]
    fn non_utf8_error_is_lossy() {
        let mut m = XOAuth2::new("u", "t");
        m.initial_response().unwrap();
        m.step(&[b'{', 0xff, b'}']).unwrap();
        assert_eq!(m.server_error(), Some("{\u{fffd}}"));
    }

    #[test]
    fn debug_hides_token() {
        let a = format!("{:?}", XOAuth2::new("u", "SECRETTOKEN"));
        let b = format!("{:?}", OAuthBearer::new("u", "SECRETTOKEN"));
        assert!(
            !a.contains("SECRETTOKEN") && !b.contains("SECRETTOKEN"),
            "{a} {b}"
        );
    }
}

//! `PLAIN` (RFC 4616).

use alloc::string::String;
use alloc::vec::Vec;

use super::{Mechanism, SaslError};
use crate::Secret;

/// `PLAIN` (RFC 4616): sends `[authzid] NUL authcid NUL passwd` in the
/// initial response.
///
/// The password travels in the clear (inside base64): only use it over TLS,
/// or when the user explicitly allowed it (see [`choose`](super::choose)).
/// Strings are sent as given (UTF-8, no SASLprep: the server prepares them).
///
/// ```
/// use pop3_proto::sasl::{Mechanism, Plain};
/// let mut m = Plain::new("tim", "tanstaaftanstaaf");
/// let ir = m.initial_response().unwrap().unwrap();
/// assert_eq!(ir.expose().as_slice(), b"\0tim\0tanstaaftanstaaf");
/// assert!(m.finish().is_ok());
/// ```
#[derive(Debug)]
pub struct Plain {
    authzid: Option<String>,
    username: String,
    password: Secret<String>,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Sent,
    Failed,
}

impl Plain {
    /// `PLAIN` for `username` (the authentication identity) with `password`,
    /// without an authorization identity (the server derives it).
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Plain {
            authzid: None,
            username: username.into(),
            password: Secret::new(password.into()),
            state: State::Start,
        }
    }

    /// Sets the authorization identity: act as `authzid` (for example a
    /// master user logging in to another user's mailbox). An empty string
    /// is the same as none.
    pub fn with_authzid(mut self, authzid: impl Into<String>) -> Self {
        let authzid = authzid.into();
        self.authzid = if authzid.is_empty() {
            None
        } else {
            Some(authzid)
        };
        self
    }

    fn message(&self) -> Result<Secret<Vec<u8>>, SaslError> {
        let password = self.password.expose();
        if self.username.is_empty() {
            return Err(SaslError::InvalidInput("PLAIN username is empty"));
        }
        if password.is_empty() {
            return Err(SaslError::InvalidInput("PLAIN password is empty"));
        }
        let authzid = self.authzid.as_deref().unwrap_or("");
        if [authzid, self.username.as_str(), password.as_str()]
            .iter()
            .any(|s| s.as_bytes().contains(&0))
        {
            return Err(SaslError::InvalidInput(
                "PLAIN identities and password cannot contain NUL",
            ));
        }
        let mut out = Vec::with_capacity(authzid.len() + self.username.len() + password.len() + 2);
        out.extend_from_slice(authzid.as_bytes());
        out.push(0);
        out.extend_from_slice(self.username.as_bytes());
        out.push(0);
        out.extend_from_slice(password.as_bytes());
        Ok(Secret::new(out))
    }

    fn send(&mut self) -> Result<Secret<Vec<u8>>, SaslError> {
        match self.message() {
            Ok(message) => {
                self.state = State::Sent;
                Ok(message)
            }
            Err(e) => {
                self.state = State::Failed;
                Err(e)
            }
        }
    }
}

impl Mechanism for Plain {
    fn name(&self) -> &str {
        "PLAIN"
    }

    fn initial_response(&mut self) -> Result<Option<Secret<Vec<u8>>>, SaslError> {
        match self.state {
            State::Start => self.send().map(Some),
            _ => Err(SaslError::UnexpectedChallenge),
        }
    }

    /// Only an empty challenge before the initial response was sent is
    /// valid (the client sent `AUTH PLAIN` without it); it is answered with
    /// the credentials.
    fn step(&mut self, challenge: &[u8]) -> Result<Secret<Vec<u8>>, SaslError> {
        match self.state {
            State::Start if challenge.is_empty() => self.send(),
            State::Start => {
                self.state = State::Failed;
                Err(SaslError::MalformedChallenge(
                    "PLAIN expects an empty challenge",
                ))
            }
            State::Sent | State::Failed => Err(SaslError::UnexpectedChallenge),
        }
    }

    fn finish(&mut self) -> Result<(), SaslError> {
        match self.state {
            State::Sent => Ok(()),
            _ => Err(SaslError::Incomplete),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn rfc4616_examples() {
        let mut m = Plain::new("tim", "tanstaaftanstaaf");
        assert_eq!(m.name(), "PLAIN");
        let ir = m.initial_response().unwrap().unwrap();
        assert_eq!(ir.expose().as_slice(), b"\0tim\0tanstaaftanstaaf");
        m.finish().unwrap();

        let mut m = Plain::new("tim", "tanstaaftanstaaf").with_authzid("Ursel");
        let ir = m.initial_response().unwrap().unwrap();
        assert_eq!(ir.expose().as_slice(), b"Ursel\0tim\0tanstaaftanstaaf");
        assert_eq!(m.step(b""), Err(SaslError::UnexpectedChallenge));
        assert_eq!(m.step(b"x"), Err(SaslError::UnexpectedChallenge));
    }

    #[test]
    fn empty_challenge_instead_of_initial_response() {
        let mut m = Plain::new("tim", "pw");
        assert_eq!(m.finish(), Err(SaslError::Incomplete));
        assert_eq!(m.step(b"").unwrap().expose().as_slice(), b"\0tim\0pw");
        assert_eq!(m.step(b""), Err(SaslError::UnexpectedChallenge));
        m.finish().unwrap();

        let mut m = Plain::new("tim", "pw");
        assert!(matches!(
            m.step(b"garbage"),
            Err(SaslError::MalformedChallenge(_))
        ));
        assert_eq!(m.step(b""), Err(SaslError::UnexpectedChallenge));
        assert_eq!(m.finish(), Err(SaslError::Incomplete));
    }

    #[test]
    fn invalid_input() {
        for mut m in [
            Plain::new("", "pw"),
            Plain::new("u", ""),
            Plain::new("u\0", "pw"),
            Plain::new("u", "p\0w"),
            Plain::new("u", "pw").with_authzid("a\0"),
        ] {
            assert!(matches!(
                m.initial_response(),
                Err(SaslError::InvalidInput(_))
            ));
            assert_eq!(m.finish(), Err(SaslError::Incomplete));
        }
    }

    #[test]
    fn debug_hides_password() {
        let m = Plain::new("tim", "tanstaaftanstaaf");
        let s = format!("{m:?}");
        assert!(!s.contains("tanstaaf"), "{s}");
        assert!(s.contains("tim"));
    }
}

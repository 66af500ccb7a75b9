//! `LOGIN` (draft-murchison-sasl-login).

use alloc::string::String;
use alloc::vec::Vec;

use super::{Mechanism, SaslError};
use crate::Secret;

/// `LOGIN` (draft-murchison-sasl-login-00): no initial response; the server
/// asks `Username:` then `Password:` and the client answers each.
///
/// The challenge text is matched case-insensitively (one containing `pass`
/// asks for the password, one containing `user` or `name` for the
/// username); any other text falls back to the order: the first challenge
/// gets the username, the second the password. A server asking for the
/// same field twice, or a third challenge, is an error.
///
/// Like [`Plain`](super::Plain) the password travels in the clear: only use
/// it over TLS or when the user explicitly allowed it.
#[derive(Debug)]
pub struct Login {
    username: String,
    password: Secret<String>,
    sent_username: bool,
    sent_password: bool,
    failed: bool,
}

impl Login {
    /// `LOGIN` for `username` with `password`.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Login {
            username: username.into(),
            password: Secret::new(password.into()),
            sent_username: false,
            sent_password: false,
            failed: false,
        }
    }
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

impl Mechanism for Login {
    fn name(&self) -> &str {
        "LOGIN"
    }

    fn initial_response(&mut self) -> Result<Option<Secret<Vec<u8>>>, SaslError> {
        Ok(None)
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Secret<Vec<u8>>, SaslError> {
        if self.failed || (self.sent_username && self.sent_password) {
            return Err(SaslError::UnexpectedChallenge);
        }
        let wants_password = if contains_ignore_case(challenge, b"pass") {
            true
        } else if contains_ignore_case(challenge, b"user")
            || contains_ignore_case(challenge, b"name")
        {
            false
        } else {
            self.sent_username
        };
        if wants_password {
            if self.sent_password {
                self.failed = true;
                return Err(SaslError::MalformedChallenge(
                    "LOGIN server asked for the password twice",
                ));
            }
            self.sent_password = true;
            Ok(Secret::new(self.password.expose().as_bytes().to_vec()))
        } else {
            if self.sent_username {
                self.failed = true;
                return Err(SaslError::MalformedChallenge(
                    "LOGIN server asked for the username twice",
                ));
            }
            self.sent_username = true;
            Ok(Secret::new(self.username.as_bytes().to_vec()))
        }
    }

    fn finish(&mut self) -> Result<(), SaslError> {
        if self.sent_username && self.sent_password && !self.failed {
            Ok(())
        } else {
            Err(SaslError::Incomplete)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn standard_prompts() {
        let mut m = Login::new("tim", "secret");
        assert_eq!(m.name(), "LOGIN");
        assert!(m.initial_response().unwrap().is_none());
        assert_eq!(m.finish(), Err(SaslError::Incomplete));
        assert_eq!(m.step(b"Username:").unwrap().expose().as_slice(), b"tim");
        assert_eq!(m.finish(), Err(SaslError::Incomplete));
        assert_eq!(m.step(b"Password:").unwrap().expose().as_slice(), b"secret");
        m.finish().unwrap();
        assert_eq!(m.step(b"Password:"), Err(SaslError::UnexpectedChallenge));
    }

    #[test]
    fn case_insensitive_and_out_of_order() {
        let mut m = Login::new("tim", "secret");
        assert_eq!(
            m.step(b"PASSWORD\0").unwrap().expose().as_slice(),
            b"secret"
        );
        assert_eq!(m.step(b"user name").unwrap().expose().as_slice(), b"tim");
        m.finish().unwrap();
    }

    #[test]
    fn fallback_to_order() {
        let mut m = Login::new("tim", "secret");
        assert_eq!(m.step(b"").unwrap().expose().as_slice(), b"tim");
        assert_eq!(
            m.step(&[0xff, 0x00, 0x13]).unwrap().expose().as_slice(),
            b"secret"
        );
        assert_eq!(m.step(b""), Err(SaslError::UnexpectedChallenge));
        m.finish().unwrap();
    }

    #[test]
    fn asked_twice() {
        let mut m = Login::new("tim", "secret");
        m.step(b"Username:").unwrap();
        assert!(matches!(
            m.step(b"Username:"),
            Err(SaslError::MalformedChallenge(_))
        ));
        assert_eq!(m.step(b"Password:"), Err(SaslError::UnexpectedChallenge));
        assert_eq!(m.finish(), Err(SaslError::Incomplete));
    }

    #[test]
    fn debug_hides_password() {
        let s = format!("{:?}", Login::new("tim", "hunter2"));
        assert!(!s.contains("hunter2"), "{s}");
    }
}

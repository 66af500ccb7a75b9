//! `CRAM-MD5` (RFC 2195).

use alloc::string::String;
use alloc::vec::Vec;

use hmac::{Hmac, Mac};
use md5::Md5;

use super::{Mechanism, SaslError};
use crate::Secret;

/// `CRAM-MD5` (RFC 2195): answers the server's challenge with
/// `username SP lowercase-hex(HMAC-MD5(password, challenge))`.
///
/// The password is not sent, but the server must store it in the clear (or
/// an equivalent) and a passive observer can brute-force it offline; prefer
/// SCRAM.
///
/// ```
/// use pop3_proto::sasl::{CramMd5, Mechanism};
/// let mut m = CramMd5::new("tim", "tanstaaftanstaaf");
/// let r = m.step(b"<1896.697170952@postoffice.reston.mci.net>").unwrap();
/// assert_eq!(r.expose().as_slice(), b"tim b913a602c7eda7a495b4e6e7334d3890");
/// ```
#[derive(Debug)]
pub struct CramMd5 {
    username: String,
    password: Secret<String>,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Answered,
    Failed,
}

impl CramMd5 {
    /// `CRAM-MD5` for `username` with `password`.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        CramMd5 {
            username: username.into(),
            password: Secret::new(password.into()),
            state: State::Start,
        }
    }
}

impl Mechanism for CramMd5 {
    fn name(&self) -> &str {
        "CRAM-MD5"
    }

    fn initial_response(&mut self) -> Result<Option<Secret<Vec<u8>>>, SaslError> {
        Ok(None)
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Secret<Vec<u8>>, SaslError> {
        if self.state != State::Start {
            return Err(SaslError::UnexpectedChallenge);
        }
        self.state = State::Failed;
        if challenge.is_empty() {
            return Err(SaslError::MalformedChallenge("CRAM-MD5 challenge is empty"));
        }
        let mut mac = <Hmac<Md5> as Mac>::new_from_slice(self.password.expose().as_bytes())
            .map_err(|_| SaslError::InvalidInput("CRAM-MD5 password unusable as HMAC key"))?;
        mac.update(challenge);
        let digest = mac.finalize().into_bytes();
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = Vec::with_capacity(self.username.len() + 1 + 2 * digest.len());
        out.extend_from_slice(self.username.as_bytes());
        out.push(b' ');
        for byte in digest {
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0x0f)]);
        }
        self.state = State::Answered;
        Ok(Secret::new(out))
    }

    fn finish(&mut self) -> Result<(), SaslError> {
        match self.state {
            State::Answered => Ok(()),
            _ => Err(SaslError::Incomplete),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn rfc2195_example() {
        let mut m = CramMd5::new("tim", "tanstaaftanstaaf");
        assert_eq!(m.name(), "CRAM-MD5");
        assert!(m.initial_response().unwrap().is_none());
        assert_eq!(m.finish(), Err(SaslError::Incomplete));
        let r = m
            .step(b"<1896.697170952@postoffice.reston.mci.net>")
            .unwrap();
        assert_eq!(
            r.expose().as_slice(),
            b"tim b913a602c7eda7a495b4e6e7334d3890"
        );
        m.finish().unwrap();
        assert_eq!(m.step(b"<again@x>"), Err(SaslError::UnexpectedChallenge));
    }

    #[test]
    fn empty_challenge() {
        let mut m = CramMd5::new("tim", "pw");
        assert!(matches!(m.step(b""), Err(SaslError::MalformedChallenge(_))));
        assert_eq!(m.step(b"<x@y>"), Err(SaslError::UnexpectedChallenge));
        assert_eq!(m.finish(), Err(SaslError::Incomplete));
    }

    #[test]
    fn debug_hides_password() {
        let s = format!("{:?}", CramMd5::new("tim", "tanstaaftanstaaf"));
        assert!(!s.contains("tanstaaf"), "{s}");
    }
}

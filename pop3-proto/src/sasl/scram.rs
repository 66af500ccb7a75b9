//! `SCRAM-SHA-1`, `SCRAM-SHA-256` and their `-PLUS` variants (RFC 5802,
//! RFC 7677, channel binding per RFC 5929 and RFC 9266).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use base64::engine::general_purpose::{
    GeneralPurpose, GeneralPurposeConfig, STANDARD, STANDARD_NO_PAD,
};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::saslprep::saslprep;
use super::{escape_saslname, Mechanism, SaslError};
use crate::Secret;

use super::ChannelBinding;

/// The default cap on the server's iteration count (`i=`).
///
/// A hostile or compromised server could otherwise ask for billions of
/// PBKDF2 rounds and burn minutes of the client's CPU. Real deployments use
/// 4096 (the RFC 7677 minimum recommendation) to a few hundred thousand;
/// one million SHA-256 rounds take well under a second in an optimized
/// build. Change it with [`Scram::with_max_iterations`].
pub const DEFAULT_MAX_ITERATIONS: u32 = 1_000_000;

/// The fewest random bytes [`Scram::new`] accepts for the client nonce.
const MIN_NONCE_BYTES: usize = 16;

/// Base64 that accepts the salt and server signature with or without
/// padding (some servers drop it).
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The hash function of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScramHash {
    /// SHA-1: `SCRAM-SHA-1` (RFC 5802).
    Sha1,
    /// SHA-256: `SCRAM-SHA-256` (RFC 7677).
    Sha256,
}

impl ScramHash {
    /// The mechanism name: `SCRAM-SHA-1`, `SCRAM-SHA-256`, or with `-PLUS`
    /// when `plus` (channel binding).
    pub const fn mechanism_name(self, plus: bool) -> &'static str {
        match (self, plus) {
            (ScramHash::Sha1, false) => "SCRAM-SHA-1",
            (ScramHash::Sha1, true) => "SCRAM-SHA-1-PLUS",
            (ScramHash::Sha256, false) => "SCRAM-SHA-256",
            (ScramHash::Sha256, true) => "SCRAM-SHA-256-PLUS",
        }
    }

    /// Parses a mechanism name (case-insensitive), for example the result
    /// of [`choose`](super::choose): the hash and whether it is a `-PLUS`
    /// (channel binding) variant. `None` for anything else.
    pub fn from_mechanism_name(name: &str) -> Option<(ScramHash, bool)> {
        [ScramHash::Sha256, ScramHash::Sha1]
            .into_iter()
            .flat_map(|h| [(h, false), (h, true)])
            .find(|&(h, plus)| h.mechanism_name(plus).eq_ignore_ascii_case(name))
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha1 => Sha1::digest(data).to_vec(),
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Result<Vec<u8>, SaslError> {
        fn run<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Result<Vec<u8>, SaslError> {
            let mut mac = <M as KeyInit>::new_from_slice(key)
                .map_err(|_| SaslError::InvalidInput("SCRAM key unusable for HMAC"))?;
            mac.update(data);
            Ok(mac.finalize().into_bytes().to_vec())
        }
        match self {
            ScramHash::Sha1 => run::<Hmac<Sha1>>(key, data),
            ScramHash::Sha256 => run::<Hmac<Sha256>>(key, data),
        }
    }

    /// `Hi()` of RFC 5802 (PBKDF2 with HMAC, one output block).
    fn hi(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramHash::Sha1 => {
                let mut out = [0u8; 20];
                pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            ScramHash::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

enum State {
    Start,
    /// client-first-message sent.
    FirstSent {
        gs2_header: String,
        client_first_bare: String,
    },
    /// client-final-message sent; waiting for `v=`.
    FinalSent {
        server_signature: Secret<Vec<u8>>,
    },
    /// The server signature was verified.
    Verified,
    Failed,
}

impl State {
    fn label(&self) -> &'static str {
        match self {
            State::Start => "Start",
            State::FirstSent { .. } => "FirstSent",
            State::FinalSent { .. } => "FinalSent",
            State::Verified => "Verified",
            State::Failed => "Failed",
        }
    }
}

/// `SCRAM-SHA-1` / `SCRAM-SHA-256` and their `-PLUS` variants (RFC 5802,
/// RFC 7677): salted challenge-response with mutual authentication.
///
/// The exchange in POP3 (RFC 5034):
///
/// 1. initial response: `client-first-message`
///    (`n,,n=<user>,r=<client-nonce>`);
/// 2. challenge `server-first-message` (`r=<nonce>,s=<salt>,i=<count>`),
///    answered with `client-final-message` (`c=...,r=...,p=<proof>`);
/// 3. challenge `server-final-message` (`v=<server-signature>`), verified
///    and answered with an empty response; then the server sends `+OK`.
///
/// [`Mechanism::finish`] returns [`SaslError::Incomplete`] unless step 3
/// verified the server's signature: a server that answers `+OK` without
/// proving it knows the password must not be trusted.
///
/// Checks on the server's messages: the server nonce must extend the client
/// nonce, the salt must be non-empty valid base64, the iteration count must
/// be between 1 and the cap ([`DEFAULT_MAX_ITERATIONS`] unless changed), a
/// mandatory extension (`m=`) is refused, `e=` becomes [`SaslError::Server`]
/// and a wrong `v=` [`SaslError::ServerVerificationFailed`].
///
/// The username and password go through a conservative SASLprep (printable
/// ASCII unchanged; non-ASCII spaces mapped, invisible characters removed,
/// control and other prohibited characters rejected; no NFKC). The
/// username is then escaped (`,` → `=2C`, `=` → `=3D`).
///
/// `Debug` shows the mechanism, the username and the state, never the
/// password, derived keys, nonce or proof.
///
/// ```
/// use pop3_proto::sasl::{Mechanism, Scram, ScramHash};
/// let mut m = Scram::with_nonce(ScramHash::Sha1, "user", "pencil", "fyko+d2lbbFgONRv9qkxdawL").unwrap();
/// let first = m.initial_response().unwrap().unwrap();
/// assert_eq!(first.expose().as_slice(), b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
/// let last = m
///     .step(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
///     .unwrap();
/// assert_eq!(
///     last.expose().as_slice(),
///     &b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="[..]
/// );
/// assert!(m.finish().is_err()); // the server has not proved itself yet
/// assert!(m.step(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=").unwrap().expose().is_empty());
/// assert!(m.finish().is_ok());
/// ```
pub struct Scram {
    hash: ScramHash,
    /// SASLprepped and escaped.
    username: String,
    /// SASLprepped and escaped.
    authzid: Option<String>,
    /// SASLprepped.
    password: Secret<String>,
    nonce: Secret<String>,
    channel_binding: ChannelBinding,
    max_iterations: u32,
    state: State,
}

impl fmt::Debug for Scram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scram")
            .field("mechanism", &self.name())
            .field("username", &self.username)
            .field("authzid", &self.authzid)
            .field("channel_binding", &self.channel_binding)
            .field("max_iterations", &self.max_iterations)
            .field("state", &self.state.label())
            .finish_non_exhaustive()
    }
}

impl Scram {
    /// SCRAM with `hash` for `username` / `password`; the client nonce is
    /// `random` (at least 16 bytes from the operating system's random
    /// generator, for example 18 or 24), base64-encoded into printable
    /// characters.
    ///
    /// Errors with [`SaslError::InvalidInput`] for fewer than 16 random
    /// bytes, an empty username, or a username or password that SASLprep
    /// rejects (control characters, for example).
    pub fn new(
        hash: ScramHash,
        username: &str,
        password: &str,
        random: &[u8],
    ) -> Result<Self, SaslError> {
        if random.len() < MIN_NONCE_BYTES {
            return Err(SaslError::InvalidInput(
                "SCRAM needs at least 16 random bytes for the nonce",
            ));
        }
        Self::with_nonce(hash, username, password, &STANDARD_NO_PAD.encode(random))
    }

    /// SCRAM with an exact client nonce, for test vectors (or a caller that
    /// makes its own nonce). The nonce must be non-empty printable ASCII
    /// without `,`; it must be unpredictable in real use.
    pub fn with_nonce(
        hash: ScramHash,
        username: &str,
        password: &str,
        nonce: &str,
    ) -> Result<Self, SaslError> {
        if nonce.is_empty() || !nonce.bytes().all(is_nonce_char) {
            return Err(SaslError::InvalidInput(
                "SCRAM nonce must be printable ASCII without ','",
            ));
        }
        let username = saslprep(
            username,
            "SCRAM username has a character SASLprep prohibits",
        )?;
        if username.is_empty() {
            return Err(SaslError::InvalidInput("SCRAM username is empty"));
        }
        let password = saslprep(
            password,
            "SCRAM password has a character SASLprep prohibits",
        )?;
        Ok(Scram {
            hash,
            username: escape_saslname(&username),
            authzid: None,
            password: Secret::new(password.into_owned()),
            nonce: Secret::new(String::from(nonce)),
            channel_binding: ChannelBinding::Unsupported,
            max_iterations: DEFAULT_MAX_ITERATIONS,
            state: State::Start,
        })
    }

    /// Sets the channel binding. With [`ChannelBinding::TlsServerEndPoint`]
    /// or [`ChannelBinding::TlsExporter`] the mechanism becomes
    /// `SCRAM-SHA-*-PLUS`. Use [`ChannelBinding::SupportedButNotOffered`]
    /// over TLS when the server did not advertise a `-PLUS` mechanism.
    pub fn with_channel_binding(mut self, channel_binding: ChannelBinding) -> Self {
        self.channel_binding = channel_binding;
        self
    }

    /// Sets the authorization identity (`a=` in the GS2 header): act as
    /// `authzid`. An empty string is the same as none. Errors like the
    /// username in [`Scram::new`].
    pub fn with_authzid(mut self, authzid: &str) -> Result<Self, SaslError> {
        let authzid = saslprep(authzid, "SCRAM authzid has a character SASLprep prohibits")?;
        self.authzid = if authzid.is_empty() {
            None
        } else {
            Some(escape_saslname(&authzid))
        };
        Ok(self)
    }

    /// Changes the highest iteration count accepted from the server
    /// (default [`DEFAULT_MAX_ITERATIONS`]); a larger `i=` fails with
    /// [`SaslError::TooManyIterations`] before any hashing.
    pub fn with_max_iterations(mut self, max_iterations: u32) -> Self {
        self.max_iterations = max_iterations;
        self
    }

    /// The hash function.
    pub fn hash(&self) -> ScramHash {
        self.hash
    }

    /// Whether the server's signature was verified (the exchange is
    /// complete and mutual).
    pub fn is_server_verified(&self) -> bool {
        matches!(self.state, State::Verified)
    }

    fn client_first(&mut self) -> Result<Secret<Vec<u8>>, SaslError> {
        if self.channel_binding.is_plus() && self.channel_binding.data().is_empty() {
            self.state = State::Failed;
            return Err(SaslError::InvalidInput(
                "SCRAM channel binding data is empty",
            ));
        }
        let authzid = match &self.authzid {
            Some(a) => format!("a={a}"),
            None => String::new(),
        };
        let gs2_header = format!("{},{authzid},", self.channel_binding.flag());
        let client_first_bare = format!("n={},r={}", self.username, self.nonce.expose());
        let message = format!("{gs2_header}{client_first_bare}").into_bytes();
        self.state = State::FirstSent {
            gs2_header,
            client_first_bare,
        };
        Ok(Secret::new(message))
    }

    fn client_final(
        &self,
        gs2_header: &str,
        client_first_bare: &str,
        server_first: &[u8],
    ) -> Result<(Secret<Vec<u8>>, State), SaslError> {
        let server_first = core::str::from_utf8(server_first).map_err(|_| {
            SaslError::MalformedChallenge("SCRAM server-first-message is not UTF-8")
        })?;
        if server_first.is_empty() {
            return Err(SaslError::MalformedChallenge(
                "SCRAM server-first-message is empty",
            ));
        }
        if let Some(error) = server_first.strip_prefix("e=") {
            return Err(server_error(error));
        }
        let mut attributes = server_first.split(',');
        let first = attributes.next().unwrap_or("");
        if first.starts_with("m=") {
            return Err(SaslError::MalformedChallenge(
                "SCRAM server requires an unsupported extension (m=)",
            ));
        }
        let nonce = first
            .strip_prefix("r=")
            .ok_or(SaslError::MalformedChallenge(
                "SCRAM server-first-message lacks r=",
            ))?;
        let salt = attributes.next().and_then(|a| a.strip_prefix("s=")).ok_or(
            SaslError::MalformedChallenge("SCRAM server-first-message lacks s="),
        )?;
        let iterations = attributes.next().and_then(|a| a.strip_prefix("i=")).ok_or(
            SaslError::MalformedChallenge("SCRAM server-first-message lacks i="),
        )?;
        // Further attributes are extensions, which RFC 5802 says to ignore.

        let client_nonce = self.nonce.expose().as_str();
        if !nonce.starts_with(client_nonce) || nonce.len() == client_nonce.len() {
            return Err(SaslError::MalformedChallenge(
                "SCRAM server nonce does not extend the client nonce",
            ));
        }
        if !nonce.bytes().all(is_nonce_char) {
            return Err(SaslError::MalformedChallenge(
                "SCRAM server nonce has invalid characters",
            ));
        }
        let salt = LENIENT_BASE64
            .decode(salt)
            .map_err(|_| SaslError::MalformedChallenge("SCRAM salt is not valid base64"))?;
        if salt.is_empty() {
            return Err(SaslError::MalformedChallenge("SCRAM salt is empty"));
        }
        let iterations = parse_iterations(iterations)?;
        if iterations > u64::from(self.max_iterations) {
            return Err(SaslError::TooManyIterations {
                requested: iterations,
                max: self.max_iterations,
            });
        }
        let iterations = u32::try_from(iterations).map_err(|_| SaslError::TooManyIterations {
            requested: iterations,
            max: self.max_iterations,
        })?;

        let h = self.hash;
        let salted_password =
            Secret::new(h.hi(self.password.expose().as_bytes(), &salt, iterations));
        let client_key = Secret::new(h.hmac(salted_password.expose(), b"Client Key")?);
        let stored_key = Secret::new(h.hash(client_key.expose()));

        let mut cbind_input = Vec::from(gs2_header.as_bytes());
        cbind_input.extend_from_slice(self.channel_binding.data());
        let without_proof = format!("c={},r={nonce}", STANDARD.encode(&cbind_input));
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");

        let client_signature = Secret::new(h.hmac(stored_key.expose(), auth_message.as_bytes())?);
        let proof: Vec<u8> = client_key
            .expose()
            .iter()
            .zip(client_signature.expose())
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = Secret::new(h.hmac(salted_password.expose(), b"Server Key")?);
        let server_signature = Secret::new(h.hmac(server_key.expose(), auth_message.as_bytes())?);

        let message = format!("{without_proof},p={}", STANDARD.encode(&proof)).into_bytes();
        Ok((Secret::new(message), State::FinalSent { server_signature }))
    }
}

/// `printable` of RFC 5802 (`%x21-2B / %x2D-7E`).
fn is_nonce_char(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && b != b','
}

/// `e=` up to the next `,` (extensions may follow).
fn server_error(value: &str) -> SaslError {
    SaslError::Server(String::from(value.split(',').next().unwrap_or("")))
}

/// A decimal iteration count: 1 or more, digits only; saturates instead of
/// overflowing so that a huge count is reported as too many.
fn parse_iterations(text: &str) -> Result<u64, SaslError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SaslError::MalformedChallenge(
            "SCRAM iteration count is not a number",
        ));
    }
    let count = text.bytes().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    });
    if count == 0 {
        return Err(SaslError::MalformedChallenge(
            "SCRAM iteration count is zero",
        ));
    }
    Ok(count)
}

/// Compares without an early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Mechanism for Scram {
    fn name(&self) -> &str {
        self.hash.mechanism_name(self.channel_binding.is_plus())
    }

    fn initial_response(&mut self) -> Result<Option<Secret<Vec<u8>>>, SaslError> {
        match self.state {
            State::Start => self.client_first().map(Some),
            _ => Err(SaslError::UnexpectedChallenge),
        }
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Secret<Vec<u8>>, SaslError> {
        match core::mem::replace(&mut self.state, State::Failed) {
            State::Start if challenge.is_empty() => self.client_first(),
            State::Start => Err(SaslError::MalformedChallenge(
                "SCRAM expects an empty first challenge",
            )),
            State::FirstSent {
                gs2_header,
                client_first_bare,
            } => {
                let (message, next) =
                    self.client_final(&gs2_header, &client_first_bare, challenge)?;
                self.state = next;
                Ok(message)
            }
            State::FinalSent { server_signature } => {
                let server_final = core::str::from_utf8(challenge).map_err(|_| {
                    SaslError::MalformedChallenge("SCRAM server-final-message is not UTF-8")
                })?;
                if let Some(error) = server_final.strip_prefix("e=") {
                    return Err(server_error(error));
                }
                let verifier =
                    server_final
                        .strip_prefix("v=")
                        .ok_or(SaslError::MalformedChallenge(
                            "SCRAM server-final-message lacks v= and e=",
                        ))?;
                let verifier = verifier.split(',').next().unwrap_or("");
                let verifier = LENIENT_BASE64.decode(verifier).map_err(|_| {
                    SaslError::MalformedChallenge("SCRAM server signature is not valid base64")
                })?;
                if !constant_time_eq(&verifier, server_signature.expose()) {
                    return Err(SaslError::ServerVerificationFailed);
                }
                self.state = State::Verified;
                Ok(Secret::new(Vec::new()))
            }
            State::Verified => {
                self.state = State::Verified;
                Err(SaslError::UnexpectedChallenge)
            }
            State::Failed => Err(SaslError::UnexpectedChallenge),
        }
    }

    fn finish(&mut self) -> Result<(), SaslError> {
        if self.is_server_verified() {
            Ok(())
        } else {
            Err(SaslError::Incomplete)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE1: &str = "fyko+d2lbbFgONRv9qkxdawL";
    const SERVER_FIRST1: &[u8] =
        b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
    const CLIENT_FINAL1: &[u8] =
        b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=";

    fn sha1_mech() -> Scram {
        Scram::with_nonce(ScramHash::Sha1, "user", "pencil", NONCE1).unwrap()
    }

    #[test]
    fn rfc5802_sha1() {
        let mut m = sha1_mech();
        assert_eq!(m.name(), "SCRAM-SHA-1");
        let first = m.initial_response().unwrap().unwrap();
        assert_eq!(
            first.expose().as_slice(),
            b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"
        );
        assert_eq!(
            m.step(SERVER_FIRST1).unwrap().expose().as_slice(),
            CLIENT_FINAL1
        );
        assert_eq!(m.finish(), Err(SaslError::Incomplete));
        assert!(m
            .step(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")
            .unwrap()
            .expose()
            .is_empty());
        assert!(m.is_server_verified());
        m.finish().unwrap();
        assert_eq!(
            m.step(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ="),
            Err(SaslError::UnexpectedChallenge)
        );
    }

    #[test]
    fn rfc7677_sha256() {
        let mut m =
            Scram::with_nonce(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO").unwrap();
        assert_eq!(m.name(), "SCRAM-SHA-256");
        assert_eq!(
            m.initial_response().unwrap().unwrap().expose().as_slice(),
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
        );
        let r = m
            .step(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap();
        assert_eq!(
            r.expose().as_slice(),
            &b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="[..]
        );
        m.step(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        m.finish().unwrap();
    }

    /// A minimal SCRAM server: checks the client's proof and returns the
    /// server-final-message, so channel binding and authzid (no published
    /// vectors) are checked end to end.
    fn server_final(
        hash: ScramHash,
        password: &str,
        salt: &[u8],
        i: u32,
        client_first_bare: &str,
        server_first: &str,
        client_final: &str,
    ) -> Option<String> {
        let (without_proof, proof) = client_final.rsplit_once(",p=")?;
        let proof = STANDARD.decode(proof).ok()?;
        let salted = hash.hi(password.as_bytes(), salt, i);
        let stored_key = hash.hash(&hash.hmac(&salted, b"Client Key").ok()?);
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hash.hmac(&stored_key, auth_message.as_bytes()).ok()?;
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        if hash.hash(&client_key) != stored_key {
            return None;
        }
        let server_key = hash.hmac(&salted, b"Server Key").ok()?;
        Some(format!(
            "v={}",
            STANDARD.encode(hash.hmac(&server_key, auth_message.as_bytes()).ok()?)
        ))
    }

    #[test]
    fn channel_binding_plus_and_authzid() {
        let cb = [7u8; 32];
        let mut m = Scram::new(ScramHash::Sha256, "us,er", "pässword", &[1u8; 18])
            .unwrap()
            .with_authzid("ad=min")
            .unwrap()
            .with_channel_binding(ChannelBinding::TlsExporter(cb.to_vec()));
        assert_eq!(m.name(), "SCRAM-SHA-256-PLUS");
        let first =
            String::from_utf8(m.initial_response().unwrap().unwrap().expose().clone()).unwrap();
        let gs2 = "p=tls-exporter,a=ad=3Dmin,";
        assert!(first.starts_with(gs2), "{first}");
        let bare = &first[gs2.len()..];
        assert_eq!(bare, "n=us=2Cer,r=AQEBAQEBAQEBAQEBAQEBAQEB");
        let server_first = "r=AQEBAQEBAQEBAQEBAQEBAQEBSERVER,s=c2FsdA==,i=10,x=ignored";
        let client_final =
            String::from_utf8(m.step(server_first.as_bytes()).unwrap().expose().clone()).unwrap();
        let mut cbind = Vec::from(gs2.as_bytes());
        cbind.extend_from_slice(&cb);
        assert!(
            client_final.starts_with(&format!("c={},", STANDARD.encode(&cbind))),
            "{client_final}"
        );
        let v = server_final(
            ScramHash::Sha256,
            "pässword",
            b"salt",
            10,
            bare,
            server_first,
            &client_final,
        )
        .unwrap();
        m.step(format!("{v},ext=1").as_bytes()).unwrap();
        m.finish().unwrap();
    }

    #[test]
    fn flag_y_and_tls_server_end_point() {
        let mut m = sha1_mech().with_channel_binding(ChannelBinding::SupportedButNotOffered);
        assert_eq!(m.name(), "SCRAM-SHA-1");
        assert!(m
            .initial_response()
            .unwrap()
            .unwrap()
            .expose()
            .starts_with(b"y,,n=user,"));
        let r = m.step(SERVER_FIRST1).unwrap();
        assert!(r.expose().starts_with(b"c=eSws,"));

        let mut m = sha1_mech()
            .with_channel_binding(ChannelBinding::TlsServerEndPoint(alloc::vec![1, 2, 3]));
        assert_eq!(m.name(), "SCRAM-SHA-1-PLUS");
        assert!(m
            .initial_response()
            .unwrap()
            .unwrap()
            .expose()
            .starts_with(b"p=tls-server-end-point,,n=user,"));

        let mut m = sha1_mech().with_channel_binding(ChannelBinding::TlsExporter(Vec::new()));
        assert!(matches!(
            m.initial_response(),
            Err(SaslError::InvalidInput(_))
        ));
    }

    #[test]
    fn nonce_from_random_bytes() {
        assert!(matches!(
            Scram::new(ScramHash::Sha1, "u", "p", &[0u8; 15]),
            Err(SaslError::InvalidInput(_))
        ));
        let mut m = Scram::new(ScramHash::Sha1, "u", "p", &[0xff; 24]).unwrap();
        let first = m.initial_response().unwrap().unwrap();
        assert_eq!(
            first.expose().as_slice(),
            b"n,,n=u,r=////////////////////////////////"
        );
        for bad in ["", "a,b", "a b", "\u{e9}"] {
            assert!(
                matches!(
                    Scram::with_nonce(ScramHash::Sha1, "u", "p", bad),
                    Err(SaslError::InvalidInput(_))
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Scram::with_nonce(ScramHash::Sha1, "", "p", "n"),
            Err(SaslError::InvalidInput(_))
        ));
        assert!(matches!(
            Scram::with_nonce(ScramHash::Sha1, "u", "p\tw", "n"),
            Err(SaslError::InvalidInput(_))
        ));
    }

    #[test]
    fn mechanism_names() {
        assert_eq!(
            ScramHash::from_mechanism_name("scram-sha-256-plus"),
            Some((ScramHash::Sha256, true))
        );
        assert_eq!(
            ScramHash::from_mechanism_name("SCRAM-SHA-1"),
            Some((ScramHash::Sha1, false))
        );
        assert_eq!(ScramHash::from_mechanism_name("SCRAM-SHA-512"), None);
    }

    #[test]
    fn iteration_parsing() {
        assert_eq!(parse_iterations("4096"), Ok(4096));
        assert_eq!(parse_iterations("99999999999999999999999999"), Ok(u64::MAX));
        for bad in ["", "0", "000", "-1", "+5", "1 ", "0x10", "４"] {
            assert!(
                matches!(parse_iterations(bad), Err(SaslError::MalformedChallenge(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn max_iterations_is_configurable() {
        let mut m = sha1_mech().with_max_iterations(4095);
        m.initial_response().unwrap();
        assert_eq!(
            m.step(SERVER_FIRST1),
            Err(SaslError::TooManyIterations {
                requested: 4096,
                max: 4095
            })
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let mut m =
            sha1_mech().with_channel_binding(ChannelBinding::TlsExporter(alloc::vec![0xAB; 32]));
        m.initial_response().unwrap();
        let _ = m.step(SERVER_FIRST1);
        let s = format!("{m:?}");
        assert!(
            !s.contains("pencil") && !s.contains(NONCE1) && !s.contains("171"),
            "{s}"
        );
        assert!(s.contains("SCRAM-SHA-1-PLUS") && s.contains("user"), "{s}");
    }

    /// Known answers computed independently (Python `hashlib.pbkdf2_hmac`
    /// and `hmac`, from the RFC 5802 §3 formulas; the same script
    /// reproduces the RFC 7677 vector above): the GS2 header and the
    /// `c=` attribute are `base64(gs2-header || cbind-data)` (RFC 5802
    /// §7, RFC 5929 §4, RFC 9266 §3), the proof covers them.
    #[test]
    fn known_answers_with_channel_binding() {
        /// Runs the whole exchange and compares every client message.
        fn check(mut m: Scram, first: &[u8], server_first: &[u8], last: &[u8], v: &[u8]) {
            let sent = m.initial_response().unwrap().unwrap();
            assert_eq!(sent.expose().as_slice(), first);
            assert_eq!(m.step(server_first).unwrap().expose().as_slice(), last);
            assert!(m.step(v).unwrap().expose().is_empty());
            m.finish().unwrap();
        }
        const NONCE256: &str = "rOprNGfwEbeRWgbNEkqO";
        const SERVER_FIRST256: &[u8] = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let sha256 = || Scram::with_nonce(ScramHash::Sha256, "user", "pencil", NONCE256).unwrap();

        // SCRAM-SHA-256-PLUS, tls-exporter, binding bytes 00..1f.
        let m = sha256().with_channel_binding(ChannelBinding::TlsExporter((0..32).collect()));
        assert_eq!(m.name(), "SCRAM-SHA-256-PLUS");
        check(
            m,
            b"p=tls-exporter,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            SERVER_FIRST256,
            b"c=cD10bHMtZXhwb3J0ZXIsLAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=QC6CS20quADQRb3mT99YUH+n3VJxUvzuK0K0E1Vrs2M=",
            b"v=2GiAgapEppLVlUXbxUDksL3VgYHzuqiK5tR4mhJGgvs=",
        );

        // SCRAM-SHA-1-PLUS, tls-server-end-point (SHA-256 of some bytes),
        // with an authzid in the GS2 header.
        let endpoint = Sha256::digest(b"not a real certificate").to_vec();
        let m = sha1_mech().with_authzid("admin").unwrap();
        check(
            m.with_channel_binding(ChannelBinding::TlsServerEndPoint(endpoint)),
            b"p=tls-server-end-point,a=admin,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            SERVER_FIRST1,
            b"c=cD10bHMtc2VydmVyLWVuZC1wb2ludCxhPWFkbWluLInu5rbHVBUI11OkPiqvkmfoHxyOQwIUZ2l0LJPSkwd8,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=VUnG2khcERkrh+5FrUqpOh5pC6g=",
            b"v=/vJgeQ4S71IdGZdTwg5G3Ws3Kek=",
        );

        // SCRAM-SHA-256 with the `y` flag: `c=eSws` is base64("y,,").
        let m = sha256().with_channel_binding(ChannelBinding::SupportedButNotOffered);
        assert_eq!(m.name(), "SCRAM-SHA-256");
        check(
            m,
            b"y,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            SERVER_FIRST256,
            b"c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=FoqiHTtQEDE8lz1CdaEe3tK4mS+iMDTl77SPyDS53DY=",
            b"v=dI4KpiQJwBr1+V+K6U1dA6l6I4I9DUNXWND4pcpRU3U=",
        );
    }
}

//! Choosing how to log in, shared by every adapter: the strongest method
//! the server offers, and never a credential over cleartext unless the
//! caller explicitly allowed it.

use alloc::boxed::Box;
use alloc::string::String;

use crate::response::{Capabilities, Greeting};
use crate::sasl::{
    self, CramMd5, Login, Mechanism, OAuthBearer, Plain, SaslError, Scram, ScramHash, XOAuth2,
};

/// How [`plan`] decided to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginMethod {
    /// SASL `AUTH` with this mechanism (SCRAM-SHA-256, SCRAM-SHA-1,
    /// CRAM-MD5, PLAIN or LOGIN); build it with [`mechanism`].
    Sasl(String),
    /// `APOP` with the greeting's timestamp.
    Apop,
    /// `USER` + `PASS`.
    UserPass,
}

/// Why no login method can be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// The connection is not TLS and the caller did not allow credentials
    /// in cleartext. Nothing was sent.
    #[error("refusing to send credentials over a connection without TLS (not explicitly allowed)")]
    CleartextRefused,
}

/// Picks the login method: SASL (SCRAM-SHA-256 > SCRAM-SHA-1 > CRAM-MD5 >
/// PLAIN > LOGIN, from the server's `SASL` capability), then APOP (only over
/// TLS, when the greeting carried a timestamp), then USER/PASS.
///
/// Without TLS every method is refused unless `allow_cleartext` is true:
/// even challenge-response methods expose the user name and an offline
/// crackable digest to an eavesdropper.
///
/// `caps` should come from CAPA in the current state (`None` if the server
/// refused CAPA); `greeting` from [`Client::greeting`](crate::Client::greeting).
pub fn plan(
    caps: Option<&Capabilities>,
    greeting: Option<&Greeting>,
    tls: bool,
    allow_cleartext: bool,
) -> Result<LoginMethod, LoginError> {
    plan_with(caps, greeting, tls, allow_cleartext, false)
}

/// [`plan`], with `channel_binding`: the driver supplied channel-binding
/// data for this TLS connection, so `SCRAM-SHA-256-PLUS` and
/// `SCRAM-SHA-1-PLUS` may be chosen (they rank first when offered).
/// Without it the `-PLUS` names are never chosen.
pub fn plan_with(
    caps: Option<&Capabilities>,
    greeting: Option<&Greeting>,
    tls: bool,
    allow_cleartext: bool,
    channel_binding: bool,
) -> Result<LoginMethod, LoginError> {
    if !tls && !allow_cleartext {
        return Err(LoginError::CleartextRefused);
    }
    if let Some(caps) = caps {
        let plus_ok = tls && channel_binding;
        let offered = caps
            .sasl
            .iter()
            .map(String::as_str)
            .filter(|m| plus_ok || !m.to_ascii_uppercase().ends_with("-PLUS"));
        if let Some(m) = sasl::choose(offered, tls, allow_cleartext) {
            return Ok(LoginMethod::Sasl(m.to_ascii_uppercase()));
        }
    }
    if tls && greeting.is_some_and(|g| g.apop_timestamp.is_some()) {
        return Ok(LoginMethod::Apop);
    }
    Ok(LoginMethod::UserPass)
}

/// The [`SaslError::InvalidInput`] text of [`mechanism`] for a name it does
/// not know.
pub const UNSUPPORTED: &str = "unsupported SASL mechanism";

/// Builds a SASL mechanism by name for a user name and a secret: the
/// password, or for `XOAUTH2` / `OAUTHBEARER` the OAuth 2 bearer token
/// (a token too long for the AUTH line is sent after the server's first
/// empty challenge, which is what Microsoft 365 expects). `random` must hold
/// at least 16 bytes from a secure random source (used for the SCRAM nonce;
/// the core has no OS access). [`plan`] never picks the OAuth mechanisms: a
/// caller asks for them explicitly.
pub fn mechanism(
    name: &str,
    user: &str,
    password: &str,
    random: &[u8],
) -> Result<Box<dyn Mechanism>, SaslError> {
    let upper = name.to_ascii_uppercase();
    Ok(match upper.as_str() {
        "SCRAM-SHA-256" => Box::new(Scram::new(ScramHash::Sha256, user, password, random)?),
        "SCRAM-SHA-1" => Box::new(Scram::new(ScramHash::Sha1, user, password, random)?),
        "CRAM-MD5" => Box::new(CramMd5::new(user, password)),
        "PLAIN" => Box::new(Plain::new(user, password)),
        "LOGIN" => Box::new(Login::new(user, password)),
        "XOAUTH2" => Box::new(XOAuth2::new(user, password)),
        "OAUTHBEARER" => Box::new(OAuthBearer::new(user, password)),
        _ => return Err(SaslError::InvalidInput(UNSUPPORTED)),
    })
}

/// [`mechanism`], plus the `-PLUS` SCRAM variants, which need the
/// connection's channel-binding data (`binding`, from the TLS driver). A
/// non-`PLUS` SCRAM over a connection with binding data uses the GS2 `y`
/// flag (a server that supports binding then detects a stripped `-PLUS`).
pub fn mechanism_with_binding(
    name: &str,
    user: &str,
    password: &str,
    random: &[u8],
    binding: Option<&sasl::ChannelBinding>,
) -> Result<Box<dyn Mechanism>, SaslError> {
    match ScramHash::from_mechanism_name(name) {
        Some((hash, true)) => {
            let Some(b) = binding.filter(|b| b.is_plus()) else {
                return Err(SaslError::InvalidInput(
                    "a -PLUS mechanism needs channel-binding data from the TLS layer",
                ));
            };
            Ok(Box::new(
                Scram::new(hash, user, password, random)?.with_channel_binding(b.clone()),
            ))
        }
        _ => mechanism(name, user, password, random),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn caps(sasl: &[&str]) -> Capabilities {
        Capabilities {
            sasl: sasl.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn greeting(ts: bool) -> Greeting {
        Greeting {
            status: crate::Status::default(),
            apop_timestamp: ts.then(|| "<1@x>".to_string()),
        }
    }

    #[test]
    fn refuses_cleartext_by_default() {
        let c = caps(&["SCRAM-SHA-256"]);
        assert_eq!(
            plan(Some(&c), None, false, false),
            Err(LoginError::CleartextRefused)
        );
        assert_eq!(
            plan(None, Some(&greeting(true)), false, false),
            Err(LoginError::CleartextRefused)
        );
    }

    #[test]
    fn strongest_first() {
        let c = caps(&[
            "PLAIN",
            "LOGIN",
            "CRAM-MD5",
            "SCRAM-SHA-1",
            "scram-sha-256",
            "SCRAM-SHA-256-PLUS",
        ]);
        assert_eq!(
            plan(Some(&c), None, true, false),
            Ok(LoginMethod::Sasl("SCRAM-SHA-256".into()))
        );
        let c = caps(&["PLAIN", "CRAM-MD5"]);
        assert_eq!(
            plan(Some(&c), None, true, false),
            Ok(LoginMethod::Sasl("CRAM-MD5".into()))
        );
        let c = caps(&["PLAIN", "GSSAPI"]);
        assert_eq!(
            plan(Some(&c), None, true, false),
            Ok(LoginMethod::Sasl("PLAIN".into()))
        );
        // Cleartext allowed: PLAIN is not chosen without TLS unless allowed
        // by sasl::choose's own rule (allow_plaintext = allow_cleartext here).
        assert_eq!(
            plan(Some(&c), None, false, true),
            Ok(LoginMethod::Sasl("PLAIN".into()))
        );
    }

    #[test]
    fn apop_only_over_tls_then_user_pass() {
        let c = caps(&["GSSAPI"]);
        assert_eq!(
            plan(Some(&c), Some(&greeting(true)), true, false),
            Ok(LoginMethod::Apop)
        );
        assert_eq!(
            plan(Some(&c), Some(&greeting(true)), false, true),
            Ok(LoginMethod::UserPass)
        );
        assert_eq!(
            plan(None, Some(&greeting(false)), true, false),
            Ok(LoginMethod::UserPass)
        );
        assert_eq!(plan(None, None, true, false), Ok(LoginMethod::UserPass));
    }

    #[test]
    fn builds_mechanisms() {
        let r = vec![7u8; 24];
        for name in [
            "SCRAM-SHA-256",
            "scram-sha-1",
            "CRAM-MD5",
            "PLAIN",
            "LOGIN",
            "XOAUTH2",
            "oauthbearer",
        ] {
            let m = mechanism(name, "u", "p", &r).unwrap();
            assert!(m.name().eq_ignore_ascii_case(name));
        }
        assert!(mechanism("GSSAPI", "u", "p", &r).is_err());
    }
}

//! Choosing how to log in, shared by every adapter: the strongest method
//! the server offers, and never a credential over cleartext unless the
//! caller explicitly allowed it.

use alloc::boxed::Box;
use alloc::string::String;

use crate::response::{Capabilities, Greeting};
use crate::sasl::{
    self, ChannelBinding, CramMd5, Login, Mechanism, OAuthBearer, Plain, SaslError, XOAuth2,
};
#[cfg(feature = "scram")]
use crate::sasl::{Scram, ScramHash};

/// How [`plan`] decided to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginMethod {
    /// SASL `AUTH` with this mechanism (SCRAM-SHA-256-PLUS,
    /// SCRAM-SHA-1-PLUS, SCRAM-SHA-256, SCRAM-SHA-1, CRAM-MD5, PLAIN or
    /// LOGIN); build it with [`mechanism`] or, with channel-binding data
    /// (needed for the `-PLUS` names, which only [`plan_with`] picks), with
    /// [`mechanism_with_binding`].
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
/// This is [`plan_with`] without channel-binding data: it never picks a
/// `-PLUS` mechanism.
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

/// [`plan`], knowing whether the TLS driver supplied channel-binding data
/// for this connection (`channel_binding`: a [`ChannelBinding::TlsExporter`]
/// or [`ChannelBinding::TlsServerEndPoint`] is at hand).
///
/// With TLS and binding data the `-PLUS` mechanisms are candidates and rank
/// above every other one (SCRAM-SHA-256-PLUS > SCRAM-SHA-1-PLUS >
/// SCRAM-SHA-256 > ...; see [`sasl::preference_rank`]). Without TLS or
/// without binding data a `-PLUS` name is never picked. Build the chosen
/// mechanism with [`mechanism_with_binding`], which uses the GS2 flag `y`
/// for a non-`PLUS` SCRAM when binding data is at hand: `plan_with` only
/// picks one then when the server lists no `-PLUS` at all.
///
/// ```
/// use pop3_proto::login::{plan_with, LoginMethod};
/// use pop3_proto::Capabilities;
///
/// let mut caps = Capabilities::default();
/// caps.sasl = vec!["SCRAM-SHA-256".into(), "SCRAM-SHA-1-PLUS".into()];
/// assert_eq!(
///     plan_with(Some(&caps), None, true, false, true),
///     Ok(LoginMethod::Sasl("SCRAM-SHA-1-PLUS".into()))
/// );
/// assert_eq!(
///     plan_with(Some(&caps), None, true, false, false),
///     Ok(LoginMethod::Sasl("SCRAM-SHA-256".into()))
/// );
/// ```
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
        // -PLUS needs the TLS layer's binding data; without it those
        // names are not candidates at all.
        let plus_ok = tls && channel_binding;
        let offered = caps
            .sasl
            .iter()
            .map(String::as_str)
            .filter(|m| plus_ok || !is_plus(m));
        if let Some(m) = sasl::choose(offered, tls, allow_cleartext) {
            return Ok(LoginMethod::Sasl(m.to_ascii_uppercase()));
        }
    }
    if tls && greeting.is_some_and(|g| g.apop_timestamp.is_some()) {
        return Ok(LoginMethod::Apop);
    }
    Ok(LoginMethod::UserPass)
}

/// A channel-binding (`-PLUS`) mechanism name, any case.
fn is_plus(mechanism: &str) -> bool {
    let b = mechanism.as_bytes();
    b.len() >= 5 && b[b.len() - 5..].eq_ignore_ascii_case(b"-PLUS")
}

/// The [`SaslError::InvalidInput`] text of [`mechanism`] for a name it does
/// not know.
pub const UNSUPPORTED: &str = "unsupported SASL mechanism";

/// The [`SaslError::InvalidInput`] text of [`mechanism`] and
/// [`mechanism_with_binding`] for a `-PLUS` name without channel-binding
/// data.
pub const NEEDS_CHANNEL_BINDING: &str =
    "a -PLUS mechanism needs channel-binding data from the TLS layer";

/// Builds a SASL mechanism by name for a user name and a secret: the
/// password, or for `XOAUTH2` / `OAUTHBEARER` the OAuth 2 bearer token
/// (a token too long for the AUTH line is sent after the server's first
/// empty challenge, which is what Microsoft 365 expects). `random` must hold
/// at least 16 bytes from a secure random source (used for the SCRAM nonce;
/// the core has no OS access). [`plan`] never picks the OAuth mechanisms: a
/// caller asks for them explicitly.
///
/// This is [`mechanism_with_binding`] without channel-binding data: SCRAM
/// uses the GS2 flag `n`, and a `-PLUS` name is refused with
/// [`NEEDS_CHANNEL_BINDING`].
pub fn mechanism(
    name: &str,
    user: &str,
    password: &str,
    random: &[u8],
) -> Result<Box<dyn Mechanism>, SaslError> {
    mechanism_with_binding(name, user, password, random, None)
}

/// [`mechanism`], with the connection's channel binding (`binding`, from the
/// TLS driver: [`ChannelBinding::TlsExporter`] for TLS 1.3,
/// [`ChannelBinding::TlsServerEndPoint`] for TLS 1.2). The SCRAM GS2 flag
/// follows RFC 5802 §6:
///
/// | `binding` | name | GS2 flag |
/// | --- | --- | --- |
/// | `None` or [`ChannelBinding::Unsupported`] | `SCRAM-*` | `n` |
/// | `None` or [`ChannelBinding::Unsupported`] | `SCRAM-*-PLUS` | refused: [`NEEDS_CHANNEL_BINDING`] |
/// | data | `SCRAM-*-PLUS` | `p=tls-exporter` / `p=tls-server-end-point` with the data |
/// | data, or [`ChannelBinding::SupportedButNotOffered`] | `SCRAM-*` | `y`: "I can bind, I think you cannot"; a server that can fails the exchange, which detects a stripped `-PLUS` |
///
/// The `y` row is right for a name from [`plan_with`] (with binding data it
/// picks a non-`PLUS` SCRAM only when the server lists no `-PLUS`). For a
/// name the caller chose itself use [`mechanism_for_server`], which
/// switches to the `-PLUS` variant when the server lists it (RFC 5802 §6:
/// the client "MUST" then bind). Other mechanisms ignore `binding`.
///
/// ```
/// use pop3_proto::login::mechanism_with_binding;
/// use pop3_proto::sasl::ChannelBinding;
///
/// let binding = ChannelBinding::TlsExporter(vec![1; 32]);
/// let mut m = mechanism_with_binding("SCRAM-SHA-256", "u", "p", &[9; 18], Some(&binding))?;
/// assert_eq!(m.name(), "SCRAM-SHA-256");
/// assert!(m.initial_response()?.unwrap().expose().starts_with(b"y,,n=u,r="));
///
/// let mut m = mechanism_with_binding("SCRAM-SHA-256-PLUS", "u", "p", &[9; 18], Some(&binding))?;
/// assert!(m.initial_response()?.unwrap().expose().starts_with(b"p=tls-exporter,,n=u,r="));
/// # Ok::<(), pop3_proto::sasl::SaslError>(())
/// ```
pub fn mechanism_with_binding(
    name: &str,
    user: &str,
    password: &str,
    random: &[u8],
    binding: Option<&ChannelBinding>,
) -> Result<Box<dyn Mechanism>, SaslError> {
    #[cfg(not(feature = "scram"))]
    let _ = (random, binding); // only SCRAM needs a nonce or binding data
    #[cfg(feature = "scram")]
    if let Some((hash, plus)) = ScramHash::from_mechanism_name(name) {
        let channel_binding = match binding {
            Some(b) if b.is_plus() && plus => b.clone(),
            Some(b) if b.is_plus() => ChannelBinding::SupportedButNotOffered,
            _ if plus => return Err(SaslError::InvalidInput(NEEDS_CHANNEL_BINDING)),
            Some(ChannelBinding::SupportedButNotOffered) => ChannelBinding::SupportedButNotOffered,
            _ => ChannelBinding::Unsupported,
        };
        let scram = Scram::new(hash, user, password, random)?;
        return Ok(Box::new(scram.with_channel_binding(channel_binding)));
    }
    let upper = name.to_ascii_uppercase();
    Ok(match upper.as_str() {
        "CRAM-MD5" => Box::new(CramMd5::new(user, password)),
        "PLAIN" => Box::new(Plain::new(user, password)),
        "LOGIN" => Box::new(Login::new(user, password)),
        "XOAUTH2" => Box::new(XOAuth2::new(user, password)),
        "OAUTHBEARER" => Box::new(OAuthBearer::new(user, password)),
        _ => return Err(SaslError::InvalidInput(UNSUPPORTED)),
    })
}

/// [`mechanism_with_binding`] for a mechanism name the caller chose itself
/// (not from [`plan_with`]), given the server's capabilities (`caps`,
/// `None` when CAPA was refused): with binding data, a non-`PLUS` SCRAM
/// whose `-PLUS` variant the server lists becomes that variant (RFC 5802
/// §6: "Clients that support mechanism negotiation and channel binding
/// MUST use a "p" gs2-cbind-flag when the server offers the PLUS-variant of
/// the desired GS2 mechanism"); otherwise it keeps the flag `y`, as a
/// downgrade check. Everything else is as in [`mechanism_with_binding`].
///
/// ```
/// use pop3_proto::login::mechanism_for_server;
/// use pop3_proto::sasl::ChannelBinding;
/// use pop3_proto::Capabilities;
///
/// let binding = ChannelBinding::TlsServerEndPoint(vec![2; 32]);
/// let mut caps = Capabilities::default();
/// caps.sasl = vec!["SCRAM-SHA-1".into(), "SCRAM-SHA-1-PLUS".into()];
/// let mut m = mechanism_for_server("scram-sha-1", "u", "p", &[9; 18], Some(&binding), Some(&caps))?;
/// assert_eq!(m.name(), "SCRAM-SHA-1-PLUS");
/// assert!(m.initial_response()?.unwrap().expose().starts_with(b"p=tls-server-end-point,,"));
/// # Ok::<(), pop3_proto::sasl::SaslError>(())
/// ```
pub fn mechanism_for_server(
    name: &str,
    user: &str,
    password: &str,
    random: &[u8],
    binding: Option<&ChannelBinding>,
    caps: Option<&Capabilities>,
) -> Result<Box<dyn Mechanism>, SaslError> {
    #[cfg(feature = "scram")]
    let upgrade = match ScramHash::from_mechanism_name(name) {
        Some((hash, false)) if binding.is_some_and(ChannelBinding::is_plus) => {
            let plus = hash.mechanism_name(true);
            caps.is_some_and(|c| c.sasl.iter().any(|m| m.eq_ignore_ascii_case(plus)))
                .then_some(plus)
        }
        _ => None,
    };
    #[cfg(not(feature = "scram"))]
    let upgrade: Option<&str> = {
        let _ = caps;
        None
    };
    mechanism_with_binding(upgrade.unwrap_or(name), user, password, random, binding)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    #[cfg(feature = "scram")]
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
    #[cfg(feature = "scram")]
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
    #[cfg(feature = "scram")]
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

    #[test]
    #[cfg(feature = "scram")]
    fn plan_prefers_plus_only_with_binding() {
        let all = caps(&[
            "PLAIN",
            "SCRAM-SHA-1",
            "SCRAM-SHA-1-PLUS",
            "SCRAM-SHA-256",
            "scram-sha-256-plus",
        ]);
        let mixed = caps(&["SCRAM-SHA-256", "SCRAM-SHA-1-PLUS"]);
        let only_plus = caps(&["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"]);
        let stripped = caps(&["SCRAM-SHA-256", "CRAM-MD5"]);
        // (tls, channel binding)
        let bound = (true, true);
        let unbound = (true, false);
        let clear = (false, false);
        let clear_with_data = (false, true);
        let sasl = |m: &str| Ok(LoginMethod::Sasl(m.into()));
        let apop = greeting(true);
        let cases = [
            (&all, None, bound, false, sasl("SCRAM-SHA-256-PLUS")),
            (&all, None, unbound, false, sasl("SCRAM-SHA-256")),
            // Any -PLUS beats every non-PLUS SCRAM.
            (&mixed, None, bound, false, sasl("SCRAM-SHA-1-PLUS")),
            (&mixed, None, unbound, false, sasl("SCRAM-SHA-256")),
            // Only -PLUS offered, no binding data: never chosen.
            (
                &only_plus,
                Some(&apop),
                unbound,
                false,
                Ok(LoginMethod::Apop),
            ),
            (&only_plus, None, unbound, false, Ok(LoginMethod::UserPass)),
            // Binding data but no -PLUS listed: plain SCRAM (built with the
            // `y` flag, see below).
            (&stripped, None, bound, false, sasl("SCRAM-SHA-256")),
            // Cleartext: refused unless allowed, and then never -PLUS.
            (&all, None, clear, false, Err(LoginError::CleartextRefused)),
            (&all, None, clear, true, sasl("SCRAM-SHA-256")),
            // Binding data cannot exist without TLS: ignored.
            (&all, None, clear_with_data, true, sasl("SCRAM-SHA-256")),
            (
                &all,
                None,
                clear_with_data,
                false,
                Err(LoginError::CleartextRefused),
            ),
        ];
        for (caps, greeting, (tls, binding), allow, want) in cases {
            let got = plan_with(Some(caps), greeting, tls, allow, binding);
            assert_eq!(got, want, "{:?} tls={tls} binding={binding}", caps.sasl);
        }
        assert_eq!(
            plan(Some(&only_plus), None, true, false),
            Ok(LoginMethod::UserPass)
        );
    }

    #[test]
    #[cfg(feature = "scram")]
    fn gs2_flag_follows_rfc5802_section_6() {
        let r = [5u8; 18];
        let exporter = ChannelBinding::TlsExporter((0..32).collect());
        let endpoint = ChannelBinding::TlsServerEndPoint((0..32).collect());
        let y = ChannelBinding::SupportedButNotOffered;
        let n = ChannelBinding::Unsupported;
        let build =
            |name: &str, b: Option<&ChannelBinding>| mechanism_with_binding(name, "u", "p", &r, b);
        // (name, binding, mechanism name, start of the client-first-message)
        let cases: [(&str, Option<&ChannelBinding>, &str, &str); 9] = [
            ("SCRAM-SHA-256", None, "SCRAM-SHA-256", "n,,n=u,r="),
            ("SCRAM-SHA-256", Some(&n), "SCRAM-SHA-256", "n,,n=u,r="),
            ("scram-sha-1", Some(&y), "SCRAM-SHA-1", "y,,n=u,r="),
            ("SCRAM-SHA-1", Some(&exporter), "SCRAM-SHA-1", "y,,n=u,r="),
            (
                "SCRAM-SHA-256",
                Some(&endpoint),
                "SCRAM-SHA-256",
                "y,,n=u,r=",
            ),
            (
                "SCRAM-SHA-1-PLUS",
                Some(&endpoint),
                "SCRAM-SHA-1-PLUS",
                "p=tls-server-end-point,,n=u,r=",
            ),
            (
                "scram-sha-256-plus",
                Some(&exporter),
                "SCRAM-SHA-256-PLUS",
                "p=tls-exporter,,n=u,r=",
            ),
            ("PLAIN", Some(&exporter), "PLAIN", "\0u\0p"),
            ("CRAM-MD5", Some(&exporter), "CRAM-MD5", ""),
        ];
        for (name, binding, want_name, want_first) in cases {
            let mut m = build(name, binding).unwrap();
            assert_eq!(m.name(), want_name, "{name} {binding:?}");
            let first = m
                .initial_response()
                .unwrap()
                .map(|f| String::from_utf8(f.expose().clone()).unwrap())
                .unwrap_or_default();
            assert!(first.starts_with(want_first), "{name} {binding:?}: {first}");
        }
        // -PLUS without data: refused, never a silent downgrade.
        for b in [None, Some(&n), Some(&y)] {
            for name in ["SCRAM-SHA-256-PLUS", "scram-sha-1-plus"] {
                assert_eq!(
                    build(name, b).err(),
                    Some(SaslError::InvalidInput(NEEDS_CHANNEL_BINDING))
                );
            }
        }
        assert_eq!(
            mechanism("SCRAM-SHA-1-PLUS", "u", "p", &r).err(),
            Some(SaslError::InvalidInput(NEEDS_CHANNEL_BINDING))
        );
        assert_eq!(
            build("GSSAPI", Some(&exporter)).err(),
            Some(SaslError::InvalidInput(UNSUPPORTED))
        );
    }

    #[test]
    #[cfg(feature = "scram")]
    fn explicit_names_switch_to_plus_when_the_server_lists_it() {
        let r = [5u8; 18];
        let exporter = ChannelBinding::TlsExporter((0..32).collect());
        let with_plus = caps(&["SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1"]);
        let plain_only = caps(&["SCRAM-SHA-256", "SCRAM-SHA-1"]);
        let cases = [
            // The server lists the -PLUS variant: the client MUST bind.
            (
                "scram-sha-256",
                Some(&exporter),
                Some(&with_plus),
                "SCRAM-SHA-256-PLUS",
            ),
            // Only another hash's -PLUS, none, or CAPA refused: `y`.
            (
                "SCRAM-SHA-1",
                Some(&exporter),
                Some(&with_plus),
                "SCRAM-SHA-1",
            ),
            (
                "SCRAM-SHA-256",
                Some(&exporter),
                Some(&plain_only),
                "SCRAM-SHA-256",
            ),
            ("SCRAM-SHA-256", Some(&exporter), None, "SCRAM-SHA-256"),
            // No binding data: never -PLUS.
            ("SCRAM-SHA-256", None, Some(&with_plus), "SCRAM-SHA-256"),
            ("CRAM-MD5", Some(&exporter), Some(&with_plus), "CRAM-MD5"),
        ];
        for (name, binding, caps, want) in cases {
            let m = mechanism_for_server(name, "u", "p", &r, binding, caps).unwrap();
            assert_eq!(m.name(), want, "{name} {binding:?}");
        }
    }
}

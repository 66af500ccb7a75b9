//! Choosing how to log in, shared by every adapter: the strongest method
//! the server offers, and never a credential over cleartext unless the
//! caller explicitly allowed it.

use alloc::boxed::Box;
use alloc::string::String;

use crate::response::{Capabilities, Greeting};
use crate::sasl::{
    self, ChannelBinding, ChannelBindingData, CramMd5, Login, Mechanism, OAuthBearer, Plain,
    SaslError, Scram, ScramHash, XOAuth2,
};

/// How [`plan`] decided to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginMethod {
    /// SASL `AUTH` with this mechanism (SCRAM-SHA-256-PLUS,
    /// SCRAM-SHA-1-PLUS, SCRAM-SHA-256, SCRAM-SHA-1, CRAM-MD5, PLAIN or
    /// LOGIN); build it with [`mechanism`] or, for the `-PLUS` names (only
    /// chosen by [`plan_with`] with binding data), with
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

/// What protects the connection, as [`plan_with`] needs to know it.
///
/// Channel binding exists only under TLS, so "binding data without TLS"
/// cannot be expressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Transport {
    /// No TLS. The default.
    #[default]
    Cleartext,
    /// TLS (implicit, or after `STLS`).
    Tls {
        /// The TLS driver has channel-binding data for this connection
        /// ([`ChannelBindingData`]: `tls-exporter` for TLS 1.3,
        /// `tls-server-end-point` for TLS 1.2), so the `-PLUS` SCRAM
        /// mechanisms can be used.
        channel_binding: bool,
    },
}

impl Transport {
    /// TLS, with or without channel-binding data; cleartext for `false`.
    pub const fn tls(tls: bool, channel_binding: bool) -> Transport {
        if tls {
            Transport::Tls { channel_binding }
        } else {
            Transport::Cleartext
        }
    }

    /// Whether the connection is TLS-protected.
    pub const fn is_tls(self) -> bool {
        matches!(self, Transport::Tls { .. })
    }

    /// Whether channel-binding data is available (implies TLS).
    pub const fn has_channel_binding(self) -> bool {
        matches!(
            self,
            Transport::Tls {
                channel_binding: true
            }
        )
    }
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
    plan_with(caps, greeting, Transport::tls(tls, false), allow_cleartext)
}

/// Picks the login method like [`plan`], knowing whether channel-binding
/// data is available.
///
/// With [`Transport::Tls`] `{ channel_binding: true }` the `-PLUS`
/// mechanisms are candidates and rank above every other one
/// (SCRAM-SHA-256-PLUS > SCRAM-SHA-1-PLUS > SCRAM-SHA-256 > ...; see
/// [`sasl::preference_rank`]); build the chosen one with
/// [`mechanism_with_binding`], which also applies the GS2 `y` flag when
/// the server lists no `-PLUS` variant. Without binding data a `-PLUS`
/// name is never picked.
///
/// ```
/// use pop3_proto::login::{plan_with, LoginMethod, Transport};
/// use pop3_proto::Capabilities;
///
/// let mut caps = Capabilities::default();
/// caps.sasl = vec!["SCRAM-SHA-256".into(), "SCRAM-SHA-1-PLUS".into()];
/// let with_binding = Transport::Tls { channel_binding: true };
/// let without = Transport::Tls { channel_binding: false };
/// assert_eq!(
///     plan_with(Some(&caps), None, with_binding, false),
///     Ok(LoginMethod::Sasl("SCRAM-SHA-1-PLUS".into()))
/// );
/// assert_eq!(
///     plan_with(Some(&caps), None, without, false),
///     Ok(LoginMethod::Sasl("SCRAM-SHA-256".into()))
/// );
/// ```
pub fn plan_with(
    caps: Option<&Capabilities>,
    greeting: Option<&Greeting>,
    transport: Transport,
    allow_cleartext: bool,
) -> Result<LoginMethod, LoginError> {
    let tls = transport.is_tls();
    if !tls && !allow_cleartext {
        return Err(LoginError::CleartextRefused);
    }
    if let Some(caps) = caps {
        // -PLUS needs the TLS layer's binding data; without it those
        // names are not candidates at all.
        let binding = transport.has_channel_binding();
        let offered = caps
            .sasl
            .iter()
            .map(String::as_str)
            .filter(|m| binding || !is_plus(m));
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
    "SCRAM -PLUS needs channel-binding data from the TLS connection";

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
    mechanism_with_binding(name, user, password, random, None, None)
}

/// Builds a SASL mechanism like [`mechanism`], with the TLS connection's
/// channel-binding data (`binding`, `None` when there is none) and the
/// server's capabilities (`caps`, `None` when CAPA was refused), which
/// decide the SCRAM GS2 flag as RFC 5802 §6 requires:
///
/// | `binding` | mechanism asked for | server lists its `-PLUS` variant | result |
/// | --- | --- | --- | --- |
/// | `None` | `SCRAM-*` | any | flag `n` |
/// | `None` | `SCRAM-*-PLUS` | any | [`NEEDS_CHANNEL_BINDING`] |
/// | `Some` | `SCRAM-*-PLUS` | any | `p=<type>` with the data |
/// | `Some` | `SCRAM-*` | yes | the `-PLUS` variant, `p=<type>` ("MUST use p when the server offers the PLUS-variant") |
/// | `Some` | `SCRAM-*` | no (or CAPA refused) | flag `y`: a server that does support binding then fails the exchange, which detects a downgrade (someone stripped `-PLUS` from CAPA) |
///
/// Other mechanisms ignore `binding` and `caps`.
///
/// ```
/// use pop3_proto::login::mechanism_with_binding;
/// use pop3_proto::sasl::{ChannelBindingData, ChannelBindingType};
/// use pop3_proto::Capabilities;
///
/// let binding = ChannelBindingData::new(ChannelBindingType::TlsExporter, vec![1; 32])?;
/// let mut caps = Capabilities::default();
/// caps.sasl = vec!["SCRAM-SHA-256".into()]; // -PLUS stripped
/// let mut m = mechanism_with_binding("SCRAM-SHA-256", "u", "p", &[9; 18], Some(&binding), Some(&caps))?;
/// assert_eq!(m.name(), "SCRAM-SHA-256");
/// assert!(m.initial_response()?.unwrap().expose().starts_with(b"y,,n=u,r="));
///
/// caps.sasl.push("SCRAM-SHA-256-PLUS".into());
/// let mut m = mechanism_with_binding("SCRAM-SHA-256", "u", "p", &[9; 18], Some(&binding), Some(&caps))?;
/// assert_eq!(m.name(), "SCRAM-SHA-256-PLUS");
/// assert!(m.initial_response()?.unwrap().expose().starts_with(b"p=tls-exporter,,n=u,r="));
/// # Ok::<(), pop3_proto::sasl::SaslError>(())
/// ```
pub fn mechanism_with_binding(
    name: &str,
    user: &str,
    password: &str,
    random: &[u8],
    binding: Option<&ChannelBindingData>,
    caps: Option<&Capabilities>,
) -> Result<Box<dyn Mechanism>, SaslError> {
    if let Some((hash, plus)) = ScramHash::from_mechanism_name(name) {
        let server_offers_plus = caps.is_some_and(|c| {
            c.sasl
                .iter()
                .any(|m| m.eq_ignore_ascii_case(hash.mechanism_name(true)))
        });
        let channel_binding = match binding {
            None if plus => return Err(SaslError::InvalidInput(NEEDS_CHANNEL_BINDING)),
            None => ChannelBinding::Unsupported,
            Some(data) if plus || server_offers_plus => ChannelBinding::from(data.clone()),
            Some(_) => ChannelBinding::SupportedButNotOffered,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::ChannelBindingType;
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

    fn binding(kind: ChannelBindingType) -> ChannelBindingData {
        ChannelBindingData::new(kind, (0u8..32).collect()).unwrap()
    }

    const EXPORTER: ChannelBindingType = ChannelBindingType::TlsExporter;

    #[test]
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
        let bound = Transport::tls(true, true);
        let unbound = Transport::tls(true, false);
        let clear = Transport::Cleartext;
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
        ];
        for (caps, greeting, transport, allow, want) in cases {
            let got = plan_with(Some(caps), greeting, transport, allow);
            assert_eq!(got, want, "{:?} {transport:?}", caps.sasl);
        }
        assert_eq!(
            plan(Some(&only_plus), None, true, false),
            Ok(LoginMethod::UserPass)
        );
        assert_eq!(Transport::tls(false, true), Transport::Cleartext);
        assert!(bound.has_channel_binding() && bound.is_tls());
        assert!(!unbound.has_channel_binding() && unbound.is_tls());
        assert!(!Transport::default().is_tls());
    }

    /// The first client message of a mechanism, as text.
    fn first(m: &mut Box<dyn Mechanism>) -> String {
        String::from_utf8(m.initial_response().unwrap().unwrap().expose().clone()).unwrap()
    }

    #[test]
    fn gs2_flag_follows_rfc5802_section_6() {
        let r = [5u8; 18];
        let exporter = binding(EXPORTER);
        let endpoint = binding(ChannelBindingType::TlsServerEndPoint);
        let plain_only = caps(&["SCRAM-SHA-256", "SCRAM-SHA-1"]);
        let with_plus = caps(&["SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1"]);
        let build = |name: &str, b: Option<&ChannelBindingData>, c: Option<&Capabilities>| {
            mechanism_with_binding(name, "u", "p", &r, b, c)
        };

        // No binding data: `n`, whatever the server offers.
        let mut m = build("SCRAM-SHA-256", None, Some(&with_plus)).unwrap();
        assert!(first(&mut m).starts_with("n,,n=u,r="));
        for name in ["SCRAM-SHA-256-PLUS", "scram-sha-1-plus"] {
            assert_eq!(
                build(name, None, Some(&with_plus)).err(),
                Some(SaslError::InvalidInput(NEEDS_CHANNEL_BINDING))
            );
            assert_eq!(
                mechanism(name, "u", "p", &r).err(),
                Some(SaslError::InvalidInput(NEEDS_CHANNEL_BINDING))
            );
        }

        // Binding data, -PLUS asked for: `p=<type>`.
        let mut m = build("SCRAM-SHA-1-PLUS", Some(&endpoint), Some(&plain_only)).unwrap();
        assert_eq!(m.name(), "SCRAM-SHA-1-PLUS");
        assert!(first(&mut m).starts_with("p=tls-server-end-point,,n=u,r="));
        let mut m = build("SCRAM-SHA-256-PLUS", Some(&exporter), None).unwrap();
        assert!(first(&mut m).starts_with("p=tls-exporter,,n=u,r="));

        // Binding data, plain SCRAM asked for, the server lists its -PLUS
        // variant: the client MUST use `p`, so the -PLUS mechanism is built.
        let mut m = build("scram-sha-256", Some(&exporter), Some(&with_plus)).unwrap();
        assert_eq!(m.name(), "SCRAM-SHA-256-PLUS");
        assert!(first(&mut m).starts_with("p=tls-exporter,,n=u,r="));

        // ... the server lists a -PLUS of another hash only, or none, or
        // CAPA was refused: `y` (the client thinks the server cannot bind).
        for c in [Some(&with_plus), Some(&plain_only), None] {
            let mut m = build("SCRAM-SHA-1", Some(&exporter), c).unwrap();
            assert_eq!(m.name(), "SCRAM-SHA-1");
            assert!(first(&mut m).starts_with("y,,n=u,r="));
        }

        // Other mechanisms ignore the binding.
        let m = build("CRAM-MD5", Some(&exporter), Some(&with_plus)).unwrap();
        assert_eq!(m.name(), "CRAM-MD5");
        assert_eq!(
            build("GSSAPI", Some(&exporter), None).err(),
            Some(SaslError::InvalidInput(UNSUPPORTED))
        );
    }
}

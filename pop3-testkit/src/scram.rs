//! The server side of SCRAM-SHA-1, SCRAM-SHA-256 and their `-PLUS`
//! channel-binding variants (RFC 5802, RFC 7677, RFC 5929, RFC 9266), as a
//! pure state machine: the session moves the lines, this checks them.
//!
//! Written from the RFCs independently of the client in `pop3-proto`, so
//! that a test of one against the other checks both.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// A SCRAM mechanism the server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScramMechanism {
    sha256: bool,
    plus: bool,
}

impl ScramMechanism {
    /// Parses `SCRAM-SHA-1`, `SCRAM-SHA-256`, `SCRAM-SHA-1-PLUS`,
    /// `SCRAM-SHA-256-PLUS` (already uppercased).
    pub(crate) fn parse(upper: &str) -> Option<ScramMechanism> {
        let (rest, plus) = match upper.strip_suffix("-PLUS") {
            Some(r) => (r, true),
            None => (upper, false),
        };
        let sha256 = match rest {
            "SCRAM-SHA-1" => false,
            "SCRAM-SHA-256" => true,
            _ => return None,
        };
        Some(ScramMechanism { sha256, plus })
    }

    /// Whether this is a `-PLUS` (channel binding) mechanism.
    pub(crate) fn is_plus(self) -> bool {
        self.plus
    }

    fn h(self, data: &[u8]) -> Vec<u8> {
        if self.sha256 {
            Sha256::digest(data).to_vec()
        } else {
            Sha1::digest(data).to_vec()
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
            // HMAC takes keys of any length.
            let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        if self.sha256 {
            run::<Hmac<Sha256>>(key, data)
        } else {
            run::<Hmac<Sha1>>(key, data)
        }
    }

    fn salted_password(self, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
        if self.sha256 {
            let mut out = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out);
            out.to_vec()
        } else {
            let mut out = [0u8; 20];
            pbkdf2::pbkdf2_hmac::<Sha1>(password.as_bytes(), salt, iterations, &mut out);
            out.to_vec()
        }
    }
}

/// What the server can bind to on this connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServerBinding {
    /// The server supports channel binding here (TLS is up and the option
    /// is on): a client's `y` flag is then a downgrade and fails.
    pub(crate) supported: bool,
    /// `tls-exporter` data (TLS 1.3 only).
    pub(crate) tls_exporter: Option<Vec<u8>>,
    /// `tls-server-end-point` data: the hash of the certificate the server
    /// presented.
    pub(crate) tls_server_end_point: Option<Vec<u8>>,
}

/// The `e=` value of a failed exchange (RFC 5802 §7 `server-error-value`).
pub(crate) type ScramFailure = &'static str;

/// One exchange, from the client-first-message on.
pub(crate) struct ScramServer {
    mechanism: ScramMechanism,
    binding: ServerBinding,
    iterations: u32,
    server_nonce: String,
    state: Option<AfterFirst>,
}

struct AfterFirst {
    user: String,
    gs2_header: Vec<u8>,
    cbind_data: Vec<u8>,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    salt: Vec<u8>,
}

/// The salt of a user: fixed per user name, so every login agrees.
fn salt_for(user: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"pop3-testkit SCRAM salt\0");
    h.update(user.as_bytes());
    h.finalize()[..16].to_vec()
}

/// `saslname` unescaping: `=2C` → `,`, `=3D` → `=`; any other `=` is
/// invalid.
fn unescape_saslname(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix("2C") {
            out.push(',');
            rest = r;
        } else if let Some(r) = after.strip_prefix("3D") {
            out.push('=');
            rest = r;
        } else {
            return None;
        }
    }
    out.push_str(rest);
    Some(out)
}

impl ScramServer {
    pub(crate) fn new(
        mechanism: ScramMechanism,
        binding: ServerBinding,
        iterations: u32,
        server_nonce: String,
    ) -> ScramServer {
        ScramServer {
            mechanism,
            binding,
            iterations,
            server_nonce,
            state: None,
        }
    }

    /// Checks the client-first-message (GS2 header against the mechanism
    /// and this connection's binding, RFC 5802 §6) and returns the
    /// server-first-message. `known_user` says whether a user exists.
    pub(crate) fn client_first(
        &mut self,
        message: &[u8],
        known_user: impl Fn(&str) -> bool,
    ) -> Result<Vec<u8>, ScramFailure> {
        let text = std::str::from_utf8(message).map_err(|_| "invalid-encoding")?;
        // gs2-header = gs2-cbind-flag "," [ authzid ] ","
        let (flag, rest) = text.split_once(',').ok_or("invalid-encoding")?;
        let (authzid, bare) = rest.split_once(',').ok_or("invalid-encoding")?;
        let gs2_header = &text[..flag.len() + authzid.len() + 2];

        let cbind_data = match (flag, self.mechanism.plus) {
            ("n", false) => Vec::new(),
            ("y", false) if self.binding.supported => {
                // The client believes we cannot bind: someone stripped
                // -PLUS from our CAPA.
                return Err("server-does-support-channel-binding");
            }
            ("y", false) => Vec::new(),
            ("n" | "y", true) => return Err("channel-binding-not-supported"),
            (p, false) if p.starts_with("p=") => return Err("channel-binding-not-supported"),
            (p, true) => {
                let name = p.strip_prefix("p=").ok_or("invalid-encoding")?;
                let data = match name {
                    "tls-exporter" => self.binding.tls_exporter.clone(),
                    "tls-server-end-point" => self.binding.tls_server_end_point.clone(),
                    _ => None,
                };
                data.ok_or("unsupported-channel-binding-type")?
            }
            _ => return Err("invalid-encoding"),
        };

        let authzid = match authzid {
            "" => None,
            a => Some(
                a.strip_prefix("a=")
                    .and_then(unescape_saslname)
                    .ok_or("invalid-username-encoding")?,
            ),
        };
        if bare.starts_with("m=") {
            return Err("extensions-not-supported");
        }
        let mut attrs = bare.split(',');
        let user = attrs
            .next()
            .and_then(|a| a.strip_prefix("n="))
            .and_then(unescape_saslname)
            .ok_or("invalid-username-encoding")?;
        let client_nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .filter(|n| !n.is_empty())
            .ok_or("invalid-encoding")?;
        if authzid.is_some_and(|a| a != user) {
            return Err("other-error");
        }
        if !known_user(&user) {
            return Err("unknown-user");
        }
        let nonce = format!("{client_nonce}{}", self.server_nonce);
        let salt = salt_for(&user);
        let server_first = format!(
            "r={nonce},s={},i={}",
            STANDARD.encode(&salt),
            self.iterations
        );
        self.state = Some(AfterFirst {
            user,
            gs2_header: gs2_header.as_bytes().to_vec(),
            cbind_data,
            client_first_bare: bare.to_string(),
            server_first: server_first.clone(),
            nonce,
            salt,
        });
        Ok(server_first.into_bytes())
    }

    /// Checks the client-final-message: the channel binding (`c=`), the
    /// nonce and the proof. Returns the user name and the
    /// server-final-message (`v=`).
    pub(crate) fn client_final(
        &mut self,
        message: &[u8],
        password_of: impl Fn(&str) -> Option<String>,
    ) -> Result<(String, Vec<u8>), ScramFailure> {
        let st = self.state.take().ok_or("other-error")?;
        let text = std::str::from_utf8(message).map_err(|_| "invalid-encoding")?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or("invalid-encoding")?;
        let mut attrs = without_proof.split(',');
        let c = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or("invalid-encoding")?;
        let r = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or("invalid-encoding")?;
        let mut expected_c = st.gs2_header.clone();
        expected_c.extend_from_slice(&st.cbind_data);
        let c = STANDARD.decode(c).map_err(|_| "invalid-encoding")?;
        if c != expected_c {
            return Err("channel-bindings-dont-match");
        }
        if r != st.nonce {
            return Err("other-error");
        }
        let proof = STANDARD.decode(proof).map_err(|_| "invalid-encoding")?;
        let password = password_of(&st.user).ok_or("unknown-user")?;

        let m = self.mechanism;
        let salted = m.salted_password(&password, &st.salt, self.iterations);
        let client_key = m.hmac(&salted, b"Client Key");
        let stored_key = m.h(&client_key);
        let auth_message = format!(
            "{},{},{without_proof}",
            st.client_first_bare, st.server_first
        );
        let client_signature = m.hmac(&stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err("invalid-proof");
        }
        let recovered: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        if m.h(&recovered) != stored_key {
            return Err("invalid-proof");
        }
        let server_key = m.hmac(&salted, b"Server Key");
        let server_signature = m.hmac(&server_key, auth_message.as_bytes());
        Ok((
            st.user,
            format!("v={}", STANDARD.encode(server_signature)).into_bytes(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mech(name: &str) -> ScramMechanism {
        ScramMechanism::parse(name).unwrap()
    }

    #[test]
    fn parses_names() {
        assert!(mech("SCRAM-SHA-256-PLUS").is_plus());
        assert!(!mech("SCRAM-SHA-1").is_plus());
        assert_eq!(ScramMechanism::parse("SCRAM-SHA-512"), None);
        assert_eq!(ScramMechanism::parse("PLAIN"), None);
    }

    #[test]
    fn saslname_unescaping() {
        assert_eq!(unescape_saslname("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(unescape_saslname("a=2"), None);
        assert_eq!(unescape_saslname("é=3D").as_deref(), Some("é="));
    }

    /// RFC 5802 §6 on the server side: which GS2 header is accepted for
    /// which mechanism and binding.
    #[test]
    fn gs2_header_rules() {
        let bound = ServerBinding {
            supported: true,
            tls_exporter: Some(vec![1; 32]),
            tls_server_end_point: Some(vec![2; 32]),
        };
        let unbound = ServerBinding::default();
        let cases: &[(&str, &ServerBinding, &str, Result<(), &str>)] = &[
            ("SCRAM-SHA-256", &unbound, "n,,n=u,r=abc", Ok(())),
            ("SCRAM-SHA-256", &unbound, "y,,n=u,r=abc", Ok(())),
            ("SCRAM-SHA-256", &bound, "n,,n=u,r=abc", Ok(())),
            (
                "SCRAM-SHA-256",
                &bound,
                "y,,n=u,r=abc",
                Err("server-does-support-channel-binding"),
            ),
            (
                "SCRAM-SHA-256",
                &bound,
                "p=tls-exporter,,n=u,r=abc",
                Err("channel-binding-not-supported"),
            ),
            (
                "SCRAM-SHA-256-PLUS",
                &bound,
                "p=tls-exporter,,n=u,r=abc",
                Ok(()),
            ),
            (
                "SCRAM-SHA-1-PLUS",
                &bound,
                "p=tls-server-end-point,a=u,n=u,r=abc",
                Ok(()),
            ),
            (
                "SCRAM-SHA-256-PLUS",
                &bound,
                "n,,n=u,r=abc",
                Err("channel-binding-not-supported"),
            ),
            (
                "SCRAM-SHA-256-PLUS",
                &bound,
                "p=tls-unique,,n=u,r=abc",
                Err("unsupported-channel-binding-type"),
            ),
            (
                "SCRAM-SHA-256-PLUS",
                &unbound,
                "p=tls-exporter,,n=u,r=abc",
                Err("unsupported-channel-binding-type"),
            ),
            (
                "SCRAM-SHA-256",
                &unbound,
                "n,a=x,n=u,r=abc",
                Err("other-error"),
            ),
            (
                "SCRAM-SHA-256",
                &unbound,
                "n,,n=nobody,r=abc",
                Err("unknown-user"),
            ),
            ("SCRAM-SHA-256", &unbound, "n,,n=u", Err("invalid-encoding")),
            (
                "SCRAM-SHA-256",
                &unbound,
                "x,,n=u,r=abc",
                Err("invalid-encoding"),
            ),
            (
                "SCRAM-SHA-256",
                &unbound,
                "n,,n=u=,r=abc",
                Err("invalid-username-encoding"),
            ),
            (
                "SCRAM-SHA-256",
                &unbound,
                "n,,m=x,n=u,r=abc",
                Err("extensions-not-supported"),
            ),
        ];
        for (name, binding, first, want) in cases {
            let mut s = ScramServer::new(mech(name), (*binding).clone(), 4096, "SRV".into());
            let got = s.client_first(first.as_bytes(), |u| u == "u").map(|_| ());
            assert_eq!(got, *want, "{name} {first}");
        }
    }

    /// The server side against known answers computed independently
    /// (Python `hashlib`/`hmac` from the RFC 5802 §3 formulas, with this
    /// server's salt for `user`), then the same exchange tampered with.
    #[test]
    fn known_answers_and_tampering() {
        let bound = ServerBinding {
            supported: true,
            tls_exporter: Some((1..=32).collect()),
            tls_server_end_point: None,
        };
        let password = |u: &str| (u == "user").then(|| "pencil".to_string());
        let cases = [
            (
                "SCRAM-SHA-256-PLUS",
                "p=tls-exporter,,n=user,r=rOprNGfwEbeRWgbNEkqO",
                "c=cD10bHMtZXhwb3J0ZXIsLAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g,r=rOprNGfwEbeRWgbNEkqOSRV,p=0MXuUk4N0bSFApvifypy9uHcPj6pqA1KFNJzE9QL9C8=",
                "v=k6BjIYFa7ukBa8p4Ir9NJzlaFA9hp9/eaRA1Yjmt3CM=",
            ),
            (
                "SCRAM-SHA-1",
                "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
                "c=biws,r=rOprNGfwEbeRWgbNEkqOSRV,p=E3BSR3WHidmd7HrNB2aBzdDZ4UA=",
                "v=qoX3nsec2ApK8J4t/x/ZmVznKjk=",
            ),
        ];
        let start = |name: &str, first: &str| {
            let mut s = ScramServer::new(mech(name), bound.clone(), 4096, "SRV".into());
            let server_first = s.client_first(first.as_bytes(), |u| u == "user").unwrap();
            assert_eq!(
                server_first,
                b"r=rOprNGfwEbeRWgbNEkqOSRV,s=ClItnhQdzrUvn1ktdnsc1Q==,i=4096"
            );
            s
        };
        for (name, first, last, v) in cases {
            let mut s = start(name, first);
            let (user, server_final) = s.client_final(last.as_bytes(), password).unwrap();
            assert_eq!(
                (user.as_str(), server_final.as_slice()),
                ("user", v.as_bytes())
            );

            // One changed byte of the binding, the nonce or the proof.
            let (c, rest) = last.split_once(",r=").unwrap();
            let (nonce, proof) = rest.split_once(",p=").unwrap();
            let other_c = if c == "c=biws" {
                "c=eSws"
            } else {
                "c=cD10bHMtZXhwb3J0ZXIsLAA="
            };
            let mut flipped = STANDARD.decode(proof).unwrap();
            flipped[0] ^= 1;
            let tampered = [
                (
                    format!("{other_c},r={nonce},p={proof}"),
                    "channel-bindings-dont-match",
                ),
                (format!("{c},r={nonce}X,p={proof}"), "other-error"),
                (
                    format!("{c},r={nonce},p={}", STANDARD.encode(&flipped)),
                    "invalid-proof",
                ),
                (format!("{c},r={nonce},p=AAAA"), "invalid-proof"),
                (format!("{c},r={nonce}"), "invalid-encoding"),
            ];
            for (message, want) in tampered {
                let mut s = start(name, first);
                assert_eq!(
                    s.client_final(message.as_bytes(), password).err(),
                    Some(want),
                    "{message}"
                );
            }
        }
    }
}

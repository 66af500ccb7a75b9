//! Why a TLS handshake failed, as a plain enum ([`TlsFailure`]): what a
//! caller matches on without downcasting a `rustls::Error`.

use std::fmt;
use std::io;

#[cfg(feature = "rustls")]
use pop3_rustls::rustls;

/// The cause of an [`Error::Tls`](crate::Error::Tls), from
/// [`Error::tls_failure`](crate::Error::tls_failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The certificate chain does not lead to a trusted CA (self-signed,
    /// private CA: `--ca-file` or a pin is the answer).
    UnknownIssuer,
    /// The certificate is not valid for the server name connected to.
    NameMismatch,
    /// The certificate has expired.
    Expired,
    /// The certificate is not valid yet (or the local clock is wrong).
    NotYetValid,
    /// The certificate is not the pinned one (`TlsOptions::pin_sha256`).
    PinMismatch,
    /// Another certificate problem (revoked, bad signature, bad encoding,
    /// unsupported algorithm, ...).
    BadCertificate,
    /// The handshake failed: the server sent an alert, or client and
    /// server share no protocol version or cipher suite.
    Handshake,
    /// The peer does not speak TLS at all: plain text arrived where a TLS
    /// record was expected (for example a plain-POP3 `+OK` greeting on a
    /// port used with implicit TLS).
    NotTls,
    /// The peer broke the TLS protocol in another way.
    Protocol,
    /// Anything else (including failures of a caller's own TLS upgrade
    /// through `stls_with`, which this crate cannot look into).
    Other,
}

impl TlsFailure {
    /// Whether the server's certificate was the problem.
    pub fn is_certificate(self) -> bool {
        matches!(
            self,
            TlsFailure::UnknownIssuer
                | TlsFailure::NameMismatch
                | TlsFailure::Expired
                | TlsFailure::NotYetValid
                | TlsFailure::PinMismatch
                | TlsFailure::BadCertificate
        )
    }

    /// Classifies the transport error of a TLS stream (rustls reports its
    /// errors inside an `io::Error`).
    pub fn of_io(e: &io::Error) -> TlsFailure {
        #[cfg(feature = "rustls")]
        if let Some(r) = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return TlsFailure::of_rustls(r);
        }
        let _ = e;
        TlsFailure::Other
    }

    /// Classifies a rustls error (including the certificate rejections of
    /// `pop3_rustls`' verifier).
    #[cfg(feature = "rustls")]
    pub fn of_rustls(e: &rustls::Error) -> TlsFailure {
        use rustls::{CertificateError as C, Error as E, InvalidMessage as M};
        match e {
            E::InvalidCertificate(c) => match c {
                C::UnknownIssuer => TlsFailure::UnknownIssuer,
                C::NotValidForName | C::NotValidForNameContext { .. } => TlsFailure::NameMismatch,
                C::Expired | C::ExpiredContext { .. } => TlsFailure::Expired,
                C::NotValidYet | C::NotValidYetContext { .. } => TlsFailure::NotYetValid,
                C::Other(o) => {
                    let inner: &(dyn std::error::Error + 'static) = &*o.0;
                    match inner.downcast_ref::<pop3_rustls::CertificateRejected>() {
                        Some(r) if r.pin_mismatch => TlsFailure::PinMismatch,
                        Some(r) => TlsFailure::of_rustls(&E::InvalidCertificate(r.cause.clone())),
                        None => TlsFailure::BadCertificate,
                    }
                }
                _ => TlsFailure::BadCertificate,
            },
            E::InvalidMessage(M::InvalidContentType | M::UnknownProtocolVersion) => {
                TlsFailure::NotTls
            }
            E::AlertReceived(_)
            | E::PeerIncompatible(_)
            | E::NoCertificatesPresented
            | E::HandshakeNotComplete
            | E::DecryptError => TlsFailure::Handshake,
            E::InvalidMessage(_)
            | E::PeerMisbehaved(_)
            | E::InappropriateMessage { .. }
            | E::InappropriateHandshakeMessage { .. }
            | E::PeerSentOversizedRecord => TlsFailure::Protocol,
            _ => TlsFailure::Other,
        }
    }
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsFailure::UnknownIssuer => "certificate issuer not trusted",
            TlsFailure::NameMismatch => "certificate not valid for this server name",
            TlsFailure::Expired => "certificate expired",
            TlsFailure::NotYetValid => "certificate not valid yet",
            TlsFailure::PinMismatch => "certificate does not match the pinned fingerprint",
            TlsFailure::BadCertificate => "bad certificate",
            TlsFailure::Handshake => "TLS handshake failed",
            TlsFailure::NotTls => "the server does not speak TLS",
            TlsFailure::Protocol => "TLS protocol error",
            TlsFailure::Other => "TLS failure",
        })
    }
}

#[cfg(all(test, feature = "rustls"))]
mod tests {
    use super::*;
    use rustls::{AlertDescription, CertificateError as C, Error as E, InvalidMessage as M};

    #[test]
    fn rustls_errors_map_to_their_cause() {
        let cases = [
            (
                E::InvalidCertificate(C::UnknownIssuer),
                TlsFailure::UnknownIssuer,
            ),
            (
                E::InvalidCertificate(C::NotValidForName),
                TlsFailure::NameMismatch,
            ),
            (E::InvalidCertificate(C::Expired), TlsFailure::Expired),
            (
                E::InvalidCertificate(C::NotValidYet),
                TlsFailure::NotYetValid,
            ),
            (
                E::InvalidCertificate(C::Revoked),
                TlsFailure::BadCertificate,
            ),
            (E::InvalidMessage(M::InvalidContentType), TlsFailure::NotTls),
            (
                E::InvalidMessage(M::UnknownProtocolVersion),
                TlsFailure::NotTls,
            ),
            (E::InvalidMessage(M::MessageTooShort), TlsFailure::Protocol),
            (
                E::AlertReceived(AlertDescription::HandshakeFailure),
                TlsFailure::Handshake,
            ),
            (E::General(String::from("x")), TlsFailure::Other),
        ];
        for (e, want) in cases {
            assert_eq!(TlsFailure::of_rustls(&e), want, "{e:?}");
            let io = io::Error::new(io::ErrorKind::InvalidData, e);
            assert_eq!(TlsFailure::of_io(&io), want);
            assert_eq!(
                crate::Error::Tls(io).tls_failure(),
                Some(want),
                "through the adapters' error"
            );
        }
        assert_eq!(
            TlsFailure::of_io(&io::Error::other("no rustls")),
            TlsFailure::Other
        );
        assert!(TlsFailure::Expired.is_certificate());
        assert!(!TlsFailure::NotTls.is_certificate());
    }

    #[test]
    fn the_verifier_s_rejection_keeps_the_webpki_cause() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let info = pop3_rustls::CertificateInfo::parse(cert.der());
        for (cause, pin, want) in [
            (
                C::ExpiredContext {
                    time: rustls::pki_types::UnixTime::since_unix_epoch(
                        std::time::Duration::from_secs(2),
                    ),
                    not_after: rustls::pki_types::UnixTime::since_unix_epoch(
                        std::time::Duration::from_secs(1),
                    ),
                },
                false,
                TlsFailure::Expired,
            ),
            (C::UnknownIssuer, false, TlsFailure::UnknownIssuer),
            (
                C::ApplicationVerificationFailure,
                true,
                TlsFailure::PinMismatch,
            ),
        ] {
            let r = pop3_rustls::CertificateRejected {
                cause,
                pin_mismatch: pin,
                certificate: info.clone(),
            };
            let e = E::InvalidCertificate(C::Other(rustls::OtherError(std::sync::Arc::new(r))));
            assert_eq!(TlsFailure::of_rustls(&e), want);
            let err = crate::Error::Tls(io::Error::new(io::ErrorKind::InvalidData, e));
            let found = err.rejected_certificate().expect("found");
            assert_eq!(found.certificate.sha256, info.sha256);
        }
    }
}

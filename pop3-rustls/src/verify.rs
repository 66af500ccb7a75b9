//! The server-certificate verifier of every configuration built from
//! [`TlsOptions`](crate::TlsOptions): webpki verification (or a pin), and
//! on failure the presented certificate's subject, issuer and fingerprint
//! in the error ([`CertificateRejected`]).

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};

use crate::cert::{CertificateInfo, Fingerprint};

/// Why the server's certificate was refused, with the certificate: what
/// the rustls error of a failed handshake carries (inside
/// `rustls::Error::InvalidCertificate(CertificateError::Other(..))`) when
/// the configuration came from [`TlsOptions`](crate::TlsOptions). Find it
/// with [`CertificateRejected::find`].
#[derive(Debug, Clone)]
pub struct CertificateRejected {
    /// What webpki said (`UnknownIssuer`, `NotValidForName`, `Expired`,
    /// ...), or `ApplicationVerificationFailure` for a pin mismatch.
    pub cause: CertificateError,
    /// Whether the certificate was refused because it did not match the
    /// pinned fingerprint.
    pub pin_mismatch: bool,
    /// The server's (end-entity) certificate.
    pub certificate: CertificateInfo,
}

impl CertificateRejected {
    /// The rejection inside an error chain that holds a `rustls::Error`
    /// (directly, or inside an `io::Error` as rustls' streams return it).
    pub fn find<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a CertificateRejected> {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
        let mut depth = 0;
        while let Some(err) = cur {
            if let Some(r) = err.downcast_ref::<CertificateRejected>() {
                return Some(r);
            }
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                if let Some(inner) = io.get_ref() {
                    cur = Some(inner);
                    depth += 1;
                    if depth > 8 {
                        return None;
                    }
                    continue;
                }
            }
            if let Some(rustls::Error::InvalidCertificate(CertificateError::Other(o))) =
                err.downcast_ref::<rustls::Error>()
            {
                let inner: &(dyn std::error::Error + 'static) = &*o.0;
                return inner.downcast_ref::<CertificateRejected>();
            }
            cur = err.source();
            depth += 1;
            if depth > 8 {
                return None;
            }
        }
        None
    }
}

impl fmt::Display for CertificateRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pin_mismatch {
            write!(
                f,
                "the certificate does not match the pinned fingerprint ({})",
                self.certificate
            )
        } else {
            write!(f, "{} ({})", self.cause, self.certificate)
        }
    }
}

impl std::error::Error for CertificateRejected {}

/// webpki verification, or (with a pin) acceptance of exactly the pinned
/// certificate; handshake signatures are always checked.
#[derive(Debug)]
pub(crate) struct Verifier {
    /// `None` when there are no trust anchors (only a pin).
    pub(crate) webpki: Option<Arc<WebPkiServerVerifier>>,
    pub(crate) pin: Option<Fingerprint>,
    pub(crate) algorithms: WebPkiSupportedAlgorithms,
}

impl Verifier {
    fn reject(
        end_entity: &CertificateDer<'_>,
        cause: CertificateError,
        pin_mismatch: bool,
    ) -> rustls::Error {
        let r = CertificateRejected {
            cause,
            pin_mismatch,
            certificate: CertificateInfo::parse(end_entity),
        };
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(r))))
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(pin) = &self.pin {
            // As mpop's --tls-fingerprint: the pinned certificate is trusted
            // whatever its issuer, names and dates; any other is refused.
            return if Fingerprint::of(end_entity) == *pin {
                Ok(ServerCertVerified::assertion())
            } else {
                Err(Self::reject(
                    end_entity,
                    CertificateError::ApplicationVerificationFailure,
                    true,
                ))
            };
        }
        let Some(webpki) = &self.webpki else {
            return Err(Self::reject(
                end_entity,
                CertificateError::UnknownIssuer,
                false,
            ));
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(cause)) => {
                Err(Self::reject(end_entity, cause, false))
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TlsOptions;
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use rustls::{ClientConnection, ServerConnection};

    struct Ca {
        cert: rcgen::Certificate,
        key: rcgen::KeyPair,
    }

    fn ca() -> Ca {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Verify Test CA");
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// A leaf for `pop.test` signed by `ca`, valid from `from` to `to`
    /// (years).
    fn leaf(ca: &Ca, from: i32, to: i32) -> (Vec<u8>, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["pop.test".to_string()]).unwrap();
        params.not_before = rcgen::date_time_ymd(from, 1, 1);
        params.not_after = rcgen::date_time_ymd(to, 1, 1);
        let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
        (cert.der().to_vec(), key)
    }

    /// An in-memory handshake of a client configured by `options` with a
    /// server presenting `cert`; the client's error, if any.
    fn handshake(
        options: &TlsOptions,
        name: &str,
        cert: &[u8],
        key: &rcgen::KeyPair,
    ) -> Result<(), rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert.to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        let mut server = ServerConnection::new(Arc::new(server_cfg)).unwrap();
        let mut client = ClientConnection::new(
            options.client_config().unwrap(),
            options.server_name_for(name).unwrap(),
        )
        .unwrap();
        for _ in 0..10 {
            let mut buf = Vec::new();
            client.write_tls(&mut buf).unwrap();
            server.read_tls(&mut &buf[..]).unwrap();
            if server.process_new_packets().is_err() {
                // The server's alert still goes back; the client's own
                // error is what we want, so keep driving it.
            }
            let mut buf = Vec::new();
            server.write_tls(&mut buf).unwrap();
            client.read_tls(&mut &buf[..]).unwrap();
            client.process_new_packets()?;
            if !client.is_handshaking() {
                return Ok(());
            }
        }
        panic!("handshake did not finish");
    }

    fn rejection(e: rustls::Error) -> CertificateRejected {
        let e: Box<dyn std::error::Error> = Box::new(e);
        CertificateRejected::find(&*e)
            .unwrap_or_else(|| panic!("no rejection in {e:?}"))
            .clone()
    }

    fn trusting(ca: &Ca) -> TlsOptions {
        TlsOptions::new()
            .without_default_roots()
            .add_ca_der(ca.cert.der().to_vec())
    }

    #[test]
    fn webpki_verdicts_carry_the_certificate() {
        let ca = ca();
        let (good, key) = leaf(&ca, 2020, 2090);
        handshake(&trusting(&ca), "pop.test", &good, &key).unwrap();

        let r = rejection(handshake(&TlsOptions::new(), "pop.test", &good, &key).unwrap_err());
        assert_eq!(r.cause, CertificateError::UnknownIssuer);
        assert_eq!(r.certificate.sha256, Fingerprint::of(&good));
        assert_eq!(r.certificate.issuer.as_deref(), Some("CN=Verify Test CA"));
        assert!(!r.pin_mismatch);

        let r = rejection(handshake(&trusting(&ca), "other.test", &good, &key).unwrap_err());
        assert!(
            matches!(
                r.cause,
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            ),
            "{:?}",
            r.cause
        );

        let (old, key) = leaf(&ca, 1990, 2000);
        let r = rejection(handshake(&trusting(&ca), "pop.test", &old, &key).unwrap_err());
        assert!(
            matches!(
                r.cause,
                CertificateError::Expired | CertificateError::ExpiredContext { .. }
            ),
            "{:?}",
            r.cause
        );
        assert_eq!(
            r.certificate.not_after.as_deref(),
            Some("2000-01-01 00:00:00 UTC")
        );

        let (future, key) = leaf(&ca, 2090, 2095);
        let r = rejection(handshake(&trusting(&ca), "pop.test", &future, &key).unwrap_err());
        assert!(
            matches!(
                r.cause,
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. }
            ),
            "{:?}",
            r.cause
        );
    }

    #[test]
    fn a_pin_accepts_exactly_its_certificate_instead_of_verification() {
        let ca = ca();
        // Expired, untrusted CA, wrong name: the pin accepts it anyway.
        let (old, key) = leaf(&ca, 1990, 2000);
        let pinned = TlsOptions::new()
            .without_default_roots()
            .pin_sha256(Fingerprint::of(&old));
        handshake(&pinned, "whatever.test", &old, &key).unwrap();
        // Any other certificate is refused, even one the CA would pass.
        let (good, key) = leaf(&ca, 2020, 2090);
        let pinned = trusting(&ca).pin_sha256(Fingerprint::of(&old));
        let r = rejection(handshake(&pinned, "pop.test", &good, &key).unwrap_err());
        assert!(r.pin_mismatch);
        assert_eq!(r.certificate.sha256, Fingerprint::of(&good));
        assert!(r.to_string().contains("pinned"), "{r}");
    }

    #[test]
    fn no_trust_anchor_and_no_pin_is_still_a_config_error() {
        assert!(matches!(
            TlsOptions::new().without_default_roots().client_config(),
            Err(crate::TlsConfigError::NoTrustAnchors)
        ));
        assert!(TlsOptions::new()
            .without_default_roots()
            .pin_sha256(Fingerprint::from([1; 32]))
            .client_config()
            .is_ok());
    }
}

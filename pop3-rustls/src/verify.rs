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

//! Test certificate authority (rcgen) and rustls configurations.

use std::io;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A throw-away certificate authority plus a leaf certificate for
/// `127.0.0.1`, `::1` and `localhost`, signed by it (ECDSA P-256).
///
/// Servers with TLS enabled present the leaf; clients trust
/// [`cert_pem`](Self::cert_pem) / [`cert_der`](Self::cert_der) (or use
/// [`client_config`](Self::client_config)). Cloning is cheap enough for
/// tests (it holds DER/PEM bytes only).
#[derive(Clone)]
pub struct TestCa {
    ca_der: Vec<u8>,
    ca_pem: String,
    leaf_der: Vec<u8>,
    leaf_pem: String,
    leaf_key_der: Vec<u8>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

fn rc(e: rcgen::Error) -> io::Error {
    io::Error::other(e)
}

impl TestCa {
    /// Generates a new CA and leaf certificate.
    ///
    /// # Panics
    ///
    /// If key generation or signing fails (it does not, short of a broken
    /// `ring`); use [`try_generate`](Self::try_generate) to get an error
    /// instead.
    pub fn generate() -> TestCa {
        TestCa::try_generate().expect("pop3-testkit: generating test certificates")
    }

    /// Generates a new CA and leaf certificate.
    pub fn try_generate() -> io::Result<TestCa> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(rc)?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "pop3-testkit test CA");
        ca_params
            .distinguished_name
            .push(DnType::OrganizationName, "pop3-testkit");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().map_err(rc)?;
        let ca_cert = ca_params.self_signed(&ca_key).map_err(rc)?;

        let mut leaf_params = CertificateParams::new(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ])
        .map_err(rc)?;
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        leaf_params.is_ca = IsCa::NoCa;
        leaf_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate().map_err(rc)?;
        let leaf_cert = leaf_params
            .signed_by(&leaf_key, &ca_cert, &ca_key)
            .map_err(rc)?;

        Ok(TestCa {
            ca_der: ca_cert.der().to_vec(),
            ca_pem: ca_cert.pem(),
            leaf_der: leaf_cert.der().to_vec(),
            leaf_pem: leaf_cert.pem(),
            leaf_key_der: leaf_key.serialize_der(),
        })
    }

    /// The CA certificate in PEM (what a client should trust).
    pub fn cert_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate in DER (what a client should trust).
    pub fn cert_der(&self) -> &[u8] {
        &self.ca_der
    }

    /// The server (leaf) certificate in PEM.
    pub fn leaf_cert_pem(&self) -> &str {
        &self.leaf_pem
    }

    /// The server (leaf) certificate in DER.
    pub fn leaf_cert_der(&self) -> &[u8] {
        &self.leaf_der
    }

    /// The server (leaf) private key, PKCS#8 DER.
    pub fn leaf_key_der(&self) -> &[u8] {
        &self.leaf_key_der
    }

    /// A root store containing only this CA.
    pub fn root_store(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        // Our own freshly generated certificate always parses.
        let _ = roots.add(CertificateDer::from(self.ca_der.clone()));
        roots
    }

    /// A rustls client configuration (ring provider, TLS 1.2 and 1.3) that
    /// trusts only this CA.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(self.root_store())
            .with_no_client_auth();
        Arc::new(cfg)
    }

    /// The rustls server configuration presenting the leaf certificate
    /// (ring provider, TLS 1.2 and 1.3), as used by the test server.
    pub fn server_config(&self) -> io::Result<Arc<rustls::ServerConfig>> {
        self.server_config_for(rustls::DEFAULT_VERSIONS)
    }

    /// [`server_config`](Self::server_config) with TLS 1.2 only.
    pub(crate) fn server_config_tls12(&self) -> io::Result<Arc<rustls::ServerConfig>> {
        self.server_config_for(&[&rustls::version::TLS12])
    }

    fn server_config_for(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> io::Result<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(self.leaf_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key_der.clone())),
            )
            .map_err(io::Error::other)?;
        Ok(Arc::new(cfg))
    }
}

//! rustls glue for the POP3 adapters: [`TlsOptions`] (trust anchors,
//! client certificate, server name) → an `Arc<rustls::ClientConfig>` with
//! the `ring` provider, and [`channel_binding`] (the RFC 9266
//! `tls-exporter` data of an established connection, for SCRAM `-PLUS`).
//!
//! This is the only crate of the workspace that depends on rustls: an
//! adapter built without its `rustls` feature (plain TCP, or "bring your
//! own TLS" through `stls_with`) pulls in none of it.
//!
//! ```
//! use pop3_rustls::TlsOptions;
//! let options = TlsOptions::new().server_name("pop.example.com");
//! let config = options.client_config().unwrap(); // webpki roots
//! assert!(options.server_name_for("10.0.0.1").is_ok());
//! # let _ = config;
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

pub use rustls;

/// Which built-in trust anchors to start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Roots {
    /// The operating system's store, or the compiled-in roots when it is
    /// empty or unreadable (the default).
    System,
    /// Mozilla's roots compiled in (`webpki-roots`).
    Webpki,
    /// The operating system's store (`rustls-native-certs`) only.
    Native,
    /// None: only the CAs added explicitly.
    Empty,
}

#[derive(Clone)]
enum CaSource {
    PemFile(PathBuf),
    Pem(Vec<u8>),
    Der(CertificateDer<'static>),
}

#[derive(Clone)]
enum ClientAuth {
    PemFiles { cert: PathBuf, key: PathBuf },
    Pem { cert: Vec<u8>, key: Vec<u8> },
}

/// How to build the rustls client configuration: trust anchors, client
/// certificate, server name. A builder: every method takes and returns
/// `self`; nothing is read or parsed until [`TlsOptions::client_config`].
///
/// Defaults: the system's trust anchors (below), full certificate and
/// host-name verification, TLS 1.2 and 1.3, the `ring` crypto provider, no
/// client certificate.
///
/// # Trust store
///
/// By default ([`TlsOptions::with_system_roots`]) the operating system's
/// certificate store is trusted, through `rustls-native-certs` (feature
/// `native-roots`, on by default): the platform store on macOS and
/// Windows, the distribution's bundle on Linux and the BSDs, and the
/// `SSL_CERT_FILE` / `SSL_CERT_DIR` environment variables when set
/// (OpenSSL's convention, so a corporate CA installed for every other
/// program works here too). When the OS store is empty or unreadable (a
/// minimal container without `ca-certificates`), the Mozilla roots
/// compiled in by `webpki-roots` (feature `webpki-roots`, on by default)
/// are used instead, so TLS still works out of the box. When
/// `SSL_CERT_FILE` or `SSL_CERT_DIR` is set but yields no certificate,
/// that is an error ([`TlsConfigError::NativeRoots`]), never a silent
/// fallback: an explicit choice is not second-guessed.
///
/// Why this order: the OS store is what the administrator maintains
/// (revocations, private CAs, distrust decisions reach it with system
/// updates); the compiled-in bundle only changes when this program is
/// rebuilt. `rustls-platform-verifier` would also use the OS verifier
/// (revocation checks on some platforms) but replaces rustls' verifier
/// and brings more platform code; reading the store keeps one verifier,
/// the same on every platform. Choose exactly one source with
/// [`TlsOptions::with_native_roots`], [`TlsOptions::with_webpki_roots`]
/// or [`TlsOptions::without_default_roots`].
///
/// ```
/// use pop3_rustls::TlsOptions;
///
/// // The default: OS store (honouring SSL_CERT_FILE), webpki fallback.
/// let default = TlsOptions::new();
/// // A private server: trust only its CA.
/// let private = TlsOptions::new()
///     .without_default_roots()
///     .add_ca_pem_file("/etc/pop3/ca.pem")
///     .server_name("mail.internal");
/// # let _ = (default, private);
/// ```
///
/// There is deliberately no switch to disable verification; trust a
/// private CA with [`TlsOptions::add_ca_pem_file`] instead.
///
/// This is what poplib's `POP3_SSL(keyfile=, certfile=, context=)` did:
/// `client_auth_pem_files(certfile, keyfile)`, and
/// [`TlsOptions::from_client_config`] for a fully custom context.
#[derive(Clone)]
pub struct TlsOptions {
    roots: Roots,
    cas: Vec<CaSource>,
    client_auth: Option<ClientAuth>,
    server_name: Option<String>,
    custom: Option<Arc<ClientConfig>>,
    pin: Option<Fingerprint>,
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("roots", &self.roots)
            .field("extra_cas", &self.cas.len())
            .field("client_auth", &self.client_auth.is_some())
            .field("server_name", &self.server_name)
            .field("custom_config", &self.custom.is_some())
            .field("pin", &self.pin)
            .finish()
    }
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions::new()
    }
}

impl TlsOptions {
    /// Defaults: the system's roots with the compiled-in ones as fallback
    /// (see [the trust store](TlsOptions#trust-store); with only one of the
    /// `native-roots` / `webpki-roots` features, that one; with neither,
    /// none), verification on, no client certificate.
    pub fn new() -> TlsOptions {
        let roots = if cfg!(feature = "native-roots") {
            Roots::System
        } else if cfg!(feature = "webpki-roots") {
            Roots::Webpki
        } else {
            Roots::Empty
        };
        TlsOptions {
            roots,
            cas: Vec::new(),
            client_auth: None,
            server_name: None,
            custom: None,
            pin: None,
        }
    }

    /// Uses a ready-made rustls configuration as is (every other setting
    /// except [`TlsOptions::server_name`] is then ignored).
    pub fn from_client_config(config: Arc<ClientConfig>) -> TlsOptions {
        TlsOptions {
            custom: Some(config),
            ..TlsOptions::new()
        }
    }

    /// The default: the operating system's certificate store, or the
    /// compiled-in webpki roots when that is empty or unreadable (see
    /// [the trust store](TlsOptions#trust-store)).
    pub fn with_system_roots(mut self) -> TlsOptions {
        self.roots = Roots::System;
        self
    }

    /// Trusts the operating system's certificate store only, with no
    /// fallback: an empty store is an error (needs the `native-roots`
    /// feature; without it, [`TlsOptions::client_config`] returns
    /// [`TlsConfigError::NativeRootsUnavailable`]).
    pub fn with_native_roots(mut self) -> TlsOptions {
        self.roots = Roots::Native;
        self
    }

    /// Trusts the compiled-in webpki (Mozilla) roots (needs the
    /// `webpki-roots` feature, on by default).
    pub fn with_webpki_roots(mut self) -> TlsOptions {
        self.roots = Roots::Webpki;
        self
    }

    /// Trusts no built-in roots: only the CAs added with `add_ca_*`.
    pub fn without_default_roots(mut self) -> TlsOptions {
        self.roots = Roots::Empty;
        self
    }

    /// Also trusts every certificate in this PEM file (read when the
    /// configuration is built).
    pub fn add_ca_pem_file(mut self, path: impl AsRef<Path>) -> TlsOptions {
        self.cas
            .push(CaSource::PemFile(path.as_ref().to_path_buf()));
        self
    }

    /// Also trusts every certificate in these PEM bytes.
    pub fn add_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> TlsOptions {
        self.cas.push(CaSource::Pem(pem.into()));
        self
    }

    /// Also trusts this DER certificate.
    pub fn add_ca_der(mut self, der: impl Into<Vec<u8>>) -> TlsOptions {
        self.cas
            .push(CaSource::Der(CertificateDer::from(der.into())));
        self
    }

    /// Presents a client certificate: `cert` is a PEM file with the
    /// certificate chain (leaf first), `key` a PEM file with its private key
    /// (PKCS#8, PKCS#1 or SEC1). poplib's `certfile` / `keyfile`.
    pub fn client_auth_pem_files(
        mut self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> TlsOptions {
        self.client_auth = Some(ClientAuth::PemFiles {
            cert: cert.as_ref().to_path_buf(),
            key: key.as_ref().to_path_buf(),
        });
        self
    }

    /// Presents a client certificate given as PEM bytes (chain, then key).
    pub fn client_auth_pem(
        mut self,
        cert_chain: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
    ) -> TlsOptions {
        self.client_auth = Some(ClientAuth::Pem {
            cert: cert_chain.into(),
            key: key.into(),
        });
        self
    }

    /// Verifies the server certificate against this name (and sends it as
    /// SNI) instead of the host name that was connected to. Useful when
    /// connecting to an IP address or through a tunnel.
    pub fn server_name(mut self, name: impl Into<String>) -> TlsOptions {
        self.server_name = Some(name.into());
        self
    }

    /// Pins the server certificate: only the certificate with this SHA-256
    /// fingerprint is accepted, and it is accepted **instead of** CA
    /// verification (whatever its issuer, names or dates), as mpop's
    /// `--tls-fingerprint` and fetchmail's `--sslfingerprint` do. That is
    /// what a pin is for: a self-signed or private-CA server whose
    /// certificate the user checked once. The TLS handshake signatures
    /// are still verified, so the server must hold the pinned
    /// certificate's private key. The trust anchors are then unused.
    /// Ignored with [`TlsOptions::from_client_config`] (that configuration
    /// has its own verifier).
    pub fn pin_sha256(mut self, fingerprint: Fingerprint) -> TlsOptions {
        self.pin = Some(fingerprint);
        self
    }

    /// The pinned fingerprint, if any.
    pub fn pinned(&self) -> Option<&Fingerprint> {
        self.pin.as_ref()
    }

    /// The name the certificate is checked against: the override, or
    /// `host`. IP addresses are accepted (checked against the certificate's
    /// IP SANs).
    pub fn server_name_for(&self, host: &str) -> Result<ServerName<'static>, TlsConfigError> {
        let name = self.server_name.as_deref().unwrap_or(host);
        // `[::1]` style hosts: strip the brackets.
        let name = name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .unwrap_or(name);
        ServerName::try_from(name.to_string())
            .map_err(|_| TlsConfigError::InvalidServerName(name.to_string()))
    }

    /// Builds the rustls client configuration (reads the files now).
    ///
    /// Uses the `ring` provider explicitly, so it never depends on (or
    /// panics about) a process-wide default provider.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TlsConfigError> {
        if let Some(c) = &self.custom {
            return Ok(c.clone());
        }
        let mut store = RootCertStore::empty();
        match self.roots {
            Roots::Empty => {}
            Roots::System => add_system_roots(&mut store)?,
            Roots::Webpki => add_webpki_roots(&mut store)?,
            Roots::Native => add_native_roots(&mut store)?,
        }
        for ca in &self.cas {
            let certs: Vec<CertificateDer<'static>> = match ca {
                CaSource::Der(d) => vec![d.clone()],
                CaSource::Pem(bytes) => {
                    collect_certs(CertificateDer::pem_slice_iter(bytes), "CA PEM data")?
                }
                CaSource::PemFile(path) => {
                    let iter = CertificateDer::pem_file_iter(path)
                        .map_err(|e| TlsConfigError::pem(path.display().to_string(), e))?;
                    collect_certs(iter, &path.display().to_string())?
                }
            };
            for c in certs {
                store.add(c).map_err(TlsConfigError::Rustls)?;
            }
        }
        if store.is_empty() && self.pin.is_none() {
            return Err(TlsConfigError::NoTrustAnchors);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let webpki = if store.is_empty() {
            None
        } else {
            Some(
                rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::new(store),
                    provider.clone(),
                )
                .build()
                .map_err(|e| TlsConfigError::Rustls(rustls::Error::General(e.to_string())))?,
            )
        };
        let verifier = verify::Verifier {
            webpki,
            pin: self.pin,
            algorithms: provider.signature_verification_algorithms,
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsConfigError::Rustls)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier));
        let config = match &self.client_auth {
            None => builder.with_no_client_auth(),
            Some(auth) => {
                let (chain, key) = load_client_auth(auth)?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(TlsConfigError::Rustls)?
            }
        };
        Ok(Arc::new(config))
    }
}

fn collect_certs(
    iter: impl Iterator<Item = Result<CertificateDer<'static>, rustls::pki_types::pem::Error>>,
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs = iter
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsConfigError::pem(what.to_string(), e))?;
    if certs.is_empty() {
        return Err(TlsConfigError::NoCertificates(what.to_string()));
    }
    Ok(certs)
}

fn load_client_auth(
    auth: &ClientAuth,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsConfigError> {
    match auth {
        ClientAuth::PemFiles { cert, key } => {
            let what = cert.display().to_string();
            let iter = CertificateDer::pem_file_iter(cert)
                .map_err(|e| TlsConfigError::pem(what.clone(), e))?;
            let chain = collect_certs(iter, &what)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| TlsConfigError::pem(key.display().to_string(), e))?;
            Ok((chain, key))
        }
        ClientAuth::Pem { cert, key } => {
            let chain = collect_certs(
                CertificateDer::pem_slice_iter(cert),
                "client certificate PEM",
            )?;
            let key = PrivateKeyDer::from_pem_slice(key)
                .map_err(|e| TlsConfigError::pem("client key PEM".to_string(), e))?;
            Ok((chain, key))
        }
    }
}

#[cfg(feature = "webpki-roots")]
fn add_webpki_roots(store: &mut RootCertStore) -> Result<(), TlsConfigError> {
    store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    Ok(())
}

#[cfg(not(feature = "webpki-roots"))]
fn add_webpki_roots(_: &mut RootCertStore) -> Result<(), TlsConfigError> {
    Err(TlsConfigError::WebpkiRootsUnavailable)
}

#[cfg(feature = "native-roots")]
fn add_native_roots(store: &mut RootCertStore) -> Result<(), TlsConfigError> {
    add_loaded(store, rustls_native_certs::load_native_certs())
}

/// Adds what was loaded from the OS store; nothing usable is an error.
#[cfg(feature = "native-roots")]
fn add_loaded(
    store: &mut RootCertStore,
    loaded: rustls_native_certs::CertificateResult,
) -> Result<(), TlsConfigError> {
    // Individual unparsable certificates in the OS store are skipped, as
    // every TLS client does; only an empty result is an error.
    let (added, _ignored) = store.add_parsable_certificates(loaded.certs);
    if added == 0 {
        let detail = loaded
            .errors
            .first()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "no certificates found".to_string());
        return Err(TlsConfigError::NativeRoots(detail));
    }
    Ok(())
}

/// Whether the user chose the OS store's location explicitly (OpenSSL's
/// variables, which `rustls-native-certs` reads first).
#[cfg(feature = "native-roots")]
fn explicit_cert_env() -> bool {
    ["SSL_CERT_FILE", "SSL_CERT_DIR"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
}

/// The OS store, else (empty or unreadable, and not chosen explicitly)
/// the compiled-in roots.
fn add_system_roots(store: &mut RootCertStore) -> Result<(), TlsConfigError> {
    #[cfg(feature = "native-roots")]
    {
        let loaded = rustls_native_certs::load_native_certs();
        system_or_fallback(store, loaded, explicit_cert_env())
    }
    #[cfg(not(feature = "native-roots"))]
    {
        add_webpki_roots(store)
    }
}

#[cfg(feature = "native-roots")]
fn system_or_fallback(
    store: &mut RootCertStore,
    loaded: rustls_native_certs::CertificateResult,
    explicit: bool,
) -> Result<(), TlsConfigError> {
    match add_loaded(store, loaded) {
        Ok(()) => Ok(()),
        Err(e) if explicit || !cfg!(feature = "webpki-roots") => Err(e),
        Err(_) => add_webpki_roots(store),
    }
}

#[cfg(not(feature = "native-roots"))]
fn add_native_roots(_: &mut RootCertStore) -> Result<(), TlsConfigError> {
    Err(TlsConfigError::NativeRootsUnavailable)
}

/// Why a TLS client configuration could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// A PEM file could not be read or parsed.
    Pem {
        /// Which file or input.
        what: String,
        /// The parser's error.
        error: rustls::pki_types::pem::Error,
    },
    /// A PEM input held no certificate.
    NoCertificates(String),
    /// No trust anchor at all (no built-in roots and no CA added).
    NoTrustAnchors,
    /// The OS certificate store could not be loaded.
    NativeRoots(String),
    /// [`TlsOptions::with_native_roots`] without the `native-roots` feature.
    NativeRootsUnavailable,
    /// [`TlsOptions::with_webpki_roots`] without the `webpki-roots` feature.
    WebpkiRootsUnavailable,
    /// The host (or override) is not a valid DNS name or IP address.
    InvalidServerName(String),
    /// rustls refused the configuration (bad CA or client key, ...).
    Rustls(rustls::Error),
}

impl TlsConfigError {
    fn pem(what: String, error: rustls::pki_types::pem::Error) -> Self {
        TlsConfigError::Pem { what, error }
    }
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsConfigError::Pem { what, error } => {
                write!(f, "cannot read PEM from {what}: {error}")
            }
            TlsConfigError::NoCertificates(what) => write!(f, "no certificate found in {what}"),
            TlsConfigError::NoTrustAnchors => f.write_str("no trusted CA certificates configured"),
            TlsConfigError::NativeRoots(e) => {
                write!(f, "cannot load the OS certificate store: {e}")
            }
            TlsConfigError::NativeRootsUnavailable => {
                f.write_str("native roots requested but the `native-roots` feature is off")
            }
            TlsConfigError::WebpkiRootsUnavailable => {
                f.write_str("webpki roots requested but the `webpki-roots` feature is off")
            }
            TlsConfigError::InvalidServerName(n) => write!(f, "invalid TLS server name {n:?}"),
            TlsConfigError::Rustls(e) => write!(f, "TLS configuration refused: {e}"),
        }
    }
}

impl std::error::Error for TlsConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsConfigError::Pem { error, .. } => Some(error),
            TlsConfigError::Rustls(e) => Some(e),
            _ => None,
        }
    }
}

/// The TLS parameters of a connection: the rustls configuration and the
/// name the server certificate must match. Kept by the adapters for a
/// later `stls()`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TlsSetup {
    /// The rustls client configuration.
    pub config: Arc<ClientConfig>,
    /// The name verified (and sent as SNI).
    pub name: ServerName<'static>,
}

impl TlsSetup {
    /// Builds the configuration of `tls` for a server called `host` (or
    /// the override in `tls`).
    pub fn new(tls: &TlsOptions, host: &str) -> Result<TlsSetup, TlsConfigError> {
        Ok(TlsSetup {
            config: tls.client_config()?,
            name: tls.server_name_for(host)?,
        })
    }

    /// The error of `stls()` on a connection made without TLS options.
    pub fn missing() -> TlsConfigError {
        TlsConfigError::InvalidServerName(String::from(
            "no TLS options known for this connection: use stls_with_options",
        ))
    }
}

pub mod binding;
pub use binding::{channel_binding, tls_server_end_point};
pub mod cert;
pub use cert::{CertificateInfo, Fingerprint, FingerprintError};
mod verify;
pub use verify::CertificateRejected;

#[cfg(test)]
mod tests {
    use super::*;

    fn test_ca() -> (String, String, String) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["client.test".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        (ca.pem(), leaf.pem(), leaf_key.serialize_pem())
    }

    #[test]
    fn builds_default_and_custom_configs() {
        TlsOptions::new().client_config().unwrap();
        let (ca, leaf, key) = test_ca();
        TlsOptions::new()
            .without_default_roots()
            .add_ca_pem(ca.clone())
            .client_auth_pem(leaf, key)
            .client_config()
            .unwrap();
        let dir = std::env::temp_dir().join(format!("pop3-rustls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ca.pem");
        std::fs::write(&path, &ca).unwrap();
        TlsOptions::new()
            .without_default_roots()
            .add_ca_pem_file(&path)
            .client_config()
            .unwrap();
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn config_errors() {
        assert!(matches!(
            TlsOptions::new().without_default_roots().client_config(),
            Err(TlsConfigError::NoTrustAnchors)
        ));
        assert!(matches!(
            TlsOptions::new()
                .add_ca_pem(b"not pem".to_vec())
                .client_config(),
            Err(TlsConfigError::NoCertificates(_))
        ));
        assert!(matches!(
            TlsOptions::new()
                .add_ca_pem_file("/nonexistent/ca.pem")
                .client_config(),
            Err(TlsConfigError::Pem { .. })
        ));
        let (ca, leaf, _) = test_ca();
        assert!(matches!(
            TlsOptions::new().client_auth_pem(leaf, ca).client_config(),
            Err(TlsConfigError::Pem { .. })
        ));
    }

    #[cfg(all(feature = "native-roots", feature = "webpki-roots"))]
    #[test]
    fn system_roots_fall_back_to_webpki_only_when_not_chosen_explicitly() {
        let (ca, _, _) = test_ca();
        let der = CertificateDer::from_pem_slice(ca.as_bytes()).unwrap();
        let loaded = |certs: Vec<CertificateDer<'static>>| {
            let mut r = rustls_native_certs::CertificateResult::default();
            r.certs = certs;
            r
        };
        // A readable OS store is used as is: exactly its certificates.
        let mut store = RootCertStore::empty();
        system_or_fallback(&mut store, loaded(vec![der.clone()]), false).unwrap();
        assert_eq!(store.len(), 1);
        let mut store = RootCertStore::empty();
        system_or_fallback(&mut store, loaded(vec![der]), true).unwrap();
        assert_eq!(store.len(), 1);
        // An empty OS store: the compiled-in roots.
        let mut store = RootCertStore::empty();
        system_or_fallback(&mut store, loaded(Vec::new()), false).unwrap();
        assert_eq!(store.len(), webpki_roots::TLS_SERVER_ROOTS.len());
        // ... unless SSL_CERT_FILE/SSL_CERT_DIR named it: an error.
        let mut store = RootCertStore::empty();
        assert!(matches!(
            system_or_fallback(&mut store, loaded(Vec::new()), true),
            Err(TlsConfigError::NativeRoots(_))
        ));
        assert!(store.is_empty());
    }

    #[test]
    fn server_names() {
        let o = TlsOptions::new();
        assert!(o.server_name_for("mail.example.com").is_ok());
        assert!(o.server_name_for("127.0.0.1").is_ok());
        assert!(o.server_name_for("[::1]").is_ok());
        assert!(o.server_name_for("bad name!").is_err());
        let o = o.server_name("localhost");
        assert_eq!(
            o.server_name_for("127.0.0.1").unwrap(),
            ServerName::try_from("localhost").unwrap()
        );
    }
}

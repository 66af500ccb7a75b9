//! The default trust store honours `SSL_CERT_FILE` (OpenSSL's variable):
//! a server whose CA is only in that file is trusted by
//! `TlsOptions::new()`, one signed by another CA is not (so the compiled-in
//! roots did not quietly replace the file), and a file that does not exist
//! is an error, not a fallback. One test: the environment is per process.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use pop3_rustls::rustls;
use pop3_rustls::{TlsConfigError, TlsOptions};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// A CA and a `localhost` certificate it signed.
fn ca_and_leaf() -> (String, CertificateDer<'static>, PrivateKeyDer<'static>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let der = PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    (ca.pem(), leaf.der().clone(), der)
}

/// One TLS handshake on loopback; the client's error, if any.
fn handshake(
    client: Arc<rustls::ClientConfig>,
    leaf: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> Result<(), std::io::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf], key)
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let conn = rustls::ServerConnection::new(Arc::new(server)).unwrap();
        let mut s = rustls::StreamOwned::new(conn, tcp);
        let _ = s.write_all(b"+OK\r\n");
    });
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(client, name).unwrap();
    let mut s = rustls::StreamOwned::new(conn, TcpStream::connect(addr).unwrap());
    let mut buf = [0u8; 5];
    let r = s.read_exact(&mut buf);
    drop(s);
    t.join().unwrap();
    r
}

#[test]
fn default_roots_honour_ssl_cert_file() {
    let dir = std::env::temp_dir().join(format!("pop3-rustls-certfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, leaf, key) = ca_and_leaf();
    let file = dir.join("ca.pem");
    std::fs::write(&file, ca).unwrap();
    std::env::remove_var("SSL_CERT_DIR");
    std::env::set_var("SSL_CERT_FILE", &file);

    let config = TlsOptions::new().client_config().unwrap();
    handshake(config.clone(), leaf, key).expect("the SSL_CERT_FILE CA is trusted");

    let (_, other_leaf, other_key) = ca_and_leaf();
    let err = handshake(config, other_leaf, other_key).expect_err("another CA is not");
    let inner = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>());
    assert!(
        matches!(inner, Some(rustls::Error::InvalidCertificate(_))),
        "{err:?}"
    );

    std::env::set_var("SSL_CERT_FILE", dir.join("missing.pem"));
    assert!(matches!(
        TlsOptions::new().client_config(),
        Err(TlsConfigError::NativeRoots(_))
    ));
    // The compiled-in roots alone are still there when asked for.
    TlsOptions::new()
        .with_webpki_roots()
        .client_config()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
}

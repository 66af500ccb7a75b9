//! A TLS library of your own through `stls_with`: the client sends `STLS`,
//! and on `+OK` hands you the TCP stream; you return any `Read + Write`
//! that encrypts (here a `rustls::StreamOwned` you configured yourself; it
//! could be native-tls, OpenSSL or a hardware token's library). The
//! adapter's own rustls feature is not involved: this works with
//! `--no-default-features` too (with the TLS library of your choice).
//!
//! Self-contained: a pop3-testkit server with STLS and a throw-away CA.
//!
//! ```text
//! cargo run -p pop3-blocking --example custom_tls
//! ```

use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use pop3_blocking::Client;
use pop3_testkit::{Mailbox, Server};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::builder()
        .user("alice", "secret")
        .mailbox(Mailbox::sample())
        .stls(true)
        .start()?;
    let ca = server.ca_cert_pem().ok_or("the testkit server has no CA")?;

    // "Your" TLS library, configured by hand.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca.as_bytes())?)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );

    let tcp = TcpStream::connect(server.addr())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    // Plain stream: credentials are refused on it until the upgrade.
    let client = Client::new(tcp)?;
    let mut client = client.stls_with(|tcp| {
        let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
        let conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        // Finish the handshake here, so a bad certificate fails the upgrade.
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        Ok(tls)
    })?;
    assert!(client.is_tls());
    client.login("alice", "secret")?;
    let stat = client.stat()?;
    println!(
        "over my own TLS: {} messages, {} octets",
        stat.count, stat.octets
    );
    client.quit()?;
    Ok(())
}

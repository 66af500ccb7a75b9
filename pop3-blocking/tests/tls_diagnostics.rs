//! TLS and connection diagnostics through the blocking adapter: the typed
//! TLS failure cause, the refused certificate's details, pinning, and the
//! first-byte deadline of a silent (implicit-TLS) port.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use pop3_blocking::pop3_proto::session::{SessionError, Waiting};
use pop3_blocking::{
    Client, ConnectOptions, Error, Fingerprint, Timeouts, TlsFailure, TlsOptions, TlsPolicy,
};
use pop3_testkit::{Mailbox, Server, TestCa};

fn implicit_server(ca: TestCa) -> pop3_testkit::ServerHandle {
    Server::builder()
        .mailbox(Mailbox::sample())
        .user("alice", "pw")
        .tls_ca(ca)
        .implicit_tls(true)
        .start()
        .unwrap()
}

fn implicit(tls: TlsOptions) -> ConnectOptions {
    ConnectOptions::new()
        .policy(TlsPolicy::Implicit)
        .timeouts(Timeouts::all(Duration::from_secs(10)))
        .tls(tls)
}

fn connect_err(port: u16, options: &ConnectOptions) -> Error {
    match Client::connect("127.0.0.1", port, options) {
        Ok(_) => panic!("connected"),
        Err(e) => e,
    }
}

#[test]
fn untrusted_certificate_is_unknown_issuer_with_its_details() {
    let ca = TestCa::generate();
    let leaf = Fingerprint::of(ca.leaf_cert_der());
    let server = implicit_server(ca);
    // The webpki roots do not know the testkit CA.
    let e = connect_err(server.port(), &implicit(TlsOptions::new()));
    assert_eq!(e.tls_failure(), Some(TlsFailure::UnknownIssuer), "{e}");
    let r = e.rejected_certificate().expect("the refused certificate");
    assert_eq!(r.certificate.sha256, leaf);
    assert!(!r.pin_mismatch);
    assert_eq!(
        r.certificate.issuer.as_deref(),
        Some("CN=pop3-testkit test CA, O=pop3-testkit")
    );
    assert_eq!(r.certificate.subject.as_deref(), Some("CN=localhost"));
    assert!(e.to_string().contains(&leaf.to_string()), "{e}");
}

#[test]
fn wrong_name_is_name_mismatch() {
    let ca = TestCa::generate();
    let pem = ca.cert_pem().to_string();
    let server = implicit_server(ca);
    let tls = TlsOptions::new()
        .without_default_roots()
        .add_ca_pem(pem)
        .server_name("pop.example.com");
    let e = connect_err(server.port(), &implicit(tls));
    assert_eq!(e.tls_failure(), Some(TlsFailure::NameMismatch), "{e}");
    assert!(e.rejected_certificate().is_some());
}

#[test]
fn a_pin_replaces_ca_verification_and_refuses_other_certificates() {
    let ca = TestCa::generate();
    let leaf = Fingerprint::of(ca.leaf_cert_der());
    let server = implicit_server(ca);
    // The pinned certificate is accepted without any trust anchor, and
    // whatever name it is checked against.
    let tls = TlsOptions::new()
        .without_default_roots()
        .pin_sha256(leaf)
        .server_name("not-the-name.example");
    let mut c = Client::connect("127.0.0.1", server.port(), &implicit(tls)).unwrap();
    assert!(c.is_tls());
    c.quit().unwrap();
    // Another fingerprint: refused, even though the CA would be trusted.
    let other = Fingerprint::from([7u8; 32]);
    let ca2 = TestCa::generate();
    let server2 = implicit_server(ca2);
    let tls = TlsOptions::new().pin_sha256(other);
    let e = connect_err(server2.port(), &implicit(tls));
    assert_eq!(e.tls_failure(), Some(TlsFailure::PinMismatch), "{e}");
    let r = e.rejected_certificate().unwrap();
    assert!(r.pin_mismatch);
    assert_ne!(r.certificate.sha256, other);
}

#[test]
fn implicit_tls_to_a_plain_port_is_not_tls_and_fails_fast() {
    let server = Server::builder()
        .mailbox(Mailbox::sample())
        .user("alice", "pw")
        .start()
        .unwrap();
    let started = Instant::now();
    let e = connect_err(server.port(), &implicit(TlsOptions::new()));
    assert_eq!(e.tls_failure(), Some(TlsFailure::NotTls), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "not the 10 s timeout"
    );
}

#[test]
fn a_silent_port_fails_at_the_first_byte_deadline() {
    // An implicit-TLS server waits for our ClientHello and says nothing.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_secs(4));
        drop(s);
    });
    let options = ConnectOptions::new()
        .policy(TlsPolicy::Required)
        .timeouts(Timeouts::all(Duration::from_secs(20)).first_byte(Duration::from_millis(300)));
    let started = Instant::now();
    let e = connect_err(port, &options);
    assert!(started.elapsed() < Duration::from_secs(3), "{e}");
    let Error::Timeout(io) = &e else {
        panic!("{e:?}")
    };
    let inner = io.get_ref().and_then(|i| i.downcast_ref::<SessionError>());
    match inner {
        Some(SessionError::Timeout(t)) => assert_eq!(t.waiting_for, Waiting::FirstByte),
        other => panic!("{other:?}"),
    }
    hold.join().unwrap();
}

//! Implicit TLS, STLS, injection and the generated CA, with a rustls client.
#![cfg(feature = "tls")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use common::Client;
use pop3_testkit::{Mailbox, Script, Server, TestCa};
use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn tls_over(tcp: TcpStream, ca: &TestCa, name: &str) -> BufReader<Tls> {
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let conn = rustls::ClientConnection::new(
        ca.client_config(),
        ServerName::try_from(name.to_string()).unwrap(),
    )
    .unwrap();
    BufReader::new(rustls::StreamOwned::new(conn, tcp))
}

fn line(r: &mut BufReader<Tls>) -> String {
    let mut s = String::new();
    r.read_line(&mut s).unwrap();
    s
}

fn cmd(r: &mut BufReader<Tls>, c: &str) -> String {
    r.get_mut()
        .write_all(format!("{c}\r\n").as_bytes())
        .unwrap();
    r.get_mut().flush().unwrap();
    line(r)
}

#[test]
fn test_ca_pem_and_der_agree() {
    let ca = TestCa::generate();
    assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    let der = CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap();
    assert_eq!(der.as_ref(), ca.cert_der());
    let leaf = CertificateDer::from_pem_slice(ca.leaf_cert_pem().as_bytes()).unwrap();
    assert_eq!(leaf.as_ref(), ca.leaf_cert_der());
    assert_ne!(ca.cert_der(), ca.leaf_cert_der());
    assert!(!ca.leaf_key_der().is_empty());
    assert_eq!(ca.root_store().len(), 1);
    assert!(ca.server_config().is_ok());
}

#[test]
fn implicit_tls_session() {
    let s = Server::builder()
        .user("alice", "secret")
        .mailbox(Mailbox::sample())
        .implicit_tls(true)
        .start()
        .unwrap();
    let ca = s.test_ca().unwrap().clone();
    assert_eq!(s.ca_cert_pem().unwrap(), ca.cert_pem());
    assert_eq!(s.ca_cert_der().unwrap(), ca.cert_der());
    for name in ["localhost", "127.0.0.1"] {
        let mut r = tls_over(TcpStream::connect(s.addr()).unwrap(), &ca, name);
        assert!(line(&mut r).starts_with("+OK POP3 pop3-testkit ready <"));
        assert_eq!(cmd(&mut r, "CAPA"), "+OK Capability list follows\r\n");
        let mut caps = Vec::new();
        loop {
            let l = line(&mut r);
            if l == ".\r\n" {
                break;
            }
            caps.push(l);
        }
        assert!(!caps.iter().any(|c| c.starts_with("STLS")), "{caps:?}");
        assert!(cmd(&mut r, "USER alice").starts_with("+OK"));
        assert!(cmd(&mut r, "PASS secret").starts_with("+OK alice's maildrop has 6"));
        assert!(cmd(&mut r, "QUIT").starts_with("+OK"));
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap(); // clean close_notify: Ok(0)
        assert!(rest.is_empty());
    }
    assert!(s.wait_idle(Duration::from_secs(5)));
    let t = &s.transcripts()[0];
    assert!(t.tls);
    assert_eq!(t.client_commands(), ["CAPA", "USER", "PASS", "QUIT"]);
}

#[test]
fn implicit_tls_rejects_untrusting_client() {
    let s = Server::builder().implicit_tls(true).start().unwrap();
    let other = TestCa::generate();
    let mut r = tls_over(TcpStream::connect(s.addr()).unwrap(), &other, "localhost");
    let mut buf = String::new();
    let err = r.read_line(&mut buf).unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
    assert!(s.wait_idle(Duration::from_secs(5)));
    // Server still fine.
    let ca = s.test_ca().unwrap().clone();
    let mut r = tls_over(TcpStream::connect(s.addr()).unwrap(), &ca, "localhost");
    assert!(line(&mut r).starts_with("+OK"));
}

#[test]
fn shared_ca_between_servers() {
    let ca = TestCa::generate();
    let a = Server::builder()
        .implicit_tls(true)
        .tls_ca(ca.clone())
        .start()
        .unwrap();
    let b = Server::builder()
        .stls(true)
        .tls_ca(ca.clone())
        .start()
        .unwrap();
    assert_eq!(a.ca_cert_der(), b.ca_cert_der());
    assert_eq!(a.ca_cert_der().unwrap(), ca.cert_der());
    let mut r = tls_over(TcpStream::connect(a.addr()).unwrap(), &ca, "localhost");
    assert!(line(&mut r).starts_with("+OK"));
}

#[test]
fn stls_upgrade() {
    let s = Server::builder()
        .user("alice", "secret")
        .mailbox(Mailbox::sample())
        .stls(true)
        .split_writes(5)
        .start()
        .unwrap();
    let ca = s.test_ca().unwrap().clone();
    let (mut c, _) = Client::greeted(s.addr());
    assert_eq!(c.cmd("CAPA"), "+OK Capability list follows\r\n");
    let caps = c.body();
    assert_eq!(caps.last().unwrap(), "STLS\r\n");
    assert_eq!(c.cmd("STLS extra"), "-ERR too many arguments\r\n");
    assert_eq!(c.cmd("STLS"), "+OK Begin TLS negotiation\r\n");
    assert!(c.reader.buffer().is_empty());
    let mut r = tls_over(c.stream, &ca, "localhost");
    // Still AUTHORIZATION state; STLS no longer offered nor accepted.
    assert_eq!(cmd(&mut r, "CAPA"), "+OK Capability list follows\r\n");
    let mut caps = Vec::new();
    loop {
        let l = line(&mut r);
        if l == ".\r\n" {
            break;
        }
        caps.push(l);
    }
    assert!(!caps.iter().any(|c| c.starts_with("STLS")));
    assert_eq!(cmd(&mut r, "STLS"), "-ERR TLS already active\r\n");
    assert_eq!(
        cmd(&mut r, "STAT"),
        "-ERR command not valid in this state\r\n"
    );
    assert!(cmd(&mut r, "USER alice").starts_with("+OK"));
    assert!(cmd(&mut r, "PASS secret").starts_with("+OK"));
    let retr = cmd(&mut r, "RETR 5");
    assert!(retr.starts_with("+OK "), "{retr}");
    let mut body = Vec::new();
    loop {
        let l = line(&mut r);
        if l == ".\r\n" {
            break;
        }
        body.push(l);
    }
    assert!(body.contains(&"....and a line that is just a dot follows\r\n".to_string()));
    assert!(body.contains(&"..\r\n".to_string()));
    assert!(cmd(&mut r, "QUIT").starts_with("+OK"));
    drop(r);
    assert!(s.wait_idle(Duration::from_secs(5)));
    let t = &s.transcripts()[0];
    assert!(t.tls);
    assert_eq!(
        t.client_commands(),
        ["CAPA", "STLS", "STLS", "CAPA", "STLS", "STAT", "USER", "PASS", "RETR", "QUIT"]
    );
}

#[test]
fn stls_not_valid_after_login() {
    let s = Server::builder()
        .user("alice", "secret")
        .stls(true)
        .start()
        .unwrap();
    let mut c = Client::login(s.addr(), "alice", "secret");
    assert_eq!(c.cmd("STLS"), "-ERR command not valid in this state\r\n");
    assert_eq!(c.cmd("CAPA"), "+OK Capability list follows\r\n");
    assert!(!c.body().contains(&"STLS\r\n".to_string()));
}

#[test]
fn stls_injection_arrives_with_the_ok() {
    let injected = b"+OK injected before the handshake\r\n";
    let s = Server::builder()
        .user("alice", "secret")
        .stls_injection(injected.to_vec())
        .start()
        .unwrap();
    let ca = s.test_ca().unwrap().clone();
    let (mut c, _) = Client::greeted(s.addr());
    c.send(b"STLS\r\n");
    // Read exactly what arrives: the +OK and the injected bytes together.
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let want = b"+OK Begin TLS negotiation\r\n".len() + injected.len();
    while got.len() < want {
        let n = c.stream.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    let mut expected = b"+OK Begin TLS negotiation\r\n".to_vec();
    expected.extend_from_slice(injected);
    assert_eq!(got, expected);
    // A client that discards the injected bytes can still do TLS.
    let mut r = tls_over(c.stream, &ca, "localhost");
    assert!(cmd(&mut r, "USER alice").starts_with("+OK alice accepted"));
}

#[test]
fn script_with_start_tls() {
    let ca = TestCa::generate();
    let s = Server::builder()
        .tls_ca(ca.clone())
        .script(
            Script::new()
                .send(b"+OK ready\r\n")
                .expect_line("STLS")
                .send(b"+OK go\r\n")
                .start_tls()
                .expect_line("CAPA")
                .send(b"-ERR no capa over tls\r\n"),
        )
        .start()
        .unwrap();
    let (mut c, _) = Client::greeted(s.addr());
    assert_eq!(c.cmd("STLS"), "+OK go\r\n");
    let mut r = tls_over(c.stream, &ca, "localhost");
    assert_eq!(cmd(&mut r, "CAPA"), "-ERR no capa over tls\r\n");
    assert_eq!(s.script_result(), Ok(()));
    assert!(s.transcripts()[0].tls);
}

#[test]
fn script_start_tls_without_tls_fails() {
    let s = Server::builder()
        .script(Script::new().start_tls())
        .start()
        .unwrap();
    let mut c = Client::connect(s.addr());
    assert_eq!(c.rest(), b"");
    let err = s.script_result().unwrap_err();
    assert!(err.message.contains("TLS not configured"), "{err}");
}

#[test]
fn client_config_is_usable_directly() {
    let ca = TestCa::generate();
    let cfg: Arc<rustls::ClientConfig> = ca.client_config();
    assert!(cfg.alpn_protocols.is_empty());
}

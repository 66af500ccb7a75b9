//! Minimal raw POP3 client used by the harness tests (deliberately independent of the
//! workspace's client crates).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A line-oriented POP3 connection over any byte stream.
pub struct Conn<S: Read + Write> {
    reader: BufReader<S>,
}

impl<S: Read + Write> Conn<S> {
    pub fn new(stream: S) -> Self {
        Conn {
            reader: BufReader::new(stream),
        }
    }

    /// Reads one line including its CRLF.
    pub fn line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line).expect("read line");
        assert!(
            line.ends_with(b"\r\n"),
            "line not terminated by CRLF: {:?}",
            String::from_utf8_lossy(&line)
        );
        line
    }

    /// Reads one line as a string without its CRLF.
    pub fn line_str(&mut self) -> String {
        let line = self.line();
        String::from_utf8(line[..line.len() - 2].to_vec()).expect("utf-8 status line")
    }

    pub fn send(&mut self, data: &[u8]) {
        let s = self.reader.get_mut();
        s.write_all(data).expect("write");
        s.flush().expect("flush");
    }

    /// Sends a command line and returns the single-line reply (without CRLF).
    pub fn cmd(&mut self, command: &str) -> String {
        self.send(format!("{command}\r\n").as_bytes());
        self.line_str()
    }

    /// Sends a command and asserts that the reply starts with `+OK`.
    pub fn ok(&mut self, command: &str) -> String {
        let reply = self.cmd(command);
        assert!(reply.starts_with("+OK"), "{command:?} -> {reply:?}");
        reply
    }

    /// Reads a multi-line body up to the terminating `.` line; returns the dot-unstuffed
    /// bytes between the status line and the terminator.
    pub fn multiline(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let line = self.line();
            if line == b".\r\n" {
                return body;
            }
            if line.starts_with(b"..") {
                body.extend_from_slice(&line[1..]);
            } else {
                assert!(!line.starts_with(b"."), "unstuffed dot line {line:?}");
                body.extend_from_slice(&line);
            }
        }
    }

    /// Multi-line command: returns (status line, body).
    pub fn multi(&mut self, command: &str) -> (String, Vec<u8>) {
        let status = self.ok(command);
        (status, self.multiline())
    }

    /// `USER` + `PASS`.
    pub fn login(&mut self, user: &str, password: &str) {
        self.ok(&format!("USER {user}"));
        let reply = self.cmd(&format!("PASS {password}"));
        assert_eq!(reply, "+OK Logged in.");
    }

    /// Returns the stream; panics if unread bytes are buffered.
    pub fn into_inner(self) -> S {
        assert!(self.reader.buffer().is_empty(), "unread data buffered");
        self.reader.into_inner()
    }
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

/// Connects to the plain port and reads the greeting; returns the connection and greeting.
pub fn connect_plain(addr: SocketAddr) -> (Conn<TcpStream>, String) {
    let mut conn = Conn::new(connect(addr));
    let greeting = conn.line_str();
    assert!(greeting.starts_with("+OK "), "greeting {greeting:?}");
    (conn, greeting)
}

pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A rustls config (ring) trusting exactly `ca_der`; built here rather than with the
/// harness helper so that the tests check the harness's certificate independently.
pub fn tls_config(ca_der: &[u8]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ca_der.to_vec()))
        .expect("add CA");
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

/// Wraps `tcp` in a client TLS session and completes the handshake.
pub fn tls_handshake(
    tcp: TcpStream,
    config: Arc<rustls::ClientConfig>,
    server_name: &str,
) -> Result<TlsStream, std::io::Error> {
    let name = rustls::pki_types::ServerName::try_from(server_name.to_string()).unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// Extracts the APOP timestamp `<...>` from a greeting line.
pub fn apop_timestamp(greeting: &str) -> &str {
    let start = greeting.find('<').expect("APOP timestamp in greeting");
    let end = greeting[start..].find('>').expect("closing '>'") + start;
    &greeting[start..=end]
}

//! Adapter-specific tests: logging and redaction, custom transports,
//! STLS through a closure, batch API, limits.

use std::io::{self, Read, Write};
use std::time::Duration;

use pop3_blocking::{
    Client, Command, ConnectOptions, Disposition, ErrorKind, MessageSink, Reply, TlsPolicy,
};
use pop3_testkit::{Mailbox, Script, Server, TestCa};

/// An in-memory transport: replies come from a fixed script, writes are
/// recorded.
struct Pipe {
    input: io::Cursor<Vec<u8>>,
    output: Vec<u8>,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // One byte at a time: every split point is exercised.
        let n = buf.len().min(1);
        self.input.read(&mut buf[..n])
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn any_stream_byte_by_byte() {
    let input = b"+OK hi <1.2@x>\r\n+OK\r\n+OK\r\n+OK 2 10\r\n+OK\r\nab\r\n..c\r\n.\r\n+OK bye\r\n"
        .to_vec();
    let pipe = Pipe {
        input: io::Cursor::new(input),
        output: Vec::new(),
    };
    let mut c = Client::new(pipe).unwrap();
    // No Option: a client exists only once the greeting arrived.
    assert_eq!(c.greeting().status.text, "hi <1.2@x>");
    assert_eq!(c.greeting().apop_timestamp.as_deref(), Some("<1.2@x>"));
    assert_eq!(
        c.user("u").unwrap_err().kind(),
        ErrorKind::Insecure,
        "cleartext refused by default"
    );
    c.set_allow_cleartext_credentials(true);
    c.user("u").unwrap();
    c.pass("p").unwrap();
    assert_eq!(c.stat().unwrap().count, 2);
    assert_eq!(c.retr(1).unwrap(), b"ab\r\n.c\r\n");
    c.quit().unwrap();
    assert_eq!(
        c.into_inner().output,
        b"USER u\r\nPASS p\r\nSTAT\r\nRETR 1\r\nQUIT\r\n"
    );
}

#[test]
fn secure_stream_allows_credentials_and_refuses_stls() {
    let pipe = Pipe {
        input: io::Cursor::new(b"+OK hi\r\n+OK\r\n".to_vec()),
        output: Vec::new(),
    };
    let mut c = Client::new_secure(pipe).unwrap();
    c.user("u").unwrap();
    assert_eq!(
        c.stls_with(Ok).unwrap_err().kind(),
        ErrorKind::Usage,
        "STLS on a secure stream"
    );
}

#[test]
fn stls_with_a_closure_any_tls_library() {
    let ca = TestCa::generate();
    let server = Server::builder()
        .user("alice", "secret")
        .mailbox(Mailbox::sample())
        .stls(true)
        .tls_ca(ca.clone())
        .start()
        .unwrap();
    let tcp = std::net::TcpStream::connect(server.addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut c = Client::new(tcp).unwrap();
    assert!(c.capa().unwrap().stls);
    let config = ca.client_config();
    let mut c = c
        .stls_with(move |tcp| {
            let conn = rustls::ClientConnection::new(config, "localhost".try_into().unwrap())
                .map_err(io::Error::other)?;
            Ok(rustls::StreamOwned::new(conn, tcp))
        })
        .unwrap();
    assert!(c.is_tls());
    assert!(
        c.capabilities().is_none(),
        "capabilities forgotten after STLS"
    );
    c.login("alice", "secret").unwrap();
    assert_eq!(c.stat().unwrap().count, 6);
    c.quit().unwrap();
}

#[test]
fn batch_pipelines_arbitrary_commands() {
    let server = Server::builder()
        .user("alice", "secret")
        .mailbox(Mailbox::sample())
        .start()
        .unwrap();
    let mut c = Client::connect_plain("127.0.0.1", server.port(), true).unwrap();
    c.login("alice", "secret").unwrap();
    let n = |i| pop3_blocking::pop3_proto::MsgNum::new(i).unwrap();
    let replies = c
        .batch(vec![
            Command::Stat,
            Command::Retr(n(1)),
            Command::Dele(n(1)),
            Command::Retr(n(1)),
            Command::Top(n(2), 0),
            Command::Noop,
        ])
        .unwrap();
    assert_eq!(replies.len(), 6);
    assert!(matches!(replies[0], Reply::Ok(_)));
    assert!(matches!(replies[1], Reply::Body(ref b) if b.starts_with(b"From:") || !b.is_empty()));
    assert!(matches!(replies[3], Reply::Err(_)));
    assert!(matches!(replies[4], Reply::Body(_)));
    c.quit().unwrap();
    // Sent back to back: the server saw every command.
    assert!(server.wait_idle(Duration::from_secs(5)));
    let cmds = server.transcripts()[0].client_commands();
    assert!(
        cmds.ends_with(&["STAT", "RETR", "DELE", "RETR", "TOP", "NOOP", "QUIT"].map(String::from))
    );
}

struct FailingSink;
impl MessageSink for FailingSink {
    fn data(&mut self, _: u32, _: &[u8]) -> io::Result<()> {
        Err(io::Error::other("disk full"))
    }
    fn end(&mut self, _: u32, _: u64) -> io::Result<Disposition> {
        Ok(Disposition::Delete)
    }
}

#[test]
fn sink_error_stops_deletes_and_keeps_session() {
    let server = Server::builder()
        .user("alice", "secret")
        .mailbox(Mailbox::sample())
        .start()
        .unwrap();
    let mut c = Client::connect_plain("127.0.0.1", server.port(), true).unwrap();
    c.login("alice", "secret").unwrap();
    let e = c.retr_each(1..=6, &mut FailingSink).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    // The session is still in sync.
    assert_eq!(c.stat().unwrap().count, 6);
    // A failing writer in retr_to too.
    struct W;
    impl Write for W {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("nope"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    assert!(matches!(
        c.retr_to(2, &mut W).unwrap_err(),
        pop3_blocking::Error::Sink(_)
    ));
    c.noop().unwrap();
    c.quit().unwrap();
    assert!(server.wait_idle(Duration::from_secs(5)));
    assert!(!server.client_sent("DELE"));
}

#[test]
fn unpipelined_server_gets_one_command_at_a_time() {
    // A script that would fail if a second RETR arrived before the first
    // reply: it reads exactly one line per reply.
    let mut script = Script::new()
        .send(b"+OK hi\r\n")
        .expect_line("CAPA")
        .send(b"+OK\r\nUSER\r\nTOP\r\n.\r\n")
        .expect_line("USER u")
        .send(b"+OK\r\n")
        .expect_line("PASS p")
        .send(b"+OK\r\n");
    for i in 1..=3 {
        script = script
            .expect_line(&format!("RETR {i}"))
            .sleep(Duration::from_millis(20))
            .send(format!("+OK\r\nmessage {i}\r\n.\r\n"));
    }
    let server = Server::builder()
        .script(script.expect_line("QUIT").send(b"+OK\r\n"))
        .start()
        .unwrap();
    let mut c = Client::connect_plain("127.0.0.1", server.port(), true).unwrap();
    c.user("u").unwrap();
    c.pass("p").unwrap();
    let mut got = Vec::new();
    c.retr_each(
        1..=3,
        &mut pop3_blocking::CollectSink::new(|n, m| {
            got.push((n, m));
            Ok(Disposition::Keep)
        }),
    )
    .unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].1, b"message 3\r\n");
    c.quit().unwrap();
    server.script_result_within(Duration::from_secs(5)).unwrap();
}

#[test]
fn tls_config_errors_are_tls_kind() {
    let o = ConnectOptions::new()
        .policy(TlsPolicy::Implicit)
        .tls(pop3_blocking::TlsOptions::new().add_ca_pem_file("/nonexistent.pem"));
    let e = Client::connect("127.0.0.1", 9, &o).unwrap_err();
    // Connection refused comes first (port 9 on loopback is closed).
    assert!(matches!(e.kind(), ErrorKind::Io | ErrorKind::Tls), "{e}");
    let server = Server::builder().start().unwrap();
    let e = Client::connect("127.0.0.1", server.port(), &o).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
}

/// `retr_body` as a `Read`er gives the same bytes as `retr`; a reader
/// dropped half-way is abandoned and the session goes on.
#[test]
fn body_as_read_and_abandoned_half_way() {
    let server = Server::builder()
        .user("alice", "secret")
        .mailbox(Mailbox::sample())
        .start()
        .unwrap();
    let mut c = Client::connect_plain("127.0.0.1", server.port(), true).unwrap();
    c.login("alice", "secret").unwrap();
    let whole = c.retr(1).unwrap();
    let mut read = Vec::new();
    c.retr_body(1).unwrap().read_to_end(&mut read).unwrap();
    assert_eq!(read, whole);
    {
        let mut body = c.top_body(2, 100).unwrap();
        let mut first = [0u8; 3];
        body.read_exact(&mut first).unwrap();
    }
    assert_eq!(c.stat().unwrap().count, 6, "the abandoned body was skipped");
    assert_eq!(c.retr(1).unwrap(), whole);
    c.quit().unwrap();
}

/// After STLS the adapter hands the rustls `tls-exporter` data to the
/// layer, and login prefers SCRAM-SHA-256-PLUS when the server offers it.
#[test]
fn login_prefers_scram_plus_with_channel_binding_after_stls() {
    let (server, options, _) = pop3_scenarios::scram_plus_after_stls();
    let mut c = Client::connect("127.0.0.1", server.port(), &options).unwrap();
    assert!(
        matches!(
            c.session().channel_binding(),
            Some(pop3_blocking::pop3_proto::session::ChannelBinding::TlsExporter(d)) if d.len() == 32
        ),
        "TLS 1.3: tls-exporter data"
    );
    let e = c.login("alice", "secret").unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::Server(Some(pop3_blocking::RespCode::Auth))
    );
    c.quit().unwrap();
    server.script_result().unwrap();
}

/// The same over TLS 1.2: the adapter hands over `tls-server-end-point`
/// (the hash of the server certificate) and login still picks -PLUS.
#[test]
fn tls12_gives_tls_server_end_point_binding() {
    let (server, options, ca) = pop3_scenarios::scram_plus_after_stls();
    let roots = ca.root_store();
    let tls12 = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let options = options.tls(
        pop3_blocking::TlsOptions::from_client_config(std::sync::Arc::new(tls12))
            .server_name("localhost"),
    );
    let mut c = Client::connect("127.0.0.1", server.port(), &options).unwrap();
    assert!(matches!(
        c.session().channel_binding(),
        Some(pop3_blocking::pop3_proto::session::ChannelBinding::TlsServerEndPoint(d)) if d.len() == 32
    ));
    let e = c.login("alice", "secret").unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::Server(Some(pop3_blocking::RespCode::Auth))
    );
    c.quit().unwrap();
    server.script_result().unwrap();
}

/// A 1 MiB message: the adaptive read buffer grows while it is read
/// (`pop3_adapter::ReadBuffer`), and is back to its idle size once the
/// RETR (and a pipelined batch) ended.
fn big_mailbox() -> Mailbox {
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    while big.len() < 1 << 20 {
        big.extend_from_slice(b"0123456789abcdef0123456789abcdef0123456789abcdef\r\n");
    }
    Mailbox::new().with("big", big.clone()).with("big2", big)
}

#[test]
fn read_buffer_is_small_again_after_a_big_body() {
    use pop3_adapter::ReadBuffer;
    let server = Server::builder()
        .user("alice", "secret")
        .mailbox(big_mailbox())
        .start()
        .unwrap();
    let mut c = Client::connect_plain("127.0.0.1", server.port(), true).unwrap();
    c.login("alice", "secret").unwrap();
    assert_eq!(c.read_buffer_size(), ReadBuffer::MIN);
    assert!(c.retr(1).unwrap().len() >= 1 << 20);
    assert_eq!(c.read_buffer_size(), ReadBuffer::MIN);
    let mut sink = pop3_blocking::CollectSink::new(|_, _| Ok(Disposition::Keep));
    assert_eq!(c.retr_each([1, 2], &mut sink).unwrap().received, 2);
    assert_eq!(c.read_buffer_size(), ReadBuffer::MIN);
    c.quit().unwrap();
}

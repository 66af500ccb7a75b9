//! Tests specific to the async adapter: deep pipelining against a server
//! that writes replies before reading on, cancellation, the body APIs,
//! `Send` futures.

use std::io::Write as _;
use std::pin::Pin;
use std::time::Duration;

use pop3_scenarios::expected_retr;
use pop3_testkit::{Mailbox, Message, Server, ServerHandle};
use pop3_tokio::{
    Client, CollectSink, ConnectOptions, Disposition, Error, ErrorKind, TcpClient, Timeouts,
    TlsPolicy,
};
use tokio::io::AsyncReadExt;

const USER: &str = "alice";
const PASS: &str = "secret";

fn options() -> ConnectOptions {
    ConnectOptions::new()
        .policy(TlsPolicy::None)
        .allow_cleartext_credentials(true)
        .timeouts(Timeouts::all(Duration::from_secs(20)))
}

async fn login(server: &ServerHandle) -> TcpClient {
    let mut c = Client::connect("127.0.0.1", server.port(), &options())
        .await
        .expect("connect");
    c.login(USER, PASS).await.expect("login");
    c
}

/// 1,000 pipelined RETRs, all of them outstanding at once, of messages far
/// bigger than the socket buffers (which are shrunk on the client side):
/// the pop3-testkit server writes each whole reply before it reads the
/// next command, so a client that wrote all its commands before reading
/// would deadlock. The tokio driver reads while it writes.
#[tokio::test(flavor = "current_thread")]
async fn thousand_pipelined_retrs_against_a_write_first_server() {
    const N: usize = 1000;
    const SIZE: usize = 48 * 1024;
    let mailbox = Mailbox::generate(N, SIZE);
    let expected: Vec<Vec<u8>> = mailbox
        .messages()
        .iter()
        .map(|m| expected_retr(m.data()))
        .collect();
    let server = Server::builder()
        .user(USER, PASS)
        .mailbox(mailbox)
        .transcript_limit(1 << 20)
        .start()
        .unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(4096).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(server.addr()).await.unwrap();
    let mut config = pop3_tokio::Config::default();
    config.max_in_flight = N;
    let opts = options().proto_config(config);
    let mut c = Client::establish(tcp, "127.0.0.1", &opts).await.unwrap();
    c.set_window(N);
    assert_eq!(c.window(), N);
    c.login(USER, PASS).await.unwrap();
    let mut got = 0usize;
    let mut sink = CollectSink::new(|n, body: Vec<u8>| {
        assert_eq!(body, expected[n as usize - 1], "message {n}");
        got += 1;
        Ok(Disposition::Keep)
    });
    let report = tokio::time::timeout(
        Duration::from_secs(120),
        c.retr_each(1..=N as u32, &mut sink),
    )
    .await
    .expect("pipelined retrieval deadlocked")
    .unwrap();
    drop(sink);
    assert_eq!(got, N);
    assert_eq!(report.received as usize, N);
    assert!(report.octets > (N * SIZE) as u64);
    c.quit().await.unwrap();
}

/// A server that sends each write slowly, so a RETR takes a while.
fn slow_server(big: &[u8]) -> ServerHandle {
    Server::builder()
        .user(USER, PASS)
        .mailbox(
            Mailbox::new()
                .with("big", big.to_vec())
                .with("small", b"Subject: small\r\n\r\nhello\r\n".to_vec()),
        )
        .split_writes(4096)
        .write_delay(Duration::from_millis(2))
        .start()
        .unwrap()
}

fn big_message() -> Vec<u8> {
    let mut m = b"Subject: big\r\n\r\n".to_vec();
    for i in 0..20_000 {
        writeln!(m, "line {i:05} .with some text\r").unwrap();
        if i % 7 == 0 {
            m.extend_from_slice(b".dotted line\r\n");
        }
    }
    m
}

/// Dropping a `retr` future mid-body (through `tokio::time::timeout`)
/// leaves the client usable: the next calls drain the rest of the message
/// and then return correct results.
#[tokio::test(flavor = "current_thread")]
async fn dropped_retr_mid_body_then_next_calls_work() {
    let big = big_message();
    let server = slow_server(&big);
    let mut c = login(&server).await;
    let r = tokio::time::timeout(Duration::from_millis(50), c.retr(1)).await;
    assert!(r.is_err(), "the retr should still be running after 50 ms");
    // The next call drains message 1's remainder first.
    assert_eq!(c.retr(2).await.unwrap(), b"Subject: small\r\n\r\nhello\r\n");
    assert_eq!(c.retr(1).await.unwrap(), expected_retr(&big));
    assert_eq!(c.stat().await.unwrap().count, 2);
    // Dropped twice in a row, with a command in between that is dropped
    // before its reply.
    let _ = tokio::time::timeout(Duration::from_millis(30), c.retr(1)).await;
    let _ = tokio::time::timeout(Duration::from_millis(1), c.noop()).await;
    assert_eq!(c.list().await.unwrap().len(), 2);
    c.quit().await.unwrap();
}

/// The same with a `Body` dropped after its first chunk, and a `retr_to`
/// whose writer fails (the rest is drained; the session stays usable).
#[tokio::test(flavor = "current_thread")]
async fn dropped_body_and_failing_writer() {
    let big = big_message();
    let server = slow_server(&big);
    let mut c = login(&server).await;
    {
        let mut body = c.retr_body(1).await.unwrap();
        let first = body.next_chunk().await.unwrap().unwrap().to_vec();
        assert!(big.starts_with(&first[..first.len().min(16)]));
        assert!(!body.is_complete());
    }
    assert_eq!(c.noop().await.unwrap().text, "");
    struct Failing;
    impl tokio::io::AsyncWrite for Failing {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            _: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::task::Poll::Ready(Err(std::io::Error::other("disk full")))
        }
        fn poll_flush(
            self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }
    let e = c.retr_to(1, &mut Failing).await.unwrap_err();
    assert!(matches!(e, Error::Sink(_)), "{e:?}");
    assert_eq!(c.retr(2).await.unwrap(), b"Subject: small\r\n\r\nhello\r\n");
    c.quit().await.unwrap();
}

/// A dropped STLS cannot be resumed: the client reports it once, then is
/// broken for good.
#[tokio::test(flavor = "current_thread")]
async fn dropped_stls_poisons() {
    let ca = pop3_testkit::TestCa::generate();
    let server = Server::builder()
        .user(USER, PASS)
        .mailbox(Mailbox::sample())
        .stls(true)
        .tls_ca(ca.clone())
        .write_delay(Duration::from_millis(50))
        .start()
        .unwrap();
    let opts = ConnectOptions::new().policy(TlsPolicy::Opportunistic).tls(
        pop3_tokio::TlsOptions::new()
            .without_default_roots()
            .add_ca_pem(ca.cert_pem().as_bytes().to_vec())
            .server_name("localhost"),
    );
    // Opportunistic connects in cleartext first when asked with policy None;
    // build a client that has TLS options but has not upgraded yet.
    let tcp = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let mut c = Client::establish(tcp, "localhost", &opts.clone().policy(TlsPolicy::None))
        .await
        .unwrap();
    let tls = opts.tls.clone();
    let r = tokio::time::timeout(
        Duration::from_millis(10),
        c.stls_with_options(&tls, "localhost"),
    )
    .await;
    assert!(r.is_err(), "STLS should still be waiting for +OK");
    let e = c.noop().await.unwrap_err();
    assert!(matches!(e, Error::Cancelled("STLS")), "{e:?}");
    assert!(e.is_broken());
    let e = c.noop().await.unwrap_err();
    assert!(matches!(e, Error::Broken(_)), "{e:?}");
}

/// `Body` as `AsyncRead` (through `read_to_end`) and as a `Stream`.
#[tokio::test(flavor = "current_thread")]
async fn body_as_async_read_and_stream() {
    let tricky = Message::tricky("t");
    let server = Server::builder()
        .user(USER, PASS)
        .mailbox(
            Mailbox::new()
                .with("t", tricky.data().to_vec())
                .with("b", big_message()),
        )
        .start()
        .unwrap();
    let mut c = login(&server).await;
    for n in [1u32, 2] {
        let want = c.retr(n).await.unwrap();
        // AsyncRead with a small buffer (exercises the spill).
        let mut body = c.retr_body(n).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 100];
        loop {
            let k = body.read(&mut buf).await.unwrap();
            if k == 0 {
                break;
            }
            got.extend_from_slice(&buf[..k]);
        }
        assert!(body.is_complete());
        assert_eq!(body.octets(), Some(want.len() as u64));
        drop(body);
        assert_eq!(got, want);
        // Stream of Bytes.
        let mut body = c.retr_body(n).await.unwrap();
        let mut got = Vec::new();
        while let Some(chunk) =
            std::future::poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut body), cx))
                .await
        {
            got.extend_from_slice(&chunk.unwrap());
        }
        drop(body);
        assert_eq!(got, want);
        // TOP through the body API; read_to_end.
        let mut top = Vec::new();
        c.top_body(n, 0)
            .await
            .unwrap()
            .read_to_end(&mut top)
            .await
            .unwrap();
        assert_eq!(top, c.top(n, 0).await.unwrap());
    }
    // -ERR for a body command is an error before any body.
    let e = c.retr_body(9).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server(None));
    c.quit().await.unwrap();
}

/// Futures are `Send`, so a session can run in a spawned task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_are_send() {
    let server = Server::builder()
        .user(USER, PASS)
        .mailbox(Mailbox::sample())
        .start()
        .unwrap();
    let port = server.port();
    let task = tokio::spawn(async move {
        let mut c = Client::connect("127.0.0.1", port, &options()).await?;
        c.login(USER, PASS).await?;
        let n = c.stat().await?.count;
        let mut sink = CollectSink::new(|_, _| Ok(Disposition::Keep));
        let report = c.retr_each(1..=n, &mut sink).await?;
        let mut body = c.retr_body(1).await?;
        while let Some(chunk) = body.next_chunk().await {
            chunk?;
        }
        drop(body);
        c.quit().await?;
        Ok::<_, Error>((report.received, n))
    });
    let (received, n) = task.await.unwrap().unwrap();
    assert_eq!(received, n);
}

/// A future dropped in the middle of a SASL exchange: the next call
/// abandons it through the session layer, which answers the server's
/// challenge with `*` (no user name goes out), then runs normally.
#[tokio::test(flavor = "current_thread")]
async fn dropped_sasl_exchange_is_cancelled_with_a_star() {
    let caps = "+OK\r\nSASL LOGIN\r\n.\r\n";
    let script = pop3_testkit::Script::new()
        .send(b"+OK hi\r\n")
        .expect_line("CAPA")
        .send(caps)
        .expect_line("AUTH LOGIN")
        .sleep(Duration::from_millis(300))
        .send(b"+ VXNlcm5hbWU6\r\n")
        .expect_line("*")
        .send(b"-ERR [AUTH] cancelled\r\n")
        .expect_line("CAPA")
        .send(caps)
        .expect_line("QUIT")
        .send(b"+OK\r\n");
    let server = Server::builder().script(script).start().unwrap();
    let mut c = Client::connect_plain("127.0.0.1", server.port(), true)
        .await
        .unwrap();
    let mechanism = Box::new(pop3_proto::sasl::Login::new("alice", "secret"));
    let r = tokio::time::timeout(Duration::from_millis(50), c.authenticate(mechanism)).await;
    assert!(
        r.is_err(),
        "the exchange should still wait for its challenge"
    );
    assert!(c.capa().await.unwrap().sasl.contains(&"LOGIN".to_string()));
    c.quit().await.unwrap();
    server.script_result().unwrap();
}

/// After STLS the adapter hands the rustls `tls-exporter` data to the
/// layer, and login prefers SCRAM-SHA-256-PLUS when the server offers it.
#[tokio::test(flavor = "current_thread")]
async fn login_prefers_scram_plus_with_channel_binding_after_stls() {
    let (server, options, _) = pop3_scenarios::scram_plus_after_stls();
    let mut c = Client::connect("127.0.0.1", server.port(), &options)
        .await
        .unwrap();
    assert!(c.session().channel_binding().is_some(), "tls-exporter data");
    let e = c.login(USER, PASS).await.unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::Server(Some(pop3_tokio::RespCode::Auth))
    );
    c.quit().await.unwrap();
    server.script_result().unwrap();
}

/// Two 1 MiB messages: the adaptive read buffer is back to its idle size
/// once a RETR (and a pipelined batch) ended.
#[tokio::test(flavor = "current_thread")]
async fn read_buffer_is_small_again_after_a_big_body() {
    use pop3_adapter::ReadBuffer;
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    while big.len() < 1 << 20 {
        big.extend_from_slice(b"0123456789abcdef0123456789abcdef0123456789abcdef\r\n");
    }
    let server = Server::builder()
        .user(USER, PASS)
        .mailbox(Mailbox::new().with("big", big.clone()).with("big2", big))
        .start()
        .unwrap();
    let mut c = login(&server).await;
    assert_eq!(c.read_buffer_size(), ReadBuffer::MIN);
    assert!(c.retr(1).await.unwrap().len() >= 1 << 20);
    assert_eq!(c.read_buffer_size(), ReadBuffer::MIN);
    let mut sink = CollectSink::new(|_, _| Ok(Disposition::Keep));
    assert_eq!(c.retr_each([1, 2], &mut sink).await.unwrap().received, 2);
    assert_eq!(c.read_buffer_size(), ReadBuffer::MIN);
    c.quit().await.unwrap();
}

/// The obvious call from a new user's program: `retr_each` over the
/// numbers of `list()`, in a spawned task (the future must be `Send`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retr_each_over_list_numbers_in_a_spawned_task() {
    let server = Server::builder()
        .user(USER, PASS)
        .mailbox(Mailbox::generate(3, 200))
        .start()
        .unwrap();
    let port = server.port();
    let task = tokio::spawn(async move {
        let mut client = Client::connect("127.0.0.1", port, &options()).await?;
        assert!(
            client.greeting().status.text.starts_with("POP3"),
            "{:?}",
            client.greeting()
        );
        client.login(USER, PASS).await?;
        let list = client.list().await?;
        let mut bodies = Vec::new();
        let mut sink = CollectSink::new(|n, body: Vec<u8>| {
            bodies.push((n, body));
            Ok(Disposition::Keep)
        });
        let report = client
            .retr_each(list.iter().map(|e| e.number), &mut sink)
            .await?;
        client.quit().await?;
        Ok::<_, Error>((report, bodies))
    });
    let (report, bodies) = task.await.expect("task").expect("session");
    assert_eq!(report.received, 3);
    assert_eq!(
        bodies.iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
}

/// An async sink that awaits in every call (as a tokio file write and
/// `fsync` would), records the calls, and fails `end` of `fail_end`.
struct Slow {
    calls: Vec<String>,
    bodies: Vec<Vec<u8>>,
    fail_end: Option<u32>,
}

impl Slow {
    fn failing_at(fail_end: Option<u32>) -> Slow {
        Slow {
            calls: Vec::new(),
            bodies: Vec::new(),
            fail_end,
        }
    }
}

impl pop3_tokio::AsyncMessageSink for Slow {
    async fn begin(&mut self, n: u32) -> std::io::Result<()> {
        tokio::task::yield_now().await;
        self.calls.push(format!("begin {n}"));
        self.bodies.push(Vec::new());
        Ok(())
    }
    async fn data(&mut self, _: u32, chunk: &[u8]) -> std::io::Result<()> {
        tokio::task::yield_now().await;
        self.bodies.last_mut().unwrap().extend_from_slice(chunk);
        Ok(())
    }
    async fn end(&mut self, n: u32, octets: u64) -> std::io::Result<Disposition> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        self.calls.push(format!("end {n} {octets}"));
        if self.fail_end == Some(n) {
            return Err(std::io::Error::other("disk full"));
        }
        Ok(Disposition::Delete)
    }
}

/// `retr_each_async` in a spawned task: every message whole, in order,
/// each DELE acknowledged after its awaited `end`; QUIT commits them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_sink_in_a_spawned_task_deletes_after_end() {
    let mailbox = Mailbox::generate(4, 3000);
    let expected: Vec<Vec<u8>> = mailbox
        .messages()
        .iter()
        .map(|m| expected_retr(m.data()))
        .collect();
    let server = Server::builder()
        .user(USER, PASS)
        .mailbox(mailbox)
        .start()
        .unwrap();
    let port = server.port();
    let task = tokio::spawn(async move {
        let mut client = Client::connect("127.0.0.1", port, &options()).await?;
        client.login(USER, PASS).await?;
        let list = client.list().await?;
        let mut sink = Slow::failing_at(None);
        let report = client
            .retr_each_async(list.iter().map(|e| e.number), &mut sink)
            .await?;
        client.quit().await?;
        Ok::<_, Error>((report, sink))
    });
    let (report, sink) = task.await.expect("task").expect("session");
    assert_eq!(report.received, 4);
    assert_eq!(report.deleted, vec![1, 2, 3, 4]);
    assert_eq!(sink.bodies, expected);
    assert_eq!(sink.calls[0], "begin 1");
    assert!(sink.calls[1].starts_with("end 1 "), "{:?}", sink.calls);
    assert_eq!(server.mailbox().len(), 0, "QUIT committed the DELEs");
}

/// A failing async `end` stops the batch: no DELE for that message or
/// any later one, the error names it, the session stays usable.
#[tokio::test(flavor = "current_thread")]
async fn async_sink_error_sends_no_more_deles() {
    let server = Server::builder()
        .user(USER, PASS)
        .mailbox(Mailbox::generate(4, 500))
        .start()
        .unwrap();
    let mut c = login(&server).await;
    let mut sink = Slow::failing_at(Some(2));
    let err = c
        .retr_each_async_report(1..=4, &mut sink)
        .await
        .expect_err("sink failed");
    assert_eq!(err.message, Some(2));
    assert_eq!(err.report.deleted, vec![1]);
    assert!(matches!(err.error, Error::Sink(_)), "{:?}", err.error);
    assert!(
        !sink
            .calls
            .iter()
            .any(|c| c.starts_with("begin 3") || c.starts_with("end 3")),
        "{:?}",
        sink.calls
    );
    c.rset().await.unwrap();
    assert_eq!(c.stat().await.unwrap().count, 4);
    c.quit().await.unwrap();
}

/// Counts the async calls, including `refused`.
#[derive(Default)]
struct Counting {
    refused: Vec<u32>,
    ended: Vec<u32>,
}

impl pop3_tokio::AsyncMessageSink for Counting {
    async fn data(&mut self, _: u32, _: &[u8]) -> std::io::Result<()> {
        Ok(())
    }
    async fn end(&mut self, n: u32, _: u64) -> std::io::Result<Disposition> {
        tokio::task::yield_now().await;
        self.ended.push(n);
        Ok(Disposition::Keep)
    }
    async fn refused(&mut self, n: u32, response: &pop3_tokio::ErrResponse) -> std::io::Result<()> {
        assert!(!response.text.is_empty());
        self.refused.push(n);
        Ok(())
    }
}

/// A `-ERR` to one RETR goes to the async `refused`, and the batch goes
/// on; `top_each_async` runs the same machine with TOP.
#[tokio::test(flavor = "current_thread")]
async fn async_sink_refused_and_top() {
    let server = Server::builder()
        .user(USER, PASS)
        .mailbox(Mailbox::generate(3, 300))
        .start()
        .unwrap();
    let mut c = login(&server).await;
    let mut sink = Counting::default();
    let report = c.retr_each_async([1, 9, 3], &mut sink).await.unwrap();
    assert_eq!(sink.ended, vec![1, 3]);
    assert_eq!(sink.refused, vec![9]);
    assert_eq!(report.refused.len(), 1);
    assert!(report.deleted.is_empty(), "Keep: no DELE");
    let mut sink = Counting::default();
    let report = c.top_each_async(1..=3, 0, &mut sink).await.unwrap();
    assert_eq!(report.received, 3);
    assert_eq!(sink.ended, vec![1, 2, 3]);
    c.quit().await.unwrap();
    assert_eq!(server.mailbox().len(), 3);
}

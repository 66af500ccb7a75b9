//! Log redaction. In its own test binary: `tracing` caches per-callsite
//! interest process-wide, so a thread-local subscriber must not race with
//! other tests' threads.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pop3_testkit::{Mailbox, Server};
use pop3_tokio::{Client, ConnectOptions, Timeouts, TlsPolicy};

const USER: &str = "alice";

fn options() -> ConnectOptions {
    ConnectOptions::new()
        .policy(TlsPolicy::None)
        .allow_cleartext_credentials(true)
        .timeouts(Timeouts::all(Duration::from_secs(20)))
}

/// Debug logging shows commands and replies, never the password.
#[tokio::test(flavor = "current_thread")]
async fn logs_redact_secrets() {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let server = Server::builder()
        .user(USER, "hunter2-topsecret")
        .mailbox(Mailbox::sample())
        .capabilities(["USER", "PIPELINING"])
        .start()
        .unwrap();
    let mut c = Client::connect("127.0.0.1", server.port(), &options())
        .await
        .unwrap();
    c.user(USER).await.unwrap();
    c.pass("hunter2-topsecret").await.unwrap();
    c.stat().await.unwrap();
    c.quit().await.unwrap();
    let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("C: STAT"), "{log}");
    assert!(log.contains("C: PASS <redacted>"), "{log}");
    assert!(log.contains("S raw"), "{log}");
    assert!(!log.contains("hunter2"), "{log}");
}

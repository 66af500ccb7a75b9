//! Logging and redaction. In its own test binary: `tracing` caches
//! callsite interest process-wide, so a thread-local subscriber in a binary
//! where other tests run in parallel can miss events (a flaky test).

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use pop3_blocking::Client;
use pop3_testkit::{Mailbox, Server};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let r = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&out.0.lock().unwrap()).into_owned();
    (r, text)
}

const PASSWORD: &str = "Very-Secret-pw";

#[test]
fn logs_one_line_per_command_and_redact_secrets() {
    let server = Server::builder()
        .user("alice", PASSWORD)
        .mailbox(Mailbox::sample())
        .start()
        .unwrap();
    let ((), logs) = capture_logs(|| {
        let mut c = Client::connect_plain("127.0.0.1", server.port(), true).unwrap();
        c.user("alice").unwrap();
        c.pass(PASSWORD).unwrap();
        c.stat().unwrap();
        c.quit().unwrap();
        let mut c = Client::connect_plain("127.0.0.1", server.port(), true).unwrap();
        c.apop("alice", PASSWORD).unwrap();
        c.quit().unwrap();
        let mut c = Client::connect_plain("127.0.0.1", server.port(), true).unwrap();
        c.login("alice", PASSWORD).unwrap(); // AUTH PLAIN with initial response
        c.quit().unwrap();
    });
    assert!(logs.contains("C: STAT"), "{logs}");
    assert!(logs.contains("C: PASS <redacted>"), "{logs}");
    assert!(logs.contains("C: APOP <redacted>"), "{logs}");
    assert!(logs.contains("C: AUTH PLAIN <redacted>"), "{logs}");
    assert!(logs.contains("S raw: +OK"), "trace shows raw bytes: {logs}");
    assert!(!logs.contains(PASSWORD), "password leaked into logs");
    // Neither the PLAIN payload nor the APOP digest appear.
    let ts = server.transcripts();
    for t in &ts {
        for line in t.client_lines() {
            if let Some(secret) = line
                .strip_prefix("AUTH PLAIN ")
                .or_else(|| line.strip_prefix("APOP alice "))
            {
                assert!(!logs.contains(secret.trim()), "secret {secret} leaked");
            }
        }
    }
}

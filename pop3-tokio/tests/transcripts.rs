//! One API, one behaviour: every `pop3-scenarios` scenario, and a login
//! with every mechanism, run through both adapters against the testkit;
//! what the SERVER received must be byte-identical.
//!
//! The two adapters' scenario interpreters are compiled in from their own
//! test files (so their `shared_scenarios` tests run here too).

use std::time::Duration;

use base64::Engine as _;
use pop3_proto::sasl::{CramMd5, Mechanism, Plain, Scram, ScramHash};
use pop3_testkit::{Mailbox, Script, Server, ServerHandle};

#[path = "../../pop3-blocking/tests/scenarios.rs"]
#[allow(dead_code)]
mod blocking_interpreter;
#[path = "scenarios.rs"]
#[allow(dead_code)]
mod tokio_interpreter;

/// The bytes, with each APOP digest replaced by `<digest>`: a digest is
/// made from the greeting's timestamp, which the testkit makes unique per
/// server run (both adapters' digests are checked by the server accepting
/// them, which the scenarios assert). A connection that starts with a TLS
/// handshake record (a ClientHello sent to a plain-text server) becomes
/// `<TLS records>`: its random bytes differ on every run.
fn normalized(connections: Vec<Vec<u8>>) -> Vec<String> {
    connections
        .iter()
        .map(|c| {
            if c.starts_with(&[0x16, 0x03]) {
                return String::from("<TLS records>");
            }
            String::from_utf8_lossy(c)
                .split_inclusive("\r\n")
                .map(|line| match line.strip_prefix("APOP ") {
                    Some(rest) => match rest.rsplit_once(' ') {
                        Some((user, _digest)) => format!("APOP {user} <digest>\r\n"),
                        None => line.to_string(),
                    },
                    None => line.to_string(),
                })
                .collect()
        })
        .collect()
}

#[test]
fn every_scenario_sends_the_same_bytes_through_both_adapters() {
    let mut compared = 0;
    let mut differ = Vec::new();
    for s in pop3_scenarios::all() {
        let b = normalized(
            s.client_transcripts(&blocking_interpreter::run)
                .unwrap_or_else(|e| panic!("{}: blocking: {e}", s.name)),
        );
        let t = normalized(
            s.client_transcripts(&tokio_interpreter::run)
                .unwrap_or_else(|e| panic!("{}: tokio: {e}", s.name)),
        );
        if b != t {
            differ.push(format!("{}:\n  blocking: {b:?}\n  tokio:    {t:?}", s.name));
        }
        compared += 1;
    }
    assert!(compared > 30, "only {compared} scenarios");
    assert!(
        differ.is_empty(),
        "{} scenarios differ:\n{}",
        differ.len(),
        differ.join("\n")
    );
}

const USER: &str = "alice";
const PASS: &str = "secret";

/// A login (`login`, `apop` or `authenticate` with a mechanism), run
/// through one adapter against a fresh server; returns what the server
/// received.
#[derive(Clone, Copy, Debug)]
enum Login {
    /// `login()` over cleartext with cleartext credentials allowed: the
    /// layer's plan picks (against the testkit's CAPA).
    Auto,
    /// `apop()`.
    Apop,
    /// `authenticate(PLAIN)`.
    Plain,
    /// `authenticate(CRAM-MD5)` against a scripted challenge.
    CramMd5,
    /// `authenticate(SCRAM-SHA-256)` with a fixed nonce against a
    /// scripted server-first message (the server then refuses).
    Scram,
}

fn mechanism(login: Login) -> Box<dyn Mechanism> {
    match login {
        Login::Plain => Box::new(Plain::new(USER, PASS)),
        Login::CramMd5 => Box::new(CramMd5::new(USER, PASS)),
        Login::Scram => {
            Box::new(Scram::with_nonce(ScramHash::Sha256, USER, PASS, "fixednonce").unwrap())
        }
        _ => unreachable!(),
    }
}

fn server(login: Login) -> ServerHandle {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let start = || {
        Script::new()
            .send(b"+OK ready <1.2@x>\r\n")
            .expect_line("CAPA")
            .send(b"+OK\r\nSASL CRAM-MD5 SCRAM-SHA-256\r\n.\r\n")
    };
    let script = match login {
        Login::CramMd5 => start()
            .expect_line("AUTH CRAM-MD5")
            .send_line(&format!(
                "+ {}",
                b64("<1896.697170952@postoffice.example.net>")
            ))
            .read_line()
            .send(b"+OK\r\n")
            .expect_line("CAPA")
            .send(b"-ERR no\r\n"),
        Login::Scram => start()
            .expect_prefix("AUTH SCRAM-SHA-256 ")
            .send_line(&format!(
                "+ {}",
                b64("r=fixednonceSERVER,s=QSXCR+Q6sek8bf92,i=4096")
            ))
            .read_line()
            .send(b"-ERR [AUTH] no\r\n"),
        _ => {
            return Server::builder()
                .user(USER, PASS)
                .mailbox(Mailbox::sample())
                .start()
                .unwrap()
        }
    };
    Server::builder()
        .script(script.expect_line("QUIT").send(b"+OK\r\n"))
        .start()
        .unwrap()
}

fn blocking_login(login: Login, port: u16) {
    let mut c = pop3_blocking::Client::connect_plain("127.0.0.1", port, true).unwrap();
    let r = match login {
        Login::Auto => c.login(USER, PASS).map(|_| ()),
        Login::Apop => c.apop(USER, PASS).map(|_| ()),
        m => c.authenticate(mechanism(m)).map(|_| ()),
    };
    if !matches!(login, Login::Scram) {
        r.unwrap();
    }
    c.quit().unwrap();
}

fn tokio_login(login: Login, port: u16) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = pop3_tokio::Client::connect_plain("127.0.0.1", port, true)
            .await
            .unwrap();
        let r = match login {
            Login::Auto => c.login(USER, PASS).await.map(|_| ()),
            Login::Apop => c.apop(USER, PASS).await.map(|_| ()),
            m => c.authenticate(mechanism(m)).await.map(|_| ()),
        };
        if !matches!(login, Login::Scram) {
            r.unwrap();
        }
        c.quit().await.unwrap();
    });
}

fn received(server: &ServerHandle) -> Vec<Vec<u8>> {
    server.wait_idle(Duration::from_secs(5));
    let mut t = server.transcripts();
    t.sort_by_key(|t| t.connection);
    t.into_iter().map(|t| t.client).collect()
}

#[test]
fn every_login_mechanism_sends_the_same_bytes_through_both_adapters() {
    for login in [
        Login::Auto,
        Login::Apop,
        Login::Plain,
        Login::CramMd5,
        Login::Scram,
    ] {
        let s = server(login);
        blocking_login(login, s.port());
        let b = normalized(received(&s));
        let s = server(login);
        tokio_login(login, s.port());
        let t = normalized(received(&s));
        assert_eq!(b, t, "{login:?}");
        assert_eq!(b.len(), 1, "{login:?}: one connection");
        assert!(
            b[0].ends_with("QUIT\r\n"),
            "{login:?}: the session ran to the end: {:?}",
            b[0]
        );
    }
}

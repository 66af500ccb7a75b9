//! Scripted mode and transcripts.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Client;
use pop3_testkit::{Mailbox, Script, ScriptStatus, Server};

#[test]
fn script_passes_with_exact_bytes() {
    let s = Server::builder()
        .script(
            Script::new()
                .send(b"+OK hi\n")
                .expect_line("USER alice")
                .send(b"+OK\r\n")
                .expect_prefix("PASS ")
                .send_line("-ERR [AUTH] nope")
                .read_line()
                .send(b"+OK bye\r\n"),
        )
        .start()
        .unwrap();
    let (mut c, g) = Client::greeted(s.addr());
    assert_eq!(g, "+OK hi\n", "sent verbatim, no CRLF fix-up");
    assert_eq!(c.cmd("USER alice"), "+OK\r\n");
    assert_eq!(c.cmd("PASS whatever"), "-ERR [AUTH] nope\r\n");
    assert_eq!(c.cmd("ANYTHING"), "+OK bye\r\n");
    assert_eq!(c.rest(), b"", "closed after the last step");
    assert_eq!(s.script_result(), Ok(()));
    let o = s.script_outcomes();
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].status, ScriptStatus::Passed);
    assert_eq!(o[0].steps_completed, 7);
}

#[test]
fn script_mismatch_is_recorded_and_closes() {
    let s = Server::builder()
        .script(
            Script::new()
                .send(b"+OK\r\n")
                .expect_line("USER alice")
                .send(b"+OK\r\n"),
        )
        .start()
        .unwrap();
    let (mut c, _) = Client::greeted(s.addr());
    c.send(b"USER bob\r\n");
    assert_eq!(c.rest(), b"", "closed without replying");
    let err = s.script_result().unwrap_err();
    assert_eq!(err.connection, Some(0));
    assert_eq!(err.step, Some(1));
    assert!(err.message.contains("expect_line(\"USER alice\")"), "{err}");
    assert!(err.message.contains("USER bob\\r\\n"), "{err}");
    assert!(err.to_string().starts_with("connection 0, step 1: "));
}

#[test]
fn script_requires_crlf() {
    let s = Server::builder()
        .script(Script::new().expect_line("CAPA"))
        .start()
        .unwrap();
    let mut c = Client::connect(s.addr());
    c.send(b"CAPA\n");
    assert_eq!(c.rest(), b"");
    let err = s.script_result().unwrap_err();
    assert!(err.message.contains("not CRLF-terminated"), "{err}");
}

#[test]
fn script_prefix_mismatch_and_client_closing_early() {
    let s = Server::builder()
        .script(
            Script::new()
                .expect_prefix("AUTH PLAIN ")
                .expect_line("QUIT"),
        )
        .start()
        .unwrap();
    let mut c = Client::connect(s.addr());
    c.send(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
    drop(c);
    let err = s.script_result().unwrap_err();
    assert_eq!(err.step, Some(1));
    assert!(
        err.message.contains("client closed the connection"),
        "{err}"
    );

    let s = Server::builder()
        .script(Script::new().expect_prefix("AUTH PLAIN "))
        .start()
        .unwrap();
    let mut c = Client::connect(s.addr());
    c.send(b"AUTH LOGIN\r\n");
    assert_eq!(c.rest(), b"");
    assert!(s
        .script_result()
        .unwrap_err()
        .message
        .contains("got \"AUTH LOGIN\\r\\n\""));
}

#[test]
fn no_connection_is_an_error() {
    let s = Server::builder().script(Script::new()).start().unwrap();
    let err = s
        .script_result_within(Duration::from_millis(10))
        .unwrap_err();
    assert_eq!(err.connection, None);
    assert!(err.message.contains("no connection"));
}

#[test]
fn script_sleep_close_and_stall() {
    let s = Server::builder()
        .script(
            Script::new()
                .sleep(Duration::from_millis(200))
                .send(b"+OK late\r\n")
                .close()
                .send(b"never sent\r\n"),
        )
        .start()
        .unwrap();
    let t = Instant::now();
    let mut c = Client::connect(s.addr());
    assert_eq!(c.rest(), b"+OK late\r\n");
    assert!(t.elapsed() >= Duration::from_millis(180));
    assert_eq!(s.script_result(), Ok(()));

    let s = Server::builder()
        .script(Script::new().send(b"+OK\r\n").stall())
        .start()
        .unwrap();
    let (mut c, _) = Client::greeted(s.addr());
    c.stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    c.send(b"USER alice\r\n");
    let mut buf = [0u8; 8];
    assert!(c.stream.read(&mut buf).is_err(), "no answer while stalled");
    // Stall counts as passed even though the connection is still open.
    assert_eq!(s.script_result(), Ok(()));
    assert_eq!(s.active_connections(), 1);
    drop(c);
    assert!(s.wait_idle(Duration::from_secs(5)));
    assert!(s.transcripts()[0].client_contains("USER alice"));
}

#[test]
fn script_sequence_per_connection() {
    let s = Server::builder()
        .scripts(vec![
            Script::new().send(b"+OK first\r\n"),
            Script::new().send(b"+OK second\r\n"),
        ])
        .start()
        .unwrap();
    for want in ["+OK first\r\n", "+OK second\r\n"] {
        let mut c = Client::connect(s.addr());
        assert_eq!(String::from_utf8(c.rest()).unwrap(), want);
    }
    assert_eq!(s.script_result(), Ok(()));
    let mut c = Client::connect(s.addr());
    assert_eq!(c.rest(), b"");
    let err = s.script_result().unwrap_err();
    assert_eq!(err.connection, Some(2));
    assert!(err.message.contains("unexpected connection"));
}

#[test]
fn scripted_server_never_interprets() {
    // Even with users and a mailbox configured, the script rules.
    let s = Server::builder()
        .user("alice", "secret")
        .mailbox(Mailbox::sample())
        .script(Script::new().expect_line("STAT").send(b"+OK 0 0\r\n"))
        .start()
        .unwrap();
    let mut c = Client::connect(s.addr());
    assert_eq!(c.cmd("STAT"), "+OK 0 0\r\n");
    assert_eq!(s.script_result(), Ok(()));
}

#[test]
fn transcript_records_both_directions() {
    let s = Server::builder()
        .user("alice", "secret")
        .mailbox(Mailbox::sample())
        .start()
        .unwrap();
    {
        let mut c = Client::login(s.addr(), "alice", "secret");
        assert!(c.cmd("STAT").starts_with("+OK 6 "));
        assert!(c.cmd("QUIT").starts_with("+OK"));
    }
    {
        // Second connection: never logs in.
        let (mut c, _) = Client::greeted(s.addr());
        assert!(c.cmd("CAPA").starts_with("+OK"));
        c.body();
    }
    assert!(s.wait_idle(Duration::from_secs(5)));
    let ts = s.transcripts();
    assert_eq!(ts.len(), 2);
    assert_eq!(ts[0].connection, 0);
    assert!(ts[0].closed && ts[1].closed);
    assert!(!ts[0].tls && !ts[0].truncated);
    assert_eq!(ts[0].peer.ip().to_string(), "127.0.0.1");
    assert_eq!(
        ts[0].client,
        b"USER alice\r\nPASS secret\r\nSTAT\r\nQUIT\r\n".to_vec()
    );
    assert_eq!(ts[0].client_commands(), ["USER", "PASS", "STAT", "QUIT"]);
    assert_eq!(ts[0].client_lines()[1], "PASS secret");
    assert!(ts[0]
        .server_text()
        .starts_with("+OK POP3 pop3-testkit ready <"));
    assert_eq!(ts[0].server_lines().len(), 5);
    assert!(ts[0].client_contains("PASS"));
    assert!(!ts[1].client_contains("PASS"));
    assert_eq!(ts[1].client_text(), "CAPA\r\n");
    assert!(s.client_sent("secret"));
    assert!(!s.client_sent("hunter2"));
}

#[test]
fn transcript_limit_truncates() {
    let s = Server::builder().transcript_limit(10).start().unwrap();
    {
        let mut c = TcpStream::connect(s.addr()).unwrap();
        c.write_all(b"NOOP NOOP NOOP NOOP\r\nQUIT\r\n").unwrap();
        let mut v = Vec::new();
        c.read_to_end(&mut v).unwrap();
    }
    assert!(s.wait_idle(Duration::from_secs(5)));
    let t = &s.transcripts()[0];
    assert_eq!(t.client, b"NOOP NOOP ".to_vec());
    assert_eq!(t.server.len(), 10);
    assert!(t.truncated);
}

//! Each quirk, observed over a raw TCP connection.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{unstuff, Client};
use pop3_testkit::{Mailbox, Message, Server, ServerBuilder};

const M1: &str = "Subject: one\r\n\r\n.dot\r\nbody\r\n";

fn base() -> ServerBuilder {
    Server::builder().user("alice", "secret").mailbox(
        Mailbox::new()
            .with("u1", M1)
            .with("u2", "Subject: two\r\n\r\nx\r\n"),
    )
}

#[test]
fn bare_lf_everywhere() {
    let s = base().bare_lf(true).start().unwrap();
    let mut c = Client::connect(s.addr());
    let g = c.line();
    assert!(
        g.starts_with("+OK POP3") && g.ends_with(">\n") && !g.contains('\r'),
        "{g:?}"
    );
    c.send(b"USER alice\r\nPASS secret\r\nRETR 1\r\nCAPA\r\nQUIT\r\n");
    let rest = c.rest();
    assert!(
        !rest.contains(&b'\r'),
        "{:?}",
        String::from_utf8_lossy(&rest)
    );
    let text = String::from_utf8(rest).unwrap();
    assert!(text.contains(&format!(
        "+OK {} octets\nSubject: one\n\n..dot\nbody\n.\n",
        M1.len()
    )));
    assert!(text.contains("+OK Capability list follows\nTOP\n"));
}

#[test]
fn bare_ok_without_text() {
    let s = base().bare_ok(true).start().unwrap();
    let (mut c, g) = Client::greeted(s.addr());
    assert!(
        g.starts_with("+OK POP3 pop3-testkit ready"),
        "greeting keeps text"
    );
    assert_eq!(c.cmd("USER alice"), "+OK\r\n");
    assert_eq!(c.cmd("PASS secret"), "+OK\r\n");
    assert_eq!(c.cmd("STAT"), format!("+OK 2 {}\r\n", M1.len() + 19));
    assert_eq!(c.cmd("LIST 1"), format!("+OK 1 {}\r\n", M1.len()));
    assert_eq!(c.cmd("UIDL 2"), "+OK 2 u2\r\n");
    assert_eq!(c.cmd("LIST"), "+OK\r\n");
    assert_eq!(c.body().len(), 2);
    assert_eq!(c.cmd("RETR 1"), "+OK\r\n");
    assert_eq!(c.body().concat(), "Subject: one\r\n\r\n..dot\r\nbody\r\n");
    assert_eq!(c.cmd("DELE 1"), "+OK\r\n");
    assert_eq!(c.cmd("QUIT"), "+OK\r\n");
}

#[test]
fn capa_refused() {
    let s = base().capa_refused(true).start().unwrap();
    let (mut c, _) = Client::greeted(s.addr());
    assert_eq!(c.cmd("CAPA"), "-ERR unknown command\r\n");
    assert!(c.cmd("USER alice").starts_with("+OK"));
}

#[test]
fn greeting_delay() {
    let s = base()
        .greeting_delay(Duration::from_millis(300))
        .start()
        .unwrap();
    let t = Instant::now();
    let (_c, g) = Client::greeted(s.addr());
    assert!(g.starts_with("+OK"));
    assert!(
        t.elapsed() >= Duration::from_millis(280),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn write_delay() {
    let s = base()
        .write_delay(Duration::from_millis(100))
        .start()
        .unwrap();
    let (mut c, _) = Client::greeted(s.addr());
    let t = Instant::now();
    assert!(c.cmd("USER alice").starts_with("+OK"));
    assert!(
        t.elapsed() >= Duration::from_millis(90),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn split_writes_into_single_bytes() {
    let s = base()
        .split_writes(1)
        .write_delay(Duration::from_millis(1))
        .start()
        .unwrap();
    let mut c = Client::connect(s.addr());
    c.send(b"USER alice\r\n");
    // Read with raw reads: each read returns the first available bytes; with
    // one-byte writes spaced by 1 ms we see several small reads.
    let mut reads = 0;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(b"send PASS\r\n") {
        let n = c.stream.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
        reads += 1;
    }
    let text = String::from_utf8(got).unwrap();
    assert!(text.starts_with("+OK POP3 pop3-testkit ready <"));
    assert!(text.ends_with("\r\n+OK alice accepted, send PASS\r\n"));
    assert!(reads > 10, "only {reads} reads");
    assert_eq!(s.connection_count(), 1);
}

#[test]
fn split_writes_in_chunks_keeps_content() {
    let s = base().split_writes(7).start().unwrap();
    let mut c = Client::login(s.addr(), "alice", "secret");
    assert_eq!(c.cmd("RETR 1"), format!("+OK {} octets\r\n", M1.len()));
    assert_eq!(unstuff(&c.body_bytes()), M1.as_bytes());
}

#[test]
fn close_after_commands() {
    let s = base().close_after_commands(2).start().unwrap();
    let (mut c, _) = Client::greeted(s.addr());
    c.send(b"USER alice\r\nPASS secret\r\nSTAT\r\n");
    assert!(c.line().starts_with("+OK"));
    assert!(c.line().starts_with("+OK alice's maildrop"));
    assert_eq!(c.rest(), b"", "no reply to the third command");
}

#[test]
fn close_after_commands_commits_nothing() {
    let s = base().close_after_commands(3).start().unwrap();
    let mut c = Client::login(s.addr(), "alice", "secret");
    assert!(c.cmd("DELE 1").starts_with("+OK"));
    assert_eq!(c.cmd("QUIT"), "");
    assert!(s.wait_idle(Duration::from_secs(5)));
    assert_eq!(s.mailbox().len(), 2);
}

#[test]
fn truncated_retr() {
    let s = base().truncate_retr(2, 5).start().unwrap();
    let mut c = Client::login(s.addr(), "alice", "secret");
    assert!(c.cmd("RETR 1").starts_with("+OK"));
    assert_eq!(c.body().concat(), "Subject: one\r\n\r\n..dot\r\nbody\r\n");
    assert_eq!(c.cmd("RETR 1"), format!("+OK {} octets\r\n", M1.len()));
    assert_eq!(c.rest(), b"Subje");
}

#[test]
fn stall_keeps_socket_open() {
    let s = base().stall_on("retr").start().unwrap();
    let mut c = Client::login(s.addr(), "alice", "secret");
    c.stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    c.send(b"RETR 1\r\nNOOP\r\n");
    let mut buf = [0u8; 16];
    let err = c.stream.read(&mut buf).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{err:?}"
    );
    assert_eq!(s.active_connections(), 1, "socket still open");
    // What the client sent while stalled is still recorded.
    c.send(b"PASS hunter2\r\n");
    std::thread::sleep(Duration::from_millis(100));
    assert!(s.client_sent(b"PASS hunter2"));
    drop(c);
    assert!(s.wait_idle(Duration::from_secs(5)));
}

#[test]
fn overlong_greeting() {
    let s = base().overlong_greeting(5000).start().unwrap();
    let (_c, g) = Client::greeted(s.addr());
    assert_eq!(g.len(), 5002);
    assert!(g.starts_with("+OK xxx") && g.ends_with("x\r\n"));
}

#[test]
fn override_reply_for_one_command() {
    let long = format!("+OK {}\r\n", "9".repeat(1000));
    let s = base().override_reply("stat", long.clone()).start().unwrap();
    let mut c = Client::login(s.addr(), "alice", "secret");
    assert_eq!(c.cmd("STAT"), long);
    assert!(c.cmd("NOOP").starts_with("+OK"));
}

#[test]
fn garbage_greeting() {
    let s = base()
        .garbage_greeting(b"220 mail.example.com ESMTP ready\r\n".to_vec())
        .start()
        .unwrap();
    let (mut c, g) = Client::greeted(s.addr());
    assert_eq!(g, "220 mail.example.com ESMTP ready\r\n");
    assert!(
        c.cmd("USER alice").starts_with("+OK"),
        "commands still served"
    );
}

#[test]
fn quit_fails_and_applies_nothing() {
    let s = base().quit_fails(true).start().unwrap();
    let mut c = Client::login(s.addr(), "alice", "secret");
    assert!(c.cmd("DELE 1").starts_with("+OK"));
    assert_eq!(
        c.cmd("QUIT"),
        "-ERR [SYS/TEMP] some deleted messages not removed\r\n"
    );
    assert_eq!(c.rest(), b"");
    assert_eq!(s.mailbox().len(), 2);
}

#[test]
fn lf_terminator() {
    let s = base().lf_terminator(true).start().unwrap();
    let mut c = Client::login(s.addr(), "alice", "secret");
    assert!(c.cmd("RETR 1").starts_with("+OK"));
    assert_eq!(
        c.body_bytes(),
        b"Subject: one\r\n\r\n..dot\r\nbody\r\n.\n".to_vec()
    );
    assert_eq!(c.cmd("UIDL"), "+OK unique-id listing follows\r\n");
    assert_eq!(c.body_bytes(), b"1 u1\r\n2 u2\r\n.\n".to_vec());
}

#[test]
fn tricky_message_round_trips() {
    let tricky = Message::tricky("t1");
    let s = Server::builder()
        .user("alice", "secret")
        .mailbox(vec![tricky.clone()].into())
        .start()
        .unwrap();
    let mut c = Client::login(s.addr(), "alice", "secret");
    assert_eq!(c.cmd("RETR 1"), format!("+OK {} octets\r\n", tricky.size()));
    let raw = c.body_bytes();
    let text = raw.clone();
    // Stuffed on the wire...
    assert!(common_contains(&text, b"\r\n..leading dot\r\n"));
    assert!(common_contains(&text, b"\r\n..\r\n...\r\n"));
    // ... and exactly the stored bytes (plus the added final CRLF) after unstuffing.
    let mut expected = tricky.data().to_vec();
    expected.extend_from_slice(b"\r\n");
    assert_eq!(unstuff(&raw), expected);
    assert!(tricky.data().contains(&0));
    assert!(tricky.data().contains(&0xe9));
    assert!(tricky
        .data()
        .split(|&b| b == b'\n')
        .any(|l| l.len() >= 10_000));
}

fn common_contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

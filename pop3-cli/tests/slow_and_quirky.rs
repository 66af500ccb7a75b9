//! The whole-response timeout (issue 11 item 2) and fetch quirks of real
//! servers (item 8), through the `pop3` binary against scripted servers.
//!
//! Trickling servers send one byte per 100 ms for far longer than
//! `--timeout 2`: every kind of response (greeting, status line, listing,
//! a RETR body inside `fetch --delete`) must end with exit 7 within a few
//! seconds, and a body cut this way is neither stored nor DELEd.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use pop3_testkit::{Script, ServerHandle};

/// Greeting, CAPA (no PIPELINING: one command at a time), USER/PASS and
/// the CAPA after login.
fn login() -> Script {
    script_logged_in(b"+OK\r\nUSER\r\nTOP\r\nUIDL\r\n.\r\n")
}

/// `bytes`, one byte every 100 ms, cycled for `steps` bytes (far longer
/// than the client's timeout).
fn trickle(mut s: Script, bytes: &[u8], steps: usize) -> Script {
    for i in 0..steps {
        s = s
            .send(&bytes[i % bytes.len()..][..1])
            .sleep(Duration::from_millis(100));
    }
    s
}

fn assert_timed_out(r: &Run, took: Duration) {
    assert_eq!(r.code, 7, "{r:?}");
    assert!(r.stderr.contains("timed out"), "{r:?}");
    assert!(
        took < Duration::from_secs(8),
        "took {took:?} with --timeout 2: {r:?}"
    );
}

fn stored_files(dir: &Path) -> usize {
    ["new", "cur", "tmp"]
        .iter()
        .map(|d| {
            std::fs::read_dir(dir.join(d))
                .map(|it| it.count())
                .unwrap_or(0)
        })
        .sum()
}

#[test]
fn trickled_greeting_times_out() {
    let s = trickle(Script::new(), b"+OK this greeting never ends ", 200);
    let (r, _server, took) = run_scripted(s, "2", &["stat"]);
    assert_timed_out(&r, took);
    assert!(r.stderr.contains("greeting"), "{r:?}");
}

#[test]
fn trickled_status_line_times_out() {
    let s = trickle(login().expect_line("STAT"), b"+OK 1 1", 200);
    let (r, _server, took) = run_scripted(s, "2", &["stat"]);
    assert_timed_out(&r, took);
    assert!(r.stderr.contains("STAT"), "{r:?}");
}

#[test]
fn trickled_listing_inside_fetch_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("md");
    // A listing of ever more entries, one byte per 100 ms.
    let entries: String = (1..100).map(|n| format!("{n} 10\r\n")).collect();
    let s = trickle(
        login().expect_line("LIST").send(b"+OK\r\n"),
        entries.as_bytes(),
        200,
    );
    let (r, server, took) = run_scripted(
        s,
        "2",
        &["fetch", "--delete", "--maildir", md.to_str().unwrap()],
    );
    assert_timed_out(&r, took);
    assert!(!server.client_sent("DELE"), "{r:?}");
    assert_eq!(stored_files(&md), 0, "{r:?}");
}

#[test]
fn trickled_body_inside_fetch_delete_is_not_stored_nor_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("md");
    let s = login()
        .expect_line("LIST")
        .send(b"+OK\r\n1 100000\r\n.\r\n")
        .expect_line("UIDL")
        .send(b"+OK\r\n1 uid-1\r\n.\r\n")
        .expect_line("RETR 1")
        .send(b"+OK\r\nSubject: slow\r\n\r\n");
    let s = trickle(s, b"line of a body that never ends\r\n", 200);
    let (r, server, took) = run_scripted(
        s,
        "2",
        &["fetch", "--delete", "--maildir", md.to_str().unwrap()],
    );
    assert_timed_out(&r, took);
    assert!(!server.client_sent("DELE"), "the cut body was DELEd: {r:?}");
    assert_eq!(stored_files(&md), 0, "a cut body was stored: {r:?}");
}

/// LIST, UIDL and the RETR of one message `uid-1` whose body is `body`,
/// LIST claiming `listed` octets; then DELE answered `dele_reply`, QUIT.
fn one_message_fetch(listed: usize, body: &[u8], dele_reply: &[u8]) -> Script {
    let mut retr = b"+OK\r\n".to_vec();
    retr.extend_from_slice(body);
    retr.extend_from_slice(b".\r\n");
    login()
        .expect_line("LIST")
        .send(format!("+OK\r\n1 {listed}\r\n.\r\n"))
        .expect_line("UIDL")
        .send(b"+OK\r\n1 uid-1\r\n.\r\n")
        .expect_line("RETR 1")
        .send(retr)
        .expect_line("DELE 1")
        .send(dele_reply)
        .expect_line("QUIT")
        .send(b"+OK bye\r\n")
}

fn fetch_into(script: Script) -> (Run, ServerHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("md");
    let (r, server, _) = run_scripted(
        script,
        "10",
        &["fetch", "--delete", "--maildir", md.to_str().unwrap()],
    );
    (r, server, dir)
}

#[test]
fn retr_longer_than_list_said_is_stored_whole() {
    // The server inserts a header when it sends the message (Status:,
    // X-UIDL:): RETR is longer than LIST said. The whole message is kept.
    let body = b"X-Inserted: by the server\r\nSubject: hi\r\n\r\nbody text\r\n";
    let (r, server, dir) = fetch_into(one_message_fetch(20, body, b"+OK\r\n"));
    assert_eq!(r.code, 0, "{r:?}");
    server.script_result_within(Duration::from_secs(5)).unwrap();
    let stored = maildir_messages(&dir.path().join("md"));
    assert_eq!(stored.len(), 1, "{r:?}");
    assert_eq!(lf_to_crlf(&stored[0]), body.to_vec());
}

#[test]
fn dele_of_an_already_deleted_message_answered_ok_inside_fetch() {
    // Some servers answer +OK to DELE of a message another session already
    // deleted; fetch has stored it first, so nothing is lost either way.
    let body = b"Subject: gone\r\n\r\nx\r\n";
    let (r, server, dir) = fetch_into(one_message_fetch(
        body.len(),
        body,
        b"+OK message 1 already deleted\r\n",
    ));
    assert_eq!(r.code, 0, "{r:?}");
    server.script_result_within(Duration::from_secs(5)).unwrap();
    assert_eq!(maildir_messages(&dir.path().join("md")).len(), 1);
}

#[test]
fn stat_octets_growing_during_the_session() {
    // The server announced 1 message of 100 octets at login, then inserted
    // a header: STAT says more. The CLI reports what STAT says.
    let s = Script::new()
        .send(b"+OK ready\r\n")
        .expect_line("CAPA")
        .send(b"+OK\r\nUSER\r\nUIDL\r\n.\r\n")
        .expect_line(&format!("USER {USER}"))
        .send(b"+OK\r\n")
        .expect_line(&format!("PASS {PASSWORD}"))
        .send(b"+OK maildrop has 1 message (100 octets)\r\n")
        .expect_line("CAPA")
        .send(b"+OK\r\nUSER\r\nUIDL\r\n.\r\n")
        .expect_line("STAT")
        .send(b"+OK 1 131\r\n")
        .expect_line("QUIT")
        .send(b"+OK\r\n");
    let (r, server, _) = run_scripted(s, "10", &["--json", "stat"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(r.out().trim()).unwrap();
    assert_eq!(v["messages"], 1);
    assert_eq!(v["octets"], 131);
    server.script_result_within(Duration::from_secs(5)).unwrap();
}

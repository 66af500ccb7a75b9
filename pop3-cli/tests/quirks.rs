//! Regression tests for quirks that real servers have, each against a
//! scripted or quirk-configured testkit server, through the `pop3` binary.

mod common;

use std::time::Duration;

use common::*;
use pop3_testkit::{Mailbox, Script, Server};

/// `pop3 --tls none --allow-cleartext --auth user` against `script`.
fn scripted(script: Script, args: &[&str]) -> (Run, pop3_testkit::ServerHandle) {
    let (r, server, _) = run_scripted(script, "10", args);
    (r, server)
}

/// A USER/PASS login with TOP and UIDL, up to PASS's `+OK`.
fn login() -> Script {
    script_user_pass(b"+OK\r\nUSER\r\nTOP\r\nUIDL\r\n.\r\n")
}

#[test]
fn top_with_an_extra_empty_line_after_the_header() {
    let s = login()
        .expect_line("CAPA")
        .send(b"+OK\r\nUSER\r\nTOP\r\nUIDL\r\n.\r\n")
        .expect_line("TOP 1 0")
        .send(b"+OK\r\nSubject: hi\r\nFrom: a@b\r\n\r\n\r\n.\r\n")
        .expect_line("QUIT")
        .send(b"+OK\r\n");
    let (r, server) = scripted(s, &["top", "1", "0"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, b"Subject: hi\r\nFrom: a@b\r\n\r\n\r\n");
    server.script_result_within(Duration::from_secs(5)).unwrap();
}

#[test]
fn server_closes_before_its_greeting() {
    let (r, _server) = scripted(Script::new().close(), &["stat"]);
    assert_eq!(r.code, 4, "{r:?}");
    let msg = r.stderr.to_lowercase();
    assert!(msg.contains("greeting"), "names the greeting: {r:?}");
    assert!(msg.contains("closed"), "says it closed: {r:?}");
}

#[test]
fn second_connection_refused_with_an_err_greeting() {
    let s = Script::new().send(b"-ERR [IN-USE] too many connections from your address\r\n");
    let (r, _server) = scripted(s, &["stat"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("refused the connection"), "{r:?}");
    assert!(r.stderr.contains("too many connections"), "{r:?}");
}

#[test]
fn no_capa_at_all() {
    let tk = start(
        Server::builder()
            .mailbox(Mailbox::sample())
            .stls(true)
            .capa_refused(true),
    );
    let r = run(tk
        .cmd()
        .args(["--tls", "none", "--allow-cleartext", "stat"]));
    assert_eq!(r.code, 0, "USER/PASS without CAPA: {r:?}");
    // STLS cannot be discovered without CAPA: required STLS fails (exit 6)
    // before any credential, and says why.
    let tk = start(
        Server::builder()
            .mailbox(Mailbox::sample())
            .stls(true)
            .capa_refused(true),
    );
    let r = run(tk.cmd().arg("stat"));
    assert_eq!(r.code, 6, "{r:?}");
    assert!(r.stderr.contains("STLS"), "{r:?}");
    assert!(!tk.server.client_sent("PASS"), "{r:?}");
}

#[test]
fn bare_ok_greeting_and_replies() {
    let s = Script::new()
        .send(b"+OK\r\n")
        .expect_line("CAPA")
        .send(b"-ERR\r\n")
        .expect_line(&format!("USER {USER}"))
        .send(b"+OK\r\n")
        .expect_line(&format!("PASS {PASSWORD}"))
        .send(b"+OK\r\n")
        .expect_line("STAT")
        .send(b"+OK 2 300\r\n")
        .expect_line("QUIT")
        .send(b"+OK\r\n");
    let (r, server) = scripted(s, &["--json", "stat"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.out().contains("\"messages\":2"), "{r:?}");
    server.script_result_within(Duration::from_secs(5)).unwrap();
}

#[test]
fn dele_of_an_already_deleted_message_answered_ok() {
    let s = login()
        .expect_line("CAPA")
        .send(b"+OK\r\nUSER\r\n.\r\n")
        .expect_line("DELE 1")
        .send(b"+OK marked\r\n")
        .expect_line("DELE 1")
        .send(b"+OK already marked\r\n")
        .expect_line("QUIT")
        .send(b"+OK 1 deleted\r\n");
    let (r, server) = scripted(s, &["dele", "1", "1"]);
    assert_eq!(r.code, 0, "{r:?}");
    server.script_result_within(Duration::from_secs(5)).unwrap();
}

#[test]
fn temporary_failure_at_login_is_not_a_wrong_password() {
    for reply in [
        &b"-ERR [SYS/TEMP] authentication backend unavailable\r\n"[..],
        b"-ERR [IN-USE] maildrop locked\r\n",
        b"-ERR [LOGIN-DELAY] wait 5 minutes\r\n",
        b"-ERR server shutting down, try again later\r\n",
        b"-ERR Temporary failure, try again\r\n",
    ] {
        let s = Script::new()
            .send(b"+OK ready\r\n")
            .expect_line("CAPA")
            .send(b"+OK\r\nUSER\r\n.\r\n")
            .expect_line(&format!("USER {USER}"))
            .send(b"+OK\r\n")
            .expect_line(&format!("PASS {PASSWORD}"))
            .send(reply)
            .expect_line("QUIT")
            .send(b"+OK\r\n");
        let (r, server) = scripted(s, &["stat"]);
        assert_eq!(r.code, 3, "{}: {r:?}", String::from_utf8_lossy(reply));
        server.script_result_within(Duration::from_secs(5)).unwrap();
    }
    // A plain -ERR to PASS is a wrong password: exit 5.
    let s = Script::new()
        .send(b"+OK ready\r\n")
        .expect_line("CAPA")
        .send(b"+OK\r\nUSER\r\n.\r\n")
        .expect_line(&format!("USER {USER}"))
        .send(b"+OK\r\n")
        .expect_line(&format!("PASS {PASSWORD}"))
        .send(b"-ERR [AUTH] invalid login\r\n")
        .expect_line("QUIT")
        .send(b"+OK\r\n");
    let (r, server) = scripted(s, &["stat"]);
    assert_eq!(r.code, 5, "{r:?}");
    server.script_result_within(Duration::from_secs(5)).unwrap();
}

#[test]
fn sys_temp_to_auth_mid_login() {
    // AUTH PLAIN answered -ERR [SYS/TEMP]: a server failure (exit 3).
    let s = Script::new()
        .send(b"+OK ready\r\n")
        .expect_line("CAPA")
        .send(b"+OK\r\nSASL PLAIN\r\n.\r\n")
        .expect_prefix("AUTH PLAIN")
        .send(b"-ERR [SYS/TEMP] try later\r\n")
        .expect_line("QUIT")
        .send(b"+OK\r\n");
    let server = Server::builder().script(s).start().unwrap();
    let r = run(pop3()
        .args(["--host", "127.0.0.1", "--port", &server.port().to_string()])
        .args(["--user", USER, "--tls", "none", "--allow-cleartext"])
        .args(["--auth", "plain", "--timeout", "10", "stat"])
        .env("POP3_PASSWORD", PASSWORD));
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("SYS/TEMP"), "{r:?}");
    server.script_result_within(Duration::from_secs(5)).unwrap();
}

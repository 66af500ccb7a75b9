//! Hostile and sloppy status lines and capabilities, through the `pop3`
//! binary against scripted servers (issue 11, items 3, 5 and 6; the
//! sans-IO tests are pop3-proto's tests/unsolicited.rs and tests/quirks.rs).

mod common;

use std::time::Duration;

use common::*;
use pop3_testkit::Script;

fn scripted(script: Script, args: &[&str]) -> (Run, pop3_testkit::ServerHandle) {
    let (r, server, _) = run_scripted(script, "10", args);
    (r, server)
}

const CAPA: &[u8] = b"+OK\r\nUSER\r\n.\r\n";

/// PASS answered `+OK` twice in one segment: the second line answers
/// nothing, so it is a protocol error (exit 4), never the reply to STAT.
#[test]
fn a_second_reply_to_pass_is_never_taken_for_stat() {
    let s = Script::new()
        .send(b"+OK ready\r\n")
        .expect_line("CAPA")
        .send(CAPA)
        .expect_line(&format!("USER {USER}"))
        .send(b"+OK\r\n")
        .expect_line(&format!("PASS {PASSWORD}"))
        .send(b"+OK\r\n+OK 7 7777\r\n")
        .sleep(Duration::from_millis(500))
        .send(b"+OK 2 200\r\n");
    let (r, server) = scripted(s, &["--json", "stat"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        !r.out().contains("\"messages\""),
        "a STAT result was printed: {r:?}"
    );
    assert!(r.out().contains("unsolicited"), "{r:?}");
    assert!(!server.client_sent("STAT"), "nothing more was sent: {r:?}");
}

/// The same in a `dele` session: the injected `+OK` must not become QUIT's
/// confirmation, so no deletion is reported as committed.
#[test]
fn an_injected_ok_never_confirms_deletions() {
    let s = script_logged_in(CAPA)
        .expect_line("DELE 1")
        .send(b"+OK marked\r\n+OK 0 messages, bye\r\n")
        .sleep(Duration::from_millis(500));
    let (r, _server) = scripted(s, &["dele", "1"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(!r.out().contains("deleted 1"), "{r:?}");
}

/// Capabilities with unexpected arguments are kept as raw lines and the
/// session goes on; `+OKtext` without a space is `+OK`.
#[test]
fn quirky_capabilities_and_status_lines_are_tolerated() {
    let mechs: Vec<String> = (0..100).map(|i| format!("X-MECH-{i}")).collect();
    let capa = format!(
        "+OK\r\nUSER\r\nEXPIRE soon\r\nLOGIN-DELAY 10 USER extra\r\nUTF8 ACCEPT\r\n\
         EXPIRENEVER\r\nPIPELINING yes\r\nSASL {}\r\n.\r\n",
        mechs.join(" ")
    );
    let s = Script::new()
        .send(b"+OKPOP3 ready\r\n")
        .expect_line("CAPA")
        .send(capa.as_bytes())
        .expect_line(&format!("USER {USER}"))
        .send(b"+OKsend PASS\r\n")
        .expect_line(&format!("PASS {PASSWORD}"))
        .send(b"+OKlogged in\r\n")
        .expect_line("CAPA")
        .send(capa.as_bytes())
        .expect_line("STAT")
        .send(b"+OK 3 300\r\n")
        .expect_line("QUIT")
        .send(b"+OKbye\r\n");
    let (r, server) = scripted(s, &["--json", "stat"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.out().contains("\"messages\":3"), "{r:?}");
    server.script_result_within(Duration::from_secs(5)).unwrap();
}

/// Strictness where it protects the user: a STAT whose count is not a
/// number is a protocol error, not zero messages.
#[test]
fn sizes_and_counts_stay_strict() {
    let s = script_logged_in(CAPA)
        .expect_line("STAT")
        .send(b"+OK many 300\r\n");
    let (r, _server) = scripted(s, &["stat"]);
    assert_eq!(r.code, 4, "{r:?}");
}

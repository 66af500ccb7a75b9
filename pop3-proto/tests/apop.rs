//! Issue 11 item 4 (core part): APOP against a greeting without a valid
//! `<timestamp>` sends nothing and says authentication is impossible
//! (`UsageError::ApopUnavailable`), not that the arguments were wrong.

mod common;

use common::*;
use pop3_proto::{Client, Command, OwnedEvent, UsageError};

fn greeted(greeting: &[u8]) -> (Client, Vec<u8>) {
    let mut c = Client::new(cleartext_config());
    let (mut sent, mut ev) = (Vec::new(), Vec::new());
    c.handle_input(greeting);
    assert!(drain(&mut c, &mut sent, &mut ev));
    assert!(matches!(ev[0], Ok(OwnedEvent::Greeting(_))), "{ev:?}");
    (c, sent)
}

#[test]
fn no_timestamp_means_apop_is_impossible() {
    for greeting in [
        &b"+OK POP3 ready\r\n"[..],
        b"+OK\r\n",
        b"+OK ready <1896.697170952@dbc.mtview.ca.us\r\n",
        b"+OK ready 1896.697170952@dbc.mtview.ca.us>\r\n",
        b"+OK ready <no-at-sign>\r\n",
        b"+OK ready <>\r\n",
        b"+OK ready <a b@c>\r\n",
    ] {
        let (mut c, mut sent) = greeted(greeting);
        let shown = String::from_utf8_lossy(greeting);
        assert_eq!(
            c.apop("mrose", "tanstaaf"),
            Err(UsageError::ApopUnavailable),
            "{shown}"
        );
        // Also with arguments that would be refused: the server is the
        // reason, and that is what is reported.
        assert_eq!(
            c.apop("a b", "x"),
            Err(UsageError::ApopUnavailable),
            "{shown}"
        );
        assert_eq!(c.pending(), 0, "nothing queued");
        assert!(c.poll_transmit(&mut sent).is_none(), "nothing sent");
        assert!(sent.is_empty());
        // The session is unchanged: another login method still works.
        c.enqueue(Command::user("mrose").unwrap()).unwrap();
        assert!(c.poll_transmit(&mut sent).is_some());
        assert_eq!(sent, b"USER mrose\r\n");
    }
}

#[test]
fn message_says_authentication_is_impossible() {
    let msg = UsageError::ApopUnavailable.to_string();
    assert!(msg.contains("APOP authentication is impossible"), "{msg}");
    assert_ne!(
        UsageError::ApopUnavailable,
        UsageError::Command(pop3_proto::CommandError::Empty)
    );
}

#[test]
fn with_a_timestamp_apop_is_sent() {
    let (mut c, mut sent) = greeted(b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n");
    c.apop("mrose", "tanstaaf").unwrap();
    assert!(c.poll_transmit(&mut sent).is_some());
    assert_eq!(sent, b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n");
}

#[test]
fn before_the_greeting_it_is_a_state_error() {
    let mut c = Client::new(cleartext_config());
    assert!(matches!(
        c.apop("mrose", "tanstaaf"),
        Err(UsageError::WrongState { .. })
    ));
}

#[test]
fn closed_or_logged_in_sessions_report_that_first() {
    let server = b"+OK hi\r\n+OK\r\n+OK\r\n";
    let mut c = Client::new(cleartext_config());
    let (mut sent, mut ev) = (Vec::new(), Vec::new());
    c.handle_input(&server[..8]);
    assert!(drain(&mut c, &mut sent, &mut ev));
    c.enqueue(Command::user("u").unwrap()).unwrap();
    c.enqueue(Command::pass("p").unwrap()).unwrap();
    assert!(drain(&mut c, &mut sent, &mut ev));
    c.handle_input(&server[8..13]);
    assert!(drain(&mut c, &mut sent, &mut ev));
    c.handle_input(&server[13..]);
    assert!(drain(&mut c, &mut sent, &mut ev));
    // In TRANSACTION, APOP is a state error, whatever the greeting said.
    assert!(matches!(
        c.apop("u", "p"),
        Err(UsageError::WrongState { .. })
    ));
}

/// `+OK<timestamp>` without a space (and a bare LF) still carries the
/// timestamp; `-ERRbusy` is a refused greeting.
#[test]
fn greeting_without_a_space() {
    let (mut c, mut sent) = greeted(b"+OK<1896.697170952@dbc.mtview.ca.us>\n");
    assert_eq!(
        c.greeting().and_then(|g| g.apop_timestamp.as_deref()),
        Some("<1896.697170952@dbc.mtview.ca.us>")
    );
    c.apop("mrose", "tanstaaf").unwrap();
    assert!(c.poll_transmit(&mut sent).is_some());
    assert_eq!(sent, b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n");

    let mut c = Client::new(cleartext_config());
    let (mut sent, mut ev) = (Vec::new(), Vec::new());
    c.handle_input(b"-ERRbusy\r\n");
    assert!(drain(&mut c, &mut sent, &mut ev));
    assert!(
        matches!(&ev[0], Ok(OwnedEvent::GreetingRefused(e)) if e.text == "busy"),
        "{ev:?}"
    );
    assert!(matches!(c.apop("u", "p"), Err(UsageError::Closed)));
}

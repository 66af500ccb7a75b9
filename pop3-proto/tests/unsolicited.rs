//! Issue 11 item 3: bytes that arrive after the reply to the last command
//! in flight, before the next command was sent, are a sticky
//! `ProtocolError::UnsolicitedResponse`; they are never taken as the reply
//! to a later command. Replies to commands already sent (pipelining) stay
//! legitimate.

mod common;

use common::*;
use pop3_proto::{
    Client, Command, CommandKind, Config, MsgNum, OwnedEvent, Pipelining, ProtocolError, Response,
    UsageError,
};

fn n(x: u32) -> MsgNum {
    MsgNum::new(x).unwrap()
}

/// A client that sent USER (answered) and PASS (not yet answered), each
/// reply in its own read.
fn awaiting_pass(config: Config) -> (Client, Vec<u8>, Vec<Ev>) {
    let mut c = Client::new(config);
    let (mut sent, mut ev) = (Vec::new(), Vec::new());
    c.handle_input(b"+OK ready\r\n");
    c.enqueue(Command::user("u").unwrap()).unwrap();
    assert!(drain(&mut c, &mut sent, &mut ev));
    c.handle_input(b"+OK\r\n");
    c.enqueue(Command::pass("p").unwrap()).unwrap();
    assert!(drain(&mut c, &mut sent, &mut ev));
    assert_eq!(sent, b"USER u\r\nPASS p\r\n");
    (c, sent, ev)
}

/// A client logged in with USER/PASS.
fn logged_in(config: Config) -> (Client, Vec<u8>, Vec<Ev>) {
    let (mut c, mut sent, mut ev) = awaiting_pass(config);
    c.handle_input(b"+OK\r\n");
    assert!(drain(&mut c, &mut sent, &mut ev));
    assert!(ok_for(&ev, CommandKind::Pass));
    (c, Vec::new(), Vec::new())
}

fn is_unsolicited(ev: &[Ev]) -> bool {
    matches!(
        ev.last(),
        Some(Err(ProtocolError::UnsolicitedResponse { .. }))
    )
}

/// Whether a `+OK` event for `kind` was recorded.
fn ok_for(ev: &[Ev], kind: CommandKind) -> bool {
    ev.iter()
        .any(|e| matches!(e, Ok(OwnedEvent::Ok { command, .. }) if *command == kind))
}

fn no_stat_reply(ev: &[Ev]) -> bool {
    !ev.iter().any(|e| {
        matches!(
            e,
            Ok(OwnedEvent::Ok {
                response: Response::Stat(_),
                ..
            })
        )
    })
}

/// The test: PASS answered `+OK\r\n+OK 7 7777\r\n` in one read,
/// then STAT: a protocol error, not `Stat 7`, and STAT is never sent.
#[test]
fn double_reply_to_pass_is_not_the_stat_reply() {
    let (mut c, mut sent, mut ev) = awaiting_pass(cleartext_config());
    // An adapter waiting for PASS's reply stops at its Ok event...
    c.handle_input(b"+OK\r\n+OK 7 7777\r\n");
    loop {
        match c.poll_event().unwrap() {
            Some(e) => {
                let done = matches!(
                    e,
                    pop3_proto::Event::Ok {
                        command: CommandKind::Pass,
                        ..
                    }
                );
                record(&mut ev, e);
                if done {
                    break;
                }
            }
            None => panic!("no reply to PASS"),
        }
    }
    // ...then enqueues STAT and drains.
    c.enqueue(Command::Stat).unwrap();
    sent.clear();
    assert!(!drain(&mut c, &mut sent, &mut ev));
    assert!(is_unsolicited(&ev), "{ev:?}");
    assert!(no_stat_reply(&ev), "{ev:?}");
    assert_eq!(sent, b"", "STAT must not be sent on a poisoned session");
    // Sticky.
    assert!(matches!(
        c.poll_event(),
        Err(ProtocolError::UnsolicitedResponse { .. })
    ));
    assert!(matches!(
        c.enqueue(Command::Noop),
        Err(UsageError::Poisoned(
            ProtocolError::UnsolicitedResponse { .. }
        ))
    ));
}

/// The same transcript with the caller draining everything right away:
/// the error comes before STAT is even enqueued.
#[test]
fn double_reply_to_pass_fully_drained() {
    let (mut c, mut sent, mut ev) = awaiting_pass(cleartext_config());
    c.handle_input(b"+OK\r\n+OK 7 7777\r\n");
    assert!(!drain(&mut c, &mut sent, &mut ev));
    assert!(is_unsolicited(&ev), "{ev:?}");
    assert!(ok_for(&ev, CommandKind::Pass));
    assert!(c.enqueue(Command::Stat).is_err());
}

#[test]
fn extra_line_after_a_listing() {
    let (mut c, mut sent, mut ev) = logged_in(cleartext_config());
    c.enqueue(Command::List(None)).unwrap();
    assert!(drain(&mut c, &mut sent, &mut ev));
    c.handle_input(b"+OK\r\n1 10\r\n.\r\n+OK 3 30\r\n");
    c.enqueue(Command::Stat).unwrap();
    assert!(!drain(&mut c, &mut sent, &mut ev));
    assert!(is_unsolicited(&ev), "{ev:?}");
    assert!(no_stat_reply(&ev));
    assert_eq!(sent, b"LIST\r\n");
}

#[test]
fn extra_line_after_a_body() {
    let (mut c, mut sent, mut ev) = logged_in(cleartext_config());
    c.enqueue(Command::Retr(n(1))).unwrap();
    assert!(drain(&mut c, &mut sent, &mut ev));
    c.handle_input(b"+OK\r\nhi\r\n.\r\n+OK message 1 deleted\r\n");
    c.enqueue(Command::Dele(n(1))).unwrap();
    assert!(!drain(&mut c, &mut sent, &mut ev));
    assert!(is_unsolicited(&ev), "{ev:?}");
    assert!(
        ev.contains(&body(2, b"hi\r\n")),
        "the message itself is fine"
    );
    assert!(!ok_for(&ev, CommandKind::Dele));
    assert_eq!(sent, b"RETR 1\r\n", "DELE never sent");
}

/// Nothing in flight, and bytes come in a later read.
#[test]
fn bytes_in_a_later_read_while_idle() {
    let (mut c, mut sent, mut ev) = logged_in(cleartext_config());
    c.handle_input(b"+OK 7 7777\r\n");
    // Enqueue first, then transmit: still nothing goes out.
    c.enqueue(Command::Stat).unwrap();
    assert!(!c.wants_write());
    assert!(c.poll_transmit(&mut sent).is_none());
    assert!(!drain(&mut c, &mut sent, &mut ev));
    assert!(is_unsolicited(&ev), "{ev:?}");
    assert!(no_stat_reply(&ev));
    assert!(sent.is_empty());
}

/// A partial line is unsolicited too: no byte can answer a command not
/// yet sent.
#[test]
fn partial_line_while_idle() {
    let (mut c, mut sent, mut ev) = logged_in(cleartext_config());
    c.handle_input(b"+OK 7");
    c.enqueue(Command::Stat).unwrap();
    assert!(c.poll_transmit(&mut sent).is_none());
    assert!(!c.wants_write());
    // Reported at once, not when the line completes: with nothing in
    // flight and nothing sendable, a driver would otherwise wait forever.
    assert_eq!(
        c.poll_event().map(|e| e.is_some()),
        Err(ProtocolError::UnsolicitedResponse {
            line: "+OK 7".into()
        })
    );
    c.handle_input(b" 7777\r\n");
    assert!(!drain(&mut c, &mut sent, &mut ev));
    assert!(is_unsolicited(&ev), "{ev:?}");
    assert!(sent.is_empty());
}

#[test]
fn garbage_after_the_greeting_before_the_first_command() {
    let mut c = Client::new(cleartext_config());
    let (mut sent, mut ev) = (Vec::new(), Vec::new());
    c.handle_input(b"+OK ready\r\n+OK\r\n");
    c.enqueue(Command::user("u").unwrap()).unwrap();
    assert!(!drain(&mut c, &mut sent, &mut ev));
    assert!(matches!(ev[0], Ok(OwnedEvent::Greeting(_))));
    assert!(is_unsolicited(&ev), "{ev:?}");
    assert!(sent.is_empty(), "USER is never sent");
}

/// Pipelined commands already sent: their replies in one read are fine.
#[test]
fn pipelined_replies_in_one_read_are_legitimate() {
    let mut config = cleartext_config();
    config.pipelining = Pipelining::Always;
    let (mut c, mut sent, mut ev) = logged_in(config);
    for cmd in [Command::Stat, Command::List(None), Command::Noop] {
        c.enqueue(cmd).unwrap();
    }
    assert!(drain(&mut c, &mut sent, &mut ev));
    assert_eq!(sent, b"STAT\r\nLIST\r\nNOOP\r\n");
    c.handle_input(b"+OK 1 5\r\n+OK\r\n1 5\r\n.\r\n+OK\r\n");
    assert!(drain(&mut c, &mut sent, &mut ev), "{ev:?}");
    assert_eq!(ev.len(), 3, "{ev:?}");
    assert_eq!(c.in_flight(), 0);
}

/// With pipelining, a command sent while an extra line was already
/// buffered (events not yet drained) does not get that line as its reply.
#[test]
fn pipelined_command_sent_after_the_extra_bytes_arrived() {
    let mut config = cleartext_config();
    config.pipelining = Pipelining::Always;
    let (mut c, mut sent, mut ev) = logged_in(config);
    c.enqueue(Command::Noop).unwrap();
    assert!(c.poll_transmit(&mut sent).is_some());
    // NOOP's reply plus one more line, before any event was polled.
    c.handle_input(b"+OK\r\n+OK 7 7777\r\n");
    c.enqueue(Command::Stat).unwrap();
    assert!(c.poll_transmit(&mut sent).is_some(), "window has room");
    assert_eq!(sent, b"NOOP\r\nSTAT\r\n");
    assert!(!drain(&mut c, &mut sent, &mut ev));
    assert!(ok_for(&ev, CommandKind::Noop));
    assert!(is_unsolicited(&ev), "{ev:?}");
    assert!(no_stat_reply(&ev));
}

/// The `dele` session of the issue: QUIT queued behind a pipelined batch;
/// an extra `+OK` after the last reply is never QUIT's confirmation.
#[test]
fn extra_ok_is_never_the_quit_confirmation() {
    let mut config = cleartext_config();
    config.pipelining = Pipelining::Always;
    let (mut c, mut sent, mut ev) = logged_in(config);
    c.enqueue(Command::Dele(n(1))).unwrap();
    c.enqueue(Command::Dele(n(2))).unwrap();
    c.enqueue(Command::Quit).unwrap();
    assert!(drain(&mut c, &mut sent, &mut ev));
    assert_eq!(sent, b"DELE 1\r\nDELE 2\r\n", "QUIT waits (barrier)");
    c.handle_input(b"+OK\r\n+OK\r\n+OK bye\r\n");
    assert!(!drain(&mut c, &mut sent, &mut ev));
    assert!(is_unsolicited(&ev), "{ev:?}");
    assert!(!ok_for(&ev, CommandKind::Quit));
    assert_eq!(sent, b"DELE 1\r\nDELE 2\r\n", "QUIT never sent");
}

/// The causal order still works at every split of a whole session.
#[test]
fn causal_transcript_at_every_split() {
    let server = b"+OK hi\r\n+OK\r\n+OK\r\n+OK 1 5\r\n+OK\r\nabc\r\n.\r\n+OK bye\r\n";
    let cmds = after_login([Command::Stat, Command::Retr(n(1)), Command::Quit]);
    let (sent, whole) = run_whole(cleartext_config(), &cmds, server);
    assert_eq!(sent, b"USER u\r\nPASS p\r\nSTAT\r\nRETR 1\r\nQUIT\r\n");
    assert_eq!(whole.last(), Some(&Ok(OwnedEvent::Closed)));
    for cut in 0..server.len() {
        let (_, e) = run_split(cleartext_config(), &cmds, server, &[cut], false);
        assert_eq!(e, whole, "cut at {cut}");
    }
}

/// A client in AUTHORIZATION with `AUTH LOGIN` (no initial response) sent.
fn auth_login_sent() -> (Client, Vec<u8>, Vec<Ev>) {
    let mut c = Client::new(cleartext_config());
    let (mut sent, mut ev) = (Vec::new(), Vec::new());
    c.handle_input(b"+OK ready\r\n");
    assert!(drain(&mut c, &mut sent, &mut ev));
    c.authenticate(Box::new(pop3_proto::sasl::Login::new("u", "p")))
        .unwrap();
    assert!(drain(&mut c, &mut sent, &mut ev));
    assert_eq!(sent, b"AUTH LOGIN\r\n");
    (c, Vec::new(), Vec::new())
}

/// SASL is lockstep too: a `+OK` that arrived with the challenge, before
/// our answer went out, cannot mean the server accepted our credentials.
#[test]
fn auth_ok_before_our_sasl_response_is_unsolicited() {
    let (mut c, mut sent, mut ev) = auth_login_sent();
    c.handle_input(b"+ VXNlcm5hbWU6\r\n+OK logged in\r\n");
    assert!(!drain(&mut c, &mut sent, &mut ev));
    assert_eq!(sent, b"dQ==\r\n", "the user name answer went out first");
    assert!(is_unsolicited(&ev), "{ev:?}");
    assert!(!ok_for(&ev, CommandKind::Auth));
    assert_ne!(c.session_state(), pop3_proto::SessionState::Transaction);
}

#[test]
fn auth_challenge_before_our_sasl_response_is_unsolicited() {
    let (mut c, mut sent, mut ev) = auth_login_sent();
    c.handle_input(b"+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\n");
    assert!(!drain(&mut c, &mut sent, &mut ev));
    assert_eq!(sent, b"dQ==\r\n", "the password is never sent");
    assert!(is_unsolicited(&ev), "{ev:?}");
}

/// The same exchange, each server line after our answer: logged in.
#[test]
fn auth_lockstep_exchange_succeeds() {
    let (mut c, mut sent, mut ev) = auth_login_sent();
    for line in [
        &b"+ VXNlcm5hbWU6\r\n"[..],
        b"+ UGFzc3dvcmQ6\r\n",
        b"+OK logged in\r\n",
    ] {
        c.handle_input(line);
        assert!(drain(&mut c, &mut sent, &mut ev), "{ev:?}");
    }
    assert_eq!(sent, b"dQ==\r\ncA==\r\n");
    assert!(ok_for(&ev, CommandKind::Auth));
    assert_eq!(c.session_state(), pop3_proto::SessionState::Transaction);
}

/// `-ERR` may end an exchange at any time: an early one is the failure.
#[test]
fn auth_err_before_our_sasl_response_is_the_failure() {
    let (mut c, mut sent, mut ev) = auth_login_sent();
    c.handle_input(b"+ VXNlcm5hbWU6\r\n-ERR [AUTH] go away\r\n");
    assert!(drain(&mut c, &mut sent, &mut ev), "{ev:?}");
    assert!(ev.iter().any(|e| matches!(
        e,
        Ok(OwnedEvent::Err {
            command: CommandKind::Auth,
            ..
        })
    )));
    assert_eq!(c.session_state(), pop3_proto::SessionState::Authorization);
}

/// A manual exchange: `+OK` while the caller still owes the answer to a
/// continuation is unsolicited.
#[test]
fn auth_ok_while_the_caller_owes_the_answer() {
    let mut c = Client::new(cleartext_config());
    let (mut sent, mut ev) = (Vec::new(), Vec::new());
    c.handle_input(b"+OK ready\r\n");
    c.enqueue(Command::auth("PLAIN", None).unwrap()).unwrap();
    assert!(drain(&mut c, &mut sent, &mut ev));
    c.handle_input(b"+ \r\n+OK\r\n");
    assert!(!drain(&mut c, &mut sent, &mut ev));
    assert!(
        ev.iter()
            .any(|e| matches!(e, Ok(OwnedEvent::Continuation { .. }))),
        "{ev:?}"
    );
    assert!(is_unsolicited(&ev), "{ev:?}");
    assert!(!ok_for(&ev, CommandKind::Auth));
}

mod hostile {
    use super::*;
    use proptest::prelude::*;

    /// A command and the reply a well-behaved server gives it.
    fn exchange(i: u8) -> (Command, &'static [u8]) {
        match i % 5 {
            0 => (Command::Noop, b"+OK\r\n"),
            1 => (Command::Stat, b"+OK 2 20\r\n"),
            2 => (Command::Dele(n(1)), b"+OK deleted\r\n"),
            3 => (Command::List(None), b"+OK\r\n1 10\r\n2 10\r\n.\r\n"),
            _ => (Command::Retr(n(2)), b"+OK\r\nbody\r\n.\r\n"),
        }
    }

    proptest! {
        /// Whatever the session, an extra line injected right after reply
        /// `k` (in the same read) is unsolicited: no reply is ever shifted
        /// onto a later command, and nothing after `k` is sent. Pipelining
        /// on or off; QUIT at the end, so a shifted reply would "confirm" it.
        #[test]
        fn an_injected_line_is_never_a_later_reply(
            script in prop::collection::vec(any::<u8>(), 1..8),
            k in any::<prop::sample::Index>(),
            extra in prop_oneof![
                Just(&b"+OK\r\n"[..]),
                Just(&b"-ERR\r\n"[..]),
                Just(&b"+OK 7 7777\r\n"[..]),
                Just(&b"x"[..]),
            ],
            pipelining in any::<bool>(),
        ) {
            let mut config = cleartext_config();
            if pipelining {
                config.pipelining = Pipelining::Always;
            }
            let (mut c, mut sent, mut ev) = logged_in(config);
            let mut cmds: Vec<(Command, &[u8])> = script.iter().map(|&i| exchange(i)).collect();
            cmds.push((Command::Quit, b"+OK bye\r\n"));
            let k = k.index(cmds.len() - 1); // never after QUIT's reply
            // Enqueue one at a time and answer each once it is on the wire.
            for (i, (cmd, reply)) in cmds.iter().enumerate() {
                if c.enqueue(cmd.clone()).is_err() {
                    break;
                }
                if !drain(&mut c, &mut sent, &mut ev) {
                    break;
                }
                let mut bytes = reply.to_vec();
                if i == k {
                    bytes.extend_from_slice(extra);
                }
                c.handle_input(&bytes);
                if !drain(&mut c, &mut sent, &mut ev) {
                    break;
                }
            }
            prop_assert!(is_unsolicited(&ev), "{:?}", ev);
            // Replies delivered: exactly those of commands 0..=k.
            let replies = ev
                .iter()
                .filter(|e| matches!(e, Ok(OwnedEvent::Ok { .. } | OwnedEvent::Err { .. })))
                .count();
            prop_assert_eq!(replies, k + 1, "{:?}", ev);
            prop_assert!(!ok_for(&ev, CommandKind::Quit));
            let mut want = Vec::new();
            for (cmd, _) in &cmds[..=k] {
                cmd.encode(&mut want);
            }
            prop_assert_eq!(sent, want, "nothing after command {} was sent", k);
        }

        /// `+OK` or `-ERR` in any case followed by any text (no CR/LF) is
        /// a status line, with or without the space.
        #[test]
        fn any_text_after_the_indicator(
            ok in any::<bool>(),
            upper in any::<bool>(),
            space in any::<bool>(),
            text in "[^\r\n]{0,100}",
        ) {
            let (mut c, mut sent, mut ev) = logged_in(cleartext_config());
            c.enqueue(Command::Noop).unwrap();
            prop_assert!(drain(&mut c, &mut sent, &mut ev));
            let ind = match (ok, upper) {
                (true, true) => "+OK",
                (true, false) => "+ok",
                (false, true) => "-ERR",
                (false, false) => "-eRr",
            };
            let line = format!("{ind}{}{text}\r\n", if space { " " } else { "" });
            c.handle_input(line.as_bytes());
            prop_assert!(drain(&mut c, &mut sent, &mut ev), "{:?}", ev);
            prop_assert_eq!(ok_for(&ev, CommandKind::Noop), ok);
            prop_assert_eq!(c.in_flight(), 0);
        }
    }
}

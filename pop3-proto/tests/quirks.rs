//! The quirks policy of the crate docs, at the session level: capability
//! lines that break their grammar are kept raw and the session goes on
//! (issue 11 item 5); `+OKtext` / `-ERRtext` without a space are status
//! lines, and bare LF line endings work everywhere (issue 11 item 6).

mod common;

use common::*;
use pop3_proto::{
    Command, CommandKind, Expire, MsgNum, OwnedEvent, ProtocolError, Response, SessionState,
};

fn n(x: u32) -> MsgNum {
    MsgNum::new(x).unwrap()
}

/// Greeting, CAPA with `capa_lines`, then USER/PASS and STAT: the session
/// must reach TRANSACTION and get STAT's reply.
fn session_with_capa(capa_lines: &[&str]) -> (Vec<u8>, Vec<Ev>) {
    let mut server = b"+OK ready\r\n+OK capabilities follow\r\n".to_vec();
    for l in capa_lines {
        server.extend_from_slice(l.as_bytes());
        server.extend_from_slice(b"\r\n");
    }
    server.extend_from_slice(b".\r\n+OK\r\n+OK\r\n+OK 2 20\r\n");
    let cmds = [
        Command::Capa,
        Command::user("u").unwrap(),
        Command::pass("p").unwrap(),
        Command::Stat,
    ];
    run_whole(cleartext_config(), &cmds, &server)
}

fn capabilities(ev: &[Ev]) -> pop3_proto::Capabilities {
    ev.iter()
        .find_map(|e| match e {
            Ok(OwnedEvent::Ok {
                response: Response::Capa(c),
                ..
            }) => Some(c.clone()),
            _ => None,
        })
        .expect("CAPA reply")
}

fn reached_stat(ev: &[Ev]) -> bool {
    ev.iter().any(|e| {
        matches!(
            e,
            Ok(OwnedEvent::Ok {
                response: Response::Stat(s),
                ..
            }) if s.count == 2
        )
    }) && ev.contains(&state(
        SessionState::Authorization,
        SessionState::Transaction,
    ))
}

#[test]
fn issue_examples_are_kept_raw_and_the_session_goes_on() {
    let lines = [
        "EXPIRE soon",
        "LOGIN-DELAY 10 USER extra",
        "UTF8 ACCEPT",
        "EXPIRENEVER",
        "USER",
    ];
    let (sent, ev) = session_with_capa(&lines);
    assert!(reached_stat(&ev), "{ev:?}");
    assert_eq!(sent, b"CAPA\r\nUSER u\r\nPASS p\r\nSTAT\r\n");
    let caps = capabilities(&ev);
    assert_eq!(caps.expire, None, "no guessed EXPIRE value");
    assert_eq!(caps.login_delay, None, "no guessed LOGIN-DELAY value");
    assert_eq!(caps.utf8, Some(false), "UTF8 offered; USER not claimed");
    assert!(caps.user);
    assert_eq!(
        caps.other,
        [
            "EXPIRE soon",
            "LOGIN-DELAY 10 USER extra",
            "UTF8 ACCEPT",
            "EXPIRENEVER"
        ]
    );
}

#[test]
fn a_sasl_line_with_100_mechanisms() {
    let names: Vec<String> = (0..100).map(|i| format!("X-M{i}")).collect();
    let line = format!("SASL PLAIN {} SCRAM-SHA-256", names.join(" "));
    let (_, ev) = session_with_capa(&[&line]);
    assert!(reached_stat(&ev), "{ev:?}");
    let caps = capabilities(&ev);
    assert_eq!(caps.sasl.len(), 102);
    assert!(caps.has_sasl("scram-sha-256") && caps.has_sasl("x-m99"));
}

#[test]
fn well_formed_lines_are_still_typed() {
    let (_, ev) = session_with_capa(&[
        "EXPIRE 30 USER",
        "LOGIN-DELAY 900",
        "UTF8 USER",
        "PIPELINING",
    ]);
    assert!(reached_stat(&ev));
    let caps = capabilities(&ev);
    assert_eq!(caps.expire, Some((Expire::Days(30), true)));
    assert_eq!(caps.login_delay, Some((900, false)));
    assert_eq!(caps.utf8, Some(true));
    assert!(caps.pipelining);
    assert!(caps.other.is_empty());
}

/// A flag capability with an argument still counts (and is kept raw).
#[test]
fn flag_capability_with_an_argument() {
    let (_, ev) = session_with_capa(&["PIPELINING yes", "STLS now"]);
    let caps = capabilities(&ev);
    assert!(caps.pipelining && caps.stls);
    assert_eq!(caps.other, ["PIPELINING yes", "STLS now"]);
}

/// Strict where it protects the user: sizes, numbers and UIDs.
#[test]
fn numbers_and_uids_stay_strict() {
    for (cmd, reply) in [
        (Command::Stat, &b"+OK 2 lots\r\n"[..]),
        (Command::List(Some(n(1))), b"+OK 1 -5\r\n"),
        (
            Command::List(None),
            b"+OK\r\n1 99999999999999999999999\r\n.\r\n",
        ),
        (Command::Uidl(None), b"+OK\r\n1 has space\r\n.\r\n"),
        (Command::Uidl(Some(n(1))), b"+OK 0 abc\r\n"),
    ] {
        let mut server = b"+OK\r\n+OK\r\n+OK\r\n".to_vec();
        server.extend_from_slice(reply);
        let (_, ev) = run_whole(cleartext_config(), &after_login([cmd.clone()]), &server);
        assert!(
            matches!(ev.last(), Some(Err(ProtocolError::MalformedLine { .. }))),
            "{cmd:?}: {ev:?}"
        );
    }
}

#[test]
fn status_indicator_without_a_space() {
    let server =
        b"+OKready\r\n+OKfine\r\n+okWelcome\r\n+OK2 320\r\n-ERRno such message\r\n+OKbye\r\n";
    let cmds = after_login([Command::Stat, Command::Retr(n(9)), Command::Quit]);
    let (sent, ev) = run_whole(cleartext_config(), &cmds, server);
    assert_eq!(sent, b"USER u\r\nPASS p\r\nSTAT\r\nRETR 9\r\nQUIT\r\n");
    assert!(matches!(&ev[0], Ok(OwnedEvent::Greeting(g)) if g.status.text == "ready"));
    assert!(ev.iter().any(|e| matches!(
        e,
        Ok(OwnedEvent::Ok { response: Response::Stat(s), .. }) if s.count == 2 && s.octets == 320
    )));
    assert!(ev.iter().any(|e| matches!(
        e,
        Ok(OwnedEvent::Err { command: CommandKind::Retr, response, .. }) if response.text == "no such message"
    )));
    assert_eq!(ev.last(), Some(&Ok(OwnedEvent::Closed)));
}

#[test]
fn response_code_right_after_the_indicator() {
    let server = b"+OK\r\n+OK\r\n-ERR[IN-USE] locked\r\n";
    let (_, ev) = run_whole(cleartext_config(), &after_login([]), server);
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Ok(OwnedEvent::Err { command: CommandKind::Pass, response, .. })
                if response.code == Some(pop3_proto::RespCode::InUse) && response.text == "locked"
        )),
        "{ev:?}"
    );
}

/// Still refused: an indicator that is not `+OK` / `-ERR`, and `+text`
/// outside a SASL exchange.
#[test]
fn other_indicators_stay_malformed() {
    for reply in [
        &b"+O\r\n"[..],
        b"-ER\r\n",
        b"OK\r\n",
        b"+xyz\r\n",
        b"* OK\r\n",
    ] {
        let mut server = b"+OK\r\n+OK\r\n+OK\r\n".to_vec();
        server.extend_from_slice(reply);
        let (_, ev) = run_whole(cleartext_config(), &after_login([Command::Noop]), &server);
        assert!(
            matches!(ev.last(), Some(Err(ProtocolError::MalformedStatus { .. }))),
            "{:?}: {ev:?}",
            String::from_utf8_lossy(reply)
        );
    }
}

/// Bare LF everywhere: greeting, status lines, a listing, CAPA and a body
/// (whose line endings come out exactly as sent), pipelined.
#[test]
fn bare_lf_everywhere() {
    let server: &[u8] =
        b"+OK hi\n+OK\nPIPELINING\nEXPIRE soon\n.\n+OK\n+OKin\n+OK\n1 5\n.\n+OK\nline\n..dot\n.\n+OK\n";
    let config = cleartext_config();
    let cmds = [
        Command::Capa,
        Command::user("u").unwrap(),
        Command::pass("p").unwrap(),
        Command::List(None),
        Command::Retr(n(1)),
        Command::Quit,
    ];
    let (sent, ev) = run_bytewise(config.clone(), &cmds, server);
    assert_eq!(ev.last(), Some(&Ok(OwnedEvent::Closed)), "{ev:?}");
    assert!(String::from_utf8_lossy(&sent).starts_with("CAPA\r\nUSER u\r\nPASS p\r\n"));
    assert!(ev.contains(&body(4, b"line\n.dot\n")));
    let (_, whole) = run_whole(config, &cmds, server);
    assert_eq!(whole, ev);
}

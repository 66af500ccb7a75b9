//! RFC example sessions replayed through the core, and hostile inputs.

mod common;

use common::*;
use pop3_proto::sasl::SaslError;
use pop3_proto::{
    Client, Command, CommandKind, ErrResponse, Expire, ListEntry, MsgNum, OwnedEvent, Pipelining,
    ProtocolError, RespCode, Response, SessionState, Stat, Status, UsageError,
};

fn n(x: u32) -> MsgNum {
    MsgNum::new(x).unwrap()
}

fn status(text: &str) -> Response {
    Response::Status(Status {
        code: None,
        text: text.into(),
    })
}

/// RFC 1939 §10 example POP3 session (APOP login), with the canonical
/// digest from the RFC.
const RFC1939_SESSION: &str = "
S: +OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>
C: APOP mrose c4c9334bac560ecc979e58001b3e22fb
S: +OK mrose's maildrop has 2 messages (320 octets)
C: STAT
S: +OK 2 320
C: LIST
S: +OK 2 messages (320 octets)
S: 1 120
S: 2 200
S: .
C: RETR 1
S: +OK 120 octets
S: <the POP3 server sends message 1>
S: .
C: DELE 1
S: +OK message 1 deleted
C: RETR 2
S: +OK 200 octets
S: <the POP3 server sends message 2>
S: .
C: DELE 2
S: +OK message 2 deleted
C: QUIT
S: +OK dewey POP3 server signing off (maildrop empty)
";

fn rfc1939_commands() -> Vec<Command> {
    vec![
        Command::apop("mrose", "<1896.697170952@dbc.mtview.ca.us>", "tanstaaf").unwrap(),
        Command::Stat,
        Command::List(None),
        Command::Retr(n(1)),
        Command::Dele(n(1)),
        Command::Retr(n(2)),
        Command::Dele(n(2)),
        Command::Quit,
    ]
}

#[test]
fn rfc1939_example_session() {
    let (client_bytes, server) = split_trace(RFC1939_SESSION);
    let (sent, events) = run_whole(common::cleartext_config(), &rfc1939_commands(), &server);
    assert_eq!(
        String::from_utf8_lossy(&sent),
        String::from_utf8_lossy(&client_bytes)
    );
    use SessionState::*;
    let expected = vec![
        Ok(OwnedEvent::Greeting(pop3_proto::Greeting {
            status: Status {
                code: None,
                text: "POP3 server ready <1896.697170952@dbc.mtview.ca.us>".into(),
            },
            apop_timestamp: Some("<1896.697170952@dbc.mtview.ca.us>".into()),
        })),
        state(Greeting, Authorization),
        ok(
            0,
            CommandKind::Apop,
            status("mrose's maildrop has 2 messages (320 octets)"),
        ),
        state(Authorization, Transaction),
        ok(
            1,
            CommandKind::Stat,
            Response::Stat(Stat {
                count: 2,
                octets: 320,
            }),
        ),
        ok(
            2,
            CommandKind::List,
            Response::List(vec![
                ListEntry {
                    number: 1,
                    octets: 120,
                },
                ListEntry {
                    number: 2,
                    octets: 200,
                },
            ]),
        ),
        ok(
            3,
            CommandKind::Retr,
            Response::BodyStart(Status {
                code: None,
                text: "120 octets".into(),
            }),
        ),
        body(3, b"<the POP3 server sends message 1>\r\n"),
        Ok(OwnedEvent::BodyEnd {
            handle: h(3),
            octets: 35,
        }),
        ok(4, CommandKind::Dele, status("message 1 deleted")),
        ok(
            5,
            CommandKind::Retr,
            Response::BodyStart(Status {
                code: None,
                text: "200 octets".into(),
            }),
        ),
        body(5, b"<the POP3 server sends message 2>\r\n"),
        Ok(OwnedEvent::BodyEnd {
            handle: h(5),
            octets: 35,
        }),
        ok(6, CommandKind::Dele, status("message 2 deleted")),
        state(Transaction, Update),
        ok(
            7,
            CommandKind::Quit,
            status("dewey POP3 server signing off (maildrop empty)"),
        ),
        state(Update, Closed),
        Ok(OwnedEvent::Closed),
    ];
    assert_eq!(events, expected);
    // The same transcript byte by byte, and at every single split point.
    let (_, bytewise) = run_bytewise(common::cleartext_config(), &rfc1939_commands(), &server);
    assert_eq!(bytewise, expected);
    for cut in 0..server.len() {
        let (_, e) = run_split(
            common::cleartext_config(),
            &rfc1939_commands(),
            &server,
            &[cut],
            false,
        );
        assert_eq!(e, expected, "split at {cut}");
    }
}

/// The RFC 1939 §7 USER/PASS, TOP and UIDL examples, including the
/// "-ERR" branches.
#[test]
fn rfc1939_user_pass_top_uidl() {
    let trace = "
S: +OK POP3 server ready
C: USER frated
S: -ERR sorry, no mailbox for frated here
C: USER mrose
S: +OK mrose is a real hoopy frood
C: PASS secret
S: +OK mrose's maildrop has 2 messages (320 octets)
C: TOP 1 10
S: +OK
S: Subject: x
S:
S: body
S: .
C: TOP 100 3
S: -ERR no such message
C: UIDL
S: +OK
S: 1 whqtswO00WBw418f9t5JxYwZ
S: 2 QhdPYR:00WBw1Ph7x7
S: .
C: UIDL 2
S: +OK 2 QhdPYR:00WBw1Ph7x7
C: UIDL 3
S: -ERR no such message, only 2 messages in maildrop
C: NOOP
S: +OK
C: RSET
S: +OK maildrop has 2 messages (320 octets)
";
    let (client_bytes, server) = split_trace(trace);
    let cmds = vec![
        Command::user("frated").unwrap(),
        Command::user("mrose").unwrap(),
        Command::pass("secret").unwrap(),
        Command::Top(n(1), 10),
        Command::Top(n(100), 3),
        Command::Uidl(None),
        Command::Uidl(Some(n(2))),
        Command::Uidl(Some(n(3))),
        Command::Noop,
        Command::Rset,
    ];
    let (sent, events) = run_bytewise(common::cleartext_config(), &cmds, &server);
    assert_eq!(sent, client_bytes);
    assert!(
        matches!(&events[2], Ok(OwnedEvent::Err { handle, command: CommandKind::User, response: e }) if handle.id() == 0 && e.text == "sorry, no mailbox for frated here")
    );
    assert!(events.contains(&body(3, b"Subject: x\r\n\r\nbody\r\n")));
    assert!(events
        .iter()
        .any(|e| matches!(e, Ok(OwnedEvent::Err { handle, command: CommandKind::Top, .. }) if handle.id() == 4)));
    let uidl = events.iter().find_map(|e| match e {
        Ok(OwnedEvent::Ok {
            handle,
            response: Response::Uidl(v),
            ..
        }) if handle.id() == 5 => Some(v.clone()),
        _ => None,
    });
    let uidl = uidl.expect("UIDL listing");
    assert_eq!(uidl.len(), 2);
    assert_eq!(uidl[1].uid.as_str(), Some("QhdPYR:00WBw1Ph7x7"));
    assert!(events
        .iter()
        .any(|e| matches!(e, Ok(OwnedEvent::Ok { handle, response: Response::UidlOne(u), .. }) if handle.id() == 6 && u.number == 2)));
    assert!(events
        .iter()
        .any(|e| matches!(e, Ok(OwnedEvent::Err { handle, command: CommandKind::Uidl, .. }) if handle.id() == 7)));
    assert!(matches!(
        events.last(),
        Some(Ok(OwnedEvent::Ok { handle, command: CommandKind::Rset, .. })) if handle.id() == 9
    ));
}

/// RFC 2449 §5 CAPA example, and pipelining switched on by it.
#[test]
fn rfc2449_capa_and_pipelining() {
    let greeting = b"+OK POP3 server ready\r\n";
    let server = b"+OK Capability list follows\r\n\
TOP\r\nUSER\r\nSASL CRAM-MD5 KERBEROS_V4\r\nRESP-CODES\r\nLOGIN-DELAY 900\r\nPIPELINING\r\nEXPIRE 60\r\nUIDL\r\nIMPLEMENTATION Shlemazle-Plotz-v302\r\n.\r\n";
    let mut client = Client::new(common::cleartext_config());
    let mut sent = Vec::new();
    let mut events = Vec::new();
    client.enqueue(Command::Capa).unwrap();
    drain(&mut client, &mut sent, &mut events);
    assert!(sent.is_empty(), "nothing is sent before the greeting");
    client.handle_input(greeting);
    drain(&mut client, &mut sent, &mut events);
    assert_eq!(sent, b"CAPA\r\n");
    client.handle_input(server);
    drain(&mut client, &mut sent, &mut events);
    let caps = client.capabilities().expect("caps").clone();
    assert!(caps.top && caps.user && caps.resp_codes && caps.pipelining && caps.uidl);
    assert_eq!(
        caps.sasl,
        vec!["CRAM-MD5".to_string(), "KERBEROS_V4".to_string()]
    );
    assert_eq!(caps.login_delay, Some((900, false)));
    assert_eq!(caps.expire, Some((Expire::Days(60), false)));
    assert_eq!(caps.implementation.as_deref(), Some("Shlemazle-Plotz-v302"));
    // PIPELINING advertised: USER is a barrier, PASS too; after login
    // several commands go out back to back.
    client.enqueue(Command::user("u").unwrap()).unwrap();
    client.enqueue(Command::pass("p").unwrap()).unwrap();
    let stat = client.enqueue(Command::Stat).unwrap();
    client.enqueue(Command::List(None)).unwrap();
    client.enqueue(Command::Uidl(None)).unwrap();
    sent.clear();
    drain(&mut client, &mut sent, &mut events);
    assert_eq!(sent, b"USER u\r\n");
    client.handle_input(b"+OK\r\n");
    sent.clear();
    drain(&mut client, &mut sent, &mut events);
    assert_eq!(sent, b"PASS p\r\n");
    client.handle_input(b"+OK\r\n");
    sent.clear();
    drain(&mut client, &mut sent, &mut events);
    assert_eq!(sent, b"STAT\r\nLIST\r\nUIDL\r\n");
    assert_eq!(client.in_flight(), 3);
    events.clear();
    client.handle_input(b"+OK 1 5\r\n-ERR [SYS/TEMP] listing unavailable\r\n+OK\r\n1 abc\r\n.\r\n");
    drain(&mut client, &mut sent, &mut events);
    assert_eq!(
        events[0],
        ok(
            stat.id(),
            CommandKind::Stat,
            Response::Stat(Stat {
                count: 1,
                octets: 5
            })
        )
    );
    assert!(
        matches!(&events[1], Ok(OwnedEvent::Err { command: CommandKind::List, response: e, .. }) if e.code == Some(RespCode::SysTemp))
    );
    assert!(
        matches!(&events[2], Ok(OwnedEvent::Ok { command: CommandKind::Uidl, response: Response::Uidl(v), .. }) if v.len() == 1)
    );
}

#[test]
fn no_pipelining_without_capability() {
    let mut client = Client::new(common::cleartext_config());
    let (mut sent, mut ev) = (Vec::new(), Vec::new());
    client.handle_input(b"+OK hi\r\n");
    client.enqueue(Command::user("u").unwrap()).unwrap();
    client.enqueue(Command::pass("p").unwrap()).unwrap();
    drain(&mut client, &mut sent, &mut ev);
    client.handle_input(b"+OK\r\n");
    drain(&mut client, &mut sent, &mut ev);
    client.handle_input(b"+OK\r\n");
    drain(&mut client, &mut sent, &mut ev);
    sent.clear();
    for _ in 0..3 {
        client.enqueue(Command::Noop).unwrap();
    }
    drain(&mut client, &mut sent, &mut ev);
    assert_eq!(sent, b"NOOP\r\n", "one at a time");
    client.handle_input(b"+OK\r\n");
    drain(&mut client, &mut sent, &mut ev);
    assert_eq!(sent, b"NOOP\r\nNOOP\r\n");
}

#[test]
fn pipelining_window_is_bounded() {
    let mut config = common::cleartext_config();
    config.pipelining = Pipelining::Always;
    config.max_in_flight = 4;
    let mut client = Client::new(config);
    let (mut sent, mut ev) = (Vec::new(), Vec::new());
    client.handle_input(b"+OK\r\n");
    client.enqueue(Command::user("u").unwrap()).unwrap();
    client.enqueue(Command::pass("p").unwrap()).unwrap();
    for i in 1..=10 {
        client.enqueue(Command::Retr(n(i))).unwrap();
    }
    drain(&mut client, &mut sent, &mut ev);
    client.handle_input(b"+OK\r\n");
    drain(&mut client, &mut sent, &mut ev);
    client.handle_input(b"+OK\r\n");
    drain(&mut client, &mut sent, &mut ev);
    assert_eq!(client.in_flight(), 4);
    let mut bodies = 0;
    for i in 1..=10 {
        client.handle_input(format!("+OK\r\nmessage {i}\r\n.\r\n").as_bytes());
        ev.clear();
        drain(&mut client, &mut sent, &mut ev);
        bodies += ev
            .iter()
            .filter(|e| matches!(e, Ok(OwnedEvent::BodyEnd { .. })))
            .count();
        assert!(client.in_flight() <= 4);
    }
    assert_eq!(bodies, 10);
    assert_eq!(client.in_flight(), 0);
}

/// RFC 5034 §6 example: AUTH with a manual exchange (continuations are
/// surfaced as events), plus `=` and the cancel.
#[test]
fn rfc5034_manual_auth_exchange() {
    let mut client = Client::new(common::cleartext_config());
    let (mut sent, mut ev) = (Vec::new(), Vec::new());
    client.handle_input(b"+OK POP3 server ready\r\n");
    let h = client
        .enqueue(Command::auth("CRAM-MD5", None).unwrap())
        .unwrap();
    drain(&mut client, &mut sent, &mut ev);
    assert_eq!(sent, b"AUTH CRAM-MD5\r\n");
    client.handle_input(b"+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n");
    ev.clear();
    drain(&mut client, &mut sent, &mut ev);
    assert_eq!(
        ev,
        vec![Ok(OwnedEvent::Continuation {
            handle: h,
            challenge: b"<1896.697170952@postoffice.reston.mci.net>".to_vec()
        })]
    );
    // Nothing is sent until the caller answers.
    assert!(!client.wants_write());
    client
        .auth_respond(pop3_proto::Secret::new(
            b"tim b913a602c7eda7a495b4e6e7334d3890".to_vec(),
        ))
        .unwrap();
    sent.clear();
    drain(&mut client, &mut sent, &mut ev);
    assert_eq!(
        sent,
        b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n"
    );
    client.handle_input(b"+OK Maildrop locked and ready\r\n");
    ev.clear();
    drain(&mut client, &mut sent, &mut ev);
    assert_eq!(client.session_state(), SessionState::Transaction);
    assert!(matches!(
        ev[0],
        Ok(OwnedEvent::Ok {
            command: CommandKind::Auth,
            ..
        })
    ));
    assert_eq!(
        client.auth_respond(pop3_proto::Secret::new(vec![])),
        Err(UsageError::NoSaslExchange)
    );
}

#[test]
fn auth_cancel_and_failure_codes() {
    let mut client = Client::new(common::cleartext_config());
    let (mut sent, mut ev) = (Vec::new(), Vec::new());
    client.handle_input(b"+OK\r\n");
    client
        .enqueue(Command::auth("X-FOO", Some(pop3_proto::Secret::new(vec![]))).unwrap())
        .unwrap();
    drain(&mut client, &mut sent, &mut ev);
    assert_eq!(sent, b"AUTH X-FOO =\r\n");
    client.handle_input(b"+\r\n");
    drain(&mut client, &mut sent, &mut ev);
    client.auth_cancel().unwrap();
    sent.clear();
    drain(&mut client, &mut sent, &mut ev);
    assert_eq!(sent, b"*\r\n");
    client.handle_input(b"-ERR [AUTH] cancelled\r\n");
    ev.clear();
    drain(&mut client, &mut sent, &mut ev);
    assert!(
        matches!(&ev[0], Ok(OwnedEvent::Err { command: CommandKind::Auth, response: e, .. }) if e.code == Some(RespCode::Auth))
    );
    assert_eq!(client.session_state(), SessionState::Authorization);
}

#[test]
fn greeting_refused_and_bad_greeting() {
    let (_, ev) = run_whole(
        common::cleartext_config(),
        &[],
        b"-ERR [SYS/TEMP] too busy\r\n",
    );
    assert_eq!(
        ev,
        vec![
            Ok(OwnedEvent::GreetingRefused(ErrResponse::new(
                Some(RespCode::SysTemp),
                "too busy"
            ))),
            state(SessionState::Greeting, SessionState::Closed),
            Ok(OwnedEvent::Closed)
        ]
    );
    let (_, ev) = run_whole(common::cleartext_config(), &[], b"* OK IMAP4rev1 ready\r\n");
    assert!(matches!(
        ev.last(),
        Some(Err(ProtocolError::BadGreeting { .. }))
    ));
    let (_, ev) = run_whole(
        common::cleartext_config(),
        &[],
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n",
    );
    assert!(matches!(
        ev.last(),
        Some(Err(ProtocolError::BadGreeting { .. }))
    ));
}

#[test]
fn quit_error_reports_failed_update() {
    let trace = "S: +OK\r\nS: +OK\r\nS: +OK\r\nS: +OK\r\nS: -ERR [SYS/TEMP] some deleted messages not removed\r\n";
    let (_, server) = split_trace(trace);
    let cmds = after_login([Command::Dele(n(1)), Command::Quit]);
    let (_, ev) = run_whole(common::cleartext_config(), &cmds, &server);
    let tail: Vec<_> = ev.iter().rev().take(4).rev().cloned().collect();
    assert_eq!(
        tail[0],
        state(SessionState::Transaction, SessionState::Update)
    );
    assert!(
        matches!(&tail[1], Ok(OwnedEvent::Err { handle, command: CommandKind::Quit, response: e }) if handle.id() == 3 && e.code == Some(RespCode::SysTemp))
    );
    assert_eq!(tail[2], state(SessionState::Update, SessionState::Closed));
    assert_eq!(tail[3], Ok(OwnedEvent::Closed));
}

#[test]
fn wrong_state_is_refused_locally() {
    let mut client = Client::new(common::cleartext_config());
    assert_eq!(
        client.enqueue(Command::Retr(n(1))),
        Err(UsageError::WrongState {
            state: SessionState::Authorization,
            command: CommandKind::Retr
        })
    );
    assert!(matches!(
        client.enqueue(Command::Noop),
        Err(UsageError::WrongState { .. })
    ));
    client.enqueue(Command::user("u").unwrap()).unwrap();
    client.enqueue(Command::pass("p").unwrap()).unwrap();
    // Projected state: after PASS, TRANSACTION commands are accepted...
    client.enqueue(Command::Stat).unwrap();
    // ...and AUTHORIZATION ones are not.
    assert!(matches!(
        client.enqueue(Command::user("x").unwrap()),
        Err(UsageError::WrongState { .. })
    ));
    assert!(matches!(
        client.enqueue(Command::Stls),
        Err(UsageError::WrongState { .. })
    ));
    client.enqueue(Command::Quit).unwrap();
    assert_eq!(client.enqueue(Command::Noop), Err(UsageError::Closed));
}

#[test]
fn failed_pass_rejects_commands_queued_behind_it() {
    let cmds = [
        Command::user("u").unwrap(),
        Command::pass("bad").unwrap(),
        Command::Stat,
    ];
    let (sent, ev) = run_whole(
        common::cleartext_config(),
        &cmds,
        b"+OK\r\n+OK\r\n-ERR [AUTH] invalid password\r\n",
    );
    assert_eq!(
        sent, b"USER u\r\nPASS bad\r\n",
        "STAT is never sent in AUTHORIZATION"
    );
    assert!(ev.iter().any(|e| matches!(e, Ok(OwnedEvent::Rejected { handle, command: CommandKind::Stat, .. }) if handle.id() == 2)));
}

#[test]
fn stls_injection_is_refused() {
    // Bytes in the same read as +OK to STLS.
    let (_, ev) = run_whole(
        common::cleartext_config(),
        &[Command::Stls],
        b"+OK\r\n+OK Begin TLS\r\n+OK injected\r\n",
    );
    assert!(
        matches!(ev.last(), Some(Err(ProtocolError::StlsInjection { .. }))),
        "{ev:?}"
    );
    // Bytes in a later read, before the handshake.
    let mut client = Client::new(common::cleartext_config());
    let (mut sent, mut ev) = (Vec::new(), Vec::new());
    client.handle_input(b"+OK\r\n");
    client.enqueue(Command::Stls).unwrap();
    drain(&mut client, &mut sent, &mut ev);
    client.handle_input(b"+OK go ahead\r\n");
    assert!(drain(&mut client, &mut sent, &mut ev));
    assert!(client.is_awaiting_tls());
    client.handle_input(b"-ERR x\r\n");
    assert!(matches!(
        client.tls_established(),
        Err(UsageError::Poisoned(ProtocolError::StlsInjection {
            len: 8
        }))
    ));
    assert!(matches!(
        client.poll_event(),
        Err(ProtocolError::StlsInjection { .. })
    ));
}

#[test]
fn stls_forgets_capabilities_and_greeting() {
    let mut client = Client::new(common::cleartext_config());
    let (mut sent, mut ev) = (Vec::new(), Vec::new());
    client.handle_input(b"+OK <1.2@host>\r\n");
    client.enqueue(Command::Capa).unwrap();
    drain(&mut client, &mut sent, &mut ev);
    client.handle_input(b"+OK\r\nSTLS\r\nSASL PLAIN\r\n.\r\n");
    drain(&mut client, &mut sent, &mut ev);
    assert!(client.capabilities().unwrap().stls);
    client.enqueue(Command::Stls).unwrap();
    drain(&mut client, &mut sent, &mut ev);
    client.handle_input(b"+OK\r\n");
    drain(&mut client, &mut sent, &mut ev);
    client.tls_established().unwrap();
    assert!(client.capabilities().is_none());
    assert!(client.greeting().is_none());
    assert!(client.is_tls());
    assert_eq!(client.apop("u", "p"), Err(UsageError::ApopUnavailable));
    assert_eq!(client.enqueue(Command::Stls), Err(UsageError::AlreadyTls));
    // The session goes on over the new transport.
    client.enqueue(Command::Capa).unwrap();
    sent.clear();
    drain(&mut client, &mut sent, &mut ev);
    assert_eq!(sent, b"CAPA\r\n");
}

#[test]
fn hostile_status_line_without_end() {
    let mut client = Client::new(common::cleartext_config());
    let chunk = vec![b'A'; 4096];
    let mut err = None;
    for _ in 0..100 {
        client.handle_input(&chunk);
        if let Err(e) = client.poll_event() {
            err = Some(e);
            break;
        }
    }
    assert_eq!(err, Some(ProtocolError::LineTooLong { limit: 8192 }));
    assert!(client.buffer_capacity() < 64 * 1024);
    // Sticky.
    assert_eq!(
        client.poll_event().unwrap_err(),
        ProtocolError::LineTooLong { limit: 8192 }
    );
    assert!(matches!(
        client.enqueue(Command::Capa),
        Err(UsageError::Poisoned(_))
    ));
}

#[test]
fn greeting_of_a_million_angle_brackets() {
    let mut g = b"+OK ".to_vec();
    g.extend(std::iter::repeat_n(b'<', 1_000_000));
    g.extend_from_slice(b"\r\n");
    let mut config = common::cleartext_config();
    config.max_line_len = 2_000_000;
    let (_, ev) = run_whole(config, &[], &g);
    assert!(matches!(&ev[0], Ok(OwnedEvent::Greeting(g)) if g.apop_timestamp.is_none()));
}

#[test]
fn reply_with_nothing_in_flight() {
    let (_, ev) = run_whole(
        common::cleartext_config(),
        &[],
        b"+OK hello\r\n+OK surprise\r\n",
    );
    assert!(matches!(
        ev.last(),
        Some(Err(ProtocolError::UnsolicitedResponse { .. }))
    ));
}

#[test]
fn eof_in_the_middle_of_a_body_is_truncation() {
    let cmds = after_login([Command::Retr(n(1))]);
    let (_, ev) = run_split(
        common::cleartext_config(),
        &cmds,
        b"+OK\r\n+OK\r\n+OK\r\n+OK\r\nline one\r\nline tw",
        &[],
        true,
    );
    assert!(
        matches!(ev.last(), Some(Err(ProtocolError::TruncatedBody { .. }))),
        "{ev:?}"
    );
    assert!(!ev
        .iter()
        .any(|e| matches!(e, Ok(OwnedEvent::BodyEnd { .. }))));
    // Cut right after a CRLF, and right after the final dot without its CRLF.
    for server in [
        &b"+OK\r\n+OK\r\n+OK\r\n+OK\r\nline\r\n"[..],
        b"+OK\r\n+OK\r\n+OK\r\n+OK\r\nline\r\n.",
    ] {
        let (_, ev) = run_split(common::cleartext_config(), &cmds, server, &[], true);
        assert!(
            matches!(ev.last(), Some(Err(ProtocolError::TruncatedBody { .. }))),
            "{ev:?}"
        );
    }
}

#[test]
fn eof_while_waiting_and_clean_eof() {
    let (_, ev) = run_split(
        common::cleartext_config(),
        &[Command::Capa],
        b"+OK\r\n",
        &[],
        true,
    );
    assert!(matches!(
        ev.last(),
        Some(Err(ProtocolError::UnexpectedEof { .. }))
    ));
    let (_, ev) = run_split(common::cleartext_config(), &[], b"+OK\r\n", &[], true);
    assert_eq!(ev.last(), Some(&Ok(OwnedEvent::Closed)));
    let (_, ev) = run_split(common::cleartext_config(), &[], b"", &[], true);
    assert!(matches!(
        ev.last(),
        Some(Err(ProtocolError::UnexpectedEof { .. }))
    ));
}

#[test]
fn bare_lf_server() {
    let server = b"+OK hi\n+OK\n+OK\n+OK\n1 10\n2 20\n.\n+OK\nline\n..dot\n.\n";
    let cmds = after_login([Command::List(None), Command::Retr(n(1))]);
    let (_, ev) = run_bytewise(common::cleartext_config(), &cmds, server);
    assert!(ev.iter().any(
        |e| matches!(e, Ok(OwnedEvent::Ok { response: Response::List(v), .. }) if v.len() == 2)
    ));
    assert!(ev.contains(&body(3, b"line\n.dot\n")));
}

#[test]
fn malformed_replies_name_the_line() {
    let cmds = after_login([Command::Stat]);
    let (_, ev) = run_whole(
        common::cleartext_config(),
        &cmds,
        b"+OK\r\n+OK\r\n+OK\r\n+OK lots of mail\r\n",
    );
    match ev.last() {
        Some(Err(ProtocolError::MalformedLine {
            command: CommandKind::Stat,
            line,
            ..
        })) => {
            assert_eq!(line, "lots of mail")
        }
        other => panic!("{other:?}"),
    }
    let cmds = after_login([Command::Uidl(None)]);
    let (_, ev) = run_whole(
        common::cleartext_config(),
        &cmds,
        b"+OK\r\n+OK\r\n+OK\r\n+OK\r\n1 has space\r\n.\r\n",
    );
    assert!(matches!(
        ev.last(),
        Some(Err(ProtocolError::MalformedLine {
            command: CommandKind::Uidl,
            ..
        }))
    ));
    let mut lenient = common::cleartext_config();
    lenient.lenient_uids = true;
    let (_, ev) = run_whole(
        lenient,
        &cmds,
        b"+OK\r\n+OK\r\n+OK\r\n+OK\r\n1 has space\r\n.\r\n",
    );
    assert!(ev.iter().any(
        |e| matches!(e, Ok(OwnedEvent::Ok { response: Response::Uidl(v), .. }) if v[0].uid.as_bytes() == b"has space")
    ));
    let (_, ev) = run_whole(
        common::cleartext_config(),
        &[Command::Capa],
        b"+OK\r\nHELLO\r\n",
    );
    assert!(matches!(
        ev.last(),
        Some(Err(ProtocolError::MalformedStatus { .. }))
    ));
}

#[test]
fn too_many_entries() {
    let mut config = common::cleartext_config();
    config.max_entries = 3;
    let cmds = after_login([Command::List(None)]);
    let (_, ev) = run_whole(
        config,
        &cmds,
        b"+OK\r\n+OK\r\n+OK\r\n+OK\r\n1 1\r\n2 2\r\n3 3\r\n4 4\r\n.\r\n",
    );
    assert_eq!(
        ev.last(),
        Some(&Err(ProtocolError::TooManyEntries { limit: 3 }))
    );
}

#[test]
fn error_display_never_contains_password() {
    let cmds = [
        Command::user("u").unwrap(),
        Command::pass("hunter2").unwrap(),
    ];
    let (_, ev) = run_whole(
        common::cleartext_config(),
        &cmds,
        b"+OK\r\n+OK\r\ngarbage\r\n",
    );
    let all = format!("{ev:?}");
    assert!(!all.contains("hunter2"));
}

/// AUTH driven by a mechanism: the core answers challenges itself.
#[test]
fn authenticate_with_mechanism_cram_md5() {
    use pop3_proto::sasl::CramMd5;
    let mut client = Client::new(common::cleartext_config());
    let (mut sent, mut ev) = (Vec::new(), Vec::new());
    client.handle_input(b"+OK\r\n");
    let h = client
        .authenticate(Box::new(CramMd5::new("tim", "tanstaaftanstaaf")))
        .unwrap();
    drain(&mut client, &mut sent, &mut ev);
    assert_eq!(sent, b"AUTH CRAM-MD5\r\n");
    client.handle_input(b"+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n");
    sent.clear();
    drain(&mut client, &mut sent, &mut ev);
    assert_eq!(
        sent,
        b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n"
    );
    client.handle_input(b"+OK welcome\r\n");
    ev.clear();
    drain(&mut client, &mut sent, &mut ev);
    assert!(
        matches!(&ev[0], Ok(OwnedEvent::Ok { handle, command: CommandKind::Auth, .. }) if *handle == h)
    );
    assert_eq!(client.session_state(), SessionState::Transaction);
}

/// A long initial response (an OAuth token) does not fit the 255-octet
/// AUTH line: it is sent after the server's empty challenge.
#[test]
fn long_initial_response_goes_after_empty_challenge() {
    use pop3_proto::sasl::XOAuth2;
    let token = "y".repeat(1200);
    let mut client = Client::new(common::cleartext_config());
    let (mut sent, mut ev) = (Vec::new(), Vec::new());
    client.handle_input(b"+OK\r\n");
    client
        .authenticate(Box::new(XOAuth2::new("someone@example.com", token.clone())))
        .unwrap();
    drain(&mut client, &mut sent, &mut ev);
    assert_eq!(sent, b"AUTH XOAUTH2\r\n");
    client.handle_input(b"+ \r\n");
    sent.clear();
    drain(&mut client, &mut sent, &mut ev);
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&sent[..sent.len() - 2])
        .unwrap();
    assert_eq!(
        decoded,
        format!("user=someone@example.com\x01auth=Bearer {token}\x01\x01").into_bytes()
    );
    // The provider's error dance: a JSON challenge, answered with an empty
    // line, then -ERR carrying the JSON as detail.
    client.handle_input(b"+ eyJzdGF0dXMiOiI0MDAifQ==\r\n");
    sent.clear();
    drain(&mut client, &mut sent, &mut ev);
    assert_eq!(sent, b"\r\n");
    client.handle_input(b"-ERR [AUTH] invalid credentials\r\n");
    ev.clear();
    drain(&mut client, &mut sent, &mut ev);
    match &ev[0] {
        Ok(OwnedEvent::Err {
            command: CommandKind::Auth,
            response: e,
            ..
        }) => {
            assert_eq!(e.code, Some(RespCode::Auth));
            assert_eq!(e.sasl_detail.as_deref(), Some("{\"status\":\"400\"}"));
        }
        other => panic!("{other:?}"),
    }
}

/// SCRAM: a server that answers +OK without a valid server signature is
/// not trusted (the session is poisoned), and a bad signature cancels.
#[test]
fn scram_server_must_prove_itself() {
    use pop3_proto::sasl::{Scram, ScramHash};
    // RFC 7677 §3 exchange, with the final server message tampered with.
    let mut client = Client::new(common::cleartext_config());
    let (mut sent, mut ev) = (Vec::new(), Vec::new());
    client.handle_input(b"+OK\r\n");
    let m = Scram::with_nonce(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO").unwrap();
    client.authenticate(Box::new(m)).unwrap();
    drain(&mut client, &mut sent, &mut ev);
    assert!(sent.starts_with(b"AUTH SCRAM-SHA-256 "));
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let server_first =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    client.handle_input(format!("+ {}\r\n", b64(server_first)).as_bytes());
    sent.clear();
    drain(&mut client, &mut sent, &mut ev);
    assert!(!sent.is_empty());
    // Server claims success without sending v=.
    client.handle_input(b"+OK\r\n");
    ev.clear();
    drain(&mut client, &mut sent, &mut ev);
    assert!(
        matches!(ev.last(), Some(Err(ProtocolError::Sasl(_)))),
        "{ev:?}"
    );

    // Same, but with a wrong signature: the core cancels with "*".
    let mut client = Client::new(common::cleartext_config());
    let (mut sent, mut ev) = (Vec::new(), Vec::new());
    client.handle_input(b"+OK\r\n");
    let m = Scram::with_nonce(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO").unwrap();
    client.authenticate(Box::new(m)).unwrap();
    drain(&mut client, &mut sent, &mut ev);
    client.handle_input(format!("+ {}\r\n", b64(server_first)).as_bytes());
    drain(&mut client, &mut sent, &mut ev);
    client.handle_input(
        format!(
            "+ {}\r\n",
            b64("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        )
        .as_bytes(),
    );
    sent.clear();
    drain(&mut client, &mut sent, &mut ev);
    assert_eq!(sent, b"*\r\n");
    client.handle_input(b"-ERR cancelled\r\n");
    ev.clear();
    drain(&mut client, &mut sent, &mut ev);
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Ok(OwnedEvent::AuthCancelled {
                error: SaslError::ServerVerificationFailed,
                ..
            })
        )),
        "{ev:?}"
    );
    assert_eq!(client.session_state(), SessionState::Authorization);
}

/// `has_event` finds a body chunk without consuming it; input fed while a
/// chunk is pending does not move its bytes.
#[test]
fn has_event_keeps_a_pending_chunk_valid() {
    let mut client = Client::new(common::cleartext_config());
    let (mut sent, mut ev) = (Vec::new(), Vec::new());
    client.handle_input(b"+OK\r\n");
    client.enqueue(Command::user("u").unwrap()).unwrap();
    client.enqueue(Command::pass("p").unwrap()).unwrap();
    client.enqueue(Command::Retr(n(1))).unwrap();
    drain(&mut client, &mut sent, &mut ev);
    client.handle_input(b"+OK\r\n");
    drain(&mut client, &mut sent, &mut ev);
    client.handle_input(b"+OK\r\n");
    drain(&mut client, &mut sent, &mut ev);
    client.handle_input(b"+OK\r\nfirst line\r\n");
    assert!(client.has_event().unwrap());
    assert!(!client.has_body_chunk(), "the +OK event comes first");
    assert!(matches!(
        client.poll_event().unwrap(),
        Some(pop3_proto::Event::Ok { .. })
    ));
    assert!(client.has_event().unwrap());
    assert!(client.has_body_chunk());
    client.handle_input(b"second line\r\n.\r\n");
    match client.poll_event().unwrap() {
        Some(pop3_proto::Event::BodyChunk { data, .. }) => assert_eq!(data, b"first line\r\n"),
        other => panic!("{other:?}"),
    }
    let mut rest = Vec::new();
    while let Some(e) = client.poll_event().unwrap() {
        if let pop3_proto::Event::BodyChunk { data, .. } = e {
            rest.extend_from_slice(data);
        }
    }
    assert_eq!(rest, b"second line\r\n");
    assert!(!client.has_event().unwrap());
}

/// `Transmit` says which output is secret and whose secret it is, so
/// adapters can log `PASS <redacted>` without parsing their own bytes.
#[test]
fn transmit_labels_secrets() {
    use pop3_proto::{Secret, Transmit};
    let mut client = Client::new(common::cleartext_config());
    let mut out = Vec::new();
    client.handle_input(b"+OK <1.2@x>\r\n");
    while client.poll_event().unwrap().is_some() {}
    let mut next = |client: &mut Client, reply: &[u8]| -> Transmit {
        out.clear();
        let t = client.poll_transmit(&mut out).expect("something to send");
        client.handle_input(reply);
        while client.poll_event().unwrap().is_some() {}
        t
    };
    client.enqueue(Command::user("u").unwrap()).unwrap();
    let t = next(&mut client, b"+OK\r\n");
    assert_eq!((t.sensitive, t.secret_of), (false, None));
    client.enqueue(Command::pass("p").unwrap()).unwrap();
    let t = next(&mut client, b"-ERR\r\n");
    assert_eq!((t.sensitive, t.secret_of), (true, Some(CommandKind::Pass)));
    client.apop("u", "p").unwrap();
    let t = next(&mut client, b"-ERR\r\n");
    assert_eq!((t.sensitive, t.secret_of), (true, Some(CommandKind::Apop)));
    client
        .enqueue(Command::auth("PLAIN", Some(Secret::new(b"\0u\0p".to_vec()))).unwrap())
        .unwrap();
    let t = next(&mut client, b"+ \r\n");
    assert_eq!((t.sensitive, t.secret_of), (true, Some(CommandKind::Auth)));
    client.auth_respond(Secret::new(b"more".to_vec())).unwrap();
    let t = next(&mut client, b"+OK\r\n");
    assert_eq!(
        (t.sensitive, t.secret_of),
        (true, None),
        "a SASL response line"
    );
    client.enqueue(Command::Stat).unwrap();
    let t = next(&mut client, b"+OK 0 0\r\n");
    assert_eq!((t.sensitive, t.secret_of), (false, None));
}

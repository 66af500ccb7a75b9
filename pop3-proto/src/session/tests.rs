//! Sans-IO tests of the session layer: canned servers, a fake clock.

use super::*;
use crate::ProtocolError;
use alloc::collections::VecDeque;
use alloc::string::ToString;
use alloc::vec;
use base64::Engine as _;

const MS: Duration = Duration::from_millis(1);

struct Harness {
    s: Session,
    now: Instant,
    wire: Vec<u8>,
    server: VecDeque<Vec<u8>>,
    binding: Option<ChannelBinding>,
    body: Vec<u8>,
}

impl Harness {
    fn new(policy: TlsPolicy, allow_cleartext: bool) -> Harness {
        let mut config = SessionConfig {
            policy,
            response_timeout: Duration::from_secs(1),
            ..SessionConfig::default()
        };
        config.proto.allow_cleartext_credentials = allow_cleartext;
        Harness {
            s: Session::new(config, Instant::ZERO),
            now: Instant::ZERO,
            wire: Vec::new(),
            server: VecDeque::new(),
            binding: None,
            body: Vec::new(),
        }
    }

    fn serve(&mut self, replies: &[&[u8]]) {
        self.server.extend(replies.iter().map(|r| r.to_vec()));
    }

    /// The generic driver loop; one canned reply per read, 1 ms apart.
    fn run(&mut self) -> Result<Output, SessionError> {
        loop {
            while self.s.poll_transmit(self.now, &mut self.wire).is_some() {}
            match self.s.poll()? {
                Action::Done(out) => return Ok(out),
                Action::Body(b) => self.body.extend_from_slice(b),
                Action::BodyStart(_) => {}
                Action::StartTls => {
                    let b = self.binding.clone();
                    self.s.tls_established(self.now, b)?;
                }
                Action::Wait => {
                    if self.s.wants_write() {
                        continue;
                    }
                    self.now = self.now.saturating_add(MS);
                    match self.server.pop_front() {
                        Some(r) => self.s.handle_input(self.now, &r),
                        None => panic!("transcript ended; sent {:?}", self.sent()),
                    }
                }
            }
        }
    }

    fn sent(&self) -> String {
        String::from_utf8_lossy(&self.wire).into_owned()
    }

    fn connect(&mut self) -> Output {
        self.s.start_connect().unwrap();
        self.run().unwrap()
    }
}

/// Logged in with USER/PASS over implicit TLS, wire cleared.
fn logged_in() -> Harness {
    logged_in_with(b"+OK\r\n.\r\n")
}

/// [`logged_in`], the CAPA refreshed after login answered with `capa`.
fn logged_in_with(capa: &[u8]) -> Harness {
    let mut h = Harness::new(TlsPolicy::Implicit, false);
    h.serve(&[b"+OK hi\r\n", b"+OK\r\n.\r\n", b"+OK\r\n", b"+OK\r\n"]);
    h.connect();
    h.s.start_login("u", "p", &[1; 32]).unwrap();
    h.serve(&[capa]);
    h.run().unwrap();
    h.wire.clear();
    h
}

fn tls_session(capa: &[u8]) -> Harness {
    let mut h = Harness::new(TlsPolicy::Implicit, false);
    h.serve(&[b"+OK hi <1.2@x>\r\n", capa]);
    assert_eq!(h.connect(), Output::Connected);
    h.wire.clear();
    h
}

#[test]
fn connect_required_upgrades_and_rereads_capa() {
    let mut h = Harness::new(TlsPolicy::Required, false);
    h.serve(&[
        b"+OK hi\r\n",
        b"+OK\r\nSTLS\r\nUSER\r\n.\r\n",
        b"+OK go\r\n",
        b"+OK\r\nSASL PLAIN\r\n.\r\n",
    ]);
    assert_eq!(h.connect(), Output::Connected);
    assert_eq!(h.sent(), "CAPA\r\nSTLS\r\nCAPA\r\n");
    assert!(h.s.client().is_tls());
    assert_eq!(h.s.client().capabilities().unwrap().sasl, ["PLAIN"]);
    assert!(h.s.greeting().is_some(), "first greeting kept for display");
}

#[test]
fn connect_required_refuses_a_server_without_stls() {
    let mut h = Harness::new(TlsPolicy::Required, true);
    h.serve(&[b"+OK hi\r\n", b"+OK\r\nUSER\r\n.\r\n"]);
    h.s.start_connect().unwrap();
    assert_eq!(
        h.run(),
        Err(SessionError::Security(SecurityError::StlsNotOffered))
    );
    assert_eq!(h.sent(), "CAPA\r\n");
    // A refused CAPA is "not offered" too.
    let mut h = Harness::new(TlsPolicy::Required, true);
    h.serve(&[b"+OK hi\r\n", b"-ERR what\r\n"]);
    h.s.start_connect().unwrap();
    assert_eq!(
        h.run(),
        Err(SessionError::Security(SecurityError::StlsNotOffered))
    );
}

#[test]
fn connect_opportunistic_stays_cleartext_when_stls_is_refused() {
    let mut h = Harness::new(TlsPolicy::Opportunistic, false);
    h.serve(&[b"+OK hi\r\n", b"+OK\r\nSTLS\r\n.\r\n", b"-ERR no\r\n"]);
    assert_eq!(h.connect(), Output::Connected);
    assert!(!h.s.client().is_tls());
    let mut h = Harness::new(TlsPolicy::Required, false);
    h.serve(&[b"+OK hi\r\n", b"+OK\r\nSTLS\r\n.\r\n", b"-ERR no\r\n"]);
    h.s.start_connect().unwrap();
    assert!(matches!(
        h.run(),
        Err(SessionError::Security(SecurityError::StlsRefused(_)))
    ));
}

#[test]
fn stls_injection_is_refused_before_the_handshake() {
    let mut h = Harness::new(TlsPolicy::Required, false);
    h.serve(&[
        b"+OK hi\r\n",
        b"+OK\r\nSTLS\r\n.\r\n",
        b"+OK go\r\n+OK injected\r\n",
    ]);
    h.s.start_connect().unwrap();
    assert!(matches!(
        h.run(),
        Err(SessionError::Protocol(ProtocolError::StlsInjection { .. }))
    ));
    assert!(h.s.is_broken());
}

#[test]
fn credentials_are_refused_without_tls_before_anything_is_sent() {
    let mut h = Harness::new(TlsPolicy::None, false);
    h.serve(&[b"+OK hi <1@x>\r\n", b"+OK\r\nUSER\r\n.\r\n"]);
    h.connect();
    h.wire.clear();
    let refused = Err(SessionError::Security(SecurityError::CleartextCredentials));
    assert_eq!(h.s.start_login("u", "p", &[1; 32]), refused);
    assert_eq!(h.s.start_apop("u", "p"), refused);
    assert_eq!(
        h.s.start_authenticate(Box::new(crate::sasl::Plain::new("u", "p"))),
        refused
    );
    assert_eq!(
        h.s.enqueue(Command::pass("p").unwrap()).map(|_| ()),
        refused,
        "raw enqueue too"
    );
    assert!(!h.s.wants_write());
    assert_eq!(h.sent(), "");
    // The machine alone refuses too.
    let mut c = Client::new(crate::Config::default());
    assert_eq!(
        c.enqueue(Command::user("u").unwrap()),
        Err(UsageError::CleartextCredentials)
    );
}

#[test]
fn user_pass_login_rereads_capa() {
    let mut h = tls_session(b"+OK\r\nUSER\r\n.\r\n");
    h.serve(&[b"+OK\r\n", b"+OK\r\n", b"+OK\r\nUSER\r\nUIDL\r\n.\r\n"]);
    h.s.start_login("alice", "pw", &[1; 32]).unwrap();
    assert_eq!(h.run(), Ok(Output::LoggedIn(LoginMethod::Apop)));
    // The greeting had a timestamp and TLS is up: APOP is planned.
    assert!(h.sent().starts_with("APOP alice "));
    assert!(h.sent().ends_with("\r\nCAPA\r\n"));
    assert!(h.s.client().capabilities().unwrap().uidl);

    let mut h = Harness::new(TlsPolicy::Implicit, false);
    h.serve(&[b"+OK hi\r\n", b"+OK\r\nUSER\r\n.\r\n"]);
    h.connect();
    h.wire.clear();
    h.serve(&[b"+OK\r\n", b"+OK\r\n", b"+OK\r\nUSER\r\n.\r\n"]);
    h.s.start_login("alice", "pw", &[1; 32]).unwrap();
    assert_eq!(h.run(), Ok(Output::LoggedIn(LoginMethod::UserPass)));
    assert_eq!(h.sent(), "USER alice\r\nPASS pw\r\nCAPA\r\n");
}

#[test]
fn failed_user_sends_no_password() {
    let mut h = Harness::new(TlsPolicy::Implicit, false);
    h.serve(&[b"+OK hi\r\n", b"+OK\r\n.\r\n", b"-ERR no such user\r\n"]);
    h.connect();
    h.s.start_login("alice", "pw", &[1; 32]).unwrap();
    assert!(matches!(
        h.run(),
        Err(SessionError::Server {
            command: CommandKind::User,
            ..
        })
    ));
    assert!(!h.sent().contains("PASS"));
}

#[test]
fn explicit_user_pass_rereads_capa_and_a_failed_user_sends_no_password() {
    let mut h = tls_session(b"+OK\r\nSASL PLAIN\r\nUSER\r\n.\r\n");
    h.serve(&[b"+OK\r\n", b"+OK in\r\n", b"+OK\r\nUSER\r\nUIDL\r\n.\r\n"]);
    h.s.start_user_pass("alice", "pw").unwrap();
    let Ok(Output::Authenticated(status)) = h.run() else {
        panic!("not authenticated: sent {:?}", h.sent());
    };
    assert_eq!(status.text, "in");
    assert_eq!(h.sent(), "USER alice\r\nPASS pw\r\nCAPA\r\n");
    assert!(h.s.client().capabilities().is_some_and(|c| c.uidl));

    let mut h = tls_session(b"+OK\r\nUSER\r\n.\r\n");
    h.serve(&[b"-ERR who?\r\n"]);
    h.s.start_user_pass("alice", "pw").unwrap();
    assert!(matches!(
        h.run(),
        Err(SessionError::Server {
            command: CommandKind::User,
            ..
        })
    ));
    assert!(!h.sent().contains("PASS"));
    // An invalid password is refused before USER goes out.
    let mut h = tls_session(b"+OK\r\nUSER\r\n.\r\n");
    assert!(h.s.start_user_pass("alice", "p\r\nDELE 1").is_err());
    while h.s.poll_transmit(h.now, &mut h.wire).is_some() {}
    assert_eq!(h.sent(), "");
}

#[test]
fn sasl_login_rereads_capa() {
    let mut h = tls_session(b"+OK\r\nSASL PLAIN LOGIN\r\n.\r\n");
    h.serve(&[b"+OK welcome\r\n", b"+OK\r\nSASL PLAIN\r\n.\r\n"]);
    h.s.start_login("u", "p", &[1; 32]).unwrap();
    assert_eq!(
        h.run(),
        Ok(Output::LoggedIn(LoginMethod::Sasl("PLAIN".to_string())))
    );
    assert_eq!(h.sent(), "AUTH PLAIN AHUAcA==\r\nCAPA\r\n");
    assert_eq!(
        h.s.client().session_state(),
        SessionState::Transaction,
        "logged in"
    );
}

#[test]
fn explicit_mechanism_not_offered_is_refused_naming_the_offer() {
    let mut h = tls_session(b"+OK\r\nSASL SCRAM-SHA-256 PLAIN\r\n.\r\n");
    let e =
        h.s.start_authenticate(Box::new(crate::sasl::CramMd5::new("u", "p")))
            .unwrap_err();
    assert_eq!(
        e,
        SessionError::Usage(UsageError::MechanismNotOffered {
            requested: "CRAM-MD5".to_string(),
            offered: vec!["SCRAM-SHA-256".to_string(), "PLAIN".to_string()],
        })
    );
    assert!(e.to_string().contains("SCRAM-SHA-256 PLAIN"), "{e}");
    assert!(!h.s.wants_write());
    assert!(!h.s.is_busy());
}

#[test]
fn no_inline_initial_response_when_capa_was_refused() {
    let mut h = Harness::new(TlsPolicy::Implicit, false);
    h.serve(&[b"+OK hi\r\n", b"-ERR no CAPA here\r\n"]);
    h.connect();
    h.wire.clear();
    h.serve(&[b"+ \r\n", b"+OK\r\n"]);
    h.s.start_authenticate(Box::new(crate::sasl::Plain::new("u", "p")))
        .unwrap();
    assert!(matches!(h.run(), Ok(Output::Authenticated(_))));
    // No CAPA after login either: the server refused it.
    assert_eq!(h.sent(), "AUTH PLAIN\r\nAHUAcA==\r\n");
}

#[test]
fn apop_with_a_different_secret_falls_back_to_user_pass() {
    let mut h = tls_session(b"+OK\r\nUSER\r\n.\r\n");
    h.serve(&[
        b"-ERR [AUTH] bad digest\r\n",
        b"+OK\r\n",
        b"+OK\r\n",
        b"+OK\r\n.\r\n",
    ]);
    h.s.start_login("alice", "pw", &[1; 32]).unwrap();
    assert_eq!(h.run(), Ok(Output::LoggedIn(LoginMethod::UserPass)));
    let sent = h.sent();
    assert!(sent.starts_with("APOP alice "), "{sent}");
    assert!(
        sent.ends_with("\r\nUSER alice\r\nPASS pw\r\nCAPA\r\n"),
        "{sent}"
    );
    // A locked mailbox is not a wrong secret: no second try.
    let mut h = tls_session(b"+OK\r\nUSER\r\n.\r\n");
    h.serve(&[b"-ERR [IN-USE] locked\r\n"]);
    h.s.start_login("alice", "pw", &[1; 32]).unwrap();
    assert!(matches!(
        h.run(),
        Err(SessionError::Server {
            command: CommandKind::Apop,
            ..
        })
    ));
    assert!(!h.sent().contains("USER"));
}

#[test]
fn utf8_before_a_non_ascii_login() {
    let mut h = Harness::new(TlsPolicy::Implicit, false);
    h.serve(&[b"+OK hi\r\n", b"+OK\r\nUSER\r\nUTF8 USER\r\n.\r\n"]);
    h.connect();
    h.wire.clear();
    h.serve(&[b"+OK\r\n", b"+OK\r\n", b"+OK\r\n", b"+OK\r\n.\r\n"]);
    h.s.start_login("jörg", "pw", &[1; 32]).unwrap();
    assert_eq!(h.run(), Ok(Output::LoggedIn(LoginMethod::UserPass)));
    assert_eq!(h.sent(), "UTF8\r\nUSER jörg\r\nPASS pw\r\nCAPA\r\n");
    // ASCII credentials: no UTF8.
    let mut h = Harness::new(TlsPolicy::Implicit, false);
    h.serve(&[b"+OK hi\r\n", b"+OK\r\nUSER\r\nUTF8\r\n.\r\n"]);
    h.connect();
    h.wire.clear();
    h.serve(&[b"+OK\r\n", b"+OK\r\n", b"+OK\r\n.\r\n"]);
    h.s.start_login("jorg", "pw", &[1; 32]).unwrap();
    h.run().unwrap();
    assert_eq!(h.sent(), "USER jorg\r\nPASS pw\r\nCAPA\r\n");
}

#[test]
fn plus_is_preferred_with_channel_binding_after_stls() {
    let offer: &[u8] = b"+OK\r\nSTLS\r\nSASL SCRAM-SHA-256 SCRAM-SHA-256-PLUS\r\n.\r\n";
    for (binding, expect) in [
        (
            Some(ChannelBinding::TlsExporter(vec![9; 32])),
            "SCRAM-SHA-256-PLUS",
        ),
        (None, "SCRAM-SHA-256"),
    ] {
        let mut h = Harness::new(TlsPolicy::Required, false);
        h.binding = binding.clone();
        h.serve(&[b"+OK hi\r\n", offer, b"+OK\r\n", offer]);
        h.connect();
        h.wire.clear();
        h.s.start_login("u", "p", &[1; 32]).unwrap();
        while h.s.poll_transmit(h.now, &mut h.wire).is_some() {}
        let sent = h.sent();
        let line = sent.strip_suffix("\r\n").unwrap();
        let mut parts = line.split(' ');
        assert_eq!(parts.next(), Some("AUTH"));
        assert_eq!(parts.next(), Some(expect));
        let ir = base64::engine::general_purpose::STANDARD
            .decode(parts.next().unwrap())
            .unwrap();
        let gs2 = if binding.is_some() {
            "p=tls-exporter,,"
        } else {
            "n,,"
        };
        assert!(ir.starts_with(gs2.as_bytes()), "{:?}", ir);
    }
}

// ----- deadlines -----

/// Feeds `bytes` forever, one byte per 100 ms, until the session fails.
fn trickle(h: &mut Harness, bytes: &[u8]) -> SessionError {
    let mut i = 0;
    for _ in 0..10_000 {
        while h.s.poll_transmit(h.now, &mut h.wire).is_some() {}
        match h.s.poll() {
            Err(e) => return e,
            Ok(Action::Done(out)) => panic!("a trickling response completed: {out:?}"),
            Ok(Action::Body(b)) => h.body.extend_from_slice(b),
            Ok(Action::BodyStart(_)) => {}
            Ok(_) => {
                let deadline = h.s.poll_timeout().expect("a wait has a deadline");
                let next = h.now.saturating_add(100 * MS);
                if next >= deadline {
                    h.now = deadline;
                    h.s.handle_timeout(h.now);
                } else {
                    h.now = next;
                    h.s.handle_input(h.now, &bytes[i % bytes.len()..][..1]);
                    i += 1;
                }
            }
        }
    }
    panic!("no timeout after 10 000 steps");
}

fn expect_timeout(e: SessionError, waiting_for: Waiting, body: Option<u64>) {
    match e {
        SessionError::Timeout(t) => {
            assert_eq!(t.waiting_for, waiting_for);
            assert_eq!(t.body_received, body);
            assert_eq!(t.limit, Duration::from_secs(1));
        }
        e => panic!("expected a timeout, got {e:?}"),
    }
}

#[test]
fn trickling_greeting_times_out() {
    let mut h = Harness::new(TlsPolicy::None, false);
    h.s.start_connect().unwrap();
    assert_eq!(
        h.s.poll_timeout(),
        Some(Instant::from_epoch(Duration::from_secs(1)))
    );
    let e = trickle(&mut h, b"+OK this greeting never ends ");
    expect_timeout(e.clone(), Waiting::Greeting, None);
    assert!(h.now <= Instant::from_epoch(Duration::from_secs(1)));
    // Sticky: everything afterwards fails the same way.
    assert_eq!(h.s.poll().unwrap_err(), e);
    assert_eq!(h.s.start_command(Command::Noop), Err(e));
    assert!(h.s.is_broken());
}

fn with_first_byte(policy: TlsPolicy, first_byte: Duration) -> Harness {
    let mut h = Harness::new(policy, false);
    let config = SessionConfig {
        policy,
        response_timeout: Duration::from_secs(10),
        first_byte_timeout: Some(first_byte),
        ..SessionConfig::default()
    };
    h.s = Session::new(config, Instant::ZERO);
    h
}

#[test]
fn a_silent_server_fails_at_the_first_byte_deadline() {
    // An implicit-TLS port waits for a ClientHello and says nothing.
    for policy in [
        TlsPolicy::None,
        TlsPolicy::Required,
        TlsPolicy::Opportunistic,
    ] {
        let mut h = with_first_byte(policy, Duration::from_secs(2));
        h.s.start_connect().unwrap();
        assert!(matches!(h.s.poll(), Ok(Action::Wait)));
        assert_eq!(
            h.s.poll_timeout(),
            Some(Instant::from_epoch(Duration::from_secs(2)))
        );
        h.now = Instant::from_epoch(Duration::from_secs(2));
        h.s.handle_timeout(h.now);
        match h.s.poll().unwrap_err() {
            SessionError::Timeout(t) => {
                assert_eq!(t.waiting_for, Waiting::FirstByte, "{policy:?}");
                assert_eq!(t.limit, Duration::from_secs(2));
            }
            e => panic!("{e:?}"),
        }
    }
}

#[test]
fn one_greeting_byte_lifts_the_first_byte_deadline() {
    let mut h = with_first_byte(TlsPolicy::None, Duration::from_secs(2));
    h.s.start_connect().unwrap();
    assert!(matches!(h.s.poll(), Ok(Action::Wait)));
    h.now = Instant::from_epoch(Duration::from_millis(1900));
    h.s.handle_input(h.now, b"+");
    // Now the whole-greeting limit applies, counted from the start.
    assert_eq!(
        h.s.poll_timeout(),
        Some(Instant::from_epoch(Duration::from_secs(10)))
    );
    h.now = Instant::from_epoch(Duration::from_secs(5));
    h.s.handle_timeout(h.now);
    h.s.handle_input(h.now, b"OK slow but there\r\n");
    assert!(matches!(h.s.poll(), Ok(Action::Wait) | Ok(Action::Done(_))));
    assert!(!h.s.is_broken());
    // A trickled greeting still ends at the whole limit, as Greeting.
    let mut h = with_first_byte(TlsPolicy::None, Duration::from_secs(2));
    h.s.start_connect().unwrap();
    let e = trickle(&mut h, b"+OK never ends ");
    match e {
        SessionError::Timeout(t) => {
            assert_eq!(t.waiting_for, Waiting::Greeting);
            assert_eq!(t.limit, Duration::from_secs(10));
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn a_first_byte_limit_equal_to_the_timeout_names_the_first_byte() {
    let mut h = with_first_byte(TlsPolicy::Required, Duration::from_secs(10));
    h.s.start_connect().unwrap();
    assert!(matches!(h.s.poll(), Ok(Action::Wait)));
    h.now = Instant::from_epoch(Duration::from_secs(10));
    h.s.handle_timeout(h.now);
    match h.s.poll().unwrap_err() {
        SessionError::Timeout(t) => assert_eq!(t.waiting_for, Waiting::FirstByte),
        e => panic!("{e:?}"),
    }
}

#[test]
fn the_first_byte_limit_is_unused_when_longer_or_implicit() {
    let mut h = with_first_byte(TlsPolicy::None, Duration::from_secs(20));
    h.s.start_connect().unwrap();
    assert_eq!(
        h.s.poll_timeout(),
        Some(Instant::from_epoch(Duration::from_secs(10)))
    );
    let mut h = with_first_byte(TlsPolicy::Implicit, Duration::from_secs(2));
    h.s.start_connect().unwrap();
    assert_eq!(
        h.s.poll_timeout(),
        Some(Instant::from_epoch(Duration::from_secs(10)))
    );
}

#[test]
fn trickling_status_line_times_out() {
    let mut h = logged_in();
    h.now = h.now.saturating_add(Duration::from_secs(30));
    h.s.start_command(Command::Noop).unwrap();
    let sent_at = h.now;
    let e = trickle(&mut h, b"+OK slow ");
    expect_timeout(e, Waiting::Reply(CommandKind::Noop), None);
    assert_eq!(h.now, sent_at.saturating_add(Duration::from_secs(1)));
}

#[test]
fn trickling_listing_times_out() {
    let mut h = logged_in();
    h.s.start_command(Command::List(None)).unwrap();
    let e = trickle(&mut h, b"+OK\r\n1 10\r\n");
    expect_timeout(e, Waiting::Reply(CommandKind::List), None);
}

#[test]
fn trickling_body_times_out_as_truncated() {
    let mut h = logged_in();
    h.s.start_command(Command::Retr(crate::MsgNum::new(1).unwrap()))
        .unwrap();
    let _ = h.s.poll_transmit(h.now, &mut h.wire).unwrap();
    h.s.handle_input(h.now, b"+OK\r\n");
    let e = trickle(&mut h, b"line\r\n");
    let SessionError::Timeout(t) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(t.waiting_for, Waiting::Reply(CommandKind::Retr));
    let received = t.body_received.expect("body started");
    assert!(received > 0);
    assert_eq!(
        received,
        h.body.len() as u64,
        "what was delivered is counted"
    );
}

#[test]
fn a_slow_but_steady_session_does_not_time_out() {
    // Each response takes 0.9 s of a 1 s limit: fine, as the clock
    // restarts for every response.
    let mut h = logged_in();
    for _ in 0..5 {
        h.s.start_command(Command::Noop).unwrap();
        let _ = h.s.poll_transmit(h.now, &mut h.wire).unwrap();
        h.now = h.now.saturating_add(900 * MS);
        h.s.handle_timeout(h.now);
        h.s.handle_input(h.now, b"+OK\r\n");
        assert!(matches!(h.s.poll(), Ok(Action::Done(_))));
        assert_eq!(h.s.poll_timeout(), None, "nothing in flight, no deadline");
    }
}

#[test]
fn pipelined_responses_each_get_the_full_limit() {
    let mut config = SessionConfig {
        policy: TlsPolicy::Implicit,
        response_timeout: Duration::from_secs(1),
        ..SessionConfig::default()
    };
    config.proto.pipelining = crate::Pipelining::Always;
    let mut s = Session::new(config, Instant::ZERO);
    let mut wire = Vec::new();
    s.handle_input(Instant::ZERO, b"+OK hi\r\n");
    assert!(s.poll_event().unwrap().is_some());
    let a = s.enqueue(Command::Capa).unwrap();
    let b = s.enqueue(Command::Capa).unwrap();
    while s.poll_transmit(Instant::ZERO, &mut wire).is_some() {}
    assert_eq!(wire, b"CAPA\r\nCAPA\r\n");
    let t = Instant::from_epoch(900 * MS);
    s.handle_input(t, b"+OK\r\n.\r\n");
    while let Some(ev) = s.poll_event().unwrap() {
        assert_ne!(ev.handle(), Some(b));
        if let Event::Ok { handle, .. } = ev {
            assert_eq!(handle, a);
        }
    }
    // The second response's clock started when the first completed.
    assert_eq!(
        s.poll_timeout(),
        Some(t.saturating_add(Duration::from_secs(1)))
    );
}

// ----- abandon -----

#[test]
fn abandoned_body_is_discarded_and_the_session_goes_on() {
    let mut h = logged_in();
    h.s.start_command(Command::Retr(crate::MsgNum::new(1).unwrap()))
        .unwrap();
    let _ = h.s.poll_transmit(h.now, &mut h.wire).unwrap();
    h.s.handle_input(h.now, b"+OK\r\nfirst part\r\n");
    assert!(matches!(h.s.poll(), Ok(Action::BodyStart(_))));
    assert!(matches!(h.s.poll(), Ok(Action::Body(b"first part\r\n"))));
    h.s.abandon();
    assert!(!h.s.is_busy());
    h.body.clear();
    h.s.start_command(Command::Stat).unwrap();
    // Without PIPELINING STAT goes out only after the abandoned body
    // ended, so its reply comes in a later read.
    h.serve(&[b"rest of it\r\n.\r\n", b"+OK 2 20\r\n"]);
    let out = h.run().unwrap();
    assert_eq!(
        out,
        Output::Response(Response::Stat(crate::Stat {
            count: 2,
            octets: 20
        }))
    );
    assert!(h.body.is_empty(), "the abandoned body was not delivered");
}

#[test]
fn abandoned_unsent_command_sends_nothing() {
    let mut h = logged_in();
    h.s.start_command(Command::Noop).unwrap();
    h.s.abandon();
    assert!(!h.s.wants_write());
    assert_eq!(h.sent(), "");
}

#[test]
fn abandoned_sasl_exchange_is_cancelled_with_a_star() {
    let mut h = tls_session(b"+OK\r\nSASL LOGIN\r\n.\r\n");
    h.s.start_authenticate(Box::new(crate::sasl::Login::new("u", "p")))
        .unwrap();
    while h.s.poll_transmit(h.now, &mut h.wire).is_some() {}
    assert_eq!(h.sent(), "AUTH LOGIN\r\n");
    h.s.abandon();
    h.s.handle_input(h.now, b"+ VXNlcm5hbWU6\r\n");
    assert!(matches!(h.s.poll(), Ok(Action::Wait)));
    while h.s.poll_transmit(h.now, &mut h.wire).is_some() {}
    assert_eq!(
        h.sent(),
        "AUTH LOGIN\r\n*\r\n",
        "no user name after abandon"
    );
    h.s.handle_input(h.now, b"-ERR cancelled\r\n");
    assert!(matches!(h.s.poll(), Ok(Action::Wait)));
    assert!(!h.s.is_broken());
    h.serve(&[b"+OK\r\n.\r\n"]);
    h.s.start_command(Command::Capa).unwrap();
    assert!(h.run().is_ok());
}

#[test]
fn abandoned_stls_breaks_the_session() {
    let mut h = Harness::new(TlsPolicy::None, false);
    h.serve(&[b"+OK hi\r\n", b"+OK\r\nSTLS\r\n.\r\n"]);
    h.connect();
    h.s.start_stls().unwrap();
    while h.s.poll_transmit(h.now, &mut h.wire).is_some() {}
    h.s.abandon();
    assert_eq!(
        h.s.start_command(Command::Noop),
        Err(SessionError::Cancelled("STLS"))
    );
}

#[test]
fn server_err_is_not_fatal_and_one_op_at_a_time() {
    let mut h = logged_in();
    h.s.start_command(Command::Noop).unwrap();
    assert_eq!(h.s.start_command(Command::Noop), Err(SessionError::Busy));
    h.serve(&[b"-ERR [SYS/TEMP] later\r\n", b"+OK\r\n"]);
    let e = h.run().unwrap_err();
    assert!(!e.is_fatal());
    h.s.start_command(Command::Noop).unwrap();
    assert!(h.run().is_ok());
}

// ----- batches -----

struct StrSink {
    calls: Vec<String>,
    fail_end: Option<u32>,
}

impl batch::MessageSink<&'static str> for StrSink {
    fn data(&mut self, n: u32, chunk: &[u8]) -> Result<(), &'static str> {
        self.calls.push(alloc::format!("data {n} {}", chunk.len()));
        Ok(())
    }
    fn end(&mut self, n: u32, octets: u64) -> Result<batch::Disposition, &'static str> {
        self.calls.push(alloc::format!("end {n} {octets}"));
        if self.fail_end == Some(n) {
            return Err("disk full");
        }
        Ok(batch::Disposition::Delete)
    }
}

/// A batch over the session's raw access, with a sink whose error type is
/// not `std::io::Error`: DELE n goes out only after `end(n)` said so.
#[test]
fn batch_deletes_only_what_the_sink_stored() {
    use batch::Batch;
    let mut h = logged_in();
    let mut sink = StrSink {
        calls: Vec::new(),
        fail_end: Some(2),
    };
    let mut b = batch::RetrBatch::new([1u32, 2].into_iter(), None, 1, &mut sink);
    let replies: &[&[u8]] = &[b"+OK\r\nab\r\n.\r\n", b"+OK\r\n", b"+OK\r\ncd\r\n.\r\n"];
    let mut replies = replies.iter();
    loop {
        b.fill(&mut |c| h.s.enqueue(c)).unwrap();
        if b.is_finished() {
            break;
        }
        while h.s.poll_transmit(h.now, &mut h.wire).is_some() {}
        h.s.handle_input(h.now, replies.next().expect("more replies"));
        while let Some(ev) = h.s.poll_event().unwrap() {
            b.handle_event(ev).unwrap();
        }
    }
    let (n, e, report) = b.finish().unwrap_err();
    assert_eq!((n, e), (2, "disk full"));
    assert_eq!(report.deleted, [1]);
    assert_eq!(h.sent(), "RETR 1\r\nDELE 1\r\nRETR 2\r\n");
    assert_eq!(sink.calls, ["data 1 4", "end 1 4", "data 2 4", "end 2 4"]);
}

// ----- the batch window -----

/// Logged in, the refreshed CAPA announcing PIPELINING, wire cleared.
fn logged_in_pipelining() -> Harness {
    logged_in_with(b"+OK\r\nPIPELINING\r\n.\r\n")
}

struct KeepSink;

impl batch::MessageSink<()> for KeepSink {
    fn data(&mut self, _: u32, _: &[u8]) -> Result<(), ()> {
        Ok(())
    }
    fn end(&mut self, _: u32, _: u64) -> Result<batch::Disposition, ()> {
        Ok(batch::Disposition::Keep)
    }
}

/// Runs a RETR batch round trip by round trip: fills, sends, then answers
/// every command sent so far at once. Returns the commands sent per round.
fn rounds(h: &mut Harness, b: &mut impl batch::Batch) -> Vec<usize> {
    let mut rounds = Vec::new();
    loop {
        b.fill(&mut |c| h.s.enqueue(c)).unwrap();
        if b.is_finished() {
            return rounds;
        }
        let start = h.wire.len();
        while h.s.poll_transmit(h.now, &mut h.wire).is_some() {}
        let sent = h.wire[start..].split(|&c| c == b'\n').count() - 1;
        rounds.push(sent);
        let mut replies = Vec::new();
        for _ in 0..sent {
            replies.extend_from_slice(b"+OK\r\nx\r\n.\r\n");
        }
        h.s.handle_input(h.now, &replies);
        while let Some(ev) = h.s.poll_event().unwrap() {
            b.handle_event(ev).unwrap();
        }
    }
}

#[test]
fn window_grows_each_round_trip_up_to_its_cap() {
    let mut h = logged_in_pipelining();
    let mut sink = KeepSink;
    let mut b = batch::RetrBatch::new(1u32..=200, None, 64, &mut sink);
    // Starts at INITIAL_WINDOW, doubles per round trip, stops at the cap.
    assert_eq!(rounds(&mut h, &mut b), [16, 32, 64, 64, 24]);
    assert_eq!(b.finish().unwrap().received, 200);
}

#[test]
fn window_is_bounded_by_command_bytes_not_reply_sizes() {
    let mut h = logged_in_pipelining();
    let mut sink = KeepSink;
    // "RETR 100\r\n" .. "RETR 999\r\n" are 10 bytes: 100 bytes hold 10.
    let w = batch::Window::new(1000)
        .with_initial(1000)
        .with_max_bytes(100);
    let mut b = batch::RetrBatch::with_window(100u32..=149, None, w, &mut sink);
    assert_eq!(rounds(&mut h, &mut b), [10, 10, 10, 10, 10]);
    // A single command is always allowed, whatever its length.
    let mut w = batch::Window::new(4).with_max_bytes(1);
    assert!(w.has_room(10));
    w.sent(10);
    assert!(!w.has_room(1));
    assert_eq!(w.bytes_in_flight(), 10);
}

#[test]
fn window_refills_as_soon_as_one_reply_arrives() {
    use batch::Batch;
    let mut h = logged_in_pipelining();
    let mut sink = KeepSink;
    let w = batch::Window::new(4).with_initial(4);
    let mut b = batch::RetrBatch::with_window(1u32..=10, None, w, &mut sink);
    b.fill(&mut |c| h.s.enqueue(c)).unwrap();
    while h.s.poll_transmit(h.now, &mut h.wire).is_some() {}
    assert_eq!(h.sent(), "RETR 1\r\nRETR 2\r\nRETR 3\r\nRETR 4\r\n");
    assert!(!b.wants_fill(), "a full window waits");
    h.wire.clear();
    h.s.handle_input(h.now, b"+OK\r\nx\r\n.\r\n");
    while let Some(ev) = h.s.poll_event().unwrap() {
        b.handle_event(ev).unwrap();
    }
    // One slot freed: it is refilled at once, not when half drained.
    assert!(b.wants_fill());
    b.fill(&mut |c| h.s.enqueue(c)).unwrap();
    while h.s.poll_transmit(h.now, &mut h.wire).is_some() {}
    assert_eq!(h.sent(), "RETR 5\r\n");
    assert!(!b.wants_fill());
}

#[test]
fn window_growth_stops_at_the_cap_and_when_nothing_is_left() {
    let mut w = batch::Window::new(40);
    assert_eq!(w.size(), batch::INITIAL_WINDOW);
    for _ in 0..50 {
        w.sent(8);
        w.answered(8, true);
    }
    assert_eq!((w.size(), w.cap()), (40, 40));
    assert_eq!(
        batch::Window::new(10).size(),
        10,
        "starts at most at the cap"
    );
    let mut w = batch::Window::new(10).with_initial(2);
    w.sent(8);
    w.answered(8, false);
    assert_eq!(w.size(), 2, "no growth once the batch has nothing to send");
    assert_eq!((w.in_flight(), w.bytes_in_flight()), (0, 0));
    assert_eq!(batch::Window::new(0).cap(), 1);
}

#[test]
fn command_batch_window_grows_too() {
    let mut h = logged_in_pipelining();
    let cmds = (1..=30u32)
        .map(|n| Command::Retr(crate::MsgNum::try_from(n).unwrap()))
        .collect();
    let mut b = batch::CommandBatch::new(cmds, 100);
    assert_eq!(rounds(&mut h, &mut b), [16, 14]);
    assert!(b
        .finish()
        .iter()
        .all(|r| matches!(r, batch::Reply::Body(b) if b == b"x\r\n")));
}

// ----- the pipelined post-login sequence -----

/// Connected over implicit TLS with this CAPA, the listing prefetched by
/// the next login; USER/PASS answered, wire cleared after PASS was sent.
fn prefetching(capa: &[u8]) -> Harness {
    let mut h = tls_session(capa);
    h.s.set_prefetch_listing(true);
    assert!(h.s.prefetch_listing());
    h.s.start_user_pass("u", "p").unwrap();
    while h.s.poll_transmit(h.now, &mut h.wire).is_some() {}
    assert_eq!(h.sent(), "USER u\r\n");
    h.wire.clear();
    h
}

/// Feeds one reply, then returns what the session sent in answer.
fn answer(h: &mut Harness, reply: &[u8]) -> String {
    h.wire.clear();
    h.s.handle_input(h.now, reply);
    loop {
        while h.s.poll_transmit(h.now, &mut h.wire).is_some() {}
        let wait = match h.s.poll().unwrap() {
            Action::Wait => true,
            Action::Done(out) => panic!("finished early: {out:?}"),
            _ => false,
        };
        if wait && !h.s.wants_write() {
            return h.sent();
        }
    }
}

fn finish_with(h: &mut Harness, reply: &[u8]) -> Output {
    h.wire.clear();
    h.serve(&[reply]);
    h.run().unwrap()
}

const LISTING: &[u8] = b"+OK\r\n1 10\r\n2 20\r\n.\r\n";
const UIDS: &[u8] = b"+OK\r\n1 a\r\n2 b\r\n.\r\n";

#[test]
fn capa_list_and_uidl_go_out_together_when_pipelining_is_known() {
    let mut h = prefetching(b"+OK\r\nPIPELINING\r\nUSER\r\n.\r\n");
    assert_eq!(answer(&mut h, b"+OK\r\n"), "PASS p\r\n");
    // One write after PASS's +OK: the refresh, LIST and UIDL.
    assert_eq!(answer(&mut h, b"+OK\r\n"), "CAPA\r\nLIST\r\nUIDL\r\n");
    let replies = [b"+OK\r\nPIPELINING\r\n.\r\n".as_slice(), LISTING, UIDS].concat();
    assert!(matches!(
        finish_with(&mut h, &replies),
        Output::Authenticated(_)
    ));
    assert!(h.s.client().capabilities().unwrap().pipelining);
    // LIST and UIDL are answered from what was fetched: nothing is sent.
    h.s.start_command(Command::List(None)).unwrap();
    let Output::Response(Response::List(list)) = h.run().unwrap() else {
        panic!("not a listing")
    };
    assert_eq!(list.iter().map(|e| e.octets).collect::<Vec<_>>(), [10, 20]);
    h.s.start_command(Command::Uidl(None)).unwrap();
    let Output::Response(Response::Uidl(uids)) = h.run().unwrap() else {
        panic!("not a UID listing")
    };
    assert_eq!(uids.len(), 2);
    assert_eq!(h.sent(), "");
    // Each is answered once: the next LIST goes to the server.
    h.s.start_command(Command::List(None)).unwrap();
    h.serve(&[LISTING]);
    h.run().unwrap();
    assert_eq!(h.sent(), "LIST\r\n");
}

#[test]
fn refresh_comes_first_when_pipelining_is_announced_only_after_login() {
    let mut h = prefetching(b"+OK\r\nUSER\r\n.\r\n");
    assert_eq!(answer(&mut h, b"+OK\r\n"), "PASS p\r\n");
    assert_eq!(answer(&mut h, b"+OK\r\n"), "CAPA\r\n");
    // The refreshed CAPA announces PIPELINING: LIST and UIDL together.
    assert_eq!(
        answer(&mut h, b"+OK\r\nPIPELINING\r\n.\r\n"),
        "LIST\r\nUIDL\r\n"
    );
    let replies = [LISTING, UIDS].concat();
    assert!(matches!(
        finish_with(&mut h, &replies),
        Output::Authenticated(_)
    ));
}

#[test]
fn without_pipelining_the_prefetch_is_lockstep_and_a_uidl_err_is_not_kept() {
    let mut h = prefetching(b"+OK\r\nUSER\r\n.\r\n");
    assert_eq!(answer(&mut h, b"+OK\r\n"), "PASS p\r\n");
    assert_eq!(answer(&mut h, b"+OK\r\n"), "CAPA\r\n");
    assert_eq!(answer(&mut h, b"+OK\r\nUSER\r\n.\r\n"), "LIST\r\n");
    assert_eq!(answer(&mut h, LISTING), "UIDL\r\n");
    assert!(matches!(
        finish_with(&mut h, b"-ERR no UIDL\r\n"),
        Output::Authenticated(_)
    ));
    // A DELE drops the prefetched LIST: the listing could have changed.
    h.s.start_command(Command::Dele(crate::MsgNum::try_from(1).unwrap()))
        .unwrap();
    h.serve(&[b"+OK\r\n"]);
    h.run().unwrap();
    h.wire.clear();
    h.s.start_command(Command::List(None)).unwrap();
    h.serve(&[b"+OK\r\n2 20\r\n.\r\n"]);
    h.run().unwrap();
    assert_eq!(h.sent(), "LIST\r\n");
    // UIDL's -ERR was not kept: asked again, and it is the server's error.
    h.wire.clear();
    h.s.start_command(Command::Uidl(None)).unwrap();
    h.serve(&[b"-ERR no UIDL\r\n"]);
    assert!(matches!(h.run(), Err(SessionError::Server { .. })));
    assert_eq!(h.sent(), "UIDL\r\n");
}

#[test]
fn a_login_without_prefetch_sends_no_listing() {
    let mut h = tls_session(b"+OK\r\nPIPELINING\r\nUSER\r\n.\r\n");
    h.s.start_user_pass("u", "p").unwrap();
    h.serve(&[b"+OK\r\n", b"+OK\r\n", b"+OK\r\n.\r\n"]);
    h.run().unwrap();
    assert_eq!(h.sent(), "USER u\r\nPASS p\r\nCAPA\r\n");
}

//! Hostile servers against the session layer: whatever bytes arrive, in
//! whatever chunks and at whatever times, every operation ends (a typed
//! output or error, never a panic), and a server that stops answering
//! ends in a timeout at the deadline, never in a wait forever.

use core::time::Duration;

use pop3_proto::session::{
    Action, Instant, Output, Session, SessionConfig, SessionError, TlsPolicy,
};
use pop3_proto::{Command, MsgNum};
use proptest::prelude::*;

/// Runs the operations one after another over `server` (fed in `cuts`
/// pieces, 10 ms apart; nothing more after the end, so the deadline must
/// end whatever is still waiting). Returns each operation's outcome.
fn run(server: &[u8], cuts: &[usize]) -> Vec<Result<Output, SessionError>> {
    let mut config = SessionConfig::default();
    config.policy = TlsPolicy::Opportunistic;
    config.proto.allow_cleartext_credentials = true;
    config.response_timeout = Duration::from_secs(1);
    let mut s = Session::new(config, Instant::ZERO);
    let mut now = Instant::ZERO;
    let mut pieces = Vec::new();
    let mut at = 0;
    for &c in cuts.iter().chain([server.len()].iter()) {
        let c = c.clamp(at, server.len());
        pieces.push(&server[at..c]);
        at = c;
    }
    let mut pieces = pieces.into_iter().filter(|p| !p.is_empty());
    let mut wire = Vec::new();
    let mut outcomes = Vec::new();
    type Start = fn(&mut Session) -> Result<(), SessionError>;
    let ops: [Start; 6] = [
        |s| s.start_connect(),
        |s| s.start_login("alice", "secret", &[9; 32]),
        |s| s.start_command(Command::Stat),
        |s| s.start_command(Command::List(None)),
        |s| s.start_command(Command::Retr(MsgNum::new(1).unwrap())),
        |s| s.start_command(Command::Quit),
    ];
    for start in ops {
        if let Err(e) = start(&mut s) {
            outcomes.push(Err(e));
            continue;
        }
        let mut steps = 0;
        let outcome = loop {
            steps += 1;
            assert!(steps < 100_000, "an operation never ended");
            while s.poll_transmit(now, &mut wire).is_some() {}
            match s.poll() {
                Err(e) => break Err(e),
                Ok(Action::Done(out)) => break Ok(out),
                Ok(Action::StartTls) => {
                    // The "handshake" of this test: nothing to do.
                    if let Err(e) = s.tls_established(now, None) {
                        break Err(e);
                    }
                }
                Ok(Action::Body(_) | Action::BodyStart(_)) => {}
                Ok(_) => {
                    if s.wants_write() {
                        continue;
                    }
                    match pieces.next() {
                        Some(p) => {
                            now = now.saturating_add(Duration::from_millis(10));
                            s.handle_input(now, p);
                        }
                        None => match s.poll_timeout() {
                            Some(deadline) => {
                                assert!(deadline >= now);
                                now = deadline;
                                s.handle_timeout(now);
                            }
                            None => {
                                // Nothing is awaited and the server is
                                // silent: the stream ends.
                                s.handle_eof(now);
                            }
                        },
                    }
                }
            }
        };
        outcomes.push(outcome);
    }
    outcomes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    /// Random bytes: every operation ends; no panic.
    #[test]
    fn arbitrary_server_bytes_end_every_operation(
        server in proptest::collection::vec(any::<u8>(), 0..400),
        cuts in proptest::collection::vec(0usize..400, 0..12),
    ) {
        let outcomes = run(&server, &cuts);
        prop_assert_eq!(outcomes.len(), 6);
    }

    /// A plausible session cut or corrupted anywhere: every operation ends,
    /// and a body cut short is never reported complete.
    #[test]
    fn truncated_or_corrupted_sessions_end_every_operation(
        cut in 0usize..200,
        flip in proptest::option::of((0usize..200, any::<u8>())),
        cuts in proptest::collection::vec(0usize..200, 0..12),
    ) {
        let full = b"+OK hi\r\n+OK\r\nUSER\r\n.\r\n+OK\r\n+OK\r\n+OK\r\nUSER\r\n.\r\n+OK 1 12\r\n+OK\r\n1 12\r\n.\r\n+OK\r\nhello\r\nworld\r\n.\r\n+OK bye\r\n";
        let mut server = full[..cut.min(full.len())].to_vec();
        if let Some((i, b)) = flip {
            if i < server.len() {
                server[i] = b;
            }
        }
        let outcomes = run(&server, &cuts);
        prop_assert_eq!(outcomes.len(), 6);
        if let Ok(Output::Body { octets }) = &outcomes[4] {
            // Only a body whose terminator arrived is complete.
            prop_assert!(server.windows(3).any(|w| w == b"\n.\r"), "complete without a terminator");
            prop_assert!(*octets <= server.len() as u64);
        }
    }
}

/// The same session, uncut, one reply per read (as a server answers each
/// command only after receiving it): every operation succeeds. Pieces that
/// merge several replies arrive before the later commands were sent and
/// are unsolicited bytes, so the property above cannot ask for success.
#[test]
fn the_whole_session_one_reply_per_read_succeeds() {
    let replies: [&[u8]; 9] = [
        b"+OK hi\r\n",
        b"+OK\r\nUSER\r\n.\r\n",
        b"+OK\r\n",
        b"+OK\r\n",
        b"+OK\r\nUSER\r\n.\r\n",
        b"+OK 1 12\r\n",
        b"+OK\r\n1 12\r\n.\r\n",
        b"+OK\r\nhello\r\nworld\r\n.\r\n",
        b"+OK bye\r\n",
    ];
    let server: Vec<u8> = replies.concat();
    let mut cuts = Vec::new();
    let mut at = 0;
    for r in &replies {
        at += r.len();
        cuts.push(at);
    }
    let outcomes = run(&server, &cuts);
    assert!(outcomes.iter().all(|o| o.is_ok()), "{outcomes:?}");
    assert_eq!(outcomes[4], Ok(Output::Body { octets: 14 }));
}

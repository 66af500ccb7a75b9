//! Property tests: chunking never changes events; bodies survive stuffing.

mod common;

use common::*;
use pop3_proto::{Client, Command, Event, MsgNum, OwnedEvent, Pipelining};
use proptest::prelude::*;

/// Dot-stuffs a body as a server would and appends the terminator.
fn stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 8);
    let mut at_line_start = true;
    for &b in body {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !at_line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

fn body_line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b".".to_vec()),
        Just(b"..".to_vec()),
        Just(b". ".to_vec()),
        Just(b".x".to_vec()),
        Just(Vec::new()),
        Just(b"\r".to_vec()),
        Just(b".\r".to_vec()),
        proptest::collection::vec(any::<u8>().prop_filter("no LF", |b| *b != b'\n'), 0..40),
        (0usize..3).prop_map(|k| vec![b'y'; 65_537 + k]),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        (
            body_line(),
            prop_oneof![Just(&b"\r\n"[..]), Just(&b"\n"[..])],
        ),
        0..12,
    )
    .prop_map(|lines| {
        let mut v = Vec::new();
        for (l, end) in lines {
            v.extend_from_slice(&l);
            v.extend_from_slice(end);
        }
        v
    })
}

fn n(x: u32) -> MsgNum {
    MsgNum::new(x).unwrap()
}

fn login() -> Vec<Command> {
    vec![Command::user("u").unwrap(), Command::pass("p").unwrap()]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    /// Any body, stuffed, decodes back to itself whatever the chunking.
    #[test]
    fn stuffed_bodies_round_trip(body in body(), cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8)) {
        let mut server = b"+OK\r\n+OK\r\n+OK\r\n+OK\r\n".to_vec();
        let stuffed = stuff(&body);
        server.extend_from_slice(&stuffed);
        let mut cmds = login();
        cmds.push(Command::Retr(n(1)));
        let mut splits: Vec<usize> = cuts.iter().map(|i| i.index(server.len())).collect();
        splits.sort_unstable();
        let (_, ev) = run_split(common::cleartext_config(), &cmds, &server, &splits, false);
        let mut expected_body = body.clone();
        if !(expected_body.is_empty() || expected_body.ends_with(b"\n")) {
            expected_body.extend_from_slice(b"\r\n");
        }
        let got: Vec<u8> = ev.iter().filter_map(|e| match e { Ok(OwnedEvent::BodyChunk { data, .. }) => Some(data.clone()), _ => None }).flatten().collect();
        prop_assert_eq!(got, expected_body.clone());
        let ended = ev.iter().any(|e| matches!(e, Ok(OwnedEvent::BodyEnd { handle, octets }) if handle.id() == 2 && *octets == expected_body.len() as u64));
        prop_assert!(ended);
    }

    /// A whole transcript fed whole, byte by byte and at random split
    /// points gives exactly the same events.
    #[test]
    fn chunking_never_changes_events(
        bodies in proptest::collection::vec(body(), 1..4),
        noise in proptest::collection::vec(any::<u8>(), 0..64),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..16),
    ) {
        let mut server = b"+OK ready <1.2@x>\r\n+OK\r\n+OK\r\n+OK\r\nTOP\r\nPIPELINING\r\n.\r\n+OK 3 100\r\n+OK\r\n1 10\r\n.\r\n".to_vec();
        let mut cmds = login();
        cmds.push(Command::Capa);
        cmds.push(Command::Stat);
        cmds.push(Command::Uidl(None));
        for (i, b) in bodies.iter().enumerate() {
            cmds.push(Command::Retr(n(i as u32 + 1)));
            server.extend_from_slice(b"+OK\r\n");
            server.extend_from_slice(&stuff(b));
        }
        // Arbitrary trailing bytes: whatever they cause, it must be the
        // same for every chunking.
        server.extend_from_slice(&noise);
        let mut config = common::cleartext_config();
        config.pipelining = Pipelining::Always;
        let (_, whole) = run_split(config.clone(), &cmds, &server, &[], true);
        let (_, bytewise) = {
            let splits: Vec<usize> = (1..server.len()).collect();
            run_split(config.clone(), &cmds, &server, &splits, true)
        };
        // (Error excerpts hold what had arrived when the error was seen.)
        let whole = checks::normalized_events(&whole);
        prop_assert_eq!(&whole, &checks::normalized_events(&bytewise));
        let mut splits: Vec<usize> = cuts.iter().map(|i| i.index(server.len())).collect();
        splits.sort_unstable();
        let (_, random) = run_split(config, &cmds, &server, &splits, true);
        prop_assert_eq!(&whole, &checks::normalized_events(&random));
    }

    /// Arbitrary server bytes never panic the client, whatever is queued.
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512), pipelined in any::<bool>()) {
        let mut config = common::cleartext_config();
        config.max_line_len = 64;
        if pipelined { config.pipelining = Pipelining::Always; }
        let mut cmds = login();
        cmds.extend([Command::Capa, Command::List(None), Command::Retr(n(1)), Command::Uidl(Some(n(1))), Command::Quit]);
        let mut server = b"+OK\r\n".to_vec();
        server.extend_from_slice(&data);
        let (_, ev) = run_split(config, &cmds, &server, &[7, 19, 100], true);
        let body_bytes: usize = ev.iter().map(|e| match e { Ok(OwnedEvent::BodyChunk { data, .. }) => data.len(), _ => 0 }).sum();
        prop_assert!(body_bytes <= server.len());
    }
}

/// 100 MiB body streamed in 16 KiB reads: the buffer never grows past its
/// bound (one read plus the line limit), and every byte comes out.
#[test]
fn hundred_mib_body_in_bounded_memory() {
    let mut client = Client::new(common::cleartext_config());
    let mut sent = Vec::new();
    client.handle_input(b"+OK\r\n");
    for c in login() {
        client.enqueue(c).unwrap();
    }
    let h = client.enqueue(Command::Retr(n(1))).unwrap();
    let mut events = Vec::new();
    drain(&mut client, &mut sent, &mut events);
    client.handle_input(b"+OK\r\n");
    drain(&mut client, &mut sent, &mut events);
    client.handle_input(b"+OK\r\n");
    drain(&mut client, &mut sent, &mut events);
    client.handle_input(b"+OK 104857600 octets\r\n");
    // A line of text, with a stuffed dot line every 64 lines.
    let mut pattern = Vec::new();
    for i in 0..64 {
        if i == 0 {
            pattern.extend_from_slice(b"..leading dot\r\n");
        } else {
            pattern.extend_from_slice(
                b"The quick brown fox jumps over the lazy dog, again and again.\r\n",
            );
        }
    }
    let unstuffed_per_pattern = pattern.len() as u64 - 1;
    const READ: usize = 16 * 1024;
    let total: u64 = 100 * 1024 * 1024;
    let mut fed: u64 = 0;
    let mut got: u64 = 0;
    let mut max_cap = 0;
    let mut stream = pattern.iter().copied().cycle();
    let mut ended = false;
    let mut chunk = vec![0u8; READ];
    while fed < total {
        for b in chunk.iter_mut() {
            *b = stream.next().unwrap();
        }
        client.handle_input(&chunk);
        fed += READ as u64;
        loop {
            match client.poll_event().unwrap() {
                Some(Event::BodyChunk { handle, data }) => {
                    assert_eq!(handle, h);
                    got += data.len() as u64;
                }
                Some(Event::BodyEnd { .. }) => ended = true,
                Some(_) => {}
                None => break,
            }
        }
        max_cap = max_cap.max(client.buffer_capacity());
    }
    // Finish at a pattern boundary, then terminate.
    let rem = (pattern.len() as u64 - fed % pattern.len() as u64) % pattern.len() as u64;
    let tail: Vec<u8> = stream
        .take(rem as usize)
        .chain(b".\r\n".iter().copied())
        .collect();
    client.handle_input(&tail);
    while let Some(ev) = client.poll_event().unwrap() {
        match ev {
            Event::BodyChunk { data, .. } => got += data.len() as u64,
            Event::BodyEnd { .. } => ended = true,
            _ => {}
        }
    }
    assert!(ended);
    let patterns = (fed + rem) / pattern.len() as u64;
    assert_eq!(got, patterns * unstuffed_per_pattern);
    assert!(max_cap <= 2 * READ + 8192, "buffer grew to {max_cap}");
}

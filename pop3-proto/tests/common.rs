//! Shared test helpers: drive a `Client` over a canned server byte stream
//! and record events in an owned, comparable form.
#![allow(dead_code)]

#[path = "../../fuzz/src/checks.rs"]
pub mod checks;
#[path = "../../fuzz/src/reference.rs"]
pub mod reference;

use pop3_proto::{
    Client, Command, CommandKind, Config, Event, Handle, OwnedEvent, ProtocolError, Response,
    SessionState,
};

/// One recorded step: an owned event (consecutive body chunks of one
/// command merged into one `BodyChunk`), or the protocol error that ended
/// the run.
pub type Ev = Result<OwnedEvent, ProtocolError>;

/// The handle the `id`-th enqueued command of a client gets (handles are
/// numbered from 0 in enqueue order).
pub fn h(id: u64) -> Handle {
    let mut c = Client::new(Config::default());
    let mut last = None;
    for _ in 0..=id {
        last = Some(c.enqueue(Command::Capa).expect("CAPA is always allowed"));
    }
    let handle = last.expect("at least one");
    assert_eq!(handle.id(), id);
    handle
}

/// Shorthand for a recorded body chunk of the `id`-th command.
pub fn body(id: u64, data: &[u8]) -> Ev {
    Ok(OwnedEvent::BodyChunk {
        handle: h(id),
        data: data.to_vec(),
    })
}

/// Shorthand for a recorded `Ok` reply to the `id`-th command.
pub fn ok(id: u64, command: CommandKind, response: Response) -> Ev {
    Ok(OwnedEvent::Ok {
        handle: h(id),
        command,
        response,
    })
}

/// Shorthand for a recorded state change.
pub fn state(from: SessionState, to: SessionState) -> Ev {
    Ok(OwnedEvent::StateChanged { from, to })
}

/// The default core configuration with cleartext credentials allowed: the
/// canned transcripts log in without TLS.
pub fn cleartext_config() -> Config {
    let mut c = Config::default();
    c.allow_cleartext_credentials = true;
    c
}

/// Records `ev`, merging a body chunk into the previous one of the same
/// command.
pub fn record(events: &mut Vec<Ev>, ev: Event<'_>) {
    checks::push_merged(events, Ok(ev.into_owned()));
}

/// Drains transmit and events; returns what was sent.
pub fn drain(client: &mut Client, sent: &mut Vec<u8>, events: &mut Vec<Ev>) -> bool {
    loop {
        while let Some(_t) = client.poll_transmit(sent) {}
        loop {
            match client.poll_event() {
                Ok(Some(ev)) => record(events, ev),
                Ok(None) => break,
                Err(e) => {
                    events.push(Err(e));
                    return false;
                }
            }
        }
        if !client.wants_write() {
            return true;
        }
    }
}

/// Enqueues `commands`, then feeds `server` in chunks given by `splits`
/// (sorted cut positions), draining after every call. Returns the bytes the
/// client sent and the events. The chunks are also cut where the client
/// sends a command (`checks::send_points`), as no server answers a command
/// before it was sent; this is the fuzz targets' `run_chunked`.
pub fn run_split(
    config: Config,
    commands: &[Command],
    server: &[u8],
    splits: &[usize],
    eof: bool,
) -> (Vec<u8>, Vec<Ev>) {
    let run = checks::run_chunked(&config, commands, server, splits, eof);
    (run.sent, run.events)
}

pub fn run_whole(config: Config, commands: &[Command], server: &[u8]) -> (Vec<u8>, Vec<Ev>) {
    run_split(config, commands, server, &[], false)
}

pub fn run_bytewise(config: Config, commands: &[Command], server: &[u8]) -> (Vec<u8>, Vec<Ev>) {
    let splits: Vec<usize> = (1..server.len()).collect();
    run_split(config, commands, server, &splits, false)
}

/// Parses a `C:`/`S:` trace into (client bytes, server bytes), CRLF line
/// endings, with the RFC's `S: ` / `C: ` prefixes removed.
pub fn split_trace(trace: &str) -> (Vec<u8>, Vec<u8>) {
    let mut c = Vec::new();
    let mut s = Vec::new();
    for line in trace.lines() {
        let line = line.trim_start();
        if let Some(rest) = line.strip_prefix("C: ") {
            c.extend_from_slice(rest.as_bytes());
            c.extend_from_slice(b"\r\n");
        } else if let Some(rest) = line.strip_prefix("S: ") {
            s.extend_from_slice(rest.as_bytes());
            s.extend_from_slice(b"\r\n");
        } else if line == "S:" {
            s.extend_from_slice(b"\r\n");
        }
    }
    (c, s)
}

/// `USER u`, `PASS p`, then `rest`.
pub fn after_login(rest: impl IntoIterator<Item = Command>) -> Vec<Command> {
    let mut v = vec![Command::user("u").unwrap(), Command::pass("p").unwrap()];
    v.extend(rest);
    v
}

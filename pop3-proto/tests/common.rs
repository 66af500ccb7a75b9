//! Shared test helpers: drive a `Client` over a canned server byte stream
//! and record events in an owned, comparable form.
#![allow(dead_code)]

use pop3_proto::{
    Client, Command, CommandKind, Config, ErrResponse, Event, ProtocolError, Response, SessionState,
};

/// An owned event; body chunks are concatenated into `Body`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Greeting(Option<String>),
    GreetingRefused(ErrResponse),
    Ok(u64, CommandKind, Response),
    Err(u64, CommandKind, ErrResponse),
    Continuation(u64, Vec<u8>),
    Body(u64, Vec<u8>),
    BodyEnd(u64, u64),
    Rejected(u64, CommandKind),
    State(SessionState, SessionState),
    Closed,
    Other(String),
    Error(ProtocolError),
}

/// The default core configuration with cleartext credentials allowed: the
/// canned transcripts log in without TLS.
pub fn cleartext_config() -> Config {
    let mut c = Config::default();
    c.allow_cleartext_credentials = true;
    c
}

pub fn record(events: &mut Vec<Ev>, ev: Event<'_>) {
    let e = match ev {
        Event::Greeting(g) => Ev::Greeting(g.apop_timestamp),
        Event::GreetingRefused(r) => Ev::GreetingRefused(r),
        Event::Ok {
            handle,
            command,
            response,
        } => Ev::Ok(handle.id(), command, response),
        Event::Err {
            handle,
            command,
            response,
        } => Ev::Err(handle.id(), command, response),
        Event::Continuation { handle, challenge } => Ev::Continuation(handle.id(), challenge),
        Event::BodyChunk { handle, data } => {
            if let Some(Ev::Body(h, v)) = events.last_mut() {
                if *h == handle.id() {
                    v.extend_from_slice(data);
                    return;
                }
            }
            Ev::Body(handle.id(), data.to_vec())
        }
        Event::BodyEnd { handle, octets } => Ev::BodyEnd(handle.id(), octets),
        Event::Rejected {
            handle, command, ..
        } => Ev::Rejected(handle.id(), command),
        Event::StateChanged { from, to } => Ev::State(from, to),
        Event::Closed => Ev::Closed,
        other => Ev::Other(format!("{other:?}")),
    };
    events.push(e);
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
                    events.push(Ev::Error(e));
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
/// client sent and the events.
pub fn run_split(
    config: Config,
    commands: &[Command],
    server: &[u8],
    splits: &[usize],
    eof: bool,
) -> (Vec<u8>, Vec<Ev>) {
    let mut client = Client::new(config);
    let mut sent = Vec::new();
    let mut events = Vec::new();
    for c in commands {
        client.enqueue(c.clone()).expect("enqueue");
    }
    drain(&mut client, &mut sent, &mut events);
    let mut last = 0;
    let mut ok = true;
    for &cut in splits.iter().chain(std::iter::once(&server.len())) {
        if cut < last || cut > server.len() {
            continue;
        }
        client.handle_input(&server[last..cut]);
        last = cut;
        ok = drain(&mut client, &mut sent, &mut events);
        if !ok {
            break;
        }
    }
    if ok && eof {
        client.handle_eof();
        drain(&mut client, &mut sent, &mut events);
    }
    (sent, events)
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

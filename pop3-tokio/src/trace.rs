//! `tracing` output: one debug event per command line sent and per reply
//! received, raw bytes at trace level. Secrets (core `Transmit::sensitive`)
//! are never logged.

use pop3_proto::{Event, Response};

/// Logs bytes about to be written.
pub(crate) fn transmit(bytes: &[u8], sensitive: bool) {
    if sensitive {
        // A sensitive transmit is one barrier command or one SASL line;
        // show only the keyword, when it is one.
        let keyword = bytes
            .split(|b| *b == b' ' || *b == b'\r')
            .next()
            .filter(|w| matches!(*w, b"PASS" | b"APOP" | b"AUTH"))
            .map(|w| String::from_utf8_lossy(w).into_owned());
        match keyword {
            Some(k) => tracing::debug!(target: "pop3_tokio", "C: {k} <redacted>"),
            None => tracing::debug!(target: "pop3_tokio", "C: <redacted SASL response>"),
        }
        tracing::trace!(target: "pop3_tokio", len = bytes.len(), "C raw: <redacted>");
        return;
    }
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        let text = String::from_utf8_lossy(line);
        tracing::debug!(target: "pop3_tokio", "C: {}", text.trim_end());
    }
    tracing::trace!(target: "pop3_tokio", raw = %bytes.escape_ascii(), "C raw");
}

/// Logs bytes read.
pub(crate) fn received(bytes: &[u8]) {
    tracing::trace!(target: "pop3_tokio", len = bytes.len(), raw = %bytes.escape_ascii(), "S raw");
}

/// Logs one core event (a reply line, a state change...). Body chunks are
/// only counted at trace level.
pub(crate) fn event(ev: &Event<'_>) {
    match ev {
        Event::BodyChunk { handle, data } => {
            tracing::trace!(target: "pop3_tokio", handle = handle.id(), len = data.len(), "S: body chunk")
        }
        Event::Ok {
            handle,
            command,
            response,
        } => match response {
            Response::List(v) => {
                tracing::debug!(target: "pop3_tokio", handle = handle.id(), "S: +OK ({command}: {} entries)", v.len())
            }
            Response::Uidl(v) => {
                tracing::debug!(target: "pop3_tokio", handle = handle.id(), "S: +OK ({command}: {} entries)", v.len())
            }
            other => {
                tracing::debug!(target: "pop3_tokio", handle = handle.id(), "S: +OK ({command}) {other:?}")
            }
        },
        Event::Err {
            handle,
            command,
            response,
        } => {
            tracing::debug!(target: "pop3_tokio", handle = handle.id(), "S: {response} ({command})")
        }
        other => tracing::debug!(target: "pop3_tokio", "S: {other:?}"),
    }
}

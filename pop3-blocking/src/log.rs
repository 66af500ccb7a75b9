//! `tracing` output: one debug event per command line and per reply, raw
//! bytes at trace level, secrets redacted.
//!
//! poplib's `set_debuglevel(1)` is `RUST_LOG=pop3_blocking=debug`,
//! `set_debuglevel(2)` is `RUST_LOG=pop3_blocking=trace`.

use pop3_proto::Event;

/// Most bytes of one read or write shown at trace level.
const TRACE_LIMIT: usize = 1024;

/// Escapes bytes for a log line (printable ASCII as is, the rest as
/// `\xNN`, CR/LF as `\r`/`\n`), cut at `limit`.
pub(crate) fn escape(bytes: &[u8], limit: usize) -> String {
    let mut s = String::with_capacity(bytes.len().min(limit) + 16);
    for &b in bytes.iter().take(limit) {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(char::from(b)),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    if bytes.len() > limit {
        s.push_str(&format!("... ({} more bytes)", bytes.len() - limit));
    }
    s
}

/// Logs bytes about to be written. `sensitive` chunks (PASS, APOP, AUTH
/// payloads, SASL responses) show only the command keyword.
pub(crate) fn sent(bytes: &[u8], sensitive: bool) {
    if sensitive {
        let keyword: String = bytes
            .iter()
            .take_while(|b| b.is_ascii_uppercase())
            .map(|&b| char::from(b))
            .collect();
        let keyword = match keyword.as_str() {
            "PASS" | "APOP" | "AUTH" | "USER" | "RPOP" => keyword,
            _ => String::from("<SASL response>"),
        };
        tracing::debug!("C: {keyword} <redacted>");
        tracing::trace!("C raw: <{} bytes redacted>", bytes.len());
        return;
    }
    if tracing::enabled!(tracing::Level::DEBUG) {
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            tracing::debug!("C: {}", escape(line, 300));
        }
    }
    tracing::trace!("C raw: {}", escape(bytes, TRACE_LIMIT));
}

/// Logs bytes read from the server, at trace level.
pub(crate) fn received(bytes: &[u8]) {
    tracing::trace!("S raw: {}", escape(bytes, TRACE_LIMIT));
}

/// Logs one event from the core: one debug line per reply; body chunks at
/// trace level only.
pub(crate) fn event(ev: &Event<'_>) {
    match ev {
        Event::BodyChunk { handle, data } => {
            tracing::trace!("S: body chunk of {} bytes for #{}", data.len(), handle.id())
        }
        Event::Ok {
            handle,
            command,
            response,
        } => tracing::debug!("S: +OK to {command} #{}: {response:?}", handle.id()),
        Event::Err {
            handle,
            command,
            response,
        } => tracing::debug!("S: {response} (to {command} #{})", handle.id()),
        other => tracing::debug!("S: {other:?}"),
    }
}

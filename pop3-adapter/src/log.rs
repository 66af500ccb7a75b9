//! What the adapters log, shared: one debug line per command line sent and
//! per reply, raw bytes at trace level, secrets redacted at every level.
//!
//! The text is made here; each adapter emits it under its own `tracing`
//! target (`pop3_blocking`, `pop3_tokio`) through a [`Logger`], so
//! `RUST_LOG=pop3_blocking=debug` (poplib's `set_debuglevel(1)`) and
//! `=trace` (`set_debuglevel(2)`) keep working. [`tracing_logger!`](crate::tracing_logger)
//! writes that `Logger`.
//!
//! ```
//! use pop3_adapter::log::{self, Level, Logger};
//! use std::cell::RefCell;
//!
//! #[derive(Default)]
//! struct Lines(RefCell<Vec<String>>);
//! impl Logger for Lines {
//!     fn enabled(&self, _: Level) -> bool { true }
//!     fn log(&self, _: Level, message: std::fmt::Arguments<'_>) {
//!         self.0.borrow_mut().push(message.to_string());
//!     }
//! }
//! let lines = Lines::default();
//! let pass = pop3_proto::Transmit { len: 14, sensitive: true, secret_of: Some(pop3_proto::CommandKind::Pass) };
//! log::sent(&lines, b"PASS hunter2\r\n", &pass);
//! let stat = pop3_proto::Transmit { len: 6, sensitive: false, secret_of: None };
//! log::sent(&lines, b"STAT\r\n", &stat);
//! let auth = pop3_proto::Transmit { len: 24, sensitive: true, secret_of: Some(pop3_proto::CommandKind::Auth) };
//! log::sent(&lines, b"AUTH PLAIN AGFsaWNlAHB3\r\n", &auth);
//! let lines = lines.0.into_inner();
//! assert_eq!(lines[0], "C: PASS <redacted>");
//! assert!(lines.contains(&"C: AUTH PLAIN <redacted>".to_string()));
//! assert!(lines.iter().all(|l| !l.contains("AGFsaWNlAHB3")));
//! assert!(lines.iter().all(|l| !l.contains("hunter2")));
//! assert!(lines.contains(&"C: STAT".to_string()));
//! ```

use std::fmt;

use pop3_proto::{Event, Response, Transmit};

/// Most bytes of one read or write shown at trace level.
pub const TRACE_LIMIT: usize = 1024;

/// Most bytes of one command line shown at debug level.
const LINE_LIMIT: usize = 300;

/// The two levels the adapters log at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// One line per command and per reply.
    Debug,
    /// Raw bytes and body chunks.
    Trace,
}

/// Where the log lines go (an adapter's `tracing` target).
pub trait Logger {
    /// Whether anything at `level` would be recorded (saves formatting).
    fn enabled(&self, level: Level) -> bool;
    /// Records one line.
    fn log(&self, level: Level, message: fmt::Arguments<'_>);
}

/// Defines a unit struct `$name` implementing [`Logger`] by `tracing`
/// events with target `$target` (a string literal, usually the adapter's
/// crate name, so `RUST_LOG=<crate>=debug` selects them).
#[macro_export]
macro_rules! tracing_logger {
    ($(#[$meta:meta])* $vis:vis $name:ident, $target:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        $vis struct $name;

        impl $crate::log::Logger for $name {
            fn enabled(&self, level: $crate::log::Level) -> bool {
                use $crate::log::__tracing as t;
                match level {
                    $crate::log::Level::Debug => t::enabled!(target: $target, t::Level::DEBUG),
                    $crate::log::Level::Trace => t::enabled!(target: $target, t::Level::TRACE),
                }
            }
            fn log(&self, level: $crate::log::Level, message: ::std::fmt::Arguments<'_>) {
                use $crate::log::__tracing as t;
                match level {
                    $crate::log::Level::Debug => t::debug!(target: $target, "{}", message),
                    $crate::log::Level::Trace => t::trace!(target: $target, "{}", message),
                }
            }
        }
    };
}

#[doc(hidden)]
pub use tracing as __tracing;

/// Escapes bytes for a log line (printable ASCII as is, the rest as
/// `\xNN`, CR/LF as `\r`/`\n`), cut at `limit` bytes.
pub fn escape(bytes: &[u8], limit: usize) -> String {
    use fmt::Write as _;
    let mut s = String::with_capacity(bytes.len().min(limit) + 16);
    for &b in bytes.iter().take(limit) {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(char::from(b)),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    if bytes.len() > limit {
        let _ = write!(s, "... ({} more bytes)", bytes.len() - limit);
    }
    s
}

/// Logs `bytes` about to be written, as described by the core's
/// [`Transmit`]: sensitive bytes (PASS, APOP, AUTH, SASL responses) show
/// only which command they belong to, never their content.
pub fn sent(log: &impl Logger, bytes: &[u8], t: &Transmit) {
    if t.sensitive {
        let keyword = t.secret_of.map_or("<SASL response>", |k| k.keyword());
        match auth_mechanism(bytes, t) {
            Some(m) => log.log(Level::Debug, format_args!("C: {keyword} {m} <redacted>")),
            None => log.log(Level::Debug, format_args!("C: {keyword} <redacted>")),
        }
        log.log(
            Level::Trace,
            format_args!("C raw: <{} bytes redacted>", bytes.len()),
        );
        return;
    }
    if log.enabled(Level::Debug) {
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            log.log(
                Level::Debug,
                format_args!("C: {}", escape(line, LINE_LIMIT)),
            );
        }
    }
    if log.enabled(Level::Trace) {
        log.log(
            Level::Trace,
            format_args!("C raw: {}", escape(bytes, TRACE_LIMIT)),
        );
    }
}

/// The mechanism name of an `AUTH <mechanism> <initial response>` line:
/// public (it is in the server's CAPA), unlike the payload after it. Only
/// a plausible SASL name (RFC 4422: upper-case letters, digits, `-`, `_`,
/// at most 20 characters) is shown.
fn auth_mechanism<'a>(bytes: &'a [u8], t: &Transmit) -> Option<&'a str> {
    if t.secret_of != Some(pop3_proto::CommandKind::Auth) {
        return None;
    }
    let mut words = bytes.split(|&b| b == b' ' || b == b'\r' || b == b'\n');
    if !words.next()?.eq_ignore_ascii_case(b"AUTH") {
        return None;
    }
    let name = words.next()?;
    let plausible = !name.is_empty()
        && name.len() <= 20
        && name
            .iter()
            .all(|&b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    plausible.then(|| core::str::from_utf8(name).ok()).flatten()
}

/// Logs bytes read from the server, at trace level.
pub fn received(log: &impl Logger, bytes: &[u8]) {
    if log.enabled(Level::Trace) {
        log.log(
            Level::Trace,
            format_args!("S raw: {}", escape(bytes, TRACE_LIMIT)),
        );
    }
}

/// Logs the end of the server's stream (`close_notify`: whether TLS said
/// goodbye properly; `true` for plain TCP).
pub fn end_of_stream(log: &impl Logger, close_notify: bool) {
    if close_notify {
        log.log(Level::Debug, format_args!("S: <end of stream>"));
    } else {
        log.log(
            Level::Debug,
            format_args!("S: <end of stream without TLS close_notify>"),
        );
    }
}

/// Logs one core event: one debug line per reply (listings summarised by
/// their length); body chunks at trace level only.
pub fn event(log: &impl Logger, ev: &Event<'_>) {
    if !log.enabled(Level::Debug) {
        return;
    }
    match ev {
        Event::BodyChunk { handle, data } => log.log(
            Level::Trace,
            format_args!("S: body chunk of {} bytes for #{}", data.len(), handle.id()),
        ),
        Event::Ok {
            handle,
            command,
            response,
        } => {
            let entries = match response {
                Response::List(v) => Some(v.len()),
                Response::Uidl(v) => Some(v.len()),
                _ => None,
            };
            match entries {
                Some(n) => log.log(
                    Level::Debug,
                    format_args!("S: +OK to {command} #{}: {n} entries", handle.id()),
                ),
                None => log.log(
                    Level::Debug,
                    format_args!("S: +OK to {command} #{}: {response:?}", handle.id()),
                ),
            }
        }
        Event::Err {
            handle,
            command,
            response,
        } => log.log(
            Level::Debug,
            format_args!("S: {response} (to {command} #{})", handle.id()),
        ),
        other => log.log(Level::Debug, format_args!("S: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pop3_proto::{CommandKind, ErrResponse};
    use std::cell::RefCell;

    /// Records every line with its level; `level` is the most verbose one
    /// enabled.
    struct Capture {
        level: Level,
        lines: RefCell<Vec<(Level, String)>>,
    }

    impl Capture {
        fn new(level: Level) -> Capture {
            Capture {
                level,
                lines: RefCell::new(Vec::new()),
            }
        }
        fn text(&self) -> String {
            let lines = self.lines.borrow();
            lines
                .iter()
                .map(|(_, l)| l.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        }
    }

    impl Logger for Capture {
        fn enabled(&self, level: Level) -> bool {
            level == Level::Debug || self.level == Level::Trace
        }
        fn log(&self, level: Level, message: fmt::Arguments<'_>) {
            if self.enabled(level) {
                self.lines.borrow_mut().push((level, message.to_string()));
            }
        }
    }

    #[test]
    fn redacts_every_credential_at_every_level() {
        let log = Capture::new(Level::Trace);
        sent(
            &log,
            b"PASS topsecret\r\n",
            &secret(Some(CommandKind::Pass)),
        );
        sent(
            &log,
            b"APOP alice 0123456789abcdef\r\n",
            &secret(Some(CommandKind::Apop)),
        );
        sent(
            &log,
            b"AUTH PLAIN AGFsaWNlAHRvcHNlY3JldA==\r\n",
            &secret(Some(CommandKind::Auth)),
        );
        sent(&log, b"dG9wc2VjcmV0\r\n", &secret(None));
        let text = log.text();
        for secret in ["topsecret", "0123456789abcdef", "AGFsaWNl", "dG9wc2Vj"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert!(text.contains("C: PASS <redacted>"), "{text}");
        assert!(text.contains("C: APOP <redacted>"), "{text}");
        assert!(text.contains("C: AUTH PLAIN <redacted>"), "{text}");
        assert!(text.contains("C: <SASL response> <redacted>"), "{text}");
    }

    #[test]
    fn auth_shows_the_mechanism_name_only_when_it_is_one() {
        let log = Capture::new(Level::Debug);
        let auth = secret(Some(CommandKind::Auth));
        sent(&log, b"AUTH XOAUTH2 dXNlcj1hAWF1dGg=\r\n", &auth);
        sent(&log, b"AUTH SCRAM-SHA-256-PLUS cD10bHMt\r\n", &auth);
        // Not a plausible mechanism name: nothing of the line is shown.
        sent(&log, b"AUTH secretish payload\r\n", &auth);
        sent(&log, b"AUTH ABCDEFGHIJKLMNOPQRSTUVWXYZ x\r\n", &auth);
        // The mechanism name of a PASS line is never looked for.
        sent(&log, b"PASS PLAIN\r\n", &secret(Some(CommandKind::Pass)));
        let lines: Vec<String> = log.lines.borrow().iter().map(|(_, l)| l.clone()).collect();
        assert_eq!(
            lines,
            [
                "C: AUTH XOAUTH2 <redacted>",
                "C: AUTH SCRAM-SHA-256-PLUS <redacted>",
                "C: AUTH <redacted>",
                "C: AUTH <redacted>",
                "C: PASS <redacted>",
            ]
        );
    }

    fn secret(secret_of: Option<CommandKind>) -> Transmit {
        Transmit {
            len: 0,
            sensitive: true,
            secret_of,
        }
    }

    fn public(len: usize) -> Transmit {
        Transmit {
            len,
            sensitive: false,
            secret_of: None,
        }
    }

    #[test]
    fn one_debug_line_per_command_and_raw_bytes_at_trace() {
        let log = Capture::new(Level::Debug);
        sent(&log, b"RETR 1\r\nRETR 2\r\n", &public(16));
        received(&log, b"+OK\r\n");
        assert_eq!(log.text(), "C: RETR 1\nC: RETR 2");
        let log = Capture::new(Level::Trace);
        sent(&log, b"STAT\r\n", &public(6));
        received(&log, b"+OK 1 2\r\n\x01");
        let text = log.text();
        assert!(text.contains("C raw: STAT\\r\\n"), "{text}");
        assert!(text.contains("S raw: +OK 1 2\\r\\n\\x01"), "{text}");
    }

    #[test]
    fn events_and_escaping() {
        let log = Capture::new(Level::Debug);
        let h = {
            let mut core = pop3_proto::Client::new(pop3_proto::Config::default());
            core.handle_input(b"+OK hi\r\n");
            while core.poll_event().unwrap().is_some() {}
            core.enqueue(pop3_proto::Command::Capa).unwrap()
        };
        event(
            &log,
            &Event::Err {
                handle: h,
                command: CommandKind::Noop,
                response: ErrResponse::default(),
            },
        );
        event(
            &log,
            &Event::BodyChunk {
                handle: h,
                data: b"x",
            },
        );
        let text = log.text();
        assert!(text.contains("(to NOOP #"), "{text}");
        assert!(!text.contains("body chunk"), "chunks only at trace: {text}");
        assert_eq!(escape(b"a\r\n\\\x00", 100), "a\\r\\n\\\\\\x00");
        assert_eq!(escape(b"abcdef", 3), "abc... (3 more bytes)");
    }
}

//! The pipelined batch API of both adapters (`retr_each`, `top_each`,
//! `retr_all`, `batch`) over the session layer's sans-IO state machines
//! ([`pop3_proto::session::batch`]): the `std::io` flavour of the sink
//! trait ([`MessageSink`]), [`CollectSink`], and [`RetrBatch`] with this
//! crate's [`Error`] and [`BatchError`].

use std::io;

use pop3_proto::session::batch as core_batch;
pub use pop3_proto::session::batch::{Batch, BatchReport, CommandBatch, Disposition, Reply};
use pop3_proto::{Command, ErrResponse, Event, Handle, UsageError};

use crate::error::{BatchError, Error};

/// Receives the messages of `Client::retr_each` / `Client::top_each`
/// as they arrive.
///
/// For a message `n` the calls are `begin(n)`, any number of `data(n, ..)`,
/// then `end(n, octets)` once the terminating line arrived, so the message
/// is complete. `end` is the place to write the file, `fsync` it, and
/// return [`Disposition::Delete`]: `DELE n` is sent only after `end`
/// returned, and never for a message that was not fully received. A
/// connection that ends mid-message is an error
/// ([`ErrorKind::Truncated`](crate::ErrorKind::Truncated)) and `end` is not
/// called for it; discard what `data` delivered.
///
/// Messages are handed over one at a time and in order (pipelining sends
/// the next RETRs while `end` runs, but their bytes wait in the socket).
/// This is the session layer's [`core_batch::MessageSink`] with
/// `std::io::Error`. (`pop3-tokio` also has an asynchronous flavour,
/// `AsyncMessageSink`, for sinks that must `.await`.)
///
/// ```
/// use std::io::{self, Write};
/// use pop3_adapter::{Disposition, MessageSink};
///
/// /// Streams each message into its own file; deletes it once synced.
/// struct Files {
///     dir: std::path::PathBuf,
///     file: Option<std::fs::File>,
/// }
///
/// impl MessageSink for Files {
///     fn begin(&mut self, n: u32) -> io::Result<()> {
///         self.file = Some(std::fs::File::create(self.dir.join(format!("{n}.eml")))?);
///         Ok(())
///     }
///     fn data(&mut self, _: u32, chunk: &[u8]) -> io::Result<()> {
///         self.file.as_mut().ok_or_else(|| io::Error::other("no begin"))?.write_all(chunk)
///     }
///     fn end(&mut self, _: u32, _: u64) -> io::Result<Disposition> {
///         let file = self.file.take().ok_or_else(|| io::Error::other("no begin"))?;
///         file.sync_all()?; // durable first,
///         Ok(Disposition::Delete) // then the DELE
///     }
/// }
///
/// let dir = std::env::temp_dir().join(format!("sink-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let mut sink = Files { dir: dir.clone(), file: None };
/// sink.begin(1)?;
/// sink.data(1, b"Subject: hi\r\n\r\nbody\r\n")?;
/// assert_eq!(sink.end(1, 25)?, Disposition::Delete);
/// assert!(std::fs::read(dir.join("1.eml"))?.starts_with(b"Subject: hi"));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), io::Error>(())
/// ```
pub trait MessageSink {
    /// The server accepted RETR/TOP for message `n`; its body follows.
    fn begin(&mut self, n: u32) -> io::Result<()> {
        let _ = n;
        Ok(())
    }

    /// A piece of message `n` (dot-unstuffed, line endings as sent).
    fn data(&mut self, n: u32, chunk: &[u8]) -> io::Result<()>;

    /// Message `n` is complete (`octets` bytes); decide whether to delete
    /// it. Only here is the message known to be whole.
    fn end(&mut self, n: u32, octets: u64) -> io::Result<Disposition>;

    /// The server answered `-ERR` for message `n` (for example it was
    /// deleted by another session). The batch continues; the default
    /// ignores it (it is also listed in [`BatchReport::refused`]).
    fn refused(&mut self, n: u32, response: &ErrResponse) -> io::Result<()> {
        let _ = (n, response);
        Ok(())
    }
}

/// A [`MessageSink`] as the session layer's sink (with `io::Error`).
struct IoSink<'s, K: ?Sized>(&'s mut K);

impl<K: MessageSink + ?Sized> core_batch::MessageSink<io::Error> for IoSink<'_, K> {
    fn begin(&mut self, n: u32) -> io::Result<()> {
        self.0.begin(n)
    }
    fn data(&mut self, n: u32, chunk: &[u8]) -> io::Result<()> {
        self.0.data(n, chunk)
    }
    fn end(&mut self, n: u32, octets: u64) -> io::Result<Disposition> {
        self.0.end(n, octets)
    }
    fn refused(&mut self, n: u32, response: &ErrResponse) -> io::Result<()> {
        self.0.refused(n, response)
    }
}

/// A [`MessageSink`] that collects each message in memory and hands it to
/// a closure: `FnMut(n, message) -> io::Result<Disposition>`. Memory per
/// message is the message size; use your own [`MessageSink`] to stream.
pub struct CollectSink<F> {
    buf: Vec<u8>,
    f: F,
}

impl<F: FnMut(u32, Vec<u8>) -> io::Result<Disposition>> CollectSink<F> {
    /// Wraps the closure.
    pub fn new(f: F) -> Self {
        CollectSink { buf: Vec::new(), f }
    }
}

impl<F: FnMut(u32, Vec<u8>) -> io::Result<Disposition>> MessageSink for CollectSink<F> {
    fn begin(&mut self, _: u32) -> io::Result<()> {
        self.buf.clear();
        Ok(())
    }
    fn data(&mut self, _: u32, chunk: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(chunk);
        Ok(())
    }
    fn end(&mut self, n: u32, _: u64) -> io::Result<Disposition> {
        (self.f)(n, std::mem::take(&mut self.buf))
    }
}

/// The session layer's [`core_batch::RetrBatch`] over an io
/// [`MessageSink`], with this crate's errors: the state machine of
/// `retr_each` / `top_each`.
pub struct RetrBatch<'s, I, K: ?Sized> {
    inner: core_batch::RetrBatch<I, IoSink<'s, K>, io::Error>,
}

impl<I, K: ?Sized> std::fmt::Debug for RetrBatch<'_, I, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<'s, I: Iterator<Item = u32>, K: MessageSink + ?Sized> RetrBatch<'s, I, K> {
    /// RETR each of `msgs` (TOP `n lines` with `top = Some(lines)`), at
    /// most `window` commands outstanding (at least 1).
    pub fn new(msgs: I, top: Option<u32>, window: usize, sink: &'s mut K) -> Self {
        RetrBatch {
            inner: core_batch::RetrBatch::new(msgs, top, window, IoSink(sink)),
        }
    }

    /// The sink (see [`core_batch::RetrBatch::sink_mut`]).
    pub fn sink_mut(&mut self) -> &mut K {
        &mut *self.inner.sink_mut().0
    }

    /// The outcome once finished: the report, or [`Error::Sink`] with the
    /// message it happened at (and the report so far).
    pub fn finish(self) -> Result<BatchReport, BatchError> {
        self.inner.finish().map_err(|(n, e, report)| BatchError {
            message: Some(n),
            report: Box::new(report),
            error: Error::Sink(e),
        })
    }

    /// Ends the batch with `error`, naming the message it stopped at.
    pub fn fail(self, error: Error) -> BatchError {
        let (message, report) = self.inner.fail();
        BatchError {
            message,
            report: Box::new(report),
            error,
        }
    }
}

impl<I: Iterator<Item = u32>, K: MessageSink + ?Sized> Batch for RetrBatch<'_, I, K> {
    fn fill<D: From<UsageError>>(
        &mut self,
        enqueue: &mut dyn FnMut(Command) -> Result<Handle, D>,
    ) -> Result<(), D> {
        self.inner.fill(enqueue)
    }
    fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }
    fn wants_fill(&self) -> bool {
        self.inner.wants_fill()
    }
    fn handle_event(&mut self, ev: Event<'_>) -> Result<Option<Handle>, UsageError> {
        self.inner.handle_event(ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use pop3_proto::{Client as Core, Config, MsgNum, Pipelining, Response};

    /// A logged-in core that pipelines.
    fn core() -> Core {
        let mut config = Config::default();
        config.pipelining = Pipelining::Always;
        config.allow_cleartext_credentials = true;
        let mut core = Core::new(config);
        core.handle_input(b"+OK hi\r\n");
        while core.poll_event().unwrap().is_some() {}
        for cmd in [Command::user("u").unwrap(), Command::pass("p").unwrap()] {
            core.enqueue(cmd).unwrap();
            let mut out = Vec::new();
            while core.poll_transmit(&mut out).is_some() {}
            core.handle_input(b"+OK\r\n");
            while core.poll_event().unwrap().is_some() {}
        }
        assert_eq!(core.session_state(), pop3_proto::SessionState::Transaction);
        core
    }

    /// A server with three messages; `refuse` answers RETR with -ERR.
    struct FakeServer {
        refuse: Vec<u32>,
        commands: Vec<String>,
    }

    impl FakeServer {
        fn new() -> FakeServer {
            FakeServer {
                refuse: Vec::new(),
                commands: Vec::new(),
            }
        }
        fn reply(&mut self, line: &str) -> Vec<u8> {
            self.commands.push(line.to_string());
            let mut words = line.split(' ');
            let verb = words.next().unwrap_or("");
            let n: u32 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
            match verb {
                "RETR" | "TOP" if self.refuse.contains(&n) || n > 3 => {
                    b"-ERR no such message\r\n".to_vec()
                }
                "RETR" | "TOP" => format!("+OK\r\nmessage {n}\r\n..dot\r\n.\r\n").into_bytes(),
                _ => b"+OK\r\n".to_vec(),
            }
        }
    }

    /// Records the sink calls; fails `end` of message `fail_end`.
    #[derive(Default)]
    struct Log {
        calls: Vec<String>,
        delete: bool,
        fail_end: Option<u32>,
    }

    impl MessageSink for Log {
        fn begin(&mut self, n: u32) -> io::Result<()> {
            self.calls.push(format!("begin {n}"));
            Ok(())
        }
        fn data(&mut self, n: u32, chunk: &[u8]) -> io::Result<()> {
            self.calls.push(format!(
                "data {n} {}",
                String::from_utf8_lossy(chunk).trim_end()
            ));
            Ok(())
        }
        fn end(&mut self, n: u32, octets: u64) -> io::Result<Disposition> {
            self.calls.push(format!("end {n} {octets}"));
            if self.fail_end == Some(n) {
                return Err(io::Error::other("disk full"));
            }
            Ok(if self.delete {
                Disposition::Delete
            } else {
                Disposition::Keep
            })
        }
        fn refused(&mut self, n: u32, _: &ErrResponse) -> io::Result<()> {
            self.calls.push(format!("refused {n}"));
            Ok(())
        }
    }

    /// The adapters' loop, without I/O: every command sent is answered at
    /// once; `cut` ends the stream after that many reply bytes.
    fn run(
        msgs: Vec<u32>,
        window: usize,
        server: &mut FakeServer,
        sink: &mut Log,
        cut: Option<usize>,
    ) -> Result<BatchReport, BatchError> {
        let mut core = core();
        let mut batch = RetrBatch::new(msgs.into_iter(), None, window, sink);
        let mut fed = 0;
        loop {
            if let Err(e) = batch.fill(&mut |cmd| Ok::<_, Error>(core.enqueue(cmd)?)) {
                return Err(batch.fail(e));
            }
            if batch.is_finished() {
                return batch.finish();
            }
            let mut out = Vec::new();
            while core.poll_transmit(&mut out).is_some() {}
            for line in String::from_utf8(out).unwrap().lines() {
                let mut reply = server.reply(line);
                if let Some(limit) = cut {
                    reply.truncate(limit.saturating_sub(fed));
                }
                fed += reply.len();
                core.handle_input(&reply);
                if cut.is_some_and(|limit| fed >= limit) {
                    core.handle_eof();
                }
            }
            loop {
                match core.poll_event() {
                    Ok(Some(ev)) => {
                        if let Err(e) = batch.handle_event(ev) {
                            return Err(batch.fail(e.into()));
                        }
                        if batch.wants_fill() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return Err(batch.fail(e.into())),
                }
            }
        }
    }

    #[test]
    fn dele_only_after_end_and_in_report() {
        let mut server = FakeServer::new();
        let mut sink = Log {
            delete: true,
            ..Log::default()
        };
        let report = run(vec![1, 2, 3], 2, &mut server, &mut sink, None).unwrap();
        assert_eq!(report.received, 3);
        assert_eq!(report.deleted, vec![1, 2, 3]);
        assert_eq!(report.octets, 3 * "message 1\r\n.dot\r\n".len() as u64);
        assert_eq!(
            &sink.calls[..4],
            ["begin 1", "data 1 message 1", "data 1 .dot", "end 1 17"]
        );
        for n in 1..=3 {
            let retr = server
                .commands
                .iter()
                .position(|c| *c == format!("RETR {n}"));
            let dele = server
                .commands
                .iter()
                .position(|c| *c == format!("DELE {n}"));
            assert!(retr < dele, "{:?}", server.commands);
        }
    }

    #[test]
    fn refused_message_continues_and_is_not_deleted() {
        let mut server = FakeServer::new();
        server.refuse.push(2);
        let mut sink = Log {
            delete: true,
            ..Log::default()
        };
        let report = run(vec![1, 2, 3], 3, &mut server, &mut sink, None).unwrap();
        assert_eq!(report.received, 2);
        assert_eq!(report.deleted, vec![1, 3]);
        assert_eq!(report.refused.len(), 1);
        assert_eq!(report.refused[0].0, 2);
        assert!(sink.calls.contains(&"refused 2".to_string()));
        assert!(!server.commands.contains(&"DELE 2".to_string()));
    }

    #[test]
    fn sink_error_names_the_message_and_keeps_acknowledged_deletes() {
        let mut server = FakeServer::new();
        let mut sink = Log {
            delete: true,
            fail_end: Some(2),
            ..Log::default()
        };
        let e = run(vec![1, 2, 3], 1, &mut server, &mut sink, None).unwrap_err();
        assert_eq!(e.message, Some(2));
        assert!(matches!(e.error, Error::Sink(_)), "{e:?}");
        assert_eq!(e.report.deleted, vec![1]);
        assert_eq!(e.report.received, 2);
        assert_eq!(
            e.to_string(),
            "message 2: writing the message failed: disk full"
        );
        // Nothing is sent after the failure, and never DELE 2.
        assert_eq!(server.commands, ["RETR 1", "DELE 1", "RETR 2"]);
    }

    #[test]
    fn sink_error_with_a_full_window_drains_the_rest() {
        let mut server = FakeServer::new();
        let mut sink = Log {
            fail_end: Some(1),
            ..Log::default()
        };
        let e = run(vec![1, 2, 3], 3, &mut server, &mut sink, None).unwrap_err();
        assert_eq!(e.message, Some(1));
        // RETR 2 and 3 were requested already; their bodies are read and
        // discarded, not handed to the sink.
        assert_eq!(server.commands, ["RETR 1", "RETR 2", "RETR 3"]);
        assert!(!sink.calls.iter().any(|c| c.starts_with("begin 2")));
        assert_eq!(e.report.received, 1);
    }

    #[test]
    fn truncated_body_names_the_message_being_received() {
        let mut server = FakeServer::new();
        let mut sink = Log {
            delete: true,
            ..Log::default()
        };
        // Message 1 (+OK, body, terminator: 26 bytes) and DELE 1's +OK
        // arrive, then the connection ends in the middle of message 2.
        let e = run(vec![1, 2, 3], 1, &mut server, &mut sink, Some(26 + 5 + 10)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Truncated, "{e:?}");
        assert_eq!(e.message, Some(2));
        assert_eq!(e.report.deleted, vec![1]);
        assert!(!sink.calls.iter().any(|c| c.starts_with("end 2")));
    }

    #[test]
    fn invalid_message_number_is_a_usage_error_naming_it() {
        let mut server = FakeServer::new();
        let mut sink = Log::default();
        let e = run(vec![1, 0], 4, &mut server, &mut sink, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage);
        assert_eq!(e.message, Some(0));
    }

    #[test]
    fn wants_fill_after_half_the_window() {
        let mut core = core();
        let mut sink = Log::default();
        let mut batch = RetrBatch::new(1..=10, Some(0), 4, &mut sink);
        assert!(batch.wants_fill());
        batch
            .fill(&mut |cmd| Ok::<_, Error>(core.enqueue(cmd)?))
            .unwrap();
        assert!(!batch.wants_fill(), "window full");
        let mut out = Vec::new();
        while core.poll_transmit(&mut out).is_some() {}
        assert!(out.starts_with(b"TOP 1 0\r\nTOP 2 0\r\n"));
        core.handle_input(b"+OK\r\n.\r\n+OK\r\n.\r\n");
        let mut settled = 0;
        while let Some(ev) = core.poll_event().unwrap() {
            settled += usize::from(batch.handle_event(ev).unwrap().is_some());
        }
        assert_eq!(settled, 2);
        assert!(batch.wants_fill(), "half the window drained");
    }

    #[test]
    fn command_batch_replies_in_order() {
        let mut core = core();
        let commands = vec![
            Command::Stat,
            Command::Retr(MsgNum::try_from(1).unwrap()),
            Command::Dele(MsgNum::try_from(9).unwrap()),
            Command::Noop,
        ];
        let mut batch = CommandBatch::new(commands, 2);
        let mut server = FakeServer::new();
        while !batch.is_finished() {
            batch
                .fill(&mut |cmd| Ok::<_, Error>(core.enqueue(cmd)?))
                .unwrap();
            let mut out = Vec::new();
            while core.poll_transmit(&mut out).is_some() {}
            for line in String::from_utf8(out).unwrap().lines() {
                let reply = match line {
                    "STAT" => b"+OK 3 30\r\n".to_vec(),
                    "DELE 9" => b"-ERR no such message\r\n".to_vec(),
                    _ => server.reply(line),
                };
                core.handle_input(&reply);
            }
            while let Some(ev) = core.poll_event().unwrap() {
                batch.handle_event(ev).unwrap();
            }
        }
        let replies = batch.finish();
        assert_eq!(replies.len(), 4);
        assert!(matches!(&replies[0], Reply::Ok(Response::Stat(s)) if s.count == 3));
        assert_eq!(replies[1], Reply::Body(b"message 1\r\n.dot\r\n".to_vec()));
        assert!(matches!(&replies[2], Reply::Err(_)));
        assert!(matches!(&replies[3], Reply::Ok(_)));
    }
}

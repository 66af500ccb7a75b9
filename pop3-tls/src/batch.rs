//! The pipelined batch operations of both adapters (`retr_each`,
//! `top_each`, `retr_all`, `batch`): their types, and the sans-IO state
//! machines ([`RetrBatch`], [`CommandBatch`]) that decide what to send and
//! what each reply means. An adapter only enqueues what
//! [`Batch::fill`] asks for, feeds the core's events to
//! [`Batch::handle_event`], and does the I/O in between.

use std::collections::{HashMap, VecDeque};
use std::io;

use pop3_proto::{Command, ErrResponse, Event, Handle, MsgNum, Response, UsageError};

use crate::error::{BatchError, Error};

/// What to do with a message once it has been received completely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Leave it on the server.
    Keep,
    /// Send `DELE` for it (committed by QUIT).
    Delete,
}

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

/// What a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchReport {
    /// Messages received completely.
    pub received: u32,
    /// Body bytes received in total.
    pub octets: u64,
    /// Messages marked deleted (`DELE` answered `+OK`).
    pub deleted: Vec<u32>,
    /// Messages the server refused to send (`-ERR` to RETR/TOP).
    pub refused: Vec<(u32, ErrResponse)>,
    /// Messages whose `DELE` failed.
    pub dele_failed: Vec<(u32, ErrResponse)>,
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

/// The reply to one command of a `Client::batch`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// A `+OK` with its typed response (for RETR/TOP: see `Body`).
    Ok(Response),
    /// The complete body of a RETR or TOP.
    Body(Vec<u8>),
    /// The server's `-ERR`.
    Err(ErrResponse),
}

/// A batch state machine ([`RetrBatch`], [`CommandBatch`]) as the
/// adapters drive it:
///
/// 1. [`fill`](Batch::fill) with a closure that enqueues a command in the
///    core and returns its handle;
/// 2. stop when [`is_finished`](Batch::is_finished);
/// 3. write, read, and hand every core event to
///    [`handle_event`](Batch::handle_event) (it returns the handle whose
///    last event that was); go back to 1 whenever
///    [`wants_fill`](Batch::wants_fill) (an adapter that reads while it
///    writes may simply fill before every event).
///
/// An error from any step ends the batch.
pub trait Batch {
    /// Enqueues, through `enqueue`, what may be sent now.
    fn fill(
        &mut self,
        enqueue: &mut dyn FnMut(Command) -> Result<Handle, Error>,
    ) -> Result<(), Error>;
    /// Whether every command was sent and answered (ask after `fill`).
    fn is_finished(&self) -> bool;
    /// Whether `fill` has something to send now.
    fn wants_fill(&self) -> bool;
    /// Handles one core event; returns the handle whose last event this
    /// was (`None` for an event that is not the batch's, or not the last
    /// of its command).
    fn handle_event(&mut self, ev: Event<'_>) -> Result<Option<Handle>, Error>;
}

/// What a command of a [`RetrBatch`] was sent for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Body(u32),
    Dele(u32),
}

/// The state machine of `retr_each` / `top_each`: RETR (or TOP) for each
/// message up to a window, each body handed to a [`MessageSink`], `DELE n`
/// only after the sink's `end(n)` returned [`Disposition::Delete`].
///
/// No I/O: the adapter drives it as a [`Batch`], then calls
/// [`finish`](RetrBatch::finish), or on an error of any step
/// [`fail`](RetrBatch::fail); both keep the report.
///
/// Rules: DELEs the sink asked for are sent first (they free the server's
/// memory of the message soonest); a `-ERR` to RETR is reported to
/// [`MessageSink::refused`] and the batch continues; after a sink error
/// nothing more is sent, the replies already requested are read and
/// discarded (the session stays usable), and `finish` returns
/// [`Error::Sink`] with the failing message's number.
pub struct RetrBatch<'s, I, K: ?Sized> {
    msgs: I,
    top: Option<u32>,
    window: usize,
    sink: &'s mut K,
    /// Commands sent and not yet fully answered, oldest first.
    outstanding: VecDeque<(Handle, Pending)>,
    /// Messages complete with `Disposition::Delete`, DELE not yet sent.
    to_delete: VecDeque<u32>,
    /// The first sink error, with its message.
    sink_error: Option<(u32, io::Error)>,
    /// The message whose body is being received.
    current: Option<u32>,
    exhausted: bool,
    report: BatchReport,
}

impl<I, K: ?Sized> std::fmt::Debug for RetrBatch<'_, I, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetrBatch")
            .field("outstanding", &self.outstanding)
            .field("to_delete", &self.to_delete)
            .field("current", &self.current)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl<'s, I: Iterator<Item = u32>, K: MessageSink + ?Sized> RetrBatch<'s, I, K> {
    /// RETR each of `msgs` (TOP `n lines` with `top = Some(lines)`), at
    /// most `window` commands outstanding (at least 1).
    pub fn new(msgs: I, top: Option<u32>, window: usize, sink: &'s mut K) -> Self {
        RetrBatch {
            msgs,
            top,
            window: window.max(1),
            sink,
            outstanding: VecDeque::new(),
            to_delete: VecDeque::new(),
            sink_error: None,
            current: None,
            exhausted: false,
            report: BatchReport::default(),
        }
    }

    fn call_sink(&mut self, n: u32, call: impl FnOnce(&mut K) -> io::Result<()>) {
        if self.sink_error.is_none() {
            if let Err(e) = call(self.sink) {
                self.sink_error = Some((n, e));
            }
        }
    }

    /// The outcome once [`Batch::is_finished`]: the report, or the sink
    /// error with the message it happened at (and the report so far).
    pub fn finish(self) -> Result<BatchReport, BatchError> {
        match self.sink_error {
            Some((n, e)) => Err(BatchError {
                message: Some(n),
                report: Box::new(self.report),
                error: Error::Sink(e),
            }),
            None => Ok(self.report),
        }
    }

    /// Ends the batch with `error` (from the adapter's I/O, the core, or
    /// this machine), naming the message it stopped at.
    pub fn fail(self, error: Error) -> BatchError {
        let oldest = self.outstanding.iter().find_map(|(_, p)| match p {
            Pending::Body(n) => Some(*n),
            Pending::Dele(_) => None,
        });
        BatchError {
            message: self.current.or(oldest),
            report: Box::new(self.report),
            error,
        }
    }
}

impl<I: Iterator<Item = u32>, K: MessageSink + ?Sized> Batch for RetrBatch<'_, I, K> {
    /// Enqueues, through `enqueue`, what may be sent now: pending DELEs,
    /// then RETR/TOP while the window has room. Nothing after a sink error.
    /// An error of `enqueue` (or an invalid message number) ends the batch:
    /// pass it to [`RetrBatch::fail`].
    fn fill(
        &mut self,
        enqueue: &mut dyn FnMut(Command) -> Result<Handle, Error>,
    ) -> Result<(), Error> {
        while self.sink_error.is_none() && self.outstanding.len() < self.window {
            let (n, pending) = match self.to_delete.front() {
                Some(&n) => (n, Pending::Dele(n)),
                None if self.exhausted => break,
                None => match self.msgs.next() {
                    Some(n) => (n, Pending::Body(n)),
                    None => {
                        self.exhausted = true;
                        break;
                    }
                },
            };
            let cmd = match (pending, MsgNum::try_from(n)) {
                (_, Err(e)) => {
                    self.current = Some(n);
                    return Err(e.into());
                }
                (Pending::Dele(_), Ok(m)) => Command::Dele(m),
                (Pending::Body(_), Ok(m)) => match self.top {
                    Some(lines) => Command::Top(m, lines),
                    None => Command::Retr(m),
                },
            };
            let handle = enqueue(cmd)?;
            if let Pending::Dele(_) = pending {
                self.to_delete.pop_front();
            }
            self.outstanding.push_back((handle, pending));
        }
        Ok(())
    }

    /// Whether every command sent was answered and nothing more is to be
    /// sent (ask after [`Batch::fill`]).
    fn is_finished(&self) -> bool {
        self.outstanding.is_empty()
    }

    /// Whether [`Batch::fill`] has something to send now: a DELE the
    /// sink just asked for, or room for more RETRs once half the window
    /// has drained (an adapter that cannot read and write at once stops
    /// reading to send them).
    fn wants_fill(&self) -> bool {
        if self.outstanding.is_empty() {
            return true;
        }
        if self.sink_error.is_some() || self.outstanding.len() >= self.window {
            return false;
        }
        !self.to_delete.is_empty() || (!self.exhausted && self.outstanding.len() * 2 <= self.window)
    }

    /// Handles one core event: the sink calls and the report. Returns the
    /// handle whose last event this was (`None` for an event that is not
    /// the batch's, or not the last of its command). An error ends the
    /// batch: pass it to [`RetrBatch::fail`].
    fn handle_event(&mut self, ev: Event<'_>) -> Result<Option<Handle>, Error> {
        let Some(handle) = ev.handle() else {
            return match ev {
                Event::Closed => Err(Error::Usage(UsageError::Closed)),
                _ => Ok(None),
            };
        };
        let Some(i) = self.outstanding.iter().position(|(h, _)| *h == handle) else {
            return Ok(None);
        };
        let what = self.outstanding[i].1;
        let terminal = !matches!(ev, Event::Ok { .. } | Event::BodyChunk { .. })
            || matches!(what, Pending::Dele(_));
        match (ev, what) {
            (Event::Ok { .. }, Pending::Body(n)) => {
                self.current = Some(n);
                self.call_sink(n, |s| s.begin(n));
            }
            (Event::BodyChunk { data, .. }, Pending::Body(n)) => {
                self.call_sink(n, |s| s.data(n, data));
            }
            (Event::BodyEnd { octets, .. }, Pending::Body(n)) => {
                self.current = None;
                if self.sink_error.is_none() {
                    self.report.received += 1;
                    self.report.octets += octets;
                    match self.sink.end(n, octets) {
                        Ok(Disposition::Delete) => self.to_delete.push_back(n),
                        Ok(Disposition::Keep) => {}
                        Err(e) => self.sink_error = Some((n, e)),
                    }
                }
            }
            (Event::Err { response, .. }, Pending::Body(n)) => {
                self.call_sink(n, |s| s.refused(n, &response));
                self.report.refused.push((n, response));
            }
            (Event::Ok { .. }, Pending::Dele(n)) => self.report.deleted.push(n),
            (Event::Err { response, .. }, Pending::Dele(n)) => {
                self.report.dele_failed.push((n, response))
            }
            (Event::Rejected { error, .. }, _) => return Err(Error::Usage(error)),
            _ => {}
        }
        if terminal {
            self.outstanding.remove(i);
            Ok(Some(handle))
        } else {
            Ok(None)
        }
    }
}

/// The state machine of `Client::batch`: arbitrary commands pipelined up
/// to a window, one [`Reply`] per command, bodies collected in memory. The
/// adapter drives it as a [`Batch`], then takes the replies with
/// [`CommandBatch::finish`].
#[derive(Debug)]
pub struct CommandBatch {
    queue: std::iter::Enumerate<std::vec::IntoIter<Command>>,
    window: usize,
    /// Outstanding commands: handle to index.
    index: HashMap<Handle, usize>,
    bodies: HashMap<Handle, Vec<u8>>,
    replies: Vec<Option<Reply>>,
}

impl CommandBatch {
    /// Sends `commands`, at most `window` outstanding (at least 1).
    pub fn new(commands: Vec<Command>, window: usize) -> CommandBatch {
        CommandBatch {
            replies: vec![None; commands.len()],
            queue: commands.into_iter().enumerate(),
            window: window.max(1),
            index: HashMap::new(),
            bodies: HashMap::new(),
        }
    }

    /// The replies, in the order of the commands.
    pub fn finish(self) -> Vec<Reply> {
        self.replies
            .into_iter()
            .map(|r| r.unwrap_or(Reply::Err(ErrResponse::default())))
            .collect()
    }
}

impl Batch for CommandBatch {
    /// Enqueues, through `enqueue`, commands while the window has room.
    fn fill(
        &mut self,
        enqueue: &mut dyn FnMut(Command) -> Result<Handle, Error>,
    ) -> Result<(), Error> {
        while self.index.len() < self.window {
            let Some((i, cmd)) = self.queue.next() else {
                break;
            };
            let h = enqueue(cmd)?;
            self.index.insert(h, i);
        }
        Ok(())
    }

    /// Whether every command was sent and answered.
    fn is_finished(&self) -> bool {
        self.index.is_empty() && self.queue.len() == 0
    }

    /// Whether [`Batch::fill`] has something to send now (half the
    /// window drained, or everything answered).
    fn wants_fill(&self) -> bool {
        self.index.is_empty() || (self.queue.len() > 0 && self.index.len() * 2 <= self.window)
    }

    /// Handles one core event; returns the handle whose last event this
    /// was. A command dropped by the core ([`Event::Rejected`]) or a closed
    /// session is an error.
    fn handle_event(&mut self, ev: Event<'_>) -> Result<Option<Handle>, Error> {
        let Some(h) = ev.handle() else {
            return match ev {
                Event::Closed => Err(Error::Usage(UsageError::Closed)),
                _ => Ok(None),
            };
        };
        let Some(&i) = self.index.get(&h) else {
            return Ok(None);
        };
        let reply = match ev {
            Event::Ok {
                response: Response::BodyStart(_),
                ..
            } => {
                self.bodies.insert(h, Vec::new());
                return Ok(None);
            }
            Event::BodyChunk { data, .. } => {
                if let Some(b) = self.bodies.get_mut(&h) {
                    b.extend_from_slice(data);
                }
                return Ok(None);
            }
            Event::BodyEnd { .. } => Reply::Body(self.bodies.remove(&h).unwrap_or_default()),
            Event::Ok { response, .. } => Reply::Ok(response),
            Event::Err { response, .. } | Event::AuthCancelled { response, .. } => {
                Reply::Err(response)
            }
            Event::Rejected { error, .. } => return Err(Error::Usage(error)),
            _ => return Ok(None),
        };
        self.index.remove(&h);
        self.replies[i] = Some(reply);
        Ok(Some(h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use pop3_proto::{Client as Core, Config, Pipelining};

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
            if let Err(e) = batch.fill(&mut |cmd| Ok(core.enqueue(cmd)?)) {
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
                            return Err(batch.fail(e));
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
        batch.fill(&mut |cmd| Ok(core.enqueue(cmd)?)).unwrap();
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
            batch.fill(&mut |cmd| Ok(core.enqueue(cmd)?)).unwrap();
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

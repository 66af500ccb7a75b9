//! Pipelined batches (`retr_each`, `top_each`, `retr_all`, `batch` in the
//! adapters): the sans-IO state machines ([`RetrBatch`], [`CommandBatch`])
//! that decide what to send and what each reply means, with the
//! durable-before-DELE rule. `no_std`: the sink's error type is generic.
//!
//! A driver enqueues what [`Batch::fill`] asks for (through
//! [`Session::enqueue`](super::Session::enqueue)), feeds the events of
//! [`Session::poll_event`](super::Session::poll_event) to
//! [`Batch::handle_event`], and does the I/O in between.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::{Command, ErrResponse, Event, Handle, MsgNum, Response, UsageError};

/// What to do with a message once it has been received completely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Leave it on the server.
    Keep,
    /// Send `DELE` for it (committed by QUIT).
    Delete,
}

/// Receives the messages of a [`RetrBatch`] as they arrive; `E` is the
/// sink's error type (`std::io::Error` in the adapters).
///
/// For a message `n` the calls are `begin(n)`, any number of `data(n, ..)`,
/// then `end(n, octets)` once the terminating line arrived, so the message
/// is complete. `end` is the place to write the file, `fsync` it, and
/// return [`Disposition::Delete`]: `DELE n` is sent only after `end`
/// returned, and never for a message that was not fully received. A
/// connection that ends mid-message is an error and `end` is not called
/// for it; discard what `data` delivered.
///
/// Messages are handed over one at a time and in order (pipelining sends
/// the next RETRs while `end` runs, but their bytes wait in the socket).
pub trait MessageSink<E> {
    /// The server accepted RETR/TOP for message `n`; its body follows.
    fn begin(&mut self, n: u32) -> Result<(), E> {
        let _ = n;
        Ok(())
    }

    /// A piece of message `n` (dot-unstuffed, line endings as sent).
    fn data(&mut self, n: u32, chunk: &[u8]) -> Result<(), E>;

    /// Message `n` is complete (`octets` bytes); decide whether to delete
    /// it. Only here is the message known to be whole.
    fn end(&mut self, n: u32, octets: u64) -> Result<Disposition, E>;

    /// The server answered `-ERR` for message `n` (for example it was
    /// deleted by another session). The batch continues; the default
    /// ignores it (it is also listed in [`BatchReport::refused`]).
    fn refused(&mut self, n: u32, response: &ErrResponse) -> Result<(), E> {
        let _ = (n, response);
        Ok(())
    }
}

impl<E, K: MessageSink<E> + ?Sized> MessageSink<E> for &mut K {
    fn begin(&mut self, n: u32) -> Result<(), E> {
        (**self).begin(n)
    }
    fn data(&mut self, n: u32, chunk: &[u8]) -> Result<(), E> {
        (**self).data(n, chunk)
    }
    fn end(&mut self, n: u32, octets: u64) -> Result<Disposition, E> {
        (**self).end(n, octets)
    }
    fn refused(&mut self, n: u32, response: &ErrResponse) -> Result<(), E> {
        (**self).refused(n, response)
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

/// The reply to one command of a [`CommandBatch`].
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
/// An error from any step ends the batch. `D` is the driver's error type
/// (what its `enqueue` returns).
pub trait Batch {
    /// Enqueues, through `enqueue`, what may be sent now.
    fn fill<D: From<UsageError>>(
        &mut self,
        enqueue: &mut dyn FnMut(Command) -> Result<Handle, D>,
    ) -> Result<(), D>;
    /// Whether every command was sent and answered (ask after `fill`).
    fn is_finished(&self) -> bool;
    /// Whether `fill` has something to send now.
    fn wants_fill(&self) -> bool;
    /// Handles one core event; returns the handle whose last event this
    /// was (`None` for an event that is not the batch's, or not the last
    /// of its command).
    fn handle_event(&mut self, ev: Event<'_>) -> Result<Option<Handle>, UsageError>;
}

/// The window a batch starts with: commands sent before the first reply.
pub const INITIAL_WINDOW: usize = 16;

/// The default bound on command bytes in flight: well inside any socket
/// send buffer (Linux starts at 16 KiB), so a driver that cannot read
/// while it writes never blocks writing commands while the server blocks
/// writing replies, however large the replies are (~400 `RETR`s).
pub const MAX_BYTES_IN_FLIGHT: usize = 4096;

/// `TOP 4294967295 4294967295\r\n`: the longest RETR/TOP/DELE line.
const LONGEST_MSG_COMMAND: usize = 27;

/// The pipelining window of a batch, counted in commands and in command
/// bytes (never in reply sizes).
///
/// Like a TCP congestion window it starts small ([`INITIAL_WINDOW`]) and
/// grows by one command per reply received while the batch has more to
/// send (so it doubles every round trip) up to `cap`, the bound that
/// protects the server. Independently, the command bytes in flight never
/// exceed [`Window::max_bytes`]. A freed slot is refilled at once (no
/// waiting for half the window to drain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    cap: usize,
    max_bytes: usize,
    size: usize,
    count: usize,
    bytes: usize,
}

impl Window {
    /// A window growing from [`INITIAL_WINDOW`] up to `cap` commands (at
    /// least 1), bounded by [`MAX_BYTES_IN_FLIGHT`] command bytes.
    pub fn new(cap: usize) -> Window {
        let cap = cap.max(1);
        Window {
            cap,
            max_bytes: MAX_BYTES_IN_FLIGHT,
            size: INITIAL_WINDOW.min(cap),
            count: 0,
            bytes: 0,
        }
    }

    /// Starts at `size` commands instead (clamped to 1 ..= cap).
    pub fn with_initial(mut self, size: usize) -> Window {
        self.size = size.clamp(1, self.cap);
        self
    }

    /// Bounds the command bytes in flight by `max_bytes` instead (one
    /// command is always allowed, whatever its length).
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Window {
        self.max_bytes = max_bytes;
        self
    }

    /// The current size in commands (grows up to [`Window::cap`]).
    pub fn size(&self) -> usize {
        self.size
    }

    /// The largest size the window may grow to.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// The bound on command bytes in flight.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Commands sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.count
    }

    /// Command bytes sent and not yet answered.
    pub fn bytes_in_flight(&self) -> usize {
        self.bytes
    }

    /// Whether a command of `len` bytes may be sent now.
    pub fn has_room(&self, len: usize) -> bool {
        self.count == 0 || (self.count < self.size && self.bytes + len <= self.max_bytes)
    }

    /// Whether no further command of a batch's usual length (up to the
    /// longest `TOP` line) may be sent.
    fn is_full(&self) -> bool {
        !self.has_room(LONGEST_MSG_COMMAND)
    }

    /// A command of `len` bytes went out.
    pub fn sent(&mut self, len: usize) {
        self.count += 1;
        self.bytes += len;
    }

    /// The reply to a command of `len` bytes arrived; `more` says whether
    /// the batch still has commands to send (only then does it grow).
    pub fn answered(&mut self, len: usize, more: bool) {
        self.count = self.count.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(len);
        if more && self.size < self.cap {
            self.size += 1;
        }
    }
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
/// discarded (the session stays usable), and `finish` returns the sink's
/// error with the failing message's number.
pub struct RetrBatch<I, K, E> {
    msgs: I,
    top: Option<u32>,
    window: Window,
    sink: K,
    /// Commands sent and not yet fully answered (with their length),
    /// oldest first.
    outstanding: VecDeque<(Handle, Pending, usize)>,
    /// The next message, taken from `msgs` but not yet sent (no room).
    peeked: Option<u32>,
    /// Messages complete with `Disposition::Delete`, DELE not yet sent.
    to_delete: VecDeque<u32>,
    /// The first sink error, with its message.
    sink_error: Option<(u32, E)>,
    /// The message whose body is being received.
    current: Option<u32>,
    exhausted: bool,
    report: BatchReport,
}

impl<I, K, E> fmt::Debug for RetrBatch<I, K, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetrBatch")
            .field("window", &self.window)
            .field("outstanding", &self.outstanding)
            .field("to_delete", &self.to_delete)
            .field("current", &self.current)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl<I: Iterator<Item = u32>, K: MessageSink<E>, E> RetrBatch<I, K, E> {
    /// RETR each of `msgs` (TOP `n lines` with `top = Some(lines)`), at
    /// most `window` commands outstanding (at least 1; the window grows
    /// to it, see [`Window`]).
    pub fn new(msgs: I, top: Option<u32>, window: usize, sink: K) -> Self {
        Self::with_window(msgs, top, Window::new(window), sink)
    }

    /// [`RetrBatch::new`] with an explicit [`Window`].
    pub fn with_window(msgs: I, top: Option<u32>, window: Window, sink: K) -> Self {
        RetrBatch {
            msgs,
            top,
            window,
            sink,
            outstanding: VecDeque::new(),
            peeked: None,
            to_delete: VecDeque::new(),
            sink_error: None,
            current: None,
            exhausted: false,
            report: BatchReport::default(),
        }
    }

    /// The sink. A driver whose own sink is asynchronous awaits it first
    /// and stages the result in this (synchronous) sink, which the machine
    /// then calls for the same event.
    pub fn sink_mut(&mut self) -> &mut K {
        &mut self.sink
    }

    fn call_sink(&mut self, n: u32, call: impl FnOnce(&mut K) -> Result<(), E>) {
        if self.sink_error.is_none() {
            if let Err(e) = call(&mut self.sink) {
                self.sink_error = Some((n, e));
            }
        }
    }

    /// The outcome once [`Batch::is_finished`]: the report, or the sink
    /// error with the message it happened at and the report so far.
    #[allow(clippy::type_complexity)]
    pub fn finish(self) -> Result<BatchReport, (u32, E, BatchReport)> {
        match self.sink_error {
            Some((n, e)) => Err((n, e, self.report)),
            None => Ok(self.report),
        }
    }

    /// Ends the batch after an error of any step (the driver's I/O, the
    /// session, this machine): the message it stopped at (the one being
    /// received, else the oldest one requested and not yet answered) and
    /// the report so far.
    pub fn fail(self) -> (Option<u32>, BatchReport) {
        let oldest = self.outstanding.iter().find_map(|(_, p, _)| match p {
            Pending::Body(n) => Some(*n),
            Pending::Dele(_) => None,
        });
        (self.current.or(oldest), self.report)
    }
}

impl<I: Iterator<Item = u32>, K: MessageSink<E>, E> Batch for RetrBatch<I, K, E> {
    /// Enqueues, through `enqueue`, what may be sent now: pending DELEs,
    /// then RETR/TOP while the window has room. Nothing after a sink error.
    /// An error of `enqueue` (or an invalid message number) ends the batch:
    /// pass it to [`RetrBatch::fail`].
    fn fill<D: From<UsageError>>(
        &mut self,
        enqueue: &mut dyn FnMut(Command) -> Result<Handle, D>,
    ) -> Result<(), D> {
        while self.sink_error.is_none() {
            let (n, pending) = match self.to_delete.front() {
                Some(&n) => (n, Pending::Dele(n)),
                None if self.exhausted => break,
                None => match self.peeked.take().or_else(|| self.msgs.next()) {
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
                    return Err(UsageError::Command(e).into());
                }
                (Pending::Dele(_), Ok(m)) => Command::Dele(m),
                (Pending::Body(_), Ok(m)) => match self.top {
                    Some(lines) => Command::Top(m, lines),
                    None => Command::Retr(m),
                },
            };
            let len = cmd.encoded_len();
            if !self.window.has_room(len) {
                if let Pending::Body(n) = pending {
                    self.peeked = Some(n);
                }
                break;
            }
            let handle = enqueue(cmd)?;
            if let Pending::Dele(_) = pending {
                self.to_delete.pop_front();
            }
            self.window.sent(len);
            self.outstanding.push_back((handle, pending, len));
        }
        Ok(())
    }

    /// Whether every command sent was answered and nothing more is to be
    /// sent (ask after [`Batch::fill`]).
    fn is_finished(&self) -> bool {
        self.outstanding.is_empty()
    }

    /// Whether [`Batch::fill`] has something to send now: a DELE the
    /// sink just asked for, or a RETR, as soon as the window has room
    /// (the pipe is refilled continuously; an adapter that cannot read and
    /// write at once stops reading to send it).
    fn wants_fill(&self) -> bool {
        if self.outstanding.is_empty() {
            return true;
        }
        if self.sink_error.is_some() || self.window.is_full() {
            return false;
        }
        !self.to_delete.is_empty() || !self.exhausted
    }

    /// Handles one core event: the sink calls and the report. Returns the
    /// handle whose last event this was (`None` for an event that is not
    /// the batch's, or not the last of its command). An error ends the
    /// batch: pass it to [`RetrBatch::fail`].
    fn handle_event(&mut self, ev: Event<'_>) -> Result<Option<Handle>, UsageError> {
        let Some(handle) = ev.handle() else {
            return match ev {
                Event::Closed => Err(UsageError::Closed),
                _ => Ok(None),
            };
        };
        let Some(i) = self.outstanding.iter().position(|(h, _, _)| *h == handle) else {
            return Ok(None);
        };
        let (_, what, len) = self.outstanding[i];
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
            (Event::Rejected { error, .. }, _) => return Err(error),
            _ => {}
        }
        if terminal {
            self.outstanding.remove(i);
            let more = self.sink_error.is_none() && (!self.exhausted || !self.to_delete.is_empty());
            self.window.answered(len, more);
            Ok(Some(handle))
        } else {
            Ok(None)
        }
    }
}

/// The state machine of a pipelined list of commands (`Client::batch`): arbitrary commands pipelined up
/// to a window, one [`Reply`] per command, bodies collected in memory. The
/// adapter drives it as a [`Batch`], then takes the replies with
/// [`CommandBatch::finish`].
#[derive(Debug)]
pub struct CommandBatch {
    queue: core::iter::Peekable<core::iter::Enumerate<vec::IntoIter<Command>>>,
    window: Window,
    /// Outstanding commands: handle to index and length.
    index: BTreeMap<Handle, (usize, usize)>,
    bodies: BTreeMap<Handle, Vec<u8>>,
    replies: Vec<Option<Reply>>,
}

impl CommandBatch {
    /// Sends `commands`, at most `window` outstanding (at least 1; the
    /// window grows to it, see [`Window`]).
    pub fn new(commands: Vec<Command>, window: usize) -> CommandBatch {
        Self::with_window(commands, Window::new(window))
    }

    /// [`CommandBatch::new`] with an explicit [`Window`].
    pub fn with_window(commands: Vec<Command>, window: Window) -> CommandBatch {
        CommandBatch {
            replies: vec![None; commands.len()],
            queue: commands.into_iter().enumerate().peekable(),
            window,
            index: BTreeMap::new(),
            bodies: BTreeMap::new(),
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
    fn fill<D: From<UsageError>>(
        &mut self,
        enqueue: &mut dyn FnMut(Command) -> Result<Handle, D>,
    ) -> Result<(), D> {
        while let Some((_, cmd)) = self.queue.peek() {
            let len = cmd.encoded_len();
            if !self.window.has_room(len) {
                break;
            }
            let Some((i, cmd)) = self.queue.next() else {
                break;
            };
            let h = enqueue(cmd)?;
            self.window.sent(len);
            self.index.insert(h, (i, len));
        }
        Ok(())
    }

    /// Whether every command was sent and answered.
    fn is_finished(&self) -> bool {
        self.index.is_empty() && self.queue.len() == 0
    }

    /// Whether [`Batch::fill`] has something to send now (room in the
    /// window, or everything answered).
    fn wants_fill(&self) -> bool {
        self.index.is_empty() || (self.queue.len() > 0 && !self.window.is_full())
    }

    /// Handles one core event; returns the handle whose last event this
    /// was. A command dropped by the core ([`Event::Rejected`]) or a closed
    /// session is an error.
    fn handle_event(&mut self, ev: Event<'_>) -> Result<Option<Handle>, UsageError> {
        let Some(h) = ev.handle() else {
            return match ev {
                Event::Closed => Err(UsageError::Closed),
                _ => Ok(None),
            };
        };
        let Some(&(i, len)) = self.index.get(&h) else {
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
            Event::Rejected { error, .. } => return Err(error),
            _ => return Ok(None),
        };
        self.index.remove(&h);
        self.window.answered(len, self.queue.len() > 0);
        self.replies[i] = Some(reply);
        Ok(Some(h))
    }
}

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
    window: usize,
    sink: K,
    /// Commands sent and not yet fully answered, oldest first.
    outstanding: VecDeque<(Handle, Pending)>,
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
            .field("outstanding", &self.outstanding)
            .field("to_delete", &self.to_delete)
            .field("current", &self.current)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl<I: Iterator<Item = u32>, K: MessageSink<E>, E> RetrBatch<I, K, E> {
    /// RETR each of `msgs` (TOP `n lines` with `top = Some(lines)`), at
    /// most `window` commands outstanding (at least 1).
    pub fn new(msgs: I, top: Option<u32>, window: usize, sink: K) -> Self {
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
        let oldest = self.outstanding.iter().find_map(|(_, p)| match p {
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
                    return Err(UsageError::Command(e).into());
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
    fn handle_event(&mut self, ev: Event<'_>) -> Result<Option<Handle>, UsageError> {
        let Some(handle) = ev.handle() else {
            return match ev {
                Event::Closed => Err(UsageError::Closed),
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
            (Event::Rejected { error, .. }, _) => return Err(error),
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

/// The state machine of a pipelined list of commands (`Client::batch`): arbitrary commands pipelined up
/// to a window, one [`Reply`] per command, bodies collected in memory. The
/// adapter drives it as a [`Batch`], then takes the replies with
/// [`CommandBatch::finish`].
#[derive(Debug)]
pub struct CommandBatch {
    queue: core::iter::Enumerate<vec::IntoIter<Command>>,
    window: usize,
    /// Outstanding commands: handle to index.
    index: BTreeMap<Handle, usize>,
    bodies: BTreeMap<Handle, Vec<u8>>,
    replies: Vec<Option<Reply>>,
}

impl CommandBatch {
    /// Sends `commands`, at most `window` outstanding (at least 1).
    pub fn new(commands: Vec<Command>, window: usize) -> CommandBatch {
        CommandBatch {
            replies: vec![None; commands.len()],
            queue: commands.into_iter().enumerate(),
            window: window.max(1),
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
    fn handle_event(&mut self, ev: Event<'_>) -> Result<Option<Handle>, UsageError> {
        let Some(h) = ev.handle() else {
            return match ev {
                Event::Closed => Err(UsageError::Closed),
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
            Event::Rejected { error, .. } => return Err(error),
            _ => return Ok(None),
        };
        self.index.remove(&h);
        self.replies[i] = Some(reply);
        Ok(Some(h))
    }
}

//! Pipelined bulk operations: many RETR / TOP (and the DELEs that follow
//! them) with a bounded window, each message handed to a sink as it
//! completes.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};

use pop3_proto::{Command, ErrResponse, Event, Handle, MsgNum, Response};

use crate::client::{Client, Flow};
use crate::error::Error;

/// What to do with a message once it has been received completely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Leave it on the server.
    Keep,
    /// Send `DELE` for it (committed by QUIT).
    Delete,
}

/// Receives the messages of [`Client::retr_each`] / [`Client::top_each`]
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

/// The reply to one command of a [`Client::batch`].
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

#[derive(Clone, Copy)]
enum Pending {
    Body(u32),
    Dele(u32),
}

impl<S: Read + Write> Client<S> {
    /// Retrieves messages `msgs` (in that order), pipelined: up to
    /// [`Client::window`] RETRs are sent back to back when the server
    /// advertised `PIPELINING` (one at a time otherwise), and each message
    /// goes to `sink` as it arrives. `DELE n` is queued only after
    /// `sink.end(n, ..)` returned [`Disposition::Delete`].
    ///
    /// On a sink error no further RETR or DELE is sent; the replies already
    /// requested are read and discarded, then [`Error::Sink`] is returned
    /// (the session stays usable). On a connection or protocol error the
    /// session is dead: do not QUIT-commit anything you did not fully store.
    pub fn retr_each(
        &mut self,
        msgs: impl IntoIterator<Item = u32>,
        sink: &mut dyn MessageSink,
    ) -> Result<BatchReport, Error> {
        self.body_batch(msgs.into_iter(), None, sink)
    }

    /// Like [`Client::retr_each`] with `TOP n lines` (for example
    /// `lines = 0` for a pipelined header listing).
    pub fn top_each(
        &mut self,
        msgs: impl IntoIterator<Item = u32>,
        lines: u32,
        sink: &mut dyn MessageSink,
    ) -> Result<BatchReport, Error> {
        self.body_batch(msgs.into_iter(), Some(lines), sink)
    }

    /// Retrieves every message of the maildrop (from `STAT`), pipelined.
    pub fn retr_all(&mut self, sink: &mut dyn MessageSink) -> Result<BatchReport, Error> {
        let count = self.stat()?.count;
        self.retr_each(1..=count, sink)
    }

    fn body_batch(
        &mut self,
        mut msgs: impl Iterator<Item = u32>,
        top: Option<u32>,
        sink: &mut dyn MessageSink,
    ) -> Result<BatchReport, Error> {
        self.check_broken()?;
        self.ensure_capabilities()?;
        let mut report = BatchReport::default();
        let mut outstanding: HashMap<Handle, Pending> = HashMap::new();
        // Messages completed with Disposition::Delete, whose DELE is still
        // to be queued (done outside the event callback).
        let mut to_delete: VecDeque<u32> = VecDeque::new();
        let mut sink_error: Option<io::Error> = None;
        let mut exhausted = false;
        loop {
            // Queue DELEs first (they free the server's memory of the
            // message soonest), then RETR/TOP up to the window.
            while sink_error.is_none() && outstanding.len() < self.window {
                if let Some(n) = to_delete.pop_front() {
                    let h = self.enqueue(Command::Dele(msg(n)?))?;
                    outstanding.insert(h, Pending::Dele(n));
                    continue;
                }
                if exhausted {
                    break;
                }
                let Some(n) = msgs.next() else {
                    exhausted = true;
                    break;
                };
                let m = msg(n)?;
                let cmd = match top {
                    Some(lines) => Command::Top(m, lines),
                    None => Command::Retr(m),
                };
                let h = self.enqueue(cmd)?;
                outstanding.insert(h, Pending::Body(n));
            }
            if outstanding.is_empty() {
                break;
            }
            let window = self.window;
            let more = !exhausted;
            self.drive(|ev| {
                let (handle, what) = match ev.handle() {
                    Some(h) => match outstanding.get(&h) {
                        Some(p) => (h, *p),
                        None => return Ok(Flow::Continue),
                    },
                    None => {
                        return match ev {
                            Event::Closed => {
                                Err(Error::Usage(pop3_proto::UsageError::Closed))
                            }
                            _ => Ok(Flow::Continue),
                        }
                    }
                };
                match (ev, what) {
                    (Event::Ok { .. }, Pending::Body(n)) => {
                        if sink_error.is_none() {
                            if let Err(e) = sink.begin(n) {
                                sink_error = Some(e);
                            }
                        }
                        Ok(Flow::Continue)
                    }
                    (Event::BodyChunk { data, .. }, Pending::Body(n)) => {
                        if sink_error.is_none() {
                            if let Err(e) = sink.data(n, data) {
                                sink_error = Some(e);
                            }
                        }
                        Ok(Flow::Continue)
                    }
                    (Event::BodyEnd { octets, .. }, Pending::Body(n)) => {
                        outstanding.remove(&handle);
                        if sink_error.is_some() {
                            return Ok(Flow::Continue);
                        }
                        report.received += 1;
                        report.octets += octets;
                        match sink.end(n, octets) {
                            Ok(Disposition::Delete) => {
                                to_delete.push_back(n);
                                // Return so the DELE is queued now.
                                Ok(Flow::Done)
                            }
                            Ok(Disposition::Keep) => Ok(Flow::Continue),
                            Err(e) => {
                                sink_error = Some(e);
                                Ok(Flow::Continue)
                            }
                        }
                    }
                    (Event::Err { response, .. }, Pending::Body(n)) => {
                        outstanding.remove(&handle);
                        if sink_error.is_none() {
                            if let Err(e) = sink.refused(n, &response) {
                                sink_error = Some(e);
                            }
                        }
                        report.refused.push((n, response));
                        Ok(Flow::Continue)
                    }
                    (Event::Ok { .. }, Pending::Dele(n)) => {
                        outstanding.remove(&handle);
                        report.deleted.push(n);
                        Ok(Flow::Continue)
                    }
                    (Event::Err { response, .. }, Pending::Dele(n)) => {
                        outstanding.remove(&handle);
                        report.dele_failed.push((n, response));
                        Ok(Flow::Continue)
                    }
                    (Event::Rejected { error, .. }, _) => Err(Error::Usage(error)),
                    _ => Ok(Flow::Continue),
                }
                .map(|flow| {
                    // Come back to refill the window once half of it
                    // drained, and when everything was answered.
                    let refill = more && sink_error.is_none() && outstanding.len() * 2 <= window;
                    if outstanding.is_empty() || refill {
                        Flow::Done
                    } else {
                        flow
                    }
                })
            })?;
        }
        if let Some(e) = sink_error {
            return Err(Error::Sink(e));
        }
        Ok(report)
    }

    /// Sends `commands` pipelined (bounded by [`Client::window`]) and
    /// returns one [`Reply`] per command, in order. Bodies are collected
    /// in memory. A command the session state refuses is an
    /// [`Error::Usage`] before anything is sent.
    pub fn batch(&mut self, commands: Vec<Command>) -> Result<Vec<Reply>, Error> {
        self.check_broken()?;
        self.ensure_capabilities()?;
        let total = commands.len();
        let mut replies: Vec<Option<Reply>> = vec![None; total];
        let mut index: HashMap<Handle, usize> = HashMap::new();
        let mut bodies: HashMap<Handle, Vec<u8>> = HashMap::new();
        let mut queue = commands.into_iter().enumerate();
        let mut done = 0;
        while done < total {
            while index.len() < self.window {
                let Some((i, cmd)) = queue.next() else { break };
                let h = self.enqueue(cmd)?;
                index.insert(h, i);
            }
            let window = self.window;
            let mut progressed = 0;
            self.drive(|ev| {
                let Some(h) = ev.handle() else {
                    return match ev {
                        Event::Closed => Err(Error::Usage(pop3_proto::UsageError::Closed)),
                        _ => Ok(Flow::Continue),
                    };
                };
                let Some(&i) = index.get(&h) else {
                    return Ok(Flow::Continue);
                };
                let reply = match ev {
                    Event::Ok {
                        response: Response::BodyStart(_),
                        ..
                    } => {
                        bodies.insert(h, Vec::new());
                        return Ok(Flow::Continue);
                    }
                    Event::BodyChunk { data, .. } => {
                        if let Some(b) = bodies.get_mut(&h) {
                            b.extend_from_slice(data);
                        }
                        return Ok(Flow::Continue);
                    }
                    Event::BodyEnd { .. } => Reply::Body(bodies.remove(&h).unwrap_or_default()),
                    Event::Ok { response, .. } => Reply::Ok(response),
                    Event::Err { response, .. } => Reply::Err(response),
                    Event::AuthCancelled { response, .. } => Reply::Err(response),
                    Event::Rejected { error, .. } => return Err(Error::Usage(error)),
                    _ => return Ok(Flow::Continue),
                };
                index.remove(&h);
                replies[i] = Some(reply);
                progressed += 1;
                // Come back to refill the window once half of it drained.
                if index.is_empty() || progressed * 2 >= window {
                    Ok(Flow::Done)
                } else {
                    Ok(Flow::Continue)
                }
            })?;
            done += progressed;
        }
        Ok(replies.into_iter().map(|r| r.unwrap_or(Reply::Err(ErrResponse::default()))).collect())
    }
}

fn msg(n: u32) -> Result<MsgNum, Error> {
    Ok(MsgNum::try_from(n)?)
}

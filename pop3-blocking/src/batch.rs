//! Pipelined bulk operations: many RETR / TOP (and the DELEs that follow
//! them) with a bounded window, each message handed to a sink as it
//! completes.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};

use pop3_proto::{Command, ErrResponse, Event, Handle, MsgNum, Response};
pub use pop3_tls::{BatchReport, CollectSink, Disposition, MessageSink, Reply};

use crate::client::{Client, Flow};
use crate::error::Error;

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
                            Event::Closed => Err(Error::Usage(pop3_proto::UsageError::Closed)),
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
                            // Discarding: the message is not handed over.
                            Ok(Flow::Continue)
                        } else {
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
        Ok(replies
            .into_iter()
            .map(|r| r.unwrap_or(Reply::Err(ErrResponse::default())))
            .collect())
    }
}

fn msg(n: u32) -> Result<MsgNum, Error> {
    Ok(MsgNum::try_from(n)?)
}

//! Pipelined bulk operations: many RETR / TOP (and the DELEs that follow
//! them), each message handed to a sink as it completes, while the next
//! commands are written and the replies read concurrently.
//!
//! The sink and report types come from `pop3-tls` and are the very ones
//! `pop3-blocking` uses, so code moves between the adapters by adding
//! `.await`.

use std::collections::{HashMap, VecDeque};
use std::io;

use pop3_proto::{Command, ErrResponse, Handle, MsgNum, Pipelining, Response};
use pop3_tls::{BatchReport, Disposition, MessageSink, Reply};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::client::{Client, Next, Reply as CoreReply};
use crate::error::{Error, Result};

#[derive(Clone, Copy)]
enum Pending {
    Body(u32),
    Dele(u32),
}

fn msg(n: u32) -> Result<MsgNum> {
    Ok(MsgNum::try_from(n)?)
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// Retrieves messages `msgs` (in that order), pipelined: up to
    /// [`Client::window`] RETRs are outstanding at once when the server
    /// advertised `PIPELINING` (one at a time otherwise), written while
    /// earlier replies are being read, and each message goes to `sink` as
    /// it arrives. `DELE n` is queued only after `sink.end(n, ..)` returned
    /// [`Disposition::Delete`].
    ///
    /// On a sink error no further RETR or DELE is sent; the replies already
    /// requested are read and discarded, then [`Error::Sink`] is returned
    /// (the session stays usable). On a connection or protocol error the
    /// session is dead: do not QUIT-commit anything you did not fully store.
    ///
    /// Cancel-safe in the session sense: if the future is dropped, the
    /// replies still due are drained by the next call and no DELE that the
    /// sink did not ask for is ever sent.
    pub async fn retr_each<K: MessageSink + ?Sized>(
        &mut self,
        msgs: impl IntoIterator<Item = u32>,
        sink: &mut K,
    ) -> Result<BatchReport> {
        self.body_batch(msgs.into_iter(), None, sink).await
    }

    /// Like [`Client::retr_each`] with `TOP n lines` (for example
    /// `lines = 0` for a pipelined header listing).
    pub async fn top_each<K: MessageSink + ?Sized>(
        &mut self,
        msgs: impl IntoIterator<Item = u32>,
        lines: u32,
        sink: &mut K,
    ) -> Result<BatchReport> {
        self.body_batch(msgs.into_iter(), Some(lines), sink).await
    }

    /// Retrieves every message of the maildrop (from `STAT`), pipelined.
    pub async fn retr_all<K: MessageSink + ?Sized>(&mut self, sink: &mut K) -> Result<BatchReport> {
        let count = self.stat().await?.count;
        self.retr_each(1..=count, sink).await
    }

    async fn ensure_capabilities(&mut self) -> Result<()> {
        if self.core().config().pipelining == Pipelining::Auto {
            // PIPELINING is only known from CAPA; ask once.
            self.learn_capabilities().await?;
        }
        Ok(())
    }

    async fn body_batch<K: MessageSink + ?Sized>(
        &mut self,
        mut msgs: impl Iterator<Item = u32>,
        top: Option<u32>,
        sink: &mut K,
    ) -> Result<BatchReport> {
        self.ensure_capabilities().await?;
        self.begin()?;
        let mut report = BatchReport::default();
        let mut outstanding: HashMap<Handle, Pending> = HashMap::new();
        // Messages completed with Disposition::Delete, whose DELE is still
        // to be queued.
        let mut to_delete: VecDeque<u32> = VecDeque::new();
        let mut sink_error: Option<io::Error> = None;
        let mut exhausted = false;
        loop {
            // Queue DELEs first (they free the server's memory of the
            // message soonest), then RETR/TOP up to the window.
            while sink_error.is_none() && outstanding.len() < self.st.window {
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
            let (handle, reply) = match self.next_event()? {
                Next::Chunk(h, data) => {
                    if let (Some(Pending::Body(n)), None) = (outstanding.get(&h), &sink_error) {
                        if let Err(e) = sink.data(*n, data) {
                            sink_error = Some(e);
                        }
                    }
                    continue;
                }
                Next::Reply(h, reply) => (h, reply),
                Next::NeedIo => {
                    self.pump().await?;
                    continue;
                }
                _ => continue,
            };
            let Some(&what) = outstanding.get(&handle) else {
                continue;
            };
            if reply.is_terminal() {
                outstanding.remove(&handle);
                self.settle(handle);
            }
            match (reply, what) {
                (CoreReply::Ok(_), Pending::Body(n)) if sink_error.is_none() => {
                    if let Err(e) = sink.begin(n) {
                        sink_error = Some(e);
                    }
                }
                (CoreReply::BodyEnd(octets), Pending::Body(n)) => {
                    if sink_error.is_some() {
                        continue;
                    }
                    report.received += 1;
                    report.octets += octets;
                    match sink.end(n, octets) {
                        Ok(Disposition::Delete) => to_delete.push_back(n),
                        Ok(Disposition::Keep) => {}
                        Err(e) => sink_error = Some(e),
                    }
                }
                (CoreReply::Err(_, response), Pending::Body(n)) => {
                    if sink_error.is_none() {
                        if let Err(e) = sink.refused(n, &response) {
                            sink_error = Some(e);
                        }
                    }
                    report.refused.push((n, response));
                }
                (CoreReply::Ok(_), Pending::Dele(n)) => report.deleted.push(n),
                (CoreReply::Err(_, response), Pending::Dele(n)) => {
                    report.dele_failed.push((n, response))
                }
                (CoreReply::Rejected(error), _) => return Err(Error::Usage(error)),
                _ => {}
            }
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
    pub async fn batch(&mut self, commands: Vec<Command>) -> Result<Vec<Reply>> {
        self.ensure_capabilities().await?;
        self.begin()?;
        let total = commands.len();
        let mut replies: Vec<Option<Reply>> = vec![None; total];
        let mut index: HashMap<Handle, usize> = HashMap::new();
        let mut bodies: HashMap<Handle, Vec<u8>> = HashMap::new();
        let mut queue = commands.into_iter().enumerate();
        let mut done = 0;
        while done < total {
            while index.len() < self.st.window {
                let Some((i, cmd)) = queue.next() else { break };
                let h = self.enqueue(cmd)?;
                index.insert(h, i);
            }
            let (h, reply) = match self.next_event()? {
                Next::Chunk(h, data) => {
                    if let Some(b) = bodies.get_mut(&h) {
                        b.extend_from_slice(data);
                    }
                    continue;
                }
                Next::Reply(h, reply) => (h, reply),
                Next::NeedIo => {
                    self.pump().await?;
                    continue;
                }
                _ => continue,
            };
            let Some(&i) = index.get(&h) else {
                continue;
            };
            let reply = match reply {
                CoreReply::Ok(Response::BodyStart(_)) => {
                    bodies.insert(h, Vec::new());
                    continue;
                }
                CoreReply::Continuation => continue,
                CoreReply::BodyEnd(_) => Reply::Body(bodies.remove(&h).unwrap_or_default()),
                CoreReply::Ok(response) => Reply::Ok(response),
                CoreReply::Err(_, response) | CoreReply::AuthCancelled(_, response) => {
                    Reply::Err(response)
                }
                CoreReply::Rejected(error) => return Err(Error::Usage(error)),
            };
            index.remove(&h);
            self.settle(h);
            replies[i] = Some(reply);
            done += 1;
        }
        Ok(replies
            .into_iter()
            .map(|r| r.unwrap_or(Reply::Err(ErrResponse::default())))
            .collect())
    }
}

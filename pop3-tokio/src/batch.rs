//! Pipelined bulk operations: many RETR / TOP (and the DELEs that follow
//! them), each message handed to a sink as it completes, while the next
//! commands are written and the replies read concurrently.
//!
//! The sink and report types, and the state machines that decide what to
//! send and what each reply means ([`RetrBatch`], [`CommandBatch`]), come
//! from `pop3-adapter` and are the very ones `pop3-blocking` uses; this file
//! only drives them. [`AsyncMessageSink`] is the asynchronous flavour of
//! the sink: its calls are awaited *before* the state machine sees the
//! event, and their results staged in a synchronous relay sink, so the
//! machine (and its durable-before-DELE rule) is unchanged.

use std::future::Future;
use std::io;

use pop3_adapter::{
    Batch, BatchError, BatchReport, CommandBatch, Disposition, MessageSink, Reply, RetrBatch,
};
use pop3_proto::{Command, ErrResponse, Event, Handle, Pipelining};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::client::Client;
use crate::error::Result;

/// The asynchronous [`MessageSink`]: receives the messages of
/// [`Client::retr_each_async`] / [`Client::top_each_async`] as they
/// arrive, and may `.await` (tokio file I/O, `fsync`, a database commit)
/// without blocking the runtime thread, while the pipeline of RETRs stays
/// full.
///
/// For a message `n` the calls are `begin(n)`, any number of `data(n, ..)`,
/// then `end(n, octets)` once the terminating line arrived. `DELE n` is
/// sent only after the future of `end` completed with
/// [`Disposition::Delete`]: await your durable write (and its `fsync`)
/// inside `end`. A message cut by the connection never reaches `end`.
/// After an error of any call no more calls are made, no more RETR or
/// DELE is sent, and the batch returns [`Error::Sink`](crate::Error::Sink).
///
/// The futures must be `Send` so that a batch can run in a spawned task.
///
/// ```no_run
/// use pop3_tokio::{AsyncMessageSink, Disposition};
/// use tokio::io::AsyncWriteExt;
///
/// /// Each message to `msg-N.eml`, synced before its DELE.
/// struct Files {
///     file: Option<tokio::fs::File>,
/// }
///
/// impl AsyncMessageSink for Files {
///     async fn begin(&mut self, n: u32) -> std::io::Result<()> {
///         self.file = Some(tokio::fs::File::create(format!("msg-{n}.eml.tmp")).await?);
///         Ok(())
///     }
///     async fn data(&mut self, _: u32, chunk: &[u8]) -> std::io::Result<()> {
///         self.file.as_mut().expect("begun").write_all(chunk).await
///     }
///     async fn end(&mut self, n: u32, _: u64) -> std::io::Result<Disposition> {
///         let file = self.file.take().expect("begun");
///         file.sync_all().await?;
///         tokio::fs::rename(format!("msg-{n}.eml.tmp"), format!("msg-{n}.eml")).await?;
///         Ok(Disposition::Delete)
///     }
/// }
///
/// # async fn run(client: &mut pop3_tokio::TcpClient) -> pop3_tokio::Result<()> {
/// let list = client.list().await?;
/// let mut sink = Files { file: None };
/// client.retr_each_async(list.iter().map(|e| e.number), &mut sink).await?;
/// client.quit().await?; // commits the DELEs
/// # Ok(())
/// # }
/// ```
pub trait AsyncMessageSink {
    /// The server accepted RETR/TOP for message `n`; its body follows.
    fn begin(&mut self, n: u32) -> impl Future<Output = io::Result<()>> + Send {
        let _ = n;
        async { Ok(()) }
    }

    /// A piece of message `n` (dot-unstuffed, line endings as sent).
    fn data(&mut self, n: u32, chunk: &[u8]) -> impl Future<Output = io::Result<()>> + Send;

    /// Message `n` is complete (`octets` bytes); store it durably, then
    /// decide whether to delete it.
    fn end(&mut self, n: u32, octets: u64) -> impl Future<Output = io::Result<Disposition>> + Send;

    /// The server answered `-ERR` for message `n`; the batch continues
    /// (it is also listed in [`BatchReport::refused`]).
    fn refused(
        &mut self,
        n: u32,
        response: &ErrResponse,
    ) -> impl Future<Output = io::Result<()>> + Send {
        let _ = (n, response);
        async { Ok(()) }
    }
}

/// The synchronous sink the batch machine calls: it hands back the result
/// the driver staged by awaiting the [`AsyncMessageSink`] for the same
/// event.
#[derive(Default)]
struct Relay {
    unit: Option<io::Result<()>>,
    end: Option<io::Result<Disposition>>,
}

impl Relay {
    fn unit(&mut self) -> io::Result<()> {
        self.unit.take().unwrap_or(Ok(()))
    }
}

impl MessageSink for Relay {
    fn begin(&mut self, _: u32) -> io::Result<()> {
        self.unit()
    }
    fn data(&mut self, _: u32, _: &[u8]) -> io::Result<()> {
        self.unit()
    }
    fn end(&mut self, _: u32, _: u64) -> io::Result<Disposition> {
        // Nothing staged cannot happen; if it did, keeping is the safe side.
        self.end.take().unwrap_or(Ok(Disposition::Keep))
    }
    fn refused(&mut self, _: u32, _: &ErrResponse) -> io::Result<()> {
        self.unit()
    }
}

/// The RETR/TOP handles of an async batch and their message numbers.
struct Requested {
    bodies: Vec<(Handle, u32)>,
    /// Set after the first sink error: no further sink call.
    failed: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// Retrieves messages `msgs` (in that order), pipelined: up to
    /// [`Client::window`] RETRs are outstanding at once when the server
    /// advertised `PIPELINING` (one at a time otherwise), written while
    /// earlier replies are being read, and each message goes to `sink` as
    /// it arrives. `DELE n` is queued only after `sink.end(n, ..)` returned
    /// [`Disposition::Delete`](crate::Disposition::Delete).
    ///
    /// The sink is synchronous: its calls run on the runtime thread. To
    /// write files with tokio (or anything else you must `.await`), use
    /// [`Client::retr_each_async`] with an [`AsyncMessageSink`].
    ///
    /// On a sink error no further RETR or DELE is sent; the replies already
    /// requested are read and discarded, then [`Error::Sink`](crate::Error::Sink) is returned
    /// (the session stays usable). On a connection or protocol error the
    /// session is dead: do not QUIT-commit anything you did not fully store.
    /// [`Client::retr_each_report`] also says which message failed and
    /// which DELEs were acknowledged.
    ///
    /// The message numbers are collected before the returned future
    /// starts (4 bytes each), so the future never holds your iterator: it
    /// is `Send` whatever the iterator borrows (`list.iter().map(|e|
    /// e.number)` included), and can run in `tokio::spawn`.
    ///
    /// Cancel-safe in the session sense: if the future is dropped, the
    /// replies still due are drained by the next call and no DELE that the
    /// sink did not ask for is ever sent.
    ///
    /// ```no_run
    /// use pop3_tokio::{CollectSink, Disposition};
    ///
    /// # async fn run(client: &mut pop3_tokio::TcpClient) -> pop3_tokio::Result<()> {
    /// let list = client.list().await?;
    /// let mut sink = CollectSink::new(|n, message: Vec<u8>| {
    ///     println!("message {n}: {} bytes", message.len());
    ///     Ok(Disposition::Keep)
    /// });
    /// let report = client.retr_each(list.iter().map(|e| e.number), &mut sink).await?;
    /// assert_eq!(report.received as usize, list.len());
    /// # Ok(())
    /// # }
    /// ```
    pub fn retr_each<'a, K: MessageSink + ?Sized>(
        &'a mut self,
        msgs: impl IntoIterator<Item = u32>,
        sink: &'a mut K,
    ) -> impl Future<Output = Result<BatchReport>> + 'a {
        let report = self.retr_each_report(msgs, sink);
        async move { Ok(report.await?) }
    }

    /// [`Client::retr_each`], with a failure that names the message it
    /// stopped at and keeps the report so far ([`BatchError`]):
    /// `report.deleted` lists the DELEs the server acknowledged.
    pub fn retr_each_report<'a, K: MessageSink + ?Sized>(
        &'a mut self,
        msgs: impl IntoIterator<Item = u32>,
        sink: &'a mut K,
    ) -> impl Future<Output = Result<BatchReport, BatchError>> + 'a {
        let msgs: Vec<u32> = msgs.into_iter().collect();
        async move {
            let window = self.st.window;
            self.body_batch(RetrBatch::new(msgs.into_iter(), None, window, sink))
                .await
        }
    }

    /// Like [`Client::retr_each`] with `TOP n lines` (for example
    /// `lines = 0` for a pipelined header listing).
    pub fn top_each<'a, K: MessageSink + ?Sized>(
        &'a mut self,
        msgs: impl IntoIterator<Item = u32>,
        lines: u32,
        sink: &'a mut K,
    ) -> impl Future<Output = Result<BatchReport>> + 'a {
        let report = self.top_each_report(msgs, lines, sink);
        async move { Ok(report.await?) }
    }

    /// [`Client::top_each`] with a [`BatchError`] on failure (see
    /// [`Client::retr_each_report`]).
    pub fn top_each_report<'a, K: MessageSink + ?Sized>(
        &'a mut self,
        msgs: impl IntoIterator<Item = u32>,
        lines: u32,
        sink: &'a mut K,
    ) -> impl Future<Output = Result<BatchReport, BatchError>> + 'a {
        let msgs: Vec<u32> = msgs.into_iter().collect();
        async move {
            let window = self.st.window;
            self.body_batch(RetrBatch::new(msgs.into_iter(), Some(lines), window, sink))
                .await
        }
    }

    /// Retrieves every message of the maildrop (from `STAT`), pipelined.
    pub async fn retr_all<K: MessageSink + ?Sized>(&mut self, sink: &mut K) -> Result<BatchReport> {
        let count = self.stat().await?.count;
        self.retr_each(1..=count, sink).await
    }

    /// [`Client::retr_each`] with an [`AsyncMessageSink`]: the same
    /// pipeline (up to [`Client::window`] RETRs outstanding), and every
    /// sink call awaited before the next reply is looked at, so `end` can
    /// await a durable write before its `DELE` is queued. While the sink
    /// awaits, the commands already sent wait in the socket.
    pub fn retr_each_async<'a, A: AsyncMessageSink + ?Sized>(
        &'a mut self,
        msgs: impl IntoIterator<Item = u32>,
        sink: &'a mut A,
    ) -> impl Future<Output = Result<BatchReport>> + 'a {
        let report = self.retr_each_async_report(msgs, sink);
        async move { Ok(report.await?) }
    }

    /// [`Client::retr_each_async`] with a [`BatchError`] on failure (see
    /// [`Client::retr_each_report`]).
    pub fn retr_each_async_report<'a, A: AsyncMessageSink + ?Sized>(
        &'a mut self,
        msgs: impl IntoIterator<Item = u32>,
        sink: &'a mut A,
    ) -> impl Future<Output = Result<BatchReport, BatchError>> + 'a {
        let msgs: Vec<u32> = msgs.into_iter().collect();
        self.async_body_batch(msgs, None, sink)
    }

    /// [`Client::top_each`] with an [`AsyncMessageSink`].
    pub fn top_each_async<'a, A: AsyncMessageSink + ?Sized>(
        &'a mut self,
        msgs: impl IntoIterator<Item = u32>,
        lines: u32,
        sink: &'a mut A,
    ) -> impl Future<Output = Result<BatchReport>> + 'a {
        let msgs: Vec<u32> = msgs.into_iter().collect();
        let report = self.async_body_batch(msgs, Some(lines), sink);
        async move { Ok(report.await?) }
    }

    async fn async_body_batch<A: AsyncMessageSink + ?Sized>(
        &mut self,
        msgs: Vec<u32>,
        top: Option<u32>,
        sink: &mut A,
    ) -> Result<BatchReport, BatchError> {
        let window = self.st.window;
        let mut relay = Relay::default();
        let mut batch = RetrBatch::new(msgs.into_iter(), top, window, &mut relay);
        match self.run_async_batch(&mut batch, sink).await {
            Ok(()) => batch.finish(),
            Err(e) => Err(batch.fail(e)),
        }
    }

    /// [`Client::run_batch`] for an async sink: before the machine sees an
    /// event of one of its RETR/TOP commands, the matching sink call is
    /// awaited and its result staged in the relay.
    async fn run_async_batch<I: Iterator<Item = u32>, A: AsyncMessageSink + ?Sized>(
        &mut self,
        batch: &mut RetrBatch<'_, I, Relay>,
        sink: &mut A,
    ) -> Result<()> {
        self.ensure_capabilities().await?;
        self.begin()?;
        let mut req = Requested {
            bodies: Vec::new(),
            failed: false,
        };
        loop {
            batch.fill(&mut |cmd| {
                let n = match &cmd {
                    Command::Retr(m) | Command::Top(m, _) => Some(m.get()),
                    _ => None,
                };
                let h = self.enqueue(cmd)?;
                if let Some(n) = n {
                    req.bodies.push((h, n));
                }
                Ok::<_, crate::Error>(h)
            })?;
            if batch.is_finished() {
                return Ok(());
            }
            match self.d.session.poll_event() {
                Ok(Some(ev)) => {
                    let body = ev
                        .handle()
                        .and_then(|h| req.bodies.iter().position(|(b, _)| *b == h));
                    if let Some(i) = body {
                        let n = req.bodies[i].1;
                        let relay = batch.sink_mut();
                        if !req.failed {
                            match &ev {
                                Event::Ok { .. } => relay.unit = Some(sink.begin(n).await),
                                Event::BodyChunk { data, .. } => {
                                    relay.unit = Some(sink.data(n, data).await)
                                }
                                Event::BodyEnd { octets, .. } => {
                                    let r = sink.end(n, *octets).await;
                                    req.failed = r.is_err();
                                    relay.end = Some(r);
                                }
                                Event::Err { response, .. } => {
                                    relay.unit = Some(sink.refused(n, response).await)
                                }
                                _ => {}
                            }
                            req.failed |= matches!(relay.unit, Some(Err(_)));
                        }
                        if !matches!(ev, Event::Ok { .. } | Event::BodyChunk { .. }) {
                            req.bodies.swap_remove(i);
                        }
                    }
                    let settled = batch.handle_event(ev);
                    let relay = batch.sink_mut();
                    relay.unit = None;
                    relay.end = None;
                    if let Some(h) = settled? {
                        self.settle(h);
                    }
                }
                Ok(None) => self.pump().await?,
                Err(e) => return Err(e.into()),
            }
        }
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
        mut batch: RetrBatch<'_, impl Iterator<Item = u32>, K>,
    ) -> Result<BatchReport, BatchError> {
        match self.run_batch(&mut batch).await {
            Ok(()) => batch.finish(),
            Err(e) => Err(batch.fail(e)),
        }
    }

    /// Sends `commands` pipelined (bounded by [`Client::window`]) and
    /// returns one [`Reply`] per command, in order. Bodies are collected
    /// in memory. A command the session state refuses is an
    /// [`Error::Usage`](crate::Error::Usage) before anything is sent.
    pub async fn batch(&mut self, commands: Vec<Command>) -> Result<Vec<Reply>> {
        let mut batch = CommandBatch::new(commands, self.st.window);
        self.run_batch(&mut batch).await?;
        Ok(batch.finish())
    }

    /// The loop around a batch state machine: the window is refilled
    /// before every event, and the driver writes while it reads.
    async fn run_batch(&mut self, batch: &mut impl Batch) -> Result<()> {
        self.ensure_capabilities().await?;
        self.begin()?;
        loop {
            batch.fill(&mut |cmd| self.enqueue(cmd))?;
            if batch.is_finished() {
                self.d.idle();
                return Ok(());
            }
            match self.d.session.poll_event() {
                Ok(Some(ev)) => {
                    if let Some(h) = batch.handle_event(ev)? {
                        self.settle(h);
                    }
                }
                Ok(None) => self.pump().await?,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

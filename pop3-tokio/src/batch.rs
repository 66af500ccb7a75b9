//! Pipelined bulk operations: many RETR / TOP (and the DELEs that follow
//! them), each message handed to a sink as it completes, while the next
//! commands are written and the replies read concurrently.
//!
//! The sink and report types, and the state machines that decide what to
//! send and what each reply means ([`RetrBatch`], [`CommandBatch`]), come
//! from `pop3-adapter` and are the very ones `pop3-blocking` uses; this file
//! only drives them.

use pop3_adapter::{Batch, BatchError, BatchReport, CommandBatch, MessageSink, Reply, RetrBatch};
use pop3_proto::{Command, Pipelining};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::client::Client;
use crate::error::Result;

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// Retrieves messages `msgs` (in that order), pipelined: up to
    /// [`Client::window`] RETRs are outstanding at once when the server
    /// advertised `PIPELINING` (one at a time otherwise), written while
    /// earlier replies are being read, and each message goes to `sink` as
    /// it arrives. `DELE n` is queued only after `sink.end(n, ..)` returned
    /// [`Disposition::Delete`](crate::Disposition::Delete).
    ///
    /// On a sink error no further RETR or DELE is sent; the replies already
    /// requested are read and discarded, then [`Error::Sink`](crate::Error::Sink) is returned
    /// (the session stays usable). On a connection or protocol error the
    /// session is dead: do not QUIT-commit anything you did not fully store.
    /// [`Client::retr_each_report`] also says which message failed and
    /// which DELEs were acknowledged.
    ///
    /// Cancel-safe in the session sense: if the future is dropped, the
    /// replies still due are drained by the next call and no DELE that the
    /// sink did not ask for is ever sent.
    pub async fn retr_each<K: MessageSink + ?Sized>(
        &mut self,
        msgs: impl IntoIterator<Item = u32>,
        sink: &mut K,
    ) -> Result<BatchReport> {
        Ok(self.retr_each_report(msgs, sink).await?)
    }

    /// [`Client::retr_each`], with a failure that names the message it
    /// stopped at and keeps the report so far ([`BatchError`]):
    /// `report.deleted` lists the DELEs the server acknowledged.
    pub async fn retr_each_report<K: MessageSink + ?Sized>(
        &mut self,
        msgs: impl IntoIterator<Item = u32>,
        sink: &mut K,
    ) -> Result<BatchReport, BatchError> {
        let window = self.st.window;
        self.body_batch(RetrBatch::new(msgs.into_iter(), None, window, sink))
            .await
    }

    /// Like [`Client::retr_each`] with `TOP n lines` (for example
    /// `lines = 0` for a pipelined header listing).
    pub async fn top_each<K: MessageSink + ?Sized>(
        &mut self,
        msgs: impl IntoIterator<Item = u32>,
        lines: u32,
        sink: &mut K,
    ) -> Result<BatchReport> {
        Ok(self.top_each_report(msgs, lines, sink).await?)
    }

    /// [`Client::top_each`] with a [`BatchError`] on failure (see
    /// [`Client::retr_each_report`]).
    pub async fn top_each_report<K: MessageSink + ?Sized>(
        &mut self,
        msgs: impl IntoIterator<Item = u32>,
        lines: u32,
        sink: &mut K,
    ) -> Result<BatchReport, BatchError> {
        let window = self.st.window;
        self.body_batch(RetrBatch::new(msgs.into_iter(), Some(lines), window, sink))
            .await
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

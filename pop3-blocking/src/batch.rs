//! Pipelined bulk operations: many RETR / TOP (and the DELEs that follow
//! them) with a bounded window, each message handed to a sink as it
//! completes. What to send and what each reply means is decided by the
//! shared state machines [`RetrBatch`] and [`CommandBatch`] (`pop3-adapter`);
//! this file only drives them.

use std::io::{Read, Write};

use pop3_adapter::{Batch, BatchError, CommandBatch, Error, RetrBatch};
pub use pop3_adapter::{BatchReport, CollectSink, Disposition, MessageSink, Reply};
use pop3_proto::Command;

use crate::client::{Client, Flow};

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
    /// [`Client::retr_each_report`] also says which message failed and
    /// which DELEs were acknowledged.
    ///
    /// ```no_run
    /// use pop3_blocking::{CollectSink, Disposition};
    ///
    /// # fn run(client: &mut pop3_blocking::TcpClient) -> Result<(), pop3_blocking::Error> {
    /// let list = client.list()?;
    /// let mut sink = CollectSink::new(|n, message: Vec<u8>| {
    ///     std::fs::write(format!("msg-{n}.eml"), &message)?; // (sync it for real)
    ///     Ok(Disposition::Delete) // DELE n is sent only now
    /// });
    /// let report = client.retr_each(list.iter().map(|e| e.number), &mut sink)?;
    /// println!("{} messages, {} deleted", report.received, report.deleted.len());
    /// client.quit()?; // commits the DELEs
    /// # Ok(())
    /// # }
    /// ```
    pub fn retr_each(
        &mut self,
        msgs: impl IntoIterator<Item = u32>,
        sink: &mut dyn MessageSink,
    ) -> Result<BatchReport, Error> {
        Ok(self.retr_each_report(msgs, sink)?)
    }

    /// [`Client::retr_each`], with a failure that names the message it
    /// stopped at and keeps the report so far ([`BatchError`]):
    /// `report.deleted` lists the DELEs the server acknowledged.
    pub fn retr_each_report(
        &mut self,
        msgs: impl IntoIterator<Item = u32>,
        sink: &mut dyn MessageSink,
    ) -> Result<BatchReport, BatchError> {
        let window = self.window;
        self.body_batch(RetrBatch::new(msgs.into_iter(), None, window, sink))
    }

    /// Like [`Client::retr_each`] with `TOP n lines` (for example
    /// `lines = 0` for a pipelined header listing).
    pub fn top_each(
        &mut self,
        msgs: impl IntoIterator<Item = u32>,
        lines: u32,
        sink: &mut dyn MessageSink,
    ) -> Result<BatchReport, Error> {
        Ok(self.top_each_report(msgs, lines, sink)?)
    }

    /// [`Client::top_each`] with a [`BatchError`] on failure (see
    /// [`Client::retr_each_report`]).
    pub fn top_each_report(
        &mut self,
        msgs: impl IntoIterator<Item = u32>,
        lines: u32,
        sink: &mut dyn MessageSink,
    ) -> Result<BatchReport, BatchError> {
        let window = self.window;
        self.body_batch(RetrBatch::new(msgs.into_iter(), Some(lines), window, sink))
    }

    /// Retrieves every message of the maildrop (from `STAT`), pipelined.
    pub fn retr_all(&mut self, sink: &mut dyn MessageSink) -> Result<BatchReport, Error> {
        let count = self.stat()?.count;
        self.retr_each(1..=count, sink)
    }

    fn body_batch(
        &mut self,
        mut batch: RetrBatch<'_, impl Iterator<Item = u32>, dyn MessageSink + '_>,
    ) -> Result<BatchReport, BatchError> {
        match self.run_batch(&mut batch) {
            Ok(()) => batch.finish(),
            Err(e) => Err(batch.fail(e)),
        }
    }

    /// Sends `commands` pipelined (bounded by [`Client::window`]) and
    /// returns one [`Reply`] per command, in order. Bodies are collected
    /// in memory. A command the session state refuses is an
    /// [`Error::Usage`] before anything is sent.
    pub fn batch(&mut self, commands: Vec<Command>) -> Result<Vec<Reply>, Error> {
        let mut batch = CommandBatch::new(commands, self.window);
        self.run_batch(&mut batch)?;
        Ok(batch.finish())
    }

    /// The loop around a batch state machine: fill the window, write, then
    /// read and hand events over until the machine wants to send more
    /// (this adapter never reads and writes at once), until it is finished.
    fn run_batch(&mut self, batch: &mut impl Batch) -> Result<(), Error> {
        self.check_broken()?;
        self.ensure_capabilities()?;
        loop {
            batch.fill(&mut |cmd| self.enqueue(cmd))?;
            if batch.is_finished() {
                self.idle();
                return Ok(());
            }
            self.drive(|ev| {
                batch.handle_event(ev)?;
                Ok(if batch.wants_fill() {
                    Flow::Done
                } else {
                    Flow::Continue
                })
            })?;
        }
    }
}

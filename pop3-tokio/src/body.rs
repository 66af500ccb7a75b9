//! [`Body`]: a RETR/TOP body being received, consumed chunk by chunk.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use pop3_proto::session::{Action, Output};
use pop3_proto::Status;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::client::{internal, Client};
use crate::error::{Error, Result};

/// The body of a RETR or TOP whose `+OK` has arrived, read from the
/// connection as it is consumed (memory stays flat for any message size).
///
/// Three ways to consume it:
///
/// * [`Body::next_chunk`]: a lending API, `Option<Result<&[u8]>>` per
///   chunk, `None` once the terminating line arrived;
/// * `AsyncRead` (for `tokio::io::copy`, `BufReader`, ...): end of file
///   means the message is complete; a connection cut mid-message (or a
///   body that outlives the response timeout) is an error, never a short
///   read;
/// * `futures_core::Stream` of `Result<Bytes>`.
///
/// Chunks are dot-unstuffed, with line endings exactly as the server sent
/// them. Dropping a `Body` before its end is fine: the session layer
/// abandons the rest, which is read and discarded by the client's next
/// call.
pub struct Body<'c, S> {
    client: &'c mut Client<S>,
    status: Status,
    end: Option<u64>,
    failed: bool,
    /// The current chunk (copied out of the layer's buffer), and how much
    /// of it was handed out.
    chunk: Vec<u8>,
    pos: usize,
}

impl<S> std::fmt::Debug for Body<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("status", &self.status)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl<'c, S: AsyncRead + AsyncWrite + Unpin> Body<'c, S> {
    pub(crate) fn new(client: &'c mut Client<S>, status: Status) -> Self {
        Body {
            client,
            status,
            end: None,
            failed: false,
            chunk: Vec::new(),
            pos: 0,
        }
    }

    /// The `+OK` status line of the RETR/TOP.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Total body bytes, once the end was reached.
    pub fn octets(&self) -> Option<u64> {
        self.end
    }

    /// Whether the whole body arrived (terminating line seen, no error).
    pub fn is_complete(&self) -> bool {
        self.end.is_some() && !self.failed
    }

    /// Fills `self.chunk` with the next piece: `Ready(Ok(true))`, or
    /// `Ready(Ok(false))` at the end.
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool>> {
        if self.failed || self.end.is_some() {
            return Poll::Ready(Ok(false));
        }
        self.chunk.clear();
        self.pos = 0;
        loop {
            match self.client.d.session.poll() {
                Ok(Action::Body(data)) => {
                    self.chunk.extend_from_slice(data);
                    return Poll::Ready(Ok(true));
                }
                Ok(Action::Done(Output::Body { octets })) => {
                    self.end = Some(octets);
                    self.client.d.idle();
                    return Poll::Ready(Ok(false));
                }
                Ok(Action::BodyStart(_)) => {}
                Ok(Action::Done(_) | Action::StartTls) => {
                    self.failed = true;
                    return Poll::Ready(Err(internal("unexpected output in a body")));
                }
                Ok(_) => match self.client.poll_pump(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => {
                        self.failed = true;
                        return Poll::Ready(Err(e));
                    }
                },
                Err(e) => {
                    self.failed = true;
                    return Poll::Ready(Err(e.into()));
                }
            }
        }
    }

    /// The next chunk, `None` once the body is complete. Cancel-safe: a
    /// dropped call loses nothing (the chunk is kept for the next call).
    pub async fn next_chunk(&mut self) -> Option<Result<&[u8]>> {
        if self.pos >= self.chunk.len() {
            match std::future::poll_fn(|cx| self.poll_step(cx)).await {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => return Some(Err(e)),
            }
        }
        let from = self.pos;
        self.pos = self.chunk.len();
        Some(Ok(&self.chunk[from..]))
    }

    /// Writes the whole body into `w`; returns the number of bytes. A
    /// failing `w` does not stop the reading: the rest is discarded so the
    /// session stays in sync, then [`Error::Sink`].
    pub async fn write_to<W: AsyncWrite + Unpin + ?Sized>(mut self, w: &mut W) -> Result<u64> {
        let mut sink_error: Option<io::Error> = None;
        if self.pos < self.chunk.len() {
            if let Err(e) = w.write_all(&self.chunk[self.pos..]).await {
                sink_error = Some(e);
            }
            self.pos = self.chunk.len();
        }
        // Chunks go from the layer's buffer straight to `w` (no copy).
        while !self.failed && self.end.is_none() {
            match self.client.d.session.poll() {
                Ok(Action::Body(data)) => {
                    if sink_error.is_none() {
                        if let Err(e) = w.write_all(data).await {
                            sink_error = Some(e);
                        }
                    }
                }
                Ok(Action::Done(Output::Body { octets })) => {
                    self.end = Some(octets);
                    self.client.d.idle();
                }
                Ok(Action::BodyStart(_)) => {}
                Ok(Action::Done(_) | Action::StartTls) => {
                    self.failed = true;
                    return Err(internal("unexpected output in a body"));
                }
                Ok(_) => {
                    if let Err(e) = self.client.pump().await {
                        self.failed = true;
                        return Err(e);
                    }
                }
                Err(e) => {
                    self.failed = true;
                    return Err(e.into());
                }
            }
        }
        if let Some(e) = sink_error {
            return Err(Error::Sink(e));
        }
        w.flush().await.map_err(Error::Sink)?;
        Ok(self.end.unwrap_or(0))
    }

    /// The whole body in memory.
    pub async fn to_vec(self) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.write_to(&mut v).await?;
        Ok(v)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Body<'_, S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos >= this.chunk.len() {
            match this.poll_step(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(false)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(true)) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
            }
        }
        let n = buf.remaining().min(this.chunk.len() - this.pos);
        buf.put_slice(&this.chunk[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> futures_core::Stream for Body<'_, S> {
    type Item = Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.pos < this.chunk.len() {
            let b = Bytes::copy_from_slice(&this.chunk[this.pos..]);
            this.pos = this.chunk.len();
            return Poll::Ready(Some(Ok(b)));
        }
        match this.poll_step(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(true)) => {
                this.pos = this.chunk.len();
                Poll::Ready(Some(Ok(Bytes::copy_from_slice(&this.chunk))))
            }
            Poll::Ready(Ok(false)) => Poll::Ready(None),
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
        }
    }
}

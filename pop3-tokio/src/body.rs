//! [`Body`]: a RETR/TOP body being received, consumed chunk by chunk.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use pop3_proto::{Event, Handle, Status};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::client::{Client, Next, Reply};
use crate::error::{Error, Result};

/// The body of a RETR or TOP whose `+OK` has arrived, read from the
/// connection as it is consumed (memory stays flat for any message size).
///
/// Three ways to consume it:
///
/// * [`Body::next_chunk`]: a lending API, `Option<Result<&[u8]>>` per
///   chunk, `None` once the terminating line arrived;
/// * `AsyncRead` (for `tokio::io::copy`, `BufReader`, ...): end of file
///   means the message is complete; a connection cut mid-message is an
///   error, never a short read;
/// * `futures_core::Stream` of `Result<Bytes>`.
///
/// Chunks are dot-unstuffed, with line endings exactly as the server sent
/// them. Dropping a `Body` before its end is fine: the rest of the message
/// is read and discarded by the client's next call.
pub struct Body<'c, S> {
    client: &'c mut Client<S>,
    handle: Handle,
    status: Status,
    /// Body octets once the end was seen.
    end: Option<u64>,
    /// Set after an error was returned (the body cannot continue).
    failed: bool,
    /// What did not fit into the caller's `ReadBuf`.
    spill: Vec<u8>,
    spill_pos: usize,
}

impl<S> std::fmt::Debug for Body<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("handle", &self.handle)
            .field("status", &self.status)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

/// Makes progress until the next chunk of `handle` is ready in the core
/// (`Ready(Ok(true))`, not taken yet: see [`take_chunk`]) or the body ended
/// (`Ready(Ok(false))`). Other events are handled here.
///
/// Replies arrive in order, so once the body's `+OK` was seen every body
/// chunk up to its end is this body's.
fn poll_chunk_ready<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut Client<S>,
    handle: Handle,
    end: &mut Option<u64>,
    cx: &mut Context<'_>,
) -> Poll<Result<bool>> {
    if end.is_some() {
        return Poll::Ready(Ok(false));
    }
    loop {
        match client.d.core.has_event() {
            Ok(true) if client.d.core.has_body_chunk() => return Poll::Ready(Ok(true)),
            // Not a chunk (or a protocol error, which `next_event` reports).
            Ok(true) | Err(_) => match client.next_event()? {
                Next::Reply(h, Reply::BodyEnd(octets)) if h == handle => {
                    client.settle(h);
                    *end = Some(octets);
                    return Poll::Ready(Ok(false));
                }
                Next::Reply(h, reply) if reply.is_terminal() => {
                    client.settle(h);
                    if h == handle {
                        *end = Some(0);
                        reply.into_result()?;
                        return Poll::Ready(Ok(false));
                    }
                }
                _ => {}
            },
            Ok(false) => match client.poll_pump(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => r?,
            },
        }
    }
}

/// Takes the chunk [`poll_chunk_ready`] found, borrowed from the core's
/// buffer (no copy).
fn take_chunk<S: AsyncRead + AsyncWrite + Unpin>(client: &mut Client<S>) -> Result<&[u8]> {
    match client.d.poll_event()? {
        Some(Event::BodyChunk { data, .. }) => Ok(data),
        _ => Err(Error::Io(io::Error::other(
            "internal error: the body chunk went missing",
        ))),
    }
}

impl<'c, S: AsyncRead + AsyncWrite + Unpin> Body<'c, S> {
    pub(crate) fn new(client: &'c mut Client<S>, handle: Handle, status: Status) -> Self {
        Body {
            client,
            handle,
            status,
            end: None,
            failed: false,
            spill: Vec::new(),
            spill_pos: 0,
        }
    }

    /// The `+OK` line that opened the body (for RETR often `"<n> octets"`).
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// The number of body bytes, once the whole body was received.
    pub fn octets(&self) -> Option<u64> {
        self.end
    }

    /// Whether the terminating line arrived: the message is complete.
    pub fn is_complete(&self) -> bool {
        self.end.is_some() && !self.failed
    }

    /// Waits until a chunk is ready (`true`) or the body ended (`false`);
    /// an error other than a timeout ends the body.
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool>> {
        if self.failed {
            return Poll::Ready(Ok(false));
        }
        let r = poll_chunk_ready(self.client, self.handle, &mut self.end, cx);
        if let Poll::Ready(Err(e)) = &r {
            // A timeout leaves the session (and this body) resumable.
            if !matches!(e, Error::Timeout(_)) {
                self.failed = true;
            }
        }
        r
    }

    /// The next chunk of the body, `None` once it is complete. The chunk is
    /// borrowed from the client's receive buffer: no copy is made.
    ///
    /// Cancel-safe: if the future is dropped before it completes, no data
    /// is lost (the chunk is taken from the connection only when this
    /// returns).
    pub async fn next_chunk(&mut self) -> Option<Result<&[u8]>> {
        match std::future::poll_fn(|cx| self.poll_step(cx)).await {
            Ok(true) => Some(take_chunk(self.client)),
            Ok(false) => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// Streams the rest of the body into `w` and flushes it; returns the
    /// body's size. If `w` fails, the rest of the message is read and
    /// discarded so the session stays in sync, then [`Error::Sink`].
    pub async fn write_to<W: AsyncWrite + Unpin + ?Sized>(mut self, w: &mut W) -> Result<u64> {
        let mut sink_error: Option<io::Error> = None;
        while let Some(chunk) = self.next_chunk().await {
            let chunk = chunk?;
            if sink_error.is_none() {
                if let Err(e) = w.write_all(chunk).await {
                    sink_error = Some(e);
                }
            }
        }
        if let Some(e) = sink_error {
            return Err(Error::Sink(e));
        }
        w.flush().await.map_err(Error::Sink)?;
        Ok(self.end.unwrap_or(0))
    }

    /// Collects the rest of the body into memory.
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
        if this.spill_pos < this.spill.len() {
            let n = buf.remaining().min(this.spill.len() - this.spill_pos);
            buf.put_slice(&this.spill[this.spill_pos..this.spill_pos + n]);
            this.spill_pos += n;
            return Poll::Ready(Ok(()));
        }
        this.spill.clear();
        this.spill_pos = 0;
        match this.poll_step(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(false)) => Poll::Ready(Ok(())),
            Poll::Ready(Ok(true)) => {
                let data = take_chunk(this.client)?;
                let n = buf.remaining().min(data.len());
                buf.put_slice(&data[..n]);
                this.spill.extend_from_slice(&data[n..]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e.into())),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> futures_core::Stream for Body<'_, S> {
    type Item = Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match this.poll_step(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(true)) => {
                Poll::Ready(Some(take_chunk(this.client).map(Bytes::copy_from_slice)))
            }
            Poll::Ready(Ok(false)) => Poll::Ready(None),
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
        }
    }
}

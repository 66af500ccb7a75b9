//! Types of the pipelined batch operations, shared by both adapters
//! (`retr_each`, `top_each`, `retr_all`, `batch`).

use std::io;

use pop3_proto::{ErrResponse, Response};

/// What to do with a message once it has been received completely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Leave it on the server.
    Keep,
    /// Send `DELE` for it (committed by QUIT).
    Delete,
}

/// Receives the messages of `Client::retr_each` / `Client::top_each`
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

/// The reply to one command of a `Client::batch`.
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

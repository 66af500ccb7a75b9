//! The I/O driver: a thin, poll-based pump between a transport and the
//! sans-IO session layer (no protocol knowledge here): it writes what the
//! layer gives, reads into it with the clock, and sleeps until the layer's
//! deadline ([`Session::poll_timeout`]).
//!
//! [`Driver::poll_io`] writes pending command bytes and reads server bytes
//! *in the same poll*, so a deep pipeline never deadlocks against a server
//! that blocks writing replies until we read them. All state (the unsent
//! tail of the output, the read buffer, the timers) lives in the driver, so
//! dropping a future that awaits `poll_io` loses nothing: the next call
//! resumes exactly where the dropped one stopped.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pop3_proto::session::{Instant as At, Session};
use pop3_proto::Event;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::error::Error;
use pop3_adapter::{log, ReadBuffer};

pop3_adapter::tracing_logger!(
    /// Emits the shared log lines ([`pop3_adapter::log`]) under this crate's
    /// target, so `RUST_LOG=pop3_tokio=debug` selects them.
    Log,
    "pop3_tokio"
);

/// What one [`Driver::poll_io`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Bytes were read (or the end of stream seen): poll the core's events.
    Read,
    /// Only bytes were written; keep going.
    Wrote,
    /// Nothing to write and the core expects nothing to read: waiting
    /// further would hang.
    Idle,
}

/// A restartable timeout, armed while one direction is blocked.
struct Timer {
    limit: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl Timer {
    fn new(limit: Duration) -> Timer {
        Timer {
            limit,
            sleep: None,
            armed: false,
        }
    }

    fn disarm(&mut self) {
        self.armed = false;
    }

    /// Arms the timer (if not yet armed) and polls it: `Ready` when the
    /// limit has passed since it was armed.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = Instant::now() + self.limit;
        if !self.armed {
            self.armed = true;
            match &mut self.sleep {
                Some(s) => s.as_mut().reset(deadline),
                None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        match &mut self.sleep {
            Some(s) => s.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}

use std::future::Future as _;

/// The driver's own state: buffers and timers.
pub(crate) struct IoState {
    /// Small while idle, growing for bodies and listings.
    rbuf: ReadBuffer,
    wbuf: Vec<u8>,
    wpos: usize,
    flush_needed: bool,
    read_eof: bool,
    /// The layer's deadline, slept on while reading.
    deadline: Option<Pin<Box<Sleep>>>,
    write_timer: Timer,
    /// The epoch of the layer's clock.
    epoch: Instant,
    /// The output buffer holds a secret: zero it once written.
    sensitive: bool,
}

/// Transport + session + buffers.
pub(crate) struct Driver<S> {
    pub(crate) stream: S,
    pub(crate) session: Session,
    st: IoState,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Driver<S> {
    /// A driver whose clock starts now (the session was created with
    /// `Instant::ZERO`).
    pub(crate) fn new(stream: S, session: Session, write_timeout: Duration) -> Self {
        Driver {
            stream,
            session,
            st: IoState {
                rbuf: ReadBuffer::new(),
                wbuf: Vec::new(),
                wpos: 0,
                flush_needed: false,
                read_eof: false,
                deadline: None,
                write_timer: Timer::new(write_timeout),
                epoch: Instant::now(),
                sensitive: false,
            },
        }
    }

    /// The layer's `now`.
    pub(crate) fn now(&self) -> At {
        At::from_epoch(Instant::now().saturating_duration_since(self.st.epoch))
    }

    /// The tokio instant of a layer instant.
    pub(crate) fn instant(&self, at: At) -> Instant {
        self.st.epoch + at.since_epoch()
    }

    /// Changes the write timeout (the read side follows the layer's
    /// whole-response deadline).
    pub(crate) fn set_write_timeout(&mut self, write: Duration) {
        self.st.write_timer = Timer::new(write);
    }

    /// Forgets a partly elapsed write timeout (at the start of every call).
    pub(crate) fn reset_timers(&mut self) {
        self.st.write_timer.disarm();
    }

    /// The read buffer.
    pub(crate) fn read_buffer(&self) -> &ReadBuffer {
        &self.st.rbuf
    }

    /// An operation ended: the read buffer goes back to its idle size if
    /// no reply is expected.
    pub(crate) fn idle(&mut self) {
        if !self.session.client().wants_read() {
            self.st.rbuf.idle();
        }
    }

    /// Whether output is still waiting to reach the transport.
    pub(crate) fn write_pending(&self) -> bool {
        self.st.wpos < self.st.wbuf.len() || self.st.flush_needed
    }

    /// Moves everything the layer wants to send into the output buffer.
    fn gather(&mut self) {
        let now = self.now();
        loop {
            let start = self.st.wbuf.len();
            let Some(t) = self.session.poll_transmit(now, &mut self.st.wbuf) else {
                break;
            };
            log::sent(&Log, &self.st.wbuf[start..start + t.len], &t);
            self.st.sensitive |= t.sensitive;
        }
    }

    /// Empties the fully written output buffer (zeroing a secret first).
    fn clear_written(&mut self) {
        if self.st.sensitive {
            self.st.wbuf.fill(0);
            self.st.sensitive = false;
        }
        self.st.wbuf.clear();
        self.st.wpos = 0;
    }

    /// Writes what is pending and flushes. `Ready(Ok(true))` if anything
    /// went out, `Ready(Ok(false))` if nothing did (possibly blocked).
    fn poll_write_side(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, Error>> {
        let mut wrote = false;
        while self.st.wpos < self.st.wbuf.len() {
            match Pin::new(&mut self.stream).poll_write(cx, &self.st.wbuf[self.st.wpos..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(Error::Io(io::ErrorKind::WriteZero.into())))
                }
                Poll::Ready(Ok(n)) => {
                    self.st.wpos += n;
                    self.st.flush_needed = true;
                    wrote = true;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(Error::from_io(e))),
                Poll::Pending => break,
            }
        }
        if self.st.wpos == self.st.wbuf.len() {
            self.clear_written();
            if self.st.flush_needed {
                match Pin::new(&mut self.stream).poll_flush(cx) {
                    Poll::Ready(Ok(())) => {
                        self.st.flush_needed = false;
                        wrote = true;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(Error::from_io(e))),
                    Poll::Pending => {}
                }
            }
        }
        if wrote {
            self.st.write_timer.disarm();
        }
        Poll::Ready(Ok(wrote))
    }

    /// Polls the write timer while output is blocked.
    fn poll_write_timeout(&mut self, cx: &mut Context<'_>) -> Poll<Error> {
        if self.st.write_timer.poll_expired(cx).is_ready() {
            self.st.write_timer.disarm();
            return Poll::Ready(Error::timeout("write"));
        }
        Poll::Pending
    }

    /// Makes progress on both directions at once. `Ready(Ok(progress))`
    /// as soon as anything happened; `Pending` while blocked (with the
    /// timers armed); `Ready(Err)` on I/O errors and timeouts.
    pub(crate) fn poll_io(&mut self, cx: &mut Context<'_>) -> Poll<Result<Progress, Error>> {
        self.gather();
        let wrote = match self.poll_write_side(cx) {
            Poll::Ready(Ok(w)) => w,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => false,
        };
        let reading = !self.st.read_eof && self.session.client().wants_read();
        if reading {
            let now_at = Instant::now();
            let mut buf = ReadBuf::new(self.st.rbuf.space());
            let r = Pin::new(&mut self.stream).poll_read(cx, &mut buf);
            let now = At::from_epoch(now_at.saturating_duration_since(self.st.epoch));
            match r {
                Poll::Ready(Ok(())) => {
                    let data = buf.filled();
                    let n = data.len();
                    if data.is_empty() {
                        log::end_of_stream(&Log, true);
                        self.st.read_eof = true;
                        self.session.handle_eof(now);
                    } else {
                        log::received(&Log, data);
                        self.session.handle_input(now, data);
                    }
                    self.st.rbuf.filled(n);
                    return Poll::Ready(Ok(Progress::Read));
                }
                // rustls reports a TCP close without close_notify this
                // way. POP3 frames its own replies, so the core decides
                // whether the end came too early (a cut body is an error).
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    log::end_of_stream(&Log, false);
                    self.st.read_eof = true;
                    self.session.handle_eof(now);
                    return Poll::Ready(Ok(Progress::Read));
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(Error::from_io(e))),
                Poll::Pending => {}
            }
        }
        if wrote {
            return Poll::Ready(Ok(Progress::Wrote));
        }
        let writing = self.write_pending();
        if !writing && !reading {
            return Poll::Ready(Ok(Progress::Idle));
        }
        if writing {
            if let Poll::Ready(e) = self.poll_write_timeout(cx) {
                return Poll::Ready(Err(e));
            }
        }
        if reading && self.poll_deadline(cx).is_ready() {
            // The layer now holds a sticky timeout: the caller's next
            // poll of the session reports it.
            return Poll::Ready(Ok(Progress::Read));
        }
        Poll::Pending
    }

    /// Sleeps until the layer's deadline; `Ready` once it passed (and the
    /// layer was told).
    pub(crate) fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(at) = self.session.poll_timeout() else {
            return Poll::Pending;
        };
        let when = self.instant(at);
        let sleep = match &mut self.st.deadline {
            Some(s) => {
                if s.deadline() != when {
                    s.as_mut().reset(when);
                }
                s
            }
            None => self
                .st
                .deadline
                .insert(Box::pin(tokio::time::sleep_until(when))),
        };
        if sleep.as_mut().poll(cx).is_ready() {
            let now = self.now().max(at);
            self.session.handle_timeout(now);
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Awaits one step of progress.
    pub(crate) async fn io(&mut self) -> Result<Progress, Error> {
        std::future::poll_fn(|cx| self.poll_io(cx)).await
    }

    /// Writes and flushes everything pending (used before handing the
    /// transport to a TLS handshake).
    pub(crate) async fn flush_all(&mut self) -> Result<(), Error> {
        loop {
            self.gather();
            if !self.write_pending() {
                return Ok(());
            }
            std::future::poll_fn(|cx| self.poll_write_only(cx)).await?;
        }
    }

    fn poll_write_only(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if let Poll::Ready(Err(e)) = self.poll_write_side(cx) {
            return Poll::Ready(Err(e));
        }
        if !self.write_pending() {
            return Poll::Ready(Ok(()));
        }
        match self.poll_write_timeout(cx) {
            Poll::Ready(e) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Takes the transport out, keeping everything else for
    /// [`Driver::from_parts`] (a TLS upgrade that changes the type).
    pub(crate) fn into_parts(self) -> (S, (Session, IoState)) {
        (self.stream, (self.session, self.st))
    }

    /// Rebuilds a driver from [`Driver::into_parts`] over a new transport.
    pub(crate) fn from_parts(stream: S, (session, st): (Session, IoState)) -> Driver<S> {
        Driver {
            stream,
            session,
            st,
        }
    }
}

/// Logs every event the layer sees.
pub(crate) fn log_event(ev: &Event<'_>) {
    log::event(&Log, ev);
}

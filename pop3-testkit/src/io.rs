//! Connection plumbing shared by the POP3 interpreter and the script runner:
//! a (possibly TLS) stream, a bounded line reader, transcript recording and
//! a graceful close that avoids RSTs.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::server::Shared;

/// The byte stream of one connection: plain TCP or rustls server-side TLS.
pub(crate) enum Stream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Stream {
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            #[cfg(feature = "tls")]
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Why a line could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The client closed the connection (or the server is shutting down).
    Eof,
    /// The line exceeded the configured maximum length.
    TooLong,
    /// The read timeout expired.
    Timeout,
    /// Any other I/O error (including TLS errors).
    Io(io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Eof => f.write_str("client closed the connection"),
            ReadError::TooLong => f.write_str("client line too long"),
            ReadError::Timeout => f.write_str("read timed out"),
            ReadError::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

fn classify(e: io::Error) -> ReadError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ReadError::Timeout,
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => ReadError::Eof,
        _ => ReadError::Io(e),
    }
}

/// One accepted connection: stream, read buffer, and its transcript slot.
pub(crate) struct Conn {
    stream: Option<Stream>,
    buf: Vec<u8>,
    pos: usize,
    pub(crate) id: usize,
    shared: Arc<Shared>,
    max_line: usize,
}

impl Conn {
    pub(crate) fn new(stream: TcpStream, id: usize, shared: Arc<Shared>) -> Conn {
        let max_line = shared.config.max_line_len.max(16);
        Conn {
            stream: Some(Stream::Plain(stream)),
            buf: Vec::with_capacity(8192),
            pos: 0,
            id,
            shared,
            max_line,
        }
    }

    fn stream(&mut self) -> io::Result<&mut Stream> {
        self.stream
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "stream closed"))
    }

    /// Whether TLS is active on this connection.
    pub(crate) fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        {
            matches!(self.stream, Some(Stream::Tls(_)))
        }
        #[cfg(not(feature = "tls"))]
        {
            false
        }
    }

    /// The `tls-exporter` channel-binding data (RFC 9266) of a TLS 1.3
    /// connection: 32 bytes exported with the label
    /// `EXPORTER-Channel-Binding` and no context. `None` otherwise.
    pub(crate) fn tls_exporter(&self) -> Option<Vec<u8>> {
        #[cfg(feature = "tls")]
        if let Some(Stream::Tls(tls)) = &self.stream {
            if tls.conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3) {
                return tls
                    .conn
                    .export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", None)
                    .ok()
                    .map(|out| out.to_vec());
            }
        }
        None
    }

    fn fill(&mut self) -> Result<(), ReadError> {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 64 * 1024 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let mut tmp = [0u8; 16 * 1024];
        loop {
            let stream = self.stream().map_err(ReadError::Io)?;
            match stream.read(&mut tmp) {
                Ok(0) => return Err(ReadError::Eof),
                Ok(n) => {
                    self.shared.record_client(self.id, &tmp[..n]);
                    self.buf.extend_from_slice(&tmp[..n]);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(classify(e)),
            }
        }
    }

    /// Reads one line including its terminator (`\n`, possibly preceded by `\r`).
    pub(crate) fn read_line(&mut self) -> Result<Vec<u8>, ReadError> {
        let mut scanned = 0;
        loop {
            let pending = &self.buf[self.pos..];
            if let Some(i) = pending[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + i + 1;
                if end > self.max_line {
                    return Err(ReadError::TooLong);
                }
                let line = pending[..end].to_vec();
                self.pos += end;
                return Ok(line);
            }
            scanned = pending.len();
            if scanned > self.max_line {
                return Err(ReadError::TooLong);
            }
            self.fill()?;
        }
    }

    /// Reads and records whatever the client sends until EOF, an error, or
    /// server shutdown; read timeouts are ignored (the connection stays open).
    pub(crate) fn stall(&mut self) {
        self.buf.clear();
        self.pos = 0;
        loop {
            if self.shared.is_shutdown() {
                return;
            }
            match self.fill() {
                Ok(()) => {
                    self.buf.clear();
                    self.pos = 0;
                }
                Err(ReadError::Timeout) => continue,
                Err(_) => return,
            }
        }
    }

    /// Writes `bytes` completely, flushes, and records them.
    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let stream = self.stream()?;
        stream.write_all(bytes)?;
        stream.flush()?;
        self.shared.record_server(self.id, bytes);
        Ok(())
    }

    /// Closes the connection politely: (TLS close_notify,) FIN, then reads and
    /// records what the client still sends for a short while so the kernel does
    /// not answer unread data with an RST that could destroy our last reply.
    pub(crate) fn close(&mut self, close_notify: bool) {
        let Some(mut stream) = self.stream.take() else {
            return;
        };
        #[cfg(feature = "tls")]
        if let Stream::Tls(tls) = &mut stream {
            if close_notify {
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        }
        #[cfg(not(feature = "tls"))]
        let _ = close_notify;
        let _ = stream.tcp().shutdown(Shutdown::Write);
        let _ = stream
            .tcp()
            .set_read_timeout(Some(Duration::from_millis(50)));
        let deadline = Instant::now() + Duration::from_millis(300);
        let mut tmp = [0u8; 8192];
        while Instant::now() < deadline && !self.shared.is_shutdown() {
            match stream.read(&mut tmp) {
                Ok(0) => break,
                Ok(n) => self.shared.record_client(self.id, &tmp[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(_) => break,
            }
        }
        let _ = stream.tcp().shutdown(Shutdown::Both);
    }

    /// Upgrades a plain connection to TLS (server side) and completes the
    /// handshake. Buffered plaintext that arrived before the handshake is
    /// discarded (it is still in the transcript).
    #[cfg(feature = "tls")]
    pub(crate) fn start_tls(&mut self, config: Arc<rustls::ServerConfig>) -> io::Result<()> {
        self.buf.clear();
        self.pos = 0;
        let tcp = match self.stream.take() {
            Some(Stream::Plain(tcp)) => tcp,
            other => {
                self.stream = other;
                return Err(io::Error::other("TLS is already active"));
            }
        };
        let conn = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        self.shared.mark_tls(self.id);
        self.stream = Some(Stream::Tls(Box::new(tls)));
        Ok(())
    }
}

//! [`MaybeTlsStream`]: a transport that is plain now and may become TLS
//! in place (STLS), so one `Client` type covers both.

use std::io::{self, Read, Write};

#[cfg(feature = "rustls")]
use rustls::{ClientConnection, StreamOwned};

/// A transport that starts plain (or TLS) and can be upgraded to TLS in
/// place by [`Client::stls`](crate::Client::stls).
///
/// The convenience constructors return `Client<MaybeTlsStream<TcpStream>>`
/// ([`TcpClient`](crate::TcpClient)); wrap your own transport with
/// [`MaybeTlsStream::plain`] to get the same in-place `stls()`.
pub struct MaybeTlsStream<S: Read + Write> {
    inner: Inner<S>,
}

enum Inner<S: Read + Write> {
    Plain(S),
    #[cfg(feature = "rustls")]
    Tls(Box<StreamOwned<ClientConnection, S>>),
    /// A TLS upgrade failed half-way; the transport is gone.
    #[cfg_attr(not(feature = "rustls"), allow(dead_code))]
    Lost,
}

impl<S: Read + Write> std::fmt::Debug for MaybeTlsStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match &self.inner {
            Inner::Plain(_) => "plain",
            #[cfg(feature = "rustls")]
            Inner::Tls(_) => "tls",
            Inner::Lost => "lost",
        };
        write!(f, "MaybeTlsStream({what})")
    }
}

fn lost() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the transport was lost during a failed TLS upgrade",
    )
}

impl<S: Read + Write> MaybeTlsStream<S> {
    /// A plain (not yet TLS) transport.
    pub fn plain(stream: S) -> Self {
        MaybeTlsStream {
            inner: Inner::Plain(stream),
        }
    }

    /// Whether the transport is TLS now.
    pub fn is_tls(&self) -> bool {
        match &self.inner {
            #[cfg(feature = "rustls")]
            Inner::Tls(_) => true,
            _ => false,
        }
    }

    /// The underlying transport (the TCP socket under TLS).
    pub fn get_ref(&self) -> Option<&S> {
        match &self.inner {
            Inner::Plain(s) => Some(s),
            #[cfg(feature = "rustls")]
            Inner::Tls(t) => Some(t.get_ref()),
            Inner::Lost => None,
        }
    }

    /// The rustls connection, when TLS is active (negotiated protocol
    /// version, peer certificates, ...).
    #[cfg(feature = "rustls")]
    pub fn tls_connection(&self) -> Option<&ClientConnection> {
        match &self.inner {
            Inner::Tls(t) => Some(&t.conn),
            _ => None,
        }
    }

    /// Wraps `stream` in TLS and completes the handshake now, so that
    /// certificate errors surface here and not at the first read.
    #[cfg(feature = "rustls")]
    pub(crate) fn tls(
        stream: S,
        config: std::sync::Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
    ) -> io::Result<Self> {
        let conn = ClientConnection::new(config, name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let mut tls = StreamOwned::new(conn, stream);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        Ok(MaybeTlsStream {
            inner: Inner::Tls(Box::new(tls)),
        })
    }

    /// Upgrades a plain transport to TLS in place. On failure the
    /// transport is dropped (a half-done handshake cannot be undone).
    #[cfg(feature = "rustls")]
    pub(crate) fn upgrade(
        &mut self,
        config: std::sync::Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
    ) -> io::Result<()> {
        match std::mem::replace(&mut self.inner, Inner::Lost) {
            Inner::Plain(s) => {
                *self = MaybeTlsStream::tls(s, config, name)?;
                Ok(())
            }
            other => {
                self.inner = other;
                Err(io::Error::other("the transport is already TLS"))
            }
        }
    }

    /// Takes the stream out (for [`Client::into_inner`](crate::Client::into_inner)-style use).
    pub fn into_plain(self) -> Option<S> {
        match self.inner {
            Inner::Plain(s) => Some(s),
            _ => None,
        }
    }
}

impl<S: Read + Write> Read for MaybeTlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Plain(s) => s.read(buf),
            #[cfg(feature = "rustls")]
            Inner::Tls(t) => t.read(buf),
            Inner::Lost => Err(lost()),
        }
    }
}

impl<S: Read + Write> Write for MaybeTlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Plain(s) => s.write(buf),
            #[cfg(feature = "rustls")]
            Inner::Tls(t) => t.write(buf),
            Inner::Lost => Err(lost()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Plain(s) => s.flush(),
            #[cfg(feature = "rustls")]
            Inner::Tls(t) => t.flush(),
            Inner::Lost => Err(lost()),
        }
    }
}

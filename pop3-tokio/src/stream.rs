//! [`MaybeTlsStream`]: a transport that is plain now and may become TLS
//! in place (STLS), so one `Client` type covers both.

use std::io;
use std::pin::Pin;
#[cfg(feature = "rustls")]
use std::sync::Arc;
use std::task::{Context, Poll};

#[cfg(feature = "rustls")]
use rustls::pki_types::ServerName;
#[cfg(feature = "rustls")]
use rustls::{ClientConfig, ClientConnection};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
#[cfg(feature = "rustls")]
use tokio_rustls::client::TlsStream;
#[cfg(feature = "rustls")]
use tokio_rustls::TlsConnector;

/// A transport that starts plain (or TLS) and can be upgraded to TLS in
/// place by [`Client::stls`](crate::Client::stls).
///
/// The convenience constructors return `Client<MaybeTlsStream<TcpStream>>`
/// ([`TcpClient`](crate::TcpClient)); wrap your own transport with
/// [`MaybeTlsStream::plain`] to get the same in-place `stls()`.
pub struct MaybeTlsStream<S> {
    inner: Inner<S>,
}

enum Inner<S> {
    Plain(S),
    #[cfg(feature = "rustls")]
    Tls(Box<TlsStream<S>>),
    /// A TLS upgrade failed (or was cancelled) half-way; the transport is gone.
    #[cfg_attr(not(feature = "rustls"), allow(dead_code))]
    Lost,
}

impl<S> std::fmt::Debug for MaybeTlsStream<S> {
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

impl<S: AsyncRead + AsyncWrite + Unpin> MaybeTlsStream<S> {
    /// A plain (not yet TLS) transport.
    pub fn plain(stream: S) -> Self {
        MaybeTlsStream {
            inner: Inner::Plain(stream),
        }
    }

    /// Whether the transport is TLS now.
    pub fn is_tls(&self) -> bool {
        #[cfg(feature = "rustls")]
        return matches!(self.inner, Inner::Tls(_));
        #[cfg(not(feature = "rustls"))]
        false
    }

    /// The underlying transport (the TCP socket under TLS).
    pub fn get_ref(&self) -> Option<&S> {
        match &self.inner {
            Inner::Plain(s) => Some(s),
            #[cfg(feature = "rustls")]
            Inner::Tls(t) => Some(t.get_ref().0),
            Inner::Lost => None,
        }
    }

    #[cfg(feature = "rustls")]
    /// The rustls connection, when TLS is active (negotiated protocol
    /// version, peer certificates, ...).
    pub fn tls_connection(&self) -> Option<&ClientConnection> {
        match &self.inner {
            #[cfg(feature = "rustls")]
            Inner::Tls(t) => Some(t.get_ref().1),
            _ => None,
        }
    }

    #[cfg(feature = "rustls")]
    /// Wraps `stream` in TLS and completes the handshake now, so that
    /// certificate errors surface here and not at the first read.
    pub(crate) async fn tls(
        stream: S,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> io::Result<Self> {
        let tls = TlsConnector::from(config).connect(name, stream).await?;
        Ok(MaybeTlsStream {
            inner: Inner::Tls(Box::new(tls)),
        })
    }

    #[cfg(feature = "rustls")]
    /// Upgrades a plain transport to TLS in place. On failure (or if this
    /// future is dropped) the transport is gone: a half-done handshake
    /// cannot be undone.
    pub(crate) async fn upgrade(
        &mut self,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> io::Result<()> {
        match std::mem::replace(&mut self.inner, Inner::Lost) {
            Inner::Plain(s) => {
                *self = MaybeTlsStream::tls(s, config, name).await?;
                Ok(())
            }
            other => {
                self.inner = other;
                Err(io::Error::other("the transport is already TLS"))
            }
        }
    }

    /// Takes the stream out, if it is still plain.
    pub fn into_plain(self) -> Option<S> {
        match self.inner {
            Inner::Plain(s) => Some(s),
            _ => None,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Inner::Plain(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "rustls")]
            Inner::Tls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
            Inner::Lost => Poll::Ready(Err(lost())),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().inner {
            Inner::Plain(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "rustls")]
            Inner::Tls(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
            Inner::Lost => Poll::Ready(Err(lost())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Inner::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "rustls")]
            Inner::Tls(t) => Pin::new(t.as_mut()).poll_flush(cx),
            Inner::Lost => Poll::Ready(Err(lost())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Inner::Plain(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "rustls")]
            Inner::Tls(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
            Inner::Lost => Poll::Ready(Ok(())),
        }
    }
}

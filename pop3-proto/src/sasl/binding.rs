//! Channel binding (RFC 5929, RFC 9266): what the TLS layer hands to a
//! SCRAM `-PLUS` exchange. Always available, with or without the `scram`
//! feature, because drivers pass it to the session layer either way.

use alloc::vec::Vec;
use core::fmt;

/// The channel binding choice of a SCRAM exchange: the GS2 flag and, for
/// the `-PLUS` mechanisms, the binding data.
///
/// The data come from the TLS layer (the adapter), never from the server's
/// SASL messages:
///
/// * `tls-exporter` (RFC 9266, preferred with TLS 1.3): 32 bytes exported
///   with the label `EXPORTER-Channel-Binding` and an empty context;
/// * `tls-server-end-point` (RFC 5929 §4): the hash of the server's
///   certificate (SHA-256 when the certificate signature uses MD5 or SHA-1,
///   otherwise the signature's hash).
///
/// `Debug` shows only the type and the data length.
#[derive(Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ChannelBinding {
    /// GS2 flag `n`: the client does not support channel binding (no TLS,
    /// or no binding data available). The default.
    #[default]
    Unsupported,
    /// GS2 flag `y`: the client supports channel binding but the server
    /// advertised no `-PLUS` mechanism. A server that does support it then
    /// fails the exchange: someone stripped `-PLUS` from its list.
    SupportedButNotOffered,
    /// GS2 flag `p=tls-server-end-point` with this binding data (`-PLUS`).
    TlsServerEndPoint(Vec<u8>),
    /// GS2 flag `p=tls-exporter` with this binding data (`-PLUS`).
    TlsExporter(Vec<u8>),
}

impl ChannelBinding {
    /// Whether this selects a `-PLUS` mechanism.
    pub fn is_plus(&self) -> bool {
        matches!(
            self,
            ChannelBinding::TlsServerEndPoint(_) | ChannelBinding::TlsExporter(_)
        )
    }

    #[cfg(feature = "scram")]
    pub(crate) fn flag(&self) -> &'static str {
        match self {
            ChannelBinding::Unsupported => "n",
            ChannelBinding::SupportedButNotOffered => "y",
            ChannelBinding::TlsServerEndPoint(_) => "p=tls-server-end-point",
            ChannelBinding::TlsExporter(_) => "p=tls-exporter",
        }
    }

    #[cfg(feature = "scram")]
    pub(crate) fn data(&self) -> &[u8] {
        match self {
            ChannelBinding::TlsServerEndPoint(d) | ChannelBinding::TlsExporter(d) => d,
            _ => &[],
        }
    }
}

impl fmt::Debug for ChannelBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelBinding::Unsupported => f.write_str("Unsupported"),
            ChannelBinding::SupportedButNotOffered => f.write_str("SupportedButNotOffered"),
            ChannelBinding::TlsServerEndPoint(d) => {
                write!(f, "TlsServerEndPoint(<{} bytes>)", d.len())
            }
            ChannelBinding::TlsExporter(d) => write!(f, "TlsExporter(<{} bytes>)", d.len()),
        }
    }
}

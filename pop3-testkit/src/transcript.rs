//! Per-connection record of the bytes exchanged.

use std::net::SocketAddr;

/// Everything exchanged on one connection, as the server saw it.
///
/// `client` holds the bytes the server *read* from the client, in order
/// (after TLS decryption; bytes sent before an STLS handshake are included,
/// also the ones the server discarded). Bytes the client sent but the server
/// never read (because it closed first) are missing, so wait for the
/// connection to end ([`ServerHandle::wait_idle`](crate::ServerHandle::wait_idle))
/// before asserting on it. `server` holds the bytes the server wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transcript {
    /// Connection number, 0-based in accept order.
    pub connection: usize,
    /// The client's address.
    pub peer: SocketAddr,
    /// Bytes received from the client (plaintext).
    pub client: Vec<u8>,
    /// Bytes sent to the client (plaintext).
    pub server: Vec<u8>,
    /// Whether TLS was established on this connection (implicit or STLS).
    pub tls: bool,
    /// Whether the connection has ended.
    pub closed: bool,
    /// Whether a direction exceeded the transcript limit and was cut.
    pub truncated: bool,
}

impl Transcript {
    pub(crate) fn new(connection: usize, peer: SocketAddr) -> Transcript {
        Transcript {
            connection,
            peer,
            client: Vec::new(),
            server: Vec::new(),
            tls: false,
            closed: false,
            truncated: false,
        }
    }

    /// The client bytes split into lines (terminators removed, invalid UTF-8
    /// replaced). A final unterminated fragment is included.
    pub fn client_lines(&self) -> Vec<String> {
        split_lines(&self.client)
    }

    /// The server bytes split into lines, like [`client_lines`](Self::client_lines).
    pub fn server_lines(&self) -> Vec<String> {
        split_lines(&self.server)
    }

    /// The client bytes as (lossy) text.
    pub fn client_text(&self) -> String {
        String::from_utf8_lossy(&self.client).into_owned()
    }

    /// The server bytes as (lossy) text.
    pub fn server_text(&self) -> String {
        String::from_utf8_lossy(&self.server).into_owned()
    }

    /// Whether the client bytes contain `needle` (case-sensitive).
    pub fn client_contains(&self, needle: impl AsRef<[u8]>) -> bool {
        contains(&self.client, needle.as_ref())
    }

    /// The command verbs the client sent (first word of each line,
    /// upper-cased), e.g. `["CAPA", "USER", "PASS", "STAT", "QUIT"]`. AUTH
    /// continuation lines show up as their first word too.
    pub fn client_commands(&self) -> Vec<String> {
        self.client_lines()
            .iter()
            .filter(|l| !l.is_empty())
            .map(|l| l.split(' ').next().unwrap_or_default().to_ascii_uppercase())
            .collect()
    }
}

fn split_lines(bytes: &[u8]) -> Vec<String> {
    let mut out: Vec<String> = bytes
        .split_inclusive(|&b| b == b'\n')
        .map(|l| {
            let l = l.strip_suffix(b"\n").unwrap_or(l);
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            String::from_utf8_lossy(l).into_owned()
        })
        .collect();
    if bytes.is_empty() {
        out.clear();
    }
    out
}

pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

//! A blocking POP3 client: `std::net` (or any `Read + Write`), rustls TLS,
//! pipelined bulk retrieval, constant memory for any message size.
//!
//! This crate only moves bytes between a stream and the sans-IO core
//! [`pop3_proto`]; every decision about what a POP3 line means is made
//! there. It adds sockets, timeouts, TLS, and `Result`s.
//!
//! ```no_run
//! use pop3_blocking::{Client, ConnectOptions, TlsPolicy};
//!
//! fn main() -> Result<(), pop3_blocking::Error> {
//!     let options = ConnectOptions::new().policy(TlsPolicy::Implicit);
//!     let mut client = Client::connect("pop.example.com", 995, &options)?;
//!     client.login("alice", "secret")?;
//!     let stat = client.stat()?;
//!     println!("{} messages, {} octets", stat.count, stat.octets);
//!     for entry in client.list()? {
//!         let mut file = std::fs::File::create(format!("msg-{}.eml", entry.number))?;
//!         client.retr_to(entry.number, &mut file)?; // streamed, never all in memory
//!     }
//!     client.quit()?;
//!     Ok(())
//! }
//! ```
//!
//! # Connecting
//!
//! | poplib | here |
//! | --- | --- |
//! | `POP3(host, port, timeout)` | [`Client::connect`] with [`ConnectOptions`] ([`Timeouts`], [`TlsPolicy`]) |
//! | `POP3_SSL(host, port, keyfile, certfile, context)` | [`TlsPolicy::Implicit`] with [`TlsOptions`] (`client_auth_pem_files`, `add_ca_pem_file`, `from_client_config`) |
//! | `stls(context)` | [`Client::stls`], or [`Client::stls_with`] for any other TLS library |
//! | your own socket | [`Client::new`] / [`Client::new_secure`] over any `Read + Write` |
//!
//! The default policy is [`TlsPolicy::Required`]: plain TCP, then `STLS`
//! before anything else; a server that does not offer it is an error
//! ([`SecurityError::StlsNotOffered`]) before any credential is sent.
//! Credentials (`USER`, `PASS`, `APOP`, `RPOP`, `AUTH`) are never sent
//! without TLS unless [`ConnectOptions::allow_cleartext_credentials`] (or
//! [`Client::set_allow_cleartext_credentials`]) says so.
//!
//! Certificates are verified against the operating system's trust store
//! (`SSL_CERT_FILE` / `SSL_CERT_DIR` honoured), with the compiled-in webpki
//! roots as the fallback when that store is empty or unreadable, plus any
//! CA you add; see [`TlsOptions`]' *Trust store* section.
//!
//! Every wait is bounded by [`Timeouts`] (connect 30 s, read 60 s, write
//! 60 s by default). `read` bounds each **whole response** (from writing
//! the command until the status line, listing or body is complete), so a
//! server trickling one byte at a time still times out; a timeout is
//! sticky (the connection is unusable afterwards). The TCP constructors
//! arm the socket's read timeout to the deadline before every read; over
//! a stream you bring yourself the deadline is checked whenever a read
//! returns, so set a read timeout on it too.
//!
//! # Architecture
//!
//! This crate is a *driver* of the session layer [`pop3_proto::session`]:
//! connect, STLS, login, commands and batches are the layer's operations
//! (the same ones `pop3-tokio` drives, so both send the same bytes). It
//! reads, writes, performs the TLS handshake when the layer asks, and
//! passes the clock. Without the default `rustls` feature it has no TLS
//! dependency at all: plain streams and [`Client::stls_with`] (any TLS
//! library) still work.
//!
//! # Commands
//!
//! All of poplib's: [`greeting`](Client::greeting), [`user`](Client::user),
//! [`pass`](Client::pass), [`apop`](Client::apop), [`rpop`](Client::rpop),
//! [`stat`](Client::stat), [`list`](Client::list) /
//! [`list_one`](Client::list_one), [`retr`](Client::retr) /
//! [`retr_to`](Client::retr_to), [`dele`](Client::dele),
//! [`rset`](Client::rset), [`noop`](Client::noop), [`quit`](Client::quit),
//! [`top`](Client::top) / [`top_to`](Client::top_to),
//! [`uidl`](Client::uidl) / [`uidl_one`](Client::uidl_one),
//! [`capa`](Client::capa), [`stls`](Client::stls), [`utf8`](Client::utf8),
//! [`lang`](Client::lang) / [`languages`](Client::languages), plus
//! [`authenticate`](Client::authenticate) (SASL) and
//! [`login`](Client::login), which picks the best method offered.
//!
//! # Pipelined bulk retrieval
//!
//! [`Client::retr_each`], [`Client::retr_all`] and [`Client::top_each`]
//! send RETR (or TOP) back to back when the server advertises
//! `PIPELINING`, with a window that grows every round trip up to a cap
//! ([`Client::set_window`], [`MAX_WINDOW`]) and is bounded by command
//! bytes in flight (what keeps a blocking socket from deadlocking), and
//! hand each message to a [`MessageSink`] as it
//! arrives. `DELE n` is sent only after the sink's `end(n)` returned
//! [`Disposition::Delete`], so a mail fetcher can write and `fsync` each
//! message first; a message not fully received is never deleted.
//! [`Client::batch`] pipelines arbitrary commands.
//! [`Client::retr_each_report`] returns a [`BatchError`] on failure: the
//! message it stopped at, and the report so far (which DELEs the server
//! acknowledged).
//!
//! # Errors
//!
//! One enum, [`Error`] (defined in `pop3-adapter` and the very type
//! `pop3-tokio` returns); [`Error::kind`] gives the adapter-independent
//! [`ErrorKind`]. A server `-ERR` is
//! [`Error::Server`] with its typed [`RespCode`] and
//! the command that failed; the session continues. A connection that ends
//! in the middle of a message is [`ErrorKind::Truncated`], never a short
//! message.
//!
//! # Logging
//!
//! With a `tracing` subscriber: one `debug` event per command line and per
//! reply (poplib's `set_debuglevel(1)`), raw bytes at `trace`
//! (`set_debuglevel(2)`). Passwords, APOP digests and SASL payloads are
//! redacted at every level.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod batch;
mod client;
mod stream;

pub use batch::{BatchReport, CollectSink, Disposition, MessageSink, Reply};
pub use client::{Body, Client, DEFAULT_WINDOW, MAX_WINDOW};
pub use pop3_adapter::{BatchError, Error};
pub use pop3_proto::login::LoginMethod;
pub use stream::MaybeTlsStream;

#[cfg(feature = "rustls")]
pub use pop3_adapter::{
    rustls, CertificateInfo, CertificateRejected, Fingerprint, TlsConfigError, TlsOptions,
};
pub use pop3_adapter::{ConnectOptions, ErrorKind, SecurityError, Timeouts, TlsFailure, TlsPolicy};
pub use pop3_proto;
pub use pop3_proto::{
    Capabilities, Command, Config, ErrResponse, Greeting, Language, ListEntry, RespCode, Stat,
    Status, Uid, UidlEntry,
};

/// The client the TCP constructors return: plain or TLS, upgradable in
/// place with [`Client::stls`].
pub type TcpClient = Client<MaybeTlsStream<std::net::TcpStream>>;

// The workspace README's examples (the blocking client and the sans-IO
// core) compile and run as doctests here.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

//! An async (tokio) POP3 client: any `AsyncRead + AsyncWrite` transport,
//! tokio-rustls TLS, pipelined bulk retrieval that reads while it writes,
//! constant memory for any message size.
//!
//! This crate only moves bytes between a stream and the sans-IO core
//! [`pop3_proto`]; every decision about what a POP3 line means is made
//! there. It adds sockets, timers, TLS and `Result`s. Its API is the one of
//! `pop3-blocking` with `.await`s: the same method names, argument and
//! return types, options ([`ConnectOptions`], [`TlsPolicy`], [`Timeouts`],
//! [`TlsOptions`]) and error kinds ([`ErrorKind`]).
//!
//! ```no_run
//! use pop3_tokio::{Client, ConnectOptions, TlsPolicy};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let options = ConnectOptions::new().policy(TlsPolicy::Implicit);
//! let mut client = Client::connect("pop.example.com", 995, &options).await?;
//! client.login("alice", "secret").await?;
//! let stat = client.stat().await?;
//! println!("{} messages, {} octets", stat.count, stat.octets);
//! for entry in client.list().await? {
//!     let mut file = tokio::fs::File::create(format!("msg-{}.eml", entry.number)).await?;
//!     client.retr_to(entry.number, &mut file).await?; // streamed, never all in memory
//! }
//! client.quit().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Connecting
//!
//! | poplib | here |
//! | --- | --- |
//! | `POP3(host, port, timeout)` | [`Client::connect`] with [`ConnectOptions`] ([`Timeouts`], [`TlsPolicy`]) |
//! | `POP3_SSL(host, port, keyfile, certfile, context)` | [`TlsPolicy::Implicit`] with [`TlsOptions`] (`client_auth_pem_files`, `add_ca_pem_file`, `from_client_config`) |
//! | `stls(context)` | [`Client::stls`], or [`Client::stls_with`] for any other TLS library |
//! | your own socket | [`Client::new`] / [`Client::new_secure`] over any `AsyncRead + AsyncWrite`, or [`Client::establish`] to apply a TLS policy to it |
//!
//! The default policy is [`TlsPolicy::Required`]: plain TCP, then `STLS`
//! before anything else; a server that does not offer it is an error
//! ([`SecurityError::StlsNotOffered`]) before any credential is sent.
//! Credentials (`USER`, `PASS`, `APOP`, `RPOP`, `AUTH`) are never sent
//! without TLS unless [`ConnectOptions::allow_cleartext_credentials`] (or
//! [`Client::set_allow_cleartext_credentials`]) says so.
//!
//! Every wait is bounded by [`Timeouts`]: the connect, each **whole
//! response** (`read`: from the moment its command was written until the
//! status line, listing or body is complete, so a server trickling one
//! byte at a time still times out), each wait for the transport to accept
//! bytes (`write`), and the TLS handshake (`read`). A stalled or trickling
//! server gives [`Error::Timeout`], never a hang. The deadlines are the
//! session layer's ([`pop3_proto::session`]); this crate sleeps until
//! them.
//!
//! # Architecture
//!
//! This crate is a *driver* of [`pop3_proto::session`]: connect, STLS,
//! login, commands and batches are the layer's operations, so this
//! adapter and `pop3-blocking` send the same bytes (a test compares their
//! server-side transcripts). It moves bytes (reading while it writes),
//! performs TLS handshakes when the layer asks, and passes the clock.
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
//! [`login`](Client::login), which picks the best method offered
//! (the session layer's plan).
//!
//! Bodies can also be consumed piece by piece: [`Client::retr_body`] and
//! [`Client::top_body`] return a [`Body`] with a lending
//! [`next_chunk`](Body::next_chunk)`().await -> Option<Result<&[u8]>>`, and
//! which is also an `AsyncRead` and a `Stream` of `Bytes`.
//!
//! # Pipelined bulk retrieval
//!
//! [`Client::retr_each`], [`Client::retr_all`] and [`Client::top_each`]
//! send RETR (or TOP) back to back when the server advertises
//! `PIPELINING`, up to [`Client::window`] outstanding, and hand each
//! message to a [`MessageSink`] as it arrives. `DELE n` is sent only after
//! the sink's `end(n)` returned [`Disposition::Delete`]. [`Client::batch`]
//! pipelines arbitrary commands. [`Client::retr_each_report`] returns a
//! [`BatchError`] on failure: the message it stopped at, and the report so
//! far (which DELEs the server acknowledged).
//!
//! Unlike the blocking adapter, the driver writes pending commands and
//! reads replies *in the same poll*, so a deep pipeline cannot deadlock
//! against a server that blocks writing replies until they are read: the
//! window bounds only how much is outstanding, not a buffer size.
//!
//! # Cancellation
//!
//! A future of this crate may be dropped at any `.await` (by
//! `tokio::time::timeout`, `select!`, a task abort). The client never
//! silently desynchronises: it tracks which commands the running call
//! owns, and the *next* call first reads and discards whatever replies the
//! dropped call still had coming (the rest of a message body included),
//! then runs normally. Partly written command bytes stay in the client's
//! buffer and are written out first. The one exception is the TLS
//! upgrade, which cannot be resumed: a dropped `stls()` breaks the client
//! ([`Error::Cancelled`] once, then [`Error::Broken`]).
//!
//! | method | cancel-safe? | if dropped mid-way |
//! | --- | --- | --- |
//! | `stat`, `list`, `list_one`, `uidl`, `uidl_one`, `capa`, `languages`, `noop`, `rset`, `utf8`, `lang` | yes | the reply is drained by the next call; nothing is lost but the answer |
//! | `dele` | yes | as above; the server may or may not have marked the message (`rset` undoes) |
//! | `user`, `pass`, `apop`, `rpop`, `authenticate`, `login` | yes | the reply is drained by the next call; the session state follows the server's answer (check [`Client::session_state`]) |
//! | `retr`, `top`, `retr_to`, `top_to`, `retr_body`, `top_body` | yes (session) | the rest of the body is read and discarded by the next call; what `retr_to` already wrote into your writer is a partial message |
//! | [`Body::next_chunk`], `Body` as `AsyncRead` / `Stream` | yes (data) | no byte is lost: a chunk is taken only when the call returns |
//! | `retr_each`, `top_each`, `retr_all`, `batch` | yes (session) | outstanding replies are drained by the next call; no `DELE` is sent for a message whose `end` did not ask for it |
//! | `quit` | yes | the reply is drained (and the session closes) on the next call |
//! | `stls`, `stls_with_options` | **no** | the client is broken (the TLS handshake cannot be resumed) |
//! | `stls_with` | **no** | the client is consumed; it is gone with the future |
//! | `connect*`, `establish`, `new*` | no | nothing to resume: no client was returned |
//!
//! A timeout is sticky: after [`Error::Timeout`] the connection is
//! unusable (the rest of the response may still be on its way), and a
//! body cut by it is an error, never a short message. A dropped future is
//! *abandoned* through the layer ([`Session::abandon`](pop3_proto::session::Session::abandon)):
//! its remaining replies are read and discarded by the next call, and a
//! SASL exchange in progress is cancelled with `*`.
//!
//! # Errors
//!
//! One enum, [`Error`] (defined in `pop3-adapter` and the very type
//! `pop3-blocking` returns); [`Error::kind`] gives the adapter-independent
//! [`ErrorKind`]. A server `-ERR` is
//! [`Error::Server`] with its typed [`RespCode`] and
//! the command that failed; the session continues. A connection that ends
//! in the middle of a message is [`ErrorKind::Truncated`], never a short
//! message. I/O, TLS and protocol errors break the client: every later
//! call returns [`Error::Broken`].
//!
//! # Logging
//!
//! With a `tracing` subscriber: one `debug` event per command line and per
//! reply (poplib's `set_debuglevel(1)`, `RUST_LOG=pop3_tokio=debug`), raw
//! bytes at `trace` (`set_debuglevel(2)`). Passwords, APOP digests and SASL
//! payloads are redacted at every level.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod batch;
mod body;
mod client;
mod driver;
mod error;
mod stream;

pub use batch::AsyncMessageSink;
pub use body::Body;
pub use client::{Client, TcpClient, DEFAULT_WINDOW};
pub use error::{BatchError, Error, Result};
pub use pop3_proto::login::LoginMethod;
pub use stream::MaybeTlsStream;

#[cfg(feature = "rustls")]
pub use pop3_adapter::{
    rustls, CertificateInfo, CertificateRejected, Fingerprint, TlsConfigError, TlsOptions,
};
pub use pop3_adapter::{BatchReport, CollectSink, Disposition, MessageSink, Reply};
pub use pop3_adapter::{ConnectOptions, ErrorKind, SecurityError, Timeouts, TlsFailure, TlsPolicy};
pub use pop3_proto;
pub use pop3_proto::{
    Capabilities, Command, Config, ErrResponse, Greeting, Language, ListEntry, RespCode, Stat,
    Status, Uid, UidlEntry,
};

//! A scriptable POP3 server on loopback, for tests and demos.
//!
//! `pop3-testkit` runs a real POP3 server on `127.0.0.1` (port chosen by the
//! OS) using plain `std` threads (one per connection, no async runtime), so
//! it works under blocking and async clients alike. It offers:
//!
//! * a **mailbox server** ([`Server::builder`]) implementing RFC 1939 (USER,
//!   PASS, APOP, STAT, LIST, UIDL, RETR, TOP, DELE, RSET, NOOP, QUIT),
//!   RFC 2449 (CAPA, response codes `[AUTH]`, `[IN-USE]`, `[LOGIN-DELAY]`,
//!   `[SYS/TEMP]`), RFC 2595 (STLS), RFC 5034 (AUTH PLAIN; SCRAM-SHA-1,
//!   SCRAM-SHA-256 and their `-PLUS` channel-binding variants with
//!   [`ServerBuilder::sasl_mechanisms`]) and RFC 6856 (UTF8, LANG), with correct state checks and RFC 1939 commit semantics
//!   (DELE only marks; QUIT commits; a dropped connection commits nothing);
//! * **TLS** (feature `tls`, on by default): implicit TLS and STLS with a
//!   generated `TestCa` that clients can trust;
//! * **quirks** of real servers as builder options (bare LF, `+OK` without
//!   text, no CAPA, delays, split writes, truncation, stalls, STARTTLS
//!   injection, ...), each documented with who behaves like that;
//! * a **scripted mode** ([`Script`]) for exact bytes;
//! * a **transcript** of every connection ([`ServerHandle::transcripts`]),
//!   to assert what a client did or did not send;
//! * a latency-adding TCP proxy ([`DelayProxy`]);
//! * sample content: [`Mailbox::sample`], [`Mailbox::generate`],
//!   [`Message::tricky`].
//!
//! The server processes one command at a time and writes the whole reply
//! before reading the next command; pipelined commands are read from its
//! buffer as they come.
//!
//! # Example
//!
//! ```
//! use std::io::{BufRead, BufReader, Write};
//! use std::net::TcpStream;
//! use pop3_testkit::{Mailbox, Server};
//!
//! let server = Server::builder()
//!     .user("alice", "secret")
//!     .mailbox(Mailbox::new().with("uid-1", "Subject: hi\r\n\r\n.dot\r\n"))
//!     .start()?;
//!
//! let mut stream = TcpStream::connect(server.addr())?;
//! let mut reader = BufReader::new(stream.try_clone()?);
//! let mut line = String::new();
//! let mut next = |line: &mut String| -> std::io::Result<String> {
//!     line.clear();
//!     reader.read_line(line)?;
//!     Ok(line.clone())
//! };
//!
//! assert!(next(&mut line)?.starts_with("+OK POP3 pop3-testkit ready <"));
//! stream.write_all(b"USER alice\r\nPASS secret\r\nRETR 1\r\nDELE 1\r\nQUIT\r\n")?;
//! assert!(next(&mut line)?.starts_with("+OK"));
//! assert_eq!(next(&mut line)?, "+OK alice's maildrop has 1 messages (21 octets)\r\n");
//! assert_eq!(next(&mut line)?, "+OK 21 octets\r\n");
//! assert_eq!(next(&mut line)?, "Subject: hi\r\n");
//! assert_eq!(next(&mut line)?, "\r\n");
//! assert_eq!(next(&mut line)?, "..dot\r\n"); // dot-stuffed on the wire
//! assert_eq!(next(&mut line)?, ".\r\n");
//! assert_eq!(next(&mut line)?, "+OK message 1 deleted\r\n");
//! assert!(next(&mut line)?.starts_with("+OK pop3-testkit signing off"));
//!
//! // QUIT committed the deletion; the transcript shows what was sent.
//! assert!(server.mailbox().is_empty());
//! assert!(server.wait_idle(std::time::Duration::from_secs(5)));
//! assert_eq!(
//!     server.transcripts()[0].client_commands(),
//!     ["USER", "PASS", "RETR", "DELE", "QUIT"]
//! );
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Scripted mode
//!
//! ```
//! use std::io::{Read, Write};
//! use pop3_testkit::{Script, Server};
//!
//! let server = Server::builder()
//!     .script(
//!         Script::new()
//!             .send(b"+OK ready\r\n")
//!             .expect_line("CAPA")
//!             .send(b"-ERR nope\r\n"),
//!     )
//!     .start()?;
//! let mut s = std::net::TcpStream::connect(server.addr())?;
//! s.write_all(b"CAPA\r\n")?;
//! let mut all = String::new();
//! s.read_to_string(&mut all)?; // the server closes after the last step
//! assert_eq!(all, "+OK ready\r\n-ERR nope\r\n");
//! assert!(server.script_result().is_ok());
//! # Ok::<(), std::io::Error>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod io;
mod mailbox;
mod proxy;
mod sample;
mod scram;
mod script;
mod server;
mod session;
#[cfg(feature = "tls")]
mod tls;
mod transcript;

pub use mailbox::{Mailbox, Message};
pub use proxy::DelayProxy;
pub use script::{Script, ScriptError, ScriptOutcome, ScriptStatus};
pub use server::{Server, ServerBuilder, ServerHandle};
pub use session::apop_digest;
#[cfg(feature = "tls")]
pub use tls::TestCa;
pub use transcript::Transcript;

/// The default CAPA list (`STLS` is added when enabled):
/// `TOP`, `USER`, `UIDL`, `PIPELINING`, `RESP-CODES`, `AUTH-RESP-CODE`,
/// `SASL PLAIN`, `IMPLEMENTATION pop3-testkit`.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "TOP",
    "USER",
    "UIDL",
    "PIPELINING",
    "RESP-CODES",
    "AUTH-RESP-CODE",
    "SASL PLAIN",
    "IMPLEMENTATION pop3-testkit",
];

// The crate README's examples run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

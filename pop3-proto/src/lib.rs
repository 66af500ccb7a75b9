//! A sans-IO POP3 client core: no sockets, no threads, no clocks.
//!
//! `pop3-proto` turns [`Command`]s into bytes and server bytes into typed
//! [`Event`]s, and tracks the AUTHORIZATION / TRANSACTION / UPDATE states of
//! RFC 1939. It implements RFC 1939 (POP3), 2449 (CAPA, response codes,
//! pipelining), 2595 (STLS), 3206 (`SYS` and `AUTH` codes), 5034 (SASL AUTH)
//! and 6856 (UTF8, LANG). It is `#![no_std]` (with `alloc`), contains no
//! `unsafe`, and never panics on server input: it can be embedded in any
//! runtime (blocking, tokio, smol, embedded) and driven by any transport.
//!
//! ```text
//!        bytes from the server                         bytes to the server
//!                │                                              ▲
//!   handle_input │ handle_eof                    poll_transmit  │
//!                ▼                                              │
//!   ┌─────────────────────────────────────────────────────────────────┐
//!   │ framing (bounded buffer, lines, dot-unstuffing) → parse (typed)  │
//!   │ → Client state machine (FIFO of commands in flight, pipelining)  │
//!   └─────────────────────────────────────────────────────────────────┘
//!                │ poll_event                         enqueue ▲
//!                ▼                                            │
//!          Event::{Greeting, Ok, Err, BodyChunk, ...}      Command
//! ```
//!
//! # Two layers: the machine and the session
//!
//! [`Client`] is the *machine*: commands to bytes, bytes to events. The
//! [`session`] module is the *session layer* on top of it: every POP3
//! sequence (connect with the STLS policy, the login plan with CAPA
//! refresh, pipelined batches with durable-before-DELE, abandon, the
//! cleartext-credential rule) as typed operations, with per-response
//! deadlines driven by the caller's clock. The adapters `pop3-blocking`
//! and `pop3-tokio` are thin drivers of the session layer; an embedder
//! with another runtime writes a third (see `examples/unix_socket_driver.rs`).
//! This picture is the source of truth where it departs from the design
//! notes:
//!
//! ```text
//!  pop3-proto (no_std + alloc)                  the whole protocol, no I/O, no clock
//!    codec:    command · framing · parse · response · sasl
//!    machine:  Client — handle_input / enqueue / abandon / poll_transmit / poll_event
//!    session:  Session — start_connect / start_login / start_command / batch / abandon
//!              poll() → Action::{Wait, StartTls, BodyStart, Body, Done(Output)}
//!              poll_timeout() / handle_timeout(now): one deadline per whole response
//!         ▲ bytes, now, tls_established(now, channel binding)    ▼ bytes, deadline
//!  pop3-blocking / pop3-tokio / your driver     read, write, TLS handshake, clock
//!  pop3-adapter (std)                           the adapters' one Error, options, log
//!  pop3-rustls (optional)                       TlsOptions → rustls config, tls-exporter
//! ```
//!
//! The session layer's run loop is a doctest in [`session`].
//!
//! # Run loop
//!
//! The caller owns the transport. The single rule: **after every call that
//! feeds the client (`handle_input`, `handle_eof`, `enqueue`, ...), drain
//! [`Client::poll_transmit`] until it returns `None` and write those bytes,
//! then drain [`Client::poll_event`] until it returns `Ok(None)`; repeat
//! while [`Client::wants_write`] is true (a reply can make the next queued
//! command sendable); only then block on I/O.** `poll_event` returning
//! `Ok(None)` means "I need more input or a transmit"; an `Err` is a sticky
//! [`ProtocolError`].
//!
//! This example feeds a canned server transcript instead of a socket:
//!
//! ```
//! use pop3_proto::{Client, Command, Config, Event, MsgNum, Response};
//!
//! let mut config = Config::default();
//! // A canned cleartext transcript: credentials without TLS must be allowed.
//! config.allow_cleartext_credentials = true;
//! let mut client = Client::new(config);
//! let mut to_server = Vec::new();
//! let mut message = Vec::new();
//!
//! client.enqueue(Command::user("alice")?)?;
//! client.enqueue(Command::pass("secret")?)?;
//! let stat = client.enqueue(Command::Stat)?;
//! let retr = client.enqueue(Command::Retr(MsgNum::new(1).unwrap()))?;
//! client.enqueue(Command::Quit)?;
//!
//! // What the server says, one reply per command, in order.
//! let replies: &[&[u8]] = &[
//!     b"+OK POP3 server ready\r\n",
//!     b"+OK\r\n",
//!     b"+OK maildrop locked\r\n",
//!     b"+OK 1 24\r\n",
//!     b"+OK 24 octets\r\nSubject: hi\r\n\r\n..dot\r\n.\r\n",
//!     b"+OK bye\r\n",
//! ];
//! let mut replies = replies.iter();
//! let mut closed = false;
//! while !closed {
//!     // 1. Write whatever the client wants to send.
//!     while let Some(t) = client.poll_transmit(&mut to_server) {
//!         assert!(t.len > 0); // a real adapter writes these bytes now
//!     }
//!     // 2. Drain events.
//!     while let Some(event) = client.poll_event()? {
//!         match event {
//!             Event::Ok { handle, response: Response::Stat(s), .. } if handle == stat => {
//!                 assert_eq!(s.count, 1);
//!             }
//!             Event::BodyChunk { handle, data } if handle == retr => {
//!                 message.extend_from_slice(data);
//!             }
//!             Event::Closed => closed = true,
//!             _ => {}
//!         }
//!     }
//!     // 3. Read from the transport (here: the next canned reply).
//!     if !closed {
//!         client.handle_input(replies.next().expect("transcript ended early"));
//!     }
//! }
//! assert_eq!(to_server, b"USER alice\r\nPASS secret\r\nSTAT\r\nRETR 1\r\nQUIT\r\n");
//! assert_eq!(message, b"Subject: hi\r\n\r\n.dot\r\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Replies, handles and pipelining
//!
//! POP3 replies carry no tag, so the core matches each reply to the oldest
//! command in flight; that command also tells the framer whether `+OK` opens
//! a multi-line block. Every reply event carries the [`Handle`] returned by
//! [`Client::enqueue`].
//!
//! Commands are sent one at a time unless pipelining is allowed
//! ([`Config::pipelining`]: by default only after CAPA reported
//! `PIPELINING`); then up to [`Config::max_in_flight`] go out back to back.
//! STLS, AUTH, USER, PASS, APOP, RPOP and QUIT are barriers: they wait for an
//! empty pipeline and nothing is sent after them until they are answered. A
//! `-ERR` in the middle of a pipeline does not disturb the replies after it.
//!
//! # Bodies and memory
//!
//! RETR and TOP bodies arrive as [`Event::BodyChunk`] slices of the
//! receive buffer (dot-unstuffed, no copy per line, line endings exactly as
//! sent) followed by [`Event::BodyEnd`]. The core never collects a message:
//! once events are drained, its buffer holds at most one partial line
//! (bounded by [`Config::max_line_len`]), so memory is a constant plus one
//! input chunk for a message of any size. LIST, UIDL, CAPA and LANG
//! listings are collected, bounded by [`Config::max_line_len`] per line,
//! [`Config::max_entries`] lines and [`Config::max_listing_bytes`] in all.
//!
//! # Errors versus `-ERR`
//!
//! A server's `-ERR` is data: [`Event::Err`] with a typed [`RespCode`]. Only
//! bytes that break the protocol (or an end of stream where a reply was due,
//! including a truncated body) are a [`ProtocolError`], and those are
//! sticky: the client is poisoned and returns the same error forever.
//! Caller mistakes are [`UsageError`]s and leave the client unchanged.
//!
//! # STLS
//!
//! After `+OK` to STLS the core stops: the caller upgrades the transport
//! and calls [`Client::tls_established`]. Any byte that arrived after the
//! `+OK` line and before that call is a [`ProtocolError::StlsInjection`]
//! (CVE-2021-22947), and capabilities and the greeting learned in cleartext
//! are forgotten.
//!
//! # Secrets
//!
//! Passwords, APOP digests and SASL data are held in [`Secret`], whose
//! `Debug` is redacted; [`Transmit::sensitive`] marks output bytes that must
//! not be logged.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(not(fuzzing), deny(missing_docs))]

// `no_std` forces every std item to be imported explicitly from `alloc` or
// `core`, so accidental std use breaks the build (as in rustls).
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

mod client;
mod command;
mod error;
mod framing;
pub mod login;
mod parse;
mod response;
pub mod sasl;
mod secret;
pub mod session;

pub use client::{Client, Config, Event, Handle, Pipelining, Transmit, MAX_CAPABILITY_LINES};
pub use command::{Arg, Command, MechanismName, MsgNum, MAX_COMMAND_LINE};
pub use error::{CommandError, ProtocolError, UsageError};
pub use response::{
    Capabilities, CommandKind, ErrResponse, Expire, Greeting, Language, ListEntry, RespCode,
    Response, SessionState, Stat, Status, Uid, UidlEntry,
};
pub use secret::Secret;

/// Internals exposed for the fuzz targets (`cargo fuzz` sets `--cfg fuzzing`).
#[cfg(fuzzing)]
pub mod fuzzing {
    pub use crate::parse::{apop_timestamp, capa_line, list_entry, stat, status_text, uidl_entry};
}

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
//!     loop {
//!         // 1. Write whatever the client wants to send.
//!         while let Some(t) = client.poll_transmit(&mut to_server) {
//!             assert!(t.len > 0); // a real adapter writes these bytes now
//!         }
//!         // 2. Drain events.
//!         while let Some(event) = client.poll_event()? {
//!             match event {
//!                 Event::Ok { handle, response: Response::Stat(s), .. } if handle == stat => {
//!                     assert_eq!(s.count, 1);
//!                 }
//!                 Event::BodyChunk { handle, data } if handle == retr => {
//!                     message.extend_from_slice(data);
//!                 }
//!                 Event::Closed => closed = true,
//!                 _ => {}
//!             }
//!         }
//!         // A reply may have made the next command sendable.
//!         if !client.wants_write() {
//!             break;
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
//! Events borrow from the client only for [`Event::BodyChunk`]; to store,
//! send or compare events, convert them with [`Event::into_owned`] into
//! an [`OwnedEvent`] (which copies a chunk).
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
//! # Quirks policy
//!
//! Real servers deviate from the RFCs. The core tolerates a deviation when
//! its meaning is unambiguous and nothing the user relies on can be
//! misread; it is an error when guessing could lose, skip, truncate or
//! delete mail, or let a third party speak for the server. Both lists are
//! tested (`tests/quirks.rs`, `tests/unsolicited.rs`, `tests/traces.rs`).
//!
//! Tolerated:
//!
//! | Deviation | Treatment | Why |
//! |---|---|---|
//! | `+ok`, `-Err` (any case) | a status line | unambiguous, common |
//! | `+OKtext`, `-ERRtext` (no space) | `+OK` / `-ERR` with text `text` | the indicator is unambiguous |
//! | tab instead of space after the indicator; extra blanks | one space or tab is removed, the rest is text | text is informational |
//! | bare LF line endings, anywhere | accepted; body line endings are delivered exactly as sent | common behind proxies and on Unix servers |
//! | blank (spaces/tabs only) lines in LIST, UIDL, CAPA, LANG listings | skipped | they carry nothing |
//! | `[` without a well-formed `]` code | left in the status text | RFC 2449 §8: codes are optional |
//! | unknown capability | kept verbatim in [`Capabilities::other`] | RFC 2449 extensibility |
//! | known capability with arguments that break its grammar: `EXPIRE soon`, `EXPIRE 99999999999`, `LOGIN-DELAY 10 USER extra` | the line is kept verbatim in [`Capabilities::other`]; the typed field stays unset (never guessed) | advisory data; it must not end the session before login |
//! | a capability without arguments given some (`PIPELINING yes`, `STLS now`), `UTF8` with an argument other than `USER` (`UTF8 ACCEPT`) | the capability counts (`UTF8` without the `USER` claim); the line is also kept in [`Capabilities::other`] | the base capability is clearly claimed; the deviation stays visible |
//! | a misspelt capability (`EXPIRENEVER`) | an unknown capability | |
//! | `SASL` with any number of mechanisms | all kept | bounded by [`Config::max_line_len`] |
//! | unique-ids outside RFC 1939's 1–70 printable characters | only with [`Config::lenient_uids`] | opt-in: UIDs decide what is fetched again or deleted |
//!
//! Errors (sticky [`ProtocolError`]s):
//!
//! | Input | Error | Why |
//! |---|---|---|
//! | a status line that is not `+OK` / `-ERR` (`+O`, `OK`, `* OK`), or `+ text` outside AUTH | [`ProtocolError::MalformedStatus`] / [`ProtocolError::BadGreeting`] | success cannot be told from failure |
//! | STAT, LIST or UIDL numbers that do not parse, overflow, or are 0 (message numbers); a strict UID that is malformed | [`ProtocolError::MalformedLine`] | a wrong size or number could truncate, skip or delete the wrong message |
//! | a line over [`Config::max_line_len`], listings over [`Config::max_entries`] or [`Config::max_listing_bytes`] | [`ProtocolError::LineTooLong`], [`ProtocolError::TooManyEntries`], [`ProtocolError::ListingTooLarge`] | bounded memory |
//! | bytes answering no command | [`ProtocolError::UnsolicitedResponse`] | see below |
//! | bytes after `+OK` to STLS, before TLS | [`ProtocolError::StlsInjection`] | CVE-2021-22947 |
//! | end of stream inside a body or where a reply was due | [`ProtocolError::TruncatedBody`], [`ProtocolError::UnexpectedEof`] | a truncated message must never be stored |
//! | `+OK` to AUTH before the mechanism verified the server | [`ProtocolError::Sasl`] | the server did not prove it knows the password |
//!
//! # Unsolicited bytes
//!
//! A reply cannot arrive before its command was sent. Bytes received after
//! the reply to the last command in flight and before the next command
//! went out answer nothing: they are a sticky
//! [`ProtocolError::UnsolicitedResponse`], never the reply to a later
//! command (a server, or a man in the middle, could otherwise make a
//! queued `STAT` or `QUIT` "succeed"). While such bytes are buffered,
//! nothing more is sent. With pipelining, replies to commands already sent
//! are of course fine, in any number per read. SASL is lockstep too: a
//! challenge or `+OK` that arrived before our answer to the previous
//! challenge was sent is unsolicited (so no server, nor anyone between,
//! can claim a login the credentials never reached); an early `-ERR` is
//! still taken as the failure it reports. The core knows the stream
//! offset at which each command was sent, so this holds however reads are
//! split; a caller that feeds a canned transcript must therefore feed each
//! reply after draining [`Client::poll_transmit`], as a real transport
//! does.
//!
//! # STLS
//!
//! After `+OK` to STLS the core stops: the caller upgrades the transport
//! and calls [`Client::tls_established`]. Any byte that arrived after the
//! `+OK` line and before that call is a [`ProtocolError::StlsInjection`]
//! (CVE-2021-22947), and capabilities and the greeting learned in cleartext
//! are forgotten.
//!
//! # Features
//!
//! * `std` (default): `std::error::Error` for the error types, nothing
//!   else.
//! * `scram` (default): the SCRAM-SHA-1/-256 mechanisms
//!   ([`sasl::Scram`]) and their hash dependencies (sha1, sha2, pbkdf2).
//!   Without it, [`login::plan`] and [`sasl::choose`] never pick SCRAM and
//!   [`login::mechanism`] refuses its names.
//!
//! With `--no-default-features` the core enables no `std` feature of any
//! dependency (CI checks it with `cargo tree`; the MSRV of 1.81 matters,
//! as thiserror turns `std` on for older compilers).
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
mod owned_event;
mod parse;
mod response;
pub mod sasl;
mod secret;
pub mod session;

pub use client::{Client, Config, Event, Handle, Pipelining, Transmit, MAX_CAPABILITY_LINES};
pub use command::{
    Apop, ApopDigest, Command, LangTag, MechanismName, MsgNum, Password, UserName, MAX_COMMAND_LINE,
};
pub use error::{CommandError, ProtocolError, UsageError};
pub use owned_event::OwnedEvent;
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

// The crate README's examples run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

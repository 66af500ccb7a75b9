//! [`OwnedEvent`]: an [`Event`] that owns its data, so it can be stored,
//! sent to another task and compared.

use alloc::vec::Vec;

use crate::client::{Event, Handle};
use crate::error::UsageError;
use crate::response::{CommandKind, ErrResponse, Greeting, Response, SessionState};
use crate::sasl::SaslError;

/// An [`Event`] that owns its data: the same variants with the same
/// fields, except that a body chunk is a `Vec<u8>` instead of a slice of
/// the client's receive buffer.
///
/// Build one with [`Event::into_owned`] or `OwnedEvent::from(event)`. It is
/// `Clone`, `PartialEq` and `Eq`, so it can be queued, handed to another
/// task or compared in tests. Converting a body chunk copies it: a caller
/// that streams large bodies should write [`Event::BodyChunk`] slices out
/// directly and convert only the other events.
///
/// ```
/// use pop3_proto::{Client, Config, OwnedEvent};
///
/// let mut client = Client::new(Config::default());
/// client.handle_input(b"+OK ready\r\n");
/// let mut events = Vec::new();
/// while let Some(ev) = client.poll_event()? {
///     events.push(ev.into_owned());
/// }
/// assert!(matches!(events[0], OwnedEvent::Greeting(_)));
/// # Ok::<(), pop3_proto::ProtocolError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OwnedEvent {
    /// See [`Event::Greeting`].
    Greeting(Greeting),
    /// See [`Event::GreetingRefused`].
    GreetingRefused(ErrResponse),
    /// See [`Event::Ok`].
    Ok {
        /// The command's handle.
        handle: Handle,
        /// Which command it was.
        command: CommandKind,
        /// The typed reply.
        response: Response,
    },
    /// See [`Event::Err`].
    Err {
        /// The command's handle.
        handle: Handle,
        /// Which command it was.
        command: CommandKind,
        /// The server's response code and text.
        response: ErrResponse,
    },
    /// See [`Event::Continuation`].
    Continuation {
        /// The AUTH command's handle.
        handle: Handle,
        /// The base64-decoded challenge (empty for a bare `+`).
        challenge: Vec<u8>,
    },
    /// See [`Event::AuthCancelled`].
    AuthCancelled {
        /// The AUTH command's handle.
        handle: Handle,
        /// Why the mechanism gave up.
        error: SaslError,
        /// The server's reply to the cancel.
        response: ErrResponse,
    },
    /// See [`Event::BodyChunk`]; the bytes are copied.
    BodyChunk {
        /// The RETR/TOP command's handle.
        handle: Handle,
        /// The bytes (dot-unstuffed, line endings as sent).
        data: Vec<u8>,
    },
    /// See [`Event::BodyEnd`].
    BodyEnd {
        /// The RETR/TOP command's handle.
        handle: Handle,
        /// Total body bytes delivered.
        octets: u64,
    },
    /// See [`Event::Rejected`].
    Rejected {
        /// The dropped command's handle.
        handle: Handle,
        /// Which command it was.
        command: CommandKind,
        /// Why.
        error: UsageError,
    },
    /// See [`Event::StateChanged`].
    StateChanged {
        /// The previous state.
        from: SessionState,
        /// The new state.
        to: SessionState,
    },
    /// See [`Event::Closed`].
    Closed,
}

impl OwnedEvent {
    /// The handle of the command this event belongs to, if any (as
    /// [`Event::handle`]).
    pub fn handle(&self) -> Option<Handle> {
        match self {
            OwnedEvent::Ok { handle, .. }
            | OwnedEvent::Err { handle, .. }
            | OwnedEvent::Continuation { handle, .. }
            | OwnedEvent::AuthCancelled { handle, .. }
            | OwnedEvent::BodyChunk { handle, .. }
            | OwnedEvent::BodyEnd { handle, .. }
            | OwnedEvent::Rejected { handle, .. } => Some(*handle),
            OwnedEvent::Greeting(_)
            | OwnedEvent::GreetingRefused(_)
            | OwnedEvent::StateChanged { .. }
            | OwnedEvent::Closed => None,
        }
    }
}

impl Event<'_> {
    /// Converts this event into an [`OwnedEvent`] (copying a body chunk).
    pub fn into_owned(self) -> OwnedEvent {
        OwnedEvent::from(self)
    }
}

impl From<Event<'_>> for OwnedEvent {
    fn from(ev: Event<'_>) -> OwnedEvent {
        match ev {
            Event::Greeting(g) => OwnedEvent::Greeting(g),
            Event::GreetingRefused(r) => OwnedEvent::GreetingRefused(r),
            Event::Ok {
                handle,
                command,
                response,
            } => OwnedEvent::Ok {
                handle,
                command,
                response,
            },
            Event::Err {
                handle,
                command,
                response,
            } => OwnedEvent::Err {
                handle,
                command,
                response,
            },
            Event::Continuation { handle, challenge } => {
                OwnedEvent::Continuation { handle, challenge }
            }
            Event::AuthCancelled {
                handle,
                error,
                response,
            } => OwnedEvent::AuthCancelled {
                handle,
                error,
                response,
            },
            Event::BodyChunk { handle, data } => OwnedEvent::BodyChunk {
                handle,
                data: data.to_vec(),
            },
            Event::BodyEnd { handle, octets } => OwnedEvent::BodyEnd { handle, octets },
            Event::Rejected {
                handle,
                command,
                error,
            } => OwnedEvent::Rejected {
                handle,
                command,
                error,
            },
            Event::StateChanged { from, to } => OwnedEvent::StateChanged { from, to },
            Event::Closed => OwnedEvent::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Client, Command, Config, MsgNum};

    #[test]
    fn every_event_of_a_session_converts_and_compares() {
        let mut c = Client::new(Config {
            allow_cleartext_credentials: true,
            ..Config::default()
        });
        let mut out = Vec::new();
        c.handle_input(b"+OK hi <1@x>\r\n");
        let mut evs = Vec::new();
        while let Some(e) = c.poll_event().unwrap() {
            evs.push(e.into_owned());
        }
        c.enqueue(Command::user("u").unwrap()).unwrap();
        c.enqueue(Command::pass("p").unwrap()).unwrap();
        let retr = c.enqueue(Command::Retr(MsgNum::new(1).unwrap())).unwrap();
        for reply in [&b"+OK\r\n"[..], b"+OK\r\n", b"+OK\r\nab\r\n..c\r\n.\r\n"] {
            while c.poll_transmit(&mut out).is_some() {}
            c.handle_input(reply);
            while let Some(e) = c.poll_event().unwrap() {
                evs.push(OwnedEvent::from(e));
            }
        }
        let body: Vec<u8> = evs
            .iter()
            .filter_map(|e| match e {
                OwnedEvent::BodyChunk { handle, data } if *handle == retr => Some(data.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(body, b"ab\r\n.c\r\n");
        assert!(evs.contains(&OwnedEvent::BodyEnd {
            handle: retr,
            octets: 8
        }));
        assert_eq!(
            evs[1],
            OwnedEvent::StateChanged {
                from: SessionState::Greeting,
                to: SessionState::Authorization
            }
        );
        let copy = evs.clone();
        assert_eq!(copy, evs);
        assert_eq!(evs.last().and_then(OwnedEvent::handle), Some(retr));
        assert_ne!(evs[0], OwnedEvent::Closed);
    }
}

//! Messages and mailboxes served by the test server.

use std::fmt;
use std::sync::Arc;

/// One message in a [`Mailbox`]: a unique-id (for `UIDL`) and the raw message
/// bytes exactly as stored.
///
/// The bytes should use CRLF line endings (RFC 5322 / RFC 1939); the server
/// dot-stuffs them when sending `RETR`/`TOP` replies, so store them
/// *unstuffed*. The size reported by `STAT`/`LIST` is `data().len()`.
/// Cloning is cheap (the bytes are reference counted).
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    uid: Arc<str>,
    data: Arc<[u8]>,
}

impl Message {
    /// Creates a message from its unique-id and raw (unstuffed, CRLF) bytes.
    pub fn new(uid: impl Into<String>, data: impl Into<Vec<u8>>) -> Message {
        let uid: String = uid.into();
        let data: Vec<u8> = data.into();
        Message {
            uid: uid.into(),
            data: data.into(),
        }
    }

    /// The unique-id reported by `UIDL`.
    pub fn uid(&self) -> &str {
        &self.uid
    }

    /// The raw message bytes as stored (unstuffed).
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The size in octets reported by `STAT` and `LIST` (`data().len()`).
    pub fn size(&self) -> usize {
        self.data.len()
    }

    /// A message meant to break naive clients: lines starting with `.`, a line
    /// consisting of a single `.`, a line of `..`, a very long line (10 000
    /// bytes, no folding), 8-bit (Latin-1 and UTF-8) bytes, a NUL byte, a bare
    /// CR inside a line, and a body that does not end with CRLF.
    ///
    /// A correct client must get back exactly [`Message::data`] after
    /// un-stuffing a `RETR` (plus the CRLF the server adds before the
    /// terminator because the data does not end with one).
    pub fn tricky(uid: impl Into<String>) -> Message {
        let mut d = Vec::new();
        d.extend_from_slice(
            b"From: Tricky Sender <tricky@example.org>\r\n\
To: alice@example.com\r\n\
Subject: dots, long lines and 8-bit bytes\r\n\
Date: Mon, 06 Jan 2025 10:00:00 +0000\r\n\
Message-ID: <tricky-1@example.org>\r\n\
Content-Type: text/plain; charset=ISO-8859-1\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
.leading dot\r\n\
.\r\n\
..\r\n\
...three dots\r\n\
. space after dot\r\n",
        );
        d.extend_from_slice(b"long line: ");
        for i in 0..10_000 - 11 {
            d.push(b'a' + (i % 26) as u8);
        }
        d.extend_from_slice(b"\r\n");
        d.extend_from_slice(b"latin-1: caf\xe9 na\xefve \xff\xfe\r\n");
        d.extend_from_slice("utf-8: café naïve ✓\r\n".as_bytes());
        d.extend_from_slice(b"nul byte: [\0] end\r\n");
        d.extend_from_slice(b"bare CR: [\r] inside a line\r\n");
        d.extend_from_slice(b".\r\n");
        d.extend_from_slice(b"last line without CRLF");
        Message::new(uid, d)
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("uid", &self.uid)
            .field("size", &self.data.len())
            .finish()
    }
}

/// An ordered list of messages (message number `n` is `messages()[n - 1]`).
///
/// Give one to [`ServerBuilder::mailbox`](crate::ServerBuilder::mailbox); the
/// server shares it between all connections and all users, and
/// [`ServerHandle::mailbox`](crate::ServerHandle::mailbox) returns what is
/// left after committed deletions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mailbox {
    messages: Vec<Message>,
}

impl Mailbox {
    /// An empty mailbox.
    pub fn new() -> Mailbox {
        Mailbox::default()
    }

    /// Builder style: appends a message and returns the mailbox.
    pub fn with(mut self, uid: impl Into<String>, data: impl Into<Vec<u8>>) -> Mailbox {
        self.push(Message::new(uid, data));
        self
    }

    /// Appends a message.
    pub fn push(&mut self, message: Message) {
        self.messages.push(message);
    }

    /// The messages, in message-number order.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether there are no messages.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Sum of all message sizes in octets (what `STAT` reports).
    pub fn total_size(&self) -> usize {
        self.messages.iter().map(Message::size).sum()
    }

    /// The unique-ids, in message-number order.
    pub fn uids(&self) -> Vec<String> {
        self.messages.iter().map(|m| m.uid().to_string()).collect()
    }

    /// The message with this unique-id, if any.
    pub fn get(&self, uid: &str) -> Option<&Message> {
        self.messages.iter().find(|m| m.uid() == uid)
    }

    /// Six realistic messages for demos: different senders, subjects and
    /// dates; message 3 has an RFC 2047 encoded-word subject
    /// (`=?UTF-8?B?...?=`), message 4 is `multipart/alternative` (with a
    /// quoted-printable part), message 5 has body lines starting with `.`
    /// (and a line that is a single `.`). UIDs are `sample-0001` to
    /// `sample-0006`.
    pub fn sample() -> Mailbox {
        let mut mb = Mailbox::new();
        for (i, text) in crate::sample::SAMPLE_MESSAGES.iter().enumerate() {
            mb.push(Message::new(
                format!("sample-{:04}", i + 1),
                crate::sample::to_crlf(text),
            ));
        }
        mb
    }

    /// `n` deterministic messages of roughly `size` bytes each (never less
    /// than the ~300 bytes of headers), for benchmarks. Bodies are realistic
    /// text lines of up to 76 characters; about one line in twelve starts with
    /// `.` so dot-stuffing is exercised. UIDs are `gen-000001`, ... The same
    /// arguments always give the same bytes.
    pub fn generate(n: usize, size: usize) -> Mailbox {
        let mut mb = Mailbox::new();
        for i in 0..n {
            mb.push(Message::new(
                format!("gen-{:06}", i + 1),
                crate::sample::generate_message(i, size),
            ));
        }
        mb
    }
}

impl FromIterator<Message> for Mailbox {
    fn from_iter<T: IntoIterator<Item = Message>>(iter: T) -> Mailbox {
        Mailbox {
            messages: iter.into_iter().collect(),
        }
    }
}

impl From<Vec<Message>> for Mailbox {
    fn from(messages: Vec<Message>) -> Mailbox {
        Mailbox { messages }
    }
}

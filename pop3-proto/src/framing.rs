//! Framing of the server byte stream: a bounded receive buffer that yields
//! complete lines, and the dot-unstuffing body scanner for RETR/TOP.
//!
//! Nothing here knows what a line means; `client.rs` decides which mode the
//! next bytes are read in (status line, listing entry, body).

use alloc::vec::Vec;
use core::ops::Range;

use memchr::memmem;

/// The core's receive buffer. Bytes are appended by `push` and consumed from
/// the front; consumed space is reclaimed on the next `push`, so after the
/// caller drained all events the buffer holds at most one partial line
/// (bounded by the line limit) or a few held-back body bytes.
#[derive(Debug)]
pub(crate) struct RecvBuf {
    buf: Vec<u8>,
    /// Start of the unconsumed bytes.
    start: usize,
    /// Absolute offset up to which the current partial line is known to hold
    /// no LF, so a growing line is never rescanned (httparse's warning).
    scanned: usize,
}

/// What a drained buffer may keep while no reply is expected.
const IDLE_KEEP: usize = 4 * 1024;

/// Above this capacity an idle buffer gives memory back.
const SHRINK_ABOVE: usize = 256 * 1024;

impl RecvBuf {
    pub(crate) fn new() -> Self {
        RecvBuf {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
        }
    }

    /// Appends input, first reclaiming consumed space.
    pub(crate) fn push(&mut self, data: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        if self.buf.capacity() > SHRINK_ABOVE
            && self.buf.len() + data.len() < self.buf.capacity() / 4
        {
            self.buf
                .shrink_to((self.buf.len() + data.len()).max(SHRINK_ABOVE / 4));
        }
        // Grow to what is needed plus a quarter of the chunk (room for the
        // partial line kept across pushes), not to twice the capacity: the
        // buffer stays bounded by about one input chunk plus one partial
        // line whatever the reads' sizes and timing, and reallocates only
        // when a longer partial line comes.
        if self.buf.len() + data.len() > self.buf.capacity() {
            self.buf.reserve_exact(data.len() + data.len() / 4);
        }
        self.buf.extend_from_slice(data);
    }

    /// Gives the memory back once everything was consumed and the buffer
    /// grew beyond [`IDLE_KEEP`] (after a body or a listing): an idle
    /// session keeps no large buffer.
    pub(crate) fn trim_idle(&mut self) {
        if self.start == self.buf.len() && self.buf.capacity() > IDLE_KEEP {
            self.buf = Vec::new();
            self.start = 0;
            self.scanned = 0;
        }
    }

    /// Appends input without reclaiming consumed space (so ranges handed
    /// out earlier stay valid).
    pub(crate) fn append(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The unconsumed bytes.
    pub(crate) fn avail(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.buf.len()
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Marks `n` bytes consumed.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.buf.len());
        if self.scanned < self.start {
            self.scanned = self.start;
        }
    }

    /// Drops everything buffered.
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.start = 0;
        self.scanned = 0;
    }

    /// The bytes in `range` (absolute offsets from `next_line` / body scan).
    pub(crate) fn slice(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// The capacity of the underlying buffer (for memory-bound tests).
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Takes the next complete line (LF-terminated; a CR before the LF is
    /// stripped) and returns its absolute range without the line ending.
    /// `Ok(None)` means more input is needed; `Err(())` means the partial
    /// line already exceeds `limit` bytes.
    pub(crate) fn next_line(&mut self, limit: usize) -> Result<Option<Range<usize>>, ()> {
        let from = self.scanned.max(self.start);
        match memchr::memchr(b'\n', &self.buf[from..]) {
            Some(rel) => {
                let lf = from + rel;
                let mut end = lf;
                if end > self.start && self.buf[end - 1] == b'\r' {
                    end -= 1;
                }
                if end - self.start > limit {
                    return Err(());
                }
                let line = self.start..end;
                self.start = lf + 1;
                self.scanned = self.start;
                Ok(Some(line))
            }
            None => {
                self.scanned = self.buf.len();
                let partial = &self.buf[self.start..];
                // A line of exactly `limit` bytes may already have its CR
                // buffered while the LF is still on its way: that is not
                // over the limit (the verdict must not depend on chunking).
                let over = partial.len() > limit
                    && !(partial.len() == limit + 1 && partial.last() == Some(&b'\r'));
                if over {
                    Err(())
                } else {
                    Ok(None)
                }
            }
        }
    }
}

/// State of the dot-unstuffing scanner for one multi-line body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyScan {
    /// The next byte starts a line (so a `.` there is special).
    pub(crate) at_line_start: bool,
    /// Body bytes delivered so far.
    pub(crate) delivered: u64,
}

/// What the body scanner found in the buffered bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyStep {
    /// Need more input (nothing consumed).
    NeedMore,
    /// A slice of body bytes (absolute range) to hand to the caller; the
    /// bytes are already consumed.
    Chunk(Range<usize>),
    /// The terminating `.CRLF` / `.LF` was consumed.
    End,
}

/// One step of dot-unstuffing (RFC 1939 §3): at a line start, `.` + CRLF or
/// `.` + LF ends the body, and any other leading `.` is removed, whatever
/// follows it. Everything else passes through exactly as sent. The longest
/// run without a line starting with `.` is returned as one chunk, so a
/// typical message is delivered in a few large slices, and no byte is
/// scanned twice.
pub(crate) fn body_step(
    buf: &mut RecvBuf,
    scan: &mut BodyScan,
    finder: &memmem::Finder<'_>,
) -> BodyStep {
    loop {
        let avail = buf.avail();
        if avail.is_empty() {
            return BodyStep::NeedMore;
        }
        if scan.at_line_start && avail[0] == b'.' {
            match avail.get(1) {
                None => return BodyStep::NeedMore,
                Some(b'\n') => {
                    buf.consume(2);
                    return BodyStep::End;
                }
                Some(b'\r') => match avail.get(2) {
                    None => return BodyStep::NeedMore,
                    Some(b'\n') => {
                        buf.consume(3);
                        return BodyStep::End;
                    }
                    Some(_) => {
                        // ".\rX": a stuffed dot before a lone CR.
                        buf.consume(1);
                        scan.at_line_start = false;
                        continue;
                    }
                },
                Some(_) => {
                    // A stuffed dot: drop it, the rest of the line is data.
                    buf.consume(1);
                    scan.at_line_start = false;
                    continue;
                }
            }
        }
        let start = buf.start;
        // Deliver up to and including the LF of the next line that starts
        // with '.', or everything buffered when there is none.
        let len = match finder.find(avail) {
            Some(p) => {
                scan.at_line_start = true;
                p + 1
            }
            None => {
                scan.at_line_start = avail[avail.len() - 1] == b'\n';
                avail.len()
            }
        };
        buf.consume(len);
        scan.delivered += len as u64;
        return BodyStep::Chunk(start..start + len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8], split: usize) -> (Vec<u8>, bool, usize) {
        let finder = memmem::Finder::new(b"\n.");
        let mut buf = RecvBuf::new();
        let mut scan = BodyScan {
            at_line_start: true,
            delivered: 0,
        };
        let mut out = Vec::new();
        let mut ended = false;
        let mut rest_at = input.len();
        'outer: for (i, chunk) in input.chunks(split.max(1)).enumerate() {
            buf.push(chunk);
            loop {
                match body_step(&mut buf, &mut scan, &finder) {
                    BodyStep::NeedMore => break,
                    BodyStep::Chunk(r) => out.extend_from_slice(buf.slice(r)),
                    BodyStep::End => {
                        ended = true;
                        rest_at = i * split.max(1) + chunk.len() - buf.len();
                        break 'outer;
                    }
                }
            }
        }
        (out, ended, rest_at)
    }

    #[test]
    fn unstuffing_known_answers() {
        let cases: &[(&[u8], &[u8])] = &[
            (b".\r\n", b""),
            (b".\n", b""),
            (b"a\r\n.\r\n", b"a\r\n"),
            (b"..\r\n.\r\n", b".\r\n"),
            (b"..x\r\n.\r\n", b".x\r\n"),
            (b". \r\n.\r\n", b" \r\n"),
            (b".x\r\n.\r\n", b"x\r\n"),
            (b"a\n..\nb\n.\n", b"a\n.\nb\n"),
            (b"\r\n\r\n.\r\n", b"\r\n\r\n"),
            (b"a.b\r\n.c\r\n.\r\n", b"a.b\r\nc\r\n"),
            (b".\rx\r\n.\r\n", b"\rx\r\n"),
            (b"\x00\xff\xfe\r\n.\r\n", b"\x00\xff\xfe\r\n"),
            (b"no newline at end\r\n.\r\n", b"no newline at end\r\n"),
        ];
        for (input, want) in cases {
            for split in 1..=input.len() {
                let (out, ended, rest) = decode_all(input, split);
                assert!(ended, "{input:?} split {split}");
                assert_eq!(&out, want, "{input:?} split {split}");
                assert_eq!(rest, input.len());
            }
        }
    }

    #[test]
    fn terminator_leaves_following_bytes() {
        let (out, ended, rest) = decode_all(b"x\r\n.\r\n+OK next\r\n", 4);
        assert!(ended);
        assert_eq!(out, b"x\r\n");
        assert_eq!(rest, 6);
    }

    #[test]
    fn lines_are_framed_with_limit() {
        let mut b = RecvBuf::new();
        b.push(b"+OK a\r\n-ERR");
        let r = b.next_line(100).unwrap().unwrap();
        assert_eq!(b.slice(r), b"+OK a");
        assert_eq!(b.next_line(100), Ok(None));
        b.push(b" b\n");
        let r = b.next_line(100).unwrap().unwrap();
        assert_eq!(b.slice(r), b"-ERR b");
        b.push(&[b'x'; 101]);
        assert_eq!(b.next_line(100), Err(()));
    }
}

//! Streaming conversions applied while a message is stored: line endings
//! (CRLF → LF, LF → CRLF, or none), mboxrd `From ` quoting, and the mbox
//! `From ` line built from the envelope sender.

use memchr::memchr;

/// How stored messages end their lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LineEndings {
    /// LF, as mpop, procmail and Dovecot's delivery write (RFC 4155); the
    /// default for Maildir and mbox.
    Lf,
    /// CRLF, as on the wire.
    Crlf,
    /// The bytes exactly as received; the default for `.eml` files.
    Keep,
}

/// A streaming transformer: feed chunks with [`Transform::push`], end with
/// [`Transform::finish`]. Constant memory: a CR at a chunk boundary and an
/// undecided `>*From ` line start are the only state.
#[derive(Debug)]
pub struct Transform {
    endings: LineEndings,
    mboxrd: bool,
    /// LF mode: a CR ended the previous chunk.
    pending_cr: bool,
    /// CRLF mode: the last byte seen was a CR.
    prev_cr: bool,
    /// mboxrd: at the start of a line, these bytes (`>*` then a prefix of
    /// `From `) are held until the line is known to need quoting or not.
    head: Vec<u8>,
    at_line_start: bool,
    scratch: Vec<u8>,
    last: Option<u8>,
}

impl Transform {
    /// A transformer; `mboxrd` quotes `>*From ` lines.
    pub fn new(endings: LineEndings, mboxrd: bool) -> Transform {
        Transform {
            endings,
            mboxrd,
            pending_cr: false,
            prev_cr: false,
            head: Vec::new(),
            at_line_start: true,
            scratch: Vec::new(),
            last: None,
        }
    }

    /// Back to the start of a message.
    pub fn reset(&mut self) {
        self.pending_cr = false;
        self.prev_cr = false;
        self.head.clear();
        self.at_line_start = true;
        self.last = None;
    }

    /// The last byte written for this message.
    pub fn last_byte(&self) -> Option<u8> {
        self.last
    }

    /// Converts `chunk`, appending the result to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if chunk.is_empty() {
            return;
        }
        if !self.mboxrd {
            let start = out.len();
            self.endings_into(chunk, out);
            if out.len() > start {
                self.last = out.last().copied();
            }
            return;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        self.endings_into(chunk, &mut scratch);
        let start = out.len();
        self.quote_into(&scratch, out);
        if out.len() > start {
            self.last = out.last().copied();
        }
        self.scratch = scratch;
    }

    /// Ends the message: a held CR or line start is written out.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.pending_cr {
            self.pending_cr = false;
            if self.mboxrd {
                let start = out.len();
                self.quote_into(b"\r", out);
                if out.len() > start {
                    self.last = out.last().copied();
                }
            } else {
                out.push(b'\r');
                self.last = Some(b'\r');
            }
        }
        if !self.head.is_empty() {
            out.extend_from_slice(&self.head);
            self.last = self.head.last().copied();
            self.head.clear();
        }
    }

    fn endings_into(&mut self, mut chunk: &[u8], out: &mut Vec<u8>) {
        match self.endings {
            LineEndings::Keep => out.extend_from_slice(chunk),
            LineEndings::Lf => {
                if self.pending_cr {
                    self.pending_cr = false;
                    if chunk[0] == b'\n' {
                        out.push(b'\n');
                        chunk = &chunk[1..];
                    } else {
                        out.push(b'\r');
                    }
                }
                while let Some(i) = memchr(b'\r', chunk) {
                    out.extend_from_slice(&chunk[..i]);
                    match chunk.get(i + 1) {
                        None => {
                            self.pending_cr = true;
                            return;
                        }
                        Some(b'\n') => {
                            out.push(b'\n');
                            chunk = &chunk[i + 2..];
                        }
                        Some(_) => {
                            out.push(b'\r');
                            chunk = &chunk[i + 1..];
                        }
                    }
                }
                out.extend_from_slice(chunk);
            }
            LineEndings::Crlf => {
                while let Some(i) = memchr(b'\n', chunk) {
                    let before_cr = if i == 0 {
                        self.prev_cr
                    } else {
                        chunk[i - 1] == b'\r'
                    };
                    out.extend_from_slice(&chunk[..i]);
                    if !before_cr {
                        out.push(b'\r');
                    }
                    out.push(b'\n');
                    self.prev_cr = false;
                    chunk = &chunk[i + 1..];
                }
                if let Some(&l) = chunk.last() {
                    self.prev_cr = l == b'\r';
                }
                out.extend_from_slice(chunk);
            }
        }
    }

    /// mboxrd: one more `>` before every line matching `^>*From `.
    fn quote_into(&mut self, mut data: &[u8], out: &mut Vec<u8>) {
        const FROM: &[u8] = b"From ";
        while !data.is_empty() {
            if self.at_line_start {
                // Hold bytes while they could still become `>*From `.
                while let Some((&b, rest)) = data.split_first() {
                    let gts = self.head.iter().take_while(|&&c| c == b'>').count();
                    let tail = self.head.len() - gts;
                    let fits = if tail == 0 {
                        b == b'>' || b == FROM[0]
                    } else {
                        FROM[tail] == b
                    };
                    if !fits {
                        out.extend_from_slice(&self.head);
                        self.head.clear();
                        self.at_line_start = false;
                        break;
                    }
                    self.head.push(b);
                    data = rest;
                    if self.head.len() - gts == FROM.len() {
                        out.push(b'>');
                        out.extend_from_slice(&self.head);
                        self.head.clear();
                        self.at_line_start = false;
                        break;
                    }
                }
                if self.at_line_start {
                    // Ran out of data while undecided.
                    return;
                }
            }
            match memchr(b'\n', data) {
                Some(i) => {
                    out.extend_from_slice(&data[..=i]);
                    data = &data[i + 1..];
                    self.at_line_start = true;
                }
                None => {
                    out.extend_from_slice(data);
                    data = &[];
                }
            }
        }
    }
}

/// The envelope sender for the mbox `From ` line: the address of the first
/// `Return-Path:` header in `header` (the raw start of the message), else
/// `MAILER-DAEMON` (also for `<>` and anything with spaces or control
/// bytes).
pub fn envelope_sender(header: &[u8]) -> String {
    let fallback = || String::from("MAILER-DAEMON");
    for line in header.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.len() >= 12 && line[..12].eq_ignore_ascii_case(b"return-path:") {
            let v = trim(&line[12..]);
            let v = v.strip_prefix(b"<").unwrap_or(v);
            let v = v.strip_suffix(b">").unwrap_or(v);
            let v = trim(v);
            if v.is_empty() || !v.iter().all(|&b| (0x21..=0x7e).contains(&b)) || v.len() > 512 {
                return fallback();
            }
            return String::from_utf8_lossy(v).into_owned();
        }
    }
    fallback()
}

fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Whether `buf` holds the whole header (ends at an empty line).
pub fn header_complete(buf: &[u8]) -> bool {
    buf.starts_with(b"\n")
        || buf.starts_with(b"\r\n")
        || memchr::memmem::find(buf, b"\n\n").is_some()
        || memchr::memmem::find(buf, b"\n\r\n").is_some()
}

/// `Thu Jan  1 00:00:00 1970` (UTC, asctime format) for an mbox `From `
/// line.
pub fn asctime(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {}",
        WD[days.rem_euclid(7) as usize],
        MON[(month - 1) as usize],
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        year
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every split of `input` into two and three chunks gives `want`.
    fn check(endings: LineEndings, mboxrd: bool, input: &[u8], want: &[u8]) {
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let mut t = Transform::new(endings, mboxrd);
                let mut out = Vec::new();
                t.push(&input[..i], &mut out);
                t.push(&input[i..j], &mut out);
                t.push(&input[j..], &mut out);
                t.finish(&mut out);
                assert_eq!(
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(want),
                    "split {i} {j}"
                );
                assert_eq!(t.last_byte(), want.last().copied(), "split {i} {j}");
            }
        }
    }

    #[test]
    fn line_endings_at_every_chunk_boundary() {
        let msg = b"a\r\nb\rc\r\n\r\nd\ne\r";
        check(LineEndings::Lf, false, msg, b"a\nb\rc\n\nd\ne\r");
        check(LineEndings::Crlf, false, msg, b"a\r\nb\rc\r\n\r\nd\r\ne\r");
        check(LineEndings::Keep, false, msg, msg);
    }

    #[test]
    fn mboxrd_quoting_at_every_chunk_boundary() {
        let msg =
            b"From x\r\n\r\nFrom here\r\n>From there\r\n>>From x\r\nFromage\r\n>Fro\r\nlast >From";
        check(
            LineEndings::Lf,
            true,
            msg,
            b">From x\n\n>From here\n>>From there\n>>>From x\nFromage\n>Fro\nlast >From",
        );
        check(LineEndings::Keep, true, b">>Fro", b">>Fro");
    }

    #[test]
    fn envelope() {
        assert_eq!(
            envelope_sender(b"Return-Path: <bob@example.org>\r\nFrom: x\r\n\r\n"),
            "bob@example.org"
        );
        assert_eq!(envelope_sender(b"return-path:  <>\n\n"), "MAILER-DAEMON");
        assert_eq!(
            envelope_sender(b"From: x\n\nReturn-Path: <a@b>\n"),
            "MAILER-DAEMON"
        );
        assert_eq!(envelope_sender(b"Return-Path: <a b@c>\n"), "MAILER-DAEMON");
        assert_eq!(asctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(asctime(1_700_000_000), "Tue Nov 14 22:13:20 2023");
        assert!(header_complete(b"a: b\r\n\r\n"));
        assert!(!header_complete(b"a: b\r\n"));
    }
}

//! The simple commands: capa, stat, list, uidl, retr, top, dele, headers.

use std::io::{self, Write};
use std::path::Path;

use mail_parser::MessageParser;
use pop3_blocking::{Capabilities, Disposition, Error, MessageSink};
use serde_json::json;

use crate::cli::Cli;
use crate::durable;
use crate::error::CliError;
use crate::output::{self, human_size, json_line, table, truncate, Align};
use crate::sanitize::{clean, clean_bytes};
use crate::session::{self, Server};
use pop3_blocking::TcpClient;

/// The capability lines, in a conventional order.
fn capability_lines(c: &Capabilities) -> Vec<String> {
    let mut v = Vec::new();
    let mut flag = |on: bool, name: &str| {
        if on {
            v.push(name.to_string());
        }
    };
    flag(c.top, "TOP");
    flag(c.user, "USER");
    flag(c.uidl, "UIDL");
    flag(c.pipelining, "PIPELINING");
    flag(c.resp_codes, "RESP-CODES");
    flag(c.auth_resp_code, "AUTH-RESP-CODE");
    flag(c.stls, "STLS");
    flag(c.lang, "LANG");
    if !c.sasl.is_empty() {
        v.push(format!("SASL {}", c.sasl.join(" ")));
    }
    match c.utf8 {
        Some(true) => v.push(String::from("UTF8 USER")),
        Some(false) => v.push(String::from("UTF8")),
        None => {}
    }
    if let Some((e, per_user)) = c.expire {
        let value = match e {
            pop3_blocking::pop3_proto::Expire::Never => String::from("NEVER"),
            pop3_blocking::pop3_proto::Expire::Days(d) => d.to_string(),
        };
        v.push(format!(
            "EXPIRE {value}{}",
            if per_user { " USER" } else { "" }
        ));
    }
    if let Some((d, per_user)) = c.login_delay {
        v.push(format!(
            "LOGIN-DELAY {d}{}",
            if per_user { " USER" } else { "" }
        ));
    }
    if let Some(i) = &c.implementation {
        v.push(format!("IMPLEMENTATION {i}"));
    }
    v.extend(c.other.iter().cloned());
    v
}

/// What a capability means, in a few words (as `mpop --serverinfo`).
pub fn explain_capability(line: &str) -> &'static str {
    let name = line.split_whitespace().next().unwrap_or("");
    match name.to_ascii_uppercase().as_str() {
        "TOP" => "headers and first lines of a message without downloading it",
        "USER" => "login with USER and PASS",
        "UIDL" => "stable unique ids: fetch only new messages",
        "PIPELINING" => "several commands in flight: faster fetches",
        "RESP-CODES" => "machine-readable reasons in -ERR replies",
        "AUTH-RESP-CODE" => "tells a wrong password apart from other login failures",
        "STLS" => "upgrade to TLS on this port (STARTTLS)",
        "LANG" => "server messages in other languages",
        "SASL" => "SASL authentication with these mechanisms",
        "UTF8" => "UTF-8 user names, passwords and messages",
        "EXPIRE" => "days messages are kept on the server (NEVER: kept)",
        "LOGIN-DELAY" => "minimum seconds between logins",
        "IMPLEMENTATION" => "the server software",
        "APOP" => "challenge-response login without sending the password",
        _ => "(not known to pop3)",
    }
}

/// The TLS connection's facts for `capa --tls-info`: `(label, value)`
/// pairs, in display order; `None` without TLS.
fn tls_info(c: &TcpClient) -> Option<Vec<(&'static str, String)>> {
    let conn = c.get_ref().tls_connection()?;
    let mut v = Vec::new();
    let unknown = || String::from("(unknown)");
    v.push((
        "version",
        conn.protocol_version()
            .map(|p| format!("{p:?}").replace('_', "."))
            .unwrap_or_else(unknown),
    ));
    v.push((
        "cipher suite",
        conn.negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_else(unknown),
    ));
    if let Some(leaf) = conn.peer_certificates().and_then(|c| c.first()) {
        let info = pop3_blocking::CertificateInfo::parse(leaf);
        let unreadable = || String::from("(unreadable)");
        v.push(("subject", info.subject.unwrap_or_else(unreadable)));
        v.push(("issuer", info.issuer.unwrap_or_else(unreadable)));
        v.push(("not before", info.not_before.unwrap_or_else(unreadable)));
        v.push(("not after", info.not_after.unwrap_or_else(unreadable)));
        v.push(("SHA-256", info.sha256.to_string()));
    }
    Some(v)
}

/// `capa`: greeting, TLS state and capabilities, without logging in;
/// with `details` (`--tls-info`) also the TLS connection and what each
/// capability means.
pub fn capa(s: &Server, cli: &Cli, details: bool) -> Result<(), CliError> {
    let mut c = session::connect(s)?;
    let caps = match c.capabilities().cloned() {
        Some(caps) => Some(caps),
        None => match c.capa() {
            Ok(caps) => Some(caps),
            Err(Error::Server { .. }) => None,
            Err(e) => return Err(session::abort(&mut c, CliError::pop3("CAPA", &e))),
        },
    };
    let greeting = c.greeting().status.text.clone();
    let tls = c.is_tls();
    let mut lines = caps.as_ref().map(capability_lines);
    if let Some(lines) = &mut lines {
        if details && c.greeting().apop_timestamp.is_some() {
            lines.push(String::from("APOP"));
        }
    }
    let info = if details { tls_info(&c) } else { None };
    if cli.json {
        let mut v = json!({
            "greeting": greeting,
            "tls": tls,
            "capabilities": lines,
        });
        if details {
            v["tls_info"] = match &info {
                Some(info) => info
                    .iter()
                    .map(|(k, val)| (k.replace([' ', '-'], "_").to_lowercase(), json!(val)))
                    .collect::<serde_json::Map<_, _>>()
                    .into(),
                None => serde_json::Value::Null,
            };
            v["explained"] = lines
                .iter()
                .flatten()
                .map(|l| (l.clone(), json!(explain_capability(l))))
                .collect::<serde_json::Map<_, _>>()
                .into();
        }
        json_line(&v)?;
    } else {
        let mut out = format!("Server:   {}\n", s.display_addr());
        out.push_str(&format!("Greeting: {}\n", clean(&greeting)));
        out.push_str(&format!("TLS:      {}\n", if tls { "yes" } else { "no" }));
        if let Some(info) = &info {
            for (k, val) in info {
                out.push_str(&format!("  {:<13} {}\n", format!("{k}:"), clean(val)));
            }
        }
        match &lines {
            Some(lines) => {
                out.push_str("Capabilities:\n");
                for l in lines {
                    if details {
                        out.push_str(&format!("  {:<24} {}\n", clean(l), explain_capability(l)));
                    } else {
                        out.push_str(&format!("  {}\n", clean(l)));
                    }
                }
            }
            None => out.push_str("Capabilities: (CAPA not supported)\n"),
        }
        output::print(&out)?;
    }
    let _ = c.quit();
    Ok(())
}

/// `stat`.
pub fn stat(s: &Server, cli: &Cli) -> Result<(), CliError> {
    let mut c = session::open(s, cli)?;
    let r = stat_body(&mut c, cli);
    session::finish(&mut c, r)
}

fn stat_body(c: &mut TcpClient, cli: &Cli) -> Result<usize, CliError> {
    let st = c.stat().map_err(|e| CliError::pop3("STAT", &e))?;
    if cli.json {
        json_line(&json!({"messages": st.count, "octets": st.octets}))?;
    } else {
        output::print(&format!(
            "{} messages, {} octets ({})\n",
            st.count,
            st.octets,
            human_size(st.octets)
        ))?;
    }
    Ok(0)
}

/// `list`.
pub fn list(s: &Server, cli: &Cli) -> Result<(), CliError> {
    let mut c = session::open(s, cli)?;
    let r = list_body(&mut c, cli);
    session::finish(&mut c, r)
}

fn list_body(c: &mut TcpClient, cli: &Cli) -> Result<usize, CliError> {
    let entries = c.list().map_err(|e| CliError::pop3("LIST", &e))?;
    if cli.json {
        for e in &entries {
            json_line(&json!({"number": e.number, "octets": e.octets}))?;
        }
    } else {
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| vec![e.number.to_string(), e.octets.to_string()])
            .collect();
        output::print(&table(
            &[("#", Align::Right), ("Octets", Align::Right)],
            &rows,
        ))?;
    }
    Ok(0)
}

/// `uidl`.
pub fn uidl(s: &Server, cli: &Cli) -> Result<(), CliError> {
    let mut c = session::open(s, cli)?;
    let r = uidl_body(&mut c, cli);
    session::finish(&mut c, r)
}

fn uidl_body(c: &mut TcpClient, cli: &Cli) -> Result<usize, CliError> {
    let entries = c.uidl().map_err(|e| CliError::pop3("UIDL", &e))?;
    if cli.json {
        for e in &entries {
            json_line(&json!({"number": e.number, "uid": e.uid.to_string()}))?;
        }
    } else {
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| vec![e.number.to_string(), clean_bytes(e.uid.as_bytes())])
            .collect();
        output::print(&table(&[("#", Align::Right), ("UID", Align::Left)], &rows))?;
    }
    Ok(0)
}

/// Longest partial line [`TtyWriter`] holds before showing it.
const TTY_LINE_LIMIT: usize = 64 * 1024;

/// Shows a message on a terminal line by line, with control characters
/// and escape sequences neutralised (TAB kept): a message must not be
/// able to repaint the screen either. Memory: one line.
pub struct TtyWriter<W: Write> {
    inner: W,
    line: Vec<u8>,
}

impl<W: Write> TtyWriter<W> {
    /// Wraps the terminal's writer.
    pub fn new(inner: W) -> Self {
        TtyWriter {
            inner,
            line: Vec::new(),
        }
    }

    fn emit(&mut self, upto: usize, newline: bool) -> io::Result<()> {
        let mut line = &self.line[..upto];
        line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = clean_bytes(line).replace("\\x09", "\t");
        self.inner.write_all(text.as_bytes())?;
        if newline {
            self.inner.write_all(b"\n")?;
        }
        Ok(())
    }
}

impl<W: Write> Write for TtyWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.line.extend_from_slice(buf);
        while let Some(pos) = self.line.iter().position(|&b| b == b'\n') {
            self.emit(pos, true)?;
            self.line.drain(..=pos);
        }
        if self.line.len() > TTY_LINE_LIMIT {
            self.emit(self.line.len(), false)?;
            self.line.clear();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.line.is_empty() {
            self.emit(self.line.len(), true)?;
            self.line.clear();
        }
        self.inner.flush()
    }
}

/// Writes a message body to stdout: byte for byte into a pipe or file,
/// through [`TtyWriter`] on a terminal. Streams either way.
fn body_to_stdout(fetch: impl FnOnce(&mut dyn Write) -> Result<u64, Error>) -> Result<(), Error> {
    use std::io::IsTerminal;
    let stdout = io::stdout();
    let tty = stdout.is_terminal();
    let mut w = io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    if tty {
        fetch(&mut TtyWriter::new(&mut w))?;
    } else {
        fetch(&mut w)?;
    }
    w.flush().map_err(Error::Sink)
}

/// `retr N [-o FILE]`: the exact bytes, to stdout or atomically to FILE.
pub fn retr(s: &Server, cli: &Cli, n: u32, output: Option<&Path>) -> Result<(), CliError> {
    let mut c = session::open(s, cli)?;
    let r = retr_body(&mut c, cli, n, output);
    session::finish(&mut c, r)
}

fn retr_body(
    c: &mut TcpClient,
    cli: &Cli,
    n: u32,
    output: Option<&Path>,
) -> Result<usize, CliError> {
    let ctx = format!("RETR {n}");
    match output {
        None if cli.json => {
            let mut w = JsonBody::default();
            c.retr_to(n, &mut w).map_err(|e| CliError::pop3(&ctx, &e))?;
            json_line(&w.into_json(n))?;
        }
        None => {
            body_to_stdout(|mut w| c.retr_to(n, &mut w)).map_err(|e| CliError::pop3(&ctx, &e))?;
        }
        Some(path) => {
            let mut file = durable::TempFile::beside(path)
                .map_err(|e| CliError::io(format!("creating {}", path.display()), &e))?;
            let octets = c
                .retr_to(n, file.writer())
                .map_err(|e| CliError::pop3(&ctx, &e))?;
            file.commit(path)
                .map_err(|e| CliError::io(format!("writing {}", path.display()), &e))?;
            if cli.json {
                json_line(&json!({"number": n, "octets": octets, "path": path}))?;
            } else {
                say!(
                    "pop3: message {n} ({octets} octets) written to {}",
                    path.display()
                );
            }
        }
    }
    Ok(0)
}

/// `top N LINES` to stdout.
pub fn top(s: &Server, cli: &Cli, n: u32, lines: u32) -> Result<(), CliError> {
    let mut c = session::open(s, cli)?;
    let ctx = format!("TOP {n} {lines}");
    let r = if cli.json {
        let mut w = JsonBody::default();
        c.top_to(n, lines, &mut w)
            .map_err(|e| CliError::pop3(&ctx, &e))
            .and_then(|_| json_line(&w.into_json(n)))
            .map(|()| 0)
    } else {
        body_to_stdout(|mut w| c.top_to(n, lines, &mut w))
            .map(|()| 0)
            .map_err(|e| CliError::pop3(&ctx, &e))
    };
    session::finish(&mut c, r)
}

/// Most message bytes `retr --json` / `top --json` hold (the JSON object
/// is built in memory); a bigger message is refused with a hint to `-o`.
const JSON_BODY_LIMIT: usize = 64 << 20;

/// Collects a body for `--json`, bounded by [`JSON_BODY_LIMIT`].
#[derive(Default)]
struct JsonBody(Vec<u8>);

impl Write for JsonBody {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.0.len() + buf.len() > JSON_BODY_LIMIT {
            return Err(io::Error::other(format!(
                "the message is larger than {} MiB, too big for --json (use retr -o FILE)",
                JSON_BODY_LIMIT >> 20
            )));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl JsonBody {
    /// `{"number", "octets", "encoding": "utf-8" | "base64", "message"}`:
    /// the message as text when it is valid UTF-8, else base64 (standard
    /// alphabet, padded), so the bytes survive exactly either way.
    fn into_json(self, n: u32) -> serde_json::Value {
        let octets = self.0.len();
        match String::from_utf8(self.0) {
            Ok(text) => json!({
                "number": n, "octets": octets, "encoding": "utf-8", "message": text,
            }),
            Err(e) => {
                use base64::Engine;
                let b64 = base64::engine::general_purpose::STANDARD.encode(e.as_bytes());
                json!({
                    "number": n, "octets": octets, "encoding": "base64", "message": b64,
                })
            }
        }
    }
}

/// `dele N...`: marks, then QUIT commits (a failing QUIT is reported).
pub fn dele(s: &Server, cli: &Cli, numbers: &[u32]) -> Result<(), CliError> {
    let mut c = session::open(s, cli)?;
    let mut marked = 0;
    for &n in numbers {
        if let Err(e) = c.dele(n) {
            // Nothing is committed: leave without QUIT's UPDATE.
            let _ = c.rset();
            let _ = c.quit();
            return Err(CliError::pop3(format!("DELE {n}"), &e));
        }
        marked += 1;
    }
    session::quit(&mut c, marked)?;
    if cli.json {
        for &n in numbers {
            json_line(&json!({"deleted": n}))?;
        }
    } else {
        output::print(&format!("deleted {marked} message(s)\n"))?;
    }
    Ok(())
}

/// Most header bytes kept per message for `headers`.
const HEADER_LIMIT: usize = 256 * 1024;

/// Collects the `TOP n 0` replies, each bounded.
#[derive(Default)]
struct HeaderSink {
    current: Vec<u8>,
    done: Vec<(u32, Vec<u8>)>,
}

impl MessageSink for HeaderSink {
    fn begin(&mut self, _: u32) -> io::Result<()> {
        self.current.clear();
        Ok(())
    }
    fn data(&mut self, _: u32, chunk: &[u8]) -> io::Result<()> {
        let room = HEADER_LIMIT.saturating_sub(self.current.len());
        self.current
            .extend_from_slice(&chunk[..room.min(chunk.len())]);
        Ok(())
    }
    fn end(&mut self, n: u32, _: u64) -> io::Result<Disposition> {
        self.done.push((n, std::mem::take(&mut self.current)));
        Ok(Disposition::Keep)
    }
}

/// The decoded summary of one message's headers.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// `YYYY-MM-DD HH:MM` in the message's own zone.
    pub date: String,
    /// The same as RFC 3339, for JSON.
    pub date_rfc3339: Option<String>,
    /// Sender display name (or address).
    pub from: String,
    /// Sender address.
    pub from_address: Option<String>,
    /// Subject, RFC 2047 decoded.
    pub subject: String,
}

/// Decodes Date, From and Subject (RFC 2047 encoded words included).
pub fn summarize(header_bytes: &[u8]) -> Summary {
    let Some(m) = MessageParser::default().parse_headers(header_bytes) else {
        return Summary::default();
    };
    let (from, from_address) = match m.from().and_then(|a| a.first()) {
        Some(addr) => {
            let address = addr.address().map(str::to_string);
            let name = addr
                .name()
                .filter(|n| !n.trim().is_empty())
                .map(str::to_string)
                .or_else(|| address.clone())
                .unwrap_or_default();
            (name, address)
        }
        None => (String::new(), None),
    };
    let (date, date_rfc3339) = match m.date() {
        Some(d) => (
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}",
                d.year, d.month, d.day, d.hour, d.minute
            ),
            Some(d.to_rfc3339()),
        ),
        None => (String::new(), None),
    };
    Summary {
        date,
        date_rfc3339,
        from,
        from_address,
        subject: m.subject().unwrap_or_default().to_string(),
    }
}

/// `headers`: pipelined `TOP n 0` for every message, decoded.
pub fn headers(s: &Server, cli: &Cli) -> Result<(), CliError> {
    let mut c = session::open(s, cli)?;
    let r = headers_body(&mut c, cli);
    session::finish(&mut c, r)
}

fn headers_body(c: &mut TcpClient, cli: &Cli) -> Result<usize, CliError> {
    let entries = c.list().map_err(|e| CliError::pop3("LIST", &e))?;
    let mut sink = HeaderSink::default();
    let report = c
        .top_each(entries.iter().map(|e| e.number), 0, &mut sink)
        .map_err(|e| CliError::pop3("TOP", &e))?;
    let tops: std::collections::HashMap<u32, Vec<u8>> = sink.done.into_iter().collect();
    let width = terminal_width();
    let mut rows = Vec::new();
    for e in &entries {
        let refused = report.refused.iter().find(|(n, _)| *n == e.number);
        let sum = tops
            .get(&e.number)
            .map(|b| summarize(b))
            .unwrap_or_default();
        if cli.json {
            let mut obj = json!({
                "number": e.number,
                "octets": e.octets,
                "date": sum.date_rfc3339,
                "from": sum.from,
                "from_address": sum.from_address,
                "subject": sum.subject,
            });
            if let Some((_, r)) = refused {
                obj["error"] = json!(r.to_string());
            }
            json_line(&obj)?;
        } else {
            let subject = match refused {
                Some((_, r)) => format!("(TOP refused: {})", clean(&r.to_string())),
                None => clean(&sum.subject),
            };
            rows.push(vec![
                e.number.to_string(),
                human_size(e.octets),
                sum.date,
                truncate(&clean(&sum.from), 28),
                subject,
            ]);
        }
    }
    if !cli.json {
        // The other columns as they will be laid out, plus separators.
        let fixed: usize = (0..4)
            .map(|i| {
                rows.iter()
                    .map(|r| unicode_width::UnicodeWidthStr::width(r[i].as_str()))
                    .chain([["#", "Size", "Date", "From"][i].len()])
                    .max()
                    .unwrap_or(0)
                    + 2
            })
            .sum();
        let subject_width = width.map(|w| w.saturating_sub(fixed + 1).max(20));
        if let Some(sw) = subject_width {
            for r in &mut rows {
                r[4] = truncate(&r[4], sw);
            }
        }
        let mut text = table(
            &[
                ("#", Align::Right),
                ("Size", Align::Right),
                ("Date", Align::Left),
                ("From", Align::Left),
                ("Subject", Align::Left),
            ],
            &rows,
        );
        if rows.is_empty() {
            text.push_str("(no messages)\n");
        }
        output::print(&text)?;
    }
    Ok(0)
}

/// The terminal width when stdout is a terminal (its size, else
/// `COLUMNS`, else 100); `None` (no truncation) for pipes and files.
fn terminal_width() -> Option<usize> {
    let term = console::Term::stdout();
    if !term.is_term() {
        return None;
    }
    Some(match term.size_checked() {
        Some((_, cols)) if cols > 0 => usize::from(cols),
        _ => std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(100),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tty_writer_neutralises() {
        let mut out = Vec::new();
        let mut w = TtyWriter::new(&mut out);
        w.write_all(b"Subject: \x1b]0;x\x07hi\r\n\tbody\r").unwrap();
        w.write_all(b"\nlast").unwrap();
        w.flush().unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Subject: \\x1b]0;x\\x07hi\n\tbody\nlast\n"
        );
    }

    #[test]
    fn decodes_encoded_words() {
        let h = b"From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.de>\r\n\
Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgTcO8bmNoZW4g4pyI?=\r\n\
Date: Wed, 08 Jan 2025 08:30:00 +0100\r\n\r\n";
        let s = summarize(h);
        assert_eq!(s.from, "Jürgen Müller");
        assert_eq!(s.from_address.as_deref(), Some("juergen@example.de"));
        assert_eq!(s.subject, "Grüße aus München ✈");
        assert_eq!(s.date, "2025-01-08 08:30");
        let empty = summarize(b"");
        assert_eq!(empty.subject, "");
    }
}

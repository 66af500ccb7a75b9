//! The POP3 interpreter for one connection (RFC 1939, 2449, 2595, 5034, 6856).

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use md5::{Digest, Md5};

use crate::io::{Conn, ReadError};
use crate::mailbox::Message;
use crate::scram::{ScramMechanism, ScramServer, ServerBinding};
use crate::server::{lock, sleep_interruptible, Config, Shared};

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Authorization,
    Transaction,
}

/// What to do after a command.
enum Next {
    Continue,
    /// Close the connection; `true` = orderly (TLS close_notify).
    Close(bool),
}

struct Entry {
    id: u64,
    msg: Message,
    deleted: bool,
}

struct Session<'a> {
    conn: Conn,
    shared: &'a Arc<Shared>,
    cfg: &'a Config,
    state: State,
    pending_user: Option<String>,
    timestamp: Option<String>,
    entries: Vec<Entry>,
    commands: usize,
    retrs: usize,
    holds_lock: bool,
    nonces: u64,
}

/// Computes the APOP digest: lowercase hex MD5 of `timestamp` (with its angle
/// brackets) followed by `secret` (RFC 1939 section 7).
///
/// ```
/// // The example from RFC 1939.
/// assert_eq!(
///     pop3_testkit::apop_digest("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf"),
///     "c4c9334bac560ecc979e58001b3e22fb"
/// );
/// ```
pub fn apop_digest(timestamp: &str, secret: &str) -> String {
    let mut h = Md5::new();
    h.update(timestamp.as_bytes());
    h.update(secret.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn run(conn: Conn, shared: &Arc<Shared>) {
    let mut s = Session {
        conn,
        shared,
        cfg: &shared.config,
        state: State::Authorization,
        pending_user: None,
        timestamp: None,
        entries: Vec::new(),
        commands: 0,
        retrs: 0,
        holds_lock: false,
        nonces: 0,
    };
    let notify = s.serve().unwrap_or_default();
    if s.holds_lock {
        shared.maildrop_locked.store(false, Ordering::SeqCst);
    }
    s.conn.close(notify);
}

/// Decodes one SASL client response: `=` is empty, `*` cancels.
fn decode_sasl(response: &str) -> Result<Vec<u8>, &'static str> {
    match response {
        "*" => Err("authentication cancelled"),
        "=" => Ok(Vec::new()),
        r => base64::engine::general_purpose::STANDARD
            .decode(r.as_bytes())
            .map_err(|_| "invalid base64 in SASL response"),
    }
}

/// Nanoseconds since the epoch (0 if the clock is before it): uniqueness
/// for APOP timestamps and SCRAM nonces.
fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit())
}

impl Session<'_> {
    fn eol(&self) -> &'static [u8] {
        if self.cfg.bare_lf {
            b"\n"
        } else {
            b"\r\n"
        }
    }

    fn line(&self, text: &str) -> Vec<u8> {
        let mut v = text.as_bytes().to_vec();
        v.extend_from_slice(self.eol());
        v
    }

    /// `+OK text` where the text is informational (dropped with `bare_ok`).
    fn ok(&self, text: &str) -> Vec<u8> {
        if self.cfg.bare_ok || text.is_empty() {
            self.line("+OK")
        } else {
            self.line(&format!("+OK {text}"))
        }
    }

    /// `+OK text` where the text is data (kept with `bare_ok`).
    fn ok_data(&self, text: &str) -> Vec<u8> {
        self.line(&format!("+OK {text}"))
    }

    fn err(&self, text: &str) -> Vec<u8> {
        self.line(&format!("-ERR {text}"))
    }

    fn terminator(&self) -> &'static [u8] {
        if self.cfg.bare_lf || self.cfg.lf_terminator {
            b".\n"
        } else {
            b".\r\n"
        }
    }

    /// Status line + lines (each already terminated) + terminator.
    fn multiline(&self, status: Vec<u8>, lines: &[String]) -> Vec<u8> {
        let mut out = status;
        for l in lines {
            if l.starts_with('.') {
                out.push(b'.');
            }
            out.extend_from_slice(l.as_bytes());
            out.extend_from_slice(self.eol());
        }
        out.extend_from_slice(self.terminator());
        out
    }

    /// Dot-stuffs `data` into `out`, converting CRLF to LF with `bare_lf`,
    /// and makes sure it ends with a line terminator.
    fn stuff(&self, data: &[u8], out: &mut Vec<u8>) {
        out.reserve(data.len() + data.len() / 64 + 8);
        for line in data.split_inclusive(|&b| b == b'\n') {
            if line.first() == Some(&b'.') {
                out.push(b'.');
            }
            if self.cfg.bare_lf && line.ends_with(b"\r\n") {
                out.extend_from_slice(&line[..line.len() - 2]);
                out.push(b'\n');
            } else {
                out.extend_from_slice(line);
            }
        }
        if !data.is_empty() && !data.ends_with(b"\n") {
            out.extend_from_slice(self.eol());
        }
    }

    /// Writes a reply, honouring write_delay and split_writes.
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self.cfg.split_writes {
            Some(n) => {
                for chunk in bytes.chunks(n) {
                    sleep_interruptible(self.cfg.write_delay, &self.shared.stop);
                    self.conn.write_all(chunk)?;
                }
                Ok(())
            }
            None => {
                sleep_interruptible(self.cfg.write_delay, &self.shared.stop);
                self.conn.write_all(bytes)
            }
        }
    }

    fn greeting(&mut self) -> Vec<u8> {
        if let Some(g) = &self.cfg.garbage_greeting {
            return g.clone();
        }
        if let Some(len) = self.cfg.overlong_greeting {
            let mut g = b"+OK ".to_vec();
            while g.len() < len {
                g.push(b'x');
            }
            g.extend_from_slice(self.eol());
            return g;
        }
        let mut text = self.cfg.greeting.clone();
        if self.cfg.apop_timestamp {
            let nanos = now_nanos();
            let ts = format!(
                "<{}.{}.{}@pop3-testkit>",
                std::process::id(),
                nanos,
                self.conn.id
            );
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&ts);
            self.timestamp = Some(ts);
        }
        if text.is_empty() {
            self.line("+OK")
        } else {
            self.line(&format!("+OK {text}"))
        }
    }

    /// Runs the session; returns whether to close with close_notify.
    fn serve(&mut self) -> io::Result<bool> {
        #[cfg(feature = "tls")]
        if self.cfg.implicit_tls {
            let Some(cfg) = self.shared.tls.clone() else {
                return Ok(false);
            };
            self.conn.start_tls(cfg)?;
        }
        sleep_interruptible(self.cfg.greeting_delay, &self.shared.stop);
        let greeting = self.greeting();
        self.send(&greeting)?;

        loop {
            if self.shared.is_shutdown() {
                return Ok(false);
            }
            let raw = match self.conn.read_line() {
                Ok(l) => l,
                Err(ReadError::TooLong) => {
                    let e = self.err("line too long");
                    self.send(&e)?;
                    return Ok(false);
                }
                Err(_) => return Ok(false),
            };
            self.commands += 1;
            let next = self.command(&raw)?;
            if let Next::Close(notify) = next {
                return Ok(notify);
            }
            if self.cfg.close_after_commands == Some(self.commands) {
                return Ok(false);
            }
        }
    }

    fn command(&mut self, raw: &[u8]) -> io::Result<Next> {
        let line = raw.strip_suffix(b"\n").unwrap_or(raw);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = String::from_utf8_lossy(line).into_owned();
        let (verb, rest) = match text.split_once(' ') {
            Some((v, r)) => (v.to_ascii_uppercase(), r.to_string()),
            None => (text.to_ascii_uppercase(), String::new()),
        };
        let args: Vec<&str> = rest.split(' ').filter(|a| !a.is_empty()).collect();

        if self.cfg.stall_on.as_deref() == Some(verb.as_str()) {
            self.conn.stall();
            return Ok(Next::Close(false));
        }
        if let Some((_, bytes)) = self.cfg.reply_overrides.iter().find(|(v, _)| *v == verb) {
            let bytes = bytes.clone();
            self.send(&bytes)?;
            return Ok(if verb == "QUIT" {
                Next::Close(true)
            } else {
                Next::Continue
            });
        }
        if let Some((_, t)) = self.cfg.fail_commands.iter().find(|(v, _)| *v == verb) {
            let r = self.err(t);
            self.send(&r)?;
            return Ok(Next::Continue);
        }

        use State::*;
        let reply = match (verb.as_str(), self.state) {
            ("", _) => self.err("empty command"),
            ("CAPA", _) => self.capa(&args),
            ("QUIT", _) => return self.quit(&args),
            ("LANG", _) => self.lang(&args),
            ("USER", Authorization) => self.user(&args),
            ("PASS", Authorization) => self.pass(&rest),
            ("APOP", Authorization) => self.apop(&args),
            ("AUTH", Authorization) => self.auth(&args)?,
            ("STLS", Authorization) => return self.stls(&args),
            ("UTF8", Authorization) => {
                if args.is_empty() {
                    self.ok("UTF8 enabled")
                } else {
                    self.err("too many arguments")
                }
            }
            ("STAT", Transaction) => self.stat(&args),
            ("LIST", Transaction) => self.list(&args, false),
            ("UIDL", Transaction) => self.list(&args, true),
            ("RETR", Transaction) => return self.retr(&args),
            ("TOP", Transaction) => self.top(&args),
            ("DELE", Transaction) => self.dele(&args),
            ("RSET", Transaction) => self.rset(&args),
            ("NOOP", Transaction) => {
                if args.is_empty() {
                    self.ok("")
                } else {
                    self.err("too many arguments")
                }
            }
            ("STLS", Transaction) if !self.cfg.stls => self.err("unknown command"),
            (
                "USER" | "PASS" | "APOP" | "AUTH" | "STLS" | "UTF8" | "STAT" | "LIST" | "UIDL"
                | "RETR" | "TOP" | "DELE" | "RSET" | "NOOP",
                _,
            ) => self.err("command not valid in this state"),
            _ => self.err("unknown command"),
        };
        self.send(&reply)?;
        Ok(Next::Continue)
    }

    // ----- AUTHORIZATION ----------------------------------------------------

    fn capa(&self, args: &[&str]) -> Vec<u8> {
        if self.cfg.capa_refused {
            return self.err("unknown command");
        }
        if !args.is_empty() {
            return self.err("too many arguments");
        }
        let mut caps = self.cfg.capabilities.clone();
        if self.cfg.strip_plus {
            for cap in caps.iter_mut() {
                if cap.to_ascii_uppercase().starts_with("SASL ") {
                    *cap = cap
                        .split(' ')
                        .filter(|w| !w.to_ascii_uppercase().ends_with("-PLUS"))
                        .collect::<Vec<_>>()
                        .join(" ");
                }
            }
        }
        if self.cfg.stls && !self.conn.is_tls() && self.state == State::Authorization {
            caps.push("STLS".to_string());
        }
        self.multiline(self.ok("Capability list follows"), &caps)
    }

    fn lang(&self, args: &[&str]) -> Vec<u8> {
        match args {
            [] => self.multiline(
                self.ok("Language listing follows"),
                &["en English".to_string()],
            ),
            [l] if l.eq_ignore_ascii_case("en") || *l == "*" => self.ok("en English"),
            [_] => self.err("invalid language"),
            _ => self.err("too many arguments"),
        }
    }

    fn user(&mut self, args: &[&str]) -> Vec<u8> {
        match args {
            [name] => {
                self.pending_user = Some(name.to_string());
                self.ok(&format!("{name} accepted, send PASS"))
            }
            [] => self.err("missing user name"),
            _ => self.err("too many arguments"),
        }
    }

    fn pass(&mut self, rest: &str) -> Vec<u8> {
        let Some(user) = self.pending_user.take() else {
            return self.err("send USER first");
        };
        if rest.is_empty() {
            return self.err("missing password");
        }
        if self.shared.password_of(&user) == Some(rest) {
            self.login(&user)
        } else {
            self.err("[AUTH] invalid user name or password")
        }
    }

    fn apop(&mut self, args: &[&str]) -> Vec<u8> {
        self.pending_user = None;
        let Some(ts) = self.timestamp.clone() else {
            return self.err("APOP not supported");
        };
        let [name, digest] = args else {
            return self.err("usage: APOP name digest");
        };
        let ok = self
            .shared
            .password_of(name)
            .is_some_and(|pw| apop_digest(&ts, pw).eq_ignore_ascii_case(digest));
        if ok {
            self.login(name)
        } else {
            self.err("[AUTH] authentication failed")
        }
    }

    fn auth(&mut self, args: &[&str]) -> io::Result<Vec<u8>> {
        self.pending_user = None;
        let (mech, initial) = match args {
            [] => {
                return Ok(
                    self.multiline(self.ok("Supported SASL mechanisms follow"), &self.cfg.sasl)
                )
            }
            [m] => (m.to_ascii_uppercase(), None),
            [m, ir] => (m.to_ascii_uppercase(), Some(ir.to_string())),
            _ => return Ok(self.err("too many arguments")),
        };
        if !self.cfg.sasl.contains(&mech) {
            return Ok(self.err("unsupported SASL mechanism"));
        }
        if let Some(scram) = ScramMechanism::parse(&mech) {
            return self.scram(scram, initial);
        }
        if mech != "PLAIN" {
            return Ok(self.err("unsupported SASL mechanism"));
        }
        let decoded = match self.first_response(initial)? {
            Ok(d) => d,
            Err(reply) => return Ok(reply),
        };
        let parts: Vec<&[u8]> = decoded.split(|&b| b == 0).collect();
        let [authzid, authcid, passwd] = parts.as_slice() else {
            return Ok(self.err("malformed PLAIN response"));
        };
        let (Ok(authzid), Ok(authcid), Ok(passwd)) = (
            std::str::from_utf8(authzid),
            std::str::from_utf8(authcid),
            std::str::from_utf8(passwd),
        ) else {
            return Ok(self.err("[AUTH] authentication failed"));
        };
        let ok = (authzid.is_empty() || authzid == authcid)
            && self.shared.password_of(authcid) == Some(passwd);
        if ok {
            Ok(self.login(authcid))
        } else {
            Ok(self.err("[AUTH] authentication failed"))
        }
    }

    /// The client's first SASL message: the initial response from the AUTH
    /// line, or the answer to an empty challenge. `Err` as in
    /// [`sasl_round`](Self::sasl_round).
    fn first_response(&mut self, initial: Option<String>) -> io::Result<Result<Vec<u8>, Vec<u8>>> {
        match initial {
            Some(ir) => Ok(decode_sasl(&ir).map_err(|text| self.err(text))),
            None => self.sasl_round(b""),
        }
    }

    /// Sends one SASL challenge (`+ ` and base64 of `challenge`) and reads
    /// the client's answer, decoded. `Err` is the reply that ends the
    /// exchange (cancelled with `*`, bad base64, line too long).
    fn sasl_round(&mut self, challenge: &[u8]) -> io::Result<Result<Vec<u8>, Vec<u8>>> {
        let mut cont = b"+ ".to_vec();
        cont.extend_from_slice(
            base64::engine::general_purpose::STANDARD
                .encode(challenge)
                .as_bytes(),
        );
        cont.extend_from_slice(self.eol());
        self.send(&cont)?;
        let raw = match self.conn.read_line() {
            Ok(l) => l,
            Err(ReadError::TooLong) => return Ok(Err(self.err("line too long"))),
            Err(e) => return Err(io::Error::other(e.to_string())),
        };
        let l = raw.strip_suffix(b"\n").unwrap_or(&raw);
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        Ok(decode_sasl(&String::from_utf8_lossy(l)).map_err(|text| self.err(text)))
    }

    /// A SCRAM exchange (RFC 5802 over RFC 5034): client-first (initial
    /// response or answer to an empty challenge), server-first,
    /// client-final, server-final (`v=`), the client's empty answer, then
    /// the login. A failure is sent as `e=` in a challenge; whatever the
    /// client answers (normally `*`), `-ERR [AUTH]` follows.
    fn scram(&mut self, mechanism: ScramMechanism, initial: Option<String>) -> io::Result<Vec<u8>> {
        let tls = self.conn.is_tls();
        if mechanism.is_plus() && !(tls && self.cfg.channel_binding) {
            return Ok(self.err("unsupported SASL mechanism"));
        }
        let binding = ServerBinding {
            supported: tls && self.cfg.channel_binding,
            tls_exporter: self.conn.tls_exporter(),
            tls_server_end_point: self.tls_server_end_point(),
        };
        let nonce = self.server_nonce();
        let mut server = ScramServer::new(mechanism, binding, self.cfg.scram_iterations, nonce);
        let client_first = match self.first_response(initial)? {
            Ok(d) => d,
            Err(reply) => return Ok(reply),
        };
        let shared = self.shared;
        let server_first =
            match server.client_first(&client_first, |u| shared.password_of(u).is_some()) {
                Ok(m) => m,
                Err(e) => return self.scram_failed(e),
            };
        let client_final = match self.sasl_round(&server_first)? {
            Ok(d) => d,
            Err(reply) => return Ok(reply),
        };
        let (user, server_final) = match server
            .client_final(&client_final, |u| shared.password_of(u).map(str::to_string))
        {
            Ok(r) => r,
            Err(e) => return self.scram_failed(e),
        };
        match self.sasl_round(&server_final)? {
            Ok(empty) if empty.is_empty() => Ok(self.login(&user)),
            Ok(_) => Ok(self.err("[AUTH] unexpected data after the server signature")),
            Err(reply) => Ok(reply),
        }
    }

    fn scram_failed(&mut self, error: &str) -> io::Result<Vec<u8>> {
        // The client's answer to `e=` (normally `*`) does not matter.
        let _ = self.sasl_round(format!("e={error}").as_bytes())?;
        Ok(self.err(&format!("[AUTH] SCRAM failed: {error}")))
    }

    /// `tls-server-end-point` (RFC 5929): SHA-256 of the presented
    /// certificate (`TestCa` signs with ECDSA-SHA256), over TLS only.
    fn tls_server_end_point(&self) -> Option<Vec<u8>> {
        if !self.conn.is_tls() {
            return None;
        }
        #[cfg(feature = "tls")]
        {
            use sha2::Digest as _;
            let leaf = self.shared.leaf_der.as_ref()?;
            Some(sha2::Sha256::digest(leaf).to_vec())
        }
        #[cfg(not(feature = "tls"))]
        None
    }

    /// A fresh server nonce: printable, no `,`, unique per exchange.
    fn server_nonce(&mut self) -> String {
        use sha2::Digest as _;
        self.nonces += 1;
        let nanos = now_nanos();
        let seed = format!(
            "{}:{}:{}:{nanos}",
            std::process::id(),
            self.conn.id,
            self.nonces
        );
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(&sha2::Sha256::digest(seed)[..18])
    }

    /// Credentials were right: apply response-code options and the lock,
    /// then snapshot the maildrop and enter TRANSACTION.
    fn login(&mut self, user: &str) -> Vec<u8> {
        if self.cfg.in_use {
            return self.err("[IN-USE] maildrop is locked by another session");
        }
        if self.cfg.login_delay {
            return self.err("[LOGIN-DELAY] minimum time between logins not reached");
        }
        if self.cfg.exclusive_lock {
            if self
                .shared
                .maildrop_locked
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
            {
                return self.err("[IN-USE] maildrop is locked by another session");
            }
            self.holds_lock = true;
        }
        self.entries = lock(&self.shared.store)
            .messages
            .iter()
            .map(|(id, m)| Entry {
                id: *id,
                msg: m.clone(),
                deleted: false,
            })
            .collect();
        self.state = State::Transaction;
        let (n, size) = self.totals();
        self.ok(&format!(
            "{user}'s maildrop has {n} messages ({size} octets)"
        ))
    }

    #[cfg(feature = "tls")]
    fn stls(&mut self, args: &[&str]) -> io::Result<Next> {
        let reply = if !self.cfg.stls {
            self.err("unknown command")
        } else if self.conn.is_tls() {
            self.err("TLS already active")
        } else if !args.is_empty() {
            self.err("too many arguments")
        } else {
            let Some(cfg) = self.shared.tls.clone() else {
                let e = self.err("TLS not available");
                self.send(&e)?;
                return Ok(Next::Continue);
            };
            let mut out = self.ok("Begin TLS negotiation");
            if let Some(inj) = &self.cfg.stls_injection {
                out.extend_from_slice(inj);
            }
            // One write, even with split_writes: the injection must arrive
            // together with the +OK.
            sleep_interruptible(self.cfg.write_delay, &self.shared.stop);
            self.conn.write_all(&out)?;
            self.pending_user = None;
            self.conn.start_tls(cfg)?;
            return Ok(Next::Continue);
        };
        self.send(&reply)?;
        Ok(Next::Continue)
    }

    #[cfg(not(feature = "tls"))]
    fn stls(&mut self, _args: &[&str]) -> io::Result<Next> {
        let e = self.err("unknown command");
        self.send(&e)?;
        Ok(Next::Continue)
    }

    // ----- TRANSACTION ------------------------------------------------------

    fn totals(&self) -> (usize, usize) {
        self.entries
            .iter()
            .filter(|e| !e.deleted)
            .fold((0, 0), |(n, s), e| (n + 1, s + e.msg.size()))
    }

    /// Parses a message number; `Err` carries the reply.
    fn msg_index(&self, arg: &str) -> Result<usize, Vec<u8>> {
        if !is_number(arg) {
            return Err(self.err("invalid message number"));
        }
        let n: usize = arg
            .parse()
            .map_err(|_| self.err("invalid message number"))?;
        match n.checked_sub(1).and_then(|i| self.entries.get(i)) {
            Some(e) if !e.deleted => Ok(n - 1),
            Some(_) => Err(self.err(&format!("message {n} already deleted"))),
            None => Err(self.err("no such message")),
        }
    }

    fn stat(&self, args: &[&str]) -> Vec<u8> {
        if !args.is_empty() {
            return self.err("too many arguments");
        }
        let (n, size) = self.totals();
        self.ok_data(&format!("{n} {size}"))
    }

    fn list(&self, args: &[&str], uidl: bool) -> Vec<u8> {
        match args {
            [] => {
                let lines: Vec<String> = self
                    .entries
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| !e.deleted)
                    .map(|(i, e)| {
                        if uidl {
                            format!("{} {}", i + 1, e.msg.uid())
                        } else {
                            format!("{} {}", i + 1, e.msg.size())
                        }
                    })
                    .collect();
                let status = if uidl {
                    self.ok("unique-id listing follows")
                } else {
                    let (n, size) = self.totals();
                    self.ok(&format!("{n} messages ({size} octets)"))
                };
                self.multiline(status, &lines)
            }
            [arg] => match self.msg_index(arg) {
                Ok(i) => {
                    let e = &self.entries[i];
                    if uidl {
                        self.ok_data(&format!("{} {}", i + 1, e.msg.uid()))
                    } else {
                        self.ok_data(&format!("{} {}", i + 1, e.msg.size()))
                    }
                }
                Err(r) => r,
            },
            _ => self.err("too many arguments"),
        }
    }

    fn retr(&mut self, args: &[&str]) -> io::Result<Next> {
        let i = match args {
            [arg] => self.msg_index(arg),
            [] => Err(self.err("missing message number")),
            _ => Err(self.err("too many arguments")),
        };
        let i = match i {
            Ok(i) => i,
            Err(r) => {
                self.send(&r)?;
                return Ok(Next::Continue);
            }
        };
        self.retrs += 1;
        let msg = self.entries[i].msg.clone();
        let mut out = self.ok(&format!("{} octets", msg.size()));
        let status_len = out.len();
        self.stuff(msg.data(), &mut out);
        if let Some((nth, keep)) = self.cfg.truncate_retr {
            if nth == self.retrs {
                out.truncate(status_len + keep.min(out.len() - status_len));
                self.send(&out)?;
                return Ok(Next::Close(false));
            }
        }
        out.extend_from_slice(self.terminator());
        self.send(&out)?;
        Ok(Next::Continue)
    }

    fn top(&self, args: &[&str]) -> Vec<u8> {
        let [n, lines] = args else {
            return self.err("usage: TOP msg lines");
        };
        let i = match self.msg_index(n) {
            Ok(i) => i,
            Err(r) => return r,
        };
        if !is_number(lines) {
            return self.err("invalid number of lines");
        }
        let want: usize = lines.parse().unwrap_or(usize::MAX);
        let data = self.entries[i].msg.data();
        // Headers up to and including the empty line, then `want` body lines.
        let mut end = 0;
        let mut in_headers = true;
        let mut body_lines = 0;
        for line in data.split_inclusive(|&b| b == b'\n') {
            if in_headers {
                end += line.len();
                if line == b"\r\n" || line == b"\n" {
                    in_headers = false;
                }
            } else {
                if body_lines >= want {
                    break;
                }
                end += line.len();
                body_lines += 1;
            }
        }
        let mut out = self.ok("top of message follows");
        self.stuff(&data[..end], &mut out);
        out.extend_from_slice(self.terminator());
        out
    }

    fn dele(&mut self, args: &[&str]) -> Vec<u8> {
        let [arg] = args else {
            return self.err("usage: DELE msg");
        };
        match self.msg_index(arg) {
            Ok(i) => {
                self.entries[i].deleted = true;
                self.ok(&format!("message {} deleted", i + 1))
            }
            Err(r) => r,
        }
    }

    fn rset(&mut self, args: &[&str]) -> Vec<u8> {
        if !args.is_empty() {
            return self.err("too many arguments");
        }
        for e in &mut self.entries {
            e.deleted = false;
        }
        let (n, size) = self.totals();
        self.ok(&format!("maildrop has {n} messages ({size} octets)"))
    }

    fn quit(&mut self, args: &[&str]) -> io::Result<Next> {
        if !args.is_empty() {
            let e = self.err("too many arguments");
            self.send(&e)?;
            return Ok(Next::Continue);
        }
        if self.state == State::Authorization {
            let r = self.ok("pop3-testkit signing off");
            self.send(&r)?;
            return Ok(Next::Close(true));
        }
        if self.cfg.quit_fails {
            let r = self.err("[SYS/TEMP] some deleted messages not removed");
            self.send(&r)?;
            return Ok(Next::Close(true));
        }
        // UPDATE state: commit before answering, so a client that has read
        // the +OK sees the new mailbox through ServerHandle::mailbox().
        let deleted: std::collections::HashSet<u64> = self
            .entries
            .iter()
            .filter(|e| e.deleted)
            .map(|e| e.id)
            .collect();
        let left = {
            let mut store = lock(&self.shared.store);
            store.messages.retain(|(id, _)| !deleted.contains(id));
            store.messages.len()
        };
        let r = self.ok(&format!("pop3-testkit signing off ({left} messages left)"));
        self.send(&r)?;
        Ok(Next::Close(true))
    }
}

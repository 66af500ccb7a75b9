//! Helpers shared by the binary tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pop3_testkit::{Mailbox, Message, ServerBuilder, ServerHandle};

pub const USER: &str = "alice";
pub const PASSWORD: &str = "s3cret-Pa55";

/// The binary, with a clean environment for the password.
pub fn pop3() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pop3"));
    c.env_remove("POP3_PASSWORD")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    c
}

pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            self.out(),
            self.stderr
        )
    }
}

pub fn run(cmd: &mut Command) -> Run {
    let o = cmd.output().expect("running pop3");
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: o.stdout,
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// A testkit server with STLS and user alice, plus a file with its CA.
pub struct Tk {
    pub server: ServerHandle,
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
}

pub fn start(builder: ServerBuilder) -> Tk {
    let server = builder
        .user(USER, PASSWORD)
        .start()
        .expect("testkit server");
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, server.ca_cert_pem().expect("TLS configured")).unwrap();
    Tk { server, dir, ca }
}

pub fn stls(mailbox: Mailbox) -> ServerBuilder {
    pop3_testkit::Server::builder().mailbox(mailbox).stls(true)
}

impl Tk {
    /// `pop3 --host 127.0.0.1 --port P --user alice --ca-file CA`, password
    /// in the environment.
    pub fn cmd(&self) -> Command {
        let mut c = pop3();
        c.args(["--host", "127.0.0.1", "--port"])
            .arg(self.server.port().to_string())
            .args(["--user", USER, "--timeout", "20", "--ca-file"])
            .arg(&self.ca)
            .env("POP3_PASSWORD", PASSWORD);
        c
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// What a client receives for stored testkit bytes: the server adds CRLF
/// when the data does not end with one.
pub fn received(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    if !v.ends_with(b"\r\n") {
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// A message with mbox trouble: lines starting with `From ` and `>From `.
pub fn from_lines_message(uid: &str) -> Message {
    Message::new(
        uid,
        b"From: Carol <carol@example.net>\r\nSubject: From lines\r\n\r\n\
From the start of a line\r\n>From quoted already\r\n>>From twice\r\nFromage\r\n"
            .to_vec(),
    )
}

/// Sample messages plus tricky ones.
pub fn rich_mailbox() -> Mailbox {
    let mut mb = Mailbox::sample();
    mb.push(Message::tricky("tricky-1"));
    mb.push(from_lines_message("from-1"));
    mb
}

/// Multiset of message contents.
pub fn multiset(messages: impl IntoIterator<Item = Vec<u8>>) -> BTreeMap<Vec<u8>, usize> {
    let mut m = BTreeMap::new();
    for msg in messages {
        *m.entry(msg).or_insert(0) += 1;
    }
    m
}

pub fn expected(mb: &Mailbox) -> BTreeMap<Vec<u8>, usize> {
    multiset(mb.messages().iter().map(|m| received(m.data())))
}

fn files_in(dir: &Path, pred: impl Fn(&str) -> bool) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().unwrap().is_file() && pred(&name) {
            v.push(std::fs::read(e.path()).unwrap());
        }
    }
    v
}

/// The messages in a Maildir's new/ (tmp/ must be empty).
pub fn maildir_messages(dir: &Path) -> Vec<Vec<u8>> {
    assert!(
        files_in(&dir.join("tmp"), |_| true).is_empty(),
        "leftover files in tmp/"
    );
    files_in(&dir.join("new"), |_| true)
}

/// The `.eml` files of a directory (no leftover temporary files).
pub fn eml_messages(dir: &Path) -> Vec<Vec<u8>> {
    assert!(
        files_in(dir, |n| n.ends_with(".tmp")).is_empty(),
        "leftover temporary files"
    );
    files_in(dir, |n| n.ends_with(".eml"))
}

/// Parses an mboxrd file back into the exact messages.
pub fn mbox_messages(path: &Path) -> Vec<Vec<u8>> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(_) => return Vec::new(),
    };
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    for line in data.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"From ") {
            if let Some(m) = current.take() {
                out.push(m);
            }
            current = Some(Vec::new());
            continue;
        }
        let m = current.as_mut().expect("mbox must start with a From line");
        let gt = line.iter().take_while(|&&b| b == b'>').count();
        if gt > 0 && line[gt..].starts_with(b"From ") {
            m.extend_from_slice(&line[1..]);
        } else {
            m.extend_from_slice(line);
        }
    }
    if let Some(m) = current.take() {
        out.push(m);
    }
    for m in &mut out {
        assert_eq!(
            m.pop(),
            Some(b'\n'),
            "each message is followed by a blank line"
        );
    }
    out
}

/// Undoes the LF storage of Maildir and mbox, checking it on the way: a
/// stored message has no CRLF, and every LF goes back to the wire's CRLF.
pub fn lf_to_crlf(stored: &[u8]) -> Vec<u8> {
    assert!(
        !stored.windows(2).any(|w| w == b"\r\n"),
        "stored with CRLF line endings: {:?}",
        String::from_utf8_lossy(&stored[..stored.len().min(200)])
    );
    let mut out = Vec::with_capacity(stored.len() + stored.len() / 20);
    for &b in stored {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// Messages in a destination, by kind, as the server sent them (Maildir
/// and mbox are checked to be stored with LF and converted back).
pub fn read_dest(kind: &str, path: &Path) -> Vec<Vec<u8>> {
    let stored = read_dest_raw(kind, path);
    match kind {
        "eml-dir" => stored,
        _ => stored.iter().map(|m| lf_to_crlf(m)).collect(),
    }
}

/// Messages in a destination, by kind, byte for byte as stored.
pub fn read_dest_raw(kind: &str, path: &Path) -> Vec<Vec<u8>> {
    match kind {
        "maildir" => {
            if path.join("new").is_dir() {
                maildir_messages(path)
            } else {
                Vec::new()
            }
        }
        "eml-dir" => {
            if path.is_dir() {
                eml_messages(path)
            } else {
                Vec::new()
            }
        }
        "mbox" => mbox_messages(path),
        _ => unreachable!(),
    }
}

/// A TCP forwarder on a fixed loopback port to a changeable backend: one
/// server address for a mailbox whose server is restarted (the state file
/// is keyed on host and port, so the address must stay the same).
pub struct Proxy {
    port: u16,
    target: std::sync::Arc<std::sync::Mutex<std::net::SocketAddr>>,
}

impl Proxy {
    pub fn new(target: std::net::SocketAddr) -> Proxy {
        use std::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = std::sync::Arc::new(std::sync::Mutex::new(target));
        let t = target.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { continue };
                let addr = *t.lock().unwrap();
                let Ok(server) = TcpStream::connect(addr) else {
                    continue;
                };
                let pipe = |mut a: TcpStream, mut b: TcpStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut a, &mut b);
                        let _ = b.shutdown(std::net::Shutdown::Both);
                        let _ = a.shutdown(std::net::Shutdown::Both);
                    });
                };
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Proxy { port, target }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn set_target(&self, target: std::net::SocketAddr) {
        *self.target.lock().unwrap() = target;
    }
}

impl Tk {
    /// Like [`Tk::cmd`], through `proxy` (its port instead of the server's).
    pub fn cmd_via(&self, proxy: &Proxy) -> Command {
        let mut c = self.cmd();
        c.arg("--port").arg(proxy.port().to_string());
        c
    }
}

/// `pop3 --tls none --allow-cleartext --auth user --timeout T ARGS` against
/// a testkit server playing `script`: the run, the server, and how long the
/// run took.
pub fn run_scripted(
    script: pop3_testkit::Script,
    timeout: &str,
    args: &[&str],
) -> (Run, ServerHandle, std::time::Duration) {
    let server = pop3_testkit::Server::builder()
        .script(script)
        .start()
        .unwrap();
    let started = std::time::Instant::now();
    let r = run(pop3()
        .args(["--host", "127.0.0.1", "--port", &server.port().to_string()])
        .args(["--user", USER, "--tls", "none", "--allow-cleartext"])
        .args(["--auth", "user", "--timeout", timeout])
        .env("POP3_PASSWORD", PASSWORD)
        .args(args));
    (r, server, started.elapsed())
}

/// A scripted USER/PASS login up to PASS's `+OK`: greeting, CAPA answered
/// with `capa`, USER and PASS accepted.
pub fn script_user_pass(capa: &[u8]) -> pop3_testkit::Script {
    pop3_testkit::Script::new()
        .send(b"+OK ready\r\n")
        .expect_line("CAPA")
        .send(capa)
        .expect_line(&format!("USER {USER}"))
        .send(b"+OK\r\n")
        .expect_line(&format!("PASS {PASSWORD}"))
        .send(b"+OK\r\n")
}

/// [`script_user_pass`] plus the CAPA the client reads again after login
/// (RFC 2449 §5), answered with the same `capa`.
pub fn script_logged_in(capa: &[u8]) -> pop3_testkit::Script {
    script_user_pass(capa).expect_line("CAPA").send(capa)
}

//! A third driver of the session layer, over a transport no adapter uses:
//! a `std::os::unix::net::UnixStream` (relayed to a `pop3-testkit` server
//! on loopback). Connect, login, STAT, a pipelined fetch of every message
//! with the layer's batch machine, QUIT; public API only. Exits non-zero
//! on any failure (CI runs it: `cargo run -p pop3-proto --example
//! unix_socket_driver`).

use std::error::Error;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant as StdInstant};

use pop3_proto::session::batch::{Batch, Disposition, MessageSink, RetrBatch};
use pop3_proto::session::{Action, Instant, Output, Session, SessionConfig, SessionError};
use pop3_proto::{Command, Event, Response};

/// The whole driver: transport, clock, buffers.
struct Driver {
    stream: UnixStream,
    session: Session,
    epoch: StdInstant,
    buf: Vec<u8>,
}

impl Driver {
    fn now(&self) -> Instant {
        Instant::from_epoch(self.epoch.elapsed())
    }

    /// Writes what the layer wants to send.
    fn flush(&mut self) -> io::Result<()> {
        let mut out = Vec::new();
        let now = self.now();
        while self.session.poll_transmit(now, &mut out).is_some() {}
        self.stream.write_all(&out)
    }

    /// One read, bounded by the layer's deadline.
    fn read(&mut self) -> io::Result<()> {
        if let Some(deadline) = self.session.poll_timeout() {
            let left = deadline.saturating_duration_since(self.now());
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        }
        let r = self.stream.read(&mut self.buf);
        let now = self.now();
        match r {
            Ok(0) => self.session.handle_eof(now),
            Ok(n) => self.session.handle_input(now, &self.buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                self.session.handle_timeout(now)
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// The run loop of one operation; body chunks are counted.
    fn run(&mut self) -> Result<Output, Box<dyn Error>> {
        loop {
            self.flush()?;
            match self.session.poll()? {
                Action::Done(out) => return Ok(out),
                Action::StartTls => return Err("this example does not do TLS".into()),
                Action::Body(_) | Action::BodyStart(_) => {}
                _ => {
                    if !self.session.wants_write() {
                        self.read()?;
                    }
                }
            }
        }
    }
}

/// Keeps each message in memory; a real fetcher writes and fsyncs here.
#[derive(Default)]
struct Store {
    current: Vec<u8>,
    messages: Vec<(u32, Vec<u8>)>,
}

impl MessageSink<io::Error> for Store {
    fn data(&mut self, _: u32, chunk: &[u8]) -> io::Result<()> {
        self.current.extend_from_slice(chunk);
        Ok(())
    }
    fn end(&mut self, n: u32, _: u64) -> io::Result<Disposition> {
        self.messages.push((n, std::mem::take(&mut self.current)));
        Ok(Disposition::Keep)
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let mailbox = pop3_testkit::Mailbox::sample();
    let expected = mailbox.len();
    let server = pop3_testkit::Server::builder()
        .user("alice", "secret")
        .mailbox(mailbox)
        .start()?;
    // The driver's transport: one end of a Unix socket pair; the other end
    // is relayed to the server's TCP port.
    let (ours, theirs) = UnixStream::pair()?;
    let tcp = std::net::TcpStream::connect(server.addr())?;
    let (mut up_from, mut up_to) = (theirs.try_clone()?, tcp.try_clone()?);
    std::thread::spawn(move || io::copy(&mut up_from, &mut up_to));
    let (mut down_from, mut down_to) = (tcp, theirs);
    std::thread::spawn(move || io::copy(&mut down_from, &mut down_to));

    let mut config = SessionConfig::default();
    config.policy = pop3_proto::session::TlsPolicy::None;
    config.response_timeout = Duration::from_secs(10);
    // A local socket is trusted like TLS here; say so explicitly.
    config.proto.allow_cleartext_credentials = true;
    config.proto.pipelining = pop3_proto::Pipelining::Always;
    let mut d = Driver {
        stream: ours,
        session: Session::new(config, Instant::ZERO),
        epoch: StdInstant::now(),
        buf: vec![0; 64 * 1024],
    };

    d.session.start_connect()?;
    d.run()?;
    d.session.start_login("alice", "secret", &[42; 32])?;
    let Output::LoggedIn(method) = d.run()? else {
        return Err("login gave no method".into());
    };
    d.session.start_command(Command::Stat)?;
    let Output::Response(Response::Stat(stat)) = d.run()? else {
        return Err("STAT gave no count".into());
    };

    // Pipelined RETR of every message through the layer's batch machine.
    let mut store = Store::default();
    let mut batch = RetrBatch::new(1..=stat.count, None, 8, &mut store);
    loop {
        batch.fill(&mut |cmd| d.session.enqueue(cmd))?;
        if batch.is_finished() {
            break;
        }
        d.flush()?;
        let mut any = false;
        while let Some(ev) = d.session.poll_event()? {
            any |= !matches!(ev, Event::StateChanged { .. });
            batch.handle_event(ev).map_err(SessionError::Usage)?;
        }
        if !any && !d.session.wants_write() {
            d.read()?;
        }
    }
    batch
        .finish()
        .map_err(|(n, e, _)| format!("message {n}: {e}"))?;

    d.session.start_command(Command::Quit)?;
    d.run()?;

    if store.messages.len() != expected || stat.count as usize != expected {
        return Err(format!(
            "fetched {} of {expected} messages (STAT said {})",
            store.messages.len(),
            stat.count
        )
        .into());
    }
    let sent = server.transcripts()[0].client_commands();
    println!(
        "logged in with {method:?}; fetched {} messages ({} bytes) over a Unix socket; sent {sent:?}",
        store.messages.len(),
        store.messages.iter().map(|(_, m)| m.len()).sum::<usize>(),
    );
    Ok(())
}

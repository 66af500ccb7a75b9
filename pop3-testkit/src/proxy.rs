//! A TCP proxy that adds latency, for pipelining-vs-lockstep benchmarks.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::server::{lock, sleep_interruptible};

struct ProxyShared {
    target: SocketAddr,
    up: Duration,
    down: Duration,
    stop: AtomicBool,
    accepted: AtomicUsize,
    sockets: Mutex<HashMap<usize, (TcpStream, TcpStream)>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// A TCP proxy on `127.0.0.1` that forwards every connection to a target and
/// delays each direction by a fixed one-way latency.
///
/// Every chunk read from one side is timestamped and written to the other
/// side when `read time + delay` is reached, by a separate writer thread, so
/// byte order is preserved and throughput is not limited by the delay
/// (several chunks are in flight at once). With 10 ms each way a
/// request/response round trip takes at least 20 ms: exactly what makes
/// pipelining measurable on loopback.
///
/// ```
/// use std::io::{BufRead, BufReader, Write};
/// use std::time::{Duration, Instant};
/// use pop3_testkit::{DelayProxy, Mailbox, Server};
///
/// let server = Server::builder().user("u", "p").mailbox(Mailbox::sample()).start()?;
/// let proxy = DelayProxy::start(server.addr(), Duration::from_millis(10))?;
/// let mut stream = std::net::TcpStream::connect(proxy.addr())?;
/// let mut reader = BufReader::new(stream.try_clone()?);
/// let mut line = String::new();
/// reader.read_line(&mut line)?; // greeting
/// let t = Instant::now();
/// stream.write_all(b"CAPA\r\n")?;
/// line.clear();
/// reader.read_line(&mut line)?;
/// assert!(t.elapsed() >= Duration::from_millis(20));
/// assert!(line.starts_with("+OK"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct DelayProxy {
    addr: SocketAddr,
    shared: Arc<ProxyShared>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for DelayProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DelayProxy")
            .field("addr", &self.addr)
            .field("target", &self.shared.target)
            .field("client_to_server", &self.shared.up)
            .field("server_to_client", &self.shared.down)
            .finish()
    }
}

impl DelayProxy {
    /// Starts a proxy to `target` adding `one_way` delay in each direction
    /// (round trip += 2 × `one_way`).
    pub fn start(target: SocketAddr, one_way: Duration) -> io::Result<DelayProxy> {
        DelayProxy::start_asymmetric(target, one_way, one_way)
    }

    /// Starts a proxy with different delays for client→server and
    /// server→client traffic.
    pub fn start_asymmetric(
        target: SocketAddr,
        client_to_server: Duration,
        server_to_client: Duration,
    ) -> io::Result<DelayProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(ProxyShared {
            target,
            up: client_to_server,
            down: server_to_client,
            stop: AtomicBool::new(false),
            accepted: AtomicUsize::new(0),
            sockets: Mutex::new(HashMap::new()),
            threads: Mutex::new(Vec::new()),
        });
        let sh = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name(format!("pop3-testkit-proxy-{}", addr.port()))
            .spawn(move || proxy_accept(listener, sh))?;
        Ok(DelayProxy {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address connections are forwarded to.
    pub fn target(&self) -> SocketAddr {
        self.shared.target
    }

    /// Number of client connections accepted so far.
    pub fn connection_count(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Stops the proxy and closes all its connections (same as dropping it).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        let _ = accept.join();
        for (a, b) in lock(&self.shared.sockets).values() {
            let _ = a.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
        }
        let handles: Vec<JoinHandle<()>> = lock(&self.shared.threads).drain(..).collect();
        for h in handles {
            let _ = h.join();
        }
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

fn proxy_accept(listener: TcpListener, shared: Arc<ProxyShared>) {
    let mut next_id = 0usize;
    for client in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(client) = client else {
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        let Ok(upstream) = TcpStream::connect_timeout(&shared.target, Duration::from_secs(5))
        else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        let id = next_id;
        next_id += 1;
        let clones = (|| Some((client.try_clone().ok()?, upstream.try_clone().ok()?)))();
        let Some((c2, u2)) = clones else {
            continue;
        };
        if let (Ok(a), Ok(b)) = (client.try_clone(), upstream.try_clone()) {
            lock(&shared.sockets).insert(id, (a, b));
        }
        let remaining = Arc::new(AtomicUsize::new(2));
        let mut spawned = Vec::new();
        spawned.extend(pump(&shared, id, client, u2, shared.up, &remaining));
        spawned.extend(pump(&shared, id, upstream, c2, shared.down, &remaining));
        let mut threads = lock(&shared.threads);
        threads.retain(|h| !h.is_finished());
        threads.extend(spawned);
    }
}

enum Chunk {
    Data(Instant, Vec<u8>),
    Eof(Instant),
}

/// Starts the reader and writer threads for one direction `src` → `dst`.
fn pump(
    shared: &Arc<ProxyShared>,
    id: usize,
    mut src: TcpStream,
    mut dst: TcpStream,
    delay: Duration,
    remaining: &Arc<AtomicUsize>,
) -> Vec<JoinHandle<()>> {
    let (tx, rx): (SyncSender<Chunk>, Receiver<Chunk>) = sync_channel(1024);
    let mut handles = Vec::new();
    let src_for_writer = src.try_clone().ok();
    let reader = thread::Builder::new()
        .name(format!("pop3-testkit-proxy-r{id}"))
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match src.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(Chunk::Eof(Instant::now() + delay));
                        return;
                    }
                    Ok(n) => {
                        let due = Instant::now() + delay;
                        if tx.send(Chunk::Data(due, buf[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    if let Ok(h) = reader {
        handles.push(h);
    }
    let sh = Arc::clone(shared);
    let remaining = Arc::clone(remaining);
    let writer = thread::Builder::new()
        .name(format!("pop3-testkit-proxy-w{id}"))
        .spawn(move || {
            let wait_until = |due: Instant| {
                let now = Instant::now();
                if due > now {
                    sleep_interruptible(due - now, &sh.stop);
                }
            };
            while let Ok(chunk) = rx.recv() {
                match chunk {
                    Chunk::Data(due, data) => {
                        wait_until(due);
                        if dst.write_all(&data).is_err() {
                            // Peer gone: tear the whole connection down.
                            let _ = dst.shutdown(Shutdown::Both);
                            if let Some(s) = &src_for_writer {
                                let _ = s.shutdown(Shutdown::Both);
                            }
                            break;
                        }
                    }
                    Chunk::Eof(due) => {
                        wait_until(due);
                        let _ = dst.shutdown(Shutdown::Write);
                        break;
                    }
                }
            }
            if remaining.fetch_sub(1, Ordering::SeqCst) == 1 {
                lock(&sh.sockets).remove(&id);
            }
        });
    if let Ok(h) = writer {
        handles.push(h);
    }
    handles
}

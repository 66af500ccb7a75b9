//! Scale benchmark: N concurrent logged-in sessions in one tokio process.
//!
//! `cargo bench -p pop3-tokio --bench scale` (N = 1,000 and 10,000; set
//! `POP3_SCALE_SESSIONS=500,2000` for other sizes, `POP3_SCALE_CONNECTS`
//! for the number of connects in flight at once, default 256).
//!
//! The stub POP3 server is this same binary re-executed as a child process
//! (`POP3_SCALE_SERVER=1`), so the client process's RSS and heap hold only
//! client sessions. The server answers the greeting, CAPA, USER, PASS,
//! STAT, NOOP and QUIT; nothing else is needed to log in, STAT and QUIT.
//!
//! For each N it prints:
//! - the time to connect and log in all N sessions and the login rate,
//! - the time to STAT all and QUIT all,
//! - RSS per idle logged-in session (`/proc/self/statm`, after − before) and
//!   heap per idle session (a counting global allocator, live bytes after −
//!   before),
//! - the errors seen.
//!
//! The fd limit must exceed N (plus a few): the bench refuses an N it
//! cannot hold (the soft limit is 20,000 on the CI machine).

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;

/// Live heap bytes of the whole process (all threads).
static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: forwards to the system allocator; only adds an atomic counter.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const USER: &str = "scale";
const PASS: &str = "scale-pass";

fn main() {
    if std::env::var_os("POP3_SCALE_SERVER").is_some() {
        return server_main();
    }
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let sizes: Vec<usize> = std::env::var("POP3_SCALE_SESSIONS")
        .unwrap_or_else(|_| String::from("1000,10000"))
        .split(',')
        .map(|s| s.trim().parse().expect("POP3_SCALE_SESSIONS: numbers"))
        .collect();
    let connects: usize = std::env::var("POP3_SCALE_CONNECTS")
        .ok()
        .map(|s| s.parse().expect("POP3_SCALE_CONNECTS: a number"))
        .unwrap_or(256);
    let fd_limit = fd_limit();
    let (mut child, port) = start_server();
    println!(
        "pop3-tokio scale bench: stub server pid {} on 127.0.0.1:{port}",
        child.id()
    );
    println!("fd limit {fd_limit}, {connects} connects in flight at most, 2 runtime workers");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut failed = false;
    for n in sizes {
        if n + 64 > fd_limit as usize {
            println!("N={n}: SKIPPED: needs more than the fd limit {fd_limit}");
            failed = true;
            continue;
        }
        let r = rt.block_on(run(port, n, connects));
        r.print(n);
        failed |= r.errors > 0;
    }
    let _ = child.kill();
    let _ = child.wait();
    if failed {
        std::process::exit(1);
    }
}

struct Report {
    login: Duration,
    stat: Duration,
    quit: Duration,
    rss_per: f64,
    heap_per: f64,
    errors: usize,
    first_error: Option<String>,
}

impl Report {
    fn print(&self, n: usize) {
        println!(
            "N={n:>6}: login all {:>7.1} ms ({:>8.0} logins/s) | STAT all {:>6.1} ms | QUIT all {:>6.1} ms",
            self.login.as_secs_f64() * 1e3,
            n as f64 / self.login.as_secs_f64(),
            self.stat.as_secs_f64() * 1e3,
            self.quit.as_secs_f64() * 1e3,
        );
        println!(
            "          per idle logged-in session: RSS {:.1} KiB, heap {:.1} KiB | errors: {}{}",
            self.rss_per / 1024.0,
            self.heap_per / 1024.0,
            self.errors,
            self.first_error
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        );
    }
}

type Session = pop3_tokio::Client<TcpStream>;

async fn open(port: u16) -> Result<Session, String> {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let mut c = Session::new(tcp)
        .await
        .map_err(|e| format!("greeting: {e}"))?;
    c.set_allow_cleartext_credentials(true);
    c.login(USER, PASS)
        .await
        .map_err(|e| format!("login: {e}"))?;
    Ok(c)
}

async fn run(port: u16, n: usize, connects: usize) -> Report {
    let rss0 = rss_bytes();
    let heap0 = LIVE.load(Ordering::Relaxed);
    let gate = Arc::new(Semaphore::new(connects));
    let t = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let gate = gate.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.expect("semaphore");
            open(port).await
        }));
    }
    let mut sessions = Vec::with_capacity(n);
    let mut errors = 0;
    let mut first_error = None;
    for t in tasks {
        match t.await.expect("task") {
            Ok(c) => sessions.push(c),
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let login = t.elapsed();
    // Let the runtime settle so transient buffers are released.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let rss1 = rss_bytes();
    let heap1 = LIVE.load(Ordering::Relaxed);
    let live = sessions.len().max(1) as f64;
    let rss_per = (rss1.saturating_sub(rss0)) as f64 / live;
    let heap_per = (heap1 - heap0) as f64 / live;

    let t = Instant::now();
    let mut tasks = Vec::with_capacity(sessions.len());
    for mut c in sessions {
        tasks.push(tokio::spawn(async move {
            let r = c.stat().await.map(|s| s.count);
            (c, r)
        }));
    }
    let mut sessions = Vec::with_capacity(tasks.len());
    for t in tasks {
        let (c, r) = t.await.expect("task");
        match r {
            Ok(3) => {}
            Ok(other) => {
                errors += 1;
                first_error.get_or_insert(format!("STAT said {other} messages, not 3"));
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(format!("stat: {e}"));
            }
        }
        sessions.push(c);
    }
    let stat = t.elapsed();

    let t = Instant::now();
    let mut tasks = Vec::with_capacity(sessions.len());
    for mut c in sessions {
        tasks.push(tokio::spawn(async move { c.quit().await.map(|_| ()) }));
    }
    for t in tasks {
        if let Err(e) = t.await.expect("task") {
            errors += 1;
            first_error.get_or_insert(format!("quit: {e}"));
        }
    }
    let quit = t.elapsed();
    Report {
        login,
        stat,
        quit,
        rss_per,
        heap_per,
        errors,
        first_error,
    }
}

/// Resident set size of this process.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// The soft fd limit of this process.
fn fd_limit() -> u64 {
    // `ulimit -n` of this process as seen by a shell child; raising it would
    // need libc, so the bench only reports it (20,000 on the CI machine).
    let out = Command::new("sh")
        .args(["-c", "ulimit -n"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_default();
    out.trim().parse().unwrap_or(1024)
}

fn start_server() -> (Child, u16) {
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .env("POP3_SCALE_SERVER", "1")
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("starting the stub server");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("reading the server's port");
    let port = line.trim().parse().expect("the server prints its port");
    (child, port)
}

/// The stub server: one task per connection, line by line.
fn server_main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(true).expect("reuseaddr");
        socket
            .bind("127.0.0.1:0".parse().expect("address"))
            .expect("bind");
        let listener = socket.listen(65535).expect("listen");
        let port = listener.local_addr().expect("local addr").port();
        let mut out = std::io::stdout();
        writeln!(out, "{port}").expect("stdout");
        out.flush().expect("stdout");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(serve(stream));
        }
    });
}

async fn serve(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let (r, mut w) = stream.into_split();
    let mut r = tokio::io::BufReader::with_capacity(512, r);
    if w.write_all(b"+OK stub POP3 ready\r\n").await.is_err() {
        return;
    }
    let mut line = String::new();
    let mut user_ok = false;
    let mut logged_in = false;
    loop {
        line.clear();
        match r.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let cmd = line.trim_end();
        let upper = cmd.to_ascii_uppercase();
        let reply: &[u8] = if upper == "CAPA" {
            b"+OK\r\nUSER\r\nUIDL\r\nTOP\r\nPIPELINING\r\n.\r\n"
        } else if upper.starts_with("USER ") && !logged_in {
            user_ok = &cmd[5..] == USER;
            b"+OK\r\n"
        } else if upper.starts_with("PASS ") && user_ok && !logged_in {
            if &cmd[5..] == PASS {
                logged_in = true;
                b"+OK logged in\r\n"
            } else {
                b"-ERR [AUTH] wrong password\r\n"
            }
        } else if upper == "STAT" && logged_in {
            b"+OK 3 3000\r\n"
        } else if upper == "NOOP" && logged_in {
            b"+OK\r\n"
        } else if upper == "QUIT" {
            let _ = w.write_all(b"+OK bye\r\n").await;
            return;
        } else {
            b"-ERR unknown command\r\n"
        };
        if w.write_all(reply).await.is_err() {
            return;
        }
    }
}

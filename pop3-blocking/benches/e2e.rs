//! End-to-end benchmark against a real Dovecot on loopback:
//! lockstep (one RETR at a time) versus pipelined retrieval, directly and
//! through a proxy adding a 20 ms round trip, plus peak client memory for a
//! 1 MB and a huge message.
//!
//! `cargo bench -p pop3-blocking --bench e2e`. Sizes via environment:
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `POP3_BENCH_SMALL` | 2000 | number of ~4 KB messages |
//! | `POP3_BENCH_SMALL_SIZE` | 4096 | their size |
//! | `POP3_BENCH_BIG` | 3 | number of 1 MB messages |
//! | `POP3_BENCH_HUGE_MB` | 100 | size of the memory-test message |
//! | `POP3_BENCH_RTT_MS` | 20 | round trip added by the proxy |
//! | `POP3_BENCH_DELAYED_LOCKSTEP` | all | messages fetched in lockstep through the proxy (the rate is extrapolated) |
//!
//! Memory is measured with a counting global allocator, per thread (the
//! client runs on the main thread; the proxy's buffers are not counted).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{self, Write};
use std::time::{Duration, Instant};

use pop3_blocking::{Client, ConnectOptions, Disposition, MessageSink, TcpClient, TlsPolicy};
use pop3_testkit::DelayProxy;

struct Counting;

thread_local! {
    static CURRENT: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    // `try_with`: the thread-locals may be gone during thread teardown.
    let _ = CURRENT.try_with(|c| {
        let now = c.get() + delta;
        c.set(now);
        let _ = PEAK.try_with(|p| {
            if now > p.get() {
                p.set(now)
            }
        });
    });
}

// SAFETY: forwards to the system allocator; only adds bookkeeping that
// does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        track(l.size() as isize);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        track(-(l.size() as isize));
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        track(new as isize - l.size() as isize);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Resets the peak to the current level and returns that level.
fn reset_peak() -> isize {
    let now = CURRENT.with(|c| c.get());
    PEAK.with(|p| p.set(now));
    now
}

fn peak_since(base: isize) -> isize {
    PEAK.with(|p| p.get()) - base
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn message(i: usize, size: usize) -> Vec<u8> {
    let mut m = format!("From: bench@example.org\r\nSubject: message {i}\r\n\r\n").into_bytes();
    let mut line = 0;
    while m.len() < size {
        if line % 12 == 0 {
            m.push(b'.');
        }
        m.extend_from_slice(
            format!("{i}:{line} lorem ipsum dolor sit amet, consectetur adipiscing elit\r\n")
                .as_bytes(),
        );
        line += 1;
    }
    m
}

struct Count {
    bytes: u64,
    messages: u64,
}

impl MessageSink for Count {
    fn data(&mut self, _: u32, chunk: &[u8]) -> io::Result<()> {
        self.bytes += chunk.len() as u64;
        Ok(())
    }
    fn end(&mut self, _: u32, _: u64) -> io::Result<Disposition> {
        self.messages += 1;
        Ok(Disposition::Keep)
    }
}

struct Run {
    secs: f64,
    messages: u64,
    bytes: u64,
    peak: isize,
}

impl Run {
    fn print(&self, label: &str) {
        println!(
            "{label:38} {:>6} msgs {:>9.1} MB {:>8.2} s {:>9.1} msg/s {:>8.1} MB/s  peak {:>7.1} KiB",
            self.messages,
            self.bytes as f64 / 1e6,
            self.secs,
            self.messages as f64 / self.secs,
            self.bytes as f64 / 1e6 / self.secs,
            self.peak as f64 / 1024.0
        );
    }
    fn rate(&self) -> f64 {
        self.messages as f64 / self.secs
    }
}

fn connect(port: u16, user: &str, pass: &str) -> TcpClient {
    let o = ConnectOptions::new()
        .policy(TlsPolicy::None)
        .allow_cleartext_credentials(true);
    let mut c = Client::connect("127.0.0.1", port, &o).expect("connect");
    c.user(user).unwrap();
    c.pass(pass).unwrap();
    c
}

fn lockstep(port: u16, user: &str, pass: &str, limit: u32) -> Run {
    let mut c = connect(port, user, pass);
    let count = c.stat().unwrap().count.min(limit);
    let base = reset_peak();
    let t = Instant::now();
    let mut bytes = 0;
    for n in 1..=count {
        bytes += c.retr_to(n, &mut io::sink()).unwrap();
    }
    let r = Run {
        secs: t.elapsed().as_secs_f64(),
        messages: count as u64,
        bytes,
        peak: peak_since(base),
    };
    c.quit().unwrap();
    r
}

fn pipelined(port: u16, user: &str, pass: &str) -> Run {
    let mut c = connect(port, user, pass);
    let count = c.stat().unwrap().count;
    let mut sink = Count {
        bytes: 0,
        messages: 0,
    };
    let base = reset_peak();
    let t = Instant::now();
    c.retr_each(1..=count, &mut sink).unwrap();
    let r = Run {
        secs: t.elapsed().as_secs_f64(),
        messages: sink.messages,
        bytes: sink.bytes,
        peak: peak_since(base),
    };
    c.quit().unwrap();
    r
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` must not run it.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let Some(d) = pop3_dovecot::start_or_skip() else {
        println!("dovecot not installed: benchmark skipped");
        return;
    };
    let small = env("POP3_BENCH_SMALL", 2000);
    let small_size = env("POP3_BENCH_SMALL_SIZE", 4096);
    let big = env("POP3_BENCH_BIG", 3);
    let huge_mb = env("POP3_BENCH_HUGE_MB", 100);
    let rtt = env("POP3_BENCH_RTT_MS", 20) as u64;
    let user = d.user().to_string();
    let pass = d.password().to_string();
    for i in 0..small {
        d.add_message(&user, &message(i, small_size)).unwrap();
    }
    for i in 0..big {
        d.add_message(&user, &message(small + i, 1 << 20)).unwrap();
    }
    let delayed_lockstep = env("POP3_BENCH_DELAYED_LOCKSTEP", small + big) as u32;
    println!(
        "mailbox: {small} x {small_size} B + {big} x 1 MiB, Dovecot on loopback, plain TCP; window {}",
        pop3_blocking::DEFAULT_WINDOW
    );
    let port = d.plain_addr().port();
    let l = lockstep(port, &user, &pass, u32::MAX);
    l.print("direct, lockstep");
    let p = pipelined(port, &user, &pass);
    p.print("direct, pipelined");
    println!("direct pipelined/lockstep: {:.1}x", p.rate() / l.rate());

    let proxy = DelayProxy::start(d.plain_addr(), Duration::from_millis(rtt / 2)).unwrap();
    let pport = proxy.addr().port();
    let l = lockstep(pport, &user, &pass, delayed_lockstep);
    l.print(&format!("{rtt} ms RTT, lockstep"));
    let p = pipelined(pport, &user, &pass);
    p.print(&format!("{rtt} ms RTT, pipelined"));
    println!(
        "{rtt} ms RTT pipelined/lockstep: {:.1}x (target >= 20x)",
        p.rate() / l.rate()
    );
    drop(proxy);

    // Peak client memory for a 1 MiB versus a huge message (streamed to a
    // sink that discards, as a fetcher writing to disk would).
    let bob = d.users()[1].name().to_string();
    let bob_pass = d.users()[1].password().to_string();
    d.add_message(&bob, &message(0, 1 << 20)).unwrap();
    {
        let huge = message(1, huge_mb << 20);
        d.add_message(&bob, &huge).unwrap();
    }
    let mut peaks = Vec::new();
    for n in [1u32, 2] {
        // A fresh connection each time, counted from before connecting, so
        // the figure is the client's whole footprint for that message.
        let base = reset_peak();
        let mut c = connect(port, &bob, &bob_pass);
        let t = Instant::now();
        let octets = c.retr_to(n, &mut io::sink()).unwrap();
        let secs = t.elapsed().as_secs_f64();
        let peak = peak_since(base);
        c.quit().unwrap();
        println!(
            "memory: message {n} of {:>6.1} MB: {:.2} s, {:.1} MB/s, client peak {:.1} KiB",
            octets as f64 / 1e6,
            secs,
            octets as f64 / 1e6 / secs,
            peak as f64 / 1024.0
        );
        peaks.push(peak);
    }
    println!(
        "peak memory {huge_mb} MiB / 1 MiB message: {:.2} (target <= 1.0)",
        peaks[1] as f64 / peaks[0].max(1) as f64
    );
    let _ = io::stdout().flush();
}

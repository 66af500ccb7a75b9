//! End-to-end benchmark against a real Dovecot on loopback, the blocking
//! and the tokio adapter side by side in one run: lockstep (one RETR at a
//! time) versus pipelined retrieval, directly and through a proxy adding a
//! round trip, plus peak client memory for a 1 MiB and a huge message.
//!
//! `cargo bench -p pop3-tokio --bench e2e`. Sizes via environment (the
//! same variables as `pop3-blocking`'s bench):
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `POP3_BENCH_SMALL` | 2000 | number of ~4 KB messages |
//! | `POP3_BENCH_SMALL_SIZE` | 4096 | their size |
//! | `POP3_BENCH_BIG` | 3 | number of 1 MiB messages |
//! | `POP3_BENCH_HUGE_MB` | 100 | size of the memory-test message |
//! | `POP3_BENCH_RTT_MS` | 20 | round trip added by the proxy |
//! | `POP3_BENCH_DELAYED_LOCKSTEP` | 200 | messages fetched in lockstep through the proxy (the rate is extrapolated; all of them would take 40 s per adapter) |
//!
//! Memory is measured with a counting global allocator, per thread: each
//! client runs on the main thread (tokio on a current-thread runtime), the
//! proxy's and Dovecot's memory is not counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{self, Write};
use std::time::{Duration, Instant};

use pop3_testkit::DelayProxy;
use pop3_tokio::{ConnectOptions, Disposition, MessageSink, TlsPolicy};

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
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

// SAFETY: forwards to the system allocator; only adds bookkeeping that does
// not allocate.
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

/// `n` messages of about `size` bytes (about one line in twelve starts
/// with `.`, so dot-stuffing is exercised), starting at index `first`.
fn messages(first: usize, n: usize, size: usize) -> Vec<Vec<u8>> {
    pop3_testkit::Mailbox::generate(first + n, size)
        .messages()
        .iter()
        .skip(first)
        .map(|m| m.data().to_vec())
        .collect()
}

/// Counts what a batch delivers (one sink type for both adapters' traits).
macro_rules! count_sink {
    ($name:ident, $trait:path, $disp:path) => {
        #[derive(Default)]
        struct $name {
            bytes: u64,
            messages: u64,
        }
        impl $trait for $name {
            fn data(&mut self, _: u32, chunk: &[u8]) -> io::Result<()> {
                self.bytes += chunk.len() as u64;
                Ok(())
            }
            fn end(&mut self, _: u32, _: u64) -> io::Result<$disp> {
                self.messages += 1;
                Ok(<$disp>::Keep)
            }
        }
    };
}
count_sink!(TokioCount, MessageSink, Disposition);
count_sink!(
    BlockingCount,
    pop3_blocking::MessageSink,
    pop3_blocking::Disposition
);

#[derive(Clone, Copy)]
struct Run {
    secs: f64,
    messages: u64,
    bytes: u64,
    peak: isize,
}

impl Run {
    fn print(&self, label: &str) {
        println!(
            "{label:40} {:>6} msgs {:>8.1} MB {:>7.2} s {:>9.1} msg/s {:>8.1} MB/s  peak {:>7.1} KiB",
            self.messages,
            self.bytes as f64 / 1e6,
            self.secs,
            self.rate(),
            self.bytes as f64 / 1e6 / self.secs,
            self.peak as f64 / 1024.0
        );
    }
    fn rate(&self) -> f64 {
        self.messages as f64 / self.secs
    }
}

fn options() -> ConnectOptions {
    ConnectOptions::new()
        .policy(TlsPolicy::None)
        .allow_cleartext_credentials(true)
}

/// What one adapter has to offer the bench.
trait Adapter {
    const NAME: &'static str;
    /// Lockstep RETR of messages 1..=limit into a sink that discards.
    fn lockstep(&mut self, port: u16, user: &str, pass: &str, limit: u32) -> Run;
    /// Pipelined RETR of every message.
    fn pipelined(&mut self, port: u16, user: &str, pass: &str) -> Run;
}

struct Blocking;

impl Adapter for Blocking {
    const NAME: &'static str = "blocking";

    fn lockstep(&mut self, port: u16, user: &str, pass: &str, limit: u32) -> Run {
        let mut c = pop3_blocking::Client::connect("127.0.0.1", port, &options()).unwrap();
        c.user(user).unwrap();
        c.pass(pass).unwrap();
        let count = c.stat().unwrap().count.min(limit);
        let base = reset_peak();
        let t = Instant::now();
        let mut bytes = 0;
        for n in 1..=count {
            bytes += c.retr_to(n, &mut io::sink()).unwrap();
        }
        let run = Run {
            secs: t.elapsed().as_secs_f64(),
            messages: count.into(),
            bytes,
            peak: peak_since(base),
        };
        c.quit().unwrap();
        run
    }

    fn pipelined(&mut self, port: u16, user: &str, pass: &str) -> Run {
        let mut c = pop3_blocking::Client::connect("127.0.0.1", port, &options()).unwrap();
        c.user(user).unwrap();
        c.pass(pass).unwrap();
        let count = c.stat().unwrap().count;
        let mut sink = BlockingCount::default();
        let base = reset_peak();
        let t = Instant::now();
        c.retr_each(1..=count, &mut sink).unwrap();
        let run = Run {
            secs: t.elapsed().as_secs_f64(),
            messages: sink.messages,
            bytes: sink.bytes,
            peak: peak_since(base),
        };
        c.quit().unwrap();
        run
    }
}

struct Tokio(tokio::runtime::Runtime);

impl Tokio {
    async fn connect(port: u16, user: &str, pass: &str) -> pop3_tokio::TcpClient {
        let mut c = pop3_tokio::Client::connect("127.0.0.1", port, &options())
            .await
            .unwrap();
        c.user(user).await.unwrap();
        c.pass(pass).await.unwrap();
        c
    }
}

impl Adapter for Tokio {
    const NAME: &'static str = "tokio";

    fn lockstep(&mut self, port: u16, user: &str, pass: &str, limit: u32) -> Run {
        self.0.block_on(async {
            let mut c = Tokio::connect(port, user, pass).await;
            let count = c.stat().await.unwrap().count.min(limit);
            let base = reset_peak();
            let t = Instant::now();
            let mut bytes = 0;
            for n in 1..=count {
                bytes += c.retr_to(n, &mut tokio::io::sink()).await.unwrap();
            }
            let run = Run {
                secs: t.elapsed().as_secs_f64(),
                messages: count.into(),
                bytes,
                peak: peak_since(base),
            };
            c.quit().await.unwrap();
            run
        })
    }

    fn pipelined(&mut self, port: u16, user: &str, pass: &str) -> Run {
        self.0.block_on(async {
            let mut c = Tokio::connect(port, user, pass).await;
            let count = c.stat().await.unwrap().count;
            let mut sink = TokioCount::default();
            let base = reset_peak();
            let t = Instant::now();
            c.retr_each(1..=count, &mut sink).await.unwrap();
            let run = Run {
                secs: t.elapsed().as_secs_f64(),
                messages: sink.messages,
                bytes: sink.bytes,
                peak: peak_since(base),
            };
            c.quit().await.unwrap();
            run
        })
    }
}

struct Results {
    direct_lockstep: Run,
    direct_pipelined: Run,
    rtt_lockstep: Run,
    rtt_pipelined: Run,
}

fn run_adapter<A: Adapter>(
    a: &mut A,
    port: u16,
    proxy_port: u16,
    (user, pass): (&str, &str),
    rtt: u64,
    delayed_lockstep: u32,
) -> Results {
    let name = A::NAME;
    let r = Results {
        direct_lockstep: a.lockstep(port, user, pass, u32::MAX),
        direct_pipelined: a.pipelined(port, user, pass),
        rtt_lockstep: a.lockstep(proxy_port, user, pass, delayed_lockstep),
        rtt_pipelined: a.pipelined(proxy_port, user, pass),
    };
    r.direct_lockstep
        .print(&format!("{name}: direct, lockstep"));
    r.direct_pipelined
        .print(&format!("{name}: direct, pipelined"));
    r.rtt_lockstep
        .print(&format!("{name}: {rtt} ms RTT, lockstep"));
    r.rtt_pipelined
        .print(&format!("{name}: {rtt} ms RTT, pipelined"));
    println!(
        "{name}: pipelined/lockstep: direct {:.1}x, {rtt} ms RTT {:.1}x",
        r.direct_pipelined.rate() / r.direct_lockstep.rate(),
        r.rtt_pipelined.rate() / r.rtt_lockstep.rate()
    );
    r
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` must not run it.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let started = Instant::now();
    let Some(d) = pop3_dovecot::start_or_skip() else {
        println!("dovecot not installed: benchmark skipped");
        return;
    };
    let small = env("POP3_BENCH_SMALL", 2000);
    let small_size = env("POP3_BENCH_SMALL_SIZE", 4096);
    let big = env("POP3_BENCH_BIG", 3);
    let huge_mb = env("POP3_BENCH_HUGE_MB", 100);
    let rtt = env("POP3_BENCH_RTT_MS", 20) as u64;
    let delayed_lockstep = env("POP3_BENCH_DELAYED_LOCKSTEP", 200) as u32;
    let user = d.user().to_string();
    let pass = d.password().to_string();
    for m in messages(0, small, small_size)
        .iter()
        .chain(&messages(0, big, 1 << 20))
    {
        d.add_message(&user, m).unwrap();
    }
    println!(
        "mailbox: {small} x {small_size} B + {big} x 1 MiB, Dovecot on loopback, plain TCP; \
         window: blocking {}, tokio {}",
        pop3_blocking::DEFAULT_WINDOW,
        pop3_tokio::DEFAULT_WINDOW
    );
    let port = d.plain_addr().port();
    let proxy = DelayProxy::start(d.plain_addr(), Duration::from_millis(rtt / 2)).unwrap();
    let pport = proxy.addr().port();
    let creds = (user.as_str(), pass.as_str());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut tokio = Tokio(rt);
    let b = run_adapter(&mut Blocking, port, pport, creds, rtt, delayed_lockstep);
    let t = run_adapter(&mut tokio, port, pport, creds, rtt, delayed_lockstep);
    drop(proxy);
    println!(
        "tokio/blocking msg/s: direct lockstep {:.2}, direct pipelined {:.2}, \
         RTT lockstep {:.2}, RTT pipelined {:.2}",
        t.direct_lockstep.rate() / b.direct_lockstep.rate(),
        t.direct_pipelined.rate() / b.direct_pipelined.rate(),
        t.rtt_lockstep.rate() / b.rtt_lockstep.rate(),
        t.rtt_pipelined.rate() / b.rtt_pipelined.rate(),
    );

    // Peak client memory for a 1 MiB versus a huge message, streamed to a
    // sink that discards (as a fetcher writing to disk would).
    let bob = d.users()[1].name().to_string();
    let bob_pass = d.users()[1].password().to_string();
    d.add_message(&bob, &messages(0, 1, 1 << 20)[0]).unwrap();
    d.add_message(&bob, &messages(0, 1, huge_mb << 20)[0])
        .unwrap();
    let report = |name: &str, n: u32, octets: u64, secs: f64, peak: isize| {
        println!(
            "{name}: memory: message {n} of {:>6.1} MB: {:.2} s, {:.1} MB/s, client peak {:.1} KiB",
            octets as f64 / 1e6,
            secs,
            octets as f64 / 1e6 / secs,
            peak as f64 / 1024.0
        );
        peak
    };
    let mut c = pop3_blocking::Client::connect("127.0.0.1", port, &options()).unwrap();
    c.user(&bob).unwrap();
    c.pass(&bob_pass).unwrap();
    let mut peaks = Vec::new();
    for n in [1u32, 2] {
        let base = reset_peak();
        let t = Instant::now();
        let octets = c.retr_to(n, &mut io::sink()).unwrap();
        peaks.push(report(
            "blocking",
            n,
            octets,
            t.elapsed().as_secs_f64(),
            peak_since(base),
        ));
    }
    c.quit().unwrap();
    tokio.0.block_on(async {
        let mut c = Tokio::connect(port, &bob, &bob_pass).await;
        for n in [1u32, 2] {
            let base = reset_peak();
            let t = Instant::now();
            let octets = c.retr_to(n, &mut tokio::io::sink()).await.unwrap();
            peaks.push(report(
                "tokio",
                n,
                octets,
                t.elapsed().as_secs_f64(),
                peak_since(base),
            ));
        }
        c.quit().await.unwrap();
    });
    println!(
        "peak memory {huge_mb} MiB / 1 MiB message: blocking {:.2}, tokio {:.2} (target <= 1.0)",
        peaks[1] as f64 / peaks[0].max(1) as f64,
        peaks[3] as f64 / peaks[2].max(1) as f64
    );
    println!("total bench time {:.1} s", started.elapsed().as_secs_f64());
    let _ = io::stdout().flush();
}

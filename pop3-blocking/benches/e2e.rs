//! End-to-end benchmark against a real Dovecot on loopback:
//! lockstep (one RETR at a time) versus pipelined retrieval, directly and
//! through a proxy adding a 20 ms round trip, plus peak client memory for a
//! 1 MB and a huge message.
//!
//! `cargo bench -p pop3-blocking --bench e2e`. Sizes via environment: see
//! `pop3_scenarios::bench::Sizes` (`POP3_BENCH_SMALL`, `_SMALL_SIZE`,
//! `_BIG`, `_HUGE_MB`, `_RTT_MS`, `_DELAYED_LOCKSTEP`, default: all).
//!
//! Memory is measured with a counting global allocator, per thread (the
//! client runs on the main thread; the proxy's buffers are not counted).

use std::io::{self, Write};
use std::time::{Duration, Instant};

use pop3_blocking::{Client, TcpClient};
use pop3_scenarios::bench::{self, memory_line, peak_since, reset_peak, CountSink, Run, Sizes};
use pop3_testkit::DelayProxy;

#[global_allocator]
static ALLOC: bench::Counting = bench::Counting;

fn connect(port: u16, user: &str, pass: &str) -> TcpClient {
    let mut c = Client::connect("127.0.0.1", port, &bench::options()).expect("connect");
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
        messages: count.into(),
        bytes,
        peak: peak_since(base),
    };
    c.quit().unwrap();
    r
}

fn pipelined(port: u16, user: &str, pass: &str) -> Run {
    let mut c = connect(port, user, pass);
    let count = c.stat().unwrap().count;
    let mut sink = CountSink::default();
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
    if !bench::invoked_as_bench() {
        return;
    }
    let Some(d) = pop3_dovecot::start_or_skip() else {
        println!("dovecot not installed: benchmark skipped");
        return;
    };
    let sizes = Sizes::from_env(None);
    sizes.fill(&d);
    let (user, pass) = (d.user().to_string(), d.password().to_string());
    let rtt = sizes.rtt_ms;
    println!(
        "{}; window {}",
        sizes.describe(),
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
    let l = lockstep(pport, &user, &pass, sizes.delayed_lockstep);
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
    let bob = &d.users()[1];
    let mut peaks = Vec::new();
    for n in [1u32, 2] {
        // A fresh connection each time, counted from before connecting, so
        // the figure is the client's whole footprint for that message.
        let base = reset_peak();
        let mut c = connect(port, bob.name(), bob.password());
        let t = Instant::now();
        let octets = c.retr_to(n, &mut io::sink()).unwrap();
        let secs = t.elapsed().as_secs_f64();
        peaks.push(memory_line("blocking", n, octets, secs, peak_since(base)));
        c.quit().unwrap();
    }
    println!(
        "peak memory {} MiB / 1 MiB message: {:.2} (target <= 1.0)",
        sizes.huge_mb,
        peaks[1] as f64 / peaks[0].max(1) as f64
    );
    let _ = io::stdout().flush();
}

//! End-to-end benchmark against a real Dovecot on loopback, the blocking
//! and the tokio adapter side by side in one run: lockstep (one RETR at a
//! time) versus pipelined retrieval, directly and through a proxy adding a
//! round trip, plus peak client memory for a 1 MiB and a huge message.
//!
//! `cargo bench -p pop3-tokio --bench e2e`. Sizes via environment, the
//! same variables as `pop3-blocking`'s bench (`pop3_scenarios::bench::Sizes`),
//! except that `POP3_BENCH_DELAYED_LOCKSTEP` defaults to 200 messages (the
//! rate is extrapolated; all of them would take 40 s per adapter).
//!
//! Memory is measured with a counting global allocator, per thread: each
//! client runs on the main thread (tokio on a current-thread runtime), the
//! proxy's and Dovecot's memory is not counted.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use pop3_scenarios::bench::{
    self, memory_line, options, peak_since, reset_peak, CountSink, Run, Sizes,
};
use pop3_testkit::DelayProxy;

#[global_allocator]
static ALLOC: bench::Counting = bench::Counting;

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
        let mut sink = CountSink::default();
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
            let mut sink = CountSink::default();
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
    if !bench::invoked_as_bench() {
        return;
    }
    let started = Instant::now();
    let Some(d) = pop3_dovecot::start_or_skip() else {
        println!("dovecot not installed: benchmark skipped");
        return;
    };
    // Lockstep through the proxy: 200 messages by default (all of them
    // would take 40 s per adapter; the rate is extrapolated).
    let sizes = Sizes::from_env(Some(200));
    sizes.fill(&d);
    let (user, pass) = (d.user().to_string(), d.password().to_string());
    let rtt = sizes.rtt_ms;
    println!(
        "{}; window: blocking {}, tokio {}",
        sizes.describe(),
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
    let lockstep = sizes.delayed_lockstep;
    let b = run_adapter(&mut Blocking, port, pport, creds, rtt, lockstep);
    let t = run_adapter(&mut tokio, port, pport, creds, rtt, lockstep);
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
    // A fresh connection per message, counted from before connecting, so
    // each figure is the client's whole footprint for that message.
    let bob = &d.users()[1];
    let mut peaks = Vec::new();
    for n in [1u32, 2] {
        let base = reset_peak();
        let mut c = pop3_blocking::Client::connect("127.0.0.1", port, &options()).unwrap();
        c.user(bob.name()).unwrap();
        c.pass(bob.password()).unwrap();
        let t = Instant::now();
        let octets = c.retr_to(n, &mut io::sink()).unwrap();
        let secs = t.elapsed().as_secs_f64();
        peaks.push(memory_line("blocking", n, octets, secs, peak_since(base)));
        c.quit().unwrap();
    }
    tokio.0.block_on(async {
        for n in [1u32, 2] {
            let base = reset_peak();
            let mut c = Tokio::connect(port, bob.name(), bob.password()).await;
            let t = Instant::now();
            let octets = c.retr_to(n, &mut tokio::io::sink()).await.unwrap();
            let secs = t.elapsed().as_secs_f64();
            peaks.push(memory_line("tokio", n, octets, secs, peak_since(base)));
            c.quit().await.unwrap();
        }
    });
    println!(
        "peak memory {} MiB / 1 MiB message: blocking {:.2}, tokio {:.2} (target <= 1.0)",
        sizes.huge_mb,
        peaks[1] as f64 / peaks[0].max(1) as f64,
        peaks[3] as f64 / peaks[2].max(1) as f64
    );
    println!("total bench time {:.1} s", started.elapsed().as_secs_f64());
    let _ = io::stdout().flush();
}

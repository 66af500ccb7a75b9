//! What the adapters' end-to-end benches share (`cargo bench -p
//! pop3-blocking --bench e2e`, `cargo bench -p pop3-tokio --bench e2e`):
//! the counting allocator, the sizes from the environment, the Dovecot
//! mailbox, a counting sink and the report lines.
//!
//! A bench installs the allocator itself:
//!
//! ```no_run
//! #[global_allocator]
//! static ALLOC: pop3_scenarios::bench::Counting = pop3_scenarios::bench::Counting;
//!
//! fn main() {
//!     let base = pop3_scenarios::bench::reset_peak();
//!     let v = vec![0u8; 1 << 20];
//!     assert!(pop3_scenarios::bench::peak_since(base) >= 1 << 20);
//!     drop(v);
//! }
//! ```
//!
//! Memory is counted per thread (the client runs on the bench's main
//! thread; the proxy's and Dovecot's memory is not counted).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io;

use pop3_adapter::{ConnectOptions, Disposition, MessageSink, TlsPolicy};
use pop3_dovecot::Dovecot;

/// A global allocator that forwards to the system allocator and tracks the
/// current and peak bytes allocated by the calling thread.
#[derive(Debug)]
pub struct Counting;

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
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        track(l.size() as isize);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        track(-(l.size() as isize));
        // SAFETY: as above.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        track(new as isize - l.size() as isize);
        // SAFETY: as above.
        unsafe { System.realloc(p, l, new) }
    }
}

/// Resets this thread's peak to its current level and returns that level.
pub fn reset_peak() -> isize {
    let now = CURRENT.with(|c| c.get());
    PEAK.with(|p| p.set(now));
    now
}

/// This thread's peak since [`reset_peak`] returned `base`.
pub fn peak_since(base: isize) -> isize {
    PEAK.with(|p| p.get()) - base
}

/// Whether to run: `cargo bench` passes `--bench`; `cargo test --benches`
/// must not run a bench binary.
pub fn invoked_as_bench() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The bench sizes, from the environment:
///
/// | variable | default | meaning |
/// | --- | --- | --- |
/// | `POP3_BENCH_SMALL` | 2000 | number of ~4 KB messages |
/// | `POP3_BENCH_SMALL_SIZE` | 4096 | their size |
/// | `POP3_BENCH_BIG` | 3 | number of 1 MiB messages |
/// | `POP3_BENCH_HUGE_MB` | 100 | size of the memory-test message |
/// | `POP3_BENCH_RTT_MS` | 20 | round trip added by the proxy |
/// | `POP3_BENCH_DELAYED_LOCKSTEP` | per bench | messages fetched in lockstep through the proxy (the rate is extrapolated) |
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Number of small messages.
    pub small: usize,
    /// Their size.
    pub small_size: usize,
    /// Number of 1 MiB messages.
    pub big: usize,
    /// Size of the memory-test message, in MiB.
    pub huge_mb: usize,
    /// Round trip added by the proxy, in ms.
    pub rtt_ms: u64,
    /// Messages fetched in lockstep through the proxy.
    pub delayed_lockstep: u32,
}

impl Sizes {
    /// From the environment; `delayed_lockstep` is the default of
    /// `POP3_BENCH_DELAYED_LOCKSTEP` (`None`: every message).
    pub fn from_env(delayed_lockstep: Option<usize>) -> Sizes {
        let small = env("POP3_BENCH_SMALL", 2000);
        let big = env("POP3_BENCH_BIG", 3);
        let lockstep = env(
            "POP3_BENCH_DELAYED_LOCKSTEP",
            delayed_lockstep.unwrap_or(small + big),
        );
        Sizes {
            small,
            small_size: env("POP3_BENCH_SMALL_SIZE", 4096),
            big,
            huge_mb: env("POP3_BENCH_HUGE_MB", 100),
            rtt_ms: env("POP3_BENCH_RTT_MS", 20) as u64,
            delayed_lockstep: u32::try_from(lockstep).unwrap_or(u32::MAX),
        }
    }

    /// Fills the first user's maildrop (`small` messages of `small_size`,
    /// then `big` of 1 MiB) and the second user's with one 1 MiB and one
    /// `huge_mb` MiB message, for the memory test.
    pub fn fill(&self, d: &Dovecot) {
        let user = d.user().to_string();
        for m in messages(self.small, self.small_size)
            .iter()
            .chain(&messages(self.big, 1 << 20))
        {
            d.add_message(&user, m).expect("add message");
        }
        let bob = d.users()[1].name().to_string();
        d.add_message(&bob, &messages(1, 1 << 20)[0])
            .expect("add message");
        d.add_message(&bob, &messages(1, self.huge_mb << 20)[0])
            .expect("add message");
    }

    /// The mailbox line of the report.
    pub fn describe(&self) -> String {
        format!(
            "mailbox: {} x {} B + {} x 1 MiB, Dovecot on loopback, plain TCP",
            self.small, self.small_size, self.big
        )
    }
}

/// `n` messages of about `size` bytes (about one line in twelve starts with
/// `.`, so dot-stuffing is exercised).
pub fn messages(n: usize, size: usize) -> Vec<Vec<u8>> {
    pop3_testkit::Mailbox::generate(n, size)
        .messages()
        .iter()
        .map(|m| m.data().to_vec())
        .collect()
}

/// Plain TCP, cleartext credentials allowed (Dovecot on loopback).
pub fn options() -> ConnectOptions {
    ConnectOptions::new()
        .policy(TlsPolicy::None)
        .allow_cleartext_credentials(true)
}

/// A [`MessageSink`] that counts and discards (the trait both adapters use).
#[derive(Debug, Default)]
pub struct CountSink {
    /// Body bytes received.
    pub bytes: u64,
    /// Messages complete.
    pub messages: u64,
}

impl MessageSink for CountSink {
    fn data(&mut self, _: u32, chunk: &[u8]) -> io::Result<()> {
        self.bytes += chunk.len() as u64;
        Ok(())
    }
    fn end(&mut self, _: u32, _: u64) -> io::Result<Disposition> {
        self.messages += 1;
        Ok(Disposition::Keep)
    }
}

/// One measured retrieval.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// Wall time.
    pub secs: f64,
    /// Messages retrieved.
    pub messages: u64,
    /// Body bytes.
    pub bytes: u64,
    /// Peak client memory during the run.
    pub peak: isize,
}

impl Run {
    /// Prints one report line.
    pub fn print(&self, label: &str) {
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

    /// Messages per second.
    pub fn rate(&self) -> f64 {
        self.messages as f64 / self.secs
    }
}

/// Prints the memory line of one message (`name`: the adapter) and returns
/// the peak.
pub fn memory_line(name: &str, n: u32, octets: u64, secs: f64, peak: isize) -> isize {
    println!(
        "{name}: memory: message {n} of {:>6.1} MB: {:.2} s, {:.1} MB/s, client peak {:.1} KiB",
        octets as f64 / 1e6,
        secs,
        octets as f64 / 1e6 / secs,
        peak as f64 / 1024.0
    );
    peak
}

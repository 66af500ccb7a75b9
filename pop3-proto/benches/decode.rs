//! Decoding throughput of a 64 MiB RETR body fed in 16 KiB chunks, against
//! a baseline that only scans the same bytes for "\n." with memchr::memmem
//! (the least work any dot-unstuffer must do). Prints the ratio.

use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, Criterion, Throughput};
use pop3_proto::{Client, Command, Config, Event, MsgNum};

const SIZE: usize = 64 * 1024 * 1024;
const CHUNK: usize = 16 * 1024;

/// Realistic mail text: headers, prose lines of varying length, a quoted
/// block, and a dot-stuffed line now and then.
fn corpus() -> Vec<u8> {
    let lines: [&[u8]; 12] = [
        b"Received: from mx.example.org (mx.example.org [192.0.2.1]) by pop.example.net\r\n",
        b"Subject: Re: quarterly numbers and the plan for next week\r\n",
        b"\r\n",
        b"Hi all,\r\n",
        b"please find the numbers below; the totals are preliminary until Friday.\r\n",
        b"> On Tue, someone wrote:\r\n",
        b"> what about the second item on the list we discussed?\r\n",
        b"..hidden line that starts with a dot (stuffed on the wire)\r\n",
        b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor\r\n",
        b"incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis\r\n",
        b"nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat.\r\n",
        b"-- \r\n",
    ];
    let mut v = Vec::with_capacity(SIZE + 128);
    let mut i = 0usize;
    while v.len() < SIZE {
        v.extend_from_slice(lines[i % lines.len()]);
        i = i.wrapping_mul(7).wrapping_add(3) % 1009;
    }
    v.extend_from_slice(b".\r\n");
    v
}

fn ready_client() -> (Client, Vec<u8>) {
    let mut config = Config::default();
    config.allow_cleartext_credentials = true;
    let mut c = Client::new(config);
    let mut out = Vec::new();
    c.handle_input(b"+OK\r\n");
    while c.poll_event().unwrap().is_some() {}
    c.enqueue(Command::user("u").unwrap()).unwrap();
    c.enqueue(Command::pass("p").unwrap()).unwrap();
    c.enqueue(Command::Retr(MsgNum::new(1).unwrap())).unwrap();
    for reply in [&b"+OK\r\n"[..], b"+OK\r\n", b"+OK\r\n"] {
        while c.poll_transmit(&mut out).is_some() {}
        c.handle_input(reply);
        while c.poll_event().unwrap().is_some() {}
    }
    (c, out)
}

fn decode(body: &[u8]) -> u64 {
    let (mut c, _) = ready_client();
    let mut total = 0u64;
    for chunk in body.chunks(CHUNK) {
        c.handle_input(chunk);
        while let Some(ev) = c.poll_event().unwrap() {
            if let Event::BodyChunk { data, .. } = ev {
                total += data.len() as u64;
                black_box(data);
            }
        }
    }
    total
}

fn baseline(body: &[u8]) -> usize {
    let finder = memchr::memmem::Finder::new(b"\n.");
    let mut n = 0;
    for chunk in body.chunks(CHUNK) {
        n += finder.find_iter(chunk).count();
    }
    n
}

fn bench(c: &mut Criterion) {
    let body = corpus();
    let mut g = c.benchmark_group("retr_64MiB");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("pop3_proto_decode", |b| b.iter(|| decode(black_box(&body))));
    g.bench_function("baseline_memmem_scan", |b| {
        b.iter(|| baseline(black_box(&body)))
    });
    g.finish();

    // One direct, interleaved measurement for the ratio (criterion's own
    // numbers above are the detailed view).
    let mut t_dec = Duration::MAX;
    let mut t_base = Duration::MAX;
    for _ in 0..7 {
        let t = Instant::now();
        black_box(decode(&body));
        t_dec = t_dec.min(t.elapsed());
        let t = Instant::now();
        black_box(baseline(&body));
        t_base = t_base.min(t.elapsed());
    }
    let mbps = |d: Duration| body.len() as f64 / d.as_secs_f64() / (1024.0 * 1024.0);
    println!(
        "decode: {:.0} MiB/s, baseline memmem: {:.0} MiB/s, ratio decode/baseline = {:.2} (target >= 0.50)",
        mbps(t_dec),
        mbps(t_base),
        t_base.as_secs_f64() / t_dec.as_secs_f64()
    );
}

criterion_group!(benches, bench);

fn main() {
    // Sanity check before timing: every body byte comes out.
    let body = corpus();
    let stuffed_lines = body.windows(3).filter(|w| w == b"\n..").count() as u64;
    let expected = body.len() as u64 - 3 - stuffed_lines;
    assert_eq!(decode(&body), expected, "decoder lost or invented bytes");
    benches();
    Criterion::default().configure_from_args().final_summary();
}

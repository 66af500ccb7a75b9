//! DelayProxy: adds the configured delay, preserves order, keeps throughput.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::{unstuff, Client};
use pop3_testkit::{DelayProxy, Mailbox, Server};

#[test]
fn round_trip_takes_at_least_twice_the_one_way_delay() {
    let s = Server::builder()
        .user("alice", "secret")
        .mailbox(Mailbox::sample())
        .start()
        .unwrap();
    let p = DelayProxy::start(s.addr(), Duration::from_millis(25)).unwrap();
    assert_eq!(p.target(), s.addr());
    let t = Instant::now();
    let (mut c, g) = Client::greeted(p.addr());
    assert!(g.starts_with("+OK"));
    // Greeting: server→client only; but the TCP connect to the server
    // happens on accept, so at least one one-way delay.
    assert!(
        t.elapsed() >= Duration::from_millis(25),
        "{:?}",
        t.elapsed()
    );
    for _ in 0..3 {
        let t = Instant::now();
        assert_eq!(c.cmd("CAPA"), "+OK Capability list follows\r\n");
        let rtt = t.elapsed();
        assert!(rtt >= Duration::from_millis(50), "rtt {rtt:?}");
        assert!(rtt < Duration::from_millis(2000), "rtt {rtt:?}");
        assert_eq!(c.body().len(), 8);
    }
    assert_eq!(p.connection_count(), 1);
}

#[test]
fn pipelining_through_proxy_costs_one_round_trip() {
    let s = Server::builder()
        .user("alice", "secret")
        .mailbox(Mailbox::generate(20, 2000))
        .start()
        .unwrap();
    let p = DelayProxy::start(s.addr(), Duration::from_millis(20)).unwrap();
    let mut c = Client::login(p.addr(), "alice", "secret");
    let t = Instant::now();
    let mut batch = String::new();
    for i in 1..=20 {
        batch.push_str(&format!("RETR {i}\r\n"));
    }
    c.send(batch.as_bytes());
    let mb = Mailbox::generate(20, 2000);
    for m in mb.messages() {
        assert_eq!(c.line(), format!("+OK {} octets\r\n", m.size()));
        assert_eq!(unstuff(&c.body_bytes()), m.data());
    }
    let pipelined = t.elapsed();
    assert!(pipelined >= Duration::from_millis(40), "{pipelined:?}");
    // 20 lockstep round trips would be >= 800 ms; pipelined is ~1 RTT.
    assert!(pipelined < Duration::from_millis(800), "{pipelined:?}");
}

#[test]
fn asymmetric_delay_and_byte_order_and_half_close() {
    // An echo server: returns everything, then closes when the client does.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let echo = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 65536];
        let mut total = 0usize;
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n;
            s.write_all(&buf[..n]).unwrap();
        }
        total
    });
    let p = DelayProxy::start_asymmetric(addr, Duration::from_millis(30), Duration::ZERO).unwrap();
    let mut c = TcpStream::connect(p.addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let t = Instant::now();
    c.write_all(b"x").unwrap();
    let mut one = [0u8; 1];
    c.read_exact(&mut one).unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(30),
        "{:?}",
        t.elapsed()
    );

    // 4 MiB of numbered bytes, written in many chunks from another thread:
    // must come back in order, and far faster than chunks × delay.
    let data: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
    let mut w = c.try_clone().unwrap();
    let d2 = data.clone();
    let t = Instant::now();
    let writer = thread::spawn(move || {
        for chunk in d2.chunks(8192) {
            w.write_all(chunk).unwrap();
        }
        w.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == data, "bytes reordered or corrupted");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(echo.join().unwrap(), data.len() + 1);
}

#[test]
fn shutdown_closes_proxied_connections() {
    let s = Server::builder().start().unwrap();
    let p = DelayProxy::start(s.addr(), Duration::from_millis(1)).unwrap();
    let (mut c, _) = Client::greeted(p.addr());
    let t = Instant::now();
    p.shutdown();
    assert!(t.elapsed() < Duration::from_secs(3));
    assert_eq!(c.rest(), b"");
}

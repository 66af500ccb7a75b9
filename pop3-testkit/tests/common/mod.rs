//! Raw TCP client helpers for the integration tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub struct Client {
    pub stream: TcpStream,
    pub reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Client { stream, reader }
    }

    /// Connects and reads the greeting.
    pub fn greeted(addr: SocketAddr) -> (Client, String) {
        let mut c = Client::connect(addr);
        let g = c.line();
        (c, g)
    }

    /// Connects, reads the greeting and logs in with USER/PASS.
    pub fn login(addr: SocketAddr, user: &str, pass: &str) -> Client {
        let (mut c, g) = Client::greeted(addr);
        assert!(g.starts_with("+OK"), "greeting {g:?}");
        assert!(c.cmd(&format!("USER {user}")).starts_with("+OK"));
        let r = c.cmd(&format!("PASS {pass}"));
        assert!(r.starts_with("+OK"), "PASS reply {r:?}");
        c
    }

    /// One raw line including its terminator ("" on EOF).
    pub fn line(&mut self) -> String {
        let mut buf = Vec::new();
        self.reader.read_until(b'\n', &mut buf).expect("read line");
        String::from_utf8_lossy(&buf).into_owned()
    }

    pub fn line_bytes(&mut self) -> Vec<u8> {
        let mut buf = Vec::new();
        self.reader.read_until(b'\n', &mut buf).expect("read line");
        buf
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends `cmd` + CRLF and returns the status line (with terminator).
    pub fn cmd(&mut self, cmd: &str) -> String {
        self.send(format!("{cmd}\r\n").as_bytes());
        self.line()
    }

    /// Reads the lines of a multi-line body up to the CRLF.CRLF terminator
    /// (raw lines, with terminators, terminator excluded).
    pub fn body(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let l = self.line();
            assert!(!l.is_empty(), "EOF inside multi-line body after {out:?}");
            if l == ".\r\n" {
                return out;
            }
            out.push(l);
        }
    }

    /// Raw bytes of a multi-line body up to and including the terminator.
    pub fn body_bytes(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let l = self.line_bytes();
            assert!(!l.is_empty(), "EOF inside multi-line body");
            out.extend_from_slice(&l);
            if l == b".\r\n" || l == b".\n" {
                return out;
            }
        }
    }

    /// Everything until the server closes.
    pub fn rest(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = self.reader.read_to_end(&mut out);
        out
    }
}

/// Undoes dot-stuffing of a raw multi-line body (terminator included).
pub fn unstuff(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let lines: Vec<&[u8]> = raw.split_inclusive(|&b| b == b'\n').collect();
    let (last, body) = lines.split_last().expect("terminator");
    assert!(*last == b".\r\n" || *last == b".\n");
    for l in body {
        if l.first() == Some(&b'.') {
            out.extend_from_slice(&l[1..]);
        } else {
            out.extend_from_slice(l);
        }
    }
    out
}

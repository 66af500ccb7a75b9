//! Against a real Dovecot on loopback (skipped when Dovecot is not
//! installed, unless POP3_REQUIRE_DOVECOT=1).

use std::io::{self, Write};

use pop3_blocking::{
    Client, ConnectOptions, Disposition, ErrorKind, LoginMethod, MessageSink, RespCode, TcpClient,
    TlsOptions, TlsPolicy,
};
use pop3_dovecot::{expected_retr, expected_size, Dovecot};

fn options(d: &Dovecot, policy: TlsPolicy) -> ConnectOptions {
    ConnectOptions::new().policy(policy).tls(
        TlsOptions::new()
            .without_default_roots()
            .add_ca_pem_file(d.ca_cert_path())
            .server_name(pop3_dovecot::SERVER_NAME),
    )
}

fn connect(d: &Dovecot, policy: TlsPolicy, allow_cleartext: bool) -> TcpClient {
    let addr = match policy {
        TlsPolicy::Implicit => d.tls_addr(),
        _ => d.plain_addr(),
    };
    let o = options(d, policy).allow_cleartext_credentials(allow_cleartext);
    Client::connect("127.0.0.1", addr.port(), &o).expect("connect")
}

/// Compares streamed bytes with the expectation without keeping them.
struct Compare<'a> {
    expected: &'a [u8],
    pos: usize,
    mismatch: Option<usize>,
}

impl Write for Compare<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let end = self.pos + buf.len();
        if self.mismatch.is_none()
            && (end > self.expected.len() || self.expected[self.pos..end] != *buf)
        {
            self.mismatch = Some(self.pos);
        }
        self.pos = end;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn assert_streams_exactly(c: &mut TcpClient, n: u32, expected: &[u8]) {
    let mut cmp = Compare {
        expected,
        pos: 0,
        mismatch: None,
    };
    let octets = c.retr_to(n, &mut cmp).expect("retr_to");
    assert_eq!(cmp.mismatch, None, "message {n} differs");
    assert_eq!(octets as usize, expected.len());
    assert_eq!(cmp.pos, expected.len());
}

#[test]
fn dovecot_auth_methods_and_tls_modes() {
    let Some(d) = pop3_dovecot::start_or_skip() else {
        return;
    };
    let (user, pass) = (d.user().to_string(), d.password().to_string());
    d.add_message(&user, b"Subject: one\r\n\r\nhello\r\n")
        .unwrap();

    // USER/PASS over cleartext, explicitly allowed.
    let mut c = connect(&d, TlsPolicy::None, true);
    assert!(!c.is_tls());
    c.user(&user).unwrap();
    c.pass(&pass).unwrap();
    assert_eq!(c.stat().unwrap().count, 1);
    c.quit().unwrap();

    // Not allowed: refused before anything is sent.
    let mut c = connect(&d, TlsPolicy::None, false);
    assert_eq!(
        c.login(&user, &pass).unwrap_err().kind(),
        ErrorKind::Insecure
    );
    assert_eq!(c.user(&user).unwrap_err().kind(), ErrorKind::Insecure);
    c.quit().unwrap();

    // APOP (the greeting carries a timestamp).
    let mut c = connect(&d, TlsPolicy::None, true);
    assert!(c.greeting().apop_timestamp.is_some());
    let e = c.apop(&user, "wrong").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server(Some(RespCode::Auth)), "{e}");
    c.apop(&user, &pass).unwrap();
    assert_eq!(c.stat().unwrap().count, 1);
    c.quit().unwrap();

    // STLS (required, the default), verified against the test CA; login
    // picks SCRAM-SHA-256.
    let mut c = connect(&d, TlsPolicy::Required, false);
    assert!(c.is_tls());
    assert!(c.get_ref().tls_connection().is_some());
    assert_eq!(
        c.login(&user, &pass).unwrap(),
        LoginMethod::Sasl("SCRAM-SHA-256".into())
    );
    assert_eq!(c.stat().unwrap().count, 1);
    c.quit().unwrap();

    // Implicit TLS.
    let mut c = connect(&d, TlsPolicy::Implicit, false);
    assert!(c.is_tls());
    c.login(&user, &pass).unwrap();
    assert_eq!(c.noop().unwrap().code, None);
    c.quit().unwrap();

    // Each SASL mechanism Dovecot offers, over TLS.
    for mech in ["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256"] {
        let mut c = connect(&d, TlsPolicy::Implicit, false);
        let m = pop3_blocking_mechanism(mech, &user, &pass);
        c.authenticate(m).unwrap_or_else(|e| panic!("{mech}: {e}"));
        c.quit().unwrap();
    }

    // Wrong password: -ERR [AUTH].
    let mut c = connect(&d, TlsPolicy::Implicit, false);
    let e = c.login(&user, "wrong").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server(Some(RespCode::Auth)), "{e}");

    // A CA we do not trust: TLS error, nothing sent.
    let bad = ConnectOptions::new().policy(TlsPolicy::Implicit);
    let e = Client::connect("127.0.0.1", d.tls_addr().port(), &bad).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
    let bad = ConnectOptions::new().policy(TlsPolicy::Required);
    let e = Client::connect("127.0.0.1", d.plain_addr().port(), &bad).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
    // The right CA but the wrong name.
    let wrong_name = options(&d, TlsPolicy::Implicit);
    let wrong_name = wrong_name
        .clone()
        .tls(wrong_name.tls.clone().server_name("mail.example.com"));
    let e = Client::connect("127.0.0.1", d.tls_addr().port(), &wrong_name).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
}

fn pop3_blocking_mechanism(
    name: &str,
    user: &str,
    pass: &str,
) -> Box<dyn pop3_blocking::pop3_proto::sasl::Mechanism> {
    use pop3_blocking::pop3_proto::sasl::{CramMd5, Login, Plain, Scram, ScramHash};
    match name {
        "PLAIN" => Box::new(Plain::new(user, pass)),
        "LOGIN" => Box::new(Login::new(user, pass)),
        "CRAM-MD5" => Box::new(CramMd5::new(user, pass)),
        "SCRAM-SHA-1" => Box::new(Scram::new(ScramHash::Sha1, user, pass, &[7; 24]).unwrap()),
        _ => Box::new(Scram::new(ScramHash::Sha256, user, pass, &[9; 24]).unwrap()),
    }
}

#[test]
fn dovecot_every_command_and_dele_commits() {
    let Some(d) = pop3_dovecot::start_or_skip() else {
        return;
    };
    let user = d.user().to_string();
    let stored: Vec<Vec<u8>> = (1..=3)
        .map(|i| format!("Subject: m{i}\r\nX-N: {i}\r\n\r\nbody {i}\r\nline 2\r\n").into_bytes())
        .collect();
    let uids: Vec<String> = stored
        .iter()
        .map(|m| d.add_message(&user, m).unwrap())
        .collect();
    let total: usize = stored.iter().map(|m| expected_size(m)).sum();

    let mut c = connect(&d, TlsPolicy::Required, false);
    c.login(&user, d.password()).unwrap();
    let caps = c.capabilities().unwrap().clone();
    assert!(caps.pipelining && caps.top && caps.uidl);
    let stat = c.stat().unwrap();
    assert_eq!((stat.count, stat.octets as usize), (3, total));
    let list = c.list().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[1].octets as usize, expected_size(&stored[1]));
    assert_eq!(c.list_one(3).unwrap().number, 3);
    let uidl = c.uidl().unwrap();
    let got: Vec<String> = uidl.iter().map(|u| u.uid.to_string()).collect();
    assert_eq!(got, uids);
    assert_eq!(c.uidl_one(2).unwrap().uid.to_string(), uids[1]);
    assert_eq!(c.retr(1).unwrap(), expected_retr(&stored[0]));
    assert_eq!(c.top(2, 0).unwrap(), b"Subject: m2\r\nX-N: 2\r\n\r\n");
    assert_eq!(
        c.top(2, 1).unwrap(),
        b"Subject: m2\r\nX-N: 2\r\n\r\nbody 2\r\n"
    );
    c.dele(1).unwrap();
    assert_eq!(c.stat().unwrap().count, 2);
    let e = c.retr(1).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Server(_)), "{e}");
    c.rset().unwrap();
    assert_eq!(c.stat().unwrap().count, 3);
    c.noop().unwrap();
    let e = c.retr(4).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Server(_)), "{e}");
    c.dele(2).unwrap();
    c.quit().unwrap();
    assert_eq!(c.noop().unwrap_err().kind(), ErrorKind::Closed);

    // DELE + QUIT really removed message 2 from the Maildir.
    assert_eq!(d.message_count(&user).unwrap(), 2);
    assert!(!d.message_uidls(&user).unwrap().contains(&uids[1]));

    // Dropping the connection without QUIT commits nothing.
    let mut c = connect(&d, TlsPolicy::Implicit, false);
    c.login(&user, d.password()).unwrap();
    c.dele(1).unwrap();
    drop(c);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(d.message_count(&user).unwrap(), 2);

    // Pipelined fetch-and-delete of everything.
    let mut c = connect(&d, TlsPolicy::Implicit, false);
    c.login(&user, d.password()).unwrap();
    let mut got = Vec::new();
    let report = c
        .retr_all(&mut pop3_blocking::CollectSink::new(|n, m| {
            got.push((n, m));
            Ok(Disposition::Delete)
        }))
        .unwrap();
    assert_eq!(report.deleted, vec![1, 2]);
    assert_eq!(got[0].1, expected_retr(&stored[0]));
    assert_eq!(got[1].1, expected_retr(&stored[2]));
    c.quit().unwrap();
    assert_eq!(d.message_count(&user).unwrap(), 0);
}

struct CompareSink<'a> {
    expected: &'a [Vec<u8>],
    cmp: Option<Compare<'a>>,
    seen: u32,
}

impl MessageSink for CompareSink<'_> {
    fn begin(&mut self, n: u32) -> io::Result<()> {
        self.cmp = Some(Compare {
            expected: &self.expected[n as usize - 1],
            pos: 0,
            mismatch: None,
        });
        Ok(())
    }
    fn data(&mut self, _: u32, chunk: &[u8]) -> io::Result<()> {
        self.cmp.as_mut().unwrap().write_all(chunk)
    }
    fn end(&mut self, n: u32, octets: u64) -> io::Result<Disposition> {
        let cmp = self.cmp.take().unwrap();
        assert_eq!(cmp.mismatch, None, "message {n} differs");
        assert_eq!(cmp.pos, cmp.expected.len(), "message {n} length");
        assert_eq!(octets as usize, cmp.pos);
        self.seen += 1;
        Ok(Disposition::Keep)
    }
}

#[test]
fn dovecot_byte_exact_messages_including_50mb() {
    let Some(d) = pop3_dovecot::start_or_skip() else {
        return;
    };
    let user = d.user().to_string();
    let mut stored: Vec<Vec<u8>> = Vec::new();
    // Lines starting with '.', a lone '.', '..'.
    stored.push(b"Subject: dots\r\n\r\n.leading\r\n.\r\n..\r\n...\r\n. x\r\nend\r\n".to_vec());
    // A 100 000-byte line.
    let mut long = b"Subject: long\r\n\r\n".to_vec();
    long.extend((0..100_000).map(|i| b'a' + (i % 26) as u8));
    long.extend_from_slice(b"\r\n");
    stored.push(long);
    // 8-bit bytes, NUL, bare LF line endings, no final newline.
    stored
        .push(b"Subject: 8bit\n\ncaf\xe9 \xff\xfe\x00 \xe2\x9c\x93\n.dot after LF\nlast".to_vec());
    // 50 MB with a dot line every 10 lines.
    let mut big = Vec::with_capacity(50 << 20);
    big.extend_from_slice(b"Subject: big\r\n\r\n");
    let mut i = 0u64;
    while big.len() < 50 << 20 {
        if i % 10 == 0 {
            big.push(b'.');
        }
        big.extend_from_slice(
            format!("{i:08} the quick brown fox jumps over the lazy dog\r\n").as_bytes(),
        );
        i += 1;
    }
    stored.push(big);
    for m in &stored {
        d.add_message(&user, m).unwrap();
    }
    let expected: Vec<Vec<u8>> = stored.iter().map(|m| expected_retr(m)).collect();
    drop(stored);

    let mut c = connect(&d, TlsPolicy::Implicit, false);
    c.login(&user, d.password()).unwrap();
    for (i, e) in expected.iter().enumerate() {
        assert_streams_exactly(&mut c, i as u32 + 1, e);
    }
    // The same, pipelined.
    let mut sink = CompareSink {
        expected: &expected,
        cmp: None,
        seen: 0,
    };
    c.retr_each(1..=expected.len() as u32, &mut sink).unwrap();
    assert_eq!(sink.seen, expected.len() as u32);
    // The core's buffer stayed small while 50 MB went through.
    assert!(
        c.core().buffer_capacity() < 1 << 20,
        "core buffer grew to {}",
        c.core().buffer_capacity()
    );
    c.quit().unwrap();
}

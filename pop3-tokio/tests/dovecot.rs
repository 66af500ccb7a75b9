//! Against a real Dovecot on loopback: plain, STLS and implicit TLS, every
//! login method, byte-exact RETR (streamed, chunked and pipelined).
//! Skipped when Dovecot is not installed, unless POP3_REQUIRE_DOVECOT=1.

use std::io;

use pop3_dovecot::{expected_retr, expected_size, Dovecot};
use pop3_tokio::pop3_proto::sasl::{CramMd5, Login, Mechanism, Plain, Scram, ScramHash};
use pop3_tokio::{
    Client, CollectSink, ConnectOptions, Disposition, ErrorKind, LoginMethod, MessageSink,
    RespCode, TcpClient, TlsOptions, TlsPolicy,
};

fn options(d: &Dovecot, policy: TlsPolicy, allow_cleartext: bool) -> ConnectOptions {
    ConnectOptions::new()
        .policy(policy)
        .allow_cleartext_credentials(allow_cleartext)
        .tls(
            TlsOptions::new()
                .without_default_roots()
                .add_ca_pem_file(d.ca_cert_path())
                .server_name(pop3_dovecot::SERVER_NAME),
        )
}

async fn connect(d: &Dovecot, policy: TlsPolicy, allow_cleartext: bool) -> TcpClient {
    let port = match policy {
        TlsPolicy::Implicit => d.tls_addr().port(),
        _ => d.plain_addr().port(),
    };
    Client::connect("127.0.0.1", port, &options(d, policy, allow_cleartext))
        .await
        .expect("connect")
}

fn mechanism(name: &str, user: &str, pass: &str) -> Box<dyn Mechanism> {
    match name {
        "PLAIN" => Box::new(Plain::new(user, pass)),
        "LOGIN" => Box::new(Login::new(user, pass)),
        "CRAM-MD5" => Box::new(CramMd5::new(user, pass)),
        "SCRAM-SHA-1" => Box::new(Scram::new(ScramHash::Sha1, user, pass, &[7; 24]).unwrap()),
        _ => Box::new(Scram::new(ScramHash::Sha256, user, pass, &[9; 24]).unwrap()),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn dovecot_plain_stls_implicit_and_login_methods() {
    let Some(d) = pop3_dovecot::start_or_skip() else {
        return;
    };
    let (user, pass) = (d.user().to_string(), d.password().to_string());
    d.add_message(&user, b"Subject: one\r\n\r\nhello\r\n")
        .unwrap();

    // Plain TCP: USER/PASS only when explicitly allowed.
    let mut c = connect(&d, TlsPolicy::None, false).await;
    assert!(!c.is_tls());
    assert_eq!(
        c.login(&user, &pass).await.unwrap_err().kind(),
        ErrorKind::Insecure
    );
    assert_eq!(c.pass(&pass).await.unwrap_err().kind(), ErrorKind::Insecure);
    c.set_allow_cleartext_credentials(true);
    c.user(&user).await.unwrap();
    c.pass(&pass).await.unwrap();
    assert_eq!(c.stat().await.unwrap().count, 1);
    c.quit().await.unwrap();

    // APOP in cleartext (allowed), with the greeting's timestamp.
    let mut c = connect(&d, TlsPolicy::None, true).await;
    assert!(c.greeting().apop_timestamp.is_some());
    let e = c.apop(&user, "wrong").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server(Some(RespCode::Auth)), "{e}");
    c.apop(&user, &pass).await.unwrap();
    c.quit().await.unwrap();

    // STLS (the default policy): upgraded in place; login picks SCRAM.
    let mut c = connect(&d, TlsPolicy::Required, false).await;
    assert!(c.is_tls());
    assert!(c.get_ref().tls_connection().is_some());
    assert!(c.capabilities().is_some(), "CAPA again after STLS");
    assert_eq!(
        c.login(&user, &pass).await.unwrap(),
        LoginMethod::Sasl("SCRAM-SHA-256".into())
    );
    assert_eq!(c.stat().await.unwrap().count, 1);
    c.quit().await.unwrap();

    // STLS by hand on a plain connection, with explicit TLS options.
    let mut c = connect(&d, TlsPolicy::None, false).await;
    let tls = options(&d, TlsPolicy::Required, false).tls;
    c.stls_with_options(&tls, "127.0.0.1").await.unwrap();
    assert!(c.is_tls());
    assert_eq!(c.stls().await.unwrap_err().kind(), ErrorKind::Usage);
    c.login(&user, &pass).await.unwrap();
    c.quit().await.unwrap();

    // Implicit TLS, and every SASL mechanism Dovecot offers.
    for mech in ["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256"] {
        let mut c = connect(&d, TlsPolicy::Implicit, false).await;
        assert!(c.is_tls());
        c.authenticate(mechanism(mech, &user, &pass))
            .await
            .unwrap_or_else(|e| panic!("{mech}: {e}"));
        assert_eq!(c.noop().await.unwrap().code, None);
        c.quit().await.unwrap();
    }

    // Wrong password: -ERR [AUTH].
    let mut c = connect(&d, TlsPolicy::Implicit, false).await;
    let e = c.login(&user, "wrong").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server(Some(RespCode::Auth)), "{e}");

    // Untrusted CA and wrong name: TLS errors.
    let port = d.tls_addr().port();
    let bad = ConnectOptions::new().policy(TlsPolicy::Implicit);
    let e = Client::connect("127.0.0.1", port, &bad).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
    let bad = ConnectOptions::new();
    let e = Client::connect("127.0.0.1", d.plain_addr().port(), &bad)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
    let o = options(&d, TlsPolicy::Implicit, false);
    let o = o.clone().tls(o.tls.clone().server_name("mail.example.com"));
    let e = Client::connect("127.0.0.1", port, &o).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
}

#[tokio::test(flavor = "current_thread")]
async fn dovecot_every_command_and_dele_commits() {
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

    let mut c = connect(&d, TlsPolicy::Implicit, false).await;
    c.login(&user, d.password()).await.unwrap();
    let stat = c.stat().await.unwrap();
    assert_eq!((stat.count, stat.octets as usize), (3, total));
    let list = c.list().await.unwrap();
    assert_eq!(list[1].octets as usize, expected_size(&stored[1]));
    assert_eq!(c.list_one(3).await.unwrap().number, 3);
    let got: Vec<String> = c
        .uidl()
        .await
        .unwrap()
        .iter()
        .map(|u| u.uid.to_string())
        .collect();
    assert_eq!(got, uids);
    assert_eq!(c.uidl_one(2).await.unwrap().uid.to_string(), uids[1]);
    assert_eq!(c.retr(1).await.unwrap(), expected_retr(&stored[0]));
    assert_eq!(c.top(2, 0).await.unwrap(), b"Subject: m2\r\nX-N: 2\r\n\r\n");
    c.dele(1).await.unwrap();
    assert!(matches!(
        c.retr(1).await.unwrap_err().kind(),
        ErrorKind::Server(_)
    ));
    c.rset().await.unwrap();
    assert_eq!(c.stat().await.unwrap().count, 3);
    c.dele(2).await.unwrap();
    c.quit().await.unwrap();
    assert_eq!(c.noop().await.unwrap_err().kind(), ErrorKind::Closed);
    assert_eq!(d.message_count(&user).unwrap(), 2);
    assert!(!d.message_uidls(&user).unwrap().contains(&uids[1]));

    // Pipelined fetch-and-delete of everything.
    let mut c = connect(&d, TlsPolicy::Required, false).await;
    c.login(&user, d.password()).await.unwrap();
    let mut got = Vec::new();
    let report = c
        .retr_all(&mut CollectSink::new(|n, m| {
            got.push((n, m));
            Ok(Disposition::Delete)
        }))
        .await
        .unwrap();
    assert_eq!(report.deleted, vec![1, 2]);
    assert_eq!(got[0].1, expected_retr(&stored[0]));
    assert_eq!(got[1].1, expected_retr(&stored[2]));
    c.quit().await.unwrap();
    assert_eq!(d.message_count(&user).unwrap(), 0);
}

/// Checks streamed bytes against the expectation without keeping them.
struct Compare<'a> {
    expected: &'a [Vec<u8>],
    n: usize,
    pos: usize,
    seen: usize,
}

impl Compare<'_> {
    fn feed(&mut self, chunk: &[u8]) {
        let want = &self.expected[self.n - 1];
        let end = self.pos + chunk.len();
        assert!(end <= want.len(), "message {} too long", self.n);
        assert!(
            want[self.pos..end] == *chunk,
            "message {} differs at {}",
            self.n,
            self.pos
        );
        self.pos = end;
    }
    fn finish(&mut self) {
        assert_eq!(
            self.pos,
            self.expected[self.n - 1].len(),
            "message {} length",
            self.n
        );
        self.seen += 1;
    }
}

impl MessageSink for Compare<'_> {
    fn begin(&mut self, n: u32) -> io::Result<()> {
        self.n = n as usize;
        self.pos = 0;
        Ok(())
    }
    fn data(&mut self, _: u32, chunk: &[u8]) -> io::Result<()> {
        self.feed(chunk);
        Ok(())
    }
    fn end(&mut self, _: u32, octets: u64) -> io::Result<Disposition> {
        assert_eq!(octets as usize, self.pos);
        self.finish();
        Ok(Disposition::Keep)
    }
}

#[tokio::test(flavor = "current_thread")]
async fn dovecot_byte_exact_retr() {
    let Some(d) = pop3_dovecot::start_or_skip() else {
        return;
    };
    let user = d.user().to_string();
    let mut stored: Vec<Vec<u8>> = vec![
        b"Subject: dots\r\n\r\n.leading\r\n.\r\n..\r\n...\r\n. x\r\nend\r\n".to_vec(),
        b"Subject: 8bit\n\ncaf\xe9 \xff\xfe\x00 \xe2\x9c\x93\n.dot after LF\nlast".to_vec(),
    ];
    let mut long = b"Subject: long\r\n\r\n".to_vec();
    long.extend((0..100_000).map(|i| b'a' + (i % 26) as u8));
    long.extend_from_slice(b"\r\n");
    stored.push(long);
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    let mut i = 0u64;
    while big.len() < 20 << 20 {
        if i % 10 == 0 {
            big.push(b'.');
        }
        big.extend_from_slice(format!("{i:08} the quick brown fox\r\n").as_bytes());
        i += 1;
    }
    stored.push(big);
    for m in &stored {
        d.add_message(&user, m).unwrap();
    }
    let expected: Vec<Vec<u8>> = stored.iter().map(|m| expected_retr(m)).collect();
    drop(stored);

    for policy in [TlsPolicy::None, TlsPolicy::Implicit] {
        let mut c = connect(&d, policy, true).await;
        c.login(&user, d.password()).await.unwrap();
        let mut cmp = Compare {
            expected: &expected,
            n: 0,
            pos: 0,
            seen: 0,
        };
        // Chunk by chunk, through the lending API.
        for n in 1..=expected.len() {
            cmp.begin(n as u32).unwrap();
            let mut body = c.retr_body(n as u32).await.unwrap();
            while let Some(chunk) = body.next_chunk().await {
                cmp.feed(chunk.unwrap());
            }
            assert_eq!(body.octets(), Some(cmp.pos as u64));
            cmp.finish();
        }
        // Streamed into a writer.
        let got = c.retr(4).await.unwrap();
        assert!(got == expected[3], "retr 4 differs");
        // Pipelined.
        c.retr_each(1..=expected.len() as u32, &mut cmp)
            .await
            .unwrap();
        assert_eq!(cmp.seen, 2 * expected.len());
        assert!(
            c.core().buffer_capacity() < 1 << 20,
            "core buffer grew to {}",
            c.core().buffer_capacity()
        );
        c.quit().await.unwrap();
    }
}

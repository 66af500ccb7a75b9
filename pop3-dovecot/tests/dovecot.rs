//! Integration tests of the harness against a real Dovecot. They skip (printing
//! `SKIPPED: dovecot not installed`) when Dovecot is missing, unless POP3_REQUIRE_DOVECOT=1.

mod common;

use std::net::TcpStream;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use common::*;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use pop3_dovecot::{expected_retr, expected_size, Dovecot, Options, GREETING_TEXT};

fn start() -> Option<Dovecot> {
    pop3_dovecot::start_or_skip()
}

/// Stored messages covering the line-ending rule.
const MESSAGES: &[&[u8]] = &[
    b"Subject: crlf\r\n\r\nhello\r\n",
    b"Subject: lf\n\nline1\nline2\n.dot\n..two dots\n.\nno-final-newline",
    b"Subject: mixed\r\n\r\na\rb\nc\r\n",
];

#[test]
fn user_pass_stat_list_uidl_retr_dele() {
    let Some(d) = start() else { return };
    let user = d.user().to_string();
    let uidls: Vec<String> = MESSAGES
        .iter()
        .map(|m| d.add_message(&user, m).unwrap())
        .collect();
    assert_eq!(d.message_count(&user).unwrap(), 3);
    assert_eq!(d.message_uidls(&user).unwrap(), uidls);

    let (mut c, greeting) = connect_plain(d.plain_addr());
    assert!(
        greeting.starts_with(&format!("+OK {GREETING_TEXT} <")),
        "{greeting:?}"
    );
    c.login(&user, d.password());

    let total: usize = MESSAGES.iter().map(|m| expected_size(m)).sum();
    assert_eq!(c.ok("STAT"), format!("+OK 3 {total}"));

    let (_, list) = c.multi("LIST");
    let want_list: String = MESSAGES
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{} {}\r\n", i + 1, expected_size(m)))
        .collect();
    assert_eq!(String::from_utf8(list).unwrap(), want_list);

    let (_, uidl) = c.multi("UIDL");
    let want_uidl: String = uidls
        .iter()
        .enumerate()
        .map(|(i, u)| format!("{} {u}\r\n", i + 1))
        .collect();
    assert_eq!(String::from_utf8(uidl).unwrap(), want_uidl);

    for (i, m) in MESSAGES.iter().enumerate() {
        let (status, body) = c.multi(&format!("RETR {}", i + 1));
        assert_eq!(status, format!("+OK {} octets", expected_size(m)));
        assert_eq!(
            body,
            expected_retr(m),
            "message {}: got {:?}",
            i + 1,
            String::from_utf8_lossy(&body)
        );
    }
    // Spot-check the documented rule literally for the LF message.
    assert_eq!(
        expected_retr(MESSAGES[1]),
        b"Subject: lf\r\n\r\nline1\r\nline2\r\n.dot\r\n..two dots\r\n.\r\nno-final-newline\r\n"
    );

    c.ok("DELE 2");
    // Not removed before QUIT.
    assert_eq!(d.message_count(&user).unwrap(), 3);
    assert_eq!(c.cmd("QUIT"), "+OK Logging out, messages deleted.");
    assert_eq!(d.message_count(&user).unwrap(), 2);
    assert_eq!(
        d.message_uidls(&user).unwrap(),
        vec![uidls[0].clone(), uidls[2].clone()]
    );

    // A new session sees the remaining two, renumbered.
    let (mut c, _) = connect_plain(d.plain_addr());
    c.login(&user, d.password());
    assert_eq!(
        c.ok("STAT"),
        format!(
            "+OK 2 {}",
            expected_size(MESSAGES[0]) + expected_size(MESSAGES[2])
        )
    );
    let (_, uidl) = c.multi("UIDL");
    assert_eq!(
        String::from_utf8(uidl).unwrap(),
        format!("1 {}\r\n2 {}\r\n", uidls[0], uidls[2])
    );
    // RSET/QUIT without DELE keeps everything.
    c.ok("QUIT");
    assert_eq!(d.message_count(&user).unwrap(), 2);
}

#[test]
fn line_ending_edge_cases_match_documented_rule() {
    let Some(d) = start() else { return };
    let user = d.user().to_string();
    let cases: &[&[u8]] = &[
        b"",
        b"\n",
        b"\r\n",
        b"x",
        b"ends with cr\r",
        b"double cr\r\r\nend\n",
        b"\n\nleading blank lines\n",
        b"x\n.\n",
        b"x\r\n..\r\n.\r\n.end",
        b"Subject: bin\r\n\r\n\x01\x7f\x80\xff\tbytes\r\n",
        b"lf only no final\nsecond",
        b"nul\0byte\r\n",
        b"\xef\xbb\xbfSubject: utf-8 \xc3\xa9\n\n\xe2\x82\xac\n",
    ];
    for m in cases {
        d.add_message(&user, m).unwrap();
    }
    // Dovecot 2.3 does not dot-stuff a message's first line, so the harness refuses those.
    assert!(matches!(
        d.add_message(&user, b".starts with a dot\r\n"),
        Err(pop3_dovecot::Error::UnsupportedMessage(_))
    ));
    assert_eq!(d.message_count(&user).unwrap(), cases.len());
    let (mut c, _) = connect_plain(d.plain_addr());
    c.login(&user, d.password());
    for (i, m) in cases.iter().enumerate() {
        let (status, body) = c.multi(&format!("RETR {}", i + 1));
        assert_eq!(
            status,
            format!("+OK {} octets", expected_size(m)),
            "case {m:?}"
        );
        assert_eq!(
            body,
            expected_retr(m),
            "case {m:?}: got {:?}",
            String::from_utf8_lossy(&body)
        );
    }
    c.ok("QUIT");
}

#[test]
fn implicit_tls_verifies_against_test_ca() {
    let Some(d) = start() else { return };
    d.add_message(d.user(), b"Subject: tls\r\n\r\nover tls\r\n")
        .unwrap();
    // The PEM accessor and the file agree with the DER.
    assert!(d.ca_cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(
        std::fs::read_to_string(d.ca_cert_path()).unwrap(),
        d.ca_cert_pem()
    );
    let pem_body: String = d
        .ca_cert_pem()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert_eq!(B64.decode(pem_body).unwrap(), d.ca_cert_der());

    for server_name in ["localhost", "127.0.0.1"] {
        let tls = tls_handshake(
            connect(d.tls_addr()),
            tls_config(d.ca_cert_der()),
            server_name,
        )
        .unwrap_or_else(|e| panic!("handshake as {server_name}: {e}"));
        let mut c = Conn::new(tls);
        let greeting = c.line_str();
        assert!(greeting.starts_with(&format!("+OK {GREETING_TEXT}")));
        let (_, capa) = c.multi("CAPA");
        let capa = String::from_utf8(capa).unwrap();
        assert!(!capa.contains("STLS"), "STLS offered inside TLS: {capa}");
        c.login(d.user(), d.password());
        let (_, body) = c.multi("RETR 1");
        assert_eq!(body, b"Subject: tls\r\n\r\nover tls\r\n");
        c.ok("QUIT");
    }

    // The harness's own helper config works too.
    let tls = tls_handshake(connect(d.tls_addr()), d.rustls_client_config(), "localhost").unwrap();
    assert!(Conn::new(tls).line_str().starts_with("+OK"));

    // A CA from another instance is not trusted: verification really happens.
    let Some(other) = start() else { return };
    assert_ne!(other.ca_cert_der(), d.ca_cert_der());
    let err = tls_handshake(
        connect(d.tls_addr()),
        tls_config(other.ca_cert_der()),
        "localhost",
    )
    .map(|_| ())
    .unwrap_err();
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "unexpected error: {err}"
    );
    // Wrong name: the certificate covers only localhost and 127.0.0.1.
    let err = tls_handshake(
        connect(d.tls_addr()),
        tls_config(d.ca_cert_der()),
        "example.org",
    )
    .map(|_| ())
    .unwrap_err();
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{err}"
    );
}

#[test]
fn stls_upgrades_plain_port() {
    let Some(d) = start() else { return };
    d.add_message(d.user(), b"Subject: stls\n\nbody\n").unwrap();
    let (mut c, _) = connect_plain(d.plain_addr());
    let (_, capa) = c.multi("CAPA");
    let capa = String::from_utf8(capa).unwrap();
    assert!(capa.contains("STLS\r\n"), "{capa}");
    assert!(capa.contains("USER\r\n"), "{capa}");
    assert!(capa.contains("UIDL\r\n"), "{capa}");
    assert!(
        capa.contains("SASL PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256\r\n"),
        "{capa}"
    );
    assert_eq!(c.cmd("STLS"), "+OK Begin TLS negotiation now.");
    let tcp: TcpStream = c.into_inner();
    let tls = tls_handshake(tcp, tls_config(d.ca_cert_der()), "localhost").unwrap();
    let mut c = Conn::new(tls);
    let (_, capa) = c.multi("CAPA");
    assert!(!String::from_utf8(capa).unwrap().contains("STLS"));
    c.login(d.user(), d.password());
    assert_eq!(
        c.ok("STAT"),
        format!("+OK 1 {}", expected_size(b"Subject: stls\n\nbody\n"))
    );
    let (_, body) = c.multi("RETR 1");
    assert_eq!(body, b"Subject: stls\r\n\r\nbody\r\n");
    c.ok("QUIT");
}

fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn apop_login() {
    let Some(d) = start() else { return };
    d.add_message(d.user(), b"Subject: apop\r\n\r\nx\r\n")
        .unwrap();

    let (mut c, greeting) = connect_plain(d.plain_addr());
    let ts = apop_timestamp(&greeting).to_string();
    let digest = md5_hex(format!("{ts}{}", d.password()).as_bytes());
    assert_eq!(digest.len(), 32);
    assert_eq!(
        c.cmd(&format!("APOP {} {digest}", d.user())),
        "+OK Logged in."
    );
    assert_eq!(
        c.ok("STAT"),
        format!("+OK 1 {}", expected_size(b"Subject: apop\r\n\r\nx\r\n"))
    );
    c.ok("QUIT");

    // Wrong digest is rejected; each connection gets a fresh timestamp.
    let (mut c, greeting2) = connect_plain(d.plain_addr());
    assert_ne!(apop_timestamp(&greeting2), ts);
    let stale = md5_hex(format!("{ts}{}", d.password()).as_bytes());
    let reply = c.cmd(&format!("APOP {} {stale}", d.user()));
    assert!(reply.starts_with("-ERR"), "{reply}");
}

type HmacFn = fn(&[u8], &[u8]) -> Vec<u8>;
type HashFn = fn(&[u8]) -> Vec<u8>;

fn hmac_md5(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Md5> as Mac>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn hmac_sha1(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<sha1::Sha1> as Mac>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn pbkdf2_sha1(pw: &[u8], salt: &[u8], iter: u32) -> Vec<u8> {
    let mut out = vec![0u8; 20];
    pbkdf2::pbkdf2::<Hmac<sha1::Sha1>>(pw, salt, iter, &mut out).unwrap();
    out
}

fn pbkdf2_sha256(pw: &[u8], salt: &[u8], iter: u32) -> Vec<u8> {
    let mut out = vec![0u8; 32];
    pbkdf2::pbkdf2::<Hmac<sha2::Sha256>>(pw, salt, iter, &mut out).unwrap();
    out
}

/// Reads a `+ <base64>` continuation and decodes it.
fn continuation<S: std::io::Read + std::io::Write>(c: &mut Conn<S>) -> Vec<u8> {
    let line = c.line_str();
    let data = line
        .strip_prefix("+ ")
        .or_else(|| line.strip_prefix('+'))
        .unwrap_or_else(|| panic!("expected continuation, got {line:?}"));
    B64.decode(data.trim()).unwrap()
}

fn send_b64<S: std::io::Read + std::io::Write>(c: &mut Conn<S>, data: &[u8]) {
    c.send(format!("{}\r\n", B64.encode(data)).as_bytes());
}

fn scram(
    d: &Dovecot,
    mech: &str,
    hmac: HmacFn,
    hash: HashFn,
    pbkdf2: fn(&[u8], &[u8], u32) -> Vec<u8>,
) {
    let (mut c, _) = connect_plain(d.plain_addr());
    let cnonce = "rOprNGfwEbeRWgbNEkqO";
    let first_bare = format!("n={},r={cnonce}", d.user());
    c.send(format!("AUTH {mech}\r\n").as_bytes());
    assert!(continuation(&mut c).is_empty());
    send_b64(&mut c, format!("n,,{first_bare}").as_bytes());
    let server_first = String::from_utf8(continuation(&mut c)).unwrap();
    let mut nonce = "";
    let mut salt = Vec::new();
    let mut iter = 0u32;
    for attr in server_first.split(',') {
        match attr.split_at(2) {
            ("r=", v) => nonce = v,
            ("s=", v) => salt = B64.decode(v).unwrap(),
            ("i=", v) => iter = v.parse().unwrap(),
            _ => {}
        }
    }
    assert!(nonce.starts_with(cnonce), "{server_first}");
    assert!(iter > 0 && !salt.is_empty(), "{server_first}");
    let salted = pbkdf2(d.password().as_bytes(), &salt, iter);
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = hash(&client_key);
    let final_no_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{first_bare},{server_first},{final_no_proof}");
    let signature = hmac(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(a, b)| a ^ b)
        .collect();
    send_b64(
        &mut c,
        format!("{final_no_proof},p={}", B64.encode(proof)).as_bytes(),
    );
    let server_final = String::from_utf8(continuation(&mut c)).unwrap();
    let server_key = hmac(&salted, b"Server Key");
    let expected_v = B64.encode(hmac(&server_key, auth_message.as_bytes()));
    assert_eq!(server_final, format!("v={expected_v}"), "{mech}");
    c.send(b"\r\n");
    assert_eq!(c.line_str(), "+OK Logged in.", "{mech}");
    c.ok("QUIT");
}

#[test]
fn sasl_mechanisms() {
    let Some(d) = start() else { return };
    let (user, pw) = (d.user().to_string(), d.password().to_string());

    // PLAIN, with and without an initial response.
    let (mut c, _) = connect_plain(d.plain_addr());
    c.send(b"AUTH PLAIN\r\n");
    assert!(continuation(&mut c).is_empty());
    send_b64(&mut c, format!("\0{user}\0{pw}").as_bytes());
    assert_eq!(c.line_str(), "+OK Logged in.");
    c.ok("QUIT");
    let (mut c, _) = connect_plain(d.plain_addr());
    let ir = B64.encode(format!("\0{user}\0{pw}"));
    assert_eq!(c.cmd(&format!("AUTH PLAIN {ir}")), "+OK Logged in.");
    c.ok("QUIT");
    let (mut c, _) = connect_plain(d.plain_addr());
    let ir = B64.encode(format!("\0{user}\0wrong"));
    assert!(c.cmd(&format!("AUTH PLAIN {ir}")).starts_with("-ERR"));

    // LOGIN.
    let (mut c, _) = connect_plain(d.plain_addr());
    c.send(b"AUTH LOGIN\r\n");
    assert_eq!(continuation(&mut c), b"Username:");
    send_b64(&mut c, user.as_bytes());
    assert_eq!(continuation(&mut c), b"Password:");
    send_b64(&mut c, pw.as_bytes());
    assert_eq!(c.line_str(), "+OK Logged in.");
    c.ok("QUIT");

    // CRAM-MD5.
    let (mut c, _) = connect_plain(d.plain_addr());
    c.send(b"AUTH CRAM-MD5\r\n");
    let challenge = continuation(&mut c);
    assert!(challenge.starts_with(b"<") && challenge.ends_with(b">"));
    let hex: String = hmac_md5(pw.as_bytes(), &challenge)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    send_b64(&mut c, format!("{user} {hex}").as_bytes());
    assert_eq!(c.line_str(), "+OK Logged in.");
    c.ok("QUIT");

    scram(
        &d,
        "SCRAM-SHA-1",
        hmac_sha1,
        |b| sha1::Sha1::digest(b).to_vec(),
        pbkdf2_sha1,
    );
    scram(
        &d,
        "SCRAM-SHA-256",
        hmac_sha256,
        |b| sha2::Sha256::digest(b).to_vec(),
        pbkdf2_sha256,
    );
}

#[test]
fn users_have_separate_maildirs() {
    let Some(d) = Options::new()
        .user("carol", "carol pw!")
        .user("dave@example.org", "dave-pw")
        .start()
        .map(Some)
        .unwrap_or_else(|e| match e {
            pop3_dovecot::Error::NotInstalled if !pop3_dovecot::dovecot_required() => None,
            e => panic!("{e}"),
        })
    else {
        return;
    };
    assert_eq!(d.user(), "carol");
    assert_eq!(d.password(), "carol pw!");
    assert_eq!(d.password_of("dave@example.org"), Some("dave-pw"));
    assert_eq!(d.password_of("alice"), None);
    assert!(matches!(
        d.add_message("alice", b"x"),
        Err(pop3_dovecot::Error::UnknownUser(_))
    ));
    d.add_message("carol", b"Subject: c\r\n\r\nc\r\n").unwrap();
    d.add_message("dave@example.org", b"Subject: d1\r\n\r\nd\r\n")
        .unwrap();
    d.add_message("dave@example.org", b"Subject: d2\r\n\r\nd\r\n")
        .unwrap();

    let (mut c, _) = connect_plain(d.plain_addr());
    c.login("carol", "carol pw!");
    assert!(c.ok("STAT").starts_with("+OK 1 "));
    c.ok("QUIT");
    let (mut c, _) = connect_plain(d.plain_addr());
    c.login("dave@example.org", "dave-pw");
    assert!(c.ok("STAT").starts_with("+OK 2 "));
    c.ok("DELE 1");
    c.ok("QUIT");
    assert_eq!(d.message_count("dave@example.org").unwrap(), 1);
    assert_eq!(d.message_count("carol").unwrap(), 1);

    // Wrong password is rejected promptly (no auth penalty growth).
    for _ in 0..3 {
        let (mut c, _) = connect_plain(d.plain_addr());
        c.ok("USER carol");
        let t = std::time::Instant::now();
        assert_eq!(c.cmd("PASS nope"), "-ERR [AUTH] Authentication failed.");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
    let (mut c, _) = connect_plain(d.plain_addr());
    let t = std::time::Instant::now();
    c.login("carol", "carol pw!");
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
}

#[test]
fn two_instances_in_parallel_and_drop_cleans_up() {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(start);
        let b = s.spawn(start);
        (a.join().unwrap(), b.join().unwrap())
    });
    let (Some(a), Some(b)) = (a, b) else { return };
    eprintln!(
        "start-up took {:?} and {:?} (in parallel)",
        a.startup_time(),
        b.startup_time()
    );
    assert!(a.startup_time() < Duration::from_secs(10));
    let mut ports = vec![
        a.plain_addr().port(),
        a.tls_addr().port(),
        b.plain_addr().port(),
        b.tls_addr().port(),
    ];
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 4);
    assert_ne!(a.dir(), b.dir());
    assert_ne!(a.pid(), b.pid());

    a.add_message(a.user(), b"Subject: a\r\n\r\na\r\n").unwrap();
    for (d, n) in [(&a, 1), (&b, 0)] {
        let (mut c, _) = connect_plain(d.plain_addr());
        c.login(d.user(), d.password());
        assert!(c.ok("STAT").starts_with(&format!("+OK {n} ")));
        c.ok("QUIT");
    }

    // Drop a: its process (group) dies, its ports close and its directory is removed,
    // while b keeps working.
    let (pid, dir, addr) = (a.pid(), a.dir().to_path_buf(), a.plain_addr());
    drop(a);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(!dir.exists());
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
    let (mut c, _) = connect_plain(b.plain_addr());
    c.login(b.user(), b.password());
    c.ok("QUIT");
    // The log is readable and mentions the logins.
    assert!(b.log().contains("Login: user=<alice>"), "{}", b.log());
}

#[test]
fn start_or_skip_policy_for_missing_binary() {
    let result = std::panic::catch_unwind(|| {
        pop3_dovecot::start_or_skip_with(Options::new().binary("/nonexistent/dovecot"))
    });
    if pop3_dovecot::dovecot_required() {
        assert!(result.is_err(), "must panic when POP3_REQUIRE_DOVECOT=1");
    } else {
        assert!(result.unwrap().is_none());
    }
}

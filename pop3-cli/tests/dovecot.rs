//! The same fetch against a real Dovecot on loopback, over STLS and
//! implicit TLS, with the harness's CA and the password in POP3_PASSWORD.

mod common;

use std::process::Command;

use common::{multiset, pop3, read_dest, run};

fn messages() -> Vec<Vec<u8>> {
    vec![
        b"From: Dave <dave@example.org>\r\nSubject: first\r\n\r\nhello\r\n.dot line\r\n".to_vec(),
        b"From: =?UTF-8?Q?Z=C3=B6e?= <zoe@example.org>\nSubject: =?UTF-8?B?w7xtbGF1dA==?=\n\nLF only\nFrom a line\n"
            .to_vec(),
        b"Subject: no final newline\r\n\r\nlast".to_vec(),
    ]
}

fn base(d: &pop3_dovecot::Dovecot, addr: std::net::SocketAddr) -> Command {
    let mut c = pop3();
    c.args(["--host", "127.0.0.1", "--port"])
        .arg(addr.port().to_string())
        .args(["--user", d.user(), "--timeout", "20", "--ca-file"])
        .arg(d.ca_cert_path())
        .env("POP3_PASSWORD", d.password());
    c
}

#[test]
fn fetch_from_dovecot_over_stls_and_implicit_tls() {
    let Some(d) = pop3_dovecot::start_or_skip() else {
        return;
    };
    let stored = messages();
    for m in &stored {
        d.add_message(d.user(), m).unwrap();
    }
    let expected = multiset(stored.iter().map(|m| pop3_dovecot::expected_retr(m)));
    let dir = tempfile::tempdir().unwrap();

    // STLS on the plain port, into a Maildir, keeping the messages.
    let maildir = dir.path().join("maildir");
    let r = run(base(&d, d.plain_addr())
        .args(["--tls", "starttls", "fetch", "--maildir"])
        .arg(&maildir));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(multiset(read_dest("maildir", &maildir)), expected);
    assert_eq!(d.message_count(d.user()).unwrap(), stored.len());

    // headers decodes Dovecot's messages too.
    let r = run(base(&d, d.plain_addr()).arg("headers"));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.out().contains("ümlaut"), "{r:?}");
    assert!(r.out().contains("Zöe"), "{r:?}");

    // Implicit TLS via a pop3s:// URL, SCRAM, into an mbox, deleting.
    let mbox = dir.path().join("mail.mbox");
    let url = format!(
        "pop3s://{};AUTH=SCRAM-SHA-256@127.0.0.1:{}",
        d.user(),
        d.tls_addr().port()
    );
    let r = run(pop3()
        .arg(&url)
        .arg("--ca-file")
        .arg(d.ca_cert_path())
        .env("POP3_PASSWORD", d.password())
        .args(["fetch", "--delete", "--mbox"])
        .arg(&mbox));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(multiset(read_dest("mbox", &mbox)), expected);
    assert_eq!(
        d.message_count(d.user()).unwrap(),
        0,
        "deleted on the server"
    );

    // A wrong password is an authentication failure.
    let r = run(base(&d, d.tls_addr())
        .args(["--tls", "implicit"])
        .env("POP3_PASSWORD", "wrong")
        .arg("stat"));
    assert_eq!(r.code, 5, "{r:?}");
}

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

/// Two accounts of a configuration file (alice and bob on the same real
/// Dovecot; bob's account inherits alice's and changes only the user, the
/// password variable and the Maildir) fetched concurrently with
/// `--all-accounts`, deleting (from `[defaults]`); `--keep` overrides it.
#[test]
fn two_accounts_from_a_config_file_fetched_concurrently() {
    let Some(d) = pop3_dovecot::start_or_skip_with(
        pop3_dovecot::Options::new()
            .user("alice", "alice-pass-1")
            .user("bob", "bob-pass-2"),
    ) else {
        return;
    };
    let stored = messages();
    for m in &stored {
        d.add_message("alice", m).unwrap();
    }
    d.add_message("bob", &stored[0]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (ma, mb) = (dir.path().join("alice"), dir.path().join("bob"));
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[defaults]\ndelete = true\ntimeout = 20\n\n\
             [accounts.alice]\nurl = \"pop3s://alice@127.0.0.1:{}\"\nca_file = \"{}\"\n\
             password_env = \"ALICE_PW\"\nmaildir = \"{}\"\n\n\
             [accounts.bob]\ninherit = \"alice\"\nurl = \"pop3s://bob@127.0.0.1:{}\"\n\
             password_env = \"BOB_PW\"\nmaildir = \"{}\"\n",
            d.tls_addr().port(),
            d.ca_cert_path().display(),
            ma.display(),
            d.tls_addr().port(),
            mb.display()
        ),
    )
    .unwrap();
    let fetch = |extra: &[&str]| {
        run(pop3()
            .env("ALICE_PW", "alice-pass-1")
            .env("BOB_PW", "bob-pass-2")
            .arg("--config")
            .arg(&cfg)
            .args(["--json", "fetch", "--all-accounts", "--jobs", "2"])
            .args(extra))
    };
    // --keep first: everything stays on the server.
    let r = fetch(&["--keep"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(d.message_count("alice").unwrap(), 3);
    assert_eq!(d.message_count("bob").unwrap(), 1);
    let r = fetch(&[]);
    assert_eq!(r.code, 0, "{r:?}");
    let summaries: Vec<serde_json::Value> = r
        .out()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "summary")
        .collect();
    assert_eq!(summaries.len(), 2, "{r:?}");
    for s in &summaries {
        assert_eq!(s["ok"], true);
        assert_eq!(s["fetched"], 0, "all known from the --keep run: {s}");
    }
    assert_eq!(d.message_count("alice").unwrap(), 0, "deleted (defaults)");
    assert_eq!(d.message_count("bob").unwrap(), 0);
    let retr = |m: &[u8]| pop3_dovecot::expected_retr(m);
    assert!(multiset(read_dest("maildir", &ma)) == multiset(stored.iter().map(|m| retr(m))));
    assert!(multiset(read_dest("maildir", &mb)) == multiset([retr(&stored[0])]));
}

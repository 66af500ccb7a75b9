//! Every command, run as the real binary against pop3-testkit servers.

mod common;

use common::*;
use pop3_testkit::Mailbox;

#[test]
fn demo_headers_shows_the_sample_mailbox() {
    let r = run(pop3().arg("headers"));
    assert_eq!(r.code, 0, "{r:?}");
    let out = r.out();
    assert!(out.contains("Lunch on Thursday?"), "{r:?}");
    assert!(
        out.contains("Grüße aus München ✈"),
        "RFC 2047 decoded: {r:?}"
    );
    assert!(out.contains("Jürgen Müller"), "{r:?}");
    assert!(out.contains("2025-01-06 10:13"), "{r:?}");
    assert_eq!(out.lines().count(), 1 + 6, "{r:?}");
    assert!(r.stderr.contains("DEMO"), "says it is the demo: {r:?}");
}

#[test]
fn demo_json_headers() {
    let r = run(pop3().args(["--demo", "--json", "headers"]));
    assert_eq!(r.code, 0, "{r:?}");
    let rows: Vec<serde_json::Value> = r
        .out()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[2]["subject"], "Grüße aus München ✈");
    assert_eq!(rows[2]["from_address"], "juergen@example.de");
    assert_eq!(rows[0]["number"], 1);
    assert_eq!(rows[0]["octets"], Mailbox::sample().messages()[0].size());
}

#[test]
fn stat_list_uidl() {
    let mb = rich_mailbox();
    let tk = start(stls(mb.clone()));

    let r = run(tk.cmd().arg("stat"));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.out().starts_with(&format!(
            "{} messages, {} octets",
            mb.len(),
            mb.total_size()
        )),
        "{r:?}"
    );
    let r = run(tk.cmd().args(["--json", "stat"]));
    let v: serde_json::Value = serde_json::from_str(r.out().trim()).unwrap();
    assert_eq!(v["messages"], mb.len());
    assert_eq!(v["octets"], mb.total_size());

    let r = run(tk.cmd().arg("list"));
    assert_eq!(r.code, 0, "{r:?}");
    let lines: Vec<String> = r.out().lines().map(str::to_string).collect();
    assert_eq!(lines.len(), mb.len() + 1);
    for (i, m) in mb.messages().iter().enumerate() {
        let cols: Vec<&str> = lines[i + 1].split_whitespace().collect();
        assert_eq!(cols, [(i + 1).to_string(), m.size().to_string()]);
    }

    let r = run(tk.cmd().args(["--json", "uidl"]));
    assert_eq!(r.code, 0, "{r:?}");
    let uids: Vec<String> = r
        .out()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["uid"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(uids, mb.uids());
    let r = run(tk.cmd().arg("uidl"));
    assert!(r.out().contains("tricky-1"), "{r:?}");
}

#[test]
fn capa_needs_no_password_and_shows_tls() {
    let tk = start(stls(Mailbox::new()));
    let mut cmd = tk.cmd();
    cmd.env_remove("POP3_PASSWORD");
    let r = run(cmd.arg("capa"));
    assert_eq!(r.code, 0, "{r:?}");
    let out = r.out();
    assert!(out.contains("TLS:      yes"), "{r:?}");
    assert!(out.contains("PIPELINING"), "{r:?}");
    assert!(out.contains("SASL PLAIN"), "{r:?}");
    assert!(!tk.server.client_sent("AUTH"), "no login for capa");
}

#[test]
fn retr_and_top_are_byte_exact() {
    let mb = rich_mailbox();
    let tk = start(stls(mb.clone()));
    let tricky = mb.len() as u32 - 1; // Message::tricky
    let r = run(tk.cmd().args(["retr", &tricky.to_string()]));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        received(mb.messages()[tricky as usize - 1].data())
    );

    let out = tk.path("msg.eml");
    let r = run(tk.cmd().args(["retr", "5", "-o"]).arg(&out));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        received(mb.messages()[4].data())
    );
    // No temporary file left beside it.
    let names: Vec<_> = std::fs::read_dir(tk.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("pop3-tmp"))
        .collect();
    assert!(names.is_empty(), "{names:?}");

    let r = run(tk.cmd().args(["top", "1", "0"]));
    assert_eq!(r.code, 0, "{r:?}");
    let data = mb.messages()[0].data();
    let header_end = data.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(r.stdout, &data[..header_end]);
}

#[test]
fn retr_to_a_file_that_cannot_be_written_is_io_and_leaves_nothing() {
    let tk = start(stls(Mailbox::sample()));
    let r = run(tk
        .cmd()
        .args(["retr", "1", "-o"])
        .arg(tk.path("missing-dir/x.eml")));
    assert_eq!(r.code, 8, "{r:?}");
}

#[test]
fn dele_commits_with_quit() {
    let mb = Mailbox::sample();
    let tk = start(stls(mb.clone()));
    let r = run(tk.cmd().args(["dele", "2", "4"]));
    assert_eq!(r.code, 0, "{r:?}");
    let left = tk.server.mailbox().uids();
    assert_eq!(
        left,
        ["sample-0001", "sample-0003", "sample-0005", "sample-0006"]
    );
}

#[test]
fn dele_of_a_missing_message_commits_nothing() {
    let tk = start(stls(Mailbox::sample()));
    let r = run(tk.cmd().args(["dele", "1", "99"]));
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("DELE 99"), "names the command: {r:?}");
    assert_eq!(tk.server.mailbox().len(), 6, "RSET before QUIT");
}

#[test]
fn dele_with_failing_quit_is_reported() {
    let tk = start(stls(Mailbox::sample()).quit_fails(true));
    let r = run(tk.cmd().args(["dele", "1"]));
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("QUIT"), "{r:?}");
    assert!(
        r.stderr.contains("SYS/TEMP"),
        "shows the response code: {r:?}"
    );
    assert!(r.stderr.contains("NOT apply"), "{r:?}");
    assert_eq!(tk.server.mailbox().len(), 6);
}

#[test]
fn headers_use_pipelined_top() {
    let mb = rich_mailbox();
    let tk = start(stls(mb.clone()));
    let r = run(tk.cmd().arg("headers"));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.out().contains("From lines"), "{r:?}");
    assert!(
        r.out().contains("dots, long lines and 8-bit bytes"),
        "{r:?}"
    );
    assert!(tk.server.wait_idle(std::time::Duration::from_secs(10)));
    let t = &tk.server.transcripts()[0];
    let tops = t.client_commands().iter().filter(|c| *c == "TOP").count();
    assert_eq!(tops, mb.len());
    assert!(!t.client_commands().contains(&"RETR".to_string()));
}

#[test]
fn hostile_greeting_and_headers_are_neutralised() {
    let evil = "\x1b[2J\x1b]0;pwned\x07\u{202e}gnp.exe \u{9b}31m";
    let mb = Mailbox::new().with(
        "evil-1",
        "From: =?UTF-8?B?G1sySg==?= <x@example.com>\r\nSubject: hi\x1b[31m red\r\n\r\nbody\r\n",
    );
    let tk = start(stls(mb).greeting(evil));
    for args in [
        vec!["capa"],
        vec!["headers"],
        vec!["--json", "capa"],
        vec!["-vv", "headers"],
    ] {
        let r = run(tk.cmd().args(&args));
        assert_eq!(r.code, 0, "{args:?}: {r:?}");
        for (what, bytes) in [
            ("stdout", r.stdout.as_slice()),
            ("stderr", r.stderr.as_bytes()),
        ] {
            assert!(!bytes.contains(&0x1b), "{args:?}: ESC in {what}: {r:?}");
            assert!(!bytes.contains(&0x07), "{args:?}: BEL in {what}: {r:?}");
            let text = String::from_utf8_lossy(bytes);
            if args[0] != "--json" {
                assert!(
                    !text.contains('\u{202e}'),
                    "{args:?}: bidi override in {what}"
                );
                assert!(!text.contains('\u{9b}'), "{args:?}: CSI in {what}");
            }
        }
        if args == ["capa"] {
            assert!(r.out().contains("\\x1b[2J"), "shown escaped: {r:?}");
        }
    }
}

#[test]
fn exit_codes() {
    // Usage: unknown flag, cleartext without consent, no password.
    assert_eq!(run(pop3().arg("--bogus")).code, 2);
    assert_eq!(run(pop3().args(["retr", "0"])).code, 2);
    let tk = start(stls(Mailbox::sample()));
    let r = run(tk.cmd().args(["--tls", "none", "stat"]));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--allow-cleartext"), "{r:?}");
    let mut no_pw = tk.cmd();
    no_pw.env_remove("POP3_PASSWORD");
    assert_eq!(run(no_pw.arg("stat")).code, 2);
    assert!(!tk.server.client_sent("AUTH"));
    assert_eq!(
        run(pop3().args(["pop3://alice:pw@localhost", "stat"])).code,
        2
    );

    // Server -ERR.
    let r = run(tk.cmd().args(["retr", "99"]));
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("RETR"), "{r:?}");
    assert!(r.stderr.contains("-ERR"), "{r:?}");

    // Authentication.
    let mut bad = tk.cmd();
    bad.env("POP3_PASSWORD", "wrong");
    let r = run(bad.arg("stat"));
    assert_eq!(r.code, 5, "{r:?}");
    assert!(
        r.stderr.contains("[AUTH]"),
        "shows the response code: {r:?}"
    );

    // TLS: the CA is not trusted.
    let r = run(common::pop3()
        .args(["--host", "127.0.0.1", "--user", USER, "--port"])
        .arg(tk.server.port().to_string())
        .env("POP3_PASSWORD", PASSWORD)
        .arg("stat"));
    assert_eq!(r.code, 6, "{r:?}");
    // TLS: STLS required but not offered.
    let plain = start(
        pop3_testkit::Server::builder()
            .mailbox(Mailbox::sample())
            .tls_ca(tk.server.test_ca().unwrap().clone()),
    );
    let r = run(plain.cmd().arg("stat"));
    assert_eq!(r.code, 6, "{r:?}");
    assert!(r.stderr.contains("STLS"), "{r:?}");
    assert!(!plain.server.client_sent("AUTH") && !plain.server.client_sent("PASS"));
    // ... and with explicit consent to cleartext it works.
    let r = run(plain
        .cmd()
        .args(["--tls", "none", "--allow-cleartext", "stat"]));
    assert_eq!(r.code, 0, "{r:?}");

    // TLS: a client certificate that cannot be loaded.
    let r = run(tk
        .cmd()
        .arg("--client-cert")
        .arg(tk.path("missing-cert.pem"))
        .arg("--client-key")
        .arg(tk.path("missing-key.pem"))
        .arg("stat"));
    assert_eq!(r.code, 6, "{r:?}");

    // Protocol: not a POP3 server.
    let smtp =
        start(stls(Mailbox::new()).garbage_greeting(b"220 mail.example.com ESMTP\r\n".to_vec()));
    let r = run(smtp.cmd().arg("stat"));
    assert_eq!(r.code, 4, "{r:?}");

    // Protocol: a message cut short.
    let cut = start(stls(Mailbox::sample()).truncate_retr(1, 100));
    let r = run(cut.cmd().args(["retr", "1"]));
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("RETR 1"), "{r:?}");

    // Timeout: the server never answers STAT.
    let stall = start(stls(Mailbox::sample()).stall_on("STAT"));
    let r = run(stall.cmd().args(["--timeout", "1", "stat"]));
    assert_eq!(r.code, 7, "{r:?}");

    // I/O: nothing listens on the port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = run(pop3()
        .args(["--host", "127.0.0.1", "--user", "x", "--port"])
        .arg(port.to_string())
        .env("POP3_PASSWORD", "x")
        .arg("stat"));
    assert_eq!(r.code, 8, "{r:?}");

    // Help documents the exit codes.
    let r = run(pop3().arg("--help"));
    assert_eq!(r.code, 0);
    for needle in [
        "Exit codes",
        "usage error",
        "-ERR",
        "protocol",
        "authentication",
        "TLS",
        "timeout",
        "I/O",
    ] {
        assert!(r.out().contains(needle), "--help mentions {needle}");
    }
}

#[test]
fn passwords_from_file_and_command_never_leak() {
    let tk = start(stls(Mailbox::sample()));
    let pw_file = tk.path("pw");
    std::fs::write(&pw_file, format!("{PASSWORD}\nignored second line\n")).unwrap();
    let mut c = tk.cmd();
    c.env_remove("POP3_PASSWORD");
    let r = run(c.arg("--password-file").arg(&pw_file).args(["-vv", "stat"]));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("C: CAPA"),
        "-vv shows the exchange: {r:?}"
    );
    assert!(!r.stderr.contains(PASSWORD), "password leaked: {r:?}");
    // The mechanism name is shown, only its payload redacted.
    assert!(
        r.stderr
            .lines()
            .any(|l| l.contains("C: AUTH ") && l.contains("<redacted>")),
        "{r:?}"
    );

    let mut c = tk.cmd();
    c.env_remove("POP3_PASSWORD");
    let r = run(c
        .arg("--password-command")
        .arg(format!("printf '%s\\n' '{PASSWORD}'"))
        .args(["-v", "--auth", "user", "stat"]));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("PASS <redacted>"), "{r:?}");
    assert!(!r.stderr.contains(PASSWORD), "{r:?}");

    let mut c = tk.cmd();
    c.env_remove("POP3_PASSWORD");
    let r = run(c.args(["--password-command", "exit 1", "stat"]));
    assert_eq!(r.code, 5, "{r:?}");
}

#[test]
fn url_forms() {
    let tk = start(stls(Mailbox::sample()).implicit_tls(true));
    let url = format!("pop3s://{USER};AUTH=PLAIN@127.0.0.1:{}", tk.server.port());
    let mut c = pop3();
    c.arg(&url)
        .args(["--ca-file"])
        .arg(&tk.ca)
        .env("POP3_PASSWORD", PASSWORD)
        .arg("stat");
    let r = run(&mut c);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.out().starts_with("6 messages"), "{r:?}");

    let tk = start(stls(Mailbox::sample()));
    let url = format!("pop3://{USER};AUTH=+USER@127.0.0.1:{}/", tk.server.port());
    let r = run(pop3()
        .arg(&url)
        .arg("--ca-file")
        .arg(&tk.ca)
        .env("POP3_PASSWORD", PASSWORD)
        .arg("stat"));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(tk.server.client_sent("PASS"), "USER/PASS as asked");
    // APOP over STLS is impossible (the greeting's timestamp was seen in
    // cleartext and is forgotten): refused before anything is sent, as an
    // authentication failure (exit 5, issue 11 item 4).
    let r = run(tk.cmd().args(["--auth", "apop", "stat"]));
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stderr.contains("APOP timestamp"), "{r:?}");
    let implicit = start(stls(Mailbox::sample()).implicit_tls(true));
    let r = run(implicit
        .cmd()
        .args(["--tls", "implicit", "--auth", "apop", "stat"]));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(implicit.server.client_sent("APOP alice "), "APOP as asked");
    // Options may also follow the command (global flags).
    let r = run(pop3()
        .arg(&url)
        .arg("list")
        .arg("--ca-file")
        .arg(&tk.ca)
        .args(["--json", "--timeout", "20"])
        .env("POP3_PASSWORD", PASSWORD));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.out().lines().count(), 6, "{r:?}");
}

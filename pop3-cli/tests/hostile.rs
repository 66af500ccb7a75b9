//! Broken, quirky and hostile servers, as the `pop3` binary meets them.
//!
//! QUIT after `-ERR` everywhere: when the connection is still usable
//! after a server `-ERR`, the CLI sends QUIT before it gives up, and exits
//! with the code of the `-ERR` (not of QUIT).

mod common;

use common::*;
use pop3_testkit::Mailbox;

/// Runs `args` against a testkit server built by `f`; returns the run and
/// whether the server received QUIT.
fn against(
    f: impl FnOnce(pop3_testkit::ServerBuilder) -> pop3_testkit::ServerBuilder,
    args: &[&str],
) -> (Run, bool) {
    let tk = start(f(stls(Mailbox::sample())));
    let r = run(tk.cmd().args(args));
    tk.server.wait_idle(std::time::Duration::from_secs(10));
    let quit = tk.server.client_sent("QUIT\r\n");
    (r, quit)
}

#[test]
fn quit_after_err_to_each_user_command() {
    for (verb, args) in [
        ("STAT", &["stat"][..]),
        ("LIST", &["list"][..]),
        ("UIDL", &["uidl"][..]),
        ("RETR", &["retr", "1"][..]),
        ("TOP", &["top", "1", "0"][..]),
        ("LIST", &["headers"][..]),
    ] {
        let (r, quit) = against(|b| b.fail_command(verb, "not today"), args);
        assert_eq!(r.code, 3, "{args:?}: {r:?}");
        assert!(r.stderr.contains("not today"), "{args:?}: {r:?}");
        assert!(quit, "{args:?}: the server never received QUIT: {r:?}");
    }
}

#[test]
fn quit_after_err_to_login() {
    // A wrong password: exit 5 (authentication), and QUIT.
    let tk = start(stls(Mailbox::sample()));
    let r = run(tk
        .cmd()
        .env("POP3_PASSWORD", "wrong")
        .args(["--auth", "user", "stat"]));
    assert_eq!(r.code, 5, "{r:?}");
    assert!(tk.server.client_sent("QUIT\r\n"), "{r:?}");
    // Every login method.
    for auth in ["auto", "user", "plain", "scram-sha-256", "cram-md5"] {
        let tk =
            start(stls(Mailbox::sample()).sasl_mechanisms(["SCRAM-SHA-256", "PLAIN", "CRAM-MD5"]));
        let r = run(tk
            .cmd()
            .env("POP3_PASSWORD", "wrong")
            .args(["--auth", auth, "stat"]));
        assert_eq!(r.code, 5, "--auth {auth}: {r:?}");
        assert!(tk.server.client_sent("QUIT\r\n"), "--auth {auth}: {r:?}");
    }
    // [IN-USE]: a server condition, not a wrong password (exit 3), and QUIT.
    let (r, quit) = against(|b| b.in_use(true), &["--auth", "user", "stat"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("IN-USE"), "{r:?}");
    assert!(quit, "{r:?}");
    let (r, quit) = against(|b| b.login_delay(true), &["stat"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(quit, "{r:?}");
    // -ERR [SYS/TEMP] to PASS: a server failure, exit 3, and QUIT.
    let (r, quit) = against(
        |b| b.fail_command("PASS", "[SYS/TEMP] shutting down"),
        &["--auth", "user", "stat"],
    );
    assert_eq!(r.code, 3, "{r:?}");
    assert!(quit, "{r:?}");
}

#[test]
fn no_quit_on_a_dead_connection() {
    // The server closes instead of answering STAT: nothing more to say.
    let (r, quit) = against(|b| b.close_after_commands(4), &["--auth", "user", "stat"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(!quit, "{r:?}");
}

#[test]
fn broken_pipe_exits_quietly_after_quit() {
    use std::io::Read;
    let mut mb = Mailbox::new();
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    for i in 0..100_000 {
        big.extend_from_slice(format!("line {i} of a long message\r\n").as_bytes());
    }
    mb.push(pop3_testkit::Message::new("big-1", big));
    let tk = start(stls(mb));
    let mut child = tk
        .cmd()
        .args(["retr", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 10];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"Subject: b");
    drop(stdout); // `| head -c 10`
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "quiet: {stderr}");
    tk.server.wait_idle(std::time::Duration::from_secs(10));
    assert!(
        tk.server.client_sent("QUIT\r\n"),
        "the session still ended with QUIT"
    );
}

#[test]
fn tls_files_are_checked_before_connecting() {
    let tk = start(stls(Mailbox::sample()));
    let missing = tk.path("no-such-ca.pem");
    let r = run(tk.cmd().arg("--ca-file").arg(&missing).arg("stat"));
    assert_eq!(r.code, 6, "{r:?}");
    assert!(r.stderr.contains("--ca-file"), "{r:?}");
    assert!(r.stderr.contains("no-such-ca.pem"), "{r:?}");
    assert!(!r.stderr.to_lowercase().contains("refused"), "{r:?}");
    let garbage = tk.path("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let r = run(tk.cmd().arg("--ca-file").arg(&garbage).arg("stat"));
    assert_eq!(r.code, 6, "{r:?}");
    assert!(r.stderr.contains("garbage.pem"), "{r:?}");
    let r = run(tk
        .cmd()
        .arg("--client-cert")
        .arg(&missing)
        .arg("--client-key")
        .arg(&missing)
        .arg("stat"));
    assert_eq!(r.code, 6, "{r:?}");
    assert!(r.stderr.contains("--client-cert"), "{r:?}");
    assert_eq!(tk.server.connection_count(), 0, "nothing was contacted");
}

#[test]
fn ca_only_makes_the_ca_file_the_only_trust_anchor() {
    let tk = start(stls(Mailbox::sample()));
    let r = run(tk.cmd().args(["--ca-only", "stat"]));
    assert_eq!(r.code, 0, "its own CA: {r:?}");
    // Another server's CA does not vouch for this one.
    let other = start(stls(Mailbox::sample()));
    let r = run(tk
        .cmd()
        .arg("--ca-file")
        .arg(&other.ca)
        .args(["--ca-only", "stat"]));
    assert_eq!(r.code, 6, "{r:?}");
    let r = run(pop3().args(["--ca-only", "stat"]));
    assert_eq!(r.code, 2, "--ca-only without --ca-file: {r:?}");
}

#[test]
fn help_and_exit_code_agree_on_cleartext() {
    let tk = start(stls(Mailbox::sample()));
    let r = run(tk.cmd().args(["--tls", "none", "stat"]));
    let help = run(pop3().arg("--help")).out();
    let line = help
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(&format!("{} ", r.code)))
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        line.contains("without TLS") && line.contains("--allow-cleartext"),
        "exit {} is documented as: {line:?}",
        r.code
    );
    assert!(!tk.server.client_sent("USER") && !tk.server.client_sent("AUTH"));
}

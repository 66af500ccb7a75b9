//! TLS and connection diagnostics through the `pop3` binary (issue 11
//! item 7, issue 13 "Knowing your server"): a wrong TLS mode for the port
//! fails fast with a hint, an untrusted certificate names its issuer and
//! fingerprint, `--fingerprint` pins, `capa --tls-info` shows the TLS
//! connection, `--auth apop` without a timestamp is an authentication
//! failure, and `-v` names the AUTH mechanism.

mod common;

use std::time::{Duration, Instant};

use common::*;
use pop3_blocking::Fingerprint;
use pop3_testkit::{Mailbox, Script, Server, TestCa};

/// A testkit server with implicit TLS (its CA in `tk.ca`), and the leaf
/// certificate's fingerprint.
fn implicit() -> (Tk, Fingerprint) {
    let ca = TestCa::generate();
    let fp = Fingerprint::of(ca.leaf_cert_der());
    let tk = start(
        Server::builder()
            .mailbox(Mailbox::sample())
            .tls_ca(ca)
            .implicit_tls(true),
    );
    (tk, fp)
}

/// `pop3 --host 127.0.0.1 --port P --user alice` (no --ca-file).
fn bare(port: u16) -> std::process::Command {
    let mut c = pop3();
    c.args(["--host", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .args(["--user", USER, "--timeout", "20"])
        .env("POP3_PASSWORD", PASSWORD);
    c
}

#[test]
fn pop3s_to_a_plain_port_says_it_speaks_plain_pop3() {
    let tk = start(stls(Mailbox::sample()));
    let started = Instant::now();
    let url = format!("pop3s://{USER}@127.0.0.1:{}", tk.server.port());
    let r = run(pop3()
        .arg(&url)
        .args(["--timeout", "20", "stat"])
        .env("POP3_PASSWORD", PASSWORD));
    assert_eq!(r.code, 6, "{r:?}");
    assert!(
        r.stderr
            .contains("this port speaks plain POP3; try pop3:// or --tls starttls"),
        "{r:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "not the timeout"
    );
}

#[test]
fn starttls_to_an_implicit_tls_port_fails_fast_with_a_hint() {
    let (tk, _) = implicit();
    for mode in ["starttls", "none"] {
        let started = Instant::now();
        let mut c = tk.cmd();
        let r = run(c.args(["--tls", mode, "--allow-cleartext", "stat"]));
        let took = started.elapsed();
        assert_eq!(r.code, 7, "--tls {mode}: {r:?}");
        assert!(
            r.stderr
                .contains("this port expects TLS from the first byte; try pop3s://"),
            "{r:?}"
        );
        // The first-byte limit (5 s), not the 20 s --timeout.
        assert!(took < Duration::from_secs(15), "took {took:?}: {r:?}");
        assert!(took >= Duration::from_secs(4), "took {took:?}: {r:?}");
    }
    // Clamped to a shorter --timeout.
    let started = Instant::now();
    let r = run(tk
        .cmd()
        .args(["--tls", "starttls", "--timeout", "1", "stat"]));
    assert_eq!(r.code, 7, "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(4), "{r:?}");
    assert!(r.stderr.contains("try pop3s://"), "{r:?}");
}

#[test]
fn an_untrusted_certificate_names_its_issuer_and_fingerprint() {
    let (tk, fp) = implicit();
    let r = run(bare(tk.server.port()).args(["--tls", "implicit", "stat"]));
    assert_eq!(r.code, 6, "{r:?}");
    assert!(r.stderr.contains("issuer CN=pop3-testkit test CA"), "{r:?}");
    assert!(r.stderr.contains(&fp.to_string()), "{r:?}");
    assert!(r.stderr.contains("--ca-file"), "{r:?}");
    assert!(r.stderr.contains("--fingerprint"), "{r:?}");
}

#[test]
fn fingerprint_pins_the_certificate() {
    let (tk, fp) = implicit();
    // The right pin: accepted without --ca-file, with or without colons.
    for pin in [
        fp.to_string(),
        fp.to_string().replace(':', "").to_lowercase(),
    ] {
        let r =
            run(bare(tk.server.port()).args(["--tls", "implicit", "--fingerprint", &pin, "stat"]));
        assert_eq!(r.code, 0, "{pin}: {r:?}");
        assert!(r.out().contains("messages"), "{r:?}");
    }
    // Another pin: refused although --ca-file would trust the server.
    let other = Fingerprint::from([0xAB; 32]).to_string();
    let r = run(tk
        .cmd()
        .args(["--tls", "implicit", "--fingerprint", &other, "stat"]));
    assert_eq!(r.code, 6, "{r:?}");
    assert!(r.stderr.contains("pin"), "{r:?}");
    assert!(
        r.stderr.contains(&fp.to_string()),
        "shows the real one: {r:?}"
    );
    assert!(!tk.server.client_sent("PASS"), "nothing was sent");
    // Not a fingerprint: a usage error.
    let r = run(bare(tk.server.port()).args(["--fingerprint", "12:34", "stat"]));
    assert_eq!(r.code, 2, "{r:?}");
}

#[test]
fn capa_tls_info_shows_the_connection_and_explains_capabilities() {
    let (tk, fp) = implicit();
    let r = run(tk.cmd().args(["--tls", "implicit", "capa", "--tls-info"]));
    assert_eq!(r.code, 0, "{r:?}");
    let out = r.out();
    for want in [
        "TLSv1.3",
        "cipher suite:",
        "subject:",
        "CN=localhost",
        "issuer:",
        "CN=pop3-testkit test CA, O=pop3-testkit",
        "not before:",
        "not after:",
        &fp.to_string(),
        "stable unique ids",
        "SASL",
    ] {
        assert!(out.contains(want), "{want:?} missing:\n{out}");
    }
    // The serverinfo alias and JSON.
    let r = run(tk
        .cmd()
        .args(["--tls", "implicit", "--json", "capa", "--serverinfo"]));
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(r.out().trim()).unwrap();
    assert_eq!(v["tls_info"]["sha_256"], fp.to_string());
    assert_eq!(v["tls_info"]["version"], "TLSv1.3");
    assert!(v["explained"]["UIDL"].is_string(), "{v}");
    // Without TLS there is no TLS information.
    let plain = start(stls(Mailbox::sample()));
    let r = run(plain
        .cmd()
        .args(["--tls", "none", "--json", "capa", "--tls-info"]));
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(r.out().trim()).unwrap();
    assert!(v["tls_info"].is_null(), "{v}");
}

#[test]
fn apop_without_a_timestamp_sends_nothing_and_exits_5() {
    for greeting in [&b"+OK no timestamp here\r\n"[..], b"+OK <unclosed@x\r\n"] {
        let script = Script::new()
            .send(greeting)
            .expect_line("CAPA")
            .send(b"+OK\r\nUSER\r\n.\r\n")
            .expect_line("QUIT")
            .send(b"+OK\r\n");
        let server = Server::builder().script(script).start().unwrap();
        let r = run(bare(server.port()).args([
            "--tls",
            "none",
            "--allow-cleartext",
            "--auth",
            "apop",
            "stat",
        ]));
        assert_eq!(r.code, 5, "{r:?}");
        assert!(r.stderr.contains("timestamp"), "{r:?}");
        server.wait_idle(Duration::from_secs(5));
        assert!(!server.client_sent("APOP"), "APOP was sent: {r:?}");
        assert!(!server.client_sent(PASSWORD), "{r:?}");
    }
}

#[test]
fn verbose_names_the_auth_mechanism_and_redacts_the_payload() {
    let tk = start(stls(Mailbox::sample()).sasl_mechanisms(["PLAIN"]));
    let r = run(tk.cmd().args(["--auth", "plain", "-v", "stat"]));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("C: AUTH PLAIN <redacted>"), "{r:?}");
    assert!(!r.stderr.contains(PASSWORD), "{r:?}");
    // The base64 PLAIN payload does not leak either.
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::STANDARD.encode(format!("\0{USER}\0{PASSWORD}"));
    assert!(!r.stderr.contains(&payload), "{r:?}");
}

#[test]
fn plain_text_after_stls_ok_is_not_called_a_wrong_port() {
    let script = Script::new()
        .send(b"+OK ready\r\n")
        .expect_line("CAPA")
        .send(b"+OK\r\nSTLS\r\nUSER\r\n.\r\n")
        .expect_line("STLS")
        .send(b"+OK go ahead\r\n")
        .sleep(Duration::from_millis(300))
        .send(b"-ERR fooled you\r\n");
    let server = Server::builder().script(script).start().unwrap();
    let r = run(bare(server.port()).args(["--tls", "starttls", "stat"]));
    assert_eq!(r.code, 6, "{r:?}");
    assert!(
        r.stderr
            .contains("the server accepted STLS but then did not speak TLS"),
        "{r:?}"
    );
    assert!(!r.stderr.contains("try pop3://"), "{r:?}");
}

#[test]
fn fingerprint_without_tls_is_a_usage_error() {
    let fp = Fingerprint::from([1; 32]).to_string();
    let r = run(bare(1).args([
        "--tls",
        "none",
        "--allow-cleartext",
        "--fingerprint",
        &fp,
        "stat",
    ]));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--fingerprint needs TLS"), "{r:?}");
}

//! TLS diagnostics against a real Dovecot on loopback (OpenSSL on the
//! server side): `capa --tls-info`, `--fingerprint`, an untrusted
//! certificate, and both wrong TLS modes for a port.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{pop3, run};
use pop3_blocking::rustls::pki_types::pem::PemObject;
use pop3_blocking::rustls::pki_types::CertificateDer;
use pop3_blocking::Fingerprint;

/// `pop3 --host 127.0.0.1 --port P --user U` (no --ca-file).
fn bare(d: &pop3_dovecot::Dovecot, port: u16) -> Command {
    let mut c = pop3();
    c.args(["--host", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .args(["--user", d.user(), "--timeout", "20"])
        .env("POP3_PASSWORD", d.password());
    c
}

/// The fingerprint of the certificate Dovecot presents.
fn server_fingerprint(d: &pop3_dovecot::Dovecot) -> Fingerprint {
    let path = d.dir().join("server-cert.pem");
    let leaf = CertificateDer::pem_file_iter(&path)
        .unwrap()
        .next()
        .expect("a certificate")
        .unwrap();
    Fingerprint::of(&leaf)
}

#[test]
fn dovecot_tls_info_pinning_and_wrong_modes() {
    let Some(d) = pop3_dovecot::start_or_skip() else {
        return;
    };
    let fp = server_fingerprint(&d);
    let implicit = d.tls_addr().port();
    let plain = d.plain_addr().port();

    // capa --tls-info over implicit TLS (trusting the harness CA).
    let r = run(bare(&d, implicit)
        .arg("--ca-file")
        .arg(d.ca_cert_path())
        .args(["--tls", "implicit", "capa", "--tls-info"]));
    assert_eq!(r.code, 0, "{r:?}");
    let out = r.out();
    assert!(out.contains("version:      TLSv1."), "{out}");
    assert!(out.contains(&fp.to_string()), "{out}");
    assert!(out.contains("not after:"), "{out}");
    assert!(out.contains("stable unique ids"), "{out}");

    // Untrusted without --ca-file: the issuer and the fingerprint.
    let r = run(bare(&d, implicit).args(["--tls", "implicit", "stat"]));
    assert_eq!(r.code, 6, "{r:?}");
    assert!(r.stderr.contains(&fp.to_string()), "{r:?}");
    assert!(r.stderr.contains("--ca-file"), "{r:?}");

    // Pinned: no CA needed, over implicit TLS and STLS.
    let pin = fp.to_string();
    let r = run(bare(&d, implicit).args(["--tls", "implicit", "--fingerprint", &pin, "stat"]));
    assert_eq!(r.code, 0, "{r:?}");
    let r = run(bare(&d, plain).args(["--tls", "starttls", "--fingerprint", &pin, "stat"]));
    assert_eq!(r.code, 0, "{r:?}");

    // pop3s:// to the plain port.
    let url = format!("pop3s://{}@127.0.0.1:{plain}", d.user());
    let r =
        run(pop3()
            .arg(&url)
            .env("POP3_PASSWORD", d.password())
            .args(["--timeout", "20", "stat"]));
    assert_eq!(r.code, 6, "{r:?}");
    assert!(r.stderr.contains("this port speaks plain POP3"), "{r:?}");

    // STLS to the implicit-TLS port: Dovecot waits for a ClientHello.
    let started = Instant::now();
    let r = run(bare(&d, implicit).args(["--tls", "starttls", "stat"]));
    assert_eq!(r.code, 7, "{r:?}");
    assert!(
        r.stderr
            .contains("this port expects TLS from the first byte"),
        "{r:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(15), "{r:?}");
}

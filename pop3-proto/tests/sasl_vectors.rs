//! Published test vectors and hostile-server cases for the SASL mechanisms,
//! through the public API only.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use pop3_proto::sasl::{
    choose, preference_rank, ChannelBinding, CramMd5, Login, Mechanism, OAuthBearer, Plain,
    SaslError, Scram, ScramHash, XOAuth2, DEFAULT_MAX_ITERATIONS,
};

fn b64(s: &str) -> Vec<u8> {
    STANDARD.decode(s).expect("test vector is valid base64")
}

fn ir(m: &mut dyn Mechanism) -> Vec<u8> {
    m.initial_response()
        .expect("initial response")
        .expect("has an initial response")
        .expose()
        .clone()
}

// ---------------------------------------------------------------- PLAIN

#[test]
fn plain_rfc4616_examples() {
    // RFC 4616 §4: "tim" / "tanstaaftanstaaf", without and with authzid "Ursel".
    let mut m = Plain::new("tim", "tanstaaftanstaaf");
    assert_eq!(m.name(), "PLAIN");
    assert_eq!(ir(&mut m), b"\0tim\0tanstaaftanstaaf");
    m.finish().unwrap();

    let mut m = Plain::new("Kurt", "xipj3plmq").with_authzid("Ursel");
    assert_eq!(ir(&mut m), b"Ursel\0Kurt\0xipj3plmq");
    assert_eq!(m.step(b""), Err(SaslError::UnexpectedChallenge));
    m.finish().unwrap();
}

// ---------------------------------------------------------------- LOGIN

#[test]
fn login_prompts() {
    let mut m = Login::new("tim", "tanstaaftanstaaf");
    assert!(m.initial_response().unwrap().is_none());
    assert_eq!(m.step(b"Username:").unwrap().expose(), b"tim");
    assert_eq!(m.step(b"Password:").unwrap().expose(), b"tanstaaftanstaaf");
    m.finish().unwrap();
    assert_eq!(m.step(b"Password:"), Err(SaslError::UnexpectedChallenge));

    let mut m = Login::new("tim", "pw");
    assert_eq!(m.step(b"USERNAME:").unwrap().expose(), b"tim");
    assert_eq!(m.step(b"what?").unwrap().expose(), b"pw");
}

// ---------------------------------------------------------------- CRAM-MD5

#[test]
fn cram_md5_rfc2195_example() {
    let mut m = CramMd5::new("tim", "tanstaaftanstaaf");
    assert_eq!(m.name(), "CRAM-MD5");
    assert!(m.initial_response().unwrap().is_none());
    // RFC 2195 §2: the challenge is sent base64-encoded as
    // PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+
    let challenge = b64("PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+");
    assert_eq!(challenge, b"<1896.697170952@postoffice.reston.mci.net>");
    let r = m.step(&challenge).unwrap();
    assert_eq!(r.expose(), b"tim b913a602c7eda7a495b4e6e7334d3890");
    assert_eq!(
        STANDARD.encode(r.expose()),
        "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"
    );
    m.finish().unwrap();
    assert_eq!(m.step(&challenge), Err(SaslError::UnexpectedChallenge));
}

// ---------------------------------------------------------------- XOAUTH2

#[test]
fn xoauth2_google_example() {
    // developers.google.com/gmail/imap/xoauth2-protocol
    let mut m = XOAuth2::new(
        "someuser@example.com",
        "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
    );
    assert_eq!(m.name(), "XOAUTH2");
    let message = ir(&mut m);
    assert_eq!(
        STANDARD.encode(&message),
        "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
    );
    m.finish().unwrap();
}

#[test]
fn xoauth2_google_failure() {
    // Google's documented failure: a challenge with a base64 JSON error,
    // answered with an empty line, then the server fails the command.
    let json = b64("eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIG1hYyIsInNjb3BlIjoiaHR0cHM6Ly9tYWlsLmdvb2dsZS5jb20vIn0K");
    let mut m = XOAuth2::new("someuser@example.com", "ya29.expired");
    ir(&mut m);
    assert!(m.step(&json).unwrap().expose().is_empty());
    let text = m.server_error().expect("server error kept");
    assert!(
        text.starts_with(r#"{"status":"401","schemes":"bearer mac""#),
        "{text}"
    );
    assert_eq!(m.step(b""), Err(SaslError::UnexpectedChallenge));
    assert!(matches!(m.finish(), Err(SaslError::Server(t)) if t.contains("401")));
}

#[test]
fn xoauth2_two_step_microsoft() {
    let mut m = XOAuth2::two_step(
        "user@contoso.onmicrosoft.com",
        "EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA",
    );
    assert!(m.initial_response().unwrap().is_none());
    let r = m.step(b"").unwrap();
    assert_eq!(
        r.expose(),
        b"user=user@contoso.onmicrosoft.com\x01auth=Bearer EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA\x01\x01"
    );
    assert_eq!(m.server_error(), None);
    m.finish().unwrap();
}

// ---------------------------------------------------------------- OAUTHBEARER

const RFC7628_TOKEN: &str = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==";

#[test]
fn oauthbearer_rfc7628_section_4_1() {
    let mut m = OAuthBearer::new("user@example.com", RFC7628_TOKEN)
        .with_host("server.example.com")
        .with_port(143);
    assert_eq!(m.name(), "OAUTHBEARER");
    let message = ir(&mut m);
    assert_eq!(
        message,
        b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
    );
    // The RFC's base64 (wrapped there for readability).
    assert_eq!(
        STANDARD.encode(&message),
        concat!(
            "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhv",
            "c3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyI",
            "HZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQ",
            "EB"
        )
    );
    assert_eq!(m.server_error(), None);
    m.finish().unwrap();
}

#[test]
fn oauthbearer_rfc7628_failure() {
    // RFC 7628 §4.3: the JSON error challenge, answered with AQ== (0x01).
    let challenge = b64(concat!(
        "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJleGFtcGxlX3Njb3BlIiwi",
        "b3BlbmlkLWNvbmZpZ3VyYXRpb24iOiJodHRwczovL2V4YW1wbGUuY29tLy53ZWxsLWtu",
        "b3duL29wZW5pZC1jb25maWd1cmF0aW9uIn0="
    ));
    let mut m = OAuthBearer::new("user@example.com", RFC7628_TOKEN)
        .with_host("server.example.com")
        .with_port(143);
    ir(&mut m);
    let r = m.step(&challenge).unwrap();
    assert_eq!(STANDARD.encode(r.expose()), "AQ==");
    assert_eq!(
        m.server_error(),
        Some(
            r#"{"status":"invalid_token","scope":"example_scope","openid-configuration":"https://example.com/.well-known/openid-configuration"}"#
        )
    );
    assert_eq!(m.step(b""), Err(SaslError::UnexpectedChallenge));
    assert!(matches!(m.finish(), Err(SaslError::Server(_))));
}

// ---------------------------------------------------------------- SCRAM

const SHA1_NONCE: &str = "fyko+d2lbbFgONRv9qkxdawL";
const SHA1_SERVER_FIRST: &[u8] =
    b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
const SHA1_SERVER_FINAL: &[u8] = b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=";

const SHA256_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const SHA256_SERVER_FIRST: &[u8] =
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const SHA256_SERVER_FINAL: &[u8] = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

fn sha1() -> Scram {
    Scram::with_nonce(ScramHash::Sha1, "user", "pencil", SHA1_NONCE).unwrap()
}

fn sha256() -> Scram {
    Scram::with_nonce(ScramHash::Sha256, "user", "pencil", SHA256_NONCE).unwrap()
}

/// A SCRAM-SHA-1 mechanism that has sent its client-first-message.
fn sha1_started() -> Scram {
    let mut m = sha1();
    m.initial_response().unwrap();
    m
}

#[test]
fn scram_sha1_rfc5802_section_5() {
    let mut m = sha1();
    assert_eq!(m.name(), "SCRAM-SHA-1");
    assert_eq!(ir(&mut m), b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
    let r = m.step(SHA1_SERVER_FIRST).unwrap();
    assert_eq!(
        r.expose(),
        b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
    );
    assert_eq!(m.finish(), Err(SaslError::Incomplete), "not verified yet");
    assert!(m.step(SHA1_SERVER_FINAL).unwrap().expose().is_empty());
    assert!(m.is_server_verified());
    m.finish().unwrap();
    assert_eq!(
        m.step(SHA1_SERVER_FINAL),
        Err(SaslError::UnexpectedChallenge)
    );
}

#[test]
fn scram_sha256_rfc7677_section_3() {
    let mut m = sha256();
    assert_eq!(m.name(), "SCRAM-SHA-256");
    assert_eq!(ir(&mut m), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    let r = m.step(SHA256_SERVER_FIRST).unwrap();
    assert_eq!(
        r.expose(),
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    );
    assert_eq!(m.finish(), Err(SaslError::Incomplete));
    assert!(m.step(SHA256_SERVER_FINAL).unwrap().expose().is_empty());
    m.finish().unwrap();
}

#[test]
fn scram_without_initial_response_answers_empty_challenge() {
    let mut m = sha1();
    assert_eq!(
        m.step(b"").unwrap().expose(),
        b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"
    );
    m.step(SHA1_SERVER_FIRST).unwrap();
    m.step(SHA1_SERVER_FINAL).unwrap();
    m.finish().unwrap();
}

#[test]
fn scram_wrong_server_signature() {
    let mut m = sha1_started();
    m.step(SHA1_SERVER_FIRST).unwrap();
    // The SHA-256 vector's signature: valid base64, wrong value and length.
    assert_eq!(
        m.step(SHA256_SERVER_FINAL),
        Err(SaslError::ServerVerificationFailed)
    );
    assert_eq!(m.finish(), Err(SaslError::Incomplete));
    assert_eq!(
        m.step(SHA1_SERVER_FINAL),
        Err(SaslError::UnexpectedChallenge),
        "failed stays failed"
    );

    // Right length, one bit off.
    let mut m = sha1_started();
    m.step(SHA1_SERVER_FIRST).unwrap();
    assert_eq!(
        m.step(b"v=rmF9pqV8S7suAoZWja4dJRkFsKY="),
        Err(SaslError::ServerVerificationFailed)
    );
    assert_eq!(m.finish(), Err(SaslError::Incomplete));
}

#[test]
fn scram_wrong_password_means_failed_verification() {
    let mut m = Scram::with_nonce(ScramHash::Sha1, "user", "pencil2", SHA1_NONCE).unwrap();
    m.initial_response().unwrap();
    m.step(SHA1_SERVER_FIRST).unwrap();
    assert_eq!(
        m.step(SHA1_SERVER_FINAL),
        Err(SaslError::ServerVerificationFailed)
    );
}

#[test]
fn scram_server_nonce_must_extend_client_nonce() {
    for server_first in [
        &b"r=XXXX+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"[..],
        b"r=fyko+d2lbbFgONRv9qkxdawL,s=QSXCR+Q6sek8bf92,i=4096", // no server part
        b"r=fyko+d2lbbFg,s=QSXCR+Q6sek8bf92,i=4096",             // truncated
        b"r=,s=QSXCR+Q6sek8bf92,i=4096",
        b"r=fyko+d2lbbFgONRv9qkxdawL\x7fbad,s=QSXCR+Q6sek8bf92,i=4096",
    ] {
        let mut m = sha1_started();
        assert!(
            matches!(m.step(server_first), Err(SaslError::MalformedChallenge(_))),
            "{server_first:?}"
        );
        assert_eq!(m.finish(), Err(SaslError::Incomplete));
    }
}

#[test]
fn scram_finish_without_verification_is_incomplete() {
    let mut m = sha1();
    assert_eq!(m.finish(), Err(SaslError::Incomplete));
    m.initial_response().unwrap();
    assert_eq!(m.finish(), Err(SaslError::Incomplete));
    m.step(SHA1_SERVER_FIRST).unwrap();
    // The server answers +OK without sending v=: not trusted.
    assert_eq!(m.finish(), Err(SaslError::Incomplete));
    assert!(!m.is_server_verified());
}

#[test]
fn scram_hostile_iteration_count() {
    for (i, requested) in [
        ("1000001", 1_000_001u64),
        ("4294967295", 4_294_967_295),
        ("4294967296", 4_294_967_296),
        ("99999999999999999999999999999999", u64::MAX),
    ] {
        let mut m = sha1_started();
        let server_first = format!("r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i={i}");
        assert_eq!(
            m.step(server_first.as_bytes()),
            Err(SaslError::TooManyIterations {
                requested,
                max: DEFAULT_MAX_ITERATIONS
            }),
        );
        assert_eq!(m.finish(), Err(SaslError::Incomplete));
    }
    assert_eq!(DEFAULT_MAX_ITERATIONS, 1_000_000);

    // i < 1 and non-numbers are malformed.
    for i in ["0", "-1", "", "4096x", " 4096", "1e6", "0x1000"] {
        let mut m = sha1_started();
        let server_first = format!("r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i={i}");
        assert!(
            matches!(
                m.step(server_first.as_bytes()),
                Err(SaslError::MalformedChallenge(_))
            ),
            "{i:?}"
        );
    }

    // The cap is configurable both ways.
    let mut m = sha1().with_max_iterations(100);
    m.initial_response().unwrap();
    assert_eq!(
        m.step(SHA1_SERVER_FIRST),
        Err(SaslError::TooManyIterations {
            requested: 4096,
            max: 100
        })
    );
}

#[test]
fn scram_malformed_server_first() {
    let cases: &[&[u8]] = &[
        b"",
        b"garbage",
        b",,,,",
        b"s=QSXCR+Q6sek8bf92,r=fyko+d2lbbFgONRv9qkxdawL3rfc,i=4096", // wrong order
        b"r=fyko+d2lbbFgONRv9qkxdawL3rfc",                           // missing s= and i=
        b"r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92",        // missing i=
        b"r=fyko+d2lbbFgONRv9qkxdawL3rfc,i=4096",                    // missing s=
        b"r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=!!notbase64!!,i=4096",    // bad salt
        b"r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf9,i=4096",  // bad salt length
        b"r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=,i=4096",                 // empty salt
        b"m=mandatory-ext,r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=4096",
        b"r=fyko+d2lbbFgONRv9qkxdawL3rfc\xff,s=QSXCR+Q6sek8bf92,i=4096", // not UTF-8
        b"\0\0\0",
    ];
    for &case in cases {
        let mut m = sha1_started();
        assert!(
            matches!(m.step(case), Err(SaslError::MalformedChallenge(_))),
            "{:?}",
            String::from_utf8_lossy(case)
        );
        assert_eq!(
            m.step(SHA1_SERVER_FIRST),
            Err(SaslError::UnexpectedChallenge)
        );
        assert_eq!(m.finish(), Err(SaslError::Incomplete));
    }
}

#[test]
fn scram_unpadded_salt_and_extensions_are_accepted() {
    // Some servers drop the base64 padding; extensions after i= are ignored.
    let mut m = sha256();
    m.initial_response().unwrap();
    let r = m
        .step(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ,i=4096,x=y")
        .unwrap();
    // The AuthMessage differs (it includes ",x=y"), so only the prefix is fixed.
    assert!(r
        .expose()
        .starts_with(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p="));
}

#[test]
fn scram_malformed_server_final() {
    let cases: &[&[u8]] = &[
        b"",
        b"garbage",
        b"v=",
        b"v=!!!",
        b"x=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
        b"\xff\xfe",
    ];
    for &case in cases {
        let mut m = sha1_started();
        m.step(SHA1_SERVER_FIRST).unwrap();
        let err = m.step(case).unwrap_err();
        assert!(
            matches!(
                err,
                SaslError::MalformedChallenge(_) | SaslError::ServerVerificationFailed
            ),
            "{case:?}: {err:?}"
        );
        assert_eq!(m.finish(), Err(SaslError::Incomplete));
    }
}

#[test]
fn scram_server_error_attribute() {
    let mut m = sha1_started();
    m.step(SHA1_SERVER_FIRST).unwrap();
    assert_eq!(
        m.step(b"e=invalid-proof"),
        Err(SaslError::Server("invalid-proof".into()))
    );
    assert_eq!(m.finish(), Err(SaslError::Incomplete));

    let mut m = sha1_started();
    assert_eq!(
        m.step(b"e=unknown-user"),
        Err(SaslError::Server("unknown-user".into()))
    );
}

#[test]
fn scram_username_escaping_and_saslprep() {
    let mut m = Scram::with_nonce(ScramHash::Sha256, "a,b=c", "pencil", "nonce").unwrap();
    assert_eq!(ir(&mut m), b"n,,n=a=2Cb=3Dc,r=nonce");

    // Non-ASCII space maps to SPACE, soft hyphen to nothing (RFC 4013 §2.1).
    let mut m =
        Scram::with_nonce(ScramHash::Sha256, "j\u{00AD}o\u{00A0}e", "pencil", "nonce").unwrap();
    assert_eq!(ir(&mut m), b"n,,n=jo e,r=nonce");

    for (user, password) in [("", "p"), ("u\0", "p"), ("u", "p\u{7}"), ("u\u{202E}", "p")] {
        assert!(
            matches!(
                Scram::with_nonce(ScramHash::Sha1, user, password, "nonce"),
                Err(SaslError::InvalidInput(_))
            ),
            "{user:?} {password:?}"
        );
    }
}

#[test]
fn scram_random_nonce() {
    let random = [0x5a_u8; 18];
    let mut m = Scram::new(ScramHash::Sha256, "user", "pencil", &random).unwrap();
    let first = String::from_utf8(ir(&mut m)).unwrap();
    let nonce = first.strip_prefix("n,,n=user,r=").unwrap();
    assert_eq!(nonce, STANDARD.encode(random));
    assert!(nonce
        .bytes()
        .all(|b| (0x21..=0x7e).contains(&b) && b != b','));
    assert!(matches!(
        Scram::new(ScramHash::Sha256, "user", "pencil", &[1; 8]),
        Err(SaslError::InvalidInput(_))
    ));
}

#[test]
fn scram_plus_channel_binding() {
    let data = vec![0xC0u8; 32];
    let mut m = sha256().with_channel_binding(ChannelBinding::TlsExporter(data.clone()));
    assert_eq!(m.name(), "SCRAM-SHA-256-PLUS");
    assert_eq!(ir(&mut m), b"p=tls-exporter,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    let r = m.step(SHA256_SERVER_FIRST).unwrap();
    let mut cbind = b"p=tls-exporter,,".to_vec();
    cbind.extend_from_slice(&data);
    let expected_c = format!("c={},", STANDARD.encode(&cbind));
    assert!(r.expose().starts_with(expected_c.as_bytes()));
    // Without the RFC's AuthMessage, the RFC's server signature is wrong.
    assert_eq!(
        m.step(SHA256_SERVER_FINAL),
        Err(SaslError::ServerVerificationFailed)
    );

    let mut m = sha1().with_channel_binding(ChannelBinding::TlsServerEndPoint(vec![1; 32]));
    assert_eq!(m.name(), "SCRAM-SHA-1-PLUS");
    assert!(ir(&mut m).starts_with(b"p=tls-server-end-point,,n=user,"));

    let mut m = sha1().with_channel_binding(ChannelBinding::SupportedButNotOffered);
    assert_eq!(m.name(), "SCRAM-SHA-1");
    assert!(ir(&mut m).starts_with(b"y,,"));
    assert!(m
        .step(SHA1_SERVER_FIRST)
        .unwrap()
        .expose()
        .starts_with(b"c=eSws,"));
}

#[test]
fn scram_mechanism_name_parsing() {
    assert_eq!(
        ScramHash::from_mechanism_name("SCRAM-SHA-256-PLUS"),
        Some((ScramHash::Sha256, true))
    );
    assert_eq!(
        ScramHash::from_mechanism_name("scram-sha-1"),
        Some((ScramHash::Sha1, false))
    );
    assert_eq!(ScramHash::from_mechanism_name("PLAIN"), None);
    assert_eq!(ScramHash::Sha256.mechanism_name(true), "SCRAM-SHA-256-PLUS");
}

// ---------------------------------------------------------------- choose

#[test]
fn choose_strongest() {
    let offered =
        "LOGIN PLAIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256 SCRAM-SHA-256-PLUS XOAUTH2 OAUTHBEARER";
    assert_eq!(
        choose(offered.split(' '), true, false),
        Some("SCRAM-SHA-256-PLUS")
    );
    assert_eq!(
        choose(offered.split(' '), false, false),
        Some("SCRAM-SHA-256")
    );
    assert_eq!(
        choose(["scram-sha-1", "cram-md5"], false, false),
        Some("scram-sha-1")
    );
    assert_eq!(choose(["CRAM-MD5", "PLAIN"], true, true), Some("CRAM-MD5"));
    assert_eq!(choose(["LOGIN", "PLAIN"], false, false), None);
    assert_eq!(choose(["LOGIN", "PLAIN"], false, true), Some("PLAIN"));
    assert_eq!(choose(["LOGIN"], true, false), Some("LOGIN"));
    assert_eq!(choose(["SCRAM-SHA-256-PLUS"], false, true), None);
    assert_eq!(
        choose(["XOAUTH2", "OAUTHBEARER", "GSSAPI", "NTLM"], true, true),
        None
    );
    assert!(preference_rank("SCRAM-SHA-256-PLUS") > preference_rank("SCRAM-SHA-256"));
    assert!(preference_rank("SCRAM-SHA-256") > preference_rank("SCRAM-SHA-1"));
    assert!(preference_rank("SCRAM-SHA-1") > preference_rank("CRAM-MD5"));
    assert!(preference_rank("CRAM-MD5") > preference_rank("PLAIN"));
    assert!(preference_rank("PLAIN") > preference_rank("LOGIN"));
    assert_eq!(preference_rank("XOAUTH2"), None);
}

// ---------------------------------------------------------------- all mechanisms

fn all_mechanisms() -> Vec<Box<dyn Mechanism>> {
    vec![
        Box::new(Plain::new("tim", "tanstaaftanstaaf")),
        Box::new(Login::new("tim", "tanstaaftanstaaf")),
        Box::new(CramMd5::new("tim", "tanstaaftanstaaf")),
        Box::new(XOAuth2::new("tim", "tanstaaftanstaaf")),
        Box::new(XOAuth2::two_step("tim", "tanstaaftanstaaf")),
        Box::new(OAuthBearer::new("tim", "tanstaaftanstaaf")),
        Box::new(
            Scram::with_nonce(
                ScramHash::Sha1,
                "tim",
                "tanstaaftanstaaf",
                "tanstaaftanstaafnonce",
            )
            .unwrap(),
        ),
        Box::new(
            Scram::with_nonce(
                ScramHash::Sha256,
                "tim",
                "tanstaaftanstaaf",
                "tanstaaftanstaafnonce",
            )
            .unwrap()
            .with_channel_binding(ChannelBinding::TlsExporter(b"tanstaaftanstaaf".to_vec())),
        ),
    ]
}

#[test]
fn debug_never_shows_secrets() {
    fn check<M: Mechanism + std::fmt::Debug>(mut m: M) {
        let _ = m.initial_response();
        let _ = m.step(b"r=cnonceX,s=QSXCR+Q6sek8bf92,i=1");
        let debug = format!("{m:?}");
        assert!(!debug.contains("tanstaaf"), "{debug}");
        assert!(debug.contains("tim"), "{debug}");
    }
    check(Plain::new("tim", "tanstaaftanstaaf").with_authzid("tim"));
    check(Login::new("tim", "tanstaaftanstaaf"));
    check(CramMd5::new("tim", "tanstaaftanstaaf"));
    check(XOAuth2::new("tim", "tanstaaftanstaaf"));
    check(XOAuth2::two_step("tim", "tanstaaftanstaaf"));
    check(OAuthBearer::new("tim", "tanstaaftanstaaf"));
    check(Scram::with_nonce(ScramHash::Sha1, "tim", "tanstaaftanstaaf", "cnonce").unwrap());
    check(
        Scram::with_nonce(ScramHash::Sha256, "tim", "tanstaaftanstaaf", "cnonce")
            .unwrap()
            .with_channel_binding(ChannelBinding::TlsExporter(b"tanstaaftanstaaf".to_vec())),
    );
}

#[test]
fn step_after_completion_is_unexpected() {
    let mut ms = all_mechanisms();
    // Drive each to its completed state with the shortest valid exchange.
    for m in ms.iter_mut() {
        let ir = m.initial_response().unwrap();
        match m.name() {
            "PLAIN" | "OAUTHBEARER" => assert!(ir.is_some()),
            "LOGIN" => {
                m.step(b"Username:").unwrap();
                m.step(b"Password:").unwrap();
            }
            "CRAM-MD5" => {
                m.step(b"<1.2@x>").unwrap();
            }
            "XOAUTH2" => {
                if ir.is_none() {
                    m.step(b"").unwrap();
                }
            }
            _ => continue, // SCRAM: covered by the vector tests
        }
        m.finish().unwrap();
        if m.name().contains("OAUTH") {
            // OAuth: a challenge after the token is the error document,
            // acknowledged once...
            m.step(b"{}").unwrap();
        }
        // ...and nothing is answered after completion.
        assert_eq!(
            m.step(b""),
            Err(SaslError::UnexpectedChallenge),
            "{}",
            m.name()
        );
    }
}

/// Deterministic pseudo-random challenges through every mechanism: errors
/// are fine, panics are not.
#[test]
fn garbage_never_panics() {
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let fragments: [&[u8]; 12] = [
        b"r=",
        b"s=",
        b"i=",
        b"v=",
        b"e=",
        b"m=",
        b",",
        b"=",
        b"tanstaaftanstaafnonce",
        b"QSXCR+Q6sek8bf92",
        b"4096",
        b"\xff",
    ];
    for _ in 0..300 {
        for mut m in all_mechanisms() {
            let _ = m.initial_response();
            for _ in 0..4 {
                let mut challenge = Vec::new();
                for _ in 0..(next() % 8) {
                    let r = next();
                    if r % 3 == 0 {
                        challenge.push(r as u8);
                    } else {
                        challenge.extend_from_slice(fragments[(r % 12) as usize]);
                    }
                }
                let _ = m.step(&challenge);
            }
            let _ = m.finish();
            let _ = m.server_error();
        }
    }
}

//! The fuzz targets' checks on the stable toolchain: replays every file of
//! `fuzz/corpus/<target>/` and every regression input
//! `pop3-proto/testdata/<target>-<name>.bin` through the same check
//! functions the cargo-fuzz targets run (`fuzz/src/checks.rs`, included here
//! with `#[path]`; it depends only on the public API and std).
//!
//! The seed corpus is generated from the transcripts at the bottom of this
//! file and checked to be current by `seed_corpus_is_up_to_date`.

#[path = "../../fuzz/src/checks.rs"]
mod checks;
#[path = "../../fuzz/src/reference.rs"]
mod reference;

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use checks::*;
use reference as r;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `check` on every file; reports all failing files at once.
fn replay(files: &[PathBuf], check: Check) {
    let mut failed = Vec::new();
    for f in files {
        let data = fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
            failed.push(f.display().to_string());
        }
    }
    assert!(failed.is_empty(), "check failed on {failed:#?}");
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    v.sort();
    v
}

fn corpus(target: &str) {
    let files = files_in(&root().join("fuzz/corpus").join(target));
    assert!(!files.is_empty(), "empty corpus for {target}");
    replay(&files, check_for(target));
}

#[test]
fn corpus_decoder_split() {
    corpus("decoder_split");
}

#[test]
fn corpus_client_session() {
    corpus("client_session");
}

#[test]
fn corpus_body_roundtrip() {
    corpus("body_roundtrip");
}

#[test]
fn corpus_command_roundtrip() {
    corpus("command_roundtrip");
}

#[test]
fn corpus_command_build() {
    corpus("command_build");
}

#[test]
fn corpus_line_parsers() {
    corpus("line_parsers");
}

#[test]
fn corpus_sasl_challenges() {
    corpus("sasl_challenges");
}

/// Every `testdata/<target>-<name>.bin`; a `.bin` naming no target fails.
#[test]
fn all_regression_files() {
    let dir = root().join("pop3-proto/testdata");
    for f in files_in(&dir) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".bin") {
            continue;
        }
        let target = TARGETS
            .iter()
            .map(|(t, _)| *t)
            .find(|t| name.starts_with(&format!("{t}-")))
            .unwrap_or_else(|| panic!("{name}: regression files are named <target>-<name>.bin"));
        replay(&[f], check_for(target));
    }
}

/// One named test per regression input (STYLE.md §6.8).
macro_rules! regression {
    ($($test:ident: $target:literal, $file:literal;)*) => {$(
        #[test]
        fn $test() {
            check_for($target)(include_bytes!(concat!("../testdata/", $file)));
        }
    )*};
}

regression! {
    // A line of exactly max_line_len whose CR arrived before its LF was
    // refused as too long (framing.rs next_line; fixed in 6ed074b).
    regression_cr_at_line_limit_split: "decoder_split", "decoder_split-cr-at-line-limit-split.bin";
    // +OK to STLS followed by injected bytes in the same read lost the Ok
    // event before the StlsInjection error (client.rs ok_line; fixed in 6ed074b).
    regression_stls_ok_lost_with_injection: "decoder_split", "decoder_split-stls-ok-lost-with-injection.bin";
    // A mechanism refused a malformed challenge (the core queued "*"), and
    // the server's -ERR arrived in the same read: the stale "*" was still
    // sent with no AUTH in flight (client.rs: a finished AUTH drops any
    // unsent SASL line). Found by the CI fuzz smoke run.
    regression_sasl_cancel_after_auth_answered: "client_session", "client_session-sasl-cancel-after-auth-answered.bin";
    // PASS answered -ERR with garbage behind it in the same read, STAT and
    // more queued: whole, the garbage was called unsolicited before the
    // queued commands were Rejected; byte by byte, after. Queued commands
    // that cannot run are now rejected first (client.rs status_step /
    // next_sendable). Found by the fuzz smoke run.
    regression_unsolicited_after_rejected_commands: "decoder_split", "decoder_split-unsolicited-after-rejected-commands.bin";
}

// ---------------------------------------------------------------------------
// The reference implementations themselves
// ---------------------------------------------------------------------------

#[test]
fn reference_hashes_match_published_vectors() {
    assert_eq!(r::hex(&r::md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(
        r::hex(&r::md5(b"The quick brown fox jumps over the lazy dog")),
        "9e107d9d372bb6826bd81d3542a419d6"
    );
    assert_eq!(
        r::hex(&r::sha1(b"abc")),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    assert_eq!(
        r::hex(&r::sha256(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let long = vec![b'a'; 1000];
    assert_eq!(
        r::hex(&r::sha1(&long)),
        "291e9a6c66994949b57ba5e650361e98fc36b1ba"
    );
    // RFC 2202 / RFC 4231 HMAC test case 2.
    assert_eq!(
        r::hex(&r::hmac(r::md5, b"Jefe", b"what do ya want for nothing?")),
        "750c783e6ab0b503eaa86e310a5db738"
    );
    assert_eq!(
        r::hex(&r::hmac(r::sha1, b"Jefe", b"what do ya want for nothing?")),
        "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
    );
    assert_eq!(
        r::hex(&r::hmac(
            r::sha256,
            b"Jefe",
            b"what do ya want for nothing?"
        )),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    // RFC 6070 PBKDF2-HMAC-SHA1.
    assert_eq!(
        r::hex(&r::pbkdf2_first_block(r::sha1, b"password", b"salt", 2)),
        "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"
    );
    // RFC 1939 §7 APOP and RFC 2195 CRAM-MD5.
    assert_eq!(
        r::hex(&r::md5(b"<1896.697170952@dbc.mtview.ca.us>tanstaaf")),
        "c4c9334bac560ecc979e58001b3e22fb"
    );
    assert_eq!(
        r::hex(&r::hmac(
            r::md5,
            b"tanstaaftanstaaf",
            b"<1896.697170952@postoffice.reston.mci.net>"
        )),
        "b913a602c7eda7a495b4e6e7334d3890"
    );
}

#[test]
fn reference_scram_server_matches_rfc5802() {
    let server = r::ScramServer {
        hash: r::sha1,
        password: b"pencil".to_vec(),
        salt: r::base64_decode(b"QSXCR+Q6sek8bf92", false).unwrap(),
        iterations: 4096,
    };
    let sig = server
        .verify(
            "n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        )
        .expect("RFC 5802 proof verifies");
    assert_eq!(r::base64_encode(&sig), "rmF9pqV8S7suAoZWja4dJRkFsKQ=");
}

#[test]
fn reference_base64_and_command_parser() {
    for data in [
        &b""[..],
        b"f",
        b"fo",
        b"foo",
        b"foob",
        b"fooba",
        b"foobar",
        b"\0\xff\xfe",
    ] {
        let e = r::base64_encode(data);
        assert_eq!(r::base64_decode(e.as_bytes(), false).as_deref(), Some(data));
        assert_eq!(
            r::base64_decode(e.trim_end_matches('=').as_bytes(), true).as_deref(),
            Some(data)
        );
    }
    assert_eq!(
        r::base64_decode(b"Zm9v", false).as_deref(),
        Some(&b"foo"[..])
    );
    assert!(r::base64_decode(b"Zm9", false).is_none());
    assert!(r::base64_decode(b"Zh==", false).is_none(), "non-canonical");
    use r::ServerCmd as S;
    assert_eq!(r::parse_command(b"RETR 1\r\n"), Ok(S::Retr(1)));
    assert_eq!(
        r::parse_command(b"PASS a b\r\n"),
        Ok(S::Pass(b"a b".to_vec()))
    );
    assert_eq!(
        r::parse_command(b"AUTH PLAIN =\r\n"),
        Ok(S::Auth {
            mechanism: b"PLAIN".to_vec(),
            initial: Some(vec![])
        })
    );
    for bad in [
        &b"RETR 0\r\n"[..],
        b"RETR 1\n",
        b"RETR  1\r\n",
        b"STAT\r\n\r\n",
        b"USER a\rb\r\n",
        b"NOPE\r\n",
    ] {
        assert!(
            r::parse_command(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

// ---------------------------------------------------------------------------
// Seed corpus
// ---------------------------------------------------------------------------

const RFC1939_TIMESTAMP: &str = "<1896.697170952@dbc.mtview.ca.us>";

/// The RFC 1939 §10 example session, server side.
const RFC1939_SERVER: &[u8] = b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n\
+OK mrose's maildrop has 2 messages (320 octets)\r\n\
+OK 2 320\r\n\
+OK 2 messages (320 octets)\r\n\
1 120\r\n\
2 200\r\n\
.\r\n\
+OK 120 octets\r\n\
Subject: first\r\n\
\r\n\
The POP3 server sends message 1.\r\n\
.\r\n\
+OK message 1 deleted\r\n\
+OK 200 octets\r\n\
Subject: second\r\n\
\r\n\
..a stuffed dot line\r\n\
.\r\n\
+OK message 2 deleted\r\n\
+OK dewey POP3 server signing off (maildrop empty)\r\n";

fn rfc1939_commands() -> Vec<CmdSpec> {
    vec![
        CmdSpec::Apop {
            user: "mrose".into(),
            timestamp: RFC1939_TIMESTAMP.into(),
            secret: "tanstaaf".into(),
        },
        CmdSpec::Stat,
        CmdSpec::List(None),
        CmdSpec::Retr(1),
        CmdSpec::Dele(1),
        CmdSpec::Retr(2),
        CmdSpec::Dele(2),
        CmdSpec::Quit,
    ]
}

const DOVECOT_GREETING: &[u8] = b"+OK Dovecot (Debian) ready.\r\n";
const DOVECOT_CAPA: &[u8] = b"+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nSTLS\r\nUSER\r\nSASL PLAIN LOGIN SCRAM-SHA-1 SCRAM-SHA-256\r\n.\r\n";

/// A Dovecot-style session: CAPA, login, pipelined UIDL / LIST / RETR, QUIT.
fn dovecot_server() -> Vec<u8> {
    [
        DOVECOT_GREETING,
        DOVECOT_CAPA,
        b"+OK\r\n+OK Logged in.\r\n",
        b"+OK\r\n1 000000015a6b2c1d\r\n2 000000025a6b2c1d\r\n.\r\n",
        b"+OK 2 messages:\r\n1 512\r\n2 4\r\n.\r\n",
        b"+OK 512 octets\r\nFrom: a@example.org\r\nSubject: dots\r\n\r\n..\r\n...\r\n.. leading\r\nend\r\n.\r\n",
        b"-ERR [IN-USE] Couldn't open INBOX: Mailbox is locked\r\n",
        b"+OK Logging out.\r\n",
    ]
    .concat()
}

fn dovecot_commands() -> Vec<CmdSpec> {
    vec![
        CmdSpec::Capa,
        CmdSpec::User("alice".into()),
        CmdSpec::Pass("s3cret pass".into()),
        CmdSpec::Uidl(None),
        CmdSpec::List(None),
        CmdSpec::Retr(1),
        CmdSpec::Dele(2),
        CmdSpec::Quit,
    ]
}

fn decoder_seeds() -> Seeds {
    let d = |config: [u8; 2], commands: Vec<CmdSpec>, eof: bool, cuts: Vec<u16>, server: &[u8]| {
        DecoderInput {
            config: ConfigSpec(config),
            commands,
            eof,
            cuts,
            server: server.to_vec(),
        }
        .encode()
    };
    let login = || vec![CmdSpec::User("u".into()), CmdSpec::Pass("p".into())];
    vec![
        ("rfc1939-session", d([0, 0], rfc1939_commands(), true, vec![5, 60, 61, 200, 333], RFC1939_SERVER)),
        ("dovecot-pipelined", d([0, 0], dovecot_commands(), true, vec![30, 100, 101, 102, 250, 400], &dovecot_server())),
        ("dovecot-always-pipelined", d([2, 0], dovecot_commands(), false, vec![1, 2, 3, 77], &dovecot_server())),
        (
            "lf-only-body-dots",
            d([0, 0], [login(), vec![CmdSpec::Top(1, 2), CmdSpec::Noop]].concat(), true, vec![12, 13, 14],
              b"+OK\n+OK\n+OK\n+OK top\n..\n.x\n. \n..\n\n.\n+OK\n"),
        ),
        ("greeting-refused", d([0, 0], vec![CmdSpec::Capa], true, vec![], b"-ERR [SYS/TEMP] too many connections\r\n")),
        ("gibberish-greeting", d([0, 0], vec![CmdSpec::Capa], true, vec![3], b"* OK IMAP4rev1 ready\r\n")),
        (
            "stls-accepted",
            d([0, 0], vec![CmdSpec::Capa, CmdSpec::Stls, CmdSpec::Capa], false, vec![40],
              b"+OK\r\n+OK\r\nSTLS\r\n.\r\n+OK Begin TLS negotiation now.\r\n"),
        ),
        (
            "line-near-the-limit",
            d([0, 5], vec![CmdSpec::Capa], true, vec![7, 8], b"+OK 123\r\n+OK\r\nTOP\r\n.\r\n"),
        ),
        (
            "listings-and-truncated-body",
            d([4, 0], [login(), vec![CmdSpec::Uidl(None), CmdSpec::Lang(None), CmdSpec::Retr(1)]].concat(), true, vec![20, 21],
              b"+OK\r\n+OK\r\n+OK\r\n+OK\r\n1 a b c\r\n\r\n2 \xff\r\n.\r\n+OK\r\nen English\r\n..es Espa\xc3\xb1ol\r\n.\r\n+OK\r\npartial body\r\n"),
        ),
        (
            "err-mid-pipeline",
            d([2, 0], [login(), vec![CmdSpec::Stat, CmdSpec::List(Some(9)), CmdSpec::Uidl(Some(1)), CmdSpec::Noop]].concat(), true, vec![],
              b"+OK\r\n+OK\r\n+OK\r\n+OK 1 5\r\n-ERR no such message\r\n+OK 1 whqtswO00WBw418f9t5JxYwZ\r\n+OK\r\n"),
        ),
    ]
}

fn session_seeds() -> Seeds {
    use Action as A;
    let s = |config: [u8; 2], actions: Vec<Action>| {
        SessionInput {
            config: ConfigSpec(config),
            actions,
        }
        .encode()
    };
    let feed = |b: &[u8]| A::Feed(b.to_vec());
    let b64line = |data: &[u8]| A::Feed(format!("+ {}\r\n", r::base64_encode(data)).into_bytes());
    vec![
        (
            "rfc1939-apop",
            s([0, 0], vec![
                feed(b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n"),
                A::Apop { user: "mrose".into(), secret: "tanstaaf".into() },
                A::Enqueue(CmdSpec::Stat),
                A::Enqueue(CmdSpec::List(None)),
                feed(b"+OK mrose's maildrop has 2 messages (320 octets)\r\n"),
                feed(b"+OK 2 320\r\n"),
                feed(b"+OK 2 messages (320 octets)\r\n1 120\r\n2 200\r\n.\r\n"),
                A::Enqueue(CmdSpec::Retr(1)),
                feed(b"+OK 120 octets\r\nhello\r\n..dot\r\n.\r\n"),
                A::Enqueue(CmdSpec::Dele(1)),
                A::Enqueue(CmdSpec::Quit),
                feed(b"+OK message 1 deleted\r\n"),
                feed(b"+OK dewey POP3 server signing off\r\n"),
                A::Enqueue(CmdSpec::Noop),
            ]),
        ),
        (
            "dovecot-capa-auth-plain",
            s([0, 0], vec![
                A::Enqueue(CmdSpec::Capa),
                feed(DOVECOT_GREETING),
                feed(DOVECOT_CAPA),
                A::Authenticate(MechSpec::Plain { user: "alice".into(), pass: "s3cret".into(), authzid: String::new() }),
                feed(b"+OK Logged in.\r\n"),
                A::Enqueue(CmdSpec::Uidl(None)),
                A::Enqueue(CmdSpec::Retr(1)),
                A::Enqueue(CmdSpec::Quit),
                feed(b"+OK\r\n1 000000015a6b2c1d\r\n.\r\n+OK\r\nbody\r\n.\r\n"),
                // QUIT is a barrier: it goes out only now, so its reply
                // comes in a later read (in the same one it would be
                // unsolicited, as in "unsolicited-after-pass").
                feed(b"+OK Logging out.\r\n"),
            ]),
        ),
        (
            // Issue 11 item 3: PASS answered "+OK\r\n+OK 7 7777\r\n" in one
            // read; the second line answers nothing and must never become
            // STAT's reply.
            "unsolicited-after-pass",
            s([0, 0], vec![
                feed(b"+OK ready\r\n"),
                A::Enqueue(CmdSpec::User("u".into())),
                feed(b"+OK\r\n"),
                A::Enqueue(CmdSpec::Pass("p".into())),
                feed(b"+OK\r\n+OK 7 7777\r\n"),
                A::Enqueue(CmdSpec::Stat),
                A::Canned(3),
            ]),
        ),
        (
            "scram-sha1-rfc5802",
            s([0, 0], vec![
                feed(b"+OK ready\r\n"),
                A::Authenticate(MechSpec::Scram { sha256: false, user: "user".into(), pass: "pencil".into(), authzid: String::new(), binding: 0, cb_data: vec![] }),
                b64line(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"),
                b64line(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ="),
                feed(b"+OK authenticated\r\n"),
                A::Enqueue(CmdSpec::Stat),
                A::Canned(3),
            ]),
        ),
        (
            "scram-bad-signature",
            s([0, 0], vec![
                feed(b"+OK ready\r\n"),
                A::Authenticate(MechSpec::Scram { sha256: false, user: "user".into(), pass: "pencil".into(), authzid: String::new(), binding: 0, cb_data: vec![] }),
                b64line(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"),
                b64line(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
                feed(b"+OK authenticated anyway\r\n"),
            ]),
        ),
        (
            "cram-md5-rfc2195",
            s([0, 0], vec![
                A::Canned(0),
                A::Authenticate(MechSpec::CramMd5 { user: "tim".into(), pass: "tanstaaftanstaaf".into() }),
                A::Canned(11),
                A::Canned(0),
                A::Enqueue(CmdSpec::Quit),
                A::Canned(0),
            ]),
        ),
        (
            "login-prompts",
            s([0, 0], vec![
                A::Canned(0),
                A::Authenticate(MechSpec::Login { user: "tim".into(), pass: "secret".into() }),
                b64line(b"Username:"),
                b64line(b"Password:"),
                feed(b"+OK\r\n"),
            ]),
        ),
        (
            "xoauth2-json-error",
            s([0, 0], vec![
                A::Canned(0),
                A::Authenticate(MechSpec::XOAuth2 { user: "someuser@example.com".into(), token: "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg".into(), two_step: false }),
                b64line(br#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#),
                feed(b"-ERR [AUTH] Invalid credentials\r\n"),
                A::Authenticate(MechSpec::OAuthBearer { user: "u@example.com".into(), token: "tok".into(), host: Some("pop.example.com".into()), port: Some(995) }),
                A::Canned(0),
            ]),
        ),
        (
            "stls-upgrade",
            s([0, 0], vec![
                A::Enqueue(CmdSpec::Capa),
                A::Enqueue(CmdSpec::Stls),
                feed(b"+OK ready <1.2@x>\r\n"),
                A::Canned(9),
                feed(b"+OK Begin TLS\r\n"),
                A::TlsEstablished,
                A::Enqueue(CmdSpec::Capa),
                A::Apop { user: "u".into(), secret: "s".into() },
                A::Canned(9),
                A::Enqueue(CmdSpec::User("u".into())),
                A::Enqueue(CmdSpec::Pass("p".into())),
                A::Canned(0),
                A::Canned(0),
                A::Eof,
            ]),
        ),
        (
            "manual-auth-continuations",
            s([0, 0], vec![
                A::Canned(0),
                A::Enqueue(CmdSpec::Auth { mechanism: "x-foo".into(), initial: Some(vec![0x61; 200]) }),
                A::Canned(6),
                b64line(b"challenge"),
                A::AuthRespond(b"answer".to_vec()),
                b64line(b"again"),
                A::AuthCancel,
                A::Canned(1),
                A::Enqueue(CmdSpec::Quit),
                A::Canned(0),
            ]),
        ),
        (
            "eof-mid-body",
            s([2, 0], vec![
                A::Canned(0),
                A::Enqueue(CmdSpec::User("u".into())),
                A::Enqueue(CmdSpec::Pass("p".into())),
                A::Enqueue(CmdSpec::Retr(1)),
                A::Enqueue(CmdSpec::Retr(2)),
                A::Canned(0),
                A::Canned(0),
                A::Canned(7),
                feed(b"+OK\r\nhalf a mess"),
                A::Eof,
            ]),
        ),
    ]
}

fn body_seeds() -> Seeds {
    let b = |top: bool, lf: bool, pipelined: bool, cuts: Vec<u16>, body: &[u8]| {
        BodyInput {
            top,
            lf_terminator: lf,
            pipelined,
            cuts,
            body: body.to_vec(),
        }
        .encode()
    };
    vec![
        (
            "rfc822-dot-lines",
            b(
                false,
                false,
                false,
                vec![40, 41, 42, 60],
                b"From: a@example.org\r\nSubject: dots\r\n\r\n.\r\n..\r\n.x\r\n. \r\nend.\r\n",
            ),
        ),
        (
            "lf-only",
            b(false, true, true, vec![10], b"line\n.\n..\n\nlast\n"),
        ),
        (
            "no-final-newline",
            b(true, false, false, vec![], b"no newline at the end"),
        ),
        ("empty", b(false, false, false, vec![], b"")),
        (
            "dot-cr-edges",
            b(
                false,
                false,
                true,
                vec![44, 45, 46, 47],
                b".\rx\r\n.\r\r\n\r.\r\n\n.\r",
            ),
        ),
        (
            "binary",
            b(
                true,
                true,
                false,
                vec![3, 7],
                b"\0\xff\xfe\r\n.\0\n\xc3\xa9.\r\n",
            ),
        ),
    ]
}

fn command_seeds() -> Seeds {
    let c = |spec: CmdSpec| CommandInput(spec).encode();
    let long = "x".repeat(248);
    vec![
        ("user", c(CmdSpec::User("mrose".into()))),
        ("user-248", c(CmdSpec::User(long.clone()))),
        ("user-249-too-long", c(CmdSpec::User(format!("{long}y")))),
        (
            "user-crlf-injection",
            c(CmdSpec::User("a\r\nDELE 1".into())),
        ),
        (
            "pass-spaces",
            c(CmdSpec::Pass("secret pass\twith tab".into())),
        ),
        (
            "apop-rfc1939",
            c(CmdSpec::Apop {
                user: "mrose".into(),
                timestamp: RFC1939_TIMESTAMP.into(),
                secret: "tanstaaf".into(),
            }),
        ),
        ("rpop", c(CmdSpec::Rpop("alice".into()))),
        (
            "auth-plain-ir",
            c(CmdSpec::Auth {
                mechanism: "plain".into(),
                initial: Some(b"\0tim\0tanstaaftanstaaf".to_vec()),
            }),
        ),
        (
            "auth-empty-ir",
            c(CmdSpec::Auth {
                mechanism: "EXTERNAL".into(),
                initial: Some(vec![]),
            }),
        ),
        (
            "auth-ir-183-fits",
            c(CmdSpec::Auth {
                mechanism: "X".into(),
                initial: Some(vec![b'a'; 183]),
            }),
        ),
        (
            "auth-ir-184-deferred",
            c(CmdSpec::Auth {
                mechanism: "X".into(),
                initial: Some(vec![b'a'; 184]),
            }),
        ),
        ("top-max", c(CmdSpec::Top(u32::MAX, u32::MAX))),
        ("retr-zero", c(CmdSpec::Retr(0))),
        ("list-n", c(CmdSpec::List(Some(2)))),
        ("uidl", c(CmdSpec::Uidl(None))),
        ("lang-tag", c(CmdSpec::Lang(Some("de".into())))),
        ("lang-non-ascii", c(CmdSpec::Lang(Some("d\u{e9}".into())))),
        ("stls", c(CmdSpec::Stls)),
    ]
}

fn lines_seeds() -> Seeds {
    let l = |which: u8, lenient: bool, lines: &[&[u8]]| {
        LinesInput {
            which,
            lenient,
            lines: lines.iter().map(|x| x.to_vec()).collect(),
        }
        .encode()
    };
    let g: &[u8] = b"POP3 server ready <1896.697170952@dbc.mtview.ca.us>";
    vec![
        ("stat", l(0, false, &[g, b"2 320"])),
        (
            "list-one",
            l(1, false, &[b"[SYS/TEMP] <a@b> <c@d>", b"1 120 octets"]),
        ),
        (
            "uidl-one",
            l(2, false, &[b"ready", b"1 whqtswO00WBw418f9t5JxYwZ"]),
        ),
        (
            "list",
            l(3, false, &[b"x", b"1 120", b"2 200", b"", b"  3\t4  "]),
        ),
        (
            "uidl-lenient",
            l(
                4,
                true,
                &[b"x", b"1 a uid with spaces ", b"2 \xff\xfe", b"3\twhq"],
            ),
        ),
        (
            "capa-rfc2449",
            l(
                5,
                false,
                &[
                    b"Dovecot ready.",
                    b"TOP",
                    b"USER",
                    b"SASL CRAM-MD5 KERBEROS_V4",
                    b"RESP-CODES",
                    b"LOGIN-DELAY 900",
                    b"PIPELINING",
                    b"EXPIRE 60",
                    b"UIDL",
                    b"IMPLEMENTATION Shlemazle-Plotz-v302",
                    b"UTF8 USER",
                    b"LANG",
                    b"STLS",
                    b"AUTH-RESP-CODE",
                    b"EXPIRE NEVER USER",
                    b"X-VENDOR foo bar",
                ],
            ),
        ),
        (
            // The quirks policy: kept raw, never an error.
            "capa-quirks",
            l(
                5,
                false,
                &[
                    b"+OKready",
                    b"EXPIRE soon",
                    b"LOGIN-DELAY 10 USER extra",
                    b"UTF8 ACCEPT",
                    b"EXPIRENEVER",
                    b"PIPELINING yes",
                    b"EXPIRE 99999999999",
                    b"SASL A B C D E F G H I J K L M N O P Q R S T U V W X Y Z 0 1 2 3 4 5 6 7 8 9 AA BB CC DD EE FF GG HH II JJ KK LL MM NN OO PP QQ RR SS TT UU VV WW XX YY ZZ 00 11 22 33 44 55 66 77 88 99",
                ],
            ),
        ),
        (
            "lang-rfc6856",
            l(
                6,
                false,
                &[
                    b"x",
                    b"en English",
                    b"es Espa\xc3\xb1ol",
                    b"i-default  Default",
                ],
            ),
        ),
        (
            "err-in-use",
            l(
                7,
                false,
                &[b"<>", b"[IN-USE] Do you have another POP session running?"],
            ),
        ),
        ("err-bad-code", l(7, false, &[b"<<a@b>", b"[SYS//TEMP] x"])),
    ]
}

fn sasl_seeds() -> Seeds {
    let ch = |mech: MechSpec, initial: bool, challenges: &[&[u8]]| {
        SaslInput::Challenges {
            mech,
            initial,
            challenges: challenges.iter().map(|c| c.to_vec()).collect(),
        }
        .encode()
    };
    let scram = |sha256: bool, through_client: bool, final_kind: FinalKind, final_bytes: &[u8]| {
        SaslInput::Scram {
            sha256,
            pass: "pencil".into(),
            nonce_suffix: "3rfcNHYJY1ZVvWVs7j".into(),
            salt: r::base64_decode(b"QSXCR+Q6sek8bf92", false).unwrap(),
            iterations: 15,
            extensions: String::new(),
            final_kind,
            final_bytes: final_bytes.to_vec(),
            through_client,
        }
        .encode()
    };
    let scram_mech = MechSpec::Scram {
        sha256: true,
        user: "user".into(),
        pass: "pencil".into(),
        authzid: "admin".into(),
        binding: 3,
        cb_data: vec![7; 32],
    };
    vec![
        (
            "cram-md5",
            ch(
                MechSpec::CramMd5 {
                    user: "tim".into(),
                    pass: "tanstaaftanstaaf".into(),
                },
                false,
                &[b"<1896.697170952@postoffice.reston.mci.net>", b"again"],
            ),
        ),
        (
            "login",
            ch(
                MechSpec::Login {
                    user: "tim".into(),
                    pass: "secret".into(),
                },
                false,
                &[b"Username:", b"Password:", b"more?"],
            ),
        ),
        (
            "plain-empty-challenge",
            ch(
                MechSpec::Plain {
                    user: "tim".into(),
                    pass: "pw".into(),
                    authzid: "admin".into(),
                },
                false,
                &[b"", b""],
            ),
        ),
        (
            "xoauth2-two-step",
            ch(
                MechSpec::XOAuth2 {
                    user: "u@example.com".into(),
                    token: "ya29.token".into(),
                    two_step: true,
                },
                false,
                &[b"", br#"{"status":"401"}"#, b""],
            ),
        ),
        (
            "oauthbearer",
            ch(
                MechSpec::OAuthBearer {
                    user: "u,=x".into(),
                    token: "tok".into(),
                    host: Some("h".into()),
                    port: Some(110),
                },
                true,
                &[br#"{"status":"invalid_token"}"#],
            ),
        ),
        (
            "scram-server-first-arbitrary",
            ch(
                scram_mech,
                true,
                &[
                    b"r=fyko+d2lbbFgONRv9qkxdawLxyz,s=QSXCR+Q6sek8bf92,i=4096,ext=1",
                    b"v=AAAA",
                ],
            ),
        ),
        (
            "scram-e-error",
            ch(
                MechSpec::Scram {
                    sha256: false,
                    user: "user".into(),
                    pass: "pencil".into(),
                    authzid: String::new(),
                    binding: 1,
                    cb_data: vec![],
                },
                true,
                &[b"e=invalid-proof"],
            ),
        ),
        ("scram-right", scram(false, false, FinalKind::Right, b"")),
        (
            "scram-right-unpadded-sha256",
            scram(true, false, FinalKind::RightUnpadded, b""),
        ),
        (
            "scram-flipped-client",
            scram(true, true, FinalKind::Flipped(77), b""),
        ),
        (
            "scram-arbitrary",
            scram(false, false, FinalKind::Arbitrary, b"\x01\x02"),
        ),
        (
            "scram-raw-client",
            scram(false, true, FinalKind::Raw, b"e=other-error"),
        ),
        (
            "scram-right-client",
            scram(true, true, FinalKind::Right, b""),
        ),
    ]
}

/// `command_build` seeds: ordinary arguments, injections, and lengths at
/// the limits (248 octets for USER/PASS/LANG, 215 for the APOP name).
fn build_seeds() -> Seeds {
    let b = |t: [&str; 3], initial: Option<&[u8]>, nums: [u32; 2]| {
        BuildInput {
            texts: t.map(String::from),
            initial: initial.map(<[u8]>::to_vec),
            nums,
        }
        .encode()
    };
    let x248 = "x".repeat(248);
    let x249 = "x".repeat(249);
    let x215 = "u".repeat(215);
    let x216 = "u".repeat(216);
    vec![
        (
            "rfc1939",
            b(["mrose", RFC1939_TIMESTAMP, "tanstaaf"], None, [1, 10]),
        ),
        (
            "crlf-injection",
            b(
                ["a\r\nDELE 1", "x\r\nDELE 1", "PLAIN\r\n"],
                Some(b"\r\n"),
                [0, 0],
            ),
        ),
        ("spaces", b(["a b c", "secret pass", "de CH"], None, [7, 0])),
        (
            "lengths-248-249",
            b([&x248, &x249, "*"], None, [u32::MAX, u32::MAX]),
        ),
        ("apop-user-215", b([&x215, "<1.2@h>", "s"], None, [1, 1])),
        ("apop-user-216", b([&x216, "<1.2@h>", "s"], None, [1, 1])),
        (
            "digest-text",
            b(
                [
                    "c4c9334bac560ecc979e58001b3e22fb",
                    "C4C9334BAC560ECC979E58001B3E22FB",
                    "c4c9334bac560ecc979e58001b3e22f",
                ],
                None,
                [2, 3],
            ),
        ),
        (
            "auth-long-initial-response",
            b(
                ["XOAUTH2", "A23456789012345678901", "scram-sha-256"],
                Some(&[b'a'; 250]),
                [3, 4],
            ),
        ),
        (
            "nul-and-utf8",
            b(["a\0b", "pässwörd", "dé"], Some(b""), [5, 0]),
        ),
    ]
}

/// Named seed inputs of one target.
type Seeds = Vec<(&'static str, Vec<u8>)>;

fn all_seeds() -> Vec<(&'static str, Seeds)> {
    vec![
        ("decoder_split", decoder_seeds()),
        ("client_session", session_seeds()),
        ("body_roundtrip", body_seeds()),
        ("command_roundtrip", command_seeds()),
        ("command_build", build_seeds()),
        ("line_parsers", lines_seeds()),
        ("sasl_challenges", sasl_seeds()),
    ]
}

/// The seeds pass their checks (also when the corpus directory was not
/// regenerated after a change here).
#[test]
fn seeds_pass() {
    for (target, seeds) in all_seeds() {
        for (name, data) in seeds {
            if catch_unwind(AssertUnwindSafe(|| check_for(target)(&data))).is_err() {
                panic!("seed {target}/{name} fails its check");
            }
        }
    }
}

/// The session seeds end where their transcripts say.
#[test]
fn session_seeds_reach_their_states() {
    use pop3_proto::{ProtocolError as P, SessionState as S};
    for (name, data) in session_seeds() {
        let got = client_session(&SessionInput::decode(&data));
        let ok = match name {
            "rfc1939-apop" | "dovecot-capa-auth-plain" | "cram-md5-rfc2195" | "stls-upgrade" => {
                got.state == S::Closed && got.error.is_none()
            }
            "scram-sha1-rfc5802" | "login-prompts" | "xoauth2-json-error" => {
                got.state == S::Transaction && got.error.is_none()
            }
            "scram-bad-signature" => {
                matches!(got.error, Some(P::Sasl(_))) && got.state == S::Authorization
            }
            "manual-auth-continuations" => got.state == S::Closed && got.error.is_none(),
            "eof-mid-body" => matches!(got.error, Some(P::TruncatedBody { .. })),
            "unsolicited-after-pass" => {
                matches!(got.error, Some(P::UnsolicitedResponse { .. }))
                    && got.state == S::Transaction
            }
            _ => panic!("no expectation for seed {name}"),
        };
        assert!(ok, "seed {name} ended as {got:?}");
    }
}

/// The committed seed corpus is exactly what the transcripts in this file
/// generate. With `POP3_WRITE_SEEDS=1` the files are (re)written instead:
/// `POP3_WRITE_SEEDS=1 cargo test -p pop3-proto --test fuzz_corpus seed_corpus`.
#[test]
fn seed_corpus_is_up_to_date() {
    let write = std::env::var_os("POP3_WRITE_SEEDS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (target, seeds) in all_seeds() {
        let dir = root().join("fuzz/corpus").join(target);
        if write {
            fs::create_dir_all(&dir).unwrap();
        }
        for (name, data) in seeds {
            let path = dir.join(format!("seed-{name}"));
            if write {
                fs::write(&path, &data).unwrap();
            } else if fs::read(&path).ok().as_deref() != Some(&data[..]) {
                stale.push(path);
            }
        }
    }
    assert!(
        stale.is_empty(),
        "seed files missing or stale (regenerate with POP3_WRITE_SEEDS=1): {stale:#?}"
    );
}

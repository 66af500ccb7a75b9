//! SASL exchanges as the providers document them, against scripted
//! servers: XOAUTH2 (Google one-line, Microsoft two-step, JSON error
//! dance), OAUTHBEARER, and SCRAM servers that fail to prove themselves.

use std::net::TcpStream;

use base64::Engine as _;
use pop3_blocking::{Client, Error};
use pop3_proto::sasl::{OAuthBearer, Scram, ScramHash, XOAuth2};
use pop3_proto::{ProtocolError, RespCode};
use pop3_testkit::{Script, Server};

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Connects to a scripted server; the scripted greeting is sent first.
/// The stream is treated as secure here: these tests are about the SASL
/// exchange, not the cleartext policy.
fn scripted(script: Script) -> (pop3_testkit::ServerHandle, Client<TcpStream>) {
    let server = Server::builder().script(script).start().unwrap();
    let s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let c = Client::new_secure(s).unwrap();
    (server, c)
}

const TOKEN: &str = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg";

#[test]
fn xoauth2_one_line_google() {
    let ir = format!("user=someuser@example.com\x01auth=Bearer {TOKEN}\x01\x01");
    let script = Script::new()
        .send_line("+OK ready")
        .expect_line(&format!("AUTH XOAUTH2 {}", b64(ir.as_bytes())))
        .send_line("+OK Welcome")
        .expect_line("CAPA")
        .send_line("-ERR no")
        .expect_line("QUIT")
        .send_line("+OK");
    let (server, mut c) = scripted(script);
    c.authenticate(Box::new(XOAuth2::new("someuser@example.com", TOKEN)))
        .unwrap();
    c.quit().unwrap();
    server.script_result().unwrap();
}

#[test]
fn xoauth2_two_step_microsoft_with_long_token() {
    // Microsoft 365 tokens are over 1,000 characters: too long for the
    // AUTH line, so the token follows the server's empty "+" prompt.
    let token = "E".repeat(1500);
    let resp = format!("user=someone@contoso.com\x01auth=Bearer {token}\x01\x01");
    let script = Script::new()
        .send_line("+OK ready")
        .expect_line("AUTH XOAUTH2")
        .send_line("+ ")
        .expect_line(&b64(resp.as_bytes()))
        .send_line("+OK User successfully authenticated.")
        .expect_line("CAPA")
        .send_line("+OK\r\nUSER\r\n.");
    let (server, mut c) = scripted(script);
    c.authenticate(Box::new(XOAuth2::two_step("someone@contoso.com", token)))
        .unwrap();
    server.script_result().unwrap();
}

#[test]
fn xoauth2_error_dance_reports_the_json() {
    let json = r#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#;
    let ir = format!("user=someuser@example.com\x01auth=Bearer {TOKEN}\x01\x01");
    let script = Script::new()
        .send_line("+OK ready")
        .expect_line(&format!("AUTH XOAUTH2 {}", b64(ir.as_bytes())))
        .send_line(&format!("+ {}", b64(json.as_bytes())))
        .expect_line("")
        .send_line("-ERR [AUTH] Invalid credentials");
    let (server, mut c) = scripted(script);
    let e = c
        .authenticate(Box::new(XOAuth2::new("someuser@example.com", TOKEN)))
        .unwrap_err();
    match &e {
        Error::Server { response, .. } => {
            assert_eq!(response.code, Some(RespCode::Auth));
            assert_eq!(response.sasl_detail.as_deref(), Some(json));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !format!("{e} {e:?}").contains(TOKEN),
        "token leaked into the error"
    );
    server.script_result().unwrap();
}

#[test]
fn oauthbearer_error_is_answered_with_0x01() {
    let json = r#"{"status":"invalid_token"}"#;
    let ir = format!("n,a=user@example.com,\x01auth=Bearer {TOKEN}\x01\x01");
    let script = Script::new()
        .send_line("+OK ready")
        .expect_line(&format!("AUTH OAUTHBEARER {}", b64(ir.as_bytes())))
        .send_line(&format!("+ {}", b64(json.as_bytes())))
        .expect_line("AQ==")
        .send_line("-ERR [AUTH] failed");
    let (server, mut c) = scripted(script);
    let e = c
        .authenticate(Box::new(OAuthBearer::new("user@example.com", TOKEN)))
        .unwrap_err();
    assert!(
        matches!(&e, Error::Server { response, .. } if response.sasl_detail.as_deref() == Some(json)),
        "{e:?}"
    );
    server.script_result().unwrap();
}

// RFC 7677 §3 exchange.
const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const CLIENT_FINAL: &str =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

/// The RFC 7677 exchange up to the client's final message.
fn scram_until_client_final() -> Script {
    Script::new()
        .send_line("+OK ready")
        .expect_line(&format!(
            "AUTH SCRAM-SHA-256 {}",
            b64(CLIENT_FIRST.as_bytes())
        ))
        .send_line(&format!("+ {}", b64(SERVER_FIRST.as_bytes())))
        .expect_line(&b64(CLIENT_FINAL.as_bytes()))
}

fn scram() -> Box<Scram> {
    Box::new(
        Scram::with_nonce(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO").unwrap(),
    )
}

#[test]
fn scram_sha256_rfc7677_exchange_succeeds() {
    let script = scram_until_client_final()
        .send_line(&format!("+ {}", b64(SERVER_FINAL.as_bytes())))
        .expect_line("")
        .send_line("+OK")
        .expect_line("CAPA")
        .send_line("-ERR");
    let (server, mut c) = scripted(script);
    c.authenticate(scram()).unwrap();
    server.script_result().unwrap();
}

#[test]
fn scram_wrong_server_signature_is_refused() {
    let script = scram_until_client_final()
        .send_line(&format!(
            "+ {}",
            b64(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        ))
        .expect_line("*")
        .send_line("-ERR [AUTH] cancelled");
    let (server, mut c) = scripted(script);
    let e = c.authenticate(scram()).unwrap_err();
    // The mechanism's reason travels with the server's -ERR to our "*".
    assert!(
        matches!(&e, Error::Server { response, .. }
            if response.sasl_detail.as_deref().is_some_and(|d| d.contains("failed to prove its identity"))),
        "{e:?}"
    );
    server.script_result().unwrap();
}

#[test]
fn scram_server_claiming_success_without_proof_poisons_the_session() {
    let script = scram_until_client_final().send_line("+OK trust me");
    let (server, mut c) = scripted(script);
    let e = c.authenticate(scram()).unwrap_err();
    assert!(
        matches!(e, Error::Protocol(ProtocolError::Sasl(_))),
        "{e:?}"
    );
    assert!(
        c.stat().is_err(),
        "a poisoned session must refuse further use"
    );
    server.script_result().unwrap();
}

//! SCRAM and SCRAM-PLUS end to end: the `pop3-blocking` client (through
//! its public `authenticate`) against the testkit's server-side SCRAM over
//! TLS 1.3 (`tls-exporter`) and TLS 1.2 (`tls-server-end-point`), with the
//! binding data extracted by `pop3_rustls::binding` and the method and GS2
//! flag chosen by `pop3_proto::login`.
#![cfg(feature = "tls")]

use base64::Engine as _;
use pop3_blocking::{Client, ConnectOptions, Error, TlsOptions, TlsPolicy};
use pop3_proto::login::{self, LoginMethod};
use pop3_proto::sasl::ChannelBinding;
use pop3_proto::CommandKind;
use pop3_testkit::{Mailbox, Server, ServerBuilder, ServerHandle};

const USER: &str = "alice";
const PASS: &str = "pencil";

type TlsClient = pop3_blocking::TcpClient;

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_default()
}

fn server(builder: ServerBuilder) -> ServerHandle {
    builder
        .user(USER, PASS)
        .mailbox(Mailbox::new().with("u1", "Subject: hi\r\n\r\nbody\r\n"))
        .start()
        .unwrap()
}

/// Connects with TLS (implicit, or STLS when `stls`) trusting the server's
/// test CA.
fn connect(server: &ServerHandle, stls: bool) -> TlsClient {
    let policy = if stls {
        TlsPolicy::Required
    } else {
        TlsPolicy::Implicit
    };
    let options = ConnectOptions::new()
        .policy(policy)
        .tls(TlsOptions::new().add_ca_pem(server.ca_cert_pem().unwrap().into_bytes()));
    Client::connect("127.0.0.1", server.port(), &options).unwrap()
}

/// A TLS 1.3 (implicit TLS) server offering every SCRAM, and a client.
fn tls13_all_scram() -> (ServerHandle, TlsClient) {
    let s = server(
        Server::builder()
            .implicit_tls(true)
            .sasl_mechanisms(all_scram()),
    );
    let c = connect(&s, false);
    (s, c)
}

fn binding(client: &TlsClient) -> Option<ChannelBinding> {
    pop3_rustls::binding::channel_binding(client.get_ref().tls_connection()?)
}

/// What automatic login does with binding data (as the session layer
/// calls it): plan knowing the data is there, build with the data.
fn plan_and_build(
    client: &TlsClient,
    binding: Option<&ChannelBinding>,
) -> Box<dyn pop3_proto::sasl::Mechanism> {
    let caps = client.capabilities();
    let method = login::plan_with(
        caps,
        Some(client.greeting()),
        true,
        false,
        binding.is_some(),
    );
    let Ok(LoginMethod::Sasl(name)) = method else {
        panic!("expected SASL, got {method:?}");
    };
    login::mechanism_with_binding(&name, USER, PASS, &[42; 18], binding).unwrap()
}

/// The binding bytes (for the `-PLUS` variants).
fn data(binding: &ChannelBinding) -> &[u8] {
    match binding {
        ChannelBinding::TlsExporter(d) | ChannelBinding::TlsServerEndPoint(d) => d,
        other => panic!("no binding data: {other:?}"),
    }
}

/// The decoded SASL lines the client sent after `AUTH <mechanism> ...`:
/// the initial response first.
fn client_sasl(server: &ServerHandle) -> (String, Vec<String>) {
    let t = &server.transcripts()[0];
    let text = String::from_utf8_lossy(&t.client).into_owned();
    let mut lines = text.split("\r\n").skip_while(|l| !l.starts_with("AUTH "));
    let auth = lines.next().expect("no AUTH sent").to_string();
    let mut words = auth.split(' ').skip(1);
    let mechanism = words.next().unwrap_or("").to_string();
    let mut sent = Vec::new();
    if let Some(ir) = words.next() {
        sent.push(String::from_utf8_lossy(&unb64(ir)).into_owned());
    }
    // Answers until the next command (an empty answer is an empty line).
    // `*` (cancel) is kept as it is.
    for l in lines.take_while(|l| !["CAPA", "QUIT", "STAT"].contains(l)) {
        match l {
            "*" => sent.push("*".to_string()),
            l => sent.push(String::from_utf8_lossy(&unb64(l)).into_owned()),
        }
    }
    (mechanism, sent)
}

/// The decoded `e=` the server sent, if any.
fn server_error(server: &ServerHandle) -> Option<String> {
    let t = &server.transcripts()[0];
    let text = String::from_utf8_lossy(&t.server).into_owned();
    text.split("\r\n")
        .filter_map(|l| l.strip_prefix("+ "))
        .map(|c| String::from_utf8_lossy(&unb64(c)).into_owned())
        .find(|c| c.starts_with("e="))
}

fn assert_auth_refused(result: Result<pop3_proto::Status, Error>, server_e: &str) {
    match result {
        Err(Error::Server {
            command: CommandKind::Auth,
            response,
        }) => {
            let detail = response.sasl_detail.unwrap_or_default();
            assert!(detail.contains(server_e), "{detail}");
            assert!(response.text.contains(server_e), "{}", response.text);
        }
        other => panic!("expected an AUTH -ERR, got {other:?}"),
    }
}

fn all_scram() -> [&'static str; 4] {
    [
        "SCRAM-SHA-1",
        "SCRAM-SHA-1-PLUS",
        "SCRAM-SHA-256",
        "SCRAM-SHA-256-PLUS",
    ]
}

#[test]
fn tls13_scram_sha256_plus_with_tls_exporter() {
    let (s, mut c) = tls13_all_scram();
    let b = binding(&c).expect("TLS 1.3 has exporter data");
    assert!(matches!(&b, ChannelBinding::TlsExporter(d) if d.len() == 32));
    let m = plan_and_build(&c, Some(&b));
    assert_eq!(m.name(), "SCRAM-SHA-256-PLUS");
    c.authenticate(m).unwrap();
    assert_eq!(c.stat().unwrap().count, 1);
    c.quit().unwrap();

    let (mechanism, sent) = client_sasl(&s);
    assert_eq!(mechanism, "SCRAM-SHA-256-PLUS");
    assert!(
        sent[0].starts_with("p=tls-exporter,,n=alice,r="),
        "{sent:?}"
    );
    // c= is base64(gs2 header || exporter bytes), computed here from the
    // extracted data, and the server (which used its own exporter) agreed.
    let mut cbind = b"p=tls-exporter,,".to_vec();
    cbind.extend_from_slice(data(&b));
    assert!(
        sent[1].starts_with(&format!("c={},r=", b64(&cbind))),
        "{sent:?}"
    );
    assert_eq!(sent[2], "", "empty answer to the server signature");
    assert_eq!(server_error(&s), None);
}

#[test]
fn tls12_scram_sha1_plus_with_tls_server_end_point_over_stls() {
    let s = server(
        Server::builder()
            .stls(true)
            .tls12_only(true)
            .sasl_mechanisms(["SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"]),
    );
    let mut c = connect(&s, true);
    let conn = c.get_ref().tls_connection().unwrap();
    assert_eq!(
        conn.protocol_version(),
        Some(pop3_blocking::rustls::ProtocolVersion::TLSv1_2)
    );
    let b = binding(&c).expect("TLS 1.2 has the certificate hash");
    // The TestCa leaf is ECDSA-SHA256: the binding is SHA-256 of its DER.
    use sha2::Digest as _;
    let leaf = s.test_ca().unwrap().leaf_cert_der().to_vec();
    assert_eq!(
        b,
        ChannelBinding::TlsServerEndPoint(sha2::Sha256::digest(&leaf).to_vec())
    );

    let m = plan_and_build(&c, Some(&b));
    assert_eq!(m.name(), "SCRAM-SHA-1-PLUS");
    c.authenticate(m).unwrap();
    assert_eq!(c.stat().unwrap().count, 1);
    c.quit().unwrap();
    let (mechanism, sent) = client_sasl(&s);
    assert_eq!(mechanism, "SCRAM-SHA-1-PLUS");
    assert!(sent[0].starts_with("p=tls-server-end-point,,n=alice,r="));
}

#[test]
fn binding_mismatch_is_refused_by_the_server() {
    // What a client behind a TLS-terminating man in the middle computes:
    // binding data of another TLS session.
    let (s, mut c) = tls13_all_scram();
    let mut wrong = data(&binding(&c).unwrap()).to_vec();
    wrong[0] ^= 1;
    let wrong = ChannelBinding::TlsExporter(wrong);
    let m = plan_and_build(&c, Some(&wrong));
    assert_auth_refused(c.authenticate(m), "channel-bindings-dont-match");
    assert_eq!(
        server_error(&s).as_deref(),
        Some("e=channel-bindings-dont-match")
    );
    // Not logged in: the session is still in AUTHORIZATION.
    assert!(c.stat().is_err());
    assert_eq!(s.mailbox().len(), 1);
}

#[test]
fn tls_exporter_on_tls12_is_refused_as_an_unsupported_type() {
    // RFC 9266 defines tls-exporter for TLS 1.3; the server does not
    // offer it on TLS 1.2, where the client must use tls-server-end-point.
    let s = server(
        Server::builder()
            .implicit_tls(true)
            .tls12_only(true)
            .sasl_mechanisms(all_scram()),
    );
    let mut c = connect(&s, false);
    let conn = c.get_ref().tls_connection().unwrap();
    let exported = conn
        .export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", None)
        .unwrap();
    let b = ChannelBinding::TlsExporter(exported.to_vec());
    let m = plan_and_build(&c, Some(&b));
    assert_auth_refused(c.authenticate(m), "unsupported-channel-binding-type");
}

#[test]
fn stripped_plus_is_detected_by_the_y_flag() {
    // A man in the middle removed the -PLUS names from CAPA; the server
    // supports channel binding. The client has binding data, so it sends
    // `y`, and the server fails the exchange (RFC 5802 §6).
    let s = server(
        Server::builder()
            .implicit_tls(true)
            .sasl_mechanisms(all_scram())
            .strip_plus_from_capa(true),
    );
    let mut c = connect(&s, false);
    let sasl = &c.capabilities().unwrap().sasl;
    assert_eq!(sasl, &["SCRAM-SHA-1", "SCRAM-SHA-256"]);
    let b = binding(&c).unwrap();
    let m = plan_and_build(&c, Some(&b));
    assert_eq!(m.name(), "SCRAM-SHA-256");
    assert_auth_refused(c.authenticate(m), "server-does-support-channel-binding");
    let (mechanism, sent) = client_sasl(&s);
    assert_eq!(mechanism, "SCRAM-SHA-256");
    assert!(sent[0].starts_with("y,,n=alice,r="), "{sent:?}");
    assert_eq!(s.mailbox().len(), 1);
}

#[test]
fn y_flag_is_accepted_by_a_server_without_binding_support() {
    // The honest case behind the `y` flag: the server really cannot bind.
    let s = server(
        Server::builder()
            .implicit_tls(true)
            .sasl_mechanisms(["SCRAM-SHA-256"])
            .channel_binding(false),
    );
    let mut c = connect(&s, false);
    let b = binding(&c).unwrap();
    let m = plan_and_build(&c, Some(&b));
    assert_eq!(m.name(), "SCRAM-SHA-256");
    c.authenticate(m).unwrap();
    assert_eq!(c.stat().unwrap().count, 1);
    let (_, sent) = client_sasl(&s);
    assert!(sent[0].starts_with("y,,"), "{sent:?}");
    // base64("y,,") is "eSws".
    assert!(sent[1].starts_with("c=eSws,r="), "{sent:?}");
}

#[test]
fn without_binding_data_plain_scram_with_n_flag() {
    let (s, mut c) = tls13_all_scram();
    let m = plan_and_build(&c, None);
    assert_eq!(m.name(), "SCRAM-SHA-256");
    c.authenticate(m).unwrap();
    let (_, sent) = client_sasl(&s);
    assert!(sent[0].starts_with("n,,n=alice,r="), "{sent:?}");
    assert!(sent[1].starts_with("c=biws,r="), "{sent:?}");
}

#[test]
fn explicit_plain_scram_name_binds_when_the_server_offers_plus() {
    // A caller asking for SCRAM-SHA-256 by name, with binding data, on a
    // server that lists SCRAM-SHA-256-PLUS: RFC 5802 §6 says it MUST bind.
    let (s, mut c) = tls13_all_scram();
    let b = binding(&c).unwrap();
    let m = login::mechanism_for_server(
        "SCRAM-SHA-256",
        USER,
        PASS,
        &[1; 18],
        Some(&b),
        c.capabilities(),
    )
    .unwrap();
    assert_eq!(m.name(), "SCRAM-SHA-256-PLUS");
    c.authenticate(m).unwrap();
    let (mechanism, sent) = client_sasl(&s);
    assert_eq!(mechanism, "SCRAM-SHA-256-PLUS");
    assert!(sent[0].starts_with("p=tls-exporter,,"), "{sent:?}");

    // Without the CAPA check the same request sends `y`, which this server
    // (able to bind) must refuse as a downgrade.
    let (_s, mut c) = tls13_all_scram();
    let b = binding(&c).unwrap();
    let m = login::mechanism_with_binding("SCRAM-SHA-256", USER, PASS, &[1; 18], Some(&b)).unwrap();
    assert_auth_refused(c.authenticate(m), "server-does-support-channel-binding");
}

#[test]
fn wrong_password_is_an_invalid_proof() {
    let (s, mut c) = tls13_all_scram();
    let b = binding(&c).unwrap();
    let m = login::mechanism_with_binding(
        "SCRAM-SHA-256-PLUS",
        USER,
        "not the password",
        &[1; 18],
        Some(&b),
    )
    .unwrap();
    assert_auth_refused(c.authenticate(m), "invalid-proof");
    assert_eq!(server_error(&s).as_deref(), Some("e=invalid-proof"));
}

#[test]
fn plus_without_tls_is_not_offered_by_the_server() {
    let s = server(Server::builder().sasl_mechanisms(all_scram()));
    let mut c = Client::connect_plain("127.0.0.1", s.port(), true).unwrap();
    let fake = ChannelBinding::TlsExporter(vec![0; 32]);
    let m = login::mechanism_with_binding("SCRAM-SHA-1-PLUS", USER, PASS, &[1; 18], Some(&fake))
        .unwrap();
    match c.authenticate(m) {
        Err(Error::Server { response, .. }) => {
            assert!(response.text.contains("unsupported"), "{}", response.text)
        }
        other => panic!("{other:?}"),
    }
    // Plain SCRAM works in cleartext (when the caller allowed it).
    let m = login::mechanism("SCRAM-SHA-1", USER, PASS, &[1; 18]).unwrap();
    c.authenticate(m).unwrap();
    assert_eq!(c.stat().unwrap().count, 1);
}

/// The same extraction works on tokio-rustls's inner connection, and the
/// async adapter's `authenticate` carries the -PLUS exchange.
#[tokio::test]
async fn tokio_adapter_scram_plus_over_tls13_and_tls12() {
    for tls12 in [false, true] {
        let s = server(
            Server::builder()
                .implicit_tls(true)
                .tls12_only(tls12)
                .sasl_mechanisms(all_scram()),
        );
        let options = pop3_tokio::ConnectOptions::new()
            .policy(pop3_tokio::TlsPolicy::Implicit)
            .tls(pop3_tokio::TlsOptions::new().add_ca_pem(s.ca_cert_pem().unwrap().into_bytes()));
        let mut c = pop3_tokio::Client::connect("127.0.0.1", s.port(), &options)
            .await
            .unwrap();
        let conn = c.get_ref().tls_connection().unwrap();
        let b = pop3_rustls::binding::channel_binding(conn).unwrap();
        let want = if tls12 {
            "tls-server-end-point"
        } else {
            "tls-exporter"
        };
        let is_endpoint = matches!(b, ChannelBinding::TlsServerEndPoint(_));
        assert_eq!(is_endpoint, tls12, "{b:?}");
        let Ok(LoginMethod::Sasl(name)) =
            login::plan_with(c.capabilities(), Some(c.greeting()), true, false, true)
        else {
            panic!("expected SASL");
        };
        assert_eq!(name, "SCRAM-SHA-256-PLUS");
        let m = login::mechanism_with_binding(&name, USER, PASS, &[3; 18], Some(&b)).unwrap();
        c.authenticate(m).await.unwrap();
        assert_eq!(c.stat().await.unwrap().count, 1);
        c.quit().await.unwrap();
        let (mechanism, sent) = client_sasl(&s);
        assert_eq!(mechanism, "SCRAM-SHA-256-PLUS");
        assert!(sent[0].starts_with(&format!("p={want},,")), "{sent:?}");
    }
}

#[test]
fn hostile_iteration_count_is_refused_before_hashing() {
    // The client's cap (1,000,000 by default) stops a server that asks for
    // more PBKDF2 rounds; it cancels with `*` and nothing is proved.
    let s = server(
        Server::builder()
            .implicit_tls(true)
            .sasl_mechanisms(all_scram())
            .scram_iterations(50_000_000),
    );
    let mut c = connect(&s, false);
    let b = binding(&c).unwrap();
    let m = plan_and_build(&c, Some(&b));
    match c.authenticate(m) {
        Err(Error::Server { response, .. }) => {
            let detail = response.sasl_detail.unwrap_or_default();
            assert!(detail.contains("50000000"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    let (_, sent) = client_sasl(&s);
    assert_eq!(sent.get(1).map(String::as_str), Some("*"), "{sent:?}");
}

#[test]
fn capa_and_auth_listing_follow_sasl_mechanisms() {
    let s = server(Server::builder().sasl_mechanisms(["scram-sha-256", "PLAIN"]));
    let c = Client::connect_plain("127.0.0.1", s.port(), true).unwrap();
    assert_eq!(c.capabilities().unwrap().sasl, ["SCRAM-SHA-256", "PLAIN"]);
    let s = server(Server::builder().sasl_mechanisms(Vec::<String>::new()));
    let c = Client::connect_plain("127.0.0.1", s.port(), true).unwrap();
    assert!(c.capabilities().unwrap().sasl.is_empty());
    // The default is unchanged: PLAIN only.
    let s = server(Server::builder());
    let c = Client::connect_plain("127.0.0.1", s.port(), true).unwrap();
    assert_eq!(c.capabilities().unwrap().sasl, ["PLAIN"]);
}

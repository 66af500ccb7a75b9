//! Plain TCP and "bring your own TLS" (`stls_with`) with no TLS library in
//! this crate: CI also runs this file with `--no-default-features` (no
//! rustls, no tokio-rustls). The "TLS" is an identity upgrade against a
//! scripted server that stays in the clear after `+OK` to STLS: what is
//! tested is the adapter's part (STLS, the hand-over, the session after).

use pop3_testkit::Server;
use pop3_tokio::{Client, ErrorKind};

#[tokio::test(flavor = "current_thread")]
async fn plain_tcp_then_stls_with_any_upgrade() {
    let script = pop3_scenarios::byo_tls_script();
    let server = Server::builder().script(script).start().unwrap();
    let tcp = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let mut c = Client::new(tcp).await.unwrap();
    assert!(c.capa().await.unwrap().stls);
    assert_eq!(
        c.login("alice", "secret").await.unwrap_err().kind(),
        ErrorKind::Insecure,
        "no credential before the upgrade"
    );
    let mut c = c.stls_with(|s| async move { Ok(s) }).await.unwrap();
    assert!(c.is_tls());
    assert!(c.capa().await.unwrap().user);
    c.login("alice", "secret").await.unwrap();
    assert_eq!(c.stat().await.unwrap().count, 2);
    c.quit().await.unwrap();
    server.script_result().unwrap();
}

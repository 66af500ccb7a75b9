//! Plain TCP and "bring your own TLS" (`stls_with`) with no TLS library in
//! this crate: CI also runs this file with `--no-default-features` (no
//! rustls). The "TLS" here is an identity upgrade against a scripted
//! server that keeps talking in the clear after `+OK` to STLS: what is
//! tested is the adapter's part (STLS, the hand-over, the session after).

use std::net::TcpStream;

use pop3_blocking::{Client, ErrorKind};
use pop3_testkit::Server;

#[test]
fn plain_tcp_then_stls_with_any_upgrade() {
    let script = pop3_scenarios::byo_tls_script();
    let server = Server::builder().script(script).start().unwrap();
    let tcp = TcpStream::connect(server.addr()).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut c = Client::new(tcp).unwrap();
    assert!(c.capa().unwrap().stls);
    assert_eq!(
        c.login("alice", "secret").unwrap_err().kind(),
        ErrorKind::Insecure,
        "no credential before the upgrade"
    );
    let mut c = c.stls_with(Ok).unwrap();
    assert!(c.is_tls());
    assert!(c.capa().unwrap().user);
    c.login("alice", "secret").unwrap();
    assert_eq!(c.stat().unwrap().count, 2);
    c.quit().unwrap();
    server.script_result().unwrap();
}

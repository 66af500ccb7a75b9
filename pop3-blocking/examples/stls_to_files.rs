//! Log in over STLS, list, stream every message to a file, delete what was
//! stored, quit (which commits the deletions).
//!
//! Self-contained: it starts a pop3-testkit server on 127.0.0.1 with a
//! sample mailbox and a throw-away CA, and trusts only that CA. Against a
//! real server, drop the testkit part and keep `TlsOptions::new()` (the
//! system's trust store).
//!
//! ```text
//! cargo run -p pop3-blocking --example stls_to_files
//! ```

use std::fs::File;
use std::io::Write;

use pop3_blocking::{Client, ConnectOptions, TlsOptions, TlsPolicy};
use pop3_testkit::{Mailbox, Server};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::builder()
        .user("alice", "secret")
        .mailbox(Mailbox::sample())
        .stls(true)
        .start()?;
    let ca = server.ca_cert_pem().ok_or("the testkit server has no CA")?;

    // STLS is required before any credential (the default policy, spelt out).
    let options = ConnectOptions::new().policy(TlsPolicy::Required).tls(
        TlsOptions::new()
            .without_default_roots()
            .add_ca_pem(ca.into_bytes()),
    );
    let mut client = Client::connect("127.0.0.1", server.port(), &options)?;
    println!("greeting: {}", client.greeting().status.text);
    let method = client.login("alice", "secret")?;
    println!("logged in with {method:?} over TLS: {}", client.is_tls());

    let dir = std::env::temp_dir().join(format!("pop3-example-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    for entry in client.list()? {
        let path = dir.join(format!("msg-{}.eml", entry.number));
        let mut file = File::create(&path)?;
        // Streamed: constant memory whatever the message size.
        let octets = client.retr_to(entry.number, &mut file)?;
        file.flush()?;
        file.sync_all()?; // durable before the DELE
        client.dele(entry.number)?;
        println!("{} ({octets} octets) -> {}", entry.number, path.display());
    }
    client.quit()?; // commits the DELEs

    let stored = std::fs::read_dir(&dir)?.count();
    assert_eq!(stored, Mailbox::sample().len());
    assert_eq!(
        server.mailbox().len(),
        0,
        "every stored message was deleted"
    );
    std::fs::remove_dir_all(&dir)?;
    println!("{stored} messages stored and deleted");
    Ok(())
}

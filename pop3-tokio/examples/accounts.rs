//! Fetch several accounts concurrently, one task each, every message
//! written with tokio's file I/O and synced before its `DELE`
//! (`AsyncMessageSink` with `retr_each_async`: the pipeline stays full and
//! the runtime thread is never blocked on the disk).
//!
//! Self-contained: one pop3-testkit server per account on 127.0.0.1, with
//! STLS and a throw-away CA that only this program trusts. Against real
//! servers keep `TlsOptions::new()` (the system's trust store).
//!
//! ```text
//! cargo run -p pop3-tokio --example accounts
//! ```

use std::path::PathBuf;

use pop3_testkit::{Mailbox, Server, ServerHandle};
use pop3_tokio::{AsyncMessageSink, Client, ConnectOptions, Disposition, TlsOptions};
use tokio::io::AsyncWriteExt;

/// One file per message in `dir`: written to `N.tmp`, synced, renamed.
struct Files {
    dir: PathBuf,
    file: Option<tokio::fs::File>,
}

impl AsyncMessageSink for Files {
    async fn begin(&mut self, n: u32) -> std::io::Result<()> {
        self.file = Some(tokio::fs::File::create(self.dir.join(format!("{n}.tmp"))).await?);
        Ok(())
    }

    async fn data(&mut self, _: u32, chunk: &[u8]) -> std::io::Result<()> {
        match &mut self.file {
            Some(f) => f.write_all(chunk).await,
            None => Err(std::io::Error::other("data before begin")),
        }
    }

    async fn end(&mut self, n: u32, _: u64) -> std::io::Result<Disposition> {
        let mut file = self
            .file
            .take()
            .ok_or_else(|| std::io::Error::other("end before begin"))?;
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        let tmp = self.dir.join(format!("{n}.tmp"));
        tokio::fs::rename(tmp, self.dir.join(format!("{n}.eml"))).await?;
        Ok(Disposition::Delete) // queued only now: the message is durable
    }
}

/// Fetches one account into `dir`; returns how many messages it stored.
async fn fetch(server: &ServerHandle, user: &str, dir: PathBuf) -> pop3_tokio::Result<u32> {
    let ca = server.ca_cert_pem().unwrap_or_default();
    let tls = TlsOptions::new()
        .without_default_roots()
        .add_ca_pem(ca.into_bytes());
    let options = ConnectOptions::new().tls(tls); // STLS required (the default)
    let mut client = Client::connect("127.0.0.1", server.port(), &options).await?;
    client.login(user, "secret").await?;
    let list = client.list().await?;
    let mut sink = Files { dir, file: None };
    let report = client
        .retr_each_async(list.iter().map(|e| e.number), &mut sink)
        .await?;
    client.quit().await?; // commits the DELEs
    Ok(report.received)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let accounts = ["alice", "bob", "carol"];
    let root = std::env::temp_dir().join(format!("pop3-example-accounts-{}", std::process::id()));
    let mut tasks = Vec::new();
    let mut servers = Vec::new();
    for (i, user) in accounts.into_iter().enumerate() {
        let server = std::sync::Arc::new(
            Server::builder()
                .user(user, "secret")
                .mailbox(Mailbox::generate(20 + i * 10, 2048))
                .stls(true)
                .start()?,
        );
        let dir = root.join(user);
        tokio::fs::create_dir_all(&dir).await?;
        servers.push(server.clone());
        tasks.push(tokio::spawn(async move {
            let n = fetch(&server, user, dir).await?;
            Ok::<_, pop3_tokio::Error>((user, n))
        }));
    }
    for (task, server) in tasks.into_iter().zip(&servers) {
        let (user, n) = task.await??;
        let files = std::fs::read_dir(root.join(user))?.count();
        assert_eq!(files as u32, n);
        assert_eq!(
            server.mailbox().len(),
            0,
            "{user}: all stored messages deleted"
        );
        println!("{user}: {n} messages stored and deleted");
    }
    std::fs::remove_dir_all(&root)?;
    Ok(())
}

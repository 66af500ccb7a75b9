//! Pipelined fetch into a Maildir with the durable-before-DELE rule.
//!
//! `retr_each` keeps up to `window` RETRs outstanding; each message goes to
//! a `MessageSink`. The sink writes it to `tmp/`, `fsync`s the file,
//! renames it into `new/`, `fsync`s the directory, and only then returns
//! `Disposition::Delete`: the `DELE` is queued after `end` returned, so a
//! crash at any point loses no mail (at worst a message is fetched twice).
//!
//! Self-contained: a pop3-testkit server on 127.0.0.1 (plain TCP, so the
//! example allows cleartext credentials on loopback; never do that over a
//! network).
//!
//! ```text
//! cargo run -p pop3-blocking --example maildir
//! ```

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use pop3_blocking::{Client, ConnectOptions, Disposition, MessageSink, TlsPolicy};
use pop3_testkit::{Mailbox, Server};

/// Delivers into `root/{tmp,new,cur}`.
struct Maildir {
    root: PathBuf,
    /// The message being received: its file in `tmp/` and its name.
    current: Option<(File, String)>,
    delivered: usize,
}

impl Maildir {
    fn create(root: &Path) -> io::Result<Maildir> {
        for sub in ["tmp", "new", "cur"] {
            fs::create_dir_all(root.join(sub))?;
        }
        Ok(Maildir {
            root: root.to_path_buf(),
            current: None,
            delivered: 0,
        })
    }
}

impl MessageSink for Maildir {
    fn begin(&mut self, n: u32) -> io::Result<()> {
        // A unique name (time.pid_counter.host, as Maildir wants).
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let name = format!("{}.{}_{n}.pop3-example", now.as_secs(), std::process::id());
        let file = File::create(self.root.join("tmp").join(&name))?;
        self.current = Some((file, name));
        Ok(())
    }

    fn data(&mut self, _: u32, chunk: &[u8]) -> io::Result<()> {
        match &mut self.current {
            Some((file, _)) => file.write_all(chunk),
            None => Err(io::Error::other("data before begin")),
        }
    }

    fn end(&mut self, _: u32, _: u64) -> io::Result<Disposition> {
        let (file, name) = self
            .current
            .take()
            .ok_or_else(|| io::Error::other("end before begin"))?;
        file.sync_all()?;
        drop(file);
        fs::rename(
            self.root.join("tmp").join(&name),
            self.root.join("new").join(&name),
        )?;
        // The rename is durable once the directory is synced.
        File::open(self.root.join("new"))?.sync_all()?;
        self.delivered += 1;
        Ok(Disposition::Delete)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mailbox = Mailbox::generate(50, 4096);
    let server = Server::builder()
        .user("alice", "secret")
        .mailbox(mailbox)
        .start()?;
    let options = ConnectOptions::new()
        .policy(TlsPolicy::None)
        .allow_cleartext_credentials(true); // loopback only
    let mut client = Client::connect("127.0.0.1", server.port(), &options)?;
    client.login("alice", "secret")?;

    let root = std::env::temp_dir().join(format!("pop3-example-maildir-{}", std::process::id()));
    let mut maildir = Maildir::create(&root)?;
    let list = client.list()?;
    let report = client.retr_each(list.iter().map(|e| e.number), &mut maildir)?;
    println!(
        "{} messages ({} octets) delivered to {}, {} DELEs acknowledged (window {})",
        report.received,
        report.octets,
        root.display(),
        report.deleted.len(),
        client.window()
    );
    client.quit()?;

    assert_eq!(maildir.delivered, 50);
    assert_eq!(fs::read_dir(root.join("new"))?.count(), 50);
    assert_eq!(fs::read_dir(root.join("tmp"))?.count(), 0);
    assert_eq!(server.mailbox().len(), 0);
    fs::remove_dir_all(&root)?;
    Ok(())
}

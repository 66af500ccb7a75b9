//! `pop3`: a safe, fast POP3 mail fetcher, built on `pop3-blocking`.
//!
//! ```text
//! pop3 [URL] [OPTIONS] <COMMAND>
//!
//! pop3 headers                                   # the built-in demo server
//! POP3_PASSWORD=... pop3 pop3s://alice@mail.example.com headers
//! pop3 --host mail.example.com --user alice --password-command 'pass show mail' \
//!      fetch --maildir ~/Mail/inbox --delete
//! ```
//!
//! # Server
//!
//! A URL (`pop3s://user@host[:port]` for implicit TLS,
//! `pop3://user[;AUTH=mech]@host[:port]` for STLS, RFC 2384 `pop://` too),
//! or `--host`, `--port`, `--user` (which override the URL). `--tls
//! implicit|starttls|none` (default: implicit for `pop3s://` and port 995,
//! STLS otherwise, and STLS is then *required*); `--tls none` sends
//! credentials only with `--allow-cleartext`. `--ca-file` adds trusted CAs
//! (the system's roots, or the bundled webpki roots where the system has
//! none, are trusted too), `--client-cert`/`--client-key`
//! present a client certificate, `--auth auto|user|apop|<SASL mechanism>`
//! picks the login method, `--timeout SECONDS` (default 30) bounds the
//! connect and every wait for the server.
//!
//! With no server (or `--demo`), a `pop3-testkit` server with a sample
//! mailbox is started on 127.0.0.1 and used through the normal code path
//! (STLS, certificate verification against its throw-away CA, SASL login);
//! stderr says so.
//!
//! # Password
//!
//! From `--password-file FILE` (first line), `--password-command CMD`
//! (run with `sh -c`, first line of its output, bounded by a timeout), the
//! environment variable `POP3_PASSWORD`, or an interactive prompt without
//! echo (only when stdin and stderr are terminals). Never from argv: there
//! is no `--password`, and a password in the URL is refused. For `XOAUTH2`
//! and `OAUTHBEARER` it is the bearer token. `-v`/`-vv` redact it.
//!
//! # Commands
//!
//! | command | does |
//! | --- | --- |
//! | `capa` | greeting, TLS state, capabilities (no login needed) |
//! | `stat` | message count and total size |
//! | `list` | number and size of every message |
//! | `uidl` | number and unique id of every message |
//! | `retr N [-o FILE]` | message N, byte for byte, to stdout or atomically to FILE |
//! | `top N LINES` | headers and the first LINES body lines |
//! | `dele N...` | mark and commit deletions (a failed QUIT is reported) |
//! | `headers` | table of number, size, date, from, subject (pipelined `TOP n 0`, RFC 2047 decoded) |
//! | `fetch --maildir DIR \| --mbox FILE \| --eml-dir DIR [--delete] [--all] [--max-size N] [--line-endings lf\|crlf\|keep]` | durable download |
//!
//! `--json` prints one JSON object per line instead of tables. Server
//! text shown on the terminal (greeting, `-ERR` text, headers, UIDs) has
//! control characters, escape sequences and bidi overrides neutralised.
//!
//! # Nothing lost
//!
//! `fetch` opens, locks and checks the destination and its state file
//! (`DIR/.pop3-uidl`, or `FILE.pop3-uidl` beside an mbox; keyed on
//! `user@host:port`, so two servers never share records) before it
//! connects, and finishes what an interrupted run left (see
//! [`fetch`]). It then fetches in groups: the group's intent
//! is recorded, its messages are streamed into place (Maildir: anonymous
//! `O_TMPFILE` file linked into `new/` under a name carrying a hash of the
//! UID and the size; mbox: appended mboxrd-quoted, with the `Return-Path`
//! sender in the `From ` line; `.eml`: linked to `UID.eml`, never replacing
//! a different file), the group is made durable (one mbox data sync, or one
//! `syncfs`), its UIDs are recorded and synced, and only then are its
//! `DELE`s sent, pipelined. Messages the destination already holds are
//! skipped (and, with `--delete`, deleted, pipelined); `--all` fetches them
//! again. So a crash or cut at any point neither loses nor duplicates mail.
//! Maildir and mbox store LF line endings, `.eml` the received bytes
//! (`--line-endings lf|crlf|keep` chooses); mail, state and lock files are
//! created 0600, directories 0700. Messages larger than `--max-size` (as
//! LIST gives them) stay on the server and are reported. A `-ERR` to QUIT
//! (deletions not applied) is reported with exit code 3; a lost QUIT reply
//! as "unknown (N were marked)".
//!
//! Servers without UIDL: `--new-only` is refused; `--delete` still deletes
//! each message only after it is stored, but a cut before QUIT means those
//! messages are downloaded again by the next run (a warning says so).
//! Messages are retrieved pipelined when the server offers `PIPELINING`.
//!
//! Locking: an mbox is locked with `fcntl` and a dotlock (`FILE.lock`), a
//! Maildir or `.eml` directory with `fcntl` on `DIR/.pop3-lock`, and the
//! state file with `fcntl`; a second fetch into the same destination waits
//! up to `--lock-timeout` seconds, then exits with code 9.
//!
//! # Exit codes
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | success |
//! | 2 | usage error (bad arguments, missing password, credentials without TLS and without `--allow-cleartext`) |
//! | 3 | the server answered `-ERR` (including a failed QUIT) |
//! | 4 | protocol error: broken protocol, connection closed where a reply was due, truncated message |
//! | 5 | authentication failed |
//! | 6 | TLS failure (handshake, certificate, unreadable `--ca-file` or client certificate, STLS not offered or refused) |
//! | 7 | timeout |
//! | 8 | I/O error (network, local files) |
//! | 9 | another fetch is running into the same destination |
//!
//! # Verbosity
//!
//! `-v` shows each command and reply (poplib's `set_debuglevel(1)`), `-vv`
//! the raw bytes too (`set_debuglevel(2)`), on stderr; secrets are
//! redacted by pop3-blocking.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// Like `eprintln!`, but a stderr that cannot be written (closed, a broken
/// pipe) is ignored instead of panicking.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($t)*);
    }};
}

pub mod cli;
pub mod commands;
pub mod config;
pub mod durable;
pub mod error;
pub mod fetch;
pub mod generate;
pub mod lock;
pub mod mda;
pub mod output;
pub mod password;
pub mod sanitize;
pub mod session;
pub mod state;
pub mod store;
pub mod target;
pub mod transform;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Cmd};
use crate::error::CliError;
use crate::fetch::{Dest, Request};

/// Installs the stderr `tracing` subscriber for `-v` / `-vv`.
fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => return,
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::new(format!(
        "pop3_blocking={level},pop3_proto={level},pop3_cli={level}"
    ));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .try_init();
}

/// Runs one parsed command line.
pub fn execute(cli: &Cli) -> Result<(), CliError> {
    init_logging(cli.verbose);
    match &cli.command {
        Cmd::Completions { shell } => return generate::completions(*shell),
        Cmd::Man => return generate::man_page(),
        _ => {}
    }
    let server = session::resolve(cli)?;
    match &cli.command {
        Cmd::Capa => commands::capa(&server, cli),
        Cmd::Stat => commands::stat(&server, cli),
        Cmd::List => commands::list(&server, cli),
        Cmd::Uidl => commands::uidl(&server, cli),
        Cmd::Retr { number, output } => commands::retr(&server, cli, *number, output.as_deref()),
        Cmd::Top { number, lines } => commands::top(&server, cli, *number, *lines),
        Cmd::Dele { numbers } => commands::dele(&server, cli, numbers),
        Cmd::Headers => commands::headers(&server, cli),
        Cmd::Completions { .. } | Cmd::Man => Ok(()),
        Cmd::Fetch {
            maildir,
            mbox,
            eml_dir,
            delete,
            new_only,
            all,
            max_size,
            line_endings,
            lock_timeout,
        } => {
            let dest = match (maildir, mbox, eml_dir) {
                (Some(d), None, None) => Dest::Maildir(d.clone()),
                (None, Some(f), None) => Dest::Mbox(f.clone()),
                (None, None, Some(d)) => Dest::Eml(d.clone()),
                _ => {
                    return Err(CliError::usage(
                        "give exactly one of --maildir, --mbox, --eml-dir",
                    ))
                }
            };
            fetch::fetch(
                &server,
                cli,
                &Request {
                    dest,
                    delete: *delete,
                    new_only: *new_only,
                    all: *all,
                    max_size: *max_size,
                    line_endings: *line_endings,
                    lock_timeout: std::time::Duration::from_secs(*lock_timeout),
                },
            )
        }
    }
}

/// The whole program: parse, run, report, exit code.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => error::Class::Usage.code(),
            });
        }
    };
    match execute(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.class == error::Class::PipeClosed => ExitCode::SUCCESS,
        Err(e) => {
            say!("pop3: {e}");
            ExitCode::from(e.class.code())
        }
    }
}

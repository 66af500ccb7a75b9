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
//! | `fetch --maildir DIR \| --mbox FILE \| --eml-dir DIR \| --mda CMD [--delete \| --keep \| --keep-days N] [--skip-larger SIZE] [--delete-larger SIZE] [--add-received] [--all] [--max-size N] [--line-endings lf\|crlf\|keep] [--every INTERVAL] [-q]` | durable download |
//!
//! # Accounts
//!
//! `--config FILE` (default `$XDG_CONFIG_HOME/pop3/config.toml`) holds
//! `[defaults]` and `[accounts.NAME]` tables (see [`config`]); `--account
//! NAME` picks one for any command. `fetch --account A --account B` or
//! `fetch --all-accounts` fetches several, `--jobs N` (default 4) at once,
//! each on its own thread and with its own progress line on a terminal
//! and summary line (`pop3: [NAME] fetched ...`). One account failing
//! never stops the others; the exit code is the worst (highest) class
//! seen. An account's destination (`maildir`, `mbox`, `eml_dir`, `mda`),
//! `delete`, `keep_days`, `skip_larger` and `delete_larger` apply unless a
//! flag says otherwise (`--keep` overrides `delete = true`).
//!
//! # What to fetch, what to delete
//!
//! `--skip-larger SIZE` (`100k`, `10M`) leaves bigger messages on the
//! server; `--delete-larger SIZE` deletes them unread, logging each one.
//! `--keep-days N` keeps messages on the server and deletes each one N
//! days after it was first stored (the state file records that time;
//! records of older versions get theirs on the first such run).
//! `--add-received` adds a `Received:` trace header (not for `.eml`).
//!
//! # MDA
//!
//! `--mda "COMMAND ARGS"` pipes each message (LF line endings) to a
//! command, split like a shell would but without a shell (unless it is
//! `sh -c '...'`); `%F` is the envelope sender. Only exit status 0 counts
//! as delivered: then the UID is recorded (state in
//! `$XDG_STATE_HOME/pop3/mda/ACCOUNT.pop3-uidl`) and, with `--delete`, the
//! message deleted; otherwise it stays on the server, is reported, and the
//! rest are fetched (exit code 8). Each message's intent is journalled
//! before it is piped; an MDA cannot be rolled back, so a crash between
//! its exit 0 and the record means that message is delivered again by the
//! next run: at-least-once delivery, as with mpop and fetchmail.
//! `--mda-timeout` (default 300 s) bounds each delivery.
//!
//! # Polling
//!
//! `fetch --every 5m` polls until SIGINT/SIGTERM, then finishes the
//! current message, records and deletes what was stored, and QUITs (a
//! second signal ends the process at once). A server's `LOGIN-DELAY` is
//! a lower bound on the interval; a failing account waits twice as long
//! after each failure in a row (at most an hour, or the interval if
//! longer), and at least the LOGIN-DELAY after `[LOGIN-DELAY]`/`[IN-USE]`.
//! Each poll prints one summary line per account; `-q` prints only
//! failures.
//!
//! # JSON
//!
//! With `--json`, `fetch` prints a `message` object per stored message, a
//! `deleted_larger` object per message deleted unread, on failure an
//! `error` object (`class`, `exit_code`, `command`, `response_code`,
//! `message`; `account` for configuration accounts), and always a final
//! `summary` object per account (`ok` says whether it succeeded). Other
//! commands print an `error` object on failure too.
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
//! | 5 | authentication failed (also `--auth apop` without an APOP timestamp) |
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
pub mod clock;
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
pub mod run_fetch;
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
    if let Cmd::Fetch(args) = &cli.command {
        return run_fetch::run(cli, args);
    }
    let server = session::resolve(cli)?;
    match &cli.command {
        Cmd::Capa { tls_info } => commands::capa(&server, cli, *tls_info),
        Cmd::Stat => commands::stat(&server, cli),
        Cmd::List => commands::list(&server, cli),
        Cmd::Uidl => commands::uidl(&server, cli),
        Cmd::Retr { number, output } => commands::retr(&server, cli, *number, output.as_deref()),
        Cmd::Top { number, lines } => commands::top(&server, cli, *number, *lines),
        Cmd::Dele { numbers } => commands::dele(&server, cli, numbers),
        Cmd::Headers => commands::headers(&server, cli),
        Cmd::Completions { .. } | Cmd::Man | Cmd::Fetch(_) => Ok(()),
    }
}

/// The whole program: parse, run, report, exit code.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            let help = matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            );
            if help {
                return ExitCode::SUCCESS;
            }
            // A command line that asked for JSON gets its usage error as JSON
            // too (and, for fetch, a summary object).
            let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
            if args.iter().any(|a| a == "--json") {
                let err = CliError::usage(e.kind().to_string());
                let _ = run_fetch::json_error(&err, None);
                if args.iter().any(|a| a == "fetch") {
                    let _ =
                        output::json_line(&fetch::Tally::default().to_json(None, None, 0.0, false));
                }
            }
            return ExitCode::from(error::Class::Usage.code());
        }
    };
    match execute(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.class == error::Class::PipeClosed => ExitCode::SUCCESS,
        Err(e) => {
            say!("pop3: {e}");
            // `fetch` prints its own JSON error objects.
            if cli.json && !matches!(cli.command, Cmd::Fetch(_)) {
                let _ = run_fetch::json_error(&e, None);
            }
            ExitCode::from(e.class.code())
        }
    }
}

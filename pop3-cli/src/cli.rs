//! The command line (clap).

use std::path::PathBuf;

use clap::{ArgGroup, Parser, Subcommand};

use crate::target::TlsMode;
use crate::transform::LineEndings;

/// Printed after `--help`: the exit codes.
pub const AFTER_HELP: &str = "\
Server: a URL (pop3s://user@host[:port], pop3://user[;AUTH=mech]@host[:port]) or
--host/--port/--user. With neither (or with --demo) a built-in demo server with a
sample mailbox is started on 127.0.0.1 and used.

Password: --password-file, --password-command, the POP3_PASSWORD environment
variable, or an interactive prompt; never on the command line. For XOAUTH2 and
OAUTHBEARER it is the bearer token.

Exit codes:
  0  success
  2  usage error (bad arguments, missing password, credentials without TLS
     and without --allow-cleartext)
  3  the server answered -ERR (including a failed QUIT: deletions not applied)
  4  protocol error: the server broke the protocol, closed the connection
     where a reply was due, or cut a message short
  5  authentication failed
  6  TLS failure (handshake, certificate, unreadable --ca-file or client
     certificate, STLS not offered or refused)
  7  timeout
  8  I/O error (network, or writing local files)
  9  another fetch is running into the same destination (its lock was held
     for the whole --lock-timeout)";

/// The default `--timeout`, in seconds.
pub const DEFAULT_TIMEOUT: u64 = 30;

/// `pop3`: a safe, fast POP3 mail fetcher.
#[derive(Debug, Parser)]
#[command(name = "pop3", version, about, after_help = AFTER_HELP, args_override_self = true)]
pub struct Cli {
    /// Server URL: `pop3s://user@host:port` (implicit TLS) or
    /// `pop3://user;AUTH=mech@host:port` (STLS); port and `;AUTH=` optional.
    #[arg(value_name = "URL")]
    pub url: Option<String>,

    /// Server host name or IP address.
    #[arg(long, global = true)]
    pub host: Option<String>,

    /// Server port (default 995 with implicit TLS, 110 otherwise).
    #[arg(long, global = true, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,

    /// User name.
    #[arg(long, global = true)]
    pub user: Option<String>,

    /// TLS mode (default: implicit for pop3s:// and port 995, else starttls).
    #[arg(long, global = true, value_enum)]
    pub tls: Option<TlsMode>,

    /// Allow sending credentials without TLS (with --tls none).
    #[arg(long, global = true)]
    pub allow_cleartext: bool,

    /// Also trust the CA certificates in this PEM file.
    #[arg(long, global = true, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,

    /// Trust only the --ca-file certificates, not the system's roots (for a
    /// private CA: a certificate from a public CA is then refused).
    #[arg(long, global = true, requires = "ca_file")]
    pub ca_only: bool,

    /// Client certificate chain (PEM) to present.
    #[arg(long, global = true, value_name = "PEM", requires = "client_key")]
    pub client_cert: Option<PathBuf>,

    /// Private key (PEM) of --client-cert.
    #[arg(long, global = true, value_name = "PEM", requires = "client_cert")]
    pub client_key: Option<PathBuf>,

    /// Authentication: auto, user, apop, or a SASL mechanism (plain, login,
    /// cram-md5, scram-sha-1, scram-sha-256, xoauth2, oauthbearer).
    #[arg(long, global = true, value_name = "METHOD")]
    pub auth: Option<String>,

    /// Timeout in seconds for connecting and for every wait on the server
    /// [default: 30, or the account's `timeout`].
    #[arg(long, global = true, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub timeout: Option<u64>,

    /// Configuration file [default: $XDG_CONFIG_HOME/pop3/config.toml,
    /// else ~/.config/pop3/config.toml]; read only for --account.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Use account NAME of the configuration file (its [accounts.NAME]
    /// table); command-line flags override its values.
    #[arg(long, global = true, value_name = "NAME")]
    pub account: Vec<String>,

    /// Read the password (first line) from this file.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        conflicts_with = "password_command"
    )]
    pub password_file: Option<PathBuf>,

    /// Run this shell command and use the first line it prints as the
    /// password (keyrings, OAuth token helpers).
    #[arg(long, global = true, value_name = "COMMAND")]
    pub password_command: Option<String>,

    /// Use the built-in demo server even if a server is given (the `demo`
    /// feature, on by default).
    #[arg(long, global = true)]
    pub demo: bool,

    /// Print one JSON object per line instead of tables.
    #[arg(long, global = true)]
    pub json: bool,

    /// Show the protocol exchange on stderr (-v commands and replies, -vv
    /// raw bytes); secrets are redacted.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Show the server greeting and capabilities (no login).
    Capa,
    /// Number of messages and total size.
    Stat,
    /// Every message's number and size.
    List,
    /// Every message's number and unique id.
    Uidl,
    /// Retrieve message N (to stdout, or to a file with -o).
    Retr {
        /// Message number.
        #[arg(value_parser = clap::value_parser!(u32).range(1..))]
        number: u32,
        /// Write the message to this file (created atomically) instead of
        /// stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Headers and the first LINES body lines of message N.
    Top {
        /// Message number.
        #[arg(value_parser = clap::value_parser!(u32).range(1..))]
        number: u32,
        /// Body lines.
        lines: u32,
    },
    /// Delete messages (committed when the session ends with QUIT).
    Dele {
        /// Message numbers.
        #[arg(required = true, value_parser = clap::value_parser!(u32).range(1..))]
        numbers: Vec<u32>,
    },
    /// A table of number, size, date, from and subject of every message.
    Headers,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    /// to stdout, e.g. `pop3 completions bash > /etc/bash_completion.d/pop3`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to stdout, e.g. `pop3 man > pop3.1`.
    Man,
    /// Download messages into a Maildir, an mbox file or a directory of
    /// .eml files.
    #[command(group(ArgGroup::new("dest").required(true).args(["maildir", "mbox", "eml_dir"])))]
    Fetch {
        /// Deliver into this Maildir (created if missing).
        #[arg(long, value_name = "DIR")]
        maildir: Option<PathBuf>,
        /// Append to this mbox file (mboxrd quoting).
        #[arg(long, value_name = "FILE")]
        mbox: Option<PathBuf>,
        /// Write one .eml file per message into this directory.
        #[arg(long, value_name = "DIR")]
        eml_dir: Option<PathBuf>,
        /// Delete each message on the server once it is safely stored.
        #[arg(long)]
        delete: bool,
        /// Only messages not fetched before. This is the default whenever
        /// the destination's UIDL state exists; the flag is kept for
        /// compatibility and also refuses servers without UIDL.
        #[arg(long, conflicts_with = "all")]
        new_only: bool,
        /// Fetch every message again, also those this destination already
        /// holds (by default they are skipped).
        #[arg(long, visible_alias = "refetch")]
        all: bool,
        /// Leave messages larger than this many bytes (as LIST gives them)
        /// on the server and report them; a body that grows past it
        /// anyway stops the run (a hostile server streaming without end
        /// must not fill the disk). Nothing refused is deleted.
        #[arg(long, value_name = "BYTES", default_value_t = 1 << 30)]
        max_size: u64,
        /// Line endings of stored messages (default: lf for Maildir and
        /// mbox, keep for .eml).
        #[arg(long, value_enum, value_name = "MODE")]
        line_endings: Option<LineEndings>,
        /// Wait this many seconds for another fetch into the same
        /// destination to finish before giving up (exit 9).
        #[arg(long, value_name = "SECONDS", default_value_t = 10)]
        lock_timeout: u64,
    },
}

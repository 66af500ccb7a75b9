//! The command line (clap).

use std::path::PathBuf;

use clap::{ArgGroup, Parser, Subcommand};

use crate::target::TlsMode;
use crate::transform::LineEndings;

/// Printed after `--help`: the exit codes.
pub const AFTER_HELP: &str = "\
Server: a URL (pop3s://user@host[:port], pop3://user[;AUTH=mech]@host[:port]) or
--host/--port/--user. With neither (or with --demo) a built-in demo server with a
sample mailbox is started on 127.0.0.1 and used. Or --account NAME, an
[accounts.NAME] table of the configuration file (--config FILE, default
$XDG_CONFIG_HOME/pop3/config.toml): flags override its values.

Password, first found: --password-file, --password-command, the account's
password_file / password_command / password_env / password (the last only in
a file of mode 0600), the POP3_PASSWORD environment variable, or an
interactive prompt; never on the command line. For XOAUTH2 and OAUTHBEARER
it is the bearer token.

Exit codes:
  0  success
  2  usage error (bad arguments, missing password, credentials without TLS
     and without --allow-cleartext)
  3  the server answered -ERR (including a failed QUIT: deletions not applied)
  4  protocol error: the server broke the protocol, closed the connection
     where a reply was due, or cut a message short
  5  authentication failed (also --auth apop without an APOP timestamp)
  6  TLS failure (handshake, certificate, unreadable --ca-file or client
     certificate, STLS not offered or refused)
  7  timeout
  8  I/O error (network, or writing local files)
  9  another fetch is running into the same destination (its lock was held
     for the whole --lock-timeout)";

/// The help heading of the options that say how to reach and log in to
/// the server.
pub const CONNECTION: &str = "Connection options";

fn parse_fingerprint(s: &str) -> Result<pop3_blocking::Fingerprint, String> {
    s.parse::<pop3_blocking::Fingerprint>()
        .map_err(|e| e.to_string())
}

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
    #[arg(help_heading = CONNECTION, long, global = true)]
    pub host: Option<String>,

    /// Server port (default 995 with implicit TLS, 110 otherwise).
    #[arg(help_heading = CONNECTION, long, global = true, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,

    /// User name.
    #[arg(help_heading = CONNECTION, long, global = true)]
    pub user: Option<String>,

    /// TLS mode (default: implicit for pop3s:// and port 995, else starttls).
    #[arg(help_heading = CONNECTION, long, global = true, value_enum)]
    pub tls: Option<TlsMode>,

    /// Allow sending credentials without TLS (with --tls none).
    #[arg(help_heading = CONNECTION, long, global = true)]
    pub allow_cleartext: bool,

    /// Also trust the CA certificates in this PEM file.
    #[arg(help_heading = CONNECTION, long, global = true, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,

    /// Trust only the --ca-file certificates, not the system's roots (for a
    /// private CA: a certificate from a public CA is then refused).
    #[arg(help_heading = CONNECTION, long, global = true, requires = "ca_file")]
    pub ca_only: bool,

    /// Pin the server certificate by its SHA-256 fingerprint (64 hex
    /// digits, colons optional): that certificate is accepted instead of
    /// CA verification (whatever its issuer, name or dates, as mpop's
    /// --tls-fingerprint), every other one refused. `pop3 capa --tls-info`
    /// shows a server's fingerprint.
    #[arg(help_heading = CONNECTION, long, global = true, value_name = "SHA256", value_parser = parse_fingerprint)]
    pub fingerprint: Option<pop3_blocking::Fingerprint>,

    /// Client certificate chain (PEM) to present.
    #[arg(help_heading = CONNECTION, long, global = true, value_name = "PEM", requires = "client_key")]
    pub client_cert: Option<PathBuf>,

    /// Private key (PEM) of --client-cert.
    #[arg(help_heading = CONNECTION, long, global = true, value_name = "PEM", requires = "client_cert")]
    pub client_key: Option<PathBuf>,

    /// Authentication: auto, user, apop, or a SASL mechanism (plain, login,
    /// cram-md5, scram-sha-1, scram-sha-256, xoauth2, oauthbearer).
    #[arg(help_heading = CONNECTION, long, global = true, value_name = "METHOD")]
    pub auth: Option<String>,

    /// Timeout in seconds for connecting and for every wait on the server
    /// [default: 30, or the account's `timeout`].
    #[arg(help_heading = CONNECTION, long, global = true, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub timeout: Option<u64>,

    /// Configuration file [default: $XDG_CONFIG_HOME/pop3/config.toml,
    /// else ~/.config/pop3/config.toml]; read only for --account.
    #[arg(help_heading = CONNECTION, long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Use account NAME of the configuration file (its [accounts.NAME]
    /// table); command-line flags override its values.
    #[arg(help_heading = CONNECTION, long, global = true, value_name = "NAME")]
    pub account: Vec<String>,

    /// Read the password (first line) from this file.
    #[arg(help_heading = CONNECTION,
        long,
        global = true,
        value_name = "FILE",
        conflicts_with = "password_command"
    )]
    pub password_file: Option<PathBuf>,

    /// Run this shell command and use the first line it prints as the
    /// password (keyrings, OAuth token helpers).
    #[arg(help_heading = CONNECTION, long, global = true, value_name = "COMMAND")]
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
    Capa {
        /// Also show the TLS connection: version, cipher suite, and the
        /// certificate's subject, issuer, validity and SHA-256 fingerprint;
        /// and explain each capability.
        #[arg(long, visible_alias = "serverinfo")]
        tls_info: bool,
    },
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
    /// Download messages into a Maildir, an mbox file, a directory of
    /// .eml files, or through a mail delivery agent; for one server, or
    /// for accounts of the configuration file (--account, --all-accounts).
    #[command(group(ArgGroup::new("dest").multiple(false).args(["maildir", "mbox", "eml_dir", "mda"])))]
    Fetch(FetchArgs),
}

/// `pop3 fetch`'s own options (the connection options are global).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Fetch options")]
pub struct FetchArgs {
    /// Deliver into this Maildir (created if missing).
    #[arg(long, value_name = "DIR")]
    pub maildir: Option<PathBuf>,
    /// Append to this mbox file (mboxrd quoting).
    #[arg(long, value_name = "FILE")]
    pub mbox: Option<PathBuf>,
    /// Write one .eml file per message into this directory.
    #[arg(long, value_name = "DIR")]
    pub eml_dir: Option<PathBuf>,
    /// Pipe each message to this command (split like a shell would, no
    /// shell unless it is `sh -c '...'`; %F is the envelope sender). Exit
    /// status 0 means delivered; anything else leaves the message on the
    /// server. Delivery is at least once: a crash right after the command
    /// succeeded delivers that message again next time.
    #[arg(long, value_name = "COMMAND")]
    pub mda: Option<String>,
    /// Seconds one --mda delivery may take before it is killed (the
    /// message then stays on the server).
    #[arg(long, value_name = "SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub mda_timeout: u64,
    /// Delete each message on the server once it is safely stored.
    #[arg(long, conflicts_with_all = ["keep", "keep_days"])]
    pub delete: bool,
    /// Keep messages on the server (overrides an account's `delete = true`).
    #[arg(long)]
    pub keep: bool,
    /// Keep messages on the server and delete each one N days after it was
    /// first fetched (getmail's delete_after).
    #[arg(long, value_name = "N")]
    pub keep_days: Option<u32>,
    /// Leave messages larger than SIZE (100k, 10M; as LIST gives them) on
    /// the server, and fetch the rest.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    pub skip_larger: Option<u64>,
    /// Delete messages larger than SIZE (100k, 10M) on the server without
    /// reading them; each one is logged.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    pub delete_larger: Option<u64>,
    /// Add a `Received:` header to each message (Maildir, mbox, --mda; never
    /// for .eml files, which keep the received bytes).
    #[arg(long)]
    pub add_received: bool,
    /// Only messages not fetched before. This is the default whenever
    /// the destination's UIDL state exists; the flag is kept for
    /// compatibility and also refuses servers without UIDL.
    #[arg(long, conflicts_with = "all")]
    pub new_only: bool,
    /// Fetch every message again, also those this destination already
    /// holds (by default they are skipped).
    #[arg(long, visible_alias = "refetch")]
    pub all: bool,
    /// Leave messages larger than this many bytes (as LIST gives them)
    /// on the server and report them; a body that grows past it
    /// anyway stops the run (a hostile server streaming without end
    /// must not fill the disk). Nothing refused is deleted.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 30)]
    pub max_size: u64,
    /// Line endings of stored messages (default: lf for Maildir and
    /// mbox, keep for .eml).
    #[arg(long, value_enum, value_name = "MODE")]
    pub line_endings: Option<LineEndings>,
    /// Wait this many seconds for another fetch into the same
    /// destination to finish before giving up (exit 9).
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub lock_timeout: u64,
    /// Fetch every account of the configuration file.
    #[arg(long)]
    pub all_accounts: bool,
    /// How many accounts to fetch at once.
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Print nothing unless something failed (for cron).
    #[arg(short, long)]
    pub quiet: bool,
    /// Poll again every INTERVAL (`90`, `30s`, `5m`, `1h`) until SIGINT or
    /// SIGTERM (then the current message is finished and the session
    /// ends cleanly). A server's LOGIN-DELAY is honoured; an account that
    /// fails is retried after exponentially longer waits (at most an hour,
    /// or INTERVAL if longer).
    #[arg(long, value_name = "INTERVAL", value_parser = parse_interval)]
    pub every: Option<std::time::Duration>,
}

/// `--every`: seconds, or a number with `s`, `m`, `h` or `d`.
pub fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("invalid interval {s:?} (expected e.g. 90, 30s, 5m, 1h)"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("invalid interval unit in {s:?} (use s, m, h or d)")),
    };
    let secs = n
        .checked_mul(mult)
        .filter(|&v| (1..=7 * 86_400).contains(&v))
        .ok_or_else(|| format!("interval {s:?} must be between 1 s and 7 days"))?;
    Ok(std::time::Duration::from_secs(secs))
}

/// `--skip-larger`/`--delete-larger` sizes: `500000`, `100k`, `10M`, `1G`.
fn parse_size_arg(s: &str) -> Result<u64, String> {
    crate::config::parse_size(s)
}

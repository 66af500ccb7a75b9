//! Test harness that starts a real [Dovecot](https://www.dovecot.org/) POP3 server on
//! loopback, for integration tests of the `pop3` client crates.
//!
//! Every [`Dovecot`] instance lives in its own temporary directory: its own
//! `dovecot.conf` (nothing under `/etc/dovecot` is read), its own `base_dir`, `state_dir`,
//! log file, passwd-file, Maildirs, a freshly generated test CA and server certificate, and
//! two free ports on `127.0.0.1`:
//!
//! * [`Dovecot::plain_addr`]: plain POP3 (port 110 style) that offers `STLS`;
//! * [`Dovecot::tls_addr`]: implicit-TLS POP3S (port 995 style).
//!
//! Instances are independent, so tests running in parallel threads can each start their own.
//! Dropping the [`Dovecot`] kills the whole Dovecot process group and removes the directory.
//!
//! # Typical use
//!
//! ```no_run
//! let Some(dovecot) = pop3_dovecot::start_or_skip() else { return };
//! let uidl = dovecot.add_message(dovecot.user(), b"Subject: hi\r\n\r\nhello\r\n").unwrap();
//! // ... connect to dovecot.plain_addr() / dovecot.tls_addr() and log in with
//! // dovecot.user() / dovecot.password() ...
//! assert_eq!(dovecot.message_count(dovecot.user()).unwrap(), 1);
//! # let _ = uidl;
//! ```
//!
//! # What the server looks like
//!
//! * Greeting: `+OK pop3-dovecot ready. <timestamp>` (see [`GREETING_TEXT`]); the
//!   `<timestamp>` is present because APOP is enabled.
//! * `CAPA`: `CAPA TOP UIDL RESP-CODES PIPELINING AUTH-RESP-CODE STLS USER`
//!   `SASL PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256` (`STLS` only on the plain port).
//! * Authentication: `USER`/`PASS`, `APOP`, and `AUTH` with `PLAIN`, `LOGIN`, `CRAM-MD5`,
//!   `SCRAM-SHA-1`, `SCRAM-SHA-256` all work, over plain TCP too (passwords are stored with
//!   the `{PLAIN}` scheme and `disable_plaintext_auth = no`). Failed logins are answered after
//!   about 0.5 s (Dovecot batches failures); the growing per-IP auth penalty is disabled.
//! * `UIDL`: `pop3_uidl_format = %f`, so a message's UIDL is its Maildir base file name, which
//!   is exactly the string [`Dovecot::add_message`] returns.
//! * Message numbers follow the order of [`Dovecot::add_message`] calls.
//! * `DELE` + `QUIT` really expunges: the file disappears from the Maildir
//!   (check with [`Dovecot::message_count`]).
//!
//! # What a client receives for a stored message (LF / CRLF rule)
//!
//! [`Dovecot::add_message`] stores the given bytes unchanged. When a client sends `RETR`,
//! Dovecot converts line endings on the fly. After removing the status line, the final
//! `.\r\n` line and the dot-stuffing (a leading `..` becomes `.`), the client has exactly
//! [`expected_retr`]`(stored)`:
//!
//! 1. every LF (`\n`) that is not already preceded by CR becomes CRLF (`\r\n`); existing CRLF
//!    pairs stay as they are; a lone CR (`\r` not followed by `\n`) is passed through
//!    unchanged;
//! 2. if the result does not end with `\n`, Dovecot appends `\r\n` (the multi-line
//!    terminator has to start on its own line). This includes the empty message, which is
//!    received as `\r\n` (listed with size 0), and a message ending in a lone CR
//!    (`b"x\r"` is received as `b"x\r\r\n"`).
//!
//! All other bytes (NUL, 8-bit, TAB, ...) pass through unchanged, and lines starting with `.`
//! are dot-stuffed on the wire, except the message's first line: Dovecot 2.3 does not stuff
//! a leading `.` of the very first byte, so [`Dovecot::add_message`] refuses messages that
//! start with `.` (a real RFC 5322 message starts with a header field anyway).
//!
//! The size Dovecot reports in `LIST`, `STAT` and the `+OK <n> octets` line of `RETR` is
//! [`expected_size`]`(stored)`: the length after step 1 only, i.e. *without* the CRLF that
//! step 2 may append. So for a message whose stored bytes end in a newline the reported size
//! equals the number of bytes received, otherwise it is 2 less.
//!
//! Example: stored `b"Subject: x\n\nline\n.dot\nlast"` (26 bytes) is listed with size 30 and
//! received as `b"Subject: x\r\n\r\nline\r\n.dot\r\nlast\r\n"` (32 bytes; on the wire the
//! `.dot` line is sent as `..dot`).
//!
//! # Availability policy
//!
//! [`Dovecot::start`] returns [`Error::NotInstalled`] when no `dovecot` binary is found.
//! [`start_or_skip`] turns that into `None` (and prints `SKIPPED: dovecot not installed` to
//! stderr), unless the environment variable [`REQUIRE_ENV`] (`POP3_REQUIRE_DOVECOT`) is `1`,
//! in which case it panics, as it does for every other start failure (with Dovecot's log in the
//! message). `.ci/dovecot-setup.sh` installs Dovecot.
//!
//! # Privileges
//!
//! CI runs as root. Dovecot refuses to run mail processes as uid 0 (`userdb returned 0 as
//! uid`), so as root the mail processes run as uid/gid 65534 (`nobody`/`nogroup`; see
//! [`Options::mail_owner`]) and the harness `chown`s the Maildirs and every message it adds to
//! that owner. The temporary directory is made world-traversable (mode 0755) so that the
//! `dovecot` (auth) and mail users can reach the passwd-file and the Maildirs. When not root,
//! everything (all Dovecot services and the mail processes) runs as the current user.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Environment variable that makes a missing Dovecot a hard failure in [`start_or_skip`].
///
/// CI sets `POP3_REQUIRE_DOVECOT=1`. The values `1`, `true` and `yes` (any case) count as set.
pub const REQUIRE_ENV: &str = "POP3_REQUIRE_DOVECOT";

/// Environment variable naming the `dovecot` binary to use instead of searching `PATH`,
/// `/usr/sbin`, `/usr/local/sbin` and `/sbin`. If it names no executable file, Dovecot counts
/// as not installed.
pub const BINARY_ENV: &str = "POP3_DOVECOT_BIN";

/// Text of the server greeting: the full greeting line is
/// `+OK pop3-dovecot ready. <timestamp>\r\n`, where `<timestamp>` is the APOP timestamp
/// (angle brackets included).
pub const GREETING_TEXT: &str = "pop3-dovecot ready.";

/// The DNS name the server certificate is issued for (it also covers the IP `127.0.0.1`).
pub const SERVER_NAME: &str = "localhost";

/// Default start timeout used by [`Dovecot::start`].
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(10);

/// Users created when [`Options`] names none: `(name, password)`.
pub const DEFAULT_USERS: &[(&str, &str)] = &[("alice", "alice-Secret-1"), ("bob", "bob-Secret-2")];

/// uid/gid the mail processes run as when the harness runs as root (`nobody`/`nogroup`).
const ROOT_MAIL_OWNER: (u32, u32) = (65534, 65534);

/// How many times to retry with fresh ports when Dovecot cannot bind the ones picked.
const BIND_ATTEMPTS: usize = 5;

/// Errors from starting or driving a [`Dovecot`] instance.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// No `dovecot` binary was found (see [`BINARY_ENV`]). Install it with
    /// `.ci/dovecot-setup.sh`.
    NotInstalled,
    /// An I/O operation of the harness failed.
    Io {
        /// What the harness was doing.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// Generating the test CA or server certificate failed.
    Certificate(String),
    /// A user name or password given to [`Options::user`] cannot be used.
    InvalidUser {
        /// The offending user name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The user is not one of this instance's users.
    UnknownUser(String),
    /// [`Dovecot::add_message`] refused a message Dovecot would send incorrectly.
    UnsupportedMessage(&'static str),
    /// The Dovecot master process exited during start-up.
    Exited {
        /// Its exit status.
        status: ExitStatus,
        /// Dovecot's stderr and log file contents.
        log: String,
    },
    /// The ports did not answer with a POP3 greeting within the start timeout.
    Timeout {
        /// How long the harness waited.
        waited: Duration,
        /// The last probe failure.
        detail: String,
        /// Dovecot's stderr and log file contents.
        log: String,
    },
}

impl Error {
    /// Dovecot's stderr and log contents, for the errors that happen after Dovecot was run.
    pub fn log(&self) -> Option<&str> {
        match self {
            Error::Exited { log, .. } | Error::Timeout { log, .. } => Some(log),
            _ => None,
        }
    }

    fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotInstalled => write!(
                f,
                "dovecot is not installed (no `dovecot` binary in PATH, /usr/sbin, \
                 /usr/local/sbin or /sbin, and {BINARY_ENV} is unset); run .ci/dovecot-setup.sh"
            ),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Certificate(e) => write!(f, "generating test certificates failed: {e}"),
            Error::InvalidUser { name, reason } => write!(f, "invalid user {name:?}: {reason}"),
            Error::UnknownUser(name) => write!(f, "unknown user {name:?}"),
            Error::UnsupportedMessage(why) => write!(f, "unsupported message: {why}"),
            Error::Exited { status, log } => write!(
                f,
                "dovecot exited during start-up ({status})\n--- dovecot log ---\n{log}"
            ),
            Error::Timeout {
                waited,
                detail,
                log,
            } => write!(
                f,
                "dovecot did not become ready within {waited:?} (last probe: {detail})\n\
                 --- dovecot log ---\n{log}"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A POP3 user of a [`Dovecot`] instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    name: String,
    password: String,
}

impl User {
    /// The login name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The password (works for every mechanism, see the crate docs).
    pub fn password(&self) -> &str {
        &self.password
    }
}

/// Options for starting a [`Dovecot`] instance; [`Dovecot::start`] uses the defaults.
#[derive(Clone, Debug)]
pub struct Options {
    users: Vec<User>,
    start_timeout: Duration,
    binary: Option<PathBuf>,
    mail_owner: Option<(u32, u32)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            users: Vec::new(),
            start_timeout: DEFAULT_START_TIMEOUT,
            binary: None,
            mail_owner: None,
        }
    }
}

impl Options {
    /// Default options: the [`DEFAULT_USERS`], a [`DEFAULT_START_TIMEOUT`] start timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a user. Once any user is added, [`DEFAULT_USERS`] are no longer created.
    ///
    /// Names must be non-empty and consist of lowercase ASCII letters, digits, `.`, `_`, `-`
    /// and `@` (Dovecot lowercases login names before the lookup). Passwords must be non-empty
    /// and must not contain `:`, control characters or non-ASCII characters. Violations are
    /// reported by [`Options::start`] as [`Error::InvalidUser`].
    pub fn user(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        self.users.push(User {
            name: name.into(),
            password: password.into(),
        });
        self
    }

    /// How long [`Options::start`] waits for both ports to greet (default 10 s).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Uses this `dovecot` binary instead of looking for one (see [`BINARY_ENV`]). If it is
    /// not an executable file, starting fails with [`Error::NotInstalled`].
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// uid and gid the mail (`pop3`) processes run as and that own the Maildirs.
    ///
    /// Defaults to 65534/65534 when running as root (Dovecot refuses uid 0) and to the current
    /// uid/gid otherwise. Only root can choose an owner other than itself.
    pub fn mail_owner(mut self, uid: u32, gid: u32) -> Self {
        self.mail_owner = Some((uid, gid));
        self
    }

    /// Starts Dovecot with these options; see [`Dovecot::start`].
    pub fn start(self) -> Result<Dovecot, Error> {
        Dovecot::start_with(self)
    }
}

/// A running Dovecot instance; killed (with all its child processes) and its directory
/// removed on drop.
pub struct Dovecot {
    child: Child,
    plain_addr: SocketAddr,
    tls_addr: SocketAddr,
    users: Vec<User>,
    ca_pem: String,
    ca_der: Vec<u8>,
    ca_path: PathBuf,
    config_path: PathBuf,
    log_path: PathBuf,
    stderr_path: PathBuf,
    mail_root: PathBuf,
    mail_owner: Option<(u32, u32)>,
    seq: AtomicU64,
    startup_time: Duration,
    // Last field: dropped after the process is killed in `Drop::drop`.
    dir: tempfile::TempDir,
}

impl fmt::Debug for Dovecot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dovecot")
            .field("pid", &self.child.id())
            .field("plain_addr", &self.plain_addr)
            .field("tls_addr", &self.tls_addr)
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

struct Certs {
    ca_pem: String,
    ca_der: Vec<u8>,
    server_cert_pem: String,
    server_key_pem: String,
}

fn generate_certs() -> Result<Certs, rcgen::Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "pop3-dovecot test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;

    let server_key = KeyPair::generate()?;
    // Strings that parse as IP addresses become IP SANs.
    let mut params = CertificateParams::new(vec![SERVER_NAME.to_string(), "127.0.0.1".into()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, SERVER_NAME);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let server_cert = params.signed_by(&server_key, &ca_cert, &ca_key)?;

    Ok(Certs {
        ca_pem: ca_cert.pem(),
        ca_der: ca_cert.der().to_vec(),
        server_cert_pem: server_cert.pem(),
        server_key_pem: server_key.serialize_pem(),
    })
}

fn validate_user(user: &User) -> Result<(), Error> {
    let bad = |reason| {
        Err(Error::InvalidUser {
            name: user.name.clone(),
            reason,
        })
    };
    if user.name.is_empty() {
        return bad("empty name");
    }
    if !user.name.bytes().all(|b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-' | b'@')
    }) || user.name.starts_with('.')
    {
        return bad("name must be lowercase ASCII letters, digits, '.', '_', '-', '@'");
    }
    if user.password.is_empty() {
        return bad("empty password");
    }
    if !user
        .password
        .bytes()
        .all(|b| b.is_ascii_graphic() || b == b' ')
        || user.password.contains(':')
    {
        return bad("password must be printable ASCII without ':'");
    }
    Ok(())
}

/// Looks for the `dovecot` binary: [`BINARY_ENV`] if set, else `PATH`, `/usr/sbin`,
/// `/usr/local/sbin`, `/sbin`.
pub fn find_dovecot() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(BINARY_ENV).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return is_executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("dovecot"))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// True if every ancestor of `dir` can be traversed by other users.
fn world_traversable(dir: &Path) -> bool {
    dir.ancestors().all(|a| {
        fs::metadata(a)
            .map(|m| m.permissions().mode() & 0o001 != 0)
            .unwrap_or(false)
    })
}

/// Name of the passwd/group entry with id `id` (3rd field) in `file`.
fn lookup_name(file: &str, id: u32) -> Option<String> {
    let text = fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        (fields.next()?.parse::<u32>().ok()? == id).then(|| name.to_string())
    })
}

fn free_port() -> io::Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", 0))
}

fn read_to_string_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Reads one line (up to and including `\n`) with the stream's read timeout.
fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\n") {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "connection closed before a full line (got {:?})",
                String::from_utf8_lossy(&line)
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn check_greeting(line: &str) -> io::Result<()> {
    if line.starts_with("+OK") {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected greeting {line:?}"),
        ))
    }
}

fn probe_plain(addr: SocketAddr, timeout: Duration) -> io::Result<()> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut reader = BufReader::new(&stream);
    check_greeting(&read_line(&mut reader)?)?;
    (&stream).write_all(b"QUIT\r\n")?;
    let _ = read_line(&mut reader);
    let _ = stream.shutdown(Shutdown::Both);
    Ok(())
}

fn probe_tls(
    addr: SocketAddr,
    timeout: Duration,
    config: Arc<rustls::ClientConfig>,
) -> io::Result<()> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let name = rustls::pki_types::ServerName::try_from(SERVER_NAME)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let conn = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, stream);
    let mut reader = BufReader::new(&mut tls);
    check_greeting(&read_line(&mut reader)?)?;
    drop(reader);
    tls.write_all(b"QUIT\r\n")?;
    let _ = read_line(&mut BufReader::new(&mut tls));
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Ok(())
}

fn client_config_for(ca_der: &[u8]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ca_der.to_vec()))
        .expect("generated CA certificate is valid");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// Identity the Dovecot services run as.
struct Identity {
    root: bool,
    /// (uid, gid) of the mail processes and Maildirs.
    mail_owner: (u32, u32),
    /// Only when not root: (user name, group name) for `default_*_user`.
    unprivileged: Option<(String, String)>,
}

fn identity(options: &Options) -> Result<Identity, Error> {
    let uid = rustix::process::getuid();
    let gid = rustix::process::getgid();
    if uid.is_root() {
        return Ok(Identity {
            root: true,
            mail_owner: options.mail_owner.unwrap_or(ROOT_MAIL_OWNER),
            unprivileged: None,
        });
    }
    let (uid, gid) = (uid.as_raw(), gid.as_raw());
    let user = lookup_name("/etc/passwd", uid)
        .or_else(|| std::env::var("USER").ok())
        .ok_or_else(|| {
            Error::io(
                "looking up the current user name",
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no passwd entry for {uid}"),
                ),
            )
        })?;
    let group = lookup_name("/etc/group", gid).unwrap_or_else(|| user.clone());
    Ok(Identity {
        root: false,
        mail_owner: options.mail_owner.unwrap_or((uid, gid)),
        unprivileged: Some((user, group)),
    })
}

struct Layout<'a> {
    dir: &'a Path,
    plain_port: u16,
    tls_port: u16,
    identity: &'a Identity,
}

fn render_config(l: &Layout<'_>) -> String {
    let dir = l.dir.display();
    let (mail_uid, mail_gid) = l.identity.mail_owner;
    let mut conf = format!(
        r#"# Generated by pop3-dovecot; self-contained (no /etc/dovecot includes).
protocols = pop3
listen = 127.0.0.1
instance_name = pop3-dovecot-{plain}
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
info_log_path = {dir}/dovecot.log
debug_log_path = {dir}/dovecot.log
login_greeting = {greeting}
auth_verbose = yes

ssl = yes
ssl_cert = <{dir}/server-cert.pem
ssl_key = <{dir}/server-key.pem

disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5 scram-sha-1 scram-sha-256 apop
auth_failure_delay = 0
mail_max_userip_connections = 1000

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={dir}/mail/%u allow_all_users=yes
}}
# Dovecot refuses uid 0 for mail processes regardless of these; they just have to admit
# the (possibly low) uid/gid chosen above.
first_valid_uid = {mail_uid}
last_valid_uid = {mail_uid}
first_valid_gid = {mail_gid}
last_valid_gid = {mail_gid}

mail_location = maildir:{dir}/mail/%u
mail_fsync = never
pop3_uidl_format = %f

service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {plain}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {tls}
    ssl = yes
  }}
}}
# Disable the per-IP auth penalty (up to 15 s delays after failed logins): auth cannot
# connect to this socket and then skips the penalty (it logs one error about it).
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"#,
        plain = l.plain_port,
        tls = l.tls_port,
        greeting = GREETING_TEXT,
    );
    if let Some((user, group)) = &l.identity.unprivileged {
        conf.push_str(&format!(
            r#"
# Not running as root: every service runs as the current user, without chroot.
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
service pop3-login {{
  chroot =
}}
service anvil {{
  chroot =
}}
service ipc {{
  chroot =
}}
service old-stats {{
  chroot =
}}
"#
        ));
    }
    conf
}

impl Dovecot {
    /// Starts an instance with default [`Options`]: users [`DEFAULT_USERS`], 10 s timeout.
    ///
    /// Returns [`Error::NotInstalled`] if there is no `dovecot` binary. Blocks until both ports
    /// answer with a `+OK` greeting (the TLS port through a verified TLS handshake).
    pub fn start() -> Result<Dovecot, Error> {
        Self::start_with(Options::default())
    }

    /// Options builder; finish with [`Options::start`].
    pub fn builder() -> Options {
        Options::default()
    }

    /// Starts an instance with the given options; see [`Dovecot::start`].
    pub fn start_with(options: Options) -> Result<Dovecot, Error> {
        let started = Instant::now();
        let binary = match &options.binary {
            Some(b) if is_executable(b) => b.clone(),
            Some(_) => return Err(Error::NotInstalled),
            None => find_dovecot().ok_or(Error::NotInstalled)?,
        };
        let users: Vec<User> = if options.users.is_empty() {
            DEFAULT_USERS
                .iter()
                .map(|(n, p)| User {
                    name: n.to_string(),
                    password: p.to_string(),
                })
                .collect()
        } else {
            options.users.clone()
        };
        for (i, u) in users.iter().enumerate() {
            validate_user(u)?;
            if users[..i].iter().any(|o| o.name == u.name) {
                return Err(Error::InvalidUser {
                    name: u.name.clone(),
                    reason: "duplicate user",
                });
            }
        }
        let identity = identity(&options)?;

        let mut builder = tempfile::Builder::new();
        builder.prefix("pop3-dovecot-");
        let tmp = std::env::temp_dir();
        let dir = if identity.root && !world_traversable(&tmp) {
            // The mail and auth users must reach the directory.
            builder.tempdir_in("/tmp")
        } else {
            builder.tempdir_in(&tmp)
        }
        .map_err(|e| Error::io("creating the temporary directory", e))?;
        let path = dir.path().to_path_buf();
        let io_err = |what: &str| {
            let what = what.to_string();
            move |e| Error::io(what, e)
        };
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
            .map_err(io_err("chmod the temporary directory"))?;

        let certs = generate_certs().map_err(|e| Error::Certificate(e.to_string()))?;
        let write = |name: &str, contents: &[u8], mode: u32| -> Result<PathBuf, Error> {
            let p = path.join(name);
            fs::write(&p, contents).map_err(io_err(&format!("writing {}", p.display())))?;
            fs::set_permissions(&p, fs::Permissions::from_mode(mode))
                .map_err(io_err(&format!("chmod {}", p.display())))?;
            Ok(p)
        };
        let ca_path = write("ca.pem", certs.ca_pem.as_bytes(), 0o644)?;
        write("server-cert.pem", certs.server_cert_pem.as_bytes(), 0o644)?;
        write("server-key.pem", certs.server_key_pem.as_bytes(), 0o600)?;
        let passwd: String = users
            .iter()
            .map(|u| format!("{}:{{PLAIN}}{}::::::\n", u.name, u.password))
            .collect();
        write("passwd", passwd.as_bytes(), 0o644)?;
        fs::create_dir(path.join("state")).map_err(io_err("creating state_dir"))?;

        let mail_root = path.join("mail");
        let chown_to = identity.root.then_some(identity.mail_owner);
        let mkdir = |p: &Path| -> Result<(), Error> {
            fs::create_dir(p).map_err(io_err(&format!("creating {}", p.display())))?;
            fs::set_permissions(p, fs::Permissions::from_mode(0o755))
                .map_err(io_err(&format!("chmod {}", p.display())))?;
            if let Some((uid, gid)) = chown_to {
                std::os::unix::fs::chown(p, Some(uid), Some(gid))
                    .map_err(io_err(&format!("chown {}", p.display())))?;
            }
            Ok(())
        };
        mkdir(&mail_root)?;
        for u in &users {
            let md = mail_root.join(&u.name);
            mkdir(&md)?;
            for sub in ["new", "cur", "tmp"] {
                mkdir(&md.join(sub))?;
            }
        }

        let client_config = client_config_for(&certs.ca_der);
        let config_path = path.join("dovecot.conf");
        let log_path = path.join("dovecot.log");
        let stderr_path = path.join("dovecot.stderr");
        let read_log = || {
            format!(
                "{}{}",
                read_to_string_lossy(&stderr_path),
                read_to_string_lossy(&log_path)
            )
        };

        let mut attempt = 0;
        let (child, plain_addr, tls_addr) = loop {
            attempt += 1;
            let plain = free_port().map_err(io_err("picking a free port"))?;
            let tls = free_port().map_err(io_err("picking a free port"))?;
            let plain_addr = plain.local_addr().map_err(io_err("local_addr"))?;
            let tls_addr = tls.local_addr().map_err(io_err("local_addr"))?;
            let conf = render_config(&Layout {
                dir: &path,
                plain_port: plain_addr.port(),
                tls_port: tls_addr.port(),
                identity: &identity,
            });
            write("dovecot.conf", conf.as_bytes(), 0o644)?;
            let stderr = File::create(&stderr_path).map_err(io_err("creating dovecot.stderr"))?;
            let stdout = stderr.try_clone().map_err(io_err("dup"))?;
            drop((plain, tls));
            let mut child = Command::new(&binary)
                .arg("-F")
                .arg("-c")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(stdout)
                .stderr(stderr)
                // Own process group, so Drop can kill master and all its children at once.
                .process_group(0)
                .spawn()
                .map_err(io_err(&format!("running {}", binary.display())))?;

            match wait_ready(
                &mut child,
                plain_addr,
                tls_addr,
                &client_config,
                started + options.start_timeout,
            ) {
                Ok(()) => break (child, plain_addr, tls_addr),
                Err(e) => {
                    kill_group(&mut child);
                    let log = read_log();
                    match e {
                        Ready::Exited(status) => {
                            if attempt < BIND_ATTEMPTS && log.contains("Address already in use") {
                                continue;
                            }
                            return Err(Error::Exited { status, log });
                        }
                        Ready::Timeout(detail) => {
                            return Err(Error::Timeout {
                                waited: started.elapsed(),
                                detail,
                                log,
                            })
                        }
                        Ready::Io(e) => return Err(Error::io("waiting for dovecot", e)),
                    }
                }
            }
        };

        Ok(Dovecot {
            child,
            plain_addr,
            tls_addr,
            users,
            ca_pem: certs.ca_pem,
            ca_der: certs.ca_der,
            ca_path,
            config_path,
            log_path,
            stderr_path,
            mail_root,
            mail_owner: chown_to,
            seq: AtomicU64::new(0),
            startup_time: started.elapsed(),
            dir,
        })
    }

    /// Address of the plain POP3 port (offers `STLS`).
    pub fn plain_addr(&self) -> SocketAddr {
        self.plain_addr
    }

    /// Address of the implicit-TLS POP3S port. The certificate is valid for
    /// [`SERVER_NAME`] (`localhost`) and the IP `127.0.0.1`, issued by [`Self::ca_cert_pem`].
    pub fn tls_addr(&self) -> SocketAddr {
        self.tls_addr
    }

    /// Name of the first user.
    pub fn user(&self) -> &str {
        &self.users[0].name
    }

    /// Password of the first user.
    pub fn password(&self) -> &str {
        &self.users[0].password
    }

    /// All users of this instance, in the order they were configured.
    pub fn users(&self) -> &[User] {
        &self.users
    }

    /// Password of `user`, if it is one of this instance's users.
    pub fn password_of(&self, user: &str) -> Option<&str> {
        self.find_user(user).ok().map(|u| u.password.as_str())
    }

    /// The test CA certificate (PEM) that issued the server certificate.
    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The test CA certificate (DER).
    pub fn ca_cert_der(&self) -> &[u8] {
        &self.ca_der
    }

    /// Path of a file holding [`Self::ca_cert_pem`] (valid while `self` lives).
    pub fn ca_cert_path(&self) -> &Path {
        &self.ca_path
    }

    /// A rustls client config (ring provider) that trusts only the test CA. Use with
    /// server name [`SERVER_NAME`] or the IP address `127.0.0.1`.
    pub fn rustls_client_config(&self) -> Arc<rustls::ClientConfig> {
        client_config_for(&self.ca_der)
    }

    /// The instance's temporary directory (config, certificates, logs, Maildirs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Path of the generated `dovecot.conf`.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Current contents of Dovecot's stderr and log file, for diagnostics.
    pub fn log(&self) -> String {
        format!(
            "{}{}",
            read_to_string_lossy(&self.stderr_path),
            read_to_string_lossy(&self.log_path)
        )
    }

    /// Process id of the Dovecot master process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How long [`Dovecot::start`] took, from the call until both ports greeted.
    pub fn startup_time(&self) -> Duration {
        self.startup_time
    }

    fn find_user(&self, user: &str) -> Result<&User, Error> {
        self.users
            .iter()
            .find(|u| u.name == user)
            .ok_or_else(|| Error::UnknownUser(user.to_string()))
    }

    /// The Maildir of `user` (with `new/`, `cur/`, `tmp/`).
    pub fn maildir(&self, user: &str) -> Result<PathBuf, Error> {
        let u = self.find_user(user)?;
        Ok(self.mail_root.join(&u.name))
    }

    /// Delivers `message` (stored byte-for-byte, CRLF or LF as given) into `user`'s Maildir
    /// `new/`, and returns its UIDL, which is also its Maildir base file name.
    ///
    /// Messages get POP3 message numbers in the order they were added. Safe to call while
    /// clients are connected (the file is written to `tmp/` and renamed into `new/`); a POP3
    /// session that is already in the TRANSACTION state does not see it. For what a client
    /// receives for these bytes, see [`expected_retr`] and [`expected_size`].
    ///
    /// Returns [`Error::UnsupportedMessage`] for a message whose first byte is `.`: Dovecot
    /// 2.3 does not dot-stuff the very first line of a message, so such a message would be
    /// sent unstuffed (`.\r\n` as the first line even ends the response early). Lines after
    /// the first that start with `.` are stuffed correctly.
    pub fn add_message(&self, user: &str, message: &[u8]) -> Result<String, Error> {
        if message.first() == Some(&b'.') {
            return Err(Error::UnsupportedMessage(
                "starts with '.': Dovecot 2.3 does not dot-stuff a message's first line",
            ));
        }
        let md = self.maildir(user)?;
        let n = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let name = format!("{n:010}.pop3-dovecot");
        let tmp = md.join("tmp").join(&name);
        let dest = md.join("new").join(&name);
        let ctx = |what: &str| {
            let what = format!("{what} {}", tmp.display());
            move |e| Error::io(what, e)
        };
        let mut f = File::create(&tmp).map_err(ctx("creating"))?;
        f.write_all(message).map_err(ctx("writing"))?;
        drop(f);
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).map_err(ctx("chmod"))?;
        if let Some((uid, gid)) = self.mail_owner {
            std::os::unix::fs::chown(&tmp, Some(uid), Some(gid)).map_err(ctx("chown"))?;
        }
        fs::rename(&tmp, &dest).map_err(ctx("moving into new/"))?;
        Ok(name)
    }

    /// UIDLs (Maildir base names) of the messages currently in `user`'s Maildir (`new/` and
    /// `cur/`), sorted. Messages removed by `DELE` + `QUIT` are gone from this list.
    pub fn message_uidls(&self, user: &str) -> Result<Vec<String>, Error> {
        let md = self.maildir(user)?;
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let d = md.join(sub);
            let entries =
                fs::read_dir(&d).map_err(|e| Error::io(format!("reading {}", d.display()), e))?;
            for entry in entries {
                let entry = entry.map_err(|e| Error::io(format!("reading {}", d.display()), e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                let base = name.split(':').next().unwrap_or_default().to_string();
                out.push(base);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Number of messages currently in `user`'s Maildir (`new/` plus `cur/`).
    pub fn message_count(&self, user: &str) -> Result<usize, Error> {
        Ok(self.message_uidls(user)?.len())
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// SIGKILLs the process group led by `child` (master plus every service process) and reaps
/// the master.
fn kill_group(child: &mut Child) {
    let pid = rustix::process::Pid::from_child(child);
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    let _ = child.kill();
    let _ = child.wait();
}

enum Ready {
    Exited(ExitStatus),
    Timeout(String),
    Io(io::Error),
}

fn wait_ready(
    child: &mut Child,
    plain: SocketAddr,
    tls: SocketAddr,
    client_config: &Arc<rustls::ClientConfig>,
    deadline: Instant,
) -> Result<(), Ready> {
    let mut plain_ok = false;
    let mut last = String::from("no probe yet");
    loop {
        if let Some(status) = child.try_wait().map_err(Ready::Io)? {
            return Err(Ready::Exited(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Ready::Timeout(last));
        }
        let budget = (deadline - now).min(Duration::from_secs(2));
        if !plain_ok {
            match probe_plain(plain, budget) {
                Ok(()) => plain_ok = true,
                Err(e) => last = format!("plain port {plain}: {e}"),
            }
        }
        if plain_ok {
            match probe_tls(tls, budget, client_config.clone()) {
                Ok(()) => return Ok(()),
                Err(e) => last = format!("TLS port {tls}: {e}"),
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True if [`REQUIRE_ENV`] is set to `1`, `true` or `yes`.
pub fn dovecot_required() -> bool {
    std::env::var(REQUIRE_ENV)
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
        .unwrap_or(false)
}

/// Starts an instance with default [`Options`], or skips.
///
/// * Dovecot not installed: prints `SKIPPED: dovecot not installed` to stderr and returns
///   `None`, unless [`REQUIRE_ENV`] is set (CI), in which case it panics.
/// * Any other failure: panics, with Dovecot's log in the message.
pub fn start_or_skip() -> Option<Dovecot> {
    start_or_skip_with(Options::default())
}

/// Like [`start_or_skip`], with the given options.
pub fn start_or_skip_with(options: Options) -> Option<Dovecot> {
    match options.start() {
        Ok(d) => Some(d),
        Err(Error::NotInstalled) if dovecot_required() => panic!(
            "{REQUIRE_ENV} is set but dovecot is not installed; run .ci/dovecot-setup.sh \
             (or set {BINARY_ENV})"
        ),
        Err(Error::NotInstalled) => {
            eprintln!(
                "SKIPPED: dovecot not installed (run .ci/dovecot-setup.sh; set \
                 {REQUIRE_ENV}=1 to make this a failure)"
            );
            None
        }
        Err(e) => panic!("starting dovecot failed: {e}"),
    }
}

/// The bytes a client receives for a message stored as `stored` by
/// [`Dovecot::add_message`]: the multi-line `RETR` body after dot-unstuffing, without the
/// status line and without the final `.\r\n` line. See the crate docs for the rule.
pub fn expected_retr(stored: &[u8]) -> Vec<u8> {
    let mut out = crlf(stored);
    if !out.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The size Dovecot reports for a message stored as `stored` (in `LIST`, `STAT` and the
/// `RETR` status line): its length after LF-to-CRLF conversion. See the crate docs.
pub fn expected_size(stored: &[u8]) -> usize {
    crlf(stored).len()
}

fn crlf(stored: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stored.len() + stored.len() / 16 + 2);
    let mut prev = 0u8;
    for &b in stored {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_rule() {
        assert_eq!(expected_retr(b""), b"\r\n");
        assert_eq!(expected_size(b""), 0);
        assert_eq!(expected_retr(b"a\nb"), b"a\r\nb\r\n");
        assert_eq!(expected_size(b"a\nb"), 4);
        assert_eq!(expected_retr(b"a\r\nb\r\n"), b"a\r\nb\r\n");
        assert_eq!(expected_retr(b"a\rb\n"), b"a\rb\r\n");
        let doc = b"Subject: x\n\nline\n.dot\nlast";
        assert_eq!(doc.len(), 26);
        assert_eq!(expected_size(doc), 30);
        assert_eq!(
            expected_retr(doc),
            b"Subject: x\r\n\r\nline\r\n.dot\r\nlast\r\n"
        );
    }

    #[test]
    fn user_validation() {
        let u = |n: &str, p: &str| User {
            name: n.into(),
            password: p.into(),
        };
        assert!(validate_user(&u("alice", "pw")).is_ok());
        assert!(validate_user(&u("a.b-c_d@example.org", "p w!")).is_ok());
        assert!(validate_user(&u("Alice", "pw")).is_err());
        assert!(validate_user(&u("", "pw")).is_err());
        assert!(validate_user(&u("a/b", "pw")).is_err());
        assert!(validate_user(&u("alice", "")).is_err());
        assert!(validate_user(&u("alice", "a:b")).is_err());
        assert!(validate_user(&u("alice", "a\nb")).is_err());
    }

    #[test]
    fn missing_binary_is_not_installed() {
        let err = Options::new()
            .binary("/nonexistent/dovecot")
            .start()
            .unwrap_err();
        assert!(matches!(err, Error::NotInstalled), "{err}");
    }
}

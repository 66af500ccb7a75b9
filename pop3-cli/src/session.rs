//! Resolving the server from the command line (or starting the demo),
//! connecting, logging in and quitting.

use std::time::Duration;

use pop3_blocking::pop3_proto;
use pop3_blocking::pop3_proto::sasl::{Mechanism, SaslError};
pub use pop3_blocking::TcpClient;
use pop3_blocking::{Client, ConnectOptions, Error, Timeouts, TlsFailure, TlsOptions, TlsPolicy};
#[cfg(feature = "demo")]
use pop3_testkit::{Mailbox, ServerHandle};

use crate::cli::Cli;
use crate::config::{expand_home, AccountConf, Config};
use crate::error::{Class, CliError};
use crate::password::{self, Secret};
use crate::target::{parse_url, AuthMode, TlsMode};

/// The demo server's user and password.
pub const DEMO_USER: &str = "demo";
const DEMO_PASSWORD: &str = "demo";

/// The running demo server (built with the `demo` feature; without it
/// there is none, and no value of this type).
#[cfg(feature = "demo")]
pub type DemoServer = ServerHandle;
/// The running demo server (built with the `demo` feature; without it
/// there is none, and no value of this type).
#[cfg(not(feature = "demo"))]
pub type DemoServer = std::convert::Infallible;

/// Everything needed to connect and log in.
pub struct Server {
    /// Host name or IP.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User name (`None` only where no login is needed).
    pub user: Option<String>,
    /// TLS mode.
    pub tls: TlsMode,
    /// Authentication method.
    pub auth: AuthMode,
    /// TLS options (CAs, client certificate).
    pub tls_options: TlsOptions,
    /// Allow credentials without TLS.
    pub allow_cleartext: bool,
    /// Timeout of every wait.
    pub timeout: Duration,
    /// The key of this account in UIDL state files (`user@host:port`,
    /// see [`crate::state::account_key`]).
    pub account: String,
    /// The configuration account this server comes from, if any.
    pub account_name: Option<String>,
    /// Where the account's configuration says the password is (the
    /// command line's `--password-file`/`--password-command` win).
    pub secret_source: SecretSource,
    /// The embedded demo server, when running against it.
    pub demo: Option<DemoServer>,
}

/// The password sources an account's configuration names.
#[derive(Default)]
pub struct SecretSource {
    /// `password_file`.
    pub file: Option<std::path::PathBuf>,
    /// `password_command`.
    pub command: Option<String>,
    /// `password_env`: the name of an environment variable.
    pub env: Option<String>,
    /// `password` (the file was checked to be private).
    pub literal: Option<String>,
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretSource")
            .field("file", &self.file)
            .field("command", &self.command.is_some())
            .field("env", &self.env)
            .field("literal", &self.literal.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("tls", &self.tls)
            .field("demo", &self.demo.is_some())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// `host:port` for messages (`[v6]:port` for IPv6).
    pub fn display_addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Without the `demo` feature there is no built-in server: a usage error.
#[cfg(not(feature = "demo"))]
fn start_demo(cli: &Cli, _timeout: u64) -> Result<Server, CliError> {
    Err(CliError::usage(if cli.demo {
        "--demo: this pop3 was built without the built-in demo server (feature `demo`)"
    } else {
        "no server given: use a URL (pop3s://user@host) or --host and --user"
    }))
}

/// Starts the demo server: pop3-testkit with the sample mailbox on
/// 127.0.0.1, STLS with a throw-away CA that only this process trusts.
#[cfg(feature = "demo")]
fn start_demo(cli: &Cli, timeout: u64) -> Result<Server, CliError> {
    let handle = pop3_testkit::Server::builder()
        .user(DEMO_USER, DEMO_PASSWORD)
        .mailbox(Mailbox::sample())
        .stls(true)
        .start()
        .map_err(|e| CliError::io("starting the demo server", &e))?;
    let ca = handle
        .ca_cert_pem()
        .ok_or_else(|| CliError::usage("the demo server has no TLS certificate"))?;
    say!(
        "pop3: DEMO: {}, so this is the built-in demo server at {} \
         (pop3-testkit: {} sample messages, STLS with a throw-away CA, user {DEMO_USER:?}).\n\
         pop3: give a server (pop3s://user@host, or --host/--user) to read real mail.",
        if cli.demo {
            "--demo given"
        } else {
            "no server given"
        },
        handle.addr(),
        Mailbox::sample().len()
    );
    Ok(Server {
        host: String::from("127.0.0.1"),
        port: handle.port(),
        user: Some(String::from(DEMO_USER)),
        tls: TlsMode::Starttls,
        auth: AuthMode::Auto,
        tls_options: TlsOptions::new()
            .without_default_roots()
            .add_ca_pem(ca.into_bytes()),
        allow_cleartext: false,
        timeout: Duration::from_secs(timeout),
        account: String::from("demo@pop3-demo:0"),
        account_name: None,
        secret_source: SecretSource::default(),
        demo: Some(handle),
    })
}

/// The configuration account the command line asks for, if any (one at
/// most: several accounts are for `fetch`, which resolves each itself).
pub fn selected_account(cli: &Cli) -> Result<Option<(String, AccountConf)>, CliError> {
    match cli.account.as_slice() {
        [] => Ok(None),
        [name] => {
            let config = Config::load(cli.config.as_deref())?;
            Ok(Some((name.clone(), config.account(name)?)))
        }
        _ => Err(CliError::usage(
            "this command works on one account; give --account once",
        )),
    }
}

/// Works out the server from the URL and flags (flags win), or starts the
/// demo when none is given (or `--demo`).
pub fn resolve(cli: &Cli) -> Result<Server, CliError> {
    let account = selected_account(cli)?;
    resolve_with(cli, account.as_ref().map(|(n, a)| (n.as_str(), a)))
}

/// [`resolve`] for one configuration account (`None`: flags only).
pub fn resolve_with(cli: &Cli, account: Option<(&str, &AccountConf)>) -> Result<Server, CliError> {
    let empty = AccountConf::default();
    let (account_name, conf) = match account {
        Some((n, a)) => (Some(n), a),
        None => (None, &empty),
    };
    let timeout = cli
        .timeout
        .or(conf.timeout)
        .unwrap_or(crate::cli::DEFAULT_TIMEOUT);
    let from_config = conf.url.is_some() || conf.host.is_some();
    if cli.demo || (cli.url.is_none() && cli.host.is_none() && !from_config) {
        return start_demo(cli, timeout);
    }
    // The command line's URL or host replaces the account's server as a
    // whole (so an account's host never mixes with a URL's port).
    let (url, conf_host, conf_port) = if cli.url.is_some() || cli.host.is_some() {
        (cli.url.clone(), None, None)
    } else {
        (conf.url.clone(), conf.host.clone(), conf.port)
    };
    let url = match &url {
        Some(u) => parse_url(u)?,
        None => Default::default(),
    };
    let host = cli.host.clone().or(conf_host).unwrap_or(url.host);
    if host.is_empty() {
        return Err(CliError::usage("no server host given"));
    }
    let port = cli.port.or(conf_port).or(url.port);
    let conf_tls = match conf.tls.as_deref() {
        Some("implicit") => Some(TlsMode::Implicit),
        Some("starttls") => Some(TlsMode::Starttls),
        Some("none") => Some(TlsMode::None),
        _ => None,
    };
    // --tls wins; then the account's tls; then pop3s:// and port 995 mean
    // implicit TLS; anything else is STLS (required).
    let tls = match (cli.tls.or(conf_tls), url.tls) {
        (Some(t), _) => t,
        (None, Some(TlsMode::Implicit)) => TlsMode::Implicit,
        (None, _) if port == Some(995) => TlsMode::Implicit,
        (None, _) => TlsMode::Starttls,
    };
    let port = port.unwrap_or(match tls {
        TlsMode::Implicit => 995,
        _ => 110,
    });
    let auth = match (&cli.auth, &url.auth, &conf.auth) {
        (Some(a), _, _) | (None, Some(a), _) | (None, None, Some(a)) => AuthMode::parse(a)?,
        (None, None, None) => AuthMode::Auto,
    };
    let user = cli.user.clone().or(url.user).or(conf.user.clone());
    let mut tls_options = TlsOptions::new();
    let ca_file = cli
        .ca_file
        .clone()
        .or(conf.ca_file.as_deref().map(expand_home));
    let ca_only = cli.ca_only || conf.ca_only == Some(true);
    match (&ca_file, ca_only) {
        (Some(ca), only) => {
            if only {
                tls_options = tls_options.without_default_roots();
            }
            tls_options = tls_options.add_ca_pem_file(ca);
        }
        (None, true) => return Err(CliError::usage("--ca-only needs --ca-file")),
        (None, false) => {}
    }
    let client_auth = match (&cli.client_cert, &cli.client_key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        _ => match (&conf.client_cert, &conf.client_key) {
            (Some(c), Some(k)) => Some((expand_home(c), expand_home(k))),
            (None, None) => None,
            _ => {
                return Err(CliError::usage(format!(
                    "account {:?}: client_cert and client_key go together",
                    account_name.unwrap_or("")
                )))
            }
        },
    };
    if let Some((cert, key)) = &client_auth {
        tls_options = tls_options.client_auth_pem_files(cert, key);
    }
    if cli.fingerprint.is_some() && tls == TlsMode::None {
        return Err(CliError::usage("--fingerprint needs TLS (not --tls none)"));
    }
    if let Some(pin) = cli.fingerprint {
        tls_options = tls_options.pin_sha256(pin);
    }
    if tls != TlsMode::None {
        // Read and check the CA and client-certificate files now: a bad path
        // must be reported as such, not as a failure to connect.
        tls_options.client_config().map_err(|e| {
            let which = match (&ca_file, &client_auth) {
                (Some(_), Some(_)) => "--ca-file / --client-cert / --client-key",
                (Some(_), None) => "--ca-file",
                (None, Some(_)) => "--client-cert / --client-key",
                (None, None) => "TLS setup",
            };
            CliError {
                class: Class::Tls,
                message: format!("{which}: {e}"),
            }
        })?;
    }
    let account = crate::state::account_key(user.as_deref().unwrap_or(""), &host, port);
    let secret_source = if cli.password_file.is_some() || cli.password_command.is_some() {
        SecretSource::default()
    } else {
        SecretSource {
            file: conf.password_file.as_deref().map(expand_home),
            command: conf.password_command.clone(),
            env: conf.password_env.clone(),
            literal: conf.password.clone(),
        }
    };
    Ok(Server {
        host,
        port,
        user,
        tls,
        auth,
        tls_options,
        allow_cleartext: cli.allow_cleartext || conf.allow_cleartext == Some(true),
        timeout: Duration::from_secs(timeout),
        account,
        account_name: account_name.map(String::from),
        secret_source,
        demo: None,
    })
}

/// How long a plain-text connection (STLS or `--tls none`) waits for the
/// first byte of the greeting before it concludes that the port expects
/// TLS from the first byte (an implicit-TLS port waits for our ClientHello
/// and says nothing). Clamped to `--timeout`. Servers greet at once; a few
/// seconds leaves room for a slow reverse-DNS lookup on the server.
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects and applies the TLS policy (TLS is up when this returns,
/// unless `--tls none`).
pub fn connect(s: &Server) -> Result<TcpClient, CliError> {
    let policy = match s.tls {
        TlsMode::Implicit => TlsPolicy::Implicit,
        TlsMode::Starttls => TlsPolicy::Required,
        TlsMode::None => TlsPolicy::None,
    };
    let options = ConnectOptions::new()
        .policy(policy)
        .timeouts(Timeouts::all(s.timeout).first_byte(FIRST_BYTE_TIMEOUT.min(s.timeout)))
        .tls(s.tls_options.clone())
        .allow_cleartext_credentials(s.allow_cleartext);
    Client::connect(&s.host, s.port, &options).map_err(|e| {
        let context = format!("connecting to {}", s.display_addr());
        if s.tls == TlsMode::Starttls && e.tls_failure() == Some(TlsFailure::NotTls) {
            // Not a wrong port: the server said +OK to STLS, then went on
            // in plain text (a broken server, or someone in the middle).
            return CliError {
                class: Class::Tls,
                message: format!(
                    "{context}: TLS error: the server accepted STLS but then did not speak TLS"
                ),
            };
        }
        CliError::pop3(context, &e)
    })
}

/// Checks, before connecting, that a login will be possible: a user is
/// known, and cleartext is allowed when there is no TLS.
pub fn check_login_possible(s: &Server) -> Result<&str, CliError> {
    let user = s
        .user
        .as_deref()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| CliError::usage("no user given (use --user or user@ in the URL)"))?;
    if s.tls == TlsMode::None && !s.allow_cleartext {
        // Exit 2, as --help says (the library's own refusal maps to it too).
        return Err(CliError::usage(
            "--tls none sends the password in cleartext: add --allow-cleartext to really do that",
        ));
    }
    Ok(user)
}

/// Gets the secret (not needed for the demo).
pub fn secret_for(s: &Server, cli: &Cli) -> Result<Secret, CliError> {
    if s.demo.is_some() {
        return Ok(Secret::new(String::from(DEMO_PASSWORD)));
    }
    let user = check_login_possible(s)?;
    let src = &s.secret_source;
    let sources = password::Sources {
        file: cli.password_file.as_deref().or(src.file.as_deref()),
        command: cli.password_command.as_deref().or(src.command.as_deref()),
        env: src.env.as_deref(),
        literal: src.literal.as_deref(),
        timeout: s.timeout.max(Duration::from_secs(60)),
    };
    password::obtain(&sources, &format!("{user}@{}", s.host))
}

/// Builds the mechanism through the core's factory (shared with the
/// adapters), with a nonce from the OS for SCRAM.
fn mechanism(name: &str, user: &str, secret: &str) -> Result<Box<dyn Mechanism>, CliError> {
    let mut nonce = [0u8; 24];
    getrandom::getrandom(&mut nonce).map_err(|e| CliError {
        class: Class::Io,
        message: format!("no randomness for the SASL nonce: {e}"),
    })?;
    pop3_proto::login::mechanism(name, user, secret, &nonce).map_err(|e| match e {
        SaslError::InvalidInput(pop3_proto::login::UNSUPPORTED) => {
            CliError::usage(format!("unsupported SASL mechanism {name}"))
        }
        e => CliError {
            class: Class::Auth,
            message: format!("{name}: {e}"),
        },
    })
}

/// Logs in with the chosen method.
pub fn login(c: &mut TcpClient, s: &Server, secret: &Secret) -> Result<(), CliError> {
    let user = check_login_possible(s)?;
    let ctx = format!("logging in as {}", crate::sanitize::clean(user));
    let fail = |e: Error| CliError::pop3(&ctx, &e);
    match &s.auth {
        AuthMode::Auto => {
            c.login(user, secret.expose()).map_err(fail)?;
        }
        AuthMode::User => {
            c.user_pass(user, secret.expose()).map_err(fail)?;
        }
        AuthMode::Apop => {
            c.apop(user, secret.expose()).map_err(fail)?;
        }
        AuthMode::Sasl(name) => {
            let m = mechanism(name, user, secret.expose())?;
            c.authenticate(m).map_err(fail)?;
        }
    }
    Ok(())
}

/// Connects and logs in. A failed login (a `-ERR` to USER, PASS, APOP or
/// AUTH, whatever its response code) still ends the session with QUIT
/// when the connection is usable.
pub fn open(s: &Server, cli: &Cli) -> Result<TcpClient, CliError> {
    open_with(s, cli, false)
}

/// [`open`] for a fetch, which lists right after logging in: the login
/// also fetches LIST and UIDL, sent with the CAPA refresh (one round trip
/// under PIPELINING), and the client's next `list()` / `uidl()` are
/// answered from them.
pub fn open_for_fetch(s: &Server, cli: &Cli) -> Result<TcpClient, CliError> {
    open_with(s, cli, true)
}

fn open_with(s: &Server, cli: &Cli, prefetch_listing: bool) -> Result<TcpClient, CliError> {
    let secret = secret_for(s, cli)?;
    let mut c = connect(s)?;
    c.set_prefetch_listing(prefetch_listing);
    if let Err(e) = login(&mut c, s, &secret) {
        return Err(abort(&mut c, e));
    }
    Ok(c)
}

/// Ends a session that failed with `e` politely: QUIT when the connection
/// is still usable (after a server `-ERR`, a local file error, ...), so the
/// server releases the maildrop at once. QUIT's own outcome is not
/// reported: `e` is what failed. A broken connection (timeout, protocol
/// error, reset) sends nothing.
pub fn abort(c: &mut TcpClient, e: CliError) -> CliError {
    // A broken client refuses QUIT at once, without any I/O.
    let _ = c.quit();
    e
}

/// Ends a session after `r`, the outcome of the work done in it: QUIT
/// after success (`Ok(deletions)`: a `-ERR` to QUIT then means those
/// deletions were not applied), or [`abort`] after a failure.
pub fn finish(c: &mut TcpClient, r: Result<usize, CliError>) -> Result<(), CliError> {
    match r {
        Ok(deletions) => quit(c, deletions),
        Err(e) => Err(abort(c, e)),
    }
}

/// Ends the session with QUIT. `deletions` is how many messages were
/// marked: a `-ERR` then means they were not deleted, which is reported.
pub fn quit(c: &mut TcpClient, deletions: usize) -> Result<(), CliError> {
    match c.quit() {
        Ok(_) => Ok(()),
        Err(e) => quit_error(e, deletions),
    }
}

/// The error for a failed QUIT after `deletions` were marked.
pub fn quit_error(e: Error, deletions: usize) -> Result<(), CliError> {
    match e {
        e @ Error::Server { .. } if deletions > 0 => {
            let base = CliError::pop3("QUIT", &e);
            Err(CliError {
                class: Class::Server,
                message: format!(
                    "{}: the server did NOT apply the {deletions} deletion(s); \
                     the messages are still on the server",
                    base.message
                ),
            })
        }
        e => Err(CliError::pop3("QUIT", &e)),
    }
}

//! The configuration file: `[defaults]` plus `[accounts.NAME]` tables, an
//! account may `inherit = "OTHER"` (like mpop's `account a : b`).
//!
//! Where: `--config FILE`, else `$XDG_CONFIG_HOME/pop3/config.toml`, else
//! `~/.config/pop3/config.toml`. It is read only when an account is asked
//! for (`--account NAME`, `fetch --all-accounts`).
//!
//! ```toml
//! [defaults]
//! tls = "implicit"
//! timeout = 60
//!
//! [accounts.work]
//! url = "pop3s://alice@mail.example.com"
//! password_command = "pass show mail/work"
//! maildir = "~/Mail/work"
//! delete = true
//!
//! [accounts.home]
//! inherit = "work"
//! url = "pop3s://alice@pop.home.example"
//! maildir = "~/Mail/home"
//! ```
//!
//! Values: the command-line flags win over the account, the account over
//! what it inherits, that over `[defaults]`. An unknown key is an error
//! naming the file, the line and the key. A `password` in the file is
//! refused unless the file is readable by its owner only (mode 0600).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Class, CliError};

/// One `[accounts.NAME]` or `[defaults]` table as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConf {
    /// Another account whose values this one starts from.
    pub inherit: Option<String>,
    /// `pop3s://user@host:port` or `pop3://...`.
    pub url: Option<String>,
    /// Host (instead of, or overriding, the URL's).
    pub host: Option<String>,
    /// Port.
    pub port: Option<u16>,
    /// User name.
    pub user: Option<String>,
    /// `implicit`, `starttls` or `none`.
    pub tls: Option<String>,
    /// `auto`, `user`, `apop` or a SASL mechanism.
    pub auth: Option<String>,
    /// Extra trusted CA certificates (PEM).
    pub ca_file: Option<PathBuf>,
    /// Trust only `ca_file`, not the system's (or bundled) roots.
    pub ca_only: Option<bool>,
    /// Client certificate chain (PEM).
    pub client_cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub client_key: Option<PathBuf>,
    /// Allow credentials without TLS.
    pub allow_cleartext: Option<bool>,
    /// A shell command printing the password.
    pub password_command: Option<String>,
    /// A file whose first line is the password.
    pub password_file: Option<PathBuf>,
    /// The name of an environment variable holding the password.
    pub password_env: Option<String>,
    /// The password itself (only in a file of mode 0600).
    pub password: Option<String>,
    /// Timeout in seconds.
    pub timeout: Option<u64>,
    /// Deliver into this Maildir.
    pub maildir: Option<PathBuf>,
    /// Append to this mbox.
    pub mbox: Option<PathBuf>,
    /// One .eml file per message in this directory.
    pub eml_dir: Option<PathBuf>,
    /// Pipe each message to this command.
    pub mda: Option<String>,
    /// Delete messages once stored.
    pub delete: Option<bool>,
    /// Keep messages on the server this many days after the first fetch.
    pub keep_days: Option<u32>,
    /// Leave messages bigger than this on the server (`100k`, `10M`).
    pub skip_larger: Option<Size>,
    /// Delete messages bigger than this unread.
    pub delete_larger: Option<Size>,
}

/// A size: a number of bytes, or a string with a `k`/`M`/`G` suffix
/// (powers of 1024).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "SizeRepr")]
pub struct Size(pub u64);

#[derive(Deserialize)]
#[serde(untagged)]
enum SizeRepr {
    Number(u64),
    Text(String),
}

impl TryFrom<SizeRepr> for Size {
    type Error = String;
    fn try_from(r: SizeRepr) -> Result<Size, String> {
        match r {
            SizeRepr::Number(n) => Ok(Size(n)),
            SizeRepr::Text(t) => parse_size(&t).map(Size),
        }
    }
}

/// Parses `123`, `100k`, `10M`, `1G` (also `kb`, `MiB`, case-insensitive
/// suffixes; powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("invalid size {s:?} (expected e.g. 500000, 100k, 10M)"))?;
    let mult: u64 = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("invalid size suffix in {s:?} (use k, M or G)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRepr {
    #[serde(default)]
    defaults: AccountConf,
    #[serde(default)]
    accounts: BTreeMap<String, AccountConf>,
}

/// A loaded configuration file.
#[derive(Debug)]
pub struct Config {
    /// Where it was read from.
    pub path: PathBuf,
    /// Whether only its owner can read it (mode 0600 or stricter).
    pub private: bool,
    defaults: AccountConf,
    accounts: BTreeMap<String, AccountConf>,
}

/// The default location: `$XDG_CONFIG_HOME/pop3/config.toml`, else
/// `~/.config/pop3/config.toml`.
pub fn default_path() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
        return Some(PathBuf::from(x).join("pop3/config.toml"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".config/pop3/config.toml"))
}

fn config_error(path: &Path, message: impl std::fmt::Display) -> CliError {
    CliError {
        class: Class::Usage,
        message: format!("{}: {message}", path.display()),
    }
}

/// Line (1-based) of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl Config {
    /// Reads `path` (or the default location).
    pub fn load(path: Option<&Path>) -> Result<Config, CliError> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => default_path().ok_or_else(|| {
                CliError::usage("no configuration file: neither XDG_CONFIG_HOME nor HOME is set")
            })?,
        };
        let meta = std::fs::metadata(&path)
            .map_err(|e| CliError::io(format!("reading configuration {}", path.display()), &e))?;
        if !meta.is_file() {
            return Err(config_error(&path, "not a regular file"));
        }
        // 1 MiB is far more than any configuration; a bigger file is a mistake.
        if meta.len() > 1 << 20 {
            return Err(config_error(&path, "larger than 1 MiB"));
        }
        let private = {
            use std::os::unix::fs::PermissionsExt;
            meta.permissions().mode() & 0o077 == 0
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| CliError::io(format!("reading configuration {}", path.display()), &e))?;
        Config::parse(&path, &text, private)
    }

    /// Parses the text of a configuration file read from `path`.
    pub fn parse(path: &Path, text: &str, private: bool) -> Result<Config, CliError> {
        let repr: FileRepr = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| format!("line {}: ", line_of(text, s.start)))
                .unwrap_or_default();
            // toml's message names the key ("unknown field `x`, expected
            // one of ..."); keep only that, not its ASCII-art excerpt.
            let msg = e.message().replace("field", "key");
            config_error(path, format!("{line}{msg}"))
        })?;
        let config = Config {
            path: path.to_path_buf(),
            private,
            defaults: repr.defaults,
            accounts: repr.accounts,
        };
        if config.defaults.inherit.is_some() {
            return Err(config_error(path, "[defaults] cannot inherit"));
        }
        // Resolve every account now, so a broken one is reported whatever
        // account was asked for.
        for name in config.accounts.keys() {
            config.account(name)?;
        }
        Ok(config)
    }

    /// The account names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.accounts.keys().cloned().collect()
    }

    /// Account `name` with what it inherits and the defaults filled in.
    pub fn account(&self, name: &str) -> Result<AccountConf, CliError> {
        let mut chain: Vec<&str> = Vec::new();
        let mut current = name;
        loop {
            if chain.contains(&current) {
                chain.push(current);
                return Err(config_error(
                    &self.path,
                    format!("inherit loop: {}", chain.join(" -> ")),
                ));
            }
            let conf = self.accounts.get(current).ok_or_else(|| {
                let what = if chain.is_empty() {
                    format!("no account {current:?}")
                } else {
                    format!(
                        "account {:?} inherits unknown account {current:?}",
                        chain[chain.len() - 1]
                    )
                };
                let known = self.names();
                config_error(
                    &self.path,
                    if known.is_empty() {
                        format!("{what} (the file defines no [accounts.NAME])")
                    } else {
                        format!("{what} (accounts: {})", known.join(", "))
                    },
                )
            })?;
            chain.push(current);
            match &conf.inherit {
                Some(parent) => current = parent,
                None => break,
            }
        }
        // Most specific last: merge from the defaults up to `name`.
        let mut merged = self.defaults.clone();
        for n in chain.iter().rev() {
            merged = overlay(merged, &self.accounts[*n]);
        }
        merged.inherit = None;
        if merged.password.is_some() && !self.private {
            return Err(CliError {
                class: Class::Usage,
                message: format!(
                    "{}: account {name:?} has a password in the file, but the file can be \
                     read by other users: chmod 600 {} (or use password_command, \
                     password_file or password_env)",
                    self.path.display(),
                    self.path.display()
                ),
            });
        }
        let dests = [
            merged.maildir.is_some(),
            merged.mbox.is_some(),
            merged.eml_dir.is_some(),
            merged.mda.is_some(),
        ];
        if dests.iter().filter(|&&d| d).count() > 1 {
            return Err(config_error(
                &self.path,
                format!(
                    "account {name:?} has more than one destination (maildir, mbox, eml_dir, mda)"
                ),
            ));
        }
        let secrets = [
            merged.password.is_some(),
            merged.password_command.is_some(),
            merged.password_file.is_some(),
            merged.password_env.is_some(),
        ];
        if secrets.iter().filter(|&&d| d).count() > 1 {
            return Err(config_error(
                &self.path,
                format!(
                    "account {name:?} has more than one of password, password_command, \
                     password_file, password_env"
                ),
            ));
        }
        if let Some(t) = &merged.tls {
            if !matches!(t.as_str(), "implicit" | "starttls" | "none") {
                return Err(config_error(
                    &self.path,
                    format!("account {name:?}: tls = {t:?} (expected implicit, starttls or none)"),
                ));
            }
        }
        if merged.timeout == Some(0) || merged.timeout.is_some_and(|t| t > 86400) {
            return Err(config_error(
                &self.path,
                format!("account {name:?}: timeout must be 1 to 86400 seconds"),
            ));
        }
        if merged.port == Some(0) {
            return Err(config_error(
                &self.path,
                format!("account {name:?}: port 0"),
            ));
        }
        Ok(merged)
    }
}

/// `over`'s values replace `base`'s, a destination or a password source as
/// a whole (an account that names an mbox drops an inherited maildir).
fn overlay(base: AccountConf, over: &AccountConf) -> AccountConf {
    let o = over.clone();
    let dest_set =
        o.maildir.is_some() || o.mbox.is_some() || o.eml_dir.is_some() || o.mda.is_some();
    let secret_set = o.password.is_some()
        || o.password_command.is_some()
        || o.password_file.is_some()
        || o.password_env.is_some();
    let (maildir, mbox, eml_dir, mda) = if dest_set {
        (o.maildir, o.mbox, o.eml_dir, o.mda)
    } else {
        (base.maildir, base.mbox, base.eml_dir, base.mda)
    };
    let (password, password_command, password_file, password_env) = if secret_set {
        (
            o.password,
            o.password_command,
            o.password_file,
            o.password_env,
        )
    } else {
        (
            base.password,
            base.password_command,
            base.password_file,
            base.password_env,
        )
    };
    // A URL and host/port/user: the more specific table's wins as a whole,
    // so an inherited url's host does not mix with a new port.
    let (url, host, port, user) = if o.url.is_some() || o.host.is_some() {
        (o.url, o.host, o.port, o.user)
    } else {
        (
            base.url,
            base.host,
            o.port.or(base.port),
            o.user.or(base.user),
        )
    };
    AccountConf {
        inherit: o.inherit,
        url,
        host,
        port,
        user,
        tls: o.tls.or(base.tls),
        auth: o.auth.or(base.auth),
        ca_file: o.ca_file.or(base.ca_file),
        ca_only: o.ca_only.or(base.ca_only),
        client_cert: o.client_cert.or(base.client_cert),
        client_key: o.client_key.or(base.client_key),
        allow_cleartext: o.allow_cleartext.or(base.allow_cleartext),
        password_command,
        password_file,
        password_env,
        password,
        timeout: o.timeout.or(base.timeout),
        maildir,
        mbox,
        eml_dir,
        mda,
        delete: o.delete.or(base.delete),
        keep_days: o.keep_days.or(base.keep_days),
        skip_larger: o.skip_larger.or(base.skip_larger),
        delete_larger: o.delete_larger.or(base.delete_larger),
    }
}

/// Expands a leading `~/` to `$HOME/`.
pub fn expand_home(p: &Path) -> PathBuf {
    match (p.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) if p.starts_with("~/") || p == Path::new("~") => {
            PathBuf::from(home).join(rest)
        }
        _ => p.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, CliError> {
        Config::parse(Path::new("/etc/test.toml"), text, true)
    }

    #[test]
    fn inherit_and_defaults() {
        let c = parse(
            "[defaults]\ntimeout = 60\ntls = \"implicit\"\n\
             [accounts.a]\nurl = \"pop3s://alice@a.example\"\nmaildir = \"/m/a\"\ndelete = true\n\
             [accounts.b]\ninherit = \"a\"\nurl = \"pop3s://bob@b.example:1995\"\nmbox = \"/m/b\"\n",
        )
        .unwrap();
        let b = c.account("b").unwrap();
        assert_eq!(b.url.as_deref(), Some("pop3s://bob@b.example:1995"));
        assert_eq!(b.mbox.as_deref(), Some(Path::new("/m/b")));
        assert_eq!(b.maildir, None, "a destination replaces the inherited one");
        assert_eq!(b.delete, Some(true));
        assert_eq!(b.timeout, Some(60));
        assert_eq!(b.tls.as_deref(), Some("implicit"));
        assert_eq!(c.names(), ["a", "b"]);
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = parse("[accounts.a]\nurl = \"pop3s://a@b\"\npasword = \"x\"\n").unwrap_err();
        assert_eq!(e.class, Class::Usage);
        assert!(
            e.message.starts_with("/etc/test.toml: line 3: "),
            "{}",
            e.message
        );
        assert!(e.message.contains("pasword"), "{}", e.message);
        let e = parse("[acounts.a]\n").unwrap_err();
        assert!(
            e.message.contains("line 1") && e.message.contains("acounts"),
            "{}",
            e.message
        );
    }

    #[test]
    fn loops_and_unknown_parents() {
        let e =
            parse("[accounts.a]\ninherit = \"b\"\n[accounts.b]\ninherit = \"a\"\n").unwrap_err();
        assert!(e.message.contains("inherit loop"), "{}", e.message);
        let e = parse("[accounts.a]\ninherit = \"zz\"\n").unwrap_err();
        assert!(
            e.message.contains("unknown account \"zz\""),
            "{}",
            e.message
        );
        let c = parse("[accounts.a]\nhost = \"h\"\n").unwrap();
        let e = c.account("nope").unwrap_err();
        assert!(
            e.message.contains("no account \"nope\" (accounts: a)"),
            "{}",
            e.message
        );
    }

    #[test]
    fn password_needs_a_private_file() {
        let text = "[accounts.a]\nhost = \"h\"\npassword = \"hunter2\"\n";
        let e = Config::parse(Path::new("/c.toml"), text, false).unwrap_err();
        assert!(e.message.contains("chmod 600"), "{}", e.message);
        assert!(!e.message.contains("hunter2"));
        assert!(Config::parse(Path::new("/c.toml"), text, true).is_ok());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100k"), Ok(100 * 1024));
        assert_eq!(parse_size("10M"), Ok(10 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("512"), Ok(512));
        assert!(parse_size("10X").is_err());
        assert!(parse_size("k").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
        let c = parse("[accounts.a]\nhost = \"h\"\nskip_larger = \"10M\"\ndelete_larger = 5000\n")
            .unwrap();
        let a = c.account("a").unwrap();
        assert_eq!(a.skip_larger, Some(Size(10 << 20)));
        assert_eq!(a.delete_larger, Some(Size(5000)));
        assert!(parse("[accounts.a]\nskip_larger = \"lots\"\n").is_err());
    }

    #[test]
    fn conflicting_values_are_refused() {
        assert!(parse("[accounts.a]\nmaildir = \"/a\"\nmbox = \"/b\"\n").is_err());
        assert!(parse("[accounts.a]\npassword_env = \"X\"\npassword_file = \"/p\"\n").is_err());
        assert!(parse("[accounts.a]\ntls = \"maybe\"\n").is_err());
        assert!(parse("[accounts.a]\ntimeout = 0\n").is_err());
        assert!(parse("[defaults]\ninherit = \"a\"\n").is_err());
    }
}

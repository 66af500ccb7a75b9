//! Where the password (or OAuth bearer token) comes from: never argv.
//!
//! Order: `--password-file`, `--password-command`, the `POP3_PASSWORD`
//! environment variable, an interactive prompt (no echo, only when stdin
//! and stderr are terminals).

use std::fmt;
use std::io::{IsTerminal, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Class, CliError};

/// The environment variable holding the password.
pub const PASSWORD_ENV: &str = "POP3_PASSWORD";

/// A password or token. Its `Debug` shows nothing; it is overwritten with
/// zeros when dropped.
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: String) -> Secret {
        Secret(s)
    }

    /// The secret itself (only to hand it to the client).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.fill(0);
        std::hint::black_box(&bytes);
    }
}

/// The first line of `text`, without its line ending.
fn first_line(mut text: String) -> String {
    if let Some(i) = text.find(['\n', '\r']) {
        let mut rest = text.split_off(i).into_bytes();
        rest.fill(0);
    }
    text
}

/// Reads the secret from a file (its first line).
fn from_file(path: &Path) -> Result<Secret, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::io(format!("reading --password-file {}", path.display()), &e))?;
    Ok(Secret(first_line(text)))
}

/// Runs `command` with `sh -c` (stdin and stderr inherited, so it may
/// prompt), takes the first line of its output; bounded by `timeout`.
fn from_command(command: &str, timeout: Duration) -> Result<Secret, CliError> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| CliError::io("starting --password-command", &e))?;
    let mut stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(s) = stdout.as_mut() {
            // Bounded: a helper printing endless output is cut at 64 KiB.
            let _ = s.take(64 * 1024).read_to_end(&mut out);
        }
        out
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(CliError {
                    class: Class::Timeout,
                    message: format!(
                        "--password-command did not finish within {} s",
                        timeout.as_secs()
                    ),
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(CliError::io("waiting for --password-command", &e)),
        }
    };
    let out = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(CliError {
            class: Class::Auth,
            message: format!("--password-command failed ({status})"),
        });
    }
    let text = String::from_utf8(out)
        .map_err(|_| CliError::usage("--password-command printed something that is not UTF-8"))?;
    Ok(Secret(first_line(text)))
}

/// Where to look, from the command line.
#[derive(Debug, Default)]
pub struct Sources<'a> {
    /// `--password-file`.
    pub file: Option<&'a Path>,
    /// `--password-command`.
    pub command: Option<&'a str>,
    /// A configured environment variable name (`password_env`): it must be
    /// set, [`PASSWORD_ENV`] is not consulted instead.
    pub env: Option<&'a str>,
    /// A password from a private configuration file.
    pub literal: Option<&'a str>,
    /// How long the command may take.
    pub timeout: Duration,
}

/// Gets the secret for `user@host` (`prompt_for` is shown by the prompt).
pub fn obtain(src: &Sources<'_>, prompt_for: &str) -> Result<Secret, CliError> {
    let secret = if let Some(path) = src.file {
        from_file(path)?
    } else if let Some(cmd) = src.command {
        from_command(cmd, src.timeout)?
    } else if let Some(name) = src.env {
        let value = std::env::var_os(name).ok_or_else(|| {
            CliError::usage(format!(
                "password_env: the environment variable {name} is not set"
            ))
        })?;
        Secret(
            value
                .into_string()
                .map_err(|_| CliError::usage(format!("{name} is not valid UTF-8")))?,
        )
    } else if let Some(p) = src.literal {
        Secret(p.to_string())
    } else if let Some(value) = std::env::var_os(PASSWORD_ENV) {
        Secret(
            value
                .into_string()
                .map_err(|_| CliError::usage(format!("{PASSWORD_ENV} is not valid UTF-8")))?,
        )
    } else if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        let p = rpassword::prompt_password(format!("Password for {prompt_for}: "))
            .map_err(|e| CliError::io("reading the password", &e))?;
        Secret(p)
    } else {
        return Err(CliError::usage(format!(
            "no password: set {PASSWORD_ENV}, or use --password-file or --password-command"
        )));
    };
    if secret.0.is_empty() {
        return Err(CliError::usage("the password is empty"));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::new(String::from("hunter2"));
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn command_and_first_line() {
        let s = from_command("printf 'tok en\\nsecond\\n'", Duration::from_secs(20)).unwrap();
        assert_eq!(s.expose(), "tok en");
        let e = from_command("exit 3", Duration::from_secs(20)).unwrap_err();
        assert_eq!(e.class, Class::Auth);
        assert_eq!(first_line(String::from("a\r\nb")), "a");
    }
}

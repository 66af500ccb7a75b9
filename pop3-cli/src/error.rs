//! The CLI's errors and their exit codes.

use std::fmt;
use std::io;

use pop3_blocking::pop3_proto::session::{SessionError, Timeout, Waiting};
use pop3_blocking::pop3_proto::UsageError;
use pop3_blocking::{Error, ErrorKind, SecurityError, TlsFailure};

use crate::sanitize::clean;

/// The class of a failure; each has its own exit code (see the crate
/// documentation and `pop3 --help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Bad command line, or a request that cannot be carried out (exit 2).
    Usage,
    /// The server answered `-ERR` (exit 3).
    Server,
    /// The server broke the protocol, closed the connection where a reply
    /// was due, or cut a message short (exit 4).
    Protocol,
    /// Authentication failed (exit 5).
    Auth,
    /// TLS handshake, certificate or TLS policy failure (exit 6).
    Tls,
    /// The server (or a password command) did not answer in time (exit 7).
    Timeout,
    /// Network or local file I/O failed (exit 8).
    Io,
    /// Another fetch holds the destination's lock (exit 9).
    Locked,
    /// Whoever reads our output closed it (`pop3 retr 1 | head`): the
    /// session still ends with QUIT, then the program exits quietly with 0.
    PipeClosed,
}

impl Class {
    /// The process exit code of this class.
    pub fn code(self) -> u8 {
        match self {
            Class::Usage => 2,
            Class::Server => 3,
            Class::Protocol => 4,
            Class::Auth => 5,
            Class::Tls => 6,
            Class::Timeout => 7,
            Class::Io => 8,
            Class::Locked => 9,
            Class::PipeClosed => 0,
        }
    }
}

/// A failure to report: its class and a message that names what failed.
/// Server text in the message is already neutralised.
#[derive(Debug)]
pub struct CliError {
    /// The class (exit code).
    pub class: Class,
    /// The message (one line, safe for a terminal).
    pub message: String,
}

impl CliError {
    /// A usage error.
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError {
            class: Class::Usage,
            message: message.into(),
        }
    }

    /// A local I/O error, with what was being done.
    pub fn io(what: impl fmt::Display, e: &io::Error) -> CliError {
        let class = match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Class::Timeout,
            io::ErrorKind::BrokenPipe => Class::PipeClosed,
            _ => Class::Io,
        };
        CliError {
            class,
            message: format!("{what}: {e}"),
        }
    }

    /// Classifies a client error; `context` names the step that failed
    /// (`"connecting to host:995"`, `"RETR 3"`, ...).
    pub fn pop3(context: impl fmt::Display, e: &Error) -> CliError {
        let class = classify(e);
        let detail = match e {
            Error::Server { command, response } => {
                format!("{command} failed: {}", clean(&response.to_string()))
            }
            Error::GreetingRefused(r) => {
                format!(
                    "the server refused the connection: {}",
                    clean(&r.to_string())
                )
            }
            Error::Security(SecurityError::CleartextCredentials) => String::from(
                "refusing to send credentials without TLS (use --allow-cleartext to override)",
            ),
            Error::Usage(UsageError::ApopUnavailable) => format!(
                "{} (or it was seen in cleartext before STLS, and is not used); \
                 nothing was sent: try --auth user or a SASL mechanism",
                e
            ),
            Error::Tls(_) => tls_detail(e),
            Error::Timeout(io)
                if waited_for(io).map(|t| t.waiting_for) == Some(Waiting::FirstByte) =>
            {
                let limit = waited_for(io).map(|t| t.limit).unwrap_or_default();
                format!(
                    "timed out: not one byte of a greeting in {limit:?}: \
                     this port expects TLS from the first byte; try pop3s://"
                )
            }
            other => clean(&other.to_string()),
        };
        CliError {
            class,
            message: format!("{context}: {detail}"),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What a timed-out session was waiting for, and how long.
fn waited_for(io: &io::Error) -> Option<&Timeout> {
    match io.get_ref()?.downcast_ref::<SessionError>()? {
        SessionError::Timeout(t) => Some(t),
        _ => None,
    }
}

/// A TLS failure told the way a user can act on it: the refused
/// certificate's issuer and fingerprint with the options that help, or
/// the hint that the port speaks plain POP3.
fn tls_detail(e: &Error) -> String {
    let failure = e.tls_failure().unwrap_or(TlsFailure::Other);
    if failure == TlsFailure::NotTls {
        return String::from(
            "TLS error: the server answered in plain text where a TLS record was expected: \
             this port speaks plain POP3; try pop3:// or --tls starttls",
        );
    }
    let Some(r) = e.rejected_certificate() else {
        return clean(&format!("TLS error: {failure}: {e}"));
    };
    let c = &r.certificate;
    let unknown = "(unreadable)";
    let what = format!(
        "TLS error: {failure}: the server's certificate (subject {}, issuer {}, \
         SHA-256 fingerprint {})",
        c.subject.as_deref().unwrap_or(unknown),
        c.issuer.as_deref().unwrap_or(unknown),
        c.sha256
    );
    let hint = match failure {
        TlsFailure::UnknownIssuer => format!(
            "; if you trust this server, give its CA with --ca-file PEM, \
             or pin this certificate with --fingerprint {}",
            c.sha256
        ),
        TlsFailure::NameMismatch => {
            String::from("; connect with the name the certificate was issued for")
        }
        TlsFailure::Expired | TlsFailure::NotYetValid => format!(
            " (valid {} to {}); check the clock, or ask the server's admin",
            c.not_before.as_deref().unwrap_or(unknown),
            c.not_after.as_deref().unwrap_or(unknown)
        ),
        TlsFailure::PinMismatch => {
            String::from("; the server changed its certificate, or someone is in the middle")
        }
        _ => format!(": {}", r.cause),
    };
    clean(&format!("{what}{hint}"))
}

/// The class of a client error.
pub fn classify(e: &Error) -> Class {
    match e {
        // Only our own output can be a pipe (the body went to stdout).
        Error::Sink(io) if io.kind() == io::ErrorKind::BrokenPipe => Class::PipeClosed,
        // A wrong password; `[IN-USE]`, `[SYS/TEMP]`, ... are `Server`.
        e if e.is_auth_failure() => Class::Auth,
        Error::Security(SecurityError::NoUsableMechanism) => Class::Auth,
        // Refused before anything was sent; --allow-cleartext is the answer.
        Error::Security(SecurityError::CleartextCredentials) => Class::Usage,
        Error::Security(_) => Class::Tls,
        Error::Usage(UsageError::Sasl(_)) => Class::Auth,
        // --auth apop and a greeting without <timestamp>: nothing was sent,
        // but the login cannot work (an authentication failure, not usage).
        Error::Usage(UsageError::ApopUnavailable) => Class::Auth,
        _ => match e.kind() {
            ErrorKind::Io => Class::Io,
            ErrorKind::Timeout => Class::Timeout,
            ErrorKind::Tls | ErrorKind::Insecure => Class::Tls,
            ErrorKind::Protocol | ErrorKind::Truncated | ErrorKind::Closed => Class::Protocol,
            ErrorKind::Server(_) => Class::Server,
            ErrorKind::Usage => match e {
                // The server went away or the session died earlier.
                Error::Usage(UsageError::Closed) | Error::Usage(UsageError::Poisoned(_)) => {
                    Class::Protocol
                }
                _ => Class::Usage,
            },
            _ => Class::Protocol,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pop3_blocking::pop3_proto::{CommandKind, RespCode};
    use pop3_blocking::ErrResponse;

    fn server(command: CommandKind, code: Option<RespCode>) -> Error {
        Error::Server {
            command,
            response: ErrResponse::new(code, "no\x1b[2J"),
        }
    }

    #[test]
    fn classes() {
        assert_eq!(classify(&server(CommandKind::Pass, None)), Class::Auth);
        assert_eq!(
            classify(&server(CommandKind::Pass, Some(RespCode::InUse))),
            Class::Server
        );
        assert_eq!(classify(&server(CommandKind::Retr, None)), Class::Server);
        let t = Error::Timeout(io::Error::new(io::ErrorKind::TimedOut, "t"));
        assert_eq!(classify(&t), Class::Timeout);
        assert_eq!(classify(&Error::Usage(UsageError::Closed)), Class::Protocol);
        let apop = Error::from(SessionError::Usage(UsageError::ApopUnavailable));
        assert_eq!(classify(&apop), Class::Auth, "APOP without timestamp");
        assert!(CliError::pop3("login", &apop).message.contains("timestamp"));
        assert_eq!(
            classify(&Error::Security(SecurityError::StlsNotOffered)),
            Class::Tls
        );
        let e = CliError::pop3(
            "RETR 3",
            &server(CommandKind::Retr, Some(RespCode::SysTemp)),
        );
        assert_eq!(e.message, "RETR 3: RETR failed: -ERR [SYS/TEMP] no\\x1b[2J");
        let codes: Vec<u8> = [
            Class::Usage,
            Class::Server,
            Class::Protocol,
            Class::Auth,
            Class::Tls,
            Class::Timeout,
            Class::Io,
            Class::Locked,
        ]
        .iter()
        .map(|c| c.code())
        .collect();
        let mut dedup = codes.clone();
        dedup.dedup();
        assert_eq!(codes, dedup);
    }
}

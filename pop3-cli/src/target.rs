//! Where to connect: URL parsing (`pop3s://`, `pop3://`, RFC 2384 `pop://`
//! with `;AUTH=`) and the merge with `--host/--port/--user/--tls/--auth`.

use crate::error::CliError;

/// How to use TLS (`--tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsMode {
    /// TLS from the first byte (POP3S, port 995).
    Implicit,
    /// Plain connection upgraded with STLS before anything else; a server
    /// without STLS is an error.
    Starttls,
    /// No TLS at all (credentials then need --allow-cleartext).
    None,
}

/// What a URL says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedUrl {
    /// `Some(Implicit)` for `pop3s`, `Some(Starttls)` for `pop3`/`pop`.
    pub tls: Option<TlsMode>,
    /// The user, percent-decoded.
    pub user: Option<String>,
    /// The `;AUTH=` value: `*` means automatic, `+APOP` means APOP.
    pub auth: Option<String>,
    /// Host name or IP (IPv6 without brackets).
    pub host: String,
    /// The port, if given.
    pub port: Option<u16>,
}

fn percent_decode(s: &str) -> Result<String, CliError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| CliError::usage("invalid %-escape in the server URL"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| CliError::usage("the server URL is not valid UTF-8"))
}

/// Parses `pop3s://user@host[:port]`, `pop3://user;AUTH=mech@host[:port]/`
/// (also `pop://`, RFC 2384). A password in the URL is refused: secrets
/// never go on the command line.
pub fn parse_url(url: &str) -> Result<ParsedUrl, CliError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| CliError::usage("the server URL must look like pop3s://user@host[:port]"))?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "pop3s" | "pops" => TlsMode::Implicit,
        "pop3" | "pop" => TlsMode::Starttls,
        _ => {
            return Err(CliError::usage(
                "unknown URL scheme (expected pop3s://, pop3:// or pop://)",
            ))
        }
    };
    let rest = rest.split_once('/').map(|(a, _)| a).unwrap_or(rest);
    let (userinfo, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let mut parsed = ParsedUrl {
        tls: Some(tls),
        ..ParsedUrl::default()
    };
    if let Some(userinfo) = userinfo {
        let (user_part, auth) = match userinfo.find(';') {
            Some(i) => (&userinfo[..i], Some(&userinfo[i + 1..])),
            None => (userinfo, None),
        };
        if user_part.contains(':') {
            return Err(CliError::usage(
                "refusing a password in the server URL (it would be visible in the process list); \
                 use POP3_PASSWORD, --password-file or --password-command",
            ));
        }
        if !user_part.is_empty() {
            parsed.user = Some(percent_decode(user_part)?);
        }
        if let Some(auth) = auth {
            let value = auth
                .split_once('=')
                .filter(|(k, _)| k.eq_ignore_ascii_case("auth"))
                .map(|(_, v)| v)
                .ok_or_else(|| {
                    CliError::usage("only ;AUTH=<mechanism> may follow the user in the URL")
                })?;
            parsed.auth = Some(percent_decode(value)?);
        }
    }
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| CliError::usage("unterminated [IPv6] host in the URL"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(CliError::usage("garbage after the [IPv6] host in the URL")),
        };
        (h.to_string(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(CliError::usage("the server URL has no host"));
    }
    parsed.host = host;
    if let Some(p) = port {
        parsed.port = Some(
            p.parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| CliError::usage("invalid port in the server URL"))?,
        );
    }
    Ok(parsed)
}

/// How to authenticate (`--auth`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMode {
    /// The best method offered (SASL, then APOP over TLS, then USER/PASS).
    Auto,
    /// USER/PASS.
    User,
    /// APOP.
    Apop,
    /// A SASL mechanism by name (uppercased).
    Sasl(String),
}

impl AuthMode {
    /// Parses `auto`, `user`, `apop`, or a SASL mechanism name; the URL
    /// forms `*` and `+APOP` are accepted too.
    pub fn parse(s: &str) -> Result<AuthMode, CliError> {
        let upper = s.to_ascii_uppercase();
        Ok(match upper.as_str() {
            "AUTO" | "*" => AuthMode::Auto,
            "USER" | "+USER" | "PASS" => AuthMode::User,
            "APOP" | "+APOP" => AuthMode::Apop,
            "PLAIN" | "LOGIN" | "CRAM-MD5" | "SCRAM-SHA-1" | "SCRAM-SHA-256" | "XOAUTH2"
            | "OAUTHBEARER" => AuthMode::Sasl(upper),
            _ => {
                return Err(CliError::usage(format!(
                    "unsupported --auth {:?} (auto, user, apop, plain, login, cram-md5, \
                     scram-sha-1, scram-sha-256, xoauth2, oauthbearer)",
                    crate::sanitize::clean(s)
                )))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("pop3s://alice@mail.example.com").unwrap();
        assert_eq!(u.tls, Some(TlsMode::Implicit));
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.host, "mail.example.com");
        assert_eq!(u.port, None);

        let u = parse_url("pop://al%40ice;AUTH=+APOP@[::1]:1110/").unwrap();
        assert_eq!(u.tls, Some(TlsMode::Starttls));
        assert_eq!(u.user.as_deref(), Some("al@ice"));
        assert_eq!(u.auth.as_deref(), Some("+APOP"));
        assert_eq!(u.host, "::1");
        assert_eq!(u.port, Some(1110));

        let u = parse_url("pop3://bob;auth=SCRAM-SHA-256@127.0.0.1:110").unwrap();
        assert_eq!(u.auth.as_deref(), Some("SCRAM-SHA-256"));
        assert_eq!(
            AuthMode::parse("scram-sha-256").unwrap(),
            AuthMode::Sasl("SCRAM-SHA-256".into())
        );
        assert_eq!(AuthMode::parse("*").unwrap(), AuthMode::Auto);
        assert_eq!(AuthMode::parse("+APOP").unwrap(), AuthMode::Apop);

        assert!(parse_url("pop3://alice:secret@host").is_err());
        assert!(parse_url("imap://host").is_err());
        assert!(parse_url("pop3://host:0").is_err());
        assert!(parse_url("pop3://host:x").is_err());
        assert!(parse_url("pop3://").is_err());
        assert!(parse_url("host").is_err());
        assert!(parse_url("pop3://a%zz@host").is_err());
        assert!(AuthMode::parse("GSSAPI").is_err());
    }
}

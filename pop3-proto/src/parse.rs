//! Parsers for complete lines (CRLF already removed). No framing here: see
//! `framing.rs`. Every parser is total: any input gives a value or an error,
//! never a panic.

use alloc::string::String;
use alloc::vec::Vec;

use crate::response::{
    Capabilities, Expire, Greeting, Language, ListEntry, RespCode, Stat, Status, Uid, UidlEntry,
};

/// What a status line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StatusLine<'a> {
    /// `+OK` and the rest of the line after the separating space.
    Ok(&'a [u8]),
    /// `-ERR` and the rest of the line.
    Err(&'a [u8]),
    /// `+` alone or `+ data`: a SASL continuation (only meaningful during AUTH).
    Continue(&'a [u8]),
}

/// Splits a status line. Status indicators are matched case-insensitively
/// (some servers send `+ok`), and the space after them is optional (some
/// send `+OKfine` or `-ERRno`): the text is whatever follows, one space or
/// tab removed. A `+` that is not `+OK` is a SASL continuation only when a
/// space, a tab or the end of the line follows. Returns `None` for
/// anything else.
pub(crate) fn status_line(line: &[u8]) -> Option<StatusLine<'_>> {
    fn text(rest: &[u8]) -> &[u8] {
        match rest {
            [b' ' | b'\t', tail @ ..] => tail,
            _ => rest,
        }
    }
    if line.len() >= 3 && line[..3].eq_ignore_ascii_case(b"+OK") {
        return Some(StatusLine::Ok(text(&line[3..])));
    }
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"-ERR") {
        return Some(StatusLine::Err(text(&line[4..])));
    }
    match line {
        [b'+'] => Some(StatusLine::Continue(&[])),
        [b'+', b' ' | b'\t', tail @ ..] => Some(StatusLine::Continue(tail)),
        _ => None,
    }
}

/// Lossy UTF-8 conversion.
pub(crate) fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Lossy UTF-8 of at most 200 bytes, for error messages.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(200)];
    lossy(cut)
}

/// Splits an optional leading `[CODE]` off a status text (RFC 2449 §8).
/// A bracket that is not a well-formed code is left in the text.
pub fn status_text(rest: &[u8]) -> Status {
    if rest.first() == Some(&b'[') {
        if let Some(end) = memchr::memchr(b']', rest) {
            let code = &rest[1..end];
            let valid = !code.is_empty()
                && code
                    .iter()
                    .all(|&b| b.is_ascii_graphic() && b != b'[' && b != b']')
                && !code.starts_with(b"/")
                && !code.ends_with(b"/")
                && memchr::memmem::find(code, b"//").is_none();
            if valid {
                // Valid codes are ASCII, so this conversion is exact.
                let code = RespCode::from_code(&lossy(code));
                let mut text = &rest[end + 1..];
                while let [b' ' | b'\t', tail @ ..] = text {
                    text = tail;
                }
                return Status {
                    code: Some(code),
                    text: lossy(text),
                };
            }
        }
    }
    Status {
        code: None,
        text: lossy(rest),
    }
}

/// Finds the APOP timestamp in a greeting text: the first `<...>` whose
/// inside is printable ASCII without spaces or angle brackets and contains
/// `@` (RFC 1939 §7, RFC 822 msg-id form).
///
/// Linear time: every byte is looked at a bounded number of times, however
/// many `<` the greeting holds.
pub fn apop_timestamp(text: &[u8]) -> Option<String> {
    let mut from = 0;
    while let Some(close_rel) = memchr::memchr(b'>', &text[from..]) {
        let close = from + close_rel;
        // The candidate opens at the last '<' between the previous '>' and
        // this one; earlier '<' would enclose a '<', which is not allowed.
        if let Some(open_rel) = memchr::memrchr(b'<', &text[from..close]) {
            let open = from + open_rel;
            let inner = &text[open + 1..close];
            if !inner.is_empty()
                && inner.contains(&b'@')
                && inner
                    .iter()
                    .all(|&b| b.is_ascii_graphic() && b != b'<' && b != b'>')
            {
                return Some(lossy(&text[open..=close]));
            }
        }
        from = close + 1;
    }
    None
}

/// Parses the greeting's `+OK` text.
pub(crate) fn greeting(rest: &[u8]) -> Greeting {
    Greeting {
        status: status_text(rest),
        apop_timestamp: apop_timestamp(rest),
    }
}

/// Splits off the next space-separated word (spaces and tabs), skipping
/// leading ones.
fn word(input: &[u8]) -> (&[u8], &[u8]) {
    let input = skip_blanks(input);
    let end = input
        .iter()
        .position(|b| *b == b' ' || *b == b'\t')
        .unwrap_or(input.len());
    (&input[..end], &input[end..])
}

fn number<T: core::str::FromStr>(w: &[u8]) -> Option<T> {
    if w.is_empty() || !w.iter().all(u8::is_ascii_digit) {
        return None;
    }
    core::str::from_utf8(w).ok()?.parse().ok()
}

/// A message number: decimal, at least 1.
fn msg_number(w: &[u8]) -> Result<u32, &'static str> {
    match number::<u32>(w) {
        Some(0) => Err("message number 0"),
        Some(n) => Ok(n),
        None => Err("message number is not a number"),
    }
}

/// Parses `count octets [text]` after `+OK` of STAT.
pub fn stat(rest: &[u8]) -> Result<Stat, &'static str> {
    let (c, rest) = word(rest);
    let (o, _) = word(rest);
    Ok(Stat {
        count: number(c).ok_or("message count is not a number")?,
        octets: number(o).ok_or("size is not a number")?,
    })
}

/// Parses `number octets [text]` (a LIST entry, or the `+OK` of `LIST n`).
pub fn list_entry(line: &[u8]) -> Result<ListEntry, &'static str> {
    let (n, rest) = word(line);
    let (o, _) = word(rest);
    let msg = msg_number(n)?;
    Ok(ListEntry {
        number: msg,
        octets: number(o).ok_or("size is not a number")?,
    })
}

/// Parses `number uid` (a UIDL entry, or the `+OK` of `UIDL n`).
pub fn uidl_entry(line: &[u8], lenient: bool) -> Result<UidlEntry, &'static str> {
    let (n, rest) = word(line);
    let msg = msg_number(n)?;
    let uid = if lenient {
        // Everything after the separator, minus surrounding blanks.
        let mut v = skip_blanks(rest);
        while let [head @ .., b' ' | b'\t'] = v {
            v = head;
        }
        Uid::new_lenient(v).ok_or("empty unique-id")?
    } else {
        let (u, tail) = word(rest);
        if !tail.iter().all(|b| *b == b' ' || *b == b'\t') {
            return Err("unique-id contains a space");
        }
        Uid::new(u).ok_or("unique-id is not 1-70 printable ASCII characters")?
    };
    Ok(UidlEntry { number: msg, uid })
}

/// Parses one LANG listing line: `tag SP description`.
pub(crate) fn language(line: &[u8]) -> Result<Language, &'static str> {
    let (tag, rest) = word(line);
    if tag.is_empty() {
        return Err("empty language tag");
    }
    let desc = skip_blanks(rest);
    Ok(Language {
        tag: lossy(tag),
        description: lossy(desc),
    })
}

/// `input` without its leading spaces and tabs.
fn skip_blanks(input: &[u8]) -> &[u8] {
    let start = input
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(input.len());
    &input[start..]
}

/// Adds one CAPA line to `caps`. Never fails (the crate docs' quirks
/// policy): a known capability whose arguments do not follow its grammar
/// is kept verbatim in [`Capabilities::other`]; a capability that takes no
/// arguments (or only `USER`) still counts when it has extra ones, and the
/// line is kept verbatim too, so the deviation stays visible.
pub fn capa_line(caps: &mut Capabilities, line: &[u8]) {
    let (name, rest) = word(line);
    // Bounded by the line length (the caller enforces `max_line_len`).
    let mut args: Vec<&[u8]> = Vec::new();
    let mut r = rest;
    loop {
        let (w, tail) = word(r);
        if w.is_empty() {
            break;
        }
        args.push(w);
        r = tail;
    }
    let is = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
    // `[]` or `[USER]`: the optional per-user marker of RFC 2449 / 6856.
    let user_flag = |args: &[&[u8]]| -> Option<bool> {
        match args {
            [] => Some(false),
            [u] if u.eq_ignore_ascii_case(b"USER") => Some(true),
            _ => None,
        }
    };
    let mut raw = false;
    if name.is_empty() {
        return;
    } else if is("SASL") {
        for m in args {
            let m = lossy(m).to_ascii_uppercase();
            if !caps.sasl.contains(&m) {
                caps.sasl.push(m);
            }
        }
    } else if is("UTF8") {
        let user = user_flag(&args);
        raw = user.is_none();
        caps.utf8 = Some(user.unwrap_or(false) || caps.utf8 == Some(true));
    } else if is("EXPIRE") {
        let policy = args.first().and_then(|p| {
            if p.eq_ignore_ascii_case(b"NEVER") {
                Some(Expire::Never)
            } else {
                number(p).map(Expire::Days)
            }
        });
        match (policy, args.get(1..).and_then(user_flag)) {
            (Some(p), Some(user)) => caps.expire = Some((p, user)),
            _ => raw = true,
        }
    } else if is("LOGIN-DELAY") {
        let secs = args.first().and_then(|s| number(s));
        match (secs, args.get(1..).and_then(user_flag)) {
            (Some(s), Some(user)) => caps.login_delay = Some((s, user)),
            _ => raw = true,
        }
    } else if is("IMPLEMENTATION") {
        caps.implementation = Some(lossy(skip_blanks(rest)));
    } else {
        let flag = if is("TOP") {
            &mut caps.top
        } else if is("USER") {
            &mut caps.user
        } else if is("RESP-CODES") {
            &mut caps.resp_codes
        } else if is("AUTH-RESP-CODE") {
            &mut caps.auth_resp_code
        } else if is("PIPELINING") {
            &mut caps.pipelining
        } else if is("UIDL") {
            &mut caps.uidl
        } else if is("STLS") {
            &mut caps.stls
        } else if is("LANG") {
            &mut caps.lang
        } else {
            caps.other.push(lossy(line));
            return;
        };
        *flag = true;
        raw = !args.is_empty();
    }
    if raw {
        caps.other.push(lossy(line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn status_lines() {
        let cases: &[(&[u8], Option<StatusLine<'_>>)] = &[
            (b"+OK", Some(StatusLine::Ok(b""))),
            (b"+OK ", Some(StatusLine::Ok(b""))),
            (b"+OK 2 320", Some(StatusLine::Ok(b"2 320"))),
            (b"+ok fine", Some(StatusLine::Ok(b"fine"))),
            (b"-ERR", Some(StatusLine::Err(b""))),
            (
                b"-ERR [IN-USE] locked",
                Some(StatusLine::Err(b"[IN-USE] locked")),
            ),
            (b"+", Some(StatusLine::Continue(b""))),
            (b"+ ", Some(StatusLine::Continue(b""))),
            (
                b"+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2U+",
                Some(StatusLine::Continue(
                    b"PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2U+",
                )),
            ),
            (b"+OKfine", Some(StatusLine::Ok(b"fine"))),
            (b"+okAY", Some(StatusLine::Ok(b"AY"))),
            (b"+OK\tTAB", Some(StatusLine::Ok(b"TAB"))),
            (b"+OK  two", Some(StatusLine::Ok(b" two"))),
            (b"-ERRno", Some(StatusLine::Err(b"no"))),
            (b"-errOR", Some(StatusLine::Err(b"OR"))),
            (b"-ERR[IN-USE] x", Some(StatusLine::Err(b"[IN-USE] x"))),
            (b"+O", None),
            (b"-ER", None),
            (b"-", None),
            (b"", None),
            (b"OK", None),
            (b"* OK imap", None),
            (b"+xyz", None),
        ];
        for (input, want) in cases {
            assert_eq!(&status_line(input), want, "{:?}", lossy(input));
        }
    }

    #[test]
    fn response_codes() {
        let cases: &[(&[u8], Option<RespCode>, &str)] = &[
            (
                b"[IN-USE] Do you have another POP session running?",
                Some(RespCode::InUse),
                "Do you have another POP session running?",
            ),
            (b"[LOGIN-DELAY] wait", Some(RespCode::LoginDelay), "wait"),
            (
                b"[SYS/TEMP] try later",
                Some(RespCode::SysTemp),
                "try later",
            ),
            (b"[SYS/PERM] gone", Some(RespCode::SysPerm), "gone"),
            (b"[SYS/TEMP/QUOTA] x", Some(RespCode::SysTemp), "x"),
            (b"[SYS] x", Some(RespCode::Other("SYS".into())), "x"),
            (b"[AUTH] bad password", Some(RespCode::Auth), "bad password"),
            (b"[UTF8] need utf8", Some(RespCode::Utf8), "need utf8"),
            (
                b"[X-VENDOR/A/B] x",
                Some(RespCode::Other("X-VENDOR/A/B".into())),
                "x",
            ),
            (b"[auth] lower", Some(RespCode::Auth), "lower"),
            (b"[] empty", None, "[] empty"),
            (b"[unclosed text", None, "[unclosed text"),
            (b"[A//B] x", None, "[A//B] x"),
            (b"[A B] x", None, "[A B] x"),
            (b"plain text", None, "plain text"),
            (b"[IN-USE]", Some(RespCode::InUse), ""),
        ];
        for (input, code, text) in cases {
            let s = status_text(input);
            assert_eq!(&s.code, code, "{:?}", lossy(input));
            assert_eq!(s.text, *text);
        }
    }

    #[test]
    fn apop_timestamps() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (
                b"POP3 server ready <1896.697170952@dbc.mtview.ca.us>",
                Some("<1896.697170952@dbc.mtview.ca.us>"),
            ),
            (b"<a@b>", Some("<a@b>")),
            (b"ready <no-at-sign> <x@y>", Some("<x@y>")),
            (b"<<<<<a@b>", Some("<a@b>")),
            (b"<a@b c> <d@e>", Some("<d@e>")),
            (b"no timestamp", None),
            (b"<>", None),
            (b"<@>", Some("<@>")),
            (b">>>><<<<", None),
            (b"Dovecot ready.", None),
        ];
        for (input, want) in cases {
            assert_eq!(
                apop_timestamp(input).as_deref(),
                *want,
                "{:?}",
                lossy(input)
            );
        }
    }

    #[test]
    fn apop_timestamp_is_linear() {
        // A million '<' and no '>' (and the reverse) must be quick; the
        // scan is linear, so this finishes in milliseconds.
        let v = vec![b'<'; 1_000_000];
        assert_eq!(apop_timestamp(&v), None);
        let mut v = vec![b'<'; 1_000_000];
        v.extend_from_slice(b"a@b>");
        assert_eq!(apop_timestamp(&v).as_deref(), Some("<a@b>"));
        let mut v = Vec::new();
        for _ in 0..300_000 {
            v.extend_from_slice(b"<a>");
        }
        assert_eq!(apop_timestamp(&v), None);
    }

    #[test]
    fn stat_lines() {
        assert_eq!(
            stat(b"2 320"),
            Ok(Stat {
                count: 2,
                octets: 320
            })
        );
        assert_eq!(
            stat(b"0 0"),
            Ok(Stat {
                count: 0,
                octets: 0
            })
        );
        assert_eq!(
            stat(b"2 320 messages"),
            Ok(Stat {
                count: 2,
                octets: 320
            })
        );
        assert_eq!(
            stat(b"  2   320"),
            Ok(Stat {
                count: 2,
                octets: 320
            })
        );
        assert!(stat(b"").is_err());
        assert!(stat(b"2").is_err());
        assert!(stat(b"x 2").is_err());
        assert!(stat(b"-1 2").is_err());
        assert!(stat(b"99999999999 2").is_err());
        assert_eq!(
            stat(b"1 18446744073709551615"),
            Ok(Stat {
                count: 1,
                octets: u64::MAX
            })
        );
        assert!(stat(b"1 18446744073709551616").is_err());
    }

    #[test]
    fn list_entries() {
        assert_eq!(
            list_entry(b"1 120"),
            Ok(ListEntry {
                number: 1,
                octets: 120
            })
        );
        assert_eq!(
            list_entry(b"3 200 extra"),
            Ok(ListEntry {
                number: 3,
                octets: 200
            })
        );
        assert!(list_entry(b"0 120").is_err());
        assert!(list_entry(b"1").is_err());
        assert!(list_entry(b"a b").is_err());
        assert!(list_entry(b"+1 2").is_err());
    }

    #[test]
    fn uidl_entries() {
        let e = uidl_entry(b"1 whqtswO00WBw418f9t5JxYwZ", false).unwrap();
        assert_eq!(e.number, 1);
        assert_eq!(e.uid.as_str(), Some("whqtswO00WBw418f9t5JxYwZ"));
        assert!(uidl_entry(b"1", false).is_err());
        assert!(uidl_entry(b"1 a b", false).is_err());
        assert!(uidl_entry(b"1 caf\xc3\xa9", false).is_err());
        let long = [b'x'; 71];
        let mut line = b"1 ".to_vec();
        line.extend_from_slice(&long);
        assert!(uidl_entry(&line, false).is_err());
        assert!(uidl_entry(&line[..72], false).is_ok());
        // Lenient mode takes what broken servers send.
        let e = uidl_entry(b"2 a b \xff ", true).unwrap();
        assert_eq!(e.uid.as_bytes(), b"a b \xff");
        assert!(uidl_entry(b"2   ", true).is_err());
    }

    #[test]
    fn capa_lines() {
        let mut c = Capabilities::default();
        for l in [
            &b"TOP"[..],
            b"user",
            b"SASL PLAIN scram-sha-256 PLAIN",
            b"RESP-CODES",
            b"AUTH-RESP-CODE",
            b"PIPELINING",
            b"UIDL",
            b"STLS",
            b"UTF8 USER",
            b"LANG",
            b"EXPIRE 31 USER",
            b"LOGIN-DELAY 900",
            b"IMPLEMENTATION Shlemazle Plotz-v302",
            b"X-FOO bar",
        ] {
            capa_line(&mut c, l);
        }
        assert!(c.top && c.user && c.resp_codes && c.auth_resp_code && c.pipelining);
        assert!(c.uidl && c.stls && c.lang);
        assert_eq!(
            c.sasl,
            vec!["PLAIN".to_string(), "SCRAM-SHA-256".to_string()]
        );
        assert!(c.has_sasl("scram-sha-256"));
        assert_eq!(c.utf8, Some(true));
        assert_eq!(c.expire, Some((Expire::Days(31), true)));
        assert_eq!(c.login_delay, Some((900, false)));
        assert_eq!(c.implementation.as_deref(), Some("Shlemazle Plotz-v302"));
        assert_eq!(c.other, vec!["X-FOO bar".to_string()]);
        capa_line(&mut c, b"EXPIRE NEVER");
        assert_eq!(c.expire, Some((Expire::Never, false)));
    }

    /// The quirks policy: deviations are kept verbatim, never an error,
    /// and never guessed into a typed value.
    #[test]
    fn capa_quirks_are_kept_raw() {
        let mut c = Capabilities::default();
        for l in [
            &b"EXPIRE soon"[..],
            b"EXPIRE",
            b"EXPIRE 99999999999",
            b"EXPIRE 5 USER extra",
            b"LOGIN-DELAY x",
            b"LOGIN-DELAY 10 USER extra",
        ] {
            capa_line(&mut c, l);
        }
        assert_eq!(c.expire, None);
        assert_eq!(c.login_delay, None);
        assert_eq!(c.other.len(), 6);
        assert_eq!(c.other[5], "LOGIN-DELAY 10 USER extra");
        let mut c = Capabilities::default();
        capa_line(&mut c, b"UTF8 ACCEPT");
        assert_eq!(c.utf8, Some(false), "UTF8 is offered, USER is not claimed");
        capa_line(&mut c, b"PIPELINING now");
        assert!(c.pipelining);
        capa_line(&mut c, b"EXPIRENEVER");
        assert_eq!(c.expire, None);
        assert_eq!(c.other, ["UTF8 ACCEPT", "PIPELINING now", "EXPIRENEVER"]);
        capa_line(&mut c, b"UTF8 USER");
        capa_line(&mut c, b"UTF8");
        assert_eq!(c.utf8, Some(true), "a later bare UTF8 keeps USER");
        capa_line(&mut c, b"");
        assert_eq!(c.other.len(), 3);
        let names: Vec<String> = (0..100).map(|i| alloc::format!("X-MECH-{i}")).collect();
        let line = alloc::format!("SASL {}", names.join(" "));
        capa_line(&mut c, line.as_bytes());
        assert_eq!(c.sasl, names);
    }

    #[test]
    fn languages() {
        assert_eq!(
            language(b"en English").unwrap(),
            Language {
                tag: "en".into(),
                description: "English".into()
            }
        );
        assert_eq!(
            language(b"i-default  Default").unwrap().description,
            "Default"
        );
        assert!(language(b"").is_err());
    }
}

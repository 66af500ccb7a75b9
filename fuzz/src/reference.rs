//! Independent reference implementations used as oracles by `checks.rs`:
//! a test-only *server-side* command parser, dot-stuffing as a server does
//! it, the RFC 1939 / 2449 line grammars (STAT, LIST, UIDL, CAPA, response
//! codes, APOP timestamp), base64, and MD5 / SHA-1 / SHA-256 / HMAC / PBKDF2
//! for checking APOP digests and SCRAM signatures.
//!
//! Written from the RFCs and the core's documented behaviour, not from its
//! code, and using only `std`: this file is compiled both into the fuzz crate
//! and into `pop3-proto/tests/fuzz_corpus.rs` (through `#[path]`), so it must
//! not depend on anything else. Speed is not a goal; obviousness is.
#![allow(dead_code)]

use std::fmt::Write as _;

// ---------------------------------------------------------------------------
// Server-side command parser
// ---------------------------------------------------------------------------

/// A command as a POP3 server understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerCmd {
    User(Vec<u8>),
    Pass(Vec<u8>),
    Apop {
        user: Vec<u8>,
        digest: Vec<u8>,
    },
    Rpop(Vec<u8>),
    /// `initial`: `None` when absent, `Some(decoded)` otherwise (`=` is empty).
    Auth {
        mechanism: Vec<u8>,
        initial: Option<Vec<u8>>,
    },
    Stat,
    List(Option<u32>),
    Retr(u32),
    Dele(u32),
    Rset,
    Noop,
    Quit,
    Top(u32, u32),
    Uidl(Option<u32>),
    Capa,
    Stls,
    Utf8,
    Lang(Option<Vec<u8>>),
}

/// The longest command line RFC 2449 §4 allows, CRLF included.
pub const MAX_LINE: usize = 255;

/// Checks the framing of one transmitted line: it ends in exactly one CRLF
/// and holds no other CR, LF or NUL. Returns the line without its CRLF.
pub fn line_body(line: &[u8]) -> Result<&[u8], &'static str> {
    let body = line
        .strip_suffix(b"\r\n")
        .ok_or("line does not end in CRLF")?;
    if body.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err("line holds a CR, LF or NUL besides its CRLF");
    }
    Ok(body)
}

/// Splits transmitted bytes into lines (each with its CRLF); errors when the
/// bytes do not end in CRLF or hold a bare CR, LF or a NUL.
pub fn split_lines(bytes: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    let mut lines = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let lf = rest
            .iter()
            .position(|b| *b == b'\n')
            .ok_or("bytes do not end in CRLF")?;
        let (line, tail) = rest.split_at(lf + 1);
        line_body(line)?;
        lines.push(line);
        rest = tail;
    }
    Ok(lines)
}

fn decimal_u32(w: &[u8]) -> Result<u32, &'static str> {
    if w.is_empty() || w.len() > 10 || !w.iter().all(u8::is_ascii_digit) {
        return Err("not a decimal number");
    }
    let mut n: u64 = 0;
    for d in w {
        n = n * 10 + u64::from(d - b'0');
    }
    u32::try_from(n).map_err(|_| "number too large")
}

fn msg_number(w: &[u8]) -> Result<u32, &'static str> {
    let n = decimal_u32(w)?;
    if n == 0 {
        return Err("message number 0");
    }
    Ok(n)
}

/// Parses one command line (CRLF included) the way a strict server would:
/// keyword in upper case, arguments separated by single spaces, at most 255
/// octets. `PASS` takes the rest of the line (RFC 1939 §7 allows spaces).
pub fn parse_command(line: &[u8]) -> Result<ServerCmd, &'static str> {
    if line.len() > MAX_LINE {
        return Err("command line longer than 255 octets");
    }
    let body = line_body(line)?;
    let (kw, args) = match body.iter().position(|b| *b == b' ') {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let words: Vec<&[u8]> = match args {
        None => Vec::new(),
        Some(a) => a.split(|b| *b == b' ').collect(),
    };
    if kw != b"PASS" && words.iter().any(|w| w.is_empty()) {
        return Err("empty argument (double or trailing space)");
    }
    let one = |words: &[&[u8]]| -> Result<Vec<u8>, &'static str> {
        match words {
            [w] => Ok(w.to_vec()),
            _ => Err("expected exactly one argument"),
        }
    };
    let none = |words: &[&[u8]], c: ServerCmd| {
        if words.is_empty() {
            Ok(c)
        } else {
            Err("unexpected argument")
        }
    };
    let opt_num = |words: &[&[u8]]| -> Result<Option<u32>, &'static str> {
        match words {
            [] => Ok(None),
            [w] => msg_number(w).map(Some),
            _ => Err("too many arguments"),
        }
    };
    match kw {
        b"USER" => one(&words).map(ServerCmd::User),
        b"PASS" => match args {
            Some(a) if !a.is_empty() => Ok(ServerCmd::Pass(a.to_vec())),
            _ => Err("PASS without a password"),
        },
        b"APOP" => match words.as_slice() {
            [user, digest] => {
                if digest.len() != 32
                    || !digest
                        .iter()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
                {
                    return Err("APOP digest is not 32 lowercase hex digits");
                }
                Ok(ServerCmd::Apop {
                    user: user.to_vec(),
                    digest: digest.to_vec(),
                })
            }
            _ => Err("APOP takes two arguments"),
        },
        b"RPOP" => one(&words).map(ServerCmd::Rpop),
        b"AUTH" => {
            let (mech, initial) = match words.as_slice() {
                [m] => (*m, None),
                [m, ir] => (*m, Some(*ir)),
                _ => return Err("AUTH takes a mechanism and an optional initial response"),
            };
            if mech.is_empty()
                || mech.len() > 20
                || !mech.iter().all(|b| {
                    b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_'
                })
            {
                return Err("bad SASL mechanism name");
            }
            let initial = match initial {
                None => None,
                Some(b"=") => Some(Vec::new()),
                Some(ir) => Some(base64_decode(ir, false).ok_or("initial response is not base64")?),
            };
            Ok(ServerCmd::Auth {
                mechanism: mech.to_vec(),
                initial,
            })
        }
        b"STAT" => none(&words, ServerCmd::Stat),
        b"LIST" => opt_num(&words).map(ServerCmd::List),
        b"RETR" => one(&words)
            .and_then(|w| msg_number(&w))
            .map(ServerCmd::Retr),
        b"DELE" => one(&words)
            .and_then(|w| msg_number(&w))
            .map(ServerCmd::Dele),
        b"RSET" => none(&words, ServerCmd::Rset),
        b"NOOP" => none(&words, ServerCmd::Noop),
        b"QUIT" => none(&words, ServerCmd::Quit),
        b"TOP" => match words.as_slice() {
            [n, lines] => Ok(ServerCmd::Top(msg_number(n)?, decimal_u32(lines)?)),
            _ => Err("TOP takes two arguments"),
        },
        b"UIDL" => opt_num(&words).map(ServerCmd::Uidl),
        b"CAPA" => none(&words, ServerCmd::Capa),
        b"STLS" => none(&words, ServerCmd::Stls),
        b"UTF8" => none(&words, ServerCmd::Utf8),
        b"LANG" => match words.as_slice() {
            [] => Ok(ServerCmd::Lang(None)),
            [t] if t.iter().all(u8::is_ascii_graphic) => Ok(ServerCmd::Lang(Some(t.to_vec()))),
            _ => Err("bad LANG argument"),
        },
        _ => Err("unknown command keyword"),
    }
}

// ---------------------------------------------------------------------------
// Server-side framing of bodies and listings
// ---------------------------------------------------------------------------

/// Dot-stuffs a message body as a server does (RFC 1939 §3): a line that
/// starts with `.` gets another `.`; a body that does not end in LF gets a
/// CRLF; then the terminator (`.CRLF`, or `.LF` for `lf_terminator`).
/// Returns the stuffed bytes and the body the client must deliver.
pub fn stuff_body(body: &[u8], lf_terminator: bool) -> (Vec<u8>, Vec<u8>) {
    let mut out = Vec::with_capacity(body.len() + 8);
    let mut at_line_start = true;
    for &b in body {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    let mut delivered = body.to_vec();
    if !at_line_start {
        out.extend_from_slice(b"\r\n");
        delivered.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(if lf_terminator { b".\n" } else { b".\r\n" });
    (out, delivered)
}

/// A multi-line listing: each line dot-stuffed, CRLF, then `.CRLF`.
pub fn listing(lines: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        if l.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(l);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

// ---------------------------------------------------------------------------
// Reply line grammars (RFC 1939, 2449, 3206, 6856)
// ---------------------------------------------------------------------------

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// The words of a line: runs of bytes other than SP and HTAB.
pub fn words(line: &[u8]) -> Vec<&[u8]> {
    line.split(|b| is_blank(*b))
        .filter(|w| !w.is_empty())
        .collect()
}

fn digits_u64(w: &[u8]) -> Option<u64> {
    if w.is_empty() || !w.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: u64 = 0;
    for d in w {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(n)
}

fn digits_u32(w: &[u8]) -> Option<u32> {
    u32::try_from(digits_u64(w)?).ok()
}

/// `+OK count octets [text]` of STAT: `(count, octets)`.
pub fn stat(rest: &[u8]) -> Option<(u32, u64)> {
    let w = words(rest);
    Some((digits_u32(w.first()?)?, digits_u64(w.get(1)?)?))
}

/// `number octets [text]` of LIST: `(number, octets)`.
pub fn list_entry(line: &[u8]) -> Option<(u32, u64)> {
    let w = words(line);
    let n = digits_u32(w.first()?)?;
    if n == 0 {
        return None;
    }
    Some((n, digits_u64(w.get(1)?)?))
}

/// `number uid` of UIDL: strict (RFC 1939: 1-70 of 0x21-0x7E, nothing
/// after) or lenient (everything after the number, trimmed, no CR/LF/NUL).
pub fn uidl_entry(line: &[u8], lenient: bool) -> Option<(u32, Vec<u8>)> {
    let w = words(line);
    let n = digits_u32(w.first()?)?;
    if n == 0 {
        return None;
    }
    if lenient {
        // The number is the first word, so the uid is what follows it.
        let start = line.iter().position(|b| !is_blank(*b))? + w[0].len();
        let mut uid = &line[start..];
        while let [b, tail @ ..] = uid {
            if !is_blank(*b) {
                break;
            }
            uid = tail;
        }
        while let [head @ .., b] = uid {
            if !is_blank(*b) {
                break;
            }
            uid = head;
        }
        if uid.is_empty() || uid.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return None;
        }
        Some((n, uid.to_vec()))
    } else {
        if w.len() != 2 {
            return None;
        }
        let uid = w[1];
        if uid.is_empty() || uid.len() > 70 || !uid.iter().all(|b| (0x21..=0x7e).contains(b)) {
            return None;
        }
        Some((n, uid.to_vec()))
    }
}

/// A response code split off a status text (RFC 2449 §8): `(code, text)`.
/// `code` is `None` when the text does not start with a well-formed
/// `[CODE]`; then `text` is everything.
pub fn status_text(rest: &[u8]) -> (Option<String>, String) {
    if rest.first() == Some(&b'[') {
        if let Some(end) = rest.iter().position(|b| *b == b']') {
            let code = &rest[1..end];
            let levels_ok = code.split(|b| *b == b'/').all(|l| !l.is_empty());
            if !code.is_empty()
                && levels_ok
                && code
                    .iter()
                    .all(|b| b.is_ascii_graphic() && *b != b'[' && *b != b']')
            {
                let mut text = &rest[end + 1..];
                while let [b, tail @ ..] = text {
                    if !is_blank(*b) {
                        break;
                    }
                    text = tail;
                }
                return (
                    Some(String::from_utf8_lossy(code).into_owned()),
                    String::from_utf8_lossy(text).into_owned(),
                );
            }
        }
    }
    (None, String::from_utf8_lossy(rest).into_owned())
}

/// Classifies a response code by its leading levels (RFC 2449 §8, RFC 3206,
/// RFC 6856), case-insensitively: the name of the `RespCode` variant, or
/// `None` for anything else (`RespCode::Other`).
pub fn resp_code_class(code: &str) -> Option<&'static str> {
    let mut levels = code.split('/');
    let first = levels.next().unwrap_or("").to_ascii_uppercase();
    let second = levels.next().map(str::to_ascii_uppercase);
    match (first.as_str(), second.as_deref()) {
        ("IN-USE", _) => Some("InUse"),
        ("LOGIN-DELAY", _) => Some("LoginDelay"),
        ("AUTH", _) => Some("Auth"),
        ("UTF8", _) => Some("Utf8"),
        ("SYS", Some("TEMP")) => Some("SysTemp"),
        ("SYS", Some("PERM")) => Some("SysPerm"),
        _ => None,
    }
}

/// The APOP timestamp of a greeting (RFC 1939 §7): the leftmost `<...>`
/// whose inside is non-empty printable ASCII (no SP, `<` or `>`) and holds
/// an `@`.
pub fn apop_timestamp(text: &[u8]) -> Option<String> {
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'<' {
            let mut j = i + 1;
            let mut ok = true;
            while j < text.len() && text[j] != b'>' && text[j] != b'<' {
                ok &= text[j].is_ascii_graphic();
                j += 1;
            }
            if j < text.len() && text[j] == b'>' {
                let inner = &text[i + 1..j];
                if ok && !inner.is_empty() && inner.contains(&b'@') {
                    return Some(String::from_utf8_lossy(&text[i..=j]).into_owned());
                }
            }
            // Any later candidate starts at or after j.
            i = j;
        } else {
            i += 1;
        }
    }
    None
}

/// The CAPA capabilities the reference understands (RFC 2449 §6, 2595,
/// 5034, 6856), filled in line by line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caps {
    pub top: bool,
    pub user: bool,
    pub sasl: Vec<String>,
    pub resp_codes: bool,
    pub auth_resp_code: bool,
    pub pipelining: bool,
    pub uidl: bool,
    pub stls: bool,
    pub utf8: Option<bool>,
    pub lang: bool,
    /// `(None, per_user)` is `NEVER`.
    pub expire: Option<(Option<u32>, bool)>,
    pub login_delay: Option<(u32, bool)>,
    pub implementation: Option<String>,
    pub other: Vec<String>,
}

/// Adds one CAPA line; never refuses one (the core's quirks policy): a
/// known capability whose arguments break its grammar is kept raw in
/// `other` without its typed value; a flag capability (or UTF8) with
/// unexpected arguments still counts, and is kept raw as well.
pub fn capa_line(caps: &mut Caps, line: &[u8]) {
    let w = words(line);
    let Some((name, args)) = w.split_first() else {
        return;
    };
    let name = String::from_utf8_lossy(name).to_ascii_uppercase();
    let user_flag = |a: &[&[u8]]| match a {
        [] => Some(false),
        [u] if u.eq_ignore_ascii_case(b"USER") => Some(true),
        _ => None,
    };
    let keep_raw = |caps: &mut Caps| caps.other.push(String::from_utf8_lossy(line).into_owned());
    let flag = |caps: &mut Caps, f: fn(&mut Caps) -> &mut bool| {
        *f(caps) = true;
        if !args.is_empty() {
            caps.other.push(String::from_utf8_lossy(line).into_owned());
        }
    };
    match name.as_str() {
        "TOP" => flag(caps, |c| &mut c.top),
        "USER" => flag(caps, |c| &mut c.user),
        "SASL" => {
            for m in args {
                let m = String::from_utf8_lossy(m).to_ascii_uppercase();
                if !caps.sasl.contains(&m) {
                    caps.sasl.push(m);
                }
            }
        }
        "RESP-CODES" => flag(caps, |c| &mut c.resp_codes),
        "AUTH-RESP-CODE" => flag(caps, |c| &mut c.auth_resp_code),
        "PIPELINING" => flag(caps, |c| &mut c.pipelining),
        "UIDL" => flag(caps, |c| &mut c.uidl),
        "STLS" => flag(caps, |c| &mut c.stls),
        "LANG" => flag(caps, |c| &mut c.lang),
        "UTF8" => {
            let user = user_flag(args);
            caps.utf8 = Some(caps.utf8 == Some(true) || user == Some(true));
            if user.is_none() {
                keep_raw(caps);
            }
        }
        "EXPIRE" => {
            let value = args.first().and_then(|v| {
                if v.eq_ignore_ascii_case(b"NEVER") {
                    Some(None)
                } else {
                    digits_u32(v).map(Some)
                }
            });
            match (value, user_flag(args.get(1..).unwrap_or(&[]))) {
                (Some(v), Some(u)) if !args.is_empty() => caps.expire = Some((v, u)),
                _ => keep_raw(caps),
            }
        }
        "LOGIN-DELAY" => {
            let value = args.first().and_then(|v| digits_u32(v));
            match (value, user_flag(args.get(1..).unwrap_or(&[]))) {
                (Some(v), Some(u)) => caps.login_delay = Some((v, u)),
                _ => keep_raw(caps),
            }
        }
        "IMPLEMENTATION" => {
            // The text after the name, leading blanks removed, kept as is.
            let start = line.iter().position(|b| !is_blank(*b)).unwrap_or(0);
            let mut text = &line[start + w[0].len()..];
            while let [b, tail @ ..] = text {
                if !is_blank(*b) {
                    break;
                }
                text = tail;
            }
            caps.implementation = Some(String::from_utf8_lossy(text).into_owned());
        }
        _ => keep_raw(caps),
    }
}

// ---------------------------------------------------------------------------
// base64 (RFC 4648, standard alphabet)
// ---------------------------------------------------------------------------

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64. With `padding_optional`, a missing final `=`
/// padding is accepted too. Non-canonical trailing bits are refused.
pub fn base64_decode(text: &[u8], padding_optional: bool) -> Option<Vec<u8>> {
    let mut text = text.to_vec();
    if text.len() % 4 != 0 {
        if !padding_optional || text.len() % 4 == 1 {
            return None;
        }
        while text.len() % 4 != 0 {
            text.push(b'=');
        }
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let n_chunks = text.len() / 4;
    for (ci, chunk) in text.chunks(4).enumerate() {
        let pad = chunk.iter().rev().take_while(|b| **b == b'=').count();
        if pad > 2 || (pad > 0 && ci + 1 != n_chunks) {
            return None;
        }
        let mut n: u32 = 0;
        for &c in &chunk[..4 - pad] {
            let v = B64.iter().position(|x| *x == c)? as u32;
            n = (n << 6) | v;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        let keep = 3 - pad;
        // Canonical: the bits below the kept bytes must be zero.
        if bytes[keep..].iter().any(|b| *b != 0) {
            return None;
        }
        out.extend_from_slice(&bytes[..keep]);
    }
    Some(out)
}

pub fn hex(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len() * 2);
    for b in data {
        let _ = write!(s, "{b:02x}");
    }
    s
}

// ---------------------------------------------------------------------------
// MD5 (RFC 1321), SHA-1 and SHA-256 (FIPS 180-4), HMAC (RFC 2104), PBKDF2
// ---------------------------------------------------------------------------

/// Merkle–Damgård padding shared by the three hashes (64-byte blocks).
fn md_pad(data: &[u8], big_endian_len: bool) -> Vec<u8> {
    let mut m = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    m.push(0x80);
    while m.len() % 64 != 56 {
        m.push(0);
    }
    if big_endian_len {
        m.extend_from_slice(&bits.to_be_bytes());
    } else {
        m.extend_from_slice(&bits.to_le_bytes());
    }
    m
}

pub fn md5(data: &[u8]) -> Vec<u8> {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    // K[i] = floor(abs(sin(i + 1)) * 2^32)
    let k: Vec<u32> = (0..64)
        .map(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32)
        .collect();
    let mut h: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    for block in md_pad(data, false).chunks(64) {
        let m: Vec<u32> = block
            .chunks(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let [mut a, mut b, mut c, mut d] = h;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        h[0] = h[0].wrapping_add(a);
        h[1] = h[1].wrapping_add(b);
        h[2] = h[2].wrapping_add(c);
        h[3] = h[3].wrapping_add(d);
    }
    h.iter().flat_map(|w| w.to_le_bytes()).collect()
}

pub fn sha1(data: &[u8]) -> Vec<u8> {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    for block in md_pad(data, true).chunks(64) {
        let mut w = [0u32; 80];
        for (i, c) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i / 20 {
                0 => ((b & c) | (!b & d), 0x5A82_7999),
                1 => (b ^ c ^ d, 0x6ED9_EBA1),
                2 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6u32),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().flat_map(|w| w.to_be_bytes()).collect()
}

pub fn sha256(data: &[u8]) -> Vec<u8> {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    for block in md_pad(data, true).chunks(64) {
        let mut w = [0u32; 64];
        for (i, c) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..64 {
            let [a, b, c, d, e, f, g, hh] = v;
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            v = [t1.wrapping_add(t2), a, b, c, d.wrapping_add(t1), e, f, g];
        }
        for (x, y) in h.iter_mut().zip(v) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().flat_map(|w| w.to_be_bytes()).collect()
}

/// A hash function with a 64-byte block (MD5, SHA-1, SHA-256).
pub type HashFn = fn(&[u8]) -> Vec<u8>;

pub fn hmac(hash: HashFn, key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = if key.len() > 64 {
        hash(key)
    } else {
        key.to_vec()
    };
    k.resize(64, 0);
    let mut inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    inner.extend_from_slice(msg);
    let mut outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    outer.extend_from_slice(&hash(&inner));
    hash(&outer)
}

/// `Hi()` of RFC 5802: PBKDF2 with HMAC, first output block only.
pub fn pbkdf2_first_block(hash: HashFn, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut msg = salt.to_vec();
    msg.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(hash, password, &msg);
    let mut out = u.clone();
    for _ in 1..iterations {
        u = hmac(hash, password, &u);
        for (o, x) in out.iter_mut().zip(&u) {
            *o ^= x;
        }
    }
    out
}

/// A SCRAM server's view of one exchange (RFC 5802 §3): given the client's
/// messages, checks the proof and returns the server signature.
pub struct ScramServer {
    pub hash: HashFn,
    pub password: Vec<u8>,
    pub salt: Vec<u8>,
    pub iterations: u32,
}

impl ScramServer {
    /// `client_first_bare`, `server_first` and the client-final message
    /// (with `,p=`): `Some(server_signature)` when the proof is right.
    pub fn verify(
        &self,
        client_first_bare: &str,
        server_first: &str,
        client_final: &str,
    ) -> Option<Vec<u8>> {
        let (without_proof, proof) = client_final.rsplit_once(",p=")?;
        let proof = base64_decode(proof.as_bytes(), false)?;
        let h = self.hash;
        let salted = pbkdf2_first_block(h, &self.password, &self.salt, self.iterations);
        let client_key = hmac(h, &salted, b"Client Key");
        let stored_key = h(&client_key);
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let client_signature = hmac(h, &stored_key, auth_message.as_bytes());
        let recovered: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        if proof.len() != client_signature.len() || h(&recovered) != stored_key {
            return None;
        }
        let server_key = hmac(h, &salted, b"Server Key");
        Some(hmac(h, &server_key, auth_message.as_bytes()))
    }
}

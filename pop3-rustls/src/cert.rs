//! What a person needs to know about a server certificate: subject,
//! issuer, validity and SHA-256 fingerprint ([`CertificateInfo`]), and a
//! certificate pin ([`Fingerprint`]).
//!
//! The fields are read by a small bounded DER walk (the same one the
//! channel binding uses) rather than a full X.509 parser: only display
//! strings are needed, nothing here decides trust (rustls-webpki does
//! that), and a malformed certificate gives `None` fields, never a panic.
//!
//! ```
//! use pop3_rustls::Fingerprint;
//! let hex = "AB:".repeat(31) + "AB";
//! let f: Fingerprint = hex.parse().unwrap();
//! assert_eq!(f, "ab".repeat(32).parse().unwrap());
//! assert_eq!(f.to_string(), hex);
//! assert!("AB:CD".parse::<Fingerprint>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::binding::{expect, tlv};

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const CONTEXT_0: u8 = 0xA0;
const INTEGER: u8 = 0x02;

/// A SHA-256 certificate fingerprint (of the DER certificate), as `mpop
/// --tls-fingerprint` and `fetchmail --sslfingerprint` take it.
///
/// Parsed from 64 hex digits, with or without `:` between the bytes
/// (either case); shown as upper-case pairs separated by `:`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The SHA-256 fingerprint of a DER certificate.
    pub fn of(cert_der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(cert_der).into())
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl From<[u8; 32]> for Fingerprint {
    fn from(bytes: [u8; 32]) -> Self {
        Fingerprint(bytes)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// A string that is not a SHA-256 fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FingerprintError;

impl fmt::Display for FingerprintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SHA-256 fingerprint is 64 hex digits (32 bytes), colons optional")
    }
}

impl std::error::Error for FingerprintError {}

impl FromStr for Fingerprint {
    type Err = FingerprintError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let s = s
            .strip_prefix("SHA256:")
            .or_else(|| s.strip_prefix("sha256:"))
            .unwrap_or(s);
        let colons = s.contains(':');
        let mut out = [0u8; 32];
        let mut n = 0;
        let mut digits = s.bytes().peekable();
        while let Some(hi) = digits.next() {
            let lo = digits.next().ok_or(FingerprintError)?;
            let byte = (hex(hi)? << 4) | hex(lo)?;
            *out.get_mut(n).ok_or(FingerprintError)? = byte;
            n += 1;
            if colons && digits.peek().is_some() && digits.next() != Some(b':') {
                return Err(FingerprintError);
            }
        }
        if n != 32 {
            return Err(FingerprintError);
        }
        Ok(Fingerprint(out))
    }
}

fn hex(b: u8) -> Result<u8, FingerprintError> {
    match b {
        b'0'..=b'9' => Ok(b - b'0'),
        b'a'..=b'f' => Ok(b - b'a' + 10),
        b'A'..=b'F' => Ok(b - b'A' + 10),
        _ => Err(FingerprintError),
    }
}

/// The displayable facts of one certificate. A field the walk could not
/// read is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertificateInfo {
    /// The subject, as `CN=..., O=..., C=...` (RFC 4514 order reversed:
    /// as written in the certificate).
    pub subject: Option<String>,
    /// The issuer, in the same form.
    pub issuer: Option<String>,
    /// `notBefore`, as `YYYY-MM-DD HH:MM:SS UTC`.
    pub not_before: Option<String>,
    /// `notAfter`, in the same form.
    pub not_after: Option<String>,
    /// The SHA-256 fingerprint of the whole DER certificate.
    pub sha256: Fingerprint,
}

impl CertificateInfo {
    /// Reads a DER certificate (never fails: unreadable fields are `None`).
    pub fn parse(cert_der: &[u8]) -> CertificateInfo {
        let fields = tbs_fields(cert_der);
        let (issuer, validity, subject) = match fields {
            Some((i, v, s)) => (Some(i), Some(v), Some(s)),
            None => (None, None, None),
        };
        let (not_before, not_after) = match validity.and_then(parse_validity) {
            Some((b, a)) => (b, a),
            None => (None, None),
        };
        CertificateInfo {
            subject: subject.and_then(name),
            issuer: issuer.and_then(name),
            not_before,
            not_after,
            sha256: Fingerprint::of(cert_der),
        }
    }
}

impl fmt::Display for CertificateInfo {
    /// `subject ..., issuer ..., SHA-256 ...` on one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unknown = "(unreadable)";
        write!(
            f,
            "subject {}, issued by {}, SHA-256 fingerprint {}",
            self.subject.as_deref().unwrap_or(unknown),
            self.issuer.as_deref().unwrap_or(unknown),
            self.sha256
        )
    }
}

/// `(issuer, validity, subject)` of the TBSCertificate, as raw contents.
fn tbs_fields(cert_der: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let (cert, _) = expect(cert_der, SEQUENCE)?;
    let (tbs, _) = expect(cert, SEQUENCE)?;
    let mut rest = tbs;
    // [0] EXPLICIT version, optional.
    if let Some((CONTEXT_0, _, r)) = tlv(rest) {
        rest = r;
    }
    let (_serial, rest) = expect(rest, INTEGER)?;
    let (_signature, rest) = expect(rest, SEQUENCE)?;
    let (issuer, rest) = expect(rest, SEQUENCE)?;
    let (validity, rest) = expect(rest, SEQUENCE)?;
    let (subject, _) = expect(rest, SEQUENCE)?;
    Some((issuer, validity, subject))
}

/// Longest name shown (a hostile certificate may hold a megabyte of it).
const NAME_LIMIT: usize = 512;

/// A distinguished name as `CN=a, O=b`. Only the common attribute types
/// get a short name; others show their dotted OID.
fn name(mut rdns: &[u8]) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    while !rdns.is_empty() {
        let (set, rest) = expect(rdns, SET)?;
        rdns = rest;
        let mut atvs = set;
        while !atvs.is_empty() {
            let (atv, rest) = expect(atvs, SEQUENCE)?;
            atvs = rest;
            let (oid, value) = expect(atv, OID)?;
            let (tag, value, _) = tlv(value)?;
            parts.push(format!("{}={}", attribute(oid), string(tag, value)));
        }
    }
    let mut s = parts.join(", ");
    if s.len() > NAME_LIMIT {
        let mut end = NAME_LIMIT;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    Some(s)
}

fn attribute(oid: &[u8]) -> String {
    const X520: &[u8] = &[0x55, 0x04];
    const EMAIL: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x01];
    if oid == EMAIL {
        return String::from("emailAddress");
    }
    if let Some([n]) = oid.strip_prefix(X520) {
        let short = match n {
            3 => Some("CN"),
            5 => Some("serialNumber"),
            6 => Some("C"),
            7 => Some("L"),
            8 => Some("ST"),
            10 => Some("O"),
            11 => Some("OU"),
            _ => None,
        };
        if let Some(s) = short {
            return String::from(s);
        }
    }
    dotted(oid)
}

fn dotted(oid: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for &b in oid {
        acc = (acc << 7) | u64::from(b & 0x7F);
        if acc > u64::MAX >> 8 {
            return String::from("?");
        }
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.push(first);
                arcs.push(acc - first * 40);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        }
    }
    arcs.iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

/// A directory string for display: UTF-8, Printable, IA5, Teletex (as
/// Latin-1) and BMP (UCS-2) strings; control characters escaped.
fn string(tag: u8, value: &[u8]) -> String {
    let text: String = match tag {
        0x0C => String::from_utf8_lossy(value).into_owned(),
        0x13 | 0x16 | 0x14 => value.iter().map(|&b| char::from(b)).collect(),
        0x1E => value
            .chunks(2)
            .map(|c| match c {
                [a, b] => char::from_u32(u32::from(*a) << 8 | u32::from(*b)).unwrap_or('?'),
                _ => '?',
            })
            .collect(),
        _ => {
            return value.iter().fold(String::from("#"), |mut s, b| {
                s.push_str(&format!("{b:02x}"));
                s
            })
        }
    };
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

type Validity = (Option<String>, Option<String>);

fn parse_validity(v: &[u8]) -> Option<Validity> {
    let (t1, before, rest) = tlv(v)?;
    let (t2, after, _) = tlv(rest)?;
    Some((time(t1, before), time(t2, after)))
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn time(tag: u8, v: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(v).ok()?;
    let s = s.strip_suffix('Z')?;
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let full = match (tag, s.len()) {
        (0x17, 12) => {
            let yy: u32 = s[..2].parse().ok()?;
            let century = if yy >= 50 { "19" } else { "20" };
            format!("{century}{s}")
        }
        (0x18, 14) => s.to_string(),
        _ => return None,
    };
    Some(format!(
        "{}-{}-{} {}:{}:{} UTC",
        &full[..4],
        &full[4..6],
        &full[6..8],
        &full[8..10],
        &full[10..12],
        &full[12..14]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_rcgen_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["pop.test".to_string()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "pop.test");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Test Org");
        params.not_before = rcgen::date_time_ymd(2024, 1, 2);
        params.not_after = rcgen::date_time_ymd(2070, 3, 4);
        let cert = params.self_signed(&key).unwrap();
        let der = cert.der().to_vec();
        let info = CertificateInfo::parse(&der);
        assert_eq!(info.subject.as_deref(), Some("CN=pop.test, O=Test Org"));
        assert_eq!(info.issuer, info.subject, "self-signed");
        assert_eq!(info.not_before.as_deref(), Some("2024-01-02 00:00:00 UTC"));
        assert_eq!(info.not_after.as_deref(), Some("2070-03-04 00:00:00 UTC"));
        assert_eq!(info.sha256, Fingerprint::of(&der));
        assert_eq!(
            info.sha256.as_bytes().to_vec(),
            Sha256::digest(&der).to_vec()
        );
    }

    #[test]
    fn damaged_certificates_give_none_never_a_panic() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = cert.der().to_vec();
        for cut in 0..der.len() {
            let _ = CertificateInfo::parse(&der[..cut]);
        }
        for i in 0..der.len() {
            let mut d = der.clone();
            d[i] ^= 0xFF;
            let _ = CertificateInfo::parse(&d);
        }
        assert_eq!(CertificateInfo::parse(b"").subject, None);
    }

    #[test]
    fn fingerprints_parse_with_or_without_colons() {
        let plain = "0123456789abcdef".repeat(4);
        let f: Fingerprint = plain.parse().unwrap();
        let colons = f.to_string();
        assert_eq!(colons.len(), 32 * 3 - 1);
        assert_eq!(colons.parse::<Fingerprint>().unwrap(), f);
        assert_eq!(plain.to_uppercase().parse::<Fingerprint>().unwrap(), f);
        assert_eq!(format!("SHA256:{plain}").parse::<Fingerprint>().unwrap(), f);
        for bad in [
            "",
            "00",
            &plain[..62],
            &format!("{plain}00"),
            &plain.replace('a', "g"),
            &colons.replacen(':', ";", 1),
            "0:12",
        ] {
            assert!(bad.parse::<Fingerprint>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_and_times() {
        assert_eq!(dotted(&[0x2A, 0x86, 0x48]), "1.2.840");
        assert_eq!(
            time(0x17, b"991231235959Z").as_deref(),
            Some("1999-12-31 23:59:59 UTC")
        );
        assert_eq!(time(0x17, b"99123123595Z"), None);
        assert_eq!(string(0x0C, b"a\nb"), "a\\nb");
        assert_eq!(string(0x1E, &[0, b'h', 0, b'i']), "hi");
        assert_eq!(string(0x04, &[1, 2]), "#0102");
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_without_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let info = CertificateInfo::parse(&bytes);
            proptest::prop_assert_eq!(info.sha256, Fingerprint::of(&bytes));
            if let Some(s) = &info.subject {
                proptest::prop_assert!(s.len() <= NAME_LIMIT + 3);
            }
        }

        #[test]
        fn fingerprints_round_trip(bytes in proptest::prelude::any::<[u8; 32]>()) {
            let f = Fingerprint::from(bytes);
            proptest::prop_assert_eq!(f.to_string().parse::<Fingerprint>().unwrap(), f);
            let plain: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            proptest::prop_assert_eq!(plain.parse::<Fingerprint>().unwrap(), f);
        }
    }
}

//! Channel-binding data of a rustls client connection, for the SCRAM `-PLUS`
//! mechanisms ([`pop3_proto::sasl::ChannelBinding`]).
//!
//! * TLS 1.3: `tls-exporter` (RFC 9266 §2): 32 bytes from
//!   `export_keying_material` with the label
//!   [`EXPORTER_LABEL`] (`EXPORTER-Channel-Binding`) and no context.
//! * TLS 1.2: `tls-server-end-point` (RFC 5929 §4.1): the hash of the
//!   server's end-entity certificate (DER), with the hash function of the
//!   certificate's signature algorithm, except that MD5 and SHA-1 become
//!   SHA-256. A certificate whose signature has no single hash function
//!   (Ed25519, Ed448) or an algorithm this module does not know gives no
//!   binding data, and the caller then does not offer `-PLUS`.
//!
//! Works for a blocking `rustls::ClientConnection` and for the inner
//! connection of a tokio-rustls client stream (`stream.get_ref().1`).
//!
//! ```no_run
//! # fn f(conn: &rustls::ClientConnection) -> Result<(), pop3_proto::sasl::SaslError> {
//! use pop3_proto::login;
//! let binding = pop3_rustls::binding::channel_binding(conn);
//! let _method = login::plan_with(None, None, true, false, binding.is_some());
//! let _m = login::mechanism_with_binding("SCRAM-SHA-256-PLUS", "u", "p", &[7; 18], binding.as_ref())?;
//! # Ok(()) }
//! ```
//!
//! The certificate parsing is a minimal DER walk (`Certificate ::=
//! SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }`, then
//! the algorithm's OID and, for RSASSA-PSS, its hash parameter). It reads
//! only what it needs, bounds-checks every length and never panics; the
//! certificate itself was already verified by rustls.

use pop3_proto::sasl::ChannelBinding;
use rustls::{ClientConnection, ProtocolVersion};
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

/// The TLS exporter label of `tls-exporter` (RFC 9266 §2).
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";

/// The length of `tls-exporter` data (RFC 9266 §2: 32 bytes).
pub const EXPORTER_LEN: usize = 32;

/// The channel-binding data of an established TLS connection:
/// [`ChannelBinding::TlsExporter`] for TLS 1.3,
/// [`ChannelBinding::TlsServerEndPoint`] for TLS 1.2 (see the
/// [module docs](self)); never another variant, never empty.
///
/// `None` while the handshake is still running, for another protocol
/// version, when the exporter fails, or for TLS 1.2 when the server's
/// certificate is missing or its signature algorithm has no single hash
/// function this module knows ([`tls_server_end_point`]).
pub fn channel_binding(conn: &ClientConnection) -> Option<ChannelBinding> {
    if conn.is_handshaking() {
        return None;
    }
    match conn.protocol_version()? {
        ProtocolVersion::TLSv1_3 => {
            let out = conn
                .export_keying_material([0u8; EXPORTER_LEN], EXPORTER_LABEL, None)
                .ok()?;
            Some(ChannelBinding::TlsExporter(out.to_vec()))
        }
        ProtocolVersion::TLSv1_2 => {
            let leaf = conn.peer_certificates()?.first()?;
            tls_server_end_point(leaf.as_ref()).map(ChannelBinding::TlsServerEndPoint)
        }
        _ => None,
    }
}

/// `tls-server-end-point` data of a certificate (DER): its hash with the
/// signature algorithm's hash function, SHA-256 for MD5 and SHA-1
/// (RFC 5929 §4.1). `None` for malformed DER and for signature algorithms
/// without a single known hash (Ed25519, Ed448, unknown OIDs).
///
/// Supported: RSA PKCS #1 v1.5 with MD5, SHA-1, SHA-224, SHA-256, SHA-384,
/// SHA-512; RSASSA-PSS (hash from its parameters, SHA-1 by default); ECDSA
/// with SHA-1, SHA-224, SHA-256, SHA-384, SHA-512; DSA with SHA-1, SHA-224,
/// SHA-256.
pub fn tls_server_end_point(cert_der: &[u8]) -> Option<Vec<u8>> {
    let hash = end_point_hash(cert_der)?;
    Some(match hash {
        Hash::Sha224 => Sha224::digest(cert_der).to_vec(),
        Hash::Sha256 => Sha256::digest(cert_der).to_vec(),
        Hash::Sha384 => Sha384::digest(cert_der).to_vec(),
        Hash::Sha512 => Sha512::digest(cert_der).to_vec(),
    })
}

/// A hash function `tls-server-end-point` can use (MD5 and SHA-1 are
/// already mapped to SHA-256).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;
/// `[0]` constructed, context-specific (RSASSA-PSS-params.hashAlgorithm).
const CONTEXT_0: u8 = 0xA0;

/// The hash RFC 5929 assigns to the certificate's `signatureAlgorithm`.
fn end_point_hash(cert_der: &[u8]) -> Option<Hash> {
    let (cert, _) = expect(cert_der, SEQUENCE)?;
    let (_tbs, rest) = expect(cert, SEQUENCE)?;
    let (algorithm, _) = expect(rest, SEQUENCE)?;
    let (oid, params) = expect(algorithm, OID)?;
    signature_hash(oid, params)
}

/// `1.2.840.113549.1.1` (PKCS #1).
const PKCS1: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01];
/// `1.2.840.10045.4` (ecdsa-with-*).
const ECDSA: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04];
/// `2.16.840.1.101.3.4` (NIST algorithms).
const NIST: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04];
/// `1.2.840.10040.4.3` (dsa-with-sha1).
const DSA_SHA1: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x38, 0x04, 0x03];
/// `1.3.14.3.2.26` (SHA-1).
const SHA1: &[u8] = &[0x2B, 0x0E, 0x03, 0x02, 0x1A];

fn signature_hash(oid: &[u8], params: &[u8]) -> Option<Hash> {
    if let Some(rest) = oid.strip_prefix(PKCS1) {
        return match rest {
            // md5WithRSAEncryption, sha1WithRSAEncryption
            [4] | [5] => Some(Hash::Sha256),
            [11] => Some(Hash::Sha256),
            [12] => Some(Hash::Sha384),
            [13] => Some(Hash::Sha512),
            [14] => Some(Hash::Sha224),
            // id-RSASSA-PSS: the hash is a parameter.
            [10] => pss_hash(params),
            _ => None,
        };
    }
    if let Some(rest) = oid.strip_prefix(ECDSA) {
        return match rest {
            // ecdsa-with-SHA1
            [1] => Some(Hash::Sha256),
            [3, 1] => Some(Hash::Sha224),
            [3, 2] => Some(Hash::Sha256),
            [3, 3] => Some(Hash::Sha384),
            [3, 4] => Some(Hash::Sha512),
            _ => None,
        };
    }
    if oid == DSA_SHA1 {
        return Some(Hash::Sha256);
    }
    if let Some(rest) = oid.strip_prefix(NIST) {
        return match rest {
            // id-dsa-with-sha224, id-dsa-with-sha256
            [3, 1] => Some(Hash::Sha224),
            [3, 2] => Some(Hash::Sha256),
            _ => None,
        };
    }
    None
}

/// The hash of `RSASSA-PSS-params ::= SEQUENCE { hashAlgorithm [0]
/// HashAlgorithm DEFAULT sha1, ... }` (RFC 4055 §3.1).
fn pss_hash(params: &[u8]) -> Option<Hash> {
    let (seq, _) = expect(params, SEQUENCE)?;
    if seq.first() != Some(&CONTEXT_0) {
        // hashAlgorithm absent: SHA-1, which RFC 5929 maps to SHA-256.
        return Some(Hash::Sha256);
    }
    let (explicit, _) = expect(seq, CONTEXT_0)?;
    let (hash_algorithm, _) = expect(explicit, SEQUENCE)?;
    let (oid, _) = expect(hash_algorithm, OID)?;
    if oid == SHA1 {
        return Some(Hash::Sha256);
    }
    match oid.strip_prefix(NIST)? {
        [2, 1] => Some(Hash::Sha256),
        [2, 2] => Some(Hash::Sha384),
        [2, 3] => Some(Hash::Sha512),
        [2, 4] => Some(Hash::Sha224),
        _ => None,
    }
}

/// One DER element with this tag: `(value, rest)`.
pub(crate) fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    match tlv(input)? {
        (t, value, rest) if t == tag => Some((value, rest)),
        _ => None,
    }
}

/// One DER tag-length-value: `(tag, value, rest)`. Single-byte tags only
/// (all the certificate needs here); definite lengths of up to four bytes.
pub(crate) fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, input) = input.split_first()?;
    if tag & 0x1F == 0x1F {
        return None; // multi-byte tag
    }
    let (&first, mut input) = input.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 || input.len() < n {
            return None; // indefinite, too long, or truncated
        }
        let (bytes, rest) = input.split_at(n);
        input = rest;
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    if input.len() < len {
        return None;
    }
    let (value, rest) = input.split_at(len);
    Some((tag, value, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use std::sync::Arc;

    fn der(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match content.len() {
            n if n < 0x80 => out.push(n as u8),
            n if n < 0x100 => out.extend_from_slice(&[0x81, n as u8]),
            n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(content);
        out
    }

    /// A structurally valid certificate shell with this signature algorithm
    /// (OID bytes, then raw parameter bytes).
    fn shell(oid: &[u8], params: &[u8]) -> Vec<u8> {
        let tbs = der(SEQUENCE, &der(0x02, &[1]));
        let mut alg = der(OID, oid);
        alg.extend_from_slice(params);
        let mut cert = tbs;
        cert.extend(der(SEQUENCE, &alg));
        cert.extend(der(0x03, &[0, 1, 2, 3]));
        der(SEQUENCE, &cert)
    }

    fn cat(a: &[u8], b: &[u8]) -> Vec<u8> {
        [a, b].concat()
    }

    fn pss(hash_oid: Option<&[u8]>) -> Vec<u8> {
        let inner = match hash_oid {
            Some(oid) => der(CONTEXT_0, &der(SEQUENCE, &der(OID, oid))),
            None => der(0xA2, &der(0x02, &[20])), // only saltLength
        };
        der(SEQUENCE, &inner)
    }

    #[test]
    fn rfc5929_hash_choice_by_signature_algorithm() {
        let cases: Vec<(Vec<u8>, Vec<u8>, Option<Hash>)> = vec![
            (cat(PKCS1, &[4]), vec![5, 0], Some(Hash::Sha256)), // MD5 -> SHA-256
            (cat(PKCS1, &[5]), vec![5, 0], Some(Hash::Sha256)), // SHA-1 -> SHA-256
            (cat(PKCS1, &[11]), vec![5, 0], Some(Hash::Sha256)),
            (cat(PKCS1, &[12]), vec![5, 0], Some(Hash::Sha384)),
            (cat(PKCS1, &[13]), vec![5, 0], Some(Hash::Sha512)),
            (cat(PKCS1, &[14]), vec![5, 0], Some(Hash::Sha224)),
            (cat(PKCS1, &[1]), vec![5, 0], None), // rsaEncryption is no signature
            (cat(ECDSA, &[1]), vec![], Some(Hash::Sha256)),
            (cat(ECDSA, &[3, 1]), vec![], Some(Hash::Sha224)),
            (cat(ECDSA, &[3, 2]), vec![], Some(Hash::Sha256)),
            (cat(ECDSA, &[3, 3]), vec![], Some(Hash::Sha384)),
            (cat(ECDSA, &[3, 4]), vec![], Some(Hash::Sha512)),
            (DSA_SHA1.to_vec(), vec![], Some(Hash::Sha256)),
            (cat(NIST, &[3, 2]), vec![], Some(Hash::Sha256)),
            (vec![0x2B, 0x65, 0x70], vec![], None), // Ed25519
            (vec![0x2B, 0x65, 0x71], vec![], None), // Ed448
            (
                cat(PKCS1, &[10]),
                pss(Some(&cat(NIST, &[2, 1]))),
                Some(Hash::Sha256),
            ),
            (
                cat(PKCS1, &[10]),
                pss(Some(&cat(NIST, &[2, 2]))),
                Some(Hash::Sha384),
            ),
            (
                cat(PKCS1, &[10]),
                pss(Some(&cat(NIST, &[2, 3]))),
                Some(Hash::Sha512),
            ),
            (cat(PKCS1, &[10]), pss(Some(SHA1)), Some(Hash::Sha256)),
            (cat(PKCS1, &[10]), pss(None), Some(Hash::Sha256)), // default SHA-1
            (cat(PKCS1, &[10]), pss(Some(&[0x2A, 3])), None),
            (cat(PKCS1, &[10]), vec![], None), // PSS without parameters
        ];
        for (oid, params, want) in cases {
            let cert = shell(&oid, &params);
            assert_eq!(end_point_hash(&cert), want, "OID {oid:02x?}");
            let data = tls_server_end_point(&cert);
            let expected = want.map(|h| match h {
                Hash::Sha224 => Sha224::digest(&cert).to_vec(),
                Hash::Sha256 => Sha256::digest(&cert).to_vec(),
                Hash::Sha384 => Sha384::digest(&cert).to_vec(),
                Hash::Sha512 => Sha512::digest(&cert).to_vec(),
            });
            assert_eq!(data, expected, "OID {oid:02x?}");
        }
    }

    fn rcgen_cert(alg: &'static rcgen::SignatureAlgorithm) -> (Vec<u8>, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        (params.self_signed(&key).unwrap().der().to_vec(), key)
    }

    #[test]
    fn real_certificates() {
        let (p256, _) = rcgen_cert(&rcgen::PKCS_ECDSA_P256_SHA256);
        assert_eq!(
            tls_server_end_point(&p256).unwrap(),
            Sha256::digest(&p256).to_vec()
        );
        let (p384, _) = rcgen_cert(&rcgen::PKCS_ECDSA_P384_SHA384);
        let h = tls_server_end_point(&p384).unwrap();
        assert_eq!(h.len(), 48);
        assert_eq!(h, Sha384::digest(&p384).to_vec());
        let (ed, _) = rcgen_cert(&rcgen::PKCS_ED25519);
        assert_eq!(tls_server_end_point(&ed), None);
    }

    #[test]
    fn malformed_der_is_none_never_a_panic() {
        let (cert, _) = rcgen_cert(&rcgen::PKCS_ECDSA_P256_SHA256);
        for n in 0..cert.len() {
            assert_eq!(tls_server_end_point(&cert[..n]), None, "prefix {n}");
        }
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x80, 0, 0],                   // indefinite length
            &[0x30, 0x85, 1, 1, 1, 1, 1],          // 5-byte length
            &[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF], // huge length
            &[0x1F, 0x01, 0x00],                   // multi-byte tag
            &[0x31, 0x00],                         // SET, not SEQUENCE
        ] {
            assert_eq!(tls_server_end_point(bad), None, "{bad:02x?}");
        }
        let mut flipped = cert.clone();
        for i in 0..flipped.len().min(64) {
            flipped[i] ^= 0xFF;
            let _ = tls_server_end_point(&flipped);
            flipped[i] ^= 0xFF;
        }
    }

    /// A full in-memory handshake: the client's binding data equals what
    /// the server computes on its side (its exporter, or the hash of the
    /// certificate it presented).
    fn handshake(
        version: &'static rustls::SupportedProtocolVersion,
    ) -> (ClientConnection, rustls::ServerConnection, Vec<u8>) {
        let (leaf, key) = rcgen_cert(&rcgen::PKCS_ECDSA_P256_SHA256);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_cfg = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[version])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(leaf.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(leaf.clone())).unwrap();
        let client_cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut client =
            ClientConnection::new(Arc::new(client_cfg), "localhost".try_into().unwrap()).unwrap();
        let mut server = rustls::ServerConnection::new(Arc::new(server_cfg)).unwrap();
        assert_eq!(channel_binding(&client), None, "before the handshake");
        for _ in 0..10 {
            let mut buf = Vec::new();
            client.write_tls(&mut buf).unwrap();
            server.read_tls(&mut &buf[..]).unwrap();
            server.process_new_packets().unwrap();
            let mut buf = Vec::new();
            server.write_tls(&mut buf).unwrap();
            client.read_tls(&mut &buf[..]).unwrap();
            client.process_new_packets().unwrap();
            if !client.is_handshaking() && !server.is_handshaking() {
                break;
            }
        }
        assert!(!client.is_handshaking());
        (client, server, leaf)
    }

    #[test]
    fn tls13_exporter_matches_the_server() {
        let (client, server, _) = handshake(&rustls::version::TLS13);
        let theirs = server
            .export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", None)
            .unwrap();
        assert_eq!(
            channel_binding(&client),
            Some(ChannelBinding::TlsExporter(theirs.to_vec()))
        );
        let other = server
            .export_keying_material([0u8; 32], b"EXPORTER-something-else", None)
            .unwrap();
        assert_ne!(theirs, other);
    }

    #[test]
    fn tls12_server_end_point_is_the_certificate_hash() {
        let (client, _server, leaf) = handshake(&rustls::version::TLS12);
        assert_eq!(client.protocol_version(), Some(ProtocolVersion::TLSv1_2));
        assert_eq!(
            channel_binding(&client),
            Some(ChannelBinding::TlsServerEndPoint(
                Sha256::digest(&leaf).to_vec()
            ))
        );
    }

    proptest::proptest! {
        /// Any bytes: no panic, and either nothing or a hash of a length
        /// one of the four functions gives.
        #[test]
        fn any_bytes_are_safe(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            if let Some(h) = tls_server_end_point(&bytes) {
                proptest::prop_assert!([28, 32, 48, 64].contains(&h.len()));
            }
        }

        /// A real certificate with bytes overwritten: the same.
        #[test]
        fn damaged_certificates_are_safe(
            edits in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u8>()), 1..8)
        ) {
            let mut cert = CERT.with(|c| c.clone());
            for (at, byte) in edits {
                let i = at % cert.len();
                cert[i] = byte;
            }
            if let Some(h) = tls_server_end_point(&cert) {
                proptest::prop_assert!([28, 32, 48, 64].contains(&h.len()));
            }
        }
    }

    std::thread_local! {
        static CERT: Vec<u8> = rcgen_cert(&rcgen::PKCS_ECDSA_P384_SHA384).0;
    }
}

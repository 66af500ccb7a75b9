//! A conservative SASLprep (RFC 4013) without Unicode tables.
//!
//! What it does:
//!
//! * printable ASCII (U+0020..U+007E) passes unchanged (fast path, and the
//!   result is then exactly RFC 4013's);
//! * mapping (RFC 4013 §2.1): non-ASCII space characters (RFC 3454 C.1.2)
//!   become U+0020; "commonly mapped to nothing" characters (B.1) are removed;
//! * prohibited output (§2.3) is rejected with [`SaslError::InvalidInput`]:
//!   ASCII and non-ASCII control characters (C.2.1, C.2.2), private use
//!   (C.3), non-characters (C.4), inappropriate for plain text (C.6), for
//!   canonical representation (C.7), change display properties or
//!   deprecated (C.8) and tagging characters (C.9).
//!
//! What it does not do (it would need the Unicode tables of a full
//! stringprep): NFKC normalization (§2.2), the bidirectional check (§2.4)
//! and the unassigned code point check. Other non-ASCII characters pass
//! unchanged, so the result equals real SASLprep whenever the input is
//! already in NFKC, which holds for text typed as precomposed characters
//! (`é` as U+00E9) in almost every script. A password using compatibility
//! characters (full-width forms, ligatures such as U+FB01) or decomposed
//! accents gets a different SCRAM key than on a server that applies strict
//! SASLprep, so login fails (it never succeeds wrongly).

use alloc::borrow::Cow;
use alloc::string::String;

use super::SaslError;

/// RFC 3454 C.1.2, non-ASCII space characters.
fn is_non_ascii_space(c: char) -> bool {
    matches!(
        c,
        '\u{00A0}' | '\u{1680}' | '\u{2000}'..='\u{200B}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

/// RFC 3454 B.1, commonly mapped to nothing.
fn is_mapped_to_nothing(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{1806}'
            | '\u{180B}'..='\u{180D}'
            | '\u{200B}'..='\u{200D}'
            | '\u{2060}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
    )
}

/// RFC 3454 C.2.1, C.2.2, C.3, C.4, C.6, C.7, C.8 and C.9.
fn is_prohibited(c: char) -> bool {
    let cp = u32::from(c);
    matches!(
        c,
        // C.2.1 ASCII control characters
        '\u{0000}'..='\u{001F}' | '\u{007F}'
        // C.2.2 non-ASCII control characters
        | '\u{0080}'..='\u{009F}'
        | '\u{06DD}' | '\u{070F}' | '\u{180E}' | '\u{200C}' | '\u{200D}'
        | '\u{2028}' | '\u{2029}' | '\u{2060}'..='\u{2063}' | '\u{206A}'..='\u{206F}'
        | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFC}' | '\u{1D173}'..='\u{1D17A}'
        // C.3 private use
        | '\u{E000}'..='\u{F8FF}' | '\u{F0000}'..='\u{FFFFD}' | '\u{100000}'..='\u{10FFFD}'
        // C.4 non-character code points (plus the per-plane xFFFE/xFFFF below)
        | '\u{FDD0}'..='\u{FDEF}'
        // C.6 inappropriate for plain text
        | '\u{FFF9}'..='\u{FFFD}'
        // C.7 inappropriate for canonical representation
        | '\u{2FF0}'..='\u{2FFB}'
        // C.8 change display properties or deprecated
        | '\u{0340}' | '\u{0341}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}'
        // C.9 tagging characters
        | '\u{E0001}' | '\u{E0020}'..='\u{E007F}'
    ) || cp & 0xFFFE == 0xFFFE
}

/// Prepares `input` with the conservative SASLprep described in the module
/// documentation; `what` names the input in the error.
pub(crate) fn saslprep<'a>(input: &'a str, what: &'static str) -> Result<Cow<'a, str>, SaslError> {
    if input.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Ok(Cow::Borrowed(input));
    }
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        let c = if is_non_ascii_space(c) { ' ' } else { c };
        if is_mapped_to_nothing(c) {
            continue;
        }
        if is_prohibited(c) {
            return Err(SaslError::InvalidInput(what));
        }
        out.push(c);
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const E: &str = "x";

    #[test]
    fn rfc4013_examples() {
        // RFC 4013 §3 (the ones that do not need NFKC).
        assert_eq!(saslprep("I\u{00AD}X", E).unwrap(), "IX");
        assert_eq!(saslprep("user", E).unwrap(), "user");
        assert_eq!(saslprep("USER", E).unwrap(), "USER");
        assert_eq!(saslprep("\u{0007}", E), Err(SaslError::InvalidInput(E)));
        assert!(matches!(saslprep("user", E).unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn mapping_and_prohibition() {
        assert_eq!(saslprep("a\u{00A0}b\u{3000}c", E).unwrap(), "a b c");
        assert_eq!(saslprep("p\u{200B}w", E).unwrap(), "p w");
        assert_eq!(saslprep("p\u{FEFF}w\u{FE0F}", E).unwrap(), "pw");
        assert_eq!(saslprep("pässwörd", E).unwrap(), "pässwörd");
        assert_eq!(saslprep("пароль", E).unwrap(), "пароль");
        for bad in [
            "a\tb",
            "\u{7f}",
            "\u{85}",
            "\u{E000}",
            "\u{FFFF}",
            "\u{1FFFE}",
            "\u{202E}",
            "\u{E0041}",
            "\u{2028}",
            "\u{FFFD}",
        ] {
            assert_eq!(saslprep(bad, E), Err(SaslError::InvalidInput(E)), "{bad:?}");
        }
    }
}

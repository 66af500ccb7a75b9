//! Neutralising text that came from the server before it reaches a
//! terminal.

use std::fmt::Write as _;

/// Whether `c` must not reach a terminal as is: C0 controls (TAB
/// included), DEL, C1 controls (CSI is U+009B), and the Unicode
/// bidirectional controls that can make text display in another order
/// than it is stored (U+061C, U+200E/F, U+202A..U+202E, U+2066..U+2069).
fn is_dangerous(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{61c}'
        | '\u{200e}' | '\u{200f}'
        | '\u{2028}' | '\u{2029}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}'
        | '\u{feff}')
}

/// Server text made safe for a terminal: every dangerous character (see
/// above) is replaced by a visible escape (`\x1b`, `\u{202e}`), so an ESC
/// sequence in a greeting shows up as text instead of repainting the
/// screen. Everything else (printable Unicode) is kept.
pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_dangerous(c) {
            let n = u32::from(c);
            if n < 0x100 {
                let _ = write!(out, "\\x{n:02x}");
            } else {
                let _ = write!(out, "\\u{{{n:04x}}}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// [`clean`] for bytes (invalid UTF-8 shown as `\xNN`).
pub fn clean_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        out.push_str(&clean(chunk.valid()));
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_controls() {
        assert_eq!(clean("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(clean("\u{9b}31m"), "\\x9b31m");
        assert_eq!(clean("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(clean("tab\there\r\n"), "tab\\x09here\\x0d\\x0a");
        assert_eq!(clean("Grüße ✈"), "Grüße ✈");
        assert_eq!(clean_bytes(b"ok\xff\x07"), "ok\\xff\\x07");
    }
}

//! Mailbox content: sample, generate, tricky, and the builder helpers.

use base64::Engine as _;
use pop3_testkit::{Mailbox, Message};

fn header<'a>(msg: &'a Message, name: &str) -> Option<&'a str> {
    let text = std::str::from_utf8(msg.data()).ok()?;
    let head = text.split("\r\n\r\n").next()?;
    head.split("\r\n")
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

#[test]
fn sample_is_realistic() {
    let mb = Mailbox::sample();
    assert_eq!(mb.len(), 6);
    assert_eq!(mb.uids()[0], "sample-0001");
    let mut froms = std::collections::HashSet::new();
    let mut subjects = std::collections::HashSet::new();
    for m in mb.messages() {
        let data = m.data();
        // CRLF only, headers and body separated.
        for (i, &b) in data.iter().enumerate() {
            if b == b'\n' {
                assert_eq!(data[i - 1], b'\r', "bare LF in {}", m.uid());
            }
        }
        assert!(data.ends_with(b"\r\n"));
        froms.insert(header(m, "From").unwrap().to_string());
        subjects.insert(header(m, "Subject").unwrap().to_string());
        assert!(header(m, "Date").is_some());
        assert!(header(m, "Message-ID").is_some());
        assert_eq!(m.size(), data.len());
    }
    assert_eq!(froms.len(), 6);
    assert_eq!(subjects.len(), 6);
    // RFC 2047 encoded-word subject that decodes to UTF-8.
    let enc = mb
        .messages()
        .iter()
        .find_map(|m| header(m, "Subject").filter(|s| s.starts_with("=?UTF-8?B?")))
        .expect("encoded-word subject");
    let b64 = enc.trim_start_matches("=?UTF-8?B?").trim_end_matches("?=");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(String::from_utf8(decoded).unwrap(), "Grüße aus München ✈");
    // Multipart.
    assert!(mb
        .messages()
        .iter()
        .any(|m| header(m, "Content-Type").is_some_and(|c| c.starts_with("multipart/"))));
    // Dot-leading lines, including a lone dot.
    let dotted = mb
        .messages()
        .iter()
        .find(|m| m.data().windows(3).any(|w| w == b"\n.p"))
        .expect("dot-leading lines");
    assert!(dotted.data().windows(5).any(|w| w == b"\r\n.\r\n"));
    assert_eq!(
        mb.total_size(),
        mb.messages().iter().map(|m| m.size()).sum()
    );
}

#[test]
fn generate_is_deterministic_and_sized() {
    let a = Mailbox::generate(50, 4000);
    let b = Mailbox::generate(50, 4000);
    assert_eq!(a, b);
    assert_eq!(a.len(), 50);
    assert_eq!(a.uids()[49], "gen-000050");
    let mut dot_lines = 0;
    for m in a.messages() {
        assert!(m.size() >= 4000 && m.size() < 4100, "size {}", m.size());
        assert!(m.data().ends_with(b"\r\n"));
        let text = std::str::from_utf8(m.data()).unwrap();
        assert!(text.starts_with("From: Sender "));
        for l in text.split("\r\n") {
            assert!(l.len() <= 78, "line too long: {l:?}");
            if l.starts_with('.') {
                dot_lines += 1;
            }
        }
    }
    assert!(dot_lines >= 50, "{dot_lines}");
    assert_ne!(a.messages()[0].data(), a.messages()[1].data());
    // Small sizes still produce full headers.
    let tiny = Mailbox::generate(1, 10);
    assert!(tiny.messages()[0].size() > 100);
    assert!(Mailbox::generate(0, 100).is_empty());
}

#[test]
fn tricky_message_has_the_hard_parts() {
    let t = Message::tricky("t");
    let d = t.data();
    assert_eq!(t.uid(), "t");
    assert!(d.windows(4).any(|w| w == b"\n.\r\n"));
    assert!(d.windows(5).any(|w| w == b"\n..\r\n"));
    assert!(d.contains(&0));
    assert!(d.iter().any(|&b| b >= 0x80));
    assert!(!d.ends_with(b"\n"));
    assert!(d.split(|&b| b == b'\n').any(|l| l.len() > 9000));
}

#[test]
fn mailbox_helpers() {
    let mut mb = Mailbox::new().with("a", "x\r\n");
    assert!(!mb.is_empty());
    mb.push(Message::new("b", b"yy\r\n".to_vec()));
    assert_eq!(mb.uids(), ["a", "b"]);
    assert_eq!(mb.total_size(), 7);
    assert_eq!(mb.get("b").unwrap().data(), b"yy\r\n");
    assert!(mb.get("c").is_none());
    let collected: Mailbox = mb.messages().iter().cloned().collect();
    assert_eq!(collected, mb);
    assert!(format!("{:?}", mb.messages()[0]).contains("size: 3"));
}

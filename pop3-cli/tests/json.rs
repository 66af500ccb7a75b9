//! Machine-readable output: `retr --json` and `top --json` carry the
//! message as text when it is UTF-8 and as base64 otherwise, exactly.

mod common;

use base64::Engine;
use common::*;
use pop3_testkit::{Mailbox, Message};

fn object(r: &Run) -> serde_json::Value {
    assert_eq!(r.code, 0, "{r:?}");
    let out = r.out();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON object: {r:?}");
    serde_json::from_str(lines[0]).unwrap()
}

#[test]
fn retr_and_top_json_as_text_or_base64() {
    let text = "Subject: Grüße\r\n\r\nHallo ✈\r\n".as_bytes().to_vec();
    let binary = b"Subject: raw\r\n\r\n\xff\xfe\x00 latin-1 \xe9\r\n".to_vec();
    let mut mb = Mailbox::new();
    mb.push(Message::new("t-1", text.clone()));
    mb.push(Message::new("b-1", binary.clone()));
    let tk = start(stls(mb));

    let v = object(&run(tk.cmd().args(["--json", "retr", "1"])));
    assert_eq!(v["number"], 1);
    assert_eq!(v["encoding"], "utf-8");
    assert_eq!(v["message"].as_str().unwrap().as_bytes(), received(&text));
    assert_eq!(v["octets"], received(&text).len());

    let v = object(&run(tk.cmd().args(["--json", "retr", "2"])));
    assert_eq!(v["encoding"], "base64");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v["message"].as_str().unwrap())
        .unwrap();
    assert_eq!(bytes, received(&binary));

    let v = object(&run(tk.cmd().args(["--json", "top", "2", "0"])));
    assert_eq!(v["encoding"], "utf-8", "the headers alone are ASCII");
    assert_eq!(v["message"], "Subject: raw\r\n\r\n");
}

//! `fetch` into every destination kind, `--new-only`, and `--delete` with
//! the connection cut at every point: nothing lost, nothing duplicated.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use pop3_testkit::{Mailbox, Message};

const KINDS: [&str; 3] = ["maildir", "mbox", "eml-dir"];

fn fetch_args(kind: &str, dest: &Path) -> Vec<std::ffi::OsString> {
    vec!["fetch".into(), format!("--{kind}").into(), dest.into()]
}

#[test]
fn fetch_into_each_destination_is_byte_identical() {
    let mb = rich_mailbox();
    for kind in KINDS {
        let tk = start(stls(mb.clone()));
        let dest = tk.path(&format!("dest-{kind}"));
        let r = run(tk.cmd().args(fetch_args(kind, &dest)));
        assert_eq!(r.code, 0, "{kind}: {r:?}");
        assert!(
            r.stderr
                .contains(&format!("fetched {} message(s)", mb.len())),
            "{r:?}"
        );
        assert_eq!(multiset(read_dest(kind, &dest)), expected(&mb), "{kind}");
        // Without --delete the server keeps everything.
        assert_eq!(tk.server.mailbox().len(), mb.len());
        // Pipelined retrieval: all RETRs, no DELE.
        assert!(tk.server.wait_idle(Duration::from_secs(10)));
        let cmds = tk.server.transcripts()[0].client_commands();
        assert_eq!(cmds.iter().filter(|c| *c == "RETR").count(), mb.len());
        assert!(!cmds.contains(&"DELE".to_string()));
    }
}

#[test]
fn fetch_json_lines() {
    let mb = Mailbox::sample();
    let tk = start(stls(mb.clone()).implicit_tls(true));
    let dest = tk.path("eml");
    let r = run(tk
        .cmd()
        .args(["--tls", "implicit", "--json"])
        .args(fetch_args("eml-dir", &dest)));
    assert_eq!(r.code, 0, "{r:?}");
    let lines: Vec<serde_json::Value> = r
        .out()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), mb.len() + 1);
    for (i, l) in lines[..mb.len()].iter().enumerate() {
        assert_eq!(l["type"], "message");
        assert_eq!(l["uid"], mb.messages()[i].uid());
        let path = l["path"].as_str().unwrap();
        assert_eq!(
            std::fs::read(path).unwrap(),
            received(mb.messages()[i].data())
        );
    }
    let summary = &lines[mb.len()];
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["fetched"], mb.len());
    assert_eq!(summary["ok"], true);
}

#[test]
fn new_only_fetches_each_message_once() {
    for kind in KINDS {
        let mb = Mailbox::sample();
        let tk = start(stls(mb.clone()));
        let dest = tk.path("dest");
        let r = run(tk.cmd().args(fetch_args(kind, &dest)).arg("--new-only"));
        assert_eq!(r.code, 0, "{r:?}");
        let r = run(tk.cmd().args(fetch_args(kind, &dest)).arg("--new-only"));
        assert_eq!(r.code, 0, "{r:?}");
        assert!(r.stderr.contains("fetched 0 message(s)"), "{r:?}");
        assert!(r.stderr.contains("6 already fetched"), "{r:?}");
        let extra = Message::new("new-1", b"Subject: new\r\n\r\nnew\r\n".to_vec());
        tk.server.add_message(extra.clone());
        let r = run(tk.cmd().args(fetch_args(kind, &dest)).arg("--new-only"));
        assert_eq!(r.code, 0, "{r:?}");
        assert!(r.stderr.contains("fetched 1 message(s)"), "{r:?}");
        let mut all = mb.clone();
        all.push(extra);
        assert_eq!(multiset(read_dest(kind, &dest)), expected(&all), "{kind}");
    }
}

/// Runs `fetch --delete` against a server built by `first` (which cuts
/// the connection somewhere), then again against a well-behaved server
/// holding what the first left; checks every message is stored exactly
/// once and the server is empty.
fn cut_then_rerun(
    kind: &str,
    label: &str,
    first: impl FnOnce(Mailbox) -> pop3_testkit::ServerBuilder,
) {
    let mb = Mailbox::sample();
    let tk1 = start(first(mb.clone()));
    // One address for both servers: the state is keyed on host and port.
    let proxy = Proxy::new(tk1.server.addr());
    let dest = tk1.path("dest");
    let r1 = run(tk1
        .cmd_via(&proxy)
        .args(fetch_args(kind, &dest))
        .arg("--delete"));
    assert!(
        [0, 3, 4, 6, 8].contains(&r1.code),
        "{kind} {label}: unexpected exit: {r1:?}"
    );
    assert!(tk1.server.wait_idle(Duration::from_secs(10)));
    // Nothing stored so far is lost or doubled.
    let stored = multiset(read_dest(kind, &dest));
    assert!(
        stored.values().all(|&n| n == 1),
        "{kind} {label}: duplicates after cut"
    );
    let left = tk1.server.mailbox();
    for m in mb.messages() {
        let on_server = left.get(m.uid()).is_some();
        let saved = stored.contains_key(&received(m.data()));
        assert!(on_server || saved, "{kind} {label}: {} lost", m.uid());
    }

    let tk2 = start(stls(left));
    proxy.set_target(tk2.server.addr());
    let r2 = run(tk2
        .cmd_via(&proxy)
        .args(fetch_args(kind, &dest))
        .arg("--delete"));
    assert_eq!(r2.code, 0, "{kind} {label}: re-run: {r2:?}\nfirst: {r1:?}");
    assert_eq!(
        multiset(read_dest(kind, &dest)),
        expected(&mb),
        "{kind} {label}: each message exactly once\nfirst: {r1:?}\nsecond: {r2:?}"
    );
    assert!(tk2.server.wait_idle(Duration::from_secs(10)));
    assert!(
        tk2.server.mailbox().is_empty(),
        "{kind} {label}: server emptied"
    );
    // A third run finds nothing to do.
    let r3 = run(tk2
        .cmd_via(&proxy)
        .args(fetch_args(kind, &dest))
        .arg("--delete"));
    assert_eq!(r3.code, 0, "{r3:?}");
    assert_eq!(multiset(read_dest(kind, &dest)), expected(&mb));
}

#[test]
fn delete_survives_a_cut_after_every_command() {
    // CAPA STLS CAPA AUTH LIST UIDL, then 6 RETR and 6 DELE, then QUIT:
    // 19 commands; 20 means no cut at all.
    for k in 1..=20 {
        let kind = KINDS[k % 3];
        cut_then_rerun(kind, &format!("close_after_commands({k})"), |mb| {
            stls(mb).close_after_commands(k)
        });
    }
}

#[test]
fn delete_survives_truncated_messages() {
    for (i, nth) in [1usize, 2, 4, 6].into_iter().enumerate() {
        for bytes in [0usize, 50] {
            let kind = KINDS[(i + bytes) % 3];
            cut_then_rerun(kind, &format!("truncate_retr({nth}, {bytes})"), |mb| {
                stls(mb).truncate_retr(nth, bytes)
            });
        }
    }
}

#[test]
fn delete_without_pipelining_and_with_a_failing_quit() {
    cut_then_rerun("maildir", "no_pipelining", |mb| stls(mb).no_pipelining());
    for kind in KINDS {
        cut_then_rerun(kind, "quit_fails", |mb| stls(mb).quit_fails(true));
    }
    // The failing QUIT is reported, not hidden.
    let tk = start(stls(Mailbox::sample()).quit_fails(true));
    let r = run(tk
        .cmd()
        .args(fetch_args("maildir", &tk.path("m")))
        .arg("--delete"));
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr.contains("QUIT") && r.stderr.contains("NOT apply"),
        "{r:?}"
    );
    assert_eq!(tk.server.mailbox().len(), 6);
}

#[test]
fn deletes_only_after_storing() {
    let mb = Mailbox::sample();
    let tk = start(stls(mb.clone()));
    let dest = tk.path("m");
    let r = run(tk.cmd().args(fetch_args("maildir", &dest)).arg("--delete"));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(tk.server.mailbox().is_empty());
    assert!(tk.server.wait_idle(Duration::from_secs(10)));
    let cmds = tk.server.transcripts()[0].client_lines();
    // Every DELE n comes after RETR n.
    for n in 1..=mb.len() {
        let retr = cmds.iter().position(|l| l == &format!("RETR {n}")).unwrap();
        let dele = cmds.iter().position(|l| l == &format!("DELE {n}")).unwrap();
        assert!(retr < dele, "{cmds:?}");
    }
    // The UIDs are recorded beside the destination.
    let state = std::fs::read_to_string(dest.join(".pop3-uidl")).unwrap();
    for uid in mb.uids() {
        assert!(state.contains(&uid), "{state}");
    }
}

#[test]
fn servers_without_uidl() {
    let mb = Mailbox::sample();
    let tk = start(stls(mb.clone()).fail_command("UIDL", "unknown command"));
    let dest = tk.path("m");
    let r = run(tk.cmd().args(fetch_args("mbox", &dest)).arg("--new-only"));
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("UIDL"), "{r:?}");
    let r = run(tk.cmd().args(fetch_args("mbox", &dest)).arg("--delete"));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("no UIDL"), "warns: {r:?}");
    assert_eq!(multiset(read_dest("mbox", &dest)), expected(&mb));
    assert!(tk.server.mailbox().is_empty());
}

#[test]
fn demo_fetch_works() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(pop3().args(fetch_args("maildir", &dir.path().join("m"))));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        multiset(read_dest("maildir", &dir.path().join("m"))),
        expected(&Mailbox::sample())
    );
}

/// A server that gives one UID to two different messages (fetchmail's FAQ
/// knows several): with --delete, nothing may be skipped or deleted on the
/// strength of that UID, and in an .eml directory neither file may
/// overwrite the other.
#[test]
fn duplicate_uids_never_lose_mail() {
    let mb = Mailbox::new()
        .with(
            "same-uid",
            b"Subject: one\r\n\r\nfirst message\r\n".to_vec(),
        )
        .with(
            "same-uid",
            b"Subject: two\r\n\r\nsecond message\r\n".to_vec(),
        )
        .with(
            "unique",
            b"Subject: three\r\n\r\nthird message\r\n".to_vec(),
        );
    for kind in KINDS {
        let tk = start(stls(mb.clone()));
        let dest = tk.path(&format!("dup-{kind}"));
        let r = run(tk.cmd().args(fetch_args(kind, &dest)).arg("--delete"));
        assert_eq!(r.code, 0, "{kind}: {r:?}");
        assert!(r.stderr.contains("same UID"), "{kind}: warns: {r:?}");
        assert_eq!(multiset(read_dest(kind, &dest)), expected(&mb), "{kind}");
        assert!(
            tk.server.mailbox().is_empty(),
            "{kind}: all deleted after storing"
        );
    }
    // The UID was recorded by an earlier run that saw only the first
    // message; now the server gives the same UID to a second one. It must
    // be fetched, not deleted unseen as "already stored".
    let first_only = Mailbox::new().with("same-uid", mb.messages()[0].data().to_vec());
    let tk = start(stls(first_only));
    let dest = tk.path("dup-again");
    let r = run(tk
        .cmd()
        .args(fetch_args("eml-dir", &dest))
        .arg("--new-only"));
    assert_eq!(r.code, 0, "{r:?}");
    tk.server.set_mailbox(mb.clone());
    let r = run(tk.cmd().args(fetch_args("eml-dir", &dest)).arg("--delete"));
    assert_eq!(r.code, 0, "{r:?}");
    let got = multiset(read_dest("eml-dir", &dest));
    for m in mb.messages() {
        assert!(got.contains_key(&received(m.data())), "lost {:?}", m.uid());
    }
    assert!(tk.server.mailbox().is_empty());
}

/// An .eml file already there under a message's UID is never replaced by
/// different bytes.
#[test]
fn eml_dir_never_overwrites_a_different_file() {
    let mb = Mailbox::new().with("uid-a", b"Subject: new\r\n\r\nnew bytes\r\n".to_vec());
    let tk = start(stls(mb.clone()));
    let dest = tk.path("eml");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(dest.join("uid-a.eml"), b"an older, different message\r\n").unwrap();
    let r = run(tk.cmd().args(fetch_args("eml-dir", &dest)));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        std::fs::read(dest.join("uid-a.eml")).unwrap(),
        b"an older, different message\r\n"
    );
    assert_eq!(
        std::fs::read(dest.join("uid-a.2.eml")).unwrap(),
        received(mb.messages()[0].data())
    );
}

/// A message larger than --max-size (as LIST gives it) is skipped: kept on
/// the server and reported, and the messages after it are fetched; a body
/// that grows past --max-size although LIST said it is smaller stops the
/// run, with nothing stored or deleted for it.
#[test]
fn max_size_skips_a_large_message_and_fetches_the_rest() {
    let mut big_msg = b"Subject: big\r\n\r\n".to_vec();
    for _ in 0..200 {
        big_msg.extend_from_slice(&[b'x'; 1000]);
        big_msg.extend_from_slice(b"\r\n");
    }
    let mb = Mailbox::new()
        .with("small-1", b"Subject: small\r\n\r\nhello\r\n".to_vec())
        .with("big-2", big_msg.clone())
        .with(
            "small-3",
            b"Subject: after\r\n\r\nafter the big one\r\n".to_vec(),
        );
    let tk = start(stls(mb.clone()));
    let dest = tk.path("eml");
    let args = ["--delete", "--max-size", "100000"];
    let r = run(tk.cmd().args(fetch_args("eml-dir", &dest)).args(args));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains("1 larger than --max-size kept on the server")
            && r.stderr.contains("message 2 (")
            && r.stderr.contains("fetched 2 message(s)"),
        "{r:?}"
    );
    let want = multiset([
        received(mb.messages()[0].data()),
        received(mb.messages()[2].data()),
    ]);
    assert_eq!(multiset(read_dest("eml-dir", &dest)), want);
    let left = tk.server.mailbox();
    assert_eq!(left.len(), 1, "the big one kept");
    assert_eq!(left.messages()[0].uid(), "big-2");
    // Every run skips it again and fetches what is new.
    tk.server.add_message(Message::new(
        "new-4",
        b"Subject: new\r\n\r\nnew\r\n".to_vec(),
    ));
    let r = run(tk.cmd().args(fetch_args("eml-dir", &dest)).args(args));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("fetched 1 message(s)"), "{r:?}");
    assert_eq!(tk.server.mailbox().len(), 1);

    // A server that lists a small size and then streams more than
    // --max-size: refused, not stored, not deleted.
    let liar = Mailbox::new().with("big-2", big_msg);
    let tk = start(stls(liar).override_reply("LIST", b"+OK\r\n1 100\r\n.\r\n".to_vec()));
    let dest = tk.path("eml2");
    let r = run(tk.cmd().args(fetch_args("eml-dir", &dest)).args(args));
    assert_eq!(r.code, 8, "{r:?}");
    assert!(r.stderr.contains("max-size"), "{r:?}");
    assert!(read_dest("eml-dir", &dest).is_empty());
    assert_eq!(tk.server.mailbox().len(), 1);
}

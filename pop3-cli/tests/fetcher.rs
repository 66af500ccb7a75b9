//! The fetcher features of issue 13: `--mda`, `--skip-larger`,
//! `--delete-larger`, `--keep-days` (with the clock injected through
//! `POP3_TEST_NOW`), `--add-received`, `-q`, configuration accounts
//! fetched concurrently, and `--json` errors of every class.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use pop3_testkit::{Mailbox, Message};

fn json_lines(r: &Run) -> Vec<serde_json::Value> {
    r.out()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}\n{r:?}")))
        .collect()
}

fn of_type<'a>(lines: &'a [serde_json::Value], t: &str) -> Vec<&'a serde_json::Value> {
    lines.iter().filter(|l| l["type"] == t).collect()
}

/// An MDA (a shell script run through `sh -c`, as a user would write it)
/// that stores each message in OUT and fails for a message whose subject
/// is "bad".
fn mda_script(out: &Path) -> String {
    format!(
        "sh -c 'set -e; t=\"$0/.tmp.$$\"; cat > \"$t\"; \
         if grep -q \"^Subject: bad\" \"$t\"; then rm -f \"$t\"; exit 3; fi; \
         mv \"$t\" \"$0/msg.$$.$(date +%s%N)\"' {}",
        out.display()
    )
}

fn delivered(out: &Path) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with("msg."))
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    v.sort();
    v
}

fn lf(m: &[u8]) -> Vec<u8> {
    let v = received(m);
    let mut out = Vec::with_capacity(v.len());
    for (i, &b) in v.iter().enumerate() {
        if !(b == b'\r' && v.get(i + 1) == Some(&b'\n')) {
            out.push(b);
        }
    }
    out
}

#[test]
fn mda_failure_keeps_that_message_and_delivers_the_rest() {
    let mb = Mailbox::new()
        .with("u1", b"Subject: one\r\n\r\nfirst\r\n".to_vec())
        .with("u2", b"Subject: bad\r\n\r\nthe MDA refuses me\r\n".to_vec())
        .with("u3", b"Subject: three\r\n\r\nthird\r\n".to_vec());
    let tk = start(stls(mb.clone()));
    let out = tk.path("out");
    std::fs::create_dir(&out).unwrap();
    let state_home = tk.path("state");
    let mda = mda_script(&out);
    let fetch = |extra: &[&str]| {
        run(tk
            .cmd()
            .env("XDG_STATE_HOME", &state_home)
            .args(["fetch", "--delete", "--mda", &mda])
            .args(extra))
    };
    let r = fetch(&[]);
    assert_eq!(
        r.code, 8,
        "an undelivered message is a local failure: {r:?}"
    );
    assert!(
        r.stderr.contains("message 2:") && r.stderr.contains("stays on the server"),
        "{r:?}"
    );
    let mut want = vec![lf(mb.messages()[0].data()), lf(mb.messages()[2].data())];
    want.sort();
    assert_eq!(delivered(&out), want, "LF line endings, exactly once");
    let left = tk.server.mailbox();
    assert_eq!(left.len(), 1, "only the undelivered one stays");
    assert_eq!(left.messages()[0].uid(), "u2");
    // The state file of the MDA account records the delivered UIDs.
    let states: Vec<_> = std::fs::read_dir(state_home.join("pop3/mda"))
        .unwrap()
        .collect();
    assert_eq!(states.len(), 1);
    let text = std::fs::read_to_string(states[0].as_ref().unwrap().path()).unwrap();
    assert!(text.contains(" u1 ") && text.contains(" u3 ") && !text.contains(" u2 "));

    // Once the MDA accepts it, the next run delivers it (and only it),
    // here with a Received: header.
    tk.server.set_mailbox(
        Mailbox::new()
            .with("u1", mb.messages()[0].data().to_vec())
            .with("u2", b"Subject: fine now\r\n\r\nok\r\n".to_vec()),
    );
    let r = fetch(&["--add-received", "-q"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.is_empty(), "-q prints nothing on success: {r:?}");
    let all = delivered(&out);
    assert_eq!(all.len(), 3, "u1 is not delivered twice");
    let new: Vec<_> = all.iter().filter(|m| !want.contains(m)).collect();
    let text = String::from_utf8_lossy(new[0]);
    assert!(
        text.starts_with("Received: from 127.0.0.1\n\tby ") && text.contains("with POP3 id u2; "),
        "{text}"
    );
    assert!(text.ends_with("Subject: fine now\n\nok\n"), "{text}");
    assert!(tk.server.mailbox().is_empty(), "u1 (known) and u2 deleted");
}

fn sized(uid: &str, body_bytes: usize) -> Message {
    let mut m = format!("Subject: {uid}\r\n\r\n").into_bytes();
    while m.len() < body_bytes {
        m.extend_from_slice(&[b'x'; 70]);
        m.extend_from_slice(b"\r\n");
    }
    Message::new(uid, m)
}

#[test]
fn skip_larger_and_delete_larger() {
    let mut mb = Mailbox::new();
    for m in [
        sized("small", 100),
        sized("medium", 20_000),
        sized("huge", 200_000),
        sized("small2", 300),
    ] {
        mb.push(m);
    }
    let tk = start(stls(mb.clone()));
    let dest = tk.path("eml");
    let r = run(tk.cmd().args(["fetch", "--eml-dir"]).arg(&dest).args([
        "--skip-larger",
        "10k",
        "--delete-larger",
        "100k",
    ]));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("deleting message 3 (")
            && r.stderr.contains("larger than --delete-larger) unread")
            && r.stderr
                .contains("1 larger than --skip-larger left on the server")
            && r.stderr.contains("fetched 2 message(s)"),
        "{r:?}"
    );
    assert_eq!(
        multiset(eml_messages(&dest)),
        multiset([
            received(mb.messages()[0].data()),
            received(mb.messages()[3].data())
        ])
    );
    let left: Vec<String> = tk
        .server
        .mailbox()
        .messages()
        .iter()
        .map(|m| m.uid().to_string())
        .collect();
    assert_eq!(left, ["small", "medium", "small2"], "huge deleted unread");
    assert!(tk.server.wait_idle(Duration::from_secs(10)));
    let cmds = tk.server.transcripts()[0].client_commands();
    assert_eq!(cmds.iter().filter(|c| *c == "RETR").count(), 2);

    // --json reports them by number; the sizes come from the account too.
    let tk = start(stls(mb.clone()));
    let cfg = tk.path("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[accounts.a]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{USER}\"\n\
             ca_file = \"{}\"\neml_dir = \"{}\"\nskip_larger = \"10k\"\n\
             delete_larger = 100000\n",
            tk.server.port(),
            tk.ca.display(),
            tk.path("eml2").display()
        ),
    )
    .unwrap();
    let r = run(pop3()
        .env("POP3_PASSWORD", PASSWORD)
        .arg("--config")
        .arg(&cfg)
        .args(["--account", "a", "--json", "fetch"]));
    assert_eq!(r.code, 0, "{r:?}");
    let lines = json_lines(&r);
    let d = of_type(&lines, "deleted_larger");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["number"], 3);
    assert_eq!(d[0]["uid"], "huge");
    let s = of_type(&lines, "summary");
    assert_eq!(s.len(), 1);
    assert_eq!(s[0]["skipped_larger"], serde_json::json!([2]));
    assert_eq!(s[0]["deleted_larger"], serde_json::json!([3]));
    assert_eq!(s[0]["fetched"], 2);
    assert_eq!(s[0]["account"], "a");
    assert_eq!(s[0]["ok"], true);
    assert_eq!(tk.server.mailbox().len(), 3);
}

#[test]
fn keep_days_deletes_after_n_days_of_the_first_fetch() {
    let mb = Mailbox::new()
        .with("old-1", b"Subject: a\r\n\r\na\r\n".to_vec())
        .with("old-2", b"Subject: b\r\n\r\nb\r\n".to_vec());
    let tk = start(stls(mb));
    let dest = tk.path("md");
    let day = 86_400u64;
    let t0 = 1_800_000_000u64;
    let at = |t: u64| {
        run(tk
            .cmd()
            .env("POP3_TEST_NOW", t.to_string())
            .args(["fetch", "--keep-days", "2", "--maildir"])
            .arg(&dest))
    };
    let r = at(t0);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("fetched 2 message(s)"), "{r:?}");
    assert_eq!(tk.server.mailbox().len(), 2, "kept on the server");
    let state = std::fs::read_to_string(dest.join(".pop3-uidl")).unwrap();
    assert!(state.contains(&format!(" old-1 {t0}\n")), "{state}");

    // A day later a new message arrives; nothing is old enough yet.
    tk.server
        .add_message(Message::new("new-3", b"Subject: c\r\n\r\nc\r\n".to_vec()));
    let r = at(t0 + day);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("fetched 1 message(s)"), "{r:?}");
    assert_eq!(tk.server.mailbox().len(), 3);

    // Two days after the first fetch the first two go, the new one stays.
    let r = at(t0 + 2 * day);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("2 older than --keep-days deleted")
            && r.stderr.contains("fetched 0 message(s)"),
        "{r:?}"
    );
    let left: Vec<String> = tk
        .server
        .mailbox()
        .messages()
        .iter()
        .map(|m| m.uid().to_string())
        .collect();
    assert_eq!(left, ["new-3"]);
    assert_eq!(maildir_messages(&dest).len(), 3, "nothing lost locally");

    // --keep overrides an account's delete = true; --delete contradicts
    // --keep-days.
    let r = run(tk
        .cmd()
        .args(["fetch", "--keep-days", "1", "--delete", "--maildir"])
        .arg(&dest));
    assert_eq!(r.code, 2, "{r:?}");
}

/// Records written before first-seen times existed (`S ACCOUNT UID`) are
/// still read; their clock starts with the first `--keep-days` run.
#[test]
fn keep_days_reads_old_state_files() {
    let mb = Mailbox::new().with("u1", b"Subject: a\r\n\r\na\r\n".to_vec());
    let tk = start(stls(mb));
    let dest = tk.path("eml");
    std::fs::create_dir(&dest).unwrap();
    let key = format!("{USER}@127.0.0.1:{}", tk.server.port());
    std::fs::write(
        dest.join(".pop3-uidl"),
        format!("pop3-uidl 2\nS {key} u1\n"),
    )
    .unwrap();
    let at = |t: u64| {
        run(tk
            .cmd()
            .env("POP3_TEST_NOW", t.to_string())
            .args(["fetch", "--keep-days", "1", "--eml-dir"])
            .arg(&dest))
    };
    let r = at(1_000_000);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("fetched 0 message(s)"), "known: {r:?}");
    assert_eq!(tk.server.mailbox().len(), 1, "no time yet: kept");
    let r = at(1_000_000 + 86_400);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(tk.server.mailbox().is_empty(), "{r:?}");
}

fn account_toml(name: &str, tk: &Tk, extra: &str) -> String {
    format!(
        "[accounts.{name}]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{USER}\"\n\
         ca_file = \"{}\"\n{extra}\n",
        tk.server.port(),
        tk.ca.display()
    )
}

#[test]
fn accounts_are_fetched_concurrently_and_one_failing_does_not_stop_the_others() {
    let a = start(stls(Mailbox::sample()));
    let b = start(stls(rich_mailbox()));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    let (da, db) = (dir.path().join("a"), dir.path().join("b"));
    let text = format!(
        "[defaults]\npassword_env = \"POP3_PASSWORD\"\ntimeout = 20\n\n\
         [accounts.base]\nhost = \"127.0.0.1\"\nport = 1\nuser = \"{USER}\"\nmaildir = \"{}\"\ndelete = true\n\n\
         {}inherit = \"base\"\n\n{}inherit = \"base\"\nmaildir = \"{}\"\n\n\
         [accounts.broken]\ninherit = \"a\"\npassword_env = \"WRONG_PASSWORD\"\n\
         maildir = \"{}\"\n",
        da.display(),
        account_toml("a", &a, ""),
        account_toml("b", &b, ""),
        db.display(),
        dir.path().join("never").display()
    );
    std::fs::write(&cfg, text).unwrap();
    let r = run(pop3()
        .env("POP3_PASSWORD", PASSWORD)
        .env("WRONG_PASSWORD", "nope")
        .arg("--config")
        .arg(&cfg)
        .args(["--account", "a", "--account", "b", "--account", "broken"])
        .args(["--json", "fetch", "--jobs", "3"]));
    assert_eq!(r.code, 5, "the worst class: the failed login: {r:?}");
    let lf_set = |mb: &Mailbox| multiset(mb.messages().iter().map(|m| lf(m.data())));
    assert!(
        multiset(maildir_messages(&da)) == lf_set(&Mailbox::sample()),
        "a: {r:?}"
    );
    assert!(
        multiset(maildir_messages(&db)) == lf_set(&rich_mailbox()),
        "b: {r:?}"
    );
    assert!(a.server.mailbox().is_empty() && b.server.mailbox().is_empty());
    let lines = json_lines(&r);
    let summaries = of_type(&lines, "summary");
    assert_eq!(summaries.len(), 3, "{r:?}");
    for (name, ok) in [("a", true), ("b", true), ("broken", false)] {
        let s: Vec<_> = summaries.iter().filter(|s| s["account"] == name).collect();
        assert_eq!(s.len(), 1, "{name}");
        assert_eq!(s[0]["ok"], ok, "{name}");
    }
    let errors = of_type(&lines, "error");
    assert_eq!(errors.len(), 1, "{r:?}");
    assert_eq!(errors[0]["account"], "broken");
    assert_eq!(errors[0]["class"], "auth");
    assert_eq!(errors[0]["exit_code"], 5);
    assert!(r.stderr.contains("[broken]"), "{r:?}");
    // The two good servers were served at the same time (--jobs 3): each
    // got its one session.
    assert_eq!(
        a.server.connection_count(),
        2,
        "a and broken share a's server"
    );
    assert_eq!(b.server.connection_count(), 1);

    // --all-accounts takes every account, sorted; base has no server
    // (port 1: refused), and with -q only failures are printed.
    let r = run(pop3()
        .env("POP3_PASSWORD", PASSWORD)
        .env("WRONG_PASSWORD", PASSWORD)
        .arg("--config")
        .arg(&cfg)
        .args(["fetch", "--all-accounts", "-q"]));
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("[base]"), "{r:?}");
    assert!(
        !r.stderr.contains("[a]") && !r.stderr.contains("fetched"),
        "{r:?}"
    );
    assert!(r.stderr.contains("1 of 4 account(s) failed: base"), "{r:?}");
}

fn json_failure(cmd: &mut Command) -> (i32, serde_json::Value, serde_json::Value) {
    let r = run(cmd.arg("--json"));
    let lines = json_lines(&r);
    let errors = of_type(&lines, "error");
    assert_eq!(errors.len(), 1, "{r:?}");
    let last = lines.last().unwrap().clone();
    assert_eq!(last["type"], "summary", "the summary comes last: {r:?}");
    assert_eq!(last["ok"], false, "{r:?}");
    assert_eq!(errors[0]["exit_code"], r.code, "{r:?}");
    for key in ["command", "response_code", "message"] {
        assert!(errors[0].get(key).is_some(), "{key}: {r:?}");
    }
    (r.code, errors[0].clone(), last)
}

#[test]
fn json_errors_of_every_class() {
    let mb = Mailbox::sample();
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("md");
    let class = |e: &serde_json::Value| e["class"].as_str().unwrap().to_string();

    // usage: no destination.
    let tk = start(stls(mb.clone()));
    let (code, e, _) = json_failure(tk.cmd().arg("fetch"));
    assert_eq!((code, class(&e).as_str()), (2, "usage"));

    // server: LIST refused.
    let tk = start(stls(mb.clone()).fail_command("LIST", "no listing today"));
    let (code, e, _) = json_failure(tk.cmd().args(["fetch", "--maildir"]).arg(&md));
    assert_eq!((code, class(&e).as_str()), (3, "server"));
    assert!(e["message"].as_str().unwrap().contains("no listing today"));
    assert_eq!(e["command"], "LIST", "{e}");
    assert_eq!(e["response_code"], serde_json::Value::Null, "{e}");

    // protocol: a message cut short.
    let tk = start(stls(mb.clone()).truncate_retr(1, 10));
    let (code, e, _) = json_failure(tk.cmd().args(["fetch", "--maildir"]).arg(&md));
    assert_eq!((code, class(&e).as_str()), (4, "protocol"));

    // auth: a wrong password.
    let tk = start(stls(mb.clone()));
    let (code, e, s) = json_failure(
        tk.cmd()
            .env("POP3_PASSWORD", "wrong")
            .args(["fetch", "--maildir"])
            .arg(&md),
    );
    assert_eq!((code, class(&e).as_str()), (5, "auth"));
    assert_eq!(e["response_code"], "AUTH", "{e}");
    assert_eq!(s["fetched"], 0);

    // tls: a CA that did not sign the server's certificate.
    let tk = start(stls(mb.clone()));
    let other = start(stls(mb.clone()));
    let (code, e, _) = json_failure(
        tk.cmd()
            .arg("--ca-file")
            .arg(&other.ca)
            .args(["fetch", "--maildir"])
            .arg(&md),
    );
    assert_eq!((code, class(&e).as_str()), (6, "tls"));

    // timeout: the server stalls on RETR.
    let tk = start(stls(mb.clone()).stall_on("RETR"));
    let (code, e, _) = json_failure(
        tk.cmd()
            .args(["--timeout", "1", "fetch", "--maildir"])
            .arg(&md),
    );
    assert_eq!((code, class(&e).as_str()), (7, "timeout"));

    // io: the Maildir path is a file.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let tk = start(stls(mb.clone()));
    let (code, e, _) = json_failure(tk.cmd().args(["fetch", "--maildir"]).arg(&file));
    assert_eq!((code, class(&e).as_str()), (8, "io"));

    // locked: another fetch holds the mbox (its dotlock exists).
    let mbox = dir.path().join("mbox");
    std::fs::write(dir.path().join("mbox.lock"), "").unwrap();
    let (code, e, _) = json_failure(
        tk.cmd()
            .args(["fetch", "--lock-timeout", "1", "--mbox"])
            .arg(&mbox),
    );
    assert_eq!((code, class(&e).as_str()), (9, "locked"));

    // A command line clap refuses.
    let (code, e, _) = json_failure(pop3().args(["fetch", "--jobs", "0"]));
    assert_eq!((code, class(&e).as_str()), (2, "usage"));

    // A configuration error before any account is fetched.
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[accounts.x]\nbogus = 1\n").unwrap();
    let (code, e, _) = json_failure(
        pop3()
            .arg("--config")
            .arg(&cfg)
            .args(["fetch", "--all-accounts"]),
    );
    assert_eq!((code, class(&e).as_str()), (2, "usage"));
    assert!(e["message"].as_str().unwrap().contains("line 2"), "{e}");

    // Other commands: an error object too.
    let tk = start(stls(mb));
    let r = run(tk
        .cmd()
        .env("POP3_PASSWORD", "wrong")
        .args(["--json", "stat"]));
    assert_eq!(r.code, 5);
    let lines = json_lines(&r);
    assert_eq!(lines.len(), 1, "{r:?}");
    assert_eq!(lines[0]["type"], "error");
    assert_eq!(lines[0]["class"], "auth");
}

#[test]
fn fetch_help_groups_its_options() {
    let r = run(pop3().args(["fetch", "--help"]));
    assert_eq!(r.code, 0, "{r:?}");
    let out = r.out();
    let at = |needle: &str| {
        out.find(needle)
            .unwrap_or_else(|| panic!("{needle}: {out}"))
    };
    // The heading an option is listed under: the last one before it.
    let heading = |o: &str| {
        // The option's own line, not a mention in a description.
        let pos = at(&format!("\n      {o}"));
        ["\nOptions:", "\nFetch options:", "\nConnection options:"]
            .into_iter()
            .filter(|h| at(h) < pos)
            .max_by_key(|h| at(h))
            .unwrap()
    };
    for o in [
        "--mda <COMMAND>",
        "--keep-days <N>",
        "--every <INTERVAL>",
        "--all-accounts",
    ] {
        assert_eq!(heading(o), "\nFetch options:", "{o}: {out}");
    }
    for o in [
        "--host <HOST>",
        "--ca-file <PEM>",
        "--account <NAME>",
        "--password-file",
    ] {
        assert_eq!(heading(o), "\nConnection options:", "{o}: {out}");
    }
}

/// Waits (up to 30 s) until `f` holds; the instant it was seen to hold.
fn wait_for(what: &str, f: impl Fn() -> bool) -> std::time::Instant {
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(
            std::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::time::Instant::now()
}

fn terminate(child: &mut std::process::Child) -> Run {
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let end = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(std::time::Instant::now() < end, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output_ref()
}

trait WaitRef {
    fn wait_with_output_ref(&mut self) -> Run;
}

impl WaitRef for std::process::Child {
    fn wait_with_output_ref(&mut self) -> Run {
        use std::io::Read;
        let code = self.wait().unwrap().code().unwrap_or(-1);
        let mut stdout = Vec::new();
        let mut stderr = String::new();
        if let Some(mut o) = self.stdout.take() {
            o.read_to_end(&mut stdout).unwrap();
        }
        if let Some(mut e) = self.stderr.take() {
            e.read_to_string(&mut stderr).unwrap();
        }
        Run {
            code,
            stdout,
            stderr,
        }
    }
}

/// `--every 1s` against a server announcing `LOGIN-DELAY 2`: two polls,
/// the second no sooner than the delay allows, each with its summary
/// line; SIGTERM ends it cleanly (exit 0).
#[test]
fn every_polls_again_honouring_login_delay_and_stops_on_sigterm() {
    let mb = Mailbox::new().with("p1", b"Subject: a\r\n\r\na\r\n".to_vec());
    let tk = start(stls(mb).add_capability("LOGIN-DELAY 2"));
    let dest = tk.path("eml");
    let mut child = tk
        .cmd()
        .args(["fetch", "--every", "1s", "--eml-dir"])
        .arg(&dest)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let first = wait_for("the first poll", || tk.server.connection_count() >= 1);
    wait_for("the first message", || {
        dest.is_dir() && eml_messages(&dest).len() == 1
    });
    tk.server
        .add_message(Message::new("p2", b"Subject: b\r\n\r\nb\r\n".to_vec()));
    let second = wait_for("the second poll", || tk.server.connection_count() >= 2);
    wait_for("the second message", || eml_messages(&dest).len() == 2);
    assert!(
        second - first >= Duration::from_millis(1900),
        "LOGIN-DELAY 2 honoured although --every is 1s: {:?}",
        second - first
    );
    let r = terminate(&mut child);
    assert_eq!(r.code, 0, "{r:?}");
    let polls = r.stderr.matches("fetched ").count();
    assert!(polls >= 2, "one line per poll: {r:?}");
    assert!(r.stderr.contains("fetched 1 message(s)"), "{r:?}");
}

/// A server refusing every login with `[IN-USE]`: each retry waits
/// longer (1 s, then 2 s, ...), and every failed poll is reported.
#[test]
fn every_backs_off_after_failures() {
    let tk = start(stls(Mailbox::sample()).in_use(true));
    let dest = tk.path("md");
    let mut child = tk
        .cmd()
        .args(["fetch", "--every", "1s", "--maildir"])
        .arg(&dest)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t1 = wait_for("poll 1", || tk.server.connection_count() >= 1);
    let t2 = wait_for("poll 2", || tk.server.connection_count() >= 2);
    let t3 = wait_for("poll 3", || tk.server.connection_count() >= 3);
    assert!(t2 - t1 >= Duration::from_millis(1900), "{:?}", t2 - t1);
    assert!(t3 - t2 >= Duration::from_millis(3900), "{:?}", t3 - t2);
    let r = terminate(&mut child);
    assert_eq!(r.code, 3, "the last poll failed: {r:?}");
    assert!(r.stderr.matches("[IN-USE]").count() >= 3, "{r:?}");
}

/// SIGTERM in the middle of a poll: the message being fetched is
/// finished, what was stored is recorded and deleted, no further message
/// is started, and the process exits 0. Nothing is lost or duplicated: the
/// next run fetches exactly the rest.
#[test]
fn sigterm_mid_fetch_finishes_the_current_message() {
    let mut mb = Mailbox::new();
    for i in 1..=8 {
        mb.push(Message::new(
            format!("s{i}"),
            format!("Subject: {i}\r\n\r\nbody {i}\r\n").into_bytes(),
        ));
    }
    let tk = start(stls(mb.clone()).write_delay(Duration::from_millis(150)));
    let dest = tk.path("md");
    let mut child = tk
        .cmd()
        .args(["fetch", "--every", "1h", "--delete", "--maildir"])
        .arg(&dest)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the first message", || {
        dest.join("new").is_dir() && !maildir_messages(&dest).is_empty()
    });
    let r = terminate(&mut child);
    assert_eq!(r.code, 0, "{r:?}");
    let stored = maildir_messages(&dest).len();
    assert!(stored < mb.len(), "stopped early: {stored} {r:?}");
    assert!(tk.server.wait_idle(Duration::from_secs(10)));
    assert_eq!(
        tk.server.mailbox().len(),
        mb.len() - stored,
        "what was stored was deleted, nothing else: {r:?}"
    );
    let r = run(tk.cmd().args(["fetch", "--delete", "--maildir"]).arg(&dest));
    assert_eq!(r.code, 0, "{r:?}");
    let lf_set = |mb: &Mailbox| multiset(mb.messages().iter().map(|m| lf(m.data())));
    assert!(multiset(maildir_messages(&dest)) == lf_set(&mb), "{r:?}");
    assert!(tk.server.mailbox().is_empty());
}

/// `--jobs 2`: account `b` is fetched while account `a`'s server stalls
/// (a sequential run would reach `b` only after `a` timed out).
#[test]
fn accounts_run_at_the_same_time() {
    let a = start(stls(Mailbox::sample()).stall_on("RETR"));
    let b = start(stls(Mailbox::sample()));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    let db = dir.path().join("b");
    std::fs::write(
        &cfg,
        format!(
            "[defaults]\npassword_env = \"POP3_PASSWORD\"\ntimeout = 60\n\n{}maildir = \"{}\"\n\n{}maildir = \"{}\"\n",
            account_toml("a", &a, ""),
            dir.path().join("a").display(),
            account_toml("b", &b, ""),
            db.display()
        ),
    )
    .unwrap();
    let mut child = pop3()
        .env("POP3_PASSWORD", PASSWORD)
        .arg("--config")
        .arg(&cfg)
        .args(["fetch", "--all-accounts", "--jobs", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("b's messages while a stalls", || {
        db.join("new").is_dir() && maildir_messages(&db).len() == Mailbox::sample().len()
    });
    assert!(child.try_wait().unwrap().is_none(), "a is still stalled");
    child.kill().unwrap();
    let _ = child.wait();
}

/// Two accounts delivering into one Maildir at the same time take turns
/// (even with --lock-timeout 0, neither gives up), and keep separate
/// records in its state file.
#[test]
fn accounts_sharing_a_maildir_take_turns() {
    let a = start(stls(Mailbox::sample()).write_delay(Duration::from_millis(20)));
    let b = start(stls(rich_mailbox()));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    let md = dir.path().join("inbox");
    std::fs::write(
        &cfg,
        format!(
            "[defaults]\npassword_env = \"POP3_PASSWORD\"\nmaildir = \"{}\"\n\n{}\n{}",
            md.display(),
            account_toml("a", &a, ""),
            account_toml("b", &b, "")
        ),
    )
    .unwrap();
    let r = run(pop3()
        .env("POP3_PASSWORD", PASSWORD)
        .arg("--config")
        .arg(&cfg)
        .args([
            "fetch",
            "--all-accounts",
            "--jobs",
            "2",
            "--lock-timeout",
            "0",
        ]));
    assert_eq!(r.code, 0, "{r:?}");
    let n = Mailbox::sample().len() + rich_mailbox().len();
    assert_eq!(maildir_messages(&md).len(), n, "{r:?}");
    assert!(
        r.stderr.contains("[a] fetched") && r.stderr.contains("[b] fetched"),
        "{r:?}"
    );
    // An account without a server is an error of its own.
    std::fs::write(&cfg, "[accounts.x]\nmaildir = \"/tmp/x\"\n").unwrap();
    let r = run(pop3()
        .arg("--config")
        .arg(&cfg)
        .args(["fetch", "--all-accounts"]));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("names no server"), "{r:?}");
}

/// `--add-received` puts a trace header first in Maildir and mbox
/// messages (the mbox `From ` line still uses the Return-Path), and never
/// touches `.eml` files.
#[test]
fn add_received_for_maildir_and_mbox_not_eml() {
    let mb = Mailbox::new().with(
        "r1",
        b"Return-Path: <carol@example.net>\r\nSubject: r\r\n\r\nbody\r\n".to_vec(),
    );
    let tk = start(stls(mb.clone()));
    let md = tk.path("md");
    let r = run(tk
        .cmd()
        .args(["fetch", "--add-received", "--maildir"])
        .arg(&md));
    assert_eq!(r.code, 0, "{r:?}");
    let m = String::from_utf8(maildir_messages(&md).remove(0)).unwrap();
    assert!(
        m.starts_with("Received: from 127.0.0.1\n\tby ") && m.contains("with POP3 id r1; "),
        "{m}"
    );
    assert!(
        m.ends_with("\nReturn-Path: <carol@example.net>\nSubject: r\n\nbody\n"),
        "{m}"
    );
    let mbox = tk.path("mbox");
    let r = run(tk
        .cmd()
        .args(["fetch", "--add-received", "--mbox"])
        .arg(&mbox));
    assert_eq!(r.code, 0, "{r:?}");
    let text = String::from_utf8(std::fs::read(&mbox).unwrap()).unwrap();
    assert!(
        text.starts_with("From carol@example.net ")
            && text.contains("\nReceived: from 127.0.0.1\n"),
        "{text}"
    );
    let eml = tk.path("eml");
    let r = run(tk
        .cmd()
        .args(["fetch", "--add-received", "--eml-dir"])
        .arg(&eml));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(eml_messages(&eml), [received(mb.messages()[0].data())]);
}

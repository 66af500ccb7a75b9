//! `pop3 completions SHELL` and `pop3 man`, generated from the clap
//! definition: every shell gets a script naming the commands and options,
//! the bash one is valid bash, and no server is contacted.

mod common;

use common::*;

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let r = run(pop3().args(["completions", shell]));
        assert_eq!(r.code, 0, "{shell}: {r:?}");
        let out = r.out();
        for word in ["fetch", "headers", "maildir", "account", "config"] {
            assert!(out.contains(word), "{shell} completion lacks {word}");
        }
        assert!(
            !r.stderr.contains("DEMO"),
            "{shell}: no demo server started"
        );
    }
    let r = run(pop3().args(["completions", "bash"]));
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("pop3.bash");
    std::fs::write(&script, &r.stdout).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .expect("bash");
    assert!(check.status.success(), "bash -n: {check:?}");
    let r = run(pop3().args(["completions", "tcsh"]));
    assert_eq!(r.code, 2, "an unknown shell is a usage error: {r:?}");
}

#[test]
fn man_page() {
    let r = run(pop3().arg("man"));
    assert_eq!(r.code, 0, "{r:?}");
    let out = r.out();
    assert!(out.contains(".TH pop3 1"), "{}", &out[..out.len().min(300)]);
    for word in ["fetch", "completions", "Exit codes"] {
        assert!(out.contains(word), "the man page lacks {word}");
    }
}

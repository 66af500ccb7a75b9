//! The configuration file: `--config`, `--account`, `inherit`, unknown
//! keys, the password-in-file mode check, and flags overriding an account.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;
use pop3_testkit::Mailbox;

fn write_config(tk: &Tk, text: &str, mode: u32) -> std::path::PathBuf {
    let path = tk.path("config.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// An account table for the testkit server `tk`, plus `extra` lines.
fn account(tk: &Tk, name: &str, extra: &str) -> String {
    format!(
        "[accounts.{name}]\nurl = \"pop3://{USER}@127.0.0.1:{}\"\nca_file = \"{}\"\n{extra}\n",
        tk.server.port(),
        tk.ca.display()
    )
}

#[test]
fn account_from_config_file_with_inherit_and_password_env() {
    let tk = start(stls(Mailbox::sample()));
    let text = format!(
        "[defaults]\ntimeout = 20\n\n{}\n[accounts.child]\ninherit = \"base\"\n",
        account(&tk, "base", "password_env = \"MY_MAIL_PASSWORD\"")
    );
    let config = write_config(&tk, &text, 0o644);
    let r = run(pop3()
        .arg("--config")
        .arg(&config)
        .args(["--account", "child", "--json", "stat"])
        .env("MY_MAIL_PASSWORD", PASSWORD));
    assert_eq!(r.code, 0, "{r:?}");
    let n = Mailbox::sample().len();
    assert!(r.out().contains(&format!("\"messages\":{n}")), "{r:?}");
    // password_env names a variable that must be set: POP3_PASSWORD is not
    // silently used instead.
    let r = run(pop3()
        .arg("--config")
        .arg(&config)
        .args(["--account", "child", "stat"])
        .env("POP3_PASSWORD", PASSWORD));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("MY_MAIL_PASSWORD is not set"), "{r:?}");
}

#[test]
fn flags_override_the_account() {
    let tk = start(stls(Mailbox::sample()));
    // The account points at a port where nothing listens; --port wins.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let text = format!(
        "[accounts.a]\nhost = \"127.0.0.1\"\nport = {dead_port}\nuser = \"{USER}\"\n\
         ca_file = \"{}\"\npassword_env = \"PW\"\n",
        tk.ca.display()
    );
    let config = write_config(&tk, &text, 0o600);
    let base = || {
        let mut c = pop3();
        c.arg("--config")
            .arg(&config)
            .args(["--account", "a", "--timeout", "20"])
            .env("PW", PASSWORD);
        c
    };
    let r = run(base().arg("stat"));
    assert_eq!(r.code, 8, "nothing listens there: {r:?}");
    let r = run(base()
        .args(["--port", &tk.server.port().to_string()])
        .arg("stat"));
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let tk = start(stls(Mailbox::sample()));
    let text = format!(
        "{}passwd_command = \"pass show x\"\n",
        account(&tk, "a", "")
    );
    let config = write_config(&tk, &text, 0o600);
    let r = run(pop3()
        .arg("--config")
        .arg(&config)
        .args(["--account", "a", "stat"]));
    assert_eq!(r.code, 2, "{r:?}");
    let line = text
        .lines()
        .position(|l| l.starts_with("passwd_command"))
        .unwrap()
        + 1;
    assert!(
        r.stderr
            .contains(&format!("{}: line {line}: ", config.display())),
        "{r:?}"
    );
    assert!(r.stderr.contains("passwd_command"), "{r:?}");
    assert_eq!(tk.server.connection_count(), 0, "nothing was contacted");
}

#[test]
fn password_in_a_readable_file_is_refused() {
    let tk = start(stls(Mailbox::sample()));
    let text = account(&tk, "a", &format!("password = \"{PASSWORD}\""));
    let config = write_config(&tk, &text, 0o640);
    let r = run(pop3()
        .arg("--config")
        .arg(&config)
        .args(["--account", "a", "stat"]));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("chmod 600"), "{r:?}");
    assert!(!r.stderr.contains(PASSWORD), "the password is never shown");
    assert_eq!(tk.server.connection_count(), 0);
    // The same file, private, works.
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = run(pop3()
        .arg("--config")
        .arg(&config)
        .args(["--account", "a", "stat"]));
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn default_location_and_unknown_account() {
    let tk = start(stls(Mailbox::sample()));
    let xdg = tk.path("xdg");
    std::fs::create_dir_all(xdg.join("pop3")).unwrap();
    std::fs::write(
        xdg.join("pop3/config.toml"),
        account(&tk, "mine", "password_env = \"PW\""),
    )
    .unwrap();
    let r = run(pop3()
        .env("XDG_CONFIG_HOME", &xdg)
        .env("PW", PASSWORD)
        .args(["--account", "mine", "list"]));
    assert_eq!(r.code, 0, "{r:?}");
    let r = run(pop3()
        .env("XDG_CONFIG_HOME", &xdg)
        .args(["--account", "other", "list"]));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("no account \"other\" (accounts: mine)"),
        "{r:?}"
    );
}

//! Every command's exact replies, states, authentication and commit rules.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::{unstuff, Client};
use pop3_testkit::{apop_digest, Mailbox, Message, Server, DEFAULT_CAPABILITIES};

const M1: &str = "From: a@example.com\r\nSubject: one\r\n\r\nline 1\r\nline 2\r\nline 3\r\n";
const M2: &str = "Subject: two\r\n\r\n.dot line\r\n.\r\nend\r\n";

fn mailbox() -> Mailbox {
    Mailbox::new().with("uid-one", M1).with("uid-two", M2)
}

fn server() -> pop3_testkit::ServerHandle {
    Server::builder()
        .user("alice", "secret")
        .user("bob", "pass word")
        .mailbox(mailbox())
        .start()
        .unwrap()
}

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn greeting_has_apop_timestamp() {
    let s = server();
    assert_eq!(s.addr().ip().to_string(), "127.0.0.1");
    assert_ne!(s.port(), 0);
    let (_c, g) = Client::greeted(s.addr());
    assert!(g.starts_with("+OK POP3 pop3-testkit ready <"), "{g:?}");
    assert!(g.ends_with(">\r\n"), "{g:?}");
    let ts = &g[g.find('<').unwrap()..g.len() - 2];
    assert!(ts.contains('@') && ts.contains('.'), "{ts}");
}

#[test]
fn custom_greeting() {
    let s = Server::builder().greeting("hello there").start().unwrap();
    let (_c, g) = Client::greeted(s.addr());
    assert!(g.starts_with("+OK hello there <"), "{g:?}");
}

#[test]
fn capa_default_list_in_both_states() {
    let s = server();
    let (mut c, _) = Client::greeted(s.addr());
    assert_eq!(c.cmd("CAPA"), "+OK Capability list follows\r\n");
    let caps: Vec<String> = c.body().iter().map(|l| l.trim_end().to_string()).collect();
    assert_eq!(caps, DEFAULT_CAPABILITIES);
    assert_eq!(
        caps,
        [
            "TOP",
            "USER",
            "UIDL",
            "PIPELINING",
            "RESP-CODES",
            "AUTH-RESP-CODE",
            "SASL PLAIN",
            "IMPLEMENTATION pop3-testkit"
        ]
    );
    assert!(c.cmd("USER alice").starts_with("+OK"));
    assert!(c.cmd("PASS secret").starts_with("+OK"));
    assert_eq!(c.cmd("capa"), "+OK Capability list follows\r\n");
    assert_eq!(c.body().len(), DEFAULT_CAPABILITIES.len());
}

#[test]
fn capa_configurable() {
    let s = Server::builder()
        .capabilities(["USER", "TOP"])
        .add_capability("UTF8")
        .start()
        .unwrap();
    let (mut c, _) = Client::greeted(s.addr());
    assert_eq!(c.cmd("CAPA"), "+OK Capability list follows\r\n");
    assert_eq!(c.body(), ["USER\r\n", "TOP\r\n", "UTF8\r\n"]);
    let s = Server::builder().no_pipelining().start().unwrap();
    let (mut c, _) = Client::greeted(s.addr());
    c.cmd("CAPA");
    let caps = c.body();
    assert!(!caps.iter().any(|l| l.contains("PIPELINING")), "{caps:?}");
    assert_eq!(caps.len(), DEFAULT_CAPABILITIES.len() - 1);
}

#[test]
fn user_pass_login_and_stat() {
    let s = server();
    let (mut c, _) = Client::greeted(s.addr());
    assert_eq!(c.cmd("USER alice"), "+OK alice accepted, send PASS\r\n");
    let total = M1.len() + M2.len();
    assert_eq!(
        c.cmd("PASS secret"),
        format!("+OK alice's maildrop has 2 messages ({total} octets)\r\n")
    );
    assert_eq!(c.cmd("STAT"), format!("+OK 2 {total}\r\n"));
}

#[test]
fn password_with_space_and_bad_password() {
    let s = server();
    let (mut c, _) = Client::greeted(s.addr());
    c.cmd("USER bob");
    assert_eq!(
        c.cmd("PASS wrong"),
        "-ERR [AUTH] invalid user name or password\r\n"
    );
    // After a failed PASS, USER is needed again.
    assert_eq!(c.cmd("PASS pass word"), "-ERR send USER first\r\n");
    c.cmd("USER bob");
    assert!(c.cmd("PASS pass word").starts_with("+OK bob's maildrop"));
    // Unknown user: USER accepted, PASS rejected (no user enumeration).
    let (mut c, _) = Client::greeted(s.addr());
    assert!(c.cmd("USER mallory").starts_with("+OK"));
    assert_eq!(
        c.cmd("PASS secret"),
        "-ERR [AUTH] invalid user name or password\r\n"
    );
    assert_eq!(c.cmd("USER"), "-ERR missing user name\r\n");
}

#[test]
fn apop_login() {
    let s = server();
    let (mut c, g) = Client::greeted(s.addr());
    let ts = &g[g.find('<').unwrap()..g.rfind('>').unwrap() + 1];
    assert_eq!(
        c.cmd(&format!("APOP alice {}", apop_digest(ts, "wrong"))),
        "-ERR [AUTH] authentication failed\r\n"
    );
    assert_eq!(c.cmd("APOP alice"), "-ERR usage: APOP name digest\r\n");
    assert!(c
        .cmd(&format!(
            "APOP alice {}",
            apop_digest(ts, "secret").to_uppercase()
        ))
        .starts_with("+OK alice's maildrop has 2 messages"));
    assert!(c.cmd("STAT").starts_with("+OK 2 "));
}

#[test]
fn apop_without_timestamp_is_refused() {
    let s = Server::builder()
        .user("alice", "secret")
        .apop_timestamp(false)
        .start()
        .unwrap();
    let (mut c, g) = Client::greeted(s.addr());
    assert_eq!(g, "+OK POP3 pop3-testkit ready\r\n");
    assert_eq!(
        c.cmd(&format!("APOP alice {}", apop_digest("<x@y>", "secret"))),
        "-ERR APOP not supported\r\n"
    );
}

#[test]
fn auth_plain_initial_response() {
    let s = server();
    let (mut c, _) = Client::greeted(s.addr());
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", b64(b"\0alice\0nope"))),
        "-ERR [AUTH] authentication failed\r\n"
    );
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", b64(b"bob\0alice\0secret"))),
        "-ERR [AUTH] authentication failed\r\n",
        "authzid different from authcid is refused"
    );
    assert_eq!(
        c.cmd("AUTH PLAIN !!notbase64"),
        "-ERR invalid base64 in SASL response\r\n"
    );
    assert_eq!(c.cmd("AUTH PLAIN ="), "-ERR malformed PLAIN response\r\n");
    assert_eq!(
        c.cmd("AUTH CRAM-MD5"),
        "-ERR unsupported SASL mechanism\r\n"
    );
    assert!(c
        .cmd(&format!("AUTH PLAIN {}", b64(b"alice\0alice\0secret")))
        .starts_with("+OK alice's maildrop"));
}

#[test]
fn auth_plain_continuation_and_cancel() {
    let s = server();
    let (mut c, _) = Client::greeted(s.addr());
    assert_eq!(c.cmd("AUTH"), "+OK Supported SASL mechanisms follow\r\n");
    assert_eq!(c.body(), ["PLAIN\r\n"]);
    assert_eq!(c.cmd("AUTH PLAIN"), "+ \r\n");
    assert_eq!(c.cmd("*"), "-ERR authentication cancelled\r\n");
    assert_eq!(c.cmd("auth plain"), "+ \r\n");
    assert!(c
        .cmd(&b64(b"\0alice\0secret"))
        .starts_with("+OK alice's maildrop"));
    assert_eq!(
        c.cmd("AUTH PLAIN"),
        "-ERR command not valid in this state\r\n"
    );
}

#[test]
fn list_and_uidl() {
    let s = server();
    let mut c = Client::login(s.addr(), "alice", "secret");
    let total = M1.len() + M2.len();
    assert_eq!(
        c.cmd("LIST"),
        format!("+OK 2 messages ({total} octets)\r\n")
    );
    assert_eq!(
        c.body(),
        [format!("1 {}\r\n", M1.len()), format!("2 {}\r\n", M2.len())]
    );
    assert_eq!(c.cmd("LIST 2"), format!("+OK 2 {}\r\n", M2.len()));
    assert_eq!(c.cmd("LIST 3"), "-ERR no such message\r\n");
    assert_eq!(c.cmd("LIST 0"), "-ERR no such message\r\n");
    assert_eq!(c.cmd("LIST x"), "-ERR invalid message number\r\n");
    assert_eq!(c.cmd("LIST -1"), "-ERR invalid message number\r\n");
    assert_eq!(c.cmd("LIST 1 2"), "-ERR too many arguments\r\n");
    assert_eq!(c.cmd("UIDL"), "+OK unique-id listing follows\r\n");
    assert_eq!(c.body(), ["1 uid-one\r\n", "2 uid-two\r\n"]);
    assert_eq!(c.cmd("UIDL 1"), "+OK 1 uid-one\r\n");
    assert_eq!(c.cmd("UIDL 99999999999"), "-ERR invalid message number\r\n");
}

#[test]
fn retr_dot_stuffs() {
    let s = server();
    let mut c = Client::login(s.addr(), "alice", "secret");
    assert_eq!(c.cmd("RETR 1"), format!("+OK {} octets\r\n", M1.len()));
    assert_eq!(c.body().concat(), M1);
    assert_eq!(c.cmd("RETR 2"), format!("+OK {} octets\r\n", M2.len()));
    let raw = c.body_bytes();
    assert_eq!(
        raw,
        b"Subject: two\r\n\r\n..dot line\r\n..\r\nend\r\n.\r\n".to_vec()
    );
    assert_eq!(unstuff(&raw), M2.as_bytes());
    assert_eq!(c.cmd("RETR"), "-ERR missing message number\r\n");
    assert_eq!(c.cmd("RETR 3"), "-ERR no such message\r\n");
}

#[test]
fn top() {
    let s = server();
    let mut c = Client::login(s.addr(), "alice", "secret");
    assert_eq!(c.cmd("TOP 1 0"), "+OK top of message follows\r\n");
    assert_eq!(
        c.body().concat(),
        "From: a@example.com\r\nSubject: one\r\n\r\n"
    );
    c.cmd("TOP 1 2");
    assert_eq!(
        c.body().concat(),
        "From: a@example.com\r\nSubject: one\r\n\r\nline 1\r\nline 2\r\n"
    );
    c.cmd("TOP 1 100");
    assert_eq!(c.body().concat(), M1);
    c.cmd("TOP 2 1");
    assert_eq!(c.body().concat(), "Subject: two\r\n\r\n..dot line\r\n");
    assert_eq!(c.cmd("TOP 1"), "-ERR usage: TOP msg lines\r\n");
    assert_eq!(c.cmd("TOP 1 x"), "-ERR invalid number of lines\r\n");
    assert_eq!(c.cmd("TOP 9 1"), "-ERR no such message\r\n");
}

#[test]
fn dele_rset_and_quit_commit() {
    let s = server();
    let mut c = Client::login(s.addr(), "alice", "secret");
    assert_eq!(c.cmd("DELE 1"), "+OK message 1 deleted\r\n");
    assert_eq!(c.cmd("DELE 1"), "-ERR message 1 already deleted\r\n");
    assert_eq!(c.cmd("RETR 1"), "-ERR message 1 already deleted\r\n");
    assert_eq!(c.cmd("STAT"), format!("+OK 1 {}\r\n", M2.len()));
    c.cmd("LIST");
    assert_eq!(c.body(), [format!("2 {}\r\n", M2.len())]);
    // DELE only marks: the shared mailbox is unchanged.
    assert_eq!(s.mailbox().len(), 2);
    let total = M1.len() + M2.len();
    assert_eq!(
        c.cmd("RSET"),
        format!("+OK maildrop has 2 messages ({total} octets)\r\n")
    );
    assert_eq!(c.cmd("STAT"), format!("+OK 2 {total}\r\n"));
    c.cmd("DELE 2");
    assert_eq!(
        c.cmd("QUIT"),
        "+OK pop3-testkit signing off (1 messages left)\r\n"
    );
    assert_eq!(c.rest(), b"");
    assert_eq!(s.mailbox().uids(), ["uid-one"]);
    // A new session sees the committed state.
    let mut c = Client::login(s.addr(), "alice", "secret");
    assert_eq!(c.cmd("STAT"), format!("+OK 1 {}\r\n", M1.len()));
    assert_eq!(c.cmd("UIDL 1"), "+OK 1 uid-one\r\n");
}

#[test]
fn dropped_connection_commits_nothing() {
    let s = server();
    {
        let mut c = Client::login(s.addr(), "alice", "secret");
        assert!(c.cmd("DELE 1").starts_with("+OK"));
        assert!(c.cmd("DELE 2").starts_with("+OK"));
    }
    assert!(s.wait_idle(Duration::from_secs(5)));
    assert_eq!(s.mailbox(), mailbox());
}

#[test]
fn quit_in_authorization_state() {
    let s = server();
    let (mut c, _) = Client::greeted(s.addr());
    assert_eq!(c.cmd("QUIT"), "+OK pop3-testkit signing off\r\n");
    assert_eq!(c.rest(), b"");
}

#[test]
fn noop_and_wrong_state_and_unknown() {
    let s = server();
    let (mut c, _) = Client::greeted(s.addr());
    for cmd in [
        "STAT", "LIST", "UIDL", "RETR 1", "TOP 1 1", "DELE 1", "RSET", "NOOP",
    ] {
        assert_eq!(
            c.cmd(cmd),
            "-ERR command not valid in this state\r\n",
            "{cmd} before login"
        );
    }
    assert_eq!(c.cmd("XYZZY"), "-ERR unknown command\r\n");
    assert_eq!(c.cmd(""), "-ERR empty command\r\n");
    assert_eq!(
        c.cmd("STLS"),
        "-ERR unknown command\r\n",
        "STLS not enabled"
    );
    c.cmd("USER alice");
    c.cmd("PASS secret");
    assert_eq!(c.cmd("NOOP"), "+OK\r\n");
    assert_eq!(c.cmd("noop"), "+OK\r\n");
    for cmd in ["USER alice", "PASS x", "APOP a b", "AUTH PLAIN", "UTF8"] {
        assert_eq!(
            c.cmd(cmd),
            "-ERR command not valid in this state\r\n",
            "{cmd} after login"
        );
    }
    assert_eq!(c.cmd("STAT 1"), "-ERR too many arguments\r\n");
}

#[test]
fn utf8_and_lang() {
    let s = server();
    let (mut c, _) = Client::greeted(s.addr());
    assert_eq!(c.cmd("UTF8"), "+OK UTF8 enabled\r\n");
    assert_eq!(c.cmd("LANG"), "+OK Language listing follows\r\n");
    assert_eq!(c.body(), ["en English\r\n"]);
    assert_eq!(c.cmd("LANG en"), "+OK en English\r\n");
    assert_eq!(c.cmd("LANG *"), "+OK en English\r\n");
    assert_eq!(c.cmd("LANG tlh"), "-ERR invalid language\r\n");
}

#[test]
fn pipelined_commands_answered_in_order() {
    let s = server();
    let (mut c, _) = Client::greeted(s.addr());
    c.send(b"USER alice\r\nPASS secret\r\nSTAT\r\nLIST 1\r\nUIDL 2\r\nNOOP\r\nQUIT\r\n");
    let total = M1.len() + M2.len();
    let rest = String::from_utf8(c.rest()).unwrap();
    assert_eq!(
        rest,
        format!(
            "+OK alice accepted, send PASS\r\n\
             +OK alice's maildrop has 2 messages ({total} octets)\r\n\
             +OK 2 {total}\r\n\
             +OK 1 {}\r\n\
             +OK 2 uid-two\r\n\
             +OK\r\n\
             +OK pop3-testkit signing off (2 messages left)\r\n",
            M1.len()
        )
    );
    assert!(s.wait_idle(Duration::from_secs(5)));
    let t = &s.transcripts()[0];
    // One reply per command, in order: the server wrote each reply before
    // reading the next command.
    assert_eq!(t.server_lines().len(), 8);
}

#[test]
fn response_codes_in_use_login_delay_sys_temp() {
    let s = Server::builder()
        .user("alice", "secret")
        .in_use(true)
        .start()
        .unwrap();
    let (mut c, _) = Client::greeted(s.addr());
    c.cmd("USER alice");
    assert_eq!(
        c.cmd("PASS bad"),
        "-ERR [AUTH] invalid user name or password\r\n"
    );
    c.cmd("USER alice");
    assert_eq!(
        c.cmd("PASS secret"),
        "-ERR [IN-USE] maildrop is locked by another session\r\n"
    );
    assert_eq!(c.cmd("STAT"), "-ERR command not valid in this state\r\n");

    let s = Server::builder()
        .user("alice", "secret")
        .login_delay(true)
        .start()
        .unwrap();
    let (mut c, _) = Client::greeted(s.addr());
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", b64(b"\0alice\0secret"))),
        "-ERR [LOGIN-DELAY] minimum time between logins not reached\r\n"
    );

    let s = Server::builder()
        .user("alice", "secret")
        .mailbox(mailbox())
        .fail_command("retr", "[SYS/TEMP] storage unavailable")
        .start()
        .unwrap();
    let mut c = Client::login(s.addr(), "alice", "secret");
    assert_eq!(c.cmd("RETR 1"), "-ERR [SYS/TEMP] storage unavailable\r\n");
    assert!(c.cmd("TOP 1 0").starts_with("+OK"));
}

#[test]
fn exclusive_lock() {
    let s = Server::builder()
        .user("alice", "secret")
        .mailbox(mailbox())
        .exclusive_lock(true)
        .start()
        .unwrap();
    let mut first = Client::login(s.addr(), "alice", "secret");
    let (mut second, _) = Client::greeted(s.addr());
    second.cmd("USER alice");
    assert_eq!(
        second.cmd("PASS secret"),
        "-ERR [IN-USE] maildrop is locked by another session\r\n"
    );
    assert!(first.cmd("QUIT").starts_with("+OK"));
    assert_eq!(first.rest(), b"");
    assert_eq!(s.connection_count(), 2);
    // Lock released once the first session ended.
    let mut ok = false;
    for _ in 0..100 {
        second.cmd("USER alice");
        if second.cmd("PASS secret").starts_with("+OK") {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(ok, "lock was not released");
}

#[test]
fn shared_mailbox_between_sessions_and_live_updates() {
    let s = server();
    let mut a = Client::login(s.addr(), "alice", "secret");
    let mut b = Client::login(s.addr(), "bob", "pass word");
    a.cmd("DELE 1");
    assert!(a.cmd("QUIT").starts_with("+OK"));
    // b keeps its snapshot; its own deletion of message 2 still works.
    assert!(b.cmd("STAT").starts_with("+OK 2 "));
    b.cmd("DELE 2");
    assert!(b
        .cmd("QUIT")
        .starts_with("+OK pop3-testkit signing off (0 messages left)"));
    assert!(s.mailbox().is_empty());
    s.add_message(Message::new("new-1", "Subject: x\r\n\r\nhi\r\n"));
    let mut c = Client::login(s.addr(), "alice", "secret");
    assert_eq!(c.cmd("UIDL 1"), "+OK 1 new-1\r\n");
    s.set_mailbox(Mailbox::sample());
    assert_eq!(s.mailbox().len(), 6);
}

#[test]
fn too_long_line_is_rejected() {
    let s = Server::builder().max_line_len(100).start().unwrap();
    let (mut c, _) = Client::greeted(s.addr());
    let long = format!("USER {}\r\n", "a".repeat(200));
    c.send(long.as_bytes());
    assert_eq!(c.line(), "-ERR line too long\r\n");
    assert_eq!(c.rest(), b"");
}

#[test]
fn read_timeout_closes_idle_connection() {
    let s = Server::builder()
        .read_timeout(Duration::from_millis(200))
        .start()
        .unwrap();
    let (mut c, _) = Client::greeted(s.addr());
    let t = std::time::Instant::now();
    assert_eq!(c.rest(), b"");
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert!(s.wait_idle(Duration::from_secs(5)));
}

#[test]
fn binary_garbage_never_kills_the_server() {
    let s = server();
    let (mut c, _) = Client::greeted(s.addr());
    c.send(b"\x00\xff\xfe USER\r\n\r\n\n\x1b[A\r\nAUTH PLAIN \xff\r\n");
    assert_eq!(c.line(), "-ERR unknown command\r\n");
    assert_eq!(c.line(), "-ERR empty command\r\n");
    assert_eq!(c.line(), "-ERR empty command\r\n");
    assert_eq!(c.line(), "-ERR unknown command\r\n");
    assert_eq!(c.line(), "-ERR invalid base64 in SASL response\r\n");
    // Still alive and serving.
    let mut d = Client::login(s.addr(), "alice", "secret");
    assert!(d.cmd("STAT").starts_with("+OK 2"));
}

#[test]
fn shutdown_closes_open_connections() {
    let s = server();
    let mut c = Client::login(s.addr(), "alice", "secret");
    let addr = s.addr();
    let t = std::time::Instant::now();
    s.shutdown();
    assert!(t.elapsed() < Duration::from_secs(3));
    assert_eq!(c.rest(), b"");
    assert!(
        std::net::TcpStream::connect(addr).is_err() || {
            // If something else grabbed the port, at least our server is gone.
            true
        }
    );
}

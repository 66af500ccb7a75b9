//! A retry policy over the shared adapter `Error` (what `pop3-blocking`
//! and `pop3-tokio` return): ask for a new password only on
//! `is_auth_failure()`, retry later on `is_transient()`, give up on
//! `is_permanent()`. The errors here are built by hand to show each case;
//! in a program they come from `Client` calls.
//!
//! ```text
//! cargo run -p pop3-adapter --example retry_policy
//! ```

use std::io;

use pop3_adapter::Error;
use pop3_proto::{CommandKind, ErrResponse, RespCode};

/// What to do after a failed fetch.
#[derive(Debug, PartialEq)]
enum Next {
    AskPassword,
    RetryLater,
    GiveUp,
    Investigate,
}

fn next(e: &Error) -> Next {
    if e.is_auth_failure() {
        Next::AskPassword
    } else if e.is_transient() {
        Next::RetryLater
    } else if e.is_permanent() {
        Next::GiveUp
    } else {
        Next::Investigate // a local problem (disk full, ...)
    }
}

fn refused(command: CommandKind, code: Option<RespCode>, text: &str) -> Error {
    Error::Server {
        command,
        response: ErrResponse::new(code, text),
    }
}

fn main() {
    let cases = [
        (
            refused(CommandKind::Pass, Some(RespCode::Auth), "invalid login"),
            Next::AskPassword,
        ),
        (
            refused(CommandKind::Pass, Some(RespCode::InUse), "mailbox locked"),
            Next::RetryLater,
        ),
        (
            refused(CommandKind::Pass, Some(RespCode::LoginDelay), "wait"),
            Next::RetryLater,
        ),
        (
            refused(
                CommandKind::Pass,
                Some(RespCode::SysPerm),
                "account disabled",
            ),
            Next::GiveUp,
        ),
        (Error::timeout("read"), Next::RetryLater),
        (
            Error::Io(io::Error::from(io::ErrorKind::ConnectionReset)),
            Next::RetryLater,
        ),
        (
            Error::Sink(io::Error::other("disk full")),
            Next::Investigate,
        ),
    ];
    for (error, want) in &cases {
        let got = next(error);
        println!("{error} -> {got:?}");
        assert_eq!(&got, want);
    }
}

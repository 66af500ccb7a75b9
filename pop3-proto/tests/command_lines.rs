//! Any `Command` that can be built, by any public route, is one
//! CRLF-terminated line of at most 255 octets (issue 10 item 5). The check
//! is the `command_build` fuzz target's (`fuzz/src/checks.rs`), driven here
//! by proptest with strings biased towards the dangerous bytes and lengths.

#[path = "../../fuzz/src/checks.rs"]
#[allow(unused)]
mod checks;
#[path = "../../fuzz/src/reference.rs"]
#[allow(unused)]
mod reference;

use checks::{assert_one_line, command_build, BuildInput};
use pop3_proto::{
    Apop, ApopDigest, Command, CommandError, LangTag, MechanismName, Password, UserName,
    MAX_COMMAND_LINE,
};
use proptest::prelude::*;

/// Text made of the bytes that matter (CR, LF, NUL, space, tab, `=`, hex,
/// non-ASCII), of any length up to past the line limit.
fn nasty_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\r".to_string()),
        Just("\n".to_string()),
        Just("\0".to_string()),
        Just(" ".to_string()),
        Just("\t".to_string()),
        Just("é".to_string()),
        "[a-f0-9]{1,32}",
        "[A-Za-z_-]{1,30}",
        "x{200,260}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_buildable_command_is_one_line(
        a in nasty_text(),
        b in nasty_text(),
        c in nasty_text(),
        initial in proptest::option::of(prop::collection::vec(any::<u8>(), 0..400)),
        n in any::<u32>(),
        lines in any::<u32>(),
    ) {
        command_build(&BuildInput { texts: [a, b, c], initial, nums: [n, lines] });
    }

    /// Not vacuous: plain words up to the limits are accepted and give
    /// exactly the expected line lengths.
    #[test]
    fn plain_arguments_are_accepted(word in "[a-z0-9]{1,248}") {
        let line = |c: &Command| { let mut v = Vec::new(); c.encode(&mut v); v.len() };
        let user = Command::User(UserName::new(&word).unwrap());
        prop_assert_eq!(line(&user), 7 + word.len());
        prop_assert_eq!(line(&Command::Pass(Password::new(&word).unwrap())), 7 + word.len());
        prop_assert_eq!(line(&Command::Lang(Some(LangTag::new(&word).unwrap()))), 7 + word.len());
        let apop = UserName::new(&word).and_then(|u| Apop::new(u, ApopDigest::compute("<a@b>", "s")));
        prop_assert_eq!(apop.is_ok(), word.len() <= Apop::MAX_USER_LEN);
        if let Ok(a) = apop {
            prop_assert_eq!(line(&Command::Apop(a)), 40 + word.len());
        }
    }
}

#[test]
fn the_issue_examples_cannot_be_built() {
    // Command::Apop { digest: Secret::new("x\r\nDELE 1") } from the issue:
    // a digest is 32 lowercase hex digits, nothing else.
    assert_eq!(
        ApopDigest::new("x\r\nDELE 1"),
        Err(CommandError::InvalidByte)
    );
    assert_eq!(
        ApopDigest::new("C4C9334BAC560ECC979E58001B3E22FB"),
        Err(CommandError::InvalidByte)
    );
    assert!(ApopDigest::new("c4c9334bac560ecc979e58001b3e22fb").is_ok());
    // A password (spaces allowed) cannot become a user name (one word).
    assert_eq!(UserName::new("a b c"), Err(CommandError::Space));
    assert!(Password::new("a b c").is_ok());
    // Lengths: the variant built directly is bounded like the constructor.
    let long = "x".repeat(249);
    assert_eq!(
        UserName::new(&long),
        Err(CommandError::TooLong { len: 256 })
    );
    assert_eq!(
        Password::try_from(long.as_str()),
        Err(CommandError::TooLong { len: 256 })
    );
    let name = UserName::new(&"u".repeat(216)).unwrap();
    assert_eq!(
        Apop::new(name, ApopDigest::compute("<1@h>", "s")),
        Err(CommandError::TooLong { len: 256 })
    );
    let name = UserName::new(&"u".repeat(215)).unwrap();
    let apop = Command::Apop(Apop::new(name, ApopDigest::compute("<1@h>", "s")).unwrap());
    let mut v = Vec::new();
    apop.encode(&mut v);
    assert_eq!(v.len(), MAX_COMMAND_LINE);
    assert_one_line(&apop);
    assert_eq!(
        MechanismName::try_from("x y"),
        Err(CommandError::InvalidByte)
    );
    // Debug never shows a password or a digest.
    let p = Password::new("hunter2").unwrap();
    assert!(!format!("{p:?}{:?}", Command::Pass(p.clone())).contains("hunter2"));
    let d = ApopDigest::compute("<1@h>", "s");
    assert!(!format!("{d:?}").contains(d.expose()));
}

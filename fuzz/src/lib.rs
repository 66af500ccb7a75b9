//! Shared harness of the `pop3-proto` fuzz targets (see `README.md`).
//!
//! * [`checks`]: the input types and the check function of every target.
//!   Each input type decodes from any byte string with its own small reader,
//!   so a corpus file means the same thing here and in the stable replay test
//!   `pop3-proto/tests/fuzz_corpus.rs`, which includes `checks.rs` and
//!   `reference.rs` through `#[path]` (no `arbitrary` needed there).
//! * [`reference`]: independent oracles (a test-only server-side command
//!   parser, dot-stuffing, the reply grammars, base64, MD5/SHA/HMAC/PBKDF2).
//! * The [`Arbitrary`] impls below hand libFuzzer's bytes to those decoders,
//!   and [`pop3_fuzz_target!`] makes each target a one-liner.

pub mod checks;
pub mod reference;

pub use libfuzzer_sys;
use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};

use checks::{
    BodyInput, BuildInput, CommandInput, DecoderInput, LinesInput, SaslInput, SessionInput,
};

/// `Arbitrary` through the shared byte decoder: every input consumes all
/// the bytes it is given, exactly as the replay test decodes a corpus file.
macro_rules! arbitrary_via_decode {
    ($($t:ty),* $(,)?) => {$(
        impl<'a> Arbitrary<'a> for $t {
            fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
                let n = u.len();
                Ok(<$t>::decode(u.bytes(n)?))
            }
            fn arbitrary_take_rest(u: Unstructured<'a>) -> arbitrary::Result<Self> {
                Ok(<$t>::decode(u.take_rest()))
            }
        }
    )*};
}

arbitrary_via_decode!(
    DecoderInput,
    SessionInput,
    BodyInput,
    CommandInput,
    BuildInput,
    LinesInput,
    SaslInput
);

/// Defines a fuzz target from an input type and its check function:
/// `pop3_fuzz_target!(DecoderInput => decoder_split);`
#[macro_export]
macro_rules! pop3_fuzz_target {
    ($input:ident => $check:ident) => {
        $crate::libfuzzer_sys::fuzz_target!(|input: $crate::checks::$input| {
            let _ = $crate::checks::$check(&input);
        });
    };
}

//! `body_roundtrip`: see `checks::body_roundtrip` and fuzz/README.md.
#![no_main]
pop3_fuzz::pop3_fuzz_target!(BodyInput => body_roundtrip);

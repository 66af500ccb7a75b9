//! `command_roundtrip`: see `checks::command_roundtrip` and fuzz/README.md.
#![no_main]
pop3_fuzz::pop3_fuzz_target!(CommandInput => command_roundtrip);

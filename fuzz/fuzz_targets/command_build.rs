//! `command_build`: see `checks::command_build` and fuzz/README.md.
#![no_main]
pop3_fuzz::pop3_fuzz_target!(BuildInput => command_build);

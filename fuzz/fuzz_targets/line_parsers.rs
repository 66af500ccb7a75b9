//! `line_parsers`: see `checks::line_parsers` and fuzz/README.md.
#![no_main]
pop3_fuzz::pop3_fuzz_target!(LinesInput => line_parsers);

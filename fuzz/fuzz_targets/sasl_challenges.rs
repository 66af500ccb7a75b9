//! `sasl_challenges`: see `checks::sasl_challenges` and fuzz/README.md.
#![no_main]
pop3_fuzz::pop3_fuzz_target!(SaslInput => sasl_challenges);

//! `client_session`: see `checks::client_session` and fuzz/README.md.
#![no_main]
pop3_fuzz::pop3_fuzz_target!(SessionInput => client_session);

//! `decoder_split`: see `checks::decoder_split` and fuzz/README.md.
#![no_main]
pop3_fuzz::pop3_fuzz_target!(DecoderInput => decoder_split);

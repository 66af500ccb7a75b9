//! Prints what a fuzz corpus file or crash artifact means, decoded with the
//! same input types the fuzz targets and `tests/fuzz_corpus.rs` use:
//!
//! ```sh
//! cargo run -p pop3-proto --example explain_fuzz_input -- decoder_split fuzz/artifacts/decoder_split/crash-...
//! ```
#![allow(dead_code)]

#[path = "../../fuzz/src/checks.rs"]
mod checks;
#[path = "../../fuzz/src/reference.rs"]
mod reference;

use checks::*;
use std::fs;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(target), Some(file)) = (args.next(), args.next()) else {
        eprintln!("usage: explain_fuzz_input <target> <file>");
        std::process::exit(2);
    };
    let data = fs::read(&file).unwrap_or_else(|e| {
        eprintln!("cannot read {file}: {e}");
        std::process::exit(2);
    });

    let esc = |b: &[u8]| b.escape_ascii().to_string();
    match target.as_str() {
        "decoder_split" => {
            let i = DecoderInput::decode(&data);
            println!(
                "config {:?}\ncommands {:?}\neof {} cuts {:?}\nserver \"{}\"",
                i.config.config(),
                i.commands,
                i.eof,
                i.cuts,
                esc(&i.server)
            );
            let commands: Vec<_> = i.commands.iter().filter_map(|c| c.build().ok()).collect();
            let all: Vec<usize> = (1..i.server.len()).collect();
            for (name, cuts) in [("whole", vec![]), ("bytewise", all)] {
                let run = run_chunked(&i.config.config(), &commands, &i.server, &cuts, i.eof);
                println!("== {name}: sent \"{}\"", esc(&run.sent));
                for e in &run.events {
                    println!("   {e:?}");
                }
            }
        }
        "client_session" => println!("{:#?}", SessionInput::decode(&data)),
        "body_roundtrip" => {
            let i = BodyInput::decode(&data);
            println!(
                "top {} lf {} pipelined {} cuts {:?}\nbody \"{}\"",
                i.top,
                i.lf_terminator,
                i.pipelined,
                i.cuts,
                esc(&i.body)
            );
        }
        "command_roundtrip" => println!("{:#?}", CommandInput::decode(&data)),
        "line_parsers" => {
            let i = LinesInput::decode(&data);
            println!("which {} lenient {}", i.which, i.lenient);
            for l in &i.lines {
                println!("  \"{}\"", esc(l));
            }
        }
        _ => println!("{:#?}", SaslInput::decode(&data)),
    }
    check_for(&target)(&data);
}

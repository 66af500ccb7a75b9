//! The `pop3` binary; everything is in the `pop3_cli` library.

fn main() -> std::process::ExitCode {
    pop3_cli::run()
}

//! Files generated from the clap definition: shell completions and the
//! manual page.

use crate::error::CliError;

/// `pop3 completions SHELL`: the completion script, generated from the
/// clap definition.
pub fn completions(shell: clap_complete::Shell) -> Result<(), CliError> {
    let mut cmd = <crate::cli::Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "pop3", &mut out);
    write_stdout(&out)
}

/// `pop3 man`: the manual page (roff), generated from the clap definition.
pub fn man_page() -> Result<(), CliError> {
    let cmd = <crate::cli::Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .map_err(|e| CliError::io("rendering the manual page", &e))?;
    write_stdout(&out)
}

fn write_stdout(bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        // `pop3 man | head`: the reader has seen enough.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::io("writing to stdout", &e)),
    }
}

//! Delivery through a mail delivery agent: each message is piped to a
//! command's stdin (procmail, maildrop, `dovecot-lda`, `sendmail -i`).
//!
//! - The command line is split the way a POSIX shell splits words (quotes
//!   and backslashes), but no shell runs unless the command is one:
//!   `sh -c '…'` runs a shell because `sh` is the program.
//! - `%F` in an argument becomes the envelope sender (the message's
//!   `Return-Path`, as mpop has it; `MAILER-DAEMON` without one). The
//!   sender comes from the server, so anything but a plain address
//!   (letters, digits, `.@+-_=`) is replaced by `MAILER-DAEMON`: it cannot
//!   smuggle words or shell syntax into the command. `%%` is a `%`.
//! - The message is streamed with LF line endings (what MDAs expect).
//! - Exit status 0 means delivered; anything else (a non-zero status, a
//!   signal, a timeout) means not delivered.
//! - A delivery that is abandoned (the connection broke mid-message) kills
//!   the command **before** its stdin is closed, so it never sees an end of
//!   input and cannot deliver a truncated message.
//! - The whole delivery, from start to exit, is bounded by a timeout; a
//!   command that stops reading its input or never exits is killed.

use std::io::{self, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::error::CliError;
use crate::transform::{envelope_sender, header_complete, LineEndings, Transform};

/// Headers held back to find `Return-Path` before the command starts.
const HEADER_LIMIT: usize = 256 * 1024;

/// A parsed `--mda` command.
#[derive(Debug, Clone)]
pub struct MdaCommand {
    argv: Vec<String>,
    timeout: Duration,
}

/// Why a message was not delivered.
#[derive(Debug)]
pub enum MdaError {
    /// The command could not be started.
    Spawn(io::Error),
    /// The command exited unsuccessfully (or was killed by a signal).
    Failed(ExitStatus),
    /// The command did not finish within the timeout and was killed.
    Timeout(Duration),
    /// Writing the message to the command failed (it exited early).
    Pipe(io::Error),
}

impl std::fmt::Display for MdaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MdaError::Spawn(e) => write!(f, "cannot start the MDA: {e}"),
            MdaError::Failed(s) => write!(f, "the MDA failed ({s})"),
            MdaError::Timeout(d) => {
                write!(
                    f,
                    "the MDA did not finish within {} s and was killed",
                    d.as_secs()
                )
            }
            MdaError::Pipe(e) => write!(f, "the MDA stopped reading the message: {e}"),
        }
    }
}

impl std::error::Error for MdaError {}

impl MdaCommand {
    /// Parses `line` (shell-like word splitting, no shell).
    pub fn parse(line: &str, timeout: Duration) -> Result<MdaCommand, CliError> {
        let argv = shlex::split(line).ok_or_else(|| {
            CliError::usage(format!(
                "--mda {:?}: unbalanced quotes or a trailing backslash",
                crate::sanitize::clean(line)
            ))
        })?;
        if argv.is_empty() || argv[0].is_empty() {
            return Err(CliError::usage("--mda: empty command"));
        }
        Ok(MdaCommand { argv, timeout })
    }

    /// The program and its arguments for envelope sender `sender`.
    pub fn argv_for(&self, sender: &str) -> Vec<String> {
        let sender = safe_sender(sender);
        self.argv.iter().map(|a| expand(a, sender)).collect()
    }

    /// Starts delivering one message.
    pub fn start(&self) -> Delivery {
        Delivery {
            command: self.clone(),
            header: Vec::new(),
            running: None,
            crlf: Transform::new(LineEndings::Lf, false),
            started: Instant::now(),
        }
    }
}

fn expand(arg: &str, sender: &str) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut chars = arg.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.peek() {
                Some('F') => {
                    chars.next();
                    out.push_str(sender);
                    continue;
                }
                Some('%') => {
                    chars.next();
                    out.push('%');
                    continue;
                }
                _ => {}
            }
        }
        out.push(c);
    }
    out
}

/// `sender` if it is a plain address, else `MAILER-DAEMON`.
fn safe_sender(sender: &str) -> &str {
    let ok = !sender.is_empty()
        && sender.len() <= 254
        && !sender.starts_with('-')
        && sender
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@+-=".contains(&b));
    if ok {
        sender
    } else {
        "MAILER-DAEMON"
    }
}

struct Running {
    child: Arc<Mutex<Child>>,
    stdin: Option<ChildStdin>,
    watchdog: Arc<(Mutex<bool>, Condvar)>,
    killed: Arc<Mutex<bool>>,
}

/// One message on its way to the MDA. Dropping it without
/// [`Delivery::finish`] kills the command first: nothing is delivered.
pub struct Delivery {
    command: MdaCommand,
    header: Vec<u8>,
    running: Option<Running>,
    crlf: Transform,
    started: Instant,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("argv0", &self.command.argv[0])
            .field("running", &self.running.is_some())
            .finish_non_exhaustive()
    }
}

impl Delivery {
    /// Hands the next piece of the message (line endings as received).
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), MdaError> {
        if self.running.is_none() {
            self.header.extend_from_slice(chunk);
            if !header_complete(&self.header) && self.header.len() < HEADER_LIMIT {
                return Ok(());
            }
            self.spawn()?;
            let held = std::mem::take(&mut self.header);
            return self.send(&held);
        }
        self.send(chunk)
    }

    fn spawn(&mut self) -> Result<(), MdaError> {
        let sender = envelope_sender(&self.header);
        let argv = self.command.argv_for(&sender);
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            // Its own process group, so that a kill reaches what a shell
            // command started too (`sh -c 'a | b'`).
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(MdaError::Spawn)?;
        let stdin = child.stdin.take();
        let child = Arc::new(Mutex::new(child));
        let watchdog = Arc::new((Mutex::new(false), Condvar::new()));
        let killed = Arc::new(Mutex::new(false));
        {
            let child = child.clone();
            let watchdog = watchdog.clone();
            let killed = killed.clone();
            let deadline = self.started + self.command.timeout;
            std::thread::spawn(move || {
                let (done, cv) = &*watchdog;
                let mut finished = done.lock().unwrap_or_else(|e| e.into_inner());
                while !*finished {
                    let now = Instant::now();
                    if now >= deadline {
                        // Flag first: a write failing because of the kill
                        // must be reported as the timeout.
                        *killed.lock().unwrap_or_else(|e| e.into_inner()) = true;
                        if let Ok(c) = child.lock() {
                            kill_group(&c);
                        }
                        return;
                    }
                    finished = cv
                        .wait_timeout(finished, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            });
        }
        self.running = Some(Running {
            child,
            stdin,
            watchdog,
            killed,
        });
        Ok(())
    }

    fn send(&mut self, chunk: &[u8]) -> Result<(), MdaError> {
        let mut lf = Vec::with_capacity(chunk.len());
        self.crlf.push(chunk, &mut lf);
        self.write_raw(&lf)
    }

    fn write_raw(&mut self, bytes: &[u8]) -> Result<(), MdaError> {
        let timeout = self.command.timeout;
        let Some(run) = self.running.as_mut() else {
            return Ok(());
        };
        let Some(stdin) = run.stdin.as_mut() else {
            return Ok(());
        };
        stdin.write_all(bytes).map_err(|e| {
            if *run.killed.lock().unwrap_or_else(|e| e.into_inner()) {
                MdaError::Timeout(timeout)
            } else {
                MdaError::Pipe(e)
            }
        })
    }

    /// The message is complete: close the command's stdin and wait for it.
    /// `Ok` only for exit status 0.
    pub fn finish(mut self) -> Result<(), MdaError> {
        if self.running.is_none() {
            // A message without a blank line (only headers) or empty.
            self.spawn()?;
            let held = std::mem::take(&mut self.header);
            self.send(&held)?;
        }
        let mut tail = Vec::new();
        self.crlf.finish(&mut tail);
        self.write_raw(&tail)?;
        let timeout = self.command.timeout;
        let run = self.running.as_mut().expect("spawned above");
        drop(run.stdin.take()); // end of input: the MDA may deliver now
        let status = loop {
            let polled = run
                .child
                .lock()
                .map_err(|_| MdaError::Pipe(io::Error::other("MDA state poisoned")))?
                .try_wait();
            match polled {
                Ok(Some(status)) => break status,
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => return Err(MdaError::Pipe(e)),
            }
        };
        let killed = *run.killed.lock().unwrap_or_else(|e| e.into_inner());
        self.stop_watchdog();
        self.running = None;
        if killed {
            Err(MdaError::Timeout(timeout))
        } else if status.success() {
            Ok(())
        } else {
            Err(MdaError::Failed(status))
        }
    }

    fn stop_watchdog(&self) {
        if let Some(run) = &self.running {
            let (done, cv) = &*run.watchdog;
            *done.lock().unwrap_or_else(|e| e.into_inner()) = true;
            cv.notify_all();
        }
    }
}

/// SIGKILL to the command's whole process group.
fn kill_group(child: &Child) {
    let pid = rustix::process::Pid::from_child(child);
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let Some(run) = self.running.as_mut() {
            // Kill before closing stdin: the MDA must never see the end of
            // a message that did not arrive completely.
            if let Ok(mut c) = run.child.lock() {
                kill_group(&c);
                let _ = c.wait();
            }
            drop(run.stdin.take());
        }
        self.stop_watchdog();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(line: &str) -> MdaCommand {
        MdaCommand::parse(line, Duration::from_secs(20)).unwrap()
    }

    #[test]
    fn splitting_and_sender() {
        let c = cmd("procmail -f %F -a 'two words' \"x y\" 100%%");
        assert_eq!(
            c.argv_for("alice@example.org"),
            [
                "procmail",
                "-f",
                "alice@example.org",
                "-a",
                "two words",
                "x y",
                "100%"
            ]
        );
        // Hostile senders never reach the command as they are.
        for bad in ["a b@c", "$(rm -rf ~)@x", "-oQ/tmp@x", "a;b@c", "", "a'b@c"] {
            assert_eq!(c.argv_for(bad)[2], "MAILER-DAEMON", "{bad:?}");
        }
        assert!(MdaCommand::parse("procmail 'unbalanced", Duration::ZERO).is_err());
        assert!(MdaCommand::parse("   ", Duration::ZERO).is_err());
    }

    fn deliver(line: &str, chunks: &[&[u8]]) -> Result<(), MdaError> {
        let mut d = cmd(line).start();
        for c in chunks {
            d.write(c)?;
        }
        d.finish()
    }

    #[test]
    fn exit_status_decides() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let line = format!(
            "sh -c 'cat > {}; echo %F >> {}'",
            out.display(),
            out.display()
        );
        deliver(
            &line,
            &[b"Return-Path: <r@s.t>\r\nSubj", b"ect: x\r\n\r\nbody\r\n"],
        )
        .unwrap();
        assert_eq!(
            std::fs::read(&out).unwrap(),
            b"Return-Path: <r@s.t>\nSubject: x\n\nbody\nr@s.t\n"
        );
        assert!(matches!(
            deliver("sh -c 'cat >/dev/null; exit 75'", &[b"a\r\n\r\nb\r\n"]),
            Err(MdaError::Failed(_))
        ));
        assert!(matches!(
            deliver("/nonexistent/mda", &[b"a\r\n\r\nb\r\n"]),
            Err(MdaError::Spawn(_))
        ));
    }

    #[test]
    fn abandoned_delivery_never_delivers() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("delivered");
        let part = dir.path().join("part");
        // A pipeline: killing only `sh` would leave both halves running, and
        // the second would deliver what it got once stdin closed.
        let line = format!(
            "sh -c 'cat | (cat > {} && mv {} {})'",
            part.display(),
            part.display(),
            flag.display()
        );
        let mut d = cmd(&line).start();
        d.write(b"Subject: x\r\n\r\npart of a bo").unwrap();
        // Let the shell start its pipeline before the connection breaks.
        std::thread::sleep(Duration::from_millis(300));
        drop(d); // the connection broke here
        std::thread::sleep(Duration::from_millis(200));
        assert!(!flag.exists(), "a truncated message was delivered");
    }

    #[test]
    fn timeout_kills_a_stuck_mda() {
        let c = MdaCommand::parse("sleep 30", Duration::from_millis(300)).unwrap();
        let t = Instant::now();
        let mut d = c.start();
        // The command never reads: a big message fills the pipe.
        let big = vec![b'x'; 1 << 20];
        let r = d.write(b"S: x\r\n\r\n").and_then(|()| d.write(&big));
        let r = r.and_then(|()| d.finish());
        assert!(matches!(r, Err(MdaError::Timeout(_))), "{r:?}");
        assert!(t.elapsed() < Duration::from_secs(10));
    }
}

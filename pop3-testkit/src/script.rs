//! Scripted mode: exact bytes, no interpretation.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::io::Conn;
use crate::server::{lock, sleep_interruptible, ScriptPlan, Shared};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Send(Vec<u8>),
    ExpectLine(String),
    ExpectPrefix(String),
    ReadLine,
    Sleep(Duration),
    Close,
    Stall,
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    StartTls,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Send(b) => write!(f, "send({})", escape(b)),
            Step::ExpectLine(l) => write!(f, "expect_line({l:?})"),
            Step::ExpectPrefix(p) => write!(f, "expect_prefix({p:?})"),
            Step::ReadLine => f.write_str("read_line()"),
            Step::Sleep(d) => write!(f, "sleep({d:?})"),
            Step::Close => f.write_str("close()"),
            Step::Stall => f.write_str("stall()"),
            Step::StartTls => f.write_str("start_tls()"),
        }
    }
}

/// Escapes bytes for messages: printable ASCII as is, the rest as `\r`, `\n`,
/// `\xNN`.
pub(crate) fn escape(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}

/// A sequence of exact steps one scripted connection performs, for byte-level
/// client tests. Nothing is interpreted: no greeting unless you
/// [`send`](Self::send) it, no stuffing, no line-ending conversion.
///
/// Lines are read from the client one at a time. An `expect_*` step that does
/// not match records a failure (see
/// [`ServerHandle::script_result`](crate::ServerHandle::script_result)) and
/// closes the connection. When all steps are done the server closes the
/// connection (FIN), unless the last step is [`stall`](Self::stall).
///
/// ```
/// use pop3_testkit::Script;
/// let script = Script::new()
///     .send(b"+OK hi\r\n")
///     .expect_line("USER alice")
///     .send(b"+OK\r\n")
///     .expect_prefix("PASS ")
///     .send(b"-ERR [AUTH] no\r\n")
///     .expect_line("QUIT")
///     .send(b"+OK bye\r\n");
/// assert_eq!(script.len(), 7);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Script {
    steps: Vec<Step>,
}

impl Script {
    /// An empty script (the connection is closed right away).
    pub fn new() -> Script {
        Script::default()
    }

    /// Sends exactly these bytes (one write).
    pub fn send(mut self, bytes: impl AsRef<[u8]>) -> Script {
        self.steps.push(Step::Send(bytes.as_ref().to_vec()));
        self
    }

    /// Sends `line` followed by CRLF.
    pub fn send_line(self, line: &str) -> Script {
        let mut b = line.as_bytes().to_vec();
        b.extend_from_slice(b"\r\n");
        self.send(b)
    }

    /// Reads one client line; it must be CRLF-terminated and, without the
    /// CRLF, equal `line` byte for byte (case-sensitive).
    pub fn expect_line(mut self, line: &str) -> Script {
        self.steps.push(Step::ExpectLine(line.to_string()));
        self
    }

    /// Reads one client line; it must be CRLF-terminated and start with
    /// `prefix` (case-sensitive).
    pub fn expect_prefix(mut self, prefix: &str) -> Script {
        self.steps.push(Step::ExpectPrefix(prefix.to_string()));
        self
    }

    /// Reads one client line, whatever it is (it must still arrive).
    pub fn read_line(mut self) -> Script {
        self.steps.push(Step::ReadLine);
        self
    }

    /// Pauses (interrupted by server shutdown).
    pub fn sleep(mut self, duration: Duration) -> Script {
        self.steps.push(Step::Sleep(duration));
        self
    }

    /// Closes the connection now (FIN); later steps are ignored. The script
    /// counts as passed.
    pub fn close(mut self) -> Script {
        self.steps.push(Step::Close);
        self
    }

    /// Stops answering but keeps the socket open, reading and recording what
    /// the client sends, until the client closes or the server shuts down.
    /// The script counts as passed once this step is reached.
    pub fn stall(mut self) -> Script {
        self.steps.push(Step::Stall);
        self
    }

    /// Performs the server side of a TLS handshake now (e.g. after sending
    /// `+OK` to `STLS`), with the server's certificate; following steps run
    /// over TLS. Plaintext the client sent before the handshake that was
    /// not yet read is discarded. Fails the script if the server has no TLS
    /// configured (use [`ServerBuilder::stls`](crate::ServerBuilder::stls)
    /// or [`tls_ca`](crate::ServerBuilder::tls_ca)).
    #[cfg(feature = "tls")]
    pub fn start_tls(mut self) -> Script {
        self.steps.push(Step::StartTls);
        self
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether the script has no steps.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// State of one scripted connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScriptStatus {
    /// Steps are still being executed.
    Running,
    /// Every step completed (or `close()`/`stall()` was reached).
    Passed,
    /// A step failed; the message says which and why.
    Failed(String),
}

/// The outcome of the script on one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptOutcome {
    /// Connection number (0-based accept order, same as
    /// [`Transcript::connection`](crate::Transcript::connection)).
    pub connection: usize,
    /// How many steps completed successfully.
    pub steps_completed: usize,
    /// Current state.
    pub status: ScriptStatus,
}

/// Why scripted mode did not pass (from
/// [`ServerHandle::script_result`](crate::ServerHandle::script_result)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptError {
    /// The connection concerned, if any.
    pub connection: Option<usize>,
    /// Index of the failing step (= steps completed before it), if any.
    pub step: Option<usize>,
    /// Human-readable description.
    pub message: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.connection, self.step) {
            (Some(c), Some(s)) => write!(f, "connection {c}, step {s}: {}", self.message),
            (Some(c), None) => write!(f, "connection {c}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ScriptError {}

fn set(shared: &Shared, slot: usize, steps: usize, status: ScriptStatus) {
    if let Some(o) = lock(&shared.scripts).get_mut(slot) {
        o.steps_completed = steps;
        o.status = status;
    }
}

pub(crate) fn run_connection(mut conn: Conn, shared: &Arc<Shared>, plan: &ScriptPlan) {
    let slot = {
        let mut outcomes = lock(&shared.scripts);
        outcomes.push(ScriptOutcome {
            connection: conn.id,
            steps_completed: 0,
            status: ScriptStatus::Running,
        });
        outcomes.len() - 1
    };
    let script = match plan {
        ScriptPlan::Every(s) => Some(s),
        ScriptPlan::Sequence(v) => v.get(slot),
    };
    let Some(script) = script else {
        set(
            shared,
            slot,
            0,
            ScriptStatus::Failed("unexpected connection (no script left)".to_string()),
        );
        conn.close(false);
        return;
    };

    #[cfg(feature = "tls")]
    if shared.config.implicit_tls {
        let Some(cfg) = shared.tls.clone() else {
            set(
                shared,
                slot,
                0,
                ScriptStatus::Failed("TLS not configured".into()),
            );
            conn.close(false);
            return;
        };
        if let Err(e) = conn.start_tls(cfg) {
            set(
                shared,
                slot,
                0,
                ScriptStatus::Failed(format!("implicit TLS handshake failed: {e}")),
            );
            conn.close(false);
            return;
        }
    }

    for (i, step) in script.steps.iter().enumerate() {
        let fail = |why: String| ScriptStatus::Failed(format!("{step}: {why}"));
        let result: Result<(), String> = match step {
            Step::Send(bytes) => conn
                .write_all(bytes)
                .map_err(|e| format!("write failed: {e}")),
            Step::Sleep(d) => {
                sleep_interruptible(*d, &shared.stop);
                Ok(())
            }
            Step::Close => {
                set(shared, slot, i + 1, ScriptStatus::Passed);
                conn.close(true);
                return;
            }
            Step::Stall => {
                set(shared, slot, i + 1, ScriptStatus::Passed);
                conn.stall();
                conn.close(false);
                return;
            }
            Step::StartTls => start_tls(&mut conn, shared),
            Step::ExpectLine(_) | Step::ExpectPrefix(_) | Step::ReadLine => {
                match conn.read_line() {
                    Err(e) => Err(e.to_string()),
                    Ok(line) => check_line(step, &line),
                }
            }
        };
        match result {
            Ok(()) => set(shared, slot, i + 1, ScriptStatus::Running),
            Err(why) => {
                set(shared, slot, i, fail(why));
                conn.close(false);
                return;
            }
        }
    }
    set(shared, slot, script.steps.len(), ScriptStatus::Passed);
    conn.close(true);
}

fn check_line(step: &Step, line: &[u8]) -> Result<(), String> {
    let Some(body) = line.strip_suffix(b"\r\n") else {
        return Err(format!("got \"{}\" (not CRLF-terminated)", escape(line)));
    };
    let ok = match step {
        Step::ExpectLine(l) => body == l.as_bytes(),
        Step::ExpectPrefix(p) => body.starts_with(p.as_bytes()),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("got \"{}\"", escape(line)))
    }
}

#[cfg(feature = "tls")]
fn start_tls(conn: &mut Conn, shared: &Shared) -> Result<(), String> {
    let cfg = shared
        .tls
        .clone()
        .ok_or_else(|| "TLS not configured on this server".to_string())?;
    conn.start_tls(cfg)
        .map_err(|e| format!("TLS handshake failed: {e}"))
}

#[cfg(not(feature = "tls"))]
fn start_tls(_conn: &mut Conn, _shared: &Shared) -> Result<(), String> {
    Err("TLS support not compiled in".to_string())
}

//! `fetch`: durable, idempotent delivery into a Maildir, an mbox file or a
//! directory of `.eml` files.
//!
//! Before the first `RETR` the destination and its state file are opened
//! and locked, and an interrupted earlier run is resolved (see
//! [`Store::recover`]). Messages are then fetched in groups (at most
//! [`GROUP_MESSAGES`] messages or [`GROUP_BYTES`] bytes), each with
//! `Disposition::Keep`:
//!
//! 1. the group's intent (its UIDs and, for an mbox, the mbox length) is in
//!    the state file, synced;
//! 2. each message is streamed into place (Maildir/`.eml`: data synced and
//!    linked into place; mbox: appended);
//! 3. the group is made durable: one mbox data sync, or one directory sync;
//! 4. its UIDs are recorded, the intent closed and the next group's intent
//!    opened, in one write and one data sync of the state file;
//! 5. only then are the group's `DELE`s sent, pipelined.
//!
//! A crash anywhere leaves either an open intent (resolved on the next
//! run: a partial mbox group is cut off, Maildir messages are recognised
//! by the hash in their names, `.eml` files by their bytes) or recorded
//! messages that are skipped and deleted by the next run.

use std::collections::HashMap;
use std::io::{self, IsTerminal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pop3_blocking::pop3_proto::MsgNum;
use pop3_blocking::{Command, Disposition, ErrResponse, Error, ListEntry, MessageSink, Reply};
use serde_json::json;

use crate::cli::Cli;
use crate::error::{Class, CliError};
use crate::lock::LockError;
use crate::mda::{Delivery, MdaCommand};
use crate::output::{human_size, json_line};
use crate::sanitize::clean;
use crate::session::{self, Server, TcpClient};
use crate::state::{escape_field, Intent, State, StateError};
pub use crate::store::Dest;
use crate::store::{MsgKey, Store};
use crate::transform::LineEndings;

/// Set by SIGINT/SIGTERM under `--every`: the message being fetched is
/// finished, stored and recorded (and deleted, with `--delete`), no new one
/// is started, and the session ends with QUIT.
pub static STOP: std::sync::LazyLock<std::sync::Arc<AtomicBool>> =
    std::sync::LazyLock::new(|| std::sync::Arc::new(AtomicBool::new(false)));

fn stopping() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Most messages in one group commit.
pub const GROUP_MESSAGES: usize = 256;
/// Most bytes (as listed) in one group commit.
pub const GROUP_BYTES: u64 = 32 << 20;

/// Where fetched messages go: a store, or a mail delivery agent.
#[derive(Debug, Clone)]
pub enum Target {
    /// A Maildir, mbox or `.eml` directory.
    Store(Dest),
    /// `--mda`: each message piped to a command; the UIDL state is kept in
    /// `state` (one file per account, see [`mda_state_path`]).
    Mda {
        /// The command.
        command: MdaCommand,
        /// Its state file.
        state: std::path::PathBuf,
    },
}

impl Target {
    /// For messages: `maildir DIR`, `mbox FILE`, ..., `mda`.
    pub fn describe(&self) -> String {
        match self {
            Target::Store(d) => d.describe(),
            Target::Mda { .. } => String::from("the MDA"),
        }
    }
}

/// The state file of `--mda` deliveries for `account` (a state-file key):
/// `$XDG_STATE_HOME/pop3/mda/ACCOUNT.pop3-uidl`, else
/// `~/.local/state/pop3/mda/ACCOUNT.pop3-uidl`.
pub fn mda_state_path(account: &str) -> Result<std::path::PathBuf, CliError> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|x| !x.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| std::path::PathBuf::from(h).join(".local/state"))
        })
        .ok_or_else(|| {
            CliError::usage("--mda needs a state directory: neither XDG_STATE_HOME nor HOME is set")
        })?;
    let dir = base.join("pop3/mda");
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| CliError::io(format!("creating {}", dir.display()), &e))?;
    }
    Ok(dir.join(format!(
        "{}.pop3-uidl",
        crate::store::file_name_for_uid(account.as_bytes())
    )))
}

/// What `fetch` was asked to do.
#[derive(Debug)]
pub struct Request {
    /// Destination.
    pub target: Target,
    /// `--delete` (or the account's `delete = true` without `--keep`).
    pub delete: bool,
    /// `--keep-days N`: delete messages N days after they were first
    /// stored (and not before).
    pub keep_days: Option<u32>,
    /// `--skip-larger`: leave bigger messages on the server.
    pub skip_larger: Option<u64>,
    /// `--delete-larger`: delete bigger messages unread.
    pub delete_larger: Option<u64>,
    /// `--add-received`.
    pub add_received: bool,
    /// `-q`: only failures are printed.
    pub quiet: bool,
    /// The configuration account's name, shown in messages and summaries.
    pub label: Option<String>,
    /// Where progress bars go when several accounts run at once.
    pub progress: Option<indicatif::MultiProgress>,
    /// `--all`: fetch messages already in the destination again.
    pub all: bool,
    /// `--new-only` (the default behaviour; kept for compatibility, it
    /// also insists on UIDL).
    pub new_only: bool,
    /// `--max-size`: larger messages are left on the server.
    pub max_size: u64,
    /// `--line-endings` (`None`: the destination's default).
    pub line_endings: Option<LineEndings>,
    /// `--lock-timeout`: how long to wait for another fetch.
    pub lock_timeout: Duration,
}

/// One stored message.
struct Placed {
    number: u32,
    uid: Option<String>,
    uid_escaped: Option<String>,
    octets: u64,
    path: Option<std::path::PathBuf>,
}

/// Where the messages of a run go.
enum Backend {
    Store(Store),
    Mda {
        command: MdaCommand,
        current: Option<Delivery>,
        failed: Option<String>,
    },
}

impl Backend {
    fn offset(&self) -> Option<u64> {
        match self {
            Backend::Store(s) => s.offset(),
            Backend::Mda { .. } => None,
        }
    }

    fn begin(&mut self, key: Option<MsgKey>, prefix: &[u8]) -> io::Result<()> {
        match self {
            Backend::Store(s) => {
                s.begin(key)?;
                s.data(prefix)
            }
            Backend::Mda {
                command,
                current,
                failed,
            } => {
                *failed = None;
                *current = Some(command.start());
                Backend::mda_write(current, failed, prefix);
                Ok(())
            }
        }
    }

    /// A failed write kills the MDA (dropping the delivery) and remembers
    /// why: the rest of the message is read from the server and dropped.
    fn mda_write(current: &mut Option<Delivery>, failed: &mut Option<String>, chunk: &[u8]) {
        if let Some(d) = current.as_mut() {
            if let Err(e) = d.write(chunk) {
                *current = None;
                *failed = Some(e.to_string());
            }
        }
    }

    fn data(&mut self, chunk: &[u8]) -> io::Result<()> {
        match self {
            Backend::Store(s) => s.data(chunk),
            Backend::Mda {
                current, failed, ..
            } => {
                Backend::mda_write(current, failed, chunk);
                Ok(())
            }
        }
    }

    /// `Ok(Err(why))`: the MDA did not deliver it.
    fn end(&mut self) -> io::Result<Result<Option<std::path::PathBuf>, String>> {
        match self {
            Backend::Store(s) => s.end().map(|p| Ok(Some(p))),
            Backend::Mda {
                current, failed, ..
            } => Ok(match (current.take(), failed.take()) {
                (_, Some(why)) => Err(why),
                (Some(d), None) => d.finish().map(|()| None).map_err(|e| e.to_string()),
                (None, None) => Err(String::from("the MDA was not started")),
            }),
        }
    }

    fn abort(&mut self) -> io::Result<()> {
        match self {
            Backend::Store(s) => s.abort(),
            Backend::Mda { current, .. } => {
                // Killed before its input ends: nothing is delivered.
                *current = None;
                Ok(())
            }
        }
    }

    fn sync(&mut self) -> io::Result<()> {
        match self {
            Backend::Store(s) => s.sync(),
            Backend::Mda { .. } => Ok(()),
        }
    }
}

/// A `Received:` header (RFC 5322 trace field) for a message fetched
/// from `host` with `uid`, at Unix time `now`.
pub fn received_header(host: &str, uid: Option<&[u8]>, now: u64) -> Vec<u8> {
    let local = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| String::from("localhost"));
    // `Thu Jan  1 00:00:00 1970` → `Thu, 01 Jan 1970 00:00:00 +0000`.
    let a = crate::transform::asctime(now);
    let f: Vec<&str> = a.split_whitespace().collect();
    let date = match f.as_slice() {
        [wd, mon, day, time, year] => format!("{wd}, {day:0>2} {mon} {year} {time} +0000"),
        _ => a.clone(),
    };
    let host = escape_field(host.as_bytes());
    let id = uid.map(|u| format!(" id {}", escape_field(u)));
    format!(
        "Received: from {host}\r\n\tby {local} with POP3{}; {date}\r\n",
        id.unwrap_or_default()
    )
    .into_bytes()
}

struct GroupSink<'a> {
    store: &'a mut Backend,
    account: &'a str,
    /// `--add-received`: the server's host for the header.
    received_from: Option<&'a str>,
    undelivered: Vec<(u32, String)>,
    uids: &'a HashMap<u32, Vec<u8>>,
    max_size: u64,
    size: u64,
    current: Option<u32>,
    placed: Vec<Placed>,
    refused: Vec<(u32, ErrResponse)>,
    progress: &'a ProgressBar,
}

impl MessageSink for GroupSink<'_> {
    fn begin(&mut self, n: u32) -> io::Result<()> {
        if stopping() {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "stopping on a signal",
            ));
        }
        self.current = Some(n);
        self.size = 0;
        let uid = self.uids.get(&n);
        let key = uid.map(|u| MsgKey::for_uid(self.account, u));
        let prefix = match self.received_from {
            Some(host) => received_header(host, uid.map(Vec::as_slice), crate::clock::now_unix()),
            None => Vec::new(),
        };
        self.store.begin(key, &prefix)
    }

    fn data(&mut self, n: u32, chunk: &[u8]) -> io::Result<()> {
        self.size += chunk.len() as u64;
        if self.size > self.max_size {
            return Err(io::Error::other(format!(
                "message {n} grew past --max-size {} bytes although LIST said it is \
                 smaller; not stored, not deleted",
                self.max_size
            )));
        }
        self.progress.inc(chunk.len() as u64);
        self.store.data(chunk)
    }

    fn end(&mut self, n: u32, octets: u64) -> io::Result<Disposition> {
        self.current = None;
        let path = match self.store.end()? {
            Ok(p) => p,
            Err(why) => {
                self.undelivered.push((n, why));
                return Ok(Disposition::Keep);
            }
        };
        let uid = self.uids.get(&n);
        self.placed.push(Placed {
            number: n,
            uid: uid.map(|u| String::from_utf8_lossy(u).into_owned()),
            uid_escaped: uid.map(|u| escape_field(u)),
            octets,
            path,
        });
        self.current = None;
        Ok(Disposition::Keep)
    }

    fn refused(&mut self, n: u32, response: &ErrResponse) -> io::Result<()> {
        self.store.abort()?;
        self.current = None;
        self.refused.push((n, response.clone()));
        Ok(())
    }
}

fn progress_bar(
    total: u64,
    messages: usize,
    label: Option<&str>,
    multi: Option<&indicatif::MultiProgress>,
    quiet: bool,
) -> ProgressBar {
    if quiet || !io::stderr().is_terminal() || messages == 0 {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{spinner} {prefix}[{elapsed}] {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    if let Some(l) = label {
        pb.set_prefix(format!("{} ", clean(l)));
    }
    match multi {
        Some(m) => m.add(pb),
        None => pb,
    }
}

fn lock_error(e: LockError) -> CliError {
    match e {
        LockError::Busy(p) => CliError {
            class: Class::Locked,
            message: format!(
                "another fetch is running into this destination ({} is locked); \
                 try again later or raise --lock-timeout",
                p.display()
            ),
        },
        LockError::Io(p, e) => CliError::io(format!("opening {}", p.display()), &e),
    }
}

fn state_error(e: StateError) -> CliError {
    match e {
        StateError::Busy(p) => lock_error(LockError::Busy(p)),
        StateError::Io(_, ref io_err) => CliError::io(&e, io_err),
        other => CliError {
            class: Class::Io,
            message: other.to_string(),
        },
    }
}

/// Groups of at most `max` messages and [`GROUP_BYTES`] bytes.
fn groups(list: &[ListEntry], max: usize) -> Vec<&[ListEntry]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0u64;
    for (i, e) in list.iter().enumerate() {
        if i > start && (i - start >= max || bytes + e.octets > GROUP_BYTES) {
            out.push(&list[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += e.octets;
    }
    if start < list.len() {
        out.push(&list[start..]);
    }
    out
}

/// `DELE`s for `numbers`, pipelined; returns how many were acknowledged and
/// records refusals in `problems`.
fn dele_all(
    c: &mut TcpClient,
    numbers: &[u32],
    problems: &mut Vec<String>,
) -> Result<usize, CliError> {
    if numbers.is_empty() {
        return Ok(0);
    }
    let cmds: Vec<Command> = numbers
        .iter()
        .filter_map(|&n| MsgNum::new(n))
        .map(Command::Dele)
        .collect();
    let replies = c
        .batch(cmds)
        .map_err(|e| CliError::pop3("DELE (pipelined)", &e))?;
    let mut ok = 0;
    for (n, r) in numbers.iter().zip(replies) {
        match r {
            Reply::Err(r) => problems.push(format!("DELE {n}: {}", clean(&r.to_string()))),
            _ => ok += 1,
        }
    }
    Ok(ok)
}

/// The intent of a group.
fn intent_for(
    account: &str,
    store: &Backend,
    group: &[ListEntry],
    uids: &HashMap<u32, Vec<u8>>,
) -> Intent {
    Intent {
        account: account.to_string(),
        offset: store.offset(),
        count: group.len() as u64,
        uids: group
            .iter()
            .filter_map(|e| uids.get(&e.number).map(|u| escape_field(u)))
            .collect(),
    }
}

/// What one account's fetch did (also after a failure): the `--json`
/// summary object.
#[derive(Debug, Default)]
pub struct Tally {
    fetched: usize,
    octets: u64,
    skipped: usize,
    marked: usize,
    skipped_larger: Vec<u32>,
    deleted_larger: Vec<u32>,
    expired: Vec<u32>,
    oversized: Vec<u32>,
    undelivered: Vec<u32>,
    /// The server's `LOGIN-DELAY` (seconds), when it announced one.
    pub login_delay: Option<u32>,
    /// Whether the run was cut short by [`STOP`].
    pub stopped: bool,
}

impl Tally {
    /// The summary object (`ok`: whether the run succeeded).
    pub fn to_json(
        &self,
        label: Option<&str>,
        destination: Option<String>,
        seconds: f64,
        ok: bool,
    ) -> serde_json::Value {
        json!({
            "type": "summary",
            "account": label,
            "fetched": self.fetched,
            "octets": self.octets,
            "skipped": self.skipped,
            "oversized": self.oversized,
            "skipped_larger": self.skipped_larger,
            "deleted_larger": self.deleted_larger,
            "expired": self.expired,
            "undelivered": self.undelivered,
            "marked": self.marked,
            "destination": destination,
            "seconds": seconds,
            "ok": ok,
        })
    }
}

/// `pop3: ` or `pop3: [NAME] ` before a line about account NAME.
fn lead(label: Option<&str>) -> String {
    match label {
        Some(l) => format!("pop3: [{}] ", clean(l)),
        None => String::from("pop3: "),
    }
}

/// Runs `fetch` for one server; `tally` says what was done, also when
/// it fails.
pub fn fetch(s: &Server, cli: &Cli, req: &Request, tally: &mut Tally) -> Result<(), CliError> {
    let started = Instant::now();
    let lead = lead(req.label.as_deref());
    let talk = !cli.json && !req.quiet;
    let deadline = Instant::now() + req.lock_timeout;
    // Everything local is opened, locked and checked before connecting.
    let (mut store, state_path, max_group) = match &req.target {
        Target::Store(dest) => {
            let endings = req
                .line_endings
                .unwrap_or_else(|| dest.default_line_endings());
            let st = Store::open(dest, endings, deadline).map_err(lock_error)?;
            (Backend::Store(st), dest.state_path(), GROUP_MESSAGES)
        }
        // One message per group: its UID is recorded right after the MDA
        // exits with 0, before the next message is piped.
        Target::Mda { command, state } => (
            Backend::Mda {
                command: command.clone(),
                current: None,
                failed: None,
            },
            state.clone(),
            1,
        ),
    };
    let describe = req.target.describe();
    let mut state = State::open(&state_path, deadline).map_err(state_error)?;
    let io_err = |what: &str, e: &io::Error| CliError::io(what, e);
    if let Some(intent) = state.unresolved().cloned() {
        match &mut store {
            Backend::Store(st) => {
                let r = st
                    .recover(&intent)
                    .map_err(|e| io_err(&format!("repairing {describe}"), &e))?;
                state
                    .commit(&intent.account, &r.recognised, None)
                    .map_err(|e| io_err(&format!("writing {}", state_path.display()), &e))?;
                if let Some(w) = r.warning {
                    say!("{lead}warning: {w}");
                }
                if r.truncated > 0 && talk {
                    say!(
                        "{lead}removed {} of a partly written group left by an interrupted \
                         fetch (those messages are still on the server)",
                        human_size(r.truncated)
                    );
                }
            }
            Backend::Mda { .. } => {
                // An MDA cannot be asked what it delivered: the message
                // of the interrupted delivery is piped again (at least
                // once, as with mpop and fetchmail).
                state
                    .commit(&intent.account, &[], None)
                    .map_err(|e| io_err(&format!("writing {}", state_path.display()), &e))?;
                if !cli.json {
                    say!(
                        "{lead}warning: a delivery through the MDA was interrupted; that \
                         message is delivered again (it may arrive twice)"
                    );
                }
            }
        }
    }
    if state.legacy_records() > 0 && talk {
        say!(
            "{lead}note: {} ignores {} old record(s) without a server port; they are \
             never used to skip or delete",
            state_path.display(),
            state.legacy_records()
        );
    }
    let account = s.account.as_str();

    let mut c = session::open_for_fetch(s, cli)?;
    tally.login_delay = c
        .capabilities()
        .and_then(|k| k.login_delay)
        .map(|(secs, _)| secs);
    let list = c.list().map_err(|e| CliError::pop3("LIST", &e))?;
    let uidl = match c.uidl() {
        Ok(v) => Some(v),
        Err(Error::Server { .. }) => None,
        Err(e) => return Err(CliError::pop3("UIDL", &e)),
    };
    if uidl.is_none() && (req.new_only || req.keep_days.is_some()) {
        let _ = c.quit();
        return Err(CliError {
            class: Class::Server,
            message: format!(
                "the server does not support UIDL, so {} cannot tell which messages \
                 are new",
                if req.new_only {
                    "--new-only"
                } else {
                    "--keep-days"
                }
            ),
        });
    }
    // A UID that the listing gives to more than one message identifies
    // nothing: such messages are never skipped or deleted by UID, and their
    // UID is not recorded (a broken server must cost duplicates, not mail).
    let mut uid_use: HashMap<&[u8], usize> = HashMap::new();
    for e in uidl.iter().flatten() {
        *uid_use.entry(e.uid.as_bytes()).or_default() += 1;
    }
    let ambiguous = uid_use.values().filter(|&&n| n > 1).count();
    if ambiguous > 0 && !cli.json {
        say!(
            "{lead}warning: the server gave the same UID to several messages ({ambiguous} \
             UID(s)); those messages are fetched without UID tracking"
        );
    }
    let uids: HashMap<u32, Vec<u8>> = uidl
        .iter()
        .flatten()
        .filter(|e| uid_use.get(e.uid.as_bytes()) == Some(&1))
        .map(|e| (e.number, e.uid.as_bytes().to_vec()))
        .collect();
    if uidl.is_none() && req.delete && !cli.json {
        say!(
            "{lead}warning: the server has no UIDL; with --delete each message is deleted \
             only after it is stored, but a connection cut before QUIT means those \
             messages are fetched again next time"
        );
    }
    let now = crate::clock::now_unix();
    let mut to_fetch = Vec::new();
    let mut known = Vec::new();
    let mut expired = Vec::new();
    let mut untimed: Vec<String> = Vec::new();
    let mut oversize = Vec::new();
    let mut too_large = Vec::new();
    let mut delete_large = Vec::new();
    for e in &list {
        if req.delete_larger.is_some_and(|l| e.octets > l) {
            delete_large.push(*e);
            continue;
        }
        let uid = uids.get(&e.number);
        let seen = uid.is_some_and(|u| state.contains(account, u));
        if seen && !req.all {
            known.push(e.number);
            if let (Some(days), Some(u)) = (req.keep_days, uid) {
                match state.first_seen(account, u) {
                    // Recorded before first-seen times were kept: the
                    // clock starts now.
                    None => untimed.push(escape_field(u)),
                    Some(t) if now >= t.saturating_add(u64::from(days) * 86_400) => {
                        expired.push(e.number)
                    }
                    Some(_) => {}
                }
            }
        } else if req.skip_larger.is_some_and(|l| e.octets > l) {
            too_large.push(*e);
        } else if e.octets > req.max_size {
            oversize.push(*e);
        } else {
            to_fetch.push(*e);
        }
    }
    if !untimed.is_empty() {
        state
            .commit(account, &untimed, None)
            .map_err(|e| io_err(&format!("writing {}", state_path.display()), &e))?;
    }
    tally.skipped = known.len();
    tally.skipped_larger = too_large.iter().map(|e| e.number).collect();
    tally.oversized = oversize.iter().map(|e| e.number).collect();
    let mut marked = 0usize;
    let mut problems: Vec<String> = Vec::new();
    let mut undelivered: Vec<String> = Vec::new();
    if req.delete {
        // Stored by an earlier run whose deletions were never committed.
        marked += dele_all(&mut c, &known, &mut problems)?;
    } else if !expired.is_empty() {
        marked += dele_all(&mut c, &expired, &mut problems)?;
        tally.expired = expired.clone();
    }
    if !delete_large.is_empty() {
        let numbers: Vec<u32> = delete_large.iter().map(|e| e.number).collect();
        let before = problems.len();
        marked += dele_all(&mut c, &numbers, &mut problems)?;
        for e in &delete_large {
            if cli.json {
                json_line(&json!({
                    "type": "deleted_larger",
                    "account": req.label,
                    "number": e.number,
                    "uid": uids.get(&e.number).map(|u| String::from_utf8_lossy(u).into_owned()),
                    "octets": e.octets,
                }))?;
            } else if !req.quiet {
                say!(
                    "{lead}deleting message {} ({}, larger than --delete-larger) unread",
                    e.number,
                    human_size(e.octets)
                );
            }
        }
        if problems.len() == before {
            tally.deleted_larger = numbers;
        }
    }
    tally.marked = marked;

    let total_bytes: u64 = to_fetch.iter().map(|e| e.octets).sum();
    let progress = progress_bar(
        total_bytes,
        to_fetch.len(),
        req.label.as_deref(),
        req.progress.as_ref(),
        req.quiet || cli.json,
    );
    let mut placed: Vec<Placed> = Vec::new();
    let mut recorded = 0usize;
    let mut failure: Option<CliError> = None;
    let state_ctx = format!("writing {}", state_path.display());
    let add_received = req.add_received && !matches!(req.target, Target::Store(Dest::Eml(_)));
    let delete_fetched = req.delete && req.keep_days.is_none();
    let groups = groups(&to_fetch, max_group);
    if let Some(first) = groups.first() {
        let intent = intent_for(account, &store, first, &uids);
        state
            .commit(account, &[], Some(intent))
            .map_err(|e| io_err(&state_ctx, &e))?;
    }
    for (gi, group) in groups.iter().enumerate() {
        if stopping() {
            // Close the intent of the group that will not be fetched.
            tally.stopped = true;
            state
                .commit(account, &[], None)
                .map_err(|e| io_err(&state_ctx, &e))?;
            break;
        }
        let mut sink = GroupSink {
            store: &mut store,
            account,
            received_from: add_received.then_some(s.host.as_str()),
            undelivered: Vec::new(),
            uids: &uids,
            max_size: req.max_size,
            size: 0,
            current: None,
            placed: Vec::new(),
            refused: Vec::new(),
            progress: &progress,
        };
        let result = c.retr_each_report(group.iter().map(|e| e.number), &mut sink);
        let failed_at = sink.current;
        let group_placed = std::mem::take(&mut sink.placed);
        let refused = std::mem::take(&mut sink.refused);
        let not_delivered = std::mem::take(&mut sink.undelivered);
        drop(sink);
        for (n, r) in &refused {
            problems.push(format!("message {n}: {}", clean(&r.to_string())));
        }
        for (n, why) in &not_delivered {
            tally.undelivered.push(*n);
            let text = format!("message {n}: {why}; it stays on the server");
            if !cli.json {
                say!("{lead}{text}");
            }
            undelivered.push(text);
        }
        let retr_error = match result {
            Ok(_) => None,
            Err(be) => {
                let _ = store.abort();
                Some((be.message.or(failed_at), be.error))
            }
        };
        // Make what was placed durable, record it, open the next intent.
        let next = if retr_error.is_none() {
            groups
                .get(gi + 1)
                .map(|g| intent_for(account, &store, g, &uids))
        } else {
            None
        };
        let durable = store
            .sync()
            .map_err(|e| io_err(&format!("syncing {describe}"), &e))
            .and_then(|()| {
                let next = next.map(|mut i| {
                    // The offset after the sync is where the next group starts.
                    i.offset = store.offset();
                    i
                });
                let stored: Vec<String> = group_placed
                    .iter()
                    .filter_map(|p| p.uid_escaped.clone())
                    .collect();
                state
                    .commit(account, &stored, next)
                    .map_err(|e| io_err(&state_ctx, &e))
            });
        let durable_ok = durable.is_ok();
        if durable_ok {
            recorded += group_placed.len();
        }
        let numbers: Vec<u32> = group_placed.iter().map(|p| p.number).collect();
        placed.extend(group_placed);
        if let Err(e) = durable {
            failure = Some(e);
            break;
        }
        match retr_error {
            None => {
                if delete_fetched {
                    match dele_all(&mut c, &numbers, &mut problems) {
                        Ok(n) => marked += n,
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
            }
            Some((at, e)) => {
                let what = match at {
                    Some(n) => format!("RETR {n}"),
                    None => String::from("fetching messages"),
                };
                let err = match &e {
                    Error::Sink(io_err)
                        if io_err.kind() == io::ErrorKind::Interrupted && stopping() =>
                    {
                        // Stopped between two messages: what was stored is
                        // recorded; delete it and end normally.
                        tally.stopped = true;
                        if delete_fetched {
                            match dele_all(&mut c, &numbers, &mut problems) {
                                Ok(n) => marked += n,
                                Err(e) => failure = Some(e),
                            }
                        }
                        break;
                    }
                    Error::Sink(io_err) => {
                        // The session is still usable: delete what is
                        // stored and recorded.
                        if delete_fetched {
                            if let Ok(n) = dele_all(&mut c, &numbers, &mut problems) {
                                marked += n;
                            }
                        }
                        CliError::io(format!("{what}: storing into {describe}"), io_err)
                    }
                    _ => CliError::pop3(&what, &e),
                };
                failure = Some(err);
                break;
            }
        }
    }
    progress.finish_and_clear();
    drop(store); // releases the destination locks
    drop(state);
    tally.fetched = placed.len();
    tally.octets = placed.iter().map(|m| m.octets).sum();
    tally.marked = marked;

    if cli.json {
        for m in &placed {
            json_line(&json!({
                "type": "message",
                "account": req.label,
                "number": m.number,
                "uid": m.uid,
                "octets": m.octets,
                "path": m.path,
            }))?;
        }
    }
    if let Some(mut err) = failure {
        let local = err.class == Class::Io;
        if local && marked > 0 {
            // Commit the deletions of messages stored safely.
            if let Err(q) = session::quit(&mut c, marked) {
                err.message.push_str(&format!("; then {}", q.message));
            }
        }
        let unrecorded = placed.len() - recorded;
        if !cli.json {
            say!(
                "{lead}{} message(s) were stored before the failure{}; {} marked for \
                 deletion; nothing stored is lost, and running the same command again \
                 continues where this stopped",
                placed.len(),
                if unrecorded > 0 {
                    format!(
                        " ({unrecorded} of them not yet recorded: the next run recognises \
                         them or stores them again after removing the partial copy)"
                    )
                } else {
                    String::new()
                },
                marked
            );
        }
        return Err(err);
    }

    let stored_bytes = tally.octets;
    let quit = c.quit();
    let (deleted_text, quit_err) = match quit {
        Ok(_) => (marked.to_string(), None),
        Err(e @ Error::Server { .. }) => {
            tally.marked = 0;
            (String::from("0"), session::quit_error(e, marked).err())
        }
        Err(e) if marked > 0 => (
            format!("unknown ({marked} were marked; the QUIT reply was lost)"),
            Some(CliError::pop3("QUIT", &e)),
        ),
        Err(e) => (String::from("0"), Some(CliError::pop3("QUIT", &e))),
    };
    let elapsed = started.elapsed().as_secs_f64();
    if talk {
        let rate = if elapsed > 0.0 {
            format!(", {}/s", human_size((stored_bytes as f64 / elapsed) as u64))
        } else {
            String::new()
        };
        let mut extra = String::new();
        if !oversize.is_empty() {
            extra.push_str(&format!(
                "; {} larger than --max-size kept on the server",
                oversize.len()
            ));
        }
        if !too_large.is_empty() {
            extra.push_str(&format!(
                "; {} larger than --skip-larger left on the server",
                too_large.len()
            ));
        }
        if !tally.expired.is_empty() {
            extra.push_str(&format!(
                "; {} older than --keep-days deleted",
                tally.expired.len()
            ));
        }
        say!(
            "{lead}fetched {} message(s) ({}) into {describe} in {elapsed:.1} s{rate}; {} \
             already fetched skipped; {deleted_text} deleted on the server{extra}",
            placed.len(),
            human_size(stored_bytes),
            known.len(),
        );
        for e in &oversize {
            say!(
                "{lead}message {} ({} bytes) is larger than --max-size and stays on the server",
                e.number,
                e.octets
            );
        }
    }
    if let Some(e) = quit_err {
        return Err(e);
    }
    if !problems.is_empty() {
        return Err(CliError {
            class: Class::Server,
            message: format!(
                "{} message(s) could not be fetched or deleted: {}",
                problems.len(),
                problems.join("; ")
            ),
        });
    }
    if !undelivered.is_empty() {
        return Err(CliError {
            class: Class::Io,
            message: format!(
                "{} message(s) were not delivered by the MDA (they stay on the server): {}",
                undelivered.len(),
                undelivered.join("; ")
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_split_by_count_and_bytes() {
        let e = |n: u32, octets: u64| ListEntry { number: n, octets };
        let list: Vec<ListEntry> = (1..=600).map(|n| e(n, 10)).collect();
        let g = groups(&list, GROUP_MESSAGES);
        assert_eq!(
            g.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [256, 256, 88]
        );
        let big = vec![e(1, GROUP_BYTES), e(2, 1), e(3, GROUP_BYTES + 5), e(4, 1)];
        let g = groups(&big, GROUP_MESSAGES);
        assert_eq!(g.iter().map(|g| g.len()).collect::<Vec<_>>(), [1, 1, 1, 1]);
        assert!(groups(&[], 1).is_empty());
        assert_eq!(groups(&list, 1).len(), 600);
    }
}

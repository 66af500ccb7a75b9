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
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pop3_blocking::pop3_proto::MsgNum;
use pop3_blocking::{Command, Disposition, ErrResponse, Error, ListEntry, MessageSink, Reply};
use serde_json::json;

use crate::cli::Cli;
use crate::error::{Class, CliError};
use crate::lock::LockError;
use crate::output::{human_size, json_line};
use crate::sanitize::clean;
use crate::session::{self, Server, TcpClient};
use crate::state::{escape_field, Intent, State, StateError};
pub use crate::store::Dest;
use crate::store::{MsgKey, Store};
use crate::transform::LineEndings;

/// Most messages in one group commit.
pub const GROUP_MESSAGES: usize = 256;
/// Most bytes (as listed) in one group commit.
pub const GROUP_BYTES: u64 = 32 << 20;

/// What `fetch` was asked to do.
#[derive(Debug)]
pub struct Request {
    /// Destination.
    pub dest: Dest,
    /// `--delete`.
    pub delete: bool,
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
    path: std::path::PathBuf,
}

struct GroupSink<'a> {
    store: &'a mut Store,
    account: &'a str,
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
        self.current = Some(n);
        self.size = 0;
        let key = self.uids.get(&n).map(|u| MsgKey::for_uid(self.account, u));
        self.store.begin(key)
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
        let path = self.store.end()?;
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

fn progress_bar(total: u64, messages: usize) -> ProgressBar {
    if !io::stderr().is_terminal() || messages == 0 {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed}] {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb
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

/// Groups of at most [`GROUP_MESSAGES`] messages and [`GROUP_BYTES`] bytes.
fn groups(list: &[ListEntry]) -> Vec<&[ListEntry]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0u64;
    for (i, e) in list.iter().enumerate() {
        if i > start && (i - start >= GROUP_MESSAGES || bytes + e.octets > GROUP_BYTES) {
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
    store: &Store,
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

/// Runs `fetch`.
pub fn fetch(s: &Server, cli: &Cli, req: &Request) -> Result<(), CliError> {
    let started = Instant::now();
    let dest = &req.dest;
    let deadline = Instant::now() + req.lock_timeout;
    let endings = req
        .line_endings
        .unwrap_or_else(|| dest.default_line_endings());
    // Everything local is opened, locked and checked before connecting.
    let mut store = Store::open(dest, endings, deadline).map_err(lock_error)?;
    let state_path = dest.state_path();
    let mut state = State::open(&state_path, deadline).map_err(state_error)?;
    let io_err = |what: &str, e: &io::Error| CliError::io(what, e);
    if let Some(intent) = state.unresolved().cloned() {
        let r = store
            .recover(&intent)
            .map_err(|e| io_err(&format!("repairing {}", dest.describe()), &e))?;
        state
            .commit(&intent.account, &r.recognised, None)
            .map_err(|e| io_err(&format!("writing {}", state_path.display()), &e))?;
        if let Some(w) = r.warning {
            say!("pop3: warning: {w}");
        }
        if r.truncated > 0 && !cli.json {
            say!(
                "pop3: removed {} of a partly written group left by an interrupted fetch \
                 (those messages are still on the server)",
                human_size(r.truncated)
            );
        }
    }
    if state.legacy_records() > 0 && !cli.json {
        say!(
            "pop3: note: {} ignores {} old record(s) without a server port; they are \
             never used to skip or delete",
            state_path.display(),
            state.legacy_records()
        );
    }
    let account = s.account.as_str();

    let mut c = session::open_for_fetch(s, cli)?;
    let list = c.list().map_err(|e| CliError::pop3("LIST", &e))?;
    let uidl = match c.uidl() {
        Ok(v) => Some(v),
        Err(Error::Server { .. }) => None,
        Err(e) => return Err(CliError::pop3("UIDL", &e)),
    };
    if uidl.is_none() && req.new_only {
        let _ = c.quit();
        return Err(CliError {
            class: Class::Server,
            message: String::from(
                "the server does not support UIDL, so --new-only cannot tell which \
                 messages are new",
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
            "pop3: warning: the server gave the same UID to several messages ({ambiguous} \
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
            "pop3: warning: the server has no UIDL; with --delete each message is deleted \
             only after it is stored, but a connection cut before QUIT means those \
             messages are fetched again next time"
        );
    }
    let mut to_fetch = Vec::new();
    let mut known = Vec::new();
    let mut oversize = Vec::new();
    for e in &list {
        let seen = uids
            .get(&e.number)
            .is_some_and(|u| state.contains(account, u));
        if seen && !req.all {
            known.push(e.number);
        } else if e.octets > req.max_size {
            oversize.push(*e);
        } else {
            to_fetch.push(*e);
        }
    }
    let mut marked = 0usize;
    let mut problems: Vec<String> = Vec::new();
    if req.delete {
        // Stored by an earlier run whose deletions were never committed.
        marked += dele_all(&mut c, &known, &mut problems)?;
    }

    let total_bytes: u64 = to_fetch.iter().map(|e| e.octets).sum();
    let progress = progress_bar(total_bytes, to_fetch.len());
    let mut placed: Vec<Placed> = Vec::new();
    let mut recorded = 0usize;
    let mut failure: Option<CliError> = None;
    let state_ctx = format!("writing {}", state_path.display());
    let groups = groups(&to_fetch);
    if let Some(first) = groups.first() {
        let intent = intent_for(account, &store, first, &uids);
        state
            .commit(account, &[], Some(intent))
            .map_err(|e| io_err(&state_ctx, &e))?;
    }
    for (gi, group) in groups.iter().enumerate() {
        let mut sink = GroupSink {
            store: &mut store,
            account,
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
        drop(sink);
        for (n, r) in &refused {
            problems.push(format!("message {n}: {}", clean(&r.to_string())));
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
            .map_err(|e| io_err(&format!("syncing {}", dest.describe()), &e))
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
                if req.delete {
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
                    Error::Sink(io_err) => {
                        // The session is still usable: delete what is
                        // stored and recorded.
                        if req.delete {
                            if let Ok(n) = dele_all(&mut c, &numbers, &mut problems) {
                                marked += n;
                            }
                        }
                        CliError::io(format!("{what}: storing into {}", dest.describe()), io_err)
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

    if cli.json {
        for m in &placed {
            json_line(&json!({
                "type": "message",
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
                "pop3: {} message(s) were stored before the failure{}; {} marked for \
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

    let stored_bytes: u64 = placed.iter().map(|m| m.octets).sum();
    let quit = c.quit();
    let (deleted_text, deleted_json, quit_err) = match quit {
        Ok(_) => (marked.to_string(), json!(marked), None),
        Err(e @ Error::Server { .. }) => (
            String::from("0"),
            json!(0),
            session::quit_error(e, marked).err(),
        ),
        Err(e) if marked > 0 => (
            format!("unknown ({marked} were marked; the QUIT reply was lost)"),
            serde_json::Value::Null,
            Some(CliError::pop3("QUIT", &e)),
        ),
        Err(e) => (
            String::from("0"),
            json!(0),
            Some(CliError::pop3("QUIT", &e)),
        ),
    };
    for e in &oversize {
        problems.push(format!(
            "message {} ({} bytes) is larger than --max-size and stays on the server",
            e.number, e.octets
        ));
    }
    let elapsed = started.elapsed().as_secs_f64();
    if cli.json {
        json_line(&json!({
            "type": "summary",
            "fetched": placed.len(),
            "octets": stored_bytes,
            "skipped": known.len(),
            "oversized": oversize.iter().map(|e| e.number).collect::<Vec<_>>(),
            "deleted": deleted_json,
            "marked": marked,
            "destination": dest.describe(),
            "seconds": elapsed,
            "ok": quit_err.is_none() && problems.is_empty(),
        }))?;
    } else {
        let rate = if elapsed > 0.0 {
            format!(", {}/s", human_size((stored_bytes as f64 / elapsed) as u64))
        } else {
            String::new()
        };
        say!(
            "pop3: fetched {} message(s) ({}) into {} in {:.1} s{rate}; {} already fetched \
             skipped; {} deleted on the server{}",
            placed.len(),
            human_size(stored_bytes),
            dest.describe(),
            elapsed,
            known.len(),
            deleted_text,
            if oversize.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} larger than --max-size kept on the server",
                    oversize.len()
                )
            }
        );
        for p in problems.iter().filter(|p| p.contains("--max-size")) {
            say!("pop3: {p}");
        }
    }
    if let Some(e) = quit_err {
        return Err(e);
    }
    let problems: Vec<String> = problems
        .into_iter()
        .filter(|p| !p.contains("--max-size"))
        .collect();
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_split_by_count_and_bytes() {
        let e = |n: u32, octets: u64| ListEntry { number: n, octets };
        let list: Vec<ListEntry> = (1..=600).map(|n| e(n, 10)).collect();
        let g = groups(&list);
        assert_eq!(
            g.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [256, 256, 88]
        );
        let big = vec![e(1, GROUP_BYTES), e(2, 1), e(3, GROUP_BYTES + 5), e(4, 1)];
        let g = groups(&big);
        assert_eq!(g.iter().map(|g| g.len()).collect::<Vec<_>>(), [1, 1, 1, 1]);
        assert!(groups(&[]).is_empty());
    }
}

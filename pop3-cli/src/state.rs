//! The UIDL state of a destination, with its intent journal.
//!
//! One text file beside the destination (`DIR/.pop3-uidl`, or
//! `FILE.pop3-uidl` for an mbox), shared by every account delivering
//! there, `fcntl`-locked for the whole run. Lines (fields `%XX`-escaped,
//! LF or CRLF endings):
//!
//! ```text
//! pop3-uidl 2                              header
//! B ACCOUNT OFFSET COUNT UID...            intent: a group of COUNT messages is
//!                                          about to be placed (OFFSET: mbox length
//!                                          before it, `-` for directories)
//! S ACCOUNT UID [TIME]                     stored durably (after a `B`: counts
//!                                          only once the `C` follows); TIME, the
//!                                          Unix time it was first stored, is
//!                                          written since `--keep-days` (files
//!                                          without it are still read: such a
//!                                          record has no first-seen time yet)
//! C                                        the last intent is resolved
//! ACCOUNT UID                              version 1 record (no port in ACCOUNT):
//!                                          kept, but never trusted
//! ```
//!
//! `ACCOUNT` is `user@host:port` with the host in canonical form, so two
//! servers on one host never share records. A torn last line (a crash in
//! the middle of a write) is cut off; any other line that is not understood
//! is an error that names it.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::durable::{is_not_regular, open_regular_append, parent_of, sync_dir};
use crate::lock::{fcntl_exclusive, LockError};

const HEADER: &str = "pop3-uidl 2";
/// Longest line accepted (an intent lists a whole group of UIDs).
const MAX_LINE: usize = 4 << 20;

/// `%XX`-escapes bytes outside `0x21..=0x7E` and `%` (state file fields).
pub fn escape_field(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        if (0x21..=0x7e).contains(&c) && c != b'%' {
            s.push(char::from(c));
        } else {
            s.push_str(&format!("%{c:02X}"));
        }
    }
    s
}

fn valid_field(f: &str) -> bool {
    let b = f.as_bytes();
    if b.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                if i + 2 >= b.len() {
                    return false;
                }
                if !(b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                    return false;
                }
                i += 3;
            }
            0x21..=0x7e => i += 1,
            _ => return false,
        }
    }
    true
}

/// The state-file key of an account: `user@host:port`, escaped, with the
/// host lower-cased, without a trailing dot or IPv6 brackets.
pub fn account_key(user: &str, host: &str, port: u16) -> String {
    let h = host.trim_end_matches('.');
    let h = h
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(h)
        .to_ascii_lowercase();
    escape_field(format!("{user}@{h}:{port}").as_bytes())
}

/// A group of messages that was being placed when a run stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// The account (escaped) the group was fetched for.
    pub account: String,
    /// The mbox length before the group (`None` for directories).
    pub offset: Option<u64>,
    /// How many messages the group had (with and without UIDs).
    pub count: u64,
    /// The escaped UIDs of the group.
    pub uids: Vec<String>,
}

/// Why the state could not be used.
#[derive(Debug)]
pub enum StateError {
    /// Locked by another process for the whole wait.
    Busy(PathBuf),
    /// Not a regular file (a FIFO, a directory, ...).
    NotRegular(PathBuf),
    /// A line that is not understood.
    Garbage {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// I/O.
    Io(PathBuf, io::Error),
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::Busy(p) => write!(f, "{} is locked by another fetch", p.display()),
            StateError::NotRegular(p) => write!(
                f,
                "state file {} is not a regular file; move it away",
                p.display()
            ),
            StateError::Garbage { path, line } => write!(
                f,
                "state file {} line {line} is not understood (not written by pop3?); \
                 fix or move the file",
                path.display()
            ),
            StateError::Io(p, e) => write!(f, "state file {}: {e}", p.display()),
        }
    }
}

/// The open, locked state file.
#[derive(Debug)]
pub struct State {
    path: PathBuf,
    file: File,
    p: Parsed,
    dir_synced: bool,
}

/// What the file says.
#[derive(Debug, Default)]
struct Parsed {
    seen: HashMap<String, HashSet<String>>,
    /// First-seen times, by account and escaped UID (the earliest given).
    first_seen: HashMap<(String, String), u64>,
    pending: Option<Intent>,
    /// `S` records of the open intent, not yet closed by `C`.
    tentative: Vec<(String, String, Option<u64>)>,
    has_header: bool,
    legacy: usize,
}

impl State {
    /// Opens (creating, 0600) and locks the state file, reads it and cuts
    /// off a torn last line.
    pub fn open(path: &Path, deadline: Instant) -> Result<State, StateError> {
        let (file, created) = open_regular_append(path).map_err(|e| {
            if is_not_regular(&e) {
                StateError::NotRegular(path.to_path_buf())
            } else {
                StateError::Io(path.to_path_buf(), e)
            }
        })?;
        fcntl_exclusive(&file, path, deadline).map_err(|e| match e {
            LockError::Busy(p) => StateError::Busy(p),
            LockError::Io(p, e) => StateError::Io(p, e),
        })?;
        let mut st = State {
            path: path.to_path_buf(),
            file,
            p: Parsed::default(),
            dir_synced: !created,
        };
        st.read()?;
        Ok(st)
    }

    fn read(&mut self) -> Result<(), StateError> {
        let path = self.path.clone();
        let err = |e| StateError::Io(path.clone(), e);
        let mut r = BufReader::with_capacity(64 * 1024, &self.file);
        let p = &mut self.p;
        let mut line = Vec::new();
        let mut good_end = 0u64;
        let mut n = 0usize;
        loop {
            line.clear();
            let got = io::Read::take(&mut r, MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line)
                .map_err(err)?;
            if got == 0 {
                break;
            }
            n += 1;
            let Some(body) = line.strip_suffix(b"\n") else {
                if got > MAX_LINE {
                    return Err(StateError::Garbage {
                        path: self.path.clone(),
                        line: n,
                    });
                }
                // Torn last line: cut it off below.
                break;
            };
            good_end += got as u64;
            let body = body.strip_suffix(b"\r").unwrap_or(body);
            if !p.parse_line(body, n == 1) {
                return Err(StateError::Garbage {
                    path: self.path.clone(),
                    line: n,
                });
            }
        }
        drop(r);
        let len = self.file.metadata().map_err(err)?.len();
        if len > good_end {
            self.file.set_len(good_end).map_err(err)?;
            self.file.sync_data().map_err(err)?;
        }
        Ok(())
    }
}

impl Parsed {
    fn record(&mut self, acct: String, uid: String, time: Option<u64>) {
        if let Some(t) = time {
            let e = self
                .first_seen
                .entry((acct.clone(), uid.clone()))
                .or_insert(t);
            *e = (*e).min(t);
        }
        self.seen.entry(acct).or_default().insert(uid);
    }

    fn parse_line(&mut self, line: &[u8], first: bool) -> bool {
        let Ok(line) = std::str::from_utf8(line) else {
            return false;
        };
        if line.is_empty() {
            return true;
        }
        if line == HEADER {
            self.has_header = true;
            return first;
        }
        let f: Vec<&str> = line.split(' ').collect();
        match f.as_slice() {
            ["C"] => {
                self.pending = None;
                for (acct, uid, time) in std::mem::take(&mut self.tentative) {
                    self.record(acct, uid, time);
                }
                true
            }
            ["S", acct, uid, time @ ..]
                if valid_field(acct) && valid_field(uid) && time.len() <= 1 =>
            {
                let time = match time.first() {
                    None => None,
                    Some(t) => match t.parse::<u64>() {
                        Ok(t) => Some(t),
                        Err(_) => return false,
                    },
                };
                let (acct, uid) = ((*acct).to_string(), (*uid).to_string());
                if self.pending.is_some() {
                    // Counts once the `C` that closes the group follows (a
                    // write cut short must not record half a group).
                    self.tentative.push((acct, uid, time));
                } else {
                    self.record(acct, uid, time);
                }
                true
            }
            ["B", acct, offset, count, uids @ ..] if valid_field(acct) => {
                let offset = match *offset {
                    "-" => None,
                    o => match o.parse() {
                        Ok(v) => Some(v),
                        Err(_) => return false,
                    },
                };
                let Ok(count) = count.parse() else {
                    return false;
                };
                if !uids.iter().all(|u| valid_field(u)) {
                    return false;
                }
                self.tentative.clear();
                self.pending = Some(Intent {
                    account: (*acct).to_string(),
                    offset,
                    count,
                    uids: uids.iter().map(|u| (*u).to_string()).collect(),
                });
                true
            }
            [acct, uid] if acct.contains('@') && valid_field(acct) && valid_field(uid) => {
                // Version 1 (`user@host`, no port): could belong to any
                // server on that host, so it is never trusted.
                self.legacy += 1;
                true
            }
            _ => false,
        }
    }
}

impl State {
    /// Whether `uid` (raw) was stored for `account` (escaped).
    pub fn contains(&self, account: &str, uid: &[u8]) -> bool {
        self.p
            .seen
            .get(account)
            .is_some_and(|s| s.contains(&escape_field(uid)))
    }

    /// When `uid` (raw) was first stored for `account` (Unix time), if the
    /// state says (records written before `--keep-days` existed do not).
    pub fn first_seen(&self, account: &str, uid: &[u8]) -> Option<u64> {
        self.p
            .first_seen
            .get(&(account.to_string(), escape_field(uid)))
            .copied()
    }

    /// How many version 1 records were found (ignored).
    pub fn legacy_records(&self) -> usize {
        self.p.legacy
    }

    /// The intent of a run that stopped before resolving it.
    pub fn unresolved(&self) -> Option<&Intent> {
        self.p.pending.as_ref()
    }

    /// The state file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// In one write and one data sync: records `stored` (escaped UIDs of
    /// `account`, first seen now, see [`crate::clock::now_unix`]; a UID
    /// recorded before keeps its earlier time), resolves the open intent
    /// (if any), and opens `next`.
    pub fn commit(
        &mut self,
        account: &str,
        stored: &[String],
        next: Option<Intent>,
    ) -> io::Result<()> {
        let mut out = String::new();
        if !self.p.has_header {
            if self.file.metadata()?.len() == 0 {
                out.push_str(HEADER);
                out.push('\n');
            }
            self.p.has_header = true;
        }
        let now = crate::clock::now_unix();
        for uid in stored {
            out.push_str(&format!("S {account} {uid} {now}\n"));
        }
        if self.p.pending.is_some() {
            out.push_str("C\n");
        }
        if let Some(n) = &next {
            out.push_str(&format!(
                "B {} {} {}",
                n.account,
                n.offset
                    .map_or_else(|| String::from("-"), |o| o.to_string()),
                n.count
            ));
            for u in &n.uids {
                out.push(' ');
                out.push_str(u);
            }
            out.push('\n');
        }
        if out.is_empty() {
            return Ok(());
        }
        (&self.file).write_all(out.as_bytes())?;
        self.file.sync_data()?;
        if !self.dir_synced {
            sync_dir(&parent_of(&self.path))?;
            self.dir_synced = true;
        }
        for uid in stored {
            self.p.record(account.to_string(), uid.clone(), Some(now));
        }
        self.p.pending = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::time::Duration;

    fn open(p: &Path) -> Result<State, StateError> {
        State::open(p, Instant::now() + Duration::from_millis(100))
    }

    #[test]
    fn round_trip_torn_crlf_garbage_and_legacy() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state");
        let a = account_key("a", "H.example.", 110);
        assert_eq!(a, "a@h.example:110");
        assert_eq!(account_key("a", "[::1]", 1), "a@::1:1");
        let mut st = open(&p).unwrap();
        st.commit(
            &a,
            &[],
            Some(Intent {
                account: a.clone(),
                offset: Some(7),
                count: 2,
                uids: vec![escape_field(b"uid-1"), escape_field(b"uid 2%")],
            }),
        )
        .unwrap();
        assert!(st.unresolved().is_some());
        drop(st);
        let st = open(&p).unwrap();
        let i = st.unresolved().unwrap();
        assert_eq!(i.offset, Some(7));
        assert_eq!(i.uids, ["uid-1", "uid%202%25"]);
        let mut st = st;
        st.commit(&a, &[escape_field(b"uid-1"), escape_field(b"uid 2%")], None)
            .unwrap();
        drop(st);
        // A torn write: no newline at the end.
        let mut f = fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"S a@h.example:110 uid-3").unwrap();
        drop(f);
        let st = open(&p).unwrap();
        assert!(st.unresolved().is_none());
        assert!(st.contains(&a, b"uid-1"));
        assert!(st.contains(&a, b"uid 2%"));
        assert!(!st.contains(&a, b"uid-3"));
        assert!(!st.contains(&account_key("a", "h.example", 111), b"uid-1"));
        drop(st);
        assert!(fs::read(&p).unwrap().ends_with(b"C\n"), "torn line cut off");

        // CRLF line endings and version 1 lines.
        let q = dir.path().join("crlf");
        fs::write(&q, "pop3-uidl 2\r\nS a@h:1 x\r\na@h y\r\n").unwrap();
        let st = open(&q).unwrap();
        assert!(st.contains("a@h:1", b"x"));
        assert!(!st.contains("a@h", b"y"));
        assert_eq!(st.legacy_records(), 1);
        drop(st);
        // Records of a group that was never closed by `C` (a write cut
        // short) do not count; the intent stays open.
        fs::write(&q, "pop3-uidl 2\nB a@h:1 - 2 x y\nS a@h:1 x\n").unwrap();
        let st = open(&q).unwrap();
        assert!(!st.contains("a@h:1", b"x"));
        assert_eq!(st.unresolved().unwrap().uids, ["x", "y"]);
        drop(st);
        fs::write(&q, "pop3-uidl 2\nB a@h:1 - 2 x y\nS a@h:1 x\nC\n").unwrap();
        let st = open(&q).unwrap();
        assert!(st.contains("a@h:1", b"x") && st.unresolved().is_none());
        drop(st);
        // Garbage names its line.
        fs::write(&q, "pop3-uidl 2\nS a@h:1 x\nwhat is this\n").unwrap();
        match open(&q) {
            Err(e @ StateError::Garbage { line: 3, .. }) => {
                assert!(e.to_string().contains("line 3"))
            }
            other => panic!("{other:?}"),
        }
        fs::write(&q, "S a@h:1 bad%zz\n").unwrap();
        assert!(matches!(open(&q), Err(StateError::Garbage { line: 1, .. })));
    }

    #[test]
    fn first_seen_times_old_and_new_records() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state");
        // Old records without a time, a timed one, and a later duplicate
        // with a later time (the earliest counts); tentative records of an
        // unclosed group carry theirs only once closed.
        fs::write(
            &p,
            "pop3-uidl 2\nS a@h:1 old\nS a@h:1 t 100\nS a@h:1 t 900\nS a@h:1 old 500\n\
             B a@h:1 - 1 g\nS a@h:1 g 7\n",
        )
        .unwrap();
        let st = open(&p).unwrap();
        assert!(st.contains("a@h:1", b"old"));
        assert_eq!(st.first_seen("a@h:1", b"old"), Some(500));
        assert_eq!(st.first_seen("a@h:1", b"t"), Some(100));
        assert_eq!(st.first_seen("a@h:1", b"g"), None);
        assert_eq!(st.first_seen("a@h:2", b"t"), None);
        drop(st);
        fs::write(&p, "pop3-uidl 2\nS a@h:1 old\n").unwrap();
        let st = open(&p).unwrap();
        assert_eq!(st.first_seen("a@h:1", b"old"), None, "an old record");
        drop(st);
        // A time that is not a number, or a fifth field, is garbage.
        for bad in ["S a@h:1 u x\n", "S a@h:1 u 1 2\n"] {
            fs::write(&p, format!("pop3-uidl 2\n{bad}")).unwrap();
            assert!(
                matches!(open(&p), Err(StateError::Garbage { line: 2, .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn fields() {
        assert!(valid_field("abc%41"));
        assert!(!valid_field("abc%4"));
        assert!(!valid_field("abc%"));
        assert!(!valid_field(""));
    }
}

//! `fetch`: durable delivery into a Maildir, an mbox file or a directory of
//! `.eml` files, with UIDL state so that nothing is lost or duplicated.
//!
//! The order for every message is: receive it completely into a temporary
//! file; flush and `fsync` it; move it into place (rename into `new/`,
//! rename to `NAME.eml`, or append to the mbox) and `fsync` the file and
//! its directory; append its UID to the state file and `fsync` that; only
//! then is `DELE` sent (pop3-blocking's `retr_each` sends it after the
//! sink's `end` returned). QUIT commits the deletions.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pop3_blocking::{Disposition, ErrResponse, Error, MessageSink};
use serde_json::json;

use crate::cli::Cli;
use crate::error::{Class, CliError};
use crate::output::{human_size, json_line};
use crate::sanitize::clean;
use crate::session::{self, Server};

/// Crash-safe file writing: temporary file, fsync, rename, directory fsync.
pub mod durable {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    static COUNTER: AtomicU64 = AtomicU64::new(0);

    /// A name no other delivery uses (Maildir style:
    /// `secs.MmicrosPpidQn.host`).
    pub fn unique_name() -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        format!(
            "{}.M{}P{}Q{}.{}",
            now.as_secs(),
            now.subsec_micros(),
            std::process::id(),
            n,
            hostname()
        )
    }

    fn hostname() -> String {
        let raw = fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| fs::read_to_string("/etc/hostname"))
            .unwrap_or_default();
        let h: String = raw
            .trim()
            .chars()
            .map(|c| match c {
                '/' => "\\057".to_string(),
                ':' => "\\072".to_string(),
                c if c.is_ascii_graphic() => c.to_string(),
                _ => String::new(),
            })
            .collect();
        if h.is_empty() {
            String::from("localhost")
        } else {
            h
        }
    }

    /// `fsync` of a directory, so a rename or new file in it is durable.
    pub fn sync_dir(dir: &Path) -> io::Result<()> {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        File::open(dir)?.sync_all()
    }

    /// The directory of `path` (`.` for a bare file name).
    pub fn parent_of(path: &Path) -> PathBuf {
        match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// A temporary file, removed when dropped unless committed.
    pub struct TempFile {
        /// `None` once renamed into place.
        path: Option<PathBuf>,
        file: BufWriter<File>,
    }

    impl TempFile {
        /// Creates `dir/name` (must not exist).
        pub fn create(dir: &Path, name: &str) -> io::Result<TempFile> {
            let path = dir.join(name);
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)?;
            Ok(TempFile {
                path: Some(path),
                file: BufWriter::with_capacity(64 * 1024, file),
            })
        }

        /// A temporary file in the directory of `target`.
        pub fn beside(target: &Path) -> io::Result<TempFile> {
            let base = target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            TempFile::create(
                &parent_of(target),
                &format!(".{base}.pop3-tmp-{}", unique_name()),
            )
        }

        /// Where the bytes go.
        pub fn writer(&mut self) -> &mut BufWriter<File> {
            &mut self.file
        }

        /// The temporary path.
        pub fn path(&self) -> &Path {
            self.path.as_deref().unwrap_or(Path::new(""))
        }

        /// Flushes and `fsync`s the contents.
        pub fn sync(&mut self) -> io::Result<()> {
            self.file.flush()?;
            self.file.get_ref().sync_all()
        }

        /// Like `commit`, but fails instead of replacing an existing
        /// `target` (a hard link is atomic and never clobbers).
        pub fn commit_new(mut self, target: &Path) -> io::Result<()> {
            self.sync()?;
            if let Some(p) = &self.path {
                fs::hard_link(p, target)?;
                fs::remove_file(p)?;
            }
            self.path = None;
            sync_dir(&parent_of(target))
        }

        /// Flushes, `fsync`s, renames to `target` and `fsync`s the target's
        /// directory.
        pub fn commit(mut self, target: &Path) -> io::Result<()> {
            self.sync()?;
            if let Some(p) = &self.path {
                fs::rename(p, target)?;
            }
            // Renamed: nothing to remove any more.
            self.path = None;
            sync_dir(&parent_of(target))
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            if let Some(p) = self.path.take() {
                let _ = fs::remove_file(p);
            }
        }
    }
}

use durable::{parent_of, sync_dir, unique_name, TempFile};

/// `%XX`-escapes bytes outside `0x21..=0x7E` and `%` (state file fields).
fn escape_field(b: &[u8]) -> String {
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

/// A safe file name part for a UID: `[A-Za-z0-9._-]` kept, the rest `%XX`.
fn file_name_for_uid(uid: &[u8]) -> String {
    let mut s = String::new();
    for &c in uid {
        if c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || (c == b'.' && !s.is_empty()) {
            s.push(char::from(c));
        } else {
            s.push_str(&format!("%{c:02X}"));
        }
    }
    s
}

/// The UIDs already stored for one account, kept in a text file beside the
/// destination: one line `ACCOUNT UID` per stored message (both
/// `%XX`-escaped), appended and `fsync`ed after each message is stored.
/// A line torn by a crash is never taken as a record.
pub struct State {
    path: PathBuf,
    account: String,
    seen: HashSet<String>,
    file: Option<File>,
}

impl State {
    /// Reads the state file (missing: empty). A torn last line (a crash in
    /// the middle of a write) is ignored.
    pub fn open(path: &Path, account: &str) -> io::Result<State> {
        let account = escape_field(account.as_bytes());
        let mut seen = HashSet::new();
        match File::open(path) {
            Ok(f) => {
                let mut data = Vec::new();
                f.take(1 << 30).read_to_end(&mut data)?;
                for line in data.split_inclusive(|&b| b == b'\n') {
                    let Some(line) = line.strip_suffix(b"\n") else {
                        continue;
                    };
                    let Ok(line) = std::str::from_utf8(line) else {
                        continue;
                    };
                    let mut fields = line.split(' ');
                    if let (Some(acct), Some(uid), None) =
                        (fields.next(), fields.next(), fields.next())
                    {
                        if acct == account && !uid.is_empty() {
                            seen.insert(uid.to_string());
                        }
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(State {
            path: path.to_path_buf(),
            account,
            seen,
            file: None,
        })
    }

    /// Whether this UID was stored before.
    pub fn contains(&self, uid: &[u8]) -> bool {
        self.seen.contains(&escape_field(uid))
    }

    /// Records a stored message (durably).
    pub fn record(&mut self, uid: &[u8]) -> io::Result<()> {
        let uid = escape_field(uid);
        if self.file.is_none() {
            let existed = self.path.exists();
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .open(&self.path)?;
            let len = f.metadata()?.len();
            if len > 0 {
                // Complete a torn last line so the next record stands alone.
                let mut last = [0u8; 1];
                let mut r = File::open(&self.path)?;
                io::Seek::seek(&mut r, io::SeekFrom::Start(len - 1))?;
                r.read_exact(&mut last)?;
                if last[0] != b'\n' {
                    // A third field makes the torn line invalid for good.
                    f.write_all(b" torn\n")?;
                }
            }
            if !existed {
                f.sync_all()?;
                sync_dir(&parent_of(&self.path))?;
            }
            self.file = Some(f);
        }
        if let Some(f) = self.file.as_mut() {
            f.write_all(format!("{} {uid}\n", self.account).as_bytes())?;
            f.sync_data()?;
        }
        self.seen.insert(uid);
        Ok(())
    }
}

/// Where fetched messages go.
#[derive(Debug, Clone)]
pub enum Dest {
    /// A Maildir (`tmp/`, `new/`, `cur/`).
    Maildir(PathBuf),
    /// An mbox file (mboxrd).
    Mbox(PathBuf),
    /// A directory of `.eml` files.
    Eml(PathBuf),
}

impl Dest {
    fn describe(&self) -> String {
        match self {
            Dest::Maildir(p) => format!("maildir {}", p.display()),
            Dest::Mbox(p) => format!("mbox {}", p.display()),
            Dest::Eml(p) => format!("directory {}", p.display()),
        }
    }

    /// The UIDL state file: `DIR/.pop3-uidl` for directories,
    /// `FILE.pop3-uidl` for an mbox.
    pub fn state_path(&self) -> PathBuf {
        match self {
            Dest::Maildir(d) | Dest::Eml(d) => d.join(".pop3-uidl"),
            Dest::Mbox(f) => {
                let mut name = f.as_os_str().to_owned();
                name.push(".pop3-uidl");
                PathBuf::from(name)
            }
        }
    }

    fn prepare(&self) -> io::Result<()> {
        let mkdir = |d: &Path| -> io::Result<()> {
            if !d.is_dir() {
                fs::create_dir_all(d)?;
                sync_dir(&parent_of(d))?;
            }
            Ok(())
        };
        match self {
            Dest::Maildir(d) => {
                mkdir(d)?;
                for sub in ["tmp", "new", "cur"] {
                    mkdir(&d.join(sub))?;
                }
                Ok(())
            }
            Dest::Eml(d) => mkdir(d),
            Dest::Mbox(f) => mkdir(&parent_of(f)),
        }
    }

    fn temp(&self) -> io::Result<TempFile> {
        match self {
            Dest::Maildir(d) => TempFile::create(&d.join("tmp"), &unique_name()),
            Dest::Eml(d) => TempFile::create(d, &format!(".{}.tmp", unique_name())),
            Dest::Mbox(f) => TempFile::beside(f),
        }
    }

    /// Moves a complete, flushed message into place, durably.
    fn commit(&self, mut t: TempFile, uid: Option<&[u8]>) -> io::Result<PathBuf> {
        match self {
            Dest::Maildir(d) => {
                let name = t
                    .path()
                    .file_name()
                    .map(|n| n.to_owned())
                    .unwrap_or_default();
                let target = d.join("new").join(name);
                t.commit(&target)?;
                Ok(target)
            }
            Dest::Eml(d) => {
                let stem = match uid {
                    Some(u) => file_name_for_uid(u),
                    None => unique_name(),
                };
                // Never overwrite an existing file: the same UID can come
                // back for a different message (a server that reuses or
                // duplicates UIDs). The very same bytes (a re-run after a
                // cut before the UID was recorded) are not stored twice.
                t.sync()?;
                for i in 1u32.. {
                    let name = if i == 1 {
                        format!("{stem}.eml")
                    } else {
                        format!("{stem}.{i}.eml")
                    };
                    let target = d.join(name);
                    match fs::symlink_metadata(&target) {
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {
                            t.commit_new(&target)?;
                            return Ok(target);
                        }
                        Err(e) => return Err(e),
                        Ok(_) if same_contents(&target, t.path())? => return Ok(target),
                        Ok(_) => continue,
                    }
                }
                Err(io::Error::other("no free file name"))
            }
            Dest::Mbox(f) => {
                t.sync()?;
                append_mbox(f, t.path())?;
                Ok(f.clone())
            }
        }
    }
}

/// Whether two files hold the same bytes.
fn same_contents(a: &Path, b: &Path) -> io::Result<bool> {
    let (ma, mb) = (fs::metadata(a)?, fs::metadata(b)?);
    if ma.len() != mb.len() {
        return Ok(false);
    }
    Ok(fs::read(a)? == fs::read(b)?)
}

/// `Thu Jan  1 00:00:00 1970` (UTC) for an mbox `From ` line.
fn asctime_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {}",
        WD[days.rem_euclid(7) as usize],
        MON[(month - 1) as usize],
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        year
    )
}

/// Writes `msg` mboxrd-quoted: every line matching `^>*From ` gets one
/// more `>`; a missing final newline is added; a blank line follows.
pub fn write_mboxrd(w: &mut impl Write, msg: &mut impl BufRead) -> io::Result<()> {
    let mut line = Vec::new();
    let mut last_nl = true;
    loop {
        line.clear();
        if msg.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let stripped = line.iter().position(|&b| b != b'>').unwrap_or(line.len());
        if line[stripped..].starts_with(b"From ") {
            w.write_all(b">")?;
        }
        w.write_all(&line)?;
        last_nl = line.ends_with(b"\n");
    }
    if !last_nl {
        w.write_all(b"\n")?;
    }
    w.write_all(b"\n")
}

/// Appends one message to the mbox, `fsync`ed; on failure the mbox is cut
/// back to its previous length.
fn append_mbox(mbox: &Path, src: &Path) -> io::Result<()> {
    let existed = mbox.exists();
    let mut f = OpenOptions::new().create(true).append(true).open(mbox)?;
    let start = f.metadata()?.len();
    let result = (|| -> io::Result<()> {
        let mut w = BufWriter::with_capacity(64 * 1024, &mut f);
        w.write_all(format!("From MAILER-DAEMON {}\n", asctime_now()).as_bytes())?;
        let mut r = BufReader::with_capacity(64 * 1024, File::open(src)?);
        write_mboxrd(&mut w, &mut r)?;
        w.flush()?;
        drop(w);
        f.sync_all()
    })();
    if let Err(e) = result {
        let _ = f.set_len(start);
        let _ = f.sync_all();
        return Err(e);
    }
    if !existed {
        sync_dir(&parent_of(mbox))?;
    }
    Ok(())
}

/// One stored message.
struct Stored {
    number: u32,
    uid: Option<String>,
    octets: u64,
    path: PathBuf,
}

struct FetchSink<'a> {
    dest: &'a Dest,
    uids: &'a HashMap<u32, Vec<u8>>,
    state: Option<&'a mut State>,
    delete: bool,
    current: Option<TempFile>,
    current_number: Option<u32>,
    current_size: u64,
    max_size: u64,
    progress: &'a ProgressBar,
    total_messages: usize,
    stored: Vec<Stored>,
    refused: Vec<(u32, ErrResponse)>,
}

impl MessageSink for FetchSink<'_> {
    fn begin(&mut self, n: u32) -> io::Result<()> {
        self.current_number = Some(n);
        self.current_size = 0;
        self.current = Some(self.dest.temp()?);
        Ok(())
    }

    fn data(&mut self, n: u32, chunk: &[u8]) -> io::Result<()> {
        self.current_size += chunk.len() as u64;
        if self.current_size > self.max_size {
            return Err(io::Error::other(format!(
                "message {n} is larger than --max-size {} bytes; not stored, not deleted",
                self.max_size
            )));
        }
        self.progress.inc(chunk.len() as u64);
        match self.current.as_mut() {
            Some(t) => t.writer().write_all(chunk),
            None => Err(io::Error::other("message data before its start")),
        }
    }

    fn end(&mut self, n: u32, octets: u64) -> io::Result<Disposition> {
        let t = self
            .current
            .take()
            .ok_or_else(|| io::Error::other("message end before its start"))?;
        let uid = self.uids.get(&n).map(Vec::as_slice);
        let path = self.dest.commit(t, uid)?;
        if let (Some(state), Some(uid)) = (self.state.as_deref_mut(), uid) {
            state.record(uid)?;
        }
        self.stored.push(Stored {
            number: n,
            uid: uid.map(|u| String::from_utf8_lossy(u).into_owned()),
            octets,
            path,
        });
        self.current_number = None;
        self.progress.set_message(format!(
            "{}/{} messages",
            self.stored.len(),
            self.total_messages
        ));
        Ok(if self.delete {
            Disposition::Delete
        } else {
            Disposition::Keep
        })
    }

    fn refused(&mut self, n: u32, response: &ErrResponse) -> io::Result<()> {
        self.current = None;
        self.current_number = None;
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
        "{spinner} [{elapsed}] {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb.set_message(format!("0/{messages} messages"));
    pb
}

/// What `fetch` was asked to do.
#[derive(Debug)]
pub struct Request {
    /// Destination.
    pub dest: Dest,
    /// `--delete`.
    pub delete: bool,
    /// `--new-only`.
    pub new_only: bool,
    /// `--max-size`: most body bytes accepted for one message.
    pub max_size: u64,
}

/// Runs `fetch`.
pub fn fetch(s: &Server, cli: &Cli, req: &Request) -> Result<(), CliError> {
    let started = Instant::now();
    let dest = &req.dest;
    dest.prepare()
        .map_err(|e| CliError::io(format!("preparing {}", dest.describe()), &e))?;
    let mut c = session::open(s, cli)?;
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
        eprintln!(
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
    let state_path = dest.state_path();
    let mut state = match uidl {
        Some(_) => Some(
            State::open(&state_path, &s.account)
                .map_err(|e| CliError::io(format!("reading {}", state_path.display()), &e))?,
        ),
        None => None,
    };
    if uidl.is_none() && req.delete && !cli.json {
        eprintln!(
            "pop3: warning: the server has no UIDL; with --delete each message is deleted \
             only after it is stored, but a connection cut before QUIT means those \
             messages are fetched again next time"
        );
    }
    let skip_known = req.new_only || req.delete;
    let mut to_fetch = Vec::new();
    let mut known = Vec::new();
    for e in &list {
        let seen = uids
            .get(&e.number)
            .is_some_and(|u| state.as_ref().is_some_and(|st| st.contains(u)));
        if skip_known && seen {
            known.push(e.number);
        } else {
            to_fetch.push(*e);
        }
    }
    let mut deleted = 0usize;
    let mut problems: Vec<String> = Vec::new();
    if req.delete {
        // Stored by an earlier run whose deletions were never committed.
        for &n in &known {
            match c.dele(n) {
                Ok(_) => deleted += 1,
                Err(Error::Server { response, .. }) => {
                    problems.push(format!("DELE {n}: {}", clean(&response.to_string())))
                }
                Err(e) => return Err(CliError::pop3(format!("DELE {n}"), &e)),
            }
        }
    }
    let total_bytes: u64 = to_fetch.iter().map(|e| e.octets).sum();
    let progress = progress_bar(total_bytes, to_fetch.len());
    let mut sink = FetchSink {
        dest,
        uids: &uids,
        state: state.as_mut(),
        delete: req.delete,
        current: None,
        current_number: None,
        current_size: 0,
        max_size: req.max_size,
        progress: &progress,
        total_messages: to_fetch.len(),
        stored: Vec::new(),
        refused: Vec::new(),
    };
    let result = c.retr_each_report(to_fetch.iter().map(|e| e.number), &mut sink);
    progress.finish_and_clear();
    let failed_at = sink.current_number;
    let stored = std::mem::take(&mut sink.stored);
    let refused = std::mem::take(&mut sink.refused);
    drop(sink); // removes a half-received temporary file
    if cli.json {
        for m in &stored {
            json_line(&json!({
                "type": "message",
                "number": m.number,
                "uid": m.uid,
                "octets": m.octets,
                "path": m.path,
            }))?;
        }
    }
    let stored_bytes: u64 = stored.iter().map(|m| m.octets).sum();
    let report = match result {
        Ok(r) => r,
        Err(be) => {
            let what = match be.message.or(failed_at) {
                Some(n) => format!("RETR {n}"),
                None => String::from("fetching messages"),
            };
            // DELEs the server acknowledged before the failure (each one
            // only after its message was stored and recorded).
            deleted += be.report.deleted.len();
            let e = be.error;
            let err = match &e {
                Error::Sink(io_err) => {
                    // The session is still usable: commit the deletions of
                    // the messages that were stored safely.
                    let mut err =
                        CliError::io(format!("storing message into {}", dest.describe()), io_err);
                    if req.delete {
                        if let Err(q) = session::quit(&mut c, deleted) {
                            err.message.push_str(&format!("; then {}", q.message));
                        }
                    }
                    err
                }
                _ => CliError::pop3(&what, &e),
            };
            eprintln!(
                "pop3: {} message(s) were stored before the failure; nothing stored is \
                 lost, and running the same command again continues where this stopped",
                stored.len()
            );
            return Err(err);
        }
    };
    deleted += report.deleted.len();
    for (n, r) in refused.iter().chain(report.dele_failed.iter()) {
        problems.push(format!("message {n}: {}", clean(&r.to_string())));
    }
    let quit = session::quit(&mut c, deleted);
    let elapsed = started.elapsed().as_secs_f64();
    if cli.json {
        json_line(&json!({
            "type": "summary",
            "fetched": stored.len(),
            "octets": stored_bytes,
            "skipped": known.len(),
            "deleted": if quit.is_ok() { deleted } else { 0 },
            "destination": dest.describe(),
            "seconds": elapsed,
            "ok": quit.is_ok() && problems.is_empty(),
        }))?;
    } else {
        let rate = if elapsed > 0.0 {
            format!(", {}/s", human_size((stored_bytes as f64 / elapsed) as u64))
        } else {
            String::new()
        };
        eprintln!(
            "pop3: fetched {} message(s) ({}) into {} in {:.1} s{rate}; {} already fetched \
             skipped; {} deleted on the server",
            stored.len(),
            human_size(stored_bytes),
            dest.describe(),
            elapsed,
            if skip_known { known.len() } else { 0 },
            if quit.is_ok() { deleted } else { 0 },
        );
    }
    quit?;
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
    fn mboxrd_quoting() {
        let mut out = Vec::new();
        let msg = b"Subject: x\r\n\r\nFrom here\r\n>From there\r\n>>From x\r\nFromage\r\nlast";
        write_mboxrd(&mut out, &mut &msg[..]).unwrap();
        assert_eq!(
            out,
            b"Subject: x\r\n\r\n>From here\r\n>>From there\r\n>>>From x\r\nFromage\r\nlast\n\n"
        );
    }

    #[test]
    fn state_round_trip_and_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state");
        let mut st = State::open(&p, "a@h").unwrap();
        st.record(b"uid-1").unwrap();
        st.record(b"uid 2%").unwrap();
        drop(st);
        // A torn write: no newline at the end.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"a@h uid-3").unwrap();
        drop(f);
        let mut st = State::open(&p, "a@h").unwrap();
        assert!(st.contains(b"uid-1"));
        assert!(st.contains(b"uid 2%"));
        assert!(!st.contains(b"uid-3"));
        assert!(!State::open(&p, "b@h").unwrap().contains(b"uid-1"));
        st.record(b"uid-4").unwrap();
        let st = State::open(&p, "a@h").unwrap();
        assert!(st.contains(b"uid-4"));
        assert!(!st.contains(b"uid-3"));
    }

    #[test]
    fn names() {
        assert_eq!(file_name_for_uid(b"a/b.c"), "a%2Fb.c");
        assert_eq!(file_name_for_uid(b".."), "%2E.");
        assert_eq!(escape_field(b"a b%"), "a%20b%25");
        assert!(asctime_now().len() >= 24);
        assert_ne!(unique_name(), unique_name());
    }
}

//! The destinations of `fetch`: an mbox file (appended under an `fcntl`
//! lock and a dotlock; no temporary copy), a Maildir and a directory of
//! `.eml` files (each message in an anonymous `O_TMPFILE` file linked into
//! place, or a named temporary file where the file system has no
//! `O_TMPFILE`), with group commit: [`Store::sync`] makes every message
//! placed since the last call durable at once: one data sync of the mbox,
//! or, for a directory, one `syncfs` (data and directory entries of the
//! whole group in one call; it also writes back whatever else is dirty on
//! that file system; groups of fewer than 16 files get per-file syncs). `POP3_DIR_SYNC=files` ([`DIR_SYNC_ENV`]) chooses one
//! `fdatasync` per file (all at the group's end) and one directory `fsync`
//! instead: more calls, but nothing else is flushed. On the loaded test
//! machine `syncfs` was 2-6 times faster in wall time (see the
//! `fetch_vs_mpop` bench, which measures both).
//!
//! Maildir names carry `U` + a hash of (account, UID) and, as Dovecot's do,
//! `,S=` + the size, so a message placed by a run that stopped before
//! recording it is recognised later (complete: its size must match), even
//! after a mail reader moved it to `cur/` and added flags.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use md5::{Digest, Md5};
use rustix::fs::{AtFlags, Mode, OFlags, CWD};

use crate::durable::{
    create_private, hostname, open_regular_append, parent_of, private_dir_all, sync_dir,
    unique_name_with,
};
use crate::lock::{fcntl_exclusive, DotLock, FileLock, LockError};
use crate::state::{escape_field, Intent};
use crate::transform::{asctime, envelope_sender, header_complete, LineEndings, Transform};

/// Placed files whose data sync is deferred to the group's end, at most
/// (bounds the open descriptors).
const MAX_UNSYNCED_FILES: usize = 128;
/// [`DirSync::Filesystem`] uses `syncfs` for groups of at least this many
/// files; smaller ones get per-file syncs, whose cost does not depend on
/// what else is dirty on the file system.
const SYNCFS_MIN_FILES: usize = 16;
/// Bytes buffered before they are written out.
const BUF: usize = 256 * 1024;
/// Header bytes held back to find `Return-Path:` for the mbox `From ` line.
const MAX_HEADER: usize = 64 * 1024;
/// The Maildir convention: files in `tmp/` older than this are stale.
pub const TMP_STALE: Duration = Duration::from_secs(36 * 3600);

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
    /// `maildir DIR`, `mbox FILE` or `directory DIR`.
    pub fn describe(&self) -> String {
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

    /// The line endings used when none is asked for: LF for mbox and
    /// Maildir, the received bytes for `.eml`.
    pub fn default_line_endings(&self) -> LineEndings {
        match self {
            Dest::Eml(_) => LineEndings::Keep,
            _ => LineEndings::Lf,
        }
    }
}

/// What identifies one message in a destination.
#[derive(Debug, Clone)]
pub struct MsgKey {
    /// 32 hex digits: MD5 of the escaped account and UID.
    pub hash: String,
    /// A file-name-safe form of the UID (`.eml` names).
    pub stem: String,
}

impl MsgKey {
    /// The key of `uid_escaped` (as in the state file) for `account`.
    pub fn new(account: &str, uid_escaped: &str) -> MsgKey {
        MsgKey {
            hash: uid_hash(account, uid_escaped),
            stem: file_name_for_uid(uid_escaped.as_bytes()),
        }
    }

    /// The key of a raw UID.
    pub fn for_uid(account: &str, uid: &[u8]) -> MsgKey {
        MsgKey::new(account, &escape_field(uid))
    }
}

fn uid_hash(account: &str, uid_escaped: &str) -> String {
    let mut h = Md5::new();
    h.update(account.as_bytes());
    h.update(b" ");
    h.update(uid_escaped.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A safe file name part: `[A-Za-z0-9._-]` kept, the rest `%XX`.
pub fn file_name_for_uid(uid: &[u8]) -> String {
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

/// What [`Store::recover`] found of an interrupted group.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Escaped UIDs found in place (to be recorded).
    pub recognised: Vec<String>,
    /// Bytes of a partial group cut off the end of the mbox.
    pub truncated: u64,
    /// Something to tell the user.
    pub warning: Option<String>,
}

struct Current {
    file: File,
    /// The named temporary file (no `O_TMPFILE`).
    temp: Option<TempName>,
    name: String,
    key: Option<MsgKey>,
    written: u64,
}

/// A named temporary file, removed when dropped unless disarmed.
struct TempName(Option<PathBuf>);

impl TempName {
    fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    /// Moved into place: nothing to remove any more.
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for TempName {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            let _ = fs::remove_file(t);
        }
    }
}

struct Mbox {
    path: PathBuf,
    file: File,
    _dotlock: DotLock,
    /// Bytes in the file (written out).
    file_len: u64,
    created: bool,
    dir_synced: bool,
    /// What goes before the next `From ` line so it starts a paragraph.
    sep: &'static [u8],
    msg_start: u64,
    /// A message was begun and has not ended.
    in_message: bool,
    /// The start of the current message while its header is held back.
    header: Option<Vec<u8>>,
}

struct Dir {
    path: PathBuf,
    /// Where temporary files are made (`tmp/`, or the `.eml` directory).
    tmp: File,
    tmp_path: PathBuf,
    /// Where messages are placed (`new/`, or the `.eml` directory).
    target: File,
    target_path: PathBuf,
    o_tmpfile: bool,
    _lock: FileLock,
    eml: bool,
}

enum Kind {
    Mbox(Mbox),
    Dir(Dir),
}

/// An open, locked destination.
pub struct Store {
    kind: Kind,
    transform: Transform,
    endings: LineEndings,
    buf: Vec<u8>,
    host: String,
    current: Option<Current>,
    unsynced: bool,
    /// Files placed since the last sync, whose data is not synced yet.
    to_sync: Vec<File>,
    /// Files placed since the last sync.
    placed_unsynced: usize,
    dir_sync: DirSync,
}

/// How a directory destination makes a group durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirSync {
    /// `fdatasync` of each file of the group (at the group's end), then
    /// `fsync` of the directory.
    Files,
    /// One `syncfs` for a whole group (of at least 16 files; smaller ones
    /// as [`DirSync::Files`]): fewest calls, but it also writes back
    /// everything else that is dirty on that file system.
    Filesystem,
}

/// Environment variable choosing [`DirSync`]: `files` or `fs`.
pub const DIR_SYNC_ENV: &str = "POP3_DIR_SYNC";

impl DirSync {
    /// From [`DIR_SYNC_ENV`], else the default.
    pub fn from_env() -> DirSync {
        match std::env::var(DIR_SYNC_ENV).as_deref() {
            Ok("fs") => DirSync::Filesystem,
            Ok("files") => DirSync::Files,
            _ => DirSync::DEFAULT,
        }
    }

    /// The default.
    pub const DEFAULT: DirSync = DirSync::Filesystem;
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

fn ctx(path: &Path) -> impl Fn(io::Error) -> LockError + '_ {
    move |e| LockError::Io(path.to_path_buf(), e)
}

impl Store {
    /// Creates what is missing (directories 0700), takes the locks (waiting
    /// until `deadline`) and removes stale temporary files.
    pub fn open(dest: &Dest, endings: LineEndings, deadline: Instant) -> Result<Store, LockError> {
        let host = hostname();
        let kind = match dest {
            Dest::Mbox(path) => Kind::Mbox(open_mbox(path, &host, deadline)?),
            Dest::Maildir(d) => {
                for sub in ["", "tmp", "new", "cur"] {
                    private_dir_all(&d.join(sub)).map_err(ctx(&d.join(sub)))?;
                }
                let lock = FileLock::acquire(&d.join(".pop3-lock"), deadline)?;
                clean_maildir_tmp(&d.join("tmp"));
                open_dir(d, d.join("tmp"), d.join("new"), lock, false)?
            }
            Dest::Eml(d) => {
                private_dir_all(d).map_err(ctx(d))?;
                let lock = FileLock::acquire(&d.join(".pop3-lock"), deadline)?;
                clean_own_temps(d, |n| {
                    n.starts_with(".pop3-tmp-")
                        || (n.starts_with('.') && n.ends_with(".tmp") && n.contains(".M"))
                });
                open_dir(d, d.clone(), d.clone(), lock, true)?
            }
        };
        let mboxrd = matches!(kind, Kind::Mbox(_));
        Ok(Store {
            kind,
            transform: Transform::new(endings, mboxrd),
            endings,
            buf: Vec::with_capacity(BUF + 64 * 1024),
            host,
            current: None,
            unsynced: false,
            to_sync: Vec::new(),
            placed_unsynced: 0,
            dir_sync: DirSync::from_env(),
        })
    }

    /// The mbox length (what an intent records); `None` for directories.
    pub fn offset(&self) -> Option<u64> {
        match &self.kind {
            Kind::Mbox(m) => Some(m.file_len + self.buf.len() as u64),
            Kind::Dir(_) => None,
        }
    }

    /// Starts a message (`key`: `None` for a message without a trusted UID).
    pub fn begin(&mut self, key: Option<MsgKey>) -> io::Result<()> {
        self.transform.reset();
        self.current = None;
        if matches!(self.kind, Kind::Dir(_)) {
            self.buf.clear();
        }
        match &mut self.kind {
            Kind::Mbox(m) => {
                self.buf.extend_from_slice(m.sep);
                m.sep = b"";
                m.msg_start = m.file_len + self.buf.len() as u64;
                m.in_message = true;
                m.header = Some(Vec::new());
            }
            Kind::Dir(d) => {
                let extra = match (&key, d.eml) {
                    (Some(k), false) => format!("U{}", k.hash),
                    _ => String::new(),
                };
                let name = unique_name_with(&self.host, &extra);
                let (file, temp) = if d.o_tmpfile {
                    (open_tmpfile(&d.tmp)?, None)
                } else {
                    // Names a later run (holding the lock) knows as its own.
                    let tname = if d.eml {
                        format!(".pop3-tmp-{name}")
                    } else {
                        format!("{name}{MAILDIR_TMP_SUFFIX}")
                    };
                    let p = d.tmp_path.join(tname);
                    (create_private(&p)?, Some(TempName(Some(p))))
                };
                self.current = Some(Current {
                    file,
                    temp,
                    name,
                    key,
                    written: 0,
                });
            }
        }
        Ok(())
    }

    /// A piece of the current message.
    pub fn data(&mut self, chunk: &[u8]) -> io::Result<()> {
        if let Kind::Mbox(m) = &mut self.kind {
            if let Some(h) = m.header.as_mut() {
                h.extend_from_slice(chunk);
                if header_complete(h) || h.len() >= MAX_HEADER {
                    self.emit_mbox_header();
                }
                return self.maybe_flush();
            }
        }
        self.transform.push(chunk, &mut self.buf);
        self.maybe_flush()
    }

    fn emit_mbox_header(&mut self) {
        if let Kind::Mbox(m) = &mut self.kind {
            if let Some(h) = m.header.take() {
                let secs = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let nl: &[u8] = if self.endings == LineEndings::Crlf {
                    b"\r\n"
                } else {
                    b"\n"
                };
                self.buf.extend_from_slice(
                    format!("From {} {}", envelope_sender(&h), asctime(secs)).as_bytes(),
                );
                self.buf.extend_from_slice(nl);
                self.transform.push(&h, &mut self.buf);
            }
        }
    }

    fn maybe_flush(&mut self) -> io::Result<()> {
        if self.buf.len() >= BUF {
            match &self.kind {
                Kind::Mbox(_) => self.flush_mbox()?,
                Kind::Dir(_) => self.flush_current()?,
            }
        }
        Ok(())
    }

    fn flush_mbox(&mut self) -> io::Result<()> {
        if let Kind::Mbox(m) = &mut self.kind {
            if !self.buf.is_empty() {
                (&m.file).write_all(&self.buf)?;
                m.file_len += self.buf.len() as u64;
                self.buf.clear();
            }
        }
        Ok(())
    }

    fn flush_current(&mut self) -> io::Result<()> {
        if let Some(c) = self.current.as_mut() {
            if !self.buf.is_empty() {
                (&c.file).write_all(&self.buf)?;
                c.written += self.buf.len() as u64;
                self.buf.clear();
            }
        }
        Ok(())
    }

    /// The current message is complete: put it in place (Maildir and
    /// `.eml`: its data is synced and it is linked into place; mbox: it is
    /// appended, made durable by [`Store::sync`]). Returns where it is.
    pub fn end(&mut self) -> io::Result<PathBuf> {
        if let Kind::Mbox(_) = &self.kind {
            self.emit_mbox_header();
            self.transform.finish(&mut self.buf);
            let nl: &[u8] = if self.endings == LineEndings::Crlf {
                b"\r\n"
            } else {
                b"\n"
            };
            if self.transform.last_byte() != Some(b'\n') {
                self.buf.extend_from_slice(nl);
            }
            self.buf.extend_from_slice(nl);
            self.maybe_flush()?;
            self.unsynced = true;
            let Kind::Mbox(m) = &mut self.kind else {
                unreachable!()
            };
            m.in_message = false;
            return Ok(m.path.clone());
        }
        self.transform.finish(&mut self.buf);
        self.flush_current()?;
        let mut cur = self
            .current
            .take()
            .ok_or_else(|| io::Error::other("message end before its start"))?;
        let Kind::Dir(d) = &self.kind else {
            unreachable!()
        };
        let placed = if d.eml {
            place_eml(d, &mut cur)?
        } else {
            let name = format!("{},S={}", cur.name, cur.written);
            let target = d.target_path.join(&name);
            link_into(d, &mut cur, &name)?;
            target
        };
        self.unsynced = true;
        self.placed_unsynced += 1;
        match self.dir_sync {
            DirSync::Files => {
                self.to_sync.push(cur.file);
                if self.to_sync.len() >= MAX_UNSYNCED_FILES {
                    self.sync_files()?;
                }
            }
            // Kept for a small group's per-file syncs; a large one gets one
            // syncfs.
            DirSync::Filesystem if self.placed_unsynced < SYNCFS_MIN_FILES => {
                self.to_sync.push(cur.file)
            }
            DirSync::Filesystem => self.to_sync.clear(),
        }
        Ok(placed)
    }

    /// Drops the current message (a refusal, a failure, an oversize body):
    /// a partial mbox append is cut off.
    pub fn abort(&mut self) -> io::Result<()> {
        self.current = None;
        self.transform.reset();
        if let Kind::Mbox(m) = &mut self.kind {
            m.header = None;
            if std::mem::take(&mut m.in_message) {
                let keep = m.msg_start;
                if keep >= m.file_len {
                    self.buf.truncate((keep - m.file_len) as usize);
                } else {
                    self.buf.clear();
                    m.file.set_len(keep)?;
                    m.file_len = keep;
                }
            }
        } else {
            self.buf.clear();
        }
        Ok(())
    }

    /// Makes everything placed since the last call durable.
    pub fn sync(&mut self) -> io::Result<()> {
        if !self.unsynced {
            return Ok(());
        }
        self.flush_mbox()?;
        match &mut self.kind {
            Kind::Mbox(m) => {
                m.file.sync_data()?;
                if m.created && !m.dir_synced {
                    sync_dir(&parent_of(&m.path))?;
                    m.dir_synced = true;
                }
            }
            Kind::Dir(_) => {
                let whole_fs = self.dir_sync == DirSync::Filesystem
                    && self.placed_unsynced >= SYNCFS_MIN_FILES;
                if whole_fs {
                    let Kind::Dir(d) = &self.kind else {
                        unreachable!()
                    };
                    // Data and directory entries of the whole group.
                    rustix::fs::syncfs(&d.target)?;
                    self.to_sync.clear();
                } else {
                    self.sync_files()?;
                    let Kind::Dir(d) = &self.kind else {
                        unreachable!()
                    };
                    d.target.sync_all()?;
                }
                self.placed_unsynced = 0;
            }
        }
        self.unsynced = false;
        Ok(())
    }

    /// `fdatasync` of the files placed since the last call.
    fn sync_files(&mut self) -> io::Result<()> {
        for f in &self.to_sync {
            f.sync_data()?;
        }
        self.to_sync.clear();
        Ok(())
    }

    /// Resolves the intent of a run that stopped: an mbox group that was
    /// never recorded is cut off (its messages are still on the server);
    /// Maildir messages of the group are looked for by their hash.
    pub fn recover(&mut self, intent: &Intent) -> io::Result<Recovery> {
        let mut r = Recovery::default();
        match &mut self.kind {
            Kind::Mbox(m) => {
                let Some(off) = intent.offset else {
                    return Ok(r);
                };
                if m.file_len <= off {
                    return Ok(r);
                }
                let starts = count_from_lines(&m.file, off, m.file_len)?;
                if starts > intent.count {
                    r.warning = Some(format!(
                        "{} was written by another program after an interrupted fetch; \
                         it is left as it is, so some messages may be stored twice",
                        m.path.display()
                    ));
                    return Ok(r);
                }
                r.truncated = m.file_len - off;
                m.file.set_len(off)?;
                m.file.sync_data()?;
                m.file_len = off;
                m.sep = separator_needed(&m.file, off)?;
            }
            Kind::Dir(d) if !d.eml => {
                let wanted: HashSet<String> = intent
                    .uids
                    .iter()
                    .map(|u| uid_hash(&intent.account, u))
                    .collect();
                let mut found = HashSet::new();
                for sub in ["new", "cur"] {
                    let Ok(rd) = fs::read_dir(d.path.join(sub)) else {
                        continue;
                    };
                    for e in rd.flatten() {
                        let name = e.file_name();
                        let name = name.to_string_lossy();
                        let Some(h) = our_hash(&name).filter(|h| wanted.contains(*h)) else {
                            continue;
                        };
                        // Complete only: the size in the name is the size
                        // written (a power cut before the sync may leave a
                        // short file).
                        let size_ok = our_size(&name)
                            .is_some_and(|sz| e.metadata().is_ok_and(|m| m.len() == sz));
                        if size_ok {
                            found.insert(h.to_string());
                        }
                    }
                }
                for u in &intent.uids {
                    if found.contains(&uid_hash(&intent.account, u)) {
                        r.recognised.push(u.clone());
                    }
                }
            }
            // `.eml`: a re-fetched message finds its identical file.
            Kind::Dir(_) => {}
        }
        Ok(r)
    }
}

/// The hash in a Maildir name this program gave (`...U<32 hex>.host...`).
fn our_hash(name: &str) -> Option<&str> {
    name.match_indices('U').find_map(|(i, _)| {
        let h = name.get(i + 1..i + 33)?;
        let after = name.get(i + 33..i + 34)?;
        (after == "." && h.bytes().all(|b| b.is_ascii_hexdigit())).then_some(h)
    })
}

/// The `,S=size` of a Maildir name (before any `:2,` flags).
fn our_size(name: &str) -> Option<u64> {
    let base = name.split(':').next()?;
    let i = base.rfind(",S=")?;
    base[i + 3..].split(',').next()?.parse().ok()
}

fn open_mbox(path: &Path, host: &str, deadline: Instant) -> Result<Mbox, LockError> {
    let err = ctx(path);
    private_dir_all(&parent_of(path)).map_err(ctx(&parent_of(path)))?;
    let (file, created) = open_regular_append(path).map_err(&err)?;
    fcntl_exclusive(&file, path, deadline)?;
    let dotlock = DotLock::acquire(path, host, deadline)?;
    // Temporary copies of earlier versions of pop3 (we hold the lock).
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{base}.pop3-tmp-");
    clean_own_temps(&parent_of(path), |n| n.starts_with(&prefix));
    let file_len = file.metadata().map_err(&err)?.len();
    let sep = separator_needed(&file, file_len).map_err(&err)?;
    Ok(Mbox {
        path: path.to_path_buf(),
        file,
        _dotlock: dotlock,
        file_len,
        created,
        dir_synced: !created,
        sep,
        msg_start: file_len,
        in_message: false,
        header: None,
    })
}

/// What must precede a `From ` line appended at `len` (an empty line ends
/// the previous message).
fn separator_needed(f: &File, len: u64) -> io::Result<&'static [u8]> {
    if len == 0 {
        return Ok(b"");
    }
    let mut last = [0u8; 2];
    let n = len.min(2) as usize;
    f.read_exact_at(&mut last[..n], len - n as u64)?;
    Ok(match &last[..n] {
        [b'\n', b'\n'] => b"",
        [.., b'\n'] if len == 1 => b"",
        [.., b'\n'] => b"\n",
        _ => b"\n\n",
    })
}

/// `From ` line starts in `[from, to)` of an mbox.
fn count_from_lines(f: &File, from: u64, to: u64) -> io::Result<u64> {
    let mut count = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    let mut pos = from;
    // Whether the byte before `pos` was a newline (the region starts at a
    // message boundary).
    let mut bol = true;
    let mut partial: Vec<u8> = Vec::new();
    while pos < to {
        let n = ((to - pos) as usize).min(buf.len());
        f.read_exact_at(&mut buf[..n], pos)?;
        for &b in &buf[..n] {
            if bol || !partial.is_empty() {
                partial.push(b);
                if b"From ".starts_with(&partial) {
                    if partial.len() == 5 {
                        count += 1;
                        partial.clear();
                    }
                } else {
                    partial.clear();
                }
            }
            bol = b == b'\n';
        }
        pos += n as u64;
    }
    Ok(count)
}

fn open_dir(
    path: &Path,
    tmp_path: PathBuf,
    target_path: PathBuf,
    lock: FileLock,
    eml: bool,
) -> Result<Kind, LockError> {
    let tmp = File::open(&tmp_path).map_err(ctx(&tmp_path))?;
    let target = File::open(&target_path).map_err(ctx(&target_path))?;
    let o_tmpfile = probe_o_tmpfile(&tmp, &tmp_path);
    Ok(Kind::Dir(Dir {
        path: path.to_path_buf(),
        tmp,
        tmp_path,
        target,
        target_path,
        o_tmpfile,
        _lock: lock,
        eml,
    }))
}

fn open_tmpfile(dir: &File) -> io::Result<File> {
    let fd = rustix::fs::openat(
        dir,
        ".",
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    // Mode 0600 minus the umask: never readable by others, whatever the
    // umask (no fchmod per message: it would only add an inode update).
    Ok(File::from(fd))
}

/// Links an `O_TMPFILE` file into `dir` as `name` (through
/// `/proc/self/fd`, which needs no privilege).
fn linkat_tmpfile(file: &File, dir: &File, name: &str) -> io::Result<()> {
    rustix::fs::linkat(
        CWD,
        format!("/proc/self/fd/{}", file.as_raw_fd()),
        dir,
        name,
        AtFlags::SYMLINK_FOLLOW,
    )?;
    Ok(())
}

/// Set (to anything) to never use `O_TMPFILE`: the named-temporary-file
/// path of file systems without it, for tests.
pub const NO_O_TMPFILE_ENV: &str = "POP3_NO_O_TMPFILE";

/// Whether anonymous temporary files can be made and linked here.
fn probe_o_tmpfile(dir: &File, dir_path: &Path) -> bool {
    if std::env::var_os(NO_O_TMPFILE_ENV).is_some() {
        return false;
    }
    let Ok(f) = open_tmpfile(dir) else {
        return false;
    };
    let name = format!(".pop3-probe-{}", std::process::id());
    let ok = linkat_tmpfile(&f, dir, &name).is_ok();
    let _ = fs::remove_file(dir_path.join(&name));
    ok
}

/// Puts the current message at `name` in the target directory; fails with
/// `AlreadyExists` instead of replacing anything.
fn link_into(d: &Dir, cur: &mut Current, name: &str) -> io::Result<()> {
    if d.o_tmpfile {
        return linkat_tmpfile(&cur.file, &d.target, name);
    }
    let Some(temp) = cur.temp.take() else {
        return Err(io::Error::other("no temporary file"));
    };
    let result = if d.eml {
        // A hard link never replaces an existing file.
        fs::hard_link(temp.path(), d.target_path.join(name))
            .and_then(|()| fs::remove_file(temp.path()))
    } else {
        // Maildir names are unique: rename out of tmp/.
        fs::rename(temp.path(), d.target_path.join(name))
    };
    match result {
        Ok(()) => {
            temp.disarm();
            Ok(())
        }
        Err(e) => {
            // Still there (for example a name taken): keep it for retries.
            cur.temp = Some(temp);
            Err(e)
        }
    }
}

/// `UID.eml` (or `UID.2.eml`, ...): never replacing a different file, and
/// not storing the very same bytes twice.
fn place_eml(d: &Dir, cur: &mut Current) -> io::Result<PathBuf> {
    let stem = match &cur.key {
        Some(k) => k.stem.clone(),
        None => cur.name.clone(),
    };
    for i in 1u32..10_000 {
        let name = if i == 1 {
            format!("{stem}.eml")
        } else {
            format!("{stem}.{i}.eml")
        };
        let target = d.target_path.join(&name);
        match link_into(d, cur, &name) {
            Ok(()) => return Ok(target),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if same_contents(&target, &cur.file, cur.written)? {
                    return Ok(target);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("no free file name"))
}

/// Whether `path` holds the `len` bytes of `file`, compared in pieces
/// (constant memory).
fn same_contents(path: &Path, file: &File, len: u64) -> io::Result<bool> {
    let other = match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() && m.len() == len => File::open(path)?,
        Ok(_) => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut a = vec![0u8; 64 * 1024];
    let mut b = vec![0u8; 64 * 1024];
    let mut pos = 0u64;
    while pos < len {
        let n = ((len - pos) as usize).min(a.len());
        file.read_exact_at(&mut a[..n], pos)?;
        other.read_exact_at(&mut b[..n], pos)?;
        if a[..n] != b[..n] {
            return Ok(false);
        }
        pos += n as u64;
    }
    Ok(true)
}

/// Removes files in `dir` whose names match (temporary files of runs that
/// died; the caller holds the destination lock).
fn clean_own_temps(dir: &Path, matches: impl Fn(&str) -> bool) {
    let Ok(rd) = fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        if matches(&name.to_string_lossy()) && e.file_type().is_ok_and(|t| t.is_file()) {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// The suffix of this program's named temporary files in Maildir `tmp/`.
const MAILDIR_TMP_SUFFIX: &str = ".pop3-tmp";

/// Maildir `tmp/`: files older than 36 hours are removed (the Maildir
/// convention), and this program's own temporary and probe files at once
/// (the caller holds the destination lock, so their runs are gone).
fn clean_maildir_tmp(tmp: &Path) {
    let Ok(rd) = fs::read_dir(tmp) else {
        return;
    };
    let now = SystemTime::now();
    for e in rd.flatten() {
        let Ok(meta) = e.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let name = e.file_name();
        let name = name.to_string_lossy();
        let probe = name.starts_with(".pop3-probe-") || name.ends_with(MAILDIR_TMP_SUFFIX);
        let old = meta
            .modified()
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > TMP_STALE);
        if probe || old {
            let _ = fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(2)
    }

    fn store_one(store: &mut Store, key: Option<MsgKey>, msg: &[u8]) -> PathBuf {
        store.begin(key).unwrap();
        for c in msg.chunks(7) {
            store.data(c).unwrap();
        }
        store.end().unwrap()
    }

    #[test]
    fn mbox_append_abort_and_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/mbox");
        let mut s = Store::open(&Dest::Mbox(path.clone()), LineEndings::Lf, far()).unwrap();
        store_one(
            &mut s,
            None,
            b"Return-Path: <bob@example.org>\r\nSubject: a\r\n\r\nFrom me\r\n",
        );
        s.begin(None).unwrap();
        s.data(b"Subject: partial\r\n\r\nxx").unwrap();
        s.abort().unwrap();
        s.sync().unwrap();
        let good = fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&good);
        assert!(text.starts_with("From bob@example.org "), "{text}");
        assert!(text.ends_with("Subject: a\n\n>From me\n\n"), "{text}");
        let off = s.offset().unwrap();
        assert_eq!(off, good.len() as u64);
        // A torn group after `off`: cut off by recovery.
        store_one(&mut s, None, b"Subject: b\r\n\r\nbody\r\n");
        s.begin(None).unwrap();
        s.data(&vec![b'y'; 300 * 1024]).unwrap();
        drop(s);
        let intent = Intent {
            account: String::from("a@h:1"),
            offset: Some(off),
            count: 2,
            uids: vec![],
        };
        let mut s = Store::open(&Dest::Mbox(path.clone()), LineEndings::Lf, far()).unwrap();
        let r = s.recover(&intent).unwrap();
        assert!(r.truncated > 0);
        assert_eq!(fs::read(&path).unwrap(), good);
        // Permissions: 0600 file, 0700 new directory.
        use std::os::unix::fs::MetadataExt;
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777,
            0o700
        );
        // The dotlock is there while the store is open.
        assert!(DotLock::path_for(&path).exists());
        drop(s);
        assert!(!DotLock::path_for(&path).exists());
    }

    #[test]
    fn maildir_recognises_moved_and_flagged_messages() {
        let dir = tempfile::tempdir().unwrap();
        let md = dir.path().join("md");
        let mut s = Store::open(&Dest::Maildir(md.clone()), LineEndings::Lf, far()).unwrap();
        let key = MsgKey::for_uid("a@h:1", b"u1");
        let p = store_one(&mut s, Some(key), b"Subject: x\r\n\r\nhi\r\n");
        s.sync().unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"Subject: x\n\nhi\n");
        // A mail reader moves it to cur/ with flags.
        let cur = md
            .join("cur")
            .join(format!("{}:2,S", p.file_name().unwrap().to_string_lossy()));
        fs::rename(&p, &cur).unwrap();
        let intent = Intent {
            account: String::from("a@h:1"),
            offset: None,
            count: 2,
            uids: vec![String::from("u1"), String::from("u2")],
        };
        let r = s.recover(&intent).unwrap();
        assert_eq!(r.recognised, ["u1"]);
        // A short file (a power cut before the sync) is not taken as stored.
        let full = fs::read(&cur).unwrap();
        fs::write(&cur, &full[..full.len() - 1]).unwrap();
        assert!(s.recover(&intent).unwrap().recognised.is_empty());
        fs::write(&cur, &full).unwrap();
        assert_eq!(our_size("1.M2P3Q4U0.h,S=17:2,S"), Some(17));
        assert_eq!(our_hash("1.M2P3Q4U0.h,S=17:2,S"), None);
        // Another account's same UID is not recognised.
        let other = Intent {
            account: String::from("a@h:2"),
            ..intent
        };
        assert!(s.recover(&other).unwrap().recognised.is_empty());
    }

    #[test]
    fn eml_compares_streaming_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("eml");
        let mut s = Store::open(&Dest::Eml(d.clone()), LineEndings::Keep, far()).unwrap();
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let k = || Some(MsgKey::for_uid("a@h:1", b"x/y"));
        let p1 = store_one(&mut s, k(), &big);
        let p2 = store_one(&mut s, k(), &big);
        assert_eq!(p1, p2, "same bytes: not stored twice");
        assert_eq!(p1.file_name().unwrap(), "x%2Fy.eml");
        let p3 = store_one(&mut s, k(), b"different");
        assert_eq!(p3.file_name().unwrap(), "x%2Fy.2.eml");
        assert_eq!(fs::read(&p1).unwrap(), big);
        s.sync().unwrap();
    }
}

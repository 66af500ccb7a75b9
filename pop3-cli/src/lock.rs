//! Locks for a fetch: an `fcntl` lock plus a dotlock (`FILE.lock`,
//! created `O_EXCL`) on an mbox, as procmail and mutt do; an `fcntl` lock
//! on a lock file inside a Maildir or `.eml` directory; an `fcntl` lock on
//! the state file. A lock held by someone else is waited for until a
//! deadline, then reported as [`LockError::Busy`].

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use rustix::fs::{fcntl_lock, FlockOperation};
use rustix::io::Errno;

use crate::durable::private_options;

/// Why a lock was not taken.
#[derive(Debug)]
pub enum LockError {
    /// Another process held it for the whole wait.
    Busy(PathBuf),
    /// The lock could not be created or taken.
    Io(PathBuf, io::Error),
}

const POLL: Duration = Duration::from_millis(25);

/// procmail's default `LOCKTIMEOUT`: a dotlock older than this is stale.
pub const DOTLOCK_STALE: Duration = Duration::from_secs(1024);

/// Takes an exclusive whole-file `fcntl` lock on `file`, retrying until
/// `deadline`. Note that POSIX locks belong to the process and are released
/// when *any* descriptor of the file is closed: keep one descriptor per
/// locked file.
pub fn fcntl_exclusive(file: &File, path: &Path, deadline: Instant) -> Result<(), LockError> {
    loop {
        match fcntl_lock(file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(()),
            Err(e) if e == Errno::AGAIN || e == Errno::ACCESS => {
                if Instant::now() >= deadline {
                    return Err(LockError::Busy(path.to_path_buf()));
                }
                std::thread::sleep(POLL);
            }
            Err(e) => return Err(LockError::Io(path.to_path_buf(), e.into())),
        }
    }
}

/// A lock file (created 0600 if missing), `fcntl`-locked while this value
/// lives. The file stays: a lock dies with its process, so it is never
/// stale.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Locks `path`, waiting until `deadline`.
    pub fn acquire(path: &Path, deadline: Instant) -> Result<FileLock, LockError> {
        let io = |e| LockError::Io(path.to_path_buf(), e);
        if let Ok(m) = fs::symlink_metadata(path) {
            if !m.file_type().is_file() {
                return Err(io(io::Error::other("not a regular file")));
            }
        }
        let file = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        // 0600 whatever the umask; best effort (it may be another user's).
        let _ = file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600));
        fcntl_exclusive(&file, path, deadline)?;
        Ok(FileLock { _file: file })
    }
}

/// A dotlock `FILE.lock`, removed when dropped.
#[derive(Debug)]
pub struct DotLock {
    path: PathBuf,
}

impl DotLock {
    /// The dotlock path of `target`.
    pub fn path_for(target: &Path) -> PathBuf {
        let mut p = target.as_os_str().to_owned();
        p.push(".lock");
        PathBuf::from(p)
    }

    /// Creates `target.lock` with `O_EXCL`, waiting until `deadline`. A
    /// lock left by a dead process of this host (its PID is in the file)
    /// or older than [`DOTLOCK_STALE`] is removed, as procmail and mutt do.
    pub fn acquire(target: &Path, host: &str, deadline: Instant) -> Result<DotLock, LockError> {
        let path = DotLock::path_for(target);
        // The lock appears complete (with its PID) or not at all: written
        // to a private name first, then hard-linked (which never replaces
        // an existing lock), as procmail does.
        let tmp_name = |pid: u32| {
            let mut p = path.as_os_str().to_owned();
            p.push(format!(".pop3-{pid}"));
            PathBuf::from(p)
        };
        let tmp = tmp_name(std::process::id());
        remove_dead_temps(&path);
        loop {
            let _ = fs::remove_file(&tmp);
            let mut f = private_options()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(|e| LockError::Io(tmp.clone(), e))?;
            f.write_all(format!("{} {host}\n", std::process::id()).as_bytes())
                .map_err(|e| LockError::Io(tmp.clone(), e))?;
            drop(f);
            let linked = fs::hard_link(&tmp, &path);
            let _ = fs::remove_file(&tmp);
            match linked {
                Ok(()) => return Ok(DotLock { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if is_stale(&path, host) {
                        let _ = fs::remove_file(&path);
                        continue;
                    }
                    if Instant::now() >= deadline {
                        return Err(LockError::Busy(path));
                    }
                    std::thread::sleep(POLL);
                }
                Err(e) => return Err(LockError::Io(path, e)),
            }
        }
    }
}

impl Drop for DotLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Removes `LOCK.pop3-PID` files of processes that are gone (a run killed
/// while taking the lock).
fn remove_dead_temps(lock: &Path) {
    let Some(name) = lock.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let dir = crate::durable::parent_of(lock);
    let Ok(rd) = fs::read_dir(&dir) else { return };
    let prefix = format!("{name}.pop3-");
    for e in rd.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = n.strip_prefix(&prefix).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        let dead = rustix::process::Pid::from_raw(pid)
            .is_some_and(|p| rustix::process::test_kill_process(p) == Err(Errno::SRCH));
        if dead {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// Whether a dotlock is stale: written by a process of this host that is
/// gone, or not touched for [`DOTLOCK_STALE`].
fn is_stale(path: &Path, host: &str) -> bool {
    let Ok(f) = File::open(path) else {
        return false;
    };
    let old = f
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age > DOTLOCK_STALE);
    if old {
        return true;
    }
    let mut text = String::new();
    let _ = f.take(256).read_to_string(&mut text);
    let mut fields = text.split_whitespace();
    match (
        fields.next().and_then(|p| p.parse::<i32>().ok()),
        fields.next(),
    ) {
        (Some(pid), Some(h)) if h == host => match rustix::process::Pid::from_raw(pid) {
            Some(pid) => rustix::process::test_kill_process(pid) == Err(Errno::SRCH),
            None => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotlock_excludes_and_stale_ones_are_broken() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("mbox");
        let soon = || Instant::now() + Duration::from_millis(100);
        let a = DotLock::acquire(&mbox, "h", soon()).unwrap();
        assert!(matches!(
            DotLock::acquire(&mbox, "h", soon()),
            Err(LockError::Busy(_))
        ));
        drop(a);
        assert!(!DotLock::path_for(&mbox).exists());
        // A lock of a process that no longer exists (PID far beyond
        // pid_max) on this host is stale.
        fs::write(DotLock::path_for(&mbox), "2000000000 h\n").unwrap();
        let _b = DotLock::acquire(&mbox, "h", soon()).unwrap();
        // Another host's lock is not judged by PID.
        drop(_b);
        fs::write(DotLock::path_for(&mbox), "2000000000 other\n").unwrap();
        assert!(matches!(
            DotLock::acquire(&mbox, "h", soon()),
            Err(LockError::Busy(_))
        ));
    }
}

//! Crash-safe file writing helpers: temporary file, fsync, rename,
//! directory fsync; private (0600) files and 0700 directories whatever the
//! umask.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The host name as a Maildir name part (`/` and `:` escaped as Maildir
/// delivery agents do), read once per run by the caller.
pub fn hostname() -> String {
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

/// A name no other delivery uses (Maildir style:
/// `secs.MmicrosPpidQn{extra}.host`).
pub fn unique_name_with(host: &str, extra: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{}.M{}P{}Q{}{extra}.{host}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        n,
    )
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

/// Creates `dir` and its missing parents with mode 0700 (whatever the
/// umask), and `fsync`s the parent of each directory created.
pub fn private_dir_all(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        private_dir_all(parent)?;
    }
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
            sync_dir(&parent_of(dir))
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Options for a new private file: created 0600 (and `fchmod`ed to 0600
/// right after creation by [`create_private`]).
pub fn private_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(0o600);
    o
}

/// Creates `path` (must not exist) with mode 0600 whatever the umask.
pub fn create_private(path: &Path) -> io::Result<File> {
    let f = private_options().write(true).create_new(true).open(path)?;
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    Ok(f)
}

/// The error of [`open_regular_append`] for a path that is a FIFO, a
/// directory, a device...
#[derive(Debug)]
pub struct NotRegularFile;

impl std::fmt::Display for NotRegularFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a regular file")
    }
}

impl std::error::Error for NotRegularFile {}

/// Whether `e` is a [`NotRegularFile`] error.
pub fn is_not_regular(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<NotRegularFile>())
}

/// Opens a regular file for reading and appending, creating it with mode
/// 0600 (whatever the umask). A FIFO or other non-regular file is refused
/// ([`NotRegularFile`]) without blocking. Returns whether it was created.
pub fn open_regular_append(path: &Path) -> io::Result<(File, bool)> {
    let not_regular = || io::Error::other(NotRegularFile);
    let created = match fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_file() => return Err(not_regular()),
        Ok(_) => false,
        Err(e) if e.kind() == io::ErrorKind::NotFound => true,
        Err(e) => return Err(e),
    };
    // O_NONBLOCK: a FIFO swapped in meanwhile must not hang the open.
    let file = private_options()
        .read(true)
        .append(true)
        .create(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    if !file.metadata()?.file_type().is_file() {
        return Err(not_regular());
    }
    if created {
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    Ok((file, created))
}

/// A temporary file, removed when dropped unless committed.
pub struct TempFile {
    /// `None` once renamed into place.
    path: Option<PathBuf>,
    file: BufWriter<File>,
}

impl TempFile {
    /// Creates `dir/name` (must not exist), mode 0600.
    pub fn create(dir: &Path, name: &str) -> io::Result<TempFile> {
        let path = dir.join(name);
        let file = create_private(&path)?;
        Ok(TempFile {
            path: Some(path),
            file: BufWriter::with_capacity(64 * 1024, file),
        })
    }

    /// A temporary file in the directory of `target`
    /// (`.NAME.pop3-tmp-UNIQUE`).
    pub fn beside(target: &Path) -> io::Result<TempFile> {
        let base = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        TempFile::create(
            &parent_of(target),
            &format!(".{base}.pop3-tmp-{}", unique_name_with(&hostname(), "")),
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

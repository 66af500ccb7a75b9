//! Durable delivery (issue 12): crashes and I/O errors injected at every
//! file and socket system call, concurrent runs, servers whose UIDLs
//! overlap, broken state files, permissions, LF storage, mbox quoting, the
//! lock, reports.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use pop3_testkit::{Mailbox, Message};

const KINDS: [&str; 3] = ["maildir", "mbox", "eml-dir"];

fn fetch_args(kind: &str, dest: &Path) -> Vec<std::ffi::OsString> {
    vec!["fetch".into(), format!("--{kind}").into(), dest.into()]
}

fn small_mailbox() -> Mailbox {
    Mailbox::new()
        .with(
            "m-1",
            b"Return-Path: <carol@example.net>\r\nSubject: one\r\n\r\nFrom the start\r\nbody one\r\n"
                .to_vec(),
        )
        .with("m-2", b"Subject: two\r\n\r\n>From quoted\r\nbody two\r\n".to_vec())
        .with("m-3", b"Subject: three\r\n\r\nbody three\r\n".to_vec())
}

/// strace is needed for the injection tests; CI (where Dovecot is
/// required) must have it.
fn strace() -> bool {
    let ok = Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            !pop3_dovecot::dovecot_required(),
            "strace is required in CI (POP3_REQUIRE_DOVECOT=1)"
        );
        eprintln!("strace not installed: injection test skipped");
    }
    ok
}

/// `cmd` run under strace with `strace_args` before the program.
fn under_strace(cmd: &Command, strace_args: &[String]) -> Command {
    let mut s = Command::new("strace");
    s.args(["-f", "-qq", "-o", "/dev/null"]).args(strace_args);
    s.arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => s.env(k, v),
            None => s.env_remove(k),
        };
    }
    s.stdin(Stdio::null());
    s
}

/// How often each file and socket system call happens in one fetch.
fn syscall_counts(cmd: &Command, trace: &Path) -> BTreeMap<String, usize> {
    let r = run(&mut under_strace(
        cmd,
        &[
            String::from("-e"),
            String::from("trace=%file,%desc,%network"),
            String::from("-o"),
            trace.display().to_string(),
        ],
    ));
    assert_eq!(r.code, 0, "traced run: {r:?}");
    let mut counts = BTreeMap::new();
    for line in std::fs::read_to_string(trace).unwrap().lines() {
        // "PID name(args..." or "PID <... name resumed>"
        let rest = line.split_once(' ').map_or(line, |(_, r)| r).trim_start();
        if rest.starts_with("<...") || rest.starts_with("+++") || rest.starts_with("---") {
            continue;
        }
        if let Some((name, _)) = rest.split_once('(') {
            *counts.entry(name.to_string()).or_default() += 1;
        }
    }
    counts
}

/// Occurrences to inject at: every one of the syscalls that change files
/// or talk to the server, at most `cap` per syscall (spread evenly).
fn injection_points(
    counts: &BTreeMap<String, usize>,
    names: &[&str],
    cap: usize,
) -> Vec<(String, usize)> {
    let mut v = Vec::new();
    for name in names {
        let n = counts.get(*name).copied().unwrap_or(0);
        if n == 0 {
            continue;
        }
        let step = n.div_ceil(cap).max(1);
        let mut k = 1;
        while k <= n {
            v.push((name.to_string(), k));
            k += step;
        }
        if (n - 1) % step != 0 {
            v.push((name.to_string(), n));
        }
    }
    v
}

/// After a disturbed run: nothing doubled, nothing lost. Then a clean run
/// stores each message exactly once and empties the server.
fn check_then_rerun(tk: &Tk, kind: &str, dest: &Path, mb: &Mailbox, label: &str, first: &Run) {
    assert!(tk.server.wait_idle(Duration::from_secs(10)), "{label}");
    // A killed run may leave a file in Maildir tmp/ (the next run removes
    // it): look at new/ and cur/ only.
    let stored = multiset(match kind {
        "maildir" => [dest.join("new"), dest.join("cur")]
            .iter()
            .filter(|d| d.is_dir())
            .flat_map(|d| std::fs::read_dir(d).unwrap())
            .map(|e| lf_to_crlf(&std::fs::read(e.unwrap().path()).unwrap()))
            .collect(),
        _ => read_dest(kind, dest),
    });
    assert!(
        stored.values().all(|&n| n == 1),
        "{kind} {label}: duplicates after the disturbed run: {first:?}"
    );
    let left = tk.server.mailbox();
    for m in mb.messages() {
        assert!(
            left.get(m.uid()).is_some() || stored.contains_key(&received(m.data())),
            "{kind} {label}: {} lost: {first:?}",
            m.uid()
        );
    }
    let r = run(tk.cmd().args(fetch_args(kind, dest)).arg("--delete"));
    assert_eq!(r.code, 0, "{kind} {label}: re-run: {r:?}\nfirst: {first:?}");
    assert_eq!(
        multiset(read_dest(kind, dest)),
        expected(mb),
        "{kind} {label}: each message exactly once\nfirst: {first:?}\nre-run: {r:?}"
    );
    assert!(tk.server.wait_idle(Duration::from_secs(10)));
    assert!(
        tk.server.mailbox().is_empty(),
        "{kind} {label}: server emptied"
    );
}

/// The syscalls that write, sync, link, rename or truncate.
#[rustfmt::skip]
const WRITE_SYNC_RENAME: &[&str] = &[
    "write", "pwrite64", "fdatasync", "fsync", "syncfs", "linkat", "rename", "renameat",
    "renameat2", "ftruncate",
];

/// With [`WRITE_SYNC_RENAME`]: the syscalls that change files or talk to
/// the server.
#[rustfmt::skip]
const OTHER_FILE_AND_SOCKET: &[&str] = &[
    "openat", "unlink", "unlinkat", "fcntl", "read", "pread64", "sendto", "recvfrom", "close",
];

/// For each destination kind: a small `fetch --delete` with each of
/// `faults` (strace `inject=` actions) injected at each occurrence of each
/// of `syscalls` (at most `cap` per syscall), each followed by
/// [`check_then_rerun`]. Returns the exit codes of the disturbed runs.
fn inject_everywhere(syscalls: &[&str], cap: usize, faults: &[&str]) -> Vec<i32> {
    inject_everywhere_with(&small_mailbox(), syscalls, cap, faults, &[])
}

/// [`inject_everywhere`] with environment variables for the disturbed CLI.
fn inject_everywhere_with(
    mb: &Mailbox,
    syscalls: &[&str],
    cap: usize,
    faults: &[&str],
    envs: &[(&str, &str)],
) -> Vec<i32> {
    let mut codes = Vec::new();
    let command = |tk: &Tk, kind: &str, dest: &Path| {
        let mut cmd = tk.cmd();
        cmd.args(fetch_args(kind, dest))
            .arg("--delete")
            .envs(envs.iter().copied());
        cmd
    };
    for kind in KINDS {
        let probe = start(stls(mb.clone()));
        let cmd = command(&probe, kind, &probe.path("dest"));
        let counts = syscall_counts(&cmd, &probe.path("trace"));
        for (name, n) in injection_points(&counts, syscalls, cap) {
            for fault in faults {
                let tk = start(stls(mb.clone()));
                let dest = tk.path("dest");
                let cmd = command(&tk, kind, &dest);
                let inject = format!("inject={name}:{fault}:when={n}");
                let r = run(&mut under_strace(
                    &cmd,
                    &[String::from("-e"), inject.clone()],
                ));
                assert_ne!(r.code, 101, "{inject}: panicked: {r:?}");
                check_then_rerun(&tk, kind, &dest, mb, &inject, &r);
                codes.push(r.code);
            }
        }
    }
    codes
}

/// SIGKILL at each occurrence of each file and socket system call of a
/// small `fetch --delete` (capped per syscall), then a clean re-run.
#[test]
fn killed_at_every_syscall_nothing_lost_or_doubled() {
    if !strace() {
        return;
    }
    let started = Instant::now();
    let syscalls: Vec<&str> = WRITE_SYNC_RENAME
        .iter()
        .chain(OTHER_FILE_AND_SOCKET)
        .copied()
        .collect();
    let codes = inject_everywhere(&syscalls, 25, &["signal=KILL"]);
    // Killed: no exit code (strace re-raises the signal).
    let killed = codes.iter().filter(|&&c| c == -1).count();
    eprintln!(
        "{} runs, {killed} killed, in {:?}",
        codes.len(),
        started.elapsed()
    );
    assert!(
        codes.len() > 150,
        "too few injection points: {}",
        codes.len()
    );
    assert!(
        killed * 10 >= codes.len() * 9,
        "the injection must really kill: {killed} of {}",
        codes.len()
    );
}

/// ENOSPC or EIO at each write, sync, link, rename and truncate.
#[test]
fn io_errors_at_every_write_sync_and_rename_nothing_lost_or_doubled() {
    if !strace() {
        return;
    }
    let codes = inject_everywhere(WRITE_SYNC_RENAME, 10, &["error=ENOSPC", "error=EIO"]);
    let failed = codes.iter().filter(|&&c| c != 0).count();
    eprintln!(
        "{} runs with an injected error, {failed} of them failed",
        codes.len()
    );
    assert!(
        codes.len() > 60,
        "too few injection points: {}",
        codes.len()
    );
    // Errors on stderr writes are ignored; the others fail the run.
    assert!(
        failed * 2 >= codes.len(),
        "the injection must really fail runs: {failed} of {}",
        codes.len()
    );
}

/// Without `O_TMPFILE` (named files in Maildir `tmp/`, `.pop3-tmp-*` in an
/// `.eml` directory, renamed or linked into place) and with per-file
/// `fdatasync` instead of `syncfs`: kills and errors at the writes, syncs,
/// links and renames, then a clean re-run.
#[test]
fn without_o_tmpfile_kills_and_errors_lose_nothing() {
    if !strace() {
        return;
    }
    let env = [
        (pop3_cli::store::NO_O_TMPFILE_ENV, "1"),
        (pop3_cli::store::DIR_SYNC_ENV, "files"),
    ];
    let codes = inject_everywhere_with(
        &small_mailbox(),
        &[
            "write",
            "fdatasync",
            "fsync",
            "linkat",
            "rename",
            "renameat",
            "renameat2",
            "unlink",
            "unlinkat",
        ],
        6,
        &["signal=KILL", "error=EIO"],
        &env,
    );
    assert!(
        codes.len() > 20,
        "too few injection points: {}",
        codes.len()
    );
    // A plain run leaves nothing behind in tmp/ (read_dest checks it).
    let mb = small_mailbox();
    let tk = start(stls(mb.clone()));
    for kind in ["maildir", "eml-dir"] {
        let dest = tk.path(kind);
        let r = run(tk.cmd().args(fetch_args(kind, &dest)).envs(env));
        assert_eq!(r.code, 0, "{r:?}");
        assert_eq!(multiset(read_dest(kind, &dest)), expected(&mb), "{kind}");
        if kind == "eml-dir" {
            let temps = std::fs::read_dir(&dest)
                .unwrap()
                .filter(|e| {
                    let name = e.as_ref().unwrap().file_name();
                    name.to_string_lossy().starts_with(".pop3-tmp-")
                })
                .count();
            assert_eq!(temps, 0, "no temporary file left");
        }
    }
}

/// A group large enough for one `syncfs` (Maildir and .eml): killed or
/// failed at it and around it, then a clean re-run.
#[test]
fn syncfs_groups_kills_and_errors_lose_nothing() {
    if !strace() {
        return;
    }
    let mut mb = small_mailbox();
    for i in 0..20 {
        mb.push(Message::new(
            format!("g-{i}"),
            format!("Subject: group {i}\r\n\r\nbody {i}\r\n").into_bytes(),
        ));
    }
    let codes = inject_everywhere_with(
        &mb,
        &["syncfs", "linkat", "fdatasync"],
        4,
        &["signal=KILL", "error=EIO"],
        &[],
    );
    assert!(
        codes.len() >= 20,
        "too few injection points: {}",
        codes.len()
    );
    assert!(codes.iter().filter(|&&c| c != 0).count() * 2 >= codes.len());
}

/// Two runs at once into one destination: the second waits for the first,
/// then finds everything stored.
#[test]
fn two_concurrent_runs_per_destination_kind() {
    let mut mb = Mailbox::sample();
    for i in 0..40 {
        mb.push(Message::new(
            format!("bulk-{i}"),
            format!("Subject: bulk {i}\r\n\r\n{}\r\n", "line\r\n".repeat(200)).into_bytes(),
        ));
    }
    for kind in KINDS {
        let tk = start(stls(mb.clone()));
        let dest = tk.path("dest");
        let spawn = || {
            tk.cmd()
                .args(fetch_args(kind, &dest))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        for child in [a, b] {
            let o = child.wait_with_output().unwrap();
            assert_eq!(
                o.status.code(),
                Some(0),
                "{kind}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        assert_eq!(multiset(read_dest(kind, &dest)), expected(&mb), "{kind}");
    }
}

/// A lock held for the whole --lock-timeout: exit 9, "another fetch is
/// running", nothing fetched.
#[test]
fn a_held_lock_is_waited_for_then_reported() {
    let mb = small_mailbox();
    for kind in KINDS {
        let tk = start(stls(mb.clone()));
        let dest = tk.path("dest");
        // Create the destination first.
        let r = run(tk.cmd().args(fetch_args(kind, &dest)));
        assert_eq!(r.code, 0, "{r:?}");
        let lock_path = match kind {
            "mbox" => dest.with_file_name("dest.lock"),
            _ => dest.join(".pop3-lock"),
        };
        // The mbox dotlock of a live process (this one) on this host, or an
        // fcntl lock held by this process.
        let _held = if kind == "mbox" {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
            let host = host.trim();
            std::fs::write(&lock_path, format!("{} {host}\n", std::process::id())).unwrap();
            None
        } else {
            Some(
                pop3_cli::lock::FileLock::acquire(
                    &lock_path,
                    Instant::now() + Duration::from_secs(1),
                )
                .unwrap(),
            )
        };
        tk.server
            .add_message(Message::new("new", b"Subject: new\r\n\r\nx\r\n".to_vec()));
        let t = Instant::now();
        let r = run(tk
            .cmd()
            .args(fetch_args(kind, &dest))
            .args(["--lock-timeout", "1"]));
        assert_eq!(r.code, 9, "{kind}: {r:?}");
        assert!(r.stderr.contains("another fetch is running"), "{r:?}");
        assert!(t.elapsed() >= Duration::from_secs(1), "waited");
        assert_eq!(read_dest(kind, &dest).len(), 3, "nothing more stored");
        if kind == "mbox" {
            std::fs::remove_file(&lock_path).unwrap();
        }
    }
}

/// Two servers on one host whose UIDLs overlap, delivering into one
/// destination with --delete: every message of both is stored, none is
/// deleted because of the other account's records.
#[test]
fn two_servers_with_overlapping_uidls() {
    let one = Mailbox::new()
        .with("1", b"Subject: server one, first\r\n\r\na\r\n".to_vec())
        .with("2", b"Subject: server one, second\r\n\r\nb\r\n".to_vec());
    let two = Mailbox::new()
        .with("1", b"Subject: server two, first\r\n\r\nc\r\n".to_vec())
        .with("2", b"Subject: server two, second\r\n\r\nd\r\n".to_vec());
    for kind in KINDS {
        let tk1 = start(stls(one.clone()));
        let tk2 = start(stls(two.clone()));
        let dest = tk1.path("shared");
        for tk in [&tk1, &tk2] {
            let r = run(tk.cmd().args(fetch_args(kind, &dest)).arg("--delete"));
            assert_eq!(r.code, 0, "{kind}: {r:?}");
            assert!(r.stderr.contains("fetched 2 message(s)"), "{kind}: {r:?}");
        }
        let mut all = one.clone();
        for m in two.messages() {
            all.push(m.clone());
        }
        assert_eq!(multiset(read_dest(kind, &dest)), expected(&all), "{kind}");
        assert!(tk1.server.mailbox().is_empty() && tk2.server.mailbox().is_empty());
    }
}

/// Version 1 state records (`user@host`, no port) are never trusted to
/// skip or delete.
#[test]
fn old_state_records_are_not_trusted() {
    let mb = small_mailbox();
    let tk = start(stls(mb.clone()));
    let dest = tk.path("md");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(
        dest.join(".pop3-uidl"),
        "alice@127.0.0.1 m-1\nalice@127.0.0.1 m-2\n",
    )
    .unwrap();
    let r = run(tk.cmd().args(fetch_args("maildir", &dest)).arg("--delete"));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("fetched 3 message(s)"), "{r:?}");
    assert!(r.stderr.contains("old record"), "{r:?}");
    assert_eq!(multiset(read_dest("maildir", &dest)), expected(&mb));
}

/// Unwritable, FIFO, garbage and CRLF state files: a clear error before any
/// RETR, or (CRLF) understood.
#[test]
fn broken_state_files() {
    let mb = small_mailbox();
    let retrs = |tk: &Tk| {
        assert!(tk.server.wait_idle(Duration::from_secs(10)));
        tk.server
            .transcripts()
            .iter()
            .flat_map(|t| t.client_commands())
            .filter(|c| c == "RETR")
            .count()
    };
    // A FIFO.
    let tk = start(stls(mb.clone()));
    let dest = tk.path("md");
    std::fs::create_dir_all(&dest).unwrap();
    let st = dest.join(".pop3-uidl");
    assert!(Command::new("mkfifo").arg(&st).status().unwrap().success());
    let r = run(tk.cmd().args(fetch_args("maildir", &dest)));
    assert_eq!(r.code, 8, "{r:?}");
    assert!(r.stderr.contains("not a regular file"), "{r:?}");
    assert_eq!(retrs(&tk), 0);
    std::fs::remove_file(&st).unwrap();

    // Garbage: the line is named.
    std::fs::write(
        &st,
        "pop3-uidl 2\nS alice@127.0.0.1:1 x\nthis is not a record\n",
    )
    .unwrap();
    let r = run(tk.cmd().args(fetch_args("maildir", &dest)));
    assert_eq!(r.code, 8, "{r:?}");
    assert!(r.stderr.contains("line 3"), "{r:?}");
    assert_eq!(retrs(&tk), 0);

    // CRLF: understood, the recorded messages are skipped.
    let account = format!("alice@127.0.0.1:{}", tk.server.port());
    std::fs::write(
        &st,
        format!("pop3-uidl 2\r\nS {account} m-1\r\nS {account} m-2\r\n"),
    )
    .unwrap();
    let r = run(tk.cmd().args(fetch_args("maildir", &dest)));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("fetched 1 message(s)") && r.stderr.contains("2 already fetched"),
        "{r:?}"
    );
    assert_eq!(retrs(&tk), 1);

    // Unwritable: refused when opened, before any RETR (as root, where
    // permissions do not stop writes, the open is failed with EACCES by
    // strace).
    let tk = start(stls(mb.clone()));
    let dest = tk.path("eml");
    std::fs::create_dir_all(&dest).unwrap();
    let st = dest.join(".pop3-uidl");
    std::fs::write(&st, "").unwrap();
    let root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    let mut cmd = tk.cmd();
    cmd.args(fetch_args("eml-dir", &dest));
    let r = if root {
        if !strace() {
            return;
        }
        run(&mut under_strace(
            &cmd,
            &[
                String::from("-P"),
                st.display().to_string(),
                String::from("-e"),
                String::from("inject=openat:error=EACCES"),
            ],
        ))
    } else {
        std::fs::set_permissions(&st, std::fs::Permissions::from_mode(0o400)).unwrap();
        run(&mut cmd)
    };
    assert_eq!(r.code, 8, "{r:?}");
    assert!(r.stderr.contains(".pop3-uidl"), "{r:?}");
    assert_eq!(retrs(&tk), 0, "nothing fetched: {r:?}");
}

/// Under umask 022: mail files, a new mbox, the state and lock files are
/// 0600, new directories 0700.
#[test]
fn private_permissions_under_umask_022() {
    use std::os::unix::fs::MetadataExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
    let mb = small_mailbox();
    for kind in KINDS {
        let tk = start(stls(mb.clone()));
        let dest = tk.path("new-parent").join("dest");
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg("umask 022; exec \"$@\"")
            .arg("sh")
            .arg(tk.cmd().get_program())
            .args(tk.cmd().get_args())
            .args(fetch_args(kind, &dest))
            .env("POP3_PASSWORD", PASSWORD);
        let r = run(&mut sh);
        assert_eq!(r.code, 0, "{kind}: {r:?}");
        assert_eq!(
            mode(dest.parent().unwrap()),
            0o700,
            "{kind}: new parent dir"
        );
        let mut files = Vec::new();
        match kind {
            "mbox" => {
                files.push(dest.clone());
                files.push(dest.with_file_name("dest.pop3-uidl"));
            }
            _ => {
                assert_eq!(mode(&dest), 0o700, "{kind}");
                files.push(dest.join(".pop3-uidl"));
                files.push(dest.join(".pop3-lock"));
                let mail_dir = if kind == "maildir" {
                    for sub in ["tmp", "new", "cur"] {
                        assert_eq!(mode(&dest.join(sub)), 0o700, "{kind} {sub}");
                    }
                    dest.join("new")
                } else {
                    dest.clone()
                };
                for e in std::fs::read_dir(mail_dir).unwrap() {
                    let p = e.unwrap().path();
                    if p.is_file() {
                        files.push(p);
                    }
                }
            }
        }
        assert!(files.len() >= 2, "{kind}");
        for f in files {
            assert_eq!(mode(&f), 0o600, "{kind}: {}", f.display());
        }
    }
}

/// mbox: LF line endings, mboxrd quoting that round-trips `From ` and
/// `>From ` lines, the `From ` line from Return-Path (else MAILER-DAEMON)
/// with an asctime date; Maildir: LF; .eml: byte-exact; --line-endings
/// chooses.
#[test]
fn storage_formats() {
    let mb = rich_mailbox();
    let tk = start(stls(mb.clone()));
    let mbox = tk.path("mbox");
    let r = run(tk.cmd().args(fetch_args("mbox", &mbox)));
    assert_eq!(r.code, 0, "{r:?}");
    // read_dest checks that no CRLF is stored and undoes the quoting.
    assert_eq!(multiset(read_dest("mbox", &mbox)), expected(&mb));
    let text = String::from_utf8_lossy(&std::fs::read(&mbox).unwrap()).into_owned();
    let from_lines: Vec<&str> = text.lines().filter(|l| l.starts_with("From ")).collect();
    assert_eq!(from_lines.len(), mb.len(), "{text}");
    assert!(
        from_lines
            .iter()
            .any(|l| l.starts_with("From maria.lopez@example.org ")),
        "Return-Path used: {from_lines:?}"
    );
    assert!(from_lines
        .iter()
        .any(|l| l.starts_with("From MAILER-DAEMON ")));
    for l in &from_lines {
        // `From SENDER Www Mmm dd hh:mm:ss yyyy`
        let date: Vec<&str> = l.split_whitespace().skip(2).collect();
        assert_eq!(date.len(), 5, "{l}");
        assert_eq!(date[3].len(), 8, "{l}");
    }
    assert!(text.contains("\n>From the start of a line\n"), "quoted");
    assert!(text.contains("\n>>From quoted already\n"), "quoted again");
    assert!(text.contains("\n>>>From twice\n"));

    let md = tk.path("md");
    let r = run(tk.cmd().args(fetch_args("maildir", &md)));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(multiset(read_dest("maildir", &md)), expected(&mb));

    let eml = tk.path("eml");
    let r = run(tk.cmd().args(fetch_args("eml-dir", &eml)));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        multiset(read_dest_raw("eml-dir", &eml)),
        expected(&mb),
        "byte-exact"
    );

    // --line-endings crlf keeps the wire's CRLF in a Maildir.
    let md2 = tk.path("md-crlf");
    let r = run(tk
        .cmd()
        .args(fetch_args("maildir", &md2))
        .args(["--line-endings", "crlf"]));
    assert_eq!(r.code, 0, "{r:?}");
    let raw = read_dest_raw("maildir", &md2);
    assert_eq!(multiset(raw), expected(&mb));
}

/// Skip what the destination holds by default; --all fetches again.
#[test]
fn default_skips_held_messages_and_all_refetches() {
    let mb = small_mailbox();
    let tk = start(stls(mb.clone()));
    let md = tk.path("md");
    for _ in 0..2 {
        let r = run(tk.cmd().args(fetch_args("maildir", &md)));
        assert_eq!(r.code, 0, "{r:?}");
    }
    assert_eq!(
        multiset(read_dest("maildir", &md)),
        expected(&mb),
        "stored once"
    );
    let r = run(tk.cmd().args(fetch_args("maildir", &md)).arg("--all"));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("fetched 3 message(s)"), "{r:?}");
    assert_eq!(read_dest("maildir", &md).len(), 6, "--all stores again");
}

/// A lost QUIT reply after acknowledged DELEs: "unknown (N were marked)".
#[test]
fn lost_quit_reply_is_reported_as_unknown() {
    let mb = small_mailbox();
    let tk = start(stls(mb.clone()).override_reply("QUIT", Vec::new()));
    let md = tk.path("md");
    let r = run(tk.cmd().args(fetch_args("maildir", &md)).arg("--delete"));
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("unknown (3 were marked"), "{r:?}");
    assert_eq!(multiset(read_dest("maildir", &md)), expected(&mb));
}

/// A stderr that cannot be written (a closed pipe) is no panic.
#[test]
fn closed_stderr_is_not_a_panic() {
    let mb = small_mailbox();
    let tk = start(stls(mb.clone()));
    let md = tk.path("md");
    let mut child = tk
        .cmd()
        .args(fetch_args("maildir", &md))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(multiset(read_dest("maildir", &md)), expected(&mb));
}

/// Stale temporary files are removed: Maildir tmp/ files older than 36
/// hours (younger ones stay), temporary names of earlier versions.
#[test]
fn stale_temporary_files_are_removed() {
    let mb = small_mailbox();
    let tk = start(stls(mb.clone()));
    let md = tk.path("md");
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(md.join(sub)).unwrap();
    }
    let old = md.join("tmp/1.M1P1Q1.old");
    let young = md.join("tmp/2.M2P2Q2.young");
    std::fs::write(&old, "x").unwrap();
    std::fs::write(&young, "y").unwrap();
    let t = std::time::SystemTime::now() - Duration::from_secs(37 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(t)
        .unwrap();
    let r = run(tk.cmd().args(fetch_args("maildir", &md)));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!old.exists() && young.exists());
    std::fs::remove_file(&young).unwrap();

    let eml = tk.path("eml");
    std::fs::create_dir_all(&eml).unwrap();
    let leftover = eml.join(".1.M1P1Q1.host.tmp");
    std::fs::write(&leftover, "partial").unwrap();
    let mbox = tk.path("box");
    let mbox_tmp = tk.path(".box.pop3-tmp-1.M1P1Q1.host");
    std::fs::write(&mbox_tmp, "partial").unwrap();
    assert_eq!(run(tk.cmd().args(fetch_args("eml-dir", &eml))).code, 0);
    assert_eq!(run(tk.cmd().args(fetch_args("mbox", &mbox))).code, 0);
    assert!(!leftover.exists() && !mbox_tmp.exists());
}

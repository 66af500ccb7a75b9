//! `pop3 fetch` against mpop, in the same run, from a real Dovecot on
//! loopback (the pop3-dovecot harness): ~2000 messages (~30 MB) into an
//! mbox and into a Maildir, STLS with the harness's CA for both, every
//! message fetched (fresh destinations; mpop with `keep on`, `only_new
//! off`). Prints wall and CPU (user+sys of the child, from GNU time) per
//! run and the ratios pop3/mpop of the medians.
//!
//! `cargo bench -p pop3-cli --bench fetch_vs_mpop` (needs Dovecot, mpop at
//! /usr/bin/mpop and /usr/bin/time). `POP3_BENCH_MESSAGES` and
//! `POP3_BENCH_ROUNDS` change the size of the run; `POP3_BENCH_STRACE=1`
//! runs each fetcher once more under `strace -c` and prints its counts of
//! sync, open, write and rename calls (not timed); `POP3_BENCH_KINDS=maildir`
//! (or `mbox`) runs one kind only.
//!
//! With `POP3_BENCH_RTT_MS=10` every fetcher goes through
//! `pop3_testkit::DelayProxy` adding that round-trip time, Python's
//! `poplib` (an inline script: STLS, USER/PASS, LIST, RETR each, QUIT,
//! into an mbox-like file) runs as a third fetcher, and the ratios
//! pop3/mpop and pop3/poplib are printed. Defaults in that mode: 505
//! messages, 1 round, mbox only.

use std::ffi::OsStr;
use std::fmt::Debug;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const MPOP: &str = "/usr/bin/mpop";
const TIME: &str = "/usr/bin/time";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A deterministic message of about `size` bytes: headers (Return-Path
/// first, as delivered mail has it), text lines, now and then a `From `
/// line that the mbox must quote.
fn message(i: usize, size: usize) -> Vec<u8> {
    let mut m = format!(
        "Return-Path: <sender{i}@example.org>\r\nFrom: Sender {i} <sender{i}@example.org>\r\n\
         To: alice@example.com\r\nSubject: bench message {i}\r\n\
         Date: Mon, 06 Jan 2025 10:00:00 +0000\r\nMessage-ID: <bench-{i}@example.org>\r\n\r\n"
    )
    .into_bytes();
    let mut line = 0usize;
    while m.len() < size {
        if line % 40 == 39 {
            m.extend_from_slice(b"From the archive: a line an mbox has to quote\r\n");
        } else {
            let c = b'a' + ((i + line) % 26) as u8;
            m.extend_from_slice(&[c; 74]);
            m.extend_from_slice(b"\r\n");
        }
        line += 1;
    }
    m
}

struct Sample {
    wall: f64,
    cpu: f64,
}

/// Runs `cmd` under GNU time: wall (measured here) and user+sys.
fn timed<S: AsRef<OsStr> + Debug>(cmd: &[S], envs: &[(&str, &str)], time_out: &Path) -> Sample {
    let mut c = Command::new(TIME);
    c.args(["-f", "%U %S", "-o"]).arg(time_out).args(cmd);
    for (k, v) in envs {
        c.env(k, v);
    }
    c.stdin(Stdio::null()).stdout(Stdio::null());
    let t = Instant::now();
    let out = c.output().expect("running the fetcher");
    let wall = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = fs::read_to_string(time_out).unwrap();
    let last = text.lines().last().unwrap_or("");
    let cpu: f64 = last
        .split_whitespace()
        .filter_map(|v| v.parse::<f64>().ok())
        .sum();
    Sample { wall, cpu }
}

/// `strace -f -c` counts of the calls that decide the cost of durable
/// delivery, for one run of `cmd`.
fn syscall_summary<S: AsRef<OsStr> + Debug>(
    cmd: &[S],
    envs: &[(&str, &str)],
    out: &Path,
) -> String {
    let mut c = Command::new("strace");
    c.args([
        "-f",
        "-c",
        "-e",
        "trace=fsync,fdatasync,syncfs,openat,close,write,writev,rename,renameat2,linkat,statx,fstat",
        "-o",
    ])
    .arg(out)
    .args(cmd);
    for (k, v) in envs {
        c.env(k, v);
    }
    let st = c
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("strace");
    assert!(st.success(), "{cmd:?} under strace failed");
    let text = fs::read_to_string(out).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // % time, seconds, usecs/call, calls, [errors], syscall
            let name = *f.last()?;
            let calls: u64 = f.get(3)?.parse().ok()?;
            Some(format!("{name} {calls}"))
        })
        .filter(|s| !s.starts_with("total"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn count_from_lines(mbox: &Path) -> usize {
    fs::read(mbox)
        .unwrap()
        .split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"From "))
        .count()
}

fn count_files(dir: &Path) -> usize {
    fs::read_dir(dir.join("new")).unwrap().count() + fs::read_dir(dir.join("cur")).unwrap().count()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rtt_ms = env_or("POP3_BENCH_RTT_MS", 0);
    let n = env_or("POP3_BENCH_MESSAGES", if rtt_ms > 0 { 505 } else { 2000 });
    let rounds = env_or("POP3_BENCH_ROUNDS", if rtt_ms > 0 { 1 } else { 3 });
    for tool in [MPOP, TIME] {
        assert!(Path::new(tool).exists(), "{tool} is needed");
    }
    let d = pop3_dovecot::Dovecot::start().expect("starting Dovecot");
    let mut total = 0usize;
    for i in 0..n {
        // 5..=25 KiB, mean about 15 KiB.
        let size = 5 * 1024 + (i * 7919) % (20 * 1024);
        let m = message(i, size);
        total += m.len();
        d.add_message(d.user(), &m).unwrap();
    }
    println!(
        "fetch_vs_mpop: {n} messages, {:.1} MB, Dovecot on {}",
        total as f64 / 1e6,
        d.plain_addr()
    );
    let pop3 = env!("CARGO_BIN_EXE_pop3");
    let work = tempfile::tempdir().unwrap();
    // At a round-trip time: every fetcher through the same delaying proxy.
    let proxy = (rtt_ms > 0).then(|| {
        let one_way = std::time::Duration::from_micros(rtt_ms as u64 * 500);
        pop3_testkit::DelayProxy::start(d.plain_addr(), one_way).expect("delay proxy")
    });
    if proxy.is_some() {
        println!("  through a delay proxy: {rtt_ms} ms RTT; poplib as a third fetcher");
    }
    let port = proxy
        .as_ref()
        .map_or(d.plain_addr(), |p| p.addr())
        .port()
        .to_string();
    let ca = d.ca_cert_path().display().to_string();
    let time_out = work.path().join("time");
    let pop3_args = |kind_flag: &str, dest: &str| -> Vec<String> {
        [
            pop3,
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--user",
            d.user(),
            "--tls",
            "starttls",
            "--ca-file",
            &ca,
            "fetch",
            kind_flag,
            dest,
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    let default_kinds = if rtt_ms > 0 { "mbox" } else { "mbox,maildir" };
    let kinds = std::env::var("POP3_BENCH_KINDS").unwrap_or_else(|_| String::from(default_kinds));
    let mut poplib_wall = Vec::new();
    for kind in kinds.split(',').filter(|k| ["mbox", "maildir"].contains(k)) {
        let (mut pw, mut pc, mut mw, mut mc) = (vec![], vec![], vec![], vec![]);
        let (mut fw, mut fc) = (vec![], vec![]);
        for round in 0..rounds {
            // pop3
            let dest: PathBuf = work.path().join(format!("pop3-{kind}-{round}"));
            let dest_s = dest.display().to_string();
            let s = timed(
                &pop3_args(&format!("--{kind}"), &dest_s),
                &[("POP3_PASSWORD", d.password())],
                &time_out,
            );
            let got = if kind == "mbox" {
                count_from_lines(&dest)
            } else {
                count_files(&dest)
            };
            assert_eq!(got, n, "pop3 stored every message");
            pw.push(s.wall);
            pc.push(s.cpu);
            if kind == "maildir" {
                // The other way to make a group durable: fdatasync per file.
                let dest2 = work.path().join(format!("pop3-files-{kind}-{round}"));
                let dest2_s = dest2.display().to_string();
                let s = timed(
                    &pop3_args("--maildir", &dest2_s),
                    &[("POP3_PASSWORD", d.password()), ("POP3_DIR_SYNC", "files")],
                    &time_out,
                );
                assert_eq!(count_files(&dest2), n);
                fw.push(s.wall);
                fc.push(s.cpu);
                let _ = fs::remove_dir_all(&dest2);
            }

            // mpop, same destination kind
            let mdest = work.path().join(format!("mpop-{kind}-{round}"));
            if kind == "maildir" {
                for sub in ["tmp", "new", "cur"] {
                    fs::create_dir_all(mdest.join(sub)).unwrap();
                }
            }
            let rc = work.path().join(format!("mpoprc-{kind}-{round}"));
            fs::write(
                &rc,
                format!(
                    "defaults\nkeep on\nonly_new off\n\naccount bench\nhost 127.0.0.1\nport {port}\n\
                     user {}\npassword {}\nauth user\ntls on\ntls_starttls on\ntls_trust_file {ca}\n\
                     uidls_file {}\ndelivery {kind} {}\n",
                    d.user(),
                    d.password(),
                    work.path().join(format!("uidls-{kind}-{round}")).display(),
                    mdest.display()
                ),
            )
            .unwrap();
            {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&rc, fs::Permissions::from_mode(0o600)).unwrap();
            }
            let rc_s = rc.display().to_string();
            let s = timed(&[MPOP, "-q", "-C", &rc_s, "bench"], &[], &time_out);
            let got = if kind == "mbox" {
                count_from_lines(&mdest)
            } else {
                count_files(&mdest)
            };
            assert_eq!(got, n, "mpop stored every message");
            mw.push(s.wall);
            mc.push(s.cpu);
            println!(
                "  {kind:7} round {round}: pop3 wall {:.3} s cpu {:.3} s | mpop wall {:.3} s cpu {:.3} s",
                pw[round], pc[round], mw[round], mc[round]
            );
            if proxy.is_some() && kind == "mbox" {
                let pdest = work.path().join(format!("poplib-{round}"));
                let s = poplib(&port, d.user(), d.password(), &ca, &pdest, &time_out);
                assert_eq!(count_from_lines(&pdest), n, "poplib fetched every message");
                println!(
                    "  {kind:7} round {round}: poplib wall {:.3} s cpu {:.3} s",
                    s.wall, s.cpu
                );
                poplib_wall.push(s.wall);
                let _ = fs::remove_file(&pdest);
            }
            let _ = fs::remove_dir_all(&dest);
            let _ = fs::remove_file(&dest);
            let _ = fs::remove_dir_all(&mdest);
            let _ = fs::remove_file(&mdest);
        }
        if std::env::var_os("POP3_BENCH_STRACE").is_some() {
            let dest = work.path().join(format!("strace-pop3-{kind}"));
            let dest_s = dest.display().to_string();
            let kind_flag = format!("--{kind}");
            let pop3_cmd = pop3_args(&kind_flag, &dest_s);
            let env = [("POP3_PASSWORD", d.password())];
            let sum = syscall_summary(&pop3_cmd, &env, &work.path().join("strace-out"));
            println!("  {kind:7} pop3 syscalls: {sum}");
            let mdest = work.path().join(format!("strace-mpop-{kind}"));
            if kind == "maildir" {
                for sub in ["tmp", "new", "cur"] {
                    fs::create_dir_all(mdest.join(sub)).unwrap();
                }
            }
            let rc = work.path().join(format!("mpoprc-{kind}-0"));
            let text = fs::read_to_string(&rc).unwrap_or_default();
            let last = work.path().join(format!("mpop-{kind}-0"));
            fs::write(
                &rc,
                text.replace(&last.display().to_string(), &mdest.display().to_string()),
            )
            .unwrap();
            let rc_s = rc.display().to_string();
            let sum = syscall_summary(
                &[MPOP, "-q", "-C", &rc_s, "bench"],
                &[],
                &work.path().join("strace-out"),
            );
            println!("  {kind:7} mpop syscalls: {sum}");
        }
        if !fw.is_empty() {
            let (fw, fc) = (median(fw.clone()), median(fc.clone()));
            println!(
                "{kind:7}: median pop3 with POP3_DIR_SYNC=files (fdatasync per file) wall {fw:.3} s, \
                 cpu {fc:.3} s; ratio to mpop: wall {:.2}, cpu {:.2}",
                fw / median(mw.clone()),
                fc / median(mc.clone())
            );
        }
        let (pw, pc, mw, mc) = (median(pw), median(pc), median(mw), median(mc));
        if !poplib_wall.is_empty() {
            let lw = median(std::mem::take(&mut poplib_wall));
            println!(
                "{kind:7}: at {rtt_ms} ms RTT median poplib wall {lw:.3} s; ratio pop3/poplib: wall {:.3}",
                pw / lw
            );
        }
        println!(
            "{kind:7}: median pop3 wall {pw:.3} s, cpu {pc:.3} s; mpop wall {mw:.3} s, cpu {mc:.3} s; \
             ratio pop3/mpop: wall {:.2}, cpu {:.2}",
            pw / mw,
            pc / mc
        );
    }
}

/// Python's poplib as a fetcher: STLS, USER/PASS, LIST, RETR each, QUIT,
/// every message appended to `dest` behind a `From ` line (its own
/// `From ` lines quoted, so that counting them counts messages).
fn poplib(port: &str, user: &str, pass: &str, ca: &str, dest: &Path, time_out: &Path) -> Sample {
    const SCRIPT: &str = r#"
import os, poplib, ssl, sys
port, user, ca, dest = sys.argv[1:5]
p = poplib.POP3("127.0.0.1", int(port))
p.stls(ssl.create_default_context(cafile=ca))
p.user(user)
p.pass_(os.environ["POP3_PASSWORD"])
_, listing, _ = p.list()
with open(dest, "wb") as f:
    for entry in listing:
        _, lines, _ = p.retr(int(entry.split()[0]))
        body = [b">" + l if l.startswith(b"From ") else l for l in lines]
        f.write(b"From poplib\n" + b"\n".join(body) + b"\n")
p.quit()
"#;
    let dest = dest.display().to_string();
    timed(
        &["python3", "-c", SCRIPT, port, user, ca, &dest],
        &[("POP3_PASSWORD", pass)],
        time_out,
    )
}

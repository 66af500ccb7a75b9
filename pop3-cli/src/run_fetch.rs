//! `pop3 fetch` for the command line's server or for configuration
//! accounts (`--account NAME`..., `--all-accounts`), several at once.
//!
//! Each account is resolved (flags over the account, the account over
//! what it inherits, that over `[defaults]`) and fetched on its own
//! thread, at most `--jobs` at a time. One account failing never stops
//! the others; the exit code is the worst class seen (the highest exit
//! code), and each account has its summary line (`--json`: its summary
//! object, and an error object when it failed).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::cli::{Cli, FetchArgs};
use crate::config::{expand_home, AccountConf, Config};
use crate::error::{Class, CliError};
use crate::fetch::{self, Request, Target};
use crate::mda::MdaCommand;
use crate::output::json_line;
use crate::sanitize::clean;
use crate::session;
use crate::store::Dest;

/// The name of an error class in JSON error objects.
pub fn class_name(c: Class) -> &'static str {
    match c {
        Class::Usage => "usage",
        Class::Server => "server",
        Class::Protocol => "protocol",
        Class::Auth => "auth",
        Class::Tls => "tls",
        Class::Timeout => "timeout",
        Class::Io => "io",
        Class::Locked => "locked",
        Class::PipeClosed => "pipe_closed",
    }
}

/// The command and the RFC 2449 response code of a server's `-ERR`, as
/// [`CliError::pop3`] renders it (`... PASS failed: -ERR [IN-USE] ...`);
/// `None` for failures that are not a server's answer.
pub fn reply_parts(message: &str) -> (Option<String>, Option<String>) {
    let Some(at) = message.find("-ERR") else {
        return (None, None);
    };
    let command = message[..at]
        .strip_suffix(" failed: ")
        .and_then(|b| b.rsplit([' ', ':']).next())
        .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_uppercase()))
        .map(String::from);
    let code = message[at + 4..]
        .strip_prefix(" [")
        .and_then(|r| r.split_once(']'))
        .map(|(c, _)| c)
        .filter(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'/')
        })
        .map(String::from);
    (command, code)
}

/// Prints the `--json` error object of `e` (for `account`, if any):
/// `command` and `response_code` are those of a server's `-ERR` (see
/// [`reply_parts`]), else `null`.
pub fn json_error(e: &CliError, account: Option<&str>) -> Result<(), CliError> {
    let (command, code) = reply_parts(&e.message);
    json_line(&json!({
        "type": "error",
        "account": account,
        "class": class_name(e.class),
        "exit_code": e.class.code(),
        "command": command,
        "response_code": code,
        "message": e.message,
    }))
}

/// The request for one account (`conf`: the account's values, empty
/// without one): the flags win.
pub fn request_for(
    args: &FetchArgs,
    conf: &AccountConf,
    label: Option<&str>,
    account_key: &str,
) -> Result<Request, CliError> {
    let flag_dest = args.maildir.is_some()
        || args.mbox.is_some()
        || args.eml_dir.is_some()
        || args.mda.is_some();
    let (maildir, mbox, eml_dir, mda) = if flag_dest {
        (
            args.maildir.clone(),
            args.mbox.clone(),
            args.eml_dir.clone(),
            args.mda.clone(),
        )
    } else {
        (
            conf.maildir.as_deref().map(expand_home),
            conf.mbox.as_deref().map(expand_home),
            conf.eml_dir.as_deref().map(expand_home),
            conf.mda.clone(),
        )
    };
    let target = match (maildir, mbox, eml_dir, mda) {
        (Some(d), None, None, None) => Target::Store(Dest::Maildir(d)),
        (None, Some(f), None, None) => Target::Store(Dest::Mbox(f)),
        (None, None, Some(d), None) => Target::Store(Dest::Eml(d)),
        (None, None, None, Some(m)) => Target::Mda {
            command: MdaCommand::parse(&m, Duration::from_secs(args.mda_timeout))?,
            state: fetch::mda_state_path(account_key)?,
        },
        (None, None, None, None) => {
            return Err(CliError::usage(match label {
                Some(l) => format!(
                    "account {:?} has no destination: give maildir, mbox, eml_dir or mda \
                     in the configuration, or --maildir, --mbox, --eml-dir or --mda",
                    clean(l)
                ),
                None => String::from("give one of --maildir, --mbox, --eml-dir, --mda"),
            }))
        }
        _ => {
            return Err(CliError::usage(
                "give exactly one of --maildir, --mbox, --eml-dir, --mda",
            ))
        }
    };
    let keep_days = if args.keep || args.delete {
        args.keep_days
    } else {
        args.keep_days.or(conf.keep_days)
    };
    // keep_days, wherever it is set, replaces the configuration's
    // `delete = true` (a `[defaults]` delete and an account's keep_days).
    let delete = !args.keep && (args.delete || (conf.delete == Some(true) && keep_days.is_none()));
    Ok(Request {
        target,
        delete,
        keep_days,
        skip_larger: args.skip_larger.or(conf.skip_larger.map(|s| s.0)),
        delete_larger: args.delete_larger.or(conf.delete_larger.map(|s| s.0)),
        add_received: args.add_received,
        quiet: args.quiet,
        label: label.map(String::from),
        progress: None,
        new_only: args.new_only,
        all: args.all,
        max_size: args.max_size,
        line_endings: args.line_endings,
        lock_timeout: Duration::from_secs(args.lock_timeout),
    })
}

/// Resolves and fetches one account (`None`: the command line's server).
/// With `--json` its error object (on failure) and then its summary
/// object are printed, whatever happened.
fn one(
    cli: &Cli,
    args: &FetchArgs,
    account: Option<(&str, &AccountConf)>,
    progress: Option<indicatif::MultiProgress>,
) -> Outcome {
    if fetch::STOP.load(Ordering::SeqCst) {
        // Stopping (--every): accounts not started yet are not started.
        return Outcome {
            result: Ok(()),
            login_delay: None,
        };
    }
    let started = std::time::Instant::now();
    let label = account.map(|(n, _)| n);
    let mut tally = fetch::Tally::default();
    let mut destination = None;
    let r = (|| {
        let empty = AccountConf::default();
        let conf = account.map_or(&empty, |(_, c)| c);
        if let Some(name) = label {
            let flags = cli.url.is_some() || cli.host.is_some() || cli.demo;
            if !flags && conf.url.is_none() && conf.host.is_none() {
                return Err(CliError::usage(format!(
                    "account {:?} names no server: give url or host",
                    clean(name)
                )));
            }
        }
        let server = session::resolve_with(cli, account)?;
        let mut req = request_for(args, conf, label, &server.account)?;
        req.progress = progress;
        destination = Some(req.target.describe());
        // Accounts of this run delivering into the same place take turns
        // (the file locks would make the later ones give up after
        // --lock-timeout).
        let turn = match &req.target {
            Target::Store(d) => Some(DEST_TURNS.turn(&d.state_path())),
            Target::Mda { .. } => None,
        };
        let _held = turn
            .as_ref()
            .map(|t| t.lock().unwrap_or_else(|e| e.into_inner()));
        fetch::fetch(&server, cli, &req, &mut tally)
    })();
    let mut r = r;
    if cli.json {
        if let Err(e) = &r {
            if let Err(e) = json_error(e, label) {
                r = Err(e);
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        if let Err(e) = json_line(&tally.to_json(label, destination, seconds, r.is_ok())) {
            r = r.and(Err(e));
        }
    }
    Outcome {
        result: r,
        login_delay: tally.login_delay,
    }
}

/// One mutex per destination (by its state file's absolute path).
struct Turns(std::sync::LazyLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>>);

impl Turns {
    fn turn(&self, state: &std::path::Path) -> Arc<Mutex<()>> {
        let key = std::path::absolute(state).unwrap_or_else(|_| state.to_path_buf());
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default()
            .clone()
    }
}

static DEST_TURNS: Turns = Turns(std::sync::LazyLock::new(Default::default));

/// What one account's run gave.
struct Outcome {
    result: Result<(), CliError>,
    /// The server's LOGIN-DELAY, if announced.
    login_delay: Option<u32>,
}

/// Fetches `accounts` (`None`: the command line's server), at most
/// `--jobs` at once; the outcomes in the same order.
fn run_many(
    cli: &Cli,
    args: &FetchArgs,
    accounts: &[Option<&(String, AccountConf)>],
) -> Vec<Outcome> {
    if accounts.len() == 1 {
        let a = accounts[0].map(|(n, c)| (n.as_str(), c));
        return vec![one(cli, args, a, None)];
    }
    let multi =
        std::io::IsTerminal::is_terminal(&std::io::stderr()).then(indicatif::MultiProgress::new);
    let next = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<(usize, Outcome)>> = Mutex::new(Vec::new());
    let workers = usize::from(args.jobs).min(accounts.len());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(a) = accounts.get(i) else {
                    break;
                };
                let a = a.map(|(n, c)| (n.as_str(), c));
                let o = one(cli, args, a, multi.clone());
                outcomes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((i, o));
            });
        }
    });
    let mut v = outcomes.into_inner().unwrap_or_else(|e| e.into_inner());
    v.sort_by_key(|(i, _)| *i);
    v.into_iter().map(|(_, o)| o).collect()
}

/// `pop3 fetch`. With `--json`, every failure is an error object on
/// stdout, followed by a summary object.
pub fn run(cli: &Cli, args: &FetchArgs) -> Result<(), CliError> {
    let r = run_accounts(cli, args);
    if let Err((e, false)) = &r {
        if cli.json {
            json_error(e, None)?;
            json_line(&fetch::Tally::default().to_json(None, None, 0.0, false))?;
        }
    }
    r.map_err(|(e, _)| e)
}

/// `Err((e, reported))`: `reported` when the accounts' failures were
/// already printed.
fn run_accounts(cli: &Cli, args: &FetchArgs) -> Result<(), (CliError, bool)> {
    let early = |e: CliError| (e, false);
    if args.all_accounts && !cli.account.is_empty() {
        return Err(early(CliError::usage(
            "give --account NAME or --all-accounts, not both",
        )));
    }
    if !args.all_accounts && cli.account.is_empty() {
        return match args.every {
            Some(every) => poll(cli, args, &[None], every),
            // `one` printed its own JSON objects.
            None => one(cli, args, None, None).result.map_err(|e| (e, true)),
        };
    }
    let config = Config::load(cli.config.as_deref()).map_err(early)?;
    let names = if args.all_accounts {
        config.names()
    } else {
        let mut v = cli.account.clone();
        v.dedup();
        v
    };
    if names.is_empty() {
        return Err(early(CliError::usage(format!(
            "{}: no [accounts.NAME] to fetch",
            config.path.display()
        ))));
    }
    // Every account is checked before any is fetched.
    let accounts: Vec<(String, AccountConf)> = names
        .iter()
        .map(|n| config.account(n).map(|a| (n.clone(), a)))
        .collect::<Result<_, _>>()
        .map_err(early)?;
    let refs: Vec<Option<&(String, AccountConf)>> = accounts.iter().map(Some).collect();
    if let Some(every) = args.every {
        return poll(cli, args, &refs, every);
    }
    if accounts.len() == 1 {
        // Its failure is reported once, by the caller.
        return one(cli, args, Some((&accounts[0].0, &accounts[0].1)), None)
            .result
            .map_err(|e| (e, true));
    }
    let outcomes = run_many(cli, args, &refs);
    worst(&accounts, outcomes.into_iter().map(|o| o.result).collect())
}

/// Reports each failure and sums them up: `Err` with the worst class.
fn worst(
    accounts: &[(String, AccountConf)],
    results: Vec<Result<(), CliError>>,
) -> Result<(), (CliError, bool)> {
    let failures: Vec<(String, CliError)> = accounts
        .iter()
        .zip(results)
        .filter_map(|((n, _), r)| report(n, r).err())
        .collect();
    let Some(worst) = failures
        .iter()
        .map(|(_, e)| e.class)
        .max_by_key(|c| c.code())
    else {
        return Ok(());
    };
    let names: Vec<&str> = failures.iter().map(|(n, _)| n.as_str()).collect();
    Err((
        CliError {
            class: worst,
            message: format!(
                "{} of {} account(s) failed: {}",
                failures.len(),
                accounts.len(),
                names.join(", ")
            ),
        },
        true,
    ))
}

/// Longest wait after failures (unless `--every` is longer).
pub const BACKOFF_CAP: Duration = Duration::from_secs(3600);

/// The wait before an account's next poll: the interval, at least the
/// server's LOGIN-DELAY; after `failures` failures in a row the interval
/// doubled that many times, capped at [`BACKOFF_CAP`] (or the interval
/// if longer); after a `[LOGIN-DELAY]` or `[IN-USE]` refusal at least
/// the LOGIN-DELAY again.
pub fn next_wait(
    every: Duration,
    login_delay: Option<u32>,
    failures: u32,
    refused_for_delay: bool,
) -> Duration {
    let delay = Duration::from_secs(login_delay.map_or(0, u64::from));
    let base = every.max(delay);
    if failures == 0 {
        return base;
    }
    let factor = 1u32.checked_shl(failures.min(20)).unwrap_or(u32::MAX);
    let backed = every
        .checked_mul(factor)
        .unwrap_or(Duration::MAX)
        .min(BACKOFF_CAP.max(every));
    if refused_for_delay {
        backed.max(delay)
    } else {
        backed
    }
}

/// Whether a failure was the server's `[LOGIN-DELAY]` or `[IN-USE]`
/// refusal (RFC 2449 response codes, as the message renders them).
fn refused_for_delay(e: &CliError) -> bool {
    e.message.contains("-ERR [LOGIN-DELAY]") || e.message.contains("-ERR [IN-USE]")
}

/// `--every`: polls until SIGINT/SIGTERM (a second one ends the process
/// at once). Each account keeps its own schedule; one summary line (or
/// JSON summary) per poll per account. The result is that of each
/// account's last poll.
fn poll(
    cli: &Cli,
    args: &FetchArgs,
    accounts: &[Option<&(String, AccountConf)>],
    every: Duration,
) -> Result<(), (CliError, bool)> {
    let stop = fetch::STOP.clone();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping ends the process (exit 1).
        signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone())
            .and_then(|_| signal_hook::flag::register(sig, stop.clone()))
            .map_err(|e| (CliError::io("installing signal handlers", &e), false))?;
    }
    let n = accounts.len();
    let mut due = vec![std::time::Instant::now(); n];
    let mut failures = vec![0u32; n];
    let mut last: Vec<Result<(), CliError>> = (0..n).map(|_| Ok(())).collect();
    loop {
        let now = std::time::Instant::now();
        let ready: Vec<usize> = (0..n).filter(|&i| due[i] <= now).collect();
        let batch: Vec<Option<&(String, AccountConf)>> =
            ready.iter().map(|&i| accounts[i]).collect();
        let outcomes = run_many(cli, args, &batch);
        for (&i, o) in ready.iter().zip(outcomes) {
            let delay_refusal = o.result.as_ref().err().is_some_and(refused_for_delay);
            failures[i] = if o.result.is_ok() {
                0
            } else {
                failures[i].saturating_add(1)
            };
            if let Err(e) = &o.result {
                match accounts[i] {
                    Some((name, _)) => say!("pop3: [{}] {e}", clean(name)),
                    None => say!("pop3: {e}"),
                }
            }
            due[i] = std::time::Instant::now()
                + next_wait(every, o.login_delay, failures[i], delay_refusal);
            last[i] = o.result;
        }
        // Sleep until the next account is due, waking for a signal.
        loop {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let next = due
                .iter()
                .min()
                .copied()
                .unwrap_or_else(std::time::Instant::now);
            let now = std::time::Instant::now();
            if next <= now {
                break;
            }
            std::thread::sleep((next - now).min(Duration::from_millis(100)));
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
    }
    // Failures were reported as they happened; the exit code is the worst
    // class of each account's last poll.
    let failed: Vec<CliError> = last.into_iter().filter_map(Result::err).collect();
    match failed.iter().map(|e| e.class).max_by_key(|c| c.code()) {
        Some(class) => Err((
            CliError {
                class,
                message: format!(
                    "stopped; the last poll of {} of {n} account(s) failed (see above)",
                    failed.len()
                ),
            },
            true,
        )),
        None => Ok(()),
    }
}

/// Reports an account's failure on stderr (its JSON objects are
/// printed by [`one`]).
fn report(name: &str, r: Result<(), CliError>) -> Result<(), (String, CliError)> {
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.class == Class::PipeClosed => Ok(()),
        Err(e) => {
            say!("pop3: [{}] {e}", clean(name));
            Err((name.to_string(), e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_back_off_and_honour_login_delay() {
        let s = Duration::from_secs;
        assert_eq!(next_wait(s(60), None, 0, false), s(60));
        assert_eq!(next_wait(s(60), Some(300), 0, false), s(300));
        assert_eq!(next_wait(s(60), None, 1, false), s(120));
        assert_eq!(next_wait(s(60), None, 3, false), s(480));
        assert_eq!(next_wait(s(60), None, 30, false), BACKOFF_CAP);
        assert_eq!(next_wait(s(7200), None, 5, false), s(7200));
        assert_eq!(next_wait(s(1), Some(900), 1, true), s(900));
        assert_eq!(next_wait(s(1), Some(900), 1, false), s(2));
        let e = |m: &str| CliError::usage(m);
        assert!(refused_for_delay(&e("PASS failed: -ERR [IN-USE] locked")));
        assert!(refused_for_delay(&e("x: -ERR [LOGIN-DELAY] wait")));
        assert!(!refused_for_delay(&e("x: -ERR [AUTH] wrong")));
    }

    fn args(extra: &[&str]) -> FetchArgs {
        use clap::Parser;
        let mut argv = vec!["pop3", "fetch", "--maildir", "/tmp/x"];
        argv.extend_from_slice(extra);
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Cmd::Fetch(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_override_the_account() {
        let conf = AccountConf {
            delete: Some(true),
            skip_larger: Some(crate::config::Size(100)),
            ..AccountConf::default()
        };
        let r = request_for(&args(&[]), &conf, Some("a"), "k").unwrap();
        assert!(r.delete && r.keep_days.is_none());
        assert_eq!(r.skip_larger, Some(100));
        let r = request_for(&args(&["--keep"]), &conf, Some("a"), "k").unwrap();
        assert!(!r.delete);
        let r = request_for(&args(&["--skip-larger", "1k"]), &conf, Some("a"), "k").unwrap();
        assert_eq!(r.skip_larger, Some(1024));
        // keep_days replaces delete = true (say, from [defaults]).
        let days = AccountConf {
            keep_days: Some(3),
            ..conf.clone()
        };
        let r = request_for(&args(&[]), &days, Some("a"), "k").unwrap();
        assert!(!r.delete && r.keep_days == Some(3));
        let r = request_for(&args(&["--delete"]), &days, Some("a"), "k").unwrap();
        assert!(r.delete && r.keep_days.is_none());
        let r = request_for(&args(&["--keep"]), &days, Some("a"), "k").unwrap();
        assert!(!r.delete && r.keep_days.is_none());
        // The account's destination is used only without a flag one.
        let md = AccountConf {
            mbox: Some(PathBuf::from("/tmp/m")),
            ..AccountConf::default()
        };
        let r = request_for(&args(&[]), &md, Some("a"), "k").unwrap();
        assert!(matches!(r.target, Target::Store(Dest::Maildir(_))));
    }

    #[test]
    fn reply_parts_of_server_errors() {
        let p = |m: &str| reply_parts(m);
        assert_eq!(
            p("logging in as alice: PASS failed: -ERR [IN-USE] locked"),
            (Some("PASS".into()), Some("IN-USE".into()))
        );
        assert_eq!(
            p("LIST: LIST failed: -ERR no listing"),
            (Some("LIST".into()), None)
        );
        assert_eq!(
            p("x: AUTH failed: -ERR [SYS/TEMP] later"),
            (Some("AUTH".into()), Some("SYS/TEMP".into()))
        );
        assert_eq!(p("connecting: connection refused"), (None, None));
        assert_eq!(p("x: -ERR [bad code!] y").1, None);
    }
}

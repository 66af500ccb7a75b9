//! `pop3 fetch` for the command line's server or for configuration
//! accounts (`--account NAME`..., `--all-accounts`), several at once.
//!
//! Each account is resolved (flags over the account, the account over
//! what it inherits, that over `[defaults]`) and fetched on its own
//! thread, at most `--jobs` at a time. One account failing never stops
//! the others; the exit code is the worst class seen (the highest exit
//! code), and each account has its summary line (`--json`: its summary
//! object, and an error object when it failed).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
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

/// Prints the `--json` error object of `e` (for `account`, if any).
///
/// `command` and `response_code` are `null`: [`CliError`] carries only a
/// class and a message today.
pub fn json_error(e: &CliError, account: Option<&str>) -> Result<(), CliError> {
    json_line(&json!({
        "type": "error",
        "account": account,
        "class": class_name(e.class),
        "exit_code": e.class.code(),
        "command": serde_json::Value::Null,
        "response_code": serde_json::Value::Null,
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
    let delete = !args.keep && (args.delete || (conf.delete == Some(true) && keep_days.is_none()));
    if conf.delete == Some(true) && keep_days.is_some() && !args.keep && !args.delete {
        return Err(CliError::usage(format!(
            "account {:?}: delete = true and keep_days contradict each other",
            clean(label.unwrap_or(""))
        )));
    }
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
) -> Result<(), CliError> {
    let started = std::time::Instant::now();
    let label = account.map(|(n, _)| n);
    let mut tally = fetch::Tally::default();
    let mut destination = None;
    let r = (|| {
        let server = session::resolve_with(cli, account)?;
        let empty = AccountConf::default();
        let conf = account.map_or(&empty, |(_, c)| c);
        let mut req = request_for(args, conf, label, &server.account)?;
        req.progress = progress;
        destination = Some(req.target.describe());
        fetch::fetch(&server, cli, &req, &mut tally)
    })();
    if cli.json {
        if let Err(e) = &r {
            json_error(e, label)?;
        }
        let seconds = started.elapsed().as_secs_f64();
        json_line(&tally.to_json(label, destination, seconds, r.is_ok()))?;
    }
    r
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
        // `one` printed its own JSON objects.
        return one(cli, args, None, None).map_err(|e| (e, true));
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
    if accounts.len() == 1 {
        let (n, a) = &accounts[0];
        return one(cli, args, Some((n, a)), None).map_err(|e| (e, true));
    }
    let multi =
        std::io::IsTerminal::is_terminal(&std::io::stderr()).then(indicatif::MultiProgress::new);
    let next = AtomicUsize::new(0);
    let failures: Mutex<Vec<(String, CliError)>> = Mutex::new(Vec::new());
    let workers = usize::from(args.jobs).min(accounts.len());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some((n, a)) = accounts.get(i) else {
                    break;
                };
                let r = one(cli, args, Some((n, a)), multi.clone());
                if let Err(f) = report(n, r) {
                    failures.lock().unwrap_or_else(|e| e.into_inner()).push(f);
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    let Some(worst) = failures
        .iter()
        .map(|(_, e)| e.class)
        .max_by_key(|c| c.code())
    else {
        return Ok(());
    };
    let mut names: Vec<&str> = failures.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
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

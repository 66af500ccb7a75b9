//! The blocking interpreter of the shared `pop3-scenarios` list: every
//! command and error path against the scripted `pop3-testkit` server.
//!
//! `POP3_SCENARIO=name` runs only the scenarios whose name contains `name`.

use std::io;
use std::time::Duration;

use pop3_blocking::{Client, Disposition, Error, ErrorKind, MessageSink, TcpClient};
use pop3_scenarios::{capabilities_include, check, Expect, Scenario, Step};

fn kind<T>(r: Result<T, Error>) -> Result<T, ErrorKind> {
    r.map_err(|e| e.kind())
}

fn unit<T>(r: Result<T, Error>) -> Result<(), ErrorKind> {
    kind(r).map(|_| ())
}

/// Collects (number, bytes) and deletes when asked.
struct Collect {
    delete: bool,
    current: Vec<u8>,
    done: Vec<(u32, Vec<u8>)>,
}

impl MessageSink for Collect {
    fn begin(&mut self, _: u32) -> io::Result<()> {
        self.current.clear();
        Ok(())
    }
    fn data(&mut self, _: u32, chunk: &[u8]) -> io::Result<()> {
        self.current.extend_from_slice(chunk);
        Ok(())
    }
    fn end(&mut self, n: u32, octets: u64) -> io::Result<Disposition> {
        assert_eq!(octets as usize, self.current.len());
        self.done.push((n, std::mem::take(&mut self.current)));
        Ok(if self.delete {
            Disposition::Delete
        } else {
            Disposition::Keep
        })
    }
}

fn step(c: &mut TcpClient, step: &Step) -> Result<(), String> {
    match step {
        Step::Login(u, p, e) => check("login", unit(c.login(u, p)), e),
        Step::User(u, e) => check("user", unit(c.user(u)), e),
        Step::Pass(p, e) => check("pass", unit(c.pass(p)), e),
        Step::Apop(u, p, e) => check("apop", unit(c.apop(u, p)), e),
        Step::Stat(e) => check("stat", kind(c.stat()), e),
        Step::List(e) => check("list", kind(c.list()), e),
        Step::ListOne(n, e) => check("list_one", kind(c.list_one(*n)), e),
        Step::Uidl(e) => {
            let got = kind(c.uidl()).map(|v| {
                v.into_iter()
                    .map(|u| (u.number, u.uid.to_string()))
                    .collect::<Vec<_>>()
            });
            check("uidl", got, e)
        }
        Step::UidlOne(n, e) => {
            let got = kind(c.uidl_one(*n)).map(|u| (u.number, u.uid.to_string()));
            check("uidl_one", got, e)
        }
        Step::Retr(n, e) => {
            // Streaming form; compare with `retr` too when it must succeed.
            let mut buf = Vec::new();
            let got = kind(c.retr_to(*n, &mut buf)).map(|octets| {
                assert_eq!(octets as usize, buf.len());
                buf
            });
            check(&format!("retr {n}"), got, e)
        }
        Step::Top(n, l, e) => check(&format!("top {n} {l}"), kind(c.top(*n, *l)), e),
        Step::Dele(n, e) => check("dele", unit(c.dele(*n)), e),
        Step::Rset(e) => check("rset", unit(c.rset()), e),
        Step::Noop(e) => check("noop", unit(c.noop()), e),
        Step::Quit(e) => check("quit", unit(c.quit()), e),
        Step::Capa(e) => match (kind(c.capa()), e) {
            (Ok(caps), Expect::Ok(want)) if !capabilities_include(&caps, want) => {
                Err(format!("capa: {caps:?} lacks one of {want:?}"))
            }
            (Ok(_), Expect::Ok(_)) => Ok(()),
            (got, e) => check("capa", got.map(|_| ()), &map_expect(e)),
        },
        Step::Utf8(e) => check("utf8", unit(c.utf8()), e),
        Step::Lang(t, e) => check("lang", unit(c.lang(t)), e),
        Step::Languages(e) => {
            let got = kind(c.languages()).map(|v| v.into_iter().map(|l| l.tag).collect());
            check("languages", got, e)
        }
        Step::RetrEach {
            msgs,
            delete,
            expect,
        } => {
            let mut sink = Collect {
                delete: *delete,
                current: Vec::new(),
                done: Vec::new(),
            };
            let got = kind(c.retr_each(msgs.iter().copied(), &mut sink)).map(|report| {
                if *delete {
                    assert_eq!(report.deleted.len(), sink.done.len(), "{report:?}");
                }
                sink.done
            });
            check("retr_each", got, expect)
        }
        Step::TopEach {
            msgs,
            lines,
            expect,
        } => {
            let mut sink = Collect {
                delete: false,
                current: Vec::new(),
                done: Vec::new(),
            };
            let got = kind(c.top_each(msgs.iter().copied(), *lines, &mut sink)).map(|_| sink.done);
            check("top_each", got, expect)
        }
        other => Err(format!(
            "step not supported by the blocking interpreter: {other:?}"
        )),
    }
}

fn map_expect<T>(e: &Expect<T>) -> Expect<()> {
    match e {
        Expect::Ok(_) | Expect::Any => Expect::Any,
        Expect::Err(k) => Expect::Err(k.clone()),
    }
}

fn run(s: &Scenario) -> Result<(), String> {
    let server = (s.server)()
        .start()
        .map_err(|e| format!("server start: {e}"))?;
    let options = s.connect_options(&server);
    let connected = Client::connect("127.0.0.1", server.port(), &options);
    let (client, got) = match connected {
        Ok(c) => (Some(c), Ok(())),
        Err(e) => (None, Err(e.kind())),
    };
    check("connect", got, &s.connect.expect)?;
    if let Some(mut client) = client {
        for (i, st) in s.steps.iter().enumerate() {
            step(&mut client, st).map_err(|e| format!("step {i}: {e}"))?;
        }
        drop(client);
    }
    s.check_server(&server)
}

#[test]
fn shared_scenarios() {
    let filter = std::env::var("POP3_SCENARIO").unwrap_or_default();
    let all: Vec<Scenario> = pop3_scenarios::all()
        .into_iter()
        .filter(|s| s.name.contains(filter.as_str()))
        .collect();
    assert!(!all.is_empty(), "no scenario matches {filter:?}");
    // Run a few at a time: most of the time is spent waiting (timeouts).
    let failures = std::sync::Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(s) = all.get(i) else { return };
                let start = std::time::Instant::now();
                let r = run(s);
                eprintln!(
                    "scenario {:45} {} ({:?})",
                    s.name,
                    if r.is_ok() { "ok" } else { "FAILED" },
                    start.elapsed()
                );
                if let Err(e) = r {
                    failures.lock().unwrap().push(format!("{}: {e}", s.name));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
    let _ = Duration::ZERO;
}

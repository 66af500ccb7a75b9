//! The async interpreter of the shared `pop3-scenarios` list: every command
//! and error path against the scripted `pop3-testkit` server, the same list
//! `pop3-blocking` runs.
//!
//! `POP3_SCENARIO=name` runs only the scenarios whose name contains `name`.

use std::io;

use pop3_scenarios::{capabilities_include, check, Expect, Scenario, Step};
use pop3_tokio::{Client, Disposition, Error, ErrorKind, MessageSink, TcpClient};

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

impl Collect {
    fn new(delete: bool) -> Collect {
        Collect {
            delete,
            current: Vec::new(),
            done: Vec::new(),
        }
    }
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

fn map_expect<T>(e: &Expect<T>) -> Expect<()> {
    match e {
        Expect::Ok(_) | Expect::Any => Expect::Any,
        Expect::Err(k) => Expect::Err(k.clone()),
    }
}

async fn step(c: &mut TcpClient, step: &Step) -> Result<(), String> {
    match step {
        Step::Login(u, p, e) => check("login", unit(c.login(u, p).await), e),
        Step::User(u, e) => check("user", unit(c.user(u).await), e),
        Step::Pass(p, e) => check("pass", unit(c.pass(p).await), e),
        Step::Apop(u, p, e) => check("apop", unit(c.apop(u, p).await), e),
        Step::Stat(e) => check("stat", kind(c.stat().await), e),
        Step::List(e) => check("list", kind(c.list().await), e),
        Step::ListOne(n, e) => check("list_one", kind(c.list_one(*n).await), e),
        Step::Uidl(e) => {
            let got = kind(c.uidl().await).map(|v| {
                v.into_iter()
                    .map(|u| (u.number, u.uid.to_string()))
                    .collect::<Vec<_>>()
            });
            check("uidl", got, e)
        }
        Step::UidlOne(n, e) => {
            let got = kind(c.uidl_one(*n).await).map(|u| (u.number, u.uid.to_string()));
            check("uidl_one", got, e)
        }
        Step::Retr(n, e) => {
            // The streaming form.
            let mut buf = Vec::new();
            let got = kind(c.retr_to(*n, &mut buf).await).map(|octets| {
                assert_eq!(octets as usize, buf.len());
                buf
            });
            check(&format!("retr {n}"), got, e)
        }
        Step::Top(n, l, e) => check(&format!("top {n} {l}"), kind(c.top(*n, *l).await), e),
        Step::Dele(n, e) => check("dele", unit(c.dele(*n).await), e),
        Step::Rset(e) => check("rset", unit(c.rset().await), e),
        Step::Noop(e) => check("noop", unit(c.noop().await), e),
        Step::Quit(e) => check("quit", unit(c.quit().await), e),
        Step::Capa(e) => match (kind(c.capa().await), e) {
            (Ok(caps), Expect::Ok(want)) if !capabilities_include(&caps, want) => {
                Err(format!("capa: {caps:?} lacks one of {want:?}"))
            }
            (Ok(_), Expect::Ok(_)) => Ok(()),
            (got, e) => check("capa", got.map(|_| ()), &map_expect(e)),
        },
        Step::Utf8(e) => check("utf8", unit(c.utf8().await), e),
        Step::Lang(t, e) => check("lang", unit(c.lang(t).await), e),
        Step::Languages(e) => {
            let got = kind(c.languages().await).map(|v| v.into_iter().map(|l| l.tag).collect());
            check("languages", got, e)
        }
        Step::RetrEach {
            msgs,
            delete,
            expect,
        } => {
            let mut sink = Collect::new(*delete);
            let got = kind(c.retr_each(msgs.iter().copied(), &mut sink).await).map(|report| {
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
            let mut sink = Collect::new(false);
            let got =
                kind(c.top_each(msgs.iter().copied(), *lines, &mut sink).await).map(|_| sink.done);
            check("top_each", got, expect)
        }
        other => Err(format!(
            "step not supported by the tokio interpreter: {other:?}"
        )),
    }
}

async fn run(s: &Scenario) -> Result<(), String> {
    let server = (s.server)()
        .start()
        .map_err(|e| format!("server start: {e}"))?;
    let options = s.connect_options(&server);
    let connected = Client::connect("127.0.0.1", server.port(), &options).await;
    let (client, got) = match connected {
        Ok(c) => (Some(c), Ok(())),
        Err(e) => (None, Err(e.kind())),
    };
    check("connect", got, &s.connect.expect)?;
    if let Some(mut client) = client {
        for (i, st) in s.steps.iter().enumerate() {
            step(&mut client, st)
                .await
                .map_err(|e| format!("step {i}: {e}"))?;
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
    // A few at a time, each on its own thread and current-thread runtime
    // (timing scenarios must not wait behind another scenario's CPU work).
    let results = std::sync::Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(s) = all.get(i) else { return };
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let start = std::time::Instant::now();
                let r = rt.block_on(run(s));
                results
                    .lock()
                    .unwrap()
                    .push((s.name.to_string(), r, start.elapsed()));
            });
        }
    });
    let results: Vec<(String, Result<(), String>, std::time::Duration)> =
        results.into_inner().unwrap();
    let mut failures = Vec::new();
    for (name, r, t) in &results {
        eprintln!(
            "scenario {:45} {} ({t:?})",
            name,
            if r.is_ok() { "ok" } else { "FAILED" }
        );
        if let Err(e) = r {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

//! The async interpreter of the shared `pop3-scenarios` list: every command
//! and error path against the scripted `pop3-testkit` server, the same list
//! `pop3-blocking` runs.
//!
//! `POP3_SCENARIO=name` runs only the scenarios whose name contains `name`.

use pop3_scenarios::{check, check_capa, kind, uidl_pair, uidl_pairs, unit, Collected, Step};
use pop3_tokio::{Client, TcpClient};

async fn step(c: &mut TcpClient, step: &Step) -> Result<(), String> {
    match step {
        Step::PrefetchListing => {
            c.set_prefetch_listing(true);
            Ok(())
        }
        Step::Login(u, p, e) => check("login", unit(c.login(u, p).await), e),
        Step::User(u, e) => check("user", unit(c.user(u).await), e),
        Step::Pass(p, e) => check("pass", unit(c.pass(p).await), e),
        Step::Apop(u, p, e) => check("apop", unit(c.apop(u, p).await), e),
        Step::Stat(e) => check("stat", kind(c.stat().await), e),
        Step::List(e) => check("list", kind(c.list().await), e),
        Step::ListOne(n, e) => check("list_one", kind(c.list_one(*n).await), e),
        Step::Uidl(e) => check("uidl", kind(c.uidl().await).map(uidl_pairs), e),
        Step::UidlOne(n, e) => {
            let got = kind(c.uidl_one(*n).await).map(|u| uidl_pair(&u));
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
        Step::Capa(e) => check_capa(c.capa().await, e),
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
            let mut sink = Collected::new(*delete);
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
            let mut sink = Collected::new(false);
            let got =
                kind(c.top_each(msgs.iter().copied(), *lines, &mut sink).await).map(|_| sink.done);
            check("top_each", got, expect)
        }
        other => Err(format!(
            "step not supported by the tokio interpreter: {other:?}"
        )),
    }
}

/// Connects and runs the steps of `s` on a current-thread runtime of its
/// own (timing scenarios must not wait behind another scenario's CPU
/// work); also used by the transcript-equality test.
pub fn run(
    s: &pop3_scenarios::Scenario,
    port: u16,
    options: &pop3_tokio::ConnectOptions,
) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(async {
        let connected = Client::connect("127.0.0.1", port, options).await;
        if let Some(mut client) = s.connected(connected)? {
            for (i, st) in s.steps.iter().enumerate() {
                step(&mut client, st)
                    .await
                    .map_err(|e| format!("step {i}: {e}"))?;
            }
        }
        Ok(())
    })
}

#[test]
fn shared_scenarios() {
    pop3_scenarios::run_all(run);
}

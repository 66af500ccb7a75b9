//! The blocking interpreter of the shared `pop3-scenarios` list: every
//! command and error path against the scripted `pop3-testkit` server.
//!
//! `POP3_SCENARIO=name` runs only the scenarios whose name contains `name`.

use pop3_blocking::{Client, TcpClient};
use pop3_scenarios::{check, check_capa, kind, uidl_pair, uidl_pairs, unit, Collected, Step};

fn step(c: &mut TcpClient, step: &Step) -> Result<(), String> {
    match step {
        Step::PrefetchListing => {
            c.set_prefetch_listing(true);
            Ok(())
        }
        Step::Login(u, p, e) => check("login", unit(c.login(u, p)), e),
        Step::User(u, e) => check("user", unit(c.user(u)), e),
        Step::Pass(p, e) => check("pass", unit(c.pass(p)), e),
        Step::Apop(u, p, e) => check("apop", unit(c.apop(u, p)), e),
        Step::Stat(e) => check("stat", kind(c.stat()), e),
        Step::List(e) => check("list", kind(c.list()), e),
        Step::ListOne(n, e) => check("list_one", kind(c.list_one(*n)), e),
        Step::Uidl(e) => check("uidl", kind(c.uidl()).map(uidl_pairs), e),
        Step::UidlOne(n, e) => check("uidl_one", kind(c.uidl_one(*n)).map(|u| uidl_pair(&u)), e),
        Step::Retr(n, e) => {
            // The streaming form.
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
        Step::Capa(e) => check_capa(c.capa(), e),
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
            let mut sink = Collected::new(*delete);
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
            let mut sink = Collected::new(false);
            let got = kind(c.top_each(msgs.iter().copied(), *lines, &mut sink)).map(|_| sink.done);
            check("top_each", got, expect)
        }
        other => Err(format!(
            "step not supported by the blocking interpreter: {other:?}"
        )),
    }
}

/// Connects and runs the steps of `s` (the blocking interpreter; also
/// used by pop3-tokio's transcript-equality test).
pub fn run(
    s: &pop3_scenarios::Scenario,
    port: u16,
    options: &pop3_blocking::ConnectOptions,
) -> Result<(), String> {
    if let Some(mut client) = s.connected(Client::connect("127.0.0.1", port, options))? {
        for (i, st) in s.steps.iter().enumerate() {
            step(&mut client, st).map_err(|e| format!("step {i}: {e}"))?;
        }
    }
    Ok(())
}

#[test]
fn shared_scenarios() {
    pop3_scenarios::run_all(run);
}

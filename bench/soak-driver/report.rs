//! The judgement after the run: the figures of the soak's table, each with its count and the
//! first example where its target is not met, and the markdown report.

use crate::app::is_admin_area;
use crate::oracle::{Expect, FaultKind, Oracle, Outcome, Window};
use crate::settings::{ALICE, BOB};
use std::collections::HashMap;
use std::fmt::Write as _;

/// Said of a logged-out JWT admitted by a replica restarted since the logout (counted in the
/// first figure like any other admission; the words help find the cause).
const JWT_RESTART_GAP: &str = " (replica restarted since the logout)";

/// One line of the figures table.
pub(crate) struct Figure {
    pub(crate) name: String,
    pub(crate) target: String,
    pub(crate) result: String,
    /// `None`: reported, not judged.
    pub(crate) met: Option<bool>,
    pub(crate) example: Option<String>,
}

/// A sample of one replica's process.
#[derive(Clone, Debug)]
pub(crate) struct Sample {
    pub(crate) at: f64,
    pub(crate) replica: usize,
    pub(crate) pid: u32,
    pub(crate) rss_kib: u64,
    /// The anonymous part of RSS (heap, stacks).
    pub(crate) anon_kib: u64,
    pub(crate) fds: u64,
    /// The descriptors by kind.
    pub(crate) kinds: Option<crate::stack::FdKinds>,
    /// The allocator's figures (read every few seconds, not every sample).
    pub(crate) allocator: Option<crate::stack::AllocatorFigures>,
    /// WebSocket tunnels open through the replica (its `/metrics`), read with `fds`: each
    /// holds two descriptors, the client's connection and the app's.
    pub(crate) tunnels: Option<u64>,
    /// CPU time the replica has used (clock ticks).
    pub(crate) cpu_ticks: Option<u64>,
    /// CPU time the driver (clients, oracle, emulator, app) has used, read with the sample.
    pub(crate) driver_ticks: Option<u64>,
    /// The machine's CPU time, read with the sample.
    pub(crate) machine: Option<crate::stack::MachineTicks>,
}

impl Sample {
    /// Descriptors other than those of open WebSocket tunnels: what a leak would grow, while a
    /// tunnel's two are load the replica serves (clients move between replicas at restarts).
    fn fds_beside_tunnels(&self) -> Option<u64> {
        Some(self.fds.saturating_sub(2 * self.tunnels?))
    }
}

/// What the run knows besides the oracle's records.
pub(crate) struct RunFacts {
    pub(crate) title: String,
    pub(crate) command: String,
    /// The gateway binary and the profiles of it and the driver (figures of a debug build say
    /// nothing about speed).
    pub(crate) build: String,
    pub(crate) duration: f64,
    pub(crate) rate: f64,
    /// End of the fault-free start (the first minute, or the smoke's first phase).
    pub(crate) baseline_end: f64,
    /// When the memory reference is taken ("minute 2").
    pub(crate) memory_reference: f64,
    pub(crate) samples: Vec<Sample>,
    /// The emulator's counters each second: `(time, userinfo calls, refresh calls)`.
    pub(crate) salesforce_calls: Vec<(f64, u64, u64)>,
    pub(crate) cache_ttl: f64,
    pub(crate) schedule: Vec<String>,
    pub(crate) notes: Vec<String>,
    /// Replica restarted by the rolling restart.
    pub(crate) restarted_replica: usize,
}

pub(crate) struct Judgement {
    pub(crate) markdown: String,
    /// Requests admitted that should have been refused (the CI gate).
    pub(crate) wrongly_admitted: usize,
    pub(crate) crashes: usize,
}

/// The 15-character user id of a demo user, as the app sees it in `X-Salesforce-User-Id`.
fn user_id_prefix(username: &str) -> Option<&'static str> {
    match username {
        u if u == ALICE.0 => Some("0055j00000AlIcE"),
        u if u == BOB.0 => Some("0055j00000BoB01"),
        _ => None,
    }
}

fn windows_over<'a>(windows: &'a [Window], o: &Outcome) -> Vec<&'a Window> {
    windows
        .iter()
        .filter(|w| {
            let end = w.end.unwrap_or(f64::MAX) + w.settle;
            o.sent <= end && o.done >= w.start
        })
        .collect()
}

fn describe(o: &Outcome, windows: &[Window]) -> String {
    let inside: Vec<String> = windows_over(windows, o).iter().map(|w| w.label()).collect();
    let status = if o.status == 0 {
        format!("no answer ({})", o.note)
    } else if o.note.is_empty() {
        format!("{}", o.status)
    } else {
        format!("{} `{}`", o.status, o.note)
    };
    format!(
        "`{}` by {} (id {}) sent at {:.1} s, expected {}, got {status}{}; {}",
        o.what,
        o.client,
        o.id,
        o.sent,
        match &o.expect {
            Expect::Admit(u) => format!("admitted as {u}"),
            Expect::Refuse => "refused".into(),
            Expect::Either(u) => format!("either (as {u})"),
        },
        if o.retry_after {
            " with Retry-After"
        } else {
            ""
        },
        if inside.is_empty() {
            "outside fault windows".to_string()
        } else {
            format!("during {}", inside.join(", "))
        }
    )
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn count_line(name: &str, target: &str, found: &[String], judged: bool) -> Figure {
    Figure {
        name: name.into(),
        target: target.into(),
        result: found.len().to_string(),
        met: judged.then_some(found.is_empty()),
        example: found.first().cloned(),
    }
}

pub(crate) fn judge(oracle: &Oracle, facts: &RunFacts) -> Judgement {
    let outcomes = oracle
        .outcomes
        .lock()
        .map(|o| o.clone())
        .unwrap_or_default();
    let app = oracle.app.lock().map(|a| a.clone()).unwrap_or_default();
    let unattributed = oracle
        .app_unattributed
        .lock()
        .map(|u| u.clone())
        .unwrap_or_default();
    let windows = oracle.windows.lock().map(|w| w.clone()).unwrap_or_default();
    let drops = oracle
        .ws_drops
        .lock()
        .map(|d| d.clone())
        .unwrap_or_default();
    let crashes = oracle.crashes.lock().map(|c| c.clone()).unwrap_or_default();
    let mut figures = Vec::new();

    // 1. Admitted that should have been refused: by the answers and by what the app received.
    let mut wrong = Vec::new();
    for o in &outcomes {
        // One line per request, however many checks it fails.
        let before = wrong.len();
        let seen = app.get(&o.id);
        match &o.expect {
            Expect::Refuse if o.admitted() || (o.own_ok.is_none() && seen.is_some()) => {
                // A JWT's logout is remembered per process: a replica restarted since then
                // (and serving this request) no longer knows it.
                let restarted_since = o.ended_at.is_some_and(|ended| {
                    o.what.contains("(jwt)")
                        && seen
                            .into_iter()
                            .flatten()
                            .any(|s| s.replica == facts.restarted_replica)
                        && windows.iter().any(|w| {
                            w.kind == FaultKind::RollingRestart
                                && w.start > ended
                                && w.start < o.sent
                        })
                });
                let tag = if restarted_since { JWT_RESTART_GAP } else { "" };
                wrong.push(format!("{}{tag}", describe(o, &windows)));
            }
            Expect::Admit(user) | Expect::Either(user) => {
                for s in seen.into_iter().flatten() {
                    let expected = user_id_prefix(user);
                    let real = s.user_id.as_deref().unwrap_or("");
                    if expected.is_some_and(|e| !real.starts_with(e)) {
                        wrong.push(format!(
                            "the app received {} as user id {real:?} ({:?}) (replica {}): {}",
                            s.path,
                            s.username,
                            s.replica + 1,
                            describe(o, &windows)
                        ));
                    }
                }
            }
            _ => {}
        }
        for s in seen.into_iter().flatten() {
            if !s.forged.is_empty() {
                wrong.push(format!(
                    "forged identity headers {:?} reached the app (replica {}): {}",
                    s.forged,
                    s.replica + 1,
                    describe(o, &windows)
                ));
            }
            let admin = user_id_prefix(ALICE.0).unwrap_or_default();
            if is_admin_area(&s.path) && !s.user_id.as_deref().unwrap_or("").starts_with(admin) {
                wrong.push(format!(
                    "the app served its admin area ({}) to user id {:?}: {}",
                    s.path,
                    s.user_id,
                    describe(o, &windows)
                ));
            }
        }
        wrong.truncate(before + usize::from(wrong.len() > before));
    }
    for s in &unattributed {
        wrong.push(format!(
            "the app received {} {} without a soak id at {:.1} s (replica {}, user id {:?})",
            s.method,
            s.path,
            s.at,
            s.replica + 1,
            s.user_id
        ));
    }
    figures.push(count_line(
        "requests that should have been refused and were admitted (at the app)",
        "**0**",
        &wrong,
        true,
    ));

    // 2. Should pass, failed outside fault windows.
    let should_pass = |o: &&Outcome| matches!(o.expect, Expect::Admit(_));
    let failed_outside: Vec<String> = outcomes
        .iter()
        .filter(should_pass)
        .filter(|o| !o.admitted() && windows_over(&windows, o).is_empty())
        .map(|o| describe(o, &windows))
        .collect();
    figures.push(count_line(
        "requests that should pass, failed outside fault windows",
        "0",
        &failed_outside,
        false,
    ));

    // 3. During each fault: answers other than the documented ones.
    let documented = |o: &Outcome| {
        (matches!(o.status, 502..=504) && o.retry_after) || (o.session && o.login_again)
    };
    let mut per_fault = String::new();
    let mut undocumented_all = Vec::new();
    for w in &windows {
        let inside: Vec<&Outcome> = outcomes
            .iter()
            .filter(|o| windows_over(std::slice::from_ref(w), o).len() == 1)
            .collect();
        let failed: Vec<&&Outcome> = inside
            .iter()
            .filter(|o| matches!(o.expect, Expect::Admit(_)) && !o.admitted())
            .collect();
        let undocumented: Vec<String> = failed
            .iter()
            .filter(|o| !documented(o))
            .map(|o| describe(o, &windows))
            .collect();
        let mut by_status: HashMap<String, usize> = HashMap::new();
        for o in &failed {
            let key = if o.status == 0 {
                "no answer".to_string()
            } else {
                format!("{}{}", o.status, if o.retry_after { "+RA" } else { "" })
            };
            *by_status.entry(key).or_default() += 1;
        }
        let mut by_status: Vec<_> = by_status.into_iter().collect();
        by_status.sort();
        let _ = writeln!(
            per_fault,
            "| {} | {} | {} | {} | {} |",
            w.label(),
            inside.len(),
            failed.len(),
            by_status
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            undocumented.len()
        );
        undocumented_all.extend(undocumented);
    }
    figures.push(count_line(
        "during each fault: answers other than the documented ones (502/503/504 with `Retry-After`, 401 on session end)",
        "0",
        &undocumented_all,
        false,
    ));

    // 4. Sessions lost across the rolling restart and the Redis restart.
    let restart_kinds = [FaultKind::RollingRestart, FaultKind::RedisDown];
    let mut lost_judged = Vec::new();
    let mut lost_elsewhere = Vec::new();
    for o in outcomes
        .iter()
        .filter(|o| o.session && o.login_again && matches!(o.expect, Expect::Admit(_)))
    {
        let over = windows_over(&windows, o);
        if over.iter().any(|w| restart_kinds.contains(&w.kind)) {
            lost_judged.push(describe(o, &windows));
        } else {
            lost_elsewhere.push(describe(o, &windows));
        }
    }
    figures.push(count_line(
        "sessions lost across the rolling restart and the Redis restart (user forced to log in again)",
        "0",
        &lost_judged,
        false,
    ));
    figures.push(count_line(
        "sessions lost at other times",
        "reported",
        &lost_elsewhere,
        false,
    ));

    // 5. WebSockets dropped by the rolling restart on the replica that was not restarted.
    let in_kind = |at: f64, kind: FaultKind| {
        windows
            .iter()
            .any(|w| w.kind == kind && at >= w.start && at <= w.end.unwrap_or(f64::MAX) + w.settle)
    };
    let describe_drop = |d: &crate::oracle::WsDrop| {
        format!(
            "socket through replica {} dropped at {:.1} s: {}",
            d.replica.map_or("?".to_string(), |r| (r + 1).to_string()),
            d.at,
            d.reason
        )
    };
    let ws_rolling: Vec<String> = drops
        .iter()
        .filter(|d| {
            in_kind(d.at, FaultKind::RollingRestart)
                && d.replica != Some(facts.restarted_replica)
                && !in_kind(d.at, FaultKind::AppRestart)
        })
        .map(describe_drop)
        .collect();
    figures.push(count_line(
        "WebSockets dropped by the rolling restart on the replica that was not restarted",
        "0",
        &ws_rolling,
        false,
    ));
    let ws_other: Vec<String> = drops
        .iter()
        .filter(|d| {
            !in_kind(d.at, FaultKind::AppRestart) && !in_kind(d.at, FaultKind::RollingRestart)
        })
        .map(describe_drop)
        .collect();
    figures.push(count_line(
        "WebSockets dropped outside the app restart and the rolling restart",
        "0",
        &ws_other,
        false,
    ));

    // 6. p99 latency outside fault windows vs the first minute.
    let clean: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.own_ok.is_none() && o.admitted() && o.status != 101)
        .filter(|o| windows_over(&windows, o).is_empty())
        .collect();
    let ms = |o: &&Outcome| (o.done - o.sent) * 1000.0;
    let first: Vec<f64> = clean
        .iter()
        .filter(|o| o.sent < facts.baseline_end)
        .map(ms)
        .collect();
    let rest: Vec<f64> = clean
        .iter()
        .filter(|o| o.sent >= facts.baseline_end)
        .map(ms)
        .collect();
    let (p99_first, p99_rest) = (
        percentile(first.clone(), 0.99),
        percentile(rest.clone(), 0.99),
    );
    let ratio = if p99_first > 0.0 {
        p99_rest / p99_first
    } else {
        0.0
    };
    figures.push(Figure {
        name: format!(
            "p99 latency outside fault windows vs the first {:.0} s",
            facts.baseline_end
        ),
        target: "≤ 1.5 ×".into(),
        result: format!(
            "{ratio:.2} × ({p99_rest:.1} ms over {} requests vs {p99_first:.1} ms over {}; p50 {:.1} ms vs {:.1} ms)",
            rest.len(),
            first.len(),
            percentile(rest.clone(), 0.5),
            percentile(first.clone(), 0.5)
        ),
        met: Some(ratio <= 1.5 && !first.is_empty()),
        example: None,
    });

    // Latency outside fault windows through the run, by period, so that a creep shows.
    let period = (facts.duration / 12.0).max(5.0);
    let mut latency_rows = String::new();
    let mut from = 0.0;
    while from < facts.duration {
        let to = from + period;
        let times: Vec<f64> = clean
            .iter()
            .filter(|o| o.sent >= from && o.sent < to)
            .map(ms)
            .collect();
        if !times.is_empty() {
            let _ = writeln!(
                latency_rows,
                "| {from:.0} – {to:.0} s | {} | {:.1} ms | {:.1} ms |",
                times.len(),
                percentile(times.clone(), 0.5),
                percentile(times, 0.99)
            );
        }
        from = to;
    }

    // 7. RSS and open descriptors, end vs the reference, each replica.
    let mut memory_rows = String::new();
    for replica in 0..2 {
        let mine: Vec<&Sample> = facts
            .samples
            .iter()
            .filter(|s| s.replica == replica)
            .collect();
        let Some(last) = mine.last() else { continue };
        let same_process: Vec<&&Sample> = mine.iter().filter(|s| s.pid == last.pid).collect();
        let since = same_process.first().map_or(0.0, |s| s.at);
        // Minute 2 of the process's own life: a replica restarted during the run is compared
        // once it has warmed up as long as the first one had, not while it is filling up.
        let reference_at = facts.memory_reference.max(since + facts.memory_reference);
        let reference = same_process
            .iter()
            .find(|s| s.at >= reference_at)
            .or(same_process.first())
            .copied();
        let Some(reference) = reference else { continue };
        let growth = |a: u64, b: u64| {
            if a == 0 {
                0.0
            } else {
                (b as f64 / a as f64 - 1.0) * 100.0
            }
        };
        let (rss, fds) = (
            growth(reference.rss_kib, last.rss_kib),
            growth(reference.fds, last.fds),
        );
        // Judged on the descriptors beside open tunnels where both samples have them.
        let beside = reference
            .fds_beside_tunnels()
            .zip(last.fds_beside_tunnels());
        let judged_fds = beside.map_or(fds, |(a, b)| growth(a, b));
        let beside_text = beside.map_or(String::new(), |(a, b)| {
            format!(
                "; beside open WebSocket tunnels (2 descriptors each: {} → {} tunnels) {a} → {b} ({:+.1} %)",
                reference.tunnels.unwrap_or(0),
                last.tunnels.unwrap_or(0),
                growth(a, b)
            )
        });
        let restarted = if same_process.len() < mine.len() {
            " (after its restart)"
        } else {
            ""
        };
        figures.push(Figure {
            name: format!(
                "replica {} RSS and open descriptors, end vs {:.0} s{restarted}",
                replica + 1,
                reference.at
            ),
            target: "≤ + 5 %".into(),
            result: format!(
                "RSS {:.1} → {:.1} MiB ({rss:+.1} %), descriptors {} → {} ({fds:+.1} %){beside_text}",
                reference.rss_kib as f64 / 1024.0,
                last.rss_kib as f64 / 1024.0,
                reference.fds,
                last.fds
            ),
            met: Some(rss <= 5.0 && judged_fds <= 5.0),
            example: None,
        });
        let kinds = |s: &Sample| s.kinds.as_ref().map_or("?".to_string(), |k| k.describe());
        let _ = writeln!(
            memory_rows,
            "| {} | {} | {:.1} → {:.1} MiB | {} → {} | {} → {} |",
            replica + 1,
            if restarted.is_empty() {
                "whole run"
            } else {
                "after its restart"
            },
            reference.rss_kib as f64 / 1024.0,
            last.rss_kib as f64 / 1024.0,
            reference.fds,
            last.fds,
            kinds(reference),
            kinds(last)
        );
    }

    // 8. Salesforce calls per distinct credential per cache TTL, counted over the seconds no
    // fault touched (a Redis restart empties both cache levels: its window is extended by a
    // TTL, as are the Salesforce faults, whose failed checks are not cached).
    let clean = |from: f64, to: f64| {
        windows.iter().all(|w| {
            let end = w.end.unwrap_or(f64::MAX) + w.settle + facts.cache_ttl;
            to < w.start || from > end
        })
    };
    let (mut calls, mut refreshes, mut clean_seconds) = (0u64, 0u64, 0.0);
    let mut clean_spans = Vec::new();
    for pair in facts.salesforce_calls.windows(2) {
        let ((t0, u0, r0), (t1, u1, r1)) = (pair[0], pair[1]);
        if clean(t0, t1) {
            calls += u1.saturating_sub(u0);
            refreshes += r1.saturating_sub(r0);
            clean_seconds += t1 - t0;
            clean_spans.push((t0, t1));
        }
    }
    let in_clean = |t: f64| clean_spans.iter().any(|(a, b)| t >= *a && t < *b);
    let mut first_seen: HashMap<u64, f64> = HashMap::new();
    for o in outcomes.iter().filter(|o| o.cred != 0) {
        let e = first_seen.entry(o.cred).or_insert(o.sent);
        *e = e.min(o.sent);
    }
    let mut periods = std::collections::HashSet::new();
    for o in outcomes.iter().filter(|o| o.cred != 0 && in_clean(o.sent)) {
        let first = first_seen.get(&o.cred).copied().unwrap_or(o.sent);
        periods.insert((o.cred, ((o.sent - first) / facts.cache_ttl).floor() as u64));
    }
    let logins = outcomes
        .iter()
        .filter(|o| {
            o.client == "browser-login"
                && o.what.contains(crate::settings::CALLBACK_PATH)
                && in_clean(o.sent)
        })
        .count();
    let allowed = periods.len() + logins + refreshes as usize;
    let per = if allowed > 0 {
        calls as f64 / allowed as f64
    } else {
        0.0
    };
    figures.push(Figure {
        name: "Salesforce calls per distinct token per cache TTL".into(),
        target: "≤ 1".into(),
        result: format!(
            "{per:.2} ({calls} `userinfo` calls in the {clean_seconds:.0} s no fault touched, for {} token-TTL periods, {logins} logins and {refreshes} renewals)",
            periods.len()
        ),
        met: Some(per <= 1.0),
        example: None,
    });

    let crash_lines: Vec<String> = crashes
        .iter()
        .map(|c| format!("{} exited at {:.1} s ({})", c.component, c.at, c.status))
        .collect();
    figures.push(count_line(
        "crashes of a component the soak did not stop",
        "**0**",
        &crash_lines,
        true,
    ));

    let markdown = render(
        facts,
        &figures,
        &per_fault,
        &memory_rows,
        &latency_rows,
        &outcomes,
        oracle,
        &drops,
        &windows,
    );
    Judgement {
        markdown,
        wrongly_admitted: wrong.len(),
        crashes: crashes.len(),
    }
}

#[allow(clippy::too_many_arguments)]
fn render(
    facts: &RunFacts,
    figures: &[Figure],
    per_fault: &str,
    memory_rows: &str,
    latency_rows: &str,
    outcomes: &[Outcome],
    oracle: &Oracle,
    drops: &[crate::oracle::WsDrop],
    windows: &[Window],
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# {}\n", facts.title);
    let _ = writeln!(
        md,
        "`{}`: {:.0} s at {} requests/s, nginx in front of two sfgate replicas in gateway mode sharing a `redis-server`, the built-in Salesforce emulator (opaque and JWT tokens, refresh-token rotation on), and a test app with a WebSocket echo. Gateway: {}. Written by the run; see [docs/soak.md](../docs/soak.md).\n",
        facts.command, facts.duration, facts.rate, facts.build
    );
    let _ = writeln!(md, "## Figures\n");
    let _ = writeln!(md, "| figure | target | result | met |");
    let _ = writeln!(md, "|---|---|---|---|");
    for f in figures {
        let met = match f.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None if f.result == "0" => "yes",
            None => "reported",
        };
        let _ = writeln!(md, "| {} | {} | {} | {met} |", f.name, f.target, f.result);
    }
    let examples: Vec<&Figure> = figures.iter().filter(|f| f.example.is_some()).collect();
    if !examples.is_empty() {
        let _ = writeln!(md, "\n### First example of each figure not met\n");
        for f in examples {
            let _ = writeln!(
                md,
                "- **{}** ({}): {}",
                f.name,
                f.result,
                f.example.as_deref().unwrap_or_default()
            );
        }
    }
    let _ = writeln!(md, "\n## Faults\n");
    let _ = writeln!(md, "| fault (window, seconds from the start) | requests during it | should pass, did not | their answers (+RA: with `Retry-After`) | undocumented |");
    let _ = writeln!(md, "|---|---|---|---|---|");
    md.push_str(per_fault);
    let _ = writeln!(md, "\nEach window runs from the fault's start to its end plus a settle time; a request counts in it when its time in flight overlaps.\n");
    let _ = writeln!(md, "Schedule as planned:\n");
    for s in &facts.schedule {
        let _ = writeln!(md, "- {s}");
    }
    let _ = writeln!(md, "\n## Requests by client\n");
    let _ = writeln!(
        md,
        "| client | requests | expected to pass | passed | expected refused | refused |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    let mut by_client: Vec<(&str, [usize; 5])> = Vec::new();
    for o in outcomes {
        let idx = match by_client.iter().position(|(c, _)| *c == o.client) {
            Some(i) => i,
            None => {
                by_client.push((o.client, [0; 5]));
                by_client.len() - 1
            }
        };
        let c = &mut by_client[idx].1;
        c[0] += 1;
        match o.expect {
            Expect::Admit(_) => {
                c[1] += 1;
                c[2] += usize::from(o.admitted());
            }
            Expect::Refuse => {
                c[3] += 1;
                c[4] += usize::from(!o.admitted());
            }
            Expect::Either(_) => {}
        }
    }
    by_client.sort_by_key(|(c, _)| *c);
    for (client, c) in &by_client {
        let _ = writeln!(
            md,
            "| {client} | {} | {} | {} | {} | {} |",
            c[0], c[1], c[2], c[3], c[4]
        );
    }
    let skipped = oracle.skipped.load(std::sync::atomic::Ordering::Relaxed);
    let _ = writeln!(
        md,
        "\n{} requests in all; {} not started because too many were in flight (the driver's bound); {} WebSocket drops, {} in the app restart and rolling restart windows.",
        outcomes.len(),
        skipped,
        drops.len(),
        drops
            .iter()
            .filter(|d| windows.iter().any(|w| matches!(w.kind, FaultKind::AppRestart | FaultKind::RollingRestart)
                && d.at >= w.start
                && d.at <= w.end.unwrap_or(f64::MAX) + w.settle))
            .count()
    );
    if !memory_rows.is_empty() {
        let _ = writeln!(
            md,
            "\n## Replicas\n\n| replica | span | RSS | open descriptors | descriptors by kind |\n|---|---|---|---|---|"
        );
        md.push_str(memory_rows);
    }
    md.push_str(&minute_series(&facts.samples));
    md.push_str(&cpu_series(&facts.samples));
    if !latency_rows.is_empty() {
        let _ = writeln!(
            md,
            "\n## Latency outside fault windows, by period\n\nRequests admitted to the app (WebSockets and sfgate's own routes left out) whose time in flight no fault window overlaps.\n\n| sent | requests | p50 | p99 |\n|---|---|---|---|"
        );
        md.push_str(latency_rows);
    }
    if !facts.notes.is_empty() {
        let _ = writeln!(md, "\n## Notes\n");
        for n in &facts.notes {
            let _ = writeln!(md, "- {n}");
        }
    }
    md
}

/// Who used the machine's CPU, minute by minute: each replica, the driver (whose clients,
/// emulator and app share its process), everything, and what the hypervisor gave to other
/// guests, each as a share of the machine's time over the minute (all cores: 100 %), so that a
/// latency that climbs can be told apart from a machine that got busier.
fn cpu_series(samples: &[Sample]) -> String {
    let at_or_before = |replica: usize, t: f64| {
        samples
            .iter()
            .rev()
            .find(|s| s.replica == replica && s.at <= t)
    };
    let start = samples.iter().map(|s| s.at).fold(f64::MAX, f64::min);
    let end = samples.iter().map(|s| s.at).fold(0.0, f64::max);
    let mut marks = vec![start];
    marks.extend(
        (1..)
            .map(|m| m as f64 * 60.0)
            .take_while(|t| *t < end)
            .filter(|t| *t > start),
    );
    marks.push(end);
    let share = |used: u64, all: u64| {
        if all == 0 {
            "?".to_string()
        } else {
            format!("{:.0} %", 100.0 * used as f64 / all as f64)
        }
    };
    let mut rows = String::new();
    for pair in marks.windows(2) {
        let (from, to) = (pair[0], pair[1]);
        let (Some(a), Some(b)) = (at_or_before(0, from), at_or_before(0, to)) else {
            continue;
        };
        let (Some(ma), Some(mb)) = (a.machine, b.machine) else {
            continue;
        };
        let all = mb.all.saturating_sub(ma.all);
        let driver = match (a.driver_ticks, b.driver_ticks) {
            (Some(x), Some(y)) => share(y.saturating_sub(x), all),
            _ => "?".to_string(),
        };
        let replica = |r: usize| match (at_or_before(r, from), at_or_before(r, to)) {
            (Some(x), Some(y)) if x.pid == y.pid => match (x.cpu_ticks, y.cpu_ticks) {
                (Some(x), Some(y)) => share(y.saturating_sub(x), all),
                _ => "?".to_string(),
            },
            _ => "restarted".to_string(),
        };
        let _ = writeln!(
            rows,
            "| {:.0} s | {} | {} | {} | {} | {} |",
            b.at,
            replica(0),
            replica(1),
            driver,
            share(mb.busy.saturating_sub(ma.busy), all),
            share(mb.steal.saturating_sub(ma.steal), all),
        );
    }
    if rows.is_empty() {
        return rows;
    }
    format!(
        "\n## CPU, minute by minute\n\nShares of the machine's CPU time (all cores: 100 %) over the minute before each mark, from `/proc`: each replica, the driver (clients, oracle, emulator and app), every process on the machine, and the time the hypervisor gave to other guests (steal).\n\n| until | replica 1 | replica 2 | driver | machine busy | stolen |\n|---|---|---|---|---|---|\n{rows}"
    )
}

/// Each replica's memory and descriptors minute by minute (and at the end), so that a creep
/// shows as a series rather than two points: RSS with its anonymous part, descriptors, and the
/// allocator's figures (in use, kept resident, kept as address space only).
fn minute_series(samples: &[Sample]) -> String {
    let mut rows = String::new();
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    for replica in 0..2 {
        let mine: Vec<&Sample> = samples.iter().filter(|s| s.replica == replica).collect();
        let Some(end) = mine.last().map(|s| s.at) else {
            continue;
        };
        let mut marks: Vec<f64> = (1..)
            .map(|m| m as f64 * 60.0)
            .take_while(|t| *t < end)
            .collect();
        marks.push(end);
        let mut pid = None;
        for mark in marks {
            let Some(at) = mine.iter().rev().find(|s| s.at <= mark) else {
                continue;
            };
            let allocator = mine
                .iter()
                .rev()
                .filter(|s| s.at <= mark && s.pid == at.pid)
                .find_map(|s| s.allocator);
            let restarted = if pid.is_some_and(|p| p != at.pid) {
                " (restarted)"
            } else {
                ""
            };
            pid = Some(at.pid);
            let _ = writeln!(
                rows,
                "| {} | {:.0} s{restarted} | {:.1} | {:.1} | {} | {} | {} |",
                replica + 1,
                at.at,
                at.rss_kib as f64 / 1024.0,
                at.anon_kib as f64 / 1024.0,
                at.fds,
                allocator.map_or("?".to_string(), |a| format!(
                    "{:.1} / {:.1} / {:.1} / {:.1}",
                    mib(a.allocated),
                    mib(a.resident),
                    mib(a.metadata),
                    mib(a.retained)
                )),
                allocator.map_or("?".to_string(), |a| format!(
                    "{} / {} ({:.2} MiB)",
                    a.identities,
                    a.logouts,
                    mib(a.logout_bytes)
                ))
            );
        }
    }
    if rows.is_empty() {
        return rows;
    }
    format!(
        "\n## Replicas, minute by minute\n\nRSS and its anonymous part (heap, stacks), open descriptors, and jemalloc's figures from the replica's `/metrics`: memory in use / pages kept resident / the allocator's own bookkeeping / address space kept without memory (MiB); identities cached / logouts and revocations remembered (the memory their sets take).\n\n| replica | at | RSS (MiB) | anonymous (MiB) | descriptors | allocator: in use / resident / metadata / retained (MiB) | identities / logouts remembered |\n|---|---|---|---|---|---|---|\n{rows}"
    )
}

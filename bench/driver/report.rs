//! The report: the machine it ran on, the measurements and targets tables.

use super::*;

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores ({cpu}), Linux {}", kernel.trim())
}

pub(crate) fn render(b: &Bench) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# sfgate benchmark report{}\n",
        if b.args.smoke {
            " (smoke run: numbers not meaningful)"
        } else {
            ""
        }
    );
    let _ = writeln!(s, "- Machine: {}", machine());
    let _ = writeln!(
        s,
        "- Command: `bench/run{}` (driver: `bench/driver/`)",
        if b.args.smoke { " --smoke" } else { "" }
    );
    let _ = writeln!(s, "- Gateway: `{}` ({}; the driver a {} build), emulator: `sfgate emulator --latency-ms {}`, both separate processes on 127.0.0.1, logs at `warn`", b.args.binary.display(), build_profile::describe(&b.args.binary), build_profile::DRIVER_PROFILE, b.args.latency_ms);
    let _ = writeln!(
        s,
        "- Anchor: {} (Debian package), `worker_processes auto`, configuration below",
        b.nginx.version
    );
    let _ = writeln!(s, "- Load: `wrk` with 2 threads, {} connections, {} s per measurement; counts and WebSocket echo by the driver's own clients", b.sizes.connections, b.sizes.duration);
    let _ = writeln!(s, "- Load generator, gateway, emulator and nginx share the same cores (and, on the shared build machine, other people's compilers): absolute numbers vary between runs, the ratios within one run are what count.\n");

    let _ = writeln!(s, "## Targets\n");
    let _ = writeln!(
        s,
        "The speed issue's targets (issue 26) in its order, then the supplementary ones. A \
         floor is the same job done by bare parts with nothing of sfgate's, measured in the \
         same run: the floor of a design, which bounds what sfgate can reach in it.\n"
    );
    let _ = writeln!(s, "| Target | Goal | Result | | Floor (same run) |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    let mut targets: Vec<&Target> = b.targets.iter().collect();
    targets.sort_by_key(|t| t.rank);
    for t in targets {
        let verdict = match t.met {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "reported",
        };
        let floor = t.floor.as_deref().unwrap_or("-");
        let _ = writeln!(
            s,
            "| {} | {} | {} | {verdict} | {floor} |",
            t.name, t.goal, t.result
        );
    }

    let _ = writeln!(s, "\n## Measurements\n");
    let _ = writeln!(
        s,
        "| Case | Requests/s | CPU µs/request | upstream / wrk CPU µs/request | p50 | p99 | Requests | Failed | Salesforce calls |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for r in &b.rows {
        let l = &r.load;
        let calls = r.calls.map_or("-".to_string(), |c| c.to_string());
        let cpu = l.cpu_us.map_or("-".to_string(), |c| format!("{c:.1}"));
        let others = match (l.upstream_us, l.wrk_us) {
            (None, None) => "-".to_string(),
            (upstream, wrk) => {
                let us = |v: Option<f64>| v.map_or("-".to_string(), |c| format!("{c:.1}"));
                format!("{} / {}", us(upstream), us(wrk))
            }
        };
        let _ = writeln!(
            s,
            "| {} | {:.0} | {cpu} | {others} | {:.2} ms | {:.2} ms | {} | {} | {calls} |",
            r.case, l.rps, l.p50_ms, l.p99_ms, l.requests, l.bad
        );
    }
    for note in &b.notes {
        let _ = writeln!(s, "\n{note}");
    }
    let _ = writeln!(s, "\n| Memory and size | |\n|---|---|");
    for (what, value) in &b.memory {
        let _ = writeln!(s, "| {what} | {value} |");
    }

    let _ = writeln!(s, "\n## Exact load commands\n\n```");
    for r in &b.rows {
        let _ = writeln!(s, "{}", r.load.command);
    }
    let _ = writeln!(s, "```");
    // What the profiles show is written by people, next to the report, and kept with it.
    let notes = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/NOTES.md");
    if let Ok(text) = std::fs::read_to_string(notes) {
        let _ = writeln!(s, "\n{}", text.trim_end());
    }
    let _ = writeln!(
        s,
        "\n## nginx configuration\n\nPorts are picked free at each run; `$DIR` is the run's own temporary directory.\n\n```nginx\n{}```",
        b.nginx.config
    );
    s
}

//! (p) sfgate's gateway mode beside nginx (plain proxy and `auth_request`) and the floors, in
//! alternated rounds, with CPU per request.

use super::*;

/// Rounds of the proxy comparison; each reported figure is the median over them.
pub(crate) const PROXY_ROUNDS: usize = 5;

/// nginx as the anchor: its static upstream directly, nginx as a plain reverse proxy to it,
/// nginx `auth_request` asking sfgate, sfgate's gateway mode (with its HTTP/1.1 fast path, and
/// a second gateway without it) and the seven floors (thread per
/// core, the same with sfgate's identity check and header rewrites, work stealing, the three
/// raw ones without header maps of `raw_floor.rs`, and nginx `auth_request` asking a bare
/// responder that answers `202` at once), all to the same upstream. The proxies are measured in
/// [`PROXY_ROUNDS`] alternated rounds (the order rotates each round, so load from neighbours
/// falls on all alike) and each reports its median requests/s and median CPU per request: for
/// nginx its master and workers together, for sfgate its process, for the floors their
/// threads (with nginx's for the `auth_request` floor).
pub(crate) async fn gateway_vs_nginx(b: &mut Bench) -> Result<(), Failure> {
    floor_check::floors_forward_as_sfgate(b).await?;
    let ports = b.nginx.ports;
    let direct = b
        .wrk(&format!("http://127.0.0.1:{}/hello", ports.upstream), false)
        .await?;
    let upstream: std::net::SocketAddr = ([127, 0, 0, 1], ports.upstream).into();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let tpc = floor::start_tpc_proxy(upstream, cores)?;
    // One application state for the floors that check identities, as one gateway has.
    let auth = floor::bench_authenticator(&b.emu, upstream)?;
    let identity = floor::start_tpc_identity_proxy(upstream, cores, auth.clone())?;
    let work_stealing = floor::start_hyper_proxy(upstream)?;
    let raw = raw_floor::start_raw_proxy(upstream, cores, raw_floor::RawWork::Forward)?;
    let raw_identity =
        raw_floor::start_raw_proxy(upstream, cores, raw_floor::RawWork::Identity(auth.clone()))?;
    let raw_kept = raw_floor::start_raw_proxy(upstream, cores, raw_floor::RawWork::Kept(auth))?;
    let pid = |nginx: &NginxProcess| nginx.child.as_ref().and_then(|c| c.id());
    let nginx_pid = pid(&b.nginx.proxies).ok_or_else(|| fail("nginx exited"))?;
    let upstream_pid = pid(&b.nginx.upstream).ok_or_else(|| fail("the upstream nginx exited"))?;
    let sfgate_pid = b.gateway.id().ok_or_else(|| fail("the gateway exited"))?;
    // The same gateway with its HTTP/1.1 fast path off: every request through hyper's server
    // and the router, as before the fast path, so that the difference is measured in the run.
    let static_upstream = format!("http://{upstream}");
    let (general, general_url, _) = start_gateway(
        &b.args.binary,
        &b.emu,
        &[
            ("IDENTITY_CACHE_TTL", "600"),
            ("UPSTREAM_URL", &static_upstream),
            ("HTTP1_FAST_PATH", "false"),
        ],
    )
    .await?;
    let general_pid = general
        .id()
        .ok_or_else(|| fail("the general-server gateway exited"))?;
    let runs: [(&str, String, bool, Cpu); 11] = [
        (
            "nginx plain proxy",
            format!("http://127.0.0.1:{}/hello", ports.proxy),
            false,
            Cpu::ProcessTree(nginx_pid),
        ),
        (
            "nginx auth_request",
            format!("http://127.0.0.1:{}/hello", ports.auth_request),
            true,
            // nginx and sfgate both work for each request.
            Cpu::Both(nginx_pid, sfgate_pid),
        ),
        (
            "sfgate gateway mode",
            format!("{}/hello", b.gw),
            true,
            Cpu::ProcessTree(sfgate_pid),
        ),
        (
            "sfgate gateway mode, general server only",
            format!("{general_url}/hello"),
            true,
            Cpu::ProcessTree(general_pid),
        ),
        // The floors get the sfgate row's request, credential headers and all (they forward
        // them as any header): the same bytes in, nothing of sfgate's done with them.
        (
            "thread-per-core floor",
            format!("{tpc}/hello"),
            true,
            Cpu::OwnThreads(floor::TPC_THREADS),
        ),
        (
            "identity floor",
            format!("{identity}/hello"),
            true,
            Cpu::OwnThreads(floor::TPC_IDENTITY_THREADS),
        ),
        (
            "work-stealing floor",
            format!("{work_stealing}/hello"),
            true,
            Cpu::OwnThreads(floor::WORK_STEALING_THREADS),
        ),
        (
            "raw floor",
            format!("{raw}/hello"),
            true,
            Cpu::OwnThreads(raw_floor::RAW_THREADS),
        ),
        (
            "raw identity floor",
            format!("{raw_identity}/hello"),
            true,
            Cpu::OwnThreads(raw_floor::RAW_IDENTITY_THREADS),
        ),
        (
            "raw identity floor with bookkeeping",
            format!("{raw_kept}/hello"),
            true,
            Cpu::OwnThreads(raw_floor::RAW_KEPT_THREADS),
        ),
        (
            "nginx auth_request floor",
            format!("http://127.0.0.1:{}/hello", ports.auth_floor),
            // The same request as the sfgate row's, headers and all.
            true,
            Cpu::TreeAndThreads(nginx_pid, floor::RESPONDER_THREADS),
        ),
    ];
    let rounds = if b.args.smoke { 1 } else { PROXY_ROUNDS };
    let mut loads: Vec<Vec<Load>> = vec![Vec::new(); runs.len()];
    for round in 0..rounds {
        for k in 0..runs.len() {
            let i = (round + k) % runs.len();
            let (_, url, authenticated, cpu) = &runs[i];
            let before = cpu.ticks();
            let upstream_before = tree_ticks(upstream_pid);
            let wrk_before = waited_children_ticks();
            let mut load = b.wrk(url, *authenticated).await?;
            let after = cpu.ticks();
            load.cpu_us = cpu_per_request(before, after, load.requests);
            load.upstream_us =
                cpu_per_request(upstream_before, tree_ticks(upstream_pid), load.requests);
            load.wrk_us = cpu_per_request(wrk_before, waited_children_ticks(), load.requests);
            loads[i].push(load);
        }
    }
    drop(general);
    let medians: [Load; 11] = std::array::from_fn(|i| median(&loads[i]));
    for ((name, ..), load) in runs.iter().zip(&medians) {
        b.check_no_failures(name, load);
    }
    let [plain, auth_request, gateway, general, tpc, identity, work_stealing, raw, raw_identity, raw_kept, auth_floor] =
        medians;
    let of = if rounds > 1 {
        format!(", median of {rounds} alternated rounds")
    } else {
        String::new()
    };
    b.row(
        "(n) `GET /hello` on nginx's static upstream directly",
        &direct,
        None,
    );
    b.row(
        format!("(n) nginx plain reverse proxy → upstream (no auth{of})"),
        &plain,
        None,
    );
    b.row(
        format!("(n) nginx `auth_request` via sfgate `/oauth2/auth` → upstream (CPU: nginx + sfgate{of})"),
        &auth_request,
        None,
    );
    b.row(
        format!("(floor) nginx `auth_request` via a bare thread-per-core `202` responder → upstream (nothing of sfgate's; CPU: nginx + responder{of})"),
        &auth_floor,
        None,
    );
    b.row(
        format!("(p) sfgate gateway mode → upstream (cached identity{of})"),
        &gateway,
        None,
    );
    b.row(
        format!("(p) sfgate gateway mode with `HTTP1_FAST_PATH=false` (every request through hyper's server and the router{of})"),
        &general,
        None,
    );
    b.row(
        format!("(floor) bare proxy, thread per core → upstream (the sfgate row's request, nothing of sfgate's done{of})"),
        &tpc,
        None,
    );
    b.row(
        format!("(floor) bare proxy, thread per core, with sfgate's identity check and header rewrites (its own functions: request id, `Authenticator::serve`, both header rewrites; no router, layers, metrics or upstream timeout{of})"),
        &identity,
        None,
    );
    b.row(
        format!(
            "(floor) bare proxy, work-stealing runtime + hyper-util pool → upstream{}",
            if of.is_empty() {
                String::new()
            } else {
                format!(" ({})", &of[2..])
            }
        ),
        &work_stealing,
        None,
    );
    b.row(
        format!("(floor) raw proxy, thread per core, no header maps: heads parsed in place and written as bytes (`bench/driver/raw_floor.rs`{of})"),
        &raw,
        None,
    );
    b.row(
        format!("(floor) raw proxy with sfgate's identity check, headers written as bytes (the identity floor's work without header maps{of})"),
        &raw_identity,
        None,
    );
    b.row(
        format!("(floor) raw proxy with sfgate's identity check and its per-request bookkeeping (clock, log span and line, request counter and latency histogram, upstream timeout, panic catch{of})"),
        &raw_kept,
        None,
    );
    let x = |measured: &Load, anchor: &Load| measured.rps / anchor.rps;
    b.ratio(
        Rank::Gateway,
        "(p) sfgate gateway mode vs. nginx plain reverse proxy",
        &gateway,
        &plain,
        0.9,
    )
    .floor = Some(format!(
        "with `HTTP1_FAST_PATH=false`: {:.2} × nginx; thread-per-core bare proxy: {:.2} × nginx; sfgate {:.2} × this floor; the same with sfgate's identity check and header rewrites: {:.2} × nginx, sfgate {:.2} × it; without header maps (raw): bare {:.2} × nginx, with sfgate's identity check {:.2} × nginx, and its per-request bookkeeping {:.2} × nginx (work-stealing bare proxy: {:.2} × nginx)",
        x(&general, &plain),
        x(&tpc, &plain),
        x(&gateway, &tpc),
        x(&identity, &plain),
        x(&gateway, &identity),
        x(&raw, &plain),
        x(&raw_identity, &plain),
        x(&raw_kept, &plain),
        x(&work_stealing, &plain),
    ));
    let cpu_floor = match (tpc.cpu_us, gateway.cpu_us, plain.cpu_us) {
        (Some(floor), Some(sfgate), Some(nginx)) if floor > 0.0 && nginx > 0.0 => {
            let times_nginx = |load: &Load, what: &str| {
                load.cpu_us.map_or(String::new(), |us| {
                    format!("; {what}: {us:.1} µs = {:.2} × nginx's", us / nginx)
                })
            };
            let with_identity = [
                times_nginx(&general, "with `HTTP1_FAST_PATH=false`"),
                times_nginx(
                    &identity,
                    "with sfgate's identity check and header rewrites",
                ),
                times_nginx(&raw, "raw (no header maps)"),
                times_nginx(&raw_identity, "raw with sfgate's identity check"),
                times_nginx(&raw_kept, "and its bookkeeping"),
            ]
            .concat();
            Some(format!(
                "thread-per-core bare proxy: {floor:.1} µs = {:.2} × nginx's; sfgate {:.2} × this floor's{with_identity}",
                floor / nginx,
                sfgate / floor
            ))
        }
        _ => None,
    };
    match (gateway.cpu_us, plain.cpu_us) {
        (Some(sfgate), Some(nginx)) if nginx > 0.0 => {
            let ratio = sfgate / nginx;
            b.target(
                Rank::GatewayCpu,
                "(p) sfgate CPU µs per proxied request vs. nginx's",
                "≤ 1.15",
                format!("{ratio:.2} ({sfgate:.1} vs {nginx:.1} µs)"),
                Some(ratio <= 1.15),
            )
            .floor = cpu_floor;
        }
        _ => {
            b.target(
                Rank::GatewayCpu,
                "(p) sfgate CPU µs per proxied request vs. nginx's",
                "≤ 1.15",
                "not measured".into(),
                None,
            );
        }
    }
    b.ratio(
        Rank::AuthRequest,
        "nginx `auth_request` + sfgate vs. nginx plain reverse proxy",
        &auth_request,
        &plain,
        0.8,
    )
    .floor = Some(format!(
        "nginx `auth_request` to a bare `202` responder: {:.2} × nginx plain proxy; with sfgate {:.2} × this floor",
        x(&auth_floor, &plain),
        x(&auth_request, &auth_floor),
    ));
    Ok(())
}

/// The run with the median requests/s, with the median CPU per request of all runs (a failed
/// run is kept over any other, so that failures reach the report).
pub(crate) fn median(loads: &[Load]) -> Load {
    if let Some(failed) = loads.iter().find(|l| l.bad > 0 || l.requests == 0) {
        return failed.clone();
    }
    let mut by_rps: Vec<&Load> = loads.iter().collect();
    by_rps.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    let mut load = by_rps
        .get(by_rps.len() / 2)
        .map_or_else(Load::default, |l| (*l).clone());
    let middle = |figure: fn(&Load) -> Option<f64>| {
        let mut values: Vec<f64> = loads.iter().filter_map(figure).collect();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied()
    };
    load.cpu_us = middle(|l| l.cpu_us);
    load.upstream_us = middle(|l| l.upstream_us);
    load.wrk_us = middle(|l| l.wrk_us);
    load
}

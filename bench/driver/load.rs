//! Load generators: the driver's own clients, alternated measurements, and `wrk`.

use super::*;

/// Each token `uses` times in a row, `concurrency` tokens at a time; returns the 200s.
pub(crate) async fn drive(
    http: &reqwest::Client,
    gw: &str,
    emu: &str,
    tokens: &[String],
    uses: usize,
    concurrency: usize,
) -> u64 {
    let url = format!("{gw}/oauth2/userinfo");
    stream::iter(tokens.iter())
        .map(|token| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let mut ok = 0u64;
                for _ in 0..uses {
                    if matches!(get_me(&http, &url, token, emu).await, Ok(200)) {
                        ok += 1;
                    }
                }
                ok
            }
        })
        .buffer_unordered(concurrency)
        .fold(0u64, |sum, ok| async move { sum + ok })
        .await
}

/// Measures two URLs alternately in ABBA order, `rounds` runs each, so load from neighbours on
/// a shared machine (which comes and goes) falls on both alike, and keeps each one's best run.
/// A run with failed requests is kept over any faster one, so that failures reach the report.
pub(crate) async fn best_of_alternating(
    rounds: usize,
    urls: [&str; 2],
    headers: &[String],
    sizes: &Sizes,
) -> Result<[Load; 2], Failure> {
    let mut best = [Load::default(), Load::default()];
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let load = wrk(urls[i], headers, sizes).await?;
            let failed = load.bad > 0 || load.requests == 0;
            if failed || (best[i].bad == 0 && load.rps > best[i].rps) {
                best[i] = load;
            }
        }
    }
    Ok(best)
}

pub(crate) async fn wrk(url: &str, headers: &[String], sizes: &Sizes) -> Result<Load, Failure> {
    let mut args = vec![
        "-t2".to_string(),
        format!("-c{}", sizes.connections),
        format!("-d{}s", sizes.duration),
        "--latency".to_string(),
    ];
    for h in headers {
        args.push("-H".to_string());
        args.push(h.clone());
    }
    args.push(url.to_string());
    let out = Command::new("wrk")
        .args(&args)
        .output()
        .await
        .map_err(|e| fail(format!("cannot run wrk: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        return Err(fail(format!(
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let shown: Vec<String> = args
        .iter()
        .map(|a| {
            if a.starts_with("Authorization:") {
                "'Authorization: Bearer $TOKEN'".to_string()
            } else if a.contains(' ') {
                format!("'{a}'")
            } else {
                a.clone()
            }
        })
        .collect();
    let mut load = Load {
        command: format!("wrk {}", shown.join(" ")),
        ..Load::default()
    };
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            load.rps = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = line.strip_prefix("50%") {
            load.p50_ms = duration_ms(v.trim());
        } else if let Some(v) = line.strip_prefix("99%") {
            load.p99_ms = duration_ms(v.trim());
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            load.bad += v.trim().parse::<u64>().unwrap_or(0);
        } else if line.contains("requests in") {
            load.requests = line
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        } else if line.starts_with("Socket errors:") {
            load.bad += line
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    Ok(load)
}

/// wrk prints `812.00us`, `1.23ms` or `1.05s`.
pub(crate) fn duration_ms(v: &str) -> f64 {
    let split = v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len());
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => f64::NAN,
    }
}

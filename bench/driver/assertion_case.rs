//! (i) The signed identity assertion: gateway mode with `ASSERTION_KEY` against without, and
//! the cost of one ES256 signature (the reason assertions are reused while fresh rather than
//! signed per request). Included by the driver with one `mod` line.

use super::{best_of_alternating, fail, start_gateway, Failure, Sizes};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Goal from issue 16: proxied throughput with `ASSERTION_KEY` ≥ 0.95 × without.
const GOAL: f64 = 0.95;
/// Best of this many runs each: a 5 % target needs more than three to see past a neighbour's
/// build on a shared machine.
const ROUNDS: usize = 5; // the rows below say "best of 5"

/// A throwaway key for the benchmark only.
const BENCH_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgQDrb5KNH4cOe4kdJ
7mNe1zZPhKv1QnPy/Y/1hdaJFUChRANCAATcoBf4HH9ZW1mA0mWEd+a65GRG/ET4
mw6VuIEOUAr574sMBXp8m2QjJepuD9FAoONNq9KqJInntTsxRF3Z76ZW
-----END PRIVATE KEY-----";

/// Runs the case; returns its report section and what did not work.
pub(crate) async fn run(
    binary: &PathBuf,
    emu: &str,
    upstream: &str,
    auth: &[String],
    sizes: &Sizes,
) -> Result<(String, Vec<String>), Failure> {
    let mut problems = Vec::new();
    let common = [("IDENTITY_CACHE_TTL", "600"), ("UPSTREAM_URL", upstream)];
    let (plain, plain_url, _) = start_gateway(binary, emu, &common).await?;
    let mut signing_env = common.to_vec();
    signing_env.push(("ASSERTION_KEY", BENCH_KEY));
    let (signing, signing_url, _) = start_gateway(binary, emu, &signing_env).await?;
    if !carries_assertion(&signing_url, auth).await? {
        problems.push("(i) the gateway with ASSERTION_KEY sent no X-Sfgate-Assertion".into());
    }
    let [without, with] = best_of_alternating(
        ROUNDS,
        [
            &format!("{plain_url}/hello"),
            &format!("{signing_url}/hello"),
        ],
        auth,
        sizes,
    )
    .await?;
    for (load, key) in [(&without, "without"), (&with, "with")] {
        if load.bad > 0 || load.requests == 0 {
            problems.push(format!(
                "(i) {} of {} proxied requests {key} ASSERTION_KEY failed",
                load.bad, load.requests
            ));
        }
    }
    drop(plain);
    drop(signing);
    let (sign_us, reuse_us) = signing_cost()?;
    let ratio = with.rps / without.rps;
    let mut s = String::new();
    let _ = writeln!(s, "\n## (i) Signed identity assertion (`ASSERTION_KEY`)\n");
    let _ = writeln!(s, "| Target | Goal | Result | |\n|---|---|---|---|");
    let _ = writeln!(
        s,
        "| proxied throughput with `ASSERTION_KEY` vs. without | ≥ {GOAL} | {ratio:.2} | {} |\n",
        if ratio >= GOAL { "met" } else { "**missed**" }
    );
    let _ = writeln!(
        s,
        "| Case | Requests/s | p50 | p99 | Requests | Failed |\n|---|---|---|---|---|---|"
    );
    for (name, l) in [
        (
            "`GET /hello` through sfgate, no `ASSERTION_KEY` (best of 5)",
            &without,
        ),
        (
            "`GET /hello` through sfgate, `ASSERTION_KEY` set (best of 5)",
            &with,
        ),
    ] {
        let _ = writeln!(
            s,
            "| {name} | {:.0} | {:.2} ms | {:.2} ms | {} | {} |",
            l.rps, l.p50_ms, l.p99_ms, l.requests, l.bad
        );
    }
    let _ = writeln!(
        s,
        "\nOne ES256 signature costs {sign_us:.1} µs in this build; handing out a reused \
         assertion costs {reuse_us:.2} µs. Signed per request, the signature alone would take \
         {:.0}% of the per-request time budget at the throughput measured without a key \
         ({:.1} µs of CPU per request on {} cores), so an assertion is reused for the same \
         caller while more than half of its 60 s life remains.",
        100.0 * sign_us / per_request_budget_us(without.rps),
        per_request_budget_us(without.rps),
        cores(),
    );
    Ok((s, problems))
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn per_request_budget_us(rps: f64) -> f64 {
    if rps > 0.0 {
        1e6 * cores() as f64 / rps
    } else {
        f64::NAN
    }
}

/// A forward-auth check with the bench token: the 202 must carry the assertion.
async fn carries_assertion(gw: &str, auth: &[String]) -> Result<bool, Failure> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut request = http.get(format!("{gw}/oauth2/auth"));
    for h in auth {
        let (name, value) = h.split_once(':').ok_or_else(|| fail("bad header"))?;
        request = request.header(name.trim(), value.trim());
    }
    let r = request.send().await?;
    Ok(r.status() == 202 && r.headers().contains_key("x-sfgate-assertion"))
}

/// Microseconds per fresh signature and per reused assertion, measured in-process with the
/// gateway's own signer.
fn signing_cost() -> Result<(f64, f64), Failure> {
    use sfgate::domain::{InstancePolicy, OrgId, SalesforceId};
    use sfgate::headers::{AssertionKey, AssertionSigner};
    let key = AssertionKey::parse(BENCH_KEY).map_err(fail)?;
    let signer = AssertionSigner::new(
        &key,
        "https://gw.example".into(),
        "https://app.example".into(),
    );
    let identity = sfgate::domain::Identity {
        user_id: SalesforceId::parse("0055j00000AlIcE")?,
        organization_id: OrgId::parse("00D5j00000AcMe1")?,
        username: Some("alice@acme.example".into()),
        display_name: Some("Alice Admin".into()),
        email: Some("alice@acme.example".into()),
        email_verified: Some(true),
        user_type: Some("STANDARD".into()),
        active: Some(true),
        custom_permissions: None,
        instance_url: InstancePolicy::default().check("https://acme.my.salesforce.com")?,
    };
    let rounds = 2_000u32;
    let started = Instant::now();
    for i in 0..rounds {
        signer
            .sign(&identity, 1_700_000_000 + u64::from(i))
            .ok_or_else(|| fail("signing failed"))?;
    }
    let sign_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
    let slot = sfgate::headers::AssertionSlot::default();
    let reuse_rounds = 200_000u32;
    let started = Instant::now();
    for _ in 0..reuse_rounds {
        signer
            .header_in(&slot, &identity)
            .ok_or_else(|| fail("signing failed"))?;
    }
    let reuse_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(reuse_rounds);
    Ok((sign_us, reuse_us))
}

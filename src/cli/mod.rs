//! The command line: `sfgate` serves; `demo`, `emulator` and `check` help people try and
//! operate it.

mod demo;

use clap::{Parser, Subcommand};
use demo::{Demo, DemoError, DemoOptions, Upstream};
use sfgate::config::warnings;
use sfgate::config::{Config, ConfigError, LogFormat};
use sfgate::demo::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};
use sfgate::domain::AllowedOrgs;
use sfgate::server::Listeners;
use sfgate::startup;
use sfgate::telemetry;
use sfgate_emulator::{run_standalone, EmulatorConfig};
use std::process::ExitCode;
use std::time::Duration;

/// Exit code for configuration problems, so scripts can tell them from crashes.
pub(crate) const EXIT_CONFIG: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "sfgate",
    version,
    about = "A Salesforce identity gateway: OAuth 2.0 login and identity-checked protected routes",
    after_help = sfgate::config::variables::help()
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the gateway (the default). Configuration comes from the environment and `.env`.
    #[command(after_help = sfgate::config::variables::help())]
    Serve,
    /// Serve the gateway with the built-in Salesforce emulator: no Connected App needed.
    Demo {
        /// Port for the gateway on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 3000)]
        port: u16,
        /// Port for the emulator on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        emulator_port: u16,
        /// Gateway mode: proxy every path that is not sfgate's own to this app, after login.
        #[arg(long, env = "UPSTREAM_URL", value_name = "URL")]
        upstream: Option<String>,
        /// Gateway mode in front of a built-in sample app that shows the identity headers it
        /// receives.
        #[arg(long)]
        with_sample_app: bool,
    },
    /// Run the Salesforce emulator alone, on 127.0.0.1.
    Emulator {
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Latency added to every API answer, like a real round trip to Salesforce.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        #[arg(long, default_value = DEMO_CLIENT_ID)]
        client_id: String,
        #[arg(long, default_value = DEMO_CLIENT_SECRET)]
        client_secret: String,
        /// Callback URLs accepted for the client (repeatable).
        #[arg(
            long = "redirect-uri",
            default_value = "http://127.0.0.1:3000/oauth2/callback"
        )]
        redirect_uris: Vec<String>,
    },
    /// Validate the configuration and exit: 0 when valid, 2 otherwise.
    Check,
    /// Print the effective configuration (every variable, its value or default), secrets
    /// redacted; exits 2 when the configuration is invalid.
    Config,
    /// The kill switch: every replica refuses the user's sessions and tokens issued before now
    /// and closes their WebSockets within seconds; the user may log in again. Needs REDIS_URL
    /// and the gateway's configuration. Freeze the user in Salesforce too (docs/salesforce.md).
    RevokeUser {
        /// The Salesforce user id (15 or 18 characters, 005...).
        user_id: String,
        /// Who revokes, for the audit line (default: the OS user).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
}

pub(crate) async fn run(cli: Cli) -> ExitCode {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::Check => check(),
        Command::Config => print_config(),
        Command::RevokeUser { user_id, by } => revoke_user(&user_id, by).await,
        Command::Demo {
            port,
            emulator_port,
            upstream,
            with_sample_app,
        } => {
            let upstream = match (upstream, with_sample_app) {
                (Some(_), true) => {
                    eprintln!("sfgate demo: --with-sample-app and --upstream (or UPSTREAM_URL) both given; choose one");
                    return ExitCode::from(EXIT_CONFIG);
                }
                (Some(url), false) => Upstream::Url(url),
                (None, true) => Upstream::SampleApp,
                (None, false) => Upstream::None,
            };
            demo(DemoOptions {
                port,
                emulator_port,
                upstream,
            })
            .await
        }
        Command::Emulator {
            port,
            latency_ms,
            client_id,
            client_secret,
            redirect_uris,
        } => {
            telemetry::init(LogFormat::Text);
            let mut config = EmulatorConfig::new(client_id, client_secret);
            config.redirect_uris = redirect_uris;
            config.latency = Duration::from_millis(latency_ms);
            match run_standalone(config, port, startup::shutdown_signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("sfgate emulator: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn load() -> Result<Config, ConfigError> {
    Config::from_env()
}

fn report(e: &ConfigError) -> ExitCode {
    eprintln!("sfgate: {e}");
    // A misspelt name is often why a required one is "missing": say so next to the problems.
    for warning in warnings::from_env(None) {
        eprintln!("sfgate: warning: {warning}");
    }
    eprintln!("See docs/configuration.md or .env.example for every variable.");
    ExitCode::from(EXIT_CONFIG)
}

fn check() -> ExitCode {
    match load() {
        Ok(config) => {
            for warning in warnings::from_env(Some(&config)) {
                eprintln!("sfgate: warning: {warning}");
            }
            println!(
                "configuration is valid: callback {} , login {} , listening on {}:{}",
                config.callback_path(),
                config.salesforce.login_url,
                config.server.host,
                config.server.port
            );
            ExitCode::SUCCESS
        }
        Err(e) => report(&e),
    }
}

fn print_config() -> ExitCode {
    match load() {
        Ok(config) => {
            println!("{}", describe_mode(&config));
            print!(
                "{}",
                sfgate::config::effective::render(&|name| std::env::var(name).ok())
            );
            ExitCode::SUCCESS
        }
        Err(e) => report(&e),
    }
}

/// What the configuration amounts to, in comment lines: the mode, what sfgate answers, where
/// metrics are.
fn describe_mode(config: &Config) -> String {
    let metrics = match (config.server.metrics_addr, &config.gateway.upstream_url) {
        (Some(addr), _) => format!("/metrics on {addr}"),
        (None, Some(_)) => "no metrics (set METRICS_ADDR)".to_string(),
        (None, None) => "/metrics on the main port".to_string(),
    };
    let mode = match &config.gateway.upstream_url {
        Some(u) => format!(
            "gateway mode: sfgate answers under {}/, every other path goes to {}",
            config.paths().prefix,
            u.origin().ascii_serialization()
        ),
        None => "standalone: sfgate is the whole site".to_string(),
    };
    format!(
        "# {mode}\n# callback {} ; listening on {}:{} ; {metrics}\n",
        config.callback_path(),
        config.server.host,
        config.server.port
    )
}

async fn serve() -> ExitCode {
    let config = match load() {
        Ok(c) => c,
        Err(e) => return report(&e),
    };
    // Kept until the server stops: dropping it flushes the queued spans.
    let _traces = telemetry::init_for(&config);
    announce(&config);
    let addr = std::net::SocketAddr::new(config.server.host, config.server.port);
    let listeners = match Listeners::bind(addr, config.server.threads) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            tracing::error!(
                host = %config.server.host,
                "port {} is in use; set PORT or stop the other process",
                config.server.port
            );
            return ExitCode::FAILURE;
        }
        Err(e) => {
            tracing::error!(error = %e, host = %config.server.host, port = config.server.port, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let state = match sfgate::state::AppState::new(config) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    if let Ok(addr) = listeners.local_addr() {
        // The origin only: a path prefix is fine to log, but userinfo would not be (and is
        // refused by the configuration anyway).
        let upstream = state
            .config
            .gateway
            .upstream_url
            .as_ref()
            .map_or_else(|| "none".to_string(), |u| u.origin().ascii_serialization());
        tracing::info!(
            %addr,
            allowed_orgs = %describe_orgs(&state.config.salesforce.allowed_orgs),
            %upstream,
            threads = listeners.threads(),
            "sfgate listening"
        );
    }
    match startup::serve_state(listeners, state, startup::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server error");
            ExitCode::FAILURE
        }
    }
}

/// The allowed orgs as the start-up line shows them: `*` or the ids, sorted.
fn describe_orgs(orgs: &AllowedOrgs) -> String {
    match orgs {
        AllowedOrgs::Any => "*".to_string(),
        AllowedOrgs::Only(ids) => {
            let mut ids: Vec<&str> = ids.iter().map(|id| id.as_str()).collect();
            ids.sort_unstable();
            ids.join(",")
        }
    }
}

/// Start-up notes an operator should see once.
fn announce(config: &Config) {
    for warning in warnings::from_env(Some(config)) {
        tracing::warn!(variable = %warning.variable, "{}", warning.message);
    }
    for name in &config.legacy_names_used {
        tracing::warn!(
            variable = name,
            "using the Node.js app's variable name; the SF_* names are preferred (see docs/configuration.md)"
        );
    }
    if config.salesforce.allowed_orgs == AllowedOrgs::Any {
        tracing::warn!(
            "SF_ALLOWED_ORGS is `*`: users of ANY Salesforce org can reach protected routes"
        );
    }
    let gateway_mode = config.gateway.upstream_url.is_some();
    if gateway_mode && config.server.metrics_addr.is_none() {
        tracing::info!(
            "metrics are not served: in gateway mode every path outside {}/ is the app's; set METRICS_ADDR (e.g. 127.0.0.1:9100) to serve /metrics there",
            config.paths().prefix
        );
    }
    // On the main port only when sfgate is the whole site and METRICS_ADDR is unset.
    let metrics_on_main_port = !gateway_mode && config.server.metrics_addr.is_none();
    if config.server.metrics_token.is_none() && config.is_https() && metrics_on_main_port {
        tracing::warn!(
            "METRICS_TOKEN is not set: anyone who can reach this host can read /metrics"
        );
    }
    if config.salesforce.enable_password_flow {
        tracing::warn!(
            "SF_ENABLE_PASSWORD_FLOW is on: the username-password flow is for testing only"
        );
    }
}

/// `sfgate revoke-user`: 2 for a usage or configuration problem (no `REDIS_URL`, a bad user
/// id), 1 when Redis did not take it.
async fn revoke_user(user_id: &str, by: Option<String>) -> ExitCode {
    let config = match load() {
        Ok(c) => c,
        Err(e) => return report(&e),
    };
    if config.redis.is_none() {
        eprintln!(
            "sfgate revoke-user: needs REDIS_URL, the Redis the replicas share (the revocation \
             is published there); set it as the gateway has it"
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    let user = match sfgate::domain::SalesforceId::parse(user_id.trim()) {
        Ok(u) if u.as_str().starts_with("005") => u,
        _ => {
            eprintln!(
                "sfgate revoke-user: {user_id:?} is not a Salesforce user id (15 or 18 characters, starting with 005)"
            );
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let by = by
        .filter(|b| !b.trim().is_empty())
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .unwrap_or_else(|| "unknown".to_string());
    telemetry::init(config.server.log_format);
    match sfgate::store::revocation::revoke_user(&config, user, &by).await {
        Ok(done) => {
            tracing::warn!(
                audit = "user_revoked",
                user_id = %done.user_id,
                by = %by,
                revoked_at_ms = done.at_ms,
                replicas_heard = done.replicas_heard,
                "user revoked"
            );
            println!(
                "revoked user {} at {} (ms {}) by {by}: {} replica(s) heard it now; \
                 replicas started later read it from Redis until {}.\n\
                 Freeze the user in Salesforce too: a token first used after this cannot be \
                 told from a new one.",
                done.user_id,
                utc(done.at_ms / 1000),
                done.at_ms,
                done.replicas_heard,
                utc(done.until_ms / 1000),
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sfgate revoke-user: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (UTC), for the operator's output.
fn utc(secs: u64) -> String {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil-from-days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

async fn demo(options: DemoOptions) -> ExitCode {
    telemetry::init(LogFormat::Text);
    let demo = match Demo::start(&options).await {
        Ok(d) => d,
        Err(DemoError::Config(e)) => return report(&e),
        Err(e) => {
            eprintln!("sfgate demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", demo.banner());
    startup::shutdown_signal().await;
    demo.shutdown().await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_formats_known_moments() {
        assert_eq!(super::utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::utc(1_796_533_199), "2026-12-06T04:59:59Z");
    }
}

//! The command line: `sfgate` serves; `demo`, `emulator` and `check` help people try and
//! operate it.

use crate::config::{Config, ConfigError, LogFormat};
use crate::domain::AllowedOrgs;
use crate::salesforce::emulator::{demo_users, run_standalone, Emulator, EmulatorConfig};
use crate::startup;
use crate::telemetry;
use clap::{Parser, Subcommand};
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;
use tokio::net::TcpListener;

/// Exit code for configuration problems, so scripts can tell them from crashes.
pub const EXIT_CONFIG: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "sfgate",
    version,
    about = "A Salesforce identity gateway: OAuth 2.0 login and identity-checked protected routes"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the gateway (the default). Configuration comes from the environment and `.env`.
    Serve,
    /// Serve the gateway with the built-in Salesforce emulator: no Connected App needed.
    Demo {
        /// Port for the gateway on 127.0.0.1.
        #[arg(long, default_value_t = 3000)]
        port: u16,
        /// Port for the emulator on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        emulator_port: u16,
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
}

const DEMO_CLIENT_ID: &str = "sfgate-demo-client";
const DEMO_CLIENT_SECRET: &str = "sfgate-demo-client-secret";

pub async fn run(cli: Cli) -> ExitCode {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::Check => check(),
        Command::Demo {
            port,
            emulator_port,
        } => demo(port, emulator_port).await,
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
            match run_standalone(config, port).await {
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
    eprintln!("See README.md (Configuration) or .env.example for every variable.");
    ExitCode::from(EXIT_CONFIG)
}

fn check() -> ExitCode {
    match load() {
        Ok(config) => {
            println!(
                "configuration is valid: callback {} , login {} , listening on {}:{}",
                config.callback_path(),
                config.login_url,
                config.host,
                config.port
            );
            ExitCode::SUCCESS
        }
        Err(e) => report(&e),
    }
}

async fn serve() -> ExitCode {
    let config = match load() {
        Ok(c) => c,
        Err(e) => return report(&e),
    };
    telemetry::init(config.log_format);
    announce(&config);
    let listener = match TcpListener::bind((config.host, config.port)).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, host = %config.host, port = config.port, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let state = match crate::state::AppState::new(config) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "sfgate listening");
    }
    if let Some(upstream) = &state.config.upstream_url {
        // The origin only: a path prefix is fine to log, but userinfo would not be.
        tracing::info!(
            upstream = %upstream.origin().ascii_serialization(),
            "gateway mode: proxying authenticated requests"
        );
    }
    match startup::serve_state(listener, state, startup::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server error");
            ExitCode::FAILURE
        }
    }
}

/// Start-up notes an operator should see once.
fn announce(config: &Config) {
    for name in &config.legacy_names_used {
        tracing::warn!(
            variable = name,
            "using the Node.js app's variable name; the SF_* names are preferred (see README)"
        );
    }
    if config.allowed_orgs == AllowedOrgs::Any {
        tracing::warn!(
            "SF_ALLOWED_ORGS is `*`: users of ANY Salesforce org can reach protected routes"
        );
    }
    if config.metrics_token.is_none() && config.is_https() {
        tracing::warn!(
            "METRICS_TOKEN is not set: anyone who can reach this host can read /metrics"
        );
    }
    if config.enable_password_flow {
        tracing::warn!(
            "SF_ENABLE_PASSWORD_FLOW is on: the username-password flow is for testing only"
        );
    }
}

async fn demo(port: u16, emulator_port: u16) -> ExitCode {
    telemetry::init(LogFormat::Text);
    let listener = match TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("sfgate demo: cannot listen on 127.0.0.1:{port}: {e} (try --port)");
            return ExitCode::FAILURE;
        }
    };
    let gateway_url = match listener.local_addr() {
        Ok(addr) => format!("http://{addr}"),
        Err(e) => {
            eprintln!("sfgate demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let redirect_uri = format!("{gateway_url}/oauth2/callback");
    let mut emulator_config = EmulatorConfig::new(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET);
    emulator_config.redirect_uris = vec![redirect_uri.clone()];
    emulator_config.require_pkce = true;
    let emulator = match Emulator::start(emulator_config, emulator_port).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("sfgate demo: cannot start the emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    let acme = demo_users()
        .first()
        .map(|u| u.org_id)
        .unwrap_or("00D5j00000AcMe1");
    let env = demo_environment(&emulator.base_url(), &redirect_uri, acme);
    let config = match Config::from_map(&env) {
        Ok(c) => c,
        Err(e) => return report(&e),
    };
    let gateway = match startup::spawn(config, listener).await {
        Ok(g) => g,
        Err(e) => {
            eprintln!("sfgate demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("\n  sfgate demo is running.\n");
    println!("  Open {gateway_url}/ in a browser and click \"Log in with Salesforce\".");
    println!(
        "  Salesforce is emulated at {} (only this org is allowed: {acme}).\n",
        emulator.base_url()
    );
    println!("  Demo users:");
    for user in demo_users() {
        let note = if user.org_id == acme {
            ""
        } else {
            "  <- org not allowed: shows the refusal"
        };
        println!(
            "    {:<24} password {:<14} {}{note}",
            user.username, user.password, user.org_name
        );
    }
    println!("\n  From a script (password flow is on in demo mode only):");
    println!(
        "    curl -s -d username=alice@acme.example -d password=alice-demo-1 {gateway_url}/oauth2/password"
    );
    println!("\n  Press Ctrl-C to stop.\n");
    startup::shutdown_signal().await;
    let _ = gateway.shutdown().await;
    emulator.shutdown().await;
    ExitCode::SUCCESS
}

/// The configuration demo mode runs with: the emulator as login host and instance, a fresh
/// random session secret, one allowed org.
pub fn demo_environment(
    emulator_url: &str,
    redirect_uri: &str,
    allowed_org: &str,
) -> HashMap<String, String> {
    use rand::Rng;
    let secret: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(48)
        .map(char::from)
        .collect();
    [
        ("SF_CLIENT_ID", DEMO_CLIENT_ID.to_string()),
        ("SF_CLIENT_SECRET", DEMO_CLIENT_SECRET.to_string()),
        ("SF_REDIRECT_URI", redirect_uri.to_string()),
        ("SF_LOGIN_URL", emulator_url.to_string()),
        ("SF_INSTANCE_ORIGINS", emulator_url.to_string()),
        ("SF_ALLOWED_ORGS", allowed_org.to_string()),
        ("SF_ENABLE_PASSWORD_FLOW", "true".to_string()),
        ("SESSION_SECRET", secret),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

//! `sfgate demo`: the gateway and the Salesforce emulator configured for each other on loopback,
//! optionally in gateway mode in front of an upstream (`--upstream`, or the built-in sample app
//! with `--with-sample-app`), so a newcomer sees every part in one command.

pub mod sample_app;

use crate::config::{Config, ConfigError};
use crate::prefix_paths::PrefixPaths;
use crate::salesforce::emulator::{demo_users, Emulator, EmulatorConfig, EmulatorHandle};
use crate::shell_examples;
use crate::startup::{self, RunningGateway};
use sample_app::SampleApp;
use std::collections::HashMap;
use std::fmt::Write as _;
use tokio::net::TcpListener;

pub const DEMO_CLIENT_ID: &str = "sfgate-demo-client";
pub const DEMO_CLIENT_SECRET: &str = "sfgate-demo-client-secret";
/// The demo's second Connected App, whose access tokens are JWTs (docs/token-types.md).
pub const DEMO_JWT_CLIENT_ID: &str = "sfgate-demo-jwt-client";
pub const DEMO_JWT_CLIENT_SECRET: &str = "sfgate-demo-jwt-client-secret";
/// Where the banner sends people to see the upstream app: its home page, which is the app's in
/// gateway mode (sfgate keeps only `/oauth2/...`).
pub const UPSTREAM_EXAMPLE_PATH: &str = "/";

/// What `sfgate demo` was asked to run.
#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    /// Gateway port on 127.0.0.1 (0 picks a free one; the banner shows it).
    pub port: u16,
    pub emulator_port: u16,
    pub upstream: Upstream,
}

/// What the gateway proxies to, if anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Upstream {
    /// No gateway mode: unknown paths answer 404.
    #[default]
    None,
    /// `--upstream URL` or `UPSTREAM_URL`.
    Url(String),
    /// `--with-sample-app`: the built-in app that shows the identity headers it receives.
    SampleApp,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("port {port} is in use; pick another with --port (0 picks a free one) or stop the other process")]
    PortInUse { port: u16 },
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Listen { port: u16, source: std::io::Error },
    #[error("cannot start the emulator: {0}")]
    Emulator(std::io::Error),
    #[error("cannot start the sample app: {0}")]
    SampleApp(std::io::Error),
    #[error("{0}")]
    Config(ConfigError),
    #[error("{0}")]
    Start(crate::state::StateError),
}

/// Everything the demo started; [`Demo::shutdown`] stops it all.
pub struct Demo {
    pub gateway: RunningGateway,
    pub emulator: EmulatorHandle,
    pub sample_app: Option<SampleApp>,
    pub allowed_org: &'static str,
    pub upstream_url: Option<String>,
    /// sfgate's own paths (its `PROXY_PREFIX`), which the banner names.
    pub paths: &'static PrefixPaths,
}

impl Demo {
    pub async fn start(options: &DemoOptions) -> Result<Self, DemoError> {
        let port = options.port;
        let listener =
            TcpListener::bind(("127.0.0.1", port))
                .await
                .map_err(|source| match source.kind() {
                    std::io::ErrorKind::AddrInUse => DemoError::PortInUse { port },
                    _ => DemoError::Listen { port, source },
                })?;
        let addr = listener
            .local_addr()
            .map_err(|source| DemoError::Listen { port, source })?;
        let paths = PrefixPaths::default_paths();
        let redirect_uri = format!("http://{addr}{}", paths.callback_example);
        let mut emulator_config = EmulatorConfig::new(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET);
        emulator_config.redirect_uris = vec![redirect_uri.clone()];
        emulator_config.require_pkce = true;
        emulator_config.canvas_url = Some(format!("http://{addr}{}", paths.canvas));
        // So the README's `REFRESH=...` line has something to keep (demo only).
        emulator_config.password_grant_refresh_token = true;
        emulator_config.jwt_app = Some(crate::salesforce::emulator::ConnectedApp {
            client_id: DEMO_JWT_CLIENT_ID.into(),
            client_secret: DEMO_JWT_CLIENT_SECRET.into(),
        });
        let emulator = Emulator::start(emulator_config, options.emulator_port)
            .await
            .map_err(DemoError::Emulator)?;
        let sample_app = match options.upstream {
            Upstream::SampleApp => Some(
                SampleApp::start_behind(paths)
                    .await
                    .map_err(DemoError::SampleApp)?,
            ),
            _ => None,
        };
        let upstream_url = match (&options.upstream, &sample_app) {
            (_, Some(app)) => Some(app.base_url()),
            (Upstream::Url(url), None) => Some(url.clone()),
            _ => None,
        };
        let allowed_org = demo_users()
            .first()
            .map(|u| u.org_id)
            .unwrap_or("00D5j00000AcMe1");
        let mut env = environment(&emulator.base_url(), &redirect_uri, allowed_org);
        if let Some(url) = &upstream_url {
            env.insert("UPSTREAM_URL".into(), url.clone());
            // The framed app is the upstream's page, as a Canvas app behind sfgate would be.
            env.insert("CANVAS_LANDING".into(), UPSTREAM_EXAMPLE_PATH.into());
        }
        let config = Config::from_map(&env).map_err(DemoError::Config)?;
        let gateway = startup::spawn(config, listener)
            .await
            .map_err(DemoError::Start)?;
        Ok(Self {
            gateway,
            emulator,
            sample_app,
            allowed_org,
            upstream_url,
            paths,
        })
    }

    /// What the demo prints at start: where to click, who to log in as, what to paste.
    pub fn banner(&self) -> String {
        let gateway = self.gateway.base_url();
        let paths = self.paths;
        let prefix = paths.prefix;
        let mut b = String::new();
        let _ = writeln!(b, "\n  sfgate demo is running.\n");
        if self.upstream_url.is_none() {
            let _ = writeln!(
                b,
                "  Open {gateway}/ in a browser and click \"Log in with Salesforce\"."
            );
        }
        let _ = writeln!(
            b,
            "  Salesforce is emulated at {} (only this org is allowed: {}).\n",
            self.emulator.base_url(),
            self.allowed_org
        );
        let _ = writeln!(b, "  Demo users:");
        for user in demo_users() {
            let note = if user.org_id == self.allowed_org {
                ""
            } else {
                "  <- org not allowed: shows the refusal"
            };
            let _ = writeln!(
                b,
                "    {:<24} password {:<14} {}{note}",
                user.username, user.password, user.org_name
            );
        }
        if let Some(upstream) = &self.upstream_url {
            let what = if self.sample_app.is_some() {
                "the built-in sample app, which shows the identity headers it receives"
            } else {
                "your app"
            };
            let _ = writeln!(
                b,
                "\n  Gateway mode: all paths outside {prefix}/ go to {upstream} ({what})."
            );
            let _ = writeln!(
                b,
                "  Open {gateway}{UPSTREAM_EXAMPLE_PATH} in a browser: you log in first, then see the app."
            );
            let _ = writeln!(
                b,
                "  sfgate's own pages: {gateway}{} , {gateway}{} , {gateway}{}",
                paths.sign_in, paths.sign_out, paths.userinfo
            );
        }
        let _ = writeln!(
            b,
            "\n  Canvas app: open {}/canvas/host?user=alice@acme.example\n  (a Salesforce page that POSTs a signed request to {gateway}{} in an iframe).",
            self.emulator.base_url(),
            paths.canvas
        );
        let _ = writeln!(
            b,
            "\n  From a shell (the password flow is on in demo mode only), paste:"
        );
        for line in shell_examples::login_lines_under(paths, &gateway, true) {
            let _ = writeln!(b, "    {line}");
        }
        let identity_path = if self.upstream_url.is_some() {
            paths.userinfo
        } else {
            "/api/me"
        };
        let _ = writeln!(
            b,
            "    {}",
            shell_examples::identity_line(&gateway, identity_path)
        );
        if self.upstream_url.is_some() {
            let _ = writeln!(
                b,
                "    {}",
                shell_examples::upstream_line(&gateway, UPSTREAM_EXAMPLE_PATH)
            );
        } else {
            let _ = writeln!(
                b,
                "\n  Gateway mode too: sfgate demo --with-sample-app (or --upstream http://127.0.0.1:8080)"
            );
        }
        let _ = writeln!(
            b,
            "\n  JWT-based access tokens: the Connected App {DEMO_JWT_CLIENT_ID} (secret {DEMO_JWT_CLIENT_SECRET})\n  issues them at the emulator's token endpoint; see docs/token-types.md."
        );
        let _ = writeln!(
            b,
            "\n  README.md (\"Use it\") has more to try. Press Ctrl-C to stop.\n"
        );
        b
    }

    pub async fn shutdown(self) {
        let _ = self.gateway.shutdown().await;
        self.emulator.shutdown().await;
        if let Some(app) = self.sample_app {
            app.shutdown().await;
        }
    }
}

/// The configuration demo mode runs with: the emulator as login host and instance, a fresh
/// random session secret, one allowed org, the password flow on.
pub fn environment(
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
        ("SF_ACCEPTED_CLIENT_IDS", DEMO_JWT_CLIENT_ID.to_string()),
        ("CANVAS_ENABLED", "true".to_string()),
        ("SESSION_SECRET", secret),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

//! `sfgate demo`: the gateway and the Salesforce emulator configured for each other on loopback,
//! optionally in gateway mode in front of an upstream (`--upstream`, or the built-in sample app
//! with `--with-sample-app`), so a newcomer sees every part in one command.
//!
//! This half lives in the binary because it starts the emulator; the gateway's side of demo
//! mode (its configuration, the sample app) is the library's `sfgate::demo`.

use sfgate::config::{Config, ConfigError};
use sfgate::demo::sample_app::SampleApp;
use sfgate::demo::{
    environment, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_JWT_CLIENT_ID, DEMO_JWT_CLIENT_SECRET,
};
use sfgate::prefix_paths::PrefixPaths;
use sfgate::shell_examples;
use sfgate::startup::{self, RunningGateway};
use sfgate_emulator::{demo_users, ConnectedApp, Emulator, EmulatorConfig, EmulatorHandle};
use std::fmt::Write as _;
use tokio::net::TcpListener;

/// Where the banner sends people to see the upstream app: its home page, which is the app's in
/// gateway mode (sfgate keeps only `/oauth2/...`).
const UPSTREAM_EXAMPLE_PATH: &str = "/";

/// What `sfgate demo` was asked to run.
#[derive(Debug, Clone, Default)]
pub(crate) struct DemoOptions {
    /// Gateway port on 127.0.0.1 (0 picks a free one; the banner shows it).
    pub(crate) port: u16,
    pub(crate) emulator_port: u16,
    pub(crate) upstream: Upstream,
}

/// What the gateway proxies to, if anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Upstream {
    /// No gateway mode: unknown paths answer 404.
    #[default]
    None,
    /// `--upstream URL` or `UPSTREAM_URL`.
    Url(String),
    /// `--with-sample-app`: the built-in app that shows the identity headers it receives.
    SampleApp,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum DemoError {
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
    Start(sfgate::state::StateError),
}

/// Everything the demo started; [`Demo::shutdown`] stops it all.
pub(crate) struct Demo {
    pub(crate) gateway: RunningGateway,
    pub(crate) emulator: EmulatorHandle,
    pub(crate) sample_app: Option<SampleApp>,
    pub(crate) allowed_org: &'static str,
    pub(crate) upstream_url: Option<String>,
    /// sfgate's own paths (its `PROXY_PREFIX`), which the banner names.
    pub(crate) paths: &'static PrefixPaths,
}

impl Demo {
    pub(crate) async fn start(options: &DemoOptions) -> Result<Self, DemoError> {
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
        emulator_config.jwt_app = Some(ConnectedApp {
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
    pub(crate) fn banner(&self) -> String {
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

    pub(crate) async fn shutdown(self) {
        let _ = self.gateway.shutdown().await;
        self.emulator.shutdown().await;
        if let Some(app) = self.sample_app {
            app.shutdown().await;
        }
    }
}

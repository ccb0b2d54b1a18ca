//! nginx as the anchor: its ports, its configuration, the process.

use super::*;

/// Loopback ports for nginx's three servers, picked free before nginx starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NginxPorts {
    /// The static upstream every proxy row uses.
    pub(crate) upstream: u16,
    /// nginx as a plain reverse proxy to the upstream.
    pub(crate) proxy: u16,
    /// nginx `auth_request` through sfgate's `/oauth2/auth`, then the upstream.
    pub(crate) auth_request: u16,
    /// nginx proxying WebSockets to the driver's echo server.
    pub(crate) ws_proxy: u16,
    /// The driver's WebSocket echo server (not nginx's; nginx proxies to it).
    pub(crate) ws_echo: u16,
    /// nginx `auth_request` asking the driver's bare `202` responder, then the upstream.
    pub(crate) auth_floor: u16,
    /// The driver's bare `202` responder (not nginx's; set once it listens).
    pub(crate) responder: u16,
}

impl NginxPorts {
    pub(crate) fn pick() -> Result<Self, Failure> {
        let free = || -> Result<u16, Failure> {
            Ok(std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port())
        };
        Ok(Self {
            upstream: free()?,
            proxy: free()?,
            auth_request: free()?,
            ws_proxy: free()?,
            ws_echo: free()?,
            auth_floor: free()?,
            responder: 0,
        })
    }
}

/// nginx run as the anchor, as two processes: the proxies, and the static upstream they and
/// sfgate proxy to. Apart, so that each row's CPU per request counts its proxy's work only and
/// the upstream's is measured on its own (a proxy that sends more to the upstream makes it
/// work more).
pub(crate) struct Nginx {
    pub(crate) ports: NginxPorts,
    /// Both configurations, as the report shows them.
    pub(crate) config: String,
    pub(crate) version: String,
    pub(crate) proxies: NginxProcess,
    pub(crate) upstream: NginxProcess,
    /// Dropped after the processes (fields drop in order), which live in them.
    _temps: Vec<tempfile::TempDir>,
}

impl Nginx {
    pub(crate) async fn start(
        binary: &str,
        ports: NginxPorts,
        sfgate: &str,
    ) -> Result<Self, Failure> {
        let sfgate_port = sfgate
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(|| fail("no port in the gateway's URL"))?;
        let version = Command::new(binary)
            .arg("-v")
            .output()
            .await
            .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
            .map_err(|e| fail(format!("cannot run {binary}: {e}")))?;
        let mut temps = Vec::new();
        // A temporary directory each, unless `BENCH_NGINX_DIR` names where to keep them.
        let mut dir_for = |name: &str| -> Result<PathBuf, Failure> {
            Ok(match std::env::var_os("BENCH_NGINX_DIR") {
                Some(dir) => PathBuf::from(dir).join(name),
                None => {
                    let t = tempfile::tempdir()?;
                    let d = t.path().to_path_buf();
                    temps.push(t);
                    d
                }
            })
        };
        let (upstream_dir, proxies_dir) = (dir_for("upstream")?, dir_for("proxies")?);
        let upstream_config = upstream_config(&upstream_dir, ports);
        let proxies_config = nginx_config(&proxies_dir, ports, sfgate_port);
        let upstream = NginxProcess::spawn(binary, &upstream_dir, &upstream_config)?;
        let proxies = NginxProcess::spawn(binary, &proxies_dir, &proxies_config)?;
        let shown = |config: &str, dir: &Path| config.replace(&dir.display().to_string(), "$DIR");
        let nginx = Self {
            ports,
            config: format!(
                "# The static upstream (its own nginx)\n{}\n# The proxies\n{}",
                shown(&upstream_config, &upstream_dir),
                shown(&proxies_config, &proxies_dir)
            ),
            version,
            proxies,
            upstream,
            _temps: temps,
        };
        let probe = reqwest::Client::builder()
            .timeout(Duration::from_millis(500))
            .build()?;
        let started = Instant::now();
        loop {
            let up = probe
                .get(format!("http://127.0.0.1:{}/hello", ports.proxy))
                .send()
                .await
                .map(|r| r.status() == 200)
                .unwrap_or(false);
            if up {
                return Ok(nginx);
            }
            if started.elapsed() > Duration::from_secs(10) {
                return Err(fail(format!(
                    "nginx did not start: {}{}",
                    nginx.upstream.error_log(),
                    nginx.proxies.error_log()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The static upstream every proxy row uses (sfgate's `UPSTREAM_URL` too), as deployed:
/// `worker_processes auto`, no logging.
pub(crate) fn upstream_config(dir: &Path, ports: NginxPorts) -> String {
    nginx_process::config(
        dir,
        "auto",
        8192,
        &format!(
            r#"    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{up};
        location / {{
            default_type text/plain;
            return 200 "hello from the upstream\n";
        }}
    }}
"#,
            up = ports.upstream
        ),
    )
}

/// The exact configuration the report shows: `worker_processes auto` as nginx is deployed,
/// keep-alive to the upstreams, and no logging (sfgate logs at `warn` in the bench too).
pub(crate) fn nginx_config(dir: &Path, ports: NginxPorts, sfgate_port: u16) -> String {
    nginx_process::config(
        dir,
        "auto",
        8192,
        &format!(
            r#"    keepalive_requests 1000000;

    upstream static_upstream {{
        server 127.0.0.1:{up};
        keepalive 128;
        keepalive_requests 1000000;
    }}
    upstream sfgate {{
        server 127.0.0.1:{sfgate_port};
        keepalive 128;
        keepalive_requests 1000000;
    }}

    # nginx as a plain reverse proxy, no authentication.
    server {{
        listen 127.0.0.1:{proxy};
        location / {{
            proxy_pass http://static_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}

    # nginx auth_request: every request asks sfgate's /oauth2/auth first.
    server {{
        listen 127.0.0.1:{auth};
        location = /_sfgate_auth {{
            internal;
            proxy_pass http://sfgate/oauth2/auth;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }}
        location / {{
            auth_request /_sfgate_auth;
            auth_request_set $sf_user $upstream_http_x_salesforce_user_id;
            auth_request_set $sf_org $upstream_http_x_salesforce_org_id;
            proxy_set_header X-Salesforce-User-Id $sf_user;
            proxy_set_header X-Salesforce-Org-Id $sf_org;
            proxy_set_header Authorization "";
            proxy_set_header X-Instance-Url "";
            proxy_pass http://static_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}

    # The floor of the auth_request design: the same auth_request, answered 202 at once by a
    # bare thread-per-core responder in the driver (nothing of sfgate's).
    upstream bare_responder {{
        server 127.0.0.1:{responder};
        keepalive 128;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{auth_floor};
        location = /_bare_auth {{
            internal;
            proxy_pass http://bare_responder/auth;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }}
        location / {{
            auth_request /_bare_auth;
            # As the sfgate server above, so nginx does the same work (the responder sends
            # no such headers: the variables stay empty).
            auth_request_set $sf_user $upstream_http_x_salesforce_user_id;
            auth_request_set $sf_org $upstream_http_x_salesforce_org_id;
            proxy_set_header X-Salesforce-User-Id $sf_user;
            proxy_set_header X-Salesforce-Org-Id $sf_org;
            proxy_set_header Authorization "";
            proxy_set_header X-Instance-Url "";
            proxy_pass http://static_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}

    # nginx proxying WebSockets to the driver's echo server, no authentication.
    server {{
        listen 127.0.0.1:{ws_proxy};
        location / {{
            proxy_pass http://127.0.0.1:{ws_echo};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 60s;
        }}
    }}
"#,
            up = ports.upstream,
            proxy = ports.proxy,
            auth = ports.auth_request,
            ws_proxy = ports.ws_proxy,
            ws_echo = ports.ws_echo,
            auth_floor = ports.auth_floor,
            responder = ports.responder,
        ),
    )
}

//! The real `sfgate` binary as a child process: `sfgate emulator` and `sfgate serve` with their
//! output captured, started on a port chosen beforehand (the callback URL names it) and retried
//! when another process took it first.

use crate::common::ACME;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_sfgate");
pub const CLIENT_ID: &str = "logs-test-client";
pub const CLIENT_SECRET: &str = "logs-test-client-secret-7c1e";
pub const SESSION_SECRET: &str = "logs-test-session-secret-0123456789-abcdef";

/// Kills the process when the test ends, pass or fail.
pub struct Running {
    pub child: Child,
    output: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Running {
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sfgate");
        let output = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        let stdout: Box<dyn Read + Send> = Box::new(child.stdout.take().expect("stdout"));
        let stderr: Box<dyn Read + Send> = Box::new(child.stderr.take().expect("stderr"));
        for stream in [stdout, stderr] {
            let sink = output.clone();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    let mut all = sink.lock().expect("lock");
                    all.push_str(&line);
                    all.push('\n');
                }
            }));
        }
        Self {
            child,
            output,
            readers,
        }
    }

    pub fn output(&self) -> String {
        self.output.lock().expect("lock").clone()
    }

    /// Stops the process and returns everything it wrote.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        self.output()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_for(what: &str, mut ready: impl FnMut() -> Option<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = ready() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn start_emulator(redirect_uri: &str) -> (Running, String) {
    let mut command = Command::new(BIN);
    command
        .args(["emulator", "--port", "0", "--client-id", CLIENT_ID])
        .args([
            "--client-secret",
            CLIENT_SECRET,
            "--redirect-uri",
            redirect_uri,
        ])
        .env_remove("RUST_LOG")
        .current_dir(std::env::temp_dir());
    let emulator = Running::spawn(command);
    let url = wait_for("emulator", || {
        emulator.output().lines().find_map(|l| {
            l.strip_prefix("Salesforce emulator on ")
                .map(|u| u.trim().to_string())
        })
    });
    (emulator, url)
}

pub fn start_gateway(port: u16, emulator_url: &str, format: &str) -> Running {
    start_gateway_with(port, emulator_url, format, &[])
}

/// [`start_gateway`] with more variables (or others in place of its own).
pub fn start_gateway_with(
    port: u16,
    emulator_url: &str,
    format: &str,
    extra: &[(&str, String)],
) -> Running {
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .env_clear()
        .current_dir(std::env::temp_dir())
        .envs([
            ("SF_CLIENT_ID", CLIENT_ID),
            ("SF_CLIENT_SECRET", CLIENT_SECRET),
            ("SF_LOGIN_URL", emulator_url),
            ("SF_INSTANCE_ORIGINS", emulator_url),
            ("SF_ALLOWED_ORGS", ACME),
            ("SESSION_SECRET", SESSION_SECRET),
            ("SF_ENABLE_PASSWORD_FLOW", "true"),
            ("HOST", "127.0.0.1"),
            ("LOG_FORMAT", format),
            ("RUST_LOG", "trace"),
        ])
        .env(
            "SF_REDIRECT_URI",
            format!("http://127.0.0.1:{port}/oauth2/callback"),
        )
        .env("PORT", port.to_string())
        .envs(extra.iter().map(|(k, v)| (k, v)));
    Running::spawn(command)
}

/// Waits until the gateway answers its health check; false when it exited first. It is asked only
/// once it said it is listening: until then the port may be another server's, the one that
/// made it exit.
pub async fn healthy(base: &str, gateway: &mut Running) -> bool {
    sfgate::crypto::install_tls_provider();
    let probe = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if gateway.output().contains("sfgate listening") {
            // `/healthz` alone, `/oauth2/healthz` in gateway mode (where `/healthz` is the app's).
            for path in ["/healthz", "/oauth2/healthz"] {
                let answer = probe.get(format!("{base}{path}")).send().await;
                if answer.is_ok_and(|r| r.status() == 200) {
                    return true;
                }
            }
        }
        if matches!(gateway.child.try_wait(), Ok(Some(_))) {
            return false;
        }
        assert!(
            Instant::now() < deadline,
            "gateway did not start:\n{}",
            gateway.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A gateway process and its emulator, on a free port, answering its health check.
pub struct Started {
    pub gateway: Running,
    pub emulator: Running,
    pub emulator_url: String,
    pub port: u16,
}

/// Starts a gateway with its own emulator on a free port and waits until it answers; starts
/// both again on another port when another process took the port first (five times at most).
/// `env` gives each attempt's variables besides [`start_gateway_with`]'s own (called again
/// for each attempt, so that ports it picks are picked again too).
pub async fn start_on_free_port<'a>(mut env: impl FnMut() -> Vec<(&'a str, String)>) -> Started {
    for _ in 0..5 {
        let env = env();
        let port = crate::common::free_port();
        let redirect_uri = format!("http://127.0.0.1:{port}/oauth2/callback");
        let (emulator, emulator_url) = start_emulator(&redirect_uri);
        let mut gateway = start_gateway_with(port, &emulator_url, "json", &env);
        let base = format!("http://127.0.0.1:{port}");
        if !healthy(&base, &mut gateway).await {
            let output = gateway.stop();
            assert!(
                output.contains("is in use"),
                "gateway did not start:\n{output}"
            );
            continue;
        }
        return Started {
            gateway,
            emulator,
            emulator_url,
            port,
        };
    }
    panic!("the gateway found its port taken 5 times");
}

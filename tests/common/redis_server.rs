//! A real `redis-server` (Debian's package) on a loopback port, started by the test that needs
//! it and killed when dropped. Without the binary, tests say they were skipped and why, and
//! pass; with `CI=true` they fail instead, so CI cannot go green without having run them.

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    /// Serves TLS only, with a self-signed certificate (as Heroku Key-Value Store does).
    tls: bool,
    child: Option<Child>,
    binary: PathBuf,
    dir: tempfile::TempDir,
}

fn say(message: &str) {
    let _ = writeln!(std::io::stderr(), "{message}");
}

fn binary() -> Option<PathBuf> {
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("redis-server"))
        .find(|p| p.is_file())
}

impl RedisServer {
    /// A fresh server, or `None` (with the reason printed) when `redis-server` is missing
    /// outside CI. In CI a missing server fails the test.
    pub fn start(test: &str) -> Option<Self> {
        Self::start_with(test, false)
    }

    /// A server that speaks TLS only, with a fresh self-signed certificate (made with the
    /// `openssl` command, which Debian's ca-certificates brings along).
    pub fn start_tls(test: &str) -> Option<Self> {
        Self::start_with(test, true)
    }

    fn start_with(test: &str, tls: bool) -> Option<Self> {
        let Some(binary) = binary() else {
            let why = "redis-server is not installed (Debian package `redis-server`)";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{test}: {why}; CI must run the Redis tests");
            }
            say(&format!("SKIPPED {test}: {why}"));
            return None;
        };
        let mut dir = tempfile::tempdir().expect("temp dir");
        if tls && !self_signed_certificate(&dir) {
            let why = "the openssl command is missing (needed to make a self-signed certificate)";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{test}: {why}");
            }
            say(&format!("SKIPPED {test}: {why}"));
            return None;
        }
        // A port from the OS; another process may take it between release and start, so the
        // start is retried with a new one.
        for _ in 0..5 {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let mut server = Self {
                port,
                tls,
                child: None,
                binary: binary.clone(),
                dir,
            };
            if server.launch() {
                return Some(server);
            }
            dir = server.into_dir();
            if tls {
                self_signed_certificate(&dir);
            }
        }
        panic!("{test}: redis-server did not start on any of five ports");
    }

    fn into_dir(mut self) -> tempfile::TempDir {
        self.kill();
        let dir = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.dir, dir)
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Starts the server on `self.port`; `false` if it did not answer within a few seconds.
    fn launch(&mut self) -> bool {
        let port = self.port.to_string();
        let mut command = Command::new(&self.binary);
        if self.tls {
            let path = |name: &str| self.dir.path().join(name).display().to_string();
            command
                .args(["--port", "0", "--tls-port", &port])
                .args(["--tls-cert-file", &path("cert.pem")])
                .args(["--tls-key-file", &path("key.pem")])
                .args(["--tls-auth-clients", "no"]);
        } else {
            command.args(["--port", &port]);
        }
        let child = command
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(_)) = child.try_wait() {
                    self.child = None;
                    return false; // exited: the port was taken
                }
            }
            if self.ping() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        false
    }

    fn ping(&self) -> bool {
        if self.tls {
            // Listening is enough here; the test itself speaks TLS to it.
            return std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok();
        }
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_ok()
    }

    /// Kills the server (SIGKILL: an outage, not a shutdown).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: nothing was saved).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.launch() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("redis-server did not restart on port {}", self.port);
    }

    /// A plain connection for the test's own look at what is stored.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
            .expect("test connection to redis")
    }
}

/// `cert.pem` and `key.pem` in `dir`; `false` if `openssl` is not there.
fn self_signed_certificate(dir: &tempfile::TempDir) -> bool {
    Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=self-signed-redis"])
        .arg("-keyout")
        .arg(dir.path().join("key.pem"))
        .arg("-out")
        .arg(dir.path().join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

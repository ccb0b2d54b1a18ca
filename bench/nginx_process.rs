//! One nginx as the benchmark and the soak run it: its configuration written into a directory
//! of its own (pid file, logs and temporary files there too), run in the foreground, and
//! stopped with SIGQUIT when dropped, so that its workers finish and exit with the master
//! (SIGKILL would orphan them). Shared by bench/driver and bench/soak-driver.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

pub(crate) struct NginxProcess {
    /// `None` once its owner has seen it exit.
    pub(crate) child: Option<Child>,
    pub(crate) dir: PathBuf,
}

/// What every configuration here starts with: `workers` worker processes in the foreground,
/// the pid file, error log and temporary files in `dir`, no access log. `http` is the rest of
/// the `http` block.
pub(crate) fn config(dir: &Path, workers: &str, connections: u32, http: &str) -> String {
    let d = dir.display();
    format!(
        r#"worker_processes {workers};
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
{http}}}
"#
    )
}

impl NginxProcess {
    /// Writes `config` to `dir/nginx.conf` and starts nginx with it.
    pub(crate) fn spawn(binary: &str, dir: &Path, config: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("nginx.conf"), config)?;
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        Ok(Self {
            child: Some(child),
            dir: dir.to_path_buf(),
        })
    }

    /// What nginx wrote to its error log (why it did not start, if it did not).
    pub(crate) fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for NginxProcess {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-QUIT", &pid.to_string()])
                .status();
            for _ in 0..100 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = child.start_kill();
    }
}

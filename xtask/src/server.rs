//! A throwaway `tether-server` for tests that need a real one (the wasm
//! stage): the debug binary on a free loopback port with a temporary data
//! directory, stopped and removed when dropped.

use crate::util::{Result, root};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long the server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

pub struct TestServer {
    child: Child,
    dir: PathBuf,
    /// `http://127.0.0.1:<port>`
    pub url: String,
}

impl TestServer {
    /// Starts `target/debug/tether-server` (build it first) and waits until
    /// it logs the address it listens on.
    pub fn start() -> Result<TestServer> {
        let bin = root().join("target/debug/tether-server");
        let dir = std::env::temp_dir().join(format!("tether-xtask-server-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let mut child = Command::new(&bin)
            .args(["--listen", "127.0.0.1:0", "--data"])
            .arg(dir.join("data"))
            .env("TETHER_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("could not start {}: {e}", bin.display()))?;
        // Read the log on a thread (and keep draining it, so the server
        // never blocks on a full pipe); the first `addr=` is the address.
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.split_whitespace().find_map(|w| w.strip_prefix("addr=")) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr.trim_matches('"').to_string());
                    }
                }
            }
        });
        let mut server = TestServer { child, dir, url: String::new() };
        let addr = rx
            .recv_timeout(START_TIMEOUT)
            .map_err(|_| format!("{} did not start listening within {START_TIMEOUT:?}", bin.display()))?;
        server.url = format!("http://{addr}");
        Ok(server)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

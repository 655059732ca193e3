//! What the CLI's end-to-end tests share: the real `tether` binary run in a
//! home directory, and a spawned `tether-server` that can be killed and
//! started again on the same data and port.
#![allow(dead_code)] // each test binary uses its own part

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const TETHER: &str = env!("CARGO_BIN_EXE_tether");

pub fn server_bin() -> PathBuf {
    // tether-server is built by the same workspace build into the same dir.
    let dir = Path::new(TETHER).parent().unwrap();
    let bin = dir.join("tether-server");
    // Built once per test process, so a stale binary from an older build is
    // never the one tested (quick when it is up to date, which takes two
    // things). The same packages as `cargo xtask test` builds after the
    // native tests (xtask/src/test.rs): cargo unifies features over the
    // packages named, and `-p tether-server` alone was a third feature set.
    // And without the variables cargo sets for this test process
    // (CARGO_MANIFEST_DIR, CARGO_PKG_NAME, ...): ring's build script reruns
    // when they change, so inheriting them rebuilt ring and everything
    // above it (rustls, tether-server, tether-cli, ...) here, and again in
    // the next build without them.
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "-q", "-p", "tether-server", "-p", "tether-cli"]);
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            let per_package = [
                "CARGO_MANIFEST_",
                "CARGO_PKG_",
                "CARGO_BIN_",
                "CARGO_CRATE_",
                "CARGO_PRIMARY_",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
            ];
            if per_package.iter().any(|p| name.starts_with(p)) {
                cargo.env_remove(name.as_ref());
            }
        }
        let status = cargo.status().unwrap();
        assert!(status.success());
    });
    bin
}

/// A `tether-server` process, killed (SIGKILL) when dropped.
pub struct Server {
    /// The process.
    pub child: Child,
    /// Its address, `http://127.0.0.1:PORT`.
    pub url: String,
    /// Where its (debug) log goes, appended across restarts.
    pub log: PathBuf,
}

impl Server {
    /// A server on a free port, keeping its data in `dir/server`.
    pub fn start(dir: &Path) -> Server {
        Self::start_at(dir, "127.0.0.1:0")
    }

    /// A server on a free port with extra options.
    pub fn start_with(dir: &Path, args: &[&str]) -> Server {
        Self::launch(dir, "127.0.0.1:0", args)
    }

    /// A server listening on `addr`, keeping its data in `dir/server`.
    pub fn start_at(dir: &Path, addr: &str) -> Server {
        Self::launch(dir, addr, &[])
    }

    fn launch(dir: &Path, addr: &str, args: &[&str]) -> Server {
        let log = dir.join("server.log");
        let mut child = Command::new(server_bin())
            .args(["--listen", addr, "--data"])
            .arg(dir.join("server"))
            .args(args)
            .env("TETHER_LOG", "debug")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut out = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let addr = loop {
            let line = lines.next().expect("the server logs its address").unwrap();
            writeln!(out, "{line}").unwrap();
            if let Some(rest) = line.split("addr=").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let _ = writeln!(out, "{line}");
            }
        });
        Server { child, url: format!("http://{addr}"), log }
    }

    /// `host:port` it listens on.
    pub fn addr(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// Kills it with SIGKILL (no shutdown, no destructors) and reaps it.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Waits until `/healthz` answers.
    pub fn wait_healthy(&self) {
        for _ in 0..100 {
            if ureq::get(&format!("{}/healthz", self.url)).call().is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the server at {} did not become healthy", self.url);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `tether --data home args…`: (success, stdout, stderr).
pub fn tether(home: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(TETHER).arg("--data").arg(home).args(args).stdin(Stdio::null()).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `tether` and asserts it succeeded; its stdout.
pub fn ok(home: &Path, args: &[&str]) -> String {
    let (success, out, err) = tether(home, args);
    assert!(success, "tether {args:?} failed:\n{out}\n{err}");
    out
}

/// Two CLI homes under `dir`, alice and bob, each registered on `server`.
pub fn register_alice_and_bob(dir: &Path, server: &Server) -> (PathBuf, PathBuf) {
    let (alice, bob) = (dir.join("alice"), dir.join("bob"));
    ok(&alice, &["register", "alice", "--server", &server.url]);
    ok(&bob, &["register", "bob", "--server", &server.url]);
    (alice, bob)
}

/// A child process killed when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

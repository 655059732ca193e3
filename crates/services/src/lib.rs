//! Throwaway PostgreSQL, nats-server and S3 server processes, each in a
//! temporary directory of its own and stopped (the directory removed) when
//! dropped: what the several-node tests, `cargo xtask bench server
//! --cluster` and `cargo xtask run --cluster` run a cluster on. PostgreSQL
//! and nats-server come from Debian's packages (`postgresql`,
//! `nats-server`), the S3 server from PyPI (`moto[server]`); `cargo xtask
//! setup` installs them.
//!
//! Every process is started through `setpriv --pdeathsig KILL`, so it dies
//! with the thread that started it even when that thread's process is
//! killed and never runs a destructor. As root, PostgreSQL (which refuses
//! to run as root) runs as the `postgres` user that Debian's package makes.

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub type Result<T = ()> = std::result::Result<T, String>;

/// A free TCP port on 127.0.0.1 (free when asked; used right away).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port on 127.0.0.1")
}

/// Whether we run as root.
fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_some_and(|u| u.trim() == "0")
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `program args…`, as `user` when given, dying with the calling thread.
fn guarded(program: &Path, user: Option<&str>) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.arg("--pdeathsig").arg("KILL");
    if let Some(user) = user {
        cmd.args([&format!("--reuid={user}"), &format!("--regid={user}"), "--init-groups"]);
    }
    cmd.arg("--").arg(program);
    cmd
}

/// Sends `signal` (a name: INT, TERM, KILL) to a process.
fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status();
}

/// Waits up to `limit` for a child to exit; kills it if it does not.
fn reap(child: &mut Child, limit: Duration) {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Polls `ready` every 50 ms until it is true or `limit` passes.
fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) -> Result {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("{what} was not ready after {} s", limit.as_secs()))
}

/// The directory of PostgreSQL's programs: Debian keeps them in
/// /usr/lib/postgresql/<major>/bin (the newest installed major wins), else
/// `postgres` on PATH.
pub fn postgres_bin_dir() -> Option<PathBuf> {
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").is_file().then_some((major, bin))
        })
        .collect();
    majors.sort();
    if let Some((_, bin)) = majors.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).find(|p| p.join("postgres").is_file() && p.join("initdb").is_file())
    })
}

/// A throwaway PostgreSQL server on 127.0.0.1: its own cluster in a
/// temporary directory, user `tether` trusted on loopback (no password: the
/// port is reachable only from this machine, for the length of a test).
/// Stopped (fast shutdown) and its directory removed when dropped.
#[derive(Debug)]
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    user: Option<String>,
    port: u16,
    child: Option<Child>,
}

impl Postgres {
    /// `initdb`, then starts the server and waits until it accepts
    /// connections. Durable as configured by default (fsync on).
    pub fn start() -> Result<Postgres> {
        let bin = postgres_bin_dir().ok_or(
            "PostgreSQL is not installed: run `cargo xtask setup` (it installs the Debian package `postgresql`)",
        )?;
        let dir = tempfile::Builder::new()
            .prefix("tether-postgres-")
            .tempdir()
            .map_err(|e| format!("a temporary directory for PostgreSQL: {e}"))?;
        let user = is_root().then(|| "postgres".to_string());
        if let Some(user) = &user {
            // The server's files belong to the user it runs as.
            let ids = output(Command::new("id").arg("-u").arg(user))
                .zip(output(Command::new("id").arg("-g").arg(user)))
                .ok_or(format!("no `{user}` user to run PostgreSQL as (Debian's package makes it)"))?;
            let (uid, gid) = (ids.0.trim().parse().ok(), ids.1.trim().parse().ok());
            std::os::unix::fs::chown(dir.path(), uid, gid)
                .map_err(|e| format!("chown {}: {e}", dir.path().display()))?;
        }
        let data = dir.path().join("data");
        let out = guarded(&bin.join("initdb"), user.as_deref())
            .arg("-D")
            .arg(&data)
            .args(["-U", "tether", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"])
            .output()
            .map_err(|e| format!("could not run initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let mut pg = Postgres { dir, bin, user, port: free_port(), child: None };
        pg.start_again()?;
        Ok(pg)
    }

    /// Starts the server again on the same data and port (after
    /// [`Postgres::stop`] or [`Postgres::kill`]).
    pub fn start_again(&mut self) -> Result {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("postgres.log"))
            .map_err(|e| e.to_string())?;
        if let Some(user) = &self.user {
            let _ = Command::new("chown").arg(user).arg(self.dir.path().join("postgres.log")).status();
        }
        let child = guarded(&self.bin.join("postgres"), self.user.as_deref())
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", self.dir.path().display()))
            .args(["-c", "max_connections=200", "-c", "shared_buffers=32MB"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("could not start postgres: {e}"))?;
        self.child = Some(child);
        let isready = self.bin.join("pg_isready");
        let port = self.port.to_string();
        wait_for("PostgreSQL", Duration::from_secs(30), || {
            Command::new(&isready)
                .args(["-q", "-h", "127.0.0.1", "-p", &port, "-U", "tether", "-d", "postgres"])
                .status()
                .is_ok_and(|s| s.success())
        })
        .map_err(|e| format!("{e}; its log:\n{}", self.log()))
    }

    /// Stops the server as an operator would (fast shutdown: connections
    /// are closed, everything committed is on disk) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(postmaster_pid(&child, self.dir.path()), "INT");
            reap(&mut child, Duration::from_secs(20));
        }
    }

    /// Kills the server (SIGKILL, as a crash would): only what it committed
    /// and synced survives.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(postmaster_pid(&child, self.dir.path()), "KILL");
            reap(&mut child, Duration::from_secs(20));
        }
    }

    /// Creates a database and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String> {
        let out = Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "tether", name])
            .output()
            .map_err(|e| format!("could not run createdb: {e}"))?;
        if !out.status.success() {
            return Err(format!("createdb {name}: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(self.url(name))
    }

    /// The URL of database `db` (`postgres` always exists).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://tether@127.0.0.1:{}/{db}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory its data and log are in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }
}

/// The postmaster's pid: the child is `setpriv`, which execs it, so the
/// same pid, but the pid file says so for certain once it is written.
fn postmaster_pid(child: &Child, dir: &Path) -> u32 {
    std::fs::read_to_string(dir.join("data/postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next()?.trim().parse().ok())
        .unwrap_or(child.id())
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// nats-server: on PATH, else where Debian's package puts it (/usr/sbin,
/// which a user's PATH may lack).
pub fn nats_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join("nats-server")).find(|p| p.is_file()));
    on_path.or_else(|| Some(PathBuf::from("/usr/sbin/nats-server")).filter(|p| p.is_file()))
}

/// A throwaway nats-server on 127.0.0.1 (core NATS, nothing persisted).
/// Killed, and its directory removed, when dropped.
#[derive(Debug)]
pub struct Nats {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Nats {
    /// Starts nats-server and waits until it greets a client.
    pub fn start() -> Result<Nats> {
        let bin = nats_bin().ok_or(
            "nats-server is not installed: run `cargo xtask setup` (it installs the Debian package `nats-server`)",
        )?;
        let dir = tempfile::Builder::new()
            .prefix("tether-nats-")
            .tempdir()
            .map_err(|e| format!("a temporary directory for nats-server: {e}"))?;
        let mut nats = Nats { dir, bin, port: free_port(), child: None };
        nats.start_again()?;
        Ok(nats)
    }

    /// Starts it again on the same port (after [`Nats::kill`]).
    pub fn start_again(&mut self) -> Result {
        let log = self.dir.path().join("nats.log");
        let child = guarded(&self.bin, None)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-l"])
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("could not start nats-server: {e}"))?;
        self.child = Some(child);
        let port = self.port;
        wait_for("nats-server", Duration::from_secs(20), || greets(port))
    }

    /// Kills it (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nats.log")).unwrap_or_default()
    }
}

/// Whether a NATS server on `port` sends its `INFO` greeting.
fn greets(port: u16) -> bool {
    let Ok(s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    BufReader::new(s.take(64 * 1024)).read_line(&mut line).is_ok_and(|_| line.starts_with("INFO "))
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The moto release whose S3 server ([`S3`]) the tests run: a
/// pure-Python, S3-compatible server from PyPI (the one S3 server the
/// machine's registries offer), installed by `cargo xtask setup` into
/// [`moto_dir`].
pub const MOTO_VERSION: &str = "5.2.5";

/// Where `cargo xtask setup` puts moto's virtualenv:
/// `$XDG_CACHE_HOME/tether/moto-<version>` (or `~/.cache/…`), kept from
/// one run to the next.
pub fn moto_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("tether").join(format!("moto-{MOTO_VERSION}"))
}

/// moto's server program, if setup installed it (and finished: it
/// writes `installed` last).
pub fn moto_server_bin() -> Option<PathBuf> {
    let dir = moto_dir();
    Some(dir.join("bin").join("moto_server")).filter(|p| p.is_file() && dir.join("installed").is_file())
}

/// Makes the bucket with boto3 (installed with moto), trying until the
/// server answers.
const MAKE_BUCKET: &str = r#"
import boto3, time
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:PORT", region_name="us-east-1",
                  aws_access_key_id="tether", aws_secret_access_key="tether")
for _ in range(300):
    try:
        s3.create_bucket(Bucket="BUCKET")
        break
    except Exception as e:
        last = e
        time.sleep(0.1)
else:
    raise SystemExit(f"no bucket: {last}")
"#;

/// A throwaway S3-compatible server on 127.0.0.1 (moto's, objects in
/// memory), with one bucket, `tether-blobs`. Killed when dropped.
#[derive(Debug)]
pub struct S3 {
    port: u16,
    child: Option<Child>,
    log: tempfile::NamedTempFile,
}

impl S3 {
    /// The bucket it makes.
    pub const BUCKET: &str = "tether-blobs";

    /// Starts the server, waits until it answers, and makes the bucket.
    pub fn start() -> Result<S3> {
        let bin = moto_server_bin().ok_or_else(|| {
            format!(
                "moto's S3 server is not installed in {}: run `cargo xtask setup` (it pip-installs moto[server]=={MOTO_VERSION})",
                moto_dir().display()
            )
        })?;
        let log = tempfile::Builder::new()
            .prefix("tether-s3-")
            .suffix(".log")
            .tempfile()
            .map_err(|e| format!("a log file for the S3 server: {e}"))?;
        let port = free_port();
        let out = log.reopen().map_err(|e| e.to_string())?;
        let err = log.reopen().map_err(|e| e.to_string())?;
        let child = guarded(&bin, None)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("could not start moto_server: {e}"))?;
        let s3 = S3 { port, child: Some(child), log };
        let script = MAKE_BUCKET.replace("PORT", &port.to_string()).replace("BUCKET", Self::BUCKET);
        let made = Command::new(moto_dir().join("bin").join("python"))
            .arg("-c")
            .arg(script)
            .output()
            .map_err(|e| format!("could not run moto's python: {e}"))?;
        if !made.status.success() {
            return Err(format!(
                "the S3 server did not start: {}\n{}",
                String::from_utf8_lossy(&made.stderr),
                s3.log()
            ));
        }
        Ok(s3)
    }

    /// `s3://tether-blobs/<prefix>`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", Self::BUCKET)
    }

    /// The object store settings that reach it (object_store's names).
    pub fn options(&self) -> Vec<(String, String)> {
        [
            ("aws_endpoint", format!("http://127.0.0.1:{}", self.port)),
            ("aws_region", "us-east-1".into()),
            ("aws_access_key_id", "tether".into()),
            ("aws_secret_access_key", "tether".into()),
            ("aws_allow_http", "true".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// What the server printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Kills it (SIGKILL): every object is gone with it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_starts_answers_restarts_and_goes_away() {
        let mut pg = Postgres::start().unwrap();
        let url = pg.create_database("probe").unwrap();
        assert!(url.ends_with("/probe"));
        let psql = |sql: &str, pg: &Postgres| {
            output(Command::new(pg.bin.join("psql")).args([
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port.to_string(),
                "-U",
                "tether",
                "-d",
                "probe",
                "-tAc",
                sql,
            ]))
        };
        psql("CREATE TABLE t (v int); INSERT INTO t VALUES (7)", &pg).unwrap();
        pg.kill();
        assert!(psql("SELECT 1", &pg).is_none(), "down after a kill");
        pg.start_again().unwrap();
        assert_eq!(psql("SELECT v FROM t", &pg).unwrap().trim(), "7", "a committed row survives a crash");
        let dir = pg.dir().to_path_buf();
        drop(pg);
        assert!(!dir.exists(), "its directory is removed");
    }

    #[test]
    fn nats_starts_greets_and_goes_away() {
        let mut nats = Nats::start().unwrap();
        assert!(greets(nats.port()));
        nats.kill();
        assert!(!greets(nats.port()));
        nats.start_again().unwrap();
        assert!(greets(nats.port()));
    }
}

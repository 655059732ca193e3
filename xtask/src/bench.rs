//! `cargo xtask bench server [--idle N] [--pairs M] [--rate R] [--seconds S] [--size B]`:
//! builds release `tether-server` and `tether-bench`, starts the server on
//! 127.0.0.1:0 with a fresh data directory and rate limits raised, pinned to
//! CPU 0, runs the load generator pinned to CPU 1, then prints a table and
//! writes every number to `target/bench/server.json`.

use crate::build::release_bin;
use crate::util::{self, Result, Timer, root};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: cargo xtask bench server [--idle N] [--pairs M] [--rate R] [--seconds S] [--size B] [--rounds K]
                                  (K rounds of the floor and tether-server, one after the other,
                                   default 3: every figure is the median of the rounds')
       cargo xtask bench server --cluster [same options] (one node on SQLite, then two nodes on one
                                   throwaway PostgreSQL with NATS, senders on one node and receivers
                                   on the other: latency, throughput and CPU per message of each)
       cargo xtask bench client   (Olm throughput; linking with a 1,000-message history)
       cargo xtask bench link [N] (the phone web app links the extension by camera with N messages
                                   of history, default 1,000: time to the popup's chat list)
       cargo xtask bench media    (file encryption natively and with WebCrypto in the extension's
                                   worker; 64 MB CLI to CLI and extension to server through a
                                   release server on loopback)
       cargo xtask bench history [M] (the extension with M messages in 500 chats, default 100,000:
                                 wake, popup paint, opening chats, search, storage)
       cargo xtask bench extension (the optimised core's size gzipped; worker wake to the badge,
                                   to connected and to 3 queued messages drained; popup first
                                   paint; p50 of 10 runs in headless Chromium)
       cargo xtask bench groups [N] (one group of N accounts, default 1,024, on a release server
                                   on loopback: the sender's CPU time, bytes uploaded and the
                                   time until every member has it, for the creation and two sends)";

/// The goals from the issue.
const GOAL_MSGS_PER_SEC: f64 = 150_000.0;
const GOAL_P99_US: f64 = 1_000.0;
const GOAL_KIB_PER_IDLE: f64 = 4.0;
/// The lower fixed rate every run also measures (beside `--rate`).
const LOW_RATE: u64 = 1_000;
/// Goals against the floor (tether-floor, same run) at `--rate`.
const GOAL_P50_TIMES_FLOOR: f64 = 2.0;
const GOAL_P99_TIMES_FLOOR: f64 = 4.0;

/// Raises the fd limit (the server and the load generator each hold one
/// socket per connection), then pins to `$1` unless it is `-`.
const LAUNCH: &str = r#"ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; cpu=$1; shift; if [ "$cpu" = "-" ]; then exec "$@"; else exec taskset -c "$cpu" "$@"; fi"#;

#[derive(Debug, Clone, PartialEq)]
struct Opts {
    idle: u64,
    pairs: u64,
    rate: u64,
    seconds: u64,
    size: u64,
    /// Rounds of the floor and tether-server, one after the other; each
    /// figure is the median of the rounds'.
    rounds: u64,
    /// `--cluster`: SQLite beside two nodes on PostgreSQL.
    cluster: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Self { idle: 10_000, pairs: 50, rate: 5_000, seconds: 10, size: 256, rounds: 3, cluster: false }
    }
}

fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--cluster" {
            o.cluster = true;
            continue;
        }
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) => (f, Some(v.to_string())),
            None => (a.as_str(), None),
        };
        let slot = match flag {
            "--idle" => &mut o.idle,
            "--pairs" => &mut o.pairs,
            "--rate" => &mut o.rate,
            "--seconds" => &mut o.seconds,
            "--size" => &mut o.size,
            "--rounds" => &mut o.rounds,
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        };
        let value = match inline {
            Some(v) => v,
            None => it.next().ok_or_else(|| format!("{flag} needs a number"))?.clone(),
        };
        *slot = value.replace('_', "").parse().map_err(|_| format!("{flag}: `{value}` is not a number"))?;
    }
    if o.pairs == 0 || o.rate == 0 || o.seconds == 0 || o.rounds == 0 {
        return Err("--pairs, --rate, --seconds and --rounds must be at least 1".into());
    }
    if o.seconds > 300 {
        return Err("--seconds is at most 300".into());
    }
    Ok(o)
}

pub fn run(args: &[String]) -> Result {
    match args.split_first() {
        Some((what, rest)) if what == "server" => server(rest),
        Some((what, [])) if what == "client" => client(),
        Some((what, rest)) if what == "link" && rest.len() <= 1 => link(rest.first().map(String::as_str)),
        Some((what, [])) if what == "media" => media(),
        Some((what, rest)) if what == "groups" && rest.len() <= 1 => groups(rest.first().map(String::as_str)),
        Some((what, rest)) if what == "history" && rest.len() <= 1 => history(rest.first().map(String::as_str)),
        Some((what, [])) if what == "extension" => extension(),
        Some((other, _)) => Err(format!("unknown benchmark `{other}`\n{USAGE}")),
        None => Err(USAGE.into()),
    }
}

/// The engine's numbers: crates/client/examples/bench.rs, in release.
/// Writes target/bench/client.json.
fn client() -> Result {
    crate::util::run(
        std::process::Command::new("cargo")
            .args(["run", "--release", "--quiet", "--package", "tether-client", "--example", "bench"])
            .current_dir(crate::util::root()),
    )
}

/// Linking as a person sees it: tests/e2e/bench-link.mjs drives the phone
/// web app (its camera fed the popup's QR) and the extension in two
/// headless Chromiums against release binaries, with `messages` of history.
/// Writes target/bench/link.json.
fn link(messages: Option<&str>) -> Result {
    let n = messages.unwrap_or("1000");
    if n.parse::<u32>().map_or(true, |n| n == 0) {
        return Err(format!("bench link takes a number of messages (got `{n}`)\n{USAGE}"));
    }
    let tools = crate::setup::run()?;
    crate::build::extension(&tools, crate::build::DEFAULT_SERVER)?;
    crate::build::app(&tools)?;
    crate::build::native_release()?;
    crate::util::run(
        Command::new("node")
            .arg(root().join("tests/e2e/bench-link.mjs"))
            .env("TETHER_BENCH_MESSAGES", n)
            .env("TETHER_EXTENSION", crate::build::dist().join("chrome"))
            .env("TETHER_SERVER_BIN", release_bin("tether-server"))
            .env("TETHER_CLI_BIN", release_bin("tether"))
            .env("CHROMIUM", &tools.chromium)
            .current_dir(root()),
    )
}

/// A big history in the extension: the engine writes the fixture
/// (crates/client/examples/history_fixture.rs, release), then
/// tests/e2e/bench-history.mjs puts it in a linked headless Chromium's
/// extension and measures. Writes target/bench/history.json.
fn history(messages: Option<&str>) -> Result {
    let n = messages.unwrap_or("100000");
    if n.parse::<u32>().map_or(true, |n| n < 1000) {
        return Err(format!("bench history takes a number of messages, at least 1,000 (got `{n}`)\n{USAGE}"));
    }
    let tools = crate::setup::run()?;
    crate::build::extension(&tools, crate::build::DEFAULT_SERVER)?;
    crate::build::native_release()?;
    let fixture = root().join("target/bench/history-fixture.json");
    crate::util::run(
        Command::new("cargo")
            .args(["run", "--release", "--quiet", "--package", "tether-client", "--example", "history_fixture", "--", "500", n, "5000"])
            .arg(&fixture)
            .current_dir(root()),
    )?;
    crate::util::run(
        Command::new("node")
            .arg(root().join("tests/e2e/bench-history.mjs"))
            .env("TETHER_HISTORY_FIXTURE", &fixture)
            .env("TETHER_EXTENSION", crate::build::dist().join("chrome"))
            .env("TETHER_SERVER_BIN", release_bin("tether-server"))
            .env("TETHER_CLI_BIN", release_bin("tether"))
            .env("CHROMIUM", &tools.chromium)
            .current_dir(root()),
    )
}

/// The extension's core as a person feels it: tests/e2e/bench-extension.mjs
/// in headless Chromium with the optimised build, against release
/// binaries. Writes target/bench/extension.json.
fn extension() -> Result {
    let tools = crate::setup::run()?;
    crate::build::extension(&tools, crate::build::DEFAULT_SERVER)?;
    crate::build::native_release()?;
    crate::util::run(
        Command::new("node")
            .arg(root().join("tests/e2e/bench-extension.mjs"))
            .env("TETHER_EXTENSION", crate::build::dist().join("chrome"))
            .env("TETHER_SERVER_BIN", release_bin("tether-server"))
            .env("TETHER_CLI_BIN", release_bin("tether"))
            .env("CHROMIUM", &tools.chromium)
            .current_dir(root()),
    )
}

/// The server process; stopped (SIGTERM, then SIGKILL) when dropped.
struct Server {
    child: Child,
    addr: String,
    /// WARN and ERROR lines of its log.
    problems: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, up to 15 s for a graceful stop, then SIGKILL. The exit status.
    fn stop(&mut self) -> String {
        if let Ok(Some(status)) = self.child.try_wait() {
            return format!("had already exited ({status})");
        }
        let _ = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return format!("stopped on SIGTERM ({status})");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        "did not stop within 15 s of SIGTERM: killed".into()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// `sh -c LAUNCH` for `program args…` on `cpu` (or unpinned).
fn launch(cpu: Option<u32>, program: &Path) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(LAUNCH)
        .arg("tether-bench-launch")
        .arg(cpu.map(|c| c.to_string()).unwrap_or_else(|| "-".into()))
        .arg(program)
        .current_dir(root());
    cmd
}

fn start_server(cpu: Option<u32>, data: &Path, config: &Path) -> Result<Server> {
    start_node(cpu, data, config, &[])
}

/// [`start_server`] with more arguments (`--database-url`, `--nats-url`).
fn start_node(cpu: Option<u32>, data: &Path, config: &Path, extra: &[&str]) -> Result<Server> {
    let mut cmd = launch(cpu, &release_bin("tether-server"));
    cmd.args(["--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .arg("--config")
        .arg(config)
        .args(extra)
        .env("TETHER_LOG", "info");
    spawn_server(cmd, "tether-server")
}

/// Starts `cmd` (a server that logs `addr=HOST:PORT` once listening) and
/// reads its log on a thread of its own, keeping the problems.
fn spawn_server(mut cmd: Command, what: &str) -> Result<Server> {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    eprintln!("$ {}", util::show(&cmd));
    let mut child = cmd.spawn().map_err(|e| format!("could not start {what}: {e}"))?;
    let stderr = child.stderr.take().expect("piped stderr");
    let problems = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    {
        let problems = problems.clone();
        // Reads the log to its end, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("addr=").nth(1)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                }
                if line.contains("WARN") || line.contains("ERROR") || line.contains("panicked") {
                    let mut p = problems.lock().expect("log lock");
                    if p.len() < 100 {
                        p.push(line);
                    }
                }
            }
        });
    }
    let mut server = Server { child, addr: String::new(), problems };
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(addr) => server.addr = addr,
        Err(_) => {
            let how = server.stop();
            let log = server.problems.lock().expect("log lock").join("\n");
            return Err(format!("{what} did not report its address within 30 s ({how})\n{log}"));
        }
    }
    Ok(server)
}

/// One field of a `/proc/<pid>/…` file, e.g. ("status", "Cpus_allowed_list:").
fn proc_field(pid: u32, file: &str, prefix: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(prefix).map(|v| v.trim().to_string()))
}

/// What the server's store does about durability, from its source and its
/// database file.
fn durability(data: &Path) -> Value {
    let src = std::fs::read_to_string(root().join("crates/server/src/store/sqlite.rs")).unwrap_or_default();
    let synchronous = ["Off", "Normal", "Full", "Extra"]
        .into_iter()
        .find(|m| src.contains(&format!("SqliteSynchronous::{m}")))
        .map(|m| m.to_uppercase());
    // Bytes 18 and 19 of an SQLite file are 2 in WAL mode.
    let mut header = [0u8; 20];
    let wal = std::fs::File::open(data.join("tether.db"))
        .and_then(|mut f| f.read_exact(&mut header))
        .ok()
        .map(|()| header[18] == 2 && header[19] == 2);
    let fs = util::output(Command::new("findmnt").args(["-n", "-o", "FSTYPE", "--target"]).arg(data))
        .or_else(|| util::output(Command::new("stat").args(["-f", "-c", "%T"]).arg(data)))
        .map(|s| s.trim().to_string());
    let policy = format!(
        "SQLite {}, synchronous={}, group commit: one fsync per batch",
        match wal {
            Some(true) => "WAL",
            Some(false) => "(not WAL!)",
            None => "(journal mode unknown)",
        },
        synchronous.as_deref().unwrap_or("?")
    );
    json!({
        "policy": policy,
        "journal_mode_wal": wal,
        "synchronous": synchronous,
        "data_filesystem": fs,
    })
}

/// What one fsync costs on the data directory's disk: 200 times a 4 KiB
/// append and fsync. Returns (p50, p99, max) in µs.
fn fsync_probe(dir: &Path) -> Option<(u64, u64, u64)> {
    use std::io::Write;
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path).ok()?;
    let block = [0x5au8; 4096];
    let mut t = Vec::with_capacity(200);
    for _ in 0..200 {
        f.write_all(&block).ok()?;
        let start = Instant::now();
        f.sync_all().ok()?;
        t.push(start.elapsed().as_micros() as u64);
    }
    drop(f);
    let _ = std::fs::remove_file(&path);
    t.sort_unstable();
    Some((t[t.len() / 2], t[t.len() * 99 / 100], t[t.len() - 1]))
}

fn server(args: &[String]) -> Result {
    let o = parse(args)?;
    {
        let _t = Timer::start("release build of tether-server and tether-bench");
        util::run(
            Command::new("cargo")
                .args(["build", "--release", "-p", "tether-server", "-p", "tether-bench"])
                .current_dir(root()),
        )?;
    }
    let out_dir = root().join("target/bench");
    let run_dir = out_dir.join(format!("run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run_dir);
    let data = run_dir.join("data");
    std::fs::create_dir_all(&data).map_err(|e| format!("create {}: {e}", data.display()))?;
    let config = run_dir.join("server.toml");
    let max_connections = o.idle + 2 * o.pairs + 1000;
    std::fs::write(
        &config,
        format!(
            "# Written by `cargo xtask bench server`: limits out of the benchmark's way.\n\
             rate_per_sec = 10000000\n\
             rate_burst = 10000000\n\
             max_connections = {max_connections}\n\
             idle_timeout = 600\n\
             handshake_timeout = 30\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    let result = if o.cluster { cluster(&o, &run_dir, &data, &config) } else { measure(&o, &run_dir, &data, &config) };
    let _ = std::fs::remove_dir_all(&run_dir);
    result
}

/// tether-bench with the run's options against the server at `addr`
/// (process `pid`), its report to `raw`.
fn bench_command(o: &Opts, cpu: Option<u32>, addr: &str, pid: u32, raw: &Path) -> Command {
    let mut cmd = launch(cpu, &release_bin("tether-bench"));
    cmd.args(["--addr", addr, "--server-pid", &pid.to_string()])
        .args(["--idle", &o.idle.to_string()])
        // Each loopback source address has ~28,000 ephemeral ports.
        .args(["--source-ips", &o.idle.div_ceil(20_000).clamp(1, 254).to_string()])
        .args(["--pairs", &o.pairs.to_string()])
        .args(["--rate", &o.rate.to_string()])
        .args(["--low-rate", &LOW_RATE.to_string()])
        .args(["--seconds", &o.seconds.to_string()])
        .args(["--size", &o.size.to_string()])
        .arg("--out")
        .arg(raw);
    cmd
}

/// CPU time (user + system) of processes, in clock ticks, from /proc.
fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| {
            // Fields after the command's closing parenthesis: state is 3,
            // utime 14 and stime 15 (1-based over the whole line).
            let rest = stat.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}

/// A process and every process below it (PostgreSQL's backends).
fn with_children(root_pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        if let Some(ppid) = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().nth(1)?.parse::<u32>().ok()) {
            parent_of.push((pid, ppid));
        }
    }
    let mut all = vec![root_pid];
    let mut i = 0;
    while i < all.len() {
        let p = all[i];
        all.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    all
}

/// One deployment's run of tether-bench: its report, and the CPU time all
/// its processes (`pids()`, asked again at the end: PostgreSQL's backends
/// come and go) spent per message accepted.
fn run_bench(
    o: &Opts,
    raw: &Path,
    addr: &str,
    receiver_addr: Option<&str>,
    pid: u32,
    pids: &dyn Fn() -> Vec<u32>,
) -> Result<Value> {
    let mut cmd = bench_command(o, None, addr, pid, raw);
    if let Some(other) = receiver_addr {
        cmd.args(["--receiver-addr", other]);
    }
    let before = cpu_ticks(&pids());
    util::run(&mut cmd)?;
    let after = cpu_ticks(&pids());
    let text = std::fs::read_to_string(raw).map_err(|e| format!("{}: {e}", raw.display()))?;
    let mut report: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", raw.display()))?;
    // Every message the run sent: warm-up, fixed rate and max throughput.
    let accepted: f64 = ["fixed_rate", "max_throughput"].iter().filter_map(|p| report[p]["accepted"].as_f64()).sum();
    let tck = util::output(Command::new("getconf").arg("CLK_TCK"))
        .and_then(|t| t.trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    let cpu_secs = after.saturating_sub(before) as f64 / tck;
    report["deployment_cpu_secs"] = json!(cpu_secs);
    report["deployment_cpu_us_per_msg"] =
        json!(if accepted > 0.0 { (cpu_secs * 1e6 / accepted * 10.0).round() / 10.0 } else { f64::NAN });
    Ok(report)
}

/// `bench server --cluster`: one node on SQLite, then two nodes on one
/// PostgreSQL with NATS (senders on one, receivers on the other), the same
/// load on each, unpinned (on two cores the nodes, PostgreSQL, NATS and
/// the load generator share them): the cost per message, not scaling.
fn cluster(o: &Opts, run_dir: &Path, data: &Path, config: &Path) -> Result {
    let load = || std::fs::read_to_string("/proc/loadavg").ok().and_then(|l| l.split_whitespace().next().map(String::from));
    eprintln!("xtask: load average before: {}", load().unwrap_or_default());

    eprintln!("\nxtask: one node, SQLite");
    let mut single = start_server(None, data, config)?;
    let pid = single.pid();
    let sqlite = run_bench(o, &run_dir.join("sqlite.json"), &single.addr.clone(), None, pid, &|| vec![pid]);
    single.stop();
    let sqlite = sqlite?;

    eprintln!("\nxtask: two nodes, PostgreSQL and NATS");
    let pg = tether_services::Postgres::start()?;
    let url = pg.create_database("bench")?;
    let nats = tether_services::Nats::start()?;
    let shared = run_dir.join("cluster");
    std::fs::create_dir_all(&shared).map_err(|e| e.to_string())?;
    let extra = ["--database-url", url.as_str(), "--nats-url", &nats.url()];
    let mut a = start_node(None, &shared, config, &extra)?;
    let mut b = start_node(None, &shared, config, &extra)?;
    let postmaster: u32 = std::fs::read_to_string(pg.dir().join("data/postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next()?.trim().parse().ok())
        .ok_or("no postmaster.pid")?;
    let nats_pid = with_children(std::process::id())
        .into_iter()
        .find(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "nats-server"));
    let (pa, pb) = (a.pid(), b.pid());
    let pids = || {
        let mut all = vec![pa, pb];
        all.extend(with_children(postmaster));
        all.extend(nats_pid);
        all
    };
    let two = run_bench(o, &run_dir.join("cluster.json"), &a.addr.clone(), Some(&b.addr.clone()), pa, &pids);
    let problems: Vec<String> =
        a.problems.lock().expect("log lock").iter().chain(b.problems.lock().expect("log lock").iter()).cloned().collect();
    a.stop();
    b.stop();
    let two = two?;
    eprintln!("xtask: load average after: {}", load().unwrap_or_default());

    let report = json!({
        "options": { "idle": o.idle, "pairs": o.pairs, "rate": o.rate, "seconds": o.seconds, "size": o.size },
        "sqlite_one_node": sqlite,
        "postgres_two_nodes": two,
        "cluster_log_problems": problems,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    });
    let out = root().join("target/bench/server-cluster.json");
    std::fs::write(&out, serde_json::to_string_pretty(&report).unwrap() + "\n")
        .map_err(|e| format!("{}: {e}", out.display()))?;
    let row = |what: &str, f: &dyn Fn(&Value) -> String| {
        format!("{what:<44} {:>22} {:>26}\n", f(&report["sqlite_one_node"]), f(&report["postgres_two_nodes"]))
    };
    let mut t = format!("{:<44} {:>22} {:>26}\n", "", "one node, SQLite", "two nodes, PostgreSQL+NATS");
    t += &row("fixed rate: offered", &|r| show(&r["fixed_rate"]["offered_rate"], "msgs/s"));
    t += &row("  delivered / accepted", &|r| {
        format!("{} / {}", show(&r["fixed_rate"]["delivered"], ""), show(&r["fixed_rate"]["accepted"], ""))
    });
    t += &row("  latency p50 / p99 (send -> receiver)", &|r| {
        format!("{} / {}", show(&r["fixed_rate"]["latency_us"]["p50"], "µs"), show(&r["fixed_rate"]["latency_us"]["p99"], "µs"))
    });
    t += &row("  durable ack p50 / p99 (sender)", &|r| {
        format!(
            "{} / {}",
            show(&r["fixed_rate"]["durable_ack_us"]["p50"], "µs"),
            show(&r["fixed_rate"]["durable_ack_us"]["p99"], "µs")
        )
    });
    t += &row("max throughput: delivered (durable)", &|r| show(&r["max_throughput"]["delivered_per_sec"], "msgs/s"));
    t += &row("  latency p50 / p99 under max load", &|r| {
        format!(
            "{} / {}",
            show(&r["max_throughput"]["latency_us"]["p50"], "µs"),
            show(&r["max_throughput"]["latency_us"]["p99"], "µs")
        )
    });
    t += &row("CPU of the whole deployment per message", &|r| show(&r["deployment_cpu_us_per_msg"], "µs"));
    print!("\n{t}");
    if !problems.is_empty() {
        println!("\nthe nodes logged {} warnings or errors (in the JSON)", problems.len());
    }
    println!("\nxtask: all numbers in {}", out.display());
    Ok(())
}

fn measure(o: &Opts, run_dir: &Path, data: &Path, config: &Path) -> Result {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let taskset = util::have("taskset");
    let (server_cpu, bench_cpu, pinning) = match (taskset, cpus >= 2) {
        (true, true) => {
            (Some(0), Some(1), "tether-server pinned to CPU 0, tether-bench to CPU 1 (taskset)".to_string())
        }
        (true, false) => (None, None, format!("only {cpus} CPU: processes not pinned, they share it")),
        (false, _) => {
            (None, None, "taskset not found: processes NOT pinned (install util-linux for pinned runs)".into())
        }
    };
    eprintln!("xtask: {pinning}");
    // Other work on the machine skews every number: say how busy it was.
    let load = || {
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()))
    };
    let load_before = load();
    let probe = fsync_probe(data);
    if let Some((p50, p99, max)) = probe {
        eprintln!("xtask: disk under the data directory: fsync of 4 KiB p50 {p50} µs, p99 {p99} µs, max {max} µs");
    }

    // Rounds of the floor and tether-server, interleaved, each on the same
    // CPUs through the same load generator, tether-server on a fresh data
    // directory each time: a figure is the median of the rounds' (a
    // single run moves with whatever else the machine did meanwhile).
    let mut rounds = Vec::new();
    for round in 0..o.rounds {
        eprintln!("\nxtask: round {} of {}", round + 1, o.rounds);
        let floor = run_floor(o, server_cpu, bench_cpu, run_dir)?;
        let data = data.join(format!("round-{round}"));
        let report = run_tether(o, server_cpu, bench_cpu, run_dir, &data, config)?;
        rounds.push((report, floor));
    }
    let load_after = load();
    // The round whose tether-server p50 at --rate is the median gives the
    // details (phases, curves); the summaries are per-figure medians.
    let p50 = |r: &Value| r["fixed_rate"]["latency_us"]["p50"].as_f64().unwrap_or(f64::MAX);
    let mut order: Vec<usize> = (0..rounds.len()).collect();
    order.sort_by(|&a, &b| p50(&rounds[a].0).total_cmp(&p50(&rounds[b].0)));
    let middle = order[order.len() / 2];
    let summaries: Vec<(Value, Value)> =
        rounds.iter().map(|(t, f)| (summary(o, t), summary(o, f))).collect();
    let (mut report, floor) = rounds.swap_remove(middle);
    let environment = report["environment"].take();
    report["environment"] = json!({
        "cpus": cpus,
        "pinning": pinning,
        "taskset": taskset,
        "load_avg_1m_before": load_before,
        "load_avg_1m_after": load_after,
        "disk_fsync_4k_us": probe.map(|(p50, p99, max)| json!({ "p50": p50, "p99": p99, "max": max })),
        "rounds": o.rounds,
        "median_round": middle + 1,
    });
    if let (Value::Object(into), Value::Object(from)) = (&mut report["environment"], environment) {
        into.extend(from);
    }
    report["goals"] = json!({
        "durable_msgs_per_sec_min": GOAL_MSGS_PER_SEC,
        "p99_us_max_at_5k": GOAL_P99_US,
        "rss_per_idle_conn_kib_max": GOAL_KIB_PER_IDLE,
    });
    beside_the_floor(&mut report, floor, &summaries);
    let out = root().join("target/bench/server.json");
    std::fs::write(&out, serde_json::to_string_pretty(&report).unwrap() + "\n")
        .map_err(|e| format!("{}: {e}", out.display()))?;
    let svg = root().join("target/bench/server-latency.svg");
    latency_svg(&report, o, &svg)?;
    print!("{}", table(&report));
    print!("{}", floor_table(&report, o));
    println!("\nxtask: all numbers in {}, the latency curves in {}", out.display(), svg.display());
    Ok(())
}

/// One round of tether-server: started on `data`, measured by
/// tether-bench, stopped. Its report, with what the run saw of the server.
fn run_tether(
    o: &Opts,
    server_cpu: Option<u32>,
    bench_cpu: Option<u32>,
    run_dir: &Path,
    data: &Path,
    config: &Path,
) -> Result<Value> {
    std::fs::create_dir_all(data).map_err(|e| format!("create {}: {e}", data.display()))?;
    let mut server = start_server(server_cpu, data, config)?;
    let pid = server.pid();
    let server_affinity = proc_field(pid, "status", "Cpus_allowed_list:");
    // "Max open files  <soft>  <hard>  files": the soft limit.
    let server_fd_limit =
        proc_field(pid, "limits", "Max open files").and_then(|v| v.split_whitespace().next().map(String::from));
    eprintln!(
        "xtask: tether-server pid {pid} on {}, CPUs {}, open files {}",
        server.addr,
        server_affinity.as_deref().unwrap_or("?"),
        server_fd_limit.as_deref().unwrap_or("?")
    );
    let needed = o.idle + 2 * o.pairs + 64;
    let fd_note = match server_fd_limit.as_deref().and_then(|v| v.parse::<u64>().ok()) {
        Some(limit) if limit < needed => {
            Some(format!("the server may open only {limit} files but the run needs about {needed} sockets"))
        }
        _ => None,
    };
    if let Some(n) = &fd_note {
        eprintln!("xtask: warning: {n}");
    }
    let raw = run_dir.join("bench.json");
    let mut cmd = bench_command(o, bench_cpu, &server.addr, pid, &raw);
    let bench_result = {
        let _t = Timer::start("benchmark run");
        util::run(&mut cmd)
    };
    let stopped = server.stop();
    let problems = server.problems.lock().expect("log lock").clone();
    bench_result.map_err(|e| {
        format!(
            "{e}\ntether-server {stopped}{}",
            if problems.is_empty() { String::new() } else { format!("; its log:\n{}", problems.join("\n")) }
        )
    })?;
    let text = std::fs::read_to_string(&raw).map_err(|e| format!("{}: {e}", raw.display()))?;
    let mut report: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", raw.display()))?;
    report["environment"] = json!({
        "server_cpus_allowed": server_affinity,
        "server_max_open_files": server_fd_limit,
        "server_exit": stopped,
        "fd_warning": fd_note,
    });
    report["durability"] = durability(data);
    report["server_log_problems"] = json!(problems);
    Ok(report)
}

/// tether-floor (crates/bench: a bare WebSocket forwarder, no Noise, no
/// store) measured by tether-bench with the run's options: the floor the
/// run's figures are compared to.
fn run_floor(o: &Opts, server_cpu: Option<u32>, bench_cpu: Option<u32>, run_dir: &Path) -> Result<Value> {
    let mut cmd = launch(server_cpu, &release_bin("tether-floor"));
    cmd.args(["--listen", "127.0.0.1:0"]);
    let mut floor = spawn_server(cmd, "tether-floor")?;
    let raw = run_dir.join("floor.json");
    let mut cmd = bench_command(o, bench_cpu, &floor.addr, floor.pid(), &raw);
    cmd.arg("--floor");
    let result = {
        let _t = Timer::start("floor run (tether-floor)");
        util::run(&mut cmd)
    };
    let stopped = floor.stop();
    result.map_err(|e| format!("{e}\ntether-floor {stopped}"))?;
    let text = std::fs::read_to_string(&raw).map_err(|e| format!("{}: {e}", raw.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", raw.display()))
}

/// A phase's latency as the summary gives it.
fn lat(phase: &Value) -> Value {
    let l = &phase["latency_us"];
    json!({ "p50_us": l["p50"], "p99_us": l["p99"], "p999_us": l["p999"] })
}

/// A run's figures (latency at the low rate and at `--rate`, durable
/// throughput, memory per idle connection).
fn summary(o: &Opts, r: &Value) -> Value {
    let mut m = serde_json::Map::new();
    m.insert(format!("lat{LOW_RATE}"), lat(&r["fixed_rate_low"]));
    m.insert(format!("lat{}", o.rate), lat(&r["fixed_rate"]));
    m.insert("throughput_msgs_s".into(), r["max_throughput"]["delivered_per_sec"].clone());
    // Per connection: the growth over the second half of the idle
    // connections (the marginal cost, free of what the server holds
    // once whatever the number); the average over all of them beside it.
    m.insert("idle_kib_per_conn".into(), r["idle"]["rss_marginal_kib"].clone());
    m.insert("idle_kib_per_conn_average".into(), r["idle"]["rss_per_conn_kib"].clone());
    Value::Object(m)
}

/// The median of each figure over the rounds' summaries (numbers at the
/// same place in each; the upper middle of an even count).
fn median_summary(all: &[&Value]) -> Value {
    match all.first() {
        Some(Value::Object(first)) => Value::Object(
            first.keys().map(|k| (k.clone(), median_summary(&all.iter().map(|v| &v[k.as_str()]).collect::<Vec<_>>()))).collect(),
        ),
        Some(_) => {
            let mut xs: Vec<f64> = all.iter().filter_map(|v| v.as_f64()).collect();
            if xs.len() != all.len() {
                return Value::Null;
            }
            xs.sort_by(f64::total_cmp);
            json!(xs[xs.len() / 2])
        }
        None => Value::Null,
    }
}

/// `floor` and `tether` figures, each the median over the rounds
/// (`rounds`: tether-server's and the floor's summary of each), and each
/// of tether's figures as a ratio to the floor's; `floor` is the floor's
/// report of the round `report` comes from (for the curves).
fn beside_the_floor(report: &mut Value, floor: Value, rounds: &[(Value, Value)]) {
    let f = median_summary(&rounds.iter().map(|(_, f)| f).collect::<Vec<_>>());
    let mut t = median_summary(&rounds.iter().map(|(t, _)| t).collect::<Vec<_>>());
    // The idle connections are registered devices, each reconnected with
    // its own key (a full Noise handshake, the server knowing the device):
    // what an idle device costs the server. The floor's are bare sockets.
    t["idle_kib_per_device"] = t["idle_kib_per_conn"].clone();
    let ratio = |a: &Value, b: &Value| match (a.as_f64(), b.as_f64()) {
        (Some(a), Some(b)) if b > 0.0 => json!((a / b * 100.0).round() / 100.0),
        _ => Value::Null,
    };
    let mut ratios = serde_json::Map::new();
    for (key, figures) in f.as_object().into_iter().flatten() {
        if let Value::Object(qs) = figures {
            let m = qs.keys().map(|q| (q.clone(), ratio(&t[key.as_str()][q.as_str()], &f[key.as_str()][q.as_str()])));
            ratios.insert(key.clone(), Value::Object(m.collect()));
        }
    }
    ratios.insert("throughput_msgs_s".into(), ratio(&t["throughput_msgs_s"], &f["throughput_msgs_s"]));
    ratios.insert("idle_kib_per_conn".into(), ratio(&t["idle_kib_per_conn"], &f["idle_kib_per_conn"]));
    report["rounds"] = json!(rounds.iter().map(|(t, f)| json!({ "tether": t, "floor": f })).collect::<Vec<_>>());
    report["floor"] = f;
    report["tether"] = t;
    report["ratio_to_floor"] = Value::Object(ratios);
    report["floor_run"] = floor;
    report["goals"]["p50_times_floor_max"] = json!(GOAL_P50_TIMES_FLOOR);
    report["goals"]["p99_times_floor_max"] = json!(GOAL_P99_TIMES_FLOOR);
}

/// The latency percentile curves of tether-server and the floor at both
/// rates, as an SVG (plotters): percentile on a log scale of 1/(1-q), so
/// the tail gets the room.
fn latency_svg(report: &Value, o: &Opts, out: &Path) -> Result {
    use plotters::prelude::*;
    let x_of = |pct: f64| -(1.0 - pct / 100.0).max(1e-6).log10();
    let series = |r: &Value, phase: &str| -> Vec<(f64, f64)> {
        r[phase]["latency_curve_us"]
            .as_array()
            .map(|points| {
                points
                    .iter()
                    .filter_map(|p| Some((x_of(p[0].as_f64()?), p[1].as_f64()?.max(1.0))))
                    .filter(|(x, _)| x.is_finite() && *x <= 5.0)
                    .collect()
            })
            .unwrap_or_default()
    };
    let lines = [
        (format!("tether-server, {} msg/s", o.rate), series(report, "fixed_rate"), RGBColor(0x0f, 0x76, 0x6e), true),
        (format!("tether-server, {LOW_RATE} msg/s"), series(report, "fixed_rate_low"), RGBColor(0x14, 0xb8, 0xa6), false),
        (format!("floor, {} msg/s", o.rate), series(&report["floor_run"], "fixed_rate"), RGBColor(0x6b, 0x72, 0x80), true),
        (format!("floor, {LOW_RATE} msg/s"), series(&report["floor_run"], "fixed_rate_low"), RGBColor(0xa1, 0xa1, 0xaa), false),
    ];
    let top = lines.iter().flat_map(|l| l.1.iter().map(|p| p.1)).fold(10.0, f64::max) * 2.0;
    let bottom = (lines.iter().flat_map(|l| l.1.iter().map(|p| p.1)).fold(top, f64::min) / 2.0).max(1.0);
    let draw = || -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::new(out, (960, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Delivery latency (send -> receiver), tether-server beside the floor", ("sans-serif", 20))
            .margin(20)
            .x_label_area_size(46)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0f64..5.0, (bottom..top).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency (µs)")
            .x_labels(6)
            .y_label_formatter(&|y| fmt_num(y.round()))
            .x_label_formatter(&|x| match x.round() as i64 {
                0 => "0".into(),
                1 => "90".into(),
                2 => "99".into(),
                3 => "99.9".into(),
                4 => "99.99".into(),
                _ => "99.999".into(),
            })
            .draw()?;
        for (name, points, color, solid) in &lines {
            let style = ShapeStyle { color: color.to_rgba(), filled: false, stroke_width: if *solid { 3 } else { 2 } };
            chart
                .draw_series(LineSeries::new(points.iter().copied(), style))?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
        }
        chart.configure_series_labels().position(SeriesLabelPosition::UpperLeft).border_style(BLACK).draw()?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| format!("{}: {e}", out.display()))
}

/// The run beside the floor: each figure, the floor's, the ratio, the goal.
fn floor_table(r: &Value, o: &Opts) -> String {
    let (f, t, x) = (&r["floor"], &r["tether"], &r["ratio_to_floor"]);
    let mut out = format!(
        "\nbeside the floor (tether-floor: tungstenite and the same load generator, no Noise, no store), each figure the median of {} rounds\n{:<34}  {:>14}  {:>14}  {:>8}  goal\n{}\n",
        o.rounds,
        "",
        "tether-server",
        "floor",
        "ratio",
        "-".repeat(86)
    );
    let times = |v: &Value| v.as_f64().map(|v| format!("{v:.2}x")).unwrap_or_else(|| "n/a".into());
    let mut line = |what: String, a: &Value, b: &Value, ratio: &Value, unit: &str, goal: &str, ok: &str| {
        out.push_str(
            format!("{what:<34}  {:>14}  {:>14}  {:>8}  {goal} {ok}\n", show(a, unit), show(b, unit), times(ratio))
                .trim_end(),
        );
        out.push('\n');
    };
    for rate in [LOW_RATE, o.rate] {
        let key = format!("lat{rate}");
        for (q, label) in [("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9")] {
            let (goal, ok) = match (rate == o.rate, q) {
                (true, "p50_us") => ("<= 2x floor", verdict(&x[&key][q], |v| v <= GOAL_P50_TIMES_FLOOR)),
                (true, "p99_us") => ("<= 4x floor", verdict(&x[&key][q], |v| v <= GOAL_P99_TIMES_FLOOR)),
                _ => ("", ""),
            };
            line(format!("latency {label} at {} msg/s", fmt_num(rate as f64)), &t[&key][q], &f[&key][q], &x[&key][q], "µs", goal, ok);
        }
    }
    let tp = &t["throughput_msgs_s"];
    line(
        "durable throughput".into(),
        tp,
        &f["throughput_msgs_s"],
        &x["throughput_msgs_s"],
        "msg/s",
        ">= 150,000 msg/s",
        verdict(tp, |v| v >= GOAL_MSGS_PER_SEC),
    );
    let idle = &t["idle_kib_per_device"];
    line(
        "memory per idle device (floor: connection)".into(),
        idle,
        &f["idle_kib_per_conn"],
        &x["idle_kib_per_conn"],
        "KiB",
        "<= 4 KiB",
        verdict(idle, |v| v <= GOAL_KIB_PER_IDLE),
    );
    out
}

// ------------------------------------------------------------------ table

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn fmt_num(v: f64) -> String {
    let s = if v.fract() == 0.0 || v.abs() >= 100.0 { format!("{:.0}", v) } else { format!("{v:.2}") };
    // Thousands separators for the integer part.
    let (int, frac) = s.split_once('.').map_or((s.as_str(), None), |(i, f)| (i, Some(f)));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// A percentage of one core, one decimal.
fn pct(v: &Value) -> String {
    num(v).map(|n| format!("{n:.1} % of a core")).unwrap_or_else(|| "n/a".into())
}

fn show(v: &Value, unit: &str) -> String {
    match num(v) {
        Some(n) => format!("{} {unit}", fmt_num(n)).trim_end().to_string(),
        None => "n/a".into(),
    }
}

/// "ok" or "MISSED" against a goal; empty when there is no number.
fn verdict(v: &Value, good: impl Fn(f64) -> bool) -> &'static str {
    match num(v) {
        Some(n) if good(n) => "ok",
        Some(_) => "MISSED",
        None => "",
    }
}

fn table(r: &Value) -> String {
    let idle = &r["idle"];
    let fixed = &r["fixed_rate"];
    let max = &r["max_throughput"];
    let mut rows: Vec<(String, String, String, &str)> = Vec::new();
    let mut row = |m: &str, v: String, goal: &str, verdict: &'static str| {
        rows.push((m.to_string(), v, goal.to_string(), verdict));
    };

    row(
        "idle devices held (registered, reconnected by key)",
        format!("{} / {}", show(&idle["opened"], ""), show(&idle["requested"], "")),
        "",
        "",
    );
    row("  their accounts registered in", show(&idle["register_secs"], "s"), "", "");
    row(
        "  connected in",
        format!("{} ({})", show(&idle["connect_secs"], "s"), show(&idle["handshakes_per_sec"], "handshakes/s")),
        "",
        "",
    );
    row(
        "  server RSS before -> after",
        format!(
            "{} -> {} (half) -> {}",
            show(&idle["rss_before_kib"], "KiB"),
            show(&idle["rss_half_kib"], "KiB"),
            show(&idle["rss_after_kib"], "KiB")
        ),
        "",
        "",
    );
    row(
        "  server RSS per idle device, on average",
        show(&idle["rss_per_conn_kib"], "KiB"),
        "",
        "",
    );
    row(
        "server RSS per idle device (second half's growth)",
        show(&idle["rss_marginal_kib"], "KiB"),
        "<= 4 KiB",
        verdict(&idle["rss_marginal_kib"], |v| v <= GOAL_KIB_PER_IDLE),
    );
    let lat = &fixed["latency_us"];
    row(
        "fixed rate: offered load",
        format!("{} x {} s", show(&fixed["offered_rate"], "msgs/s"), show(&fixed["seconds"], "")),
        "",
        "",
    );
    row(
        "  delivered / accepted by server",
        format!("{} / {}", show(&fixed["delivered"], ""), show(&fixed["accepted"], "")),
        "",
        "",
    );
    row("  latency p50 (send -> receiver)", show(&lat["p50"], "µs"), "", "");
    row("  latency p99", show(&lat["p99"], "µs"), "<= 1,000 µs at 5k/s", verdict(&lat["p99"], |v| v <= GOAL_P99_US));
    row("  latency p99.9", show(&lat["p999"], "µs"), "", "");
    row("  latency max", show(&lat["max"], "µs"), "", "");
    row(
        "  durable ack p50 / p99 (sender)",
        format!("{} / {}", show(&fixed["durable_ack_us"]["p50"], "µs"), show(&fixed["durable_ack_us"]["p99"], "µs")),
        "",
        "",
    );
    row("  server CPU", pct(&fixed["server_cpu_pct"]), "", "");
    row(
        "max throughput: delivered (durable)",
        show(&max["delivered_per_sec"], "msgs/s"),
        ">= 150,000 msgs/s",
        verdict(&max["delivered_per_sec"], |v| v >= GOAL_MSGS_PER_SEC),
    );
    row("  accepted (Sent responses)", show(&max["accepted_per_sec"], "msgs/s"), "", "");
    row(
        "  latency p50 / p99 under max load",
        format!("{} / {}", show(&max["latency_us"]["p50"], "µs"), show(&max["latency_us"]["p99"], "µs")),
        "",
        "",
    );
    row("  server CPU", pct(&max["server_cpu_pct"]), "", "");
    row("  load generator CPU", pct(&max["bench_cpu_pct"]), "", "");
    row(
        "messages per group commit (fsync)",
        format!(
            "{} fixed, {} max",
            show(&fixed["store"]["msgs_per_batch"], ""),
            show(&max["store"]["msgs_per_batch"], "")
        ),
        "",
        "",
    );
    row(
        "  store batches (fixed / max)",
        format!("{} / {}", show(&fixed["store"]["store_batches"], ""), show(&max["store"]["store_batches"], "")),
        "",
        "",
    );
    row(
        "  ack requests, own commit each (fixed / max)",
        format!("{} / {}", show(&fixed["ack_requests"], ""), show(&max["ack_requests"], "")),
        "",
        "",
    );

    let w0 = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
    let w2 = rows.iter().map(|r| r.2.chars().count()).max().unwrap_or(0);
    let pad = |s: &str, w: usize| format!("{s}{}", " ".repeat(w.saturating_sub(s.chars().count())));
    let mut out = String::new();
    out.push_str(&format!(
        "\ntether-server benchmark ({} idle connections, {} pairs, {}-byte messages): round {} of {}, the one with the median p50 at the fixed rate\n",
        show(&r["config"]["idle"], ""),
        show(&r["config"]["pairs"], ""),
        show(&r["config"]["size"], ""),
        show(&r["environment"]["median_round"], ""),
        show(&r["environment"]["rounds"], "")
    ));
    let probe = &r["environment"]["disk_fsync_4k_us"];
    out.push_str(&format!(
        "  {}\n  durability: {} (data on {}; this disk: fsync p50 {}, p99 {})\n  idle connections stay open (pinging every {} s) during the message phases\n\n",
        r["environment"]["pinning"].as_str().unwrap_or("?"),
        r["durability"]["policy"].as_str().unwrap_or("?"),
        r["durability"]["data_filesystem"].as_str().unwrap_or("?"),
        show(&probe["p50"], "µs"),
        show(&probe["p99"], "µs"),
        show(&r["config"]["idle_ping_secs"], ""),
    ));
    out.push_str(&format!("{}  {}  {}\n", pad("metric", w0), pad("result", w1), pad("goal", w2)));
    out.push_str(&format!("{}\n", "-".repeat(w0 + w1 + w2 + 12)));
    for (m, v, g, ok) in &rows {
        out.push_str(format!("{}  {}  {}  {ok}", pad(m, w0), pad(v, w1), pad(g, w2)).trim_end());
        out.push('\n');
    }
    let mut notes = Vec::new();
    for (name, phase) in [("fixed rate", fixed), ("max throughput", max)] {
        for key in ["send_errors", "sender_failures"] {
            if phase[key].as_object().is_some_and(|m| !m.is_empty())
                || phase[key].as_array().is_some_and(|a| !a.is_empty())
            {
                notes.push(format!("{name}: {key}: {}", phase[key]));
            }
        }
        for key in ["lost", "out_of_order"] {
            if num(&phase[key]).is_some_and(|n| n > 0.0) {
                notes.push(format!("{name}: {key}: {}", phase[key]));
            }
        }
    }
    if idle["failures"].as_object().is_some_and(|m| !m.is_empty()) {
        notes.push(format!("idle connection failures: {}", idle["failures"]));
    }
    if num(&idle["still_open_at_end"]) != num(&idle["opened"]) {
        notes.push(format!(
            "idle connections still open at the end: {} of {} ({})",
            idle["still_open_at_end"], idle["opened"], idle["lost"]
        ));
    }
    if r["server_errors_total"].as_object().is_some_and(|m| !m.is_empty()) {
        notes.push(format!("server error responses: {}", r["server_errors_total"]));
    }
    if r["receiver_failures"].as_array().is_some_and(|a| !a.is_empty()) {
        notes.push(format!("receiver failures: {}", r["receiver_failures"]));
    }
    if let Some(p) = r["server_log_problems"].as_array().filter(|a| !a.is_empty()) {
        let first = p[0].as_str().unwrap_or("");
        let cut: String = first.chars().take(160).collect();
        let more = if cut.len() < first.len() { " …" } else { "" };
        notes.push(format!("server log: {} WARN/ERROR lines (all in the JSON), first: {cut}{more}", p.len()));
    }
    let env = &r["environment"];
    if let Some(busy) = num(&env["load_avg_1m_before"]).filter(|&l| l >= 1.0) {
        notes.push(format!(
            "the machine was busy before the run (1-min load average {busy:.2} on {} CPUs): expect noisy numbers",
            env["cpus"]
        ));
    }
    if let Some(w) = r["environment"]["fd_warning"].as_str() {
        notes.push(w.to_string());
    }
    notes.push(format!("tether-server {}", r["environment"]["server_exit"].as_str().unwrap_or("?")));
    out.push('\n');
    for n in notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_flags_with_defaults() {
        assert_eq!(parse(&[]).unwrap(), Opts::default());
        let o = parse(&args("--idle 200 --pairs=4 --rate 1_000 --seconds 2 --size 64 --rounds 5")).unwrap();
        assert_eq!(o, Opts { idle: 200, pairs: 4, rate: 1000, seconds: 2, size: 64, rounds: 5, cluster: false });
        assert!(parse(&args("--rounds 0")).is_err());
        assert!(parse(&args("--cluster --idle 0")).unwrap().cluster);
        assert!(parse(&args("--idle")).is_err());
        assert!(parse(&args("--idle x")).is_err());
        assert!(parse(&args("--pairs 0")).is_err());
        assert!(parse(&args("--bogus 1")).is_err());
    }

    /// Each figure is the median of the rounds' own, figure by figure;
    /// a figure missing from any round has none.
    #[test]
    fn the_summary_of_rounds_is_the_median_of_each_figure() {
        let rounds = [
            json!({ "lat5000": { "p50_us": 90, "p99_us": 400 }, "throughput_msgs_s": 70_000, "idle": 3.1 }),
            json!({ "lat5000": { "p50_us": 120, "p99_us": 300 }, "throughput_msgs_s": 90_000, "idle": null }),
            json!({ "lat5000": { "p50_us": 100, "p99_us": 900 }, "throughput_msgs_s": 80_000, "idle": 2.9 }),
        ];
        let m = median_summary(&rounds.iter().collect::<Vec<_>>());
        assert_eq!(m["lat5000"]["p50_us"], json!(100.0));
        assert_eq!(m["lat5000"]["p99_us"], json!(400.0));
        assert_eq!(m["throughput_msgs_s"], json!(80_000.0));
        assert_eq!(m["idle"], Value::Null);
    }

    #[test]
    fn formats_numbers_and_verdicts() {
        assert_eq!(fmt_num(1234567.0), "1,234,567");
        assert_eq!(fmt_num(5.25), "5.25");
        assert_eq!(fmt_num(-1000.0), "-1,000");
        assert_eq!(verdict(&json!(900), |v| v <= 1000.0), "ok");
        assert_eq!(verdict(&json!(1100), |v| v <= 1000.0), "MISSED");
        assert_eq!(verdict(&Value::Null, |_| true), "");
    }

    #[test]
    fn a_table_renders_from_a_partial_report() {
        let t = table(&json!({ "idle": { "opened": 10, "requested": 10, "rss_per_conn_kib": 5.5 } }));
        assert!(t.contains("server RSS per idle device"));
        assert!(t.contains("5.50 KiB"));
        assert!(t.contains("n/a"));
    }
}

/// Files: the format's native throughput (crates/proto/examples/media_bench.rs)
/// and 64 MiB of random bytes from one CLI account to another through a
/// release tether-server on loopback (send-file, the recipient catching
/// up, download with the digest checked), each step timed. Writes
/// target/bench/media.json.
fn media() -> Result {
    let native = {
        let _t = Timer::start("native file encryption (release)");
        let out = Command::new("cargo")
            .args(["run", "--release", "--quiet", "--package", "tether-proto", "--example", "media_bench"])
            .current_dir(root())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cargo run: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        serde_json::from_str::<Value>(text.lines().last().unwrap_or("")).map_err(|e| format!("media_bench printed `{text}`: {e}"))?
    };
    crate::build::native_release()?;
    let run_dir = root().join(format!("target/bench/media-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run_dir);
    let data = run_dir.join("server");
    std::fs::create_dir_all(&data).map_err(|e| format!("create {}: {e}", data.display()))?;
    let config = run_dir.join("server.toml");
    std::fs::write(&config, "").map_err(|e| e.to_string())?;
    let server = start_server(None, &data, &config)?;
    let url = format!("http://{}", server.addr);
    let tether = |home: &str, args: &[&str]| -> Result<String> {
        let out = Command::new(release_bin("tether"))
            .arg("--data")
            .arg(run_dir.join(home))
            .args(args)
            .output()
            .map_err(|e| format!("tether: {e}"))?;
        if !out.status.success() {
            return Err(format!("tether {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)));
        }
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    };
    tether("alice", &["register", "alice", "--server", &url, "--no-phrase"])?;
    tether("bob", &["register", "bob", "--server", &url, "--no-phrase"])?;
    tether("alice", &["contacts", "add", "bob"])?;
    tether("bob", &["contacts", "add", "alice"])?;
    // 64 MiB that do not compress (xorshift).
    let size = 64 * 1024 * 1024usize;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut bytes = Vec::with_capacity(size);
    while bytes.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    let file = run_dir.join("random.bin");
    std::fs::write(&file, &bytes).map_err(|e| e.to_string())?;
    drop(bytes);
    let t = Instant::now();
    tether("alice", &["send-file", "bob", file.to_str().unwrap_or_default()])?;
    let upload = t.elapsed();
    let t = Instant::now();
    let read = tether("bob", &["read", "alice"])?;
    let arrive = t.elapsed();
    let id = read
        .lines()
        .find_map(|l| l.trim().strip_prefix("id ").and_then(|r| r.split_whitespace().next()))
        .ok_or_else(|| format!("bob's chat shows no file id:\n{read}"))?
        .to_string();
    let out = run_dir.join("received.bin");
    let t = Instant::now();
    tether("bob", &["download", &id, "--out", out.to_str().unwrap_or_default()])?;
    let download = t.elapsed();
    let sums = util::output(Command::new("sha256sum").arg(&file).arg(&out)).unwrap_or_default();
    let digests: Vec<&str> = sums.lines().filter_map(|l| l.split_whitespace().next()).collect();
    let same = digests.len() == 2 && digests[0] == digests[1];
    drop(server);
    let total = upload + arrive + download;
    let result = json!({
        "native": native,
        "end_to_end_64mib": {
            "send_file_ms": upload.as_millis() as u64,
            "recipient_catch_up_ms": arrive.as_millis() as u64,
            "download_ms": download.as_millis() as u64,
            "total_ms": total.as_millis() as u64,
            "sha256_equal": same,
            "note": "each step is a separate `tether` process: connect, Noise handshake and engine open included",
        },
    });
    println!("\nfiles (64 MiB, 256 KiB chunks, AES-256-GCM + SHA-256)");
    println!("  native encrypt            {:>8} MB/s", native["encrypt_mb_s"]);
    println!("  native decrypt            {:>8} MB/s", native["decrypt_mb_s"]);
    println!("  CLI send-file (upload)    {:>8} ms", upload.as_millis());
    println!("  recipient catches up      {:>8} ms", arrive.as_millis());
    println!("  CLI download (+ check)    {:>8} ms", download.as_millis());
    println!("  end to end                {:>8} ms   (goal: under 3,000 ms)", total.as_millis());
    println!("  SHA-256 equal             {:>8}", same);
    let out_file = root().join("target/bench/media.json");
    std::fs::write(&out_file, serde_json::to_string_pretty(&result).unwrap_or_default()).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&run_dir);
    println!("written to {}", out_file.display());
    if !same {
        return Err("the downloaded file differs from the one sent".into());
    }
    media_extension()
}

/// Files in the extension (tests/e2e/bench-media.mjs): WebCrypto AES-GCM
/// throughput in the service worker, and 64 MiB from the popup to a
/// release server on loopback. Writes target/bench/media-extension.json.
fn media_extension() -> Result {
    let tools = crate::setup::run()?;
    crate::build::extension(&tools, crate::build::DEFAULT_SERVER)?;
    crate::util::run(
        Command::new("node")
            .arg(root().join("tests/e2e/bench-media.mjs"))
            .env("TETHER_EXTENSION", crate::build::dist().join("chrome"))
            .env("TETHER_SERVER_BIN", release_bin("tether-server"))
            .env("TETHER_CLI_BIN", release_bin("tether"))
            .env("TETHER_ARTIFACTS", root().join("target/bench/artifacts"))
            .env("CHROMIUM", &tools.chromium)
            .current_dir(root()),
    )
}

/// One group of `accounts` accounts (default 1,024, the most a group has)
/// on loopback: a release tether-server with its rate and lookup limits
/// raised, and crates/client/examples/group_bench.rs (release), which
/// drives the sender and the members' engines and prints the numbers.
/// Writes target/bench/groups.json.
fn groups(accounts: Option<&str>) -> Result {
    let n = accounts.unwrap_or("1024");
    if n.parse::<u32>().map_or(true, |n| !(2..=1024).contains(&n)) {
        return Err(format!("bench groups takes a number of accounts from 2 to 1,024 (got `{n}`)\n{USAGE}"));
    }
    {
        let _t = Timer::start("release build of tether-server and the group bench");
        util::run(Command::new("cargo").args(["build", "--release", "-p", "tether-server"]).current_dir(root()))?;
        util::run(
            Command::new("cargo")
                .args(["build", "--release", "-p", "tether-client", "--example", "group_bench"])
                .current_dir(root()),
        )?;
    }
    let run_dir = root().join(format!("target/bench/groups-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run_dir);
    let data = run_dir.join("server");
    std::fs::create_dir_all(&data).map_err(|e| format!("create {}: {e}", data.display()))?;
    let config = run_dir.join("server.toml");
    // Every member's device list is looked up by the sender, and each
    // member looks up the sender's: limits out of the way; handshakes may
    // wait while a thread registers others.
    std::fs::write(
        &config,
        "# Written by `cargo xtask bench groups`.\n\
         rate_per_sec = 1000000\n\
         rate_burst = 1000000\n\
         lookups_per_minute = 1000000\n\
         lookup_burst = 1000000\n\
         claims_per_hour = 1000000\n\
         handshake_timeout = 120\n\
         idle_timeout = 600\n",
    )
    .map_err(|e| e.to_string())?;
    let server = start_server(None, &data, &config)?;
    let url = format!("http://{}", server.addr);
    let bench = crate::build::release_bin("examples").join("group_bench");
    let mut cmd = launch(None, &bench);
    cmd.args(["--server", &url, "--accounts", n]);
    let result = util::run(&mut cmd);
    let problems = server.problems.lock().map(|p| p.clone()).unwrap_or_default();
    drop(server);
    let _ = std::fs::remove_dir_all(&run_dir);
    if !problems.is_empty() {
        eprintln!("the server logged {} warning(s) or error(s); the first:\n{}", problems.len(), problems[..problems.len().min(5)].join("\n"));
    }
    result
}

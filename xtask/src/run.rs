//! `cargo xtask run [--browser]`: build everything, start `tether-server` on
//! 127.0.0.1:7780 with its embedded SQLite under `./data`, and say what to do
//! next. `--browser` also starts Chromium with the extension loaded.
//!
//! `cargo xtask run --cluster`: the several-node deployment on this machine
//! instead: a throwaway PostgreSQL and nats-server (crates/services, data
//! in temporary directories) and two nodes on 127.0.0.1:7780 and :7781
//! sharing them; Ctrl-C stops all four and removes their data.

use crate::build;
use crate::setup;
use crate::util::{Result, root};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const LISTEN: &str = "127.0.0.1:7780";

pub fn run(args: &[String]) -> Result {
    let server_url = build::server_arg(args)?;
    let browser = args.iter().any(|a| a == "--browser");
    let tools = setup::run()?;
    build::extension(&tools, &server_url)?;
    // Before the server's release build: it embeds dist/app.
    build::app(&tools)?;
    build::native_release()?;
    if args.iter().any(|a| a == "--cluster") {
        return cluster();
    }

    let data = root().join("data");
    let mut server = Command::new(build::release_bin("tether-server"))
        .args(["--listen", LISTEN, "--data"])
        .arg(&data)
        .current_dir(root())
        .spawn()
        .map_err(|e| format!("could not start tether-server: {e}"))?;
    wait_healthy(&mut server, LISTEN)?;

    let dist = build::dist().join("chrome");
    println!(
        "\n\
         Tether is running.\n\
         \n  server     http://{LISTEN}  (data in {data}, health: http://{LISTEN}/healthz)\n\
         \x20 web app    http://{LISTEN}/  (the phone primary; a phone's camera needs https)\n\
         \x20 extension  {dist}\n\
         \nNext:\n\
         \x20 1. Open chrome://extensions, turn on Developer mode, click \"Load unpacked\"\n\
         \x20    and pick {dist}.\n\
         \x20 2. Make an account's primary: open the web app (http://{LISTEN}/) and create an account,\n\
         \x20    or on this computer: target/release/tether register <handle> --server http://{LISTEN}\n\
         \x20 3. Click the Tether icon: check the server, and a QR appears. Scan it with the web\n\
         \x20    app's \"Link a device\", or screenshot it and run target/release/tether link <screenshot.png>\n\
         \x20    (or \"Link with a code instead\" and `tether link --code XXXX-XXXX`).\n\
         \nPress Ctrl-C to stop the server.",
        data = data.display(),
        dist = dist.display(),
    );

    let mut chromium: Option<Child> = None;
    if browser {
        let profile = data.join("chromium-profile");
        chromium = Some(
            Command::new(&tools.chromium)
                .arg(format!("--user-data-dir={}", profile.display()))
                .arg(format!("--disable-extensions-except={}", dist.display()))
                .arg(format!("--load-extension={}", dist.display()))
                .args([
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-sync",
                ])
                .arg("chrome://extensions")
                .spawn()
                .map_err(|e| format!("could not start Chromium: {e}"))?,
        );
        println!(
            "Chromium started with the extension loaded (profile in {}).",
            profile.display()
        );
    }

    let status = server.wait().map_err(|e| e.to_string())?;
    if let Some(mut c) = chromium {
        let _ = c.kill();
    }
    if status.success() {
        Ok(())
    } else {
        Err(format!("tether-server exited: {status}"))
    }
}

/// The second node's address in `--cluster`.
const LISTEN_B: &str = "127.0.0.1:7781";

/// `--cluster`: PostgreSQL, NATS and two nodes, until Ctrl-C.
fn cluster() -> Result {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::SeqCst))
        .map_err(|e| format!("could not catch Ctrl-C: {e}"))?;
    let pg = tether_services::Postgres::start()?;
    let database = pg.create_database("tether")?;
    let nats = tether_services::Nats::start()?;
    // What the nodes share besides the database: the server key (every node
    // must answer with the same one) and the uploaded files.
    let shared = tempfile::Builder::new()
        .prefix("tether-cluster-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let mut nodes = Vec::new();
    for listen in [LISTEN, LISTEN_B] {
        let mut node = Command::new(build::release_bin("tether-server"))
            .args(["--listen", listen, "--data"])
            .arg(shared.path())
            .args(["--database-url", &database, "--nats-url", &nats.url()])
            .current_dir(root())
            .spawn()
            .map_err(|e| format!("could not start tether-server: {e}"))?;
        let healthy = wait_healthy(&mut node, listen);
        nodes.push(node);
        if let Err(e) = healthy {
            stop_all(&mut nodes);
            return Err(e);
        }
    }
    println!(
        "\n\
         A Tether cluster is running: two nodes on one PostgreSQL, waking each other through NATS.\n\
         \n  node A      http://{LISTEN}   (web app: http://{LISTEN}/)\n\
         \x20 node B      http://{LISTEN_B}   (web app: http://{LISTEN_B}/)\n\
         \x20 PostgreSQL  {database}\n\
         \x20 NATS        {nats}\n\
         \x20 shared dir  {shared}  (the server key and uploaded files)\n\
         \nTry it: register a primary on each node and chat across them:\n\
         \x20 target/release/tether --data /tmp/alice register alice --server http://{LISTEN}\n\
         \x20 target/release/tether --data /tmp/bob register bob --server http://{LISTEN_B}\n\
         \x20 target/release/tether --data /tmp/alice contacts add bob\n\
         \x20 target/release/tether --data /tmp/bob contacts add alice\n\
         \x20 target/release/tether --data /tmp/alice send bob hello\n\
         \x20 target/release/tether --data /tmp/bob read alice\n\
         Both nodes have the same fingerprint; a load balancer in front of both is what an operator\n\
         runs (docs/operations.md). Everything is thrown away on exit.\n\
         \nPress Ctrl-C to stop both nodes, PostgreSQL and NATS.",
        nats = nats.url(),
        shared = shared.path().display(),
    );
    loop {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        if let Some((i, status)) =
            nodes.iter_mut().enumerate().find_map(|(i, n)| n.try_wait().ok().flatten().map(|s| (i, s)))
        {
            eprintln!("xtask: node {} exited: {status}; stopping the cluster", ["A", "B"][i]);
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    stop_all(&mut nodes);
    drop(nats);
    drop(pg);
    eprintln!("xtask: the cluster stopped and its data was removed");
    Ok(())
}

/// Stops the nodes (SIGTERM, as an operator would; they finish in-flight
/// writes) and waits for them.
fn stop_all(nodes: &mut [Child]) {
    for node in nodes.iter() {
        let _ = Command::new("kill").arg("-TERM").arg(node.id().to_string()).status();
    }
    for node in nodes.iter_mut() {
        let _ = node.wait();
    }
}

/// Waits until the server answers `GET /healthz`, or fails if it exits.
fn wait_healthy(server: &mut Child, listen: &str) -> Result {
    let url = format!("http://{listen}/healthz");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = server.try_wait().map_err(|e| e.to_string())? {
            return Err(format!(
                "tether-server exited before it was healthy: {status}"
            ));
        }
        if let Ok(resp) = ureq::get(&url).call() {
            if resp.status() == 200 {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            let _ = server.kill();
            return Err(format!("tether-server did not answer {url} within 30 s"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

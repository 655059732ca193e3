//! `cargo xtask run [--browser]`: build everything, start `tether-server` on
//! 127.0.0.1:7780 with its embedded SQLite under `./data`, and say what to do
//! next. `--browser` also starts Chromium with the extension loaded.

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

    let data = root().join("data");
    let mut server = Command::new(build::release_bin("tether-server"))
        .args(["--listen", LISTEN, "--data"])
        .arg(&data)
        .current_dir(root())
        .spawn()
        .map_err(|e| format!("could not start tether-server: {e}"))?;
    wait_healthy(&mut server)?;

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

/// Waits until the server answers `GET /healthz`, or fails if it exits.
fn wait_healthy(server: &mut Child) -> Result {
    let url = format!("http://{LISTEN}/healthz");
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

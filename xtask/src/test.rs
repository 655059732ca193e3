//! `cargo xtask test`: every test of the project, then one summary line.
//!
//! 1. native tests of the workspace (engine, protocol, server, CLI, and the
//!    fuzz targets' smoke test `fuzz/tests/smoke.rs`: every committed seed
//!    and a fixed set of mutations of them, a panic fails): built with
//!    `cargo test --no-run`, then the test binaries run three at a time,
//!    each in its package's directory as cargo would, then the doc tests;
//! 2. the core's wasm tests in headless Chromium (wasm-bindgen-test-runner +
//!    chromedriver), against a real `tether-server` (the debug build, on a free port);
//! 3. the optimised extension build, `web-ext lint` of its Firefox build,
//!    the web app's build (`dist/app`), and `tsc --noEmit` over the
//!    extension's and the web app's JavaScript;
//! 4. the Playwright end-to-end tests in `tests/e2e/` against `dist/chrome`;
//! 5. the journeys both browsers share (`tests/e2e/journeys.test.mjs`) in
//!    Firefox ESR against `dist/firefox`, driven by geckodriver, reported
//!    as a stage of their own.
//!
//! Real fuzzing (libFuzzer, an instrumented build of its own) is not part
//! of it: that is `cargo xtask fuzz` (fuzz.rs).

use crate::build;
use crate::server::TestServer;
use crate::setup::{self, Tools};
use crate::util::{Result, Timer, root, show};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Passed and failed tests, added up over every stage.
#[derive(Debug, Default)]
struct Tally {
    passed: u64,
    failed: u64,
    ignored: u64,
    /// Stages that failed, for the summary.
    broken: Vec<String>,
}

impl Tally {
    /// Runs one stage, echoing its stdout and counting the results it prints.
    /// A stage that exits non-zero without reporting a failed test (a build
    /// error, a crash) counts as one failure, so nothing breaks silently.
    fn stage(&mut self, name: &str, cmd: &mut Command) {
        let _t = Timer::start("test stage");
        eprintln!("\n==> {name}\n$ {}", show(cmd));
        let mut child = match cmd.stdout(Stdio::piped()).spawn() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("xtask: could not start {name}: {e}");
                self.failed += 1;
                self.broken.push(name.to_string());
                return;
            }
        };
        let (mut passed, mut failed) = (0, 0);
        for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
            let Ok(line) = line else { break };
            println!("{line}");
            let (p, f, i) = parse_counts(&line);
            passed += p;
            failed += f;
            self.ignored += i;
        }
        let ok = child.wait().map(|s| s.success()).unwrap_or(false);
        self.finish(name, ok, passed, failed);
    }

    /// Runs `jobs` (a name and a command each) as one stage, at most
    /// `parallel` at a time: each job's output (stdout and stderr) is
    /// printed whole when it ends, so parallel jobs never interleave.
    fn stage_parallel(&mut self, name: &str, jobs: Vec<(String, Command)>, parallel: usize) {
        let _t = Timer::start("test stage");
        eprintln!("\n==> {name}: {} test binaries, {parallel} at a time", jobs.len());
        let queue = std::sync::Mutex::new(std::collections::VecDeque::from(jobs));
        let (done, results) = std::sync::mpsc::channel();
        let (mut passed, mut failed, mut all_ok) = (0, 0, true);
        std::thread::scope(|scope| {
            for _ in 0..parallel {
                let (queue, done) = (&queue, done.clone());
                scope.spawn(move || {
                    loop {
                        let next = queue.lock().expect("no job panics holding it").pop_front();
                        let Some((job, mut cmd)) = next else { break };
                        let started = std::time::Instant::now();
                        let out = cmd.output();
                        let _ = done.send((job, show(&cmd), out, started.elapsed()));
                    }
                });
            }
            drop(done);
            for (job, shown, out, took) in results {
                println!("\n     Running {job} ({:.1} s)\n$ {shown}", took.as_secs_f64());
                let out = match out {
                    Ok(out) => out,
                    Err(e) => {
                        eprintln!("xtask: could not start {job}: {e}");
                        failed += 1;
                        all_ok = false;
                        continue;
                    }
                };
                let (mut p, mut f) = (0, 0);
                for line in String::from_utf8_lossy(&out.stdout).lines() {
                    println!("{line}");
                    let (lp, lf, li) = parse_counts(line);
                    p += lp;
                    f += lf;
                    self.ignored += li;
                }
                print!("{}", String::from_utf8_lossy(&out.stderr));
                if !out.status.success() {
                    all_ok = false;
                    if f == 0 {
                        eprintln!("xtask: {job} exited with {} without a failed test", out.status);
                        f = 1;
                    }
                }
                passed += p;
                failed += f;
            }
        });
        self.finish(name, all_ok, passed, failed);
    }

    /// Adds up one stage: a stage that exited non-zero without reporting a
    /// failed test counts one failure, and one that ran no test another.
    fn finish(&mut self, name: &str, ok: bool, passed: u64, mut failed: u64) {
        if !ok && failed == 0 {
            failed = 1;
        }
        if ok && passed == 0 {
            eprintln!("xtask: {name} ran no test");
            failed += 1;
        }
        if !ok || failed > 0 {
            self.broken.push(name.to_string());
        }
        eprintln!("==> {name}: {passed} passed, {failed} failed");
        self.passed += passed;
        self.failed += failed;
    }

    /// Counts a check that is not a test runner (a lint) as one test.
    fn check(&mut self, name: &str, result: Result) {
        match result {
            Ok(()) => {
                eprintln!("==> {name}: ok");
                self.passed += 1;
            }
            Err(e) => {
                eprintln!("==> {name}: FAILED: {e}");
                self.failed += 1;
                self.broken.push(name.to_string());
            }
        }
    }
}

/// Counts from one line of output: cargo/libtest and wasm-bindgen-test
/// ("test result: ok. 3 passed; 0 failed; 1 ignored; ..."), and node's TAP
/// reporter ("# pass 3", "# fail 0", "# skipped 0").
fn parse_counts(line: &str) -> (u64, u64, u64) {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("test result: ") {
        let mut counts = (0, 0, 0);
        for part in rest.split([';', '.']) {
            let mut words = part.split_whitespace();
            if let (Some(n), Some(what)) = (words.next(), words.next()) {
                let Ok(n) = n.parse::<u64>() else { continue };
                match what {
                    "passed" => counts.0 = n,
                    "failed" => counts.1 = n,
                    "ignored" => counts.2 = n,
                    _ => {}
                }
            }
        }
        return counts;
    }
    let tap = |key: &str| {
        line.strip_prefix(key)
            .and_then(|n| n.trim().parse::<u64>().ok())
    };
    if let Some(n) = tap("# pass ") {
        return (n, 0, 0);
    }
    if let Some(n) = tap("# fail ") {
        return (0, n, 0);
    }
    if let Some(n) = tap("# skipped ").or_else(|| tap("# todo ")) {
        return (0, 0, n);
    }
    (0, 0, 0)
}

pub fn run(args: &[String]) -> Result {
    if let Some(a) = args.first() {
        return Err(format!("`cargo xtask test` takes no arguments (got `{a}`)"));
    }
    let _t = Timer::start("all tests");
    let tools = setup::run()?;
    let mut tally = Tally::default();

    // The web app first: every server binary built after it (the native
    // tests' and the debug one below) embeds dist/app, and the TLS test
    // checks that the server serves it.
    let app = build::app(&tools);
    let app_built = app.is_ok();
    tally.check("web app build (dist/app)", app);

    // The CLI's tests, the wasm tests and the end-to-end tests run the real
    // server and CLI binaries (debug builds). Built first, so the CLI's
    // test binaries, which run this same build (server_bin in
    // crates/cli/tests/common/mod.rs; keep the two package lists the
    // same), find it done instead of waiting on each other for it.
    let bins = crate::util::run(
        Command::new("cargo")
            .args([
                "build",
                "--package",
                "tether-server",
                "--package",
                "tether-cli",
            ])
            .current_dir(root()),
    );
    if bins.is_err() {
        tally.check("debug build of tether-server and tether", bins);
    }

    let native = "native tests (cargo test --workspace, with the web app's decoder)";
    match native_tests() {
        Ok(jobs) => tally.stage_parallel(native, jobs, NATIVE_PARALLEL),
        Err(e) => tally.check(native, Err(e)),
    }

    match TestServer::start() {
        Ok(server) => {
            tally.stage("wasm tests in headless Chromium", &mut wasm_tests(&tools, &server.url)?);
            drop(server);
        }
        Err(e) => tally.check("tether-server for the wasm tests", Err(e)),
    }

    match build::extension(&tools, build::DEFAULT_SERVER) {
        Ok(()) => {
            tally.check("web-ext lint of dist/firefox", web_ext_lint());
            // The cores' declarations (dist/chrome/wasm/tether_core.d.ts,
            // dist/app/wasm/tether_app.d.ts) exist now: type-check the
            // extension's and the web app's JavaScript against them.
            if app_built {
                tally.check("tsc --noEmit (background/, popup/, common/, app/)", tsc());
            }
        }
        Err(e) => tally.check("optimised extension build", Err(e)),
    }

    tally.stage(
        "end-to-end tests (Playwright, headless Chromium)",
        &mut e2e(&tools)?,
    );
    tally.stage(
        "shared journeys in Firefox (geckodriver, headless Firefox ESR)",
        &mut firefox_journeys(&tools),
    );

    let skipped = if tally.ignored > 0 {
        format!(", {} skipped", tally.ignored)
    } else {
        String::new()
    };
    if !tally.broken.is_empty() {
        eprintln!("\nxtask: failing: {}", tally.broken.join("; "));
    }
    println!(
        "\n{} passed, {} failed{skipped}",
        tally.passed, tally.failed
    );
    if tally.failed > 0 || tally.ignored > 0 {
        return Err("some tests failed (or were skipped)".into());
    }
    Ok(())
}

/// How many native test binaries run at once. Most of their time is spent
/// waiting (servers, timeouts, restarts), not computing, so three keep this
/// 2-core machine busy without starving the timing-sensitive ones.
const NATIVE_PARALLEL: usize = 3;

/// The workspace's test binaries, built (`cargo test --no-run`, the same
/// options `cargo test` had) and ready to run as cargo would run them: in
/// their package's directory. Then the doc tests, which cargo runs itself.
fn native_tests() -> Result<Vec<(String, Command)>> {
    let features = ["--workspace", "--features", "tether-extension/app"];
    let mut build = Command::new("cargo");
    build
        .args(["test", "--no-run", "--message-format=json-render-diagnostics"])
        .args(features)
        .current_dir(root())
        .stdout(Stdio::piped());
    eprintln!("$ {}", show(&build));
    let mut child = build.spawn().map_err(|e| format!("could not start cargo: {e}"))?;
    let mut jobs = Vec::new();
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let Ok(line) = line else { break };
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        if msg["reason"] != "compiler-artifact" || msg["profile"]["test"] != true {
            continue;
        }
        let (Some(exe), Some(manifest)) = (msg["executable"].as_str(), msg["manifest_path"].as_str()) else {
            continue;
        };
        let dir = std::path::Path::new(manifest).parent().unwrap_or(&root()).to_path_buf();
        let kind = msg["target"]["kind"][0].as_str().unwrap_or("test");
        let src = msg["target"]["src_path"].as_str().unwrap_or("");
        let src = src.strip_prefix(&format!("{}/", dir.display())).unwrap_or(src);
        let name = format!("{kind} {src} of {}", dir.strip_prefix(root()).unwrap_or(&dir).display());
        let mut cmd = Command::new(exe);
        cmd.current_dir(&dir).env("CARGO_MANIFEST_DIR", &dir);
        jobs.push((name, cmd));
    }
    if !child.wait().map(|s| s.success()).unwrap_or(false) {
        return Err("`cargo test --no-run` failed: the tests do not build".into());
    }
    if jobs.is_empty() {
        return Err("`cargo test --no-run` listed no test binary".into());
    }
    let mut doc = Command::new("cargo");
    doc.args(["test", "--doc", "--no-fail-fast"]).args(features).current_dir(root());
    jobs.push(("doc tests".into(), doc));
    Ok(jobs)
}

/// The core's wasm tests; `server` is the URL of a running tether-server,
/// compiled into the tests (`option_env!("TETHER_TEST_SERVER")`).
fn wasm_tests(tools: &Tools, server: &str) -> Result<Command> {
    // wasm-bindgen-test-runner reads extra WebDriver capabilities from the
    // file named by WASM_BINDGEN_TEST_WEBDRIVER_JSON: our Chromium, without
    // the background traffic this machine's closed network refuses.
    let caps = root().join("target/webdriver.json");
    let json = serde_json::json!({ "goog:chromeOptions": {
        "binary": tools.chromium,
        "args": ["disable-gpu", "disable-background-networking", "disable-component-update",
                 "disable-sync", "no-first-run"],
    }});
    std::fs::create_dir_all(root().join("target")).map_err(|e| e.to_string())?;
    std::fs::write(&caps, json.to_string()).map_err(|e| e.to_string())?;
    let mut cmd = tools.wasm.command("test");
    cmd.args(["--package", "tether-extension", "--lib"])
        .env(
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
            &tools.wasm_bindgen_test_runner,
        )
        .env("CHROMEDRIVER", &tools.chromedriver)
        .env("WASM_BINDGEN_TEST_WEBDRIVER_JSON", &caps)
        .env("WASM_BINDGEN_TEST_TIMEOUT", "120")
        .env("TETHER_TEST_SERVER", server);
    Ok(cmd)
}

/// `tsc --noEmit` over the extension's JavaScript (tsconfig.json: JSDoc
/// types, strict), with the core's generated declarations.
fn tsc() -> Result {
    let out = Command::new("node")
        .arg(root().join("node_modules/typescript/bin/tsc"))
        .args(["-p", "tsconfig.json"])
        .current_dir(root())
        .output()
        .map_err(|e| format!("could not run tsc: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let report = String::from_utf8_lossy(&out.stdout);
    eprint!("{report}");
    let errors = report.lines().filter(|l| l.contains("error TS")).count();
    Err(format!("{errors} type errors"))
}

fn web_ext_lint() -> Result {
    let out = Command::new("node")
        .arg(root().join("node_modules/web-ext/bin/web-ext.js"))
        .args([
            "lint",
            "--output",
            "json",
            "--no-config-discovery",
            "--source-dir",
        ])
        .arg(build::dist().join("firefox"))
        .current_dir(root())
        .output()
        .map_err(|e| format!("could not run web-ext: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(text.trim())
        .map_err(|e| format!("web-ext lint printed no JSON report ({e}): {text}"))?;
    let errors = report["summary"]["errors"].as_u64().unwrap_or(u64::MAX);
    let warnings = report["summary"]["warnings"].as_u64().unwrap_or(0);
    for w in report["warnings"].as_array().into_iter().flatten() {
        eprintln!("web-ext lint warning: {} ({})", w["message"], w["file"]);
    }
    for e in report["errors"].as_array().into_iter().flatten() {
        eprintln!("web-ext lint error: {} ({})", e["message"], e["file"]);
    }
    // addons.mozilla.org's own checks: a warning there is a review question, so none is allowed here.
    if errors == 0 && warnings == 0 {
        eprintln!("web-ext lint: 0 errors, 0 warnings");
        Ok(())
    } else {
        Err(format!("{errors} errors, {warnings} warnings"))
    }
}

fn e2e(tools: &Tools) -> Result<Command> {
    let dir = root().join("tests/e2e");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("read {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".test.mjs"))
        .collect();
    files.sort();
    let mut cmd = node_tests(&files);
    cmd.env("TETHER_EXTENSION", build::dist().join("chrome"))
        .env("CHROMIUM", &tools.chromium)
        .env("TETHER_BROWSER", "chromium");
    Ok(cmd)
}

/// The journeys both browsers share (`tests/e2e/journeys.test.mjs`, which
/// the Chromium stage runs too), in Firefox: `dist/firefox` installed as a
/// temporary add-on, driven by geckodriver.
fn firefox_journeys(tools: &Tools) -> Command {
    let mut cmd = node_tests(&[root().join("tests/e2e/journeys.test.mjs")]);
    cmd.env("TETHER_BROWSER", "firefox")
        .env("TETHER_FIREFOX_EXTENSION", build::dist().join("firefox"))
        .env("FIREFOX", &tools.firefox)
        .env("GECKODRIVER", &tools.geckodriver);
    cmd
}

/// node's test runner over `files`, one file at a time, with the real
/// server and CLI binaries (debug builds) and the artifacts folder.
fn node_tests(files: &[PathBuf]) -> Command {
    let mut cmd = Command::new("node");
    cmd.args(["--test", "--test-reporter=tap", "--test-concurrency=1"])
        .args(files)
        .env(
            "TETHER_SERVER_BIN",
            crate::util::target_dir().join("debug/tether-server"),
        )
        .env("TETHER_CLI_BIN", crate::util::target_dir().join("debug/tether"))
        .env("TETHER_ARTIFACTS", root().join("test-artifacts"))
        .current_dir(root());
    cmd
}

#[cfg(test)]
mod tests {
    use super::parse_counts;

    #[test]
    fn reads_libtest_and_tap_counts() {
        assert_eq!(
            parse_counts(
                "test result: ok. 12 passed; 1 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.01s"
            ),
            (12, 1, 2)
        );
        assert_eq!(parse_counts("# pass 4"), (4, 0, 0));
        assert_eq!(parse_counts("# fail 2"), (0, 2, 0));
        assert_eq!(parse_counts("# skipped 1"), (0, 0, 1));
        assert_eq!(parse_counts("ok 1 - popup shows version"), (0, 0, 0));
    }
}

//! `cargo xtask setup`: installs what the project needs on a fresh machine.
//!
//! Every step first checks whether its tool is already there, so a warm
//! setup only runs a few version checks. Where something cannot be installed
//! (not root, not Debian), the error says exactly what to install by hand.
//!
//! The wasm32 toolchain comes from rustup when it can; where rustup's download
//! host is unreachable it falls back to Debian's `rustc-web` with the std
//! sources (`rust-web-src`) and `-Zbuild-std` (see docs/architecture.md).

use crate::util::{self, Result, Timer, have, output, root};
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// How long `rustup target add` may try before we fall back to Debian's toolchain.
const RUSTUP_TIMEOUT_SECS: &str = "20";
/// Debian packages of the wasm32 fallback toolchain.
const DEBIAN_WASM_PACKAGES: &[&str] = &["rustc-web", "cargo-web", "rust-web-src", "lld-19"];
/// Debian packages for the browser tests (and fonts, so screenshots show
/// text and emoji: the store screenshots and reactions have some).
const DEBIAN_BROWSER_PACKAGES: &[&str] = &[
    "chromium",
    "chromium-driver",
    "fonts-liberation",
    "fonts-dejavu-core",
    "fonts-noto-color-emoji",
    "zbar-tools",
];

/// Debian's Firefox ESR, for the journeys the extension's tests run in Firefox too.
const DEBIAN_FIREFOX_PACKAGES: &[&str] = &["firefox-esr"];

/// The geckodriver (crates.io) that drives it: its flags (`--allow-system-access`,
/// which Firefox 153 needs to open moz-extension:// pages) are what the tests use.
const GECKODRIVER_VERSION: &str = "0.37.1";

/// Debian package of Let's Encrypt's test ACME server, for the ACME test
/// (crates/cli/tests/acme.rs starts it; without it that test fails).
const DEBIAN_ACME_PACKAGES: &[&str] = &["pebble"];

/// Debian packages of the several-node deployment's services: the tests,
/// the cluster benchmark and `cargo xtask run --cluster` start throwaway
/// ones (crates/services) in temporary directories.
const DEBIAN_CLUSTER_PACKAGES: &[&str] = &["postgresql", "nats-server"];

/// How to invoke cargo for the wasm32 target.
#[derive(Debug, Clone)]
pub struct WasmCargo {
    /// The cargo binary to run.
    pub cargo: PathBuf,
    /// Environment for that cargo (empty for rustup).
    pub env: Vec<(String, String)>,
    /// Extra cargo arguments (build-std for the Debian toolchain).
    pub args: Vec<String>,
    /// Extra cargo arguments for the shipped core only (not the tests):
    /// std rebuilt from the toolchain's sources (rustup's `rust-src`) with
    /// `optimize_for_size`. Empty without those sources: the core then
    /// links the precompiled std and is larger (about 55 KB gzipped).
    pub size_args: Vec<String>,
    /// Rustflags that go with `size_args`: panics abort at once, without
    /// formatting a message (the core installs no panic hook, and std's
    /// default one has nowhere to print on wasm32-unknown-unknown, so a
    /// panic traps either way).
    pub size_rustflags: Vec<String>,
    /// Which toolchain this is, for messages.
    pub kind: &'static str,
}

impl WasmCargo {
    /// A `cargo <subcommand> --target wasm32-unknown-unknown` command with
    /// everything the toolchain needs; its own target dir so that the native
    /// build's artifacts are never invalidated.
    pub fn command(&self, subcommand: &str) -> Command {
        self.command_in(subcommand, &root(), &util::target_dir())
    }

    /// The same in another source tree and target directory (the package
    /// step's second, clean build of an unpacked source archive); the wasm
    /// artifacts go to `<target_dir>/wasm`.
    pub fn command_in(&self, subcommand: &str, source: &Path, target_dir: &Path) -> Command {
        let mut cmd = Command::new(&self.cargo);
        cmd.arg(subcommand)
            .args(&self.args)
            .args(["--target", WASM_TARGET])
            .arg("--target-dir")
            .arg(target_dir.join("wasm"))
            .current_dir(source);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }
}

/// What building the extension and the web app needs: the wasm toolchain,
/// wasm-bindgen and wasm-opt. Nothing of the tests (browsers, drivers,
/// pebble), so that a reviewer rebuilding the add-on from its source
/// archive (docs/build-firefox.md) needs no browser and no root.
#[derive(Debug, Clone)]
pub struct BuildTools {
    pub wasm: WasmCargo,
    pub wasm_bindgen: PathBuf,
    pub wasm_bindgen_test_runner: PathBuf,
    /// binaryen's wasm-opt from npm, run by node (Debian's binaryen breaks
    /// wasm-bindgen's externref table).
    pub wasm_opt: PathBuf,
    /// esbuild from npm: bundles each of the extension's scripts into one
    /// file (`build::Scripts`).
    pub esbuild: PathBuf,
}

/// Everything: the build's tools and the tests' browsers.
#[derive(Debug, Clone)]
pub struct Tools {
    pub build: BuildTools,
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
    pub firefox: PathBuf,
    pub geckodriver: PathBuf,
}

impl std::ops::Deref for Tools {
    type Target = BuildTools;
    fn deref(&self) -> &BuildTools {
        &self.build
    }
}

/// The build's tools only (`cargo xtask build`).
pub fn build_tools() -> Result<BuildTools> {
    let wasm = wasm_toolchain()?;
    let (wasm_bindgen, wasm_bindgen_test_runner) = wasm_bindgen_cli()?;
    node_modules()?;
    let wasm_opt = root().join("node_modules/binaryen/bin/wasm-opt");
    if !wasm_opt.is_file() {
        return Err(format!("{} is missing after npm ci", wasm_opt.display()));
    }
    // Run as a program: npm leaves either esbuild's Node launcher (with
    // its `#!`) or, once its install script has run, the native binary.
    let esbuild = root().join("node_modules/esbuild/bin/esbuild");
    if !esbuild.is_file() {
        return Err(format!("{} is missing after npm ci", esbuild.display()));
    }
    Ok(BuildTools {
        wasm,
        wasm_bindgen,
        wasm_bindgen_test_runner,
        wasm_opt,
        esbuild,
    })
}

/// Everything (`cargo xtask setup`, `run`, `test`, `bench`, `package`).
pub fn run() -> Result<Tools> {
    let _t = Timer::start("setup");
    let build = build_tools()?;
    let (chromium, chromedriver) = browser()?;
    let (firefox, geckodriver) = firefox()?;
    pebble()?;
    cluster_services()?;
    s3_server()?;
    eprintln!(
        "xtask: setup ok (wasm32 via {}, wasm-bindgen {}, chromium {}, firefox {})",
        build.wasm.kind,
        wasm_bindgen_version(),
        chromium.display(),
        firefox.display()
    );
    Ok(Tools {
        build,
        chromium,
        chromedriver,
        firefox,
        geckodriver,
    })
}

// ---------------------------------------------------------------- wasm32

fn wasm_toolchain() -> Result<WasmCargo> {
    // TETHER_WASM_TOOLCHAIN=debian forces the fallback (to test it on a
    // machine where rustup works).
    let force_debian = std::env::var("TETHER_WASM_TOOLCHAIN").is_ok_and(|v| v == "debian");
    if force_debian {
        if let Some(debian) = debian_wasm() {
            return Ok(debian);
        }
        apt_install(
            DEBIAN_WASM_PACKAGES,
            "the wasm32 toolchain (Debian fallback)",
        )?;
        return debian_wasm().ok_or_else(|| "Debian's rustc-web is incomplete".to_string());
    }
    if rustup_has_wasm_target() {
        return Ok(rustup_wasm());
    }
    if let Some(debian) = debian_wasm() {
        return Ok(debian);
    }
    if have("rustup") {
        eprintln!(
            "xtask: trying `rustup target add {WASM_TARGET}` ({RUSTUP_TIMEOUT_SECS} s at most)"
        );
        let ok = Command::new("timeout")
            .args([RUSTUP_TIMEOUT_SECS, "rustup", "target", "add", WASM_TARGET])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok && rustup_has_wasm_target() {
            return Ok(rustup_wasm());
        }
        eprintln!("xtask: rustup could not add {WASM_TARGET}; using Debian's rustc-web instead");
    }
    apt_install(DEBIAN_WASM_PACKAGES, "the wasm32 toolchain")?;
    debian_wasm().ok_or_else(|| {
        "installed rustc-web, but /usr/bin/rustc, the std sources under /usr/src/rustc-*/library \
         or wasm-ld under /usr/lib/llvm-*/bin are still missing"
            .to_string()
    })
}

fn rustup_has_wasm_target() -> bool {
    output(Command::new("rustup").args(["target", "list", "--installed"]))
        .is_some_and(|s| s.lines().any(|l| l.trim() == WASM_TARGET))
}

fn rustup_wasm() -> WasmCargo {
    let (size_args, size_rustflags, kind) = if rustup_rust_src() {
        (
            vec!["-Zbuild-std=std".into(), "-Zbuild-std-features=optimize_for_size".into()],
            vec!["-Zunstable-options".into(), "-Cpanic=immediate-abort".into()],
            "rustup + build-std for size",
        )
    } else {
        eprintln!("xtask: rustup's rust-src is missing: the wasm core links the precompiled std (larger)");
        (vec![], vec![], "rustup")
    };
    WasmCargo { cargo: "cargo".into(), env: vec![], args: vec![], size_args, size_rustflags, kind }
}

/// Whether the toolchain has std's sources (`rust-src`), adding them if
/// not: the shipped core rebuilds std for size from them.
fn rustup_rust_src() -> bool {
    let has = || {
        output(Command::new("rustc").args(["--print", "sysroot"]).current_dir(root()))
            .is_some_and(|s| Path::new(s.trim()).join("lib/rustlib/src/rust/library/std").is_dir())
    };
    if has() {
        return true;
    }
    eprintln!("xtask: trying `rustup component add rust-src` ({RUSTUP_TIMEOUT_SECS} s at most)");
    let _ = Command::new("timeout").args([RUSTUP_TIMEOUT_SECS, "rustup", "component", "add", "rust-src"]).status();
    has()
}

/// Debian's rustc-web with the std sources: build std ourselves.
fn debian_wasm() -> Option<WasmCargo> {
    let rustc = Path::new("/usr/bin/rustc");
    let rustdoc = Path::new("/usr/bin/rustdoc");
    let cargo = Path::new("/usr/bin/cargo");
    if !(rustc.is_file() && rustdoc.is_file() && cargo.is_file()) {
        return None;
    }
    let has_std_src = std::fs::read_dir("/usr/src").ok()?.flatten().any(|e| {
        e.file_name().to_string_lossy().starts_with("rustc-")
            && e.path().join("library/std").is_dir()
    });
    if !has_std_src {
        return None;
    }
    let wasm_ld = std::fs::read_dir("/usr/lib")
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("llvm-"))
        .map(|e| e.path().join("bin/wasm-ld"))
        .find(|p| p.is_file())?;
    Some(WasmCargo {
        cargo: cargo.into(),
        env: vec![
            ("RUSTC".into(), rustc.display().to_string()),
            ("RUSTDOC".into(), rustdoc.display().to_string()),
            ("RUSTC_BOOTSTRAP".into(), "1".into()),
            (
                "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER".into(),
                wasm_ld.display().to_string(),
            ),
        ],
        args: vec!["-Zbuild-std=std,panic_abort".into()],
        // Its std is rebuilt anyway; its rustc may predate
        // `-Cpanic=immediate-abort`, so the core keeps the default std build.
        size_args: vec![],
        size_rustflags: vec![],
        kind: "Debian rustc-web + build-std",
    })
}

// ---------------------------------------------------------- wasm-bindgen

/// The exact wasm-bindgen version pinned in the workspace Cargo.toml.
pub fn wasm_bindgen_version() -> String {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap_or_default();
    manifest
        .lines()
        .find_map(|l| {
            let l = l.trim();
            let rest = l
                .strip_prefix("wasm-bindgen")?
                .trim_start()
                .strip_prefix('=')?;
            let v = rest.trim().trim_matches('"').strip_prefix('=')?;
            Some(v.to_string())
        })
        .expect("Cargo.toml pins wasm-bindgen = \"=X.Y.Z\"")
}

fn cargo_bin(name: &str) -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"));
    home.join("bin").join(name)
}

fn wasm_bindgen_cli() -> Result<(PathBuf, PathBuf)> {
    let version = wasm_bindgen_version();
    let bindgen = cargo_bin("wasm-bindgen");
    let runner = cargo_bin("wasm-bindgen-test-runner");
    let installed = output(Command::new(&bindgen).arg("--version"))
        .is_some_and(|v| v.split_whitespace().nth(1) == Some(version.as_str()));
    if !installed || !runner.is_file() {
        let _t = Timer::start("installing wasm-bindgen-cli");
        let install = |locked: bool| {
            let mut cmd = Command::new("cargo");
            cmd.args([
                "install",
                "wasm-bindgen-cli",
                "--version",
                &version,
                "--force",
            ]);
            if locked {
                cmd.arg("--locked");
            }
            util::run(&mut cmd)
        };
        // --locked first (the exact tree wasm-bindgen tested); if the registry
        // no longer serves a crate of that lock file, resolve afresh.
        if install(true).is_err() {
            eprintln!("xtask: the locked install failed; retrying without --locked");
            install(false)?;
        }
    }
    Ok((bindgen, runner))
}

// ------------------------------------------------------------- cargo-fuzz

/// The cargo-fuzz version `cargo xtask fuzz` drives (its flags and output).
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// cargo-fuzz from crates.io (about a minute to build), for `cargo xtask
/// fuzz` only, which installs it when missing (so does `cargo xtask
/// setup`; the other commands, `cargo xtask test` among them, do not need
/// it). It runs on the stable toolchain with `RUSTC_BOOTSTRAP=1` (see
/// fuzz.rs): no nightly needed.
pub fn cargo_fuzz() -> Result<PathBuf> {
    cargo_install("cargo-fuzz", CARGO_FUZZ_VERSION)
}

/// The binary `name` from the crates.io crate of that name at exactly
/// `version` (`name --version` prints "name X.Y.Z"), installed with
/// `cargo install --locked` when it is missing or another version.
fn cargo_install(name: &str, version: &str) -> Result<PathBuf> {
    let bin = cargo_bin(name);
    let installed = output(Command::new(&bin).arg("--version"))
        .is_some_and(|v| v.split_whitespace().nth(1) == Some(version));
    if !installed {
        eprintln!("xtask: installing {name} {version}");
        let _t = Timer::start("cargo install");
        util::run(Command::new("cargo").args(["install", name, "--version", version, "--locked", "--force"]))?;
    }
    Ok(bin)
}

// ------------------------------------------------------------------ node

fn node_modules() -> Result {
    let version = output(Command::new("node").arg("--version")).ok_or(
        "Node.js is not installed: install Node.js 20 or newer (https://nodejs.org or your \
         distribution's nodejs package), then run this again",
    )?;
    let major: u32 = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 20 {
        return Err(format!(
            "Node.js {} is too old: install Node.js 20 or newer",
            version.trim()
        ));
    }
    let lock = root().join("package-lock.json");
    let stamp = root().join("node_modules/.package-lock.json");
    let fresh = match (std::fs::metadata(&lock), std::fs::metadata(&stamp)) {
        (Ok(l), Ok(s)) => s.modified().ok() >= l.modified().ok(),
        _ => false,
    };
    if !fresh {
        let _t = Timer::start("npm ci");
        util::run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
                .current_dir(root()),
        )?;
    }
    Ok(())
}

// --------------------------------------------------------------- browser

fn browser() -> Result<(PathBuf, PathBuf)> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let chromedriver =
        std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    let emoji = Path::new("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf").is_file();
    if !(have(&chromium) && have(&chromedriver) && have("zbarimg") && emoji) {
        apt_install(
            DEBIAN_BROWSER_PACKAGES,
            "Chromium and chromedriver for the browser tests",
        )?;
    }
    for p in [&chromium, &chromedriver] {
        if !have(p) {
            return Err(format!("{p} is still missing after installing Chromium"));
        }
    }
    Ok((chromium.into(), chromedriver.into()))
}

/// Firefox ESR from Debian and geckodriver from crates.io (a minute or two
/// to build, once).
fn firefox() -> Result<(PathBuf, PathBuf)> {
    let firefox = std::env::var("FIREFOX").unwrap_or_else(|_| "/usr/bin/firefox-esr".into());
    if !have(&firefox) {
        apt_install(DEBIAN_FIREFOX_PACKAGES, "Firefox ESR for the browser tests")?;
    }
    if !have(&firefox) {
        return Err(format!("{firefox} is still missing after installing Firefox ESR"));
    }
    let geckodriver = cargo_install("geckodriver", GECKODRIVER_VERSION)?;
    Ok((firefox.into(), geckodriver))
}

/// pebble, the ACME server the TLS test gets a certificate from.
fn pebble() -> Result {
    if !have("pebble") {
        apt_install(DEBIAN_ACME_PACKAGES, "pebble (the test ACME server)")?;
    }
    if !have("pebble") {
        return Err("pebble is still missing after installing it".into());
    }
    Ok(())
}

/// PostgreSQL and nats-server. Installed without starting them: Debian's
/// `postgresql` would start a cluster of its own on port 5432 (a
/// policy-rc.d that refuses every start, for the length of the install),
/// and nothing here uses one but the throwaway servers the project starts.
fn cluster_services() -> Result {
    if tether_services::postgres_bin_dir().is_some() && tether_services::nats_bin().is_some() {
        return Ok(());
    }
    let policy = std::path::Path::new("/usr/sbin/policy-rc.d");
    let ours = !policy.exists() && std::fs::write(policy, "#!/bin/sh\nexit 101\n").is_ok();
    if ours {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(policy, std::fs::Permissions::from_mode(0o755));
    }
    let installed = apt_install(DEBIAN_CLUSTER_PACKAGES, "PostgreSQL and nats-server (the several-node tests)");
    if ours {
        let _ = std::fs::remove_file(policy);
    }
    installed?;
    if tether_services::postgres_bin_dir().is_none() || tether_services::nats_bin().is_none() {
        return Err("PostgreSQL or nats-server is still missing after installing them".into());
    }
    Ok(())
}

/// moto's S3-compatible server (PyPI, pinned), in a virtualenv of its own
/// under the user's cache directory, for the blob object store's tests:
/// about 20 s, once.
fn s3_server() -> Result {
    if tether_services::moto_server_bin().is_some() {
        return Ok(());
    }
    let dir = tether_services::moto_dir();
    let _t = Timer::start("pip install moto");
    let _ = std::fs::remove_dir_all(&dir);
    let python = if have("python3") { "python3" } else { "python" };
    util::run(Command::new(python).args(["-m", "venv"]).arg(&dir)).map_err(|e| {
        format!("{e}\n(the S3 server for the blob tests needs Python 3 with venv: apt-get install -y python3-venv)")
    })?;
    let package = format!("moto[server]=={}", tether_services::MOTO_VERSION);
    util::run(Command::new(dir.join("bin").join("pip")).args(["install", "-q", "--disable-pip-version-check", &package]))?;
    std::fs::write(dir.join("installed"), &package).map_err(|e| format!("{}: {e}", dir.display()))?;
    if tether_services::moto_server_bin().is_none() {
        return Err(format!("moto_server is still missing in {} after installing it", dir.display()));
    }
    Ok(())
}

// ------------------------------------------------------------------- apt

fn apt_install(packages: &[&str], what: &str) -> Result {
    let by_hand = format!(
        "{what} is missing. On Debian/Ubuntu, as root: apt-get install -y {}",
        packages.join(" ")
    );
    let is_root = output(Command::new("id").arg("-u")).is_some_and(|u| u.trim() == "0");
    if !have("apt-get") {
        return Err(format!(
            "{by_hand}\n(this machine has no apt-get: install the equivalents)"
        ));
    }
    if !is_root {
        return Err(format!(
            "{by_hand}\n(xtask installs these itself only when run as root)"
        ));
    }
    let _t = Timer::start("apt-get install");
    util::run(
        Command::new("apt-get")
            .args(["update", "-q"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
    .map_err(|e| format!("{e}\n{by_hand}"))?;
    util::run(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
    .map_err(|e| format!("{e}\n{by_hand}"))
}

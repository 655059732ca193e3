//! `cargo xtask fuzz [target] [--seconds N]`: runs the cargo-fuzz targets
//! of `fuzz/` (libFuzzer) and prints, per target, executions, executions per
//! second and crashes. This is the real fuzzing; `cargo xtask test` only
//! runs the native smoke test of the same targets (`fuzz/tests/smoke.rs`:
//! the seeds and a fixed set of their mutations, in `cargo test
//! --workspace`), which needs no instrumented build.
//!
//! The targets' bodies live in the `tether-fuzz` library (a workspace
//! member); the libFuzzer binaries in `fuzz/fuzz_targets/` need its feature
//! `libfuzzer`, which every cargo-fuzz command here passes.
//!
//! Toolchain: the project's stable Rust with `RUSTC_BOOTSTRAP=1` (cargo-fuzz
//! passes a few `-Z` flags), no sanitizer (`-s none`: the code under test is
//! safe Rust, and AddressSanitizer would need a nightly std), with
//! libFuzzer's coverage instrumentation (SanitizerCoverage inline 8-bit
//! counters), which is checked in libFuzzer's start-up line. cargo-fuzz
//! itself comes from crates.io (`cargo xtask setup`).
//!
//! Corpora live in `fuzz/corpus/<target>`: the committed `seed-*` files and
//! whatever libFuzzer adds (ignored by git). A crash leaves its reproducer in
//! `fuzz/artifacts/<target>/` and fails the command with its path; rerun it
//! with `cargo xtask fuzz <target> --reproduce <path>` (which runs just that
//! input). The build and the libFuzzer logs go to `target/fuzz/` (or
//! `$CARGO_TARGET_DIR/fuzz`). `cargo xtask fuzz --write-seeds` rewrites the
//! seeds from `fuzz/examples/seeds.rs`. `--dev` builds unoptimised (quicker
//! to compile), `--seeds-only` starts from a scratch corpus of the committed
//! seeds only.

use crate::setup;
use crate::util::{Result, Timer, root, show};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every fuzz target, in the order they run.
pub const TARGETS: &[&str] = &["server_frame", "engine_message", "link_uri", "sealed_box"];
/// Default run time per target.
const DEFAULT_SECONDS: u64 = 60;

/// What one target's run produced.
#[derive(Debug, Default)]
pub struct Stats {
    pub target: String,
    pub executions: u64,
    pub exec_per_sec: u64,
    pub new_units: u64,
    pub seconds: f64,
    /// The reproducer of the crash, if there was one.
    pub crash: Option<PathBuf>,
}

/// How to build: optimised for real runs, unoptimised (`--dev`, faster to
/// build).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Profile {
    Release,
    Dev,
}

pub fn run(args: &[String]) -> Result {
    let mut targets: Vec<String> = Vec::new();
    let mut seconds = DEFAULT_SECONDS;
    let mut reproduce: Option<PathBuf> = None;
    let mut profile = Profile::Release;
    let mut seeds_only = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => {
                let n = it.next().ok_or("--seconds needs a number")?;
                seconds = n.parse().map_err(|_| format!("--seconds: not a number: {n}"))?;
            }
            "--reproduce" => {
                let file = it.next().ok_or("--reproduce needs a file")?;
                // cargo fuzz runs in fuzz/: a path relative to here must not reach it as it is.
                reproduce = Some(std::path::absolute(file).map_err(|e| format!("--reproduce {file}: {e}"))?);
            }
            "--dev" => profile = Profile::Dev,
            "--seeds-only" => seeds_only = true,
            "--write-seeds" => return write_seeds(),
            t if TARGETS.contains(&t) => targets.push(t.to_string()),
            other => return Err(format!("unknown fuzz target or option `{other}` (targets: {})", TARGETS.join(", "))),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    let cargo_fuzz = setup::cargo_fuzz()?;
    build(&cargo_fuzz, profile)?;
    if let Some(input) = reproduce {
        let [target] = targets.as_slice() else {
            return Err("--reproduce needs exactly one target".into());
        };
        let mut cmd = fuzz_command(&cargo_fuzz, "run", profile);
        cmd.arg(target).arg(&input);
        return crate::util::run(&mut cmd);
    }
    let mut all = Vec::new();
    for t in &targets {
        all.push(run_target(&cargo_fuzz, t, seconds, profile, seeds_only)?);
    }
    print_table(&all);
    let crashes: Vec<String> =
        all.iter().filter_map(|s| s.crash.as_ref().map(|c| format!("{}: {}", s.target, c.display()))).collect();
    if crashes.is_empty() { Ok(()) } else { Err(format!("crashes (reproducers): {}", crashes.join("; "))) }
}

fn fuzz_dir() -> PathBuf {
    root().join("fuzz")
}

/// Where the instrumented build goes: apart from every other build, since
/// its flags differ.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d).join("fuzz"),
        None => root().join("target/fuzz"),
    }
}

/// The feature of `tether-fuzz` that its libFuzzer binaries need.
const FEATURE: &str = "libfuzzer";

/// `cargo fuzz <sub> -s none --features libfuzzer …` on the stable
/// toolchain.
fn fuzz_command(cargo_fuzz: &Path, sub: &str, profile: Profile) -> Command {
    let mut cmd = Command::new(cargo_fuzz);
    cmd.args(["fuzz", sub, "--sanitizer", "none", "--features", FEATURE, "--target-dir"])
        .arg(target_dir())
        .current_dir(fuzz_dir())
        // cargo-fuzz passes -Z flags; the stable compiler accepts them with this.
        .env("RUSTC_BOOTSTRAP", "1")
        // Not the nightly a rust-toolchain file or an override might pick.
        .env("RUSTUP_TOOLCHAIN", "stable");
    if profile == Profile::Dev {
        cmd.arg("--dev");
    }
    cmd
}

/// The flags cargo-fuzz 0.13 builds release targets with (`-s none`).
const FUZZ_RUSTFLAGS: &str = "-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing \
    -Cllvm-args=-simplifycfg-branch-fold-threshold=0 -Cllvm-args=-sanitizer-coverage-stack-depth \
    -Cdebug-assertions -Ccodegen-units=1";

/// Rewrites the committed seeds (`fuzz/examples/seeds.rs`), built with the
/// release targets' flags so that it reuses their build.
fn write_seeds() -> Result {
    let host = "x86_64-unknown-linux-gnu";
    let flags: Vec<&str> = FUZZ_RUSTFLAGS.split_whitespace().collect();
    crate::util::run(
        Command::new("cargo")
            .args(["build", "--example", "seeds", "--release", "--features", FEATURE, "--target", host])
            .args(["--config", "profile.release.debug=\"line-tables-only\"", "--target-dir"])
            .arg(target_dir())
            .env("RUSTFLAGS", flags.join(" "))
            .env("RUSTC_BOOTSTRAP", "1")
            .env("RUSTUP_TOOLCHAIN", "stable")
            .current_dir(fuzz_dir()),
    )?;
    crate::util::run(&mut Command::new(target_dir().join(host).join("release/examples/seeds")))
}

/// Builds every target (one cargo invocation, so shared crates build once).
fn build(cargo_fuzz: &Path, profile: Profile) -> Result {
    let _t = Timer::start("fuzz build");
    crate::util::run(&mut fuzz_command(cargo_fuzz, "build", profile))
}

/// Runs one target for `seconds`, its log in the target dir. With
/// `seeds_only`, from a scratch corpus holding just the committed seeds
/// (libFuzzer first runs every corpus entry, however long that takes, so a
/// grown corpus would make a short run long).
fn run_target(cargo_fuzz: &Path, target: &str, seconds: u64, profile: Profile, seeds_only: bool) -> Result<Stats> {
    let mut corpus = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&corpus).map_err(|e| format!("create {}: {e}", corpus.display()))?;
    if seeds_only {
        let scratch = target_dir().join("smoke-corpus").join(target);
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).map_err(|e| format!("create {}: {e}", scratch.display()))?;
        for entry in std::fs::read_dir(&corpus).map_err(|e| format!("read {}: {e}", corpus.display()))?.flatten() {
            if entry.file_name().to_string_lossy().starts_with("seed-") {
                std::fs::copy(entry.path(), scratch.join(entry.file_name())).map_err(|e| e.to_string())?;
            }
        }
        corpus = scratch;
    }
    let logs = target_dir().join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| format!("create {}: {e}", logs.display()))?;
    let log = logs.join(format!("{target}.log"));
    let mut cmd = fuzz_command(cargo_fuzz, "run", profile);
    cmd.arg(target).arg(&corpus).args([
        "--",
        &format!("-max_total_time={seconds}"),
        "-print_final_stats=1",
        // One input may take a while (a real server round trip), never this.
        "-timeout=20",
        "-rss_limit_mb=3072",
        "-max_len=16384",
    ]);
    eprintln!("\n==> fuzz {target} for {seconds} s\n$ {}\n    (log: {})", show(&cmd), log.display());
    let started = std::time::Instant::now();
    let file = std::fs::File::create(&log).map_err(|e| format!("create {}: {e}", log.display()))?;
    let status = cmd
        .stderr(file.try_clone().map_err(|e| e.to_string())?)
        .stdout(file)
        .status()
        .map_err(|e| format!("could not start cargo fuzz: {e}"))?;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let mut stats = parse_log(target, &text);
    stats.seconds = started.elapsed().as_secs_f64();
    if !text.contains("inline 8-bit counters") {
        return Err(format!(
            "{target}: libFuzzer found no coverage counters (not an instrumented build?); see {}",
            log.display()
        ));
    }
    if !status.success() && stats.crash.is_none() {
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        eprintln!("{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        return Err(format!("{target}: cargo fuzz failed ({status}) without a reproducer; see {}", log.display()));
    }
    if let Some(c) = &stats.crash {
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        eprintln!("{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        eprintln!("==> {target}: CRASH, reproducer {}", c.display());
    } else {
        eprintln!(
            "==> {target}: {} executions, {} exec/s, {} new corpus entries, no crash",
            stats.executions, stats.exec_per_sec, stats.new_units
        );
    }
    Ok(stats)
}

/// Reads libFuzzer's final statistics and the reproducer of a crash.
fn parse_log(target: &str, text: &str) -> Stats {
    let mut s = Stats { target: target.to_string(), ..Stats::default() };
    for line in text.lines() {
        let num = |key: &str| line.strip_prefix(key).and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(n) = num("stat::number_of_executed_units:") {
            s.executions = n;
        } else if let Some(n) = num("stat::average_exec_per_sec:") {
            s.exec_per_sec = n;
        } else if let Some(n) = num("stat::new_units_added:") {
            s.new_units = n;
        } else if let Some(path) = line.split("Test unit written to ").nth(1) {
            let path = PathBuf::from(path.trim());
            s.crash = Some(if path.is_absolute() { path } else { fuzz_dir().join(path) });
        }
    }
    s
}

fn print_table(all: &[Stats]) {
    println!("\n{:<16} {:>12} {:>8} {:>6} {:>8}  crashes", "target", "executions", "exec/s", "new", "seconds");
    for s in all {
        let crash = s.crash.as_ref().map(|c| c.display().to_string()).unwrap_or_else(|| "0".into());
        println!(
            "{:<16} {:>12} {:>8} {:>6} {:>8.0}  {crash}",
            s.target, s.executions, s.exec_per_sec, s.new_units, s.seconds
        );
    }
}

#[cfg(test)]
mod tests {
    use super::parse_log;

    #[test]
    fn reads_final_stats_and_the_reproducer() {
        let log = "INFO: Loaded 1 modules   (1234 inline 8-bit counters): 1234 [0x1, 0x2),\n\
                   ==1== ERROR: libFuzzer: deadly signal\n\
                   artifact_prefix='/w/fuzz/artifacts/link_uri/'; Test unit written to /w/fuzz/artifacts/link_uri/crash-abc\n\
                   stat::number_of_executed_units: 5120\n\
                   stat::average_exec_per_sec:     512\n\
                   stat::new_units_added:          17\n";
        let s = parse_log("link_uri", log);
        assert_eq!((s.executions, s.exec_per_sec, s.new_units), (5120, 512, 17));
        assert_eq!(s.crash.unwrap().to_str(), Some("/w/fuzz/artifacts/link_uri/crash-abc"));
        assert!(parse_log("x", "stat::number_of_executed_units: 3\n").crash.is_none());
    }
}

//! `cargo xtask`: the project's own build tool.
//!
//! ```text
//! cargo xtask setup            install what the project needs (idempotent, quick when done)
//! cargo xtask build            extension into dist/chrome + dist/firefox, release server + CLI
//! cargo xtask run [--browser]  build, then run tether-server on 127.0.0.1:7780 (data in ./data)
//! cargo xtask run --cluster    build, then two nodes on :7780 and :7781 with a throwaway PostgreSQL and NATS
//! cargo xtask test             every test: native, wasm in Chromium, end-to-end in Chromium
//! cargo xtask package          store zips, the Firefox source archive (rebuilt and checked), dist/store/
//! cargo xtask fuzz [target]    run the cargo-fuzz targets of fuzz/ (60 s each by default)
//! ```

mod bench;
mod build;
mod fuzz;
mod package;
mod run;
mod server;
mod setup;
mod test;
mod util;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((cmd, rest)) => (cmd.as_str(), rest),
        None => ("help", &[][..]),
    };
    let result = match cmd {
        // The other commands' setup, plus cargo-fuzz (only `fuzz` needs it).
        "setup" => setup::run().and_then(|_| setup::cargo_fuzz()).map(|_| ()),
        "build" => build::run(rest),
        "run" => run::run(rest),
        "test" => test::run(rest),
        "package" => package::run(),
        "bench" => bench::run(rest),
        "fuzz" => fuzz::run(rest),
        "help" | "--help" | "-h" => {
            print!("{}", HELP);
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

const HELP: &str = "\
usage: cargo xtask <command>

  setup            install the toolchain and tools the project needs (quick when present)
  build            build the extension into dist/chrome and dist/firefox (optimised wasm),
                   and release binaries of tether-server and tether
      --extension    only the extension (no release binaries)
      --server URL   the server the extension connects to by default
                     (default http://127.0.0.1:7780)
  run              setup, build, then run tether-server on 127.0.0.1:7780 with its
                   data in ./data, and print what to do next
      --browser      also launch Chromium with the extension loaded
      --cluster      instead: a throwaway PostgreSQL and nats-server and two nodes on
                     127.0.0.1:7780 and :7781 sharing them (several-node deployment)
  test             setup, then every test: native cargo tests, wasm tests in headless
                   Chromium, and the end-to-end tests of the built extension
  package          store-ready dist/tether-chrome.zip and dist/tether-firefox.zip, the source
                   archive addons.mozilla.org asks for (dist/tether-firefox-source.zip, with
                   BUILD.md; the add-on built again from it must be the same, byte for
                   byte) and the Chrome Web Store listing in dist/store/ (icon, descriptions,
                   1280x800 screenshots of the real popup)
  fuzz [TARGET]    run the fuzz targets of fuzz/ (libFuzzer via cargo-fuzz), every target
                   or the one named (server_frame, engine_message, link_uri, sealed_box);
                   prints executions, exec/s and crashes, and fails with the reproducer
      --seconds N    how long each target runs (default 60)
      --reproduce F  run the target on the input F only (a crash's reproducer)
  bench server     load-test tether-server (--idle --pairs --rate --seconds --size)
  bench client     engine numbers: Olm throughput, linking with a 1,000-message history
  bench link [N]   the phone web app links the extension by camera with N messages of
                   history (default 1,000): time to the popup's chat list
  bench extension  the core's size gzipped, worker wake to badge and to 3 messages drained,
                   popup first paint (p50 of 10 runs, headless Chromium)
";
